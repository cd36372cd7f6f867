//! People: search by name as you type, register, edit, and a person's page with
//! their loans and attendance. Registration and edits are checked by the domain's
//! rules (`validate`): a broken rule shows its message next to its field, in the
//! operator's language, with what was typed kept, and nothing is saved.

use anyhow::Result;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use tessera_log::DocId;
use tessera_records::kind::RecordKind;
use tessera_records::model::{format_date, parse_date, Attendee, Consent, Guardian, Record, RecordRef};
use tessera_records::text::fold;
use tessera_records::validate::{self, ValidationError};
use tessera_records::vocab::{AttendeeRole, ConsentBy};

use super::forms::{self, csrf, form_errors, input, select, textarea, FieldErrors, Opts, Typed};
use super::layout::{notice, page, Section};
use super::names::{parse_id, person_name, Names};
use super::security::Ctx;
use super::{not_found, read, run_command, see_other, words, write, AppState, PageResult};
use crate::commands::{own_site, today};
use crate::node::Node;
use crate::ui::Ui;

/// Most people listed at once; a longer search says to type more.
const LIST_MAX: usize = 200;

/// One row of the people list.
pub struct PersonRow {
    pub id: String,
    pub family: String,
    pub given: String,
    pub born: u16,
    pub role: String,
    pub site: String,
}

/// The people whose name contains `needle` (folded: case and accents do not count),
/// by family name; and how many this hub may not list (other organisations', erased).
pub fn search(node: &Node, needle: &str, ui: &Ui) -> Result<(Vec<PersonRow>, usize)> {
    let needle = fold(needle.trim());
    let names = Names::load(node, ui)?;
    let mut rows = Vec::new();
    let mut hidden = 0;
    for (id, record) in node.docs().records(RecordKind::Attendee)? {
        let Record::Attendee(a) = record else { continue };
        if a.is_merged() {
            continue;
        }
        if a.is_erased() || a.is_reserved() {
            hidden += 1;
            continue;
        }
        let full = fold(&format!("{} {}", a.given_name, a.family_name));
        let reversed = fold(&format!("{} {}", a.family_name, a.given_name));
        if !needle.is_empty() && !full.contains(&needle) && !reversed.contains(&needle) {
            continue;
        }
        rows.push(PersonRow {
            id: id.to_hex(),
            family: a.family_name.clone(),
            given: a.given_name.clone(),
            born: a.birth_year,
            role: a.role.label(ui.lang).to_string(),
            site: names.site(&a.site).to_string(),
        });
    }
    rows.sort_by_cached_key(|r| (fold(&r.family), fold(&r.given)));
    Ok((rows, hidden))
}

