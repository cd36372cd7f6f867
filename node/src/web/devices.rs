//! Devices and loans (comodato d'uso): the inventory with filters, registering a
//! device, lending one (device and person chosen by search), its return with the
//! condition it came back in, and the agreement as a page that prints on one A4
//! sheet. A loan opens and marks its device lent in one change, as `tessera loan add`
//! does; the rules (a broken or lent device is not lent, the agreement is signed
//! first) are the domain's (`validate_new_loan`).

use anyhow::Result;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use tessera_log::DocId;
use tessera_records::kind::RecordKind;
use tessera_records::model::{format_date, parse_date, Attendee, Device, Loan, Record, RecordRef, Site};
use tessera_records::text::fold;
use tessera_records::validate::{self, ValidationError};
use tessera_records::vocab::{DeviceCondition, DeviceKind, DeviceOrigin, DeviceStatus};

use super::forms::{
    self, checkbox, csrf, form_errors, input, select, with_any, FieldErrors, Options, Opts, Typed,
};
use super::layout::{notice, page, Section};
use super::names::{device_label, parse_id, person_name, Names};
use super::security::Ctx;
use super::{not_found, read, run_command, see_other, words, write, AppState, PageResult};
use crate::commands::{own_site, today};
use crate::node::Node;
use crate::ui::Ui;

/// Most choices listed under a search on the lending form.
const CHOICES_MAX: usize = 15;

fn load_device(node: &Node, id: &DocId) -> Result<Option<Device>> {
    Ok(match node.docs().record(id)? {
        Some(Record::Device(d)) => Some(d),
        _ => None,
    })
}

fn open_loans_of(node: &Node, device: &DocId) -> Result<Vec<(DocId, Loan)>> {
    Ok(node
        .docs()
        .records(RecordKind::Loan)?
        .into_iter()
        .filter_map(|(id, r)| match r {
            Record::Loan(l) if l.device.0 == *device && l.is_open() => Some((id, l)),
            _ => None,
        })
        .collect())
}

fn status_tag(ctx: &Ctx, status: DeviceStatus) -> Markup {
    let class = match status {
        DeviceStatus::InStock => "tag good",
        DeviceStatus::Lent => "tag",
        DeviceStatus::InRepair | DeviceStatus::Retired => "tag bad",
    };
    html! { span class=(class) { (status.label(ctx.lang())) } }
}

// ---------------------------------------------------------------------------------
// Inventory

struct DeviceRow {
    id: String,
    label: String,
    kind: String,
    status: DeviceStatus,
    condition: String,
    site: String,
    borrower: Option<(String, String)>,
}

fn inventory(node: &Node, filter: &Typed, ui: &Ui) -> Result<(Vec<DeviceRow>, Options)> {
    let names = Names::load(node, ui)?;
    let needle = fold(filter.get("q").trim());
    let status = DeviceStatus::from_str_exact(filter.get("status"));
    let kind = DeviceKind::from_str_exact(filter.get("kind"));
    let site = parse_id(filter.get("site"), RecordKind::Site);
    let mut borrowers = std::collections::HashMap::new();
    for (_, record) in node.docs().records(RecordKind::Loan)? {
        if let Record::Loan(l) = record {
            if l.is_open() {
                borrowers.insert(l.device.0, (l.attendee.0.to_hex(), names.person(&l.attendee).to_string()));
            }
        }
    }
    let mut rows = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Device)? {
        let Record::Device(d) = record else { continue };
        if status.is_some_and(|s| d.status != s)
            || kind.is_some_and(|k| d.kind != k)
            || site.is_some_and(|s| d.site.0 != s)
            || (!needle.is_empty()
                && !fold(&device_label(&d)).contains(&needle)
                && !fold(&d.serial).contains(&needle))
        {
            continue;
        }
        rows.push(DeviceRow {
            id: id.to_hex(),
            label: device_label(&d),
            kind: d.kind.label(ui.lang).to_string(),
            status: d.status,
            condition: d.condition.label(ui.lang).to_string(),
            site: names.site(&d.site).to_string(),
            borrower: borrowers.remove(&id),
        });
    }
    rows.sort_by(|a, b| a.label.cmp(&b.label));
    let sites = names.sites().into_iter().map(|(id, name)| (id.to_hex(), name)).collect();
    Ok((rows, sites))
}

