//! A relay holding many live sessions at once keeps serving: 200 certified devices
//! stay connected while hub A's new envelopes reach hub B (and every idle session)
//! through it, and a session beyond `--sessions-max` is refused without harm to the
//! others. Loopback only; bounded in count and time; nothing about speed is asserted
//! (`tessera-bench resources` measures it with 1,000 sessions).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_log::testkit::TestNetwork;
use tessera_log::{
    DeviceCertificate, DeviceKey, DeviceRole, LogEntry, PartnerKey, SecretKey, TrustStatement,
};
use tessera_net::driver::{run_session, RunOptions, Stored, SyncStore};
use tessera_net::{Endpoint, Identity};
use tessera_relay::{Cli, Command, Relay, ServeArgs};
use tessera_store::{trust_file, Policy, Store};
use tessera_sync::{Event, SessionConfig};
use tokio::sync::{broadcast, watch};

const IDLE: usize = 200;
const SMALL_SYNCS: u64 = 5;
const WAIT: Duration = Duration::from_secs(60);

/// A relay data directory made with the relay's own commands (`init`, `import`).
fn relay_dir(net: &TestNetwork, dir: &Path) -> std::path::PathBuf {
    let data = dir.join("relay");
    let init = Command::Init { network: net.network.0.to_hex(), name: "relay".into() };
    tessera_relay::run(Cli { data: data.clone(), lang: None, command: init }).unwrap();
    // The relay's secret key is in a directory only its owner can enter.
    let keys_mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(data.join("keys")).unwrap().permissions());
    assert_eq!(keys_mode & 0o777, 0o700);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("relay.json")).unwrap()).unwrap();
    let mut key = [0u8; 32];
    hex::decode_to_slice(config["device"].as_str().unwrap(), &mut key).unwrap();
    let cert = net.sign_as_partner(
        0,
        TrustStatement::Device(DeviceCertificate {
            partner: PartnerKey(net.partner_keys[0].public()),
            device: DeviceKey::from_bytes(key).unwrap(),
            role: DeviceRole::Relay,
            site: "Relay Prova".into(),
        }),
    );
    let mut entries: Vec<_> = net.entries.iter().collect();
    entries.push(&cert);
    let trust_path = dir.join("relay.trust");
    trust_file::write(&trust_path, &net.network, &entries).unwrap();
    tessera_relay::run(Cli { data: data.clone(), lang: None, command: Command::Import { file: trust_path } })
        .unwrap();
    data
}

fn store(net: &TestNetwork, dir: &Path) -> Store {
    let (mut store, _) = Store::open(dir, Some(net.network)).unwrap();
    let certs: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
    store.ingest(&certs, Policy::AllOrNothing).unwrap();
    store
}

fn endpoint(net: &TestNetwork, device: usize) -> Endpoint {
    let chain = net.trust().chain_of(&net.devices[device].id).into_iter().cloned().collect();
    let key = SecretKey::from_seed(net.devices[device].key.to_seed());
    Endpoint::bind("127.0.0.1:0".parse().unwrap(), Identity { network: net.network, key, chain }).unwrap()
}

#[derive(Default)]
struct Counts {
    live: AtomicUsize,
    ended: AtomicUsize,
}

