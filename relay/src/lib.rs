//! `tessera-relay`: a store-and-forward peer run by a partner's IT person, so hubs
//! that are never online at the same time still exchange changes.
//!
//! It is a peer like any node (same QUIC transport, same sync protocol, same verified
//! store) that never authors envelopes and never reads them: it does not link
//! `tessera-records` or automerge, it verifies signatures and chains (so it cannot be
//! filled with garbage) and stores headers, commitments and opaque bodies. Limits:
//! sessions, per-device rate, per-partner storage quota. Metrics in Prometheus text
//! format on a local HTTP port. This file is the library; `main.rs` only runs [`run`].

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use tessera_log::{DeviceKey, DeviceRole, LogEntry, NetworkId, PartnerKey, SecretKey, TrustState};
use tessera_net::driver::{
    ingest_into_store, run_session, RunOptions, StoreLog, Stored, SyncStore, FANOUT_BATCHES_MAX,
};
use tessera_net::gate::{GateLimits, SessionGate};
use tessera_net::{Endpoint, Identity};
use tessera_store::{read_secret_key, trust_file, write_secret_key, Policy, Store};
use tessera_sync::{IngestFailure, LocalLog, SessionConfig};
use tokio::sync::{broadcast, watch};

pub mod help_it;
pub mod metrics;
pub mod ui;

use metrics::{Metrics, SessionCounters};
use ui::Ui;

const CONFIG_FILE: &str = "relay.json";
const KEY_FILE: &str = "keys/device.key";
const STORE_DIR: &str = "store";
/// The control socket of a serving relay: `status` and `import` typed beside it go
/// there (the store is the daemon's while it runs).
pub const SOCKET_FILE: &str = "relay.sock";

/// A command answered by the serving relay ended with this exit code; its output has
/// been printed already.
#[derive(Debug)]
pub struct ExitCode(pub u8);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitCode {}

/// Tessera relay: carries signed changes between hubs that are never online together.
#[derive(Debug, Parser)]
#[command(name = "tessera-relay", version)]
pub struct Cli {
    /// Data directory of the relay.
    #[arg(long, global = true, env = "TESSERA_RELAY_DATA", default_value = "/var/lib/tessera-relay")]
    pub data: PathBuf,
    /// Language of messages: `it` or `en` (default: from $LANG; Italian unless English).
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses a command line (the program's name first), with `--help` and clap's
    /// errors in the language of `ui` ([`help_it`] for Italian).
    pub fn parse_in<I, T>(args: I, ui: &Ui) -> Result<Cli, tessera_help::ParseFailure>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        tessera_help::parse_in(args, (ui.lang == ui::Lang::It).then_some(&help_it::TABLES))
    }
}

/// The language of a command line before it is parsed: `--lang` if given (Italian if
/// unknown, as the error about it is), else `locale`'s.
pub fn ui_of_args(args: &[std::ffi::OsString], locale: &str) -> Ui {
    Ui::for_locale(tessera_help::lang_flag(args).as_deref(), locale).unwrap_or(Ui { lang: ui::Lang::It })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the relay's device key and store; prints the key to have certified.
    Init {
        /// The network id (from the programme coordinator).
        #[arg(long)]
        network: String,
        /// A name for this relay, shown to peers.
        #[arg(long, default_value = "relay")]
        name: String,
    },
    /// Import the relay's certificate (a .trust file from the partner administrator).
    Import { file: PathBuf },
    /// Serve: accept hubs and relays, store and forward their changes.
    Serve(ServeArgs),
    /// What the relay holds.
    Status,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// UDP address for QUIC sessions.
    #[arg(long, default_value = "0.0.0.0:7420")]
    pub listen: String,
    /// Local HTTP address for Prometheus metrics (keep it on localhost).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics: String,
    /// Sessions served at once (authenticated peers; more are told the relay is full).
    #[arg(long, default_value_t = 1000)]
    pub sessions_max: usize,
    /// Sessions of one device at once (a hub's daemon and one `tessera sync`).
    #[arg(long, default_value_t = tessera_net::SESSIONS_PER_DEVICE_MAX)]
    pub sessions_per_device: usize,
    /// Connections in the handshake at once, before the peer has proved who it is;
    /// more are refused before their handshake.
    #[arg(long, default_value_t = tessera_net::PENDING_HANDSHAKES_MAX)]
    pub handshakes_max: usize,
    /// Seconds a connection may take to prove who it is.
    #[arg(long, default_value_t = 10)]
    pub handshake_timeout_secs: u64,
    /// Envelopes per second one device may upload (averaged over a minute).
    #[arg(long, default_value_t = 500)]
    pub device_rate_max: u64,
    /// Bytes of envelopes stored per partner organisation.
    #[arg(long, default_value_t = 2 * 1024 * 1024 * 1024)]
    pub partner_quota_bytes: u64,
}

