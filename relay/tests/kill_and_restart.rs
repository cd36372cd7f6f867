//! The relay as a real process, killed with SIGKILL in the middle of a sync and
//! restarted: nothing is lost, the next session resumes, and a hub that comes back
//! after 1,000 new envelopes elsewhere catches up in one session. Loopback only.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_log::testkit::TestNetwork;
use tessera_log::{
    DeviceCertificate, DeviceKey, DeviceRole, LogEntry, PartnerKey, SecretKey, TrustStatement,
};
use tessera_net::driver::{run_session, RunOptions, Summary};
use tessera_net::{Endpoint, Identity};
use tessera_store::{trust_file, Policy, Store};
use tessera_sync::{CloseReason, SessionConfig};
use tokio::sync::{broadcast, watch};

fn relay_cmd(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera-relay"));
    cmd.arg("--data").arg(data).env("TESSERA_LOG", "warn");
    cmd
}

fn start_relay(data: &Path, port: u16) -> (Child, SocketAddr) {
    let mut child = relay_cmd(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr =
        line.split_whitespace().nth(3).unwrap_or_else(|| panic!("no address in {line:?}")).parse().unwrap();
    (child, addr)
}

struct Hub {
    store: Arc<Mutex<Store>>,
    endpoint: Endpoint,
    network: tessera_log::NetworkId,
    device: DeviceKey,
}

fn hub(net: &TestNetwork, device: usize, dir: &Path) -> Hub {
    let (mut store, _) = Store::open(dir, Some(net.network)).unwrap();
    let certs: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    store.ingest(&certs, Policy::AllOrNothing).unwrap();
    let chain = store.trust().chain_of(&net.devices[device].id).into_iter().cloned().collect();
    let key = SecretKey::from_seed(net.devices[device].key.to_seed());
    let endpoint =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), Identity { network: net.network, key, chain })
            .unwrap();
    Hub { store: Arc::new(Mutex::new(store)), endpoint, network: net.network, device: net.devices[device].id }
}

async fn sync(hub: &Hub, relay: SocketAddr) -> Result<Summary, String> {
    let trust = hub.store.lock().unwrap().trust().clone();
    let channel = hub.endpoint.connect(relay, &trust).await.map_err(|e| e.to_string())?;
    let (fanout, _) = broadcast::channel(16);
    let (_stop_tx, stop) = watch::channel(false);
    let config = SessionConfig::new(hub.network, hub.device);
    run_session(
        channel,
        hub.store.clone(),
        config,
        fanout,
        stop,
        RunOptions { stop_when_caught_up: true, id: 1, meter: None, closed: None },
        |_, _| {},
    )
    .await
    .map_err(|e| e.to_string())
}

fn append(net: &mut TestNetwork, hub: &Hub, device: usize, count: u64, from: u64) {
    let network = net.network;
    let batch: Vec<LogEntry> = (from..from + count)
        .map(|n| LogEntry::Envelope(net.devices[device].next_simple(&network, n, 300)))
        .collect();
    for chunk in batch.chunks(1000) {
        hub.store.lock().unwrap().ingest(chunk, Policy::AllOrNothing).unwrap();
    }
}

/// A relay data directory, initialised and certified as a relay by `net`'s partner.
fn certified_relay(dir: &Path, net: &TestNetwork) -> std::path::PathBuf {
    let relay_dir = dir.join("relay");
    let out = relay_cmd(&relay_dir).args(["init", "--network", &net.network.0.to_hex()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(relay_dir.join("relay.json")).unwrap()).unwrap();
    let mut key = [0u8; 32];
    hex::decode_to_slice(config["device"].as_str().unwrap(), &mut key).unwrap();
    let relay_device = DeviceKey::from_bytes(key).unwrap();
    let cert = net.sign_as_partner(
        0,
        TrustStatement::Device(DeviceCertificate {
            partner: PartnerKey(net.partner_keys[0].public()),
            device: relay_device,
            role: DeviceRole::Relay,
            site: "Relay Prova".into(),
        }),
    );
    let trust_path = dir.join("relay.trust");
    trust_file::write(&trust_path, &net.network, &[&net.entries[0], &cert]).unwrap();
    assert!(relay_cmd(&relay_dir).arg("import").arg(&trust_path).status().unwrap().success());
    relay_dir
}

/// SIGTERM sent the moment the relay says it listens stops it cleanly (the handler is
/// installed before the announcement), instead of killing it by the default action.
#[test]
fn sigterm_right_after_listening_stops_the_relay_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let net = TestNetwork::new(12, 1, 1);
    let relay_dir = certified_relay(dir.path(), &net);
    for _ in 0..5 {
        let (mut child, _) = start_relay(&relay_dir, 0);
        let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(term.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "the relay did not stop cleanly on SIGTERM: {status}");
    }
}