/// A live session of `device` with the relay, counted in `counts`.
fn live_session<S: SyncStore>(
    net: &TestNetwork,
    device: usize,
    relay: SocketAddr,
    store: Arc<Mutex<S>>,
    fanout: broadcast::Sender<Stored>,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
) -> (Endpoint, tokio::task::JoinHandle<()>) {
    let endpoint = endpoint(net, device);
    let config = SessionConfig::new(net.network, net.devices[device].id);
    let ep = endpoint.clone();
    let task = tokio::spawn(async move {
        let trust = store.lock().unwrap().trust();
        if let Ok(channel) = ep.connect(relay, &trust).await {
            let live = counts.clone();
            let options = RunOptions { stop_when_caught_up: false, id: 1, meter: None, closed: None };
            let _ = run_session(channel, store, config, fanout, stop, options, move |_, event| {
                if matches!(event, Event::Live) {
                    live.live.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
        }
        counts.ended.fetch_add(1, Ordering::Relaxed);
    });
    (endpoint, task)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}"));
}

#[test]
fn relay_with_200_live_sessions_keeps_serving_small_syncs() {
    let dir = tempfile::tempdir().unwrap();
    // Devices 0 and 1 are hubs A and B, 2..202 the idle sessions, 202 the one too many.
    let mut net = TestNetwork::new(21, 4, (IDLE + 3).div_ceil(4));
    let data = relay_dir(&net, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let args = ServeArgs {
            listen: "127.0.0.1:0".into(),
            metrics: "127.0.0.1:0".into(),
            sessions_max: IDLE + 2,
            device_rate_max: 500,
            partner_quota_bytes: 1 << 30,
            ..ServeArgs::default()
        };
        let relay = Relay::start(&data, args).await.unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let probes = Arc::new(Counts::default());
        let a = Arc::new(Mutex::new(store(&net, &dir.path().join("a"))));
        let b = Arc::new(Mutex::new(store(&net, &dir.path().join("b"))));
        let (a_fanout, _) = broadcast::channel(64);
        let mut endpoints = Vec::new();
        let mut tasks = Vec::new();
        for (device, hub, fanout) in [(0, &a, a_fanout.clone()), (1, &b, broadcast::channel(64).0)] {
            let (ep, task) =
                live_session(&net, device, relay.addr, hub.clone(), fanout, stop.clone(), probes.clone());
            endpoints.push(ep);
            tasks.push(task);
        }
        let idle_store = Arc::new(Mutex::new(store(&net, &dir.path().join("idle"))));
        let idle = Arc::new(Counts::default());
        for device in 2..2 + IDLE {
            let (ep, task) = live_session(
                &net,
                device,
                relay.addr,
                idle_store.clone(),
                broadcast::channel(64).0,
                stop.clone(),
                idle.clone(),
            );
            endpoints.push(ep);
            tasks.push(task);
        }
        until("every session live", || {
            probes.live.load(Ordering::Relaxed) == 2 && idle.live.load(Ordering::Relaxed) == IDLE
        })
        .await;

        // One session too many: refused in words, and nobody else is disturbed.
        let extra = endpoint(&net, 2 + IDLE);
        let refusal = refusal_of(&net, &extra, relay.addr, idle_store.clone()).await;
        assert!(refusal.contains("maximum of 202 sessions"), "{refusal}");

        // Small syncs: each new envelope of A reaches B, one at a time.
        let a_device = net.devices[0].id;
        let network = net.network;
        for n in 0..SMALL_SYNCS {
            let env = net.devices[0].next_simple(&network, n, 200);
            let entries = vec![LogEntry::Envelope(env)];
            a.lock().unwrap().ingest(&entries, Policy::AllOrNothing).unwrap();
            a_fanout.send(Stored { by: 0, entries: Arc::new(entries) }).unwrap();
            until("the small sync reaching B", || {
                b.lock().unwrap().heads().get(&a_device).is_some_and(|h| h.seq.0 == n + 1)
            })
            .await;
        }
        // Every idle session was pushed the envelopes too (the shared store has them).
        until("the idle sessions catching up", || {
            idle_store.lock().unwrap().heads().get(&a_device).is_some_and(|h| h.seq.0 == SMALL_SYNCS)
        })
        .await;
        assert_eq!(probes.ended.load(Ordering::Relaxed) + idle.ended.load(Ordering::Relaxed), 0);

        // What an operator scrapes: the envelopes passed on, and the traffic.
        let text = scrape(relay.metrics_addr).await;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} missing from the metrics:\n{text}"))
        };
        assert_eq!(value("tessera_relay_connected_peers"), (IDLE + 2) as u64);
        assert!(value("tessera_relay_envelopes_received_total") >= SMALL_SYNCS);
        assert!(value("tessera_relay_envelopes_sent_total") >= SMALL_SYNCS);
        assert!(value("tessera_relay_wire_bytes_received_total") > 0);
        assert!(value("tessera_relay_wire_bytes_sent_total") > 0);

        let _ = stop_tx.send(true);
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.expect("a session did not stop").unwrap();
        }
        for ep in &endpoints {
            ep.close();
        }
        relay.shutdown().await.unwrap();
    });
}

