//! Materialized documents: the automerge document of every record and a JSON copy of
//! its current value (the index that `list`, `show`, conflicts and reports read),
//! derived from the log and kept in a sled tree beside the store's own.
//!
//! The tree has its own cursor (the log position up to which it is applied), written
//! in the same atomic sled batch as the documents it covers, so it is always a prefix
//! of the log. It is rebuilt from the start of the log when it is missing, belongs to
//! another log, or when the set of revocations or forks changed.
//!
//! Which envelopes count: those in the chain the store follows, whose author may sign
//! that seq under the *current* trust state, and not at or after a fork of their author.
//! These rules depend only on the set of entries held, not on the order they arrived
//! in, so two nodes holding the same entries hold the same documents, even when one of
//! them applied an envelope before learning that its device had been revoked.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use tessera_log::{DeviceKey, DocId, Envelope, LogEntry};
use tessera_records::{Record, RecordDoc, RecordKind};
use tessera_store::{LogPosition, Store};

const TREE: &str = "docs";
const CURSOR: &[u8] = b"cursor";
const LOG_ID: &[u8] = b"log_id";
const EPOCH: &[u8] = b"epoch";
const DOC: u8 = b'd';
const RECORD: u8 = b'r';
const PENDING: u8 = b'p';
/// Log records read per sled batch while catching up.
const CATCH_UP_RECORDS_MAX: usize = 2048;

/// The materialized documents of one store.
#[derive(Debug)]
pub struct Materializer {
    tree: sled::Tree,
    actor: DeviceKey,
}

/// What one catch-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub rebuilt: bool,
    pub envelopes: u64,
    pub changes: u64,
    /// Changes that could not be applied (malformed automerge bytes).
    pub bad_changes: u64,
}

fn key(prefix: u8, doc: &DocId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = prefix;
    k[1..].copy_from_slice(&doc.0);
    k
}

fn encode_position(p: LogPosition) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&p.segment.to_be_bytes());
    v[8..].copy_from_slice(&p.offset.to_be_bytes());
    v
}

fn decode_position(v: &[u8]) -> Option<LogPosition> {
    let segment = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let offset = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some(LogPosition { segment, offset })
}

