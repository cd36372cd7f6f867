//! Crash recovery, in the style of sled's `tests/test_crash_recovery.rs`: a supervisor
//! re-runs this test binary as a child that appends envelopes of one device to a store
//! and prints `ACK <seq>` after every `ingest` that returned `Ok`; the supervisor kills
//! it with SIGKILL at a random moment, reopens the store and checks that every
//! acknowledged envelope survived, that the chain is intact, and (every few cycles) that
//! a derived database rebuilt from the log equals the one that was caught up.
//!
//! `TESSERA_CRASH_SEED` replays a run (the seed is printed at the start and in every
//! failure); `TESSERA_CRASH_CYCLES` changes the number of kills (100 by default).

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tessera_log::testkit::TestNetwork;
use tessera_log::{EnvelopeId, LogEntry, Seq};
use tessera_store::{DerivedStatus, Policy, Store, StoreOpenReport};

/// Set in the child's environment: the store directory. Without it the child test is a
/// no-op.
const CHILD_DIR_VAR: &str = "TESSERA_CRASH_CHILD_DIR";
/// Set in the child's environment: the base seed of the run.
const CHILD_SEED_VAR: &str = "TESSERA_CRASH_CHILD_SEED";
/// Set in the child's environment: the cycle number (varies the child's batches).
const CHILD_CYCLE_VAR: &str = "TESSERA_CRASH_CHILD_CYCLE";
/// Replays a run.
const SEED_VAR: &str = "TESSERA_CRASH_SEED";
/// Overrides the number of kill cycles.
const CYCLES_VAR: &str = "TESSERA_CRASH_CYCLES";

const CHILD_TEST_NAME: &str = "crash_child_appends_until_killed";
const CYCLES_DEFAULT: u64 = 100;
/// One cycle in this many kills the child at a random time after it was spawned
/// (usually while it opens and repairs the store) instead of while it writes.
const EARLY_KILL_EVERY: u64 = 8;
/// One cycle in this many deletes the derived database before the checks.
const REBUILD_EVERY: u64 = 10;
/// The child's safety bounds, in case nobody kills it.
const CHILD_RUN_MAX: Duration = Duration::from_secs(30);
const CHILD_ENVELOPES_MAX: u64 = 200_000;
/// How long the supervisor waits for the first acknowledgement of a child.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// The signal `Child::kill` sends on Unix.
const SIGKILL: i32 = 9;

/// splitmix64: small, deterministic, good enough to pick delays and batch sizes.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (modulo bias is irrelevant here).
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}

/// The network both processes derive from the base seed: one partner, one device.
fn test_network(seed: u64) -> TestNetwork {
    TestNetwork::new(seed, 1, 1)
}

fn child_rng(seed: u64, cycle: u64) -> Rng {
    let mut mix = Rng::new(seed ^ cycle.wrapping_mul(0xa076_1d64_78bd_642f));
    Rng::new(mix.next_u64())
}

fn env_u64(name: &str) -> Option<u64> {
    let value = env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}")))
}

