//! Helpers shared by the end-to-end tests that run real `tessera` processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `tessera --data DATA --lang en`, with a fixed operator name and no inherited data dir.
pub fn tessera(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("--data").arg(data).arg("--lang").arg("en");
    cmd.env("TESSERA_OPERATOR", "Operatore Prova").env_remove("TESSERA_DATA");
    cmd
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let out = tessera(data).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tessera {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The last word of the line starting with `label` (a `status` or `init` field).
pub fn field(text: &str, label: &str) -> String {
    text.lines().find(|l| l.starts_with(label)).unwrap().rsplit(' ').next().unwrap().to_string()
}

/// Registers an adult attendee with family name "Prova" (synthetic) on `data`.
pub fn add_person(data: &Path, given: &str) {
    add_person_named(data, given, "Prova");
}

/// Registers an adult attendee (synthetic names) on `data`.
pub fn add_person_named(data: &Path, given: &str, family: &str) {
    ok(
        data,
        &[
            "attendee",
            "add",
            "--given",
            given,
            "--family",
            family,
            "--birth-year",
            "1980",
            "--role",
            "citizen",
            "--consent-by",
            "self",
        ],
    );
}

/// Has hub `a`'s single-machine network certify `device` through a second partner
/// (made on first use), writing the trust file to `out`.
pub fn certify(a: &Path, device: &str, site: &str, role: &str, out: &Path) {
    if !a.join("partner2").exists() {
        ok(
            a,
            &[
                "admin",
                "new-partner",
                "--network-key",
                a.join("keys/network.key").to_str().unwrap(),
                "--name",
                "Associazione Prova",
                "--out",
                a.join("partner2").to_str().unwrap(),
            ],
        );
    }
    ok(
        a,
        &[
            "admin",
            "certify-device",
            "--partner-key",
            a.join("partner2/partner.key").to_str().unwrap(),
            "--partner-trust",
            a.join("partner2/partner.trust").to_str().unwrap(),
            "--device",
            device,
            "--site",
            site,
            "--role",
            role,
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

/// Has the second partner of `a`'s network (see [`certify`]) revoke `device` after its
/// change `after`; returns the revocation's trust file (imported nowhere yet).
pub fn revoke_on(a: &Path, device: &str, after: u64, out: &Path) -> PathBuf {
    let network = field(&ok(a, &["status"]), "Network");
    ok(
        a,
        &[
            "admin",
            "revoke-device",
            "--key",
            a.join("partner2/partner.key").to_str().unwrap(),
            "--network",
            &network,
            "--device",
            device,
            "--after",
            &after.to_string(),
            "--reason",
            "portatile rubato",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    out.to_path_buf()
}

/// A hub joined to `a`'s network, certified and ready to write. The certificate is
/// imported on `a` too (as the guide says), so `a` grants the new hub its read keys
/// at its next write, sync or export.
pub fn joined_hub(a: &Path, dir: &Path, name: &str) -> PathBuf {
    let data = joined_hub_unknown_to(a, dir, name);
    ok(a, &["import", dir.join(format!("{}.trust", name.replace(' ', "_"))).to_str().unwrap()]);
    data
}

/// A hub of `a`'s own organisation (certified with `a`'s partner key), known to `a`:
/// it reads the personal details of the attendees `a` registers, and `a` its.
pub fn joined_hub_of_same_partner(a: &Path, dir: &Path, name: &str) -> PathBuf {
    let network = field(&ok(a, &["status"]), "Network");
    let data = dir.join(name.replace(' ', "_"));
    let init = ok(&data, &["init", "--site", name, "--network", &network]);
    let cert = dir.join(format!("{}.trust", name.replace(' ', "_")));
    ok(
        a,
        &[
            "admin",
            "certify-device",
            "--partner-key",
            a.join("keys/partner.key").to_str().unwrap(),
            "--partner-trust",
            a.join("keys/partner.trust").to_str().unwrap(),
            "--device",
            &field(&init, "Device key"),
            "--site",
            name,
            "--out",
            cert.to_str().unwrap(),
        ],
    );
    ok(&data, &["import", cert.to_str().unwrap()]);
    ok(a, &["import", cert.to_str().unwrap()]);
    data
}

/// A hub joined to `a`'s network whose certificate `a` has not seen: `a` learns of it
/// only from a peer, a relay or a bundle.
pub fn joined_hub_unknown_to(a: &Path, dir: &Path, name: &str) -> PathBuf {
    let network = field(&ok(a, &["status"]), "Network");
    let data = dir.join(name.replace(' ', "_"));
    let init = ok(&data, &["init", "--site", name, "--network", &network]);
    let cert = dir.join(format!("{}.trust", name.replace(' ', "_")));
    certify(a, &field(&init, "Device key"), name, "hub", &cert);
    ok(&data, &["import", cert.to_str().unwrap()]);
    data
}

/// The short id a write command prints ("Saved attendee A3f9c2b1d"), if it printed one.
pub fn saved_id(output: &str) -> Option<String> {
    output.lines().find(|l| l.starts_with("Saved")).and_then(|l| l.split_whitespace().last()).map(Into::into)
}

/// Changes received and sent, from the last line of a finished `tessera sync`
/// ("Sync finished: 3 changes received, 0 sent; ...").
pub fn sync_counts(output: &str) -> Option<(u64, u64)> {
    let line = output.lines().find_map(|l| l.strip_prefix("Sync finished: "))?;
    let mut words = line.split([' ', ',', ';']).filter(|w| !w.is_empty());
    let received = words.next()?.parse().ok()?;
    let sent = words.nth(2)?.parse().ok()?;
    Some((received, sent))
}

/// Waits for `child` at most `limit`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The relay's command line, run in this process (its library).
pub fn relay_cli(args: &[&str]) -> anyhow::Result<()> {
    use clap::Parser;
    let mut argv = vec!["tessera-relay"];
    argv.extend_from_slice(args);
    tessera_relay::run(tessera_relay::Cli::parse_from(argv))
}

/// A relay data directory in `dir`, in `a`'s network, certified as a relay by a
/// partner administrator of `a`'s single-machine network.
pub fn certified_relay(a: &Path, dir: &Path) -> PathBuf {
    let relay_dir = dir.join("relay");
    let network = field(&ok(a, &["status"]), "Network");
    relay_cli(&["--data", relay_dir.to_str().unwrap(), "init", "--network", &network]).unwrap();
    let relay_key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(relay_dir.join("relay.json")).unwrap()).unwrap();
    let relay_cert = dir.join("relay.trust");
    certify(a, relay_key["device"].as_str().unwrap(), "Relay Prova", "relay", &relay_cert);
    relay_cli(&["--data", relay_dir.to_str().unwrap(), "import", relay_cert.to_str().unwrap()]).unwrap();
    relay_dir
}

/// Set in a relay child's environment: its data directory. Without it the child
/// test ([`relay_child_main`]) does nothing.
pub const RELAY_CHILD_DATA: &str = "TESSERA_TEST_RELAY_CHILD_DATA";
/// Set in a relay child's environment: the address to listen on.
pub const RELAY_CHILD_LISTEN: &str = "TESSERA_TEST_RELAY_CHILD_LISTEN";

/// The body of a test that, when the variables above are set, runs
/// `tessera-relay serve` in this process until it is killed. The node crate's tests
/// cannot name the relay crate's binary (`CARGO_BIN_EXE_*` covers only this package),
/// so [`RelayProcess`] re-runs the test binary itself as the relay: the same library
/// code the `tessera-relay` binary runs, in its own process.
pub fn relay_child_main() {
    let (Ok(data), Ok(listen)) = (std::env::var(RELAY_CHILD_DATA), std::env::var(RELAY_CHILD_LISTEN)) else {
        return;
    };
    let args = ["--data", &data, "serve", "--listen", &listen, "--metrics", "127.0.0.1:0"];
    if let Err(e) = relay_cli(&args) {
        eprintln!("relay child failed: {e:#}");
        std::process::exit(1);
    }
}

/// A relay running in its own process (see [`relay_child_main`]); killed when dropped.
pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl RelayProcess {
    /// Starts the relay on `data`, listening on 127.0.0.1:`port` (0: any free port),
    /// by running `child_test` of this test binary; waits for it to listen.
    pub fn start(child_test: &str, data: &Path, port: u16, limit: Duration) -> RelayProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(RELAY_CHILD_DATA, data)
            .env(RELAY_CHILD_LISTEN, format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A reader thread: bounded wait for the "listening" line, and the pipe is
        // drained for as long as the child lives.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness's "test NAME ... " may precede it on the same line.
                if let Some(at) = line.find("Relay listening on ") {
                    let _ = tx.send(line[at..].to_string());
                }
            }
        });
        let line = match rx.recv_timeout(limit) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("the relay on {} did not listen within {limit:?} ({status})", data.display());
            }
        };
        let addr = line
            .split_whitespace()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        RelayProcess { child, addr }
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A daemon that is stopped with SIGTERM (and killed if it lingers) when dropped.
pub struct Daemon {
    child: Child,
    pub addr: String,
    /// The operator's page, `http://127.0.0.1:PORT` (a free port per daemon).
    pub page: String,
    /// Kept open so the daemon's last messages have somewhere to go.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Daemon {
    pub fn start(data: &Path) -> Daemon {
        Daemon::start_with(data, &[])
    }

    /// `serve` with more arguments (`--peer ADDR`).
    pub fn start_with(data: &Path, extra: &[&str]) -> Daemon {
        let mut child = tessera(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr =
            line.split_whitespace().nth(2).unwrap_or_else(|| panic!("no address in {line:?}")).to_string();
        // The next line gives the operator's page.
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let page =
            line.split_whitespace().last().filter(|w| w.starts_with("http://")).unwrap_or("").to_string();
        Daemon { child, addr, page, _stdout: stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve did not stop within 15 s of SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