#[test]
fn relay_killed_mid_sync_loses_nothing_and_hubs_catch_up_in_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = TestNetwork::new(11, 1, 2);
    let relay_dir = certified_relay(dir.path(), &net);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = runtime.enter();
    let a = hub(&net, 0, &dir.path().join("a"));
    let b = hub(&net, 1, &dir.path().join("b"));
    append(&mut net, &a, 0, 3000, 0);

    // Start, sync, and kill the relay with SIGKILL while the session is running.
    let (mut relay, addr) = start_relay(&relay_dir, 0);
    let port = addr.port();
    let first = runtime.block_on(async {
        let sync = sync(&a, addr);
        tokio::pin!(sync);
        tokio::select! {
            result = &mut sync => Some(result),
            _ = tokio::time::sleep(Duration::from_millis(150)) => None,
        }
    });
    relay.kill().unwrap();
    relay.wait().unwrap();
    if let Some(Ok(summary)) = &first {
        // The machine was fast enough to finish first: still a valid run.
        assert!(matches!(summary.outcome, CloseReason::Finished { .. }));
    }

    // Restart on the same port; A resumes and sends only what the relay lacks.
    let (mut relay, addr) = start_relay(&relay_dir, port);
    let resumed = runtime.block_on(sync(&a, addr)).unwrap();
    assert!(matches!(resumed.outcome, CloseReason::Finished { .. }), "{:?}", resumed.outcome);
    assert!(resumed.stats.envelopes_sent <= 3000);

    // B was never online with A: it gets all of A's history from the relay.
    let got = runtime.block_on(sync(&b, addr)).unwrap();
    assert_eq!(got.stats.envelopes_received, 3000);
    assert_eq!(b.store.lock().unwrap().heads().get(&a.device).unwrap().seq.0, 3000);

    // A writes 1,000 more; B comes back and catches up in one session, one round trip.
    append(&mut net, &a, 0, 1000, 3000);
    runtime.block_on(sync(&a, addr)).unwrap();
    let caught_up = runtime.block_on(sync(&b, addr)).unwrap();
    assert_eq!(caught_up.stats.envelopes_received, 1000);
    assert_eq!(caught_up.stats.round_trips_to_difference, Some(1));
    assert_eq!(b.store.lock().unwrap().heads(), a.store.lock().unwrap().heads());
    relay.kill().unwrap();
    relay.wait().unwrap();
}

fn relay_out(data: &Path, args: &[&str]) -> (String, String, Option<i32>) {
    let out = relay_cmd(data).args(args).env_remove("LANG").env_remove("LC_ALL").output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap(), out.status.code())
}

/// `status` and `import` beside a serving relay are answered by it (the store is
/// its), in the operator's language; killed, it leaves the store to them again.
#[test]
fn status_and_import_work_beside_a_serving_relay_in_italian_or_english() {
    let dir = tempfile::tempdir().unwrap();
    let net = TestNetwork::new(13, 1, 1);
    let relay_dir = certified_relay(dir.path(), &net);
    let (mut child, _) = start_relay(&relay_dir, 0);
    assert!(relay_dir.join("relay.sock").exists());

    let (out, err, code) = relay_out(&relay_dir, &["status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("In servizio:") && out.contains("sì (0 sessioni aperte)"), "{out}");
    let (out, _, code) = relay_out(&relay_dir, &["--lang", "en", "status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Serving:") && out.contains("yes (0 sessions open)"), "{out}");

    // A new certificate imported while serving: stored by the daemon, counted.
    let newcomer = DeviceKey(SecretKey::from_seed([77; 32]).public());
    let cert = net.sign_as_partner(
        0,
        TrustStatement::Device(DeviceCertificate {
            partner: PartnerKey(net.partner_keys[0].public()),
            device: newcomer,
            role: DeviceRole::Hub,
            site: "Polo Prova".into(),
        }),
    );
    let trust_path = dir.path().join("newcomer.trust");
    trust_file::write(&trust_path, &net.network, &[&net.entries[0], &cert]).unwrap();
    // A relative path is the client's: run from the file's directory.
    let out = relay_cmd(&relay_dir)
        .args(["--lang", "en", "import", "newcomer.trust"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("imported: 1 (1 already here)"), "{text}");
    // A file that is not a trust file: the daemon's error, in Italian, exit 1.
    std::fs::write(dir.path().join("junk.trust"), b"not a trust file").unwrap();
    let (out, err, code) =
        relay_out(&relay_dir, &["import", dir.path().join("junk.trust").to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out} {err}");
    assert!(err.starts_with("errore: "), "{err}");
    // An unknown language is refused before anything runs.
    let (_, err, code) = relay_out(&relay_dir, &["--lang", "fr", "status"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("`it`") && err.contains("`en`"), "{err}");

    child.kill().unwrap();
    child.wait().unwrap();
    let (out, err, code) = relay_out(&relay_dir, &["status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("In servizio:")
            && out.lines().any(|l| l.starts_with("In servizio:") && l.ends_with(" no")),
        "{out}"
    );
}