fn inventory_table(ctx: &Ctx, rows: &[DeviceRow]) -> Markup {
    html! {
        p role="status" class="muted" { (rows.len()) " " (ctx.t("devices", "dispositivi")) }
        @if !rows.is_empty() {
            div class="table-wrap" { table {
                thead { tr {
                    th scope="col" { (ctx.t("Tag", "Etichetta")) }
                    th scope="col" { (ctx.t("Kind", "Tipo")) }
                    th scope="col" { (ctx.t("Status", "Stato")) }
                    th scope="col" { (ctx.t("Condition", "Condizioni")) }
                    th scope="col" { (ctx.t("Site", "Sede")) }
                    th scope="col" { (ctx.t("With", "Presso")) }
                } }
                tbody { @for r in rows { tr {
                    td { a href={"/devices/" (r.id)} { (r.label) } }
                    td { (r.kind) }
                    td { (status_tag(ctx, r.status)) }
                    td { (r.condition) }
                    td { (r.site) }
                    td {
                        @if let Some((id, name)) = &r.borrower { a href={"/people/" (id)} { (name) } }
                        @else if r.status == DeviceStatus::InStock { a href={"/loans/new?device=" (r.id)} { (ctx.t("Lend", "Presta")) } }
                    }
                } } }
            } }
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let filter = Typed(query);
    let ui = ctx.ui;
    let wanted = filter.clone();
    let (rows, sites) = read(&state.hub, move |node| inventory(node, &wanted, &ui)).await?;
    let table = inventory_table(&ctx, &rows);
    if filter.checked("partial") {
        return Ok(Html(table.into_string()).into_response());
    }
    let none = FieldErrors::default();
    let any = ctx.t("any", "tutti");
    let statuses =
        with_any(any, forms::vocab_options(DeviceStatus::ALL, DeviceStatus::as_str, |s| s.label(ui.lang)));
    let kinds =
        with_any(any, forms::vocab_options(DeviceKind::ALL, DeviceKind::as_str, |s| s.label(ui.lang)));
    let body = html! {
        h1 { (ctx.t("Devices", "Dispositivi")) }
        div class="actions" {
            a class="button" href="/devices/new" { (ctx.t("Register a device", "Registra un dispositivo")) }
            a class="button secondary" href="/loans/new" { (ctx.t("Lend a device", "Presta un dispositivo")) }
        }
        form method="get" action="/devices" data-live="inventory" class="filters" role="search" {
            (input("q", ctx.t("Tag, model or serial", "Etichetta, modello o matricola"), filter.get("q"), &none, Opts { kind: "search", autocomplete: Some("off"), ..Opts::default() }))
            (select("status", ctx.t("Status", "Stato"), &statuses, filter.get("status"), &none, None))
            (select("kind", ctx.t("Kind", "Tipo"), &kinds, filter.get("kind"), &none, None))
            (select("site", ctx.t("Site", "Sede"), &with_any(any, sites), filter.get("site"), &none, None))
            div class="field" { button type="submit" { (ctx.t("Filter", "Filtra")) } }
        }
        div id="inventory" aria-live="polite" { (table) }
    };
    Ok(page(&ctx, Section::Devices, ctx.t("Devices", "Dispositivi"), body))
}

// ---------------------------------------------------------------------------------
// Registering a device

/// The device form: registering (`editing` None) or editing a device, whose status
/// can then be changed too (except to or from "lent": loans decide that).
fn device_form(
    ctx: &Ctx,
    typed: &Typed,
    errors: &FieldErrors,
    editing: Option<(&str, DeviceStatus)>,
) -> Response {
    let ui = ctx.ui;
    let kinds = forms::vocab_options(DeviceKind::ALL, DeviceKind::as_str, |s| s.label(ui.lang));
    let origins = forms::vocab_options(DeviceOrigin::ALL, DeviceOrigin::as_str, |s| s.label(ui.lang));
    let conditions =
        forms::vocab_options(DeviceCondition::ALL, DeviceCondition::as_str, |s| s.label(ui.lang));
    let statuses: Vec<DeviceStatus> =
        DeviceStatus::ALL.iter().copied().filter(|s| *s != DeviceStatus::Lent).collect();
    let statuses = forms::vocab_options(&statuses, DeviceStatus::as_str, |s| s.label(ui.lang));
    let (title, action, back) = match editing {
        None => (
            ctx.t("Register a device", "Registra un dispositivo"),
            "/devices".to_string(),
            "/devices".to_string(),
        ),
        Some((hex, _)) => (
            ctx.t("Edit a device", "Modifica un dispositivo"),
            format!("/devices/{hex}"),
            format!("/devices/{hex}"),
        ),
    };
    let body = html! {
        h1 { (title) }
        (form_errors(ctx, errors))
        form method="post" action=(action) class="stack" novalidate {
            (csrf(ctx))
            (input("tag", ctx.t("Asset tag", "Etichetta inventario"), typed.get("tag"), errors,
                Opts { required: true, hint: Some(ctx.t("As written on the sticker, e.g. TAB-0042.", "Come scritta sull'adesivo, es. TAB-0042.")), ..Opts::default() }))
            (select("kind", ctx.t("Kind", "Tipo"), &kinds, typed.get("kind"), errors, None))
            (input("model", ctx.t("Model", "Modello"), typed.get("model"), errors, Opts::default()))
            (input("serial", ctx.t("Serial number", "Matricola"), typed.get("serial"), errors, Opts::default()))
            (select("origin", ctx.t("Origin", "Provenienza"), &origins, typed.get("origin"), errors, None))
            (select("condition", ctx.t("Condition", "Condizioni"), &conditions, typed.get("condition"), errors, None))
            @match editing {
                Some((_, DeviceStatus::Lent)) => {
                    p class="hint" { (ctx.t("Status: lent. It changes when the loan is returned or void.", "Stato: prestato. Cambia quando il comodato è restituito o annullato.")) }
                }
                Some(_) => { (select("status", ctx.t("Status", "Stato"), &statuses, typed.get("status"), errors, None)) }
                None => {}
            }
            div class="actions" { button type="submit" { (ctx.t("Save", "Salva")) } a href=(back) { (ctx.t("Cancel", "Annulla")) } }
        }
    };
    page(ctx, Section::Devices, title, body)
}

pub async fn new_form(ctx: Ctx) -> Response {
    let mut typed = Typed::default();
    typed.set("kind", DeviceKind::Laptop.as_str());
    typed.set("origin", DeviceOrigin::Refurbished.as_str());
    typed.set("condition", DeviceCondition::Good.as_str());
    device_form(&ctx, &typed, &FieldErrors::default(), None)
}

fn device_field_of(error: &ValidationError) -> &'static str {
    match error.field() {
        "asset tag" => "tag",
        "model" => "model",
        "serial number" => "serial",
        _ => "",
    }
}

fn new_device(node: &mut Node, typed: &Typed, ui: &Ui) -> Result<Result<DocId, FieldErrors>> {
    let id = Node::new_id(RecordKind::Device)?;
    save_device(node, id, None, typed, ui).map(|saved| saved.map(|()| id))
}

/// Saves the device `id` from the form: new (`stored` None) or edited. The tag is
/// unique (accents and case ignored), the domain's rules apply, errors by field.
fn save_device(
    node: &mut Node,
    id: DocId,
    stored: Option<&Device>,
    typed: &Typed,
    ui: &Ui,
) -> Result<Result<(), FieldErrors>> {
    let mut errors = FieldErrors::default();
    let tag = typed.get("tag").trim().to_string();
    let taken = node.docs().records(RecordKind::Device)?.into_iter().any(|(other, r)| {
        other != id && matches!(r, Record::Device(d) if !tag.is_empty() && fold(&d.asset_tag) == fold(&tag))
    });
    if taken {
        errors.add(
            "tag",
            ui.t(
                "A device with this tag is already registered.",
                "Un dispositivo con questa etichetta è già registrato.",
            ),
        );
    }
    let (Some(kind), Some(origin), Some(condition)) = (
        DeviceKind::from_str_exact(typed.get("kind")),
        DeviceOrigin::from_str_exact(typed.get("origin")),
        DeviceCondition::from_str_exact(typed.get("condition")),
    ) else {
        errors.add(
            "kind",
            ui.t("Choose the kind, origin and condition.", "Scegli tipo, provenienza e condizioni."),
        );
        return Ok(Err(errors));
    };
    let status = match stored {
        None => DeviceStatus::InStock,
        Some(d) if d.status == DeviceStatus::Lent => DeviceStatus::Lent,
        Some(d) => match DeviceStatus::from_str_exact(typed.get("status")) {
            Some(DeviceStatus::Lent) | None => {
                errors.add("status", ui.t("Choose a status.", "Scegli uno stato."));
                d.status
            }
            Some(status) => status,
        },
    };
    let site = match stored {
        Some(d) => d.site,
        None => RecordRef(own_site(node, ui)?),
    };
    let device = Device {
        asset_tag: tag,
        kind,
        model: typed.get("model").trim().to_string(),
        serial: typed.get("serial").trim().to_string(),
        origin,
        condition,
        status,
        site,
    };
    let record = Record::Device(device);
    if let Err(e) = validate::validate(&record, today()) {
        errors.add(device_field_of(&e), words::validation_message(&e, ui));
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    node.transact(&[(id, record)])?;
    Ok(Ok(()))
}

/// The form's values for a stored device.
fn typed_of_device(d: &Device) -> Typed {
    let mut t = Typed::default();
    for (name, value) in [
        ("tag", d.asset_tag.clone()),
        ("kind", d.kind.as_str().to_string()),
        ("model", d.model.clone()),
        ("serial", d.serial.clone()),
        ("origin", d.origin.as_str().to_string()),
        ("condition", d.condition.as_str().to_string()),
        ("status", d.status.as_str().to_string()),
    ] {
        t.set(name, value);
    }
    t
}

pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Device) else { return Ok(not_found(&ctx)) };
    let Some(d) = read(&state.hub, move |node| load_device(node, &id)).await? else {
        return Ok(not_found(&ctx));
    };
    Ok(device_form(&ctx, &typed_of_device(&d), &FieldErrors::default(), Some((&id.to_hex(), d.status))))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Device) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    let saved =
        write(&state.hub, &ctx, move |node| -> Result<Option<(DeviceStatus, Result<(), FieldErrors>)>> {
            let Some(d) = load_device(node, &id)? else { return Ok(None) };
            Ok(Some((d.status, save_device(node, id, Some(&d), &posted, &ui)?)))
        })
        .await?;
    Ok(match saved {
        None => not_found(&ctx),
        Some((_, Ok(()))) => see_other(&format!("/devices/{}?saved=1", id.to_hex())),
        Some((status, Err(errors))) => device_form(&ctx, &typed, &errors, Some((&id.to_hex(), status))),
    })
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    Ok(match write(&state.hub, &ctx, move |node| new_device(node, &posted, &ui)).await? {
        Ok(id) => see_other(&format!("/devices/{}?saved=1", id.to_hex())),
        Err(errors) => device_form(&ctx, &typed, &errors, None),
    })
}

