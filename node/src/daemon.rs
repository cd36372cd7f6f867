//! One process owns the store; every command still works beside it.
//!
//! `tessera serve` holds the node (sled and the log lock it for one process). A
//! `tessera` command typed while it runs finds the daemon's control socket,
//! `DATA/tessera.sock`, and sends it what was typed ([`forward`]); the daemon runs the
//! same command on the node it holds, with its output captured ([`crate::ui::capture`]),
//! and sends back the text and the exit code, which the client prints as if it had
//! run the command itself. Without a daemon the client opens the store as before.
//! Whatever a command writes through the daemon is pushed at once to every peer and
//! relay connected ([`Hub::write`]).
//!
//! A daemon killed with SIGKILL leaves its socket file behind: nobody accepts on it,
//! so a client opens the store itself (the lock died with the process), and the next
//! `serve` replaces the file. A daemon that is alive but stuck is named, with its pid
//! and how to stop it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::msg::SaidContext as _;
use anyhow::Result;
use tessera_control::{Client, ControlError, Done, Request, PROTOCOL};
use tessera_log::LogEntry;
use tessera_net::driver::Stored;
use tokio::sync::broadcast;

use crate::cli::{Cli, Command};
use crate::node::Node;
use crate::ui::Ui;

/// The control socket in the data directory.
pub const SOCKET_FILE: &str = "tessera.sock";
/// The daemon's process id, to name it when it does not answer.
pub const PID_FILE: &str = "serve.pid";
/// Commands the daemon runs at once (they take turns on the node; the rest wait).
pub const CONTROL_MAX: usize = 8;
/// Entries per batch pushed to the sessions after a command.
const PUSH_BATCH: usize = 512;

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_FILE)
}

