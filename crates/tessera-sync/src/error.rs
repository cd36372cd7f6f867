//! Why a session ended, in words a relay operator can act on.
//!
//! [`SessionError`] is what this node reports (its own refusals, the peer's Close,
//! local failures); [`SessionError::peer_text`] is what it tells the peer in its
//! Close message. Errors carry keys, seqs and ids, never a change body or a name.

use std::time::Duration;

use tessera_log::{DecodeError, DeviceKey, NetworkId, Seq, TrustEntryId};
use thiserror::Error;

use crate::message::{BatchId, CloseCode};

/// How the peer broke the protocol (each ends the session with a Close
/// `ProtocolViolation`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolViolation {
    #[error("the first message must be a Hello, got {got}")]
    HelloFirst { got: &'static str },
    #[error("a second Hello")]
    SecondHello,
    #[error("a second Want")]
    SecondWant,
    #[error("batch {got} arrived where batch {expected} was due (batches are numbered 1, 2, 3… in order)")]
    BatchOutOfOrder { expected: BatchId, got: BatchId },
    #[error("more than {limit} batches in flight: the peer ignored flow control")]
    TooManyBatchesInFlight { limit: usize },
    #[error("a batch of {count} entries, above the announced limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("an Ack for batch {got}, but the oldest batch awaiting an Ack is {expected:?}")]
    AckOutOfOrder { expected: Option<BatchId>, got: BatchId },
    #[error("a second CaughtUp")]
    SecondCaughtUp,
    #[error("CaughtUp names batch {last} as its last, but batch {received} was the last received")]
    CaughtUpMismatch { last: BatchId, received: BatchId },
    #[error("more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
}

