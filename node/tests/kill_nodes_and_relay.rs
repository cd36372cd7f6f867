//! Real processes killed at random: three `tessera` hubs and one relay on loopback.
//! Every cycle runs a write (`tessera attendee add`) on one hub while another hub runs
//! `tessera sync` with the relay (one cycle in four: a `tessera serve --peer` daemon),
//! and SIGKILLs one of them (the writer, the syncing hub or the relay) after a delay
//! drawn from a seeded RNG, then restarts what was killed. Every 20 cycles a hub first
//! registers 150 attendees in-process, so that some syncs carry hundreds of envelopes.
//! At the end every hub syncs with the relay until a round moves nothing, and the test
//! checks that every acknowledged write (the command exited 0 and printed its id) is
//! on every hub, that the hubs hold identical records and envelopes (the relay too),
//! that `tessera audit verify` passes on every store and that each hub's derived
//! database equals one rebuilt from its log. It prints a Jepsen-style line:
//! attempted / acknowledged / survivors / lost (lost must be 0).
//!
//! `TESSERA_KILL_SEED` replays a run's choices (the seed is printed at the start and in
//! every failure); `TESSERA_KILL_CYCLES` sets the number of cycles (100 by default).
//! Kill delays are drawn as a fraction of each command's duration measured at setup,
//! or just after the session started, so kills land before, during and after the work.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tessera_node::commands::{own_site, today};
use tessera_node::ui::Ui;
use tessera_node::Node;
use tessera_records::kind::{short_id, RecordKind};
use tessera_records::model::{format_date, Attendee, Consent, Record, RecordRef};
use tessera_records::vocab::{AttendeeRole, ConsentBy};

use common::{
    certified_relay, field, joined_hub_of_same_partner, ok, relay_child_main, saved_id, sync_counts, tessera,
    wait_timeout, RelayProcess,
};

const SEED_VAR: &str = "TESSERA_KILL_SEED";
const CYCLES_VAR: &str = "TESSERA_KILL_CYCLES";
const CYCLES_DEFAULT: u64 = 100;
const RELAY_CHILD_TEST: &str = "relay_child_process";
/// Bound on any one command or on the relay's start: generous, the machine is shared.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Sync rounds (every hub once) allowed to reach a round that moves nothing.
const SYNC_ROUNDS_MAX: usize = 8;
/// A kill lands at a random fraction of the victim command's usual duration, up to
/// this many thousandths: some kills land just after the work is done.
const DELAY_PERMILLE_MAX: u64 = 1200;
/// One cycle in this many kills nothing (both commands run to the end).
const QUIET_EVERY: u64 = 6;
const SIGKILL: i32 = 9;
/// Every this many cycles, the writer first registers this many attendees in-process.
const BULK_EVERY: u64 = 20;
const BULK_WRITES: usize = 150;
/// One cycle in this many, the syncing hub runs a `serve --peer RELAY` daemon instead
/// of a one-shot sync; its kill delays scale with this many sync durations.
const DAEMON_EVERY: u64 = 4;
const DAEMON_SCALE: u32 = 3;
/// What `tessera sync` prints (standard error) once the session is authenticated.
const CONNECTED_MARKER: &str = "Connected to";
/// What `tessera serve` prints (standard output) once it accepts sessions.
const LISTENING_MARKER: &str = "Listening on";
/// A daemon announces it listens just before it installs its SIGTERM handler; a
/// SIGTERM in between ends it by the default action. The test leaves it this long.
const SIGTERM_AFTER_LISTENING: Duration = Duration::from_millis(20);
/// After the session started, a kill lands within this many microseconds.
const CONNECTED_DELAY_MICROS_MAX: u64 = 3000;
/// How long a sync whose relay was killed may go on before the test stops it.
const SYNC_AFTER_RELAY_DEATH_MAX: Duration = Duration::from_secs(2);

/// splitmix64: deterministic choices from the seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    None,
    Writer,
    Syncer,
    Relay,
}

/// A `tessera` command running in the background, its output going to files.
struct Running {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    what: String,
}

impl Running {
    fn spawn(data: &Path, args: &[&str], logs: &Path, name: &str) -> Running {
        let (out, err) = (logs.join(format!("{name}.out")), logs.join(format!("{name}.err")));
        let child = tessera(data)
            .args(args)
            .stdout(Stdio::from(File::create(&out).unwrap()))
            .stderr(Stdio::from(File::create(&err).unwrap()))
            .spawn()
            .unwrap();
        Running { child, out, err, what: format!("tessera {args:?} on {}", data.display()) }
    }

