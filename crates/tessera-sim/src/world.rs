//! The simulated world: nodes and relays, their disks, the network between them, the
//! operators' workload and the faults, driven by one seeded event queue in virtual
//! time.
//!
//! Each connection carries two real [`tessera_sync::Session`]s, one per end, exactly
//! as `tessera-net` drives them over QUIC: messages in order on a reliable stream, a
//! batch acknowledged only after the store wrote it, new entries pushed live to the
//! other sessions of the node that stored them. A write is durable only when its disk
//! operation completes; a crash drops the disk queue. Faults (crashes, partitions,
//! one-way links, flapping hub links, stream faults, relay store loss, restore from an
//! old backup, a data directory copied to a second machine, clock skew, a relay whose
//! copies lose their bodies, a node whose disk damages records mid-log) are drawn
//! from the seed; at `fault_phase` the network heals and the run measures how long the
//! stores take to converge, then checks the invariants (see `check`).
//!
//! With [`SimConfig::erasures`], most attendees are registered as the node does it (an
//! id made from the partner's key and a nonce, the attendee's card holding the nonce
//! and a personal-details document of the same person, in one envelope), and at random
//! moments a device erases one (GDPR art. 17): the registering node, a colleague of the
//! same partner (who may not hold the person yet, so that stores receive the erasure
//! before the person), or a device of another partner with the right nonce (which must
//! erase nothing). Backups may be torn (copied while a scrub
//! rewrote the log: bodies of an erased person back in the image), and a relay's disk
//! may be replaced by an old copy of itself.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tessera_log::erasure::NONCE_BYTES;
use tessera_log::testkit::{seed_bytes, TestNetwork};
use tessera_log::trust::{DeviceCertificate, DeviceRevocation, DeviceRole, TrustStatement};
use tessera_log::{
    DeviceKey, DocId, Envelope, EnvelopeId, Erasure, ErasureReason, LogEntry, NetworkId, NewChange,
    PartnerKey, Person, Salt, SecretKey, Seq, Timestamp, TrustEntry,
};
use tessera_records::kind::{kind_of, new_doc_id, RecordKind};
use tessera_records::model::{Record, RecordRef};
use tessera_records::{actor_for, RecordDoc};
use tessera_sync::{
    BatchId, CloseReason, Event, IngestFailure, Message, Session, SessionConfig, SessionLimits,
};

use crate::report::Report;
use crate::rng::Rng;
use crate::store::{ErasureTally, SimStore, VerifiedMemo};
use crate::workload::{self, Action};

/// Disk operations a store may have queued; more is a finding (unbounded growth).
pub const DISK_QUEUE_MAX: usize = 4096;

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Hubs and desks (35 + 10 in the reference deployment).
    pub nodes: usize,
    pub relays: usize,
    pub partners: usize,
    /// Virtual time with workload and faults; the network heals after it.
    pub fault_phase: Duration,
    /// Mean number of operator actions over the fault phase, all nodes together.
    pub actions: u64,
    /// Virtual time allowed, after the heal, for every store to converge.
    pub heal_deadline: Duration,
    /// Mean number of erasures attempted over the fault phase (0: no erasure, no
    /// personal-details documents, nothing drawn for them: with the same product code,
    /// the run the seed gave before the simulator modelled erasure).
    pub erasures: u64,
}

impl SimConfig {
    /// The reference topology: 45 nodes of 10 partners, 2 relays.
    pub fn reference(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 45,
            relays: 2,
            partners: 10,
            fault_phase: Duration::from_secs(20 * 60),
            actions: 220,
            heal_deadline: Duration::from_secs(20 * 60),
            erasures: 8,
        }
    }
}

type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A hub or desk: device `device` of partner `partner`. `clone_of`: a copy of that
    /// node's data directory running on a second machine (an operator's mistake).
    Node {
        device: usize,
        partner: usize,
        clone_of: Option<usize>,
    },
    Relay,
}

#[derive(Debug)]
enum DiskOp {
    Ingest { conn: ConnId, side: usize, batch: BatchId, entries: Vec<LogEntry> },
    Write(Action),
    CreateSite,
    Trust(Box<TrustEntry>),
    Erase { person: Person, by: Eraser },
}

/// Who signs an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eraser {
    /// The node that registered the person (it checks, as `tessera attendee erase`
    /// does, that the nonce of the card it holds makes the person's id with its
    /// partner's key).
    Registrar,
    /// Another node of the registering partner, whether or not it holds the person yet.
    Colleague,
    /// A node of another partner (its erasure must be effective nowhere).
    OtherPartner,
}

/// An erasure signed and acknowledged during the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IssuedErasure {
    pub person: Person,
    /// The partner (index) of the device that signed it.
    pub partner: usize,
    pub by: Eraser,
    pub author: DeviceKey,
    pub seq: Seq,
    pub id: EnvelopeId,
}

#[derive(Debug)]
struct Peer {
    role: Role,
    device: DeviceKey,
    /// The device's key seed (nodes sign; relays do not).
    key: Option<[u8; 32]>,
    store: SimStore,
    disk: VecDeque<DiskOp>,
    disk_busy: bool,
    up: bool,
    online: bool,
    group: u32,
    conns: BTreeSet<ConnId>,
    skew_ms: i64,
    fenced: bool,
    backup: Option<SimStore>,
    incarnation: u64,
    site: DocId,
    limits: SessionLimits,
    /// Messages on their way to this peer (for the backlog figure).
    inbound: usize,
}

#[derive(Debug)]
struct Conn {
    ends: [usize; 2],
    sessions: [Session; 2],
    latency: Duration,
    last_arrival: [Duration; 2],
    broken: bool,
    /// The end that closes once live (`tessera sync`, not `serve`).
    one_shot: Option<usize>,
    timer_at: [Option<Duration>; 2],
}

#[derive(Debug)]
enum Ev {
    Deliver { conn: ConnId, to: usize, bytes: Vec<u8> },
    Timer { conn: ConnId, side: usize },
    DiskDone { peer: usize, incarnation: u64 },
    Act { peer: usize },
    Connect { peer: usize },
    Backup { peer: usize },
    Fault,
    Restart { peer: usize },
    Online { peer: usize, online: bool },
    HealPartition { epoch: u64 },
    Unblock { from: usize, to: usize },
    Revoke,
    Heal,
    Check,
    Erase,
}

/// An acknowledged write: what the operator was told is saved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acked {
    pub author: DeviceKey,
    pub seq: Seq,
    pub id: EnvelopeId,
}

/// Per-seed fault intensities: some seeds are calm, some stormy.
#[derive(Debug, Clone)]
struct FaultProfile {
    /// Mean time between fault events.
    mean_gap_ms: u64,
    stream_faults: bool,
    revoke: bool,
    clone: bool,
}

pub struct World {
    pub(crate) config: SimConfig,
    net: TestNetwork,
    network: NetworkId,
    peers: Vec<Peer>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    queue: BTreeMap<(Duration, u64), Ev>,
    next_event: u64,
    pub(crate) now: Duration,
    rng: Rng,
    workload_rng: Rng,
    profile: FaultProfile,
    partition_epoch: u64,
    blocked: BTreeSet<(usize, usize)>,
    healed: bool,
    pub(crate) converged_at: Option<Duration>,
    trace: blake3::Hasher,
    pub(crate) acked: Vec<Acked>,
    /// Envelopes a restore from backup destroyed while no other store held them.
    pub(crate) destroyed: BTreeSet<(DeviceKey, Seq, EnvelopeId)>,
    pub(crate) cloned_devices: BTreeSet<DeviceKey>,
    pub(crate) report: Report,
    last_entries_at: Duration,
    /// A quiet window followed convergence.
    pub(crate) quiet: bool,
    /// An empty store holding the network's initial trust: what a new or wiped store
    /// starts from.
    pub(crate) genesis: SimStore,
    /// Draws for erasures (and only for them): with `erasures` at 0 none is drawn.
    erasure_rng: Rng,
    /// Persons registered with personal details (acknowledged): their partner, the
    /// node that registered them, and the nonce of their id.
    pub(crate) persons: BTreeMap<Person, (usize, usize, [u8; NONCE_BYTES])>,
    /// Nonces of ids drawn for registrations not acknowledged yet.
    nonces: BTreeMap<Person, [u8; NONCE_BYTES]>,
    pub(crate) issued: Vec<IssuedErasure>,
    pub(crate) tally: ErasureTally,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("seed", &self.config.seed).field("now", &self.now).finish()
    }
}

