//! `tessera-bench compare`: Tessera and automerge-repo on the same job, in the same run
//! (issue 7, "side by side").
//!
//! The job, for each N: N small attendee records are created on one node, sent through
//! a relay on loopback, and loaded by a fresh node. Tessera: a `tessera_node::Node`
//! writes each record with `Node::transact` (one signed, fsync'd envelope each), syncs
//! to an in-process `tessera-relay` over QUIC, then a fresh node syncs from the relay
//! (storing, verifying and materializing every record). automerge-repo: the scripts
//! in `bench/automerge-repo` do the same with the same records (one document each,
//! nodefs storage, a sync server built like the official one, websockets), each peer
//! phase capped in time; a phase that hits the cap is reported as not finished.
//!
//! Wire bytes are application payloads on both sides: Tessera's frames on the session
//! stream, as sent (sync messages of 512 bytes or more DEFLATE-compressed by
//! `tessera-net`; no QUIC/TLS packet overhead), automerge-repo's websocket
//! message payloads (no websocket/TCP framing). Ratios are automerge-repo / Tessera,
//! computed within the run. The table, a CSV and a JSON line are written; PNG plots are
//! drawn from the CSV by `bench/plot/plot.sh` (matplotlib in a venv it makes).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};
use tessera_log::testkit::TestNetwork;
use tessera_log::{DeviceCertificate, DeviceKey, DeviceRole, DocId, LogEntry, PartnerKey, TrustStatement};
use tessera_net::Endpoint;
use tessera_node::{identity, Node};
use tessera_records::kind::RecordKind;
use tessera_records::model::{Record, Site};
use tessera_records::vocab::SiteKind;
use tessera_relay::Relay;
use tessera_store::Policy;
use tessera_sync::SessionConfig;

use crate::machine::Machine;
use crate::sync_bench::{connect_and_sync, fmt_int, lock, make_relay_dir, relay_args, target_dir, Leg};
use crate::workload::{self, Rng};

/// The targets at 10,000 documents: automerge-repo time / Tessera time, and
/// automerge-repo bytes / Tessera bytes, through the relay.
const TARGET_TIME_RATIO: f64 = 50.0;
const TARGET_BYTES_RATIO: f64 = 3.0;

/// Options of `tessera-bench compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Small sizes for a smoke run: N = 200, phases capped at 120 s.
    #[arg(long)]
    pub quick: bool,
    /// Numbers of documents, comma-separated (default 1000,3000,10000; 200 with --quick).
    #[arg(long, value_delimiter = ',')]
    pub n: Vec<usize>,
    /// Time cap of each peer phase, seconds (default 600; 120 with --quick).
    #[arg(long)]
    pub cap_secs: Option<u64>,
    /// Documents the automerge-repo reader asks for at once.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Seed of the records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only Tessera (no npm, no node).
    #[arg(long)]
    pub tessera_only: bool,
    /// The automerge-repo scripts (default: `bench/automerge-repo` of this workspace).
    #[arg(long)]
    pub automerge_repo_dir: Option<PathBuf>,
    /// Directory the PNG plots are written to (default `<dir>/img`; the committed ones
    /// are made with `--plots docs/img`).
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Do not draw the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Directory for the nodes, relays and results; must be on the disk being measured
    /// (not tmpfs). Default: `<target dir>/tessera-bench`.
    #[arg(long, env = "TESSERA_BENCH_DIR")]
    pub dir: Option<PathBuf>,
    /// File the JSON line of results is appended to (default `<dir>/compare.jsonl`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run even when the directory is on a memory filesystem.
    #[arg(long)]
    pub allow_tmpfs: bool,
}

/// One system's phase: seconds, wire bytes, and how many of the N got through.
#[derive(Debug, Clone, Default)]
struct Phase {
    secs: f64,
    bytes: u64,
    done: u64,
    finished: bool,
    note: String,
}

impl Phase {
    fn to_json(&self) -> Value {
        json!({ "secs": self.secs, "bytes": self.bytes, "done": self.done, "finished": self.finished,
                "note": self.note })
    }
}

/// One system at one N.
#[derive(Debug, Clone, Default)]
struct SystemRun {
    create: Phase,
    push: Phase,
    pull: Phase,
    extra: Value,
}

impl SystemRun {
    fn sync_secs(&self) -> f64 {
        self.push.secs + self.pull.secs
    }
    fn sync_bytes(&self) -> u64 {
        self.push.bytes + self.pull.bytes
    }
    fn finished(&self) -> bool {
        self.create.finished && self.push.finished && self.pull.finished
    }
    fn to_json(&self) -> Value {
        json!({ "create": self.create.to_json(), "push": self.push.to_json(), "pull": self.pull.to_json(),
                "sync_secs": self.sync_secs(), "sync_bytes": self.sync_bytes(),
                "finished": self.finished(), "extra": self.extra })
    }
}