    /// SIGKILL; whether the process was still running (the kill landed mid-command).
    fn kill(&mut self) -> bool {
        let running = self.child.try_wait().unwrap().is_none();
        let _ = self.child.kill();
        running
    }

    /// Waits (bounded) until `marker` appears in the output or the process ends.
    fn wait_for(&mut self, marker: &str) {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some()
                || [&self.out, &self.err]
                    .iter()
                    .any(|file| std::fs::read_to_string(file).is_ok_and(|text| text.contains(marker)))
            {
                return;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        panic!("{} did not print {marker:?} within {COMMAND_TIMEOUT:?}", self.what);
    }

    /// Waits (bounded); returns the status and standard output.
    fn finish(mut self, seed: u64, cycle: u64) -> (ExitStatus, String, String) {
        let Some(status) = wait_timeout(&mut self.child, COMMAND_TIMEOUT) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("seed {seed} cycle {cycle}: {} did not finish within {COMMAND_TIMEOUT:?}", self.what);
        };
        let out = std::fs::read_to_string(&self.out).unwrap_or_default();
        let err = std::fs::read_to_string(&self.err).unwrap_or_default();
        (status, out, err)
    }
}

/// Runs a command to its end (bounded) and returns its output; it must succeed.
fn run_ok(data: &Path, args: &[&str], logs: &Path, seed: u64, cycle: u64) -> String {
    let (status, out, err) = Running::spawn(data, args, logs, "check").finish(seed, cycle);
    assert!(
        status.success(),
        "seed {seed}: tessera {args:?} on {} failed ({status}):\n{out}\n{err}",
        data.display()
    );
    out
}

fn write_args(given: &str) -> Vec<&str> {
    vec![
        "attendee",
        "add",
        "--given",
        given,
        "--family",
        "Prova",
        "--birth-year",
        "1980",
        "--role",
        "citizen",
        "--consent-by",
        "self",
    ]
}

/// Runs a command unkilled; returns its output and how long it took (the scale of
/// kill delays).
fn timed(data: &Path, args: &[&str], logs: &Path) -> (String, Duration) {
    let start = Instant::now();
    let out = run_ok(data, args, logs, 0, 0);
    (out, start.elapsed())
}

/// Registers `count` attendees on `hub` in this process (library, one envelope each,
/// as the command does), so that the next syncs carry hundreds of envelopes and kills
/// land mid-transfer. Returns the writes, all acknowledged (`transact` returned).
fn bulk_write(hub: usize, data: &Path, cycle: u64, count: usize) -> Vec<Acked> {
    let ui = Ui::new(Some("en")).unwrap();
    let mut node = Node::open(data).unwrap();
    let site = RecordRef(own_site(&mut node, &ui).unwrap());
    let mut written = Vec::with_capacity(count);
    for k in 0..count {
        let given = format!("Massa{cycle:04}x{k:03}");
        let attendee = Attendee {
            given_name: given.clone(),
            family_name: "Prova".into(),
            birth_year: 1980,
            role: AttendeeRole::Citizen,
            school: None,
            class: None,
            guardian: None,
            phone: None,
            email: None,
            languages: Vec::new(),
            consent: Consent {
                date: format_date(today()),
                given_by: ConsentBy::Attendee,
                operator: "Operatore Prova".into(),
            },
            referent_operator: None,
            plan_notes: String::new(),
            site,
            merged_into: None,
            not_duplicates_of: Vec::new(),
            registered_by: None,
            match_key: None,
            erased: None,
            id_nonce: None,
        };
        let id = Node::new_id(RecordKind::Attendee).unwrap();
        node.transact(&[(id, Record::Attendee(attendee))]).unwrap();
        written.push(Acked { hub, id: short_id(&id), given });
    }
    written
}

/// What happened in the cycles, for the report line.
#[derive(Debug, Default)]
struct Tally {
    /// Cycles per victim: none, writer, syncer, relay.
    victims: [u64; 4],
    /// Kills that found their victim at work: writer, syncer, relay under a running sync.
    landed: [u64; 3],
    writes_killed: u64,
    syncs_killed: u64,
    syncs_ok: u64,
    syncs_failed_after_relay_death: u64,
    syncs_stopped_after_relay_death: u64,
    daemons: u64,
    daemons_stopped: u64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [quiet, writer, syncer, relay] = self.victims;
        let [w, s, r] = self.landed;
        write!(
            f,
            "victims: {writer} writers, {syncer} syncing hubs, {relay} relays, {quiet} cycles without a kill; \
             kills mid-work: {w} writes, {s} syncs, {r} relays under a running sync; \
             processes dead by SIGKILL: {} writes, {} syncs; {} one-shot syncs completed, \
             {} failed and {} were stopped after the relay's death; {} daemon cycles, {} stopped by SIGTERM",
            self.writes_killed,
            self.syncs_killed,
            self.syncs_ok,
            self.syncs_failed_after_relay_death,
            self.syncs_stopped_after_relay_death,
            self.daemons,
            self.daemons_stopped
        )
    }
}