// ---------------------------------------------------------------------------------
// A device's page

struct LoanLine {
    id: String,
    person: String,
    person_id: String,
    start: String,
    due: String,
    returned: Option<String>,
    condition: Option<String>,
    /// Why the loan is void or was closed by a conflict's resolution.
    closed: Option<String>,
}

fn loan_lines(node: &Node, names: &Names, keep: impl Fn(&Loan) -> bool, ui: &Ui) -> Result<Vec<LoanLine>> {
    let mut lines = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Loan)? {
        let Record::Loan(l) = record else { continue };
        if !keep(&l) {
            continue;
        }
        lines.push(LoanLine {
            id: id.to_hex(),
            person: names.person(&l.attendee).to_string(),
            person_id: l.attendee.0.to_hex(),
            start: l.start.clone(),
            due: l.expected_return.clone(),
            condition: l.return_condition.map(|c| c.label(ui.lang).to_string()),
            returned: l.returned_at,
            closed: l.closed_reason.map(|why| crate::msg::stored_text(&why, ui)),
        });
    }
    lines.sort_by(|a, b| b.start.cmp(&a.start));
    Ok(lines)
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Device) else { return Ok(not_found(&ctx)) };
    let ui = ctx.ui;
    let found = read(&state.hub, move |node| {
        let Some(d) = load_device(node, &id)? else { return Ok(None) };
        let names = Names::load(node, &ui)?;
        let loans = loan_lines(node, &names, |l| l.device.0 == id, &ui)?;
        Ok(Some((d.clone(), names.site(&d.site).to_string(), loans)))
    })
    .await?;
    let Some((d, site, loans)) = found else { return Ok(not_found(&ctx)) };
    let title = device_label(&d);
    let body = html! {
        @if Typed(query.clone()).checked("saved") { (notice("ok", ctx.t("Saved.", "Salvato."))) }
        @if Typed(query).checked("voided") { (notice("ok", ctx.t("Loan void: it counts nowhere, the device is free again.", "Comodato annullato: non conta in nessun dato, il dispositivo è di nuovo disponibile."))) }
        h1 { (title) }
        dl class="fields" {
            dt { (ctx.t("Kind", "Tipo")) } dd { (d.kind.label(ui.lang)) }
            dt { (ctx.t("Serial number", "Matricola")) } dd { (d.serial) }
            dt { (ctx.t("Origin", "Provenienza")) } dd { (d.origin.label(ui.lang)) }
            dt { (ctx.t("Condition", "Condizioni")) } dd { (d.condition.label(ui.lang)) }
            dt { (ctx.t("Status", "Stato")) } dd { (status_tag(&ctx, d.status)) }
            dt { (ctx.t("Site", "Sede")) } dd { (site) }
        }
        div class="actions" {
            a class="button secondary" href={"/devices/" (id.to_hex()) "/edit"} { (ctx.t("Edit", "Modifica")) }
            @if d.status == DeviceStatus::InStock {
                a class="button" href={"/loans/new?device=" (id.to_hex())} { (ctx.t("Lend this device", "Presta questo dispositivo")) }
            }
        }
        h2 { (ctx.t("Loans", "Prestiti")) }
        (loans_table(&ctx, &loans, &format!("/devices/{}", id.to_hex())))
    };
    Ok(page(&ctx, Section::Devices, &title, body))
}

