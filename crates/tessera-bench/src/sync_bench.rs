//! `tessera-bench sync`: sync of the reference workload over real QUIC on loopback,
//! against the single-core bound of verifying and applying the same changes.
//!
//! Sections (issue 4, "Measure"; issue 7):
//! - **bound**: `verify_envelope` (strict ed25519, chain, certificate) of every envelope
//!   of the workload, then automerge apply of every change into in-memory documents,
//!   one core, in the same run: the changes/s that sync is compared with.
//! - **direct**: a store holding the whole workload syncs into an EMPTY store over QUIC
//!   (`tessera_net::driver::run_session` on both sides, `Store` as the `SyncStore`).
//! - **relay**: the full store uploads to an in-process relay (`Relay::start`, default
//!   limits), then an empty store downloads from it. Each leg is reported.
//! - **node**: like direct, but the empty side is a `tessera_node::Node`, which also
//!   materializes every automerge document after each batch (what a hub really does).
//! - **day**: 45 stores, each holding only its own day of envelopes (its first
//!   `--day-envelopes` envelopes of the workload), sync through a fresh relay with
//!   at most `--day-concurrency` sessions at once, in rounds (every node syncs once
//!   per round), until every store holds every envelope.
//!
//! Times are wall clock on loopback. "Sync time" is from the start of the QUIC connect
//! until the client's session went live (both sides caught up, every batch durable and
//! acknowledged); the teardown after that is reported separately. Wire bytes are the
//! frames on the session's stream as `tessera-net` counts them (after compression,
//! with their 4-byte lengths); the QUIC handshake, the channel Auth frames and QUIC/UDP
//! packet overhead are not included.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::json;
use tessera_log::testkit::{seed_bytes, TestNetwork};
use tessera_log::{
    verify_envelope, DeviceCertificate, DeviceKey, DeviceRole, DocId, Envelope, Head, LogEntry, PartnerKey,
    SecretKey, TrustStatement,
};
use tessera_net::driver::{run_session, RunOptions, SyncStore, FANOUT_BATCHES_MAX};
use tessera_net::{Endpoint, Identity};
use tessera_relay::{Relay, ServeArgs};
use tessera_store::{write_secret_key, Policy, Store, INGEST_ENTRIES_MAX};
use tessera_sync::{CloseReason, Event, SessionConfig, SessionStats};
use tokio::sync::{broadcast, watch};

use crate::machine::Machine;
use crate::stats::{get, median, put, Metrics};
use crate::workload::{self, Spec};

/// Devices per partner in the workload's `TestNetwork` (as `workload.rs` makes it).
pub(crate) const DEVICES_PER_PARTNER: usize = 5;
/// A session that takes longer than this is reported as a failure.
const SESSION_TIMEOUT: Duration = Duration::from_secs(900);
/// Rounds of the day scenario before it is declared not converged.
const DAY_ROUNDS_MAX: usize = 4;
/// Sections run by default.
const SECTIONS: [&str; 5] = ["bound", "direct", "relay", "node", "day"];

/// Options of `tessera-bench sync`.
#[derive(clap::Args, Debug)]
pub struct SyncBenchArgs {
    /// Small sizes for a smoke run (numbers are not meaningful): workload scale 0.05,
    /// 5 envelopes per node in the day scenario.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions; the table shows medians over them.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Sections to run, comma-separated: bound, direct, relay, node, day (default all).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub sections: Vec<String>,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Workload scale: 1 = the reference workload (default 1, or 0.05 with --quick).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Envelopes each of the 45 nodes wrote during its day offline (default 30, or 5
    /// with --quick).
    #[arg(long)]
    pub day_envelopes: Option<usize>,
    /// Sessions at once with the relay in the day scenario; one measurement per value
    /// (default 1,45: one node after the other, and everyone at once).
    #[arg(long, value_delimiter = ',', default_value = "1,45")]
    pub day_concurrency: Vec<usize>,
    /// Directory for the stores and the workload cache; must be on the disk being
    /// measured (not tmpfs). Default: `<target dir>/tessera-bench`.
    #[arg(long, env = "TESSERA_BENCH_DIR")]
    pub dir: Option<PathBuf>,
    /// File the JSON line of results is appended to (default `<dir>/sync.jsonl`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run even when the directory is on a memory filesystem.
    #[arg(long)]
    pub allow_tmpfs: bool,
}

pub(crate) fn lock<S>(m: &Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `<target dir>` from the binary's path (`<target>/<profile>/<binary>`, or
/// `<target>/<profile>/deps/<test binary>`).
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let mut dir = exe.as_deref().and_then(Path::parent).map(Path::to_path_buf);
    if dir.as_deref().and_then(Path::file_name).is_some_and(|n| n == "deps") {
        dir = dir.and_then(|d| d.parent().map(Path::to_path_buf));
    }
    dir.and_then(|d| d.parent().map(Path::to_path_buf)).unwrap_or_else(|| PathBuf::from("target"))
}

