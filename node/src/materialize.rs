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
//!
//! Automerge runs on a worker thread. The caller reads the log and decides which
//! envelopes count; the worker applies their changes to a bounded cache of hot
//! documents and writes them back to sled later, in larger batches (write-behind):
//! when many are changed, when it has been idle a moment, before any read, and on
//! close. So a synced batch is acknowledged once it is durable in the log, while the
//! documents of the previous one are still being applied, and a record edited in many
//! batches is saved and re-indexed once. Every read first waits for the worker, so
//! readers see exactly what a synchronous catch-up would have written; a process that
//! stops early loses only derived state, which the next open replays from the cursor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::msg::SaidContext as _;
use anyhow::Result;
use tessera_log::{DeviceKey, DocId, Envelope, LogEntry, SecretKey};
use tessera_records::{Record, RecordDoc, RecordKind};
use tessera_seal::{Epoch, Scope};
use tessera_store::{LogPosition, Store};

use crate::keys::{Keys, Opened};

const TREE: &str = "docs";
const CURSOR: &[u8] = b"cursor";
const LOG_ID: &[u8] = b"log_id";
const EPOCH: &[u8] = b"epoch";
/// The grants accepted so far (see `keys`), always covering at least the cursor.
const KEYS: &[u8] = b"keys";
/// The scopes and epochs of bodies met that this node had no key for: when a key of
/// one of them arrives, the documents are rebuilt so those bodies count.
const UNREADABLE: &[u8] = b"unreadable";
/// Scope epochs remembered as unreadable, at most (then any new key rebuilds).
const UNREADABLE_MAX: usize = 1024;
const DOC: u8 = b'd';
const RECORD: u8 = b'r';
const PENDING: u8 = b'p';
/// An erased attendee (row key: the attendee's id): the stub that stays, as JSON.
const ERASED: u8 = b'x';
/// The people database (attendees and their personal details), beside the store's:
/// deleted whole and rebuilt from the log when a person is erased, so no page of it
/// keeps an erased person's bytes (sled keeps old pages of a tree it rewrites).
const PEOPLE_DIR: &str = "people";
/// In the people tree: the cursor it covers (written with its documents, before the
/// main tree's; a people tree behind the main cursor is rebuilt).
const PEOPLE_CURSOR: &[u8] = b"people_cursor";
/// Log records read per job handed to the worker.
const CATCH_UP_RECORDS_MAX: usize = 2048;
/// Jobs queued for the worker before the caller waits for it.
const JOBS_MAX: usize = 4;
/// Documents the worker keeps in memory. Past this, after a write, the least recently
/// used are dropped (down to three quarters). An in-memory record document takes tens
/// of KB: in a full sync, 8,192 cached documents added 520 MB to the peak RSS, 2,048
/// added 230 MB.
const CACHE_DOCS_MAX: usize = 1024;
/// Changed documents the worker holds before writing them to sled.
const DIRTY_DOCS_MAX: usize = 512;
/// The worker writes its changed documents after this long without a job.
const IDLE_WRITE_AFTER: Duration = Duration::from_millis(200);

/// The materialized documents of one store.
pub struct Materializer {
    tree: sled::Tree,
    /// Attendee and personal-details documents (see [`PEOPLE_DIR`]); `None` only
    /// while it is being replaced.
    people: Option<sled::Tree>,
    people_dir: std::path::PathBuf,
    /// Erased persons whose stub is written here (rows [`ERASED`]).
    erased: BTreeSet<tessera_log::Person>,
    /// Erased persons whose stubs a restart dropped: written again, without deleting
    /// the people database (it was deleted after their erasure already).
    restub: BTreeSet<tessera_log::Person>,
    actor: DeviceKey,
    secret: Arc<SecretKey>,
    keys: Keys,
    /// Scope epochs of bodies this node could not open (persisted in `UNREADABLE`).
    unreadable: BTreeSet<(Scope, Epoch)>,
    /// The end of what was handed to the worker: where the next catch-up reads from.
    /// `None`: read the cursor stored in the tree.
    next: Option<LogPosition>,
    /// Set when the worker dropped work it could not finish (its error was returned
    /// to a reader): the next catch-up resumes from the stored cursor.
    lost: AtomicBool,
    /// Set when work was handed over since sled was last brought up to date.
    unsettled: AtomicBool,
    jobs: Option<SyncSender<Job>>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Materializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materializer").field("actor", &self.actor).field("next", &self.next).finish()
    }
}

/// What one catch-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub rebuilt: bool,
    pub envelopes: u64,
    pub changes: u64,
    /// Changes that could not be applied (malformed automerge bytes), including those
    /// of earlier catch-ups that did not wait for the worker.
    pub bad_changes: u64,
    /// Persons found erased (their documents dropped, a stub left).
    pub erased: usize,
}

