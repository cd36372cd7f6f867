//! Admission: what an incoming entry is to a log that holds what it holds: new trust,
//! the next envelope of its author's chain, a duplicate, or proof of a fork.
//!
//! This is the one decision every log makes before writing, whatever keeps the log:
//! the durable store (`tessera-store`) and the simulator's in-memory stores both call
//! [`admit`], so the simulator exercises the very rules the product runs. The caller
//! reads its committed state through [`LogView`]; [`Staging`] carries what earlier
//! entries of the same batch changed (a revocation earlier in a batch applies to the
//! envelopes after it; two envelopes of one author in a batch extend the chain twice).
//! Nothing here writes: the caller writes the admitted entries, durably, then commits
//! the staging (see [`Staging::into_trust`]).

use std::collections::{BTreeSet, HashMap};

use crate::chain::{check_link, Head, Placement};
use crate::entry::LogEntry;
use crate::envelope::Envelope;
use crate::error::VerifyError;
use crate::ids::{DeviceKey, EnvelopeId, Seq};
use crate::trust::{Added, TrustState};

/// A fork: the author signed two different envelopes at `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fork {
    pub author: DeviceKey,
    pub seq: Seq,
    /// The envelope at `seq` in the chain this log follows.
    pub held: EnvelopeId,
    /// The other envelope at `seq` (or the `prev` of an envelope that follows it).
    pub other: EnvelopeId,
}

/// Where two histories of `author` part, as far as one envelope of the other history
/// (`other`, at `seq`, where this log holds `held`) tells: at `seq - 1` when its `prev`
/// differs from the envelope held there, else at `seq`. The same pair of envelopes
/// gives the same answer whichever of the two histories a log follows, so logs that
/// exchanged the same evidence agree on where each fork starts.
pub fn fork_point(
    author: DeviceKey,
    seq: Seq,
    held: EnvelopeId,
    other: &Envelope,
    held_at: impl Fn(Seq) -> Option<EnvelopeId>,
) -> Fork {
    let before = seq.0.checked_sub(1).filter(|s| *s > 0).map(Seq);
    match before.and_then(|b| held_at(b).map(|h| (b, h))) {
        Some((b, h)) if h != other.prev() => Fork { author, seq: b, held: h, other: other.prev() },
        _ => Fork { author, seq, held, other: other.id() },
    }
}

/// The committed state of a log, as admission needs it.
pub trait LogView {
    /// The accepted trust entries.
    fn trust(&self) -> &TrustState;
    /// The last envelope held of `author` in the chain this log follows.
    fn head(&self, author: &DeviceKey) -> Option<Head>;
    /// The id of `author`'s envelope at `seq` in that chain.
    fn chain_id(&self, author: &DeviceKey, seq: Seq) -> Option<EnvelopeId>;
    /// The `prev` of `author`'s envelope at `seq` in that chain (to check an envelope
    /// that fills a hole below it).
    fn chain_prev(&self, author: &DeviceKey, seq: Seq) -> Option<EnvelopeId>;
    /// Whether this exact envelope is already kept as fork evidence.
    fn has_evidence(&self, author: &DeviceKey, seq: Seq, id: &EnvelopeId) -> bool;
}

/// Whether `env`, at a seq below its author's head where nothing is held, fits the
/// chain around it: its `prev` is the envelope held just before it (when held) and the
/// envelope held just after it names it as `prev` (when held). Seqs that are missing
/// on both sides are checked when their neighbours arrive, so holes fill in any order.
///
/// An envelope that does not fit is validly signed (checked before) and contradicts
/// the chain: the author signed two histories, and the returned fork says where they
/// part, as [`fork_point`] would for a log that held the other one (at `seq - 1` when
/// its `prev` differs from the envelope held there, else at `seq`, where the envelope
/// after it names another). A copied data directory answering a hole with its own
/// branch is thus evidence, kept, never a reason to refuse what came with it.
fn fits_hole(
    view: &dyn LogView,
    staging: &Staging,
    env: &Envelope,
    held_at: &dyn Fn(Seq) -> Option<EnvelopeId>,
) -> Result<(), Fork> {
    let (author, seq) = (env.author(), env.seq());
    let before = match seq.0.checked_sub(1) {
        Some(0) | None => Some((Seq(0), EnvelopeId::default())),
        Some(b) => held_at(Seq(b)).map(|id| (Seq(b), id)),
    };
    if let Some((before_seq, held)) = before.filter(|(_, id)| *id != env.prev()) {
        return Err(Fork { author, seq: before_seq, held, other: env.prev() });
    }
    let after = seq.next().and_then(|next| {
        staging.chain_prevs.get(&(author, next)).copied().or_else(|| view.chain_prev(&author, next))
    });
    if let Some(named) = after.filter(|prev| *prev != env.id()) {
        return Err(Fork { author, seq, held: named, other: env.id() });
    }
    Ok(())
}

