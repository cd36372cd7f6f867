//! `tessera-bench node`: the hub node of issue 3, measured as an operator meets it.
//!
//! Sections (each can be picked with `--sections`):
//! - `register`: attendees registered one by one through the library
//!   ([`Node::transact`], one signed durable envelope each, on a certified
//!   single-machine node), interleaved in rounds with raw `fdatasync` appends of the
//!   same size and with [`Store::append_local`] of the same automerge changes, so the
//!   ratios come from the same minutes;
//! - `cli`: wall time of the release `tessera` binary (spawn to exit) on the reference
//!   workload, with a warm page cache and with the store's files (and the binary)
//!   evicted from it first (`posix_fadvise(DONTNEED)`);
//! - `phases`: where the time of each command goes, measured in this process by
//!   re-running the command's steps with the node library (store open, materializer
//!   catch-up, record-index scan and JSON decode, per-row lookups, sort, rendering).
//!   These steps mirror `node/src/commands.rs`: keep them in step with it;
//! - `open`: [`Node::open`] of the reference store when up to date, after the
//!   materialized documents were dropped (materializer rebuild), and after the whole
//!   derived database was dropped (store replay and re-verification + materializer);
//! - `ingest`: the whole workload into an empty node with one [`Node::ingest`]
//!   (verification, log, fsync, sled rows, materialization), and into a bare
//!   [`Store`] (the part without materialization);
//! - `daemon`: the `cli` commands beside a running `tessera serve` vs. without it,
//!   and the daemon's memory (see `daemon_bench.rs`);
//! - `page`: the operator's pages served by `tessera serve`, p50/p95 (see
//!   `page_bench.rs`);
//! - `erase`: `tessera attendee erase` on a copy of the reference hub (see
//!   `erase_bench.rs`).
//!
//! Nothing here asserts a timing. Numbers are medians over runs.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use tessera_log::testkit::TestNetwork;
use tessera_log::{DeviceRole, DocId, LogEntry, NewChange, Salt, Timestamp};
use tessera_node::{identity, ui, Node};
use tessera_records::conflicts;
use tessera_records::kind::{short_id, RecordKind};
use tessera_records::model::{Record, RecordRef, Site};
use tessera_records::report::{self, GroupBy, ReportQuery};
use tessera_records::text::fold;
use tessera_records::vocab::{Lang, SiteKind};
use tessera_records::{actor_for, RecordDoc};
use tessera_store::segments::{LogId, SegmentLimits};
use tessera_store::{Policy, SegmentLog, Store, INGEST_ENTRIES_MAX};

use crate::stats::{median, put, Latency};
use crate::workload::{self, Rng, Workload, SEARCH_NAME, SESSION_MONTH};

pub use crate::stats::Metrics;

/// The target for one command on the reference workload.
pub const COMMAND_TARGET_MS: f64 = 300.0;
/// Untimed registrations before the timed ones (first sled and file allocations).
const REGISTER_WARMUP: usize = 16;
/// Rounds the register series are interleaved in.
const REGISTER_ROUNDS: usize = 4;
/// Bytes of a segment frame header and of the entry tag around an envelope.
pub(crate) const FRAME_OVERHEAD_BYTES: usize = 8 + 1;

#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub scale: f64,
    pub register: usize,
    pub register_runs: usize,
    pub cli_runs: usize,
    pub cold_runs: usize,
    pub phase_runs: usize,
    pub heavy_runs: usize,
    /// Persons erased through the library (`erase` section), and through the CLI.
    pub erasures: usize,
    pub cli_erasures: usize,
    pub tessera: PathBuf,
    pub sections: Vec<String>,
}

impl Config {
    pub(crate) fn wants(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section || s == "all")
    }
}

pub const SECTIONS: [&str; 8] = ["register", "cli", "daemon", "page", "phases", "open", "ingest", "erase"];