/// The workload, in memory.
struct Source {
    net: TestNetwork,
    trust_entries: Vec<LogEntry>,
    /// Envelopes in log order (author by author, seq order).
    envelopes: Vec<Envelope>,
    changes: u64,
    envelope_bytes: u64,
}

fn load_source(base: &Path, spec: &Spec) -> Result<Source> {
    let workload = workload::load_or_generate(base, spec, false)?;
    // A copy of the log entries beside the cache, so that a run does not need the
    // workload store's lock (another bench may hold it).
    let copy = base.join(format!("{}.sync-entries-v{}", spec.cache_name(), workload::GENERATOR_VERSION));
    let mut entries = read_entries(&copy).unwrap_or_default();
    let held = entries.iter().filter(|e| matches!(e, LogEntry::Envelope(_))).count() as u64;
    if held != workload.counts.envelopes {
        entries = read_workload_store(&workload.node_dir.join("store"))?;
        write_entries(&copy, &entries)?;
    }
    let mut trust_entries = Vec::new();
    let mut envelopes = Vec::new();
    for entry in entries {
        match entry {
            LogEntry::Trust(t) => trust_entries.push(LogEntry::Trust(t)),
            LogEntry::Envelope(e) => envelopes.push(e),
        }
    }
    let net = TestNetwork::new(spec.seed, spec.partners, DEVICES_PER_PARTNER);
    let trust = net.trust();
    ensure!(
        envelopes.first().is_none_or(|e| trust.authorize(&e.author(), e.seq()).is_ok()),
        "the workload cache is of another network: regenerate it"
    );
    let changes = envelopes.iter().map(|e| e.present_changes().count() as u64).sum();
    let envelope_bytes = envelopes.iter().map(|e| e.encoded_len() as u64).sum();
    Ok(Source { net, trust_entries, envelopes, changes, envelope_bytes })
}

/// Every entry of the workload store, waiting up to 10 minutes for its lock.
fn read_workload_store(dir: &Path) -> Result<Vec<LogEntry>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let store = loop {
        match Store::open(dir, None) {
            Ok((store, _)) => break store,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the workload store ({e})");
                std::thread::sleep(Duration::from_secs(10));
            }
            Err(e) => return Err(e).with_context(|| format!("open the workload store {}", dir.display())),
        }
    };
    let mut entries = Vec::new();
    for item in store.entries_from(store.log_start()) {
        entries.push(item?.1);
    }
    Ok(entries)
}

/// Entries as (u32 LE length, encoded entry) records.
fn write_entries(path: &Path, entries: &[LogEntry]) -> Result<()> {
    let mut bytes = Vec::new();
    for entry in entries {
        let encoded = entry.encode();
        bytes.extend_from_slice(&u32::try_from(encoded.len())?.to_le_bytes());
        bytes.extend_from_slice(&encoded);
    }
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

fn read_entries(path: &Path) -> Option<Vec<LogEntry>> {
    let bytes = fs::read(path).ok()?;
    let mut rest = bytes.as_slice();
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (entry, tail) = tail.split_at_checked(len)?;
        entries.push(LogEntry::decode(entry).ok()?);
        rest = tail;
    }
    Some(entries)
}

fn identity(net: &TestNetwork, device: usize) -> Identity {
    let chain = net.trust().chain_of(&net.devices[device].id).into_iter().cloned().collect();
    Identity { network: net.network, key: SecretKey::from_seed(net.devices[device].key.to_seed()), chain }
}

pub(crate) fn loopback_endpoint(net: &TestNetwork, device: usize) -> Result<Endpoint> {
    let addr: SocketAddr = "127.0.0.1:0".parse()?;
    Ok(Endpoint::bind(addr, identity(net, device))?)
}

/// A device of the test network that authors nothing in the workload (`d == 4` of the
/// partners `p % 10 >= 5`), to be the empty node.
pub(crate) fn spare_device(net: &TestNetwork) -> usize {
    net.devices.len() - 1
}