/// Whether `author`'s envelope at `seq` still counts for a log with this trust and
/// these forks: its author may sign it (no revocation before it) and no fork of the
/// author starts at or before it. Nobody passes on what does not count, so a log
/// never asks its peers for it.
pub fn still_counts(trust: &TrustState, forks: &BTreeSet<Fork>, author: &DeviceKey, seq: Seq) -> bool {
    trust.authorize(author, seq).is_ok() && !forks.iter().any(|f| f.author == *author && seq >= f.seq)
}

/// What earlier entries of the batch being admitted changed, over the committed state.
#[derive(Debug, Default)]
pub struct Staging {
    trust: Option<TrustState>,
    heads: HashMap<DeviceKey, Head>,
    chain_ids: HashMap<(DeviceKey, Seq), EnvelopeId>,
    chain_prevs: HashMap<(DeviceKey, Seq), EnvelopeId>,
    fork_ids: BTreeSet<(DeviceKey, Seq, EnvelopeId)>,
    /// Replaying a log whose damaged records were skipped: an envelope past a gap in
    /// its author's chain is taken (it was admitted when it was written), leaving a hole.
    allow_gaps: bool,
}

impl Staging {
    /// For replaying records read back from a log (see [`Staging::allow_gaps`]): a
    /// gap is a record lost to damage, never a reason to drop the records after it.
    pub fn replaying() -> Staging {
        Staging { allow_gaps: true, ..Staging::default() }
    }

    /// The trust state after the batch, when the batch changed it.
    pub fn into_trust(self) -> Option<TrustState> {
        self.trust
    }
}

/// What an admitted entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Already held (same envelope in the chain, same evidence, known trust entry).
    Duplicate,
    /// A trust entry new to this log.
    Trust,
    /// The next envelope of its author's chain.
    Chain { author: DeviceKey, seq: Seq, id: EnvelopeId },
    /// A validly signed envelope that contradicts the chain held: kept as evidence.
    ForkEvidence { fork: Fork, seq: Seq, id: EnvelopeId },
}

/// Decides what `entry` is, given the committed state `view` and the batch so far
/// (`staging`, updated when the entry is admitted). An error refuses the entry; the
/// staging is then unchanged for envelopes, and for trust entries too (a refused
/// trust entry adds nothing).
pub fn admit(view: &dyn LogView, staging: &mut Staging, entry: &LogEntry) -> Result<Admission, VerifyError> {
    admit_with(view, staging, entry, &|trust, envelope| trust.verify_envelope_signature(envelope))
}