impl Default for ServeArgs {
    /// The command line's defaults (one source for both).
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ServeArgs,
        }
        Defaults::parse_from(["tessera-relay"]).args
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RelayConfig {
    network: String,
    device: String,
    name: String,
}

fn load_config(dir: &Path, ui: &Ui) -> Result<RelayConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "{} {}: {}",
            ui.t("no relay in", "nessun relay in"),
            dir.display(),
            ui.t(
                "run `tessera-relay init --network ID` first",
                "esegui prima `tessera-relay init --network ID`"
            )
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} {}", path.display(), ui.t("is damaged", "è danneggiato")))
}

/// Runs the command line. `status` and `import` beside a serving relay are answered
/// by it (over [`SOCKET_FILE`]).
pub fn run(cli: Cli) -> Result<()> {
    let ui = Ui::new(cli.lang.as_deref())?;
    if let Some(args) = forwardable(&cli) {
        if let Some(done) = forward(&cli.data, args, &ui)? {
            print!("{}", done.stdout);
            eprint!("{}", done.stderr);
            return match done.code {
                0 => Ok(()),
                code => Err(ExitCode(code).into()),
            };
        }
    }
    match cli.command {
        Command::Init { network, name } => init(&cli.data, &network, &name, &ui),
        Command::Import { file } => {
            let config = load_config(&cli.data, &ui)?;
            let (mut store, _) = open_store(&cli.data, Some(&config), &ui)?;
            print!("{}", import(&mut store, &config, &file, &ui)?.0);
            Ok(())
        }
        Command::Serve(args) => serve(&cli.data, args, &ui),
        Command::Status => {
            let config = load_config(&cli.data, &ui)?;
            let (store, _) = open_store(&cli.data, None, &ui)?;
            print!("{}", status(&config, &store, None, &ui));
            Ok(())
        }
    }
}

fn open_store(
    dir: &Path,
    config: Option<&RelayConfig>,
    ui: &Ui,
) -> Result<(Store, tessera_store::StoreOpenReport)> {
    let network = config.map(|c| trust_file::parse_network(&c.network)).transpose()?;
    Store::open(&dir.join(STORE_DIR), network).with_context(|| {
        format!(
            "{} {}",
            ui.t("cannot open the store in", "non riesco ad aprire l'archivio in"),
            dir.display()
        )
    })
}

/// The arguments a serving relay runs for this command line, if it is one it runs:
/// paths made absolute here, where they were typed.
fn forwardable(cli: &Cli) -> Option<Vec<String>> {
    let mut args = match &cli.command {
        Command::Status => vec!["status".to_string()],
        Command::Import { file } => {
            let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            vec!["import".to_string(), file.to_string_lossy().into_owned()]
        }
        Command::Init { .. } | Command::Serve(_) => return None,
    };
    if let Some(lang) = &cli.lang {
        args.extend(["--lang".to_string(), lang.clone()]);
    }
    Some(args)
}

fn forward(dir: &Path, args: Vec<String>, ui: &Ui) -> Result<Option<tessera_control::Done>> {
    let socket = dir.join(SOCKET_FILE);
    let context = || ui.t("cannot use the running relay", "non riesco a usare il relay attivo").to_string();
    let Some(client) = tessera_control::Client::connect(&socket).with_context(context)? else {
        return Ok(None);
    };
    let request = tessera_control::Request {
        protocol: tessera_control::PROTOCOL,
        args,
        cwd: std::env::current_dir().unwrap_or_default(),
        locale: ui::locale(),
        passphrase: None,
        operator: None,
    };
    Ok(Some(client.call(&request).with_context(context)?))
}

