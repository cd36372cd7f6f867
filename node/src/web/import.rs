//! A spreadsheet of people, imported from the page: the uploaded CSV goes through
//! `tessera attendee import` itself (every row checked by `attendee add`'s rules and
//! duplicate check, all or nothing, at most 500 rows), first as a check that saves
//! nothing and lists every row and its error in words, then for real.

use axum::extract::{Multipart, State};
use axum::response::Response;
use maud::{html, Markup};

use super::bundles::Scratch;
use super::forms::{self, select, FieldErrors, Typed};
use super::layout::{notice, page, Section};
use super::security::{Ctx, CSRF_FIELD};
use super::{run_command, write, AppState, PageResult};
use crate::cli::{AttendeeCommand, Command};

/// Largest spreadsheet accepted (500 rows are far less).
pub const CSV_BYTES_MAX: usize = 4 * 1024 * 1024;

fn form(ctx: &Ctx, typed: &Typed) -> Markup {
    let consent = forms::with_any(
        ctx.t("as each row says", "come dice ogni riga"),
        forms::vocab_options(
            tessera_records::vocab::ConsentBy::ALL,
            tessera_records::vocab::ConsentBy::as_str,
            |c| c.label(ctx.ui.lang),
        ),
    );
    let none = FieldErrors::default();
    html! {
        form method="post" action={"/people/import?" (CSRF_FIELD) "=" (ctx.csrf)} enctype="multipart/form-data" class="stack" {
            div class="field" {
                label for="f-sheet" { (ctx.t("Spreadsheet saved as CSV (; or ,)", "Foglio di calcolo salvato come CSV (; o ,)")) }
                input id="f-sheet" type="file" name="sheet" accept=".csv,text/csv" required aria-describedby="h-sheet";
                p class="hint" id="h-sheet" { (ctx.t(
                    "First line: the column names (Nome;Cognome;Anno di nascita;Ruolo;...). At most 500 rows.",
                    "Prima riga: i nomi delle colonne (Nome;Cognome;Anno di nascita;Ruolo;...). Al massimo 500 righe."
                )) }
            }
            @if ctx.operator.is_none() {
                (forms::input("operator", ctx.t("Operator who collected the consent forms", "Operatore che ha raccolto i moduli di consenso"), typed.get("operator"), &none, forms::Opts::default()))
            }
            (select("consent_by", ctx.t("Consent signed by, for rows that do not say", "Consenso firmato da, per le righe che non lo dicono"), &consent, typed.get("consent_by"), &none, None))
            (forms::checkbox("dry_run", ctx.t("Only check: save nothing, list every row", "Solo controllo: non salvare nulla, elenca ogni riga"), typed.checked("dry_run"), &none, None))
            (forms::checkbox("force", ctx.t("Register also rows that look like people already on record", "Iscrivi anche le righe che sembrano persone già registrate"), typed.checked("force"), &none, None))
            div class="actions" { button type="submit" { (ctx.t("Import", "Importa")) } a href="/people" { (ctx.t("Cancel", "Annulla")) } }
        }
    }
}

fn render(ctx: &Ctx, typed: &Typed, outcome: Option<Markup>) -> Response {
    let title = ctx.t("Import a spreadsheet of people", "Importa un foglio di persone");
    let body = html! {
        h1 { (title) }
        @if let Some(o) = outcome { (o) }
        (form(ctx, typed))
    };
    page(ctx, Section::People, title, body)
}

pub async fn form_page(ctx: Ctx) -> Response {
    let mut typed = Typed::default();
    typed.set("dry_run", "1");
    render(&ctx, &typed, None)
}

/// What the command said, line by line.
fn lines(text: &str) -> Markup {
    html! { ul class="plain" { @for l in text.lines().filter(|l| !l.trim().is_empty()) { li { (l) } } } }
}

