//! An in-memory store with the durable store's rules: what one simulated node or relay
//! holds on disk.
//!
//! Every entry goes through [`tessera_log::admit`], the admission function the real
//! store runs (authority, strict signature, bodies, chain, duplicates, fork evidence),
//! all or nothing per batch as a sync session asks. A [`SimStore`] holds only what is
//! durable: the simulator queues writes in front of it (see `world`), and a crash drops
//! that queue, never what is here. It implements [`LocalLog`] so the real sync session
//! reads it the way it reads `tessera_store::Store`.
//!
//! Erasure follows the real store (`tessera_store::Store`, `store/erase.rs`) with the
//! rule of [`tessera_log::erasure`]: an erasure counts when its envelope still counts
//! (not past a revocation, not at or after a fork), its body decodes, and its signer's
//! partner key and the body's nonce make the person's id ([`erasure_counts`]), which
//! every store, a relay included, decides alike. The bodies of an erased person are
//! stripped from every entry on arrival, dropped from every readable record when the
//! erasure starts counting (the scrub), and an envelope lacking only erased bodies is
//! neither "bodies missing" nor wanted. As in the real store, the erased set lives in
//! memory: [`SimStore::reopen`] (a restart, a restored disk image) and any change of
//! trust or forks recompute it, scrub the persons not marked scrubbed yet, and want
//! again the bodies of a person no longer erased. Records the disk damaged are skipped,
//! never rewritten, as the real log's damaged ranges.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;

use tessera_log::erasure::{erases_body_of, is_erasure_doc, ERASURE_DOC_KIND};
use tessera_log::{
    admit_with, erasure_counts, still_counts, Admission, Body, DeviceKey, DocId, Envelope, EnvelopeId,
    Erasure, Fork, Head, LogEntry, LogView, Person, Seq, Staging, TrustEntry, TrustState, VerifyError,
    VersionVector,
};
use tessera_sync::{LocalLog, LocalLogError, WantKind, Wanted};

/// A refused batch: the index of the entry that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub error: VerifyError,
}

/// Envelopes whose exact encoded bytes passed the real signature and body check, shared
/// by every store of one world: 47 stores verify each envelope, and a memo keyed by the
/// bytes' hash answers exactly what verifying again would. Bytes that differ in any
/// bit (a stream fault, a tampered copy) miss it and are verified for real.
#[derive(Clone, Default)]
pub struct VerifiedMemo(Rc<RefCell<HashSet<[u8; 32]>>>);

impl std::fmt::Debug for VerifiedMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifiedMemo({} envelopes)", self.0.borrow().len())
    }
}

impl VerifiedMemo {
    fn verify(&self, trust: &TrustState, envelope: &Envelope) -> Result<(), VerifyError> {
        let key = *blake3::hash(&envelope.encode()).as_bytes();
        if self.0.borrow().contains(&key) {
            return Ok(());
        }
        trust.verify_envelope_signature(envelope)?;
        self.0.borrow_mut().insert(key);
        Ok(())
    }
}

/// What the stores of one world did with erasures, shared by all of them (a store
/// replaced by a backup or wiped keeps counting into the same tally).
#[derive(Clone, Default)]
pub struct ErasureTally(Rc<RefCell<ErasureWork>>);

/// Counts of [`ErasureTally`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureWork {
    /// Bodies of erased persons stripped from entries on arrival (a stale copy, a
    /// restored node, a relay that had them).
    pub refused_on_arrival: u64,
    /// Bodies dropped from held records when an erasure became effective.
    pub scrubbed: u64,
    /// Bodies dropped when a store reopened (a restored image still holding them).
    pub scrubbed_at_open: u64,
    /// Times an erasure started counting on a store holding no change of the person's
    /// card or details yet (their bodies will be refused on arrival).
    pub before_registration: u64,
    /// Times an erasure started counting on a store.
    pub became_effective: u64,
    /// Times a store stopped erasing a person (the erasure's device revoked before it,
    /// or forked) and asked for their bodies again.
    pub no_longer_counting: u64,
}

impl std::fmt::Debug for ErasureTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ErasureTally({:?})", self.0.borrow())
    }
}

impl ErasureTally {
    pub fn get(&self) -> ErasureWork {
        *self.0.borrow()
    }
    fn add(&self, f: impl FnOnce(&mut ErasureWork)) {
        f(&mut self.0.borrow_mut());
    }
}

/// A body in a store's log: the index of its record and the document it changes.
pub type BodyAt = (usize, DocId);

