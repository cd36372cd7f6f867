//! `tessera attendee import FILE.csv`: a hub's existing spreadsheet of attendees.
//!
//! The separator (`;`, what Italian spreadsheets write, or `,`) is read from the header
//! line; headers are matched to fields by their usual Italian and English names
//! (accents, case and spacing ignored), or by `--column "Header=field"`. Every row goes
//! through what `attendee add` does (the same rules, the same duplicate check, against
//! the people on record and the rows above it), and nothing is saved unless every row
//! is right: the rows and their errors, in words, are listed first. All the people of
//! a file are saved in one signed envelope, so the import is whole or absent.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tessera_log::DocId;
use tessera_records::kind::RecordKind;
use tessera_records::model::{Attendee, Record};
use tessera_records::text::fold;

use crate::cli::AttendeeFields;
use crate::node::Node;
use crate::ui::Ui;

/// Largest file read.
pub const FILE_BYTES_MAX: u64 = 8 << 20;
/// Most people in one file: each is two changes of one envelope
/// (`tessera_log::limits::CHANGES_PER_ENVELOPE_MAX`), with room for read keys.
pub const ROWS_MAX: usize = 500;

/// The fields a column can fill, with the header names that mean it.
const FIELDS: &[(&str, &[&str])] = &[
    ("given", &["nome", "given", "given name", "first name", "name"]),
    ("family", &["cognome", "family", "family name", "surname", "last name"]),
    ("birth-year", &["anno di nascita", "anno", "nato nel", "birth year", "year of birth", "born"]),
    ("role", &["ruolo", "role", "tipo"]),
    ("school", &["scuola", "school", "istituto"]),
    ("class", &["classe", "class"]),
    (
        "guardian-name",
        &["tutore", "genitore", "nome tutore", "nome genitore", "guardian", "guardian name", "parent"],
    ),
    (
        "guardian-phone",
        &["telefono tutore", "telefono genitore", "cellulare genitore", "guardian phone", "parent phone"],
    ),
    (
        "guardian-email",
        &["email tutore", "e-mail tutore", "email genitore", "guardian email", "guardian e-mail"],
    ),
    ("phone", &["telefono", "cellulare", "phone", "mobile"]),
    ("email", &["email", "e-mail", "mail", "posta elettronica"]),
    ("language", &["lingua", "lingue", "language", "languages"]),
    ("consent-by", &["consenso", "consenso di", "firmato da", "consent", "consent by"]),
    ("consent-date", &["data consenso", "data del consenso", "consent date"]),
    ("referent", &["referente", "operatore di riferimento", "referent"]),
    ("notes", &["note", "notes", "piano", "note del piano"]),
];

/// Which field a header stands for.
fn field_of(header: &str, overrides: &BTreeMap<String, String>) -> Option<&'static str> {
    let folded = fold(header);
    if let Some(field) = overrides.get(&folded) {
        return FIELDS.iter().map(|(f, _)| *f).find(|f| f == field);
    }
    FIELDS.iter().find(|(_, names)| names.iter().any(|n| fold(n) == folded)).map(|(f, _)| *f)
}

/// Reads the file as text: UTF-8 (a spreadsheet's byte-order mark dropped), else
/// Windows-1252/Latin-1, what older Excel writes for "CSV (separato da ;)".
fn read_text(path: &Path, ui: &Ui) -> Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{} {}", ui.t("cannot read", "non riesco a leggere"), path.display()))?;
    if meta.len() > FILE_BYTES_MAX {
        bail!("{} {} MB: {}", path.display(), ui.t("is larger than", "supera i"), FILE_BYTES_MAX >> 20);
    }
    let bytes = std::fs::read(path)?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    Ok(match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    })
}

/// One row's result: what it would create, or why not.
#[derive(Debug)]
struct Row {
    line: usize,
    outcome: Result<Attendee, String>,
}

/// `tessera attendee import`.
/// What `attendee import` was asked.
#[derive(Debug)]
pub struct ImportRequest<'a> {
    pub file: &'a Path,
    pub dry_run: bool,
    pub columns: &'a [String],
    pub consent_by: Option<&'a str>,
    pub force: bool,
}

