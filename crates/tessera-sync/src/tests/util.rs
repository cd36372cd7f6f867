//! Test harness in quinn-proto's `Pair` style: two sessions wired in memory, each
//! backed by a real `tessera_store::Store` in a temporary directory, driven in one
//! thread with virtual time. `drive()` runs until nothing moves, with a step bound
//! that turns a livelock into a failure, and checks flow control at every step.

use std::collections::VecDeque;
use std::time::Duration;

use tempfile::TempDir;
use tessera_log::testkit::TestNetwork;
use tessera_log::{DeviceKey, Envelope, LogEntry, Seq, TrustState, VersionVector};
use tessera_store::{Policy, Store, StoreError};

use crate::{
    CloseReason, Event, IngestFailure, LocalLog, LocalLogError, Message, Session, SessionConfig,
    SessionLimits, WantKind, Wanted,
};

/// Steps after which `drive` declares a livelock.
const STEPS_MAX: usize = 20_000;

impl LocalLog for Store {
    fn heads(&self) -> &VersionVector {
        Store::heads(self)
    }
    fn trust(&self) -> &TrustState {
        Store::trust(self)
    }
    fn envelope(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, LocalLogError> {
        self.get(author, seq).map_err(|e| LocalLogError { reason: e.to_string() })
    }
    fn forks_known(&self) -> usize {
        Store::forks(self).len()
    }
    fn fork_evidence(&self) -> Result<Vec<Envelope>, LocalLogError> {
        Store::fork_evidence(self).map_err(|e| LocalLogError { reason: e.to_string() })
    }
    fn wanted(&self, limit: usize) -> Result<Vec<Wanted>, LocalLogError> {
        let missing =
            Store::bodies_missing(self, limit).map_err(|e| LocalLogError { reason: e.to_string() })?;
        Ok(missing.into_iter().map(|(author, seq)| Wanted { author, seq, kind: WantKind::Bodies }).collect())
    }
}

/// A log that alters one envelope as it is read: the last byte of its last body
/// flips, so its commitment no longer matches (what a corrupting relay would send).
struct Tampering<'a> {
    store: &'a Store,
    target: (DeviceKey, Seq),
}

impl LocalLog for Tampering<'_> {
    fn heads(&self) -> &VersionVector {
        self.store.heads()
    }
    fn trust(&self) -> &TrustState {
        self.store.trust()
    }
    fn envelope(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, LocalLogError> {
        let envelope = LocalLog::envelope(self.store, author, seq)?;
        if (*author, seq) != self.target {
            return Ok(envelope);
        }
        Ok(envelope.map(|e| {
            let mut bytes = e.encode();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            Envelope::decode(&bytes).unwrap()
        }))
    }
}

/// One side: a session, its store, and what the application saw.
pub(crate) struct Node {
    pub session: Session,
    pub store: Store,
    _dir: TempDir,
    /// Every event except `Ingest` (those are applied to the store).
    pub events: Vec<Event>,
    pub closed: Option<CloseReason>,
    /// Envelope this node's log alters when sending.
    pub tamper: Option<(DeviceKey, Seq)>,
    /// Kinds of the messages this node sent, in order.
    pub sent: Vec<&'static str>,
    /// Largest number of batches this node had in flight at any step.
    pub max_in_flight: usize,
}

impl Node {
    /// A node with an empty store of `net`'s network, syncing as device `device`.
    pub fn new(net: &TestNetwork, device: usize, limits: SessionLimits) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        let config = SessionConfig { limits, ..SessionConfig::new(net.network, net.devices[device].id) };
        Node {
            session: Session::new(config, Duration::ZERO),
            store,
            _dir: dir,
            events: Vec::new(),
            closed: None,
            tamper: None,
            sent: Vec::new(),
            max_in_flight: 0,
        }
    }

    /// Stores `entries` (in chunks the store accepts), as the node's own history.
    pub fn hold(&mut self, entries: &[LogEntry]) {
        for chunk in entries.chunks(2000) {
            self.store.ingest(chunk, Policy::AllOrNothing).unwrap();
        }
    }

    fn transmit(&mut self, now: Duration, out: &mut VecDeque<Vec<u8>>) -> bool {
        let mut moved = false;
        loop {
            let message = match self.tamper {
                Some(target) => self.session.poll_transmit(now, &Tampering { store: &self.store, target }),
                None => self.session.poll_transmit(now, &self.store),
            };
            let Some(message) = message else { break };
            self.sent.push(Message::kind_of(&message));
            out.push_back(message);
            moved = true;
        }
        self.max_in_flight = self.max_in_flight.max(self.session.batches_in_flight());
        moved
    }

    /// Applies events: each batch is ingested all-or-nothing and reported back.
    fn process_events(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.session.poll_event() {
            moved = true;
            match event {
                Event::Ingest { batch, entries } => {
                    let result = match self.store.ingest(&entries, Policy::AllOrNothing) {
                        Ok(_) => Ok(()),
                        Err(StoreError::Rejected { index, error }) => {
                            Err(IngestFailure::Rejected { index, reason: error.to_string() })
                        }
                        Err(other) => Err(IngestFailure::Local { reason: other.to_string() }),
                    };
                    let _ = self.session.handle_ingested(batch, result);
                }
                Event::Closed { reason } => {
                    assert!(self.closed.is_none(), "closed twice");
                    self.closed = Some(reason.clone());
                    self.events.push(Event::Closed { reason });
                }
                other => self.events.push(other),
            }
        }
        moved
    }

    /// Commits `entries` locally and tells the session (live push).
    pub fn append(&mut self, entries: &[LogEntry]) {
        self.hold(entries);
        self.session.handle_local_append(entries).unwrap();
    }

    pub fn error(&self) -> Option<&crate::SessionError> {
        match &self.closed {
            Some(CloseReason::Error(e)) => Some(e),
            _ => None,
        }
    }

    pub fn saw(&self, wanted: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(wanted)
    }
}