/// The N attendee records of a run, the same for both systems.
fn records(seed: u64, n: usize, site: DocId) -> Vec<(DocId, Record)> {
    let mut rng = Rng::new(seed, "compare", n as u64);
    (0..n as u64)
        .map(|i| {
            let day = rng.range(0, workload::PERIOD_DAYS - 1);
            let a = workload::new_attendee(&mut rng, site, false, day, "Operatore Prova");
            (workload::doc_id(seed ^ 0xc0_4e, RecordKind::Attendee, i), Record::Attendee(a))
        })
        .collect()
}

/// A node in `dir` whose device is certified as a hub by partner 0 of `net`; returns
/// it with the trust entries that certify it.
fn certified_node(dir: &Path, net: &TestNetwork, site: &str) -> Result<(Node, Vec<LogEntry>)> {
    identity::init_joining(dir, site, DeviceRole::Hub, net.network)?;
    let mut node = Node::open(dir)?;
    let mut trust: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    trust.push(hub_certificate(net, 0, node.device(), site));
    node.ingest(&trust, Policy::AllOrNothing)?;
    ensure!(node.is_certified(), "the bench node is not certified");
    Ok((node, trust))
}

/// The trust entry by which partner `partner` of `net` certifies `device` as a hub.
pub(crate) fn hub_certificate(net: &TestNetwork, partner: usize, device: DeviceKey, site: &str) -> LogEntry {
    LogEntry::Trust(net.sign_as_partner(
        partner,
        TrustStatement::Device(DeviceCertificate {
            partner: PartnerKey(net.partner_keys[partner].public()),
            device,
            role: DeviceRole::Hub,
            site: site.into(),
        }),
    ))
}

fn endpoint_of(node: &Node) -> Result<Endpoint> {
    let addr: SocketAddr = "127.0.0.1:0".parse()?;
    Ok(Endpoint::bind(addr, node.net_identity()?)?)
}

/// A session leg capped at `cap`: the leg, or the phase as not finished.
async fn capped_leg(
    cap: Duration,
    f: impl std::future::Future<Output = Result<Leg>>,
) -> Result<std::result::Result<Leg, String>> {
    match tokio::time::timeout(cap, f).await {
        Ok(Ok(leg)) => Ok(Ok(leg)),
        Ok(Err(e)) => Ok(Err(format!("{e:#}"))),
        Err(_) => Ok(Err(format!("no result after {} s", cap.as_secs()))),
    }
}

/// Tessera on the job: create on a node, push to a relay, pull into a fresh node.
fn tessera_one(
    dir: &Path,
    seed: u64,
    recs: &[(DocId, Record)],
    site: (DocId, Record),
    cap: Duration,
) -> Result<SystemRun> {
    let n = recs.len() as u64;
    let net = TestNetwork::new(seed, 1, 1);
    let (mut writer, writer_trust) = certified_node(&dir.join("writer"), &net, "Polo di prova")?;
    let (reader, reader_trust) = certified_node(&dir.join("reader"), &net, "Polo nuovo")?;
    let mut trust = writer_trust;
    trust.extend(reader_trust.into_iter().skip(net.entries.len()));
    make_relay_dir(&dir.join("relay"), &net, &trust)?;
    writer.transact(&[site])?;

    let mut run = SystemRun::default();
    let t = Instant::now();
    for write in recs {
        if t.elapsed() > cap {
            run.create.note = format!("capped at {} s", cap.as_secs());
            break;
        }
        writer.transact(std::slice::from_ref(write))?.context("a registration wrote no change")?;
        run.create.done += 1;
    }
    run.create.secs = t.elapsed().as_secs_f64();
    run.create.finished = run.create.done == n;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let writer = Arc::new(Mutex::new(writer));
    let reader = Arc::new(Mutex::new(reader));
    runtime.block_on(async {
        let relay = Relay::start(&dir.join("relay"), relay_args()).await?;
        let (device, endpoint) = {
            let w = lock(&writer);
            (w.device(), endpoint_of(&w)?)
        };
        let config = SessionConfig::new(net.network, device);
        let expected = run.create.done + 1; // and the site
        match capped_leg(cap, connect_and_sync(&endpoint, relay.addr, writer.clone(), config)).await? {
            Ok(leg) => {
                run.push = Phase {
                    secs: leg.live_secs,
                    bytes: leg.wire_bytes(),
                    done: leg.stats.envelopes_sent.saturating_sub(1),
                    finished: leg.stats.envelopes_sent == expected,
                    note: format!("{} messages", leg.stats.messages_sent + leg.stats.messages_received),
                };
            }
            Err(e) => run.push = Phase { secs: cap.as_secs_f64(), note: e, ..Phase::default() },
        }
        endpoint.close();

        let (device, endpoint) = {
            let r = lock(&reader);
            (r.device(), endpoint_of(&r)?)
        };
        let config = SessionConfig::new(net.network, device);
        match capped_leg(cap, connect_and_sync(&endpoint, relay.addr, reader.clone(), config)).await? {
            Ok(leg) => {
                let attendees = lock(&reader).docs().records(RecordKind::Attendee)?.len() as u64;
                run.pull = Phase {
                    secs: leg.live_secs,
                    bytes: leg.wire_bytes(),
                    done: attendees,
                    finished: attendees == n && leg.stats.envelopes_received == expected,
                    note: format!("{} messages", leg.stats.messages_sent + leg.stats.messages_received),
                };
            }
            Err(e) => run.pull = Phase { secs: cap.as_secs_f64(), note: e, ..Phase::default() },
        }
        endpoint.close();
        relay.shutdown().await?;
        anyhow::Ok(())
    })?;
    Ok(run)
}