fn results(ctx: &Ctx, rows: &[PersonRow], hidden: usize, needle: &str) -> Markup {
    html! {
        p role="status" class="muted" {
            (rows.len()) " " (ctx.t("people found", "persone trovate"))
            @if rows.len() > LIST_MAX { " (" (ctx.t("the first", "le prime")) " " (LIST_MAX) ": " (ctx.t("type more of the name", "scrivi più lettere del nome")) ")" }
        }
        @if rows.is_empty() && !needle.trim().is_empty() {
            p { (ctx.t("Nobody with that name.", "Nessuno con quel nome.")) " " a href="/people/new" { (ctx.t("Register a new person", "Iscrivi una nuova persona")) } }
        }
        @if !rows.is_empty() {
            div class="table-wrap" { table {
                thead { tr {
                    th scope="col" { (ctx.t("Family name", "Cognome")) }
                    th scope="col" { (ctx.t("Given name", "Nome")) }
                    th scope="col" { (ctx.t("Born", "Nato/a nel")) }
                    th scope="col" { (ctx.t("Role", "Ruolo")) }
                    th scope="col" { (ctx.t("Site", "Sede")) }
                } }
                tbody { @for r in rows.iter().take(LIST_MAX) {
                    tr {
                        td { a href={"/people/" (r.id)} { (r.family) } }
                        td { a href={"/people/" (r.id)} { (r.given) } }
                        td { (r.born) }
                        td { (r.role) }
                        td { (r.site) }
                    }
                } }
            } }
        }
        @if hidden > 0 {
            p class="muted" { (hidden) " " (ctx.t(
                "people are not listed: registered by other organisations (their details are theirs to read) or erased (GDPR art. 17).",
                "persone non sono elencate: registrate da altri enti (i loro dati sono visibili solo a quegli enti) o cancellate (GDPR art. 17)."
            )) }
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let query = Typed(query);
    let needle = query.get("q").to_string();
    let ui = ctx.ui;
    let wanted = needle.clone();
    let (rows, hidden) = read(&state.hub, move |node| search(node, &wanted, &ui)).await?;
    let found = results(&ctx, &rows, hidden, &needle);
    if query.checked("partial") {
        return Ok(Html(found.into_string()).into_response());
    }
    let body = html! {
        @if query.checked("erased") {
            (notice("ok", ctx.t(
                "Erased: their details are gone from this hub, and every hub and relay removes them when it syncs. The anonymous counts stay.",
                "Cancellata: i suoi dati sono stati tolti da questo polo, e ogni polo e relay li toglie quando si sincronizza. Restano i conteggi anonimi."
            )))
        }
        h1 { (ctx.t("People", "Persone")) }
        div class="actions" {
            a class="button" href="/people/new" { (ctx.t("Register a person", "Iscrivi una persona")) }
            a class="button secondary" href="/people/import" { (ctx.t("Import a spreadsheet", "Importa un foglio di calcolo")) }
        }
        form method="get" action="/people" data-live="results" role="search" class="filters" {
            (input("q", ctx.t("Search by name", "Cerca per nome"), &needle, &FieldErrors::default(),
                Opts { kind: "search", hint: Some(ctx.t("Given or family name; accents do not matter.", "Nome o cognome; gli accenti non contano.")), autocomplete: Some("off"), ..Opts::default() }))
            div class="field" { button type="submit" { (ctx.t("Search", "Cerca")) } }
        }
        div id="results" aria-live="polite" { (found) }
    };
    Ok(page(&ctx, Section::People, ctx.t("People", "Persone"), body))
}

// ---------------------------------------------------------------------------------
// The registration form

/// The form's values for an existing person (edit).
fn typed_of(a: &Attendee) -> Typed {
    let mut t = Typed::default();
    let g = a.guardian.clone().unwrap_or(Guardian { name: String::new(), phone: None, email: None });
    for (name, value) in [
        ("given", a.given_name.clone()),
        ("family", a.family_name.clone()),
        ("birth_year", a.birth_year.to_string()),
        ("role", a.role.as_str().to_string()),
        ("school", a.school.clone().unwrap_or_default()),
        ("class", a.class.clone().unwrap_or_default()),
        ("guardian_name", g.name),
        ("guardian_phone", g.phone.unwrap_or_default()),
        ("guardian_email", g.email.unwrap_or_default()),
        ("phone", a.phone.clone().unwrap_or_default()),
        ("email", a.email.clone().unwrap_or_default()),
        ("languages", a.languages.join(", ")),
        ("consent_by", a.consent.given_by.as_str().to_string()),
        ("consent_date", a.consent.date.clone()),
        ("operator", a.consent.operator.clone()),
        ("referent", a.referent_operator.clone().unwrap_or_default()),
        ("notes", a.plan_notes.clone()),
    ] {
        t.set(name, value);
    }
    t
}

/// The form field a broken rule is about.
fn field_of(error: &ValidationError) -> &'static str {
    match error {
        ValidationError::MinorWithoutGuardian { .. } => "guardian_name",
        ValidationError::GuardianWithoutContact => "guardian_phone",
        ValidationError::ConsentNeedsGuardian { .. } => "consent_by",
        ValidationError::BirthYearOutOfRange { .. } => "birth_year",
        other => match other.field() {
            "given name" => "given",
            "family name" => "family",
            "guardian name" => "guardian_name",
            "guardian phone" => "guardian_phone",
            "guardian e-mail" => "guardian_email",
            "consent date" => "consent_date",
            "consent operator" => "operator",
            "phone" => "phone",
            "e-mail" => "email",
            "school" => "school",
            "class" => "class",
            "languages" | "language" => "languages",
            "referent operator" => "referent",
            "intervention plan notes" => "notes",
            _ => "",
        },
    }
}

/// A new person's record before the form is applied: consent today, this hub's site.
fn blank(site: DocId) -> Attendee {
    Attendee {
        given_name: String::new(),
        family_name: String::new(),
        birth_year: 0,
        role: AttendeeRole::Citizen,
        school: None,
        class: None,
        guardian: None,
        phone: None,
        email: None,
        languages: Vec::new(),
        consent: Consent {
            date: format_date(today()),
            given_by: ConsentBy::Attendee,
            operator: String::new(),
        },
        referent_operator: None,
        plan_notes: String::new(),
        site: RecordRef(site),
        merged_into: None,
        not_duplicates_of: Vec::new(),
        registered_by: None,
        match_key: None,
        erased: None,
        id_nonce: None,
    }
}

/// Applies the form to `a`: what cannot even be read (a year that is not a number)
/// is an error of its field; then the domain's rules.
fn apply_form(a: &mut Attendee, typed: &Typed, ui: &Ui) -> FieldErrors {
    let mut errors = FieldErrors::default();
    a.given_name = typed.get("given").trim().to_string();
    a.family_name = typed.get("family").trim().to_string();
    match typed.get("birth_year").trim().parse::<u16>() {
        Ok(year) => a.birth_year = year,
        Err(_) => errors.add(
            "birth_year",
            ui.t(
                "Write the year of birth with four digits, e.g. 2012.",
                "Scrivi l'anno di nascita con quattro cifre, es. 2012.",
            ),
        ),
    }
    match AttendeeRole::from_str_exact(typed.get("role")) {
        Some(role) => a.role = role,
        None => errors.add("role", ui.t("Choose a role.", "Scegli un ruolo.")),
    }
    match ConsentBy::from_str_exact(typed.get("consent_by")) {
        Some(by) => a.consent.given_by = by,
        None => errors
            .add("consent_by", ui.t("Say who signed the consent.", "Indica chi ha firmato il consenso.")),
    }
    match parse_date(typed.get("consent_date").trim()) {
        Some(day) => a.consent.date = format_date(day),
        None => errors.add(
            "consent_date",
            ui.t("Give the date the consent was signed.", "Indica la data della firma del consenso."),
        ),
    }
    a.consent.operator = typed.get("operator").trim().to_string();
    a.school = typed.optional("school");
    a.class = typed.optional("class");
    a.phone = typed.optional("phone");
    a.email = typed.optional("email");
    let (g_name, g_phone, g_email) =
        (typed.optional("guardian_name"), typed.optional("guardian_phone"), typed.optional("guardian_email"));
    a.guardian = match (&g_name, &g_phone, &g_email) {
        (None, None, None) => None,
        _ => Some(Guardian { name: g_name.unwrap_or_default(), phone: g_phone, email: g_email }),
    };
    a.languages =
        typed.get("languages").split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    a.referent_operator = typed.optional("referent");
    a.plan_notes = typed.get("notes").trim().to_string();
    if errors.is_empty() {
        if let Err(e) = validate::validate(&Record::Attendee(a.clone()), today()) {
            errors.add(field_of(&e), words::validation_message(&e, ui));
        }
    }
    errors
}

fn role_options(ui: &Ui) -> Vec<(String, String)> {
    forms::vocab_options(AttendeeRole::ALL, AttendeeRole::as_str, |r| r.label(ui.lang))
}

fn consent_options(ui: &Ui) -> Vec<(String, String)> {
    forms::vocab_options(ConsentBy::ALL, ConsentBy::as_str, |r| r.label(ui.lang))
}

/// The registration or edit form, with what was typed and the errors by field.
fn person_form(ctx: &Ctx, action: &str, typed: &Typed, errors: &FieldErrors) -> Markup {
    let e = errors;
    let req = Opts { required: true, ..Opts::default() };
    html! {
        (form_errors(ctx, errors))
        form method="post" action=(action) class="stack" novalidate {
            (csrf(ctx))
            p class="hint" { span class="req" { "*" } " " (ctx.t("required", "obbligatorio")) }
            fieldset {
                legend { (ctx.t("The person", "La persona")) }
                (input("given", ctx.t("Given name", "Nome"), typed.get("given"), e, Opts { autocomplete: Some("off"), ..req }))
                (input("family", ctx.t("Family name", "Cognome"), typed.get("family"), e, Opts { autocomplete: Some("off"), ..req }))
                (input("birth_year", ctx.t("Year of birth", "Anno di nascita"), typed.get("birth_year"), e,
                    Opts { kind: "number", hint: Some(ctx.t("Only the year is kept.", "Si registra solo l'anno.")), ..req }))
                (select("role", ctx.t("Role", "Ruolo"), &role_options(&ctx.ui), typed.get("role"), e, None))
                (input("school", ctx.t("School", "Scuola"), typed.get("school"), e, Opts::default()))
                (input("class", ctx.t("Class", "Classe"), typed.get("class"), e, Opts::default()))
                (input("phone", ctx.t("Phone", "Telefono"), typed.get("phone"), e, Opts { kind: "tel", ..Opts::default() }))
                (input("email", ctx.t("E-mail", "E-mail"), typed.get("email"), e, Opts { kind: "email", ..Opts::default() }))
                (input("languages", ctx.t("Languages spoken", "Lingue parlate"), typed.get("languages"), e,
                    Opts { hint: Some(ctx.t("Separated by commas, e.g. Italian, Arabic.", "Separate da virgole, es. italiano, arabo.")), ..Opts::default() }))
            }
            fieldset {
                legend { (ctx.t("Parent or guardian (required for minors)", "Genitore o tutore (obbligatorio per i minorenni)")) }
                (input("guardian_name", ctx.t("Guardian's name", "Nome del tutore"), typed.get("guardian_name"), e, Opts::default()))
                (input("guardian_phone", ctx.t("Guardian's phone", "Telefono del tutore"), typed.get("guardian_phone"), e, Opts { kind: "tel", ..Opts::default() }))
                (input("guardian_email", ctx.t("Guardian's e-mail", "E-mail del tutore"), typed.get("guardian_email"), e, Opts { kind: "email", ..Opts::default() }))
            }
            fieldset {
                legend { (ctx.t("Consent to data processing", "Consenso al trattamento dei dati")) }
                (select("consent_by", ctx.t("Signed by", "Firmato da"), &consent_options(&ctx.ui), typed.get("consent_by"), e,
                    Some(ctx.t("Under 14 the parent or guardian signs.", "Sotto i 14 anni firma il genitore o tutore."))))
                (input("consent_date", ctx.t("Date signed", "Data della firma"), typed.get("consent_date"), e, Opts { kind: "date", ..req }))
                (input("operator", ctx.t("Operator who collected it", "Operatore che l'ha raccolto"), typed.get("operator"), e, req))
            }
            fieldset {
                legend { (ctx.t("Follow-up", "Accompagnamento")) }
                (input("referent", ctx.t("Referent operator", "Operatore di riferimento"), typed.get("referent"), e, Opts::default()))
                (textarea("notes", ctx.t("Plan notes", "Note del piano"), typed.get("notes"), e))
            }
            @if e.get("force").is_some() || typed.checked("force") {
                (forms::checkbox("force", ctx.t("It is another person: save anyway", "È un'altra persona: salva comunque"), typed.checked("force"), e, None))
            }
            div class="actions" {
                button type="submit" { (ctx.t("Save", "Salva")) }
                a href="/people" { (ctx.t("Cancel", "Annulla")) }
            }
        }
    }
}

fn form_page(ctx: &Ctx, title: &str, action: &str, typed: &Typed, errors: &FieldErrors) -> Response {
    let body = html! { h1 { (title) } (person_form(ctx, action, typed, errors)) };
    page(ctx, Section::People, title, body)
}

pub async fn new_form(ctx: Ctx) -> Response {
    let mut typed = Typed::default();
    typed.set("consent_date", format_date(today()));
    typed.set("role", AttendeeRole::Student.as_str());
    typed.set("consent_by", ConsentBy::Guardian.as_str());
    form_page(
        &ctx,
        ctx.t("Register a person", "Iscrivi una persona"),
        "/people",
        &typed,
        &FieldErrors::default(),
    )
}

/// Registers a person, or shows the form again with the errors.
pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    let saved = write(&state.hub, &ctx, move |node| -> Result<Result<DocId, FieldErrors>> {
        let site = own_site(node, &ui)?;
        let mut a = blank(site);
        let mut errors = apply_form(&mut a, &posted, &ui);
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        if !posted.checked("force") {
            if let Some(warning) = probable_duplicate(node, &a, &ui)? {
                errors.add("force", warning);
                return Ok(Err(errors));
            }
        }
        let (id, nonce) = node.new_attendee_id()?;
        a.id_nonce = Some(nonce);
        node.transact(&[(id, Record::Attendee(a))])?;
        Ok(Ok(id))
    })
    .await?;
    Ok(match saved {
        Ok(id) => see_other(&format!("/people/{}?saved=1", id.to_hex())),
        Err(errors) => {
            form_page(&ctx, ctx.t("Register a person", "Iscrivi una persona"), "/people", &typed, &errors)
        }
    })
}

