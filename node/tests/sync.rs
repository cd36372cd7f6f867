//! Real `tessera` processes syncing over QUIC on loopback, bounded in time.

mod common;

use common::{field, joined_hub, ok, tessera, Daemon};

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
    let (theirs, own) =
        (field(&ok(&a, &["status"]), "Network"), field(&ok(&stranger, &["status"]), "Network"));
    let daemon = Daemon::start(&a);
    let out = tessera(&stranger).args(["sync", "--peer", &daemon.addr]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Told from its own side: the network it reached first, its own second.
    let told = format!("belongs to network {theirs}, and this node to network {own}");
    assert!(stderr.contains(&told), "{stderr}");
    daemon.stop();
}