pub fn import(node: &mut Node, asked: &ImportRequest<'_>, ui: &Ui) -> Result<()> {
    let ImportRequest { file, dry_run, columns, consent_by, force } = *asked;
    let overrides = columns
        .iter()
        .map(|c| {
            let (header, field) = c.split_once('=').with_context(|| {
                format!("--column `{c}`: {}", ui.t("write \"Header=field\"", "scrivi \"Intestazione=campo\""))
            })?;
            let field = field.trim();
            if !FIELDS.iter().any(|(f, _)| *f == field) {
                let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
                bail!(
                    "--column `{c}`: {} {}",
                    ui.t("unknown field; the fields are", "campo sconosciuto; i campi sono"),
                    known.join(", ")
                );
            }
            Ok((fold(header), field.to_string()))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    let text = read_text(file, ui)?;
    let header_line = text.lines().next().unwrap_or_default();
    let separator =
        if header_line.matches(';').count() >= header_line.matches(',').count() { b';' } else { b',' };
    let mut reader =
        csv::ReaderBuilder::new().delimiter(separator).flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("the first line of the file is not a header")?
        .iter()
        .map(str::to_string)
        .collect();
    let mapped: Vec<Option<&str>> = headers.iter().map(|h| field_of(h, &overrides)).collect();
    let unknown: Vec<&str> = headers
        .iter()
        .zip(&mapped)
        .filter(|(h, f)| f.is_none() && !h.trim().is_empty())
        .map(|(h, _)| h.as_str())
        .collect();
    if !unknown.is_empty() {
        bail!(
            "{}: {}. {}",
            ui.t("columns Tessera does not know", "colonne che Tessera non conosce"),
            unknown.join(", "),
            ui.t(
                "Rename them, or say what they are with --column \"Header=field\" (fields: given, family, birth-year, role, school, class, guardian-name, guardian-phone, guardian-email, phone, email, language, consent-by, consent-date, referent, notes). Nothing was saved.",
                "Rinominale, o di' cosa sono con --column \"Intestazione=campo\" (campi: given, family, birth-year, role, school, class, guardian-name, guardian-phone, guardian-email, phone, email, language, consent-by, consent-date, referent, notes). Non è stato salvato nulla."
            )
        );
    }
    let mut people = node.docs().records(RecordKind::Attendee)?;
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        if rows.len() == ROWS_MAX {
            bail!(
                "{} {ROWS_MAX} {}",
                ui.t("the file has more than", "il file ha più di"),
                ui.t(
                    "people: split it in parts. Nothing was saved.",
                    "persone: dividilo in parti. Non è stato salvato nulla."
                )
            );
        }
        let outcome = match record {
            Err(e) => Err(format!("{}: {e}", ui.t("not a readable CSV row", "riga CSV non leggibile"))),
            Ok(cells) if cells.iter().all(|c| c.trim().is_empty()) => continue,
            Ok(cells) => row_attendee(node, &mapped, &cells, consent_by, ui).and_then(|a| {
                let same = tessera_records::conflicts::probable_duplicates_of(&a, &people);
                if !same.is_empty() && !force {
                    return Err(ui.t(
                        "probably already registered (on record or in a row above): check, or import with --force",
                        "probabilmente già iscritta (in archivio o in una riga sopra): controlla, o importa con --force",
                    )
                    .to_string());
                }
                Ok(a)
            }),
        };
        if let Ok(a) = &outcome {
            // Rows below are checked against this one too.
            people.push((DocId([0; 16]), Record::Attendee(a.clone())));
        }
        rows.push(Row { line, outcome });
    }
    report(&rows, ui);
    let errors = rows.iter().filter(|r| r.outcome.is_err()).count();
    if errors > 0 {
        bail!(
            "{errors} {}",
            ui.t(
                "rows have errors: nothing was saved. Correct them and import again.",
                "righe hanno errori: non è stato salvato nulla. Correggile e importa di nuovo."
            )
        );
    }
    if dry_run {
        crate::outln!(
            "{} {} {}",
            ui.t("Dry run:", "Prova:"),
            rows.len(),
            ui.t(
                "people would be registered; nothing was saved.",
                "persone sarebbero iscritte; non è stato salvato nulla."
            )
        );
        return Ok(());
    }
    let mut writes = Vec::with_capacity(rows.len());
    for row in rows {
        let Ok(mut a) = row.outcome else { continue };
        let (id, nonce) = node.new_attendee_id()?;
        a.id_nonce = Some(nonce);
        writes.push((id, Record::Attendee(a)));
    }
    node.transact(&writes)?;
    crate::outln!("{} {}", ui.t("Registered:", "Iscritte:"), writes.len());
    Ok(())
}

/// The attendee a row describes, through `attendee add`'s path; the error in words.
fn row_attendee(
    node: &mut Node,
    mapped: &[Option<&str>],
    cells: &csv::StringRecord,
    consent_by: Option<&str>,
    ui: &Ui,
) -> Result<Attendee, String> {
    let mut f = AttendeeFields {
        operator: node.operator().map(str::to_string),
        consent_by: consent_by.map(str::to_string),
        ..Default::default()
    };
    for (field, cell) in mapped.iter().zip(cells.iter()) {
        let (Some(field), value) = (field, cell.trim()) else { continue };
        if value.is_empty() {
            continue;
        }
        let value = Some(value.to_string());
        match *field {
            "given" => f.given = value,
            "family" => f.family = value,
            "birth-year" => {
                f.birth_year = Some(cell.trim().parse().map_err(|_| {
                    ui.t(
                        "the birth year is not a year (e.g. 2012)",
                        "l'anno di nascita non è un anno (es. 2012)",
                    )
                    .to_string()
                })?)
            }
            "role" => f.role = value,
            "school" => f.school = value,
            "class" => f.class = value,
            "guardian-name" => f.guardian_name = value,
            "guardian-phone" => f.guardian_phone = value,
            "guardian-email" => f.guardian_email = value,
            "phone" => f.phone = value,
            "email" => f.email = value,
            "language" => {
                f.languages =
                    cell.split([',', '/']).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
            }
            "consent-by" => f.consent_by = value,
            "consent-date" => f.consent_date = value,
            "referent" => f.referent = value,
            "notes" => f.notes = value,
            _ => {}
        }
    }
    crate::commands::new_attendee(node, f, ui).map_err(|e| {
        let text = e.to_string();
        // The row says "not saved" once, for the whole file.
        let text =
            text.strip_prefix("non salvato: ").or_else(|| text.strip_prefix("not saved: ")).unwrap_or(&text);
        text.to_string()
    })
}

/// Every row: what it would register, or its error.
fn report(rows: &[Row], ui: &Ui) {
    for row in rows {
        match &row.outcome {
            Ok(a) => crate::outln!(
                "{} {}: {} {} ({}, {})",
                ui.t("row", "riga"),
                row.line,
                a.given_name,
                a.family_name,
                a.birth_year,
                a.role.label(ui.lang)
            ),
            Err(e) => crate::outln!("{} {}: {} {e}", ui.t("row", "riga"), row.line, ui.t("ERROR", "ERRORE")),
        }
    }
}
