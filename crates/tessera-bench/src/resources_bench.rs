//! `tessera-bench resources`: what an operator has to provision, measured on the real
//! binaries (issue 7, item 2).
//!
//! Sections (pick with `--sections`):
//! - `coldstart`: the release `tessera` binary on a copy of the reference workload,
//!   spawn to exit, after dropping the page cache (`/proc/sys/vm/drop_caches` when we
//!   may, else `posix_fadvise(DONTNEED)` on the store and the binary) and warm; wall
//!   time and peak RSS of `--version`, `status` and `report --by site`;
//! - `sync`: full sync of the reference workload between real processes: a hub
//!   (`tessera sync`) uploads everything to a `tessera-relay serve`, then an empty hub
//!   downloads it; peak RSS of each process;
//! - `connections`: a `tessera-relay` process holding `--connections` live QUIC
//!   sessions of certified devices (clients in this process, one UDP endpoint per
//!   device): relay RSS per connection, and latency of a small sync (one new envelope
//!   from hub A stored at hub B through the relay, both live) with no other session
//!   and under that load, where every other session also receives the envelope.
//!
//! Peak RSS is `VmHWM` of `/proc/<pid>/status`, polled every 2 ms while the process
//! runs (the last read before exit; a process frees memory as it exits, it does not
//! grow). Nothing is asserted about timings; numbers are medians over runs.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::json;
use tessera_log::testkit::TestNetwork;
use tessera_log::{DeviceRole, LogEntry, SecretKey, TrustState};
use tessera_net::driver::{run_session, RunOptions, Stored, SyncStore, FANOUT_BATCHES_MAX};
use tessera_net::Endpoint;
use tessera_node::config::{NodeConfig, DEVICE_KEY_FILE, KEYS_DIR};
use tessera_node::Node;
use tessera_store::{write_secret_key, Policy, Store};
use tessera_sync::{Event, IngestFailure, LocalLog, SessionConfig};
use tokio::sync::{broadcast, mpsc, watch};

use crate::node_bench::{copy_dir, evict};
use crate::stats::{get, median, percentile, put, Metrics};
use crate::sync_bench::{
    fmt_int, lock, loopback_endpoint, make_relay_dir, spare_device, DEVICES_PER_PARTNER,
};
use crate::workload::{self, Spec};

/// Sections run by default.
const SECTIONS: [&str; 3] = ["coldstart", "sync", "connections"];
/// How often a watched process's `VmHWM` is read.
const POLL: Duration = Duration::from_millis(2);
/// Longest a small sync may take before the run is declared failed.
const SMALL_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the idle sessions may take to all go live.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
/// Handshakes in progress at once while opening the idle sessions.
const CONNECTING_AT_ONCE: usize = 64;
/// Bytes of the body of each small-sync envelope.
const SMALL_BODY_BYTES: usize = 200;

/// Options of `tessera-bench resources`.
#[derive(clap::Args, Debug)]
pub struct ResourcesArgs {
    /// Small sizes for a smoke run: workload scale 0.05, 100 connections.
    #[arg(long)]
    pub quick: bool,
    /// Sections, comma-separated: coldstart, sync, connections (default all).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub sections: Vec<String>,
    /// Runs of the cold start and of the connections scenario (medians are shown).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Runs of the full sync between processes (about 2 minutes each).
    #[arg(long, default_value_t = 1)]
    pub sync_runs: usize,
    /// Live sessions the relay holds in the connections scenario (default 1,000, or
    /// 100 with --quick).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Small syncs timed per load level.
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Workload scale: 1 = the reference workload (default 1, or 0.05 with --quick).
    #[arg(long)]
    pub scale: Option<f64>,
    /// The `tessera` binary (default `<target>/release/tessera`).
    #[arg(long)]
    pub tessera: Option<PathBuf>,
    /// The `tessera-relay` binary (default `<target>/release/tessera-relay`).
    #[arg(long)]
    pub relay: Option<PathBuf>,
    /// Directory for the workload cache and scratch data; on the disk being measured.
    #[arg(long, env = "TESSERA_BENCH_DIR")]
    pub dir: Option<PathBuf>,
    /// File the JSON line of results is appended to (default `<dir>/resources.jsonl`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run even when the directory is on a memory filesystem.
    #[arg(long)]
    pub allow_tmpfs: bool,
}