/// The warning when `a` is probably someone already registered (same name and year
/// of birth), naming them; `None` when nobody is alike.
fn probable_duplicate(node: &Node, a: &Attendee, ui: &Ui) -> Result<Option<String>> {
    let people = node.docs().records(RecordKind::Attendee)?;
    let same = tessera_records::conflicts::probable_duplicates_of(a, &people);
    if same.is_empty() {
        return Ok(None);
    }
    let names = Names::load(node, ui)?;
    let who = same
        .iter()
        .filter_map(|id| people.iter().find(|(other, _)| other == id))
        .map(|(_, record)| match record {
            Record::Attendee(p) => format!(
                "{} ({} {}, {})",
                person_name(node, p, ui),
                ui.t("born", "nato/a nel"),
                p.birth_year,
                names.site(&p.site)
            ),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Some(format!(
        "{} {who}. {}",
        ui.t("Probably already registered:", "Probabilmente già iscritta:"),
        ui.t(
            "Look them up under People; if this is another person, tick the box and save again.",
            "Cercala in Persone; se è un'altra persona, spunta la casella e salva di nuovo."
        )
    )))
}

/// Why a person cannot be edited here, if so.
fn not_editable(node: &Node, a: &Attendee, ui: &Ui) -> Option<String> {
    if let Some(erased) = &a.erased {
        return Some(format!(
            "{} {}",
            ui.t("This person was erased on", "Questa persona è stata cancellata il"),
            words::date(&erased.on, ui)
        ));
    }
    if a.is_reserved() {
        return Some(format!(
            "{} {}",
            ui.t(
                "Only the organisation that registered this person may change their details:",
                "Solo l'ente che ha registrato questa persona può modificarne i dati:"
            ),
            crate::commands::registering_partner(node, a)
                .unwrap_or_else(|| ui.t("another organisation", "un altro ente").into())
        ));
    }
    None
}

fn load_attendee(node: &Node, id: &DocId) -> Result<Option<Attendee>> {
    Ok(match node.docs().record(id)? {
        Some(Record::Attendee(a)) => Some(a),
        _ => None,
    })
}

pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Attendee) else { return Ok(not_found(&ctx)) };
    let ui = ctx.ui;
    let found = read(&state.hub, move |node| {
        Ok(load_attendee(node, &id)?.map(|a| (not_editable(node, &a, &ui), typed_of(&a))))
    })
    .await?;
    Ok(match found {
        None => not_found(&ctx),
        Some((Some(why), _)) => page(&ctx, Section::People, ctx.t("Edit", "Modifica"), notice("error", &why)),
        Some((None, typed)) => form_page(
            &ctx,
            ctx.t("Edit a person", "Modifica una persona"),
            &format!("/people/{}", id.to_hex()),
            &typed,
            &FieldErrors::default(),
        ),
    })
}