/// The durable content of one simulated store.
#[derive(Debug, Clone)]
pub struct SimStore {
    trust: TrustState,
    heads: VersionVector,
    /// Every stored entry, in arrival order (the log).
    log: Vec<LogEntry>,
    /// (author, seq) → index in `log` of the envelope in the followed chain.
    chain: BTreeMap<(DeviceKey, Seq), usize>,
    /// Fork evidence → index in `log`.
    evidence: BTreeMap<(DeviceKey, Seq, EnvelopeId), usize>,
    forks: BTreeSet<Fork>,
    /// Documents → the chain envelopes that change them, in log order.
    docs: BTreeMap<DocId, Vec<(DeviceKey, Seq)>>,
    /// Chain envelopes whose record the disk damaged (a hole below their author's
    /// head): not readable, asked of peers, filled by the envelope that fits.
    holes: BTreeSet<(DeviceKey, Seq)>,
    /// Chain envelopes held without some of their bodies (a carrier stripped them):
    /// asked of peers, filled by any copy whose bodies match the commitments.
    /// Only those lacking a body that is not erased (one a peer can give back).
    stripped: BTreeSet<(DeviceKey, Seq)>,
    /// Persons whose erasure is effective here. In memory, as in the real store:
    /// recomputed from the held headers by [`SimStore::reopen`].
    erased: BTreeSet<Person>,
    /// Persons whose bodies were scrubbed from this log (the real store's durable
    /// "scrubbed" rows): a reopen scrubs only the effective persons not marked.
    scrubbed: BTreeSet<Person>,
    /// Indices in `log` of records the disk damaged: skipped by reads, never rewritten
    /// (the real log keeps damaged ranges in place and cannot rewrite them).
    damaged: BTreeSet<usize>,
    memo: VerifiedMemo,
    tally: ErasureTally,
}

impl SimStore {
    /// An empty store that trusts the network's initial certificates (what `tessera init`
    /// or a relay's trust file installs).
    pub fn new(
        trust_entries: &[TrustEntry],
        network: tessera_log::NetworkId,
        memo: VerifiedMemo,
    ) -> SimStore {
        let mut store = SimStore {
            trust: TrustState::new(network),
            heads: VersionVector::new(),
            log: Vec::new(),
            chain: BTreeMap::new(),
            evidence: BTreeMap::new(),
            forks: BTreeSet::new(),
            docs: BTreeMap::new(),
            holes: BTreeSet::new(),
            stripped: BTreeSet::new(),
            erased: BTreeSet::new(),
            scrubbed: BTreeSet::new(),
            damaged: BTreeSet::new(),
            memo,
            tally: ErasureTally::default(),
        };
        let entries: Vec<LogEntry> = trust_entries.iter().cloned().map(LogEntry::Trust).collect();
        if let Err(refused) = store.ingest(&entries) {
            // A simulator set-up error, not a finding.
            panic!("initial trust refused: {refused:?}");
        }
        store
    }