/// Rewrites a message in flight (a meddling or newer peer).
pub(crate) type Rewrite = Box<dyn FnMut(Vec<u8>) -> Vec<u8>>;

/// Two nodes and the two directions of the stream between them.
pub(crate) struct Pair {
    pub a: Node,
    pub b: Node,
    pub now: Duration,
    a_to_b: VecDeque<Vec<u8>>,
    b_to_a: VecDeque<Vec<u8>>,
    /// Drop everything `b` sends (a peer gone silent, a dead link one way).
    pub b_silent: bool,
    /// Rewrites each message from `a` to `b` in flight.
    pub rewrite_a_to_b: Option<Rewrite>,
    /// Flow-control bound asserted at every step (batches in flight, per side).
    pub window: usize,
    pub steps: usize,
}

impl Pair {
    pub fn new(a: Node, b: Node) -> Pair {
        let window = crate::limits::BATCHES_IN_FLIGHT_MAX;
        Pair {
            a,
            b,
            now: Duration::ZERO,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
            b_silent: false,
            rewrite_a_to_b: None,
            window,
            steps: 0,
        }
    }

    /// One round: both transmit everything they can, every message is delivered,
    /// every event applied. Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        let now = self.now;
        let mut moved = self.a.transmit(now, &mut self.a_to_b);
        moved |= self.b.transmit(now, &mut self.b_to_a);
        if self.b_silent {
            self.b_to_a.clear();
        }
        while let Some(mut message) = self.a_to_b.pop_front() {
            if let Some(rewrite) = self.rewrite_a_to_b.as_mut() {
                message = rewrite(message);
            }
            let _ = self.b.session.handle_message(now, &message);
        }
        while let Some(message) = self.b_to_a.pop_front() {
            let _ = self.a.session.handle_message(now, &message);
        }
        moved |= self.a.process_events();
        moved |= self.b.process_events();
        for node in [&self.a, &self.b] {
            assert!(
                node.session.batches_in_flight() <= self.window,
                "flow control: too many batches in flight"
            );
            assert!(
                node.session.batches_unacknowledged() <= self.window,
                "flow control: too many unacked batches"
            );
        }
        moved
    }

    /// Steps until nothing moves; panics on a livelock.
    pub fn drive(&mut self) {
        for _ in 0..STEPS_MAX {
            if !self.step() {
                return;
            }
        }
        panic!("livelock: still busy after {STEPS_MAX} steps");
    }

    /// Moves virtual time forward, fires due timers, and drives.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        for node in [&mut self.a, &mut self.b] {
            if node.session.poll_timeout().is_some_and(|at| at <= self.now) {
                node.session.handle_timeout(self.now);
            }
        }
        self.drive();
    }
}

/// The network's certificates as log entries.
pub(crate) fn trust_entries(net: &TestNetwork) -> Vec<LogEntry> {
    net.entries.iter().cloned().map(LogEntry::Trust).collect()
}

/// The next `count` envelopes of device `device`, with bodies of `len` bytes.
pub(crate) fn chain(net: &mut TestNetwork, device: usize, count: usize, len: usize) -> Vec<LogEntry> {
    let network = net.network;
    (0..count)
        .map(|n| {
            LogEntry::Envelope(net.devices[device].next_simple(
                &network,
                n as u64 + 1000 * device as u64,
                len,
            ))
        })
        .collect()
}

pub(crate) fn envelope_count(store: &Store) -> u64 {
    store.heads().total_envelopes()
}
