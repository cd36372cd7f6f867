//! Benchmarks of Tessera against the machine's limits, on the reference workload.
//!
//! `cargo run --release -p tessera-bench -- log [--quick] [--runs N]`
//! `cargo run --release -p tessera-bench -- node [--quick] [--sections ...]` (needs the
//! release `tessera` binary: `cargo build --release -p tessera-node`); `--sections erase`
//! times `tessera attendee erase` on the reference workload
//! `cargo run --release -p tessera-bench -- workload [--seed S] [--scale X]`
//! `cargo run --release -p tessera-bench -- compare [--quick] [--n 1000,3000,10000] [--plots docs/img]`
//! `cargo run --release -p tessera-bench -- resources [--quick] [--sections ...]`
//!
//! Every Tessera figure is printed next to the raw limit it is measured against (raw
//! `fdatasync`, raw ed25519), as a ratio computed within the same run; the table shows
//! the median over runs. A JSON line with every run's metrics and the medians is
//! appended to a file (`--json`, by default `<target>/tessera-bench/log.jsonl`).
//! Results are written up in `docs/benchmarks.md`.

mod compare;
mod daemon_bench;
mod erase_bench;
mod log_bench;
mod machine;
mod node_bench;
mod page_bench;
mod resources_bench;
mod stats;
mod sync_bench;
mod workload;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use log_bench::{Config, Metrics, APPEND_SERIES, GROUP_BATCHES};
use machine::Machine;
use stats::median;

#[derive(Debug, Parser)]
#[command(name = "tessera-bench", about = "Benchmarks of Tessera against the machine's limits")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The signed log and the durable store: fdatasync, group commit, verification.
    Log(LogArgs),
    /// The hub node (issue 3): registrations through the library, CLI commands on the
    /// reference workload, open and rebuild times, ingest of the whole workload.
    Node(NodeArgs),
    /// Generate (or find in the cache) the reference workload and print what it holds.
    Workload(WorkloadArgs),
    /// Sync of the reference workload over QUIC: direct, through the relay, into a node;
    /// 45 nodes after a day offline.
    Sync(sync_bench::SyncBenchArgs),
    /// Tessera and automerge-repo on the same job: N attendee documents created on one
    /// node, through a relay on loopback, to a fresh node (needs Node.js and npm).
    Compare(compare::CompareArgs),
    /// Cold start and peak RSS of `tessera` and `tessera-relay`; a relay holding 1,000
    /// live connections: memory per connection, latency of a small sync.
    Resources(resources_bench::ResourcesArgs),
}

#[derive(Debug, Args)]
struct NodeArgs {
    /// Small sizes for a smoke run (numbers are not meaningful): scale 0.05, 1,000
    /// registrations, fewer runs.
    #[arg(long)]
    quick: bool,
    /// Sections to run, comma-separated: register, cli, phases, open, ingest, erase
    /// (default all).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    sections: Vec<String>,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Workload scale: 1 = the reference workload, 10 = the scale workload
    /// (default 1, or 0.05 with --quick).
    #[arg(long)]
    scale: Option<f64>,
    /// Attendees registered per run (default 20,000, or 1,000 with --quick).
    #[arg(long)]
    register: Option<usize>,
    /// Runs of the registration series (default 3, or 1 with --quick).
    #[arg(long)]
    register_runs: Option<usize>,
    /// Timed runs of each CLI command with a warm page cache (default 7, or 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Timed runs of each CLI command after evicting the store from the page cache
    /// (default 5, or 1 with --quick).
    #[arg(long)]
    cold_runs: Option<usize>,
    /// Runs of the long sections: rebuilds and whole-workload ingest (default 3, or 1
    /// with --quick).
    #[arg(long)]
    heavy_runs: Option<usize>,
    /// Persons erased through the library in the `erase` section, half on a hub of the
    /// first partner and half on a hub of the last (default 16, or 4 with --quick).
    #[arg(long)]
    erasures: Option<usize>,
    /// Persons erased through the `tessera` binary in the `erase` section, the last one
    /// with the store evicted from the page cache first (default 4, or 2 with --quick).
    #[arg(long)]
    cli_erasures: Option<usize>,
    /// The `tessera` binary (default: `<target>/release/tessera`).
    #[arg(long)]
    tessera: Option<PathBuf>,
    /// Directory for the benchmark's files and the workload cache. Must be on the disk
    /// being measured (not tmpfs). Default: `<target dir>/tessera-bench`.
    #[arg(long, env = "TESSERA_BENCH_DIR")]
    dir: Option<PathBuf>,
    /// File the JSON line of results is appended to (default `<dir>/node.jsonl`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run even when the directory is on a memory filesystem.
    #[arg(long)]
    allow_tmpfs: bool,
}

