//! Today's page: what the operator needs when the hub opens. Today's sessions and
//! appointments, overdue loans with whom to call, open conflicts, and how this hub
//! stands with its peers and relays ("sync now").

use anyhow::Result;
use axum::extract::State;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use tessera_records::conflicts;
use tessera_records::kind::RecordKind;
use tessera_records::model::{format_date, parse_date, Attendee, Record};

use super::forms::{csrf, Typed};
use super::layout::{notice, page, Section};
use super::names::Names;
use super::security::Ctx;
use super::{conflicts as conflict_pages, read, words, AppState, PageResult};
use crate::commands::today;
use crate::net_cmd::PeerRecord;
use crate::ui::Ui;

/// One line of today's agenda.
struct Today {
    id: String,
    start: String,
    end: String,
    kind: String,
    topic: String,
    site: String,
    people: usize,
    cancelled: bool,
}

/// A loan past its expected return, with whom to call.
pub struct Overdue {
    pub person: String,
    pub person_id: String,
    pub contact: String,
    pub device: String,
    pub due: String,
    pub days_late: i64,
}

struct SyncView {
    peers: Vec<(String, PeerRecord)>,
    configured: Vec<String>,
    unexported: u64,
    held: u64,
}

struct HomeView {
    site: String,
    today: Vec<Today>,
    overdue: Vec<Overdue>,
    conflicts: Vec<String>,
    sync: SyncView,
}

/// Phone or e-mail to reach about a loan: the person's, else their guardian's.
pub fn contact_of(a: &Attendee, ui: &Ui) -> String {
    if a.is_reserved() || a.is_erased() {
        return ui
            .t("ask the organisation that registered them", "chiedi all'ente che l'ha registrata")
            .into();
    }
    let own = [a.phone.clone(), a.email.clone()].into_iter().flatten().collect::<Vec<_>>();
    if !own.is_empty() {
        return own.join(", ");
    }
    match &a.guardian {
        Some(g) => {
            let reach =
                [g.phone.clone(), g.email.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ");
            format!("{}: {} ({reach})", ui.t("guardian", "tutore"), g.name)
        }
        None => ui.t("no contact recorded", "nessun contatto registrato").into(),
    }
}

/// Every open loan past its expected return, the most late first.
pub fn overdue_loans(node: &crate::node::Node, names: &Names, ui: &Ui) -> Result<Vec<Overdue>> {
    let today = today();
    let today_s = format_date(today);
    let mut out = Vec::new();
    for (_, record) in node.docs().records(RecordKind::Loan)? {
        let Record::Loan(loan) = record else { continue };
        if !loan.is_open() || loan.expected_return >= today_s {
            continue;
        }
        let contact = match node.docs().record(&loan.attendee.0)? {
            Some(Record::Attendee(a)) => contact_of(&a, ui),
            _ => String::new(),
        };
        let days_late = parse_date(&loan.expected_return).map_or(0, |d| (today - d).num_days());
        out.push(Overdue {
            person: names.person(&loan.attendee).to_string(),
            person_id: loan.attendee.0.to_hex(),
            contact,
            device: names.device(&loan.device).to_string(),
            due: loan.expected_return.clone(),
            days_late,
        });
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.days_late));
    Ok(out)
}

fn load(node: &crate::node::Node, ui: &Ui) -> Result<HomeView> {
    let names = Names::load(node, ui)?;
    let day = format_date(today());
    let mut agenda = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Session)? {
        let Record::Session(s) = record else { continue };
        if !s.start.starts_with(&day) {
            continue;
        }
        agenda.push(Today {
            id: id.to_hex(),
            start: s.start.clone(),
            end: s.end.clone(),
            kind: s.kind.label(ui.lang).to_string(),
            topic: s.topic.clone(),
            site: names.site(&s.site).to_string(),
            people: s.participants.iter().filter(|p| p.present).count() + s.headcount as usize,
            cancelled: s.is_cancelled(),
        });
    }
    agenda.sort_by(|a, b| a.start.cmp(&b.start));
    let records = node.docs().all_records()?;
    let found = conflicts::detect(&records);
    let described = found.iter().map(|c| conflict_pages::describe(c, &names, ui)).collect();
    let own_seq = node.store().head(&node.device()).map_or(0, |h| h.seq.0);
    Ok(HomeView {
        site: node.config.site_name.clone(),
        today: agenda,
        overdue: overdue_loans(node, &names, ui)?,
        conflicts: described,
        sync: SyncView {
            peers: crate::net_cmd::load_peers(node.dir()).into_iter().collect(),
            configured: Vec::new(),
            unexported: own_seq.saturating_sub(node.config.exported_own_seq),
            held: node.store().heads().total_envelopes(),
        },
    })
}