/// The revocations and forks a materialization was computed under.
fn epoch(store: &Store) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tessera 2026-11 materialization epoch v1");
    for entry in store.trust().entries_in_order() {
        if entry.dependency_rank() >= 3 {
            h.update(entry.id().as_bytes());
        }
    }
    for fork in store.forks() {
        h.update(fork.author.as_bytes());
        h.update(&fork.seq.0.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

fn excluded(store: &Store, envelope: &Envelope) -> bool {
    let author = envelope.author();
    store.trust().authorize(&author, envelope.seq()).is_err()
        || store.forks().iter().any(|f| f.author == author && envelope.seq() >= f.seq)
}

impl Materializer {
    pub fn open(store: &Store, actor: DeviceKey) -> Result<Materializer> {
        let tree = store.derived_tree(TREE)?;
        Ok(Materializer { tree, actor })
    }

    /// Applies every log entry after the cursor. Call after each ingest.
    pub fn catch_up(&mut self, store: &Store) -> Result<CatchUp> {
        let mut report = CatchUp::default();
        let epoch_now = epoch(store);
        let valid = self.tree.get(LOG_ID)?.as_deref() == Some(&store.log_id()[..])
            && self.tree.get(EPOCH)?.as_deref() == Some(&epoch_now[..]);
        if !valid {
            self.tree.clear()?;
            self.tree.insert(LOG_ID, &store.log_id())?;
            self.tree.insert(EPOCH, &epoch_now)?;
            report.rebuilt = true;
        }
        let mut cursor =
            self.tree.get(CURSOR)?.and_then(|v| decode_position(&v)).unwrap_or_else(|| store.log_start());
        loop {
            let mut changes: BTreeMap<DocId, Vec<Vec<u8>>> = BTreeMap::new();
            let mut read = 0usize;
            let mut next = cursor;
            for item in store.entries_from(cursor) {
                let (at, entry) = item?;
                next = at.end();
                read += 1;
                if let LogEntry::Envelope(env) = entry {
                    if store.is_in_chain(&env)? && !excluded(store, &env) {
                        report.envelopes += 1;
                        for (doc, body) in env.present_changes() {
                            changes.entry(doc).or_default().push(body.to_vec());
                        }
                    }
                }
                if read >= CATCH_UP_RECORDS_MAX {
                    break;
                }
            }
            if read == 0 {
                break;
            }
            let mut batch = sled::Batch::default();
            for (doc, bodies) in changes {
                report.changes += bodies.len() as u64;
                report.bad_changes += self.apply_to_doc(&doc, &bodies, &mut batch)?;
            }
            batch.insert(CURSOR, &encode_position(next));
            self.tree.apply_batch(batch)?;
            cursor = next;
            if read < CATCH_UP_RECORDS_MAX {
                break;
            }
        }
        Ok(report)
    }

    /// Applies `bodies` to `doc` and stages its new bytes, pending changes and JSON
    /// value. Returns the number of malformed changes (skipped).
    fn apply_to_doc(&self, doc: &DocId, bodies: &[Vec<u8>], batch: &mut sled::Batch) -> Result<u64> {
        let mut document =
            self.load(doc)?.unwrap_or_else(|| RecordDoc::empty(tessera_records::actor_for(&self.actor)));
        let mut bad = 0;
        if let Some(pending) = self.tree.get(key(PENDING, doc))? {
            for body in decode_list(&pending) {
                let _ = document.apply_change(&body);
            }
        }
        for body in bodies {
            if let Err(e) = document.apply_change(body) {
                tracing::warn!(doc = %doc, error = %e, "a change could not be applied to its document");
                bad += 1;
            }
        }
        let pending = document.pending_changes();
        if pending.is_empty() {
            batch.remove(&key(PENDING, doc)[..]);
        } else {
            batch.insert(&key(PENDING, doc)[..], encode_list(&pending));
        }
        batch.insert(&key(DOC, doc)[..], document.save());
        match document.hydrate() {
            Ok(record) => batch.insert(&key(RECORD, doc)[..], serde_json::to_vec(&record)?),
            Err(e) => {
                tracing::debug!(doc = %doc, error = %e, "document not readable as a record yet");
                batch.remove(&key(RECORD, doc)[..]);
            }
        }
        Ok(bad)
    }

    /// The automerge document of `doc`, if any change of it was applied.
    pub fn load(&self, doc: &DocId) -> Result<Option<RecordDoc>> {
        let actor = tessera_records::actor_for(&self.actor);
        match self.tree.get(key(DOC, doc))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(
                RecordDoc::load(&bytes, actor)
                    .with_context(|| format!("stored document {doc} is damaged"))?,
            )),
        }
    }

    /// The current value of a record.
    pub fn record(&self, doc: &DocId) -> Result<Option<Record>> {
        match self.tree.get(key(RECORD, doc))? {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_slice(&json).context("damaged record index")?)),
        }
    }

    /// Every record of `kind`, in id order.
    pub fn records(&self, kind: RecordKind) -> Result<Vec<(DocId, Record)>> {
        let mut prefix = vec![RECORD];
        prefix.push(kind.byte());
        let mut out = Vec::new();
        for row in self.tree.scan_prefix(prefix) {
            let (k, v) = row?;
            let mut id = [0u8; 16];
            id.copy_from_slice(k.get(1..17).context("damaged record index key")?);
            out.push((DocId(id), serde_json::from_slice(&v).context("damaged record index")?));
        }
        Ok(out)
    }

    /// How many records of `kind` are readable (keys only: nothing is decoded).
    pub fn count(&self, kind: RecordKind) -> Result<usize> {
        let mut n = 0;
        for row in self.tree.scan_prefix([RECORD, kind.byte()]).keys() {
            row?;
            n += 1;
        }
        Ok(n)
    }

    /// Every record of every kind.
    pub fn all_records(&self) -> Result<Vec<(DocId, Record)>> {
        let mut out = Vec::new();
        for row in self.tree.scan_prefix([RECORD]) {
            let (k, v) = row?;
            let mut id = [0u8; 16];
            id.copy_from_slice(k.get(1..17).context("damaged record index key")?);
            out.push((DocId(id), serde_json::from_slice(&v).context("damaged record index")?));
        }
        Ok(out)
    }

    /// Ids of `kind` whose hex starts with `hex_prefix`.
    pub fn ids_with_prefix(&self, kind: RecordKind, hex_prefix: &str) -> Result<Vec<DocId>> {
        let mut out = Vec::new();
        for row in self.tree.scan_prefix([RECORD, kind.byte()]) {
            let (k, _) = row?;
            let mut id = [0u8; 16];
            id.copy_from_slice(k.get(1..17).context("damaged record index key")?);
            if hex::encode(id).starts_with(hex_prefix) {
                out.push(DocId(id));
            }
        }
        Ok(out)
    }

    /// A digest of every materialized record value, to compare two nodes.
    pub fn state_digest(&self) -> Result<String> {
        let mut h = blake3::Hasher::new();
        for row in self.tree.scan_prefix([RECORD]) {
            let (k, v) = row?;
            h.update(&k);
            h.update(&v);
        }
        Ok(h.finalize().to_hex().to_string())
    }
}

fn encode_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

fn decode_list(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let Some(item) = bytes.get(4..4 + len) else { break };
        out.push(item.to_vec());
        bytes = &bytes[4 + len..];
    }
    out
}
