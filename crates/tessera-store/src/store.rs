//! The store of a node or relay: the envelope log (the truth) plus what is derived
//! from it.
//!
//! Every entry goes through [`Store::ingest`]: it is verified against the trust state
//! and its author's chain, appended to the log with one fsync for the whole batch, and
//! only then applied to sled and to the in-memory heads and trust state. A call that
//! returns `Ok` has made its entries durable. sled is a cache of the log: on open it
//! is caught up from the log, and rebuilt from scratch when it is missing, damaged or
//! belongs to another log.
//!
//! Directory layout: `network` (the network id in hex), `log/` (segment files),
//! `derived/` (sled).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tessera_log::{
    admit, fork_point, Admission, DeviceKey, DocId, Envelope, EnvelopeId, Head, LogEntry, LogView, NetworkId,
    NewChange, SecretKey, Seq, Staging, Timestamp, TrustEntry, TrustState, VerifyError, VersionVector,
};

use crate::derived::{self, LAYOUT_VERSION};
use crate::error::StoreError;
use crate::segments::{
    DamagedRange, LogId, LogPosition, OpenReport, RecordLocation, SegmentLimits, SegmentLog, UnreadTail,
};

/// Most entries one [`Store::ingest`] call takes (bounds the memory of one batch).
pub const INGEST_ENTRIES_MAX: usize = 10_000;
/// Most records read and applied at a time while catching up.
const REPLAY_BATCH_RECORDS: usize = 4096;
/// Derived rows buffered in memory before they are written to sled in one batch.
pub const DERIVED_BUFFER_ROWS_MAX: usize = 8192;

mod erase;
pub use erase::ScrubReport;

const NETWORK_FILE: &str = "network";
const LOG_DIR: &str = "log";
const DERIVED_DIR: &str = "derived";

/// What to do with the valid entries of a batch when one entry is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Store nothing from the batch (a sync session: a bad envelope ends it). An
    /// envelope past its author's revocation is not bad, only late news for its
    /// sender: it is left out and the rest stored.
    AllOrNothing,
    /// Store every valid entry; an author's envelopes after a refused one are refused
    /// too, since they no longer follow its chain (an import from a bundle).
    SkipInvalid,
}

pub use tessera_log::Fork;

/// An entry of a batch that was refused, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub error: VerifyError,
}

/// What [`Store::ingest`] did with a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Envelopes that extended a chain, in batch order.
    pub appended: Vec<(DeviceKey, Seq)>,
    /// New trust entries.
    pub trust_added: usize,
    /// Entries already held.
    pub duplicates: usize,
    /// Envelopes kept as fork evidence.
    pub evidence_added: usize,
    /// Envelopes held without some of their bodies (stripped by a carrier) whose
    /// bodies this batch brought back, each written again whole.
    pub bodies_filled: Vec<(DeviceKey, Seq)>,
    /// Forks this batch revealed, each once; the conflicting envelopes are kept as
    /// evidence.
    pub forks: Vec<Fork>,
    /// Refused entries (only with [`Policy::SkipInvalid`]).
    pub rejected: Vec<Rejected>,
    /// Envelopes past their author's revocation, left out without refusing the batch
    /// (only with [`Policy::AllOrNothing`]; see [`VerifyError::is_past_revocation`]).
    pub past_revocation: usize,
    /// Persons whose erasure became effective with this batch (their bodies removed
    /// from the log).
    pub erased: usize,
}

impl IngestReport {
    /// Number of entries written to the log.
    pub fn written(&self) -> usize {
        self.appended.len() + self.trust_added + self.evidence_added + self.bodies_filled.len()
    }
}

/// What happened to the derived state when the store opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DerivedStatus {
    /// sled was already up to date with the log.
    UpToDate,
    /// sled lagged behind the log and was caught up.
    CaughtUp { records: u64 },
    /// sled was missing, damaged or foreign and was rebuilt from the log.
    Rebuilt { reason: String, records: u64 },
}

/// A log record that could not be applied while replaying (a damaged or edited log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRecord {
    pub at: LogPosition,
    pub reason: String,
}

/// What [`Store::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOpenReport {
    pub log: OpenReport,
    pub derived: DerivedStatus,
    pub skipped: Vec<SkippedRecord>,
}

/// One accepted entry, ready to be applied.
#[derive(Debug)]
enum Effect {
    Chain {
        author: DeviceKey,
        seq: Seq,
        id: EnvelopeId,
        docs: Vec<DocId>,
        complete: bool,
    },
    /// A held envelope whose missing bodies arrived: the merged copy is written again.
    Fill {
        envelope: Box<Envelope>,
    },
    ForkEvidence {
        fork: Fork,
        seq: Seq,
        id: EnvelopeId,
    },
    Trust {
        entry: Box<TrustEntry>,
    },
}

/// An open store. Holds the store's lock until dropped.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    network: NetworkId,
    log: SegmentLog,
    db: sled::Db,
    tree: sled::Tree,
    trust: TrustState,
    heads: VersionVector,
    forks: BTreeSet<Fork>,
    /// sled missed rows (its write failed after the log was durable); it is
    /// reloaded and caught up before the next write.
    derived_lagging: bool,
    /// Derived rows of durable records not yet written to sled, newest value per key,
    /// and the log position they cover. Reads look here first. sled 0.34 makes every
    /// batch stable on disk before returning, which would double the cost of each
    /// durable append; buffering keeps it off the write path. Losing this buffer in a
    /// crash only means replaying a few records from the log at the next open.
    /// `None` removes the row.
    pending_rows: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pending_applied: Option<LogPosition>,
    /// The log's damaged ranges, and what each held where that could be read.
    damage: Vec<Damage>,
    /// The last seq each device signing here ([`Store::append_local`]) had durable in
    /// the log, kept beside it (`signed`): a log whose last record was damaged is cut
    /// like a torn write, and without this mark the device could sign that seq again.
    signed: BTreeMap<DeviceKey, Seq>,
    /// Persons whose erasure is effective here (see [`erase`]).
    erased: BTreeSet<tessera_log::Person>,
}

/// A damaged range of the log (see [`DamagedRange`]) and what it held, as far as the
/// damaged bytes still tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub range: DamagedRange,
    pub held: DamagedEntry,
}

/// What a damaged record was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DamagedEntry {
    /// An envelope whose signed header still verifies: its author and seq are known,
    /// and a copy from any peer fills its place.
    Envelope { author: DeviceKey, seq: Seq },
    /// A trust entry (trust travels in every session and bundle: it comes back).
    Trust,
    /// Unreadable: it may have been any entry, this device's own included.
    Unknown,
}

/// Why this device may not sign now: signing could reuse a seq it signed before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningBlocked {
    /// Seqs of this device below its head are missing from the log (lost to damage).
    OwnHoles { seqs: Vec<Seq> },
    /// A damaged record was this device's envelope and no copy has arrived yet.
    OwnEnvelopeDamaged { seq: Seq },
    /// A damaged record after this device's last envelope could not be read: it may be
    /// a newer one. Until a peer gives it back, or the operator has synced with every
    /// peer and reviewed it ([`Store::accept_unknown_damage`]), the device does not sign.
    UnknownDamageAfterOwnHead { at: LogPosition },
    /// This device signed up to `seq` here, and the log ends before it: its last
    /// record was damaged and cut as a torn write. Until a peer gives the envelopes
    /// back, or the operator reviewed it ([`Store::accept_unknown_damage`]), the device
    /// does not sign.
    SignedBeyondLog { seq: Seq },
}

impl std::fmt::Display for SigningBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningBlocked::OwnHoles { seqs } => {
                let list: Vec<String> = seqs.iter().map(|s| s.0.to_string()).collect();
                write!(f, "this device's changes {} are missing from the damaged log", list.join(", "))
            }
            SigningBlocked::OwnEnvelopeDamaged { seq } => {
                write!(f, "this device's change {} is damaged in the log", seq.0)
            }
            SigningBlocked::UnknownDamageAfterOwnHead { at } => {
                write!(f, "an unreadable record at {at} may be a newer change of this device")
            }
            SigningBlocked::SignedBeyondLog { seq } => {
                write!(
                    f,
                    "this device signed changes up to {}, and the log ends before (its end was damaged)",
                    seq.0
                )
            }
        }
    }
}

/// Envelopes of the batch being classified that lack bodies, as admitted or filled so
/// far, so that a later copy in the same batch fills the newest state.
type BatchBodies = HashMap<(DeviceKey, Seq), Envelope>;

