//! Conflicts that merges leave (a device lent twice, a person registered twice, two
//! appointments at once, a device lent with no open loan), each said in words with
//! names, tags and dates, and resolved with a button. The records a resolution
//! writes are those of `tessera conflicts resolve` ([`crate::commands::resolution`]).

use anyhow::Result;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use tessera_log::DocId;
use tessera_records::conflicts::{self, Conflict};
use tessera_records::model::{Record, RecordRef};

use super::forms::{csrf, input, FieldErrors, Opts, Typed};
use super::layout::{notice, page, Section};
use super::names::Names;
use super::security::Ctx;
use super::{read, see_other, words, write, AppState, PageResult};
use crate::cli::ResolveArgs;
use crate::ui::Ui;

/// One sentence for a conflict, with names (the home page lists them).
pub fn describe(c: &Conflict, names: &Names, ui: &Ui) -> String {
    let people = |ids: &[DocId]| {
        ids.iter().map(|id| names.person(&RecordRef(*id)).to_string()).collect::<Vec<_>>().join(", ")
    };
    match c {
        Conflict::DeviceLentTwice { device, .. } => format!(
            "{} {} {}",
            ui.t("Device", "Il dispositivo"),
            names.device(&RecordRef(*device)),
            ui.t("is on loan to more than one person.", "risulta in prestito a più persone.")
        ),
        Conflict::ProbableDuplicateAttendee { attendees } => format!(
            "{}: {}.",
            ui.t(
                "Probably the same person registered twice",
                "Probabilmente la stessa persona iscritta due volte"
            ),
            people(attendees)
        ),
        Conflict::DoubleBookedAppointment { site, .. } => format!(
            "{} {}.",
            ui.t("Overlapping appointments at", "Appuntamenti sovrapposti a"),
            names.site(&RecordRef(*site))
        ),
        Conflict::DeviceLentWithoutLoan { device, .. } => format!(
            "{} {} {}",
            ui.t("Device", "Il dispositivo"),
            names.device(&RecordRef(*device)),
            ui.t(
                "is marked on loan but none of its loans is open.",
                "risulta in prestito ma nessun suo prestito è aperto."
            )
        ),
    }
}

/// What a conflict's card shows about one of its records.
struct Item {
    id: String,
    text: String,
}

struct Card {
    id: String,
    conflict: Conflict,
    sentence: String,
    items: Vec<Item>,
}

