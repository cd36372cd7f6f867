//! One sync session between two peers: a deterministic state machine.
//!
//! Inputs are `handle_*(now, …)` calls (a message from the peer, the result of an
//! ingest, a local append, a timer); outputs are `poll_*` calls (the next message to
//! send, the next event for the application, the next deadline). The session reads
//! the local log through [`LocalLog`] when it builds a message and never writes
//! anything: storing is the application's job ([`Event::Ingest`] →
//! `Store::ingest(.., Policy::AllOrNothing)` → [`Session::handle_ingested`]).
//!
//! Lifecycle: *handshake* (both Hellos, sent at once) → *syncing* (each side streams
//! what the other lacks, computed from the two Hellos alone, then sends CaughtUp) →
//! *live* (new local entries are pushed as they are committed) → *closed*.
//!
//! Driving rule: after every `handle_*` call, call [`Session::poll_transmit`] until it
//! returns `None`, drain [`Session::poll_event`], and re-arm the timer from
//! [`Session::poll_timeout`]. The transport should call `poll_transmit` only when it
//! can write: a batch is built on demand, so the session itself never queues data.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tessera_log::{
    DeviceKey, Envelope, EnvelopeId, Head, LogEntry, NetworkId, Seq, SeqRange, TrustEntryId, TrustState,
    VersionVector,
};

use crate::error::{CloseReason, IngestFailure, LocalLogError, ProtocolViolation, SessionError};
use crate::limits::{
    BATCHES_IN_FLIGHT_MAX, DEFAULT_BATCHES_IN_FLIGHT, DEFAULT_BATCH_BYTES_TARGET, DEFAULT_ENTRIES_PER_BATCH,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEP_ALIVE_INTERVAL, ENTRIES_HEADER_BYTES, ENTRIES_PER_BATCH_MAX,
    FORK_GOSSIP_ENVELOPES_MAX, HELLO_TRUST_IDS_MAX, MESSAGE_BYTES_MAX, PEER_AUTHORS_MAX, PEER_TRUST_IDS_MAX,
    PENDING_AUTHORS_MAX, PENDING_TRUST_ENTRIES_MAX, WANT_ITEMS_MAX,
};
use crate::local_log::LocalLog;
use crate::message::{
    encode_hello, BatchId, CloseCode, EntriesWriter, Hello, Message, WantKind, Wanted, PROTOCOL_VERSION,
    PROTOCOL_VERSION_WHAT,
};

/// Tunable limits of one session; each is clamped to the protocol caps of
/// [`crate::limits`] when the session starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Entries per batch: announced to the peer (what this node accepts) and used when
    /// sending (together with the peer's announcement). 1..=4096.
    pub entries_per_batch_max: usize,
    /// A batch is closed before it grows past this many bytes; a larger single entry
    /// still goes alone. At most [`MESSAGE_BYTES_MAX`].
    pub batch_bytes_target: usize,
    /// Batches sent and not yet acknowledged: announced (accepted) and used when
    /// sending (with the peer's announcement). 1..=64.
    pub batches_in_flight_max: usize,
    /// Time without any message from the peer after which the session ends.
    pub idle_timeout: Duration,
    /// Time without sending anything after which a Ping is sent. Keep it well below
    /// the peer's idle timeout.
    pub keep_alive_interval: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            entries_per_batch_max: DEFAULT_ENTRIES_PER_BATCH,
            batch_bytes_target: DEFAULT_BATCH_BYTES_TARGET,
            batches_in_flight_max: DEFAULT_BATCHES_IN_FLIGHT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            keep_alive_interval: DEFAULT_KEEP_ALIVE_INTERVAL,
        }
    }
}

impl SessionLimits {
    fn clamped(self) -> SessionLimits {
        SessionLimits {
            entries_per_batch_max: self.entries_per_batch_max.clamp(1, ENTRIES_PER_BATCH_MAX),
            batch_bytes_target: self.batch_bytes_target.clamp(1, MESSAGE_BYTES_MAX),
            batches_in_flight_max: self.batches_in_flight_max.clamp(1, BATCHES_IN_FLIGHT_MAX),
            idle_timeout: self.idle_timeout.max(Duration::from_millis(1)),
            keep_alive_interval: self.keep_alive_interval.max(Duration::from_millis(1)),
        }
    }
}

/// Who this node is, for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The network this node belongs to; a peer of another network is refused.
    pub network: NetworkId,
    /// This node's device key (sent in the Hello; the transport proves it).
    pub local_device: DeviceKey,
    pub limits: SessionLimits,
    /// Whether the peer speaks Want (`tessera/3`): then each side sends one right after
    /// its Hello, and plans only once the peer's has arrived.
    pub peer_takes_wants: bool,
}

impl SessionConfig {
    /// A configuration with the default limits.
    pub fn new(network: NetworkId, local_device: DeviceKey) -> SessionConfig {
        SessionConfig { network, local_device, limits: SessionLimits::default(), peer_takes_wants: true }
    }
}

/// What the session tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer's Hello was accepted (right version and network). Whether this device
    /// may sync at all (certified, not revoked) is the transport's check; the
    /// application may still [`Session::refuse`] it.
    PeerHello { device: DeviceKey, heads: VersionVector },
    /// The difference is known (from the two Hellos): totals for a progress bar.
    DifferenceKnown { envelopes_to_send: u64, envelopes_to_receive: u64, trust_entries_to_send: u64 },
    /// Verify and store these entries with `Policy::AllOrNothing`, then report with
    /// [`Session::handle_ingested`], in the order the batches were given.
    Ingest { batch: BatchId, entries: Vec<LogEntry> },
    /// The two logs disagree on `author`'s envelope at `seq`: the author signed two
    /// histories. Each side sends the other its envelope there as evidence.
    ForkDetected { author: DeviceKey, seq: Seq },
    /// Everything the peer held at its Hello has been received and stored.
    CaughtUp,
    /// Both directions are complete: from now on new entries are pushed live.
    Live,
    /// The session is over; only a pending Close message remains to be sent.
    Closed { reason: CloseReason },
}

