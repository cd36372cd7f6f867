//! Every limit of the sync protocol, in one place.
//!
//! Two kinds: *protocol caps* (hard limits every node enforces on what a peer sends:
//! exceeding one is a protocol violation that ends the session) and *defaults* of
//! [`crate::SessionLimits`] (what a node announces in its Hello and uses when sending;
//! always within the caps). Nothing a peer sends can make a session hold more than
//! these bounds: queues, sets and maps are each tied to one constant below.

use std::time::Duration;

use tessera_log::limits::{LOG_ENTRY_BYTES_MAX, VERSION_VECTOR_AUTHORS_MAX, VERSION_VECTOR_BYTES_MAX};

/// Largest encoded sync message, without the transport's framing. Must hold the
/// largest Hello (a full version vector and a full trust id list, 8.25 MB) and the
/// largest single entry (4 MiB + 1) in one Entries message. Equals the payload limit of
/// `tessera-net` frames (`FRAME_BYTES_MAX` = this + 1 kind byte).
pub const MESSAGE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Most trust entry ids one Hello may list (certificates and revocations: over
/// seventy times the scale workload's 450 nodes and 10 partners). A node holding more
/// lists the first ones by id; the peer then sends a few duplicates, which the store
/// ignores.
pub const HELLO_TRUST_IDS_MAX: usize = 32_768;

/// Protocol cap on entries in one Entries message (a node announces at most this).
/// Below the store's `INGEST_ENTRIES_MAX` (10 000), so a batch is one `Store::ingest`.
pub const ENTRIES_PER_BATCH_MAX: usize = 4096;

/// Protocol cap on batches sent and not yet acknowledged (a node announces at most
/// this). With the 4 MiB entry limit this bounds what a receiver holds for ingest.
pub const BATCHES_IN_FLIGHT_MAX: usize = 64;

/// Largest version vector in an Ack: one head per author of the batch.
pub const ACK_VECTOR_BYTES_MAX: usize = 5 + 72 * ENTRIES_PER_BATCH_MAX;

/// Longest reason text of a Close message, in UTF-8 bytes (longer texts are cut at a
/// character boundary by the sender).
pub const CLOSE_TEXT_BYTES_MAX: usize = 1024;

/// Most trust entries waiting to be sent to the peer (initial difference plus live
/// appends). Exceeding it ends the session locally; the next session resumes from the
/// version vectors, so nothing is lost.
pub const PENDING_TRUST_ENTRIES_MAX: usize = HELLO_TRUST_IDS_MAX;

/// Most authors with envelopes waiting to be sent to the peer (one target seq each,
/// never the envelopes themselves: they are read from the local log when a batch is
/// built).
pub const PENDING_AUTHORS_MAX: usize = VERSION_VECTOR_AUTHORS_MAX;

/// Most authors whose head in the peer this session tracks (its Hello vector plus
/// authors it sends or acknowledges). Exceeding it is a protocol violation.
pub const PEER_AUTHORS_MAX: usize = 2 * VERSION_VECTOR_AUTHORS_MAX;

/// Most trust entry ids this session knows the peer holds (its Hello list plus the
/// entries exchanged). Exceeding it is a protocol violation.
pub const PEER_TRUST_IDS_MAX: usize = 2 * HELLO_TRUST_IDS_MAX;

/// Default entries per batch (announced and used when sending).
pub const DEFAULT_ENTRIES_PER_BATCH: usize = 1024;
/// Default size at which a batch is closed: the next entry goes in the next batch,
/// unless the batch is empty (one entry of up to 4 MiB always goes alone).
pub const DEFAULT_BATCH_BYTES_TARGET: usize = 1024 * 1024;
/// Default batches in flight (sent, not yet acknowledged after a durable ingest).
pub const DEFAULT_BATCHES_IN_FLIGHT: usize = 4;
/// Default time without any message from the peer after which the session ends.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time without sending anything after which a Ping is sent.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Bytes of an Entries message before its entries: tag, batch id, count.
pub(crate) const ENTRIES_HEADER_BYTES: usize = 1 + 8 + 2;
/// Bytes of the fixed part of a Hello, before its vector.
pub(crate) const HELLO_FIXED_BYTES: usize = 1 + 1 + 32 + 32 + 2 + 2 + 4;

// The largest Hello and the largest single entry must fit in one message.
const _: () =
    assert!(HELLO_FIXED_BYTES + VERSION_VECTOR_BYTES_MAX + 4 + 32 * HELLO_TRUST_IDS_MAX <= MESSAGE_BYTES_MAX);
const _: () = assert!(ENTRIES_HEADER_BYTES + 4 + LOG_ENTRY_BYTES_MAX <= MESSAGE_BYTES_MAX);
// Both are announced as u16 in the Hello.
const _: () = assert!(ENTRIES_PER_BATCH_MAX <= u16::MAX as usize);
const _: () = assert!(BATCHES_IN_FLIGHT_MAX <= u16::MAX as usize);

/// Fork evidence envelopes (with this node's own envelope at each) queued for a peer,
/// and answers to evidence queued in one session. Forks are exceptional; the rest
/// waits for a later session.
pub const FORK_GOSSIP_ENVELOPES_MAX: usize = 1024;

/// Items in one Want message (41 bytes each): past this many holes or stripped bodies,
/// the rest are asked for in the next session.
pub const WANT_ITEMS_MAX: usize = 1024;
