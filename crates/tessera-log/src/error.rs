//! Why an envelope or trust entry was refused. One variant per rule, each with a
//! message a person can act on; none of them ever carries a body or a secret.

use thiserror::Error;

use crate::codec::DecodeError;
use crate::ids::{DeviceKey, NetworkId, PartnerKey, PublicKey, Seq};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    #[error("malformed data: {0}")]
    Decode(#[from] DecodeError),
    #[error("this entry belongs to network {found}, not to this network ({expected})")]
    ForeignNetwork { expected: NetworkId, found: NetworkId },
    #[error("envelope {seq} of device {device}: the signature does not match, so it was altered or forged")]
    BadSignature { device: DeviceKey, seq: Seq },
    #[error("{what} signed by {issuer}: the signature does not match, so it was altered or forged")]
    BadTrustSignature { what: &'static str, issuer: PublicKey },
    #[error("envelope {got} of device {device} arrived before envelope {expected}: a gap in its history (envelopes are missing, not necessarily tampered with)")]
    SeqGap { device: DeviceKey, expected: Seq, got: Seq },
    #[error("envelope {seq} of device {device} does not follow the envelope {prev_seq} we hold (its previous-hash differs): the device signed two different histories")]
    WrongPrev { device: DeviceKey, seq: Seq, prev_seq: Seq },
    #[error("device {device} is not certified in this network (unknown author of envelope {seq})")]
    UnknownAuthor { device: DeviceKey, seq: Seq },
    #[error("partner {partner} is not certified by this network's coordinator")]
    UnknownPartner { partner: PartnerKey },
    #[error("{issuer} may not revoke device {device}: only the network key or a partner that certified the device can")]
    UnauthorizedIssuer { issuer: PublicKey, device: DeviceKey },
    #[error("{max} certificates or revocations are already waiting for the certificate they depend on; this {what} is refused")]
    TooManyWaiting { what: &'static str, max: usize },
    #[error("device {device} was revoked after its envelope {last_valid}; envelope {seq} is not accepted")]
    Revoked { device: DeviceKey, seq: Seq, last_valid: Seq },
    #[error("partner {partner} of device {device} was revoked, valid up to the device's envelope {last_valid}; envelope {seq} is not accepted")]
    PartnerRevoked { partner: PartnerKey, device: DeviceKey, seq: Seq, last_valid: Seq },
    #[error("envelope {seq} of device {device}: change {index} does not match its signed commitment (the body was altered or swapped)")]
    CommitmentMismatch { device: DeviceKey, seq: Seq, index: usize },
}

impl VerifyError {
    /// An envelope its author's trust no longer allows (a revocation of the device or
    /// of its partner before it). A sender that has not learnt of the revocation yet
    /// offers it in good faith, so a session skips it rather than refusing the batch
    /// it came in (the trust entries in that batch may be the very ones the sender
    /// lacks to learn of the revocation).
    pub fn is_past_revocation(&self) -> bool {
        matches!(self, VerifyError::Revoked { .. } | VerifyError::PartnerRevoked { .. })
    }
}

/// Why a new envelope or trust entry could not be built locally.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    #[error("a transaction must change at least one document")]
    NoChanges,
    #[error("{what} is too large: {len}, the limit is {max}")]
    Oversized { what: &'static str, len: usize, max: usize },
    #[error("cannot sign a new envelope after seq {0}: the sequence is exhausted")]
    SeqExhausted(Seq),
}