/// Ingests `entries` into `store` in the store's largest batches.
fn ingest_all(store: &mut Store, entries: &[LogEntry]) -> Result<()> {
    for chunk in entries.chunks(INGEST_ENTRIES_MAX) {
        store.ingest(chunk, Policy::AllOrNothing)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The single-core bound

/// Strict verification of every envelope, then automerge apply of every change, on
/// one core. Returns (verify seconds, apply seconds, changes applied).
fn bound(src: &Source) -> Result<(f64, f64, u64)> {
    let trust = src.net.trust();
    let mut heads: HashMap<DeviceKey, Head> = HashMap::new();
    let t = Instant::now();
    for env in &src.envelopes {
        let head = heads.get(&env.author()).copied();
        verify_envelope(&trust, head, env).map_err(|e| anyhow!("bound: envelope does not verify: {e}"))?;
        heads.insert(env.author(), Head { seq: env.seq(), id: env.id() });
    }
    let verify = t.elapsed().as_secs_f64();
    let actor = tessera_records::actor_for(&src.net.devices[spare_device(&src.net)].id);
    let mut docs: HashMap<DocId, tessera_records::RecordDoc> = HashMap::new();
    let mut changes = 0u64;
    let t = Instant::now();
    for env in &src.envelopes {
        for (doc, body) in env.present_changes() {
            let document =
                docs.entry(doc).or_insert_with(|| tessera_records::RecordDoc::empty(actor.clone()));
            document.apply_change(body).map_err(|e| anyhow!("bound: change does not apply: {e}"))?;
            changes += 1;
        }
    }
    let apply = t.elapsed().as_secs_f64();
    std::hint::black_box(&docs);
    Ok((verify, apply, changes))
}

/// Median of 200 appends of 1 KiB, each followed by `fdatasync`, in `dir`.
fn raw_fdatasync_secs(dir: &Path) -> Result<f64> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("raw-fdatasync");
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        file.write_all(&[0x5a; 1024])?;
        file.sync_data()?;
        times.push(t.elapsed().as_secs_f64());
    }
    std::fs::remove_file(&path)?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The cost of sealed bodies on one core: every change body of the workload sealed
/// with one network-scope key (what a writer adds per change), then opened again
/// (what a reader adds before apply). Returns (seal seconds, open seconds, bodies).
fn seal_costs(src: &Source) -> Result<(f64, f64, u64)> {
    use tessera_seal::{Epoch, KeyRing, Scope, ScopeKey};
    let key = ScopeKey::generate(Scope::Network, Epoch(0))?;
    let bodies: Vec<(DocId, &[u8])> = src.envelopes.iter().flat_map(|env| env.present_changes()).collect();
    let t = Instant::now();
    let sealed: Vec<Vec<u8>> = bodies
        .iter()
        .map(|(doc, body)| tessera_seal::seal_body(&key, &src.net.network, doc, body))
        .collect::<Result<_, _>>()?;
    let seal = t.elapsed().as_secs_f64();
    let mut ring = KeyRing::new();
    ring.insert(key);
    let t = Instant::now();
    for ((doc, _), sealed) in bodies.iter().zip(&sealed) {
        let opened = tessera_seal::open_body(&ring, &src.net.network, doc, sealed)
            .map_err(|e| anyhow!("a sealed body does not open: {e}"))?;
        std::hint::black_box(opened);
    }
    let open = t.elapsed().as_secs_f64();
    Ok((seal, open, bodies.len() as u64))
}

// ---------------------------------------------------------------------------------
// Sessions

/// One session as seen by the side that connected.
#[derive(Debug)]
pub(crate) struct Leg {
    /// From the start of the connect until the session went live (everything durable).
    pub(crate) live_secs: f64,
    /// Until `run_session` returned (teardown included).
    pub(crate) total_secs: f64,
    pub(crate) stats: SessionStats,
    /// Frames on the stream, both ways, after compression (as counted by `tessera-net`).
    pub(crate) wire_bytes: u64,
}

impl Leg {
    pub(crate) fn wire_bytes(&self) -> u64 {
        self.wire_bytes
    }
    fn entry_bytes(&self) -> u64 {
        self.stats.entry_bytes_sent + self.stats.entry_bytes_received
    }
    fn envelopes(&self) -> u64 {
        self.stats.envelopes_sent + self.stats.envelopes_received
    }

    fn record(&self, m: &mut Metrics, prefix: &str, changes: u64) {
        let wire = self.wire_bytes() as f64;
        let entry = self.entry_bytes() as f64;
        put(m, format!("{prefix}.secs"), self.live_secs);
        put(m, format!("{prefix}.total_secs"), self.total_secs);
        put(m, format!("{prefix}.envelopes"), self.envelopes() as f64);
        put(m, format!("{prefix}.changes"), changes as f64);
        put(m, format!("{prefix}.changes_per_s"), changes as f64 / self.live_secs);
        put(m, format!("{prefix}.envelopes_per_s"), self.envelopes() as f64 / self.live_secs);
        put(m, format!("{prefix}.wire_bytes"), wire);
        put(m, format!("{prefix}.entry_bytes"), entry);
        put(m, format!("{prefix}.wire_ratio"), wire / entry);
        put(m, format!("{prefix}.overhead_bytes"), wire - entry);
        put(m, format!("{prefix}.wire_budget_ratio"), wire / (1.10 * entry + 4096.0));
        put(
            m,
            format!("{prefix}.messages"),
            (self.stats.messages_sent + self.stats.messages_received) as f64,
        );
        let rtt = self.stats.round_trips_to_difference.map_or(f64::NAN, f64::from);
        put(m, format!("{prefix}.round_trips"), rtt);
        let known = self.stats.difference_known_after.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        put(m, format!("{prefix}.difference_known_ms"), known);
    }
}

fn finished(outcome: &CloseReason) -> Result<()> {
    match outcome {
        CloseReason::Finished { .. } => Ok(()),
        other => bail!("the session did not finish: {other:?}"),
    }
}

/// Connects to `addr` and runs one session until both sides are caught up.
pub(crate) async fn connect_and_sync<S: SyncStore>(
    endpoint: &Endpoint,
    addr: SocketAddr,
    store: Arc<Mutex<S>>,
    config: SessionConfig,
) -> Result<Leg> {
    let start = Instant::now();
    let trust = lock(&store).trust();
    let channel = endpoint.connect(addr, &trust).await?;
    // As the node does (`node/src/net_cmd.rs`): the session also receives its own
    // stored batches on this channel, and ends when it lags behind it.
    let (fanout, _) = broadcast::channel(FANOUT_BATCHES_MAX);
    let (_stop_tx, stop) = watch::channel(false);
    let live_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let live = live_at.clone();
    let summary = run_session(
        channel,
        store,
        config,
        fanout,
        stop,
        RunOptions { stop_when_caught_up: true, id: 1, meter: None, closed: None },
        move |_, event| {
            if matches!(event, Event::Live) {
                lock(&live).get_or_insert_with(Instant::now);
            }
        },
    )
    .await?;
    let total_secs = start.elapsed().as_secs_f64();
    finished(&summary.outcome)?;
    let live_secs = lock(&live_at).map_or(total_secs, |t| t.duration_since(start).as_secs_f64());
    let wire_bytes = summary.wire_bytes_sent + summary.wire_bytes_received;
    Ok(Leg { live_secs, total_secs, stats: summary.stats, wire_bytes })
}

/// Direct sync: `server` accepts one session, `client` connects to it.
async fn direct<A: SyncStore, B: SyncStore>(
    server: (&Endpoint, Arc<Mutex<A>>, SessionConfig),
    client: (&Endpoint, Arc<Mutex<B>>, SessionConfig),
) -> Result<Leg> {
    let (server_ep, server_store, server_config) = server;
    let addr = server_ep.local_addr()?;
    let accept = tokio::spawn({
        let endpoint = server_ep.clone();
        async move {
            let incoming = endpoint.accept().await.ok_or_else(|| anyhow!("the endpoint closed"))?;
            let trust = lock(&server_store).trust();
            let channel = incoming.handshake(&trust).await?;
            let (fanout, _) = broadcast::channel(FANOUT_BATCHES_MAX);
            let (_stop_tx, stop) = watch::channel(false);
            let options = RunOptions { stop_when_caught_up: true, id: 1, meter: None, closed: None };
            let summary =
                run_session(channel, server_store, server_config, fanout, stop, options, |_, _| {}).await?;
            finished(&summary.outcome)?;
            anyhow::Ok(summary)
        }
    });
    let (client_ep, client_store, client_config) = client;
    let leg = connect_and_sync(client_ep, addr, client_store, client_config).await?;
    accept.await.context("server session panicked")??;
    Ok(leg)
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(SESSION_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("{what}: no result after {SESSION_TIMEOUT:?}"))?
        .with_context(|| what.to_string())
}

// ---------------------------------------------------------------------------------
// The relay

/// A relay data directory as `tessera-relay init` + `import` make it, with the relay's
/// device certified by partner 0 and every certificate of the network imported.
pub(crate) fn make_relay_dir(dir: &Path, net: &TestNetwork, trust_entries: &[LogEntry]) -> Result<()> {
    fs::create_dir_all(dir.join("keys"))?;
    let key = SecretKey::from_seed(seed_bytes(net.seed, "bench-relay", 0));
    write_secret_key(&dir.join("keys/device.key"), "device", &key)?;
    let cert = net.sign_as_partner(
        0,
        TrustStatement::Device(DeviceCertificate {
            partner: PartnerKey(net.partner_keys[0].public()),
            device: DeviceKey(key.public()),
            role: DeviceRole::Relay,
            site: "Relay banco di prova".into(),
        }),
    );
    let (mut store, _) = Store::open(&dir.join("store"), Some(net.network))?;
    let mut entries = trust_entries.to_vec();
    entries.push(LogEntry::Trust(cert));
    store.ingest(&entries, Policy::AllOrNothing)?;
    drop(store);
    let config =
        json!({ "network": net.network.0.to_hex(), "device": key.public().to_hex(), "name": "bench" });
    fs::write(dir.join("relay.json"), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

/// The relay's defaults, on loopback ports chosen by the system.
pub(crate) fn relay_args() -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".into(),
        metrics: "127.0.0.1:0".into(),
        sessions_max: 1000,
        device_rate_max: 500,
        partner_quota_bytes: 2 * 1024 * 1024 * 1024,
        ..tessera_relay::ServeArgs::default()
    }
}

fn empty_store(dir: &Path, net: &TestNetwork) -> Result<Arc<Mutex<Store>>> {
    let (store, _) = Store::open(dir, Some(net.network))?;
    Ok(Arc::new(Mutex::new(store)))
}

// ---------------------------------------------------------------------------------
// One run

fn wants(args: &SyncBenchArgs, section: &str) -> bool {
    args.sections.iter().any(|s| s == "all" || s == section)
}

struct Ctx<'a> {
    args: &'a SyncBenchArgs,
    src: &'a Source,
    /// The store holding the whole workload (read by every run, never written).
    source_store: Arc<Mutex<Store>>,
    source_endpoint: Endpoint,
    day_envelopes: usize,
}