fn agenda(ctx: &Ctx, view: &HomeView) -> Markup {
    html! {
        section class="card" aria-labelledby="h-today" {
            h2 id="h-today" { (ctx.t("Today's sessions and appointments", "Incontri e appuntamenti di oggi")) }
            @if view.today.is_empty() {
                p class="muted" { (ctx.t("Nothing planned today.", "Niente in programma oggi.")) }
            } @else {
                ul class="choices" {
                    @for t in &view.today {
                        li {
                            strong { (words::time_of(&t.start)) "–" (words::time_of(&t.end)) } " "
                            a href={"/sessions/" (t.id)} { (t.kind) @if !t.topic.is_empty() { ": " (t.topic) } }
                            " · " (t.site) " · " (t.people) " " (ctx.t("present", "presenti"))
                            @if t.cancelled { " " span class="tag bad" { (ctx.t("cancelled", "annullato")) } }
                        }
                    }
                }
            }
            p { a href="/sessions/new" { (ctx.t("Book an appointment or a session", "Prenota un appuntamento o un incontro")) } }
        }
    }
}

fn overdue(ctx: &Ctx, view: &HomeView) -> Markup {
    html! {
        section class="card wide" aria-labelledby="h-overdue" {
            h2 id="h-overdue" { (ctx.t("Overdue loans: whom to call", "Prestiti scaduti: chi chiamare")) }
            @if view.overdue.is_empty() {
                p class="muted" { (ctx.t("No loan is overdue.", "Nessun prestito è scaduto.")) }
            } @else {
                div class="table-wrap" { table {
                    thead { tr {
                        th scope="col" { (ctx.t("Person", "Persona")) }
                        th scope="col" { (ctx.t("Contact", "Contatto")) }
                        th scope="col" { (ctx.t("Device", "Dispositivo")) }
                        th scope="col" { (ctx.t("Due", "Scadenza")) }
                    } }
                    tbody {
                        @for o in &view.overdue {
                            tr {
                                td { a href={"/people/" (o.person_id)} { (o.person) } }
                                td { (o.contact) }
                                td { (o.device) }
                                td { (words::date(&o.due, &ctx.ui)) " " span class="tag overdue" { (o.days_late) " " (ctx.t("days late", "giorni di ritardo")) } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn conflicts_card(ctx: &Ctx, view: &HomeView) -> Markup {
    html! {
        section class="card" aria-labelledby="h-conflicts" {
            h2 id="h-conflicts" { (ctx.t("Open conflicts", "Conflitti aperti")) }
            @if view.conflicts.is_empty() {
                p class="muted" { (ctx.t("No conflicts.", "Nessun conflitto.")) }
            } @else {
                ul { @for c in view.conflicts.iter().take(3) { li { (c) } } }
                p { a href="/conflicts" { (view.conflicts.len()) " " (ctx.t("to look at: open the conflicts page", "da guardare: apri la pagina dei conflitti")) } }
            }
        }
    }
}

fn when(text: &Option<String>, ui: &Ui) -> String {
    match text.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => {
            let local = t.with_timezone(&chrono::Local);
            match ui.lang {
                tessera_records::vocab::Lang::It => local.format("%d/%m/%Y %H:%M").to_string(),
                tessera_records::vocab::Lang::En => local.format("%-d %b %Y %H:%M").to_string(),
            }
        }
        None => ui.t("never", "mai").to_string(),
    }
}

fn sync_card(ctx: &Ctx, sync: &SyncView) -> Markup {
    html! {
        section class="card" aria-labelledby="h-sync" {
            h2 id="h-sync" { (ctx.t("Sync with other hubs", "Sincronizzazione con gli altri poli")) }
            @if sync.peers.is_empty() {
                p class="muted" { (ctx.t("No contact with another hub or relay yet.", "Ancora nessun contatto con un altro polo o relay.")) }
            } @else {
                div class="table-wrap" { table {
                    thead { tr {
                        th scope="col" { (ctx.t("Hub or relay", "Polo o relay")) }
                        th scope="col" { (ctx.t("Last successful contact", "Ultimo contatto riuscito")) }
                        th scope="col" { (ctx.t("Last result", "Ultimo esito")) }
                    } }
                    tbody { @for (_, p) in &sync.peers {
                        tr {
                            td { (if p.site.is_empty() { p.address.as_str() } else { p.site.as_str() }) }
                            td { (when(&p.last_success, &ctx.ui)) }
                            td { @if p.last_result == "ok" { (ctx.t("all sent and received", "tutto inviato e ricevuto")) } @else { (p.last_result) } }
                        }
                    } }
                } }
            }
            p {
                (ctx.t("Changes of this hub not yet carried on a USB stick:", "Modifiche di questo polo non ancora portate su chiavetta:")) " "
                strong { (sync.unexported) } ". "
                (ctx.t("Changes held in all:", "Modifiche presenti in tutto:")) " " (sync.held) "."
            }
            @if sync.configured.is_empty() {
                p class="muted" { (ctx.t(
                    "No peer or relay is configured (`tessera serve --peer HOST:PORT`): use the USB stick page to carry changes.",
                    "Nessun nodo o relay configurato (`tessera serve --peer HOST:PORTA`): usa la pagina Chiavetta USB per portare le modifiche."
                )) }
            } @else {
                form method="post" action="/sync" class="actions" {
                    (csrf(ctx))
                    @for peer in &sync.configured {
                        button type="submit" name="peer" value=(peer) { (ctx.t("Sync now with", "Sincronizza ora con")) " " (peer) }
                    }
                }
            }
        }
    }
}

fn render(ctx: &Ctx, view: &HomeView, message: Option<Markup>) -> Response {
    let body = html! {
        h1 { (view.site) ": " (ctx.t("today", "oggi")) " " span class="muted" { (words::date(&format_date(today()), &ctx.ui)) } }
        @if let Some(m) = message { (m) }
        div class="actions no-print" {
            a class="button" href="/people/new" { (ctx.t("Register a person", "Iscrivi una persona")) }
            a class="button secondary" href="/loans/new" { (ctx.t("Lend a device", "Presta un dispositivo")) }
            a class="button secondary" href="/sessions/new" { (ctx.t("Book an appointment", "Prenota un appuntamento")) }
        }
        div class="cards" {
            (agenda(ctx, view))
            (conflicts_card(ctx, view))
            (sync_card(ctx, &view.sync))
            (overdue(ctx, view))
        }
    };
    page(ctx, Section::Home, ctx.t("Today", "Oggi"), body)
}

async fn view(state: &AppState, ctx: &Ctx) -> Result<HomeView, super::Failure> {
    let ui = ctx.ui;
    let mut view = read(&state.hub, move |node| load(node, &ui)).await?;
    if let Some(sync) = &state.sync {
        view.sync.configured = sync.peers.clone();
    }
    Ok(view)
}

pub async fn page_handler(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let view = view(&state, &ctx).await?;
    Ok(render(&ctx, &view, None))
}

/// "Sync now" with one of the configured peers or relays; the result said in words.
pub async fn sync_now(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(form);
    let peer = typed.get("peer").to_string();
    let message = match &state.sync {
        Some(sync) if sync.peers.contains(&peer) => {
            match sync.dialer.sync_now(&state.hub, &peer, &ctx.ui).await {
                Ok(captured) => notice("ok", captured.stdout.trim()),
                Err(e) => {
                    tracing::info!(error = %e, "sync from the page did not complete");
                    // The whole chain, each link in the operator's language (the
                    // network's and the OS's errors included).
                    let why =
                        e.chain().map(|cause| crate::msg::cause_text(cause, &ctx.ui)).collect::<Vec<_>>();
                    notice(
                        "error",
                        &format!(
                            "{} {}",
                            ctx.t("The sync did not complete:", "La sincronizzazione non è riuscita:"),
                            why.join(": ")
                        ),
                    )
                }
            }
        }
        _ => notice(
            "error",
            ctx.t("That peer is not configured on this hub.", "Quel nodo non è configurato su questo polo."),
        ),
    };
    let view = view(&state, &ctx).await?;
    Ok(render(&ctx, &view, Some(message)))
}

#[cfg(test)]
mod tests {
    use crate::web::testing::{tessera, TestPage};

    #[tokio::test]
    async fn today_shows_the_agenda_and_whom_to_call_about_an_overdue_loan() {
        let day = tessera_records::model::format_date(crate::commands::today());
        let page = TestPage::with(|data| {
            tessera(
                data,
                &["device", "add", "--tag", "TAB-0042", "--kind", "tablet", "--origin", "refurbished"],
            );
            let saved = tessera(
                data,
                &[
                    "attendee",
                    "add",
                    "--given",
                    "Giulia",
                    "--family",
                    "Esempio",
                    "--birth-year",
                    "2014",
                    "--role",
                    "student",
                    "--guardian-name",
                    "Anna Esempio",
                    "--guardian-phone",
                    "3331234567",
                    "--consent-by",
                    "guardian",
                    "--operator",
                    "Operatore Prova",
                ],
            );
            let person = saved.split_whitespace().last().unwrap().to_string();
            tessera(
                data,
                &[
                    "loan",
                    "add",
                    "--device",
                    "TAB-0042",
                    "--attendee",
                    &person,
                    "--start",
                    "2026-01-10",
                    "--expected-return",
                    "2026-02-10",
                    "--agreement-signed",
                ],
            );
            let (start, end) = (format!("{day}T15:00"), format!("{day}T17:00"));
            tessera(
                data,
                &[
                    "session",
                    "add",
                    "--kind",
                    "course",
                    "--topic",
                    "Registro elettronico",
                    "--start",
                    &start,
                    "--end",
                    &end,
                ],
            );
        });
        let home = page.get("/").await;
        assert_eq!(home.status, 200);
        assert!(
            home.body.contains("15:00–17:00") && home.body.contains("Registro elettronico"),
            "{}",
            home.body
        );
        assert!(
            home.body.contains("Giulia Esempio") && home.body.contains("tutore: Anna Esempio (3331234567)")
        );
        assert!(
            home.body.contains("TAB-0042")
                && home.body.contains("10/02/2026")
                && home.body.contains("giorni di ritardo")
        );
        assert!(home.body.contains("Nessun conflitto."));
        assert!(home.body.contains("Nessun nodo o relay configurato"), "no sync-now button without peers");
    }
}