impl World {
    pub fn new(config: SimConfig) -> World {
        let mut rng = Rng::new(config.seed);
        let per_partner = config.nodes.div_ceil(config.partners);
        let net = TestNetwork::new(config.seed, config.partners, per_partner + 1);
        let network = net.network;
        let tally = ErasureTally::default();
        let genesis = SimStore::new(&net.entries, network, VerifiedMemo::default()).with_tally(tally.clone());
        // Its own stream, not forked from `rng`: runs without erasures draw as before.
        let erasure_rng = Rng::new(config.seed ^ 0xe7a5_e000_0000_0017);
        let mut setup = rng.fork(1);
        let workload_rng = rng.fork(2);
        let profile = FaultProfile {
            mean_gap_ms: [4_000, 10_000, 30_000, 120_000][setup.below(4) as usize],
            stream_faults: setup.chance(0.25),
            revoke: setup.chance(0.5),
            clone: setup.chance(0.15),
        };
        let mut peers = Vec::new();
        for n in 0..config.nodes {
            // Nodes are spread over partners; the last device of each partner is a relay's.
            let partner = n % config.partners;
            let device = partner * (per_partner + 1) + n / config.partners;
            let skew_ms = match setup.below(3) {
                0 => 0,
                _ => setup.range(0, 48 * 3_600_000) as i64 - 24 * 3_600_000,
            };
            let d = &net.devices[device];
            peers.push(Peer {
                role: Role::Node { device, partner, clone_of: None },
                device: d.id,
                key: Some(d.key.to_seed()),
                store: genesis.clone(),
                disk: VecDeque::new(),
                disk_busy: false,
                up: true,
                online: setup.chance(0.7),
                group: 0,
                conns: BTreeSet::new(),
                skew_ms,
                fenced: false,
                backup: None,
                incarnation: 0,
                site: new_doc_id(RecordKind::Site, setup.bytes()),
                limits: limits(&mut setup),
                inbound: 0,
            });
        }
        for r in 0..config.relays {
            let device = r * (per_partner + 1) + per_partner;
            peers.push(Peer {
                role: Role::Relay,
                device: net.devices[device].id,
                key: None,
                store: genesis.clone(),
                disk: VecDeque::new(),
                disk_busy: false,
                up: true,
                online: true,
                group: 0,
                conns: BTreeSet::new(),
                skew_ms: 0,
                fenced: false,
                backup: None,
                incarnation: 0,
                site: DocId::default(),
                limits: limits(&mut setup),
                inbound: 0,
            });
        }
        let mut world = World {
            config,
            net,
            network,
            peers,
            conns: BTreeMap::new(),
            next_conn: 0,
            queue: BTreeMap::new(),
            next_event: 0,
            now: Duration::ZERO,
            rng,
            workload_rng,
            profile,
            partition_epoch: 0,
            blocked: BTreeSet::new(),
            healed: false,
            converged_at: None,
            trace: blake3::Hasher::new(),
            acked: Vec::new(),
            destroyed: BTreeSet::new(),
            cloned_devices: BTreeSet::new(),
            report: Report::default(),
            last_entries_at: Duration::ZERO,
            quiet: false,
            genesis,
            erasure_rng,
            persons: BTreeMap::new(),
            nonces: BTreeMap::new(),
            issued: Vec::new(),
            tally,
        };
        world.report.seed = world.config.seed;
        let mean_act = world.mean_act_ms();
        for p in 0..world.config.nodes {
            world.peers[p].disk.push_back(DiskOp::CreateSite);
            world.report.writes.attempted += 1;
            world.kick_disk(p);
            let first = world.workload_rng.exp_ms(mean_act);
            world.at(Duration::from_millis(first), Ev::Act { peer: p });
            let c = world.rng.exp_ms(20_000);
            world.at(Duration::from_millis(c), Ev::Connect { peer: p });
            let b = world.rng.exp_ms(300_000);
            world.at(Duration::from_millis(b), Ev::Backup { peer: p });
            let o = world.rng.exp_ms(180_000);
            let online = !world.peers[p].online;
            world.at(Duration::from_millis(o), Ev::Online { peer: p, online });
        }
        let gap = world.rng.exp_ms(world.profile.mean_gap_ms);
        world.at(Duration::from_millis(gap), Ev::Fault);
        if world.profile.revoke {
            let t = world.rng.range(60_000, world.config.fault_phase.as_millis() as u64 * 3 / 4);
            world.at(Duration::from_millis(t), Ev::Revoke);
        }
        if world.profile.clone {
            world.add_clone();
        }
        if world.config.erasures > 0 {
            let first = world.erasure_rng.exp_ms(world.mean_erasure_ms());
            world.at(Duration::from_millis(first), Ev::Erase);
            // Relays keep old copies of their disk too (one may be put back).
            for r in world.config.nodes..world.peers.len() {
                let b = world.erasure_rng.exp_ms(300_000);
                world.at(Duration::from_millis(b), Ev::Backup { peer: r });
            }
        }
        let heal = world.config.fault_phase;
        world.at(heal, Ev::Heal);
        world
    }

    fn mean_erasure_ms(&self) -> u64 {
        self.config.fault_phase.as_millis() as u64 / self.config.erasures.max(1)
    }

    fn mean_act_ms(&self) -> u64 {
        (self.config.fault_phase.as_millis() as u64 * self.config.nodes as u64) / self.config.actions.max(1)
    }

    fn at(&mut self, time: Duration, ev: Ev) {
        let time = time.max(self.now);
        self.queue.insert((time, self.next_event), ev);
        self.next_event += 1;
    }

    fn after_ms(&mut self, ms: u64, ev: Ev) {
        let t = self.now + Duration::from_millis(ms);
        self.at(t, ev);
    }

    /// Runs to the end: faults, heal, convergence (or the deadline), then the checks.
    pub fn run(mut self) -> Report {
        let deadline = self.config.fault_phase
            + self.config.heal_deadline
            + crate::check::QUIESCENCE_MAX
            + crate::check::QUIET_WINDOW;
        while let Some(((time, _), ev)) = self.queue.pop_first() {
            if time > deadline {
                break;
            }
            self.now = time;
            self.report.events += 1;
            self.trace_event(&ev);
            self.handle(ev);
            if let Some(t) = self.converged_at {
                // Keep running past convergence until nothing was streamed for a while.
                if self.now > self.last_entries_at.max(t) + crate::check::QUIET_WINDOW {
                    self.quiet = true;
                    break;
                }
                if self.now > t + crate::check::QUIESCENCE_MAX {
                    break;
                }
            }
        }
        if debug() && self.converged_at.is_none() {
            for (i, p) in self.peers.iter().enumerate() {
                eprintln!(
                    "peer {i}: {:?} device {} up {} fenced {} forks {}",
                    p.role,
                    p.device.short(),
                    p.up,
                    p.fenced,
                    p.store.forks().len()
                );
            }
            for (id, c) in &self.conns {
                eprintln!(
                    "conn {id} {:?} broken {} live {:?} closed {:?} one_shot {:?}",
                    c.ends,
                    c.broken,
                    c.sessions.iter().map(Session::is_live).collect::<Vec<_>>(),
                    c.sessions.iter().map(Session::is_closed).collect::<Vec<_>>(),
                    c.one_shot
                );
                if std::env::var_os("TESSERA_SIM_DUMP").is_some() && !c.sessions.iter().all(Session::is_live)
                {
                    eprintln!("{:#?}", c.sessions);
                }
            }
        }
        self.report.trace = *self.trace.finalize().as_bytes();
        if let Some(t) = self.converged_at {
            // Batches already on their way when the last store caught up may still
            // arrive as duplicates; after a grace period nothing may be streamed.
            self.report.quiescent_after = Some(self.last_entries_at.saturating_sub(t));
        }
        crate::check::check(&mut self);
        self.report
    }