/// Every selected section, in order. The workload is generated (or reused) first if a
/// section needs it.
pub fn run(cfg: &Config, base: &Path, m: &mut Metrics) -> Result<Option<Workload>> {
    let needs_workload =
        ["cli", "daemon", "page", "phases", "open", "ingest", "erase"].iter().any(|s| cfg.wants(s));
    let workload = if needs_workload {
        let spec = workload::Spec::new(cfg.seed, cfg.scale)?;
        let w = workload::load_or_generate(base, &spec, false)?;
        eprintln!(
            "workload {}: {} changes in {} envelopes ({})",
            spec.cache_name(),
            w.counts.total_changes(),
            w.counts.envelopes,
            if w.reused { "cached" } else { "generated" }
        );
        Some(w)
    } else {
        None
    };
    if cfg.wants("register") {
        eprintln!("register: {} attendees × {} run(s)", cfg.register, cfg.register_runs);
        register(cfg, base, m)?;
    }
    if let Some(w) = &workload {
        if cfg.wants("cli") {
            eprintln!("cli: {} warm + {} cold runs per command", cfg.cli_runs, cfg.cold_runs);
            cli(cfg, w, m)?;
        }
        if cfg.wants("daemon") {
            eprintln!("daemon: {} warm runs per command, direct and through the daemon", cfg.cli_runs);
            crate::daemon_bench::run(cfg, w, m)?;
        }
        if cfg.wants("page") {
            eprintln!("page: the operator's pages over loopback HTTP");
            crate::page_bench::run(cfg, w, m)?;
        }
        if cfg.wants("phases") {
            eprintln!("phases: {} runs", cfg.phase_runs);
            phases(cfg, w, m)?;
        }
        if cfg.wants("open") {
            eprintln!("open: {} heavy runs", cfg.heavy_runs);
            open_and_rebuild(cfg, base, w, m)?;
        }
        if cfg.wants("ingest") {
            eprintln!("ingest: {} heavy runs", cfg.heavy_runs);
            ingest(cfg, base, w, m)?;
        }
        if cfg.wants("erase") {
            eprintln!(
                "erase: {} erasures through the library, {} through the CLI",
                cfg.erasures, cfg.cli_erasures
            );
            crate::erase_bench::run(cfg, base, w, m)?;
        }
    }
    Ok(workload)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn median_of(values: &[f64]) -> f64 {
    median(values).unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------
// register: Node::transact, one attendee per envelope

fn register(cfg: &Config, base: &Path, m: &mut Metrics) -> Result<()> {
    let mut per_run: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for run in 0..cfg.register_runs {
        let r = register_run(cfg, base, run as u64)?;
        for (k, v) in r {
            per_run.entry(k).or_default().push(v);
        }
        eprintln!("  register run {}/{} done", run + 1, cfg.register_runs);
    }
    for (k, values) in per_run {
        put(m, format!("register.{k}"), median_of(&values));
    }
    Ok(())
}

fn register_run(cfg: &Config, base: &Path, run: u64) -> Result<Vec<(&'static str, f64)>> {
    let n = cfg.register;
    let dir = tempfile::Builder::new().prefix("node-register-").tempdir_in(base)?;
    let node_dir = dir.path().join("node");
    identity::init_single_machine(&node_dir, "Polo di prova", DeviceRole::Hub, "Cooperativa Prova")?;
    let mut node = Node::open(&node_dir)?;
    let site = Node::new_id(RecordKind::Site)?;
    let site_record = Record::Site(Site {
        name: "Polo di prova".into(),
        kind: SiteKind::CommunityHub,
        partner: "Cooperativa Prova".into(),
        address: String::new(),
        opening_hours: String::new(),
    });
    node.transact(&[(site, site_record)])?;

    // The records, made before timing: what the operator typed.
    let mut rng = Rng::new(cfg.seed, "register", run);
    let total = n + REGISTER_WARMUP;
    let records: Vec<(DocId, Record)> = (0..total as u64)
        .map(|i| {
            let day = rng.range(0, workload::PERIOD_DAYS - 1);
            let a = workload::new_attendee(&mut rng, site, false, day, "Operatore Prova");
            (workload::doc_id(cfg.seed ^ 0x5eed ^ run, RecordKind::Attendee, i), Record::Attendee(a))
        })
        .collect();

    // The store alone, on the same changes: a certified device of a test network.
    let net = TestNetwork::new(cfg.seed ^ run, 1, 1);
    let (mut store, _) = Store::open(&dir.path().join("store-append"), Some(net.network))?;
    let trust: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    store.ingest(&trust, Policy::AllOrNothing)?;
    let actor = actor_for(&net.devices[0].id);
    let mut bodies = Vec::with_capacity(total);
    let t = Instant::now();
    for (i, (_, record)) in records.iter().enumerate() {
        bodies.push(RecordDoc::create(actor.clone(), record, 1_790_000_000_000 + i as i64)?.1);
    }
    let create_us = t.elapsed().as_secs_f64() * 1e6 / total as f64;

    // Warm-up, untimed; the first envelope's size sets the raw record size.
    let mut frame_len = 0;
    for (i, write) in records.iter().take(REGISTER_WARMUP).enumerate() {
        let env = node.transact(std::slice::from_ref(write))?.context("no change written")?;
        frame_len = env.encoded_len() + FRAME_OVERHEAD_BYTES;
        store.append_local(
            &net.devices[0].key,
            Timestamp(i as i64),
            vec![new_change(write.0, &bodies[i])],
        )?;
    }
    let raw_path = dir.path().join("raw-append.dat");
    let raw = OpenOptions::new().read(true).write(true).create_new(true).open(&raw_path)?;
    raw.write_all_at(&[1u8; 32], 0)?;
    raw.sync_all()?;
    File::open(dir.path())?.sync_all()?;
    let mut raw_end = 32u64;
    let frame = vec![0xa5u8; frame_len];
    let raw_total = (n / 10).max(100);

    let mut transact = Vec::with_capacity(n);
    let mut append = Vec::with_capacity(n);
    let mut raws = Vec::with_capacity(raw_total);
    let mut next_t = REGISTER_WARMUP;
    let mut next_a = REGISTER_WARMUP;
    let started = Instant::now();
    for round in 0..REGISTER_ROUNDS {
        let take = |done: usize, all: usize| (all.div_ceil(REGISTER_ROUNDS)).min(all - done.min(all));
        for k in 0..3 {
            match (k + round) % 3 {
                0 => {
                    for _ in 0..take(raws.len(), raw_total) {
                        let t = Instant::now();
                        raw.write_all_at(&frame, raw_end)?;
                        raw.sync_data()?;
                        raws.push(t.elapsed());
                        raw_end += frame.len() as u64;
                    }
                }
                1 => {
                    for _ in 0..take(append.len(), n) {
                        let i = next_a;
                        next_a += 1;
                        let change = vec![new_change(records[i].0, &bodies[i])];
                        let t = Instant::now();
                        black_box(store.append_local(&net.devices[0].key, Timestamp(i as i64), change)?);
                        append.push(t.elapsed());
                    }
                    store.flush_derived()?;
                }
                _ => {
                    for _ in 0..take(transact.len(), n) {
                        let write = std::slice::from_ref(&records[next_t]);
                        next_t += 1;
                        let t = Instant::now();
                        let env = node.transact(write)?;
                        transact.push(t.elapsed());
                        ensure!(env.is_some(), "a registration wrote no change");
                    }
                }
            }
        }
    }
    let wall = started.elapsed();
    ensure!(transact.len() == n, "registered {} of {n}", transact.len());
    let early = Latency::of(&mut transact[..n / 10].to_vec()).context("no samples")?;
    let late = Latency::of(&mut transact[n - n / 10..].to_vec()).context("no samples")?;
    let t = Latency::of(&mut transact).context("no samples")?;
    let a = Latency::of(&mut append).context("no samples")?;
    let r = Latency::of(&mut raws).context("no samples")?;
    let records_now = node.docs().records(RecordKind::Attendee)?.len();
    ensure!(records_now == total, "the node lists {records_now} attendees, expected {total}");
    Ok(vec![
        ("transact.p50_us", t.p50_us),
        ("transact.p99_us", t.p99_us),
        ("transact.max_us", t.max_us),
        ("transact.per_s", t.per_sec),
        ("transact.first10pct_p50_us", early.p50_us),
        ("transact.last10pct_p50_us", late.p50_us),
        ("append_local.p50_us", a.p50_us),
        ("append_local.p99_us", a.p99_us),
        ("append_local.per_s", a.per_sec),
        ("raw.p50_us", r.p50_us),
        ("raw.p99_us", r.p99_us),
        ("raw.per_s", r.per_sec),
        ("frame_bytes", frame_len as f64),
        ("automerge_create.mean_us", create_us),
        ("ratio.transact_vs_raw.p50", t.p50_us / r.p50_us),
        ("ratio.append_local_vs_raw.p50", a.p50_us / r.p50_us),
        ("transact_minus_append_local.p50_us", t.p50_us - a.p50_us),
        ("wall_s", wall.as_secs_f64()),
    ])
}

fn new_change(doc: DocId, body: &[u8]) -> NewChange {
    let mut salt = [0u8; 16];
    salt[..16].copy_from_slice(&blake3::hash(body).as_bytes()[..16]);
    NewChange { doc, salt: Salt(salt), body: body.to_vec() }
}

// ---------------------------------------------------------------------------------
// cli: the release binary, spawn to exit

/// The commands timed, with a key for the metrics.
pub fn cli_commands() -> Vec<(&'static str, Vec<String>)> {
    let v = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("version", v(&["--version"])),
        ("status", v(&["status"])),
        ("attendee_list", v(&["attendee", "list"])),
        ("attendee_search", v(&["attendee", "list", "--search", SEARCH_NAME])),
        ("loan_overdue", v(&["loan", "list", "--overdue"])),
        ("session_month", v(&["session", "list", "--from", SESSION_MONTH.0, "--to", SESSION_MONTH.1])),
        ("report_site", v(&["report", "--by", "site"])),
        ("report_month", v(&["report", "--by", "month"])),
        ("conflicts_list", v(&["conflicts", "list"])),
    ]
}

pub(crate) struct CliRun {
    pub(crate) wall: Duration,
    stdout_bytes: usize,
    stdout_lines: usize,
}

pub(crate) fn run_cli(bin: &Path, dir: &Path, args: &[String]) -> Result<CliRun> {
    let mut cmd = Command::new(bin);
    if args.first().map(String::as_str) != Some("--version") {
        cmd.arg("--data").arg(dir);
    }
    cmd.args(args)
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("TESSERA_LOG")
        .env_remove("TESSERA_DATA")
        .stdin(Stdio::null());
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("run {}", bin.display()))?;
    let wall = t.elapsed();
    if !out.status.success() {
        bail!(
            "`tessera {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(CliRun {
        wall,
        stdout_bytes: out.stdout.len(),
        stdout_lines: out.stdout.iter().filter(|b| **b == b'\n').count(),
    })
}