fn wants(args: &ResourcesArgs, section: &str) -> bool {
    args.sections.iter().any(|s| s == "all" || s == section)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------
// Processes: wall time and peak RSS

/// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`).
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

/// One process run to its end.
#[derive(Debug, Clone, Copy)]
struct ProcRun {
    wall: Duration,
    peak_kib: u64,
}

/// Runs `cmd` to its end, reading its `VmHWM` every [`POLL`]. Fails if it fails.
fn run_watched(cmd: &mut Command, what: &str) -> Result<ProcRun> {
    let stderr = tempfile::tempfile()?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone()?)
        .spawn()
        .context(what.to_string())?;
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = proc_kib(child.id(), "VmHWM") {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(POLL);
    };
    let wall = start.elapsed();
    if !status.success() {
        let mut text = String::new();
        let mut stderr = stderr;
        std::io::Seek::rewind(&mut stderr)?;
        stderr.read_to_string(&mut text)?;
        bail!("{what} failed ({status}): {}", text.trim());
    }
    Ok(ProcRun { wall, peak_kib: peak })
}

/// Drops the page cache: the whole cache when this process may
/// (`/proc/sys/vm/drop_caches`, root), else our own files. Returns the method used.
fn drop_page_cache(paths: &[&Path]) -> Result<&'static str> {
    evict(paths)?;
    match fs::write("/proc/sys/vm/drop_caches", "1") {
        Ok(()) => Ok("drop_caches"),
        Err(_) => Ok("fadvise"),
    }
}

/// A `tessera-relay serve` process on a loopback port.
#[derive(Debug)]
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
}

