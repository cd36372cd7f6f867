//! `tessera sync` (one session with one peer, then exit) and `tessera serve` (a
//! daemon: accepts peers, keeps sessions to configured peers and relays with
//! reconnection and backoff, pushes new entries live, stops cleanly on SIGINT or
//! SIGTERM). The protocol is `tessera-sync`; the transport `tessera-net`; this file
//! wires them to the node and tells the operator what happened.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::msg::SaidContext as _;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tessera_log::LogEntry;
use tessera_net::driver::{run_session, RunOptions, Stored, Summary, FANOUT_BATCHES_MAX};
use tessera_net::gate::{GateLimits, SessionGate};
use tessera_net::{Channel, Endpoint};
use tessera_sync::{CloseReason, Event, SessionConfig};
use tokio::sync::{broadcast, watch};

use crate::daemon::Hub;
use crate::node::Node;
use crate::ui::Ui;

/// Incoming sessions a `serve` daemon runs at once.
pub const SESSIONS_MAX: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const PEERS_FILE: &str = "peers.json";
/// How often a serving node checks for readers that lack its keys.
const GRANTS_EVERY: Duration = Duration::from_secs(5);

/// What this node remembers of each peer, for `tessera status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerRecord {
    pub site: String,
    pub address: String,
    /// Last session that ended well (RFC 3339).
    pub last_success: Option<String>,
    pub last_attempt: Option<String>,
    pub last_result: String,
    pub envelopes_received: u64,
    pub envelopes_sent: u64,
}

