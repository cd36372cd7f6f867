//! What a session reads from the node's own log: [`LocalLog`].
//!
//! The session never opens a store; the driver passes a `&dyn LocalLog` into
//! [`crate::Session::poll_transmit`], and the session pulls exactly the entries the
//! next batch needs. A real node implements it over `tessera_store::Store`, the
//! simulator over an in-memory map; both are synchronous, local and deterministic,
//! which keeps the session sans-IO (no sockets, no clock, no async).

use tessera_log::{DeviceKey, Envelope, EnvelopeId, Seq, TrustState, VersionVector};

use crate::error::LocalLogError;
use crate::message::Wanted;

/// Read access to the node's verified, durable log.
pub trait LocalLog {
    /// The head of every author held (the chain this node follows).
    fn heads(&self) -> &VersionVector;

    /// The accepted trust entries.
    fn trust(&self) -> &TrustState;

    /// The envelope of `author` at `seq` in the chain this node follows (not fork
    /// evidence), or `None` when not held.
    fn envelope(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, LocalLogError>;

    /// The envelopes this log keeps as fork evidence (signed by an author at a seq where
    /// the chain followed here holds another one). Sessions pass them on, so that every
    /// node learns of every fork. A log that keeps no evidence returns none.
    fn fork_evidence(&self) -> Result<Vec<Envelope>, LocalLogError> {
        Ok(Vec::new())
    }

    /// Envelopes below this log's heads that it lacks (holes a damaged log left) or
    /// holds without some of their bodies (stripped by a carrier), at most `limit`:
    /// a session asks its peer for them. A log that has none returns none.
    fn wanted(&self, limit: usize) -> Result<Vec<Wanted>, LocalLogError> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// How many forks this log knows of (cheap: sessions poll it to pass on forks
    /// learnt while they run).
    fn forks_known(&self) -> usize {
        0
    }

    /// The id of that envelope. Override when the id is cheaper to find than the
    /// envelope (an index row instead of a log read).
    fn envelope_id(&self, author: &DeviceKey, seq: Seq) -> Result<Option<EnvelopeId>, LocalLogError> {
        match self.heads().get(author) {
            None => return Ok(None),
            Some(head) if head.seq == seq => return Ok(Some(head.id)),
            Some(head) if head.seq < seq => return Ok(None),
            Some(_) => {}
        }
        Ok(self.envelope(author, seq)?.map(|e| e.id()))
    }
}