/// Saves an edit, or shows the form again with the errors.
pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Attendee) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    let saved = write(&state.hub, &ctx, move |node| -> Result<Option<Result<(), FieldErrors>>> {
        let Some(mut a) = load_attendee(node, &id)? else { return Ok(None) };
        if let Some(why) = not_editable(node, &a, &ui) {
            let mut errors = FieldErrors::default();
            errors.add("", why);
            return Ok(Some(Err(errors)));
        }
        let errors = apply_form(&mut a, &posted, &ui);
        if !errors.is_empty() {
            return Ok(Some(Err(errors)));
        }
        node.transact(&[(id, Record::Attendee(a))])?;
        Ok(Some(Ok(())))
    })
    .await?;
    let action = format!("/people/{}", id.to_hex());
    Ok(match saved {
        None => not_found(&ctx),
        Some(Ok(())) => see_other(&format!("{action}?saved=1")),
        Some(Err(errors)) => {
            form_page(&ctx, ctx.t("Edit a person", "Modifica una persona"), &action, &typed, &errors)
        }
    })
}

// ---------------------------------------------------------------------------------
// A person's page

struct LoanLine {
    id: String,
    device: String,
    start: String,
    due: String,
    returned: Option<String>,
    overdue: bool,
}

struct Attended {
    id: String,
    start: String,
    what: String,
    site: String,
    present: bool,
}