#[derive(Debug, Args)]
struct WorkloadArgs {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// 1 = the reference workload (~150k changes), 10 = the scale workload.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Regenerate even if a cached copy exists.
    #[arg(long)]
    force: bool,
    /// Directory of the workload cache. Default: `<target dir>/tessera-bench`.
    #[arg(long, env = "TESSERA_BENCH_DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LogArgs {
    /// Small sizes for a smoke run (numbers are not meaningful).
    #[arg(long)]
    quick: bool,
    /// Repetitions of the whole benchmark; the table shows medians over them
    /// (default 3, or 1 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Directory for the benchmark's files. Must be on the disk being measured (not
    /// tmpfs). Default: `<target dir>/tessera-bench`.
    #[arg(long, env = "TESSERA_BENCH_DIR")]
    dir: Option<PathBuf>,
    /// File the JSON line of results is appended to.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Encoded size of one envelope (bytes).
    #[arg(long, default_value_t = 400)]
    record_bytes: usize,
    /// Timed appends per durable-append series (default 2000, 200 with --quick).
    #[arg(long)]
    appends: Option<usize>,
    /// Run even when the directory is on a memory filesystem (fsync is then free).
    #[arg(long)]
    allow_tmpfs: bool,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Log(args) => log(args),
        Command::Node(args) => node(args),
        Command::Workload(args) => workload_cmd(args),
        Command::Sync(args) => sync_bench::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Resources(args) => resources_bench::run(&args),
    }
}

/// `<target dir>` from the binary's path (`<target>/<profile>/tessera-bench`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn log(args: LogArgs) -> Result<()> {
    let mut cfg = if args.quick { Config::quick(args.record_bytes) } else { Config::full(args.record_bytes) };
    if let Some(appends) = args.appends {
        cfg.appends = appends.max(cfg.rounds);
    }
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    println!("tessera-bench log{}: {runs} run(s)", if args.quick { " --quick" } else { "" });
    let (base, machine) = bench_dir(&args.dir, args.allow_tmpfs)?;
    if args.quick {
        println!("(--quick: small sizes, for a smoke run only)");
    }

    let mut per_run = Vec::with_capacity(runs);
    for r in 0..runs {
        let t = Instant::now();
        let metrics = log_bench::run(&cfg, &base)?;
        eprintln!("run {}/{runs} done in {:.1} s", r + 1, t.elapsed().as_secs_f64());
        per_run.push(metrics);
    }
    let medians = medians(&per_run);
    print_table(&cfg, runs, &medians);

    let json_path = args.json.clone().unwrap_or_else(|| base.join("log.jsonl"));
    let line = json!({
        "bench": "log",
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "quick": args.quick,
        "runs": runs,
        "bench_dir": base.display().to_string(),
        "machine": {
            "nproc": machine.nproc,
            "cpu_model": machine.cpu_model,
            "kernel": machine.kernel,
            "fs_type": machine.fs_type,
            "device": machine.device,
            "mount_point": machine.mount_point,
        },
        "config": format!("{cfg:?}"),
        "median": medians,
        "per_run": per_run,
    });
    crate::append_json_line(&json_path, &line)?;
    println!("\nJSON line appended to {}", json_path.display());
    Ok(())
}

/// Appends one JSON line of results to `path` (the log every subcommand keeps).
pub(crate) fn append_json_line(path: &Path, line: &serde_json::Value) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

fn bench_dir(dir: &Option<PathBuf>, allow_tmpfs: bool) -> Result<(PathBuf, Machine)> {
    let base = dir.clone().unwrap_or_else(|| target_dir().join("tessera-bench"));
    fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    let machine = Machine::probe(&base);
    println!(
        "machine: {} cores, {}, Linux {}; bench dir {} on {} ({}, mounted at {})",
        machine.nproc,
        machine.cpu_model,
        machine.kernel,
        base.display(),
        machine.fs_type,
        machine.device,
        machine.mount_point
    );
    if machine.fsync_is_meaningless() {
        let msg = format!(
            "{} is on {}: fsync does not reach a disk there; set TESSERA_BENCH_DIR to a disk",
            base.display(),
            machine.fs_type
        );
        if !allow_tmpfs {
            bail!("{msg} (or pass --allow-tmpfs)");
        }
        eprintln!("WARNING: {msg}");
    }
    Ok((base, machine))
}

fn workload_cmd(args: WorkloadArgs) -> Result<()> {
    let (base, _) = bench_dir(&args.dir, true)?;
    let spec = workload::Spec::new(args.seed, args.scale)?;
    let w = workload::load_or_generate(&base, &spec, args.force)?;
    println!("{}", serde_json::to_string_pretty(&w.to_json())?);
    println!("tessera data directory: {}", w.node_dir.display());
    Ok(())
}