/// Why a session ended (other than by a normal close).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    #[error("the peer speaks sync protocol version {peer}, this node speaks version {ours}: update the older of the two")]
    UnsupportedVersion { ours: u8, peer: u8 },
    #[error("the peer belongs to network {peer}, not to this node's network {ours}: it is not part of this programme")]
    WrongNetwork { ours: NetworkId, peer: NetworkId },
    #[error("the peer presents this node's own device key {}: a node cannot sync with itself or with a copy of itself", .device.short())]
    SelfConnection { device: DeviceKey },
    #[error("a message of {len} bytes from the peer is above the limit of {max} bytes")]
    MessageTooLarge { len: usize, max: usize },
    #[error("malformed {what} message from the peer: {source}")]
    Malformed {
        what: &'static str,
        #[source]
        source: DecodeError,
    },
    #[error("protocol violation by the peer: {0}")]
    Protocol(#[from] ProtocolViolation),
    #[error("the peer sent envelope {seq} of device {} and this node refused it, so nothing from that batch was stored: {reason}", .author.short())]
    RejectedEnvelope { author: DeviceKey, seq: Seq, reason: String },
    #[error("the peer sent trust entry {id} and this node refused it, so nothing from that batch was stored: {reason}")]
    RejectedTrustEntry { id: TrustEntryId, reason: String },
    #[error("this node could not store batch {batch} from the peer (a local failure, not the peer's fault): {reason}")]
    LocalIngest { batch: BatchId, reason: String },
    #[error("this node's log failed while reading entries to send: {reason}")]
    LocalLog { reason: String },
    #[error("more than {max} {what} wait to be sent to the peer; the session ends and the next one resumes from the version vectors")]
    LocalBacklog { what: &'static str, max: usize },
    #[error("no message from the peer for {} s: the link is down or the peer is stuck", .idle.as_secs())]
    IdleTimeout { idle: Duration },
    #[error("the peer acknowledged nothing for {} s while batches waited: it is stuck or messages were lost", .waited.as_secs())]
    AckTimeout { waited: Duration },
    #[error("the peer closed the session ({code}): {text}")]
    PeerClosed { code: CloseCode, text: String },
    #[error("this node refused the peer: {reason}")]
    Refused { reason: String },
    #[error("batch {batch} is not the next batch waiting to be ingested: the application must report batches in the order it received them")]
    UnknownBatch { batch: BatchId },
}

impl SessionError {
    /// The code of the Close message this node sends for this error; `None` when the
    /// peer closed the session (nothing is sent back).
    pub fn close_code(&self) -> Option<CloseCode> {
        Some(match self {
            SessionError::UnsupportedVersion { .. } => CloseCode::UnsupportedVersion,
            SessionError::WrongNetwork { .. } => CloseCode::WrongNetwork,
            SessionError::SelfConnection { .. } | SessionError::Refused { .. } => CloseCode::Refused,
            SessionError::MessageTooLarge { .. }
            | SessionError::Malformed { .. }
            | SessionError::Protocol(_) => CloseCode::ProtocolViolation,
            SessionError::RejectedEnvelope { .. } | SessionError::RejectedTrustEntry { .. } => {
                CloseCode::RejectedEntry
            }
            SessionError::LocalIngest { .. }
            | SessionError::LocalLog { .. }
            | SessionError::LocalBacklog { .. }
            | SessionError::UnknownBatch { .. } => CloseCode::InternalError,
            SessionError::IdleTimeout { .. } | SessionError::AckTimeout { .. } => CloseCode::IdleTimeout,
            SessionError::PeerClosed { .. } => return None,
        })
    }

    /// The reason text of the Close message, written from the closing node's side so
    /// that the peer's operator reads what happened to its data.
    pub fn peer_text(&self) -> String {
        match self {
            SessionError::UnsupportedVersion { ours, peer } => {
                format!("this node speaks sync protocol version {ours}, not version {peer}")
            }
            SessionError::WrongNetwork { ours, .. } => format!("this node belongs to network {ours}"),
            SessionError::SelfConnection { .. } => "both ends of the session have the same device key".into(),
            SessionError::MessageTooLarge { len, max } => {
                format!("received a message of {len} bytes, above the limit of {max} bytes")
            }
            SessionError::Malformed { what, source } => format!("received a malformed {what} message: {source}"),
            SessionError::Protocol(violation) => format!("protocol violation: {violation}"),
            SessionError::RejectedEnvelope { author, seq, reason } => format!(
                "envelope {seq} of device {} was refused by the receiving node, nothing from its batch was stored: {reason}",
                author.short()
            ),
            SessionError::RejectedTrustEntry { id, reason } => format!(
                "trust entry {id} was refused by the receiving node, nothing from its batch was stored: {reason}"
            ),
            SessionError::LocalIngest { .. }
            | SessionError::LocalLog { .. }
            | SessionError::LocalBacklog { .. }
            | SessionError::UnknownBatch { .. } => {
                // Local details (paths, disk errors) stay local.
                "the other node failed locally and ended the session; retry later".into()
            }
            SessionError::IdleTimeout { idle } => {
                format!("nothing received for {} s", idle.as_secs())
            }
            SessionError::AckTimeout { waited } => {
                format!("no acknowledgement for {} s", waited.as_secs())
            }
            SessionError::Refused { reason } => reason.clone(),
            SessionError::PeerClosed { text, .. } => text.clone(),
        }
    }
}

/// Why the application could not ingest a batch ([`crate::Session::handle_ingested`]).
/// In both cases nothing from the batch was stored (`Policy::AllOrNothing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestFailure {
    /// Entry `index` of the batch failed verification (forged, altered, revoked…);
    /// `reason` is the verification error. The session names the entry to both sides.
    Rejected { index: usize, reason: String },
    /// The store failed for a local reason (disk full, I/O error).
    Local { reason: String },
}

/// A failure of the local log while the session reads entries to send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct LocalLogError {
    pub reason: String,
}

/// How a session ended ([`crate::Event::Closed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// A normal end, asked for by this node ([`crate::Session::close`]) or by the peer.
    Finished {
        by_peer: bool,
    },
    Error(SessionError),
}