struct PersonView {
    name: String,
    attendee: Attendee,
    site: String,
    editable: Option<String>,
    loans: Vec<LoanLine>,
    attended: Vec<Attended>,
}

fn person_view(node: &Node, id: DocId, ui: &Ui) -> Result<Option<PersonView>> {
    let Some(a) = load_attendee(node, &id)? else { return Ok(None) };
    let names = Names::load(node, ui)?;
    let today_s = format_date(today());
    let mut loans = Vec::new();
    for (loan_id, record) in node.docs().records(RecordKind::Loan)? {
        let Record::Loan(l) = record else { continue };
        if l.attendee.0 != id {
            continue;
        }
        loans.push(LoanLine {
            id: loan_id.to_hex(),
            device: names.device(&l.device).to_string(),
            overdue: l.is_open() && l.expected_return < today_s,
            start: l.start,
            due: l.expected_return,
            returned: l.returned_at,
        });
    }
    loans.sort_by(|a, b| b.start.cmp(&a.start));
    let mut attended = Vec::new();
    for (session_id, record) in node.docs().records(RecordKind::Session)? {
        let Record::Session(s) = record else { continue };
        let Some(p) = s.participants.iter().find(|p| p.attendee.0 == id) else { continue };
        let what = match s.topic.trim() {
            "" => s.kind.label(ui.lang).to_string(),
            topic => format!("{}: {topic}", s.kind.label(ui.lang)),
        };
        attended.push(Attended {
            id: session_id.to_hex(),
            start: s.start.clone(),
            what,
            site: names.site(&s.site).to_string(),
            present: p.present,
        });
    }
    attended.sort_by(|a, b| b.start.cmp(&a.start));
    Ok(Some(PersonView {
        name: person_name(node, &a, ui),
        site: names.site(&a.site).to_string(),
        editable: not_editable(node, &a, ui),
        attendee: a,
        loans,
        attended,
    }))
}

