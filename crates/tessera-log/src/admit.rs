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
    /// Whether this exact envelope is already kept as fork evidence.
    fn has_evidence(&self, author: &DeviceKey, seq: Seq, id: &EnvelopeId) -> bool;
}

/// What earlier entries of the batch being admitted changed, over the committed state.
#[derive(Debug, Default)]
pub struct Staging {
    trust: Option<TrustState>,
    heads: HashMap<DeviceKey, Head>,
    chain_ids: HashMap<(DeviceKey, Seq), EnvelopeId>,
    fork_ids: BTreeSet<(DeviceKey, Seq, EnvelopeId)>,
}

impl Staging {
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
                Added::New => Ok(Admission::Trust),
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
                    return Ok(Admission::Chain { author, seq, id: env.id() });
                }
                Ok(Placement::AtOrBelowHead) => match held_at(seq) {
                    Some(held) if held == env.id() => return Ok(Admission::Duplicate),
                    Some(held) => fork_point(author, seq, held, env, held_at),
                    None => return Err(VerifyError::SeqGap { device: author, expected: seq, got: seq }),
                },
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
