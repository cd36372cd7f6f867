//! The operator's page: what `tessera serve` shows in a browser on the hub's own
//! computer (`http://127.0.0.1:7421` unless `--ui ADDR`; none with `--no-ui`).
//!
//! Server-rendered HTML (maud) with plain forms, so every page works without
//! JavaScript and offline: the stylesheet and one small script are in the binary.
//! Pages read the node briefly through [`Hub::read`] and write through [`Hub::write`],
//! so what the operator saves here is pushed at once to connected peers, exactly as a
//! command typed beside the daemon. The rules are the domain's
//! (`tessera_records::validate`); a form that breaks one is shown again with the
//! message next to its field, what was typed kept, nothing saved.
//!
//! Every request passes [`security::guard`] first (Host, Origin, CSRF, language).
//! Map: [`layout`] (the frame), [`forms`] (fields and errors), [`words`] (messages
//! and dates), one file per family of pages.

mod assets;
mod bundles;
mod conflicts;
mod devices;
mod forms;
mod home;
mod import;
mod layout;
mod names;
mod people;
mod reports;
pub mod security;
mod sessions;
mod who;
mod words;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::daemon::Hub;
use crate::net_cmd::Dialer;
use crate::node::Node;
use security::{Ctx, HostRule};

/// Where the page listens unless `--ui` says otherwise: this computer only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7421";
/// Largest form body (a person's details are a few hundred bytes).
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Largest bundle uploaded from a USB stick through the page; larger ones go through
/// `tessera import FILE`.
pub const UPLOAD_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Operators' passwords checked at once ([`AppState`]).
const PASSWORD_CHECKS_MAX: usize = 2;

/// What the page can sync with when the operator presses "sync now".
#[derive(Debug, Clone)]
pub struct SyncTargets {
    pub dialer: Dialer,
    pub peers: Vec<String>,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    secret: Arc<[u8; 32]>,
    hosts: HostRule,
    sync: Option<SyncTargets>,
    /// The node's data directory, where the list of operators is.
    dir: Arc<std::path::PathBuf>,
    /// Password checks at once: each is an argon2id of 19 MiB, so a flood of wrong
    /// passwords queues here instead of exhausting memory and cores.
    password_checks: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("hosts", &self.hosts).finish_non_exhaustive()
    }
}

impl AppState {
    /// The page of `hub`, answering at `bound` (the address it listens on).
    pub fn new(hub: Hub, bound: SocketAddr, sync: Option<SyncTargets>) -> Result<AppState> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).context("the operating system's random source failed")?;
        let dir = Arc::new(hub.read(|node| node.dir().to_path_buf()));
        Ok(AppState {
            hub,
            secret: Arc::new(secret),
            hosts: HostRule::for_bound(bound),
            sync,
            dir,
            password_checks: Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS_MAX)),
        })
    }
}

/// Every page, behind the guard.
pub fn router(state: AppState) -> Router {
    let upload = post(bundles::import).layer(DefaultBodyLimit::max(UPLOAD_BYTES_MAX));
    Router::new()
        .route("/", get(home::page_handler))
        .route("/sync", post(home::sync_now))
        .route("/who", get(who::form).post(who::choose))
        .route("/assets/style.css", get(assets::style))
        .route("/assets/app.js", get(assets::script))
        .route("/people", get(people::list).post(people::create))
        .route("/people/new", get(people::new_form))
        .route(
            "/people/import",
            get(import::form_page).post(import::import).layer(DefaultBodyLimit::max(import::CSV_BYTES_MAX)),
        )
        .route("/people/{id}", get(people::show).post(people::update))
        .route("/people/{id}/edit", get(people::edit_form))
        .route("/people/{id}/erase", post(people::erase))
        .route("/devices", get(devices::list).post(devices::create))
        .route("/devices/new", get(devices::new_form))
        .route("/devices/{id}", get(devices::show).post(devices::update))
        .route("/devices/{id}/edit", get(devices::edit_form))
        .route("/loans", get(devices::loans).post(devices::lend))
        .route("/loans/new", get(devices::lend_form))
        .route("/loans/preview", get(devices::preview))
        .route("/loans/{id}/return", post(devices::give_back))
        .route("/loans/{id}/void", post(devices::void))
        .route("/loans/{id}/agreement", get(devices::agreement))
        .route("/sessions", get(sessions::week).post(sessions::create))
        .route("/sessions/new", get(sessions::new_form))
        .route("/sessions/{id}", get(sessions::show).post(sessions::attendance))
        .route("/sessions/{id}/cancel", post(sessions::cancel))
        .route("/conflicts", get(conflicts::list))
        .route("/conflicts/resolve", post(conflicts::resolve))
        .route("/reports", get(reports::page))
        .route("/reports/report.csv", get(reports::csv))
        .route("/usb", get(bundles::page))
        .route("/usb/export", post(bundles::export))
        .route("/usb/import", upload)
        .fallback(not_found_route)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::guard))
        .with_state(state)
}