    fn trace_event(&mut self, ev: &Ev) {
        self.trace.update(&(self.now.as_nanos() as u64).to_le_bytes());
        let tag: (u8, u64, u64) = match ev {
            Ev::Deliver { conn, to, bytes } => {
                self.trace.update(blake3::hash(bytes).as_bytes());
                (0, *conn, *to as u64)
            }
            Ev::Timer { conn, side } => (1, *conn, *side as u64),
            Ev::DiskDone { peer, incarnation } => (2, *peer as u64, *incarnation),
            Ev::Act { peer } => (3, *peer as u64, 0),
            Ev::Connect { peer } => (4, *peer as u64, 0),
            Ev::Backup { peer } => (5, *peer as u64, 0),
            Ev::Fault => (6, 0, 0),
            Ev::Restart { peer } => (7, *peer as u64, 0),
            Ev::Online { peer, online } => (8, *peer as u64, *online as u64),
            Ev::HealPartition { epoch } => (9, *epoch, 0),
            Ev::Unblock { from, to } => (10, *from as u64, *to as u64),
            Ev::Revoke => (11, 0, 0),
            Ev::Heal => (12, 0, 0),
            Ev::Check => (13, 0, 0),
            Ev::Erase => (14, 0, 0),
        };
        self.trace.update(&[tag.0]);
        self.trace.update(&tag.1.to_le_bytes());
        self.trace.update(&tag.2.to_le_bytes());
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { conn, to, bytes } => self.deliver(conn, to, bytes),
            Ev::Timer { conn, side } => {
                let now = self.now;
                let Some(c) = self.conns.get_mut(&conn) else { return };
                if c.timer_at[side] != Some(now) {
                    return;
                }
                c.timer_at[side] = None;
                c.sessions[side].handle_timeout(now);
                self.pump(conn, side);
            }
            Ev::DiskDone { peer, incarnation } => self.disk_done(peer, incarnation),
            Ev::Act { peer } => {
                if self.healed {
                    return;
                }
                let p = &self.peers[peer];
                if p.up && p.disk.len() < DISK_QUEUE_MAX / 2 {
                    let action = Action::draw(&mut self.workload_rng);
                    self.peers[peer].disk.push_back(DiskOp::Write(action));
                    self.report.writes.attempted += 1;
                    self.kick_disk(peer);
                }
                let next = self.workload_rng.exp_ms(self.mean_act_ms());
                self.after_ms(next, Ev::Act { peer });
            }
            Ev::Connect { peer } => self.connect_tick(peer),
            Ev::Backup { peer } => {
                if !self.healed {
                    if self.peers[peer].up {
                        let backup = self.take_backup(peer);
                        self.peers[peer].backup = Some(backup);
                    }
                    let next = if self.is_relay(peer) {
                        self.erasure_rng.exp_ms(300_000)
                    } else {
                        self.rng.exp_ms(300_000)
                    };
                    self.after_ms(next, Ev::Backup { peer });
                }
            }
            Ev::Fault => {
                if !self.healed {
                    self.fault();
                    let gap = self.rng.exp_ms(self.profile.mean_gap_ms);
                    self.after_ms(gap, Ev::Fault);
                }
            }
            Ev::Restart { peer } => self.restart(peer),
            Ev::Online { peer, online } => {
                if self.healed {
                    return;
                }
                self.peers[peer].online = online;
                let mean = if online { 300_000 } else { 180_000 };
                let next = self.rng.exp_ms(mean);
                self.after_ms(next, Ev::Online { peer, online: !online });
            }
            Ev::HealPartition { epoch } => {
                if epoch == self.partition_epoch {
                    for p in &mut self.peers {
                        p.group = 0;
                    }
                }
            }
            Ev::Unblock { from, to } => {
                self.blocked.remove(&(from, to));
            }
            Ev::Revoke => self.revoke(),
            Ev::Heal => self.heal(),
            Ev::Check => self.check_convergence(),
            Ev::Erase => {
                if !self.healed {
                    self.plan_erasure();
                    let next = self.erasure_rng.exp_ms(self.mean_erasure_ms());
                    self.after_ms(next, Ev::Erase);
                }
            }
        }
    }

    /// A copy of `p`'s disk. With erasures, now and then a torn one: taken while a
    /// scrub rewrote the log, it holds bodies the scrub removed since the last backup.
    fn take_backup(&mut self, p: usize) -> SimStore {
        let peer = &self.peers[p];
        if self.config.erasures > 0 && self.erasure_rng.chance(0.3) {
            if let Some(older) = &peer.backup {
                let (image, back) = peer.store.torn_copy(older);
                self.report.erasures.torn_backups += 1;
                self.report.erasures.bodies_in_torn_backups += back;
                return image;
            }
        }
        peer.store.clone()
    }

    // ---- network ----------------------------------------------------------------

    fn is_relay(&self, p: usize) -> bool {
        self.peers[p].role == Role::Relay
    }

    fn link_up(&self, from: usize, to: usize) -> bool {
        let (a, b) = (&self.peers[from], &self.peers[to]);
        a.up && b.up && a.online && b.online && a.group == b.group && !self.blocked.contains(&(from, to))
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.peers[a].conns.iter().any(|c| self.conns.get(c).is_some_and(|c| c.ends.contains(&b)))
    }

    fn connect_tick(&mut self, peer: usize) {
        let p = &self.peers[peer];
        if p.up && p.online {
            let relays: Vec<usize> = (self.config.nodes..self.peers.len()).collect();
            // `tessera serve --peer relay1 --peer relay2`: keep a session with each relay.
            for r in relays {
                if !self.connected(peer, r) && (self.healed || self.rng.chance(0.6)) {
                    let one_shot = self.rng.chance(0.3) && !self.healed;
                    self.open(peer, r, one_shot);
                }
            }
            // Now and then a direct sync with another hub of the same partner (LAN).
            if !self.healed && self.rng.chance(0.15) {
                if let Role::Node { partner, .. } = self.peers[peer].role {
                    let same: Vec<usize> = (0..self.peers.len())
                        .filter(|&q| q != peer)
                        .filter(|&q| matches!(self.peers[q].role, Role::Node { partner: pq, .. } if pq == partner))
                        .collect();
                    if let Some(&q) = self.rng.pick(&same) {
                        if !self.connected(peer, q) {
                            self.open(peer, q, true);
                        }
                    }
                }
            }
        }
        let next = if self.healed { 2_000 } else { self.rng.exp_ms(30_000) };
        self.after_ms(next, Ev::Connect { peer });
    }

    fn open(&mut self, a: usize, b: usize, one_shot: bool) {
        if !self.link_up(a, b) || !self.link_up(b, a) {
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let config =
            |p: &Peer, network| SessionConfig { limits: p.limits, ..SessionConfig::new(network, p.device) };
        let sessions = [
            Session::new(config(&self.peers[a], self.network), self.now),
            Session::new(config(&self.peers[b], self.network), self.now),
        ];
        let latency = Duration::from_millis(self.rng.range(1, 300));
        self.conns.insert(
            id,
            Conn {
                ends: [a, b],
                sessions,
                latency,
                last_arrival: [Duration::ZERO; 2],
                broken: false,
                one_shot: one_shot.then_some(0),
                timer_at: [None; 2],
            },
        );
        self.peers[a].conns.insert(id);
        self.peers[b].conns.insert(id);
        self.report.sessions += 1;
        if self.healed {
            self.report.sessions_after_heal += 1;
        }
        self.pump(id, 0);
        self.pump(id, 1);
    }

    fn send(&mut self, id: ConnId, from_side: usize, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get(&id) else { return };
        if conn.broken {
            return;
        }
        let (from, to) = (conn.ends[from_side], conn.ends[1 - from_side]);
        if !self.link_up(from, to) {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.broken = true;
            }
            return;
        }
        if Message::kind_of(&bytes) == "Entries" {
            self.last_entries_at = self.now;
        }
        let stream_faults = self.profile.stream_faults && !self.healed;
        let jitter = self.rng.range(0, 20);
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let to_side = 1 - from_side;
        let mut at = self.now + conn.latency + Duration::from_millis(jitter);
        at = at.max(conn.last_arrival[to_side]);
        conn.last_arrival[to_side] = at;
        let mut bytes = bytes;
        if stream_faults {
            // Below the session, a reliable stream never does these; a buggy or hostile
            // transport might. The session must end cleanly and store nothing wrong.
            match self.rng.below(1000) {
                0..=1 => {
                    self.report.stream_faults += 1;
                    return; // lost
                }
                2..=3 => {
                    self.report.stream_faults += 1;
                    let copy = bytes.clone();
                    self.peers[to].inbound += 1;
                    self.at(at, Ev::Deliver { conn: id, to: to_side, bytes: copy });
                }
                4 => {
                    self.report.stream_faults += 1;
                    if !bytes.is_empty() {
                        let i = self.rng.below(bytes.len() as u64) as usize;
                        bytes[i] ^= 1 << self.rng.below(8);
                    }
                }
                5..=6 => {
                    // Overtaken: delivered before the message sent just before it.
                    self.report.stream_faults += 1;
                    at = self.now + Duration::from_millis(1);
                }
                _ => {}
            }
        }
        self.peers[to].inbound += 1;
        if self.is_relay(to) {
            let backlog = self.peers[to].inbound + self.peers[to].disk.len();
            self.report.max_relay_backlog = self.report.max_relay_backlog.max(backlog);
        }
        self.at(at, Ev::Deliver { conn: id, to: to_side, bytes });
    }

    fn deliver(&mut self, id: ConnId, to: usize, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get(&id) else { return };
        let receiver = conn.ends[to];
        self.peers[receiver].inbound = self.peers[receiver].inbound.saturating_sub(1);
        if conn.broken {
            return;
        }
        let (from_peer, to_peer) = (conn.ends[1 - to], conn.ends[to]);
        if !self.link_up(from_peer, to_peer) {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.broken = true;
            }
            return;
        }
        let now = self.now;
        if let Some(conn) = self.conns.get_mut(&id) {
            let _ = conn.sessions[to].handle_message(now, &bytes);
        }
        self.pump(id, to);
    }

    /// Drains one end of a connection: its events (ingest requests go to the disk
    /// queue), then every message it can send, then re-arms its timer.
    fn pump(&mut self, id: ConnId, side: usize) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let p = conn.ends[side];
        let other_is_relay = self.peers[conn.ends[1 - side]].role == Role::Relay;
        let peer = &mut self.peers[p];
        let session = &mut conn.sessions[side];
        let mut out = Vec::new();
        let mut disk = Vec::new();
        loop {
            let mut moved = false;
            while let Some(event) = session.poll_event() {
                moved = true;
                match event {
                    Event::Ingest { batch, entries } => {
                        disk.push(DiskOp::Ingest { conn: id, side, batch, entries })
                    }
                    // A node restored from a backup writes again only once it fetched
                    // its own newer history from a relay.
                    Event::CaughtUp if peer.fenced && other_is_relay => {
                        peer.fenced = false;
                        self.report.unfenced += 1;
                    }
                    Event::Live if conn.one_shot == Some(side) => session.close(),
                    Event::Closed { reason } => {
                        if debug() && self.healed {
                            eprintln!("{:?} conn {id} side {side} peer {p}: closed {reason:?}", now);
                        }
                        let what = match &reason {
                            CloseReason::Finished { .. } => "finished".to_string(),
                            CloseReason::Error(e) => error_kind(&e.to_string()),
                        };
                        *self.report.session_ends.entry(what).or_default() += 1;
                    }
                    Event::ForkDetected { .. } => self.report.fork_events += 1,
                    _ => {}
                }
            }
            while let Some(message) = session.poll_transmit(now, &peer.store) {
                moved = true;
                out.push(message);
            }
            if !moved {
                break;
            }
        }
        let in_flight = session.batches_in_flight();
        assert!(in_flight <= tessera_sync::limits::BATCHES_IN_FLIGHT_MAX, "flow-control window exceeded");
        let mut arm = None;
        if let Some(t) = session.poll_timeout() {
            let t = t.max(now);
            if conn.timer_at[side] != Some(t) {
                conn.timer_at[side] = Some(t);
                arm = Some(t);
            }
        }
        let drained = conn.sessions.iter().all(Session::is_drained);
        if let Some(t) = arm {
            self.at(t, Ev::Timer { conn: id, side });
        }
        let had_disk = !disk.is_empty();
        self.peers[p].disk.extend(disk);
        if had_disk {
            self.report.max_disk_queue = self.report.max_disk_queue.max(self.peers[p].disk.len());
            assert!(self.peers[p].disk.len() <= DISK_QUEUE_MAX, "disk queue over its limit");
            self.kick_disk(p);
        }
        for message in out {
            self.send(id, side, message);
        }
        if drained {
            self.drop_conn(id);
        }
    }

    fn drop_conn(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            for p in conn.ends {
                self.peers[p].conns.remove(&id);
            }
        }
    }

    /// New entries stored by `p` go live to its other sessions (the fan-out).
    fn fanout(&mut self, p: usize, entries: &[LogEntry], except: Option<ConnId>) {
        if entries.is_empty() {
            return;
        }
        let conns: Vec<ConnId> = self.peers[p].conns.iter().copied().filter(|c| Some(*c) != except).collect();
        for id in conns {
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            let side = if conn.ends[0] == p { 0 } else { 1 };
            if conn.one_shot == Some(side) {
                continue; // `tessera sync` does not listen to the fan-out
            }
            let _ = conn.sessions[side].handle_local_append(entries);
            self.pump(id, side);
        }
    }

    // ---- disks ------------------------------------------------------------------

    fn kick_disk(&mut self, p: usize) {
        let peer = &self.peers[p];
        if peer.disk_busy || peer.disk.is_empty() || !peer.up {
            return;
        }
        let incarnation = peer.incarnation;
        self.peers[p].disk_busy = true;
        let latency = self.rng.range(200, 5_000);
        let t = self.now + Duration::from_micros(latency);
        self.at(t, Ev::DiskDone { peer: p, incarnation });
    }

    fn disk_done(&mut self, p: usize, incarnation: u64) {
        if self.peers[p].incarnation != incarnation || !self.peers[p].up {
            return;
        }
        self.peers[p].disk_busy = false;
        let Some(op) = self.peers[p].disk.pop_front() else { return };
        match op {
            DiskOp::Ingest { conn, side, batch, entries } => {
                let result = self.peers[p].store.ingest(&entries);
                let (outcome, new) = match result {
                    Ok((new, forks)) => {
                        self.report.forks_seen += forks.len() as u64;
                        (Ok(()), new)
                    }
                    Err(refused) => {
                        *self.report.refusals.entry(error_kind(&refused.error.to_string())).or_default() += 1;
                        (
                            Err(IngestFailure::Rejected {
                                index: refused.index,
                                reason: refused.error.to_string(),
                            }),
                            Vec::new(),
                        )
                    }
                };
                if let Some(c) = self.conns.get_mut(&conn) {
                    let _ = c.sessions[side].handle_ingested(batch, outcome);
                    self.pump(conn, side);
                }
                self.fanout(p, &new, Some(conn));
            }
            DiskOp::Write(action) => self.local_write(p, Some(action)),
            DiskOp::CreateSite => self.local_write(p, None),
            DiskOp::Erase { person, by } => self.local_erase(p, person, by),
            DiskOp::Trust(entry) => {
                if let Ok((new, _)) = self.peers[p].store.ingest(&[LogEntry::Trust(*entry)]) {
                    self.fanout(p, &new, None);
                }
            }
        }
        self.kick_disk(p);
    }

    // ---- the operators' work ------------------------------------------------------

    fn local_write(&mut self, p: usize, action: Option<Action>) {
        if self.peers[p].fenced {
            self.report.writes.refused_restoring += 1;
            return;
        }
        if self.peers[p].store.signing_blocked(&self.peers[p].device) {
            self.report.writes.refused_damaged += 1;
            return;
        }
        let registering = matches!(action, Some(Action::Register));
        let records = match action {
            None => {
                let Role::Node { device, .. } = self.peers[p].role else { return };
                let partner = format!("Cooperativa Prova {}", device);
                let site = workload::site(&mut self.workload_rng, p, &partner);
                vec![(self.peers[p].site, Record::Site(site))]
            }
            Some(action) => self.plan(p, action),
        };
        if records.is_empty() {
            self.report.writes.nothing_to_do += 1;
            return;
        }
        let peer = &self.peers[p];
        let Some(key) = peer.key.map(SecretKey::from_seed) else { return };
        let time_ms = 1_793_523_600_000 + self.now.as_millis() as i64 + peer.skew_ms;
        let actor = actor_for(&peer.device);
        let mut changes = Vec::new();
        for (doc, record) in records {
            let change = match build_doc(&peer.store, &peer.device, &doc) {
                Some(mut existing) => existing.update(&record, time_ms).ok().flatten(),
                None => RecordDoc::create(actor.clone(), &record, time_ms).ok().map(|(_, c)| c),
            };
            if let Some(body) = change {
                let salt = Salt(self.workload_rng.bytes());
                changes.push(NewChange { doc, salt, body });
            }
        }
        if changes.is_empty() {
            self.report.writes.nothing_to_do += 1;
            return;
        }
        let head = peer.store.heads().get(&peer.device);
        let next = head.map_or(Seq::FIRST, |h| Seq(h.seq.0 + 1));
        if peer.store.trust().authorize(&peer.device, next).is_err() {
            // What `Node::transact` answers a revoked device: nothing written.
            self.report.writes.refused_revoked += 1;
            return;
        }
        let envelope = match Envelope::sign(
            &self.network,
            &key,
            head.map(|h| (h.seq, h.id)),
            Timestamp(time_ms),
            changes,
        ) {
            Ok(e) => e,
            Err(e) => {
                self.report.failures.push(format!("could not sign a local write: {e}"));
                return;
            }
        };
        let acked = Acked { author: envelope.author(), seq: envelope.seq(), id: envelope.id() };
        let details: Vec<Person> = envelope
            .changes()
            .iter()
            .filter(|c| registering && kind_of(&c.doc) == Some(RecordKind::Personal))
            .map(|c| Person::of(&c.doc))
            .collect();
        match self.peers[p].store.ingest(&[LogEntry::Envelope(envelope)]) {
            Ok((new, _)) => {
                self.acked.push(acked);
                self.report.writes.acknowledged += 1;
                if let Role::Node { partner, .. } = self.peers[p].role {
                    for person in details {
                        if let Some(nonce) = self.nonces.remove(&person) {
                            self.persons.insert(person, (partner, p, nonce));
                        }
                        self.report.erasures.persons_with_details += 1;
                    }
                }
                self.fanout(p, &new, None);
            }
            Err(refused) => {
                self.report.failures.push(format!("a node's own write was refused: {}", refused.error));
            }
        }
    }

    /// The records an operator's action writes, given what the node holds.
    fn plan(&mut self, p: usize, action: Action) -> Vec<(DocId, Record)> {
        // With erasures, most attendees are written as the node writes them: the card
        // every hub reads and the personal details, in a document of their own.
        let split = action == Action::Register && self.config.erasures > 0 && self.erasure_rng.chance(0.75);
        let own = match self.peers[p].role {
            Role::Node { partner, .. } => Some(PartnerKey(self.net.partner_keys[partner].public())),
            Role::Relay => None,
        };
        let nonce: [u8; NONCE_BYTES] = if split { self.erasure_rng.bytes() } else { [0; NONCE_BYTES] };
        let rng = &mut self.workload_rng;
        let peer = &self.peers[p];
        let site = RecordRef(peer.site);
        let known = |kind: RecordKind| -> Vec<DocId> {
            peer.store.docs().filter(|d| kind_of(d) == Some(kind)).copied().collect()
        };
        let new_id = |rng: &mut Rng, kind| new_doc_id(kind, rng.bytes());
        match action {
            Action::Register => {
                let doc = new_id(rng, RecordKind::Attendee);
                let mut attendee = workload::attendee(rng, site);
                match (split, own) {
                    (true, Some(own)) => {
                        // `Node::new_attendee_id`: the id proves the registering partner.
                        let person = tessera_log::person_id(&own, &nonce);
                        let doc = person.doc(RecordKind::Attendee.byte());
                        attendee.id_nonce = Some(hex(&nonce));
                        let (card, personal) = tessera_records::split_attendee(&attendee);
                        self.nonces.insert(person, nonce);
                        vec![
                            (doc, Record::Attendee(card)),
                            (tessera_records::personal_doc_id(&doc), Record::Personal(personal)),
                        ]
                    }
                    _ => vec![(doc, Record::Attendee(attendee))],
                }
            }
            Action::AddDevice => {
                let tag = rng.below(10_000);
                vec![(new_id(rng, RecordKind::Device), Record::Device(workload::device(rng, site, tag)))]
            }
            Action::Lend => {
                let (devices, attendees) = (known(RecordKind::Device), known(RecordKind::Attendee));
                match (rng.pick(&devices), rng.pick(&attendees)) {
                    (Some(d), Some(a)) => {
                        let loan = workload::loan(RecordRef(*d), RecordRef(*a), site);
                        let mut writes = vec![(new_id(rng, RecordKind::Loan), Record::Loan(loan))];
                        // As the node does: the device is marked lent in the same change.
                        if let Some(Record::Device(mut device)) =
                            build_doc(&peer.store, &peer.device, d).and_then(|doc| doc.hydrate().ok())
                        {
                            device.status = tessera_records::vocab::DeviceStatus::Lent;
                            writes.push((*d, Record::Device(device)));
                        }
                        writes
                    }
                    _ => Vec::new(),
                }
            }
            Action::NewSession => {
                let attendees = known(RecordKind::Attendee);
                let n = rng.below(4) as usize;
                let participants: Vec<RecordRef> =
                    (0..n).filter_map(|_| rng.pick(&attendees).copied().map(RecordRef)).collect();
                let mut unique = participants.clone();
                unique.sort();
                unique.dedup();
                vec![(
                    new_id(rng, RecordKind::Session),
                    Record::Session(workload::session(rng, site, &unique)),
                )]
            }
            Action::Edit => {
                let docs: Vec<DocId> = peer.store.docs().copied().collect();
                let Some(doc) = rng.pick(&docs).copied() else { return Vec::new() };
                let attendee = rng.pick(&known(RecordKind::Attendee)).copied().map(RecordRef);
                let person = Person::of(&doc);
                let personal = matches!(kind_of(&doc), Some(RecordKind::Attendee | RecordKind::Personal));
                if personal && peer.store.erased().contains(&person) {
                    // What the node answers: nothing of an erased person is written again.
                    return Vec::new();
                }
                if kind_of(&doc) == Some(RecordKind::Personal)
                    && !own.is_some_and(|own| registered_by(&peer.store, &peer.device, &person, &own))
                {
                    // Only the registering partner's devices read (and so write) the
                    // details: the read scope, which the simulator does not seal.
                    return Vec::new();
                }
                let Some(record) = build_doc(&peer.store, &peer.device, &doc).and_then(|d| d.hydrate().ok())
                else {
                    return Vec::new();
                };
                vec![(doc, workload::edit(rng, record, attendee))]
            }
            Action::ResolveDoubleLoan => {
                let mut open: BTreeMap<RecordRef, Vec<(DocId, tessera_records::model::Loan)>> =
                    BTreeMap::new();
                for doc in known(RecordKind::Loan) {
                    let loan = build_doc(&peer.store, &peer.device, &doc).and_then(|d| d.hydrate().ok());
                    if let Some(Record::Loan(loan)) = loan {
                        if loan.is_open() {
                            open.entry(loan.device).or_default().push((doc, loan));
                        }
                    }
                }
                let Some((_, loans)) = open.into_iter().find(|(_, l)| l.len() > 1) else { return Vec::new() };
                self.report.resolutions += 1;
                // The operator keeps the loan that is with the borrower and closes the
                // others. Two hubs offline may each decide on a different one: both
                // loans end closed, and the merged records must say so (an "unlent"
                // conflict), never leave the device silently lent to nobody.
                let keep = rng.below(loans.len() as u64) as usize;
                loans
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| *i != keep)
                    .map(|(_, (doc, loan))| {
                        let closed = tessera_records::close_loan(
                            &loan,
                            workload::resolution_day(),
                            "prestito doppio: dispositivo già in comodato",
                        );
                        (doc, Record::Loan(closed))
                    })
                    .collect()
            }
        }
    }

    /// An erasure is asked for: of a person registered with details, by the node that
    /// registered them, a colleague of the same partner, or a node of another partner.
    fn plan_erasure(&mut self) {
        let by = match self.erasure_rng.below(100) {
            0..=59 => Eraser::Registrar,
            60..=84 => Eraser::Colleague,
            _ => Eraser::OtherPartner,
        };
        let erased_by_registrar: BTreeSet<Person> =
            self.issued.iter().filter(|e| e.by != Eraser::OtherPartner).map(|e| e.person).collect();
        let persons: Vec<(Person, usize, usize)> = self
            .persons
            .iter()
            .filter(|(person, _)| by == Eraser::OtherPartner || !erased_by_registrar.contains(person))
            .map(|(person, &(partner, registrar, _))| (*person, partner, registrar))
            .collect();
        let Some(&(person, partner, registrar)) = self.erasure_rng.pick(&persons) else { return };
        let nodes: Vec<usize> = (0..self.config.nodes)
            .filter(|&q| self.peers[q].up && self.peers[q].role_is_original())
            .filter(|&q| match (by, self.peers[q].role) {
                (Eraser::Registrar, _) => q == registrar,
                (Eraser::Colleague, Role::Node { partner: pq, .. }) => pq == partner && q != registrar,
                (Eraser::OtherPartner, Role::Node { partner: pq, .. }) => pq != partner,
                (_, Role::Relay) => false,
            })
            .collect();
        let Some(&eraser) = self.erasure_rng.pick(&nodes) else { return };
        self.peers[eraser].disk.push_back(DiskOp::Erase { person, by });
        self.report.writes.attempted += 1;
        self.kick_disk(eraser);
    }

    /// Node `p` signs an erasure of `person` and stores it (an acknowledged write).
    fn local_erase(&mut self, p: usize, person: Person, by: Eraser) {
        if self.peers[p].fenced {
            self.report.writes.refused_restoring += 1;
            return;
        }
        if self.peers[p].store.signing_blocked(&self.peers[p].device) {
            self.report.writes.refused_damaged += 1;
            return;
        }
        let Role::Node { partner, .. } = self.peers[p].role else { return };
        let Some(&(_, _, nonce)) = self.persons.get(&person) else { return };
        let own = PartnerKey(self.net.partner_keys[partner].public());
        let holds_card = card_nonce(&self.peers[p].store, &self.peers[p].device, &person).is_some();
        if by == Eraser::Registrar
            && !registered_by(&self.peers[p].store, &self.peers[p].device, &person, &own)
        {
            // `tessera attendee erase` refuses: this node holds no card of the person
            // (restored from an older backup), or its nonce is not its partner's.
            self.report.erasures.refused_by_node += 1;
            return;
        }
        // A colleague or another partner takes the nonce from the card (every hub reads
        // it), or from the registering hub when it does not hold the person yet.
        let rng = &mut self.erasure_rng;
        let stub_len =
            if rng.chance(0.05) { tessera_log::erasure::STUB_BYTES_MAX } else { rng.below(200) as usize };
        let erasure = Erasure {
            erased_on: format!("2026-12-{:02}", 1 + rng.below(28)),
            reason: if rng.chance(0.8) { ErasureReason::Request } else { ErasureReason::Mistake },
            nonce,
            stub: vec![0x5a; stub_len],
        };
        let body = match erasure.encode() {
            Ok(body) => body,
            Err(e) => {
                self.report.failures.push(format!("could not encode an erasure: {e}"));
                return;
            }
        };
        let salt = Salt(rng.bytes());
        let peer = &self.peers[p];
        let Some(key) = peer.key.map(SecretKey::from_seed) else { return };
        let time_ms = 1_793_523_600_000 + self.now.as_millis() as i64 + peer.skew_ms;
        let head = peer.store.heads().get(&peer.device);
        let next = head.map_or(Seq::FIRST, |h| Seq(h.seq.0 + 1));
        if peer.store.trust().authorize(&peer.device, next).is_err() {
            self.report.writes.refused_revoked += 1;
            return;
        }
        let changes = vec![NewChange { doc: person.erasure_doc(), salt, body }];
        let envelope = match Envelope::sign(
            &self.network,
            &key,
            head.map(|h| (h.seq, h.id)),
            Timestamp(time_ms),
            changes,
        ) {
            Ok(e) => e,
            Err(e) => {
                self.report.failures.push(format!("could not sign an erasure: {e}"));
                return;
            }
        };
        let acked = Acked { author: envelope.author(), seq: envelope.seq(), id: envelope.id() };
        match self.peers[p].store.ingest(&[LogEntry::Envelope(envelope)]) {
            Ok((new, _)) => {
                self.acked.push(acked);
                self.report.writes.acknowledged += 1;
                self.issued.push(IssuedErasure {
                    person,
                    partner,
                    by,
                    author: acked.author,
                    seq: acked.seq,
                    id: acked.id,
                });
                let e = &mut self.report.erasures;
                match by {
                    Eraser::Registrar => e.by_registrar += 1,
                    Eraser::Colleague => {
                        e.by_colleague += 1;
                        if !holds_card {
                            e.colleague_before_details += 1;
                        }
                    }
                    Eraser::OtherPartner => e.by_other_partner += 1,
                }
                self.fanout(p, &new, None);
            }
            Err(refused) => {
                self.report.failures.push(format!("a node's own erasure was refused: {}", refused.error));
            }
        }
    }

    /// A partner's administrator revokes one of its devices, at the last envelope of
    /// it the administrator's node has seen.
    fn revoke(&mut self) {
        let candidates: Vec<(usize, usize, usize)> = (0..self.config.nodes)
            .filter_map(|p| match self.peers[p].role {
                Role::Node { partner, device, clone_of: None } => Some((p, partner, device)),
                _ => None,
            })
            .collect();
        let Some(&(victim, partner, _)) = self.rng.pick(&candidates) else { return };
        let Some(&(admin, _, _)) =
            candidates.iter().find(|(p, part, _)| *part == partner && *p != victim && self.peers[*p].up)
        else {
            return;
        };
        let device = self.peers[victim].device;
        let last_valid = self.peers[admin].store.heads().get(&device).map_or(Seq(0), |h| h.seq);
        let statement = TrustStatement::RevokeDevice(DeviceRevocation {
            issuer: self.net.partner_keys[partner].public(),
            device,
            last_valid,
            reason: "tablet smarrito".into(),
        });
        let entry = self.net.sign_as_partner(partner, statement);
        self.report.revocations += 1;
        self.peers[admin].disk.push_back(DiskOp::Trust(Box::new(entry)));
        self.kick_disk(admin);
    }

    // ---- faults -----------------------------------------------------------------

    fn fault(&mut self) {
        let nodes = self.config.nodes;
        let all = self.peers.len();
        match self.rng.below(100) {
            0..=24 => {
                let p = self.rng.below(nodes as u64) as usize;
                self.crash(p);
                self.report.faults.node_crashes += 1;
                let back = self.rng.exp_ms(60_000);
                self.after_ms(back, Ev::Restart { peer: p });
            }
            25..=34 => {
                let r = nodes + self.rng.below((all - nodes) as u64) as usize;
                if self.peers[r].up {
                    self.crash(r);
                    self.report.faults.relay_crashes += 1;
                    if self.rng.chance(0.3) {
                        // The relay's disk is replaced: it starts again from its trust
                        // file, or (with erasures, half of the time) from an old copy of
                        // itself, which may hold bodies erased since.
                        let old = match &self.peers[r].backup {
                            Some(old) if self.config.erasures > 0 && self.erasure_rng.chance(0.5) => {
                                self.report.erasures.relay_restores += 1;
                                old.clone()
                            }
                            _ => self.genesis.clone(),
                        };
                        self.note_destroyed(r, &old);
                        self.peers[r].store = old;
                        self.report.faults.relay_store_losses += 1;
                    }
                    let back = self.rng.exp_ms(30_000);
                    self.after_ms(back, Ev::Restart { peer: r });
                }
            }
            35..=42 => {
                let p = self.rng.below(nodes as u64) as usize;
                if self.peers[p].backup.is_some() && self.peers[p].role_is_original() {
                    self.restore_from_backup(p);
                    let back = self.rng.exp_ms(60_000);
                    self.after_ms(back, Ev::Restart { peer: p });
                }
            }
            43..=62 => {
                // Partition into 2 or 3 groups.
                self.partition_epoch += 1;
                let groups = self.rng.range(2, 3) as u32;
                for p in 0..all {
                    self.peers[p].group = self.rng.below(groups as u64) as u32;
                }
                self.report.faults.partitions += 1;
                let len = self.rng.exp_ms(120_000);
                let epoch = self.partition_epoch;
                self.after_ms(len, Ev::HealPartition { epoch });
            }
            63..=72 => {
                // Isolate one node or relay.
                self.partition_epoch += 1;
                let p = self.rng.below(all as u64) as usize;
                for (q, peer) in self.peers.iter_mut().enumerate() {
                    peer.group = u32::from(q == p);
                }
                self.report.faults.partitions += 1;
                let len = self.rng.exp_ms(90_000);
                let epoch = self.partition_epoch;
                self.after_ms(len, Ev::HealPartition { epoch });
            }
            73..=80 => self.strip_at_relay(),
            81..=86 => self.damage_disk(),
            _ => {
                // A one-way link: `from` can no longer reach `to`, the reverse still works.
                let from = self.rng.below(all as u64) as usize;
                let to = self.rng.below(all as u64) as usize;
                if from != to {
                    self.blocked.insert((from, to));
                    self.report.faults.one_way_links += 1;
                    let len = self.rng.exp_ms(120_000);
                    self.after_ms(len, Ev::Unblock { from, to });
                }
            }
        }
    }

    /// Chain envelopes of store `p`, up to `n` picked at random, that at least two
    /// other stores hold whole: losing them at `p` loses no content.
    fn copies_elsewhere(&mut self, p: usize, n: usize) -> Vec<(DeviceKey, Seq)> {
        let keys: Vec<(DeviceKey, Seq)> = self.peers[p].store.chain_keys().copied().collect();
        let mut out = Vec::new();
        for _ in 0..n.min(keys.len()) {
            let (author, seq) = keys[self.rng.below(keys.len() as u64) as usize];
            let whole = (0..self.peers.len())
                .filter(|&q| q != p && self.peers[q].store.whole_at(&author, seq))
                .take(2)
                .count();
            if whole == 2 && !out.contains(&(author, seq)) {
                out.push((author, seq));
            }
        }
        out
    }

    /// A relay whose copies lose their bodies (a carrier stripping them, by fault or
    /// on purpose): it must get them back from a peer, and pass on only what it holds.
    fn strip_at_relay(&mut self) {
        let nodes = self.config.nodes;
        let r = nodes + self.rng.below((self.peers.len() - nodes) as u64) as usize;
        let n = self.rng.range(1, 30) as usize;
        for (author, seq) in self.copies_elsewhere(r, n) {
            if self.peers[r].store.strip(&author, seq) {
                self.report.faults.bodies_stripped += 1;
            }
        }
    }

    /// A node's disk damages records in the middle of its log, found when it next
    /// opens (so: a crash, then the damage, then a restart): each becomes a hole filled
    /// from peers; while one of its own is a hole, the node signs nothing.
    fn damage_disk(&mut self) {
        let p = self.rng.below(self.config.nodes as u64) as usize;
        if !self.peers[p].up {
            return;
        }
        self.crash(p);
        self.report.faults.node_crashes += 1;
        let n = self.rng.range(1, 5) as usize;
        for (author, seq) in self.copies_elsewhere(p, n) {
            if self.peers[p].store.damage(&author, seq) {
                self.report.faults.records_damaged += 1;
            }
        }
        let back = self.rng.exp_ms(60_000);
        self.after_ms(back, Ev::Restart { peer: p });
    }

    fn crash(&mut self, p: usize) {
        let peer = &mut self.peers[p];
        if !peer.up {
            return;
        }
        peer.up = false;
        peer.inbound = 0;
        peer.incarnation += 1;
        peer.disk_busy = false;
        let lost = peer.disk.len();
        peer.disk.clear();
        self.report.disk_ops_lost_in_crashes += lost as u64;
        let conns: Vec<ConnId> = peer.conns.iter().copied().collect();
        for id in conns {
            self.drop_conn(id);
        }
    }

    fn restart(&mut self, p: usize) {
        if self.peers[p].up
            || matches!(self.peers[p].role, Role::Node { clone_of: Some(_), .. }) && self.healed
        {
            return;
        }
        self.peers[p].up = true;
        self.open_store(p);
        self.kick_disk(p);
    }

    /// The store opens again after a crash or a replaced disk: the erasures effective
    /// are recomputed from its headers and what is not scrubbed yet is.
    fn open_store(&mut self, p: usize) {
        self.peers[p].store.reopen();
    }

    /// The node's disk is replaced by its last backup, the way an operator restores one:
    /// the node gets a new device key, certified by its partner (signing again with the
    /// key in the backup could fork its own history: an envelope it signed after the
    /// backup may survive on a hub it synced with directly and no relay has seen, as
    /// seed 6 showed), and it writes nothing until it caught up with a relay.
    fn restore_from_backup(&mut self, p: usize) {
        self.crash(p);
        let Some(backup) = self.peers[p].backup.clone() else { return };
        let Role::Node { partner, .. } = self.peers[p].role else { return };
        self.note_destroyed(p, &backup);
        let seed = seed_bytes(self.config.seed, "restored device", self.report.faults.restores);
        let key = SecretKey::from_seed(seed);
        let certificate = DeviceCertificate {
            partner: PartnerKey(self.net.partner_keys[partner].public()),
            device: DeviceKey(key.public()),
            role: DeviceRole::Hub,
            site: format!("Polo di prova {p} (ripristinato)"),
        };
        let entry = self.net.sign_as_partner(partner, TrustStatement::Device(certificate.clone()));
        let mut store = backup;
        store.reopen();
        if let Err(refused) = store.ingest(&[LogEntry::Trust(entry)]) {
            self.report
                .failures
                .push(format!("the new certificate of a restored node was refused: {}", refused.error));
        }
        let peer = &mut self.peers[p];
        peer.store = store;
        peer.device = certificate.device;
        peer.key = Some(seed);
        peer.fenced = true;
        self.report.faults.restores += 1;
    }

    /// `p`'s disk is about to be replaced by `replacement` (a restore, a new relay disk,
    /// a copied machine switched off): envelopes it alone held are destroyed with it.
    /// They are reported apart from "lost", which only a sync fault can cause.
    fn note_destroyed(&mut self, p: usize, replacement: &SimStore) {
        let store = &self.peers[p].store;
        for (author, head) in store.heads().iter() {
            for seq in 1..=head.seq.0 {
                let seq = Seq(seq);
                let Some(id) = store.envelope_at(author, seq).map(Envelope::id) else { continue };
                if replacement.envelope_at(author, seq).map(Envelope::id) == Some(id) {
                    continue;
                }
                let elsewhere = self.peers.iter().enumerate().any(|(q, peer)| {
                    q != p && peer.store.envelope_at(author, seq).map(Envelope::id) == Some(id)
                });
                if !elsewhere {
                    self.destroyed.insert((*author, seq, id));
                }
            }
        }
    }

    /// A copy of one node's data directory starts on a second machine and writes too:
    /// the device signs two histories. Switched off at the heal, when found.
    fn add_clone(&mut self) {
        let original = self.rng.below(self.config.nodes as u64) as usize;
        let Role::Node { device, partner, .. } = self.peers[original].role else { return };
        let at = self.rng.range(60_000, self.config.fault_phase.as_millis() as u64 / 2);
        // The copy is taken now (an empty or early store) and starts working at once:
        // simple, and early copies are the ones that fork most.
        let copy = Peer {
            role: Role::Node { device, partner, clone_of: Some(original) },
            device: self.peers[original].device,
            key: self.peers[original].key,
            store: self.peers[original].store.clone(),
            disk: VecDeque::new(),
            disk_busy: false,
            up: false,
            online: true,
            group: 0,
            conns: BTreeSet::new(),
            skew_ms: self.peers[original].skew_ms,
            fenced: false,
            backup: None,
            incarnation: 0,
            site: self.peers[original].site,
            limits: self.peers[original].limits,
            inbound: 0,
        };
        self.cloned_devices.insert(copy.device);
        self.peers.push(copy);
        let q = self.peers.len() - 1;
        self.report.faults.clones += 1;
        self.at(Duration::from_millis(at), Ev::Restart { peer: q });
        let mean = self.mean_act_ms();
        let first = at + self.workload_rng.exp_ms(mean);
        self.at(Duration::from_millis(first), Ev::Act { peer: q });
        self.at(Duration::from_millis(at + 1_000), Ev::Connect { peer: q });
    }

    // ---- heal and convergence -----------------------------------------------------

    fn heal(&mut self) {
        self.healed = true;
        self.blocked.clear();
        self.partition_epoch += 1;
        for p in 0..self.peers.len() {
            let clone = matches!(self.peers[p].role, Role::Node { clone_of: Some(_), .. });
            if clone {
                // Found and switched off; what it sent stays in the network as evidence,
                // what it alone held goes with it.
                self.crash(p);
                let genesis = self.genesis.clone();
                self.note_destroyed(p, &genesis);
                continue;
            }
            let peer = &mut self.peers[p];
            peer.group = 0;
            peer.online = true;
            if !peer.up {
                peer.up = true;
                self.open_store(p);
                self.kick_disk(p);
            }
        }
        self.after_ms(1_000, Ev::Check);
    }

    /// The real peers (not clones): nodes and relays.
    pub(crate) fn real_peers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.peers.len()).filter(|&p| !matches!(self.peers[p].role, Role::Node { clone_of: Some(_), .. }))
    }

    pub(crate) fn is_node(&self, p: usize) -> bool {
        matches!(self.peers[p].role, Role::Node { clone_of: None, .. })
    }

    fn check_convergence(&mut self) {
        if self.converged_at.is_none() && self.now <= self.config.fault_phase + self.config.heal_deadline {
            let peers: Vec<usize> = self.real_peers().collect();
            let first = self.peers[peers[0]].store.digest();
            let same = peers.iter().all(|&p| {
                let peer = &self.peers[p];
                peer.disk.is_empty() && !peer.fenced && peer.store.digest() == first
            });
            if same {
                self.converged_at = Some(self.now);
                self.report.converged_after = Some(self.now - self.config.fault_phase);
            }
        }
        self.after_ms(1_000, Ev::Check);
    }

    pub(crate) fn store(&self, p: usize) -> &SimStore {
        &self.peers[p].store
    }
    pub(crate) fn device_of(&self, p: usize) -> DeviceKey {
        self.peers[p].device
    }
}