/// The automerge-repo scripts' directory, with `node_modules` installed by `npm ci`.
fn automerge_repo_dir(args: &CompareArgs) -> Result<PathBuf> {
    let dir = args
        .automerge_repo_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/automerge-repo"));
    ensure!(dir.join("run.mjs").is_file(), "no automerge-repo scripts in {}", dir.display());
    if !dir.join("node_modules/@automerge/automerge-repo").is_dir() {
        eprintln!("installing the automerge-repo scripts' dependencies: npm ci in {}", dir.display());
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .context("cannot run npm (is Node.js installed?)")?;
        ensure!(status.success(), "npm ci failed in {}", dir.display());
    }
    Ok(dir)
}

/// A phase from the scripts' JSON; one whose process was killed counts the whole cap.
fn phase_of(v: &Value, cap: Duration) -> Phase {
    Phase {
        secs: v["secs"].as_f64().unwrap_or(cap.as_secs_f64()),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        done: v["done"].as_u64().unwrap_or(0),
        finished: v["finished"].as_bool().unwrap_or(false),
        note: format!(
            "{} connection(s){}",
            v["connections"].as_u64().unwrap_or(0),
            v["error"].as_str().map(|e| format!("; {e}")).unwrap_or_default()
        ),
    }
}

/// automerge-repo on the job, through `node run.mjs` with the same records.
fn automerge_repo_one(
    scripts: &Path,
    dir: &Path,
    recs: &[(DocId, Record)],
    cap: Duration,
    concurrency: usize,
) -> Result<SystemRun> {
    fs::create_dir_all(dir)?;
    let file = dir.join("records.json");
    let values: Vec<Value> = recs
        .iter()
        .map(|(_, r)| match r {
            Record::Attendee(a) => serde_json::to_value(a),
            other => serde_json::to_value(other),
        })
        .collect::<Result<_, _>>()?;
    fs::write(&file, serde_json::to_vec(&values)?)?;
    let mut child = Command::new("node")
        .arg(scripts.join("run.mjs"))
        .arg("--records")
        .arg(&file)
        .arg("--dir")
        .arg(dir)
        .args(["--cap-secs", &cap.as_secs().to_string(), "--concurrency", &concurrency.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run node (is Node.js installed?)")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout of node"))?;
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<Value>(json)?);
        }
    }
    let status = child.wait()?;
    let v = result.ok_or_else(|| anyhow!("the automerge-repo run printed no result ({status})"))?;
    let run = SystemRun {
        create: phase_of(&v["create"], cap),
        push: Phase {
            note: format!(
                "{}{}",
                phase_of(&v["push"], cap).note,
                v["server_exit"].as_str().map(|e| format!("; {e}")).unwrap_or_default()
            ),
            ..phase_of(&v["push"], cap)
        },
        pull: if v["pull"].is_object() {
            phase_of(&v["pull"], cap)
        } else {
            Phase { note: "not run: nothing was pushed".into(), ..Phase::default() }
        },
        extra: v,
    };
    Ok(run)
}

fn status(p: &Phase, n: usize) -> String {
    if p.finished {
        format!("{:.2}", p.secs)
    } else {
        format!("did not finish ({} of {n})", p.done)
    }
}

