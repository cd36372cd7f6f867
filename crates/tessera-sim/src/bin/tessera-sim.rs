//! `tessera-sim`: runs seeds of the deterministic simulation and prints a summary.
//!
//! `cargo run --release -p tessera-sim -- --seeds 10000` runs seeds 0..10000 of the
//! reference topology (45 nodes, 2 relays) on every core; `--seed S` replays one seed
//! and prints its whole report. Exit status 1 when any seed failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use tessera_sim::{Report, SimConfig};

#[derive(Debug, Parser)]
#[command(name = "tessera-sim", about = "Deterministic simulation of Tessera nodes and relays under faults")]
struct Cli {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Replay one seed and print its full report.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Hubs and desks.
    #[arg(long, default_value_t = 45)]
    nodes: usize,
    #[arg(long, default_value_t = 2)]
    relays: usize,
    /// Mean number of erasures asked per run (0: none, the runs of before erasure).
    #[arg(long, default_value_t = SimConfig::reference(0).erasures)]
    erasures: u64,
    /// Print one line per seed.
    #[arg(long)]
    verbose: bool,
}

fn config(cli: &Cli, seed: u64) -> SimConfig {
    SimConfig { nodes: cli.nodes, relays: cli.relays, erasures: cli.erasures, ..SimConfig::reference(seed) }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.nodes < cli.relays.max(1) || cli.relays == 0 {
        anyhow::bail!("--nodes must be at least 1 and --relays at least 1");
    }
    if let Some(seed) = cli.seed {
        let report = tessera_sim::run(config(&cli, seed));
        println!("{report:#?}");
        println!("{}", report.line());
        std::process::exit(if report.passed() { 0 } else { 1 });
    }
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = Arc::new(AtomicU64::new(cli.from));
    let end = cli.from + cli.seeds;
    let reports = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let cli = Arc::new(cli);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next, reports, cli) = (next.clone(), reports.clone(), cli.clone());
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let report = tessera_sim::run(config(&cli, seed));
                if cli.verbose || !report.passed() {
                    println!("{}", report.line());
                    for failure in &report.failures {
                        println!("    {failure}");
                    }
                }
                reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let mut reports = std::mem::take(&mut *reports.lock().unwrap_or_else(|e| e.into_inner()));
    reports.sort_by_key(|r| r.seed);
    summary(&reports, started.elapsed(), threads);
    let failed = reports.iter().any(|r| !r.passed());
    std::process::exit(if failed { 1 } else { 0 });
}