impl Peer {
    fn role_is_original(&self) -> bool {
        matches!(self.role, Role::Node { clone_of: None, .. })
    }
}

/// Session limits drawn per peer: small batches and windows exercise more of the
/// protocol than the defaults would with this little data.
fn limits(rng: &mut Rng) -> SessionLimits {
    SessionLimits {
        entries_per_batch_max: [1, 4, 16, 64, 1024][rng.below(5) as usize],
        batch_bytes_target: [2_000, 64_000, 1 << 20][rng.below(3) as usize],
        batches_in_flight_max: rng.range(1, 8) as usize,
        idle_timeout: Duration::from_secs(40),
        keep_alive_interval: Duration::from_secs(12),
    }
}

/// The document of `doc` as the node's materializer would hold it: every change of an
/// envelope that counts, in log order.
pub(crate) fn build_doc(store: &SimStore, device: &DeviceKey, doc: &DocId) -> Option<RecordDoc> {
    let mut document: Option<RecordDoc> = None;
    for (author, seq) in store.doc_changes(doc) {
        if !store.counts(author, *seq) {
            continue;
        }
        let Some(env) = store.envelope_at(author, *seq) else { continue };
        for (d, body) in env.present_changes() {
            if d == *doc {
                let target = document.get_or_insert_with(|| RecordDoc::empty(actor_for(device)));
                let _ = target.apply_change(body);
            }
        }
    }
    document
}

/// The nonce of `person`'s id, from their card as `store` holds it.
fn card_nonce(store: &SimStore, device: &DeviceKey, person: &Person) -> Option<[u8; NONCE_BYTES]> {
    let card = build_doc(store, device, &person.doc(RecordKind::Attendee.byte()))?.hydrate().ok()?;
    let Record::Attendee(card) = card else { return None };
    let hex = card.id_nonce?;
    let mut nonce = [0u8; NONCE_BYTES];
    for (i, byte) in nonce.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(nonce)
}

/// Whether `person`, as `store` holds their card, was registered by partner `own`: the
/// nonce of the card and `own`'s key make their id (what `Node::erase_all` checks).
fn registered_by(store: &SimStore, device: &DeviceKey, person: &Person, own: &PartnerKey) -> bool {
    card_nonce(store, device, person).is_some_and(|nonce| tessera_log::person_id(own, &nonce) == *person)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `TESSERA_SIM_DEBUG=1`: print what happens after the heal (does not change the run).
fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("TESSERA_SIM_DEBUG").is_some())
}

/// A short, stable name for an error message (its first words), for the tallies.
fn error_kind(message: &str) -> String {
    message.split([':', '(']).next().unwrap_or(message).trim().chars().take(60).collect()
}