/// automerge-repo / Tessera; "≥" when automerge-repo did not finish (its time is the
/// cap, a lower bound).
fn ratio(am: f64, t: f64, am_finished: bool) -> String {
    let r = am / t;
    if !r.is_finite() {
        "–".into()
    } else if am_finished {
        format!("{r:.1}×")
    } else {
        format!("≥ {r:.1}×")
    }
}

fn print_table(rows: &[(usize, SystemRun, Option<SystemRun>)]) {
    println!();
    println!(
        "| N | system | create s | push to relay s | fresh node pulls s | sync s (push+pull) | sync wire B |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for (n, t, am) in rows {
        for (name, r) in std::iter::once(("Tessera", t)).chain(am.iter().map(|a| ("automerge-repo", a))) {
            println!(
                "| {} | {name} | {} | {} | {} | {:.2} | {} |",
                fmt_int(*n as f64),
                status(&r.create, *n),
                status(&r.push, *n),
                status(&r.pull, *n),
                r.sync_secs(),
                fmt_int(r.sync_bytes() as f64)
            );
        }
    }
    if rows.iter().all(|(_, _, am)| am.is_none()) {
        return;
    }
    println!();
    println!("| N | time ratio (automerge-repo / Tessera) | bytes ratio | targets at 10,000: ≥ {TARGET_TIME_RATIO}× time, ≥ {TARGET_BYTES_RATIO}× bytes |");
    println!("|---:|---:|---:|---|");
    for (n, t, am) in rows {
        let Some(am) = am else { continue };
        let sync_done = am.push.finished && am.pull.finished;
        let tr = am.sync_secs() / t.sync_secs();
        let br = am.sync_bytes() as f64 / t.sync_bytes() as f64;
        let verdict = if *n == 10_000 {
            format!(
                "time {}, bytes {}",
                if tr >= TARGET_TIME_RATIO { "met" } else { "MISSED" },
                if br >= TARGET_BYTES_RATIO && sync_done {
                    "met"
                } else if sync_done {
                    "MISSED"
                } else {
                    "not comparable (automerge-repo did not finish)"
                }
            )
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {} | {verdict} |",
            fmt_int(*n as f64),
            ratio(am.sync_secs(), t.sync_secs(), sync_done),
            // Bytes of a sync that did not finish say nothing (0 when nothing moved).
            if sync_done { ratio(am.sync_bytes() as f64, t.sync_bytes() as f64, true) } else { "–".into() }
        );
    }
}

/// One CSV row per (N, system): what the plots are drawn from.
fn write_csv(path: &Path, rows: &[(usize, SystemRun, Option<SystemRun>)]) -> Result<()> {
    let mut out = String::from(
        "n,system,create_secs,push_secs,pull_secs,sync_secs,sync_bytes,push_finished,pull_finished,push_done,pull_done\n",
    );
    for (n, t, am) in rows {
        for (name, r) in std::iter::once(("tessera", t)).chain(am.iter().map(|a| ("automerge-repo", a))) {
            out.push_str(&format!(
                "{n},{name},{},{},{},{},{},{},{},{},{}\n",
                r.create.secs,
                r.push.secs,
                r.pull.secs,
                r.sync_secs(),
                r.sync_bytes(),
                r.push.finished,
                r.pull.finished,
                r.push.done,
                r.pull.done
            ));
        }
    }
    fs::write(path, out)?;
    Ok(())
}

/// Draws the PNGs from the CSV with `bench/plot/plot.sh` (matplotlib in a venv).
fn plot(csv: &Path, out: &Path) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/plot/plot.sh");
    fs::create_dir_all(out)?;
    let status = Command::new("bash")
        .arg(&script)
        .arg(csv)
        .arg(out)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    ensure!(status.success(), "{} failed", script.display());
    Ok(())
}

