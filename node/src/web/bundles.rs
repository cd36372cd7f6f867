//! The USB path: export this hub's history as a bundle file (downloaded, to copy on a
//! stick) and import one brought from another hub (uploaded), with a summary of what
//! came in. Both run the same code as `tessera export` and `tessera import`
//! ([`crate::commands::on_node`]), whose words are shown as the summary, plus the
//! records that arrived, by kind. The file passes through the data directory (the
//! bundle functions work on files) and is removed at once.

use anyhow::{Context, Result};
use axum::extract::{Multipart, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use tessera_records::kind::RecordKind;

use super::forms::csrf;
use super::layout::{page as frame, Section};
use super::security::{Ctx, CSRF_FIELD};
use super::{read, write, AppState, PageResult};
use crate::cli::{Command, ExportArgs, ImportArgs};
use crate::node::Node;
use crate::ui::{Captured, Ui};

const KINDS: [RecordKind; 4] =
    [RecordKind::Attendee, RecordKind::Device, RecordKind::Loan, RecordKind::Session];

/// A file of the data directory used once, removed when dropped.
pub(super) struct Scratch(pub(super) std::path::PathBuf);

impl Scratch {
    pub(super) fn new(node: &Node, what: &str) -> Result<Scratch> {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).context("the operating system's random source failed")?;
        Ok(Scratch(node.dir().join(format!("page-{what}-{}.tessera", hex::encode(random)))))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn counts(node: &Node) -> Result<[usize; 4]> {
    let mut out = [0; 4];
    for (n, kind) in out.iter_mut().zip(KINDS) {
        *n = node.docs().count(kind)?;
    }
    Ok(out)
}

fn kind_words(kind: RecordKind, ui: &Ui) -> &'static str {
    match kind {
        RecordKind::Attendee => ui.t("people", "persone"),
        RecordKind::Device => ui.t("devices", "dispositivi"),
        RecordKind::Loan => ui.t("loans", "prestiti"),
        _ => ui.t("sessions", "incontri"),
    }
}

/// What an import brought: the command's words, and the new records by kind.
struct Summary {
    ok: bool,
    captured: Captured,
    error: Option<String>,
    added: Vec<(RecordKind, usize)>,
}

fn render(ctx: &Ctx, summary: Option<&Summary>) -> Response {
    let title = ctx.t("USB stick", "Chiavetta USB");
    let body = html! {
        h1 { (title) }
        @if let Some(s) = summary { (summary_box(ctx, s)) }
        section class="card" {
            h2 { (ctx.t("Take this hub's changes to another hub", "Porta le modifiche di questo polo a un altro polo")) }
            p { (ctx.t(
                "Download the bundle and copy it on the USB stick; at the other hub, open this page and import it. Personal details stay sealed for the organisations that may read them.",
                "Scarica il pacchetto e copialo sulla chiavetta; all'altro polo apri questa pagina e importalo. I dati personali restano cifrati per gli enti che possono leggerli."
            )) }
            form method="post" action="/usb/export" {
                (csrf(ctx))
                button type="submit" { (ctx.t("Download the bundle", "Scarica il pacchetto")) }
            }
        }
        section class="card" {
            h2 { (ctx.t("Bring in changes from a USB stick", "Importa le modifiche da una chiavetta")) }
            form method="post" action={"/usb/import?" (CSRF_FIELD) "=" (ctx.csrf)} enctype="multipart/form-data" class="stack" {
                div class="field" {
                    label for="f-bundle" { (ctx.t("Bundle or trust file (.tessera, .trust)", "Pacchetto o file di fiducia (.tessera, .trust)")) }
                    input id="f-bundle" type="file" name="bundle" required;
                }
                button type="submit" { (ctx.t("Import", "Importa")) }
            }
        }
    };
    frame(ctx, Section::Usb, title, body)
}

fn summary_box(ctx: &Ctx, s: &Summary) -> Markup {
    let kind = if s.ok { "ok" } else { "error" };
    html! {
        div class={"notice " (kind)} role="status" {
            p { strong { @if s.ok { (ctx.t("Imported.", "Importato.")) } @else { (ctx.t("Not imported, or only in part.", "Non importato, o solo in parte.")) } } }
            @if !s.added.is_empty() {
                p { (ctx.t("New on this hub:", "Nuovi su questo polo:")) " "
                    (s.added.iter().map(|(k, n)| format!("{n} {}", kind_words(*k, &ctx.ui))).collect::<Vec<_>>().join(", ")) "." }
            }
            @for line in s.captured.stdout.lines().chain(s.captured.stderr.lines()).filter(|l| !l.trim().is_empty()) { p { (line) } }
            @if let Some(e) = &s.error { p { (e) } }
        }
    }
}

pub async fn page(ctx: Ctx) -> Response {
    render(&ctx, None)
}

/// The bundle of everything this hub holds, as a download.
pub async fn export(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let ui = ctx.ui;
    let bytes = write(&state.hub, &ctx, move |node| {
        let scratch = Scratch::new(node, "export")?;
        let command = Command::Export(ExportArgs { file: scratch.0.clone() });
        let (result, _) = crate::ui::capture(|| crate::commands::on_node(node, command, &ui));
        result?;
        std::fs::read(&scratch.0).context("cannot read the bundle just written")
    })
    .await?;
    let site = read(&state.hub, |node| Ok(node.config.site_name.clone())).await?;
    let name: String = site.chars().map(|c| if c.is_alphanumeric() { c } else { '-' }).collect();
    let file = format!("{name}-{}.tessera", tessera_records::model::format_date(crate::commands::today()));
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_string()),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// An uploaded bundle (or trust file) imported as `tessera import FILE` does.
pub async fn import(State(state): State<AppState>, ctx: Ctx, mut upload: Multipart) -> PageResult {
    let mut bytes = None;
    while let Ok(Some(field)) = upload.next_field().await {
        if field.name() == Some("bundle") {
            match field.bytes().await {
                Ok(b) => bytes = Some(b),
                Err(_) => {
                    let summary = Summary {
                        ok: false,
                        captured: Captured::default(),
                        error: Some(
                            ctx.t(
                                "The file could not be received (too large?).",
                                "Il file non è arrivato intero (troppo grande?).",
                            )
                            .into(),
                        ),
                        added: Vec::new(),
                    };
                    return Ok(render(&ctx, Some(&summary)));
                }
            }
        }
    }
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        let summary = Summary {
            ok: false,
            captured: Captured::default(),
            error: Some(ctx.t("Choose a file first.", "Scegli prima un file.").into()),
            added: Vec::new(),
        };
        return Ok(render(&ctx, Some(&summary)));
    };
    let ui = ctx.ui;
    let summary = write(&state.hub, &ctx, move |node| {
        let scratch = Scratch::new(node, "import")?;
        std::fs::write(&scratch.0, &bytes).context("cannot keep the uploaded file")?;
        let before = counts(node)?;
        let command = Command::Import(ImportArgs { file: scratch.0.clone(), allow_unknown_exporter: false });
        let (result, captured) = crate::ui::capture(|| crate::commands::on_node(node, command, &ui));
        let after = counts(node)?;
        let added = KINDS
            .iter()
            .zip(before.iter().zip(after))
            .filter(|(_, (b, a))| a > *b)
            .map(|(k, (b, a))| (*k, a - b))
            .collect();
        let error = result.err().map(|e| crate::cli::error_text(&e, &ui).0);
        Ok(Summary { ok: error.is_none(), captured, error, added })
    })
    .await?;
    Ok(render(&ctx, Some(&summary)))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request};
    use tessera_records::kind::RecordKind;

    use crate::web::testing::{tessera, TestPage, HOST};

    #[tokio::test]
    async fn a_bundle_goes_out_as_a_download_and_comes_back_in_with_a_summary() {
        let a = TestPage::with(|data| {
            tessera(data, &["device", "add", "--tag", "PC-0007", "--kind", "laptop", "--origin", "donated"]);
        });
        let bundle = a.post("/usb/export", &[]).await;
        assert_eq!(bundle.status, 200);
        assert!(bundle.headers["content-disposition"].to_str().unwrap().contains("Polo-Prova"));
        // Brought back to the same hub: everything is already here, and said so.
        let raw = {
            let request = Request::post("/usb/export")
                .header(header::HOST, HOST)
                .header(header::COOKIE, format!("tessera_csrf={}", a.token))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf={}", a.token)))
                .unwrap();
            let response = tower::ServiceExt::oneshot(a.app.clone(), request).await.unwrap();
            axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()
        };
        let boundary = "XBOUNDARYX";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"a.tessera\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
        body.extend_from_slice(&raw);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let upload = |to: &TestPage, token: &str| {
            Request::post(format!("/usb/import?csrf={token}"))
                .header(header::HOST, HOST)
                .header(header::COOKIE, format!("tessera_csrf={}", to.token))
                .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
                .body(Body::from(body.clone()))
                .unwrap()
        };
        let refused = a.send(upload(&a, "00.00")).await;
        assert_eq!(refused.status, 403, "an upload without the page's token is refused");
        let answer = a.send(upload(&a, &a.token)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.contains("Importato") && answer.body.contains("già presenti"), "{}", answer.body);
        assert_eq!(a.count(RecordKind::Device), 1);

        // A hub of another network takes nothing from it, and says so.
        let b = TestPage::new();
        let answer = b.send(upload(&b, &b.token)).await;
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains("Non importato"), "{}", answer.body);
        assert_eq!(b.count(RecordKind::Device), 0);
        let left: Vec<_> = std::fs::read_dir(a.hub.read(|n| n.dir().to_path_buf()))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("page-"))
            .collect();
        assert!(left.is_empty(), "no scratch file left behind");
    }
}