/// The return of an open loan: date and condition, one button.
fn return_form(ctx: &Ctx, loan: &str, back: &str) -> Markup {
    let ui = ctx.ui;
    let mut conditions =
        forms::vocab_options(DeviceCondition::ALL, DeviceCondition::as_str, |s| s.label(ui.lang));
    conditions.insert(0, (String::new(), ctx.t("as it left", "come alla consegna").to_string()));
    let none = FieldErrors::default();
    html! {
        form method="post" action={"/loans/" (loan) "/return"} class="filters" {
            (csrf(ctx))
            input type="hidden" name="back" value=(back);
            (select(&format!("condition-{loan}"), ctx.t("Condition on return", "Condizioni alla restituzione"), &conditions, "", &none, None))
            (input(&format!("date-{loan}"), ctx.t("Returned on", "Restituito il"), &format_date(today()), &none, Opts { kind: "date", ..Opts::default() }))
            div class="field" { button type="submit" { (ctx.t("Record the return", "Registra la restituzione")) } }
        }
    }
}

/// Voiding a loan registered by mistake: folded away, with its reason.
fn void_form(ctx: &Ctx, loan: &str, back: &str) -> Markup {
    let none = FieldErrors::default();
    html! {
        details class="danger" {
            summary { (ctx.t("Registered by mistake?", "Registrato per sbaglio?")) }
            form method="post" action={"/loans/" (loan) "/void"} class="filters" {
                (csrf(ctx))
                input type="hidden" name="back" value=(back);
                (input(&format!("reason-{loan}"), ctx.t("Why (kept with the loan)", "Perché (resta con il comodato)"), "", &none, Opts { required: true, ..Opts::default() }))
                div class="field" { button type="submit" { (ctx.t("Void the loan", "Annulla il comodato")) } }
            }
        }
    }
}

fn loans_table(ctx: &Ctx, loans: &[LoanLine], back: &str) -> Markup {
    let today_s = format_date(today());
    html! {
        @if loans.is_empty() { p class="muted" { (ctx.t("No loans.", "Nessun prestito.")) } } @else {
            div class="table-wrap" { table {
                thead { tr {
                    th scope="col" { (ctx.t("Person", "Persona")) }
                    th scope="col" { (ctx.t("From", "Dal")) }
                    th scope="col" { (ctx.t("Due", "Scadenza")) }
                    th scope="col" { (ctx.t("State", "Stato")) }
                } }
                tbody { @for l in loans { tr {
                    td { a href={"/people/" (l.person_id)} { (l.person) } br; a href={"/loans/" (l.id) "/agreement"} { (ctx.t("agreement", "contratto")) } }
                    td { (words::date(&l.start, &ctx.ui)) }
                    td { (words::date(&l.due, &ctx.ui)) @if l.returned.is_none() && l.closed.is_none() && l.due < today_s { " " span class="tag overdue" { (ctx.t("overdue", "scaduto")) } } }
                    td {
                        @if let Some(why) = &l.closed {
                            (why)
                        } @else if let Some(r) = &l.returned {
                            (ctx.t("returned on", "restituito il")) " " (words::date(r, &ctx.ui))
                            @if let Some(c) = &l.condition { " (" (c) ")" }
                        } @else {
                            (return_form(ctx, &l.id, back))
                            (void_form(ctx, &l.id, back))
                        }
                    }
                } } }
            } }
        }
    }
}

// ---------------------------------------------------------------------------------
// Loans list and return