/// An acknowledged write: the hub that made it, its id and the attendee's given name.
struct Acked {
    hub: usize,
    id: String,
    given: String,
}

/// What the writes were: every attempt (by given name) and the acknowledged ones.
#[derive(Default)]
struct History {
    attempted: Vec<String>,
    acked: Vec<Acked>,
}

/// Three hubs of one network and a relay certified in it, each its own process.
struct Cluster {
    dir: tempfile::TempDir,
    logs: PathBuf,
    hubs: [PathBuf; 3],
    relay_dir: PathBuf,
    relay: RelayProcess,
    relay_port: u16,
    peer: String,
    seed: u64,
    /// The usual durations of a write and of a sync: the scale of kill delays.
    write_time: Duration,
    sync_time: Duration,
}

impl Cluster {
    fn new(seed: u64, history: &mut History) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let a = dir.path().join("a");
        ok(&a, &["init", "--site", "Polo A"]);
        let hubs = [
            a.clone(),
            joined_hub_of_same_partner(&a, dir.path(), "Polo B"),
            joined_hub_of_same_partner(&a, dir.path(), "Sportello C"),
        ];
        let relay_dir = certified_relay(&a, dir.path());
        let relay = RelayProcess::start(RELAY_CHILD_TEST, &relay_dir, 0, COMMAND_TIMEOUT);
        let (relay_port, peer) = (relay.addr.port(), relay.addr.to_string());