fn details(ctx: &Ctx, v: &PersonView) -> Markup {
    let a = &v.attendee;
    let ui = &ctx.ui;
    let guardian = a.guardian.as_ref().map(|g| {
        [Some(g.name.clone()), g.phone.clone(), g.email.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    });
    html! {
        dl class="fields" {
            dt { (ctx.t("Year of birth", "Anno di nascita")) } dd { (a.birth_year) }
            dt { (ctx.t("Role", "Ruolo")) } dd { (a.role.label(ui.lang)) }
            dt { (ctx.t("Registered at", "Iscritto presso")) } dd { (v.site) }
            @if v.editable.is_none() {
                @if let Some(s) = &a.school { dt { (ctx.t("School", "Scuola")) } dd { (s) @if let Some(c) = &a.class { ", " (c) } } }
                @if let Some(g) = &guardian { dt { (ctx.t("Guardian", "Tutore")) } dd { (g) } }
                @if let Some(p) = &a.phone { dt { (ctx.t("Phone", "Telefono")) } dd { (p) } }
                @if let Some(m) = &a.email { dt { (ctx.t("E-mail", "E-mail")) } dd { (m) } }
                @if !a.languages.is_empty() { dt { (ctx.t("Languages", "Lingue")) } dd { (a.languages.join(", ")) } }
                dt { (ctx.t("Consent", "Consenso")) }
                dd { (words::date(&a.consent.date, ui)) ", " (a.consent.given_by.label(ui.lang)) ", " (ctx.t("collected by", "raccolto da")) " " (a.consent.operator) }
                @if let Some(r) = &a.referent_operator { dt { (ctx.t("Referent", "Referente")) } dd { (r) } }
                @if !a.plan_notes.is_empty() { dt { (ctx.t("Plan notes", "Note del piano")) } dd { (a.plan_notes) } }
            }
        }
    }
}

fn loans_table(ctx: &Ctx, v: &PersonView) -> Markup {
    html! {
        h2 { (ctx.t("Loans", "Prestiti")) }
        @if v.loans.is_empty() { p class="muted" { (ctx.t("No loans.", "Nessun prestito.")) } } @else {
            div class="table-wrap" { table {
                thead { tr {
                    th scope="col" { (ctx.t("Device", "Dispositivo")) }
                    th scope="col" { (ctx.t("From", "Dal")) }
                    th scope="col" { (ctx.t("Due", "Scadenza")) }
                    th scope="col" { (ctx.t("State", "Stato")) }
                    th scope="col" { (ctx.t("Agreement", "Contratto")) }
                } }
                tbody { @for l in &v.loans { tr {
                    td { (l.device) }
                    td { (words::date(&l.start, &ctx.ui)) }
                    td { (words::date(&l.due, &ctx.ui)) }
                    td {
                        @if let Some(r) = &l.returned { (ctx.t("returned on", "restituito il")) " " (words::date(r, &ctx.ui)) }
                        @else if l.overdue { span class="tag overdue" { (ctx.t("overdue", "scaduto")) } }
                        @else { span class="tag open" { (ctx.t("open", "in corso")) } }
                    }
                    td { a href={"/loans/" (l.id) "/agreement"} { (ctx.t("Print the agreement", "Stampa il contratto")) } }
                } } }
            } }
        }
    }
}

fn attendance_table(ctx: &Ctx, v: &PersonView) -> Markup {
    html! {
        h2 { (ctx.t("Attendance", "Presenze")) }
        @if v.attended.is_empty() { p class="muted" { (ctx.t("Not registered at any session yet.", "Non ancora iscritto a nessun incontro.")) } } @else {
            div class="table-wrap" { table {
                thead { tr {
                    th scope="col" { (ctx.t("When", "Quando")) }
                    th scope="col" { (ctx.t("Session", "Incontro")) }
                    th scope="col" { (ctx.t("Site", "Sede")) }
                    th scope="col" { (ctx.t("Present", "Presente")) }
                } }
                tbody { @for s in &v.attended { tr {
                    td { (words::date_time(&s.start, &ctx.ui)) }
                    td { a href={"/sessions/" (s.id)} { (s.what) } }
                    td { (s.site) }
                    td { (words::yes_no(s.present, &ctx.ui)) }
                } } }
            } }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Attendee) else { return Ok(not_found(&ctx)) };
    let ui = ctx.ui;
    let Some(v) = read(&state.hub, move |node| person_view(node, id, &ui)).await? else {
        return Ok(not_found(&ctx));
    };
    let saved = Typed(query).checked("saved");
    let hex = id.to_hex();
    let body = html! {
        @if saved { (notice("ok", ctx.t("Saved.", "Salvato."))) }
        h1 { (v.name) }
        @if let Some(why) = &v.editable { (notice("warn", why)) }
        @if v.editable.is_none() {
            div class="actions" {
                a class="button" href={"/people/" (hex) "/edit"} { (ctx.t("Edit", "Modifica")) }
                a class="button secondary" href={"/loans/new?person=" (hex)} { (ctx.t("Lend a device", "Presta un dispositivo")) }
            }
        }
        (details(&ctx, &v))
        (loans_table(&ctx, &v))
        (attendance_table(&ctx, &v))
        @if v.editable.is_none() { (erase_form(&ctx, &hex, &FieldErrors::default())) }
    };
    Ok(page(&ctx, Section::People, &v.name, body))
}

/// Erasing a person (GDPR art. 17, or a registration made by mistake): folded away,
/// with its reason and a confirmation, as `attendee erase --reason R --yes`.
fn erase_form(ctx: &Ctx, hex: &str, errors: &FieldErrors) -> Markup {
    html! {
        details class="danger" open[!errors.is_empty()] {
            summary { (ctx.t("Erase this person", "Cancella questa persona")) }
            (form_errors(ctx, errors))
            form method="post" action={"/people/" (hex) "/erase"} class="stack" {
                (csrf(ctx))
                p class="hint" { (ctx.t(
                    "Their details and history are removed from this hub and from every hub and relay it syncs with; only the id, \"erased on DATE\" and the anonymous counts stay. It cannot be undone.",
                    "I suoi dati e la sua storia sono tolti da questo polo e da ogni polo e relay con cui si sincronizza; restano solo il codice, «cancellata il DATA» e i conteggi anonimi. Non si può annullare."
                )) }
                fieldset {
                    legend { (ctx.t("Why", "Perché")) }
                    div class="field check" {
                        input type="radio" name="reason" id="f-reason-request" value="request" checked;
                        label for="f-reason-request" { (ctx.t("The person asked (GDPR art. 17)", "L'ha chiesto la persona (GDPR art. 17)")) }
                    }
                    div class="field check" {
                        input type="radio" name="reason" id="f-reason-mistake" value="mistake";
                        label for="f-reason-mistake" { (ctx.t("Registered by mistake", "Iscritta per errore")) }
                    }
                }
                (forms::checkbox("yes", ctx.t("I understand that it cannot be undone", "Ho capito che non si può annullare"), false, errors, None))
                div class="actions" { button type="submit" { (ctx.t("Erase", "Cancella")) } }
            }
        }
    }
}

/// Erases a person: `attendee erase`, the same rules and messages.
pub async fn erase(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Attendee) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let hex = id.to_hex();
    let mut errors = FieldErrors::default();
    if !typed.checked("yes") {
        errors.add(
            "yes",
            ctx.t(
                "Tick the box to confirm: an erasure cannot be undone.",
                "Spunta la casella per confermare: una cancellazione non si può annullare.",
            ),
        );
    } else {
        let reason = match typed.get("reason") {
            "mistake" => "mistake",
            _ => "request",
        };
        let command = crate::cli::Command::Attendee(crate::cli::AttendeeCommand::Erase {
            id: hex.clone(),
            reason: reason.to_string(),
            yes: true,
            network_key: None,
        });
        match run_command(&state.hub, &ctx, command).await? {
            Ok(_) => return Ok(see_other("/people?erased=1")),
            Err(why) => errors.add("", why),
        }
    }
    let ui = ctx.ui;
    let Some(v) = read(&state.hub, move |node| person_view(node, id, &ui)).await? else {
        return Ok(not_found(&ctx));
    };
    let body = html! {
        h1 { (v.name) }
        (details(&ctx, &v))
        (erase_form(&ctx, &hex, &errors))
    };
    Ok(page(&ctx, Section::People, &v.name, body))
}

#[cfg(test)]
mod tests;