fn init(dir: &Path, network: &str, name: &str, ui: &Ui) -> Result<()> {
    let network = trust_file::parse_network(network)?;
    if dir.join(CONFIG_FILE).exists() {
        bail!("{} {}", dir.display(), ui.t("already holds a relay", "contiene già un relay"));
    }
    let keys = dir.join("keys");
    tessera_store::create_key_dir(&keys)?;
    // The relay's own directory: owner only, even if it existed before.
    fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("cannot set the permissions of {}", keys.display()))?;
    let key = SecretKey::generate().context("the operating system's random source failed")?;
    write_secret_key(&dir.join(KEY_FILE), "device", &key)?;
    drop(Store::open(&dir.join(STORE_DIR), Some(network))?);
    let config =
        RelayConfig { network: network.0.to_hex(), device: key.public().to_hex(), name: name.into() };
    fs::write(dir.join(CONFIG_FILE), serde_json::to_vec_pretty(&config)?)?;
    println!("{} {}", ui.t("Relay created in", "Relay creato in"), dir.display());
    println!("{}: {}", ui.t("Device key", "Chiave del dispositivo"), config.device);
    println!(
        "{}: tessera admin certify-device --device {} --role relay --site \"{name}\" ...,\n{}: tessera-relay import FILE.trust",
        ui.t("Have it certified", "Fallo certificare"),
        config.device,
        ui.t("then run", "poi esegui"),
    );
    Ok(())
}

/// Imports certificates and revocations from a trust file. Returns what to print and
/// the entries stored (a serving relay pushes them to its sessions).
fn import(store: &mut Store, config: &RelayConfig, file: &Path, ui: &Ui) -> Result<(String, Vec<LogEntry>)> {
    use std::fmt::Write as _;
    let (network, entries) = trust_file::read(file)?;
    if network.0.to_hex() != config.network {
        bail!("{} {}", file.display(), ui.t("is for another network", "è di un'altra rete"));
    }
    let entries: Vec<LogEntry> = entries.into_iter().map(LogEntry::Trust).collect();
    let report = store.ingest(&entries, Policy::SkipInvalid)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} {} ({} {})",
        ui.t("Certificates or revocations imported:", "Certificati o revoche importati:"),
        report.trust_added,
        report.duplicates,
        ui.t("already here", "già presenti")
    );
    if !report.rejected.is_empty() {
        let mut refused = String::new();
        for rejected in &report.rejected {
            let _ = writeln!(
                refused,
                "{} {}: {}",
                ui.t("refused entry", "voce rifiutata"),
                rejected.index + 1,
                rejected.error
            );
        }
        bail!(
            "{refused}{} {}",
            report.rejected.len(),
            ui.t("entries were refused", "voci sono state rifiutate")
        );
    }
    let refused: std::collections::BTreeSet<usize> = report.rejected.iter().map(|r| r.index).collect();
    let stored =
        entries.into_iter().enumerate().filter(|(i, _)| !refused.contains(i)).map(|(_, e)| e).collect();
    Ok((text, stored))
}

/// What the relay holds; `live` when the serving relay answers (its sessions now).
fn status(config: &RelayConfig, store: &Store, live: Option<&Metrics>, ui: &Ui) -> String {
    let rows = [
        (ui.t("Network", "Rete"), config.network.clone()),
        (ui.t("Device key", "Chiave del dispositivo"), config.device.clone()),
        (
            ui.t("Serving", "In servizio"),
            match live {
                Some(metrics) => format!(
                    "{} ({} {})",
                    ui.t("yes", "sì"),
                    metrics.live_sessions(),
                    ui.t("sessions open", "sessioni aperte")
                ),
                None => ui.t("no", "no").to_string(),
            },
        ),
        (
            ui.t("Log size", "Dimensione del registro"),
            format!("{} {}", store.log_bytes(), ui.t("bytes", "byte")),
        ),
        (ui.t("Devices held", "Dispositivi presenti"), store.heads().len().to_string()),
        (ui.t("Changes held", "Modifiche presenti"), store.heads().total_envelopes().to_string()),
        (ui.t("Forks found", "Biforcazioni trovate"), store.forks().len().to_string()),
    ];
    let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    rows.iter()
        .map(|(label, value)| format!("{label}:{} {value}\n", " ".repeat(width - label.chars().count())))
        .collect()
}