        let (written, write_time) = timed(&a, &write_args("Calibrazione"), &logs);
        let (_, sync_time) = timed(&a, &["sync", "--peer", &peer], &logs);
        history.attempted.push("Calibrazione".into());
        history.acked.push(Acked { hub: 0, id: saved_id(&written).unwrap(), given: "Calibrazione".into() });
        Cluster { dir, logs, hubs, relay_dir, relay, relay_port, peer, seed, write_time, sync_time }
    }

    /// Runs a command to its end (bounded); it must succeed.
    fn ok(&self, data: &Path, args: &[&str]) -> String {
        run_ok(data, args, &self.logs, self.seed, u64::MAX)
    }

    fn restart_relay(&mut self) {
        self.relay.kill();
        self.relay = RelayProcess::start(RELAY_CHILD_TEST, &self.relay_dir, self.relay_port, COMMAND_TIMEOUT);
    }

    /// One cycle: a write on one hub, a sync (or a daemon) on another, one victim.
    fn cycle(&mut self, cycle: u64, rng: &mut Rng, history: &mut History, tally: &mut Tally) {
        let seed = self.seed;
        let writer = rng.below(3) as usize;
        let syncer = (writer + 1 + rng.below(2) as usize) % 3;
        let victim = if rng.below(QUIET_EVERY) == 0 {
            Victim::None
        } else {
            [Victim::Writer, Victim::Syncer, Victim::Relay][rng.below(3) as usize]
        };
        // The syncing hub runs `tessera sync`, or now and then a `serve` daemon.
        let daemon = rng.below(DAEMON_EVERY) == 0;
        // When the victim dies: at a random fraction of its command's usual duration,
        // or (one-shot syncs and the relay, half of the time) just after the session
        // started. A daemon lives on: its kills are spread over a longer time.
        let after_connect = !daemon && victim != Victim::Writer && rng.below(2) == 0;
        let scale = match victim {
            Victim::Writer => self.write_time,
            _ if daemon => self.sync_time * DAEMON_SCALE,
            _ => self.sync_time,
        };
        let delay = if after_connect {
            Duration::from_micros(rng.below(CONNECTED_DELAY_MICROS_MAX + 1))
        } else {
            scale * rng.below(DELAY_PERMILLE_MAX + 1) as u32 / 1000
        };
        let linger = self.sync_time * rng.below(DELAY_PERMILLE_MAX + 1) as u32 / 1000;

        if cycle.is_multiple_of(BULK_EVERY) {
            let bulk = bulk_write(writer, &self.hubs[writer], cycle, BULK_WRITES);
            history.attempted.extend(bulk.iter().map(|w| w.given.clone()));
            history.acked.extend(bulk);
        }
        let given = format!("Prova{cycle:04}");
        history.attempted.push(given.clone());
        let sync_args: &[&str] = if daemon {
            &["serve", "--listen", "127.0.0.1:0", "--no-ui", "--peer", &self.peer]
        } else {
            &["sync", "--peer", &self.peer]
        };
        let mut write = Running::spawn(&self.hubs[writer], &write_args(&given), &self.logs, "write");
        let mut sync = Running::spawn(&self.hubs[syncer], sync_args, &self.logs, "sync");
        if victim != Victim::None {
            if after_connect {
                sync.wait_for(CONNECTED_MARKER);
            }
            std::thread::sleep(delay);
            match victim {
                Victim::Writer => tally.landed[0] += u64::from(write.kill()),
                Victim::Syncer => tally.landed[1] += u64::from(sync.kill()),
                Victim::Relay => {
                    tally.landed[2] += u64::from(sync.child.try_wait().unwrap().is_none());
                    self.restart_relay();
                    // A one-shot session cut by the relay's death waits for its idle
                    // timeout (30 s): not what this test is about, so it is stopped.
                    if !daemon && wait_timeout(&mut sync.child, SYNC_AFTER_RELAY_DEATH_MAX).is_none() {
                        sync.kill();
                        tally.syncs_stopped_after_relay_death += 1;
                    }
                }
                Victim::None => unreachable!(),
            }
        }
        tally.victims[victim as usize] += 1;

        let (status, out, err) = write.finish(seed, cycle);
        if status.signal() == Some(SIGKILL) {
            tally.writes_killed += 1;
        } else {
            assert!(
                status.success(),
                "seed {seed} cycle {cycle}: write on hub {writer} failed ({status}):\n{out}\n{err}"
            );
            let id = saved_id(&out)
                .unwrap_or_else(|| panic!("seed {seed} cycle {cycle}: write exited 0 without an id:\n{out}"));
            history.acked.push(Acked { hub: writer, id, given });
        }

        // A daemon still alive has had the write's time and a bit more to push it
        // live: once it says it is listening, it must stop cleanly on SIGTERM.
        // (`try_wait` reaps: a daemon seen dead is never signalled.)
        let mut terminated = false;
        if daemon && sync.child.try_wait().unwrap().is_none() {
            sync.wait_for(LISTENING_MARKER);
            std::thread::sleep(linger + SIGTERM_AFTER_LISTENING);
            if sync.child.try_wait().unwrap().is_none() {
                let pid = sync.child.id().to_string();
                assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
                terminated = true;
            }
        }
        let (status, out, err) = sync.finish(seed, cycle);
        if status.signal() == Some(SIGKILL) {
            tally.syncs_killed += u64::from(victim == Victim::Syncer);
        } else if terminated {
            assert!(
                status.success(),
                "seed {seed} cycle {cycle}: the daemon on hub {syncer} did not stop cleanly ({status}):\n{out}\n{err}"
            );
            tally.daemons_stopped += 1;
        } else if daemon && victim != Victim::Relay {
            panic!("seed {seed} cycle {cycle}: the daemon on hub {syncer} ended by itself ({status}):\n{out}\n{err}");
        } else if status.success() {
            assert!(sync_counts(&out).is_some(), "seed {seed} cycle {cycle}: sync output:\n{out}");
            tally.syncs_ok += 1;
        } else {
            // Only a relay killed under it may make a sync fail.
            assert_eq!(
                victim,
                Victim::Relay,
                "seed {seed} cycle {cycle}: sync of hub {syncer} failed with nothing killed ({status}):\n{out}\n{err}"
            );
            tally.syncs_failed_after_relay_death += 1;
        }
        tally.daemons += u64::from(daemon);
    }

    /// Every hub syncs with the relay until a whole round moves nothing; the rounds.
    fn heal(&self) -> usize {
        for round in 1..=SYNC_ROUNDS_MAX {
            let mut moved = 0;
            for hub in &self.hubs {
                let out = self.ok(hub, &["sync", "--peer", &self.peer]);
                let (received, sent) = sync_counts(&out).unwrap_or_else(|| panic!("sync output:\n{out}"));
                moved += received + sent;
            }
            if moved == 0 {
                return round;
            }
        }
        panic!("seed {}: no quiescence after {SYNC_ROUNDS_MAX} sync rounds", self.seed);
    }

    /// Acknowledged writes missing on some hub, and the attempts present on hub 0.
    fn lost_and_survivors(&self, history: &History) -> (Vec<String>, usize) {
        let mut lost = Vec::new();
        let mut survivors = 0;
        for (n, hub) in self.hubs.iter().enumerate() {
            let list = self.ok(hub, &["attendee", "list"]);
            let words: BTreeSet<&str> = list.split_whitespace().collect();
            for write in history.acked.iter().filter(|w| !words.contains(w.id.as_str())) {
                lost.push(format!(
                    "{} ({}, written on hub {}) missing on hub {n}",
                    write.id, write.given, write.hub
                ));
            }
            if n == 0 {
                survivors = history.attempted.iter().filter(|g| words.contains(g.as_str())).count();
            }
        }
        (lost, survivors)
    }

    /// Identical records and envelopes on every hub and the relay, every store
    /// verified, and each hub's derived database equal to one rebuilt from its log.
    fn check_identical(&self) {
        let seed = self.seed;
        let statuses: Vec<String> = self.hubs.iter().map(|h| self.ok(h, &["status"])).collect();
        for (n, status) in statuses.iter().enumerate() {
            for label in ["Records fingerprint", "Changes held", "Forks found"] {
                assert_eq!(
                    field(status, label),
                    field(&statuses[0], label),
                    "seed {seed}: hub {n} and hub 0 differ in {label}:\n{status}\n{}",
                    statuses[0]
                );
            }
        }
        assert_eq!(field(&statuses[0], "Forks found"), "0", "seed {seed}: {}", statuses[0]);
        let network = field(&statuses[0], "Network");
        for store in self.hubs.iter().chain([&self.relay_dir]) {
            self.ok(store, &["audit", "verify", store.to_str().unwrap(), "--network", &network]);
        }
        let (hub, relay) = (self.hubs[0].to_str().unwrap(), self.relay_dir.to_str().unwrap());
        let compared = self.ok(&self.hubs[0], &["audit", "compare", hub, relay]);
        assert!(
            compared.contains("hold the same envelopes"),
            "seed {seed}: hub 0 and the relay differ:\n{compared}"
        );

        for (n, hub) in self.hubs.iter().enumerate() {
            let copy = self.dir.path().join(format!("rebuilt-{n}"));
            assert!(std::process::Command::new("cp")
                .arg("-a")
                .arg(hub)
                .arg(&copy)
                .status()
                .unwrap()
                .success());
            std::fs::remove_dir_all(copy.join("store/derived")).unwrap();
            let rebuilt = self.ok(&copy, &["status"]);
            assert_eq!(
                field(&rebuilt, "Records fingerprint"),
                field(&statuses[n], "Records fingerprint"),
                "seed {seed}: hub {n}'s records differ from a rebuild from its log"
            );
        }
    }
}