    /// Admits `entries` all or nothing; returns the entries new to this store (what a
    /// node fans out to its other sessions) and the forks they revealed.
    pub fn ingest(&mut self, entries: &[LogEntry]) -> Result<(Vec<LogEntry>, Vec<Fork>), Refused> {
        // An erased person's bodies are refused on arrival, from any copy.
        let mut refused_bodies = 0u64;
        let arrived: Vec<Cow<'_, LogEntry>> = entries
            .iter()
            .map(|entry| match self.without_erased_bodies(entry) {
                Some((stripped, n)) => {
                    refused_bodies += n as u64;
                    Cow::Owned(stripped)
                }
                None => Cow::Borrowed(entry),
            })
            .collect();
        let mut staging = Staging::default();
        let mut admitted = Vec::new();
        let mut fills = Vec::new();
        for (index, entry) in arrived.iter().map(|e| e.as_ref()).enumerate() {
            let memo = self.memo.clone();
            let verify = move |trust: &TrustState, env: &Envelope| memo.verify(trust, env);
            match admit_with(self, &mut staging, entry, &verify) {
                Ok(Admission::Duplicate) => {
                    // The same envelope again: it may bring bodies this copy lacks (the
                    // real store's body fill), if they match their commitments.
                    if let LogEntry::Envelope(env) = entry {
                        if self.stripped.contains(&(env.author(), env.seq())) {
                            env.verify_bodies().map_err(|error| Refused { index, error })?;
                            fills.push(env);
                        }
                    }
                }
                Ok(admission) => admitted.push((admission, entry)),
                // Late news for its sender, as in the real store: left out.
                Err(error) if error.is_past_revocation() => {}
                Err(error) => return Err(Refused { index, error }),
            }
        }
        if let Some(trust) = staging.into_trust() {
            self.trust = trust;
        }
        let mut new = Vec::new();
        let mut forks = Vec::new();
        let mut added_docs: BTreeSet<DocId> = BTreeSet::new();
        let mut trust_added = false;
        for (admission, entry) in admitted {
            let at = self.log.len();
            self.log.push(entry.clone());
            match (admission, entry) {
                (Admission::Chain { author, seq, id }, LogEntry::Envelope(env)) => {
                    let fills_hole = self.holes.remove(&(author, seq));
                    assert!(
                        fills_hole || self.heads.get(&author).is_none_or(|h| h.seq.0 + 1 == seq.0),
                        "chain gap admitted"
                    );
                    self.heads.advance(author, Head { seq, id });
                    self.chain.insert((author, seq), at);
                    if self.lacks_wanted_bodies(env) {
                        self.stripped.insert((author, seq));
                    }
                    for change in env.changes() {
                        added_docs.insert(change.doc);
                        let list = self.docs.entry(change.doc).or_default();
                        if !list.contains(&(author, seq)) {
                            list.push((author, seq));
                        }
                    }
                    new.push(entry.clone());
                }
                (Admission::ForkEvidence { fork, seq, id }, _) => {
                    self.evidence.insert((fork.author, seq, id), at);
                    if self.forks.insert(fork) {
                        forks.push(fork);
                    }
                }
                (Admission::Trust, _) => {
                    trust_added = true;
                    new.push(entry.clone());
                }
                (Admission::Duplicate, _) | (Admission::Chain { .. }, LogEntry::Trust(_)) => {}
            }
        }
        for env in fills {
            let key = (env.author(), env.seq());
            let Some(&at) = self.chain.get(&key) else { continue };
            let LogEntry::Envelope(held) = &mut self.log[at] else { continue };
            held.fill_bodies_from(env);
            added_docs.extend(held.changes().iter().map(|c| c.doc));
            let held = held.clone();
            if !self.lacks_wanted_bodies(&held) {
                self.stripped.remove(&key);
            }
        }
        if refused_bodies > 0 {
            self.tally.add(|t| t.refused_on_arrival += refused_bodies);
        }
        let trust_or_forks_changed = trust_added || !forks.is_empty();
        self.erasures_after_batch(&added_docs, trust_or_forks_changed);
        Ok((new, forks))
    }

    // ---- erasure: the real store's rules (`tessera_store` `store/erase.rs`) ----------

    /// Persons whose erasure is effective here.
    pub fn erased(&self) -> &BTreeSet<Person> {
        &self.erased
    }

    /// Whether the body of a change of `doc` is erased here.
    fn body_erased(&self, doc: &DocId) -> bool {
        !self.erased.is_empty() && erases_body_of(&|p: &Person| self.erased.contains(p), doc)
    }

    /// Whether `env` lacks a body that is not erased (one a peer can give back).
    pub fn lacks_wanted_bodies(&self, env: &Envelope) -> bool {
        env.changes()
            .iter()
            .zip(env.bodies())
            .any(|(c, b)| matches!(b, Body::Absent) && !self.body_erased(&c.doc))
    }

    /// `entry` without the bodies of erased persons, and how many it lost, if it had any.
    fn without_erased_bodies(&self, entry: &LogEntry) -> Option<(LogEntry, usize)> {
        let LogEntry::Envelope(env) = entry else { return None };
        if self.erased.is_empty() {
            return None;
        }
        let mut stripped = env.clone();
        let dropped = stripped.strip_bodies_where(|doc| self.body_erased(doc));
        if dropped == 0 {
            return None;
        }
        Some((LogEntry::Envelope(stripped), dropped))
    }

    /// The erasure of `person` that counts here, if any: the first, in (author, seq)
    /// order, of the held chain envelopes changing their erasure document that still
    /// counts, whose body decodes, and whose signer [`erasure_counts`] allows.
    pub fn erasure_of(&self, person: &Person) -> Option<(DeviceKey, Seq, Erasure)> {
        let doc = person.erasure_doc();
        let mut keys = self.doc_changes(&doc).to_vec();
        keys.sort();
        for (author, seq) in keys {
            if !self.counts(&author, seq) {
                continue;
            }
            let Some(env) = self.envelope_at(&author, seq) else { continue };
            // The document index keeps one change per envelope and document: the last.
            let Some(index) = env.changes().iter().rposition(|c| c.doc == doc) else { continue };
            let Some(Body::Present { bytes, .. }) = env.bodies().get(index) else { continue };
            let Ok(erasure) = Erasure::decode(bytes) else { continue };
            if erasure_counts(&self.trust, &author, person, &erasure) {
                return Some((author, seq, erasure));
            }
        }
        None
    }