pub async fn loans(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let filter = Typed(query);
    let which = filter.get("state").to_string();
    let ui = ctx.ui;
    let wanted = which.clone();
    let lines = read(&state.hub, move |node| {
        let names = Names::load(node, &ui)?;
        let today_s = format_date(today());
        loan_lines(
            node,
            &names,
            |l| match wanted.as_str() {
                "all" => true,
                "closed" => !l.is_open(),
                "overdue" => l.is_open() && l.expected_return < today_s,
                _ => l.is_open(),
            },
            &ui,
        )
    })
    .await?;
    let states = vec![
        ("open".to_string(), ctx.t("open", "in corso").to_string()),
        ("overdue".to_string(), ctx.t("overdue", "scaduti").to_string()),
        ("closed".to_string(), ctx.t("returned", "restituiti").to_string()),
        ("all".to_string(), ctx.t("all", "tutti").to_string()),
    ];
    let body = html! {
        @if filter.checked("returned") { (notice("ok", ctx.t("Return saved.", "Restituzione salvata."))) }
        @if filter.checked("voided") { (notice("ok", ctx.t("Loan void: it counts nowhere, the device is free again.", "Comodato annullato: non conta in nessun dato, il dispositivo è di nuovo disponibile."))) }
        h1 { (ctx.t("Loans", "Prestiti")) }
        div class="actions" { a class="button" href="/loans/new" { (ctx.t("Lend a device", "Presta un dispositivo")) } }
        form method="get" action="/loans" class="filters" {
            (select("state", ctx.t("Show", "Mostra"), &states, &which, &FieldErrors::default(), None))
            div class="field" { button type="submit" { (ctx.t("Show", "Mostra")) } }
        }
        (loans_table(&ctx, &lines, "/loans"))
    };
    Ok(page(&ctx, Section::Loans, ctx.t("Loans", "Prestiti"), body))
}

/// Where to go back after a return: one of the page's own paths only.
fn safe_back(back: &str) -> &str {
    if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back
    } else {
        "/loans"
    }
}

/// Records a return as `tessera loan return` does: the loan closed, the device back
/// in stock when no other loan of it is open, its condition updated.
fn record_return(node: &mut Node, id: DocId, typed: &Typed, ui: &Ui) -> Result<Result<(), String>> {
    let Some(Record::Loan(mut loan)) = node.docs().record(&id)? else {
        return Ok(Err(ui.t("This loan does not exist.", "Questo prestito non esiste.").into()));
    };
    if !loan.is_open() {
        return Ok(Err(ui
            .t("This loan was already returned.", "Questo prestito era già stato restituito.")
            .into()));
    }
    let hex = id.to_hex();
    let when = typed.get(&format!("date-{hex}")).trim().to_string();
    let when = if when.is_empty() { format_date(today()) } else { when };
    let Some(when) = parse_date(&when) else {
        return Ok(Err(ui
            .t("The return date is not a date.", "La data di restituzione non è una data.")
            .into()));
    };
    let condition = DeviceCondition::from_str_exact(typed.get(&format!("condition-{hex}")));
    loan.returned_at = Some(format_date(when));
    loan.return_condition = condition;
    let device_id = loan.device.0;
    let record = Record::Loan(loan);
    if let Err(e) = validate::validate(&record, today()) {
        return Ok(Err(words::validation_message(&e, ui)));
    }
    let mut writes = vec![(id, record)];
    if let Some(mut d) = load_device(node, &device_id)? {
        if open_loans_of(node, &device_id)?.len() <= 1 {
            d.status = DeviceStatus::InStock;
        }
        if let Some(c) = condition {
            d.condition = c;
        }
        writes.push((device_id, Record::Device(d)));
    }
    node.transact(&writes)?;
    Ok(Ok(()))
}

pub async fn give_back(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Loan) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    let back = safe_back(typed.get("back")).to_string();
    Ok(match write(&state.hub, &ctx, move |node| record_return(node, id, &posted, &ui)).await? {
        Ok(()) => see_other(&format!("{back}{}returned=1", if back.contains('?') { '&' } else { '?' })),
        Err(message) => {
            let body = html! { h1 { (ctx.t("Return not saved", "Restituzione non salvata")) } (notice("error", &message)) p { a href=(back) { (ctx.t("Back", "Indietro")) } } };
            page(&ctx, Section::Loans, ctx.t("Return", "Restituzione"), body)
        }
    })
}

/// Voids a loan registered by mistake (kept, counted nowhere; the device free again):
/// `loan void`.
pub async fn void(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Loan) else { return Ok(not_found(&ctx)) };
    let typed = Typed(form);
    let back = safe_back(typed.get("back")).to_string();
    let reason = typed.get(&format!("reason-{}", id.to_hex())).to_string();
    let command = crate::cli::Command::Loan(crate::cli::LoanCommand::Void { id: id.to_hex(), reason });
    Ok(match run_command(&state.hub, &ctx, command).await? {
        Ok(_) => see_other(&format!("{back}{}voided=1", if back.contains('?') { '&' } else { '?' })),
        Err(message) => {
            let body = html! { h1 { (ctx.t("Not voided", "Non annullato")) } (notice("error", &message)) p { a href=(back) { (ctx.t("Back", "Indietro")) } } };
            page(&ctx, Section::Loans, ctx.t("Void a loan", "Annulla un comodato"), body)
        }
    })
}

// ---------------------------------------------------------------------------------
// Lending

struct Choice {
    id: String,
    label: String,
}

struct LendChoices {
    people: Vec<Choice>,
    devices: Vec<Choice>,
}