/// [`admit`] with the signature and body check supplied by the caller: the simulator
/// remembers envelopes whose exact bytes already verified, since thousands of
/// simulated stores verify the same envelopes. `verify` must answer exactly what
/// [`TrustState::verify_envelope_signature`] answers.
pub fn admit_with(
    view: &dyn LogView,
    staging: &mut Staging,
    entry: &LogEntry,
    verify: &dyn Fn(&TrustState, &Envelope) -> Result<(), VerifyError>,
) -> Result<Admission, VerifyError> {
    match entry {
        LogEntry::Trust(trust_entry) => {
            let trust = staging.trust.get_or_insert_with(|| view.trust().clone());
            match trust.add(trust_entry.clone())? {
                Added::AlreadyKnown => Ok(Admission::Duplicate),
                // A waiting entry is held (and stored) too: it counts once accepted.
                Added::New | Added::Waiting => Ok(Admission::Trust),
            }
        }
        LogEntry::Envelope(env) => {
            let author = env.author();
            let seq = env.seq();
            let trust = staging.trust.as_ref().unwrap_or(view.trust());
            trust.authorize(&author, seq)?;
            // The signature is checked before the chain, so that anything kept as fork
            // evidence is known to be signed by its author.
            verify(trust, env)?;
            let head = staging.heads.get(&author).copied().or_else(|| view.head(&author));
            let held_at = |seq: Seq| -> Option<EnvelopeId> {
                staging.chain_ids.get(&(author, seq)).copied().or_else(|| view.chain_id(&author, seq))
            };
            let fork = match check_link(head, env) {
                Ok(Placement::Next) => {
                    staging.heads.insert(author, Head { seq, id: env.id() });
                    staging.chain_ids.insert((author, seq), env.id());
                    staging.chain_prevs.insert((author, seq), env.prev());
                    return Ok(Admission::Chain { author, seq, id: env.id() });
                }
                Ok(Placement::AtOrBelowHead) => match held_at(seq) {
                    Some(held) if held == env.id() => return Ok(Admission::Duplicate),
                    Some(held) => fork_point(author, seq, held, env, held_at),
                    // Below the head with nothing held there: a hole left by a damaged
                    // log, filled back if the envelope links to what is held around it.
                    None => match fits_hole(view, staging, env, &held_at) {
                        Ok(()) => {
                            staging.chain_ids.insert((author, seq), env.id());
                            staging.chain_prevs.insert((author, seq), env.prev());
                            return Ok(Admission::Chain { author, seq, id: env.id() });
                        }
                        Err(fork) => fork,
                    },
                },
                Err(VerifyError::SeqGap { .. }) if staging.allow_gaps => {
                    staging.heads.insert(author, Head { seq, id: env.id() });
                    staging.chain_ids.insert((author, seq), env.id());
                    staging.chain_prevs.insert((author, seq), env.prev());
                    return Ok(Admission::Chain { author, seq, id: env.id() });
                }
                Err(VerifyError::WrongPrev { prev_seq, .. }) => {
                    let held = held_at(prev_seq).unwrap_or_default();
                    Fork { author, seq: prev_seq, held, other: env.prev() }
                }
                Err(e) => return Err(e),
            };
            let key = (author, seq, env.id());
            if staging.fork_ids.contains(&key) || view.has_evidence(&author, seq, &env.id()) {
                return Ok(Admission::Duplicate);
            }
            staging.fork_ids.insert(key);
            Ok(Admission::ForkEvidence { fork, seq, id: env.id() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestNetwork;
    use std::collections::BTreeMap;

    /// A log that holds a chain with holes (what a damaged segment leaves).
    struct Holed {
        trust: TrustState,
        chain: BTreeMap<Seq, Envelope>,
    }

    impl LogView for Holed {
        fn trust(&self) -> &TrustState {
            &self.trust
        }
        fn head(&self, _: &DeviceKey) -> Option<Head> {
            self.chain.last_key_value().map(|(seq, env)| Head { seq: *seq, id: env.id() })
        }
        fn chain_id(&self, _: &DeviceKey, seq: Seq) -> Option<EnvelopeId> {
            self.chain.get(&seq).map(Envelope::id)
        }
        fn chain_prev(&self, _: &DeviceKey, seq: Seq) -> Option<EnvelopeId> {
            self.chain.get(&seq).map(Envelope::prev)
        }
        fn has_evidence(&self, _: &DeviceKey, _: Seq, _: &EnvelopeId) -> bool {
            false
        }
    }

    #[test]
    fn a_hole_is_filled_by_the_envelope_that_fits_it_and_another_is_fork_evidence() {
        let mut net = TestNetwork::new(5, 1, 1);
        let network = net.network;
        let envs: Vec<Envelope> = (0..6).map(|n| net.devices[0].next_simple(&network, n, 16)).collect();
        let mut trust = TrustState::new(network);
        for entry in &net.entries {
            trust.add(entry.clone()).unwrap();
        }
        // Seqs 2, 3 and 4 were lost; 1, 5 and 6 are held.
        let chain = [0, 4, 5].iter().map(|&i| (envs[i].seq(), envs[i].clone())).collect();
        let view = Holed { trust, chain };
        for order in [[1usize, 2, 3], [3, 2, 1], [2, 3, 1]] {
            let mut staging = Staging::default();
            for i in order {
                let admitted = admit(&view, &mut staging, &LogEntry::Envelope(envs[i].clone())).unwrap();
                assert_eq!(
                    admitted,
                    Admission::Chain { author: envs[i].author(), seq: envs[i].seq(), id: envs[i].id() }
                );
            }
        }
        // Another envelope signed at seq 3 does not fit once seqs 2 and 4 are back: it
        // proves that the author signed two histories, parting at seq 2 (its prev is
        // not the seq 2 held), and is kept as evidence.
        net.devices[0].head = Some((envs[0].seq(), envs[0].id()));
        let other_two = net.devices[0].next_simple(&network, 97, 16);
        let other = net.devices[0].next_simple(&network, 99, 16);
        let mut staging = Staging::default();
        admit(&view, &mut staging, &LogEntry::Envelope(envs[1].clone())).unwrap();
        admit(&view, &mut staging, &LogEntry::Envelope(envs[3].clone())).unwrap();
        let admitted = admit(&view, &mut staging, &LogEntry::Envelope(other.clone())).unwrap();
        let fork = Fork { author: other.author(), seq: Seq(2), held: envs[1].id(), other: other_two.id() };
        assert_eq!(admitted, Admission::ForkEvidence { fork, seq: Seq(3), id: other.id() });
        // The same evidence again is a duplicate.
        let again = admit(&view, &mut staging, &LogEntry::Envelope(other)).unwrap();
        assert_eq!(again, Admission::Duplicate);
        // A seq 4 that seq 5 does not name: the histories part at seq 4 itself.
        net.devices[0].head = Some((envs[2].seq(), envs[2].id()));
        let wrong_four = net.devices[0].next_simple(&network, 98, 16);
        let mut staging = Staging::default();
        let admitted = admit(&view, &mut staging, &LogEntry::Envelope(wrong_four.clone())).unwrap();
        let fork =
            Fork { author: wrong_four.author(), seq: Seq(4), held: envs[3].id(), other: wrong_four.id() };
        assert_eq!(admitted, Admission::ForkEvidence { fork, seq: Seq(4), id: wrong_four.id() });
    }
}