    /// Every person an erasure change held here names, counting or not (the real
    /// store's document index: chain envelopes, not fork evidence nor holes).
    fn persons_with_erasures(&self) -> BTreeSet<Person> {
        let first = DocId([ERASURE_DOC_KIND, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        self.docs
            .range(first..)
            .take_while(|(doc, _)| is_erasure_doc(doc))
            .filter(|(_, changes)| changes.iter().any(|k| self.chain.contains_key(k)))
            .map(|(doc, _)| Person::of(doc))
            .collect()
    }

    /// After a batch: erasures that count since it (`docs`: the documents of the
    /// envelopes it added or filled), scrubbed at once; every erasure again when trust
    /// or forks changed.
    fn erasures_after_batch(&mut self, docs: &BTreeSet<DocId>, trust_or_forks_changed: bool) {
        if trust_or_forks_changed && !self.persons_with_erasures().is_empty() {
            self.refresh_erasures();
            return;
        }
        let newly: BTreeSet<Person> = docs
            .iter()
            .filter(|doc| is_erasure_doc(doc))
            .map(Person::of)
            .filter(|person| !self.erased.contains(person) && self.erasure_of(person).is_some())
            .collect();
        if newly.is_empty() {
            return;
        }
        self.note_newly_erased(&newly);
        self.erased.extend(newly.iter().copied());
        let bodies = self.scrub(&newly);
        self.tally.add(|t| t.scrubbed += bodies);
    }

    /// At open, and after trust or forks changed: which erasures count now. Persons
    /// newly erased are scrubbed, and so is any erased person not marked scrubbed; a
    /// person no longer erased has their bodies wanted again. Returns the bodies dropped.
    fn refresh_erasures(&mut self) -> u64 {
        let erased: BTreeSet<Person> =
            self.persons_with_erasures().into_iter().filter(|p| self.erasure_of(p).is_some()).collect();
        let newly: BTreeSet<Person> = erased.difference(&self.erased).copied().collect();
        let gone: Vec<Person> = self.erased.difference(&erased).copied().collect();
        self.note_newly_erased(&newly);
        self.erased = erased;
        for person in &gone {
            // Wanted again: their mark goes, and envelopes lacking their bodies wait.
            self.scrubbed.remove(person);
        }
        // A mark of a person not erased now is stale (a torn backup's marks beside a
        // newer log): left, it would skip the scrub when the erasure counts again.
        let erased_now = self.erased.clone();
        self.scrubbed.retain(|p| erased_now.contains(p));
        if !gone.is_empty() {
            let n = gone.len() as u64;
            self.tally.add(|t| t.no_longer_counting += n);
        }
        self.refresh_stripped();
        let due: BTreeSet<Person> = self.erased.difference(&self.scrubbed).copied().collect();
        if due.is_empty() {
            return 0;
        }
        let bodies = self.scrub(&due);
        self.tally.add(|t| t.scrubbed += bodies);
        bodies
    }

    fn note_newly_erased(&self, newly: &BTreeSet<Person>) {
        let before = newly
            .iter()
            .filter(|p| {
                [p.doc(2), p.personal_doc()]
                    .iter()
                    .all(|d| !self.doc_changes(d).iter().any(|k| self.chain.contains_key(k)))
            })
            .count() as u64;
        let n = newly.len() as u64;
        self.tally.add(|t| {
            t.became_effective += n;
            t.before_registration += before;
        });
    }

    /// Drops every body of `persons` (their erasure's own excepted) from every readable
    /// record, keeps every header, marks them scrubbed, and stops wanting bodies that
    /// are erased. Returns the number of bodies dropped.
    fn scrub(&mut self, persons: &BTreeSet<Person>) -> u64 {
        let erased_here = |doc: &DocId| erases_body_of(&|p: &Person| persons.contains(p), doc);
        let mut removed = 0;
        for (at, entry) in self.log.iter_mut().enumerate() {
            let LogEntry::Envelope(env) = entry else { continue };
            if self.damaged.contains(&at) {
                continue; // a damaged range: skipped, never rewritten
            }
            let doomed: Vec<usize> = env
                .changes()
                .iter()
                .zip(env.bodies())
                .enumerate()
                .filter(|(_, (c, b))| matches!(b, Body::Present { .. }) && erased_here(&c.doc))
                .map(|(i, _)| i)
                .collect();
            removed += doomed.len() as u64;
            for index in doomed {
                env.strip_body(index);
            }
        }
        self.refresh_stripped();
        self.scrubbed.extend(persons.iter().copied());
        removed
    }

    /// `stripped` again from the held chain: the envelopes lacking a wanted body.
    fn refresh_stripped(&mut self) {
        let lacking: BTreeSet<(DeviceKey, Seq)> = self
            .chain
            .iter()
            .filter(
                |(_, &at)| matches!(&self.log[at], LogEntry::Envelope(env) if self.lacks_wanted_bodies(env)),
            )
            .map(|(key, _)| *key)
            .collect();
        self.stripped = lacking;
    }

    /// The store opens (a restart, a disk image put back): the real store's
    /// `refresh_erasures` at open. Returns the bodies dropped.
    pub fn reopen(&mut self) -> u64 {
        let before = self.tally.get().scrubbed;
        let bodies = self.refresh_erasures();
        // Counted apart: bodies an open found still there.
        self.tally.add(|t| {
            t.scrubbed = before;
            t.scrubbed_at_open += bodies;
        });
        bodies
    }

    /// A copy of this store's disk taken while a scrub was rewriting its log (a backup
    /// tool copying files one by one): the records as `older` held them (bodies an
    /// erasure since removed included), the newer records as held now, and the
    /// "scrubbed" marks of `older`. Opening it must scrub them again. Returns the image
    /// and how many bodies of persons erased here it holds again.
    pub fn torn_copy(&self, older: &SimStore) -> (SimStore, u64) {
        let mut image = self.clone();
        let mut back = 0;
        for (key, &at) in &self.chain {
            let Some(old) = older.envelope_at(&key.0, key.1) else { continue };
            if let LogEntry::Envelope(held) = &mut image.log[at] {
                let before: Vec<bool> =
                    held.bodies().iter().map(|b| matches!(b, Body::Present { .. })).collect();
                held.fill_bodies_from(old);
                back += held
                    .changes()
                    .iter()
                    .zip(held.bodies())
                    .zip(before)
                    .filter(|((c, b), was)| {
                        !was && matches!(b, Body::Present { .. }) && self.body_erased(&c.doc)
                    })
                    .count() as u64;
            }
        }
        image.scrubbed = older.scrubbed.clone();
        // Not on disk: what an open derives.
        image.erased = BTreeSet::new();
        image.refresh_stripped();
        (image, back)
    }

    /// Bodies of `persons`' documents (their erasure's own excepted) present in records
    /// of this log, as (log index, document): in readable records, and apart those in
    /// damaged records (kept in place by the real log, which cannot rewrite them).
    pub fn bodies_of(&self, persons: &BTreeSet<Person>) -> (Vec<BodyAt>, Vec<BodyAt>) {
        let (mut readable, mut damaged) = (Vec::new(), Vec::new());
        if persons.is_empty() {
            return (readable, damaged);
        }
        for (at, entry) in self.log.iter().enumerate() {
            let LogEntry::Envelope(env) = entry else { continue };
            for (doc, _) in env.present_changes() {
                if erases_body_of(&|p: &Person| persons.contains(p), &doc) {
                    if self.damaged.contains(&at) {
                        damaged.push((at, doc));
                    } else {
                        readable.push((at, doc));
                    }
                }
            }
        }
        (readable, damaged)
    }

    /// Shares `tally` with this store (and every clone made of it from now on).
    pub fn with_tally(mut self, tally: ErasureTally) -> SimStore {
        self.tally = tally;
        self
    }

    /// Damages the record of `author`'s chain envelope at `seq`, which must be below
    /// the author's head (damage at the very end is a torn tail, modelled by crashes):
    /// the envelope becomes a hole. Returns whether it was held.
    pub fn damage(&mut self, author: &DeviceKey, seq: Seq) -> bool {
        if self.heads.get(author).is_none_or(|h| h.seq <= seq) {
            return false;
        }
        let Some(at) = self.chain.remove(&(*author, seq)) else { return false };
        self.damaged.insert(at);
        self.stripped.remove(&(*author, seq));
        self.holes.insert((*author, seq));
        true
    }

    /// Empties every body of `author`'s chain envelope at `seq` (a carrier's copy).
    /// Returns whether it had bodies to lose.
    pub fn strip(&mut self, author: &DeviceKey, seq: Seq) -> bool {
        let Some(&at) = self.chain.get(&(*author, seq)) else { return false };
        let LogEntry::Envelope(env) = &mut self.log[at] else { return false };
        if env.bodies().is_empty() || !env.has_all_bodies() {
            return false;
        }
        for index in 0..env.bodies().len() {
            env.strip_body(index);
        }
        let env = env.clone();
        if self.lacks_wanted_bodies(&env) {
            self.stripped.insert((*author, seq));
        }
        true
    }

    /// Holes and envelopes without their bodies (both asked of peers), among the
    /// envelopes that count (past a revocation or a fork nobody passes them on).
    pub fn incomplete(&self) -> (usize, usize) {
        let counting =
            |set: &BTreeSet<(DeviceKey, Seq)>| set.iter().filter(|(a, s)| self.counts(a, *s)).count();
        (counting(&self.holes), counting(&self.stripped))
    }

    /// Envelopes without their bodies, as [`SimStore::incomplete`] counts them, whose
    /// every lacking wanted body is of a document of one of `persons` and is present in
    /// none of `stores`' copies: gone for good.
    pub fn lacking_only_bodies_nobody_has(&self, persons: &BTreeSet<Person>, stores: &[&SimStore]) -> usize {
        if persons.is_empty() {
            return 0;
        }
        self.stripped
            .iter()
            .filter(|(a, q)| self.counts(a, *q))
            .filter_map(|(a, q)| self.envelope_at(a, *q))
            .filter(|env| {
                env.changes().iter().zip(env.bodies()).enumerate().all(|(i, (c, b))| {
                    !matches!(b, Body::Absent)
                        || self.body_erased(&c.doc)
                        || persons.contains(&Person::of(&c.doc))
                            && !stores.iter().any(|s| {
                                s.envelope_at(&env.author(), env.seq()).is_some_and(|other| {
                                    other.id() == env.id()
                                        && matches!(other.bodies().get(i), Some(Body::Present { .. }))
                                })
                            })
                })
            })
            .count()
    }

    /// Whether `device`'s own chain has a hole: the node must not sign (it could sign
    /// a seq it signed before), as the real store's `signing_blocked`.
    pub fn signing_blocked(&self, device: &DeviceKey) -> bool {
        self.holes.iter().any(|(author, _)| author == device)
    }

    /// `author`'s chain envelope at `seq`, if held whole (bodies included).
    pub fn whole_at(&self, author: &DeviceKey, seq: Seq) -> bool {
        self.envelope_at(author, seq).is_some_and(Envelope::has_all_bodies)
    }

    /// Every chain envelope held, by author and seq.
    pub fn chain_keys(&self) -> impl Iterator<Item = &(DeviceKey, Seq)> {
        self.chain.keys()
    }

    pub fn trust(&self) -> &TrustState {
        &self.trust
    }
    pub fn heads(&self) -> &VersionVector {
        &self.heads
    }
    pub fn forks(&self) -> &BTreeSet<Fork> {
        &self.forks
    }
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }
    pub fn envelope_at(&self, author: &DeviceKey, seq: Seq) -> Option<&Envelope> {
        match self.log.get(*self.chain.get(&(*author, seq))?)? {
            LogEntry::Envelope(env) => Some(env),
            LogEntry::Trust(_) => None,
        }
    }
    /// The chain envelopes that change `doc`, in log order.
    pub fn doc_changes(&self, doc: &DocId) -> &[(DeviceKey, Seq)] {
        self.docs.get(doc).map_or(&[], Vec::as_slice)
    }
    pub fn docs(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// Whether `author`'s envelope at `seq` counts towards the documents: the rule of
    /// the node's materializer (certified for that seq under the current trust, and not
    /// at or after a fork of its author), which depends only on the set of entries held.
    pub fn counts(&self, author: &DeviceKey, seq: Seq) -> bool {
        still_counts(&self.trust, &self.forks, author, seq)
    }

    /// A digest of what the store holds as a set: trust entries, forks, and each
    /// author's chain up to its last envelope that still counts. Equal on two stores
    /// that converged, whatever the order things arrived in. (A store that accepted a
    /// device's envelopes before learning of its revocation keeps them, invalid from
    /// then on; a store that learnt of it first never takes them. Likewise past the
    /// point where a forked author's histories part. Stores agree on every envelope
    /// that counts, which is what convergence means.)
    pub fn digest(&self) -> [u8; 32] {
        let mut parts: BTreeMap<DeviceKey, Seq> = BTreeMap::new();
        // A fork past a device's revocation point parts nothing: no envelope there
        // counts anyway, and stores that learned of the revocation first refuse the
        // evidence (seeds 476 and 1996).
        for fork in self.forks.iter().filter(|f| self.trust.authorize(&f.author, f.seq).is_ok()) {
            let at = parts.entry(fork.author).or_insert(fork.seq);
            *at = (*at).min(fork.seq);
        }
        let mut h = blake3::Hasher::new();
        for (author, head) in self.heads.iter() {
            let mut valid = match self.trust.device_revoked_after(author) {
                Some(last_valid) if last_valid < head.seq => last_valid,
                _ => head.seq,
            };
            // Past a fork nothing of the author counts, and sessions stop streaming it.
            if let Some(part) = parts.get(author) {
                valid = valid.min(Seq(part.0.saturating_sub(1)));
            }
            let Some(id) = self.chain_id(author, valid) else { continue };
            h.update(author.as_bytes());
            h.update(&valid.0.to_le_bytes());
            h.update(id.as_bytes());
        }
        h.update(b"trust");
        let mut ids: Vec<_> = self.trust.ids().copied().collect();
        ids.sort();
        for id in ids {
            h.update(id.as_bytes());
        }
        // Where each forked author's history parts (what the documents depend on).
        h.update(b"forks");
        for (author, seq) in parts {
            h.update(author.as_bytes());
            h.update(&seq.0.to_le_bytes());
        }
        *h.finalize().as_bytes()
    }
}

impl LogView for SimStore {
    fn trust(&self) -> &TrustState {
        &self.trust
    }
    fn head(&self, author: &DeviceKey) -> Option<Head> {
        self.heads.get(author)
    }
    fn chain_id(&self, author: &DeviceKey, seq: Seq) -> Option<EnvelopeId> {
        self.envelope_at(author, seq).map(Envelope::id)
    }
    fn chain_prev(&self, author: &DeviceKey, seq: Seq) -> Option<EnvelopeId> {
        self.envelope_at(author, seq).map(Envelope::prev)
    }
    fn has_evidence(&self, author: &DeviceKey, seq: Seq, id: &EnvelopeId) -> bool {
        self.evidence.contains_key(&(*author, seq, *id))
    }
}

impl LocalLog for SimStore {
    fn heads(&self) -> &VersionVector {
        &self.heads
    }
    fn trust(&self) -> &TrustState {
        &self.trust
    }
    fn envelope(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, LocalLogError> {
        Ok(self.envelope_at(author, seq).cloned())
    }
    fn forks_known(&self) -> usize {
        self.forks.len()
    }
    /// Holes, then stripped bodies, of envelopes that still count (as the real node's).
    fn wanted(&self, limit: usize) -> Result<Vec<Wanted>, LocalLogError> {
        let holes = self.holes.iter().map(|&(author, seq)| Wanted { author, seq, kind: WantKind::Envelope });
        let bodies =
            self.stripped.iter().map(|&(author, seq)| Wanted { author, seq, kind: WantKind::Bodies });
        Ok(holes.chain(bodies).filter(|w| self.counts(&w.author, w.seq)).take(limit).collect())
    }
    fn fork_evidence(&self) -> Result<Vec<Envelope>, LocalLogError> {
        Ok(self
            .evidence
            .values()
            .filter_map(|&at| match &self.log[at] {
                LogEntry::Envelope(env) => Some(env.clone()),
                LogEntry::Trust(_) => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_log::testkit::TestNetwork;

    #[test]
    fn admits_like_the_store_duplicates_forks_and_bad_signatures() {
        let mut net = TestNetwork::new(3, 1, 2);
        let network = net.network;
        let mut store = SimStore::new(&net.entries, network, VerifiedMemo::default());
        let a1 = net.devices[0].next_simple(&network, 1, 20);
        let a2 = net.devices[0].next_simple(&network, 2, 20);
        let (new, _) =
            store.ingest(&[LogEntry::Envelope(a1.clone()), LogEntry::Envelope(a2.clone())]).unwrap();
        assert_eq!(new.len(), 2);
        // Duplicates are not new.
        let (new, _) = store.ingest(&[LogEntry::Envelope(a2.clone())]).unwrap();
        assert!(new.is_empty());
        // A second history at seq 2 is kept as evidence and reported once.
        net.devices[0].head = Some((a1.seq(), a1.id()));
        let other = net.devices[0].next_simple(&network, 99, 20);
        let (new, forks) = store.ingest(&[LogEntry::Envelope(other.clone())]).unwrap();
        assert!(new.is_empty());
        assert_eq!(forks.len(), 1);
        assert!(!store.counts(&a2.author(), a2.seq()));
        assert!(store.counts(&a1.author(), a1.seq()));
        // A tampered envelope is refused and nothing of its batch is stored.
        let b1 = net.devices[1].next_simple(&network, 3, 20);
        let mut bytes = b1.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let bad = Envelope::decode(&bytes).unwrap();
        let before = store.log().len();
        let refused = store.ingest(&[LogEntry::Envelope(b1), LogEntry::Envelope(bad)]).unwrap_err();
        assert_eq!(refused.index, 1);
        assert_eq!(store.log().len(), before);
    }

    /// The real store's erasure rules (`tessera-store`, `store/erase.rs`), here.
    #[test]
    fn erases_like_the_store_refuses_back_and_scrubs_at_open() {
        use tessera_log::erasure::{Erasure, ErasureReason};
        // Two devices per partner: 0 and 1 of partner 0, 2 of partner 1.
        let mut net = TestNetwork::new(44, 2, 2);
        let network = net.network;
        let nonce = [7u8; 16];
        let person = tessera_log::person_id(&net.devices[0].partner, &nonce);
        let other = DocId([3; 16]);
        let body = Erasure {
            erased_on: "2026-12-07".into(),
            reason: ErasureReason::Request,
            nonce,
            stub: vec![1; 30],
        }
        .encode()
        .unwrap();
        let register = LogEntry::Envelope(net.devices[0].next(
            &network,
            &[(person.doc(2), b"card".as_slice()), (person.personal_doc(), b"details"), (other, b"a device")],
        ));
        let edit = LogEntry::Envelope(net.devices[2].next(&network, &[(person.doc(2), b"merge".as_slice())]));
        // Another partner, with the right nonce: its key makes another id.
        let by_other_partner =
            LogEntry::Envelope(net.devices[2].next(&network, &[(person.erasure_doc(), &body)]));
        let by_colleague =
            LogEntry::Envelope(net.devices[1].next(&network, &[(person.erasure_doc(), &body)]));
        let genesis = SimStore::new(&net.entries, network, VerifiedMemo::default());
        let bodies = |s: &SimStore| s.bodies_of(&BTreeSet::from([person])).0.len();

        let mut store = genesis.clone();
        store.ingest(&[register.clone(), edit.clone(), by_other_partner.clone()]).unwrap();
        assert!(store.erased().is_empty(), "another partner's erasure erases nothing");
        assert_eq!(bodies(&store), 3);
        let before = store.clone();
        store.ingest(std::slice::from_ref(&by_colleague)).unwrap();
        assert!(store.erased().contains(&person));
        assert_eq!(bodies(&store), 0);
        // Every header stays, the unrelated body too, and nothing is wanted.
        let env = store.envelope_at(&net.devices[0].id, Seq(1)).unwrap();
        assert_eq!(env.present_changes().map(|(d, _)| d).collect::<Vec<_>>(), vec![other]);
        assert_eq!(store.incomplete(), (0, 0));
        // An old copy brings nothing back.
        store.ingest(&[register.clone(), edit.clone()]).unwrap();
        assert_eq!(bodies(&store), 0);
        // A torn image (the old records, the erasure, no scrubbed mark): scrubbed at open.
        let (mut image, back) = store.torn_copy(&before);
        assert_eq!(back, 3);
        assert_eq!(bodies(&image), 3);
        image.reopen();
        assert!(image.erased().contains(&person));
        assert_eq!(bodies(&image), 0);
        assert_eq!(image.incomplete(), (0, 0));

        // The erasure first: it counts at once, and the bodies are refused on arrival.
        let mut early = genesis.clone();
        early.ingest(std::slice::from_ref(&by_colleague)).unwrap();
        assert!(early.erased().contains(&person));
        // (The tally is shared by every clone of `genesis`.)
        let refused = early.tally.get().refused_on_arrival;
        early.ingest(&[register.clone(), edit.clone()]).unwrap();
        assert_eq!(bodies(&early), 0);
        assert_eq!(early.incomplete(), (0, 0));
        assert_eq!(early.tally.get().refused_on_arrival - refused, 3);

        // The colleague revoked before its erasure: the erasure no longer counts, and
        // the bodies are wanted again.
        let revocation = net.revoke_device(0, net.devices[1].id, Seq(0), "tablet smarrito");
        early.ingest(&[LogEntry::Trust(revocation)]).unwrap();
        assert!(early.erased().is_empty());
        assert_eq!(early.incomplete().1, 2);
        early.ingest(&[register, edit]).unwrap();
        assert_eq!(bodies(&early), 3);
        assert_eq!(early.incomplete(), (0, 0));
    }
}