/// The chosen person and device (kept first) and those matching the searches.
fn lend_choices(node: &Node, typed: &Typed, ui: &Ui) -> Result<LendChoices> {
    let chosen_person = typed.get("person").to_string();
    let chosen_device = typed.get("device").to_string();
    let person_q = fold(typed.get("person_q").trim());
    let device_q = fold(typed.get("device_q").trim());
    let mut people = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Attendee)? {
        let Record::Attendee(a) = record else { continue };
        if a.is_merged() || a.is_erased() {
            continue;
        }
        let hex = id.to_hex();
        let label =
            format!("{} ({} {})", person_name(node, &a, ui), ui.t("born", "nato/a nel"), a.birth_year);
        let matches = !person_q.is_empty() && !a.is_reserved() && fold(&label).contains(&person_q);
        if hex == chosen_person || matches {
            people.push((hex != chosen_person, Choice { id: hex, label }));
        }
    }
    let mut devices = Vec::new();
    for (id, record) in node.docs().records(RecordKind::Device)? {
        let Record::Device(d) = record else { continue };
        let hex = id.to_hex();
        let label = format!("{} · {}", device_label(&d), d.kind.label(ui.lang));
        let lendable = d.status == DeviceStatus::InStock && d.condition != DeviceCondition::Broken;
        let matches = lendable && (device_q.is_empty() || fold(&label).contains(&device_q));
        if hex == chosen_device || matches {
            devices.push((hex != chosen_device, Choice { id: hex, label }));
        }
    }
    people.sort_by(|a, b| (a.0, &a.1.label).cmp(&(b.0, &b.1.label)));
    devices.sort_by(|a, b| (a.0, &a.1.label).cmp(&(b.0, &b.1.label)));
    Ok(LendChoices {
        people: people.into_iter().take(CHOICES_MAX).map(|(_, c)| c).collect(),
        devices: devices.into_iter().take(CHOICES_MAX).map(|(_, c)| c).collect(),
    })
}

fn radio_group(
    name: &str,
    legend: &str,
    choices: &[Choice],
    chosen: &str,
    empty: &str,
    errors: &FieldErrors,
) -> Markup {
    let error = errors.get(name);
    html! {
        fieldset id={"f-" (name)} class={@if error.is_some() { "has-error" }} aria-describedby=[error.map(|_| format!("e-{name}"))] {
            legend { (legend) }
            @if choices.is_empty() { p class="muted" { (empty) } }
            ul class="choices" {
                @for (i, c) in choices.iter().enumerate() {
                    li {
                        input type="radio" id={"f-" (name) "-" (i)} name=(name) value=(c.id) checked[c.id == chosen];
                        " " label for={"f-" (name) "-" (i)} { (c.label) }
                    }
                }
            }
            @if let Some(e) = error { p class="field-error" id={"e-" (name)} { (e) } }
        }
    }
}

fn choice_groups(ctx: &Ctx, choices: &LendChoices, typed: &Typed, errors: &FieldErrors) -> Markup {
    html! {
        (radio_group("person", ctx.t("Borrower", "Comodatario"), &choices.people, typed.get("person"),
            ctx.t("Search a person by name above.", "Cerca una persona per nome qui sopra."), errors))
        (radio_group("device", ctx.t("Device (available ones)", "Dispositivo (quelli disponibili)"), &choices.devices, typed.get("device"),
            ctx.t("No available device matches.", "Nessun dispositivo disponibile corrisponde."), errors))
    }
}

fn lend_page(ctx: &Ctx, choices: &LendChoices, typed: &Typed, errors: &FieldErrors) -> Response {
    let title = ctx.t("Lend a device", "Presta un dispositivo");
    let none = FieldErrors::default();
    let body = html! {
        h1 { (title) }
        (form_errors(ctx, errors))
        form method="get" action="/loans/new" data-live="choices" class="filters" role="search" {
            input type="hidden" name="person" value=(typed.get("person"));
            input type="hidden" name="device" value=(typed.get("device"));
            (input("person_q", ctx.t("Search the person", "Cerca la persona"), typed.get("person_q"), &none, Opts { kind: "search", autocomplete: Some("off"), ..Opts::default() }))
            (input("device_q", ctx.t("Search the device (tag or model)", "Cerca il dispositivo (etichetta o modello)"), typed.get("device_q"), &none, Opts { kind: "search", autocomplete: Some("off"), ..Opts::default() }))
            div class="field" { button type="submit" class="secondary" { (ctx.t("Search", "Cerca")) } }
        }
        form method="post" action="/loans" class="stack" novalidate {
            (csrf(ctx))
            div id="choices" aria-live="polite" { (choice_groups(ctx, choices, typed, errors)) }
            (input("start", ctx.t("Handed over on", "Consegnato il"), typed.get("start"), errors, Opts { kind: "date", required: true, ..Opts::default() }))
            (input("expected_return", ctx.t("To be returned by", "Da restituire entro il"), typed.get("expected_return"), errors, Opts { kind: "date", required: true, ..Opts::default() }))
            p { (ctx.t("Print the agreement, have it signed, then tick the box and save.", "Stampa il contratto, fallo firmare, poi spunta la casella e salva.")) }
            div class="actions" {
                button type="submit" class="secondary" formmethod="get" formaction="/loans/preview" formtarget="_blank" formnovalidate {
                    (ctx.t("Print the agreement (new window)", "Stampa il contratto (nuova finestra)"))
                }
            }
            (checkbox("agreement_signed", ctx.t("The comodato agreement is signed", "Il contratto di comodato è firmato"), typed.checked("agreement_signed"), errors, None))
            div class="actions" { button type="submit" { (ctx.t("Save the loan", "Salva il prestito")) } a href="/loans" { (ctx.t("Cancel", "Annulla")) } }
        }
    };
    page(ctx, Section::Loans, title, body)
}

pub async fn lend_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let mut typed = Typed(query);
    if typed.get("start").is_empty() {
        typed.set("start", format_date(today()));
    }
    let ui = ctx.ui;
    let wanted = typed.clone();
    let choices = read(&state.hub, move |node| lend_choices(node, &wanted, &ui)).await?;
    if typed.checked("partial") {
        return Ok(Html(choice_groups(&ctx, &choices, &typed, &FieldErrors::default()).into_string())
            .into_response());
    }
    Ok(lend_page(&ctx, &choices, &typed, &FieldErrors::default()))
}