/// Why the relay ended a session of `endpoint` at its start (panics if it was served).
async fn refusal_of<S: SyncStore>(
    net: &TestNetwork,
    endpoint: &Endpoint,
    relay: SocketAddr,
    store: Arc<Mutex<S>>,
) -> String {
    let trust = store.lock().unwrap().trust();
    let channel = endpoint.connect(relay, &trust).await.expect("the handshake itself succeeds");
    let config = SessionConfig::new(net.network, net.devices[0].id);
    let (_stop_tx, stop) = watch::channel(false);
    let options = RunOptions { stop_when_caught_up: false, id: 1, meter: None, closed: None };
    let run = run_session(channel, store, config, broadcast::channel(4).0, stop, options, |_, _| {});
    match tokio::time::timeout(WAIT, run).await.expect("the refusal came in time") {
        Err(tessera_net::NetError::RefusedByPeer(reason)) => reason,
        other => panic!("the session was not refused in words: {other:?}"),
    }
}

/// A certified key copied onto 20 machines, and 16 uncertified clients connecting in
/// a loop, against a relay of 8 sessions: the copies hold at most 2 sessions (each
/// newer one closes the oldest, which is told why), the uncertified clients only ever
/// hold handshake places, and a hub's every sync goes through.
#[test]
fn a_shared_key_and_uncertified_loopers_do_not_starve_a_hub() {
    const COPIES: usize = 20;
    const LOOPERS: u8 = 16;
    const HUB_SYNCS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    // Device 0: the hub; device 1: the key shared by many clients.
    let mut net = TestNetwork::new(22, 1, 2);
    let data = relay_dir(&net, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let args = ServeArgs {
            listen: "127.0.0.1:0".into(),
            metrics: "127.0.0.1:0".into(),
            sessions_max: 8,
            ..ServeArgs::default()
        };
        assert_eq!(args.sessions_per_device, 2);
        let relay = Relay::start(&data, args).await.unwrap();
        let (stop_tx, stop) = watch::channel(false);

        // The copies of one key: two get live sessions, the others are refused.
        let shared_store = Arc::new(Mutex::new(store(&net, &dir.path().join("shared"))));
        let shared = Arc::new(Counts::default());
        let mut endpoints = Vec::new();
        let mut tasks = Vec::new();
        // The first copy, watched: it is closed in words when newer copies arrive.
        let first = endpoint(&net, 1);
        let first_session = {
            let trust = shared_store.lock().unwrap().trust().clone();
            let channel = first.connect(relay.addr, &trust).await.unwrap();
            let config = SessionConfig::new(net.network, net.devices[1].id);
            let options = RunOptions { stop_when_caught_up: false, id: 1, meter: None, closed: None };
            let first_live = shared.clone();
            tokio::spawn(run_session(
                channel,
                shared_store.clone(),
                config,
                broadcast::channel(4).0,
                stop.clone(),
                options,
                move |_, event| {
                    if matches!(event, Event::Live) {
                        first_live.live.fetch_add(1, Ordering::Relaxed);
                    }
                },
            ))
        };
        until("the first copy live", || shared.live.load(Ordering::Relaxed) == 1).await;
        for copy in 1..COPIES {
            let (ep, task) = live_session(
                &net,
                1,
                relay.addr,
                shared_store.clone(),
                broadcast::channel(4).0,
                stop.clone(),
                shared.clone(),
            );
            endpoints.push(ep);
            tasks.push(task);
            until("the next copy live", || shared.live.load(Ordering::Relaxed) == copy + 1).await;
        }
        // The newest two stay; every older copy was closed, the first one in words.
        until("older copies closed", || shared.ended.load(Ordering::Relaxed) == COPIES - 3).await;
        let why = match tokio::time::timeout(WAIT, first_session)
            .await
            .expect("the first copy was closed")
            .unwrap()
        {
            Err(tessera_net::NetError::RefusedByPeer(words)) => words,
            Ok(summary) => match summary.outcome {
                tessera_sync::CloseReason::Error(e) => e.to_string(),
                other => panic!("the first copy ended without a reason: {other:?}"),
            },
            Err(e) => e.to_string(),
        };
        assert!(why.contains("a newer session of this device started here"), "{why}");
        first.close();

        // Uncertified clients, connecting again and again until the end.
        let loops = Arc::new(AtomicUsize::new(0));
        for n in 0..LOOPERS {
            let (network, mut stop, loops) = (net.network, stop.clone(), loops.clone());
            let trust = net.trust();
            tasks.push(tokio::spawn(async move {
                let key = SecretKey::from_seed([200 + n; 32]);
                let identity = Identity { network, key, chain: vec![] };
                let ep = Endpoint::bind("127.0.0.1:0".parse().unwrap(), identity).unwrap();
                loop {
                    tokio::select! {
                        result = ep.connect(relay.addr, &trust) => {
                            assert!(result.is_err(), "an uncertified client got a session");
                            loops.fetch_add(1, Ordering::Relaxed);
                        }
                        _ = stop.changed() => break,
                    }
                }
                ep.close();
            }));
        }

        // The hub syncs one change at a time: every sync ends caught up.
        let hub = Arc::new(Mutex::new(store(&net, &dir.path().join("hub"))));
        let hub_endpoint = endpoint(&net, 0);
        let network = net.network;
        for n in 0..HUB_SYNCS {
            let env = net.devices[0].next_simple(&network, n, 100);
            hub.lock().unwrap().ingest(&[LogEntry::Envelope(env)], Policy::AllOrNothing).unwrap();
            let trust = hub.lock().unwrap().trust().clone();
            let channel =
                hub_endpoint.connect(relay.addr, &trust).await.unwrap_or_else(|e| panic!("sync {n}: {e}"));
            let config = SessionConfig::new(network, net.devices[0].id);
            let options = RunOptions { stop_when_caught_up: true, id: 1, meter: None, closed: None };
            let (_stop_tx, hub_stop) = watch::channel(false);
            let summary = run_session(
                channel,
                hub.clone(),
                config,
                broadcast::channel(4).0,
                hub_stop,
                options,
                |_, _| {},
            )
            .await
            .unwrap_or_else(|e| panic!("sync {n}: {e}"));
            assert!(
                matches!(summary.outcome, tessera_sync::CloseReason::Finished { .. }),
                "sync {n}: {:?}",
                summary.outcome
            );
        }
        let relay_holds = {
            let text = scrape(relay.metrics_addr).await;
            text.lines().any(|l| l.contains("replaced_by_newer_session"))
        };
        assert!(relay_holds, "the refusals are counted in the metrics");
        assert!(loops.load(Ordering::Relaxed) >= usize::from(LOOPERS), "the uncertified clients kept trying");

        let _ = stop_tx.send(true);
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.expect("a task did not stop").unwrap();
        }
        for ep in &endpoints {
            ep.close();
        }
        hub_endpoint.close();
        relay.shutdown().await.unwrap();
    });
}

/// The relay's metrics page, as Prometheus would fetch it.
async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: relay\r\n\r\n").await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut text)).await.expect("metrics answered").unwrap();
    text
}
