//! Sessions and appointments: a week at a glance (per site), booking a session or a
//! help-desk appointment (the person chosen by search), and a session's page where
//! attendance is taken with checkboxes and a public meeting's headcount is written.
//! The rules (end after start, at most 12 hours, headcount only for public meetings,
//! a mediator for mediations) are the domain's.

use anyhow::Result;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::{Datelike, Duration, NaiveDate};
use maud::{html, Markup};
use tessera_log::DocId;
use tessera_records::kind::RecordKind;
use tessera_records::model::{
    format_date, parse_date, parse_date_time, Participant, Record, RecordRef, Session,
};
use tessera_records::text::fold;
use tessera_records::validate::{self, ValidationError};
use tessera_records::vocab::{Audience, SessionKind, SessionMode, Topic};

use super::forms::{self, csrf, form_errors, input, select, with_any, FieldErrors, Options, Opts, Typed};
use super::layout::{notice, page, Section};
use super::names::{parse_id, person_name, Names};
use super::security::Ctx;
use super::{not_found, read, run_command, see_other, words, write, AppState, PageResult};
use crate::commands::{own_site, today};
use crate::node::Node;
use crate::ui::Ui;

/// Most people offered under a search.
const CHOICES_MAX: usize = 15;

/// The Monday of the week of `day`.
fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn what(s: &Session, ui: &Ui) -> String {
    match s.topic.trim() {
        "" => s.kind.label(ui.lang).to_string(),
        topic => format!("{}: {topic}", s.kind.label(ui.lang)),
    }
}

// ---------------------------------------------------------------------------------
// The week

struct Slot {
    id: String,
    day: String,
    start: String,
    end: String,
    what: String,
    site: String,
    people: usize,
    cancelled: bool,
}

fn week_slots(node: &Node, monday: NaiveDate, site: Option<DocId>, ui: &Ui) -> Result<(Vec<Slot>, Options)> {
    let names = Names::load(node, ui)?;
    let (first, last) = (format_date(monday), format_date(monday + Duration::days(6)));
    let mut slots = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Session)? {
        let Record::Session(s) = record else { continue };
        let day = s.start.get(..10).unwrap_or("").to_string();
        if day < first || day > last || site.is_some_and(|x| s.site.0 != x) {
            continue;
        }
        slots.push(Slot {
            id: id.to_hex(),
            day,
            what: what(&s, ui),
            site: names.site(&s.site).to_string(),
            people: s.participants.iter().filter(|p| p.present).count() + s.headcount as usize,
            cancelled: s.is_cancelled(),
            start: s.start,
            end: s.end,
        });
    }
    slots.sort_by(|a, b| a.start.cmp(&b.start));
    let sites = names.sites().into_iter().map(|(id, n)| (id.to_hex(), n)).collect();
    Ok((slots, sites))
}

fn day_name(day: NaiveDate, ui: &Ui) -> String {
    const IT: [&str; 7] = ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"];
    const EN: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let i = day.weekday().num_days_from_monday() as usize;
    format!("{} {}", ui.t(EN[i], IT[i]), words::date(&format_date(day), ui))
}