fn loan_field_of(error: &ValidationError) -> &'static str {
    match error {
        ValidationError::AgreementNotSigned => "agreement_signed",
        ValidationError::ExpectedReturnBeforeStart => "expected_return",
        other => match other.field() {
            "start date" => "start",
            "expected return date" => "expected_return",
            "device" => "device",
            "attendee" => "person",
            _ => "",
        },
    }
}

/// Opens a loan as `tessera loan add` does, or says which fields are wrong.
fn open_loan(node: &mut Node, typed: &Typed, ui: &Ui) -> Result<Result<DocId, FieldErrors>> {
    let mut errors = FieldErrors::default();
    let person = parse_id(typed.get("person"), RecordKind::Attendee);
    let device = parse_id(typed.get("device"), RecordKind::Device);
    let attendee = match person {
        Some(id) => match node.docs().record(&id)? {
            Some(Record::Attendee(a)) if !a.is_merged() && !a.is_erased() => Some(a),
            _ => None,
        },
        None => None,
    };
    if attendee.is_none() {
        errors.add("person", ui.t("Choose the borrower.", "Scegli il comodatario."));
    }
    let found = match device {
        Some(id) => load_device(node, &id)?.map(|d| (id, d)),
        None => None,
    };
    if found.is_none() {
        errors.add("device", ui.t("Choose the device.", "Scegli il dispositivo."));
    }
    let start = parse_date(typed.get("start").trim());
    if start.is_none() {
        errors.add("start", ui.t("Give the date of hand-over.", "Indica la data di consegna."));
    }
    let due = parse_date(typed.get("expected_return").trim());
    if due.is_none() {
        errors.add(
            "expected_return",
            ui.t("Give the date it is to be returned by.", "Indica la data entro cui restituirlo."),
        );
    }
    let (Some(person), Some((device_id, mut d)), Some(start), Some(due)) = (person, found, start, due) else {
        return Ok(Err(errors));
    };
    let site = own_site(node, ui)?;
    let loan = Loan {
        device: RecordRef(device_id),
        attendee: RecordRef(person),
        site: RecordRef(site),
        start: format_date(start),
        expected_return: format_date(due),
        returned_at: None,
        return_condition: None,
        agreement_signed: typed.checked("agreement_signed"),
        closed_reason: None,
    };
    let open = open_loans_of(node, &device_id)?.len();
    let record = Record::Loan(loan.clone());
    let checked =
        validate::validate_new_loan(&loan, &d, open).and_then(|()| validate::validate(&record, today()));
    if let Err(e) = checked {
        errors.add(loan_field_of(&e), words::validation_message(&e, ui));
        return Ok(Err(errors));
    }
    d.status = DeviceStatus::Lent;
    let id = Node::new_id(RecordKind::Loan)?;
    node.transact(&[(id, record), (device_id, Record::Device(d))])?;
    Ok(Ok(id))
}

pub async fn lend(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(form);
    let ui = ctx.ui;
    let posted = typed.clone();
    match write(&state.hub, &ctx, move |node| open_loan(node, &posted, &ui)).await? {
        Ok(id) => Ok(see_other(&format!("/loans/{}/agreement?saved=1", id.to_hex()))),
        Err(errors) => {
            let wanted = typed.clone();
            let choices = read(&state.hub, move |node| lend_choices(node, &wanted, &ui)).await?;
            Ok(lend_page(&ctx, &choices, &typed, &errors))
        }
    }
}

// ---------------------------------------------------------------------------------
// The comodato agreement

/// What the agreement names.
struct Agreement {
    borrower: Attendee,
    borrower_name: String,
    device: Device,
    site: Option<Site>,
    start: String,
    due: String,
    signed: bool,
    loan: Option<String>,
}

fn agreement_of(
    node: &Node,
    person: DocId,
    device: DocId,
    start: String,
    due: String,
    ui: &Ui,
) -> Result<Option<Agreement>> {
    let Some(Record::Attendee(borrower)) = node.docs().record(&person)? else { return Ok(None) };
    let Some(device) = load_device(node, &device)? else { return Ok(None) };
    let site = match node.docs().record(&device.site.0)? {
        Some(Record::Site(s)) => Some(s),
        _ => None,
    };
    Ok(Some(Agreement {
        borrower_name: person_name(node, &borrower, ui),
        borrower,
        device,
        site,
        start,
        due,
        signed: false,
        loan: None,
    }))
}