fn node(args: NodeArgs) -> Result<()> {
    for s in &args.sections {
        if s != "all" && !node_bench::SECTIONS.contains(&s.as_str()) {
            bail!("unknown section `{s}`: use {} or all", node_bench::SECTIONS.join(", "));
        }
    }
    let q = args.quick;
    let cfg = node_bench::Config {
        seed: args.seed,
        scale: args.scale.unwrap_or(if q { 0.05 } else { 1.0 }),
        register: args.register.unwrap_or(if q { 1_000 } else { 20_000 }).max(20),
        register_runs: args.register_runs.unwrap_or(if q { 1 } else { 3 }).max(1),
        cli_runs: args.runs.unwrap_or(if q { 3 } else { 7 }).max(1),
        cold_runs: args.cold_runs.unwrap_or(if q { 1 } else { 5 }),
        phase_runs: if q { 2 } else { 5 },
        heavy_runs: args.heavy_runs.unwrap_or(if q { 1 } else { 3 }).max(1),
        erasures: args.erasures.unwrap_or(if q { 4 } else { 16 }).max(2),
        cli_erasures: args.cli_erasures.unwrap_or(if q { 2 } else { 4 }),
        tessera: args.tessera.clone().unwrap_or_else(|| target_dir().join("release").join("tessera")),
        sections: args.sections.clone(),
    };
    println!("tessera-bench node{}: {:?}", if q { " --quick" } else { "" }, cfg.sections);
    let (base, machine) = bench_dir(&args.dir, args.allow_tmpfs)?;
    if q {
        println!("(--quick: small sizes, for a smoke run only)");
    }
    let started = Instant::now();
    let mut metrics = node_bench::Metrics::new();
    let workload = node_bench::run(&cfg, &base, &mut metrics)?;
    node_bench::print(&cfg, workload.as_ref(), &metrics);
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());

    let json_path = args.json.clone().unwrap_or_else(|| base.join("node.jsonl"));
    let mut line = node_bench::to_json(&cfg, workload.as_ref(), &metrics);
    line["bench"] = json!("node");
    line["unix_time"] = json!(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    line["machine"] = json!({
        "nproc": machine.nproc,
        "cpu_model": machine.cpu_model,
        "kernel": machine.kernel,
        "fs_type": machine.fs_type,
        "device": machine.device,
        "mount_point": machine.mount_point,
    });
    crate::append_json_line(&json_path, &line)?;
    println!("JSON line appended to {}", json_path.display());
    Ok(())
}