/// The child: appends envelopes of the network's one device until it is killed, and
/// prints `ACK <seq>` on stdout after each `ingest` that returned `Ok`.
#[test]
fn crash_child_appends_until_killed() {
    let Some(dir) = env::var_os(CHILD_DIR_VAR) else {
        return; // Not spawned by the supervisor.
    };
    let dir = PathBuf::from(dir);
    let seed = env_u64(CHILD_SEED_VAR).expect("the supervisor sets the seed");
    let cycle = env_u64(CHILD_CYCLE_VAR).expect("the supervisor sets the cycle");
    let context = format!("child: seed {seed} cycle {cycle}");
    let mut rng = child_rng(seed, cycle);
    let mut net = test_network(seed);
    let network = net.network;

    let (mut store, _) =
        Store::open(&dir, Some(network)).unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
    let certificates: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    store
        .ingest(&certificates, Policy::AllOrNothing)
        .unwrap_or_else(|e| panic!("{context}: ingesting the certificates failed: {e}"));

    let device = &mut net.devices[0];
    let author = device.id;
    device.head = store.head(&author).map(|head| (head.seq, head.id));
    // Not `println!`: the test harness may capture that; this goes straight to the pipe.
    let mut stdout = std::io::stdout();
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < CHILD_RUN_MAX && written < CHILD_ENVELOPES_MAX {
        // Mostly group commits of 1..=20, sometimes a single append.
        let count = if rng.range(0, 3) == 0 { 1 } else { rng.range(1, 20) };
        let batch: Vec<LogEntry> = (0..count)
            .map(|_| {
                let n = device.head.map_or(1, |(seq, _)| seq.0 + 1);
                let len = rng.range(0, 4000) as usize;
                LogEntry::Envelope(device.next_simple(&network, n, len))
            })
            .collect();
        let report = store
            .ingest(&batch, Policy::AllOrNothing)
            .unwrap_or_else(|e| panic!("{context}: ingest failed: {e}"));
        assert_eq!(report.appended.len() as u64, count, "{context}: {report:?}");
        let (seq, _) = device.head.expect("just appended");
        assert_eq!(store.head(&author).map(|head| head.seq), Some(seq), "{context}");
        writeln!(stdout, "ACK {}", seq.0)
            .and_then(|()| stdout.flush())
            .expect("stdout is the supervisor's pipe");
        written += count;
    }
}

/// What one cycle's child did, as seen from the supervisor.
#[derive(Debug)]
struct ChildRun {
    /// The highest seq acknowledged (0: none).
    last_ack: u64,
    /// How many `ACK` lines were read.
    ack_lines: u64,
    /// How long the child ran before the kill.
    ran_for: Duration,
}

/// Spawns the child for `cycle`, kills it with SIGKILL after a random delay and returns
/// what it acknowledged. Panics (with `context`) if the child ended on its own.
fn run_child(dir: &Path, seed: u64, cycle: u64, rng: &mut Rng, context: &str) -> ChildRun {
    let exe = env::current_exe().unwrap_or_else(|e| panic!("{context}: no path to the test binary: {e}"));
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_SEED_VAR, seed.to_string())
        .env(CHILD_CYCLE_VAR, cycle.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{context}: cannot spawn the child: {e}"));
    let started = Instant::now();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (acks_tx, acks_rx) = mpsc::channel::<u64>();
    let reader_context = context.to_owned();
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut lines = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // Other lines are the test harness's own ("running 1 test", ...). A line cut
            // by the kill (no newline) was never acknowledged.
            let Some(seq) = line.strip_prefix("ACK ").and_then(|rest| rest.strip_suffix('\n')) else {
                continue;
            };
            let seq: u64 = seq.parse().unwrap_or_else(|e| panic!("{reader_context}: bad line {line:?}: {e}"));
            lines += 1;
            if acks_tx.send(seq).is_err() {
                break;
            }
        }
        lines
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut last_ack = 0u64;
    let mut timed_out = false;
    if cycle % EARLY_KILL_EVERY == EARLY_KILL_EVERY / 2 {
        // Anywhere from the exec to the first writes (the first ACK usually comes after
        // 10 to 30 ms): opening sled, catching it up, ingesting the certificates.
        thread::sleep(Duration::from_millis(rng.range(0, 40)));
    } else {
        // Then while it writes.
        match acks_rx.recv_timeout(FIRST_ACK_TIMEOUT) {
            Ok(seq) => {
                last_ack = seq;
                thread::sleep(Duration::from_millis(rng.range(2, 60)));
            }
            // The child ended on its own: the status check below shows why.
            Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => timed_out = true,
        }
    }
    let ran_for = started.elapsed();
    // SIGKILL on Unix. An error means the child was already reaped, which cannot
    // happen here; the status check below reports a child that ended on its own.
    let _ = child.kill();
    let status = child.wait().unwrap_or_else(|e| panic!("{context}: waiting for the child failed: {e}"));
    let ack_lines = reader.join().unwrap_or_else(|_| panic!("{context}: the stdout reader panicked"));
    let stderr_text = stderr_reader.join().unwrap_or_default();
    // ACKs that were in the pipe at the kill were acknowledged all the same.
    for seq in acks_rx.try_iter() {
        last_ack = last_ack.max(seq);
    }
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "{context}: the child ended on its own ({status}) before it was killed; its stderr:\n{stderr_text}"
    );
    assert!(
        !timed_out,
        "{context}: the child acknowledged nothing in {FIRST_ACK_TIMEOUT:?}; its stderr:\n{stderr_text}"
    );
    ChildRun { last_ack, ack_lines, ran_for }
}