fn agreement_page(ctx: &Ctx, a: &Agreement, saved: bool) -> Response {
    let ui = &ctx.ui;
    let d = &a.device;
    let (site, partner, address) = match &a.site {
        Some(s) => (s.name.as_str(), s.partner.as_str(), s.address.as_str()),
        None => ("", "", ""),
    };
    let guardian = a.borrower.guardian.as_ref();
    let blank = "____________";
    let title =
        ctx.t("Free loan agreement (comodato d'uso gratuito)", "Contratto di comodato d'uso gratuito");
    let body = html! {
        div class="no-print" {
            @if saved { (notice("ok", ctx.t("Loan saved. Print this agreement for the file.", "Prestito salvato. Stampa questo contratto per l'archivio."))) }
            div class="actions" {
                button type="button" data-print hidden { (ctx.t("Print", "Stampa")) }
                span class="muted" { (ctx.t("Or press Ctrl+P. One A4 sheet.", "Oppure premi Ctrl+P. Un foglio A4.")) }
                @if let Some(id) = &a.loan { a href={"/loans?state=all#" (id)} { (ctx.t("Back to loans", "Torna ai prestiti")) } }
                @else { a href="/loans/new" { (ctx.t("Back to the loan form", "Torna al modulo del prestito")) } }
            }
        }
        article class="agreement" {
            h1 { (title) }
            p { strong { (ctx.t("Lender", "Comodante")) ": " } (partner) ", " (ctx.t("site", "sede")) " " (site) @if !address.is_empty() { ", " (address) } }
            p {
                strong { (ctx.t("Borrower", "Comodatario")) ": " } (a.borrower_name) ", " (ctx.t("born in", "nato/a nel")) " " (a.borrower.birth_year)
                @if let Some(p) = &a.borrower.phone { ", " (ctx.t("phone", "tel.")) " " (p) }
            }
            @if let Some(g) = guardian {
                p {
                    strong { (ctx.t("Parent or guardian", "Genitore o tutore")) ": " } (g.name)
                    @if let Some(p) = &g.phone { ", " (ctx.t("phone", "tel.")) " " (p) }
                    @if let Some(m) = &g.email { ", " (m) }
                    " — " (ctx.t("signs for the minor and answers for the device.", "firma per il minore e risponde del dispositivo."))
                }
            }
            p {
                strong { (ctx.t("Device", "Dispositivo")) ": " } (d.kind.label(ui.lang)) ", " (ctx.t("tag", "etichetta")) " " strong { (d.asset_tag) }
                @if !d.model.is_empty() { ", " (ctx.t("model", "modello")) " " (d.model) }
                @if !d.serial.is_empty() { ", " (ctx.t("serial", "matricola")) " " (d.serial) }
                ", " (ctx.t("condition at hand-over", "condizioni alla consegna")) ": " (d.condition.label(ui.lang)) "."
            }
            p {
                strong { (ctx.t("Handed over on", "Consegnato il")) } " " (words::date(&a.start, ui)) "; "
                strong { (ctx.t("to be returned by", "da restituire entro il")) } " " (words::date(&a.due, ui)) "."
            }
            ol {
                li { (ctx.t("The lender gives the device free of charge, for study and to take part in the programme's activities (art. 1803 and following of the Italian civil code).", "Il comodante consegna il dispositivo gratuitamente, per lo studio e per partecipare alle attività del progetto (artt. 1803 e seguenti del codice civile).")) }
                li { (ctx.t("The borrower keeps it with care, does not lend or give it to others, and uses it only for these purposes.", "Il comodatario lo custodisce con diligenza, non lo presta né lo cede ad altri e lo usa solo per questi scopi.")) }
                li { (ctx.t("A fault, loss or theft is reported to the site at once (for theft, with a copy of the police report).", "Guasti, smarrimento o furto si comunicano subito alla sede (per il furto, con copia della denuncia).")) }
                li { (ctx.t("The device is returned by the date above, or earlier when the site asks, in the condition it was given, normal wear excepted.", "Il dispositivo si restituisce entro la data indicata, o prima se la sede lo chiede, nelle condizioni in cui è stato consegnato, salvo la normale usura.")) }
                li { (ctx.t("Personal data are processed only to manage this loan and the programme (GDPR art. 6), by the lender named above.", "I dati personali sono trattati solo per gestire questo prestito e il progetto (GDPR art. 6), dal comodante indicato sopra.")) }
            }
            p { (ctx.t("Place and date", "Luogo e data")) ": " (blank) " , " (blank) }
            div class="sign" {
                div { (ctx.t("For the lender (operator)", "Per il comodante (l'operatore)")) }
                div { @if guardian.is_some() { (ctx.t("The parent or guardian", "Il genitore o tutore")) } @else { (ctx.t("The borrower", "Il comodatario")) } }
            }
            @if a.signed { p class="muted" { (ctx.t("Recorded as signed.", "Registrato come firmato.")) } }
        }
    };
    page(ctx, Section::Print, title, body)
}

/// The agreement of an existing loan.
pub async fn agreement(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let Some(id) = parse_id(&id, RecordKind::Loan) else { return Ok(not_found(&ctx)) };
    let ui = ctx.ui;
    let found = read(&state.hub, move |node| {
        let Some(Record::Loan(l)) = node.docs().record(&id)? else { return Ok(None) };
        let made =
            agreement_of(node, l.attendee.0, l.device.0, l.start.clone(), l.expected_return.clone(), &ui)?;
        Ok(made.map(|mut a| {
            a.signed = l.agreement_signed;
            a.loan = Some(id.to_hex());
            a
        }))
    })
    .await?;
    Ok(match found {
        Some(a) => agreement_page(&ctx, &a, Typed(query).checked("saved")),
        None => not_found(&ctx),
    })
}

/// The agreement of a loan being made (from the lending form), to sign before saving.
pub async fn preview(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(query);
    let person = parse_id(typed.get("person"), RecordKind::Attendee);
    let device = parse_id(typed.get("device"), RecordKind::Device);
    let (Some(person), Some(device)) = (person, device) else {
        let body = html! { h1 { (ctx.t("Agreement", "Contratto")) } (notice("error", ctx.t("Choose the borrower and the device first.", "Scegli prima il comodatario e il dispositivo."))) };
        return Ok(page(&ctx, Section::Loans, ctx.t("Agreement", "Contratto"), body));
    };
    let ui = ctx.ui;
    let start = typed.optional("start").unwrap_or_else(|| format_date(today()));
    let due = typed.get("expected_return").to_string();
    let found = read(&state.hub, move |node| agreement_of(node, person, device, start, due, &ui)).await?;
    Ok(match found {
        Some(a) => agreement_page(&ctx, &a, false),
        None => not_found(&ctx),
    })
}

#[cfg(test)]
mod tests;