/// The node a daemon holds, and the channel that pushes what is written to its
/// sessions. Cloned into every task of the daemon (sessions, control, the page).
#[derive(Clone)]
pub struct Hub {
    pub node: Arc<Mutex<Node>>,
    pub fanout: broadcast::Sender<Stored>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("sessions", &self.fanout.receiver_count()).finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(node: Node, fanout: broadcast::Sender<Stored>) -> Hub {
        Hub { node: Arc::new(Mutex::new(node)), fanout }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the node with nothing written.
    pub fn read<R>(&self, f: impl FnOnce(&Node) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` on the node, then pushes whatever it appended to the log (its own
    /// changes, an imported bundle, read keys) to every connected peer and relay,
    /// whether `f` succeeded or not: what is in the log is durable and counts.
    pub fn write<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        let mut node = self.lock();
        let start = node.store().log_end();
        let result = f(&mut node);
        if node.store().log_end() != start {
            let mut batch = Vec::new();
            for item in node.store().entries_from(start) {
                match item {
                    Ok((_, entry)) => batch.push(entry),
                    Err(e) => {
                        // The sessions will find it at their next reconciliation.
                        tracing::warn!(error = %e, "new entries could not be read back to push them");
                        break;
                    }
                }
                if batch.len() == PUSH_BATCH {
                    self.push(std::mem::take(&mut batch));
                }
            }
            if !batch.is_empty() {
                self.push(batch);
            }
        }
        result
    }

    fn push(&self, entries: Vec<LogEntry>) {
        // No session connected is not an error: they reconcile when they come.
        let _ = self.fanout.send(Stored { by: 0, entries: Arc::new(entries) });
    }
}

/// What the client needs to send: the arguments as typed, as text.
fn typed_args() -> Result<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string().map_err(|arg| {
                crate::said!(
                    "the argument {arg:?} is not valid text (UTF-8)",
                    "l'argomento {arg:?} non è testo valido (UTF-8)"
                )
                .into()
            })
        })
        .collect()
}

fn locale() -> String {
    std::env::var("LC_ALL")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("LANG").ok())
        .unwrap_or_default()
}

/// How long a client waits for a silent daemon (`$TESSERA_DAEMON_WAIT` seconds).
fn silence_max() -> Duration {
    std::env::var("TESSERA_DAEMON_WAIT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(tessera_control::SILENCE_MAX, Duration::from_secs)
}

/// Sends this process's command line to the daemon serving `dir`, if one runs.
/// `Ok(None)`: no daemon; open the store here.
pub fn forward(dir: &Path, command: &Command, ui: &Ui) -> Result<Option<Done>> {
    let socket = socket_path(dir);
    let wait = silence_max();
    let stuck =
        |error: ControlError| -> anyhow::Error {
            match error {
                ControlError::NotAnswering { seconds, .. } => {
                    let pid = std::fs::read_to_string(dir.join(PID_FILE)).unwrap_or_default();
                    let pid = pid.trim();
                    let pid = if pid.is_empty() { "?" } else { pid };
                    anyhow::anyhow!(
                        "{} {pid} {} {seconds} s. {} `kill {pid}` {}",
                        ui.t(
                            "the Tessera daemon serving this data directory (pid",
                            "il servizio Tessera che usa questa cartella dati (pid"
                        ),
                        ui.t("does not answer since", "non risponde da"),
                        ui.t(
                            "Stop it with Ctrl-C in its window or with",
                            "Fermalo con Ctrl-C nella sua finestra o con"
                        ),
                        ui.t(
                            "and try again: its store is left consistent.",
                            "e riprova: i dati restano integri."
                        ),
                    )
                }
                other => anyhow::Error::new(other).context(ui.t(
                    "cannot use the running Tessera daemon",
                    "non riesco a usare il servizio Tessera attivo",
                )),
            }
        };
    let Some(client) = Client::connect_within(&socket, wait).map_err(stuck)? else {
        return Ok(None);
    };
    let cwd = std::env::current_dir()
        .said("cannot read the current directory", "non riesco a leggere la cartella corrente")?;
    // A key file under a passphrase: asked here, where the operator is.
    let passphrase = match command {
        Command::Attendee(crate::cli::AttendeeCommand::Erase { network_key: Some(key), .. })
            if tessera_store::needs_passphrase(key) =>
        {
            Some(crate::passphrase::existing(key, ui)?.to_string())
        }
        _ => None,
    };
    let operator = std::env::var(crate::operators::OPERATOR_ENV).ok();
    let request =
        Request { protocol: PROTOCOL, args: typed_args()?, cwd, locale: locale(), passphrase, operator };
    client.with_silence(wait).call(&request).map(Some).map_err(stuck)
}

/// Makes the paths a command names absolute, relative to the client's directory.
fn absolutize(command: &mut Command, cwd: &Path) {
    let fix = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = cwd.join(&*path);
        }
    };
    match command {
        Command::Export(args) => fix(&mut args.file),
        Command::Import(args) => fix(&mut args.file),
        Command::Attendee(crate::cli::AttendeeCommand::Import { file, .. }) => fix(file),
        Command::Attendee(crate::cli::AttendeeCommand::Erase { network_key: Some(key), .. }) => fix(key),
        _ => {}
    }
}

/// A command's result as the client prints it: its output, the error chain in the
/// operator's language, the exit code.
fn finish(result: Result<()>, mut captured: crate::ui::Captured, ui: &Ui) -> Done {
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            let (text, code) = crate::cli::error_text(&error, ui);
            captured.stderr.push_str(&text);
            code
        }
    };
    Done { stdout: captured.stdout, stderr: captured.stderr, code }
}

/// The daemon's answer to one request.
pub async fn answer(hub: Hub, net: crate::net_cmd::Dialer, request: Request) -> Done {
    let typed: Vec<std::ffi::OsString> = request.args.iter().map(Into::into).collect();
    let lang = match crate::cli::lang_flag(&typed).map(|flag| Ui::for_locale(Some(&flag), &request.locale)) {
        Some(Ok(ui)) => ui.lang,
        Some(Err(_)) => tessera_records::vocab::Lang::It,
        None => Ui::for_locale(None, &request.locale).map_or(tessera_records::vocab::Lang::It, |ui| ui.lang),
    };
    let parsed = Cli::try_parse_from_args(&request.args, lang);
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return Done { stdout: String::new(), stderr: e.text(), code: 2 },
    };
    let ui = match Ui::for_locale(cli.lang.as_deref(), &request.locale) {
        Ok(ui) => ui,
        Err(e) => return finish(Err(e), Default::default(), &Ui { lang: tessera_records::vocab::Lang::It }),
    };
    let mut command = cli.command;
    absolutize(&mut command, &request.cwd);
    let passphrase = request.passphrase;
    let operator = request.operator;
    match command {
        Command::Serve { .. } => finish(
            Err(anyhow::anyhow!(
                "{} {})",
                ui.t("this node is already serving (pid", "questo nodo è già in servizio (pid"),
                std::process::id()
            )),
            Default::default(),
            &ui,
        ),
        Command::Sync { peer } => match net.sync_now(&hub, &peer, &ui).await {
            Ok(captured) => finish(Ok(()), captured, &ui),
            Err(e) => finish(Err(e), Default::default(), &ui),
        },
        command if command.needs_store() => {
            let work = tokio::task::spawn_blocking(move || {
                let (result, captured) = crate::ui::capture(|| {
                    crate::passphrase::with_client_passphrase(passphrase, || {
                        hub.write(|node| {
                            node.set_operator(operator.as_deref(), &ui);
                            let done = crate::commands::on_node(node, command, &ui);
                            node.set_operator(None, &ui);
                            done
                        })
                    })
                });
                finish(result, captured, &ui)
            });
            work.await.unwrap_or_else(|e| Done {
                stdout: String::new(),
                stderr: format!(
                    "{} {e}\n",
                    ui.t(
                        "the command stopped with an internal error:",
                        "il comando si è fermato per un errore interno:"
                    )
                ),
                code: 1,
            })
        }
        _ => finish(
            Err(anyhow::anyhow!(
                "{}",
                ui.t("this command does not go to the daemon", "questo comando non passa dal servizio")
            )),
            Default::default(),
            &ui,
        ),
    }
}

/// The control socket of a serving node: one task per connection, at most
/// [`CONTROL_MAX`] at once.
pub async fn serve_control(
    listener: tessera_control::server::Listener,
    hub: Hub,
    net: crate::net_cmd::Dialer,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let places = Arc::new(tokio::sync::Semaphore::new(CONTROL_MAX));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            stream = listener.accept() => stream,
            _ = stop.changed() => break,
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "control connection failed");
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            connections.spawn(tessera_control::server::refuse(
                stream,
                format!("{CONTROL_MAX} commands are running already; try again in a moment"),
            ));
            continue;
        };
        let hub = hub.clone();
        let net = net.clone();
        connections.spawn(async move {
            let answered = tessera_control::server::answer(stream, |request| answer(hub, net, request)).await;
            if let Err(e) = answered {
                tracing::info!(error = %e, "control request not answered");
            }
            drop(place);
        });
        while connections.try_join_next().is_some() {}
    }
    // Commands under way finish: their writes are durable either way.
    while connections.join_next().await.is_some() {}
}

/// Writes the daemon's pid next to its socket; removed again by the guard.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn write(dir: &Path) -> Result<PidFile> {
        let path = dir.join(PID_FILE);
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .with_said(|| crate::msg::cannot("write", &path))?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