/// Opens the store in the supervisor, panicking with `context` on failure.
fn open_store(dir: &Path, net: &TestNetwork, context: &str) -> (Store, StoreOpenReport) {
    let (store, report) = Store::open(dir, Some(net.network))
        .unwrap_or_else(|e| panic!("{context}: the store does not reopen after a kill: {e}"));
    assert!(report.skipped.is_empty(), "{context}: log records skipped on open: {:?}", report.skipped);
    (store, report)
}

/// Checks envelopes `from..=head` of the device: each readable, at its seq and linked to
/// the one before (`before` is the id at `from - 1`); those from `verify_from` on (not
/// checked before) must also verify. Returns the id at the head.
fn check_chain(
    store: &Store,
    net: &TestNetwork,
    (from, before): (u64, EnvelopeId),
    verify_from: u64,
    context: &str,
) -> EnvelopeId {
    let author = net.devices[0].id;
    let head = store.head(&author);
    let head_seq = head.map_or(0, |h| h.seq.0);
    let mut prev = before;
    for seq in from..=head_seq {
        let env = store
            .get(&author, Seq(seq))
            .unwrap_or_else(|e| panic!("{context}: reading envelope {seq} of {head_seq} failed: {e}"))
            .unwrap_or_else(|| panic!("{context}: envelope {seq} of {head_seq} is missing"));
        assert_eq!(env.author(), author, "{context}: envelope {seq} has another author");
        assert_eq!(env.seq(), Seq(seq), "{context}: the envelope stored at seq {seq} says otherwise");
        assert_eq!(env.prev(), prev, "{context}: envelope {seq} does not follow envelope {}", seq - 1);
        let verifies =
            if seq >= verify_from { env.verify_signature_and_bodies(&net.network) } else { Ok(()) };
        if let Err(e) = verifies {
            panic!("{context}: envelope {seq} no longer verifies: {e}");
        }
        prev = env.id();
    }
    if let Some(head) = head {
        assert_eq!(head.id, prev, "{context}: the head's id is not the last envelope's");
    }
    prev
}

/// Prints how to replay the run if the supervisor panics.
struct ReplayHint {
    seed: u64,
}

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("crash recovery test failed; replay with {SEED_VAR}={}", self.seed);
        }
    }
}