fn summary(reports: &[Report], elapsed: Duration, threads: usize) {
    let failed: Vec<u64> = reports.iter().filter(|r| !r.passed()).map(|r| r.seed).collect();
    let mut converge: Vec<Duration> = reports.iter().filter_map(|r| r.converged_after).collect();
    converge.sort();
    let pct = |q: f64| -> String {
        if converge.is_empty() {
            return "-".into();
        }
        let i = ((converge.len() as f64 - 1.0) * q).round() as usize;
        format!("{:.1} s", converge[i].as_secs_f64())
    };
    let sum = |f: &dyn Fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    println!();
    println!(
        "seeds            {} ({} failed){}",
        reports.len(),
        failed.len(),
        if failed.is_empty() { String::new() } else { format!(": {failed:?}") }
    );
    println!(
        "writes           attempted {} / acknowledged {} / survivors {} / lost {}",
        sum(&|r| r.writes.attempted),
        sum(&|r| r.writes.acknowledged),
        sum(&|r| r.writes.survivors),
        sum(&|r| r.writes.lost)
    );
    println!(
        "  not counted    destroyed with their last disk {} / revoked device {} / copied device (fork) {}",
        sum(&|r| r.writes.destroyed_by_restore),
        sum(&|r| r.writes.excluded_revoked),
        sum(&|r| r.writes.excluded_forked)
    );
    println!(
        "  refused        while restoring {} / revoked {}",
        sum(&|r| r.writes.refused_restoring),
        sum(&|r| r.writes.refused_revoked)
    );
    println!(
        "faults           node crashes {} / relay crashes {} (store lost {}) / restores {} / partitions {} / \
         one-way links {} / copied data dirs {} / stream faults {} / revocations {}",
        sum(&|r| r.faults.node_crashes),
        sum(&|r| r.faults.relay_crashes),
        sum(&|r| r.faults.relay_store_losses),
        sum(&|r| r.faults.restores),
        sum(&|r| r.faults.partitions),
        sum(&|r| r.faults.one_way_links),
        sum(&|r| r.faults.clones),
        sum(&|r| r.stream_faults),
        sum(&|r| r.revocations),
    );
    println!(
        "resolutions      double loans resolved {} / devices left lent with no open loan, each a conflict \
         on every node {} (in {} seeds)",
        sum(&|r| r.resolutions),
        sum(&|r| r.lent_without_loan),
        reports.iter().filter(|r| r.lent_without_loan > 0).count(),
    );
    println!(
        "erasures         persons with details {} / asked by the registering node {}, a colleague {} ({} before \
         it held the person), another partner {} / refused by the node {} / persons erased at the end {}",
        sum(&|r| r.erasures.persons_with_details),
        sum(&|r| r.erasures.by_registrar),
        sum(&|r| r.erasures.by_colleague),
        sum(&|r| r.erasures.colleague_before_details),
        sum(&|r| r.erasures.by_other_partner),
        sum(&|r| r.erasures.refused_by_node),
        sum(&|r| r.erasures.persons_erased),
    );
    println!(
        "  bodies         refused on arrival {} / scrubbed {} / scrubbed at open {} / in torn backups {} ({} \
         backups) / relays put back from an old copy {}",
        sum(&|r| r.erasures.refused_on_arrival),
        sum(&|r| r.erasures.scrubbed),
        sum(&|r| r.erasures.scrubbed_at_open),
        sum(&|r| r.erasures.bodies_in_torn_backups),
        sum(&|r| r.erasures.torn_backups),
        sum(&|r| r.erasures.relay_restores),
    );
    println!(
        "  counted        {} times on a store ({} holding nothing of the person yet), stopped counting {} \
         times / persons whose erasures all count for nothing at the end {} in {} seeds, envelopes whose \
         bodies went with them {} / erased bodies left in damaged records {}",
        sum(&|r| r.erasures.became_effective),
        sum(&|r| r.erasures.before_registration),
        sum(&|r| r.erasures.no_longer_counting),
        sum(&|r| r.erasures.void),
        reports.iter().filter(|r| r.erasures.void > 0).count(),
        sum(&|r| r.erasures.bodies_gone_with_void_erasures),
        sum(&|r| r.erasures.left_in_damaged_records),
    );
    println!(
        "sessions         {} ({} after the heal)",
        sum(&|r| r.sessions),
        sum(&|r| r.sessions_after_heal)
    );
    println!("forks reported   {} seeds with a fork", reports.iter().filter(|r| r.forks_seen > 0).count());
    println!(
        "converged        p50 {} / p99 {} / max {} after the heal (virtual time)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let mut quiet: Vec<Duration> = reports.iter().filter_map(|r| r.quiescent_after).collect();
    quiet.sort();
    println!(
        "quiescent        last entries streamed p50 {:.1} s / max {:.1} s after convergence",
        quiet.get(quiet.len() / 2).map_or(0.0, |d| d.as_secs_f64()),
        quiet.last().map_or(0.0, |d| d.as_secs_f64())
    );
    println!(
        "max relay backlog {} messages+disk ops; max disk queue {}",
        reports.iter().map(|r| r.max_relay_backlog).max().unwrap_or(0),
        reports.iter().map(|r| r.max_disk_queue).max().unwrap_or(0)
    );
    println!(
        "events           {} ({:.0}/s)",
        sum(&|r| r.events),
        sum(&|r| r.events) as f64 / elapsed.as_secs_f64()
    );
    println!("wall time        {:.1} s on {threads} threads", elapsed.as_secs_f64());
}