fn item_text(id: &DocId, record: Option<&Record>, names: &Names, ui: &Ui) -> String {
    match record {
        Some(Record::Loan(l)) => format!(
            "{} {}, {} {}, {} {}",
            ui.t("loan to", "prestito a"),
            names.person(&l.attendee),
            ui.t("from", "dal"),
            words::date(&l.start, ui),
            ui.t("due", "scadenza"),
            words::date(&l.expected_return, ui)
        ),
        Some(Record::Attendee(a)) => format!(
            "{}, {} {}, {} {}",
            names.person(&RecordRef(*id)),
            ui.t("born in", "nato/a nel"),
            a.birth_year,
            ui.t("registered at", "iscritto presso"),
            names.site(&a.site)
        ),
        Some(Record::Session(s)) => format!(
            "{}–{}, {}",
            words::date_time(&s.start, ui),
            words::time_of(&s.end),
            s.participants
                .iter()
                .map(|p| names.person(&p.attendee).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => ui.t("(not readable here yet)", "(non ancora leggibile qui)").to_string(),
    }
}

fn cards(node: &crate::node::Node, ui: &Ui) -> Result<Vec<Card>> {
    let records = node.docs().all_records()?;
    let names = Names::load(node, ui)?;
    let get = |id: &DocId| records.iter().find(|(x, _)| x == id).map(|(_, r)| r);
    Ok(conflicts::detect(&records)
        .into_iter()
        .map(|c| {
            let items = c
                .records()
                .iter()
                .map(|id| Item { id: id.to_hex(), text: item_text(id, get(id), &names, ui) })
                .collect();
            Card { id: c.id(), sentence: describe(&c, &names, ui), conflict: c, items }
        })
        .collect())
}

/// A one-button form that resolves `conflict` with `action` on `target`.
fn button(ctx: &Ctx, conflict: &str, action: &str, target: &str, label: &str) -> Markup {
    html! {
        form method="post" action="/conflicts/resolve" {
            (csrf(ctx))
            input type="hidden" name="id" value=(conflict);
            input type="hidden" name="action" value=(action);
            input type="hidden" name="target" value=(target);
            button type="submit" class="secondary" { (label) }
        }
    }
}

fn card(ctx: &Ctx, c: &Card) -> Markup {
    html! {
        section class="card" aria-labelledby={"h-" (c.id)} {
            h2 id={"h-" (c.id)} { (c.sentence) }
            @match &c.conflict {
                Conflict::DeviceLentTwice { .. } => {
                    p { (ctx.t("Who really has it? Close the loans of the others.", "Chi lo ha davvero? Chiudi i prestiti degli altri.")) }
                    @for i in &c.items { div class="actions" { span { (i.text) } (button(ctx, &c.id, "close_loan", &i.id, ctx.t("Close this loan", "Chiudi questo prestito"))) } }
                }
                Conflict::ProbableDuplicateAttendee { .. } => {
                    @for i in &c.items { div class="actions" { span { (i.text) } (button(ctx, &c.id, "keep", &i.id, ctx.t("Keep this record, merge the others into it", "Tieni questa scheda e unisci le altre"))) } }
                    div class="actions" { (button(ctx, &c.id, "not_duplicates", "", ctx.t("They are different people", "Sono persone diverse"))) }
                }
                Conflict::DoubleBookedAppointment { .. } => {
                    p { (ctx.t("Move one of them:", "Sposta uno dei due:")) }
                    @for i in &c.items {
                        form method="post" action="/conflicts/resolve" class="filters" {
                            (csrf(ctx))
                            input type="hidden" name="id" value=(c.id);
                            input type="hidden" name="action" value="move";
                            input type="hidden" name="target" value=(i.id);
                            p { (i.text) }
                            (input(&format!("start-{}", i.id), ctx.t("New start", "Nuovo inizio"), "", &FieldErrors::default(), Opts { kind: "datetime-local", ..Opts::default() }))
                            (input(&format!("end-{}", i.id), ctx.t("New end", "Nuova fine"), "", &FieldErrors::default(), Opts { kind: "datetime-local", ..Opts::default() }))
                            div class="field" { button type="submit" class="secondary" { (ctx.t("Move", "Sposta")) } }
                        }
                    }
                }
                Conflict::DeviceLentWithoutLoan { .. } => {
                    @for i in &c.items { div class="actions" { span { (i.text) } (button(ctx, &c.id, "reopen_loan", &i.id, ctx.t("This loan is still going on: reopen it", "Questo prestito è ancora in corso: riaprilo"))) } }
                    div class="actions" { (button(ctx, &c.id, "device_back", "", ctx.t("The device is back at the site", "Il dispositivo è tornato in sede"))) }
                }
            }
        }
    }
}

fn render(ctx: &Ctx, cards: &[Card], message: Option<Markup>) -> Response {
    let title = ctx.t("Conflicts", "Conflitti");
    let body = html! {
        @if let Some(m) = message { (m) }
        h1 { (title) }
        p class="muted" { (ctx.t(
            "When two hubs change the same things while apart, some changes need a person to decide. Nothing is lost meanwhile.",
            "Quando due poli modificano le stesse cose mentre sono separati, alcune modifiche richiedono una decisione. Nel frattempo non si perde nulla."
        )) }
        @if cards.is_empty() { (notice("ok", ctx.t("No conflicts.", "Nessun conflitto."))) }
        div class="cards" { @for c in cards { (card(ctx, c)) } }
    };
    page(ctx, Section::Conflicts, title, body)
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let ui = ctx.ui;
    let cards = read(&state.hub, move |node| cards(node, &ui)).await?;
    let message = Typed(query).checked("resolved").then(|| notice("ok", ctx.t("Resolved.", "Risolto.")));
    Ok(render(&ctx, &cards, message))
}

/// The arguments of `tessera conflicts resolve` that the pressed button stands for.
fn args_of(typed: &Typed) -> ResolveArgs {
    let target = typed.optional("target");
    let action = typed.get("action");
    let mut args = ResolveArgs {
        id: typed.get("id").to_string(),
        close_loan: None,
        keep: None,
        not_duplicates: action == "not_duplicates",
        move_session: None,
        start: None,
        end: None,
        reopen_loan: None,
        device_back: action == "device_back",
    };
    match action {
        "close_loan" => args.close_loan = target,
        "keep" => args.keep = target,
        "reopen_loan" => args.reopen_loan = target,
        "move" => {
            let t = target.unwrap_or_default();
            args.start = typed.optional(&format!("start-{t}"));
            args.end = typed.optional(&format!("end-{t}"));
            args.move_session = Some(t);
        }
        _ => {}
    }
    args
}

pub async fn resolve(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let args = args_of(&Typed(form));
    let ui = ctx.ui;
    let done = write(&state.hub, &ctx, move |node| {
        let records = node.docs().all_records()?;
        let found = conflicts::detect(&records);
        let Some(conflict) = found.iter().find(|c| c.id() == args.id) else {
            return Ok(Err(ui
                .t("This conflict was already resolved.", "Questo conflitto era già stato risolto.")
                .to_string()));
        };
        match crate::commands::resolution(node, conflict, &args, &records, &ui) {
            Ok(writes) => {
                node.transact(&writes)?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    })
    .await?;
    match done {
        Ok(()) => Ok(see_other("/conflicts?resolved=1")),
        Err(message) => {
            let cards = read(&state.hub, move |node| cards(node, &ui)).await?;
            let text = format!("{} {message}", ctx.t("Not resolved:", "Non risolto:"));
            Ok(render(&ctx, &cards, Some(notice("error", &text))))
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_records::kind::RecordKind;

    use crate::web::testing::{tessera, TestPage};

    #[tokio::test]
    async fn a_person_registered_twice_is_shown_by_name_and_resolved_with_a_button() {
        let page = TestPage::with(|data| {
            let saved = tessera(
                data,
                &[
                    "site",
                    "add",
                    "--name",
                    "Biblioteca Prova",
                    "--kind",
                    "library",
                    "--partner",
                    "Ente Prova",
                ],
            );
            let library = saved.split_whitespace().last().unwrap().to_string();
            for site in [None, Some(library.as_str())] {
                let mut args = vec![
                    "attendee",
                    "add",
                    "--given",
                    "Giulia",
                    "--family",
                    "Esempio",
                    "--birth-year",
                    "1990",
                ];
                args.extend(["--role", "citizen", "--consent-by", "self", "--operator", "Operatore Prova"]);
                // The second time at the other site: saved although the name is known.
                args.extend(site.map(|s| ["--site", s, "--force"]).into_iter().flatten());
                tessera(data, &args);
            }
        });
        let shown = page.get("/conflicts").await;
        assert!(
            shown.body.contains(
                "Probabilmente la stessa persona iscritta due volte: Giulia Esempio, Giulia Esempio."
            ),
            "{}",
            shown.body
        );
        assert!(
            shown.body.contains("Sono persone diverse")
                && shown.body.contains("iscritto presso Biblioteca Prova")
        );
        assert!(
            page.get("/").await.body.contains("Probabilmente la stessa persona"),
            "the home page lists it"
        );
        let id =
            shown.body.split(r#"name="id" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
        let resolved = page
            .post("/conflicts/resolve", &[("id", &id), ("action", "not_duplicates"), ("target", "")])
            .await;
        assert_eq!(resolved.status, 303, "{}", resolved.body);
        assert!(page.get("/conflicts").await.body.contains("Nessun conflitto."));
        assert_eq!(page.count(RecordKind::Attendee), 2);
        // Pressed again (an old tab): said in words.
        let again = page.post("/conflicts/resolve", &[("id", &id), ("action", "not_duplicates")]).await;
        assert!(again.body.contains("già stato risolto"));
    }
}