pub async fn week(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let filter = Typed(query);
    let monday = monday_of(parse_date(filter.get("week")).unwrap_or_else(today));
    let site_text = filter.get("site").to_string();
    let site = parse_id(&site_text, RecordKind::Site);
    let ui = ctx.ui;
    let (slots, sites) = read(&state.hub, move |node| week_slots(node, monday, site, &ui)).await?;
    let link = |d: NaiveDate| format!("/sessions?week={}&site={site_text}", format_date(d));
    let today_s = format_date(today());
    let title = ctx.t("Sessions and appointments", "Incontri e appuntamenti");
    let body = html! {
        h1 { (title) }
        div class="actions" { a class="button" href="/sessions/new" { (ctx.t("Book a session or appointment", "Prenota un incontro o appuntamento")) } }
        form method="get" action="/sessions" class="filters" {
            (input("week", ctx.t("Week of", "Settimana del"), &format_date(monday), &FieldErrors::default(), Opts { kind: "date", ..Opts::default() }))
            (select("site", ctx.t("Site or desk", "Sede o sportello"), &with_any(ctx.t("all", "tutte"), sites), &site_text, &FieldErrors::default(), None))
            div class="field" { button type="submit" { (ctx.t("Show", "Mostra")) } }
        }
        nav class="actions" aria-label=(ctx.t("Weeks", "Settimane")) {
            a href=(link(monday - Duration::days(7))) { "← " (ctx.t("previous week", "settimana precedente")) }
            a href=(link(today())) { (ctx.t("this week", "questa settimana")) }
            a href=(link(monday + Duration::days(7))) { (ctx.t("next week", "settimana successiva")) " →" }
        }
        div class="week" {
            @for offset in 0..7 {
                @let day = monday + Duration::days(offset);
                @let day_s = format_date(day);
                section class={"day" @if day_s == today_s { " today" }} aria-label=(day_name(day, &ctx.ui)) {
                    h3 { (day_name(day, &ctx.ui)) }
                    ul {
                        @for s in slots.iter().filter(|s| s.day == day_s) {
                            li {
                                strong { (words::time_of(&s.start)) "–" (words::time_of(&s.end)) } br;
                                a href={"/sessions/" (s.id)} { (s.what) } br;
                                span class="muted" { (s.site) " · " (s.people) " " (ctx.t("present", "presenti")) }
                                @if s.cancelled { " " span class="tag bad" { (ctx.t("cancelled", "annullato")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&ctx, Section::Sessions, title, body))
}

// ---------------------------------------------------------------------------------
// Booking

/// People matching `needle` (this hub's readable ones), by name.
fn people_matching(node: &Node, needle: &str, ui: &Ui) -> Result<Vec<(String, String)>> {
    let needle = fold(needle.trim());
    if needle.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Attendee)? {
        let Record::Attendee(a) = record else { continue };
        if a.is_merged() || a.is_erased() || a.is_reserved() {
            continue;
        }
        let label =
            format!("{} ({} {})", person_name(node, &a, ui), ui.t("born", "nato/a nel"), a.birth_year);
        if fold(&label).contains(&needle) {
            found.push((id.to_hex(), label));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.truncate(CHOICES_MAX);
    Ok(found)
}

fn person_checkboxes(ctx: &Ctx, name: &str, people: &[(String, String)], checked: &[&str]) -> Markup {
    html! {
        @if people.is_empty() { p class="muted" { (ctx.t("Search people by name above.", "Cerca le persone per nome qui sopra.")) } }
        ul class="choices" {
            @for (i, (id, label)) in people.iter().enumerate() {
                li {
                    input type="checkbox" id={"f-" (name) "-" (i)} name=(name) value=(id) checked[checked.contains(&id.as_str())];
                    " " label for={"f-" (name) "-" (i)} { (label) }
                }
            }
        }
    }
}

fn session_field_of(error: &ValidationError) -> &'static str {
    match error {
        ValidationError::EndNotAfterStart | ValidationError::SessionTooLong { .. } => "end",
        ValidationError::HeadcountOnlyForPublicMeetings | ValidationError::HeadcountTooLarge { .. } => {
            "headcount"
        }
        ValidationError::MediatorRequired => "mediator",
        other => match other.field() {
            "start" => "start",
            "end" => "end",
            "topic" => "topic",
            "facilitator" => "facilitator",
            "language" => "language",
            "mediator" => "mediator",
            _ => "",
        },
    }
}

fn session_form(ctx: &Ctx, typed: &Typed, people: &[(String, String)], errors: &FieldErrors) -> Response {
    let ui = ctx.ui;
    let kinds = forms::vocab_options(SessionKind::ALL, SessionKind::as_str, |s| s.label(ui.lang));
    let topics = with_any("—", forms::vocab_options(Topic::ALL, Topic::as_str, |s| s.label(ui.lang)));
    let audiences = forms::vocab_options(Audience::ALL, Audience::as_str, |s| s.label(ui.lang));
    let modes = forms::vocab_options(SessionMode::ALL, SessionMode::as_str, |s| s.label(ui.lang));
    let title = ctx.t("Book a session or appointment", "Prenota un incontro o appuntamento");
    let chosen = typed.0.iter().filter(|(k, _)| k == "person").map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let none = FieldErrors::default();
    let body = html! {
        h1 { (title) }
        (form_errors(ctx, errors))
        form method="get" action="/sessions/new" data-live="people" class="filters" role="search" {
            @for id in &chosen { input type="hidden" name="person" value=(id); }
            (input("person_q", ctx.t("Search a participant by name", "Cerca un partecipante per nome"), typed.get("person_q"), &none, Opts { kind: "search", autocomplete: Some("off"), ..Opts::default() }))
            div class="field" { button type="submit" class="secondary" { (ctx.t("Search", "Cerca")) } }
        }
        form method="post" action="/sessions" class="stack" novalidate {
            (csrf(ctx))
            fieldset {
                legend { (ctx.t("Participants (for an appointment: the person)", "Partecipanti (per un appuntamento: la persona)")) }
                div id="people" aria-live="polite" { (person_checkboxes(ctx, "person", people, &chosen)) }
            }
            (select("kind", ctx.t("Kind", "Tipo"), &kinds, typed.get("kind"), errors, None))
            (select("topic_code", ctx.t("Request type", "Tipo di richiesta"), &topics, typed.get("topic_code"), errors, None))
            (input("topic", ctx.t("Topic, in words", "Argomento, a parole"), typed.get("topic"), errors, Opts::default()))
            (input("start", ctx.t("Start", "Inizio"), typed.get("start"), errors, Opts { kind: "datetime-local", required: true, ..Opts::default() }))
            (input("end", ctx.t("End", "Fine"), typed.get("end"), errors, Opts { kind: "datetime-local", required: true, ..Opts::default() }))
            (select("audience", ctx.t("Audience", "Destinatari"), &audiences, typed.get("audience"), errors, None))
            (select("mode", ctx.t("Mode", "Modalità"), &modes, typed.get("mode"), errors, None))
            (input("facilitator", ctx.t("Facilitator or operator", "Conduttore o operatore"), typed.get("facilitator"), errors, Opts::default()))
            (input("language", ctx.t("Language of the session", "Lingua dell'incontro"), typed.get("language"), errors, Opts::default()))
            (input("mediator", ctx.t("Mediator (mediations)", "Mediatore (mediazioni)"), typed.get("mediator"), errors, Opts::default()))
            @if errors.get("force").is_some() || typed.checked("force") {
                (forms::checkbox("force", ctx.t("Book it anyway", "Prenota comunque"), typed.checked("force"), errors, None))
            }
            div class="actions" { button type="submit" { (ctx.t("Book", "Prenota")) } a href="/sessions" { (ctx.t("Cancel", "Annulla")) } }
        }
    };
    page(ctx, Section::Sessions, title, body)
}

/// The people a form names (chosen, or found by its search).
async fn form_people(
    state: &AppState,
    typed: &Typed,
    ui: Ui,
) -> Result<Vec<(String, String)>, super::Failure> {
    let chosen: Vec<DocId> = typed
        .0
        .iter()
        .filter(|(k, _)| k == "person")
        .filter_map(|(_, v)| parse_id(v, RecordKind::Attendee))
        .collect();
    let needle = typed.get("person_q").to_string();
    read(&state.hub, move |node| {
        let mut people = Vec::new();
        for id in chosen {
            if let Some(Record::Attendee(a)) = node.docs().record(&id)? {
                people.push((
                    id.to_hex(),
                    format!(
                        "{} ({} {})",
                        person_name(node, &a, &ui),
                        ui.t("born", "nato/a nel"),
                        a.birth_year
                    ),
                ));
            }
        }
        for found in people_matching(node, &needle, &ui)? {
            if !people.iter().any(|(id, _)| *id == found.0) {
                people.push(found);
            }
        }
        Ok(people)
    })
    .await
}

pub async fn new_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let mut typed = Typed(query);
    for (name, value) in [
        ("kind", SessionKind::HelpDeskAppointment.as_str()),
        ("audience", Audience::Citizens.as_str()),
        ("mode", SessionMode::InPerson.as_str()),
    ] {
        if typed.get(name).is_empty() {
            typed.set(name, value);
        }
    }
    let people = form_people(&state, &typed, ctx.ui).await?;
    if typed.checked("partial") {
        let chosen =
            typed.0.iter().filter(|(k, _)| k == "person").map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        return Ok(Html(person_checkboxes(&ctx, "person", &people, &chosen).into_string()).into_response());
    }
    Ok(session_form(&ctx, &typed, &people, &FieldErrors::default()))
}

fn new_session(node: &mut Node, typed: &Typed, ui: &Ui) -> Result<Result<DocId, FieldErrors>> {
    let mut errors = FieldErrors::default();
    let kind = SessionKind::from_str_exact(typed.get("kind"));
    if kind.is_none() {
        errors.add("kind", ui.t("Choose the kind.", "Scegli il tipo."));
    }
    for field in ["start", "end"] {
        if parse_date_time(typed.get(field)).is_none() {
            errors.add(field, ui.t("Give a date and a time.", "Indica data e ora."));
        }
    }
    let Some(kind) = kind else { return Ok(Err(errors)) };
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let mut participants = Vec::new();
    for (_, value) in typed.0.iter().filter(|(k, _)| k == "person") {
        if let Some(id) = parse_id(value, RecordKind::Attendee) {
            if !participants.iter().any(|p: &Participant| p.attendee.0 == id) {
                participants.push(Participant { attendee: RecordRef(id), present: true });
            }
        }
    }
    let site = own_site(node, ui)?;
    let session = Session {
        site: RecordRef(site),
        kind,
        topic: typed.get("topic").trim().to_string(),
        topic_code: Topic::from_str_exact(typed.get("topic_code")),
        audience: Audience::from_str_exact(typed.get("audience")).unwrap_or(Audience::Mixed),
        start: typed.get("start").to_string(),
        end: typed.get("end").to_string(),
        mode: SessionMode::from_str_exact(typed.get("mode")).unwrap_or(SessionMode::InPerson),
        facilitator: typed.get("facilitator").trim().to_string(),
        participants,
        headcount: 0,
        language: typed.get("language").trim().to_string(),
        mediator: typed.optional("mediator"),
        cancelled: None,
    };
    let record = Record::Session(session.clone());
    if let Err(e) = validate::validate(&record, today()) {
        errors.add(session_field_of(&e), words::validation_message(&e, ui));
        return Ok(Err(errors));
    }
    let id = Node::new_id(RecordKind::Session)?;
    if !typed.checked("force") {
        let sessions = node.docs().records(RecordKind::Session)?;
        let overlapping = tessera_records::conflicts::overlapping_appointments(id, &session, &sessions);
        if !overlapping.is_empty() {
            let which = overlapping
                .iter()
                .filter_map(|o| sessions.iter().find(|(other, _)| other == o))
                .map(|(_, record)| match record {
                    Record::Session(s) => format!("{} ({})", what(s, ui), s.start.replace('T', " ")),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            errors.add(
                "force",
                format!(
                    "{} {which}. {}",
                    ui.t(
                        "It overlaps another appointment at this site:",
                        "Si sovrappone a un altro appuntamento in questa sede:"
                    ),
                    ui.t(
                        "Choose another time, or tick the box to book it anyway.",
                        "Scegli un altro orario, o spunta la casella per prenotarlo comunque."
                    )
                ),
            );
            return Ok(Err(errors));
        }
    }
    node.transact(&[(id, record)])?;
    Ok(Ok(id))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    match write(&state.hub, &ctx, move |node| new_session(node, &posted, &ui)).await? {
        Ok(id) => Ok(see_other(&format!("/sessions/{}?saved=1", id.to_hex()))),
        Err(errors) => {
            let people = form_people(&state, &typed, ui).await?;
            Ok(session_form(&ctx, &typed, &people, &errors))
        }
    }
}

// ---------------------------------------------------------------------------------
// A session's page: attendance and headcount

struct SessionView {
    session: Session,
    site: String,
    participants: Vec<(String, String, bool)>,
}

fn session_view(node: &Node, id: DocId, ui: &Ui) -> Result<Option<SessionView>> {
    let Some(Record::Session(s)) = node.docs().record(&id)? else { return Ok(None) };
    let names = Names::load(node, ui)?;
    let mut participants: Vec<(String, String, bool)> = s
        .participants
        .iter()
        .map(|p| (p.attendee.0.to_hex(), names.person(&p.attendee).to_string(), p.present))
        .collect();
    participants.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(Some(SessionView { site: names.site(&s.site).to_string(), session: s, participants }))
}

fn session_page(
    ctx: &Ctx,
    id: &str,
    v: &SessionView,
    found: &[(String, String)],
    typed: &Typed,
    message: Option<Markup>,
    errors: &FieldErrors,
) -> Response {
    let s = &v.session;
    let ui = &ctx.ui;
    let title = what(s, ui);
    let present: Vec<&str> = v.participants.iter().filter(|p| p.2).map(|p| p.0.as_str()).collect();
    let body = html! {
        @if let Some(m) = message { (m) }
        h1 { (title) }
        dl class="fields" {
            dt { (ctx.t("When", "Quando")) } dd { (words::date_time(&s.start, ui)) "–" (words::time_of(&s.end)) }
            dt { (ctx.t("Site", "Sede")) } dd { (v.site) }
            dt { (ctx.t("Audience", "Destinatari")) } dd { (s.audience.label(ui.lang)) }
            dt { (ctx.t("Mode", "Modalità")) } dd { (s.mode.label(ui.lang)) }
            @if let Some(t) = s.topic_code { dt { (ctx.t("Request type", "Tipo di richiesta")) } dd { (t.label(ui.lang)) } }
            @if !s.facilitator.is_empty() { dt { (ctx.t("Facilitator", "Conduttore")) } dd { (s.facilitator) } }
            @if let Some(m) = &s.mediator { dt { (ctx.t("Mediator", "Mediatore")) } dd { (m) } }
        }
        @if let Some(reason) = &s.cancelled {
            (notice("warn", &format!("{} {reason}", ctx.t("This session is cancelled:", "Questo incontro è annullato:"))))
            (form_errors(ctx, errors))
            form method="post" action={"/sessions/" (id) "/cancel"} class="stack" {
                (csrf(ctx))
                input type="hidden" name="undo" value="1";
                div class="actions" { button type="submit" class="secondary" { (ctx.t("Restore this session", "Ripristina questo incontro")) } }
            }
        } @else {
            h2 { (ctx.t("Attendance", "Presenze")) }
            (form_errors(ctx, errors))
            form method="get" action={"/sessions/" (id)} class="filters" role="search" data-live="found" {
                (input("person_q", ctx.t("Add people: search by name", "Aggiungi persone: cerca per nome"), typed.get("person_q"), &FieldErrors::default(), Opts { kind: "search", autocomplete: Some("off"), ..Opts::default() }))
                div class="field" { button type="submit" class="secondary" { (ctx.t("Search", "Cerca")) } }
            }
            form method="post" action={"/sessions/" (id)} class="stack" {
                (csrf(ctx))
                fieldset {
                    legend { (ctx.t("Tick who is present", "Spunta chi è presente")) }
                    @if v.participants.is_empty() { p class="muted" { (ctx.t("Nobody registered yet.", "Ancora nessun iscritto.")) } }
                    ul class="choices" {
                        @for (i, (pid, name, _)) in v.participants.iter().enumerate() {
                            li {
                                input type="hidden" name="listed" value=(pid);
                                input type="checkbox" id={"f-present-" (i)} name="present" value=(pid) checked[present.contains(&pid.as_str())];
                                " " label for={"f-present-" (i)} { (name) }
                            }
                        }
                    }
                }
                fieldset {
                    legend { (ctx.t("Add and mark present", "Aggiungi e segna presenti")) }
                    div id="found" aria-live="polite" { (person_checkboxes(ctx, "add", found, &[])) }
                }
                @if s.kind == SessionKind::PublicMeeting {
                    (input("headcount", ctx.t("People counted but not registered", "Persone contate ma non iscritte"), &typed.optional("headcount").unwrap_or_else(|| s.headcount.to_string()), errors,
                        Opts { kind: "number", hint: Some(ctx.t("Public meetings only: counted in the reports, no names.", "Solo incontri pubblici: conta nei report, senza nomi.")), ..Opts::default() }))
                }
                div class="actions" { button type="submit" { (ctx.t("Save attendance", "Salva le presenze")) } }
            }
            details class="danger" {
                summary { (ctx.t("Cancel this session", "Annulla questo incontro")) }
                form method="post" action={"/sessions/" (id) "/cancel"} class="stack" {
                    (csrf(ctx))
                    p class="hint" { (ctx.t(
                        "A cancelled session stays on record and counts in no figure (e.g. one booked twice).",
                        "Un incontro annullato resta registrato e non conta in nessun dato (es. prenotato due volte)."
                    )) }
                    (input("reason", ctx.t("Why", "Perché"), "", &FieldErrors::default(), Opts::default()))
                    div class="actions" { button type="submit" { (ctx.t("Cancel the session", "Annulla l'incontro")) } }
                }
            }
        }
    };
    page(ctx, Section::Sessions, &title, body)
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let Some(doc) = parse_id(&id, RecordKind::Session) else { return Ok(not_found(&ctx)) };
    let typed = Typed(query);
    let ui = ctx.ui;
    let needle = typed.get("person_q").to_string();
    let found = read(&state.hub, move |node| {
        Ok((session_view(node, doc, &ui)?, people_matching(node, &needle, &ui)?))
    })
    .await?;
    let (Some(v), matches) = found else { return Ok(not_found(&ctx)) };
    let matches: Vec<(String, String)> =
        matches.into_iter().filter(|(m, _)| !v.participants.iter().any(|p| p.0 == *m)).collect();
    if typed.checked("partial") {
        return Ok(Html(person_checkboxes(&ctx, "add", &matches, &[]).into_string()).into_response());
    }
    let message = typed.checked("saved").then(|| notice("ok", ctx.t("Saved.", "Salvato.")));
    Ok(session_page(&ctx, &doc.to_hex(), &v, &matches, &typed, message, &FieldErrors::default()))
}

/// Saves attendance: the ticked people present, the others listed absent, the added
/// ones present; the headcount of a public meeting.
fn save_attendance(
    node: &mut Node,
    id: DocId,
    typed: &Typed,
    ui: &Ui,
) -> Result<Option<Result<(), FieldErrors>>> {
    let Some(Record::Session(mut s)) = node.docs().record(&id)? else { return Ok(None) };
    let mut errors = FieldErrors::default();
    if s.is_cancelled() {
        errors.add(
            "",
            ui.t(
                "This session is cancelled: attendance is not taken.",
                "Questo incontro è annullato: le presenze non si registrano.",
            ),
        );
        return Ok(Some(Err(errors)));
    }
    let present: Vec<&str> =
        typed.0.iter().filter(|(k, _)| k == "present").map(|(_, v)| v.as_str()).collect();
    for p in &mut s.participants {
        let hex = p.attendee.0.to_hex();
        if typed.0.iter().any(|(k, v)| k == "listed" && *v == hex) {
            p.present = present.contains(&hex.as_str());
        }
    }
    for (_, value) in typed.0.iter().filter(|(k, _)| k == "add") {
        let Some(who) = parse_id(value, RecordKind::Attendee) else { continue };
        if node.docs().record(&who)?.is_none() {
            continue;
        }
        match s.participants.iter_mut().find(|p| p.attendee.0 == who) {
            Some(p) => p.present = true,
            None => s.participants.push(Participant { attendee: RecordRef(who), present: true }),
        }
    }
    if let Some(text) = typed.optional("headcount") {
        match text.parse::<u32>() {
            Ok(n) => s.headcount = n,
            Err(_) => {
                errors.add(
                    "headcount",
                    ui.t("Write a whole number, e.g. 35.", "Scrivi un numero intero, es. 35."),
                );
                return Ok(Some(Err(errors)));
            }
        }
    }
    // The headcount field is shown for public meetings only: elsewhere its error is
    // the form's.
    let headcount_shown = s.kind == SessionKind::PublicMeeting;
    let record = Record::Session(s);
    if let Err(e) = validate::validate(&record, today()) {
        let field = match session_field_of(&e) {
            "headcount" if !headcount_shown => "",
            field => field,
        };
        errors.add(field, words::validation_message(&e, ui));
        return Ok(Some(Err(errors)));
    }
    node.transact(&[(id, record)])?;
    Ok(Some(Ok(())))
}

pub async fn attendance(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(doc) = parse_id(&id, RecordKind::Session) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    match write(&state.hub, &ctx, move |node| save_attendance(node, doc, &posted, &ui)).await? {
        None => Ok(not_found(&ctx)),
        Some(Ok(())) => Ok(see_other(&format!("/sessions/{}?saved=1", doc.to_hex()))),
        Some(Err(errors)) => {
            let Some(v) = read(&state.hub, move |node| session_view(node, doc, &ui)).await? else {
                return Ok(not_found(&ctx));
            };
            Ok(session_page(&ctx, &doc.to_hex(), &v, &[], &typed, None, &errors))
        }
    }
}

/// Cancels a session (kept, counted nowhere) or restores it: `session cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(doc) = parse_id(&id, RecordKind::Session) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let command = crate::cli::Command::Session(crate::cli::SessionCommand::Cancel {
        id: doc.to_hex(),
        reason: typed.optional("reason"),
        undo: typed.checked("undo"),
    });
    match run_command(&state.hub, &ctx, command).await? {
        Ok(_) => Ok(see_other(&format!("/sessions/{}?saved=1", doc.to_hex()))),
        Err(why) => {
            let ui = ctx.ui;
            let Some(v) = read(&state.hub, move |node| session_view(node, doc, &ui)).await? else {
                return Ok(not_found(&ctx));
            };
            let mut errors = FieldErrors::default();
            errors.add("", why);
            Ok(session_page(&ctx, &doc.to_hex(), &v, &[], &Typed::default(), None, &errors))
        }
    }
}

#[cfg(test)]
mod tests;