/// Work for the worker thread, done in the order sent.
enum Job {
    /// Apply these changes; the documents then cover the log up to `cursor`.
    Apply { changes: BTreeMap<DocId, Vec<Vec<u8>>>, cursor: LogPosition },
    /// Reply once every earlier job is done (and, with `write`, written to sled): the
    /// number of malformed changes met since the last reply, or the error that stopped
    /// the worker (it then dropped its unwritten work).
    Settle { write: bool, reply: SyncSender<Result<u64>> },
    /// The saved bytes of a cached document (`None`: not cached, sled is current).
    Snapshot { doc: DocId, reply: SyncSender<Result<Option<Vec<u8>>>> },
    /// Drop every cached document without writing it (before the tree is cleared).
    Reset { reply: SyncSender<()> },
    /// Drop the cached people documents and use `people` from now on (`None`: none
    /// until the next one, while the old database is deleted).
    SetPeople { people: Option<sled::Tree>, reply: SyncSender<()> },
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
        // Revocations (a network erasure changes no envelope's standing: the store's
        // erased set tells the materializer what it removes).
        if matches!(entry.dependency_rank(), 3 | 4) {
            h.update(entry.id().as_bytes());
        }
    }
    for fork in store.forks() {
        h.update(fork.author.as_bytes());
        h.update(&fork.seq.0.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// Whether the body of a change of `doc` is of a person erased in `store`.
fn erased_body(store: &Store, doc: &DocId) -> bool {
    let erased = store.erased();
    !erased.is_empty()
        && tessera_log::erasure::erases_body_of(&|p: &tessera_log::Person| erased.contains(p), doc)
}

/// Whether `doc` is kept in the people database: an attendee or its personal details.
fn is_people(doc: &DocId) -> bool {
    matches!(tessera_records::kind_of(doc), Some(RecordKind::Attendee | RecordKind::Personal))
}

fn open_people(dir: &std::path::Path) -> Result<sled::Tree> {
    // A cache like the store's derived database: a long flush interval keeps its
    // background fsyncs off the write path.
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(Some(2_000))
        .open()
        .with_said(|| crate::msg::cannot("open the people database in", dir))?;
    Ok((*db).clone())
}

fn excluded(store: &Store, envelope: &Envelope) -> bool {
    !tessera_log::still_counts(store.trust(), store.forks(), &envelope.author(), envelope.seq())
}

/// The stored document of `doc` (saved bytes only, no pending changes).
fn load_saved(tree: &sled::Tree, actor: &DeviceKey, doc: &DocId) -> Result<Option<RecordDoc>> {
    match tree.get(key(DOC, doc))? {
        None => Ok(None),
        Some(bytes) => {
            Ok(Some(RecordDoc::load(&bytes, tessera_records::actor_for(actor)).with_said(|| {
                (
                    format!("stored document {doc} is damaged"),
                    format!("il documento salvato {doc} è danneggiato"),
                )
            })?))
        }
    }
}

fn encode_unreadable(set: &BTreeSet<(Scope, Epoch)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (scope, epoch) in set {
        scope.encode_into(&mut out);
        out.extend_from_slice(&epoch.0.to_be_bytes());
    }
    out
}

fn decode_unreadable(mut bytes: &[u8]) -> Option<BTreeSet<(Scope, Epoch)>> {
    let mut set = BTreeSet::new();
    while !bytes.is_empty() {
        let (scope, used) = Scope::decode(bytes).ok()?;
        let epoch = u32::from_be_bytes(bytes.get(used..used + 4)?.try_into().ok()?);
        set.insert((scope, Epoch(epoch)));
        bytes = &bytes[used + 4..];
    }
    Some(set)
}

impl Materializer {
    pub fn open(store: &Store, actor: DeviceKey, secret: Arc<SecretKey>) -> Result<Materializer> {
        let tree = store.derived_tree(TREE)?;
        let network = store.network();
        // Damaged key or unreadable rows: a rebuild from the log makes them again.
        let mut keys = Keys::new(network, actor);
        let mut damaged = false;
        if let Some(bytes) = tree.get(KEYS)? {
            match Keys::decode(network, actor, &bytes, &secret) {
                Some(decoded) => keys = decoded,
                None => damaged = true,
            }
        }
        let unreadable = match tree.get(UNREADABLE)? {
            None => BTreeSet::new(),
            Some(bytes) => decode_unreadable(&bytes).unwrap_or_else(|| {
                damaged = true;
                BTreeSet::new()
            }),
        };
        let people_dir = store.dir().join(PEOPLE_DIR);
        // Left by a rebuild that stopped midway (see `rebuild_people`): a complete new
        // database whose swap did not finish is put in place; the rest is deleted.
        if !people_dir.exists() && people_dir.with_extension("new").exists() {
            std::fs::rename(people_dir.with_extension("new"), &people_dir).with_said(|| {
                let dir = people_dir.display();
                (
                    format!("cannot move the rebuilt people database into {dir}"),
                    format!("non riesco a spostare in {dir} l'archivio delle persone ricostruito"),
                )
            })?;
        }
        let _ = std::fs::remove_dir_all(people_dir.with_extension("new"));
        let _ = std::fs::remove_dir_all(people_dir.with_extension("old"));
        let people = match open_people(&people_dir) {
            Ok(people) => people,
            Err(e) => {
                tracing::warn!(error = %e, "the people database is damaged; rebuilding it from the log");
                std::fs::remove_dir_all(&people_dir)
                    .with_said(|| crate::msg::cannot("remove", &people_dir))?;
                damaged = true;
                open_people(&people_dir)?
            }
        };
        if damaged {
            tree.remove(LOG_ID)?;
        }
        let mut erased = BTreeSet::new();
        for row in tree.scan_prefix([ERASED]).keys() {
            let k = row?;
            if let Some(id) = k.get(1..17) {
                let mut doc = [0u8; 16];
                doc.copy_from_slice(id);
                erased.insert(tessera_log::Person::of(&DocId(doc)));
            }
        }
        let (jobs, queue) = mpsc::sync_channel(JOBS_MAX);
        let worker = Worker {
            tree: tree.clone(),
            people: Some(people.clone()),
            actor,
            docs: HashMap::new(),
            dirty: 0,
            applied: None,
            clock: 0,
            bad: 0,
            failed: None,
        };
        let handle =
            std::thread::Builder::new().name("materializer".into()).spawn(move || worker.run(queue)).said(
                "cannot start the materializer thread",
                "non riesco ad avviare il lavoro di aggiornamento delle schede",
            )?;
        Ok(Materializer {
            tree,
            people: Some(people),
            people_dir,
            erased,
            restub: BTreeSet::new(),
            actor,
            secret,
            keys,
            unreadable,
            next: None,
            lost: AtomicBool::new(false),
            unsettled: AtomicBool::new(false),
            jobs: Some(jobs),
            worker: Some(handle),
        })
    }

    /// Applies every log entry after the cursor and waits until the documents are
    /// applied. Call after each ingest.
    pub fn catch_up(&mut self, store: &Store) -> Result<CatchUp> {
        let mut report = self.catch_up_in_background(store)?;
        report.bad_changes += self.settle(false)?;
        Ok(report)
    }

    /// Reads every log entry after the cursor and hands their changes to the worker,
    /// without waiting for it (it waits only when the worker is [`JOBS_MAX`] jobs
    /// behind). `bad_changes` is not known yet and is 0.
    pub fn catch_up_in_background(&mut self, store: &Store) -> Result<CatchUp> {
        let mut report = CatchUp::default();
        if self.lost.swap(false, Ordering::SeqCst) {
            self.next = None;
        }
        let epoch_now = epoch(store);
        // A cursor past the end of the log (a torn tail cut, a data directory copied
        // while it was written, a backup whose log is older than its derived files)
        // means the documents hold changes the log no longer has: rebuild them.
        let stored_cursor = self.tree.get(CURSOR)?.map(|v| decode_position(&v));
        let cursor_fits = match (self.next, &stored_cursor) {
            (Some(at), _) => at <= store.log_end(),
            (None, None) => true,
            (None, Some(None)) => false,
            (None, Some(Some(at))) => *at <= store.log_end(),
        };
        // The people tree is written before the main one: it may be ahead, never behind.
        let people_cursor = self.people()?.get(PEOPLE_CURSOR)?.and_then(|v| decode_position(&v));
        let people_fit = match (self.next, &stored_cursor) {
            (Some(_), _) | (None, None) => true,
            (None, Some(at)) => people_cursor.is_some_and(|p| Some(p) >= *at),
        };
        let valid = cursor_fits
            && people_fit
            && self.tree.get(LOG_ID)?.as_deref() == Some(&store.log_id()[..])
            && self.tree.get(EPOCH)?.as_deref() == Some(&epoch_now[..]);
        if !valid {
            self.restart(store, false)?;
            report.rebuilt = true;
        }
        let mut cursor = match self.next {
            Some(at) => at,
            None => stored_cursor.flatten().unwrap_or_else(|| store.log_start()),
        };
        // Scope epochs this pass got a key for, that bodies were unreadable in.
        let mut now_readable = false;
        loop {
            let mut changes: BTreeMap<DocId, Vec<Vec<u8>>> = BTreeMap::new();
            let mut read = 0usize;
            let mut next = cursor;
            let grants_before = self.keys.accepted();
            let unreadable_before = self.unreadable.len();
            for item in store.entries_from(cursor) {
                let (at, entry) = item?;
                next = at.end();
                read += 1;
                if let LogEntry::Envelope(env) = entry {
                    if store.is_in_chain(&env)? && !excluded(store, &env) {
                        report.envelopes += 1;
                        now_readable |= self.take_changes(store, &env, &mut changes, &mut report);
                    }
                }
                if read >= CATCH_UP_RECORDS_MAX {
                    break;
                }
            }
            if read == 0 {
                break;
            }
            // Before the worker can write a cursor past them.
            if self.keys.accepted() != grants_before {
                self.tree.insert(KEYS, self.keys.encode())?;
            }
            if self.unreadable.len() != unreadable_before {
                self.tree.insert(UNREADABLE, encode_unreadable(&self.unreadable))?;
            }
            self.unsettled.store(true, Ordering::SeqCst);
            self.send(Job::Apply { changes, cursor: next })?;
            cursor = next;
            self.next = Some(next);
            if read < CATCH_UP_RECORDS_MAX {
                break;
            }
        }
        if now_readable {
            // Bodies met before their key are in the log, not in the documents: apply
            // everything again, keeping the keys (they come from the same log).
            tracing::info!("a read key arrived after the changes it opens: rebuilding the records");
            self.restart(store, true)?;
            let again = self.catch_up_in_background(store)?;
            report.rebuilt = true;
            report.envelopes = again.envelopes;
            report.changes = again.changes;
        }
        if self.erased.iter().any(|person| !store.erased().contains(person)) {
            // An erasure stopped counting (its device was revoked before it): the
            // person's documents come back from the log as their bodies return.
            tracing::info!("an erasure no longer counts: rebuilding the records");
            self.erased.retain(|person| store.erased().contains(person));
            self.restart(store, true)?;
            let again = self.catch_up_in_background(store)?;
            report.rebuilt = true;
            report.envelopes = again.envelopes;
            report.changes = again.changes;
            return Ok(report);
        }
        for person in std::mem::take(&mut self.restub) {
            if store.erased().contains(&person) && self.erased.contains(&person) {
                let kept = self.erased_record(&person.doc(RecordKind::Attendee.byte()))?;
                self.write_stub(store, &person, kept)?;
            }
        }
        let newly: Vec<tessera_log::Person> = store.erased().difference(&self.erased).copied().collect();
        if !newly.is_empty() {
            // The card as it is now: the stub of an erasure that carries none (the
            // network key's).
            let mut cards = Vec::with_capacity(newly.len());
            for person in &newly {
                let doc = person.doc(RecordKind::Attendee.byte());
                let card = match self.people()?.get(key(RECORD, &doc))? {
                    Some(json) => serde_json::from_slice::<Record>(&json).ok(),
                    None => None,
                };
                cards.push(card);
            }
            // The stubs after the rebuild: a stub row says its person's bytes are gone.
            self.rebuild_people(store)?;
            for (person, card) in newly.iter().zip(cards) {
                self.write_stub(store, person, card)?;
            }
            report.erased += newly.len();
        }
        Ok(report)
    }

    /// Writes what stays of an erased attendee (see `tessera_records::erased_stub`),
    /// from their erasure's sealed summary; nothing when it cannot be read here.
    /// `known`: the person's card (or stub) as held before, used when the erasure
    /// carries no readable stub (the network key's erasure carries none).
    fn write_stub(
        &mut self,
        store: &Store,
        person: &tessera_log::Person,
        known: Option<Record>,
    ) -> Result<()> {
        let erasure_doc = person.erasure_doc();
        let mut stub = None;
        if let Some(erasure) = store.erasure_of(person)? {
            let erased = tessera_records::Erased::new(&erasure.erased_on, erasure.reason);
            if let Opened::Change(json) = self.keys.open(&erasure_doc, &erasure.stub) {
                if let Ok(card) = serde_json::from_slice::<tessera_records::Attendee>(&json) {
                    stub = Some(tessera_records::erased_stub(&card, erased.clone()));
                }
            }
            if stub.is_none() {
                if let Some(Record::Attendee(card)) = known {
                    stub = Some(tessera_records::erased_stub(&card, erased));
                }
            }
        }
        let value = match stub {
            Some(stub) => serde_json::to_vec(&Record::Attendee(stub))?,
            None => b"null".to_vec(),
        };
        self.tree.insert(key(ERASED, &person.doc(RecordKind::Attendee.byte())), value)?;
        self.erased.insert(*person);
        Ok(())
    }

    /// Makes the people database again without the erased persons, and deletes the
    /// old one whole: the only way to be sure no sled page keeps them. Every other
    /// row is derived from the log already, so it is copied as it is (a fresh
    /// database, then swapped in by rename); the erased persons' rows are not.
    fn rebuild_people(&mut self, store: &Store) -> Result<()> {
        self.settled()?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::SetPeople { people: None, reply })?;
        answer.recv().map_err(|_| stopped())?;
        let old_tree = self.people.take().ok_or_else(|| {
            anyhow::Error::from(crate::msg::Said::new(
                "the people database is being rebuilt",
                "l'archivio delle persone è in ricostruzione",
            ))
        })?;
        let fresh_dir = self.people_dir.with_extension("new");
        let _ = std::fs::remove_dir_all(&fresh_dir);
        let copied = (|| -> Result<()> {
            let fresh = open_people(&fresh_dir)?;
            let mut batch = sled::Batch::default();
            let mut held = 0usize;
            for row in old_tree.iter() {
                let (k, v) = row?;
                let of_erased = k.get(1..17).is_some_and(|id| {
                    let mut doc = [0u8; 16];
                    doc.copy_from_slice(id);
                    erased_body(store, &DocId(doc))
                });
                if of_erased {
                    continue;
                }
                batch.insert(k, v);
                held += 1;
                if held >= DIRTY_DOCS_MAX * 8 {
                    fresh.apply_batch(std::mem::take(&mut batch))?;
                    held = 0;
                }
            }
            fresh.apply_batch(batch)?;
            fresh.flush()?;
            Ok(())
        })();
        // The old database closes with its last handle, whatever happened.
        drop(old_tree);
        if let Err(e) = copied {
            let _ = std::fs::remove_dir_all(&fresh_dir);
            // Reopen the old one: the reads keep working, and the erased persons'
            // bodies are not applied; the next catch-up tries again.
            let people = open_people(&self.people_dir)?;
            self.people = Some(people.clone());
            let (reply, answer) = mpsc::sync_channel(1);
            self.send(Job::SetPeople { people: Some(people), reply })?;
            answer.recv().map_err(|_| stopped())?;
            return Err(e).said(
                "the people database could not be made again without the erased persons",
                "l'archivio delle persone non è stato rifatto senza le persone cancellate",
            );
        }
        let old = self.people_dir.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&self.people_dir, &old).with_said(|| {
            let dir = self.people_dir.display();
            (format!("cannot move {dir} aside"), format!("non riesco a spostare da parte {dir}"))
        })?;
        std::fs::rename(&fresh_dir, &self.people_dir).with_said(|| {
            let dir = fresh_dir.display();
            (format!("cannot move {dir} in place"), format!("non riesco a mettere al suo posto {dir}"))
        })?;
        std::fs::remove_dir_all(&old).with_said(|| crate::msg::cannot("remove", &old))?;
        let people = open_people(&self.people_dir)?;
        self.people = Some(people.clone());
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::SetPeople { people: Some(people), reply })?;
        answer.recv().map_err(|_| stopped())?;
        tracing::info!("people database rebuilt after an erasure");
        Ok(())
    }

    fn people(&self) -> Result<&sled::Tree> {
        self.people.as_ref().ok_or_else(|| {
            anyhow::Error::from(crate::msg::Said::new(
                "the people database is being rebuilt",
                "l'archivio delle persone è in ricostruzione",
            ))
        })
    }

    /// The tree `doc` is kept in.
    fn tree_of(&self, doc: &DocId) -> Result<&sled::Tree> {
        if is_people(doc) {
            self.people()
        } else {
            Ok(&self.tree)
        }
    }

    /// The stub of an erased attendee, if `doc` is one.
    fn erased_record(&self, doc: &DocId) -> Result<Option<Record>> {
        match self.tree.get(key(ERASED, doc))? {
            None => Ok(None),
            Some(json) => Ok(serde_json::from_slice(&json)
                .said("damaged erased record", "scheda cancellata danneggiata")?),
        }
    }

    /// Every erased attendee's stub, by id.
    fn erased_records(&self) -> Result<BTreeMap<DocId, Record>> {
        let mut out = BTreeMap::new();
        for row in self.tree.scan_prefix([ERASED]) {
            let (k, v) = row?;
            let mut id = [0u8; 16];
            id.copy_from_slice(
                k.get(1..17).said("damaged erased record key", "chiave di scheda cancellata danneggiata")?,
            );
            if let Some(record) = serde_json::from_slice::<Option<Record>>(&v)
                .said("damaged erased record", "scheda cancellata danneggiata")?
            {
                out.insert(DocId(id), record);
            }
        }
        Ok(out)
    }

    /// Drops every document (the worker's and sled's) so the next catch-up applies the
    /// log from its start. `keep_keys`: the keys stay (they come from the same log and
    /// the same trust), else they are learned again too.
    fn restart(&mut self, store: &Store, keep_keys: bool) -> Result<()> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::Reset { reply })?;
        answer.recv().map_err(|_| stopped())?;
        // The stubs stay (written again below from the erasures; kept when those carry
        // none, as the network key's).
        let mut stubs: Vec<(sled::IVec, sled::IVec)> =
            self.tree.scan_prefix([ERASED]).collect::<Result<_, _>>()?;
        stubs.retain(|(k, _)| {
            k.get(1..17).is_some_and(|id| {
                let mut doc = [0u8; 16];
                doc.copy_from_slice(id);
                store.erased().contains(&tessera_log::Person::of(&DocId(doc)))
            })
        });
        self.erased.retain(|person| store.erased().contains(person));
        self.tree.clear()?;
        for (k, v) in stubs {
            self.tree.insert(k, v)?;
        }
        self.people()?.clear()?;
        // Their stubs are written again; their documents were deleted with the people
        // database when they were erased, and are not applied again (`erased_body`).
        self.restub.extend(self.erased.iter().copied());
        self.tree.insert(LOG_ID, &store.log_id())?;
        self.tree.insert(EPOCH, &epoch(store))?;
        if keep_keys {
            self.tree.insert(KEYS, self.keys.encode())?;
        } else {
            self.keys = Keys::new(store.network(), self.actor);
        }
        self.unreadable.clear();
        self.next = Some(store.log_start());
        Ok(())
    }

    /// Sorts the changes of one counted envelope: grants go to the keys, bodies are
    /// opened and queued for their documents. Returns whether a key arrived for a
    /// scope epoch met unreadable before.
    fn take_changes(
        &mut self,
        store: &Store,
        env: &Envelope,
        changes: &mut BTreeMap<DocId, Vec<Vec<u8>>>,
        report: &mut CatchUp,
    ) -> bool {
        let mut now_readable = false;
        for (doc, body) in env.present_changes() {
            if tessera_log::erasure::is_erasure_doc(&doc) {
                // Read when the store finds it counts (see `write_stub`); a new one may
                // change which erasure the stub comes from.
                self.restub.insert(tessera_log::Person::of(&doc));
                continue;
            }
            if erased_body(store, &doc) {
                // Whatever the log still holds (a scrub not finished yet).
                continue;
            }
            if let Some(held) = self.keys.learn_change(store.trust(), env, &doc, body, &self.secret) {
                now_readable |= held.iter().any(|scope_epoch| {
                    self.unreadable.contains(scope_epoch) || self.unreadable.len() >= UNREADABLE_MAX
                });
                continue;
            }
            report.changes += 1;
            match self.keys.open(&doc, body) {
                Opened::Change(change) => changes.entry(doc).or_default().push(change),
                Opened::NoKey => {
                    if let Ok(head) = tessera_seal::SealedHeader::parse(body) {
                        if self.unreadable.len() < UNREADABLE_MAX {
                            self.unreadable.insert((head.scope, head.epoch));
                        }
                    }
                }
                Opened::Forged(e) => {
                    tracing::warn!(doc = %doc, error = %e, "a sealed change does not open");
                    report.bad_changes += 1;
                }
            }
        }
        now_readable
    }

    /// The scope epochs of bodies met that this node holds no key for.
    pub fn unreadable_scopes(&self) -> Vec<(Scope, Epoch)> {
        self.unreadable.iter().copied().collect()
    }

    /// The read keys this node holds and knows of.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Waits for the worker to finish every job handed over, and with `write` to
    /// have written its documents to sled. Returns the malformed changes it met.
    fn settle(&self, write: bool) -> Result<u64> {
        if write && !self.unsettled.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::Settle { write, reply })?;
        let result = answer.recv().map_err(|_| stopped())?;
        match &result {
            Ok(_) if write => self.unsettled.store(false, Ordering::SeqCst),
            Ok(_) => {}
            Err(_) => self.lost.store(true, Ordering::SeqCst),
        }
        result
    }

    /// Brings sled up to date before a read.
    fn settled(&self) -> Result<()> {
        self.settle(true).map(|_| ())
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())
    }

    /// Writes everything to sled and stops the worker. Dropping the materializer
    /// does the same.
    pub fn close(&mut self) -> Result<()> {
        if self.jobs.is_none() {
            return Ok(());
        }
        let written = self.settled();
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                tracing::error!("the materializer thread panicked; documents catch up at the next open");
            }
        }
        written
    }

    /// The automerge document of `doc`, if any change of it was applied. Pending
    /// changes are not included (as stored).
    pub fn load(&self, doc: &DocId) -> Result<Option<RecordDoc>> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::Snapshot { doc: *doc, reply })?;
        let cached = answer.recv().map_err(|_| stopped())?.inspect_err(|_| {
            self.lost.store(true, Ordering::SeqCst);
        })?;
        match cached {
            Some(bytes) => {
                Ok(Some(RecordDoc::load(&bytes, tessera_records::actor_for(&self.actor)).with_said(
                    || (format!("document {doc} is damaged"), format!("il documento {doc} è danneggiato")),
                )?))
            }
            None => load_saved(self.tree_of(doc)?, &self.actor, doc),
        }
    }

    /// The current value of a record. An attendee comes with its personal details
    /// when they are readable here (see `tessera_records::join_attendee`); an erased
    /// one is its stub.
    pub fn record(&self, doc: &DocId) -> Result<Option<Record>> {
        self.settled()?;
        if let Some(stub) = self.erased_record(doc)? {
            return Ok(Some(stub));
        }
        match self.tree_of(doc)?.get(key(RECORD, doc))? {
            None => Ok(None),
            Some(json) => {
                let mut record = self.joined(
                    doc,
                    serde_json::from_slice(&json)
                        .said("damaged record index", "indice delle schede danneggiato")?,
                )?;
                if let Record::Attendee(a) = &mut record {
                    // Settled as in `records`: the person a chain or cycle of merges leads to.
                    if a.merged_into.is_some() {
                        let person = tessera_records::conflicts::person_of(*doc, |x| self.merged_into(x));
                        a.merged_into = (person != *doc).then_some(tessera_records::model::RecordRef(person));
                    }
                }
                Ok(Some(record))
            }
        }
    }

    /// `record` with its personal details, if an attendee.
    fn joined(&self, doc: &DocId, record: Record) -> Result<Record> {
        let Record::Attendee(card) = record else { return Ok(record) };
        let personal = match self.people()?.get(key(RECORD, &tessera_records::personal_doc_id(doc)))? {
            None => None,
            Some(json) => match serde_json::from_slice(&json)
                .said("damaged record index", "indice delle schede danneggiato")?
            {
                Record::Personal(personal) => Some(personal),
                _ => None,
            },
        };
        Ok(Record::Attendee(tessera_records::join_attendee(card, personal)))
    }

    /// Every record of `kind` in id order, erased attendees as their stubs.
    pub fn records(&self, kind: RecordKind) -> Result<Vec<(DocId, Record)>> {
        self.settled()?;
        let mut out = BTreeMap::new();
        let tree = if matches!(kind, RecordKind::Attendee | RecordKind::Personal) {
            self.people()?
        } else {
            &self.tree
        };
        for row in tree.scan_prefix([RECORD, kind.byte()]) {
            let (k, v) = row?;
            let mut id = [0u8; 16];
            id.copy_from_slice(
                k.get(1..17)
                    .said("damaged record index key", "chiave dell'indice delle schede danneggiata")?,
            );
            let id = DocId(id);
            out.insert(
                id,
                self.joined(
                    &id,
                    serde_json::from_slice(&v)
                        .said("damaged record index", "indice delle schede danneggiato")?,
                )?,
            );
        }
        if kind == RecordKind::Attendee {
            out.extend(self.erased_records()?);
        }
        let mut out: Vec<_> = out.into_iter().collect();
        if kind == RecordKind::Attendee {
            tessera_records::conflicts::settle_merges(&mut out);
        }
        Ok(out)
    }

    /// An attendee's `merged_into` as its card says, unsettled.
    fn merged_into(&self, doc: &DocId) -> Option<DocId> {
        let json = self.people().ok()?.get(key(RECORD, doc)).ok()??;
        match serde_json::from_slice(&json).ok()? {
            Record::Attendee(card) => card.merged_into.map(|m| m.id()),
            _ => None,
        }
    }

    /// How many records of `kind` there are (erased attendees included).
    pub fn count(&self, kind: RecordKind) -> Result<usize> {
        Ok(self.ids(kind)?.len())
    }

    /// The ids of every record of `kind` (keys only: nothing is decoded).
    fn ids(&self, kind: RecordKind) -> Result<BTreeSet<DocId>> {
        self.settled()?;
        let mut out = BTreeSet::new();
        let tree = if matches!(kind, RecordKind::Attendee | RecordKind::Personal) {
            self.people()?
        } else {
            &self.tree
        };
        let mut add = |prefix: [u8; 2], tree: &sled::Tree| -> Result<()> {
            for row in tree.scan_prefix(prefix).keys() {
                let k = row?;
                let mut id = [0u8; 16];
                id.copy_from_slice(
                    k.get(1..17)
                        .said("damaged record index key", "chiave dell'indice delle schede danneggiata")?,
                );
                out.insert(DocId(id));
            }
            Ok(())
        };
        add([RECORD, kind.byte()], tree)?;
        if kind == RecordKind::Attendee {
            add([ERASED, kind.byte()], &self.tree)?;
        }
        Ok(out)
    }

    /// Every record of every kind, attendees with their personal details when
    /// readable here (never listed apart).
    pub fn all_records(&self) -> Result<Vec<(DocId, Record)>> {
        let mut out = Vec::new();
        for kind in RecordKind::ALL {
            out.extend(self.records(kind)?);
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Ids of `kind` whose hex starts with `hex_prefix`.
    pub fn ids_with_prefix(&self, kind: RecordKind, hex_prefix: &str) -> Result<Vec<DocId>> {
        Ok(self.ids(kind)?.into_iter().filter(|id| hex::encode(id.0).starts_with(hex_prefix)).collect())
    }

    /// A digest of every materialized record value every hub reads (personal details
    /// left out: only their partner reads them), to compare two nodes.
    pub fn state_digest(&self) -> Result<String> {
        self.settled()?;
        let mut h = blake3::Hasher::new();
        // What every hub of the network reads: not the personal details, which only
        // the registering partner's hubs do.
        for tree in [&self.tree, self.people()?] {
            for row in tree.scan_prefix([RECORD]) {
                let (k, v) = row?;
                if k.get(1) == Some(&RecordKind::Personal.byte()) {
                    continue;
                }
                h.update(&k);
                h.update(&v);
            }
        }
        for row in self.tree.scan_prefix([ERASED]) {
            let (k, v) = row?;
            h.update(&k);
            h.update(&v);
        }
        Ok(h.finalize().to_hex().to_string())
    }
}

impl Drop for Materializer {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "materialized records could not be written; they catch up at the next open");
        }
    }
}

