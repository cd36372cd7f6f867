//! Hubs that are never online together converge through a relay: real `tessera`
//! processes on loopback, the relay in-process (its library), bounded in time.

mod common;

use common::{certify, field, joined_hub, ok};

fn relay_cli(args: &[&str]) -> anyhow::Result<()> {
    use clap::Parser;
    let mut argv = vec!["tessera-relay"];
    argv.extend_from_slice(args);
    tessera_relay::run(tessera_relay::Cli::parse_from(argv))
}

#[test]
fn three_hubs_never_online_together_converge_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    let b = joined_hub(&a, dir.path(), "Polo B");
    let c = joined_hub(&a, dir.path(), "Sportello C");

    // The relay: its own key, certified as a relay by a partner administrator.
    let relay_dir = dir.path().join("relay");
    let network = field(&ok(&a, &["status"]), "Network");
    relay_cli(&["--data", relay_dir.to_str().unwrap(), "init", "--network", &network]).unwrap();
    let relay_key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(relay_dir.join("relay.json")).unwrap()).unwrap();
    let relay_cert = dir.path().join("relay.trust");
    certify(&a, relay_key["device"].as_str().unwrap(), "Relay Prova", "relay", &relay_cert);
    relay_cli(&["--data", relay_dir.to_str().unwrap(), "import", relay_cert.to_str().unwrap()]).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let args = tessera_relay::ServeArgs {
        listen: "127.0.0.1:0".into(),
        metrics: "127.0.0.1:0".into(),
        sessions_max: 16,
        device_rate_max: 500,
        partner_quota_bytes: 1 << 30,
        ..tessera_relay::ServeArgs::default()
    };
    let relay = runtime.block_on(tessera_relay::Relay::start(&relay_dir, args)).unwrap();
    let addr = relay.addr.to_string();

    // Each hub comes online alone, writes, syncs with the relay, goes away.
    ok(&a, &["device", "add", "--tag", "A-1", "--kind", "tablet", "--origin", "donated"]);
    ok(&a, &["sync", "--peer", &addr]);
    ok(&b, &["sync", "--peer", &addr]);
    ok(&b, &["device", "add", "--tag", "B-1", "--kind", "laptop", "--origin", "purchased"]);
    ok(&b, &["device", "edit", "A-1", "--model", "Modello da B"]);
    ok(&b, &["sync", "--peer", &addr]);
    ok(&c, &["sync", "--peer", &addr]);
    ok(&c, &["device", "add", "--tag", "C-1", "--kind", "phone", "--origin", "refurbished"]);
    ok(&c, &["device", "edit", "A-1", "--serial", "SN-da-C"]);
    ok(&c, &["sync", "--peer", &addr]);
    ok(&a, &["sync", "--peer", &addr]);
    ok(&b, &["sync", "--peer", &addr]);

    let fingerprints: Vec<String> =
        [&a, &b, &c].iter().map(|d| field(&ok(d, &["status"]), "Records fingerprint")).collect();
    assert_eq!(fingerprints[0], fingerprints[1]);
    assert_eq!(fingerprints[0], fingerprints[2]);
    let shown = ok(&a, &["device", "show", "A-1"]);
    assert!(shown.contains("Modello da B") && shown.contains("SN-da-C"), "concurrent edits merged: {shown}");

    // Metrics are served and count what went through.
    let body = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(relay.metrics_addr).await.unwrap();
        socket.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut body = String::new();
        socket.read_to_string(&mut body).await.unwrap();
        body
    });
    let received: u64 = body
        .lines()
        .find(|l| l.starts_with("tessera_relay_envelopes_received_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(received >= 6, "{body}");
    assert!(body.contains("tessera_relay_device_last_seen_seconds{device="), "{body}");
    runtime.block_on(relay.shutdown()).unwrap();

    // The relay's store held everything after a clean stop.
    relay_cli(&["--data", relay_dir.to_str().unwrap(), "status"]).unwrap();
}