pub fn load_peers(dir: &Path) -> BTreeMap<String, PeerRecord> {
    std::fs::read_to_string(dir.join(PEERS_FILE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn record_peer(dir: &Path, key: String, update: impl FnOnce(&mut PeerRecord)) {
    let mut peers = load_peers(dir);
    update(peers.entry(key).or_default());
    let path = dir.join(PEERS_FILE);
    let tmp = path.with_extension("json.tmp");
    let written = serde_json::to_vec_pretty(&peers)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not record the peer's sync status");
    }
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn resolve(peer: &str) -> Result<SocketAddr> {
    peer.to_socket_addrs()
        .with_said(|| {
            (
                format!("`{peer}` is not an address: write HOST:PORT, e.g. 192.168.1.20:7420"),
                format!("`{peer}` non è un indirizzo: scrivi HOST:PORTA, per esempio 192.168.1.20:7420"),
            )
        })?
        .next()
        .with_said(|| {
            (
                format!("`{peer}` does not resolve to an address"),
                format!("`{peer}` non corrisponde a nessun indirizzo"),
            )
        })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .said("cannot start the network runtime", "non riesco ad avviare la rete")
}

fn lock(node: &Mutex<Node>) -> std::sync::MutexGuard<'_, Node> {
    node.lock().unwrap_or_else(PoisonError::into_inner)
}

fn describe(summary: &Summary, ui: &Ui) -> String {
    let s = &summary.stats;
    format!(
        "{} {}, {} {}; {} {} / {} {} bytes; {:.1} s",
        s.envelopes_received,
        ui.t("changes received", "modifiche ricevute"),
        s.envelopes_sent,
        ui.t("sent", "inviate"),
        summary.wire_bytes_received,
        ui.t("received", "ricevuti"),
        summary.wire_bytes_sent,
        ui.t("sent", "inviati"),
        summary.elapsed.as_secs_f64()
    )
}

fn outcome_error(outcome: &CloseReason) -> Option<String> {
    match outcome {
        CloseReason::Finished { .. } => None,
        CloseReason::Error(e) => Some(e.to_string()),
    }
}

/// `tessera sync --peer HOST:PORT`.
pub fn sync(dir: &Path, peer: &str, ui: &Ui) -> Result<()> {
    let addr = resolve(peer)?;
    let mut node = Node::open(dir)?;
    node.grant_owed()?;
    let identity = node.net_identity()?;
    let trust = node.store().trust().clone();
    let config = SessionConfig::new(node.network(), node.device());
    let node = Arc::new(Mutex::new(node));
    runtime()?.block_on(async {
        let bind: SocketAddr = if addr.is_ipv6() { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
        let endpoint = Endpoint::bind(bind, identity)?;
        let channel = endpoint.connect(addr, &trust).await.with_said(|| {
            (format!("cannot sync with {peer}"), format!("non riesco a sincronizzare con {peer}"))
        })?;
        let mut summary = run_one(channel, node.clone(), config.clone(), true, 0, ui).await;
        // Readers met in this session lack the keys this node holds: one more short
        // session takes the grants to them, so they read what this hub wrote.
        if summary.is_ok() && lock(&node).grant_owed()?.is_some() {
            let trust = lock(&node).store().trust().clone();
            if let Ok(channel) = endpoint.connect(addr, &trust).await {
                summary = run_one(channel, node.clone(), config, true, 0, ui).await;
            }
        }
        endpoint.close();
        let summary = summary?;
        crate::outln!("{} {}", ui.t("Sync finished:", "Sincronizzazione finita:"), describe(&summary, ui));
        if lock(&node).lacks_read_keys() {
            crate::errln!("{}: {}", ui.t("Note", "Nota"), crate::commands::unreadable_note(ui));
        }
        if let Some(error) = outcome_error(&summary.outcome) {
            bail!("{}: {error}", ui.t("the sync did not complete", "la sincronizzazione non è completa"));
        }
        Ok(())
    })
}

/// Runs one session and records its result for `status`.
async fn run_one(
    channel: Channel,
    node: Arc<Mutex<Node>>,
    config: SessionConfig,
    one_shot: bool,
    id: u64,
    ui: &Ui,
) -> Result<Summary> {
    let (fanout, _) = broadcast::channel::<Stored>(FANOUT_BATCHES_MAX);
    let (_stop_tx, stop) = watch::channel(false);
    run_recorded(
        channel,
        node,
        config,
        fanout,
        stop,
        RunOptions { stop_when_caught_up: one_shot, id, meter: None, closed: None },
        Some(*ui),
    )
    .await
}

async fn run_recorded(
    channel: Channel,
    node: Arc<Mutex<Node>>,
    config: SessionConfig,
    fanout: broadcast::Sender<Stored>,
    stop: watch::Receiver<bool>,
    options: RunOptions,
    ui: Option<Ui>,
) -> Result<Summary> {
    let dir = lock(&node).dir().to_path_buf();
    let peer = channel.peer().cloned().said("unauthenticated session", "sessione non autenticata")?;
    let key = peer.certificate.device.0.to_hex();
    if let Some(ui) = &ui {
        crate::errln!(
            "{} {} ({}, {})",
            ui.t("Connected to", "Collegato a"),
            peer.certificate.site,
            peer.certificate.device.short(),
            peer.address
        );
    }
    let mut total_in = 0u64;
    let mut total_out = 0u64;
    let progress = move |stats: &tessera_sync::SessionStats, event: &Event| {
        let Some(ui) = &ui else { return };
        match event {
            Event::DifferenceKnown { envelopes_to_send, envelopes_to_receive, .. } => {
                total_in = *envelopes_to_receive;
                total_out = *envelopes_to_send;
                crate::errln!(
                    "{} {total_in}, {} {total_out}",
                    ui.t("to receive:", "da ricevere:"),
                    ui.t("to send:", "da inviare:")
                );
            }
            Event::Ingest { .. } | Event::CaughtUp | Event::Live => {
                crate::err!(
                    "\r{} {}/{}  {} {}/{}   ",
                    ui.t("received", "ricevute"),
                    stats.envelopes_received,
                    total_in,
                    ui.t("sent", "inviate"),
                    stats.envelopes_sent,
                    total_out
                );
                let _ = std::io::stderr().flush();
                if matches!(event, Event::Live) {
                    crate::errln!();
                }
            }
            _ => {}
        }
    };
    let started = now_text();
    let result = run_session(channel, node.clone(), config, fanout, stop, options, progress).await;
    let site = peer.certificate.site.clone();
    let address = peer.address.to_string();
    match &result {
        Ok(summary) => {
            let error = outcome_error(&summary.outcome);
            record_peer(&dir, key, |r| {
                r.site = site;
                r.address = address;
                r.last_attempt = Some(started);
                r.envelopes_received += summary.stats.envelopes_received;
                r.envelopes_sent += summary.stats.envelopes_sent;
                match error {
                    None => {
                        r.last_success = Some(now_text());
                        r.last_result = "ok".into();
                    }
                    Some(e) => r.last_result = e,
                }
            });
        }
        Err(e) => {
            let text = e.to_string();
            record_peer(&dir, key, |r| {
                r.site = site;
                r.address = address;
                r.last_attempt = Some(started);
                r.last_result = text;
            });
        }
    }
    Ok(result?)
}

/// What the daemon needs to open a session when a command asks for one (`tessera
/// sync --peer` typed beside `serve`).
#[derive(Clone)]
pub struct Dialer {
    endpoint: Endpoint,
    network: tessera_log::NetworkId,
    device: tessera_log::DeviceKey,
    ids: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("device", &self.device).finish_non_exhaustive()
    }
}

impl Dialer {
    /// One session with `peer` until both sides are caught up, on the daemon's node:
    /// what it receives is pushed to the daemon's other sessions too. Returns the text
    /// `tessera sync` prints.
    pub async fn sync_now(&self, hub: &Hub, peer: &str, ui: &Ui) -> Result<crate::ui::Captured> {
        let addr = resolve(peer)?;
        let once = || async {
            let trust = lock(&hub.node).store().trust().clone();
            let channel = self.endpoint.connect(addr, &trust).await.with_said(|| {
                (format!("cannot sync with {peer}"), format!("non riesco a sincronizzare con {peer}"))
            })?;
            let options = RunOptions {
                stop_when_caught_up: true,
                id: self.ids.fetch_add(1, Ordering::Relaxed),
                meter: None,
                closed: None,
            };
            let config = SessionConfig::new(self.network, self.device);
            run_recorded(
                channel,
                hub.node.clone(),
                config,
                hub.fanout.clone(),
                self.stop.clone(),
                options,
                None,
            )
            .await
        };
        let mut summary = once().await;
        if summary.is_ok() && hub.write(|node| node.grant_owed())?.is_some() {
            summary = once().await;
        }
        let summary = summary?;
        let mut captured = crate::ui::Captured {
            stdout: format!(
                "{} {}\n",
                ui.t("Sync finished:", "Sincronizzazione finita:"),
                describe(&summary, ui)
            ),
            stderr: String::new(),
        };
        if lock(&hub.node).lacks_read_keys() {
            captured.stderr = format!("{}: {}\n", ui.t("Note", "Nota"), crate::commands::unreadable_note(ui));
        }
        if let Some(error) = outcome_error(&summary.outcome) {
            bail!("{}: {error}", ui.t("the sync did not complete", "la sincronizzazione non è completa"));
        }
        Ok(captured)
    }
}

/// Binds the operator's page. A port already in use (another daemon, another
/// program) does not stop the daemon: syncing matters more than the page, so it says
/// so and goes on without it.
async fn bind_page(addr: &str, ui: &Ui) -> Option<tokio::net::TcpListener> {
    match crate::web::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            let cause = e.root_cause().to_string();
            crate::errln!(
                "{} {addr} ({cause}). {}",
                ui.t(
                    "warning: the operator's page could not be opened on",
                    "attenzione: non è stato possibile aprire la pagina dell'operatore su"
                ),
                ui.t(
                    "Syncing goes on without it; choose another address with --ui 127.0.0.1:PORT, or --no-ui.",
                    "La sincronizzazione continua senza la pagina; scegli un altro indirizzo con --ui 127.0.0.1:PORTA, o --no-ui."
                )
            );
            None
        }
    }
}