async fn one_run(ctx: &Ctx<'_>, dir: &Path) -> Result<Metrics> {
    let mut m = Metrics::new();
    let src = ctx.src;
    let net = &src.net;
    let spare = spare_device(net);
    let source_config = SessionConfig::new(net.network, net.devices[0].id);
    let empty_config = SessionConfig::new(net.network, net.devices[spare].id);
    let changes = src.changes;

    if wants(ctx.args, "bound") {
        let (verify, apply, applied) = bound(src)?;
        let n = src.envelopes.len() as f64;
        put(&mut m, "bound.verify_envelopes_per_s", n / verify);
        put(&mut m, "bound.verify_changes_per_s", changes as f64 / verify);
        put(&mut m, "bound.apply_changes_per_s", applied as f64 / apply);
        put(&mut m, "bound.changes_per_s", applied as f64 / (verify + apply));
        eprintln!("  bound: verify {verify:.1} s, apply {apply:.1} s");
        let (seal, open, bodies) = seal_costs(src)?;
        // The raw limit of a durable write on this disk, in the same run: what sealing
        // adds to one registration (one envelope of about one change) is seal / this.
        let fsync = raw_fdatasync_secs(dir)?;
        put(&mut m, "seal.raw_fdatasync_us", fsync * 1e6);
        put(&mut m, "seal.write_ratio", (fsync + seal / bodies as f64) / fsync);
        put(&mut m, "seal.seal_us_per_change", seal * 1e6 / bodies as f64);
        put(&mut m, "seal.open_us_per_change", open * 1e6 / bodies as f64);
        // A reader verifies, opens and applies: the bound with sealed bodies over today's.
        put(&mut m, "seal.bound_ratio", (verify + open + apply) / (verify + apply));
        eprintln!(
            "  sealed bodies: seal {:.2} µs, open {:.2} µs per change; bound ×{:.3}",
            seal * 1e6 / bodies as f64,
            open * 1e6 / bodies as f64,
            (verify + open + apply) / (verify + apply)
        );
    }

    if wants(ctx.args, "direct") {
        let store = empty_store(&dir.join("direct"), net)?;
        let endpoint = loopback_endpoint(net, spare)?;
        let leg = timed(
            "direct sync",
            direct(
                (&ctx.source_endpoint, ctx.source_store.clone(), source_config.clone()),
                (&endpoint, store.clone(), empty_config.clone()),
            ),
        )
        .await?;
        ensure!(
            leg.stats.envelopes_received == src.envelopes.len() as u64,
            "direct: {} of {} envelopes arrived (store holds {}): {:?}",
            leg.stats.envelopes_received,
            src.envelopes.len(),
            lock(&store).heads().total_envelopes(),
            leg.stats
        );
        leg.record(&mut m, "direct", changes);
        let t = Instant::now();
        lock(&store).flush_derived()?;
        put(&mut m, "direct.flush_secs", t.elapsed().as_secs_f64());
        endpoint.close();
        eprintln!("  direct: {:.1} s", leg.live_secs);
    }

    if wants(ctx.args, "relay") {
        let relay_dir = dir.join("relay");
        make_relay_dir(&relay_dir, net, &src.trust_entries)?;
        let relay = Relay::start(&relay_dir, relay_args()).await?;
        let endpoint = loopback_endpoint(net, 0)?;
        let up = timed(
            "upload to the relay",
            connect_and_sync(&endpoint, relay.addr, ctx.source_store.clone(), source_config.clone()),
        )
        .await?;
        ensure!(up.stats.envelopes_sent == src.envelopes.len() as u64, "relay: not everything was uploaded");
        endpoint.close();
        up.record(&mut m, "relay_up", changes);
        let store = empty_store(&dir.join("from-relay"), net)?;
        let endpoint = loopback_endpoint(net, spare)?;
        let down = timed(
            "download from the relay",
            connect_and_sync(&endpoint, relay.addr, store.clone(), empty_config.clone()),
        )
        .await?;
        ensure!(down.stats.envelopes_received == src.envelopes.len() as u64, "relay: not everything arrived");
        down.record(&mut m, "relay_down", changes);
        endpoint.close();
        relay.shutdown().await?;
        put(&mut m, "relay.secs", up.live_secs + down.live_secs);
        eprintln!("  relay: up {:.1} s, down {:.1} s", up.live_secs, down.live_secs);
    }

    if wants(ctx.args, "node") {
        let node_dir = dir.join("node");
        tessera_node::identity::init_joining(&node_dir, "Nodo vuoto", DeviceRole::Hub, net.network)?;
        let node = Arc::new(Mutex::new(tessera_node::Node::open(&node_dir)?));
        let endpoint = loopback_endpoint(net, spare)?;
        let leg = timed(
            "direct sync into a node",
            direct(
                (&ctx.source_endpoint, ctx.source_store.clone(), source_config.clone()),
                (&endpoint, node.clone(), empty_config.clone()),
            ),
        )
        .await?;
        ensure!(leg.stats.envelopes_received == src.envelopes.len() as u64, "node: not everything arrived");
        leg.record(&mut m, "node", changes);
        endpoint.close();
        eprintln!("  node: {:.1} s", leg.live_secs);
    }

    if wants(ctx.args, "day") {
        for &c in &ctx.args.day_concurrency {
            let (secs, rounds, sessions, total) =
                day_offline(&dir.join(format!("day-{c}")), src, ctx.day_envelopes, c.max(1)).await?;
            put(&mut m, format!("day.c{c}.secs"), secs);
            put(&mut m, format!("day.c{c}.rounds"), rounds as f64);
            put(&mut m, format!("day.c{c}.sessions"), sessions as f64);
            put(&mut m, format!("day.c{c}.envelopes"), total as f64);
            eprintln!("  day, {c} at once: {secs:.1} s, {rounds} rounds");
        }
    }
    Ok(m)
}