impl Store {
    /// Opens the store in `dir`. With `network`, creates the store if needed and
    /// checks that an existing one belongs to that network; without, the store must
    /// exist.
    pub fn open(dir: &Path, network: Option<NetworkId>) -> Result<(Store, StoreOpenReport), StoreError> {
        let network_path = dir.join(NETWORK_FILE);
        let stored = read_network_file(&network_path)?;
        let network = match (stored, network) {
            (Some(found), Some(expected)) if found != expected => {
                return Err(StoreError::WrongNetwork { dir: dir.to_path_buf(), expected, found })
            }
            (Some(found), _) => found,
            (None, Some(expected)) => expected,
            (None, None) => return Err(StoreError::NotInitialized { dir: dir.to_path_buf() }),
        };
        fs::create_dir_all(dir).map_err(StoreError::io("create the store directory", dir))?;
        let mut log_id = [0u8; 16];
        getrandom::getrandom(&mut log_id).map_err(|e| StoreError::Random(e.to_string()))?;
        let (log, log_report) =
            match SegmentLog::open(&dir.join(LOG_DIR), SegmentLimits::default(), LogId(log_id)) {
                Ok(opened) => opened,
                Err(crate::segments::SegmentError::Locked { .. }) => {
                    return Err(StoreError::InUse { dir: dir.to_path_buf() })
                }
                Err(e) => return Err(e.into()),
            };
        if stored.is_none() {
            write_network_file(&network_path, &network)?;
        }
        let derived_path = dir.join(DERIVED_DIR);
        let (db, rebuild_reason) = match open_sled(&derived_path) {
            Ok(db) => (db, None),
            Err(e) => {
                // A damaged sled is only a cache: deleted (not kept aside: it may hold
                // what an erasure removed since, or attendees of an older release) and
                // rebuilt.
                let reason = format!("the derived database could not be opened ({e})");
                tracing::warn!(%reason, "rebuilding derived state from the log");
                let _ = fs::remove_dir_all(dir.join(format!("{DERIVED_DIR}.damaged")));
                fs::remove_dir_all(&derived_path)
                    .map_err(StoreError::io("delete the damaged derived database", &derived_path))?;
                (open_sled(&derived_path)?, Some(reason))
            }
        };
        // Before layout 4 the derived database also held attendees in clear (the
        // materializer's rows): deleted whole, not cleared, so no old page keeps them.
        let (db, rebuild_reason) = match db.get(derived::META_LAYOUT)? {
            Some(layout)
                if derived::decode_layout(&layout).is_some_and(|l| l < derived::LAYOUT_PEOPLE_APART) =>
            {
                drop(db);
                fs::remove_dir_all(&derived_path).map_err(StoreError::io(
                    "delete the derived database of an older release",
                    &derived_path,
                ))?;
                let reason =
                    "the derived database was written by an older release (deleted, rebuilt)".to_string();
                (open_sled(&derived_path)?, rebuild_reason.or(Some(reason)))
            }
            _ => (db, rebuild_reason),
        };
        let mut rebuild_reason = rebuild_reason;
        let tree: sled::Tree = (*db).clone();
        let mut store = Store {
            dir: dir.to_path_buf(),
            network,
            log,
            db,
            tree,
            trust: TrustState::new(network),
            heads: VersionVector::new(),
            forks: BTreeSet::new(),
            derived_lagging: false,
            pending_rows: BTreeMap::new(),
            pending_applied: None,
            damage: Vec::new(),
            signed: read_signed(&dir.join(SIGNED_FILE)),
            erased: BTreeSet::new(),
        };
        if rebuild_reason.is_none() {
            rebuild_reason = store.check_derived();
        }
        if let Some(reason) = &rebuild_reason {
            store.reset_derived()?;
            tracing::info!(%reason, "derived state will be rebuilt from the log");
        }
        if let Some(reason) = store.load_derived()? {
            rebuild_reason.get_or_insert(format!("the derived database is inconsistent ({reason})"));
        }
        let (records, skipped) = store.catch_up()?;
        store.refresh_erasures()?;
        store.damage = store.identify_damage()?;
        let derived = match (rebuild_reason, records) {
            (Some(reason), records) => DerivedStatus::Rebuilt { reason, records },
            (None, 0) => DerivedStatus::UpToDate,
            (None, records) => DerivedStatus::CaughtUp { records },
        };
        Ok((store, StoreOpenReport { log: log_report, derived, skipped }))
    }

    /// Returns why the derived state cannot be trusted, or `None` if it can.
    fn check_derived(&self) -> Option<String> {
        let get = |key: &[u8]| self.tree.get(key).ok().flatten();
        let Some(log_id) = get(derived::META_LOG_ID) else {
            return Some("the derived database is new or empty".into());
        };
        if log_id.as_ref() != self.log.log_id().0 {
            return Some("the derived database belongs to another log".into());
        }
        if get(derived::META_LAYOUT).as_deref() != Some(&LAYOUT_VERSION.to_be_bytes()[..]) {
            return Some("the derived database has another layout version".into());
        }
        if get(derived::META_DAMAGE).as_deref().unwrap_or_default()
            != derived::encode_damage(self.log.damaged())
        {
            // Rows may point into bytes found damaged since: replay what the log holds.
            return Some("damage was found in the log".into());
        }
        let applied = get(derived::META_APPLIED).and_then(|v| derived::decode_position(&v));
        match applied {
            Some(at) if at <= self.log.end() => None,
            Some(_) => Some("the derived database is ahead of the log".into()),
            None if self.tree.scan_prefix([derived::HEAD]).next().is_none() => None,
            None => Some("the derived database has rows but no applied marker".into()),
        }
    }

    /// Empties every derived tree, the store's own and those of higher layers
    /// ([`Store::derived_tree`]), so that each is rebuilt from the log: a layer must
    /// never keep state derived from records this log no longer holds.
    fn reset_derived(&mut self) -> Result<(), StoreError> {
        for name in self.db.tree_names() {
            if name.starts_with(DERIVED_TREE_PREFIX.as_bytes()) {
                self.db.open_tree(&name)?.clear()?;
            }
        }
        self.tree.clear()?;
        self.tree.insert(derived::META_LOG_ID, &self.log.log_id().0)?;
        self.tree.insert(derived::META_LAYOUT, &LAYOUT_VERSION.to_be_bytes())?;
        self.tree.insert(derived::META_DAMAGE, derived::encode_damage(self.log.damaged()))?;
        self.pending_rows.clear();
        self.pending_applied = None;
        Ok(())
    }

    /// What each damaged range of the log held, read from the damaged bytes as far as
    /// they go: an envelope counts as identified only when its signature verifies.
    fn identify_damage(&self) -> Result<Vec<Damage>, StoreError> {
        let mut out = Vec::new();
        for range in self.log.damaged() {
            let bytes = self.log.read_damaged(range)?;
            let payload = bytes.get(8..).unwrap_or_default();
            let claimed = bytes.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let payload = payload.get(..claimed).unwrap_or(payload);
            let held = match LogEntry::decode(payload) {
                Ok(LogEntry::Envelope(env)) if self.trust.verify_envelope_signature(&env).is_ok() => {
                    DamagedEntry::Envelope { author: env.author(), seq: env.seq() }
                }
                // A trust entry this trust state takes (or holds) is genuine.
                Ok(LogEntry::Trust(entry)) if self.trust.clone().add(entry.clone()).is_ok() => {
                    DamagedEntry::Trust
                }
                _ => DamagedEntry::Unknown,
            };
            out.push(Damage { range: range.clone(), held });
        }
        Ok(out)
    }

    /// The damaged ranges of the log and what they held.
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// Seqs below their author's head that the log lost to damage and no copy has
    /// filled yet (at most `limit`), in key order.
    pub fn holes(&self, limit: usize) -> Result<Vec<(DeviceKey, Seq)>, StoreError> {
        let mut out = Vec::new();
        for key in self.rows_with_prefix(&[derived::HOLE])?.into_keys().take(limit) {
            out.push(
                derived::decode_author_seq(&key)
                    .ok_or_else(|| StoreError::CorruptDerived("bad hole row".into()))?,
            );
        }
        Ok(out)
    }