fn stopped() -> anyhow::Error {
    anyhow::Error::from(crate::msg::Said::new(
        "the materializer thread stopped",
        "il lavoro di aggiornamento delle schede si è fermato",
    ))
}

/// A document in the worker's cache.
struct Cached {
    doc: RecordDoc,
    /// Changed since it was last written to sled.
    dirty: bool,
    /// When it was last used, on the worker's job clock.
    used: u64,
}

/// The worker thread's state: the cache, and what it has not written yet.
struct Worker {
    tree: sled::Tree,
    people: Option<sled::Tree>,
    actor: DeviceKey,
    docs: HashMap<DocId, Cached>,
    /// Dirty documents in `docs`.
    dirty: usize,
    /// The log position the cached documents cover, if not written yet.
    applied: Option<LogPosition>,
    clock: u64,
    /// Malformed changes met since the last `Settle`.
    bad: u64,
    /// The error that stopped the work, reported at the next `Settle` or `Snapshot`.
    failed: Option<anyhow::Error>,
}

impl Worker {
    fn run(mut self, jobs: Receiver<Job>) {
        loop {
            let job = match jobs.recv_timeout(IDLE_WRITE_AFTER) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.write_or_fail();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.write_or_fail();
                    return;
                }
            };
            match job {
                Job::Apply { changes, cursor } => {
                    if self.failed.is_none() {
                        if let Err(e) = self.apply(changes, cursor) {
                            self.failed = Some(e);
                        }
                    }
                }
                Job::Settle { write, reply } => {
                    if write {
                        self.write_or_fail();
                    }
                    let _ = reply.send(self.take_outcome().map(|()| std::mem::take(&mut self.bad)));
                }
                Job::Snapshot { doc, reply } => {
                    let outcome =
                        self.take_outcome().map(|()| self.docs.get_mut(&doc).map(|cached| cached.doc.save()));
                    let _ = reply.send(outcome);
                }
                Job::Reset { reply } => {
                    self.reset();
                    self.failed = None;
                    let _ = reply.send(());
                }
                Job::SetPeople { people, reply } => {
                    // Written before (the caller settled): only the cache goes.
                    self.docs.retain(|doc, _| !is_people(doc));
                    self.dirty = self.docs.values().filter(|c| c.dirty).count();
                    self.people = people;
                    let _ = reply.send(());
                }
            }
        }
    }

    /// `Err` (once) if the work stopped; the unwritten work is then dropped.
    fn take_outcome(&mut self) -> Result<()> {
        match self.failed.take() {
            Some(e) => {
                self.reset();
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn reset(&mut self) {
        self.docs.clear();
        self.dirty = 0;
        self.applied = None;
    }

    /// The tree `doc` is kept in.
    fn tree_of(&self, doc: &DocId) -> Result<&sled::Tree> {
        if is_people(doc) {
            self.people.as_ref().ok_or_else(|| {
                anyhow::Error::from(crate::msg::Said::new(
                    "the people database is being rebuilt",
                    "l'archivio delle persone è in ricostruzione",
                ))
            })
        } else {
            Ok(&self.tree)
        }
    }

    fn apply(&mut self, changes: BTreeMap<DocId, Vec<Vec<u8>>>, cursor: LogPosition) -> Result<()> {
        for (doc, bodies) in changes {
            self.clock += 1;
            let tree = self.tree_of(&doc)?.clone();
            let cached = match self.docs.entry(doc) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let mut document = load_saved(&tree, &self.actor, &doc)?
                        .unwrap_or_else(|| RecordDoc::empty(tessera_records::actor_for(&self.actor)));
                    if let Some(pending) = tree.get(key(PENDING, &doc))? {
                        for body in decode_list(&pending) {
                            let _ = document.apply_change(&body);
                        }
                    }
                    e.insert(Cached { doc: document, dirty: false, used: 0 })
                }
            };
            for body in &bodies {
                if let Err(e) = cached.doc.apply_change(body) {
                    tracing::warn!(doc = %doc, error = %e, "a change could not be applied to its document");
                    self.bad += 1;
                }
            }
            cached.used = self.clock;
            if !cached.dirty {
                cached.dirty = true;
                self.dirty += 1;
            }
        }
        self.applied = Some(cursor);
        if self.dirty >= DIRTY_DOCS_MAX {
            self.write()?;
        }
        Ok(())
    }

    fn write_or_fail(&mut self) {
        if self.failed.is_none() {
            if let Err(e) = self.write() {
                self.failed = Some(e);
            }
        }
    }

    /// Writes every dirty document (its bytes, pending changes and JSON value) and the
    /// cursor they cover in one sled batch, then trims the cache.
    fn write(&mut self) -> Result<()> {
        let Some(cursor) = self.applied else { return Ok(()) };
        let mut main = sled::Batch::default();
        let mut people = sled::Batch::default();
        for (doc, cached) in self.docs.iter_mut().filter(|(_, c)| c.dirty) {
            let batch = if is_people(doc) { &mut people } else { &mut main };
            let document = &mut cached.doc;
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
        }
        // People first: their tree may run ahead of the main cursor, never behind.
        people.insert(PEOPLE_CURSOR, &encode_position(cursor));
        self.people
            .as_ref()
            .ok_or_else(|| {
                anyhow::Error::from(crate::msg::Said::new(
                    "the people database is being rebuilt",
                    "l'archivio delle persone è in ricostruzione",
                ))
            })?
            .apply_batch(people)?;
        main.insert(CURSOR, &encode_position(cursor));
        self.tree.apply_batch(main)?;
        for cached in self.docs.values_mut() {
            cached.dirty = false;
        }
        self.dirty = 0;
        self.applied = None;
        if self.docs.len() > CACHE_DOCS_MAX {
            let mut used: Vec<u64> = self.docs.values().map(|c| c.used).collect();
            let drop = self.docs.len() - CACHE_DOCS_MAX * 3 / 4;
            let (_, threshold, _) = used.select_nth_unstable(drop - 1);
            let threshold = *threshold;
            self.docs.retain(|_, c| c.used > threshold);
        }
        Ok(())
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