/// The median of each metric over the runs.
fn medians(runs: &[Metrics]) -> Metrics {
    let mut out = Metrics::new();
    for key in runs.iter().flat_map(|m| m.keys()) {
        if out.contains_key(key) {
            continue;
        }
        let values: Vec<f64> = runs.iter().filter_map(|m| m.get(key).copied()).collect();
        out.insert(key.clone(), median(&values).unwrap_or(f64::NAN));
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_table(cfg: &Config, runs: usize, m: &Metrics) {
    let g = |key: &str| m.get(key).copied().unwrap_or(f64::NAN);
    println!();
    println!(
        "== Durable append: one {} B envelope ({} B framed) per fdatasync, {} appends per series, \
         median of {runs} run(s) ==",
        g("size.envelope_bytes"),
        g("size.frame_bytes"),
        cfg.appends
    );
    println!(
        "{:<44} {:>9} {:>9} {:>10} {:>9} {:>9}  target",
        "series", "p50 µs", "p99 µs", "appends/s", "×raw p50", "×raw mean"
    );
    let labels = [
        "raw: pwrite at end + fdatasync",
        "raw: overwrite preallocated + fdatasync",
        "SegmentLog::append",
        "Store::ingest, 1 pre-signed envelope",
        "Store::append_local (sign + ingest)",
        "diagnostic: raw append + sled rows of 1 env",
    ];
    for (name, label) in APPEND_SERIES.iter().zip(labels) {
        let (r50, rmean) = if *name == "raw_append" {
            (1.0, 1.0)
        } else {
            (g(&format!("ratio.{name}_vs_raw.p50")), g(&format!("ratio.{name}_vs_raw.mean")))
        };
        let target = match *name {
            "store_ingest1" | "store_append_local" => format!("≤ 1.5× raw: {}", verdict(r50 <= 1.5)),
            "raw_append" => "(≈130 µs quoted)".to_string(),
            _ => String::new(),
        };
        println!(
            "{label:<44} {:>9.1} {:>9.1} {:>10.0} {:>8.2}× {:>8.2}×  {target}",
            g(&format!("{name}.p50_us")),
            g(&format!("{name}.p99_us")),
            g(&format!("{name}.per_s")),
            r50,
            rmean
        );
    }

    println!();
    println!("== Group commit: Store::ingest of one device's envelopes, one fdatasync per batch ==");
    println!(
        "{:<12} {:>12} {:>10} {:>16} {:>18}",
        "batch", "envelopes/s", "µs/env", "× raw appends/s", "% of raw strict"
    );
    let row = |b: usize, rate: f64, vs_raw: f64, vs_strict: f64| {
        println!("{b:<12} {rate:>12.0} {:>10.1} {vs_raw:>15.1}× {:>17.0}%", 1e6 / rate, vs_strict * 100.0);
    };
    row(
        1,
        g("store_ingest1.per_s"),
        1.0 / g("ratio.store_ingest1_vs_raw.mean"),
        g("ratio.group_b1_vs_strict1"),
    );
    for b in GROUP_BATCHES {
        row(
            b,
            g(&format!("group.b{b}.per_s")),
            g(&format!("ratio.group_b{b}_vs_raw_append")),
            g(&format!("ratio.group_b{b}_vs_strict1")),
        );
    }

    println!();
    println!(
        "== Verification, one core: signed message {} B (1 change) / {} B (2 changes), {} envelopes per set ==",
        g("size.message1_bytes"),
        g("size.message2_bytes"),
        cfg.verify_envelopes
    );
    println!("{:<52} {:>10} {:>9} {:>11}  target", "series", "per s", "µs each", "vs strict");
    let vrow = |label: &str, rate: f64, ratio: f64, target: String| {
        println!("{label:<52} {rate:>10.0} {:>9.1} {:>10.0}%  {target}", 1e6 / rate, ratio * 100.0);
    };
    let s1 = g("verify.strict1.per_s");
    let s2 = g("verify.strict2.per_s");
    vrow("raw VerifyingKey::verify_strict (1-change msg)", s1, 1.0, "(≈31k/s quoted)".into());
    vrow("raw VerifyingKey::verify_strict (2-change msg)", s2, 1.0, String::new());
    vrow(
        "raw ed25519_dalek::verify_batch, 64",
        g("verify.batch64.per_s"),
        g("ratio.batch64_vs_strict1"),
        String::new(),
    );
    vrow(
        "raw ed25519_dalek::verify_batch, 256",
        g("verify.batch256.per_s"),
        g("ratio.batch256_vs_strict1"),
        "(≈99k/s quoted)".into(),
    );
    let e1 = g("ratio.envelope1_vs_strict1");
    let e2 = g("ratio.envelope2_vs_strict2");
    vrow(
        "tessera verify_envelope (1 change)",
        g("verify.envelope1.per_s"),
        e1,
        format!("≥ 80%: {}", verdict(e1 >= 0.8)),
    );
    vrow(
        "tessera verify_envelope (2 changes)",
        g("verify.envelope2.per_s"),
        e2,
        format!("≥ 80%: {}", verdict(e2 >= 0.8)),
    );
    let sy = g("ratio.sync_vs_strict1");
    vrow(
        "Store::ingest from 40 devices, batches of 1000",
        g("sync.ingest1000.per_s"),
        sy,
        format!("≥ 80%: {}; {:.0}% of batch-256", verdict(sy >= 0.8), g("ratio.sync_vs_batch256") * 100.0),
    );

    println!();
    println!("== Cost per envelope (ns), 1-change envelope ==");
    let costs = [
        ("raw verify_strict", "cost.strict_verify_ns"),
        ("verify_envelope", "cost.verify_envelope_ns"),
        ("  of which: VerifyingKey::from_bytes (point decompression)", "cost.key_decompress_ns"),
        ("  of which: header encode + signing message", "cost.signing_message_ns"),
        ("  of which: BLAKE3 body commitment", "cost.commitment_ns"),
        ("  of which: TrustState::authorize", "cost.authorize_ns"),
        ("Store::ingest from other devices, per envelope", "cost.sync_ingest_ns"),
        ("  LogEntry::decode (not in ingest; sync decodes first)", "cost.decode_ns"),
        ("  LogEntry::encode (ingest re-encodes for the log)", "cost.encode_ns"),
        ("  sled rows of one envelope, batches of 1000 (replica)", "cost.sled_rows_ns"),
        ("sled apply_batch, 1 envelope per batch (replica, wall, no fsync)", "cost.sled_apply_single_ns"),
        ("  fdatasync / 1000", "cost.fsync_per_1000_ns"),
    ];
    for (label, key) in costs {
        println!("{label:<62} {:>9.0}", g(key));
    }
}