/// Drops the pages of every file under `paths` from the page cache (after writing back
/// any dirty ones), so the next read comes from the disk, as after a reboot. Only our
/// own files: other sessions' caches are left alone.
pub fn evict(paths: &[&Path]) -> Result<usize> {
    fn walk(path: &Path, count: &mut usize) -> Result<()> {
        let meta = fs::symlink_metadata(path)?;
        if meta.is_dir() {
            for entry in fs::read_dir(path)? {
                walk(&entry?.path(), count)?;
            }
        } else if meta.is_file() {
            let file = File::open(path)?;
            file.sync_all()?;
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
            *count += 1;
        }
        Ok(())
    }
    let mut count = 0;
    for p in paths {
        walk(p, &mut count)?;
    }
    Ok(count)
}

fn cli(cfg: &Config, w: &Workload, m: &mut Metrics) -> Result<()> {
    let bin = &cfg.tessera;
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p tessera-node` (or pass --tessera PATH)",
            bin.display()
        );
    }
    let dir = &w.node_dir;
    let commands = cli_commands();
    // Warm-up: any catch-up or rebuild of derived state happens here, untimed.
    for (key, args) in &commands {
        let first = run_cli(bin, dir, args)?;
        put(m, format!("cli.{key}.first_ms"), ms(first.wall));
        put(m, format!("cli.{key}.stdout_lines"), first.stdout_lines as f64);
        put(m, format!("cli.{key}.stdout_bytes"), first.stdout_bytes as f64);
    }
    let mut warm: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut cold: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..cfg.cli_runs {
        for k in 0..commands.len() {
            let (key, args) = &commands[(k + round) % commands.len()];
            warm.entry(key).or_default().push(ms(run_cli(bin, dir, args)?.wall));
        }
    }
    for round in 0..cfg.cold_runs {
        for k in 0..commands.len() {
            let (key, args) = &commands[(k + round) % commands.len()];
            evict(&[dir.as_path(), bin.as_path()])?;
            cold.entry(key).or_default().push(ms(run_cli(bin, dir, args)?.wall));
        }
    }
    for (key, values) in warm {
        put(m, format!("cli.{key}.warm_ms"), median_of(&values));
        put(m, format!("cli.{key}.warm_min_ms"), values.iter().copied().fold(f64::INFINITY, f64::min));
        put(m, format!("cli.{key}.warm_max_ms"), values.iter().copied().fold(0.0, f64::max));
    }
    for (key, values) in cold {
        put(m, format!("cli.{key}.cold_ms"), median_of(&values));
    }
    put(m, "cli.store_bytes", dir_bytes(&dir.join("store"))? as f64);
    put(m, "cli.log_bytes", dir_bytes(&dir.join("store").join("log"))? as f64);
    put(m, "cli.derived_bytes", dir_bytes(&dir.join("store").join("derived"))? as f64);
    Ok(())
}

pub(crate) fn dir_bytes(path: &Path) -> Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut total = 0;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            total += dir_bytes(&entry?.path())?;
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------
// phases: the steps of each command, in this process

/// One command's steps and their times.
type Steps = Vec<(&'static str, Duration)>;

fn timed<T>(steps: &mut Steps, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let out = f()?;
    steps.push((name, t.elapsed()));
    Ok(out)
}

/// `site_name` of `node/src/commands.rs`: one index read and JSON decode per row.
fn site_name(node: &Node, site: &RecordRef) -> String {
    match node.docs().record(&site.0) {
        Ok(Some(Record::Site(s))) => s.name,
        _ => site.short(),
    }
}

/// The raw rows of the record index for `kind` (no JSON decode): bytes and rows.
fn scan_raw(node: &Node, kind: RecordKind) -> Result<(u64, u64)> {
    let tree = node.store().derived_tree("docs")?;
    let (mut bytes, mut rows) = (0u64, 0u64);
    for row in tree.scan_prefix([b'r', kind.byte()]) {
        let (k, v) = row?;
        bytes += (k.len() + v.len()) as u64;
        rows += 1;
    }
    Ok((bytes, rows))
}

const LIST_KINDS: [RecordKind; 5] =
    [RecordKind::Site, RecordKind::Attendee, RecordKind::Device, RecordKind::Loan, RecordKind::Session];

fn phase_status(node: &Node, s: &mut Steps) -> Result<usize> {
    let counts = timed(s, "index scan + JSON decode, every kind", || {
        LIST_KINDS.iter().map(|k| Ok(node.docs().records(*k)?.len())).collect::<Result<Vec<_>>>()
    })?;
    timed(s, "state digest (scan of every record)", || node.docs().state_digest())?;
    Ok(counts.iter().sum())
}

fn phase_attendees(node: &Node, s: &mut Steps, search: Option<&str>) -> Result<usize> {
    timed(s, "index scan, no decode", || scan_raw(node, RecordKind::Attendee))?;
    let records = timed(s, "index scan + JSON decode", || node.docs().records(RecordKind::Attendee))?;
    let needle = search.map(fold);
    let mut rows = timed(s, "filter + rows (site name per row)", || {
        let mut rows = Vec::new();
        for (id, r) in records {
            let Record::Attendee(a) = r else { continue };
            if a.is_merged()
                || needle
                    .as_ref()
                    .is_some_and(|n| !fold(&format!("{} {}", a.given_name, a.family_name)).contains(n))
            {
                continue;
            }
            rows.push(vec![
                short_id(&id),
                a.family_name,
                a.given_name,
                a.birth_year.to_string(),
                a.role.label(Lang::En).to_string(),
                site_name(node, &a.site),
            ]);
        }
        Ok(rows)
    })?;
    timed(s, "sort (folds names in the comparator)", || {
        rows.sort_by(|x, y| (fold(&x[1]), fold(&x[2])).cmp(&(fold(&y[1]), fold(&y[2]))));
        Ok(())
    })?;
    let header = ["id", "family name", "given name", "born", "role", "site"];
    timed(s, "render table", || Ok(black_box(ui::table(&header, &rows)).len()))?;
    Ok(rows.len())
}

fn phase_loans_overdue(node: &Node, s: &mut Steps) -> Result<usize> {
    let records = timed(s, "index scan + JSON decode", || node.docs().records(RecordKind::Loan))?;
    let today = tessera_records::model::format_date(chrono::Local::now().date_naive());
    let mut rows = timed(s, "filter + rows (device per row)", || {
        let mut rows = Vec::new();
        for (id, r) in records {
            let Record::Loan(l) = r else { continue };
            let overdue = l.is_open() && l.expected_return < today;
            if !overdue {
                continue;
            }
            let device = match node.docs().record(&l.device.0)? {
                Some(Record::Device(d)) => d.asset_tag,
                _ => l.device.short(),
            };
            rows.push(vec![
                short_id(&id),
                device,
                l.attendee.short(),
                l.start,
                l.expected_return,
                "OVERDUE".into(),
            ]);
        }
        Ok(rows)
    })?;
    timed(s, "sort", || {
        rows.sort_by(|a, b| a[3].cmp(&b[3]));
        Ok(())
    })?;
    let header = ["id", "device", "attendee", "start", "due", "state"];
    timed(s, "render table", || Ok(black_box(ui::table(&header, &rows)).len()))?;
    Ok(rows.len())
}

fn phase_sessions_month(node: &Node, s: &mut Steps) -> Result<usize> {
    timed(s, "index scan, no decode", || scan_raw(node, RecordKind::Session))?;
    let records = timed(s, "index scan + JSON decode", || node.docs().records(RecordKind::Session))?;
    let (from, to) = SESSION_MONTH;
    let mut rows = timed(s, "filter + rows (site name per row)", || {
        let mut rows = Vec::new();
        for (id, r) in records {
            let Record::Session(x) = r else { continue };
            let day = x.start.get(..10).unwrap_or("").to_string();
            if day.as_str() < from || day.as_str() > to {
                continue;
            }
            let present = x.participants.iter().filter(|p| p.present).count() as u32 + x.headcount;
            rows.push(vec![
                short_id(&id),
                x.start.clone(),
                x.kind.label(Lang::En).to_string(),
                x.topic.clone(),
                present.to_string(),
                site_name(node, &x.site),
            ]);
        }
        Ok(rows)
    })?;
    timed(s, "sort", || {
        rows.sort_by(|a, b| a[1].cmp(&b[1]));
        Ok(())
    })?;
    let header = ["id", "start", "kind", "topic", "people", "site"];
    timed(s, "render table", || Ok(black_box(ui::table(&header, &rows)).len()))?;
    Ok(rows.len())
}

fn phase_report(node: &Node, s: &mut Steps, group_by: GroupBy) -> Result<usize> {
    let records = timed(s, "index scan + JSON decode, every kind", || node.docs().all_records())?;
    let query = ReportQuery {
        from: None,
        to: None,
        group_by,
        today: chrono::Local::now().date_naive(),
        partner: None,
    };
    let report = timed(s, "report::report", || Ok(report::report(&records, &query)))?;
    timed(s, "render table", || Ok(black_box(report.to_table(Lang::En)).len()))?;
    Ok(report.rows.len())
}

fn phase_conflicts(node: &Node, s: &mut Steps) -> Result<usize> {
    let records = timed(s, "index scan + JSON decode, every kind", || node.docs().all_records())?;
    let found = timed(s, "conflicts::detect", || Ok(conflicts::detect(&records)))?;
    Ok(found.len())
}

/// Prototypes of the fixes proposed in `docs/benchmarks.md`, timed in the same run as
/// the steps they would replace (not part of any command's total).
fn proposals(node: &Node, key: &str, s: &mut Steps) -> Result<()> {
    match key {
        "status" => {
            timed(s, "count index rows, no JSON decode", || {
                let tree = node.store().derived_tree("docs")?;
                Ok(LIST_KINDS.iter().map(|k| tree.scan_prefix([b'r', k.byte()]).count()).sum::<usize>())
            })?;
        }
        "attendee_list" => {
            let records = node.docs().records(RecordKind::Attendee)?;
            let mut rows = timed(s, "rows with site names from a map built once", || {
                let sites: HashMap<DocId, String> = node
                    .docs()
                    .records(RecordKind::Site)?
                    .into_iter()
                    .filter_map(|(id, r)| match r {
                        Record::Site(site) => Some((id, site.name)),
                        _ => None,
                    })
                    .collect();
                let mut rows = Vec::with_capacity(records.len());
                for (id, r) in records {
                    let Record::Attendee(a) = r else { continue };
                    let site = sites.get(&a.site.0).cloned().unwrap_or_else(|| a.site.short());
                    rows.push(vec![
                        short_id(&id),
                        a.family_name,
                        a.given_name,
                        a.birth_year.to_string(),
                        a.role.label(Lang::En).to_string(),
                        site,
                    ]);
                }
                Ok(rows)
            })?;
            timed(s, "sort_by_cached_key on folded names", || {
                rows.sort_by_cached_key(|r| (fold(&r[1]), fold(&r[2])));
                Ok(())
            })?;
        }
        "session_month" => {
            // What a date index would leave: decode only the month's sessions. Emulated
            // by finding the start date in the raw JSON before decoding.
            timed(s, "decode only the month's rows (date index)", || {
                let tree = node.store().derived_tree("docs")?;
                let (from, to) = SESSION_MONTH;
                let mut decoded = 0usize;
                for row in tree.scan_prefix([b'r', RecordKind::Session.byte()]) {
                    let (_, v) = row?;
                    let day = find_after(&v, b"\"start\":\"").and_then(|at| v.get(at..at + 10));
                    if day.is_some_and(|d| d >= from.as_bytes() && d <= to.as_bytes()) {
                        black_box(serde_json::from_slice::<Record>(&v)?);
                        decoded += 1;
                    }
                }
                Ok(decoded)
            })?;
        }
        _ => {}
    }
    Ok(())
}

/// The index just after the first occurrence of `needle` in `hay`.
fn find_after(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle).map(|i| i + needle.len())
}

/// The commands whose steps are re-run in process (keys as in [`cli_commands`]).
const PHASE_COMMANDS: [&str; 8] = [
    "status",
    "attendee_list",
    "attendee_search",
    "loan_overdue",
    "session_month",
    "report_site",
    "report_month",
    "conflicts_list",
];

fn phases(cfg: &Config, w: &Workload, m: &mut Metrics) -> Result<()> {
    let dir = &w.node_dir;
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut push = |key: String, d: Duration| samples.entry(key).or_default().push(ms(d));
    let store_dir = dir.join("store");
    for _ in 0..cfg.phase_runs {
        // The parts of `Store::open`, warm, then cold (the store's files evicted from
        // the page cache first).
        for cold in [false, true] {
            let tag = if cold { "cold" } else { "warm" };
            if cold {
                evict(&[dir.as_path()])?;
            }
            let t = Instant::now();
            let (log, _) =
                SegmentLog::open(&store_dir.join("log"), SegmentLimits::default(), LogId([0; 16]))?;
            push(format!("phase.open.{tag}.segment_log_open"), t.elapsed());
            drop(log);
            if cold {
                evict(&[dir.as_path()])?;
            }
            let t = Instant::now();
            let db =
                sled::Config::new().path(store_dir.join("derived")).flush_every_ms(Some(2_000)).open()?;
            push(format!("phase.open.{tag}.sled_open"), t.elapsed());
            let t = Instant::now();
            drop(db);
            push(format!("phase.open.{tag}.sled_close"), t.elapsed());
            if cold {
                evict(&[dir.as_path()])?;
            }
            let t = Instant::now();
            let (store, _) = Store::open(&store_dir, None)?;
            push(format!("phase.open.{tag}.store_open"), t.elapsed());
            let t = Instant::now();
            drop(store);
            push(format!("phase.open.{tag}.store_close"), t.elapsed());
            if cold {
                evict(&[dir.as_path()])?;
            }
            let t = Instant::now();
            let node = Node::open(dir)?;
            push(format!("phase.open.{tag}.node_open"), t.elapsed());
            let t = Instant::now();
            let records = node.docs().all_records()?;
            push(format!("phase.open.{tag}.all_records_after_open"), t.elapsed());
            black_box(records);
            let t = Instant::now();
            drop(node);
            push(format!("phase.open.{tag}.node_close"), t.elapsed());
        }
        let node = Node::open(dir)?;
        let t = Instant::now();
        let epoch = node.docs().state_digest()?;
        black_box(epoch);
        push("phase.open.digest_probe".into(), t.elapsed());
        for key in PHASE_COMMANDS {
            let mut steps = Steps::new();
            let t = Instant::now();
            let rows = match key {
                "status" => phase_status(&node, &mut steps)?,
                "attendee_list" => phase_attendees(&node, &mut steps, None)?,
                "attendee_search" => phase_attendees(&node, &mut steps, Some(SEARCH_NAME))?,
                "loan_overdue" => phase_loans_overdue(&node, &mut steps)?,
                "session_month" => phase_sessions_month(&node, &mut steps)?,
                "report_site" => phase_report(&node, &mut steps, GroupBy::Site)?,
                "report_month" => phase_report(&node, &mut steps, GroupBy::Month)?,
                _ => phase_conflicts(&node, &mut steps)?,
            };
            push(format!("phase.{key}.total_after_open"), t.elapsed());
            m.insert(format!("phase.{key}.rows"), rows as f64);
            for (i, (name, d)) in steps.into_iter().enumerate() {
                push(format!("phase.{key}.{i}.{name}"), d);
            }
            let mut proposed = Steps::new();
            proposals(&node, key, &mut proposed)?;
            for (i, (name, d)) in proposed.into_iter().enumerate() {
                push(format!("phase.{key}.proposed{i}.{name}"), d);
            }
        }
        drop(node);
    }
    for (k, v) in samples {
        put(m, format!("{k}_ms"), median_of(&v));
    }
    // Sizes of the record index (JSON rows) per kind.
    let node = Node::open(dir)?;
    for kind in LIST_KINDS {
        let (bytes, rows) = scan_raw(&node, kind)?;
        put(m, format!("phase.index.{}.bytes", kind.as_str()), bytes as f64);
        put(m, format!("phase.index.{}.rows", kind.as_str()), rows as f64);
    }
    let tree = node.store().derived_tree("docs")?;
    let mut doc_bytes = 0u64;
    for row in tree.scan_prefix([b'd']) {
        let (k, v) = row?;
        doc_bytes += (k.len() + v.len()) as u64;
    }
    put(m, "phase.index.automerge_docs.bytes", doc_bytes as f64);
    Ok(())
}

// ---------------------------------------------------------------------------------
// open: Node::open up to date, after a materializer rebuild, after a full rebuild

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
            fs::set_permissions(&target, entry.metadata()?.permissions())?;
        }
    }
    Ok(())
}

fn open_and_rebuild(cfg: &Config, base: &Path, w: &Workload, m: &mut Metrics) -> Result<()> {
    let scratch = tempfile::Builder::new().prefix("node-open-").tempdir_in(base)?;
    let dir = scratch.path().join("node");
    copy_dir(&w.node_dir, &dir)?;
    drop(Node::open(&dir)?);
    let mut warm = Vec::new();
    for _ in 0..cfg.cli_runs {
        let t = Instant::now();
        let node = Node::open(&dir)?;
        warm.push(ms(t.elapsed()));
        drop(node);
    }
    put(m, "open.node_open_warm_ms", median_of(&warm));
    let changes = w.counts.total_changes() as f64;
    let (mut docs, mut full) = (Vec::new(), Vec::new());
    for run in 0..cfg.heavy_runs {
        {
            let (store, _) = Store::open(&dir.join("store"), None)?;
            store.derived_tree("docs")?.clear()?;
        }
        let t = Instant::now();
        let node = Node::open(&dir)?;
        docs.push(t.elapsed().as_secs_f64());
        let attendees = node.docs().records(RecordKind::Attendee)?.len() as u64;
        ensure!(attendees == w.counts.records[1], "rebuilt {attendees} attendees");
        drop(node);
        fs::remove_dir_all(dir.join("store").join("derived"))?;
        let t = Instant::now();
        let node = Node::open(&dir)?;
        full.push(t.elapsed().as_secs_f64());
        drop(node);
        eprintln!("  open run {}/{} done", run + 1, cfg.heavy_runs);
    }
    put(m, "open.materializer_rebuild_s", median_of(&docs));
    put(m, "open.materializer_rebuild_changes_per_s", changes / median_of(&docs));
    put(m, "open.full_rebuild_s", median_of(&full));
    put(m, "open.full_rebuild_changes_per_s", changes / median_of(&full));
    Ok(())
}

// ---------------------------------------------------------------------------------
// ingest: the whole workload into an empty node

fn ingest(cfg: &Config, base: &Path, w: &Workload, m: &mut Metrics) -> Result<()> {
    let (entries, network) = {
        let (store, _) = Store::open(&w.node_dir.join("store"), None)?;
        let entries = store.log_entries().collect::<Result<Vec<_>, _>>()?;
        (entries, store.network())
    };
    let envelopes = entries.iter().filter(|e| matches!(e, LogEntry::Envelope(_))).count();
    let changes: usize =
        entries.iter().map(|e| if let LogEntry::Envelope(env) = e { env.changes().len() } else { 0 }).sum();
    // The same changes grouped by document, for automerge alone.
    let mut by_doc: BTreeMap<DocId, Vec<&[u8]>> = BTreeMap::new();
    let mut actor = None;
    for entry in &entries {
        if let LogEntry::Envelope(env) = entry {
            actor.get_or_insert(env.author());
            for (doc, body) in env.present_changes() {
                by_doc.entry(doc).or_default().push(body);
            }
        }
    }
    let actor = actor_for(&actor.context("the workload holds no envelope")?);
    let (mut node_s, mut store_s) = (Vec::new(), Vec::new());
    let (mut raw_batch_s, mut raw_single_s, mut apply_s, mut apply_all_s) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..cfg.heavy_runs {
        // Limits, in memory, one document at a time. Raw automerge: all of a
        // document's changes in one `apply_changes`, then one call per change.
        let t = Instant::now();
        for bodies in by_doc.values() {
            let mut doc = automerge::AutoCommit::new();
            let changes =
                bodies.iter().map(|b| automerge::Change::try_from(*b)).collect::<Result<Vec<_>, _>>()?;
            doc.apply_changes(changes)?;
            black_box(&doc);
        }
        raw_batch_s.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for bodies in by_doc.values() {
            let mut doc = automerge::AutoCommit::new();
            for body in bodies {
                doc.apply_changes([automerge::Change::try_from(*body)?])?;
            }
            black_box(&doc);
        }
        raw_single_s.push(t.elapsed().as_secs_f64());
        apply_s.push(replay_documents(&by_doc, &actor, false)?.as_secs_f64());
        apply_all_s.push(replay_documents(&by_doc, &actor, true)?.as_secs_f64());

        let scratch = tempfile::Builder::new().prefix("node-ingest-").tempdir_in(base)?;
        let dir = scratch.path().join("node");
        identity::init_joining(&dir, "Nodo vuoto", DeviceRole::Hub, network)?;
        let mut node = Node::open(&dir)?;
        let t = Instant::now();
        let (report, catch_up) = node.ingest(&entries, Policy::AllOrNothing)?;
        node_s.push(t.elapsed().as_secs_f64());
        ensure!(report.appended.len() == envelopes, "ingested {} of {envelopes}", report.appended.len());
        ensure!(
            catch_up.changes as usize == changes,
            "materialized {} of {changes} changes",
            catch_up.changes
        );
        drop(node);
        drop(scratch);

        let scratch = tempfile::Builder::new().prefix("store-ingest-").tempdir_in(base)?;
        let (mut store, _) = Store::open(scratch.path(), Some(network))?;
        let t = Instant::now();
        for chunk in entries.chunks(INGEST_ENTRIES_MAX) {
            store.ingest(chunk, Policy::AllOrNothing)?;
        }
        store.flush_derived()?;
        store_s.push(t.elapsed().as_secs_f64());
        drop(store);
        eprintln!("  ingest run {}/{} done", run + 1, cfg.heavy_runs);
    }
    put(m, "ingest.entries", entries.len() as f64);
    put(m, "ingest.envelopes", envelopes as f64);
    put(m, "ingest.changes", changes as f64);
    put(m, "ingest.node_s", median_of(&node_s));
    put(m, "ingest.node_changes_per_s", changes as f64 / median_of(&node_s));
    put(m, "ingest.node_envelopes_per_s", envelopes as f64 / median_of(&node_s));
    put(m, "ingest.store_s", median_of(&store_s));
    put(m, "ingest.store_envelopes_per_s", envelopes as f64 / median_of(&store_s));
    put(m, "ingest.materialize_share", 1.0 - median_of(&store_s) / median_of(&node_s));
    put(m, "ingest.automerge_raw_batch_s", median_of(&raw_batch_s));
    put(m, "ingest.automerge_raw_batch_changes_per_s", changes as f64 / median_of(&raw_batch_s));
    put(m, "ingest.automerge_raw_single_s", median_of(&raw_single_s));
    put(m, "ingest.automerge_raw_single_changes_per_s", changes as f64 / median_of(&raw_single_s));
    put(m, "ingest.automerge_apply_s", median_of(&apply_s));
    put(m, "ingest.automerge_apply_changes_per_s", changes as f64 / median_of(&apply_s));
    put(m, "ingest.automerge_apply_save_hydrate_json_s", median_of(&apply_all_s));
    put(m, "ingest.ratio.node_vs_apply_save_hydrate", median_of(&apply_all_s) / median_of(&node_s));
    Ok(())
}

/// Tessera's `RecordDoc::apply_change` of each document's changes, one change at a
/// time, as the materializer calls it, in memory; with `finish`, also what the
/// materializer makes of each document once: its saved bytes, the record (autosurgeon
/// hydrate) and the record's JSON. Returns the time taken.
pub(crate) fn replay_documents(
    by_doc: &BTreeMap<DocId, Vec<&[u8]>>,
    actor: &automerge::ActorId,
    finish: bool,
) -> Result<Duration> {
    let t = Instant::now();
    for bodies in by_doc.values() {
        let mut doc = RecordDoc::empty(actor.clone());
        for body in bodies {
            doc.apply_change(body)?;
        }
        if finish {
            black_box(doc.save());
            black_box(serde_json::to_vec(&doc.hydrate()?)?);
        }
        black_box(&doc);
    }
    Ok(t.elapsed())
}

// ---------------------------------------------------------------------------------
// report

fn g(m: &Metrics, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(f64::NAN)
}

pub fn print(cfg: &Config, w: Option<&Workload>, m: &Metrics) {
    if let Some(w) = w {
        let c = &w.counts;
        println!();
        println!(
            "== Workload seed {} scale {}: {} nodes ({} hubs, {} desks), {} partners ==",
            w.spec.seed, w.spec.scale, c.nodes, c.hubs, c.desks, w.spec.partners
        );
        let kinds = ["site", "attendee", "device", "loan", "session"];
        println!("{:<10} {:>10} {:>10}", "kind", "records", "changes");
        for (k, name) in kinds.iter().enumerate() {
            println!("{name:<10} {:>10} {:>10}", c.records[k], c.changes[k]);
        }
        println!(
            "{:<10} {:>10} {:>10}   ({} envelopes, {:.1} MB of envelopes, log {:.1} MB, generated in {:.0} s)",
            "total",
            c.records.iter().sum::<u64>(),
            c.total_changes(),
            c.envelopes,
            c.envelope_bytes as f64 / 1e6,
            w.log_bytes as f64 / 1e6,
            w.generate_secs
        );
    }
    if cfg.wants("register") {
        println!();
        println!(
            "== Register {} attendees through Node::transact (one durable envelope each), median of {} run(s) ==",
            cfg.register, cfg.register_runs
        );
        println!("{:<44} {:>9} {:>9} {:>9} {:>9}", "series", "p50 µs", "p99 µs", "per s", "×raw p50");
        let row = |label: &str, key: &str, ratio: f64| {
            println!(
                "{label:<44} {:>9.0} {:>9.0} {:>9.0} {:>8.2}×",
                g(m, &format!("register.{key}.p50_us")),
                g(m, &format!("register.{key}.p99_us")),
                g(m, &format!("register.{key}.per_s")),
                ratio
            );
        };
        row("raw pwrite + fdatasync (same size)", "raw", 1.0);
        row(
            "Store::append_local (same change)",
            "append_local",
            g(m, "register.ratio.append_local_vs_raw.p50"),
        );
        row("Node::transact (attendee add)", "transact", g(m, "register.ratio.transact_vs_raw.p50"));
        println!(
            "transact p50: first 10% {:.0} µs, last 10% {:.0} µs; transact − append_local p50 = {:.0} µs \
             (of which RecordDoc::create ≈ {:.0} µs); frame {} B",
            g(m, "register.transact.first10pct_p50_us"),
            g(m, "register.transact.last10pct_p50_us"),
            g(m, "register.transact_minus_append_local.p50_us"),
            g(m, "register.automerge_create.mean_us"),
            g(m, "register.frame_bytes")
        );
    }
    if cfg.wants("cli") {
        println!();
        println!(
            "== CLI: `tessera --data DIR ...`, spawn to exit, median of {} warm / {} cold runs (target < {COMMAND_TARGET_MS} ms) ==",
            cfg.cli_runs, cfg.cold_runs
        );
        println!(
            "{:<52} {:>9} {:>9} {:>9} {:>9} {:>8}  target",
            "command", "warm ms", "min ms", "cold ms", "first ms", "lines"
        );
        for (key, args) in cli_commands() {
            let warm = g(m, &format!("cli.{key}.warm_ms"));
            let verdict = if key == "version" {
                String::new()
            } else if warm < COMMAND_TARGET_MS {
                "met".into()
            } else {
                format!("MISSED ({:.1}×)", warm / COMMAND_TARGET_MS)
            };
            println!(
                "{:<52} {warm:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>8.0}  {verdict}",
                format!("tessera {}", args.join(" ")),
                g(m, &format!("cli.{key}.warm_min_ms")),
                g(m, &format!("cli.{key}.cold_ms")),
                g(m, &format!("cli.{key}.first_ms")),
                g(m, &format!("cli.{key}.stdout_lines")),
            );
        }
        println!(
            "store {:.1} MB (log {:.1} MB, derived sled {:.1} MB)",
            g(m, "cli.store_bytes") / 1e6,
            g(m, "cli.log_bytes") / 1e6,
            g(m, "cli.derived_bytes") / 1e6
        );
    }
    if cfg.wants("phases") {
        println!();
        println!("== Where a command's time goes (in process, median of {} runs, ms) ==", cfg.phase_runs);
        for tag in ["warm", "cold"] {
            let p = |k: &str| g(m, &format!("phase.open.{tag}.{k}_ms"));
            println!(
                "{tag:>4} page cache: SegmentLog::open {:.0} ms, sled open {:.0} ms (close {:.0}), Store::open {:.0} ms (close {:.0}), \
                 Node::open {:.0} ms (close {:.0}), then all records {:.0} ms",
                p("segment_log_open"),
                p("sled_open"),
                p("sled_close"),
                p("store_open"),
                p("store_close"),
                p("node_open"),
                p("node_close"),
                p("all_records_after_open"),
            );
        }
        println!(
            "one full scan of the record index (state digest): {:.0} ms",
            g(m, "phase.open.digest_probe_ms")
        );
        let mb = |k: &str| g(m, k) / 1e6;
        println!(
            "record index (JSON rows): attendee {:.1} MB, session {:.1} MB, all kinds {:.1} MB; automerge documents {:.1} MB",
            mb("phase.index.attendee.bytes"),
            mb("phase.index.session.bytes"),
            LIST_KINDS.iter().map(|k| g(m, &format!("phase.index.{}.bytes", k.as_str()))).sum::<f64>() / 1e6,
            mb("phase.index.automerge_docs.bytes"),
        );
        for key in PHASE_COMMANDS {
            let prefix = format!("phase.{key}.");
            println!(
                "{key} ({} rows): {:.0} ms after open",
                g(m, &format!("phase.{key}.rows")),
                g(m, &format!("phase.{key}.total_after_open_ms"))
            );
            for (k, v) in m.range(prefix.clone()..) {
                if !k.starts_with(&prefix) {
                    break;
                }
                let rest = &k[prefix.len()..];
                if rest.starts_with(|c: char| c.is_ascii_digit()) {
                    let name = rest.split_once('.').map_or(rest, |(_, n)| n).trim_end_matches("_ms");
                    println!("    {name:<48} {v:>8.1}");
                }
                if rest.starts_with("proposed") {
                    let name = rest.split_once('.').map_or(rest, |(_, n)| n).trim_end_matches("_ms");
                    println!("    proposed: {name:<38} {v:>8.1}");
                }
            }
        }
    }
    if cfg.wants("open") {
        println!();
        println!("== Node::open on the reference store (median of {} heavy runs) ==", cfg.heavy_runs);
        println!("up to date:                      {:>8.0} ms", g(m, "open.node_open_warm_ms"));
        println!(
            "materializer rebuilt (docs tree dropped): {:>7.1} s  ({:.0} changes/s)",
            g(m, "open.materializer_rebuild_s"),
            g(m, "open.materializer_rebuild_changes_per_s")
        );
        println!(
            "full rebuild (derived/ dropped):           {:>7.1} s  ({:.0} changes/s)",
            g(m, "open.full_rebuild_s"),
            g(m, "open.full_rebuild_changes_per_s")
        );
    }
    if cfg.wants("ingest") {
        println!();
        println!(
            "== Ingest of the whole workload ({:.0} envelopes, {:.0} changes) into an empty node, median of {} runs ==",
            g(m, "ingest.envelopes"),
            g(m, "ingest.changes"),
            cfg.heavy_runs
        );
        println!(
            "Node::ingest (verify, log, fsync, rows, materialize): {:>7.1} s  {:>8.0} changes/s  {:>8.0} envelopes/s",
            g(m, "ingest.node_s"),
            g(m, "ingest.node_changes_per_s"),
            g(m, "ingest.node_envelopes_per_s")
        );
        println!(
            "Store::ingest alone (no materialization):            {:>7.1} s  {:>8} {:>8.0} envelopes/s; materialization = {:.0}% of the node's time",
            g(m, "ingest.store_s"),
            "",
            g(m, "ingest.store_envelopes_per_s"),
            g(m, "ingest.materialize_share") * 100.0
        );
        println!(
            "limits, in memory, one document at a time: raw automerge apply_changes, all of a document's changes at once \
             {:.1} s ({:.0} changes/s); one call per change {:.1} s ({:.0} changes/s)",
            g(m, "ingest.automerge_raw_batch_s"),
            g(m, "ingest.automerge_raw_batch_changes_per_s"),
            g(m, "ingest.automerge_raw_single_s"),
            g(m, "ingest.automerge_raw_single_changes_per_s"),
        );
        println!(
            "RecordDoc::apply_change per change {:.1} s ({:.0} changes/s); \
             + save + hydrate + JSON once per document {:.1} s; Node::ingest runs at {:.0}% of the latter",
            g(m, "ingest.automerge_apply_s"),
            g(m, "ingest.automerge_apply_changes_per_s"),
            g(m, "ingest.automerge_apply_save_hydrate_json_s"),
            g(m, "ingest.ratio.node_vs_apply_save_hydrate") * 100.0
        );
    }
    if cfg.wants("daemon") {
        crate::daemon_bench::print(cfg, m);
    }
    if cfg.wants("page") {
        crate::page_bench::print(m);
    }
    if cfg.wants("erase") {
        crate::erase_bench::print(cfg, m);
    }
}

pub fn to_json(cfg: &Config, w: Option<&Workload>, m: &Metrics) -> serde_json::Value {
    json!({
        "config": format!("{cfg:?}"),
        "workload": w.map(Workload::to_json),
        "median": m,
    })
}