/// Counters for the progress bar and the summary of one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages and their bytes (without the transport's 4-byte frame prefix).
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub envelopes_sent: u64,
    pub envelopes_received: u64,
    pub trust_entries_sent: u64,
    pub trust_entries_received: u64,
    /// Encoded log entry bytes in Entries messages (for the wire overhead ratio).
    pub entry_bytes_sent: u64,
    pub entry_bytes_received: u64,
    pub batches_sent: u64,
    pub batches_received: u64,
    pub pings_sent: u64,
    /// From the two Hellos: envelopes the peer lacks, and this node lacks.
    pub envelopes_to_send: u64,
    pub envelopes_to_receive: u64,
    /// Message round trips until the difference was known. The plan is computed from
    /// the peer's Hello alone, so this is 1 once known; it is a counter so that a
    /// protocol that ever needs more rounds reports it.
    pub round_trips_to_difference: Option<u32>,
    /// Time from the session's start until the difference was known.
    pub difference_known_after: Option<Duration>,
    pub forks_detected: u64,
    /// Envelopes this node asked the peer for in its Want (holes, missing bodies), and
    /// envelopes sent in answer to the peer's Want.
    pub wanted_asked: u64,
    pub wanted_sent: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshake,
    Syncing,
    Live,
    Closed,
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    batches_in_flight_max: usize,
    entries_per_batch_max: usize,
}

/// Held from the peer's Hello until the plan is made (at the next `poll_transmit`,
/// which has the local log).
#[derive(Debug)]
struct PendingPlan {
    heads: VersionVector,
    trust_ids: Vec<TrustEntryId>,
}

/// What is remembered of a received entry until its batch is stored and acknowledged.
#[derive(Clone, Copy, Debug)]
enum EntryMeta {
    Envelope { author: DeviceKey, seq: Seq, id: EnvelopeId, prev: EnvelopeId },
    Trust { id: TrustEntryId },
}

#[derive(Debug)]
struct ReceivedBatch {
    id: BatchId,
    entries: Vec<EntryMeta>,
}

/// An envelope to send as fork evidence: ours at `seq`, unless the peer's is the same.
#[derive(Clone, Copy, Debug)]
struct Evidence {
    author: DeviceKey,
    seq: Seq,
    theirs: Option<EnvelopeId>,
}

/// An entry taken from the log, encoded, that did not fit in the last batch.
#[derive(Debug)]
struct Prepared {
    bytes: Vec<u8>,
    is_envelope: bool,
}

/// The sending direction.
#[derive(Debug, Default)]
struct Outbound {
    /// Per author, the head of the peer's chain as far as this node knows: from its
    /// Hello and Acks, what was sent to it, and what it sent that links onto that head.
    /// Never what it passed on as fork evidence: that is not in its chain, and an
    /// envelope sent on the strength of it would reach the peer as a gap.
    peer_has: BTreeMap<DeviceKey, Head>,
    /// Trust entries the peer holds, or that were sent or queued for it.
    peer_trust: BTreeSet<TrustEntryId>,
    trust_queue: VecDeque<TrustEntryId>,
    /// Trust entries the peer announced and this node lacks: envelopes wait for them,
    /// so that a revocation the peer holds stops this node from sending what the peer
    /// would refuse (which would end the session).
    awaiting_trust: BTreeSet<TrustEntryId>,
    evidence: VecDeque<Evidence>,
    /// What the peer's Want asked for (sent after the evidence, before the difference).
    wanted: VecDeque<Wanted>,
    /// Envelopes queued as evidence (each at most once per session).
    evidence_sent: BTreeSet<(DeviceKey, Seq)>,
    /// Fork evidence this node holds, each with its own envelope at the same seq, for a
    /// peer that may not know of the fork yet: read at the Hello, and again whenever
    /// the node learns of more forks while the session runs.
    gossip: VecDeque<Envelope>,
    gossip_sent: BTreeSet<EnvelopeId>,
    /// [`LocalLog::forks_known`] when the evidence was last read.
    forks_gossiped: usize,
    /// How many trust entries the log had accepted when they were last queued: an
    /// entry may be accepted without being appended (one that waited for the
    /// certificate it needed), so no local append announces it.
    trust_known: usize,
    /// Forked authors: nothing more of them is streamed in this session.
    blocked: BTreeSet<DeviceKey>,
    /// Per author, the last seq to send (envelopes are read from the log on demand).
    targets: BTreeMap<DeviceKey, Seq>,
    carry: Option<Prepared>,
    in_flight: VecDeque<BatchId>,
    next_batch: u64,
    caught_up_sent: Option<BatchId>,
    complete: bool,
}

/// The receiving direction.
#[derive(Debug, Default)]
struct Inbound {
    next_batch: u64,
    /// Given to the application, not yet reported stored.
    pending: VecDeque<ReceivedBatch>,
    /// Stored, Ack not yet sent.
    acks: VecDeque<ReceivedBatch>,
    last_ingested: u64,
    peer_caught_up: Option<BatchId>,
    complete: bool,
}

/// A sync session with one peer. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    started: Duration,
    last_received: Duration,
    last_sent: Duration,
    /// When the oldest batch in flight was sent or the last Ack arrived: a peer that
    /// keeps answering pings but acknowledges nothing (stuck, or a lost message) must
    /// not hold the session open forever.
    ack_clock: Duration,
    ping_due: bool,
    next_ping: u64,
    pong_due: Option<u64>,
    hello_sent: bool,
    want_sent: bool,
    /// A live session looks again for holes and stripped bodies (a relay's copy
    /// emptied, a batch that brought stripped envelopes) at this time, and asks for
    /// what is still missing: the peer may have got it since.
    next_want_check: Duration,
    want_check_due: bool,
    /// The peer's Want arrived (or the peer does not speak Want).
    peer_want_received: bool,
    peer_want_seen: bool,
    peer_device: Option<DeviceKey>,
    peer: Option<Peer>,
    pending_plan: Option<PendingPlan>,
    out: Outbound,
    inb: Inbound,
    events: VecDeque<Event>,
    close_message: Option<Vec<u8>>,
    stats: SessionStats,
}

impl Session {
    /// A session that starts at `now` (any monotonic time base the driver chooses:
    /// time since the process started, or the simulator's virtual clock).
    pub fn new(mut config: SessionConfig, now: Duration) -> Session {
        config.limits = config.limits.clamped();
        let peer_want_received = !config.peer_takes_wants;
        Session {
            config,
            phase: Phase::Handshake,
            started: now,
            last_received: now,
            ack_clock: now,
            last_sent: now,
            ping_due: false,
            next_ping: 1,
            pong_due: None,
            hello_sent: false,
            want_sent: false,
            next_want_check: now + WANT_RECHECK_INTERVAL,
            want_check_due: false,
            peer_want_received,
            peer_want_seen: false,
            peer_device: None,
            peer: None,
            pending_plan: None,
            out: Outbound { next_batch: 1, ..Outbound::default() },
            inb: Inbound { next_batch: 1, ..Inbound::default() },
            events: VecDeque::new(),
            close_message: None,
            stats: SessionStats::default(),
        }
    }