pub async fn import(State(state): State<AppState>, ctx: Ctx, mut upload: Multipart) -> PageResult {
    let mut typed = Typed::default();
    let mut sheet = None;
    while let Ok(Some(field)) = upload.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        match field.bytes().await {
            Ok(bytes) if name == "sheet" => sheet = Some(bytes),
            Ok(bytes) => typed.set(&name, String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => {
                let said = notice(
                    "error",
                    ctx.t(
                        "The file could not be received (too large?).",
                        "Il file non è arrivato intero (troppo grande?).",
                    ),
                );
                return Ok(render(&ctx, &typed, Some(said)));
            }
        }
    }
    let Some(sheet) = sheet.filter(|b| !b.is_empty()) else {
        return Ok(render(
            &ctx,
            &typed,
            Some(notice("error", ctx.t("Choose a file first.", "Scegli prima un file."))),
        ));
    };
    let scratch = write(&state.hub, &ctx, move |node| {
        let scratch = Scratch::new(node, "import-csv")?;
        std::fs::write(&scratch.0, &sheet)
            .map_err(|e| anyhow::anyhow!("cannot keep the uploaded file: {e}"))?;
        Ok(scratch)
    })
    .await?;
    // Who collected the consents: who is working, else the name typed.
    let mut ctx = ctx;
    if ctx.operator.is_none() {
        ctx.operator = typed.optional("operator");
    }
    let dry_run = typed.checked("dry_run");
    let command = Command::Attendee(AttendeeCommand::Import {
        file: scratch.0.clone(),
        dry_run,
        columns: Vec::new(),
        consent_by: typed.optional("consent_by"),
        force: typed.checked("force"),
    });
    let outcome = match run_command(&state.hub, &ctx, command).await? {
        Ok(said) if dry_run => html! {
            div class="notice ok" role="status" {
                p { strong { (ctx.t("Checked: nothing was saved.", "Controllato: non è stato salvato nulla.")) } }
                (lines(&said))
                p { (ctx.t("If every row is right, choose the file again, untick «Only check» and import.", "Se ogni riga va bene, scegli di nuovo il file, togli la spunta a «Solo controllo» e importa.")) }
            }
        },
        Ok(said) => html! {
            div class="notice ok" role="status" {
                p { strong { (ctx.t("Imported.", "Importato.")) } }
                (lines(&said))
                p { a href="/people" { (ctx.t("See the people", "Vedi le persone")) } }
            }
        },
        Err(why) => html! {
            div class="notice error" role="alert" {
                p { strong { (ctx.t("Nothing was saved:", "Non è stato salvato nulla:")) } }
                (lines(&why))
            }
        },
    };
    drop(scratch);
    Ok(render(&ctx, &typed, Some(outcome)))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request};
    use tessera_records::kind::RecordKind;

    use crate::web::testing::{TestPage, HOST};

    const SHEET: &str = "Nome;Cognome;Anno di nascita;Ruolo;Consenso\nMario;Prova;1950;cittadino;interessato\nLucia;Esempio;1962;cittadino;interessato\n";

    fn upload(page: &TestPage, sheet: &str, fields: &[(&str, &str)]) -> Request<Body> {
        let boundary = "XBOUNDARYX";
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"sheet\"; filename=\"iscritti.csv\"\r\nContent-Type: text/csv\r\n\r\n{sheet}\r\n--{boundary}--\r\n"
        ));
        Request::post(format!("/people/import?csrf={}", page.token))
            .header(header::HOST, HOST)
            .header(header::COOKIE, format!("tessera_csrf={}", page.token))
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn a_spreadsheet_is_checked_then_imported_all_or_nothing() {
        let page = TestPage::new();
        assert!(page.get("/people/import").await.body.contains("Importa un foglio di persone"));

        let who = ("operator", "Operatore Prova");
        let checked = page.send(upload(&page, SHEET, &[("dry_run", "1"), who])).await;
        assert_eq!(checked.status, 200);
        assert!(checked.body.contains("Controllato: non è stato salvato nulla."), "{}", checked.body);
        assert!(
            checked.body.contains("Mario") && checked.body.contains("Lucia"),
            "every row listed: {}",
            checked.body
        );
        assert_eq!(page.count(RecordKind::Attendee), 0);

        let broken = format!("{SHEET}Anna;;1990;cittadino;interessato\n");
        let refused = page.send(upload(&page, &broken, &[who])).await;
        assert!(refused.body.contains("Non è stato salvato nulla"), "{}", refused.body);
        assert!(refused.body.contains("riga 4"), "the row and its error in words: {}", refused.body);
        assert_eq!(page.count(RecordKind::Attendee), 0, "all or nothing");

        let imported = page.send(upload(&page, SHEET, &[who])).await;
        assert!(imported.body.contains("Importato."), "{}", imported.body);
        assert_eq!(page.count(RecordKind::Attendee), 2);
    }
}