#[test]
fn relay_child_process() {
    relay_child_main();
}

#[test]
fn hubs_and_relay_killed_at_random_lose_no_acknowledged_write_and_converge() {
    let started = Instant::now();
    let seed = env_u64(SEED_VAR)
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    let cycles = env_u64(CYCLES_VAR).unwrap_or(CYCLES_DEFAULT);
    println!("kill test: seed {seed} ({SEED_VAR}={seed} replays the choices), {cycles} cycles");
    let mut rng = Rng(seed);
    let mut history = History::default();
    let mut tally = Tally::default();
    let mut cluster = Cluster::new(seed, &mut history);
    println!(
        "kill test: a write takes {:?}, a sync {:?} (setup {:?})",
        cluster.write_time,
        cluster.sync_time,
        started.elapsed()
    );

    let cycles_started = Instant::now();
    for cycle in 0..cycles {
        cluster.cycle(cycle, &mut rng, &mut history, &mut tally);
    }
    let cycles_time = cycles_started.elapsed();
    let rounds = cluster.heal();
    cluster.relay.kill();

    let (lost, survivors) = cluster.lost_and_survivors(&history);
    println!(
        "kill test: seed {seed}: {} attempted / {} acknowledged / {survivors} survivors / {} lost",
        history.attempted.len(),
        history.acked.len(),
        lost.len()
    );
    println!(
        "kill test: {cycles} cycles in {cycles_time:?} ({:?} in all); {tally}; healed in {rounds} sync rounds",
        started.elapsed()
    );
    assert!(lost.is_empty(), "seed {seed}: acknowledged writes lost:\n{}", lost.join("\n"));
    cluster.check_identical();
}
