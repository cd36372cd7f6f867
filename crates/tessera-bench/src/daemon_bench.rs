//! `tessera-bench node --sections daemon`: the same commands as the `cli` section,
//! typed beside a running `tessera serve` (sent to it over its control socket) and
//! without it (the command opens the store itself), in the same run; and the
//! daemon's resident memory on the reference workload once it has answered them all.
//! The targets: through the daemon within 1.2× of direct; RSS ≤ 150 MB.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::node_bench::{cli_commands, median_of, ms, run_cli, Config, Metrics};
use crate::stats::put;
use crate::workload::Workload;

/// The ratio target: a command through the daemon vs. run directly.
const RATIO_TARGET: f64 = 1.2;
const RSS_TARGET_MB: f64 = 150.0;

/// A `tessera serve` on the workload's node, stopped with SIGTERM when dropped.
pub(crate) struct Serving(Child);

impl Serving {
    fn start(bin: &Path, dir: &Path) -> Result<Serving> {
        Ok(Serving::start_with(bin, dir, false)?.0)
    }

    /// With the operator's page on a free loopback port: also its address
    /// (`127.0.0.1:PORT`).
    pub(crate) fn start_with_page(bin: &Path, dir: &Path) -> Result<(Serving, String)> {
        let (serving, page) = Serving::start_with(bin, dir, true)?;
        Ok((serving, page.context("serve printed no page address")?))
    }

    fn start_with(bin: &Path, dir: &Path, page: bool) -> Result<(Serving, Option<String>)> {
        let ui: &[&str] = if page { &["--ui", "127.0.0.1:0"] } else { &["--no-ui"] };
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(ui)
            .env("LANG", "C")
            .env_remove("TESSERA_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start tessera serve")?;
        let stdout = child.stdout.take().context("serve's stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.is_empty() {
            let status = child.wait()?;
            bail!("tessera serve stopped before listening ({status})");
        }
        // The next line names the page: "... http://127.0.0.1:PORT".
        let mut address = None;
        if page {
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            address =
                line.split_whitespace().last().and_then(|w| w.strip_prefix("http://")).map(str::to_string);
        }
        let socket = dir.join("tessera.sock");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() {
            if Instant::now() > deadline {
                bail!("no control socket after 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The rest of what it prints goes nowhere; it must not block on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Ok((Serving(child), address))
    }

    pub(crate) fn rss_mb(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")?;
        Ok(kb / 1024.0)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(cfg: &Config, w: &Workload, m: &mut Metrics) -> Result<()> {
    let bin = &cfg.tessera;
    let dir = &w.node_dir;
    let commands: Vec<_> = cli_commands().into_iter().filter(|(key, _)| *key != "version").collect();
    let timed = |tag: &str, m: &mut Metrics| -> Result<()> {
        // One untimed run each (page cache, and the daemon's first answer).
        for (_, args) in &commands {
            run_cli(bin, dir, args)?;
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); commands.len()];
        for round in 0..cfg.cli_runs {
            for k in 0..commands.len() {
                let i = (k + round) % commands.len();
                samples[i].push(ms(run_cli(bin, dir, &commands[i].1)?.wall));
            }
        }
        for ((key, _), values) in commands.iter().zip(samples) {
            put(m, format!("daemon.{key}.{tag}_ms"), median_of(&values));
        }
        Ok(())
    };
    timed("direct", m)?;
    let serving = Serving::start(bin, dir)?;
    let started_rss = serving.rss_mb()?;
    timed("via", m)?;
    put(m, "daemon.rss_started_mb", started_rss);
    put(m, "daemon.rss_mb", serving.rss_mb()?);
    drop(serving);
    for (key, _) in &commands {
        let via = m[&format!("daemon.{key}.via_ms")];
        let direct = m[&format!("daemon.{key}.direct_ms")];
        put(m, format!("daemon.{key}.ratio"), via / direct);
    }
    Ok(())
}

pub fn print(cfg: &Config, m: &Metrics) {
    let g = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    println!();
    println!(
        "== Beside a running daemon: the same command through its socket vs. opening the store, median of {} warm runs (target ≤ {RATIO_TARGET}×) ==",
        cfg.cli_runs
    );
    println!("{:<52} {:>10} {:>10} {:>8}  target", "command", "direct ms", "daemon ms", "ratio");
    for (key, args) in cli_commands().into_iter().filter(|(key, _)| *key != "version") {
        let ratio = g(&format!("daemon.{key}.ratio"));
        println!(
            "{:<52} {:>10.0} {:>10.0} {:>7.2}×  {}",
            format!("tessera {}", args.join(" ")),
            g(&format!("daemon.{key}.direct_ms")),
            g(&format!("daemon.{key}.via_ms")),
            ratio,
            if ratio <= RATIO_TARGET { "met" } else { "MISSED" }
        );
    }
    let rss = g("daemon.rss_mb");
    println!(
        "daemon RSS: {:.0} MB after start, {rss:.0} MB after answering every command (target ≤ {RSS_TARGET_MB} MB: {})",
        g("daemon.rss_started_mb"),
        if rss <= RSS_TARGET_MB { "met" } else { "MISSED" }
    );
}