/// Binds the page's address.
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot open the operator's page on {addr}"))
}

/// Serves the page until `stop` turns true.
pub async fn run(listener: TcpListener, state: AppState, mut stop: watch::Receiver<bool>) {
    let app = router(state);
    let stopped = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
        tracing::warn!(error = %e, "the operator's page stopped with an error");
    }
}

/// A page that could not be made: said to the operator in words, the cause in the
/// daemon's log (causes name files and record kinds, never a person's data).
#[derive(Debug)]
pub struct Failure(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure(error.into())
    }
}

/// Marks a response as a failure, for the guard to render in the operator's language.
#[derive(Debug, Clone, Copy)]
pub struct Failed;

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self.0, "a page failed");
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(Failed);
        response
    }
}

pub type PageResult = Result<Response, Failure>;

/// The page shown for a [`Failure`].
pub fn failure_page(ctx: &Ctx) -> Response {
    let body = html! {
        h1 { (ctx.t("Something went wrong", "Qualcosa non ha funzionato")) }
        p { (ctx.t(
            "The page could not be made. Nothing you saved before is lost. Try again; if it happens again, `tessera status` in a terminal says more.",
            "Non è stato possibile preparare la pagina. Niente di ciò che hai salvato prima è perso. Riprova; se succede ancora, `tessera status` in un terminale dice di più."
        )) }
        p { a href="/" { (ctx.t("Back to today's page", "Torna alla pagina di oggi")) } }
    };
    let mut response = layout::page(ctx, layout::Section::Home, ctx.t("Error", "Errore"), body);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// "Not found", in the operator's language.
pub fn not_found(ctx: &Ctx) -> Response {
    let body = html! {
        h1 { (ctx.t("Not found", "Non trovato")) }
        p { (ctx.t("This page or record does not exist on this hub (yet).", "Questa pagina o scheda non esiste (ancora) su questo polo.")) }
        p { a href="/" { (ctx.t("Back to today's page", "Torna alla pagina di oggi")) } }
    };
    let mut response = layout::page(ctx, layout::Section::Home, ctx.t("Not found", "Non trovato"), body);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

async fn not_found_route(ctx: Ctx) -> Response {
    not_found(&ctx)
}

/// Runs `f` on the node off the async threads, the lock held only meanwhile.
pub async fn read<R: Send + 'static>(
    hub: &Hub,
    f: impl FnOnce(&Node) -> Result<R> + Send + 'static,
) -> Result<R, Failure> {
    let hub = hub.clone();
    let done = tokio::task::spawn_blocking(move || hub.read(f)).await.context("a page's reader stopped")?;
    Ok(done?)
}

/// Runs `f` on the node to write, its changes recording the operator working on this
/// page ([`who`]); what it appends is pushed to the connected peers.
pub async fn write<R: Send + 'static>(
    hub: &Hub,
    ctx: &Ctx,
    f: impl FnOnce(&mut Node) -> Result<R> + Send + 'static,
) -> Result<R, Failure> {
    let hub = hub.clone();
    let (operator, ui) = (ctx.operator.clone(), ctx.ui);
    let done = tokio::task::spawn_blocking(move || {
        hub.write(|node| {
            node.set_operator(operator.as_deref(), &ui);
            let done = f(node);
            node.set_operator(None, &ui);
            done
        })
    })
    .await
    .context("a page's writer stopped")?;
    Ok(done?)
}

/// Runs a command of the command line on the node, as the daemon runs a `tessera`
/// typed beside it: the page's actions that are the CLI's (cancel a session, void a
/// loan, erase a person) are the very same code, rules and messages. `Ok(what it
/// printed)`, or `Err(what it printed, then what went wrong, every cause in the
/// operator's language)`.
pub async fn run_command(
    hub: &Hub,
    ctx: &Ctx,
    command: crate::cli::Command,
) -> Result<Result<String, String>, Failure> {
    let ui = ctx.ui;
    write(hub, ctx, move |node| {
        let (result, captured) = crate::ui::capture(|| crate::commands::on_node(node, command, &ui));
        Ok(match result {
            Ok(()) => Ok(captured.stdout),
            Err(e) => {
                let why =
                    e.chain().map(|cause| crate::msg::cause_text(cause, &ui)).collect::<Vec<_>>().join(": ");
                let printed = format!("{}{}", captured.stdout, captured.stderr);
                Err(if printed.trim().is_empty() { why } else { format!("{}\n{why}", printed.trim_end()) })
            }
        })
    })
    .await
}

/// A redirect after a POST that saved (303: the browser asks the page with GET).
pub fn see_other(to: &str) -> Response {
    axum::response::Redirect::to(to).into_response()
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