#[test]
fn crash_recovery_keeps_every_acknowledged_write() {
    let seed = env_u64(SEED_VAR).unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next_u64()
    });
    let cycles = env_u64(CYCLES_VAR).unwrap_or(CYCLES_DEFAULT);
    let _hint = ReplayHint { seed };
    println!("crash recovery: seed {seed} ({SEED_VAR}={seed} replays it), {cycles} cycles");

    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("seed {seed}: no temporary directory: {e}"));
    let dir = tmp.path().join("store");
    let net = test_network(seed);
    let author = net.devices[0].id;
    let mut rng = Rng::new(seed);

    let mut acked_cycles = 0u64;
    let mut acked_envelopes = 0u64;
    let mut ack_lines = 0u64;
    let mut unacked_durable = 0u64;
    let mut torn_tails = 0u64;
    let mut forced_rebuilds = 0u64;
    let mut spontaneous_rebuilds = Vec::new();
    // What the previous reopen saw, all of it checked: (head seq, id at that seq).
    let mut verified: (u64, EnvelopeId) = (0, EnvelopeId::default());

    for cycle in 0..cycles {
        let context = format!("seed {seed} cycle {cycle}");
        let run = run_child(&dir, seed, cycle, &mut rng, &context);
        if run.last_ack > 0 {
            acked_cycles += 1;
            assert!(
                run.last_ack > verified.0,
                "{context}: the child acknowledged seq {} but the store already held {}",
                run.last_ack,
                verified.0
            );
            acked_envelopes += run.last_ack - verified.0;
        }
        ack_lines += run.ack_lines;

        let (mut store, report) = open_store(&dir, &net, &context);
        if let Some(torn) = &report.log.torn_tail {
            torn_tails += 1;
            assert!(torn.quarantined_to.exists(), "{context}: the torn tail was not quarantined: {torn:?}");
        }
        if let DerivedStatus::Rebuilt { reason, .. } = &report.derived {
            spontaneous_rebuilds.push(format!("cycle {cycle}: {reason}"));
        }
        let head_seq = store.head(&author).map_or(0, |h| h.seq.0);
        assert!(
            head_seq >= run.last_ack,
            "{context}: acknowledged seq {} lost: the store's head is {head_seq} after the kill \
             (child ran {:?}, torn tail {:?})",
            run.last_ack,
            run.ran_for,
            report.log.torn_tail,
        );
        assert!(head_seq >= verified.0, "{context}: the head went back from {} to {head_seq}", verified.0);
        unacked_durable += head_seq - verified.0.max(run.last_ack);
        assert!(store.forks().is_empty(), "{context}: forks after a crash: {:?}", store.forks());

        // What the previous cycles checked is still there...
        if verified.0 > 0 {
            let held = store
                .get(&author, Seq(verified.0))
                .unwrap_or_else(|e| panic!("{context}: reading envelope {} failed: {e}", verified.0))
                .map(|env| env.id());
            assert_eq!(held, Some(verified.1), "{context}: envelope {} changed or vanished", verified.0);
        }
        // ...then the new envelopes; now and then and at the end, everything from seq 1.
        let rebuild = cycle % REBUILD_EVERY == REBUILD_EVERY - 1;
        let head_id = if rebuild || cycle + 1 == cycles {
            check_chain(&store, &net, (1, EnvelopeId::default()), verified.0 + 1, &context)
        } else {
            check_chain(&store, &net, (verified.0 + 1, verified.1), verified.0 + 1, &context)
        };
        verified = (head_seq, head_id);

        if rebuild {
            // sled is a cache: delete it, and the log must give back the same state.
            forced_rebuilds += 1;
            let heads = store.heads().clone();
            let digest = store.derived_digest().unwrap_or_else(|e| panic!("{context}: digest: {e}"));
            drop(store);
            fs::remove_dir_all(dir.join("derived"))
                .unwrap_or_else(|e| panic!("{context}: cannot delete the derived database: {e}"));
            let (rebuilt, report) = open_store(&dir, &net, &context);
            assert!(
                matches!(report.derived, DerivedStatus::Rebuilt { .. }),
                "{context}: deleting sled did not rebuild it: {:?}",
                report.derived
            );
            assert_eq!(rebuilt.heads(), &heads, "{context}: the rebuilt heads differ");
            let rebuilt_digest =
                rebuilt.derived_digest().unwrap_or_else(|e| panic!("{context}: digest: {e}"));
            assert_eq!(rebuilt_digest, digest, "{context}: the rebuilt derived state differs");
            store = rebuilt;
        }
        // The next child needs the store's lock.
        drop(store);
    }

    let elapsed = started.elapsed();
    println!(
        "crash recovery summary: seed {seed}, {cycles} cycles ({acked_cycles} acknowledged something), \
         {acked_envelopes} envelopes acknowledged in {ack_lines} ingests, {unacked_durable} more durable \
         but unacknowledged, max seq {}, {torn_tails} torn tails repaired, {forced_rebuilds} forced and {} \
         spontaneous sled rebuilds, {elapsed:.1?}",
        verified.0,
        spontaneous_rebuilds.len(),
    );
    for rebuild in &spontaneous_rebuilds {
        println!("  spontaneous rebuild at {rebuild}");
    }
    assert!(
        acked_cycles * 100 >= cycles * 80,
        "seed {seed}: only {acked_cycles} of {cycles} cycles acknowledged a write: the test proves little"
    );
    assert!(acked_envelopes > 0, "seed {seed}: no envelope was ever acknowledged");
}