/// `tessera serve --listen ADDR [--peer HOST:PORT ...] [--ui ADDR | --no-ui]`.
pub fn serve(dir: &Path, listen: &str, peers: &[String], page_addr: Option<&str>, ui: &Ui) -> Result<()> {
    let listen = resolve(listen)?;
    let peer_addrs: Vec<(String, SocketAddr)> =
        peers.iter().map(|p| resolve(p).map(|a| (p.clone(), a))).collect::<Result<_>>()?;
    let node = Node::open(dir)?;
    let identity = node.net_identity()?;
    let network = node.network();
    let device = node.device();
    let (fanout, _) = broadcast::channel::<Stored>(FANOUT_BATCHES_MAX);
    let hub = Hub::new(node, fanout.clone());
    let node = hub.node.clone();
    runtime()?.block_on(async move {
        // Before "Listening on": a stop right after it must be clean.
        let stop_signal = tessera_net::shutdown_signal();
        let endpoint = Endpoint::bind(listen, identity)?;
        let control = tessera_control::server::Listener::bind(&crate::daemon::socket_path(dir))?;
        let _pid_file = crate::daemon::PidFile::write(dir)?;
        let page = match page_addr {
            Some(addr) => bind_page(addr, ui).await,
            None => None,
        };
        crate::outln!(
            "{} {} ({})",
            ui.t("Listening on", "In ascolto su"),
            endpoint.local_addr()?,
            ui.t("Ctrl-C to stop", "Ctrl-C per fermare")
        );
        let (stop_tx, stop) = watch::channel(false);
        let ids = Arc::new(AtomicU64::new(1));
        let mut tasks = tokio::task::JoinSet::new();

        // Commands typed beside the daemon.
        let dialer = Dialer { endpoint: endpoint.clone(), network, device, ids: ids.clone(), stop: stop.clone() };

        // The operator's page.
        if let Some(listener) = page {
            let bound = listener.local_addr()?;
            let targets = crate::web::SyncTargets { dialer: dialer.clone(), peers: peers.to_vec() };
            let state = crate::web::AppState::new(hub.clone(), bound, Some(targets))?;
            crate::outln!("{} http://{bound}", ui.t("Operator's page:", "Pagina dell'operatore:"));
            tasks.spawn(crate::web::run(listener, state, stop.clone()));
        }
        tasks.spawn(crate::daemon::serve_control(control, hub, dialer, stop.clone()));

        let gate = SessionGate::new(GateLimits {
            handshakes_max: tessera_net::PENDING_HANDSHAKES_MAX,
            sessions_max: SESSIONS_MAX,
            sessions_per_device: tessera_net::SESSIONS_PER_DEVICE_MAX,
        });

        // Incoming sessions.
        {
            let endpoint = endpoint.clone();
            let node = node.clone();
            let fanout = fanout.clone();
            let mut stop = stop.clone();
            let ids = ids.clone();
            let gate = gate.clone();
            tasks.spawn(async move {
                let mut sessions = tokio::task::JoinSet::new();
                loop {
                    let incoming = tokio::select! {
                        incoming = endpoint.accept() => incoming,
                        _ = stop.changed() => break,
                    };
                    let Some(incoming) = incoming else { break };
                    let Some(handshake_place) = gate.begin_handshake() else {
                        tracing::warn!(peer = %incoming.remote_address(), "too many handshakes: connection refused");
                        incoming.refuse();
                        continue;
                    };
                    let gate = gate.clone();
                    let node = node.clone();
                    let fanout = fanout.clone();
                    let stop = stop.clone();
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    sessions.spawn(async move {
                        // The trust state is a copy: kept for the handshake only, not for
                        // the whole session (as in the relay).
                        let handshake = async {
                            let trust = lock(&node).store().trust().clone();
                            incoming.handshake(&trust).await
                        };
                        match handshake.await {
                            Ok(channel) => {
                                let Some(peer) = channel.peer().map(|p| p.certificate.device) else { return };
                                let session_place = match gate.admit(peer) {
                                    Ok(place) => place,
                                    Err(refusal) => {
                                        tracing::warn!(peer = %peer.short(), reason = refusal.label(), "session refused");
                                        channel.refuse(&refusal.to_string()).await;
                                        return;
                                    }
                                };
                                drop(handshake_place);
                                let config = SessionConfig::new(network, device);
                                let options = RunOptions { stop_when_caught_up: false, id, meter: None, closed: Some(session_place.closed()) };
                                match run_recorded(channel, node, config, fanout, stop, options, None).await {
                                    Ok(s) => tracing::info!(peer = %s.peer.certificate.device.short(), received = s.stats.envelopes_received, sent = s.stats.envelopes_sent, "session ended"),
                                    Err(e) => tracing::warn!(error = %e, "session failed"),
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "peer refused at the handshake"),
                        }
                    });
                }
                while sessions.join_next().await.is_some() {}
            });
        }

        // Outgoing sessions to configured peers and relays, with backoff.
        for (name, addr) in peer_addrs {
            let endpoint = endpoint.clone();
            let node = node.clone();
            let fanout = fanout.clone();
            let mut stop = stop.clone();
            let ids = ids.clone();
            tasks.spawn(async move {
                let mut backoff = BACKOFF_MIN;
                loop {
                    let connect = async {
                        let trust = lock(&node).store().trust().clone();
                        endpoint.connect(addr, &trust).await
                    };
                    let attempt = tokio::select! {
                        attempt = connect => attempt,
                        _ = stop.changed() => break,
                    };
                    match attempt {
                        Ok(channel) => {
                            let id = ids.fetch_add(1, Ordering::Relaxed);
                            let config = SessionConfig::new(network, device);
                            let options = RunOptions { stop_when_caught_up: false, id, meter: None, closed: None };
                            let result =
                                run_recorded(channel, node.clone(), config, fanout.clone(), stop.clone(), options, None)
                                    .await;
                            match result {
                                Ok(_) => backoff = BACKOFF_MIN,
                                Err(e) => tracing::warn!(peer = %name, error = %e, "session failed"),
                            }
                        }
                        Err(e) => tracing::info!(peer = %name, error = %e, retry_in = ?backoff, "peer not reachable"),
                    }
                    if *stop.borrow() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => break,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            });
        }

        // Keys for readers that lack them (new devices, a new epoch after a
        // revocation), written as they become known and pushed to every session.
        {
            let node = node.clone();
            let fanout = fanout.clone();
            let mut stop = stop.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(GRANTS_EVERY) => {}
                        _ = stop.changed() => break,
                    }
                    let written = lock(&node).grant_owed();
                    match written {
                        Ok(Some(envelope)) => {
                            let _ = fanout.send(Stored { by: 0, entries: Arc::new(vec![LogEntry::Envelope(envelope)]) });
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "read keys for new readers could not be written"),
                    }
                }
            });
        }

        stop_signal.await;
        crate::errln!("{}", ui.t("Stopping: finishing open sessions...", "Arresto: chiudo le sessioni aperte..."));
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} })
            .await;
        endpoint.close();
        let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
        // Everything acknowledged is already durable; writing the derived rows now only
        // spares the next start a catch-up.
        let mut node = lock(&node);
        if let Err(e) = node.flush_derived() {
            tracing::warn!(error = %e, "derived state not flushed; it will be rebuilt at the next start");
        }
        // stdout may be gone (a closed terminal or pipe): not a reason to fail a clean stop.
        let _ = writeln!(std::io::stdout(), "{}", ui.t("Stopped.", "Fermato."));
        Ok(())
    })
}