/// Runs the comparison.
pub fn run(args: &CompareArgs) -> Result<()> {
    let ns = if !args.n.is_empty() {
        args.n.clone()
    } else if args.quick {
        vec![200]
    } else {
        vec![1_000, 3_000, 10_000]
    };
    ensure!(ns.iter().all(|&n| n > 0), "N must be positive");
    let cap = Duration::from_secs(args.cap_secs.unwrap_or(if args.quick { 120 } else { 600 }).max(1));
    let base = args.dir.clone().unwrap_or_else(|| target_dir().join("tessera-bench"));
    fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
    let machine = Machine::probe(&base);
    if machine.fsync_is_meaningless() {
        let msg = format!("{} is on {}: set TESSERA_BENCH_DIR to a disk", base.display(), machine.fs_type);
        if !args.allow_tmpfs {
            bail!("{msg} (or pass --allow-tmpfs)");
        }
        eprintln!("WARNING: {msg}");
    }
    let scripts = if args.tessera_only { None } else { Some(automerge_repo_dir(args)?) };
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "tessera-bench compare: N = {ns:?}, each phase capped at {} s; {} cores, {}; load {}",
        cap.as_secs(),
        machine.nproc,
        machine.cpu_model,
        load_before.trim()
    );

    let work = base.join(format!("compare-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let mut rows = Vec::new();
    for &n in &ns {
        let site_id = workload::doc_id(args.seed ^ 0x5173, RecordKind::Site, 0);
        let site = Record::Site(Site {
            name: "Polo di prova".into(),
            kind: SiteKind::CommunityHub,
            partner: "Cooperativa Prova".into(),
            address: String::new(),
            opening_hours: String::new(),
        });
        let recs = records(args.seed, n, site_id);
        eprintln!("N = {n}: Tessera");
        let dir = work.join(format!("tessera-{n}"));
        let t = tessera_one(&dir, args.seed, &recs, (site_id, site), cap);
        let _ = fs::remove_dir_all(&dir);
        let t = t?;
        eprintln!(
            "  create {:.2} s, push {:.2} s, pull {:.2} s, {} B",
            t.create.secs,
            t.push.secs,
            t.pull.secs,
            t.sync_bytes()
        );
        let am = match &scripts {
            Some(scripts) => {
                eprintln!("N = {n}: automerge-repo");
                let dir = work.join(format!("automerge-repo-{n}"));
                let am = automerge_repo_one(scripts, &dir, &recs, cap, args.concurrency);
                let _ = fs::remove_dir_all(&dir);
                Some(am.unwrap_or_else(|e| {
                    eprintln!("  automerge-repo: no result: {e:#}");
                    let failed =
                        Phase { secs: cap.as_secs_f64(), note: format!("{e:#}"), ..Phase::default() };
                    SystemRun {
                        create: failed.clone(),
                        push: failed.clone(),
                        pull: failed,
                        extra: Value::Null,
                    }
                }))
            }
            None => None,
        };
        rows.push((n, t, am));
    }
    let _ = fs::remove_dir_all(&work);
    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    print_table(&rows);
    println!("\nload average before {}, after {}", load_before.trim(), load_after.trim());

    let csv = base.join("compare.csv");
    write_csv(&csv, &rows)?;
    println!("CSV written to {}", csv.display());
    if !args.no_plots {
        let out = args.plots.clone().unwrap_or_else(|| base.join("img"));
        match plot(&csv, &out) {
            Ok(()) => println!("plots written to {}", out.display()),
            Err(e) => eprintln!("WARNING: no plots: {e:#}"),
        }
    }

    let json_path = args.json.clone().unwrap_or_else(|| base.join("compare.jsonl"));
    let line = json!({
        "bench": "compare",
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "machine": {
            "nproc": machine.nproc, "cpu": machine.cpu_model, "kernel": machine.kernel,
            "fs": machine.fs_type, "device": machine.device,
            "loadavg_before": load_before.trim(), "loadavg_after": load_after.trim(),
        },
        "config": { "n": ns, "cap_secs": cap.as_secs(), "seed": args.seed, "quick": args.quick,
                    "concurrency": args.concurrency },
        "rows": rows.iter().map(|(n, t, am)| json!({
            "n": n, "tessera": t.to_json(), "automerge_repo": am.as_ref().map(SystemRun::to_json),
        })).collect::<Vec<_>>(),
    });
    crate::append_json_line(&json_path, &line)?;
    println!("results appended to {}", json_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_of_an_unfinished_run_is_a_lower_bound() {
        assert_eq!(ratio(600.0, 2.0, false), "≥ 300.0×");
        assert_eq!(ratio(10.0, 2.0, true), "5.0×");
        assert_eq!(ratio(1.0, 0.0, true), "–");
    }

    #[test]
    fn records_are_deterministic_attendees() {
        let site = workload::doc_id(1, RecordKind::Site, 0);
        let a = records(1, 5, site);
        let b = records(1, 5, site);
        assert_eq!(a.len(), 5);
        assert!(a.iter().zip(&b).all(|(x, y)| x == y));
        assert!(a.iter().all(|(_, r)| matches!(r, Record::Attendee(_))));
        let json = serde_json::to_value(match &a[0].1 {
            Record::Attendee(x) => x,
            _ => unreachable!(),
        })
        .unwrap();
        assert!(json["given_name"].is_string() && json["consent"].is_object());
    }
}