/// 45 stores, each with its own day of envelopes, sync through a fresh relay in rounds
/// (at most `concurrency` sessions at once) until all hold everything. Returns
/// (seconds, rounds, sessions, envelopes each store ends with).
async fn day_offline(
    dir: &Path,
    src: &Source,
    per_node: usize,
    concurrency: usize,
) -> Result<(f64, usize, usize, u64)> {
    let net = &src.net;
    // Each author's first `per_node` envelopes: its day.
    let mut days: BTreeMap<DeviceKey, Vec<LogEntry>> = BTreeMap::new();
    for env in &src.envelopes {
        let day = days.entry(env.author()).or_default();
        if day.len() < per_node {
            day.push(LogEntry::Envelope(env.clone()));
        }
    }
    let total: u64 = days.values().map(|d| d.len() as u64).sum();
    let relay_dir = dir.join("relay");
    make_relay_dir(&relay_dir, net, &src.trust_entries)?;
    let mut nodes = Vec::new();
    for (author, day) in &days {
        let device = net
            .devices
            .iter()
            .position(|d| d.id == *author)
            .ok_or_else(|| anyhow!("an author of the workload is not a device of the test network"))?;
        let (mut store, _) = Store::open(&dir.join(format!("node-{device}")), Some(net.network))?;
        ingest_all(&mut store, &src.trust_entries)?;
        ingest_all(&mut store, day)?;
        store.flush_derived()?;
        let endpoint = loopback_endpoint(net, device)?;
        let config = SessionConfig::new(net.network, *author);
        nodes.push((endpoint, Arc::new(Mutex::new(store)), config));
    }
    let relay = Relay::start(&relay_dir, relay_args()).await?;
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut rounds = 0;
    let mut sessions = 0;
    loop {
        rounds += 1;
        let mut tasks = tokio::task::JoinSet::new();
        for (endpoint, store, config) in &nodes {
            let (endpoint, store, config) = (endpoint.clone(), store.clone(), config.clone());
            let slots = slots.clone();
            let addr = relay.addr;
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await?;
                connect_and_sync(&endpoint, addr, store, config).await
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.context("a day session panicked")?.context("a day session failed")?;
            sessions += 1;
        }
        let converged = nodes.iter().all(|(_, store, _)| lock(store).heads().total_envelopes() == total);
        if converged {
            break;
        }
        if rounds >= DAY_ROUNDS_MAX {
            bail!("the 45 nodes did not converge in {DAY_ROUNDS_MAX} rounds");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for (endpoint, _, _) in &nodes {
        endpoint.close();
    }
    relay.shutdown().await?;
    Ok((secs, rounds, sessions, total))
}

// ---------------------------------------------------------------------------------
// Driver, table, JSON

/// Runs the sync benchmark.
pub fn run(args: &SyncBenchArgs) -> Result<()> {
    let runs = args.runs.max(1);
    for s in &args.sections {
        ensure!(s == "all" || SECTIONS.contains(&s.as_str()), "unknown section `{s}`");
    }
    let scale = args.scale.unwrap_or(if args.quick { 0.05 } else { 1.0 });
    let day_envelopes = args.day_envelopes.unwrap_or(if args.quick { 5 } else { 30 });
    let base = args.dir.clone().unwrap_or_else(|| target_dir().join("tessera-bench"));
    fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    let machine = Machine::probe(&base);
    println!("tessera-bench sync{}: {runs} run(s), scale {scale}", if args.quick { " --quick" } else { "" });
    println!(
        "machine: {} cores, {}, Linux {}; bench dir {} on {} ({})",
        machine.nproc,
        machine.cpu_model,
        machine.kernel,
        base.display(),
        machine.fs_type,
        machine.device
    );
    if machine.fsync_is_meaningless() {
        let msg = format!("{} is on {}: set TESSERA_BENCH_DIR to a disk", base.display(), machine.fs_type);
        if !args.allow_tmpfs {
            bail!("{msg} (or pass --allow-tmpfs)");
        }
        eprintln!("WARNING: {msg}");
    }
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let spec = Spec::new(args.seed, scale)?;
    let t = Instant::now();
    let src = load_source(&base, &spec)?;
    eprintln!(
        "workload: {} envelopes, {} changes, {} envelope bytes (loaded in {:.1} s)",
        src.envelopes.len(),
        src.changes,
        src.envelope_bytes,
        t.elapsed().as_secs_f64()
    );

    let work = base.join(format!("sync-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = run_in(args, &src, &work, runs, day_envelopes);
    let _ = fs::remove_dir_all(&work);
    let (setup, per_run) = result?;
    let medians = medians(&per_run);
    print_table(&src, &medians, &setup, runs, day_envelopes, &args.day_concurrency);

    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let json_path = args.json.clone().unwrap_or_else(|| base.join("sync.jsonl"));
    let line = json!({
        "bench": "sync",
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "machine": {
            "nproc": machine.nproc, "cpu": machine.cpu_model, "kernel": machine.kernel,
            "fs": machine.fs_type, "device": machine.device,
            "loadavg_before": load_before.trim(), "loadavg_after": load_after.trim(),
        },
        "config": {
            "quick": args.quick, "runs": runs, "seed": args.seed, "scale": scale,
            "sections": args.sections, "day_envelopes": day_envelopes,
            "day_concurrency": args.day_concurrency,
        },
        "workload": {
            "envelopes": src.envelopes.len(), "changes": src.changes,
            "envelope_bytes": src.envelope_bytes, "trust_entries": src.trust_entries.len(),
        },
        "setup": setup,
        "runs": per_run,
        "medians": medians,
    });
    crate::append_json_line(&json_path, &line)?;
    println!("results appended to {}", json_path.display());
    Ok(())
}

fn run_in(
    args: &SyncBenchArgs,
    src: &Source,
    work: &Path,
    runs: usize,
    day_envelopes: usize,
) -> Result<(Metrics, Vec<Metrics>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut setup = Metrics::new();
    // The full store every run syncs from: built once by local ingest (batches of
    // INGEST_ENTRIES_MAX), which is itself a reference rate.
    let source_store = if ["direct", "relay", "node"].iter().any(|s| wants(args, s)) {
        let t = Instant::now();
        let (mut store, _) = Store::open(&work.join("source"), Some(src.net.network))?;
        ingest_all(&mut store, &src.trust_entries)?;
        let entries: Vec<LogEntry> = src.envelopes.iter().cloned().map(LogEntry::Envelope).collect();
        ingest_all(&mut store, &entries)?;
        store.flush_derived()?;
        let secs = t.elapsed().as_secs_f64();
        put(&mut setup, "source_ingest.secs", secs);
        put(&mut setup, "source_ingest.envelopes_per_s", src.envelopes.len() as f64 / secs);
        eprintln!("source store built by local ingest in {secs:.1} s");
        store
    } else {
        Store::open(&work.join("source"), Some(src.net.network))?.0
    };
    let source_store = Arc::new(Mutex::new(source_store));
    let mut per_run = Vec::with_capacity(runs);
    runtime.block_on(async {
        let source_endpoint = loopback_endpoint(&src.net, 0)?;
        let ctx = Ctx { args, src, source_store, source_endpoint, day_envelopes };
        for r in 0..runs {
            let t = Instant::now();
            let dir = work.join(format!("run-{r}"));
            let metrics = one_run(&ctx, &dir).await;
            let _ = fs::remove_dir_all(&dir);
            per_run.push(metrics?);
            eprintln!("run {}/{runs} done in {:.1} s", r + 1, t.elapsed().as_secs_f64());
        }
        ctx.source_endpoint.close();
        anyhow::Ok(())
    })?;
    Ok((setup, per_run))
}

fn medians(runs: &[Metrics]) -> Metrics {
    let mut out = Metrics::new();
    let keys: Vec<String> = runs.iter().flat_map(|m| m.keys().cloned()).collect();
    for key in keys {
        if out.contains_key(&key) {
            continue;
        }
        let values: Vec<f64> = runs.iter().filter_map(|m| m.get(&key).copied()).collect();
        if let Some(v) = median(&values) {
            out.insert(key, v);
        }
    }
    // Ratios of medians, next to the medians of per-run ratios.
    let direct = get(&out, "direct.secs");
    if direct.is_finite() {
        let (down, total) = (get(&out, "relay_down.secs"), get(&out, "relay.secs"));
        put(&mut out, "ratio.relay_down_vs_direct", down / direct);
        put(&mut out, "ratio.relay_total_vs_direct", total / direct);
    }
    let bound = get(&out, "bound.changes_per_s");
    if bound.is_finite() {
        for leg in ["direct", "relay_up", "relay_down", "node"] {
            let rate = get(&out, &format!("{leg}.changes_per_s"));
            put(&mut out, format!("ratio.{leg}_vs_bound"), rate / bound);
        }
    }
    out.retain(|_, v| v.is_finite());
    out
}

pub(crate) fn fmt_int(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn pct(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:.0}%", 100.0 * ratio)
    } else {
        "–".into()
    }
}

fn print_table(
    src: &Source,
    m: &Metrics,
    setup: &Metrics,
    runs: usize,
    day_envelopes: usize,
    concurrency: &[usize],
) {
    println!();
    println!(
        "workload: {} envelopes, {} changes, {} envelope bytes; medians of {runs} run(s)",
        fmt_int(src.envelopes.len() as f64),
        fmt_int(src.changes as f64),
        fmt_int(src.envelope_bytes as f64)
    );
    if let Some(v) = setup.get("source_ingest.envelopes_per_s") {
        println!(
            "source store built by local Store::ingest (batches of 10,000): {} envelopes/s",
            fmt_int(*v)
        );
    }
    if m.contains_key("bound.changes_per_s") {
        println!();
        println!("| single-core bound | changes/s |");
        println!("|---|---:|");
        println!("| strict verify (`verify_envelope`) | {} |", fmt_int(get(m, "bound.verify_changes_per_s")));
        println!("| automerge apply | {} |", fmt_int(get(m, "bound.apply_changes_per_s")));
        println!("| verify + apply, one core | {} |", fmt_int(get(m, "bound.changes_per_s")));
    }
    println!();
    println!(
        "| path | sync s | teardown s | changes/s | × bound | wire B | envelope B | wire/env | \
         overhead B | ≤1.10×+4KiB | round trips | difference known ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (leg, name) in [
        ("direct", "direct store → empty store"),
        ("relay_up", "relay leg 1: full store → relay"),
        ("relay_down", "relay leg 2: relay → empty store"),
        ("node", "direct store → empty node (materializes)"),
    ] {
        if !m.contains_key(&format!("{leg}.secs")) {
            continue;
        }
        let g = |k: &str| get(m, &format!("{leg}.{k}"));
        let budget = g("wire_budget_ratio");
        println!(
            "| {name} | {:.2} | {:.2} | {} | {} | {} | {} | {:.4} | {} | {} ({:.3}) | {} | {:.1} |",
            g("secs"),
            g("total_secs") - g("secs"),
            fmt_int(g("changes_per_s")),
            pct(get(m, &format!("ratio.{leg}_vs_bound"))),
            fmt_int(g("wire_bytes")),
            fmt_int(g("entry_bytes")),
            g("wire_ratio"),
            fmt_int(g("overhead_bytes")),
            if budget <= 1.0 { "met" } else { "missed" },
            budget,
            g("round_trips"),
            g("difference_known_ms"),
        );
    }
    if m.contains_key("ratio.relay_down_vs_direct") {
        println!();
        println!(
            "relay / direct: leg 2 alone {:.2}×, both legs {:.2}× (target ≤ 1.5×)",
            get(m, "ratio.relay_down_vs_direct"),
            get(m, "ratio.relay_total_vs_direct")
        );
    }
    if concurrency.iter().any(|c| m.contains_key(&format!("day.c{c}.secs"))) {
        println!();
        println!("45 nodes after a day offline ({day_envelopes} envelopes each), through one relay:");
        println!("| sessions at once | time to converge s | rounds | sessions | envelopes per store |");
        println!("|---:|---:|---:|---:|---:|");
        for c in concurrency {
            let g = |k: &str| get(m, &format!("day.c{c}.{k}"));
            println!(
                "| {c} | {:.2} | {} | {} | {} |",
                g("secs"),
                g("rounds"),
                g("sessions"),
                fmt_int(g("envelopes"))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole benchmark at quick sizes (slow; run by hand):
    /// `cargo test -p tessera-bench --release -- --ignored sync_bench`.
    #[test]
    #[ignore]
    fn sync_bench_quick() {
        let args = SyncBenchArgs {
            quick: true,
            runs: 1,
            sections: vec!["all".into()],
            seed: 1,
            scale: None,
            day_envelopes: None,
            day_concurrency: vec![1, 45],
            dir: None,
            json: None,
            allow_tmpfs: false,
        };
        run(&args).unwrap();
    }

    #[test]
    fn integers_are_grouped() {
        assert_eq!(fmt_int(1234567.4), "1,234,567");
        assert_eq!(fmt_int(-1234.0), "-1,234");
        assert_eq!(fmt_int(12.0), "12");
    }
}