impl RelayProcess {
    fn start(bin: &Path, dir: &Path, sessions_max: usize) -> Result<RelayProcess> {
        let log = fs::File::create(dir.join("relay.log"))?;
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .args(["--sessions-max", &sessions_max.to_string()])
            .env("TESSERA_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        // "Relay listening on ADDR (metrics on http://ADDR/metrics)"
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        BufReader::new(stdout).read_line(&mut line)?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let addr = words.get(3).and_then(|w| w.parse().ok());
        let metrics_addr =
            words.get(6).and_then(|w| w.strip_prefix("http://")?.strip_suffix("/metrics)")?.parse().ok());
        let (Some(addr), Some(metrics_addr)) = (addr, metrics_addr) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the relay did not start: {line:?} (see {})", dir.join("relay.log").display());
        };
        Ok(RelayProcess { child, addr, metrics_addr })
    }

    fn kib(&self, field: &str) -> f64 {
        proc_kib(self.child.id(), field).map_or(f64::NAN, |k| k as f64)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A gauge or counter of the relay's Prometheus page (the sum over its labels).
    fn metric(&self, name: &str) -> Result<f64> {
        let mut stream = TcpStream::connect(self.metrics_addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut page = String::new();
        stream.read_to_string(&mut page)?;
        Ok(page
            .lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum())
    }

    fn stop(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// Gives a `tessera` data directory the device key of test device `device` (certified
/// in the workload's network), so that it may sync.
fn install_device_key(dir: &Path, net: &TestNetwork, device: usize) -> Result<()> {
    let key = SecretKey::from_seed(net.devices[device].key.to_seed());
    let path = dir.join(KEYS_DIR).join(DEVICE_KEY_FILE);
    fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    write_secret_key(&path, "device", &key)?;
    let mut config = NodeConfig::load(dir)?;
    config.device = key.public().to_hex();
    config.save(dir)
}

// ---------------------------------------------------------------------------------
// coldstart

/// The commands timed cold and warm.
fn coldstart_commands() -> [(&'static str, &'static [&'static str]); 3] {
    [("version", &["--version"]), ("status", &["status"]), ("report_site", &["report", "--by", "site"])]
}

fn tessera_cmd(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    if args.first() != Some(&"--version") {
        cmd.arg("--data").arg(dir);
    }
    cmd.args(args).env("LANG", "C").env_remove("LC_ALL").env_remove("TESSERA_LOG").env_remove("TESSERA_DATA");
    cmd
}

fn coldstart(ctx: &Ctx, m: &mut Metrics) -> Result<&'static str> {
    let mut method = "";
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut push = |k: String, v: f64| series.entry(k).or_default().push(v);
    for (key, args) in coldstart_commands() {
        // Warm-up: a catch-up of derived state, if any, happens here, untimed.
        run_watched(&mut tessera_cmd(&ctx.tessera, &ctx.hub, args), key)?;
    }
    for run in 0..ctx.runs {
        for (key, args) in coldstart_commands() {
            method = drop_page_cache(&[ctx.hub.as_path(), ctx.tessera.as_path()])?;
            let cold = run_watched(&mut tessera_cmd(&ctx.tessera, &ctx.hub, args), key)?;
            let warm = run_watched(&mut tessera_cmd(&ctx.tessera, &ctx.hub, args), key)?;
            push(format!("cold.{key}.cold_ms"), cold.wall.as_secs_f64() * 1e3);
            push(format!("cold.{key}.warm_ms"), warm.wall.as_secs_f64() * 1e3);
            push(format!("cold.{key}.cold_peak_mib"), mib(cold.peak_kib));
            push(format!("cold.{key}.warm_peak_mib"), mib(warm.peak_kib));
        }
        eprintln!("  coldstart run {}/{} done", run + 1, ctx.runs);
    }
    for (key, values) in series {
        put(m, key, median(&values).unwrap_or(f64::NAN));
    }
    Ok(method)
}

// ---------------------------------------------------------------------------------
// sync: full sync of the reference workload between processes

fn full_sync(ctx: &Ctx, dir: &Path, m: &mut Metrics) -> Result<()> {
    let net = &ctx.net;
    let relay_dir = dir.join("relay");
    make_relay_dir(&relay_dir, net, &ctx.trust_entries)?;
    let mut relay = RelayProcess::start(&ctx.relay, &relay_dir, 1000)?;
    let peer = relay.addr.to_string();
    let up = run_watched(&mut tessera_cmd(&ctx.tessera, &ctx.hub, &["sync", "--peer", &peer]), "upload")?;

    // An empty hub, certified, that knows the network's certificates (as after
    // `tessera init --join` and `tessera import` of its certificate).
    let fresh = dir.join("fresh");
    tessera_node::identity::init_joining(&fresh, "Polo nuovo", DeviceRole::Hub, net.network)?;
    install_device_key(&fresh, net, spare_device(net) - DEVICES_PER_PARTNER)?;
    Node::open(&fresh)?.ingest(&ctx.trust_entries, Policy::AllOrNothing)?;
    let down = run_watched(&mut tessera_cmd(&ctx.tessera, &fresh, &["sync", "--peer", &peer]), "download")?;
    let relay_peak = relay.kib("VmHWM");
    let relay_rss = relay.kib("VmRSS");
    ensure!(relay.alive(), "the relay died during the full sync");
    relay.stop()?;
    let held = Node::open(&fresh)?.store().heads().total_envelopes();
    ensure!(held == ctx.envelopes, "the empty hub got {held} of {} envelopes", ctx.envelopes);
    put(m, "sync.upload_s", up.wall.as_secs_f64());
    put(m, "sync.download_s", down.wall.as_secs_f64());
    put(m, "sync.upload_peak_mib", mib(up.peak_kib));
    put(m, "sync.download_peak_mib", mib(down.peak_kib));
    put(m, "sync.relay_peak_mib", relay_peak / 1024.0);
    put(m, "sync.relay_rss_after_mib", relay_rss / 1024.0);
    put(m, "sync.relay_store_mib", dir_mib(&relay_dir.join("store"))?);
    eprintln!(
        "  sync: up {:.1} s, down {:.1} s; peak RSS up {:.0} MiB, down {:.0} MiB, relay {:.0} MiB",
        up.wall.as_secs_f64(),
        down.wall.as_secs_f64(),
        mib(up.peak_kib),
        mib(down.peak_kib),
        relay_peak / 1024.0
    );
    Ok(())
}

fn dir_mib(path: &Path) -> Result<f64> {
    fn walk(path: &Path) -> Result<u64> {
        let meta = fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return Ok(meta.len());
        }
        let mut sum = 0;
        for entry in fs::read_dir(path)? {
            sum += walk(&entry?.path())?;
        }
        Ok(sum)
    }
    Ok(walk(path)? as f64 / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------------
// connections: a relay holding many live sessions

/// A store that reports when a batch is durably stored (hub B of the small syncs).
struct Notify<S> {
    inner: S,
    stored: mpsc::UnboundedSender<(Instant, Vec<LogEntry>)>,
}

impl<S: SyncStore> SyncStore for Notify<S> {
    fn with_log(&self, f: &mut dyn FnMut(&dyn LocalLog)) {
        self.inner.with_log(f)
    }
    fn ingest_batch(&mut self, entries: &[LogEntry]) -> Result<Vec<LogEntry>, IngestFailure> {
        let new = self.inner.ingest_batch(entries)?;
        let _ = self.stored.send((Instant::now(), new.clone()));
        Ok(new)
    }
    fn trust(&self) -> TrustState {
        self.inner.trust()
    }
}

/// Counts of the client sessions.
#[derive(Debug, Default)]
struct Counts {
    live: AtomicUsize,
    ended: AtomicUsize,
}

/// Starts one live session with the relay; `counts` follows it.
#[allow(clippy::too_many_arguments)]
fn spawn_live<S: SyncStore>(
    tasks: &mut tokio::task::JoinSet<Result<()>>,
    endpoint: Endpoint,
    relay: SocketAddr,
    store: Arc<Mutex<S>>,
    config: SessionConfig,
    fanout: broadcast::Sender<Stored>,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
    slots: Option<Arc<tokio::sync::Semaphore>>,
) {
    tasks.spawn(async move {
        let mut slot = match slots {
            Some(slots) => Some(slots.acquire_owned().await?),
            None => None,
        };
        let trust = lock(&store).trust();
        let channel = endpoint.connect(relay, &trust).await;
        drop(trust);
        let result = match channel {
            Ok(channel) => {
                let live = counts.clone();
                run_session(
                    channel,
                    store,
                    config,
                    fanout,
                    stop,
                    RunOptions { stop_when_caught_up: false, id: 1, meter: None, closed: None },
                    move |_, event| {
                        if matches!(event, Event::Live) {
                            drop(slot.take());
                            live.live.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                )
                .await
                .map(drop)
                .map_err(anyhow::Error::from)
            }
            Err(e) => Err(e.into()),
        };
        counts.ended.fetch_add(1, Ordering::Relaxed);
        result
    });
}

async fn wait_live(counts: &Counts, want: usize, what: &str) -> Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while counts.live.load(Ordering::Relaxed) < want {
        let ended = counts.ended.load(Ordering::Relaxed);
        ensure!(ended == 0, "{what}: {ended} session(s) ended while connecting");
        ensure!(
            Instant::now() < deadline,
            "{what}: only {} of {want} live",
            counts.live.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Hub A's side of the small syncs.
struct Sender {
    store: Arc<Mutex<Store>>,
    fanout: broadcast::Sender<Stored>,
    next: u64,
}

/// `samples` small syncs, one after the other: A stores one new envelope and pushes it
/// live; the time until B has stored it durably. Returns the latencies in ms.
async fn small_syncs(
    net: &mut TestNetwork,
    a: &mut Sender,
    b_stored: &mut mpsc::UnboundedReceiver<(Instant, Vec<LogEntry>)>,
    samples: usize,
) -> Result<Vec<f64>> {
    let network = net.network;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let env = net.devices[0].next_simple(&network, a.next, SMALL_BODY_BYTES);
        a.next += 1;
        let id = env.id();
        let entries = vec![LogEntry::Envelope(env)];
        lock(&a.store).ingest(&entries, Policy::AllOrNothing)?;
        let start = Instant::now();
        let _ = a.fanout.send(Stored { by: 0, entries: Arc::new(entries) });
        let arrived = tokio::time::timeout(SMALL_SYNC_TIMEOUT, async {
            while let Some((at, batch)) = b_stored.recv().await {
                if batch.iter().any(|e| matches!(e, LogEntry::Envelope(x) if x.id() == id)) {
                    return Some(at);
                }
            }
            None
        })
        .await
        .map_err(|_| anyhow!("a small sync did not arrive within {SMALL_SYNC_TIMEOUT:?}"))?
        .ok_or_else(|| anyhow!("hub B's session ended"))?;
        out.push(arrived.duration_since(start).as_secs_f64() * 1e3);
    }
    Ok(out)
}

fn trusted_store(dir: &Path, net: &TestNetwork) -> Result<Store> {
    let (mut store, _) = Store::open(dir, Some(net.network))?;
    let trust: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    store.ingest(&trust, Policy::AllOrNothing)?;
    Ok(store)
}

fn record_latency(m: &mut Metrics, prefix: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    put(m, format!("{prefix}.p50_ms"), percentile(&ms, 50.0).unwrap_or(f64::NAN));
    put(m, format!("{prefix}.p99_ms"), percentile(&ms, 99.0).unwrap_or(f64::NAN));
    put(m, format!("{prefix}.max_ms"), ms.last().copied().unwrap_or(f64::NAN));
}

/// The load steps: RSS is read after each (a quarter, half, all of the sessions).
fn steps(connections: usize) -> Vec<usize> {
    let mut s: Vec<usize> =
        [connections / 4, connections / 2, connections].into_iter().filter(|&n| n > 0).collect();
    s.dedup();
    s
}

async fn connections_run(ctx: &Ctx, dir: &Path, m: &mut Metrics) -> Result<()> {
    let n = ctx.connections;
    // Devices 0 and 1 are hubs A and B; 2.. are the idle sessions.
    let mut net = TestNetwork::new(ctx.seed ^ 0x00c0_ffee, 10, (n + 2).div_ceil(10));
    let trust: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    let relay_dir = dir.join("relay");
    make_relay_dir(&relay_dir, &net, &trust)?;
    // The relay's default cap is exactly 1,000 sessions: A and B need two more.
    let sessions_max = n + 16;
    let mut relay = RelayProcess::start(&ctx.relay, &relay_dir, sessions_max)?;
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    // Hubs A and B, live.
    let probes = Arc::new(Counts::default());
    let (a_fanout, _) = broadcast::channel(FANOUT_BATCHES_MAX);
    let mut a = Sender {
        store: Arc::new(Mutex::new(trusted_store(&dir.join("a"), &net)?)),
        fanout: a_fanout,
        next: 0,
    };
    let (stored_tx, mut b_stored) = mpsc::unbounded_channel();
    let b_store =
        Arc::new(Mutex::new(Notify { inner: trusted_store(&dir.join("b"), &net)?, stored: stored_tx }));
    let endpoints = [loopback_endpoint(&net, 0)?, loopback_endpoint(&net, 1)?];
    let (network, a_id, b_id) = (net.network, net.devices[0].id, net.devices[1].id);
    let a_config = SessionConfig::new(network, a_id);
    let b_config = SessionConfig::new(network, b_id);
    let (b_fanout, _) = broadcast::channel(FANOUT_BATCHES_MAX);
    spawn_live(
        &mut tasks,
        endpoints[0].clone(),
        relay.addr,
        a.store.clone(),
        a_config,
        a.fanout.clone(),
        stop.clone(),
        probes.clone(),
        None,
    );
    spawn_live(
        &mut tasks,
        endpoints[1].clone(),
        relay.addr,
        b_store,
        b_config,
        b_fanout,
        stop.clone(),
        probes.clone(),
        None,
    );
    wait_live(&probes, 2, "hubs A and B").await?;

    // Warm-up, then the small syncs with no other session.
    small_syncs(&mut net, &mut a, &mut b_stored, 10).await?;
    let alone = small_syncs(&mut net, &mut a, &mut b_stored, ctx.samples).await?;
    record_latency(m, "conn.alone", alone);
    let base = relay.kib("VmRSS");
    put(m, "conn.rss_base_mib", base / 1024.0);

    // The idle sessions: one endpoint (UDP socket) per device, one shared store.
    let idle_store = Arc::new(Mutex::new(trusted_store(&dir.join("idle"), &net)?));
    let idle = Arc::new(Counts::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
    let mut idle_endpoints = Vec::with_capacity(n);
    let t = Instant::now();
    let mut opened = 0;
    for step in steps(n) {
        for i in opened..step {
            let device = 2 + i;
            let endpoint = loopback_endpoint(&net, device)?;
            idle_endpoints.push(endpoint.clone());
            let config = SessionConfig::new(network, net.devices[device].id);
            let (fanout, _) = broadcast::channel(FANOUT_BATCHES_MAX);
            spawn_live(
                &mut tasks,
                endpoint,
                relay.addr,
                idle_store.clone(),
                config,
                fanout,
                stop.clone(),
                idle.clone(),
                Some(slots.clone()),
            );
        }
        opened = step;
        wait_live(&idle, step, "idle sessions").await?;
        if step == n {
            put(m, "conn.open_all_s", t.elapsed().as_secs_f64());
        }
        // Let the relay's allocations settle (handshake buffers freed).
        tokio::time::sleep(Duration::from_secs(1)).await;
        put(m, format!("conn.rss_{step}_mib"), relay.kib("VmRSS") / 1024.0);
        eprintln!("  {step} idle sessions live, relay RSS {:.1} MiB", relay.kib("VmRSS") / 1024.0);
    }
    let full = relay.kib("VmRSS");
    put(m, "conn.per_connection_kib", (full - base) / n as f64);
    put(m, "conn.connected_gauge", relay.metric("tessera_relay_connected_peers")?);

    // The small syncs under load: every idle session also receives each envelope.
    let loaded = small_syncs(&mut net, &mut a, &mut b_stored, ctx.samples).await?;
    record_latency(m, "conn.loaded", loaded);
    put(m, "conn.rss_after_syncs_mib", relay.kib("VmRSS") / 1024.0);
    put(m, "conn.relay_peak_mib", relay.kib("VmHWM") / 1024.0);
    let ended = idle.ended.load(Ordering::Relaxed) + probes.ended.load(Ordering::Relaxed);
    put(m, "conn.sessions_ended_early", ended as f64);
    let alive = relay.alive();
    put(m, "conn.relay_alive", if alive { 1.0 } else { 0.0 });
    // The idle store learnt every envelope A wrote (through some idle session).
    let idle_got = lock(&idle_store).heads().get(&a_id).map_or(0, |h| h.seq.0);
    put(m, "conn.idle_store_seq", idle_got as f64);

    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(Duration::from_secs(60), async { while tasks.join_next().await.is_some() {} })
            .await;
    for endpoint in endpoints.iter().chain(&idle_endpoints) {
        endpoint.close();
    }
    relay.stop()?;
    ensure!(alive, "the relay process died under {n} sessions");
    ensure!(ended == 0, "{ended} session(s) ended before the stop");
    ensure!(drained.is_ok(), "the sessions did not end within 60 s of the stop");
    eprintln!(
        "  connections: {:.1} KiB per connection; small sync p50 {:.1} ms alone, {:.1} ms under load",
        get(m, "conn.per_connection_kib"),
        get(m, "conn.alone.p50_ms"),
        get(m, "conn.loaded.p50_ms")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------
// Driver

struct Ctx {
    runs: usize,
    seed: u64,
    connections: usize,
    samples: usize,
    tessera: PathBuf,
    relay: PathBuf,
    /// A copy of the workload's hub, holding the key of a certified device.
    hub: PathBuf,
    net: TestNetwork,
    trust_entries: Vec<LogEntry>,
    envelopes: u64,
}

/// Runs `tessera-bench resources`.
pub fn run(args: &ResourcesArgs) -> Result<()> {
    for s in &args.sections {
        ensure!(
            s == "all" || SECTIONS.contains(&s.as_str()),
            "unknown section `{s}`: use {}",
            SECTIONS.join(", ")
        );
    }
    let q = args.quick;
    let scale = args.scale.unwrap_or(if q { 0.05 } else { 1.0 });
    let connections = args.connections.unwrap_or(if q { 100 } else { 1000 }).max(1);
    println!(
        "tessera-bench resources{}: sections {:?}, scale {scale}",
        if q { " --quick" } else { "" },
        args.sections
    );
    let (base, machine) = crate::bench_dir(&args.dir, args.allow_tmpfs)?;
    let release = crate::target_dir().join("release");
    let tessera = args.tessera.clone().unwrap_or_else(|| release.join("tessera"));
    let relay = args.relay.clone().unwrap_or_else(|| release.join("tessera-relay"));
    for bin in [&tessera, &relay] {
        ensure!(
            bin.exists(),
            "{} not found: `cargo build --release -p tessera-node -p tessera-relay` first",
            bin.display()
        );
    }
    let spec = Spec::new(args.seed, scale)?;
    let needs_workload = wants(args, "coldstart") || wants(args, "sync");
    let work = base.join(format!("resources-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let net = TestNetwork::new(spec.seed, spec.partners, DEVICES_PER_PARTNER);
    let trust_entries = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    let mut ctx = Ctx {
        runs: args.runs.max(1),
        seed: args.seed,
        connections,
        samples: args.samples.max(1),
        tessera,
        relay,
        hub: work.join("hub"),
        net,
        trust_entries,
        envelopes: 0,
    };
    let result = (|| {
        if needs_workload {
            let w = workload::load_or_generate(&base, &spec, false)?;
            ctx.envelopes = w.counts.envelopes;
            copy_dir(&w.node_dir, &ctx.hub)?;
            install_device_key(&ctx.hub, &ctx.net, spare_device(&ctx.net))?;
        }
        run_sections(args, &ctx, &work)
    })();
    let _ = fs::remove_dir_all(&work);
    let (m, method, per_run) = result?;
    print_tables(&ctx, &m, method);

    let json_path = args.json.clone().unwrap_or_else(|| base.join("resources.jsonl"));
    let line = json!({
        "bench": "resources",
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "machine": {
            "nproc": machine.nproc, "cpu": machine.cpu_model, "kernel": machine.kernel,
            "fs": machine.fs_type, "device": machine.device,
        },
        "config": {
            "quick": q, "scale": scale, "runs": ctx.runs, "sync_runs": args.sync_runs,
            "connections": connections, "samples": ctx.samples, "sections": args.sections,
            "page_cache": method,
        },
        "medians": m,
        "per_run": per_run,
    });
    crate::append_json_line(&json_path, &line)?;
    println!("\nresults appended to {}", json_path.display());
    Ok(())
}

fn run_sections(
    args: &ResourcesArgs,
    ctx: &Ctx,
    work: &Path,
) -> Result<(Metrics, &'static str, Vec<Metrics>)> {
    let mut m = Metrics::new();
    let mut method = "";
    if wants(args, "coldstart") {
        method = coldstart(ctx, &mut m)?;
    }
    let mut per_run = Vec::new();
    if wants(args, "sync") {
        for r in 0..args.sync_runs.max(1) {
            let mut run = Metrics::new();
            let dir = work.join(format!("sync-{r}"));
            full_sync(ctx, &dir, &mut run)?;
            let _ = fs::remove_dir_all(&dir);
            per_run.push(run);
        }
    }
    if wants(args, "connections") {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        for r in 0..ctx.runs {
            let mut run = Metrics::new();
            let dir = work.join(format!("connections-{r}"));
            runtime.block_on(connections_run(ctx, &dir, &mut run))?;
            let _ = fs::remove_dir_all(&dir);
            per_run.push(run);
        }
    }
    // Medians over the runs of each key (sync and connections runs are separate maps).
    let mut keys: Vec<&String> = per_run.iter().flat_map(|r| r.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let values: Vec<f64> = per_run.iter().filter_map(|r| r.get(key).copied()).collect();
        put(&mut m, key.clone(), median(&values).unwrap_or(f64::NAN));
    }
    Ok((m, method, per_run))
}

fn print_tables(ctx: &Ctx, m: &Metrics, method: &str) {
    if m.keys().any(|k| k.starts_with("cold.")) {
        println!();
        println!("Cold start of `tessera` (page cache dropped by {method}), medians of {} run(s):", ctx.runs);
        println!("| command | cold ms | warm ms | peak RSS cold MiB | peak RSS warm MiB |");
        println!("|---|---:|---:|---:|---:|");
        for (key, args) in coldstart_commands() {
            let g = |s: &str| get(m, &format!("cold.{key}.{s}"));
            // A process that ends before the first read of its status shows 0: unknown.
            let peak = |s: &str| if g(s) > 0.0 { format!("{:.1}", g(s)) } else { "–".into() };
            println!(
                "| `tessera {}` | {:.0} | {:.0} | {} | {} |",
                args.join(" "),
                g("cold_ms"),
                g("warm_ms"),
                peak("cold_peak_mib"),
                peak("warm_peak_mib")
            );
        }
    }
    if m.contains_key("sync.upload_s") {
        println!();
        println!(
            "Full sync of the reference workload between processes ({} envelopes):",
            fmt_int(ctx.envelopes as f64)
        );
        println!("| process | wall s | peak RSS MiB |");
        println!("|---|---:|---:|");
        println!(
            "| `tessera sync` uploading (full hub → relay) | {:.1} | {:.0} |",
            get(m, "sync.upload_s"),
            get(m, "sync.upload_peak_mib")
        );
        println!(
            "| `tessera sync` downloading (relay → empty hub) | {:.1} | {:.0} |",
            get(m, "sync.download_s"),
            get(m, "sync.download_peak_mib")
        );
        println!("| `tessera-relay serve` (both legs) | – | {:.0} |", get(m, "sync.relay_peak_mib"));
        println!("relay store after the sync: {:.0} MiB on disk", get(m, "sync.relay_store_mib"));
    }
    if m.contains_key("conn.per_connection_kib") {
        let n = ctx.connections;
        println!();
        println!("Relay with {n} live sessions (medians of {} run(s)):", ctx.runs);
        println!("| measure | value |");
        println!("|---|---:|");
        println!("| relay RSS, hubs A and B only | {:.1} MiB |", get(m, "conn.rss_base_mib"));
        for step in steps(n) {
            println!(
                "| relay RSS, + {step} idle sessions | {:.1} MiB |",
                get(m, &format!("conn.rss_{step}_mib"))
            );
        }
        println!("| memory per connection | {:.1} KiB |", get(m, "conn.per_connection_kib"));
        println!("| relay peak RSS (VmHWM) | {:.1} MiB |", get(m, "conn.relay_peak_mib"));
        println!("| time to open all sessions | {:.1} s |", get(m, "conn.open_all_s"));
        println!("| `tessera_relay_connected_peers` | {} |", get(m, "conn.connected_gauge"));
        println!("| sessions ended early | {} |", get(m, "conn.sessions_ended_early"));
        println!(
            "| small sync A → relay → B, alone: p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
            get(m, "conn.alone.p50_ms"),
            get(m, "conn.alone.p99_ms"),
            get(m, "conn.alone.max_ms")
        );
        println!(
            "| small sync under load: p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
            get(m, "conn.loaded.p50_ms"),
            get(m, "conn.loaded.p99_ms"),
            get(m, "conn.loaded.max_ms")
        );
        println!(
            "| under load / alone, p50 | {:.1}× |",
            get(m, "conn.loaded.p50_ms") / get(m, "conn.alone.p50_ms")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_fields_are_read() {
        let pid = std::process::id();
        // No order between the two: the kernel updates its RSS counters in per-CPU
        // batches, so VmRSS can briefly read above VmHWM.
        let rss = proc_kib(pid, "VmRSS").unwrap();
        let hwm = proc_kib(pid, "VmHWM").unwrap();
        assert!(rss > 0 && hwm > 0, "VmRSS {rss}, VmHWM {hwm}");
        assert_eq!(proc_kib(pid, "NoSuchField"), None);
    }

    #[test]
    fn load_steps_are_increasing() {
        assert_eq!(steps(1000), vec![250, 500, 1000]);
        assert_eq!(steps(2), vec![1, 2]);
        assert_eq!(steps(1), vec![1]);
    }
}
