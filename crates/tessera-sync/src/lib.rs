//! The Tessera sync protocol as a sans-IO state machine: bytes and calls in,
//! messages, events and deadlines out.
//!
//! **What.** A [`Session`] syncs two peers (node–node or node–relay) over one reliable,
//! ordered byte stream. Both send a Hello at once (protocol version, network, device,
//! version vector, trust entry ids); from the two Hellos each side knows what the other
//! lacks, in one round trip whatever the number of documents, and streams it in bounded
//! batches (trust entries first, then envelopes per author in seq order, plus fork
//! evidence). The receiver hands each batch to its application to verify and store
//! ([`Event::Ingest`]) and acknowledges it only once durable; a refused batch ends the
//! session naming the entry. After both sides sent CaughtUp and got every Ack the
//! session is live and pushes new entries as they are committed. Keep-alive and idle
//! timeouts are driven by the caller's clock. The bytes are in `docs/protocol.md`,
//! "Sync protocol".
//!
//! **What not.** No sockets, no tokio, no clock reads, no randomness, no store writes:
//! `now` is a [`std::time::Duration`] on a monotonic time base the driver picks (the
//! simulator's virtual clock, or time since process start), and storing is the
//! application's job. Authenticating the peer's device key (TLS bound to the key),
//! checking that it is certified, framing and reconnection belong to the transport
//! (`tessera-net`).
//!
//! **Why this shape.** quinn-proto's: a deterministic core that a simulator can drive
//! with virtual time, faults and many peers in one thread, and that real QUIC drives
//! unchanged. The session reads the local log through the [`LocalLog`] trait passed
//! to [`Session::poll_transmit`] rather than emitting "need entries" effects: the
//! session pulls exactly what the flow-control window and the batch size allow at the
//! moment a message can be sent, so there is no request/response state between the
//! session and the application, no second copy of envelopes queued in memory, and
//! backpressure falls out of the transport calling `poll_transmit` only when it can
//! write. The trait is synchronous and local (an index lookup and a log read), so the
//! core stays deterministic; a simulator implements it over a map. Writes, which may
//! block on fsync, stay outside as [`Event::Ingest`] / [`Session::handle_ingested`].
//!
//! Map: [`session`] (the state machine, [`SessionConfig`], [`Event`], [`SessionStats`]),
//! [`message`] (message types and their canonical encoding), [`local_log`] (what the
//! session reads), [`error`], [`limits`] (every bound, in one place).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod error;
pub mod limits;
pub mod local_log;
pub mod message;
pub mod session;

#[cfg(test)]
mod tests;

pub use error::{CloseReason, IngestFailure, LocalLogError, ProtocolViolation, SessionError};
pub use limits::WANT_ITEMS_MAX;
pub use local_log::LocalLog;
pub use message::{BatchId, CloseCode, Hello, Message, WantKind, Wanted, PROTOCOL_VERSION};
pub use session::{Event, Session, SessionConfig, SessionLimits, SessionStats};
