//! `tessera-bench node --sections page`: the operator's page on the reference
//! workload, as a browser on the hub's computer asks for it: each page's server time
//! (request sent to last byte received, over loopback HTTP/1.1 to a running
//! `tessera serve`), p50 and p95 over the runs, warm. Search as you type is the
//! people list's partial answer for a name. Targets (issue 15): every page ≤ 100 ms
//! p95, search ≤ 50 ms.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::daemon_bench::Serving;
use crate::node_bench::{ms, Config, Metrics};
use crate::stats::{percentile, put};
use crate::workload::{Workload, SEARCH_NAME, SESSION_MONTH};

const PAGE_TARGET_MS: f64 = 100.0;
const SEARCH_TARGET_MS: f64 = 50.0;
/// At least this many timed runs per page, for a p95.
const RUNS_MIN: usize = 20;
/// Longest answer read (a page of the reference workload is a few MB at most).
const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// (key, path): the pages an operator opens in a day.
fn pages(person: &str) -> Vec<(&'static str, String)> {
    vec![
        ("home", "/".into()),
        ("people", "/people".into()),
        ("search", format!("/people?q={SEARCH_NAME}&partial=1")),
        ("person", format!("/people/{person}")),
        ("devices", "/devices".into()),
        ("loans", "/loans".into()),
        ("sessions_week", format!("/sessions?week={}", SESSION_MONTH.0)),
        ("conflicts", "/conflicts".into()),
        ("reports", "/reports".into()),
        ("usb", "/usb".into()),
    ]
}

/// One GET: the time to the answer's last byte, and its body.
fn get(addr: &str, path: &str) -> Result<(Duration, String)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect to the page at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(ANSWER_BYTES_MAX).read_to_end(&mut answer)?;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("GET {path}: HTTP {status}");
    }
    Ok((took, text))
}

pub fn run(cfg: &Config, w: &Workload, m: &mut Metrics) -> Result<()> {
    let (serving, addr) = Serving::start_with_page(&cfg.tessera, &w.node_dir)?;
    // A person to open: the first one the search finds.
    let (_, found) = get(&addr, &format!("/people?q={SEARCH_NAME}&partial=1"))?;
    let person = found
        .split("href=\"/people/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the search found nobody to open")?
        .to_string();
    let pages = pages(&person);
    for (_, path) in &pages {
        get(&addr, path)?; // untimed: the first answer fills the daemon's caches
    }
    let runs = cfg.cli_runs.max(RUNS_MIN);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); pages.len()];
    for round in 0..runs {
        for k in 0..pages.len() {
            let i = (k + round) % pages.len();
            samples[i].push(ms(get(&addr, &pages[i].1)?.0));
        }
    }
    for ((key, _), mut values) in pages.iter().zip(samples) {
        values.sort_by(f64::total_cmp);
        put(m, format!("page.{key}.p50_ms"), percentile(&values, 50.0).unwrap_or(f64::NAN));
        put(m, format!("page.{key}.p95_ms"), percentile(&values, 95.0).unwrap_or(f64::NAN));
    }
    put(m, "page.runs", runs as f64);
    put(m, "page.rss_mb", serving.rss_mb()?);
    Ok(())
}

pub fn print(m: &Metrics) {
    let g = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    println!();
    println!(
        "== The operator's page: server time per page over loopback, {:.0} warm runs (targets: p95 ≤ {PAGE_TARGET_MS} ms, search ≤ {SEARCH_TARGET_MS} ms) ==",
        g("page.runs")
    );
    println!("{:<40} {:>8} {:>8}  target", "page", "p50 ms", "p95 ms");
    for (key, path) in pages("ID") {
        let p95 = g(&format!("page.{key}.p95_ms"));
        let target = if key == "search" { SEARCH_TARGET_MS } else { PAGE_TARGET_MS };
        println!(
            "{:<40} {:>8.1} {:>8.1}  {}",
            path,
            g(&format!("page.{key}.p50_ms")),
            p95,
            if p95 <= target { "met" } else { "MISSED" }
        );
    }
    println!("daemon RSS after the pages: {:.0} MB", g("page.rss_mb"));
}