    /// Whether `author` (this node's device) may sign its next envelope: never while
    /// its own chain in this log may be incomplete, so it never signs a seq twice.
    pub fn signing_blocked(&self, author: &DeviceKey) -> Result<Option<SigningBlocked>, StoreError> {
        if let Some(&signed) = self.signed.get(author) {
            if self.heads.get(author).is_none_or(|head| head.seq < signed) {
                return Ok(Some(SigningBlocked::SignedBeyondLog { seq: signed }));
            }
        }
        if self.damage.is_empty() {
            return Ok(None);
        }
        let own_holes: Vec<Seq> =
            self.holes(usize::MAX)?.into_iter().filter(|(a, _)| a == author).map(|(_, s)| s).collect();
        if !own_holes.is_empty() {
            return Ok(Some(SigningBlocked::OwnHoles { seqs: own_holes }));
        }
        let head_at = match self.heads.get(author) {
            Some(head) => self
                .row(&derived::chain_key(author, head.seq))?
                .and_then(|v| derived::decode_chain(&v))
                .map(|(at, _)| at.start()),
            None => None,
        };
        let reviewed = self.reviewed_damage()?;
        for damage in &self.damage {
            match damage.held {
                DamagedEntry::Envelope { author: a, seq }
                    if a == *author && self.chain_id(author, seq)?.is_none() =>
                {
                    return Ok(Some(SigningBlocked::OwnEnvelopeDamaged { seq }));
                }
                DamagedEntry::Unknown => {
                    let at = damage.range.start_position();
                    if head_at.is_none_or(|head| at > head) && !reviewed.contains(&at) {
                        return Ok(Some(SigningBlocked::UnknownDamageAfterOwnHead { at }));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Records that the operator has synced with every peer and relay that could hold
    /// this device's changes, so the unreadable records left cannot be newer changes
    /// of it: signing resumes. Returns how many were reviewed.
    pub fn accept_unknown_damage(&mut self) -> Result<usize, StoreError> {
        let unknown: Vec<LogPosition> = self
            .damage
            .iter()
            .filter(|d| d.held == DamagedEntry::Unknown)
            .map(|d| d.range.start_position())
            .collect();
        // What this device signed past the log's end is reviewed too.
        let authors: Vec<DeviceKey> = self.signed.keys().copied().collect();
        for author in authors {
            match self.heads.get(&author) {
                Some(head) => self.signed.insert(author, head.seq),
                None => self.signed.remove(&author),
            };
        }
        write_signed(&self.dir.join(SIGNED_FILE), &self.signed)?;
        let text: String = unknown.iter().map(|at| format!("{} {}\n", at.segment, at.offset)).collect();
        let path = self.dir.join(DAMAGE_REVIEWED_FILE);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).map_err(StoreError::io("write", &tmp))?;
        fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(StoreError::io("sync", &tmp))?;
        fs::rename(&tmp, &path).map_err(StoreError::io("rename", &path))?;
        Ok(unknown.len())
    }

    fn reviewed_damage(&self) -> Result<BTreeSet<LogPosition>, StoreError> {
        let path = self.dir.join(DAMAGE_REVIEWED_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|line| {
                let (segment, offset) = line.split_once(' ')?;
                Some(LogPosition { segment: segment.parse().ok()?, offset: offset.parse().ok()? })
            })
            .collect())
    }

    /// Loads heads, trust entries and forks from sled, checking each head against the
    /// log. Any inconsistency wipes sled so that the caller replays from the start.
    /// Returns why sled had to be wiped, if it had to.
    fn load_derived(&mut self) -> Result<Option<String>, StoreError> {
        match self.try_load_derived() {
            Ok(()) => Ok(None),
            Err(reason) => {
                tracing::warn!(%reason, "derived state is inconsistent; rebuilding from the log");
                self.reset_derived()?;
                self.trust = TrustState::new(self.network);
                self.heads = VersionVector::new();
                self.forks.clear();
                Ok(Some(reason))
            }
        }
    }

    fn try_load_derived(&mut self) -> Result<(), String> {
        let mut trust_entries = Vec::new();
        for row in self.tree.scan_prefix([derived::TRUST]) {
            let (_, value) = row.map_err(|e| e.to_string())?;
            let at = derived::decode_location(&value).ok_or("bad trust row")?;
            match self.read_entry(at).map_err(|e| e.to_string())? {
                LogEntry::Trust(entry) => trust_entries.push(entry),
                LogEntry::Envelope(_) => return Err("a trust row points at an envelope".into()),
            }
        }
        trust_entries.sort_by_key(TrustEntry::dependency_rank);
        let mut trust = TrustState::new(self.network);
        for entry in trust_entries {
            trust.add(entry).map_err(|e| format!("stored trust entry no longer verifies: {e}"))?;
        }
        let mut heads = VersionVector::new();
        for row in self.tree.scan_prefix([derived::HEAD]) {
            let (key, value) = row.map_err(|e| e.to_string())?;
            let author = derived::array_at::<32>(&key, 1)
                .and_then(|b| DeviceKey::from_bytes(b).ok())
                .ok_or("bad head key")?;
            let head = derived::decode_head(&value).ok_or("bad head row")?;
            // The head must point at a readable envelope with that id.
            let (at, id) = self
                .tree
                .get(derived::chain_key(&author, head.seq))
                .map_err(|e| e.to_string())?
                .and_then(|v| derived::decode_chain(&v))
                .ok_or("a head has no chain row")?;
            match self.read_entry(at).map_err(|e| e.to_string())? {
                LogEntry::Envelope(env) if env.id() == id && id == head.id => {}
                _ => return Err("a head does not match the log".into()),
            }
            heads.advance(author, head);
        }
        let mut forks = BTreeSet::new();
        for row in self.tree.scan_prefix([derived::FORK]) {
            let (_, value) = row.map_err(|e| e.to_string())?;
            let at = derived::decode_location(&value).ok_or("bad fork row")?;
            let LogEntry::Envelope(env) = self.read_entry(at).map_err(|e| e.to_string())? else {
                return Err("a fork row points at a trust entry".into());
            };
            forks.insert(self.fork_of(&env).ok_or("a fork row does not describe a fork")?);
        }
        self.trust = trust;
        self.heads = heads;
        self.forks = forks;
        Ok(())
    }

    /// The fork an evidence envelope proves, given the chain held.
    fn fork_of(&self, env: &Envelope) -> Option<Fork> {
        let author = env.author();
        let held_at = |seq: Seq| self.chain_id(&author, seq).ok().flatten();
        match held_at(env.seq()) {
            Some(held) if held != env.id() => Some(fork_point(author, env.seq(), held, env, held_at)),
            _ => {
                let prev_seq = Seq(env.seq().0.checked_sub(1)?);
                let held = held_at(prev_seq)?;
                (held != env.prev()).then_some(Fork { author, seq: prev_seq, held, other: env.prev() })
            }
        }
    }

    /// Applies log records that sled has not seen yet. Returns how many were applied
    /// and those that had to be skipped.
    fn catch_up(&mut self) -> Result<(u64, Vec<SkippedRecord>), StoreError> {
        let mut position = self
            .pending_applied
            .map(Ok)
            .or_else(|| {
                self.tree.get(derived::META_APPLIED).transpose().map(|r| {
                    r.map_err(StoreError::from).and_then(|v| {
                        derived::decode_position(&v)
                            .ok_or_else(|| StoreError::CorruptDerived("bad applied marker".into()))
                    })
                })
            })
            .transpose()?
            .unwrap_or_else(|| self.log.start());
        let mut applied_count = 0u64;
        let mut skipped = Vec::new();
        loop {
            // Read a bounded chunk, then apply it: memory stays bounded whatever the
            // size of the log.
            let mut batch: Vec<(RecordLocation, LogEntry)> = Vec::new();
            let mut next = position;
            for item in self.log.iter_from(position).take(REPLAY_BATCH_RECORDS) {
                let (at, bytes) = item?;
                next = at.end();
                match LogEntry::decode(&bytes) {
                    Ok(entry) => batch.push((at, entry)),
                    Err(e) => skipped.push(SkippedRecord { at: at.start(), reason: e.to_string() }),
                }
            }
            if next == position {
                break;
            }
            applied_count += self.replay(batch, next, &mut skipped)?;
            position = next;
        }
        for s in &skipped {
            tracing::error!(at = %s.at, reason = %s.reason, "log record skipped while replaying");
        }
        self.derived_lagging = false;
        self.flush_derived()?;
        Ok((applied_count, skipped))
    }

    /// Re-verifies and applies records read back from the log, in log order.
    fn replay(
        &mut self,
        records: Vec<(RecordLocation, LogEntry)>,
        applied_to: LogPosition,
        skipped: &mut Vec<SkippedRecord>,
    ) -> Result<u64, StoreError> {
        let mut staging = Staging::replaying();
        let mut bodies = BatchBodies::new();
        let mut effects = Vec::with_capacity(records.len());
        for (at, entry) in records {
            match self.classify(&mut staging, &mut bodies, &entry) {
                Ok(Some(effect)) => effects.push((at, effect)),
                Ok(None) => {}
                Err(e) => skipped.push(SkippedRecord { at: at.start(), reason: e.to_string() }),
            }
        }
        let count = effects.len() as u64;
        self.apply(staging, effects, applied_to)?;
        Ok(count)
    }

    /// Verifies `entries`, appends the accepted ones to the log with one fsync, then
    /// updates the derived state. Returns once the entries are durable.
    pub fn ingest(&mut self, entries: &[LogEntry], policy: Policy) -> Result<IngestReport, StoreError> {
        if entries.len() > INGEST_ENTRIES_MAX {
            return Err(StoreError::BatchTooLarge { len: entries.len(), max: INGEST_ENTRIES_MAX });
        }
        if self.derived_lagging {
            // The in-memory state ran ahead of sled when its write failed: reload it
            // from sled so that replaying the missed records re-derives their rows.
            self.pending_rows.clear();
            self.pending_applied = None;
            self.load_derived()?;
            self.catch_up()?;
            // Erasures in what was missed count from now on.
            self.refresh_erasures()?;
        }
        let mut staging = Staging::default();
        let mut bodies = BatchBodies::new();
        let mut report = IngestReport::default();
        let mut effects = Vec::new();
        let mut records = Vec::new();
        let mut added_docs: BTreeSet<DocId> = BTreeSet::new();
        for (index, entry) in entries.iter().enumerate() {
            // An erased person's bodies are refused on arrival, from any copy.
            let stripped = self.without_erased_bodies(entry);
            let entry = stripped.as_ref().unwrap_or(entry);
            match self.classify(&mut staging, &mut bodies, entry) {
                Ok(None) => report.duplicates += 1,
                Ok(Some(effect)) => {
                    if let LogEntry::Envelope(env) = entry {
                        added_docs.extend(env.changes().iter().map(|c| c.doc));
                    }
                    match &effect {
                        Effect::Chain { author, seq, .. } => report.appended.push((*author, *seq)),
                        Effect::Fill { envelope } => {
                            report.bodies_filled.push((envelope.author(), envelope.seq()));
                        }
                        Effect::ForkEvidence { fork, .. } => {
                            report.evidence_added += 1;
                            if !self.forks.contains(fork) && !report.forks.contains(fork) {
                                report.forks.push(*fork);
                            }
                        }
                        Effect::Trust { .. } => report.trust_added += 1,
                    }
                    records.push(match &effect {
                        Effect::Fill { envelope } => LogEntry::Envelope((**envelope).clone()).encode(),
                        _ => entry.encode(),
                    });
                    effects.push(effect);
                }
                Err(error) => match policy {
                    Policy::AllOrNothing if error.is_past_revocation() => report.past_revocation += 1,
                    Policy::AllOrNothing => return Err(StoreError::Rejected { index, error }),
                    Policy::SkipInvalid => report.rejected.push(Rejected { index, error }),
                },
            }
        }
        if records.is_empty() {
            return Ok(report);
        }
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let locations = self.log.append_batch(&slices)?;
        debug_assert_eq!(locations.len(), effects.len());
        let end = self.log.end();
        let effects: Vec<(RecordLocation, Effect)> = locations.into_iter().zip(effects).collect();
        // The entries are durable from here on: a failure to update sled is reported
        // in the logs and repaired from the log, never returned as a failed write.
        if let Err(e) = self.apply(staging, effects, end) {
            tracing::error!(error = %e, "derived state update failed after a durable write; will catch up");
        } else {
            let trust_or_forks_changed = report.trust_added > 0 || !report.forks.is_empty();
            match self.erasures_after_batch(&added_docs, trust_or_forks_changed) {
                Ok(scrubbed) => report.erased = scrubbed.map(|s| s.persons).unwrap_or(0),
                // The erasure is durable and its bodies refused from now on; those still
                // in the log are removed at the next open.
                Err(e) => tracing::error!(error = %e, "erased bodies could not be removed from the log yet"),
            }
        }
        for fork in &report.forks {
            tracing::warn!(author = %fork.author.short(), seq = %fork.seq, "fork detected: a device signed two histories");
        }
        Ok(report)
    }

    /// Decides what to do with one entry, given the committed state and the batch so
    /// far (the shared rules of [`tessera_log::admit`]). `Ok(None)`: already held.
    fn classify(
        &self,
        staging: &mut Staging,
        bodies: &mut BatchBodies,
        entry: &LogEntry,
    ) -> Result<Option<Effect>, VerifyError> {
        Ok(match (admit(self, staging, entry)?, entry) {
            (Admission::Duplicate, LogEntry::Envelope(env)) => self.fill_bodies(bodies, env),
            (Admission::Duplicate, _) => None,
            (Admission::Trust, LogEntry::Trust(trust_entry)) => {
                Some(Effect::Trust { entry: Box::new(trust_entry.clone()) })
            }
            (Admission::Chain { author, seq, id }, LogEntry::Envelope(env)) => {
                let docs = env.changes().iter().map(|c| c.doc).collect();
                let complete = !self.lacks_wanted_bodies(env);
                if !complete {
                    bodies.insert((author, seq), env.clone());
                }
                Some(Effect::Chain { author, seq, id, docs, complete })
            }
            (Admission::ForkEvidence { fork, seq, id }, _) => Some(Effect::ForkEvidence { fork, seq, id }),
            // `admit` names a trust entry Trust and an envelope Chain, never the reverse.
            (Admission::Trust | Admission::Chain { .. }, _) => None,
        })
    }

    /// A copy of an envelope already held in the chain: when the held one lacks bodies
    /// this copy carries (admission checked them against the signed commitments), the
    /// merged envelope, to be written again. A carrier can strip bodies, never keep
    /// them stripped: any copy that has them brings them back.
    fn fill_bodies(&self, bodies: &mut BatchBodies, env: &Envelope) -> Option<Effect> {
        let key = (env.author(), env.seq());
        if env.bodies().iter().all(|b| matches!(b, tessera_log::Body::Absent)) {
            return None;
        }
        let mut held = match bodies.get(&key) {
            Some(held) => held.clone(),
            None => {
                self.row(&derived::bodies_missing_key(&key.0, key.1)).ok().flatten()?;
                match self.get(&key.0, key.1) {
                    Ok(Some(held)) => held,
                    Ok(None) => return None,
                    Err(e) => {
                        // Left as it is: a later copy fills it once the log reads again.
                        tracing::warn!(error = %e, "could not read an envelope held without its bodies");
                        return None;
                    }
                }
            }
        };
        if held.fill_bodies_from(env) == 0 {
            return None;
        }
        bodies.insert(key, held.clone());
        Some(Effect::Fill { envelope: Box::new(held) })
    }

    /// Writes the effects of durable records to sled in one atomic batch with the
    /// `applied` marker, then to the in-memory state.
    fn apply(
        &mut self,
        staging: Staging,
        effects: Vec<(RecordLocation, Effect)>,
        applied_to: LogPosition,
    ) -> Result<(), StoreError> {
        let mut new_heads: BTreeMap<DeviceKey, Head> = BTreeMap::new();
        let mut new_forks = Vec::new();
        // Whether each filled envelope still lacks a body a peer can give.
        let still_lacking: Vec<bool> = effects
            .iter()
            .filter_map(|(_, effect)| match effect {
                Effect::Fill { envelope } => Some(self.lacks_wanted_bodies(envelope)),
                _ => None,
            })
            .collect();
        let mut still_lacking = still_lacking.into_iter();
        let rows = &mut self.pending_rows;
        for (at, effect) in &effects {
            match effect {
                Effect::Chain { author, seq, id, docs, complete } => {
                    rows.insert(derived::chain_key(author, *seq), Some(derived::encode_chain(at, id)));
                    for (index, doc) in docs.iter().enumerate() {
                        rows.insert(
                            derived::doc_key(doc, author, *seq),
                            Some((index as u16).to_be_bytes().to_vec()),
                        );
                    }
                    if !complete {
                        rows.insert(derived::bodies_missing_key(author, *seq), Some(Vec::new()));
                    }
                    // A hole filled below the head leaves the head where it is.
                    let head = new_heads.get(author).copied().or_else(|| self.heads.get(author));
                    let head_seq = head.map_or(0, |h| h.seq.0);
                    if head_seq < seq.0 {
                        // Past a gap (replaying a damaged log): the seqs between are holes.
                        for missing in (head_seq + 1..seq.0).rev().take(HOLES_PER_GAP_MAX) {
                            rows.insert(derived::hole_key(author, Seq(missing)), Some(Vec::new()));
                        }
                        new_heads.insert(*author, Head { seq: *seq, id: *id });
                    } else {
                        rows.insert(derived::hole_key(author, *seq), None);
                    }
                }
                Effect::Fill { envelope } => {
                    let (author, seq) = (envelope.author(), envelope.seq());
                    rows.insert(
                        derived::chain_key(&author, seq),
                        Some(derived::encode_chain(at, &envelope.id())),
                    );
                    let missing = still_lacking.next().unwrap_or(true).then(Vec::new);
                    rows.insert(derived::bodies_missing_key(&author, seq), missing);
                }
                Effect::ForkEvidence { fork, seq, id } => {
                    rows.insert(
                        derived::fork_key(&fork.author, *seq, id),
                        Some(derived::encode_location(at).to_vec()),
                    );
                    new_forks.push(*fork);
                }
                Effect::Trust { entry } => {
                    rows.insert(derived::trust_key(&entry.id()), Some(derived::encode_location(at).to_vec()));
                }
            }
        }
        for (author, head) in &new_heads {
            rows.insert(derived::head_key(author), Some(derived::encode_head(head)));
        }
        self.pending_applied = Some(applied_to);
        if let Some(trust) = staging.into_trust() {
            self.trust = trust;
        }
        for (author, head) in new_heads {
            debug_assert!(self.heads.get(&author).is_none_or(|h| h.seq < head.seq));
            self.heads.advance(author, head);
        }
        self.forks.extend(new_forks);
        if self.pending_rows.len() >= DERIVED_BUFFER_ROWS_MAX {
            self.flush_derived()?;
        }
        Ok(())
    }

    /// Writes the buffered derived rows to sled in one atomic batch with the position
    /// they cover. Not a durability point (the log is): it shortens the catch-up at the
    /// next open. Called when the buffer is full, after a catch-up, and on drop.
    pub fn flush_derived(&mut self) -> Result<(), StoreError> {
        let Some(applied_to) = self.pending_applied else { return Ok(()) };
        let mut batch = sled::Batch::default();
        for (key, value) in &self.pending_rows {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        batch.insert(derived::META_APPLIED, &derived::encode_position(&applied_to));
        match self.tree.apply_batch(batch) {
            Ok(()) => {
                self.pending_rows.clear();
                self.pending_applied = None;
                Ok(())
            }
            Err(e) if self.pending_rows.len() >= 4 * DERIVED_BUFFER_ROWS_MAX => {
                // sled keeps failing: stop buffering, and re-derive from the log (the
                // truth) once sled works again.
                self.pending_rows.clear();
                self.pending_applied = None;
                self.derived_lagging = true;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A derived row: the buffered value, else sled's.
    fn row(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending_rows.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    /// Derived rows under `prefix`, buffered ones included, in key order.
    fn rows_with_prefix(&self, prefix: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut out = BTreeMap::new();
        for row in self.tree.scan_prefix(prefix) {
            let (k, v) = row?;
            out.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self.pending_rows.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        Ok(out)
    }

    fn chain_id(&self, author: &DeviceKey, seq: Seq) -> Result<Option<EnvelopeId>, StoreError> {
        Ok(self
            .row(&derived::chain_key(author, seq))?
            .and_then(|v| derived::decode_chain(&v))
            .map(|(_, id)| id))
    }

    fn read_entry(&self, at: RecordLocation) -> Result<LogEntry, StoreError> {
        let bytes = self.log.read(at)?;
        LogEntry::decode(&bytes)
            .map_err(|e| StoreError::CorruptRecord { at: at.start(), reason: e.to_string() })
    }

    /// Signs a new envelope of this node's device on top of its head and stores it
    /// durably. Returns the envelope once it is on disk.
    pub fn append_local(
        &mut self,
        key: &SecretKey,
        time: Timestamp,
        changes: Vec<NewChange>,
    ) -> Result<Envelope, StoreError> {
        let author = DeviceKey(key.public());
        if let Some(blocked) = self.signing_blocked(&author)? {
            return Err(StoreError::SigningBlocked(blocked));
        }
        let prev = self.heads.get(&author).map(|h| (h.seq, h.id));
        let envelope = Envelope::sign(&self.network, key, prev, time, changes)?;
        self.ingest(&[LogEntry::Envelope(envelope.clone())], Policy::AllOrNothing)?;
        debug_assert_eq!(self.head(&author).map(|h| h.id), Some(envelope.id()));
        // The envelope is durable; the mark only guards against the log's end being
        // damaged later, so it is written without an fsync of its own (the kernel
        // writes it back within seconds) and a failure does not undo the write.
        self.signed.insert(author, envelope.seq());
        if let Err(e) = write_signed(&self.dir.join(SIGNED_FILE), &self.signed) {
            tracing::warn!(error = %e, "could not record the last signed change");
        }
        Ok(envelope)
    }

    /// Whether `envelope` is the one this store follows at its (author, seq), as
    /// opposed to fork evidence.
    /// The envelopes kept as fork evidence (see [`Fork`]), in key order.
    pub fn fork_evidence(&self) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::new();
        for (_, value) in self.rows_with_prefix(&[derived::FORK])? {
            let Some(at) = derived::decode_location(&value) else { continue };
            if let LogEntry::Envelope(env) = self.read_entry(at)? {
                out.push(env);
            }
        }
        Ok(out)
    }

    pub fn is_in_chain(&self, envelope: &Envelope) -> Result<bool, StoreError> {
        Ok(self.chain_id(&envelope.author(), envelope.seq())? == Some(envelope.id()))
    }

    /// Log entries from `from` (a position returned earlier, or [`Store::log_start`]).
    pub fn entries_from(
        &self,
        from: LogPosition,
    ) -> impl Iterator<Item = Result<(RecordLocation, LogEntry), StoreError>> + '_ {
        self.log.iter_from(from).map(|item| {
            let (at, bytes) = item?;
            let entry = LogEntry::decode(&bytes)
                .map_err(|e| StoreError::CorruptRecord { at: at.start(), reason: e.to_string() })?;
            Ok((at, entry))
        })
    }

    pub fn log_start(&self) -> LogPosition {
        self.log.start()
    }

    pub fn log_end(&self) -> LogPosition {
        self.log.end()
    }

    /// Identifies the log; derived state kept elsewhere records it to notice a
    /// replaced log.
    pub fn log_id(&self) -> [u8; 16] {
        self.log.log_id().0
    }

    /// A named sled tree beside the store's own, for state derived from this log by
    /// higher layers (materialized documents). It is emptied whenever the store
    /// rebuilds its own derived state, so its owner must be able to rebuild it from
    /// the log too, and must check any log position it keeps against
    /// [`Store::log_end`] (a copied or repaired data directory can hold a tree that is
    /// ahead of its log).
    pub fn derived_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("{DERIVED_TREE_PREFIX}{name}"))?)
    }

    /// The envelope of `author` at `seq` in the chain this store follows.
    pub fn get(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, StoreError> {
        let Some((at, id)) =
            self.row(&derived::chain_key(author, seq))?.and_then(|v| derived::decode_chain(&v))
        else {
            return Ok(None);
        };
        match self.read_entry(at)? {
            LogEntry::Envelope(env) if env.id() == id => Ok(Some(env)),
            _ => Err(StoreError::CorruptRecord {
                at: at.start(),
                reason: "index points at another entry".into(),
            }),
        }
    }

    /// Envelopes of the followed chain held without some of their bodies (a carrier
    /// stripped them), at most `limit`, in key order: what sessions ask peers for.
    pub fn bodies_missing(&self, limit: usize) -> Result<Vec<(DeviceKey, Seq)>, StoreError> {
        let mut out = Vec::new();
        for key in self.rows_with_prefix(&[derived::BODIES_MISSING])?.into_keys().take(limit) {
            let id = derived::decode_author_seq(&key)
                .ok_or_else(|| StoreError::CorruptDerived("bad bodies-missing row".into()))?;
            out.push(id);
        }
        Ok(out)
    }

    /// Envelopes that touch `doc`, as (author, seq, index of the change), in key order.
    pub fn doc_changes(&self, doc: &DocId) -> Result<Vec<(DeviceKey, Seq, u16)>, StoreError> {
        let mut out = Vec::new();
        for (key, value) in self.rows_with_prefix(&derived::doc_prefix(doc))? {
            let author = derived::array_at::<32>(&key, 17).and_then(|b| DeviceKey::from_bytes(b).ok());
            let seq = derived::u64_at(&key, 49);
            let index = derived::array_at::<2>(&value, 0).map(u16::from_be_bytes);
            match (author, seq, index) {
                (Some(a), Some(s), Some(i)) => out.push((a, Seq(s), i)),
                _ => return Err(StoreError::CorruptDerived("bad document index row".into())),
            }
        }
        Ok(out)
    }

    /// Every log entry in log order (for bundles and audits).
    pub fn log_entries(&self) -> impl Iterator<Item = Result<LogEntry, StoreError>> + '_ {
        self.log.iter_from(self.log.start()).map(|item| {
            let (at, bytes) = item?;
            LogEntry::decode(&bytes)
                .map_err(|e| StoreError::CorruptRecord { at: at.start(), reason: e.to_string() })
        })
    }

    /// A digest of every derived row except the position markers: equal for two
    /// stores that derived the same state (used to check rebuilds).
    pub fn derived_digest(&self) -> Result<tessera_log::Hash, StoreError> {
        let mut hasher = blake3::Hasher::new_derive_key("tessera 2026-11 derived digest v1");
        for (key, value) in self.rows_with_prefix(&[])? {
            if key.first() == Some(&b'm') {
                continue;
            }
            hasher.update(&(key.len() as u32).to_le_bytes());
            hasher.update(&key);
            hasher.update(&(value.len() as u32).to_le_bytes());
            hasher.update(&value);
        }
        Ok(tessera_log::Hash(*hasher.finalize().as_bytes()))
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }
    pub fn trust(&self) -> &TrustState {
        &self.trust
    }
    pub fn heads(&self) -> &VersionVector {
        &self.heads
    }
    pub fn head(&self, author: &DeviceKey) -> Option<Head> {
        self.heads.get(author)
    }
    pub fn forks(&self) -> &BTreeSet<Fork> {
        &self.forks
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Bytes of the log on disk.
    pub fn log_bytes(&self) -> u64 {
        self.log.total_bytes()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.flush_derived() {
            tracing::warn!(error = %e, "could not write derived rows to sled on close; they will be re-derived from the log");
        }
    }
}

impl LogView for Store {
    fn trust(&self) -> &TrustState {
        &self.trust
    }
    fn head(&self, author: &DeviceKey) -> Option<Head> {
        self.heads.get(author)
    }
    fn chain_id(&self, author: &DeviceKey, seq: Seq) -> Option<EnvelopeId> {
        Store::chain_id(self, author, seq).ok().flatten()
    }
    fn chain_prev(&self, author: &DeviceKey, seq: Seq) -> Option<EnvelopeId> {
        self.get(author, seq).ok().flatten().map(|env| env.prev())
    }
    fn has_evidence(&self, author: &DeviceKey, seq: Seq, id: &EnvelopeId) -> bool {
        self.row(&derived::fork_key(author, seq, id)).ok().flatten().is_some()
    }
}

/// Damaged records the operator reviewed after syncing (see
/// [`Store::accept_unknown_damage`]), one "segment offset" per line.
const DAMAGE_REVIEWED_FILE: &str = "damage-reviewed";
/// Per device signing in this store, the last seq it had durable: `DEVICEHEX SEQ`
/// lines. Unreadable: treated as absent (the guard it gives is then lost, nothing else).
const SIGNED_FILE: &str = "signed";
/// Lines of the `signed` file read at most (one per device that signed here).
const SIGNED_DEVICES_MAX: usize = 64;

fn read_signed(path: &Path) -> BTreeMap<DeviceKey, Seq> {
    let Ok(text) = fs::read_to_string(path) else { return BTreeMap::new() };
    text.lines()
        .take(SIGNED_DEVICES_MAX)
        .filter_map(|line| {
            let (device, seq) = line.split_once(' ')?;
            let mut key = [0u8; 32];
            hex::decode_to_slice(device, &mut key).ok()?;
            Some((DeviceKey::from_bytes(key).ok()?, Seq(seq.trim().parse().ok()?)))
        })
        .collect()
}

fn write_signed(path: &Path, signed: &BTreeMap<DeviceKey, Seq>) -> Result<(), StoreError> {
    let text: String =
        signed.iter().map(|(device, seq)| format!("{} {}\n", device.0.to_hex(), seq.0)).collect();
    fs::write(path, text).map_err(StoreError::io("write", path))
}
/// Holes recorded for one gap in a chain; a larger gap is asked for in part, the rest
/// once those are filled (a signed seq bounds it, but not to a small number).
const HOLES_PER_GAP_MAX: usize = 65_536;

/// Names of the trees handed out by [`Store::derived_tree`] start with this.
const DERIVED_TREE_PREFIX: &str = "x-";

fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    // sled is not the durability boundary (the log is): a long flush interval keeps
    // its background fsyncs off the write path.
    Ok(sled::Config::new().path(path).flush_every_ms(Some(2_000)).open()?)
}

/// What [`read_store`] found.
#[derive(Debug)]
pub struct StoreContents {
    pub network: NetworkId,
    pub entries: Vec<LogEntry>,
    /// The end of the log that could not be read (torn, or being written right now).
    pub unread_tail: Option<UnreadTail>,
    /// Damaged bytes in the middle of the log, skipped (the records after them are read).
    pub damaged: Vec<DamagedRange>,
}

/// The network and every log entry of the store in `dir`, read without changing
/// anything: no lock, no repair, no derived state (see [`crate::segments::read_records`]).
/// What an auditor runs on a copy, or on the store of a node that is running.
pub fn read_store(dir: &Path) -> Result<StoreContents, StoreError> {
    let network = read_network_file(&dir.join(NETWORK_FILE))?
        .ok_or_else(|| StoreError::NotInitialized { dir: dir.to_path_buf() })?;
    let read = crate::segments::read_records(&dir.join(LOG_DIR), SegmentLimits::default())?;
    let (records, unread_tail, damaged) = (read.records, read.tail, read.damaged);
    let entries = records
        .into_iter()
        .map(|(at, bytes)| {
            LogEntry::decode(&bytes).map_err(|e| StoreError::CorruptRecord { at, reason: e.to_string() })
        })
        .collect::<Result<_, _>>()?;
    Ok(StoreContents { network, entries, unread_tail, damaged })
}

fn read_network_file(path: &Path) -> Result<Option<NetworkId>, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path)(e)),
    };
    let bad = || StoreError::BadNetworkFile { path: path.to_path_buf() };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| bad())?;
    NetworkId::from_bytes(bytes).map(Some).map_err(|_| bad())
}

