//! An in-memory store with the durable store's rules: what one simulated node or relay
//! holds on disk.
//!
//! Every entry goes through [`tessera_log::admit`], the admission function the real
//! store runs (authority, strict signature, bodies, chain, duplicates, fork evidence),
//! all or nothing per batch as a sync session asks. A [`SimStore`] holds only what is
//! durable: the simulator queues writes in front of it (see `world`), and a crash drops
//! that queue, never what is here. It implements [`LocalLog`] so the real sync session
//! reads it the way it reads `tessera_store::Store`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;

use tessera_log::{
    admit_with, still_counts, Admission, DeviceKey, DocId, Envelope, EnvelopeId, Fork, Head, LogEntry,
    LogView, Seq, Staging, TrustEntry, TrustState, VerifyError, VersionVector,
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
    stripped: BTreeSet<(DeviceKey, Seq)>,
    memo: VerifiedMemo,
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
            memo,
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
        let mut staging = Staging::default();
        let mut admitted = Vec::new();
        let mut fills = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
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
                    if !env.has_all_bodies() {
                        self.stripped.insert((author, seq));
                    }
                    for change in env.changes() {
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
                (Admission::Trust, _) => new.push(entry.clone()),
                (Admission::Duplicate, _) | (Admission::Chain { .. }, LogEntry::Trust(_)) => {}
            }
        }
        for env in fills {
            let key = (env.author(), env.seq());
            let Some(&at) = self.chain.get(&key) else { continue };
            if let LogEntry::Envelope(held) = &mut self.log[at] {
                held.fill_bodies_from(env);
                if held.has_all_bodies() {
                    self.stripped.remove(&key);
                }
            }
        }
        Ok((new, forks))
    }

    /// Damages the record of `author`'s chain envelope at `seq`, which must be below
    /// the author's head (damage at the very end is a torn tail, modelled by crashes):
    /// the envelope becomes a hole. Returns whether it was held.
    pub fn damage(&mut self, author: &DeviceKey, seq: Seq) -> bool {
        if self.heads.get(author).is_none_or(|h| h.seq <= seq) || self.chain.remove(&(*author, seq)).is_none()
        {
            return false;
        }
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
        self.stripped.insert((*author, seq));
        true
    }

    /// Holes and envelopes without their bodies (both asked of peers), among the
    /// envelopes that count (past a revocation or a fork nobody passes them on).
    pub fn incomplete(&self) -> (usize, usize) {
        let counting =
            |set: &BTreeSet<(DeviceKey, Seq)>| set.iter().filter(|(a, s)| self.counts(a, *s)).count();
        (counting(&self.holes), counting(&self.stripped))
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
}