/// Per-device upload rate and per-partner quota, enforced when a batch is stored.
#[derive(Debug)]
struct Limits {
    device_rate_max: u64,
    partner_quota_bytes: u64,
    /// Token bucket per device: (tokens, last refill).
    buckets: BTreeMap<DeviceKey, (f64, Instant)>,
    /// Bytes stored per partner since start (plus what the log held at start).
    partner_bytes: BTreeMap<PartnerKey, u64>,
}

/// The relay's store with its limits and metrics.
#[derive(Debug)]
pub struct RelayStore {
    store: Store,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl RelayStore {
    /// Checks a batch against the per-device rate and per-partner quota. Returns the
    /// bytes per partner to count once the batch is stored.
    fn check_limits(&mut self, entries: &[LogEntry]) -> Result<BTreeMap<PartnerKey, u64>, (usize, String)> {
        let trust = self.store.trust();
        let now = Instant::now();
        let mut per_device: BTreeMap<DeviceKey, u64> = BTreeMap::new();
        let mut per_partner: BTreeMap<PartnerKey, u64> = BTreeMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let LogEntry::Envelope(env) = entry else { continue };
            *per_device.entry(env.author()).or_default() += 1;
            if let Ok(cert) = trust.authorize(&env.author(), env.seq()) {
                let bytes = per_partner.entry(cert.partner).or_default();
                *bytes += env.encoded_len() as u64;
                let total = self.limits.partner_bytes.get(&cert.partner).copied().unwrap_or(0) + *bytes;
                if total > self.limits.partner_quota_bytes {
                    return Err((index, "partner storage quota exceeded".into()));
                }
            }
        }
        let rate = self.limits.device_rate_max as f64;
        let burst = rate * 60.0;
        for (device, count) in &per_device {
            let (tokens, last) = self.limits.buckets.entry(*device).or_insert((burst, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
            *last = now;
            if *tokens < *count as f64 {
                return Err((0, format!("device {} is uploading faster than allowed", device.short())));
            }
            *tokens -= *count as f64;
        }
        Ok(per_partner)
    }
}

impl SyncStore for RelayStore {
    fn with_log(&self, f: &mut dyn FnMut(&dyn LocalLog)) {
        f(&StoreLog(&self.store))
    }

    fn ingest_batch(&mut self, entries: &[LogEntry]) -> Result<Vec<LogEntry>, IngestFailure> {
        let per_partner = match self.check_limits(entries) {
            Ok(per_partner) => per_partner,
            Err((_, reason)) => {
                self.metrics.reject(if reason.contains("quota") { "quota" } else { "rate" });
                return Err(IngestFailure::Local { reason });
            }
        };
        match ingest_into_store(&mut self.store, entries) {
            Ok(new) => {
                for (partner, bytes) in per_partner {
                    *self.limits.partner_bytes.entry(partner).or_default() += bytes;
                }
                let mut bytes = 0u64;
                let mut envelopes = 0u64;
                for entry in &new {
                    if let LogEntry::Envelope(env) = entry {
                        envelopes += 1;
                        bytes += env.encoded_len() as u64;
                        self.metrics.seen(&env.author());
                    }
                }
                self.metrics.envelopes_in.fetch_add(envelopes, Ordering::Relaxed);
                self.metrics.bytes_in.fetch_add(bytes, Ordering::Relaxed);
                self.metrics.store_bytes.store(self.store.log_bytes(), Ordering::Relaxed);
                Ok(new)
            }
            Err(e) => {
                self.metrics.reject(match &e {
                    IngestFailure::Rejected { reason, .. } if reason.contains("signature") => "bad_signature",
                    IngestFailure::Rejected { reason, .. } if reason.contains("revoked") => "revoked",
                    IngestFailure::Rejected { reason, .. } if reason.contains("commitment") => "altered_body",
                    IngestFailure::Rejected { .. } => "invalid",
                    IngestFailure::Local { .. } => "local_error",
                });
                Err(e)
            }
        }
    }

    fn trust(&self) -> TrustState {
        self.store.trust().clone()
    }
}

fn lock<S>(m: &Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running relay (for `serve` and for tests in-process).
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Relay {
    /// Starts serving in the current tokio runtime; errors in the locale's language.
    pub async fn start(dir: &Path, args: ServeArgs) -> Result<Relay> {
        Relay::start_in(dir, args, &Ui::new(None).unwrap_or(Ui { lang: ui::Lang::It })).await
    }

    /// Starts serving in the current tokio runtime; errors in the language of `ui`.
    pub async fn start_in(dir: &Path, args: ServeArgs, ui: &Ui) -> Result<Relay> {
        let config = load_config(dir, ui)?;
        let network: NetworkId = trust_file::parse_network(&config.network)?;
        let key = read_secret_key(&dir.join(KEY_FILE), "device")?;
        let device = DeviceKey(key.public());
        let (store, report) = Store::open(&dir.join(STORE_DIR), Some(network))?;
        if let Some(torn) = &report.log.torn_tail {
            tracing::warn!(bytes = torn.bytes_cut, "an unfinished write from a crash was set aside");
        }
        let certified = store.trust().devices().any(|c| c.device == device && c.role == DeviceRole::Relay);
        if !certified {
            bail!(
                "{} `tessera admin certify-device --role relay --device {}` {} `tessera-relay import FILE`",
                ui.t(
                    "this relay's device key is not certified as a relay yet: ask a partner administrator for",
                    "la chiave di questo relay non è ancora certificata come relay: chiedi a un amministratore \
                     dell'ente"
                ),
                device.0.to_hex(),
                ui.t("and run", "e poi esegui"),
            );
        }
        let chain = store.trust().chain_of(&device).into_iter().cloned().collect();
        let metrics = Arc::new(Metrics::default());
        metrics.store_bytes.store(store.log_bytes(), Ordering::Relaxed);
        let mut partner_bytes = BTreeMap::new();
        for entry in store.entries_from(store.log_start()) {
            if let (_, LogEntry::Envelope(env)) = entry? {
                if let Ok(cert) = store.trust().authorize(&env.author(), env.seq()) {
                    *partner_bytes.entry(cert.partner).or_default() += env.encoded_len() as u64;
                }
            }
        }
        let relay_store = RelayStore {
            store,
            limits: Limits {
                device_rate_max: args.device_rate_max,
                partner_quota_bytes: args.partner_quota_bytes,
                buckets: BTreeMap::new(),
                partner_bytes,
            },
            metrics: metrics.clone(),
        };
        let store = Arc::new(Mutex::new(relay_store));
        let listen: SocketAddr = args.listen.parse().with_context(|| {
            format!("--listen `{}` {}", args.listen, ui.t("is not HOST:PORT", "non è HOST:PORTA"))
        })?;
        let endpoint = Endpoint::bind(listen, Identity { network, key, chain })?;
        let addr = endpoint.local_addr()?;
        let metrics_listener = tokio::net::TcpListener::bind(&args.metrics).await.with_context(|| {
            format!(
                "{} {}",
                ui.t("cannot listen for metrics on", "non riesco ad ascoltare per le metriche su"),
                args.metrics
            )
        })?;
        let metrics_addr = metrics_listener.local_addr()?;
        let control = tessera_control::server::Listener::bind(&dir.join(SOCKET_FILE))?;
        let (stop_tx, stop) = watch::channel(false);
        tracing::info!(%addr, %metrics_addr, "relay serving");
        let (fanout, _) = broadcast::channel::<Stored>(FANOUT_BATCHES_MAX);
        let control = tokio::spawn(serve_control(
            control,
            Control { store: store.clone(), metrics: metrics.clone(), fanout: fanout.clone(), config },
            stop.clone(),
        ));
        let task = tokio::spawn(async move {
            let served =
                serve_loop(endpoint, store, metrics, metrics_listener, fanout, stop, args, network, device)
                    .await;
            let _ = control.await;
            served
        });
        Ok(Relay { addr, metrics_addr, stop: stop_tx, task })
    }

    /// Stops accepting, closes sessions cleanly, flushes; everything acknowledged was
    /// already durable.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("relay task failed")?
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_loop(
    endpoint: Endpoint,
    store: Arc<Mutex<RelayStore>>,
    metrics: Arc<Metrics>,
    metrics_listener: tokio::net::TcpListener,
    fanout: broadcast::Sender<Stored>,
    mut stop: watch::Receiver<bool>,
    args: ServeArgs,
    network: NetworkId,
    device: DeviceKey,
) -> Result<()> {
    let gate = SessionGate::new(GateLimits {
        handshakes_max: args.handshakes_max,
        sessions_max: args.sessions_max,
        sessions_per_device: args.sessions_per_device,
    });
    let handshake_limit = Duration::from_secs(args.handshake_timeout_secs.max(1));
    let ids = AtomicU64::new(1);
    let mut sessions = tokio::task::JoinSet::new();
    let metrics_task = tokio::spawn(metrics::serve(metrics_listener, metrics.clone(), stop.clone()));
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = stop.changed() => break,
        };
        let Some(incoming) = incoming else { break };
        let Some(handshake_place) = gate.begin_handshake() else {
            metrics.reject("too_many_handshakes");
            incoming.refuse();
            continue;
        };
        let gate = gate.clone();
        let store = store.clone();
        let metrics = metrics.clone();
        let fanout = fanout.clone();
        let stop = stop.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        sessions.spawn(async move {
            // The trust state is a copy (a few KiB per certified device): keep it
            // for the handshake only, not for the whole session (measured: 2.4 MiB per
            // live session in a network of 1,000 devices).
            let handshake = async {
                let trust = lock(&store).trust();
                incoming.handshake_within(&trust, handshake_limit).await
            };
            let channel = match handshake.await {
                Ok(channel) => channel,
                Err(e) => {
                    let reason = match e {
                        tessera_net::NetError::ProtocolVersion { .. } => "protocol_version",
                        _ => "handshake",
                    };
                    metrics.reject(reason);
                    tracing::info!(error = %e, "peer refused at the handshake");
                    return;
                }
            };
            let Some(peer) = channel.peer().map(|p| p.certificate.device) else { return };
            let session_place = match gate.admit(peer) {
                Ok(place) => place,
                Err(refusal) => {
                    metrics.reject(refusal.label());
                    tracing::info!(peer = %peer.short(), reason = refusal.label(), "session refused");
                    channel.refuse(&refusal.to_string()).await;
                    return;
                }
            };
            drop(handshake_place);
            metrics.seen(&peer);
            let config = SessionConfig::new(network, device);
            let counted =
                metrics.session_started(SessionCounters { meter: Arc::default(), wire: channel.wire() });
            let meter = Some(counted.counters().meter.clone());
            let options =
                RunOptions { stop_when_caught_up: false, id, meter, closed: Some(session_place.closed()) };
            let result = run_session(channel, store, config, fanout, stop, options, |_, _| {}).await;
            drop(counted);
            if let Some(why) = *session_place.closed().borrow() {
                metrics.reject(why.label());
            }
            match result {
                Ok(summary) => tracing::info!(
                    peer = %summary.peer.certificate.device.short(),
                    received = summary.stats.envelopes_received,
                    sent = summary.stats.envelopes_sent,
                    "session ended"
                ),
                Err(e) => tracing::info!(error = %e, "session failed"),
            }
        });
        // Reap finished sessions so the set stays small.
        while sessions.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    endpoint.close();
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    metrics_task.abort();
    let mut store = lock(&store);
    store.store.flush_derived()?;
    Ok(())
}

/// What the control socket's commands need of the serving relay.
#[derive(Clone)]
struct Control {
    store: Arc<Mutex<RelayStore>>,
    metrics: Arc<Metrics>,
    fanout: broadcast::Sender<Stored>,
    config: RelayConfig,
}

/// Answers `status` and `import` typed beside the serving relay.
async fn serve_control(
    listener: tessera_control::server::Listener,
    control: Control,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            stream = listener.accept() => stream,
            _ = stop.changed() => break,
        };
        let Ok(stream) = stream else { continue };
        let control = control.clone();
        // One at a time: they are short, and they take the store's lock.
        let answered = tessera_control::server::answer(stream, |request| async move {
            tokio::task::spawn_blocking(move || control.answer(request)).await.unwrap_or_else(|e| {
                tessera_control::Done {
                    stderr: format!("internal error: {e}\n"),
                    code: 1,
                    ..Default::default()
                }
            })
        })
        .await;
        if let Err(e) = answered {
            tracing::info!(error = %e, "control request not answered");
        }
    }
}

impl Control {
    fn answer(&self, request: tessera_control::Request) -> tessera_control::Done {
        let args: Vec<std::ffi::OsString> =
            std::iter::once("tessera-relay".to_string()).chain(request.args).map(Into::into).collect();
        let cli = match Cli::parse_in(&args, &ui_of_args(&args, &request.locale)) {
            Ok(cli) => cli,
            Err(e) => {
                return tessera_control::Done {
                    stderr: e.text(),
                    code: u8::try_from(e.exit_code()).unwrap_or(2),
                    ..Default::default()
                }
            }
        };
        let ui = Ui::for_locale(cli.lang.as_deref(), &request.locale).unwrap_or(Ui { lang: ui::Lang::It });
        let result = match cli.command {
            Command::Status => {
                let relay = lock(&self.store);
                Ok(status(&self.config, &relay.store, Some(&self.metrics), &ui))
            }
            Command::Import { file } => {
                let mut relay = lock(&self.store);
                import(&mut relay.store, &self.config, &file, &ui).map(|(text, stored)| {
                    // New revocations reach connected hubs now, not at their next session.
                    let _ = self.fanout.send(Stored { by: 0, entries: Arc::new(stored) });
                    text
                })
            }
            Command::Init { .. } | Command::Serve(_) => Err(anyhow::anyhow!(
                "{}",
                ui.t("this relay is already serving", "questo relay è già in servizio")
            )),
        };
        match result {
            Ok(stdout) => tessera_control::Done { stdout, stderr: String::new(), code: 0 },
            Err(error) => {
                tessera_control::Done { stdout: String::new(), stderr: error_text(&error, &ui), code: 1 }
            }
        }
    }
}

/// An error and its causes, in the operator's language.
pub fn error_text(error: &anyhow::Error, ui: &Ui) -> String {
    let mut text = format!("{} {error}\n", ui.t("error:", "errore:"));
    for cause in error.chain().skip(1) {
        let os = cause.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        let said = match os.and_then(tessera_help::io_kind_it) {
            Some(it) if ui.lang == ui::Lang::It => it.to_string(),
            _ => cause.to_string(),
        };
        text.push_str(&format!("  {} {said}\n", ui.t("because:", "perché:")));
    }
    text
}

fn serve(dir: &Path, args: ServeArgs, ui: &Ui) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let stop = tessera_net::shutdown_signal();
        let relay = Relay::start_in(dir, args, ui).await?;
        // Tests and scripts read this line: its start stays the same in both languages.
        println!(
            "Relay listening on {} ({} http://{}/metrics)",
            relay.addr,
            ui.t("metrics on", "metriche su"),
            relay.metrics_addr
        );
        stop.await;
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            ui.t("Stopping: closing sessions...", "Arresto: chiudo le sessioni...")
        );
        relay.shutdown().await?;
        let _ = writeln!(std::io::stdout(), "{}", ui.t("Stopped.", "Fermato."));
        Ok(())
    })
}