    // ---- inputs -------------------------------------------------------------------

    /// One whole message from the peer (the transport strips its length prefix).
    /// `Err` means the session is now closed (a Close for the peer is pending in
    /// `poll_transmit`, and [`Event::Closed`] says the same); messages arriving after
    /// the close are ignored.
    pub fn handle_message(&mut self, now: Duration, bytes: &[u8]) -> Result<(), SessionError> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        self.last_received = self.last_received.max(now);
        self.stats.messages_received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(self.fail(SessionError::MessageTooLarge { len: bytes.len(), max: MESSAGE_BYTES_MAX }));
        }
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(tessera_log::DecodeError::UnsupportedVersion {
                what: PROTOCOL_VERSION_WHAT, found, ..
            }) => {
                return Err(
                    self.fail(SessionError::UnsupportedVersion { ours: PROTOCOL_VERSION, peer: found })
                )
            }
            Err(source) => {
                return Err(self.fail(SessionError::Malformed { what: Message::kind_of(bytes), source }))
            }
        };
        if let Message::Close { code, text } = message {
            return self.on_close(code, text);
        }
        if self.peer.is_none() {
            return match message {
                Message::Hello(hello) => self.on_hello(hello),
                other => Err(self.violation(ProtocolViolation::HelloFirst { got: other.kind() })),
            };
        }
        match message {
            Message::Hello(_) => Err(self.violation(ProtocolViolation::SecondHello)),
            Message::Entries { batch, entries } => self.on_entries(batch, entries, bytes.len()),
            Message::Ack { batch, heads } => self.on_ack(batch, heads),
            Message::CaughtUp { last_batch } => self.on_caught_up(last_batch),
            Message::Ping { nonce } => {
                // One pending Pong is enough: a newer Ping replaces it (bounded).
                self.pong_due = Some(nonce);
                Ok(())
            }
            Message::Pong { .. } => Ok(()), // liveness is any message; nothing more to do
            Message::Want { items } => self.on_want(items),
            Message::Close { .. } => Ok(()), // handled above
        }
    }

    /// The application stored batch `batch` (`Ok`), or could not (`Err`: nothing from
    /// it was stored). Batches must be reported in the order they were given.
    /// `Err` means the session is now closed; after a close this is a no-op.
    pub fn handle_ingested(
        &mut self,
        batch: BatchId,
        result: Result<(), IngestFailure>,
    ) -> Result<(), SessionError> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        let received = match self.inb.pending.front() {
            Some(front) if front.id == batch => self.inb.pending.pop_front(),
            _ => None,
        };
        let Some(received) = received else {
            return Err(self.fail(SessionError::UnknownBatch { batch }));
        };
        match result {
            Ok(()) => {
                self.inb.last_ingested = batch.0;
                for meta in &received.entries {
                    if let EntryMeta::Trust { id } = meta {
                        self.out.awaiting_trust.remove(id);
                    }
                }
                self.inb.acks.push_back(received);
                debug_assert!(self.inb.acks.len() + self.inb.pending.len() <= BATCHES_IN_FLIGHT_MAX);
                self.update_progress();
                Ok(())
            }
            Err(IngestFailure::Rejected { index, reason }) => {
                let error = match received.entries.get(index) {
                    Some(EntryMeta::Envelope { author, seq, .. }) => {
                        SessionError::RejectedEnvelope { author: *author, seq: *seq, reason }
                    }
                    Some(EntryMeta::Trust { id }) => SessionError::RejectedTrustEntry { id: *id, reason },
                    // The store named an entry the batch does not have: a local bug.
                    None => SessionError::LocalIngest {
                        batch,
                        reason: format!("entry {index} refused, but the batch has fewer entries: {reason}"),
                    },
                };
                Err(self.fail(error))
            }
            Err(IngestFailure::Local { reason }) => {
                Err(self.fail(SessionError::LocalIngest { batch, reason }))
            }
        }
    }

    /// Entries newly committed to the local log (authored here, or stored from
    /// another session): those the peer lacks are pushed to it. Call after the
    /// entries are durable; before the difference is known this is a no-op (the
    /// difference is computed from the log itself). `Err` (a backlog above the
    /// limits) means the session is now closed; nothing is lost, the next session
    /// resumes from the version vectors.
    pub fn handle_local_append(&mut self, entries: &[LogEntry]) -> Result<(), SessionError> {
        if self.phase == Phase::Closed || self.phase == Phase::Handshake {
            return Ok(());
        }
        for entry in entries {
            match entry {
                LogEntry::Trust(trust) => {
                    let id = trust.id();
                    if !self.out.peer_trust.contains(&id) {
                        if self.out.trust_queue.len() >= PENDING_TRUST_ENTRIES_MAX {
                            return Err(self.fail(SessionError::LocalBacklog {
                                what: "trust entries",
                                max: PENDING_TRUST_ENTRIES_MAX,
                            }));
                        }
                        self.out.peer_trust.insert(id);
                        self.out.trust_queue.push_back(id);
                    }
                }
                LogEntry::Envelope(envelope) => {
                    let (author, seq) = (envelope.author(), envelope.seq());
                    if self.out.blocked.contains(&author)
                        || self.out.peer_has.get(&author).is_some_and(|has| has.seq >= seq)
                    {
                        continue;
                    }
                    let full = self.out.targets.len() >= PENDING_AUTHORS_MAX;
                    match self.out.targets.get_mut(&author) {
                        Some(target) => *target = (*target).max(seq),
                        None if full => {
                            return Err(self.fail(SessionError::LocalBacklog {
                                what: "authors with envelopes",
                                max: PENDING_AUTHORS_MAX,
                            }))
                        }
                        None => {
                            self.out.targets.insert(author, seq);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A timer set from [`Session::poll_timeout`] expired.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.phase == Phase::Closed {
            return;
        }
        let idle = now.saturating_sub(self.last_received);
        if idle >= self.config.limits.idle_timeout {
            self.fail(SessionError::IdleTimeout { idle });
            return;
        }
        let waited = now.saturating_sub(self.ack_clock);
        if !self.out.in_flight.is_empty() && waited >= self.config.limits.idle_timeout {
            self.fail(SessionError::AckTimeout { waited });
            return;
        }
        if !self.ping_due && now.saturating_sub(self.last_sent) >= self.config.limits.keep_alive_interval {
            self.ping_due = true;
        }
        if self.phase == Phase::Live && now >= self.next_want_check {
            self.want_check_due = true;
            self.next_want_check = now + WANT_RECHECK_INTERVAL;
        }
    }

    /// Ends the session normally (the sync is done, or the node shuts down): a Close
    /// `Done` is sent and [`Event::Closed`] reports `Finished`.
    pub fn close(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.close_message = Some(Message::close(CloseCode::Done, "sync finished").encode());
        self.events.push_back(Event::Closed { reason: CloseReason::Finished { by_peer: false } });
    }

    /// Ends the session refusing the peer (for example its device is not certified or
    /// is revoked); `reason` is sent to the peer.
    pub fn refuse(&mut self, reason: &str) {
        self.fail(SessionError::Refused { reason: reason.to_owned() });
    }

    // ---- outputs ------------------------------------------------------------------

    /// The next message to send, encoded (the transport adds its length prefix), or
    /// `None` when there is nothing to send now. Reads the local log as needed.
    pub fn poll_transmit(&mut self, now: Duration, log: &dyn LocalLog) -> Option<Vec<u8>> {
        if matches!(self.phase, Phase::Syncing | Phase::Live) && log.forks_known() > self.out.forks_gossiped {
            // The node learnt of a fork (from another session) while this one runs.
            if let Err(error) = self.queue_gossip(log) {
                self.fail(error);
            }
        }
        if matches!(self.phase, Phase::Syncing | Phase::Live) && log.trust().len() != self.out.trust_known {
            if let Err(error) = self.queue_trust(log) {
                self.fail(error);
            }
        }
        let nothing_in_flight = self.out.in_flight.is_empty();
        let message = if self.phase == Phase::Closed {
            self.close_message.take()
        } else {
            match self.next_message(now, log) {
                Ok(message) => message,
                Err(error) => {
                    self.fail(error);
                    self.close_message.take()
                }
            }
        }?;
        if nothing_in_flight && !self.out.in_flight.is_empty() {
            self.ack_clock = now;
        }
        self.last_sent = self.last_sent.max(now);
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += message.len() as u64;
        debug_assert!(message.len() <= MESSAGE_BYTES_MAX);
        Some(message)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should be called next; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.phase == Phase::Closed {
            return None;
        }
        let mut idle = self.last_received + self.config.limits.idle_timeout;
        if !self.out.in_flight.is_empty() {
            idle = idle.min(self.ack_clock + self.config.limits.idle_timeout);
        }
        if self.ping_due {
            return Some(idle);
        }
        Some(idle.min(self.last_sent + self.config.limits.keep_alive_interval))
    }

    // ---- state --------------------------------------------------------------------

    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }
    /// Closed and the Close message (if any) has been taken: the transport may drop
    /// the stream.
    pub fn is_drained(&self) -> bool {
        self.phase == Phase::Closed && self.close_message.is_none()
    }
    /// The peer's device key, once its Hello was accepted.
    pub fn peer_device(&self) -> Option<DeviceKey> {
        self.peer_device
    }
    /// Batches sent and not yet acknowledged.
    pub fn batches_in_flight(&self) -> usize {
        self.out.in_flight.len()
    }
    /// Batches received and not yet acknowledged (given for ingest, or stored and
    /// waiting for their Ack to be sent).
    pub fn batches_unacknowledged(&self) -> usize {
        self.inb.pending.len() + self.inb.acks.len()
    }

    // ---- message handlers ---------------------------------------------------------

    fn on_hello(&mut self, hello: Hello) -> Result<(), SessionError> {
        if hello.network != self.config.network {
            return Err(
                self.fail(SessionError::WrongNetwork { ours: self.config.network, peer: hello.network })
            );
        }
        if hello.device == self.config.local_device {
            return Err(self.fail(SessionError::SelfConnection { device: hello.device }));
        }
        self.peer = Some(Peer {
            batches_in_flight_max: usize::from(hello.batches_in_flight_max),
            entries_per_batch_max: usize::from(hello.entries_per_batch_max),
        });
        self.peer_device = Some(hello.device);
        // Bounded by the decoder's limits (100 000 authors and ids), below the caps.
        self.out.peer_has = hello.heads.iter().map(|(author, head)| (*author, *head)).collect();
        self.out.peer_trust = hello.trust_ids.iter().copied().collect();
        self.events.push_back(Event::PeerHello { device: hello.device, heads: hello.heads.clone() });
        self.pending_plan = Some(PendingPlan { heads: hello.heads, trust_ids: hello.trust_ids });
        Ok(())
    }

    fn on_entries(
        &mut self,
        batch: BatchId,
        entries: Vec<LogEntry>,
        message_len: usize,
    ) -> Result<(), SessionError> {
        let expected = BatchId(self.inb.next_batch);
        if batch != expected {
            return Err(self.violation(ProtocolViolation::BatchOutOfOrder { expected, got: batch }));
        }
        let limit = self.config.limits.batches_in_flight_max;
        if self.batches_unacknowledged() >= limit {
            return Err(self.violation(ProtocolViolation::TooManyBatchesInFlight { limit }));
        }
        let limit = self.config.limits.entries_per_batch_max;
        if entries.len() > limit {
            return Err(self.violation(ProtocolViolation::TooManyEntries { count: entries.len(), limit }));
        }
        let mut metas = Vec::with_capacity(entries.len());
        for entry in &entries {
            match entry {
                LogEntry::Envelope(envelope) => {
                    let (author, seq) = (envelope.author(), envelope.seq());
                    let (id, prev) = (envelope.id(), envelope.prev());
                    metas.push(EntryMeta::Envelope { author, seq, id, prev });
                    // Only what links onto the peer's chain extends it (see `peer_has`).
                    let extends = match self.out.peer_has.get(&author) {
                        Some(head) => head.seq.next() == Some(seq) && head.id == prev,
                        None => seq == Seq(1),
                    };
                    if extends {
                        self.peer_holds(author, Head { seq, id })?;
                    }
                    self.stats.envelopes_received += 1;
                }
                LogEntry::Trust(trust) => {
                    let id = trust.id();
                    metas.push(EntryMeta::Trust { id });
                    if self.out.peer_trust.len() >= PEER_TRUST_IDS_MAX {
                        return Err(self.violation(ProtocolViolation::TooMany {
                            what: "trust entries known to the peer",
                            limit: PEER_TRUST_IDS_MAX,
                        }));
                    }
                    self.out.peer_trust.insert(id);
                    self.stats.trust_entries_received += 1;
                }
            }
        }
        self.stats.batches_received += 1;
        self.stats.entry_bytes_received += (message_len - ENTRIES_HEADER_BYTES - 4 * entries.len()) as u64;
        self.inb.next_batch += 1;
        self.inb.pending.push_back(ReceivedBatch { id: batch, entries: metas });
        self.events.push_back(Event::Ingest { batch, entries });
        Ok(())
    }

    fn on_ack(&mut self, batch: BatchId, heads: VersionVector) -> Result<(), SessionError> {
        match self.out.in_flight.front() {
            Some(front) if *front == batch => {
                self.out.in_flight.pop_front();
                self.ack_clock = self.last_received;
            }
            front => {
                let expected = front.copied();
                return Err(self.violation(ProtocolViolation::AckOutOfOrder { expected, got: batch }));
            }
        }
        for (author, head) in heads.iter() {
            self.peer_holds(*author, *head)?;
        }
        self.update_progress();
        Ok(())
    }

    fn on_caught_up(&mut self, last: BatchId) -> Result<(), SessionError> {
        if self.inb.peer_caught_up.is_some() {
            return Err(self.violation(ProtocolViolation::SecondCaughtUp));
        }
        let received = BatchId(self.inb.next_batch - 1);
        if last != received {
            return Err(self.violation(ProtocolViolation::CaughtUpMismatch { last, received }));
        }
        self.inb.peer_caught_up = Some(last);
        self.update_progress();
        Ok(())
    }

    /// The peer's Want: queued, each item answered if this log holds the envelope
    /// (with bodies, for a Bodies item) and the peer may receive it. The first comes
    /// right after the Hello; a live peer may send more, with at most
    /// [`WANTED_PENDING_MAX`] items waiting for an answer.
    fn on_want(&mut self, items: Vec<Wanted>) -> Result<(), SessionError> {
        if self.peer_want_seen && self.phase != Phase::Live {
            return Err(self.violation(ProtocolViolation::SecondWant));
        }
        if self.out.wanted.len() + items.len() > WANTED_PENDING_MAX {
            return Err(self.violation(ProtocolViolation::TooMany {
                what: "wanted envelopes waiting for an answer",
                limit: WANTED_PENDING_MAX,
            }));
        }
        self.peer_want_seen = true;
        self.peer_want_received = true;
        self.out.wanted.extend(items);
        Ok(())
    }

    fn on_close(&mut self, code: CloseCode, text: String) -> Result<(), SessionError> {
        self.phase = Phase::Closed;
        self.close_message = None;
        if code == CloseCode::Done {
            self.events.push_back(Event::Closed { reason: CloseReason::Finished { by_peer: true } });
            return Ok(());
        }
        let error = SessionError::PeerClosed { code, text };
        self.events.push_back(Event::Closed { reason: CloseReason::Error(error.clone()) });
        Err(error)
    }

    /// Records that the peer's chain of `author` reaches at least `head`.
    fn peer_holds(&mut self, author: DeviceKey, head: Head) -> Result<(), SessionError> {
        let full = self.out.peer_has.len() >= PEER_AUTHORS_MAX;
        match self.out.peer_has.get_mut(&author) {
            Some(has) => {
                if head.seq > has.seq {
                    *has = head;
                }
            }
            None if full => {
                return Err(self.violation(ProtocolViolation::TooMany {
                    what: "authors known to the peer",
                    limit: PEER_AUTHORS_MAX,
                }))
            }
            None => {
                self.out.peer_has.insert(author, head);
            }
        }
        Ok(())
    }

    // ---- building messages --------------------------------------------------------

    fn next_message(&mut self, now: Duration, log: &dyn LocalLog) -> Result<Option<Vec<u8>>, SessionError> {
        if !self.hello_sent {
            self.hello_sent = true;
            return self.hello(log).map(Some);
        }
        if self.config.peer_takes_wants && !self.want_sent {
            self.want_sent = true;
            let items =
                log.wanted(WANT_ITEMS_MAX).map_err(|e| SessionError::LocalLog { reason: e.reason })?;
            self.stats.wanted_asked = items.len() as u64;
            return Ok(Some(Message::Want { items }.encode()));
        }
        if self.want_check_due && self.config.peer_takes_wants && self.phase == Phase::Live {
            self.want_check_due = false;
            let items =
                log.wanted(WANT_ITEMS_MAX).map_err(|e| SessionError::LocalLog { reason: e.reason })?;
            if !items.is_empty() {
                self.stats.wanted_asked += items.len() as u64;
                return Ok(Some(Message::Want { items }.encode()));
            }
        }
        if let Some(nonce) = self.pong_due.take() {
            return Ok(Some(Message::Pong { nonce }.encode()));
        }
        if let Some(ack) = self.next_ack(log)? {
            return Ok(Some(ack));
        }
        if self.ping_due {
            self.ping_due = false;
            self.stats.pings_sent += 1;
            let nonce = self.next_ping;
            self.next_ping += 1;
            return Ok(Some(Message::Ping { nonce }.encode()));
        }
        if self.peer.is_none() {
            return Ok(None);
        }
        if self.phase == Phase::Handshake {
            if !self.peer_want_received {
                return Ok(None);
            }
            self.plan(now, log)?;
        }
        if let Some(batch) = self.next_batch(log)? {
            return Ok(Some(batch));
        }
        if self.out.caught_up_sent.is_none() && self.initial_difference_sent() {
            let last_batch = BatchId(self.out.next_batch - 1);
            self.out.caught_up_sent = Some(last_batch);
            self.update_progress();
            return Ok(Some(Message::CaughtUp { last_batch }.encode()));
        }
        Ok(None)
    }

    fn hello(&self, log: &dyn LocalLog) -> Result<Vec<u8>, SessionError> {
        let heads = log.heads();
        if heads.len() > tessera_log::limits::VERSION_VECTOR_AUTHORS_MAX {
            return Err(SessionError::LocalBacklog {
                what: "authors in this node's version vector",
                max: tessera_log::limits::VERSION_VECTOR_AUTHORS_MAX,
            });
        }
        // Ascending by id (the trust state's key order); beyond the limit the peer
        // just sends a few entries this node already holds.
        let trust_ids: Vec<TrustEntryId> = log.trust().ids().take(HELLO_TRUST_IDS_MAX).copied().collect();
        let limits = &self.config.limits;
        Ok(encode_hello(
            self.config.network,
            self.config.local_device,
            limits.batches_in_flight_max as u16,
            limits.entries_per_batch_max as u16,
            heads,
            &trust_ids,
        ))
    }

    /// Computes what the peer lacks from its Hello and the local log: trust entries it
    /// does not list, fork evidence, and per author the envelopes after its head.
    fn plan(&mut self, now: Duration, log: &dyn LocalLog) -> Result<(), SessionError> {
        let Some(pending) = self.pending_plan.take() else { return Ok(()) };
        self.phase = Phase::Syncing;
        let trust = log.trust();
        let trust_to_send = self.queue_trust(log)?;
        // Entries already received and stored are in `trust`; those received and not
        // yet stored leave the set in `handle_ingested`.
        self.out.awaiting_trust =
            pending.trust_ids.iter().filter(|id| !trust.contains(id)).copied().collect();
        if self.inb.complete {
            self.out.awaiting_trust.clear();
        }

        let heads = log.heads();
        let failure: RefCell<Option<LocalLogError>> = RefCell::new(None);
        let forks = heads.forks_against(&pending.heads, |author, seq| match log.envelope_id(author, seq) {
            Ok(id) => id,
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                None
            }
        });
        if let Some(e) = failure.into_inner() {
            return Err(SessionError::LocalLog { reason: e.reason });
        }
        for (author, seq) in forks {
            // The peer's envelope at `seq` is its head.
            let theirs = pending.heads.get(&author).map(|head| head.id);
            self.queue_evidence(author, seq, theirs);
        }
        self.queue_gossip(log)?;
        let mut envelopes_to_send = 0u64;
        for range in heads.missing_from(&pending.heads) {
            if self.out.blocked.contains(&range.author) {
                continue;
            }
            // Envelopes past a revocation are held as evidence, never offered: every
            // node refuses them.
            let Some(range) = within_trust(range, trust) else { continue };
            envelopes_to_send += range.len();
            let target = self.out.targets.entry(range.author).or_insert(range.last);
            *target = (*target).max(range.last);
        }
        // The peer's heads are untrusted: seqs near u64::MAX must not overflow the
        // count, and what the trust held here refuses is not counted as to come.
        let envelopes_to_receive = pending
            .heads
            .missing_from(heads)
            .into_iter()
            .filter_map(|range| within_trust(range, trust))
            .fold(0u64, |n, range| n.saturating_add(range.len()));
        self.stats.envelopes_to_send = envelopes_to_send;
        self.stats.envelopes_to_receive = envelopes_to_receive;
        self.stats.round_trips_to_difference = Some(1);
        self.stats.difference_known_after = Some(now.saturating_sub(self.started));
        self.events.push_back(Event::DifferenceKnown {
            envelopes_to_send,
            envelopes_to_receive,
            trust_entries_to_send: trust_to_send,
        });
        Ok(())
    }

    /// Queues every accepted trust entry the peer is not known to hold; returns how many.
    fn queue_trust(&mut self, log: &dyn LocalLog) -> Result<u64, SessionError> {
        let trust = log.trust();
        self.out.trust_known = trust.len();
        let mut queued = 0u64;
        for entry in trust.entries_in_order() {
            let id = entry.id();
            if self.out.peer_trust.insert(id) {
                if self.out.trust_queue.len() >= PENDING_TRUST_ENTRIES_MAX {
                    return Err(SessionError::LocalBacklog {
                        what: "trust entries",
                        max: PENDING_TRUST_ENTRIES_MAX,
                    });
                }
                self.out.trust_queue.push_back(id);
                queued += 1;
            }
        }
        Ok(queued)
    }

    fn queue_evidence(&mut self, author: DeviceKey, seq: Seq, theirs: Option<EnvelopeId>) {
        // Bounded: past the limit the rest of a walk-back waits for a later session.
        if self.out.evidence.len() >= FORK_GOSSIP_ENVELOPES_MAX
            || !self.out.evidence_sent.insert((author, seq))
        {
            return;
        }
        // Streaming past a fork point would make the peer's store refuse the batch
        // (its chain has another envelope there): stop this author for the session.
        if self.out.blocked.insert(author) {
            self.stats.forks_detected += 1;
            self.events.push_back(Event::ForkDetected { author, seq });
        }
        self.out.targets.remove(&author);
        self.out.evidence.push_back(Evidence { author, seq, theirs });
    }

    /// Queues the fork evidence this node holds that was not yet offered to this peer.
    /// It is sent after the envelopes, once the peer's chain of the author reaches it.
    fn queue_gossip(&mut self, log: &dyn LocalLog) -> Result<(), SessionError> {
        let local = |e: LocalLogError| SessionError::LocalLog { reason: e.reason };
        self.out.forks_gossiped = log.forks_known();
        for evidence in log.fork_evidence().map_err(local)? {
            if self.out.gossip.len() >= FORK_GOSSIP_ENVELOPES_MAX {
                break;
            }
            if self.out.gossip_sent.insert(evidence.id()) {
                self.out.gossip.push_back(evidence);
            }
        }
        Ok(())
    }

    /// The next fork evidence to pass on, preceded by this node's own envelope at the
    /// same seq (so that the peer learns of the fork whichever history it follows).
    /// Evidence the peer cannot place yet (its chain of the author stops short of it)
    /// waits for a later session.
    fn next_gossip(&mut self, log: &dyn LocalLog) -> Result<Option<Envelope>, SessionError> {
        let local = |e: LocalLogError| SessionError::LocalLog { reason: e.reason };
        while let Some(evidence) = self.out.gossip.pop_front() {
            let (author, seq) = (evidence.author(), evidence.seq());
            let peer_has = self.out.peer_has.get(&author).map_or(0, |head| head.seq.0);
            // A forked (blocked) author is no reason to hold evidence back: admission
            // keeps an envelope that contradicts the peer's chain as evidence, and
            // only one the peer's chain stops short of would be refused.
            if peer_has + 1 < seq.0 || log.trust().authorize(&author, seq).is_err() {
                self.out.gossip_sent.remove(&evidence.id());
                continue;
            }
            if let Some(ours) = log.envelope(&author, seq).map_err(local)? {
                if ours.id() != evidence.id() && self.out.gossip_sent.insert(ours.id()) {
                    self.out.gossip.push_front(evidence);
                    return Ok(Some(ours));
                }
            }
            return Ok(Some(evidence));
        }
        Ok(None)
    }

    fn initial_difference_sent(&self) -> bool {
        self.out.trust_queue.is_empty()
            && self.out.evidence.is_empty()
            && self.out.wanted.is_empty()
            && self.out.gossip.is_empty()
            && self.out.targets.is_empty()
            && self.out.carry.is_none()
    }

    /// The Ack of the oldest stored batch, after checking whether the batch revealed a
    /// fork (an envelope the local chain holds differently), in which case this node
    /// answers with its own envelope there, so that both sides keep the evidence.
    fn next_ack(&mut self, log: &dyn LocalLog) -> Result<Option<Vec<u8>>, SessionError> {
        let Some(batch) = self.inb.acks.pop_front() else { return Ok(None) };
        let mut by_author: BTreeMap<DeviceKey, Vec<(Seq, EnvelopeId, EnvelopeId)>> = BTreeMap::new();
        for meta in &batch.entries {
            if let EntryMeta::Envelope { author, seq, id, prev } = meta {
                by_author.entry(*author).or_default().push((*seq, *id, *prev));
            }
        }
        let mut heads = VersionVector::new();
        for (author, envelopes) in &by_author {
            if let Some(head) = log.heads().get(author) {
                heads.advance(*author, head);
            }
            for (seq, theirs) in forks_in(log, author, envelopes)? {
                self.queue_evidence(*author, seq, Some(theirs));
            }
        }
        Ok(Some(Message::Ack { batch: batch.id, heads }.encode()))
    }

    /// The next Entries message, if the window allows and there is something to send.
    fn next_batch(&mut self, log: &dyn LocalLog) -> Result<Option<Vec<u8>>, SessionError> {
        let Some(peer) = self.peer else { return Ok(None) };
        let limits = self.config.limits;
        let window = limits.batches_in_flight_max.min(peer.batches_in_flight_max);
        if self.out.in_flight.len() >= window {
            return Ok(None);
        }
        let entries_max = limits.entries_per_batch_max.min(peer.entries_per_batch_max);
        let id = BatchId(self.out.next_batch);
        let mut writer = EntriesWriter::new(id);
        let (mut envelopes, mut trust_entries, mut entry_bytes) = (0u64, 0u64, 0u64);
        while writer.count() < entries_max {
            let next = match self.out.carry.take() {
                Some(prepared) => prepared,
                None => match self.next_entry(log)? {
                    Some(prepared) => prepared,
                    None => break,
                },
            };
            if writer.count() > 0 && writer.len() + 4 + next.bytes.len() > limits.batch_bytes_target {
                self.out.carry = Some(next);
                break;
            }
            writer.push(&next.bytes);
            entry_bytes += next.bytes.len() as u64;
            if next.is_envelope {
                envelopes += 1;
            } else {
                trust_entries += 1;
            }
        }
        if writer.count() == 0 {
            return Ok(None);
        }
        self.out.next_batch += 1;
        self.out.in_flight.push_back(id);
        debug_assert!(self.out.in_flight.len() <= window);
        self.stats.batches_sent += 1;
        self.stats.envelopes_sent += envelopes;
        self.stats.trust_entries_sent += trust_entries;
        self.stats.entry_bytes_sent += entry_bytes;
        Ok(Some(writer.finish()))
    }

    /// The next entry to send, read from the log: trust entries first (in dependency
    /// order), then fork evidence, then envelopes per author in seq order. Envelopes
    /// wait while trust entries the peer announced are still missing here, and stop
    /// where this node's own trust state refuses them (a revocation): the peer would
    /// refuse them too and end the session.
    fn next_entry(&mut self, log: &dyn LocalLog) -> Result<Option<Prepared>, SessionError> {
        let local = |e: LocalLogError| SessionError::LocalLog { reason: e.reason };
        while let Some(id) = self.out.trust_queue.pop_front() {
            if let Some(entry) = log.trust().get(&id) {
                return Ok(Some(Prepared {
                    bytes: LogEntry::Trust(entry.clone()).encode(),
                    is_envelope: false,
                }));
            }
        }
        if !self.out.awaiting_trust.is_empty() {
            return Ok(None);
        }
        while let Some(evidence) = self.out.evidence.pop_front() {
            if log.trust().authorize(&evidence.author, evidence.seq).is_err() {
                continue;
            }
            if let Some(envelope) = log.envelope(&evidence.author, evidence.seq).map_err(local)? {
                if Some(envelope.id()) != evidence.theirs {
                    return Ok(Some(Prepared {
                        bytes: LogEntry::Envelope(envelope).encode(),
                        is_envelope: true,
                    }));
                }
            }
        }
        while let Some(item) = self.out.wanted.pop_front() {
            if log.trust().authorize(&item.author, item.seq).is_err() {
                continue;
            }
            let Some(envelope) = log.envelope(&item.author, item.seq).map_err(local)? else { continue };
            let useful = match item.kind {
                WantKind::Envelope => true,
                WantKind::Bodies => {
                    envelope.bodies().iter().any(|b| matches!(b, tessera_log::Body::Present { .. }))
                }
            };
            if useful {
                self.stats.wanted_sent += 1;
                return Ok(Some(Prepared {
                    bytes: LogEntry::Envelope(envelope).encode(),
                    is_envelope: true,
                }));
            }
        }
        while let Some((&author, &last)) = self.out.targets.first_key_value() {
            let has = self.out.peer_has.get(&author).map_or(Seq(0), |head| head.seq);
            let next = has.next();
            let sendable = match next {
                Some(next) => {
                    next <= last
                        && !self.out.blocked.contains(&author)
                        && log.trust().authorize(&author, next).is_ok()
                }
                None => false,
            };
            let envelope = match (sendable, next) {
                (true, Some(next)) => log.envelope(&author, next).map_err(local)?,
                _ => None,
            };
            match envelope {
                Some(envelope) => {
                    debug_assert_eq!(Some(envelope.seq()), next);
                    self.peer_holds(author, Head { seq: envelope.seq(), id: envelope.id() })?;
                    return Ok(Some(Prepared {
                        bytes: LogEntry::Envelope(envelope).encode(),
                        is_envelope: true,
                    }));
                }
                // Done with this author, or the log does not hold the next envelope.
                None => {
                    self.out.targets.remove(&author);
                }
            }
        }
        Ok(self
            .next_gossip(log)?
            .map(|envelope| Prepared { bytes: LogEntry::Envelope(envelope).encode(), is_envelope: true }))
    }

    // ---- progress and closing -----------------------------------------------------

    fn update_progress(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        if !self.inb.complete {
            if let Some(last) = self.inb.peer_caught_up {
                if self.inb.last_ingested >= last.0 {
                    self.inb.complete = true;
                    // Whatever trust entries the peer announced, it has sent all it will.
                    self.out.awaiting_trust.clear();
                    self.events.push_back(Event::CaughtUp);
                }
            }
        }
        if !self.out.complete {
            if let Some(last) = self.out.caught_up_sent {
                if self.out.in_flight.front().is_none_or(|oldest| *oldest > last) {
                    self.out.complete = true;
                }
            }
        }
        if self.inb.complete && self.out.complete && self.phase == Phase::Syncing {
            self.phase = Phase::Live;
            self.events.push_back(Event::Live);
        }
    }

    fn violation(&mut self, violation: ProtocolViolation) -> SessionError {
        self.fail(SessionError::Protocol(violation))
    }

    /// Closes the session with `error`: queues the Close for the peer and reports
    /// [`Event::Closed`]. Returns the error for the caller to pass on.
    fn fail(&mut self, error: SessionError) -> SessionError {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.close_message =
                error.close_code().map(|code| Message::close(code, &error.peer_text()).encode());
            // Batches received after the failure point are withdrawn: the application
            // stores nothing past a refused batch, and nothing more is acknowledged.
            self.events.retain(|event| !matches!(event, Event::Ingest { .. }));
            self.events.push_back(Event::Closed { reason: CloseReason::Error(error.clone()) });
            // Nothing more will be sent: release what the directions held.
            self.out = Outbound::default();
            self.inb.acks.clear();
            self.inb.pending.clear();
        }
        error
    }
}

/// How often a live session looks again for holes and stripped bodies to ask for.
const WANT_RECHECK_INTERVAL: Duration = Duration::from_secs(60);
/// Items of the peer's Wants waiting for an answer at once.
const WANTED_PENDING_MAX: usize = 2 * WANT_ITEMS_MAX;

/// `range` cut at the last seq `trust` accepts of its author, or `None` when none of
/// it is accepted.
fn within_trust(range: SeqRange, trust: &TrustState) -> Option<SeqRange> {
    match trust.last_valid(&range.author) {
        None => Some(range),
        Some(cut) if cut < range.first => None,
        Some(cut) => Some(SeqRange { last: range.last.min(cut), ..range }),
    }
}

/// Whether the envelopes of `author` just stored from the peer (in seq order) reveal
/// a fork with the local chain; if so, the seq to send evidence at and the peer's id
/// there.
fn forks_in(
    log: &dyn LocalLog,
    author: &DeviceKey,
    envelopes: &[(Seq, EnvelopeId, EnvelopeId)],
) -> Result<Vec<(Seq, EnvelopeId)>, SessionError> {
    let local = |e: LocalLogError| SessionError::LocalLog { reason: e.reason };
    // Fast path: a contiguous run ending at the local head is all in the local chain
    // (each envelope names its predecessor's id: a hash chain).
    let contiguous = envelopes.windows(2).all(|w| w[1].0 .0 == w[0].0 .0 + 1 && w[1].2 == w[0].1);
    if let Some(&(seq, id, _)) = envelopes.last() {
        if contiguous && log.heads().get(author) == Some(Head { seq, id }) {
            return Ok(Vec::new());
        }
    }
    // Each envelope that differs from ours at its seq, or follows another envelope
    // than ours at seq - 1, is answered with ours there. Answering at seq - 1 too
    // walks both sides back, one envelope per exchange, to where the histories part,
    // so that every log ends up agreeing on the fork point.
    let mut out = Vec::new();
    for &(seq, id, prev) in envelopes {
        match log.envelope_id(author, seq).map_err(local)? {
            Some(ours) if ours == id => continue,
            Some(_) => out.push((seq, id)),
            None => {}
        }
        let Some(prev_seq) = seq.0.checked_sub(1).filter(|s| *s > 0).map(Seq) else { continue };
        if let Some(ours) = log.envelope_id(author, prev_seq).map_err(local)? {
            if ours != prev {
                out.push((prev_seq, prev));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod hostile_hello_tests {
    use super::*;
    use crate::error::LocalLogError;
    use crate::message::Hello;
    use tessera_log::testkit::TestNetwork;
    use tessera_log::{Envelope, Head, TrustEntry, TrustState};

    struct Empty(VersionVector, TrustState);
    impl LocalLog for Empty {
        fn heads(&self) -> &VersionVector {
            &self.0
        }
        fn trust(&self) -> &TrustState {
            &self.1
        }
        fn envelope(&self, _: &DeviceKey, _: Seq) -> Result<Option<Envelope>, LocalLogError> {
            Ok(None)
        }
    }

    /// Found by the `sync_session` fuzz target's Hello mode: two authors at seq
    /// u64::MAX made the count of envelopes to receive overflow (a panic with
    /// overflow checks, a wrong count without).
    #[test]
    fn heads_near_u64_max_saturate_the_count_to_receive() {
        let net = TestNetwork::new(3, 1, 3);
        let log = Empty(VersionVector::new(), net.trust());
        let mut heads = VersionVector::new();
        for device in &net.devices[1..] {
            heads.advance(device.id, Head { seq: Seq(u64::MAX), id: EnvelopeId::from_bytes([1; 32]) });
        }
        let hello = Message::Hello(Hello {
            network: net.network,
            device: net.devices[1].id,
            batches_in_flight_max: 4,
            entries_per_batch_max: 16,
            heads,
            trust_ids: net
                .entries
                .iter()
                .map(TrustEntry::id)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        });
        let mut session = Session::new(SessionConfig::new(net.network, net.devices[0].id), Duration::ZERO);
        while session.poll_transmit(Duration::ZERO, &log).is_some() {}
        session.handle_message(Duration::ZERO, &hello.encode()).unwrap();
        session.handle_message(Duration::ZERO, &Message::Want { items: Vec::new() }.encode()).unwrap();
        while session.poll_transmit(Duration::ZERO, &log).is_some() {}
        let known = std::iter::from_fn(|| session.poll_event()).find_map(|e| match e {
            Event::DifferenceKnown { envelopes_to_receive, .. } => Some(envelopes_to_receive),
            _ => None,
        });
        assert_eq!(known, Some(u64::MAX));
    }
}
