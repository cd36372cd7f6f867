//! Real `tessera` processes syncing over QUIC on loopback, bounded in time.

mod common;

use common::{field, joined_hub, ok, tessera};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon that is stopped with SIGTERM (and killed if it lingers) when dropped.
struct Daemon {
    child: Child,
    addr: String,
    /// Kept open so the daemon's last messages have somewhere to go.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Daemon {
    fn start(data: &Path) -> Daemon {
        let mut child = tessera(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr =
            line.split_whitespace().nth(2).unwrap_or_else(|| panic!("no address in {line:?}")).to_string();
        Daemon { child, addr, _stdout: stdout }
    }

    fn stop(mut self) {
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

#[test]
fn two_hubs_sync_both_ways_over_quic_and_status_shows_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    let b = joined_hub(&a, dir.path(), "Sportello B");
    for i in 0..5 {
        ok(&a, &["device", "add", "--tag", &format!("A-{i}"), "--kind", "tablet", "--origin", "donated"]);
    }
    ok(&b, &["device", "add", "--tag", "B-1", "--kind", "laptop", "--origin", "purchased"]);

    let daemon = Daemon::start(&a);
    let out = tessera(&b).args(["sync", "--peer", &daemon.addr]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Sync finished"), "{stdout}");
    daemon.stop();

    let listed_b = ok(&b, &["device", "list"]);
    let listed_a = ok(&a, &["device", "list"]);
    for tag in ["A-0", "A-4", "B-1"] {
        assert!(listed_a.contains(tag) && listed_b.contains(tag), "{tag}:\n{listed_a}\n{listed_b}");
    }
    let status_a = ok(&a, &["status"]);
    let status_b = ok(&b, &["status"]);
    assert_eq!(field(&status_a, "Records fingerprint"), field(&status_b, "Records fingerprint"));
    assert!(status_b.contains("Polo A") && status_b.contains("ok"), "status lists the peer: {status_b}");
}

#[test]
fn an_uncertified_node_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    // A node of another network.
    let stranger = dir.path().join("s");
    ok(&stranger, &["init", "--site", "Estraneo"]);
    let daemon = Daemon::start(&a);
    let out = tessera(&stranger).args(["sync", "--peer", &daemon.addr]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("network"), "{stderr}");
    daemon.stop();
}