fn write_network_file(path: &Path, network: &NetworkId) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
    file.write_all(format!("{}\n", network.0.to_hex()).as_bytes()).map_err(StoreError::io("write", &tmp))?;
    file.sync_all().map_err(StoreError::io("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(StoreError::io("rename", &tmp))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io("sync", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_log::testkit::TestNetwork;
    use tessera_log::{DeviceRevocation, TrustStatement};

    fn trust_entries(net: &TestNetwork) -> Vec<LogEntry> {
        net.entries.iter().cloned().map(LogEntry::Trust).collect()
    }

    fn open_new(dir: &Path, net: &TestNetwork) -> Store {
        let (mut store, _) = Store::open(dir, Some(net.network)).unwrap();
        store.ingest(&trust_entries(net), Policy::AllOrNothing).unwrap();
        store
    }

    fn envs(net: &mut TestNetwork, device: usize, count: u64) -> Vec<LogEntry> {
        let network = net.network;
        (0..count).map(|n| LogEntry::Envelope(net.devices[device].next_simple(&network, n, 64))).collect()
    }

    /// Flips one byte in the payload of the log record that holds `author`'s `seq`.
    fn damage_record_of(dir: &Path, store: Store, author: &DeviceKey, seq: Seq) {
        let (at, _) = store
            .row(&derived::chain_key(author, seq))
            .unwrap()
            .and_then(|v| derived::decode_chain(&v))
            .unwrap();
        drop(store);
        let path = dir.join(LOG_DIR).join(format!("{:016x}.tlog", at.segment));
        let mut bytes = fs::read(&path).unwrap();
        bytes[(at.offset + 8 + u64::from(at.len) / 2) as usize] ^= 0x10;
        fs::write(&path, bytes).unwrap();
    }

    #[test]
    fn a_damaged_last_own_envelope_is_not_signed_again() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(8, 1, 1);
        let mut store = open_new(dir.path(), &net);
        let own = net.devices[0].id;
        let key = SecretKey::from_seed(net.devices[0].key.to_seed());
        let change = |n: u8| {
            vec![NewChange {
                doc: tessera_log::testkit::test_doc(1, u64::from(n)),
                salt: tessera_log::Salt([n; 16]),
                body: vec![n],
            }]
        };
        let mine: Vec<Envelope> = (0..3)
            .map(|n| store.append_local(&key, tessera_log::testkit::time(n), change(n as u8)).unwrap())
            .collect();
        let (at, _) = store
            .row(&derived::chain_key(&own, Seq(3)))
            .unwrap()
            .and_then(|v| derived::decode_chain(&v))
            .unwrap();
        drop(store);
        // The last record damaged: indistinguishable from a torn write, so it is cut.
        let path = dir.path().join(LOG_DIR).join(format!("{:016x}.tlog", at.segment));
        let mut bytes = fs::read(&path).unwrap();
        bytes[(at.offset + 8) as usize] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        let (mut store, report) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(report.log.torn_tail.is_some());
        assert_eq!(store.head(&own).map(|h| h.seq), Some(Seq(2)));
        assert_eq!(
            store.signing_blocked(&own).unwrap(),
            Some(SigningBlocked::SignedBeyondLog { seq: Seq(3) })
        );
        let refused = store.append_local(&key, tessera_log::testkit::time(9), change(9)).unwrap_err();
        assert!(refused.to_string().contains("signed changes up to 3"), "{refused}");
        // A peer's copy brings it back: signing resumes at 4.
        store.ingest(&[LogEntry::Envelope(mine[2].clone())], Policy::AllOrNothing).unwrap();
        assert_eq!(store.signing_blocked(&own).unwrap(), None);
        assert_eq!(store.append_local(&key, tessera_log::testkit::time(9), change(9)).unwrap().seq(), Seq(4));
        // Reviewed by the operator instead: the mark follows the log.
        drop(store);
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len();
        bytes.truncate(len - 3);
        fs::write(&path, bytes).unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(store.signing_blocked(&own).unwrap().is_some());
        store.accept_unknown_damage().unwrap();
        assert_eq!(store.signing_blocked(&own).unwrap(), None);
        assert_eq!(
            store.append_local(&key, tessera_log::testkit::time(10), change(10)).unwrap().seq(),
            Seq(4)
        );
    }

    #[test]
    fn a_damaged_own_envelope_blocks_signing_until_a_copy_fills_its_hole() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(7, 1, 2);
        let mut store = open_new(dir.path(), &net);
        let own = net.devices[0].id;
        let key = SecretKey::from_seed(net.devices[0].key.to_seed());
        let mine: Vec<Envelope> = (0..6)
            .map(|n| {
                store
                    .append_local(
                        &key,
                        tessera_log::testkit::time(n),
                        vec![NewChange {
                            doc: tessera_log::testkit::test_doc(1, n as u64),
                            salt: tessera_log::Salt([n as u8; 16]),
                            body: vec![1, 2, 3],
                        }],
                    )
                    .unwrap()
            })
            .collect();
        store.ingest(&envs(&mut net, 1, 4), Policy::AllOrNothing).unwrap();
        let before = store.heads().clone();
        damage_record_of(dir.path(), store, &own, Seq(3));

        let (mut store, report) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert_eq!(report.log.damaged.len(), 1);
        assert_eq!(report.log.torn_tail, None);
        // Everything after the damage is kept: the head stays at 6, seq 3 is a hole.
        assert_eq!(store.head(&own).map(|h| h.seq), Some(Seq(6)));
        assert_eq!(store.heads().get(&net.devices[1].id).map(|h| h.seq), Some(Seq(4)));
        assert_eq!(store.holes(10).unwrap(), vec![(own, Seq(3))]);
        assert!(matches!(store.signing_blocked(&own).unwrap(), Some(SigningBlocked::OwnHoles { .. })));
        let one = || {
            vec![NewChange {
                doc: tessera_log::testkit::test_doc(1, 9),
                salt: tessera_log::Salt([9; 16]),
                body: vec![9],
            }]
        };
        let refused = store.append_local(&key, tessera_log::testkit::time(9), one()).unwrap_err();
        assert!(refused.to_string().contains("may not sign"), "{refused}");
        assert_eq!(store.head(&own).map(|h| h.seq), Some(Seq(6)), "no seq signed twice");

        // A peer's copy fills the hole; signing resumes at 7, and a reopen agrees.
        let report = store.ingest(&[LogEntry::Envelope(mine[2].clone())], Policy::AllOrNothing).unwrap();
        assert_eq!(report.appended, vec![(own, Seq(3))]);
        assert!(store.holes(10).unwrap().is_empty());
        assert_eq!(store.signing_blocked(&own).unwrap(), None);
        assert_eq!(store.heads(), &before, "the same heads as before the damage");
        for n in 1..=6 {
            assert_eq!(store.get(&own, Seq(n)).unwrap().map(|e| e.id()), Some(mine[n as usize - 1].id()));
        }
        let next = store.append_local(&key, tessera_log::testkit::time(10), one()).unwrap();
        assert_eq!(next.seq(), Seq(7));
        drop(store);
        let (store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(store.holes(10).unwrap().is_empty());
        assert_eq!(store.head(&own).map(|h| h.seq), Some(Seq(7)));
    }

    #[test]
    fn another_devices_damaged_envelope_is_a_hole_and_does_not_block_signing() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(8, 1, 2);
        let mut store = open_new(dir.path(), &net);
        let other = net.devices[1].id;
        let theirs = envs(&mut net, 1, 5);
        store.ingest(&theirs, Policy::AllOrNothing).unwrap();
        let key = SecretKey::from_seed(net.devices[0].key.to_seed());
        let change = |n: u8| {
            vec![NewChange {
                doc: tessera_log::testkit::test_doc(2, 1),
                salt: tessera_log::Salt([n; 16]),
                body: vec![n],
            }]
        };
        store.append_local(&key, tessera_log::testkit::time(1), change(1)).unwrap();
        damage_record_of(dir.path(), store, &other, Seq(2));
        let (mut store, report) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert_eq!(report.log.damaged.len(), 1);
        assert_eq!(store.holes(10).unwrap(), vec![(other, Seq(2))]);
        assert_eq!(store.signing_blocked(&net.devices[0].id).unwrap(), None);
        store.append_local(&key, tessera_log::testkit::time(2), change(2)).unwrap();
        // The genuine copy fills it.
        store.ingest(&theirs[1..2], Policy::AllOrNothing).unwrap();
        assert!(store.holes(10).unwrap().is_empty());
    }

    #[test]
    fn another_branch_answering_a_hole_is_kept_as_fork_evidence_with_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(9, 1, 2);
        let mut store = open_new(dir.path(), &net);
        let other = net.devices[1].id;
        let theirs = envs(&mut net, 1, 4);
        store.ingest(&theirs, Policy::AllOrNothing).unwrap();
        damage_record_of(dir.path(), store, &other, Seq(2));
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert_eq!(store.holes(10).unwrap(), vec![(other, Seq(2))]);
        // A copied data directory signed its own seq 2 after seq 1; seq 3 held here
        // names the genuine seq 2, so this one proves the fork and the batch stays.
        let LogEntry::Envelope(first) = &theirs[0] else { unreachable!() };
        let network = net.network;
        net.devices[1].head = Some((first.seq(), first.id()));
        let branch = net.devices[1].next_simple(&network, 77, 64);
        let mine = envs(&mut net, 0, 1);
        let report = store
            .ingest(&[LogEntry::Envelope(branch.clone()), mine[0].clone()], Policy::AllOrNothing)
            .unwrap();
        assert_eq!(report.evidence_added, 1);
        assert_eq!(report.appended, vec![(net.devices[0].id, Seq(1))]);
        let fork = report.forks[0];
        assert_eq!((fork.author, fork.seq, fork.other), (other, Seq(2), branch.id()));
        // Past the fork nothing counts: the hole is no longer worth asking for.
        assert!(!tessera_log::still_counts(store.trust(), store.forks(), &other, Seq(2)));
        assert!(tessera_log::still_counts(store.trust(), store.forks(), &other, Seq(1)));
        // The genuine copy still fills the hole.
        store.ingest(&theirs[1..2], Policy::AllOrNothing).unwrap();
        assert!(store.holes(10).unwrap().is_empty());
    }

    #[test]
    fn a_session_batch_leaves_out_envelopes_past_a_revocation_and_stores_the_rest() {
        // The revocation arrived before the certificate of the device it revokes (it
        // waits); a peer that never saw the revocation sends the certificate and the
        // device's envelopes together. The certificate is stored, the envelopes left
        // out: refusing the batch would keep the peer from ever learning why.
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(10, 1, 2);
        let device = net.devices[1].id;
        let is_cert =
            |e: &TrustEntry| matches!(&e.statement, TrustStatement::Device(c) if c.device == device);
        let cert = net.entries.iter().find(|e| is_cert(e)).unwrap().clone();
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        let others: Vec<LogEntry> =
            net.entries.iter().filter(|e| !is_cert(e)).cloned().map(LogEntry::Trust).collect();
        store.ingest(&others, Policy::AllOrNothing).unwrap();
        let revoke = net.sign_as_partner(
            0,
            TrustStatement::RevokeDevice(DeviceRevocation {
                issuer: net.partner_keys[0].public(),
                device,
                last_valid: Seq(1),
                reason: "tablet smarrito".into(),
            }),
        );
        store.ingest(&[LogEntry::Trust(revoke)], Policy::AllOrNothing).unwrap();
        assert_eq!(store.trust().waiting().count(), 1);
        let mut batch = vec![LogEntry::Trust(cert)];
        batch.extend(envs(&mut net, 1, 3));
        batch.extend(envs(&mut net, 0, 1));
        let report = store.ingest(&batch, Policy::AllOrNothing).unwrap();
        assert_eq!(report.trust_added, 1);
        assert_eq!(report.past_revocation, 2);
        assert_eq!(report.appended, vec![(device, Seq(1)), (net.devices[0].id, Seq(1))]);
        assert_eq!(store.trust().device_revoked_after(&device), Some(Seq(1)));
        // Anything else wrong in a session batch still refuses it whole (here a gap).
        let later = envs(&mut net, 0, 2);
        let err = store.ingest(&later[1..], Policy::AllOrNothing).unwrap_err();
        assert!(matches!(err, StoreError::Rejected { error: VerifyError::SeqGap { .. }, .. }), "{err}");
    }

    #[test]
    fn ingest_then_reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 2, 2);
        let mut store = open_new(dir.path(), &net);
        let batch = envs(&mut net, 0, 10);
        let report = store.ingest(&batch, Policy::AllOrNothing).unwrap();
        assert_eq!(report.appended.len(), 10);
        let device = net.devices[0].id;
        assert_eq!(store.head(&device).unwrap().seq, Seq(10));
        let digest = store.derived_digest().unwrap();
        drop(store);
        let (store, report) = Store::open(dir.path(), None).unwrap();
        assert_eq!(report.derived, DerivedStatus::UpToDate);
        assert_eq!(store.head(&device).unwrap().seq, Seq(10));
        assert_eq!(store.trust().len(), net.entries.len());
        assert_eq!(store.derived_digest().unwrap(), digest);
        let LogEntry::Envelope(fifth) = &batch[4] else { unreachable!() };
        assert_eq!(store.get(&device, Seq(5)).unwrap().as_ref(), Some(fifth));
        assert_eq!(store.doc_changes(&fifth.changes()[0].doc).unwrap(), vec![(device, Seq(5), 0)]);
    }

    fn stripped(entry: &LogEntry) -> LogEntry {
        let LogEntry::Envelope(env) = entry else { panic!("not an envelope") };
        let mut env = env.clone();
        for index in 0..env.bodies().len() {
            env.strip_body(index);
        }
        LogEntry::Envelope(env)
    }

    #[test]
    fn a_stripped_envelope_gets_its_body_back_from_any_later_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 1);
        let mut store = open_new(dir.path(), &net);
        let batch = envs(&mut net, 0, 3);
        let device = net.devices[0].id;
        // A carrier strips envelope 2: it is valid, and held without its body.
        let carried = vec![batch[0].clone(), stripped(&batch[1]), batch[2].clone()];
        store.ingest(&carried, Policy::AllOrNothing).unwrap();
        assert_eq!(store.bodies_missing(10).unwrap(), vec![(device, Seq(2))]);
        // Another stripped copy changes nothing.
        let report = store.ingest(&[stripped(&batch[1])], Policy::AllOrNothing).unwrap();
        assert_eq!((report.duplicates, report.written()), (1, 0));
        // The genuine copy, though "already held", brings the body back.
        let report = store.ingest(&batch, Policy::AllOrNothing).unwrap();
        assert_eq!(report.bodies_filled, vec![(device, Seq(2))]);
        assert_eq!(report.duplicates, 2);
        let LogEntry::Envelope(second) = &batch[1] else { unreachable!() };
        assert_eq!(store.get(&device, Seq(2)).unwrap().as_ref(), Some(second));
        assert!(store.bodies_missing(10).unwrap().is_empty());
        // A third copy is a plain duplicate again.
        let report = store.ingest(&batch[1..2], Policy::AllOrNothing).unwrap();
        assert_eq!((report.duplicates, report.written()), (1, 0));
        let digest = store.derived_digest().unwrap();
        drop(store);
        // Reopened, and rebuilt from the log: the same state, the body still there.
        let (store, _) = Store::open(dir.path(), None).unwrap();
        assert_eq!(store.get(&device, Seq(2)).unwrap().as_ref(), Some(second));
        assert!(store.bodies_missing(10).unwrap().is_empty());
        assert_eq!(store.derived_digest().unwrap(), digest);
        drop(store);
        fs::remove_dir_all(dir.path().join(DERIVED_DIR)).unwrap();
        let (store, report) = Store::open(dir.path(), None).unwrap();
        assert!(matches!(report.derived, DerivedStatus::Rebuilt { .. }));
        assert_eq!(store.get(&device, Seq(2)).unwrap().as_ref(), Some(second));
        assert_eq!(store.derived_digest().unwrap(), digest);
    }

    #[test]
    fn a_stripped_and_a_whole_copy_in_one_batch_keep_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 1);
        let mut store = open_new(dir.path(), &net);
        let batch = envs(&mut net, 0, 1);
        let report = store.ingest(&[stripped(&batch[0]), batch[0].clone()], Policy::AllOrNothing).unwrap();
        assert_eq!(report.appended.len(), 1);
        assert_eq!(report.bodies_filled.len(), 1);
        assert!(store.bodies_missing(10).unwrap().is_empty());
        let LogEntry::Envelope(env) = &batch[0] else { unreachable!() };
        assert_eq!(store.get(&env.author(), Seq(1)).unwrap().as_ref(), Some(env));
    }

    #[test]
    fn duplicates_are_not_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 1);
        let mut store = open_new(dir.path(), &net);
        let batch = envs(&mut net, 0, 3);
        store.ingest(&batch, Policy::AllOrNothing).unwrap();
        let bytes = store.log_bytes();
        let mut again = batch.clone();
        again.extend(batch.clone());
        let report = store.ingest(&again, Policy::AllOrNothing).unwrap();
        assert_eq!(report.duplicates, 6);
        assert_eq!(report.written(), 0);
        assert_eq!(store.log_bytes(), bytes);
    }

    #[test]
    fn a_refused_entry_stores_nothing_from_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 2);
        let mut store = open_new(dir.path(), &net);
        let mut batch = envs(&mut net, 0, 3);
        let mut forged = batch[2].encode();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        batch[2] = LogEntry::decode(&forged).unwrap();
        let before = store.log_bytes();
        let err = store.ingest(&batch, Policy::AllOrNothing).unwrap_err();
        assert!(
            matches!(err, StoreError::Rejected { index: 2, error: VerifyError::CommitmentMismatch { .. } }),
            "{err}"
        );
        assert_eq!(store.log_bytes(), before);
        assert!(store.head(&net.devices[0].id).is_none());

        // Skipping: the valid prefix of that author and other authors are kept.
        let mut mixed = batch.clone();
        mixed.extend(envs(&mut net, 1, 2));
        let report = store.ingest(&mixed, Policy::SkipInvalid).unwrap();
        assert_eq!(report.appended.len(), 4);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(store.head(&net.devices[0].id).unwrap().seq, Seq(2));
    }

    #[test]
    fn a_fork_is_kept_as_evidence_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 1);
        let mut store = open_new(dir.path(), &net);
        let first = envs(&mut net, 0, 2);
        store.ingest(&first, Policy::AllOrNothing).unwrap();
        // The device is restored from a backup taken before its seq 2 and writes again.
        let network = net.network;
        let LogEntry::Envelope(one) = &first[0] else { unreachable!() };
        net.devices[0].head = Some((one.seq(), one.id()));
        let other_two = net.devices[0].next_simple(&network, 200, 10);
        let three_on_other = net.devices[0].next_simple(&network, 201, 10);
        let report = store
            .ingest(
                &[LogEntry::Envelope(other_two.clone()), LogEntry::Envelope(three_on_other)],
                Policy::SkipInvalid,
            )
            .unwrap();
        assert_eq!(report.forks.len(), 1);
        let fork = report.forks[0];
        assert_eq!((fork.seq, fork.other), (Seq(2), other_two.id()));
        // The seq-3 envelope follows the other branch: it is kept as evidence too
        // (it proves the same fork), not applied to the chain.
        assert_eq!(store.head(&net.devices[0].id).unwrap().seq, Seq(2));
        assert_eq!(report.appended.len(), 0);
        assert_eq!(report.evidence_added, 2);
        // Evidence survives a reopen, and a rebuild.
        drop(store);
        let (store, _) = Store::open(dir.path(), None).unwrap();
        assert!(store.forks().contains(&fork));
        let digest = store.derived_digest().unwrap();
        drop(store);
        fs::remove_dir_all(dir.path().join(DERIVED_DIR)).unwrap();
        let (store, report) = Store::open(dir.path(), None).unwrap();
        assert!(matches!(report.derived, DerivedStatus::Rebuilt { .. }));
        assert!(store.forks().contains(&fork));
        assert_eq!(store.derived_digest().unwrap(), digest);
    }

    #[test]
    fn deleting_or_damaging_sled_rebuilds_identical_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 2, 2);
        let mut store = open_new(dir.path(), &net);
        for d in 0..4 {
            store.ingest(&envs(&mut net, d, 25), Policy::AllOrNothing).unwrap();
        }
        let digest = store.derived_digest().unwrap();
        let heads = store.heads().clone();
        drop(store);
        fs::remove_dir_all(dir.path().join(DERIVED_DIR)).unwrap();
        let (store, report) = Store::open(dir.path(), None).unwrap();
        assert!(matches!(report.derived, DerivedStatus::Rebuilt { records, .. } if records == 100 + 6));
        assert_eq!(store.derived_digest().unwrap(), digest);
        assert_eq!(store.heads(), &heads);
        drop(store);
        // Garbage in place of sled's files.
        for entry in fs::read_dir(dir.path().join(DERIVED_DIR)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                fs::write(&path, b"not a database").unwrap();
            }
        }
        let (store, report) = Store::open(dir.path(), None).unwrap();
        assert!(matches!(report.derived, DerivedStatus::Rebuilt { .. }), "{:?}", report.derived);
        assert_eq!(store.derived_digest().unwrap(), digest);
        assert_eq!(store.heads(), &heads);
    }

    #[test]
    fn a_failed_sled_write_is_repaired_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 1);
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        let before = store.tree.get(derived::META_APPLIED).unwrap();
        let mut first = trust_entries(&net);
        first.extend(envs(&mut net, 0, 3));
        store.ingest(&first, Policy::AllOrNothing).unwrap();
        // Simulate sled losing that batch's rows after the log was durable.
        store.tree.clear().unwrap();
        store.tree.insert(derived::META_LOG_ID, &store.log.log_id().0).unwrap();
        store.tree.insert(derived::META_LAYOUT, &LAYOUT_VERSION.to_be_bytes()).unwrap();
        if let Some(at) = before {
            store.tree.insert(derived::META_APPLIED, at).unwrap();
        }
        store.derived_lagging = true;
        store.ingest(&envs(&mut net, 0, 1), Policy::AllOrNothing).unwrap();
        let device = net.devices[0].id;
        for seq in 1..=4 {
            assert!(store.get(&device, Seq(seq)).unwrap().is_some(), "seq {seq} lost from the index");
        }
        let digest = store.derived_digest().unwrap();
        drop(store);
        fs::remove_dir_all(dir.path().join(DERIVED_DIR)).unwrap();
        let (store, _) = Store::open(dir.path(), None).unwrap();
        assert_eq!(store.derived_digest().unwrap(), digest, "repaired state equals a full rebuild");
    }

    #[test]
    fn a_second_open_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(1, 1, 1);
        let _store = open_new(dir.path(), &net);
        let err = Store::open(dir.path(), None).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("in use"));
    }

    #[test]
    fn wrong_network_and_missing_store_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(1, 1, 1);
        let err = Store::open(dir.path(), None).unwrap_err();
        assert!(matches!(err, StoreError::NotInitialized { .. }), "{err}");
        drop(open_new(dir.path(), &net));
        let other = TestNetwork::new(2, 1, 1);
        let err = Store::open(dir.path(), Some(other.network)).unwrap_err();
        assert!(matches!(err, StoreError::WrongNetwork { .. }), "{err}");
    }

    #[test]
    fn revocation_in_the_same_batch_applies_to_later_envelopes() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(1, 1, 1);
        let mut store = open_new(dir.path(), &net);
        let device = net.devices[0].id;
        let revoke = net.sign_as_partner(
            0,
            TrustStatement::RevokeDevice(DeviceRevocation {
                issuer: net.partner_keys[0].public(),
                device,
                last_valid: Seq(1),
                reason: "test".into(),
            }),
        );
        let mut batch = vec![LogEntry::Trust(revoke)];
        batch.extend(envs(&mut net, 0, 2));
        let report = store.ingest(&batch, Policy::SkipInvalid).unwrap();
        assert_eq!(report.trust_added, 1);
        assert_eq!(report.appended, vec![(device, Seq(1))]);
        assert!(matches!(report.rejected[0].error, VerifyError::Revoked { .. }));
        // Replaying the log after a rebuild reaches the same decisions.
        let digest = store.derived_digest().unwrap();
        drop(store);
        fs::remove_dir_all(dir.path().join(DERIVED_DIR)).unwrap();
        let (store, report) = Store::open(dir.path(), None).unwrap();
        assert!(report.skipped.is_empty());
        assert_eq!(store.derived_digest().unwrap(), digest);
    }
}
