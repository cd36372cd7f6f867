//! Reports for funders: aggregate figures (people reached, sessions held, training
//! hours, devices on loan, overdue loans, headcount) over a period, grouped by site,
//! partner, month or audience, as CSV or as an aligned text table in English or
//! Italian.
//!
//! Aggregates only: a report names sites, partner organisations, months and
//! audiences, never a person, and counts attendees by id. The period ends at its `to`
//! or at `today`, whichever comes first: what was planned but has not happened yet is
//! not reported as done. Every figure is defined in `docs/report-glossary.md`:
//!
//! - a session counts in the period (and the month) its start falls in;
//! - a device is **on loan** in a period when one of its loans was open at any moment
//!   of it: started on or before the period's last day and not returned before its
//!   first day (a device lent from 1 October to 30 November counts in both months);
//! - a loan is **overdue** at the end of a period when it was open then (returned
//!   after that day, or not yet) and its expected return was before that day; a return
//!   after the period never changes a past period's figure;
//! - a loan closed by resolving a conflict (a device recorded as lent twice) was never
//!   a loan: it counts nowhere; a cancelled session was never held;
//! - by age band (0-13, 14-17, 18-64, 65+, by the age reached in the year of the
//!   session or of the loan's start), a session counts in each band of the people
//!   present, with their presences; a public meeting's anonymous headcount has no age.
//!
//! An attendee merged into another counts as that other person. Records whose dates
//! cannot be read are left out and counted in [`Report::skipped`], so a total is never
//! silently short.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use tessera_log::DocId;

use crate::kind::short_id;
use crate::model::{parse_date, Attendee, Loan, Record, RecordRef, Session, Site};
use crate::vocab::{closed_set, AttendeeRole, Audience, Lang, SessionKind, Topic};

closed_set! {
    /// How the rows of a report are grouped.
    pub enum GroupBy ("grouping", "raggruppamento") {
        Site => "site" / "sede", "site", "sede", ["sito", "polo", "sportello"];
        Partner => "partner" / "ente", "partner", "ente partner", ["ente", "organisation", "organization", "organizzazione"];
        Month => "month" / "mese", "month", "mese", [];
        Audience => "audience" / "destinatari", "audience", "destinatari", ["pubblico", "target"];
        AgeBand => "age" / "eta", "age band", "fascia d'età", ["eta", "età", "age-band", "fascia", "fasce"];
        Topic => "topic" / "tema", "request type", "tipo di richiesta", ["richiesta", "tema", "argomento", "request", "request-type", "tipo"];
    }
}

/// The age bands of [`GroupBy::AgeBand`], by the age a person reaches in the year of
/// the session or of the loan's start (only the birth year is recorded).
const AGE_BANDS: [(u16, &str); 4] = [(13, "0-13"), (17, "14-17"), (64, "18-64"), (u16::MAX, "65+")];

/// The band of someone born in `birth_year`, in `year`; [`UNKNOWN_GROUP`] when the
/// birth year is missing or after `year`.
fn age_band(birth_year: u16, year: i32) -> &'static str {
    let age = i64::from(year) - i64::from(birth_year);
    if birth_year == 0 || age < 0 {
        return UNKNOWN_GROUP;
    }
    AGE_BANDS.iter().find(|(max, _)| age <= i64::from(*max)).map_or(UNKNOWN_GROUP, |(_, band)| band)
}

/// What to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// First day of the period (inclusive); `None` from the beginning.
    pub from: Option<NaiveDate>,
    /// Last day of the period (inclusive); `None` up to `today`.
    pub to: Option<NaiveDate>,
    pub group_by: GroupBy,
    /// The operator's date: nothing after it counts, and overdue means before it.
    pub today: NaiveDate,
    /// Only the sessions and loans of the sites of this partner organisation (its
    /// name as its sites record it, in any case); `None`: every partner.
    pub partner: Option<String>,
}

/// The partner organisations named by the sites among `records`, each once, sorted:
/// what [`ReportQuery::partner`] can be.
pub fn partners(records: &[(DocId, Record)]) -> Vec<String> {
    let names: BTreeSet<String> = records
        .iter()
        .filter_map(|(_, record)| match record {
            Record::Site(site) if !site.partner.trim().is_empty() => Some(site.partner.trim().to_string()),
            _ => None,
        })
        .collect();
    names.into_iter().collect()
}

/// The figures of one group (or of all, in [`Report::total`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// A site's name, a partner, a month `YYYY-MM`, an audience's stored word, or
    /// [`UNKNOWN_GROUP`] when the record does not say.
    pub group: String,
    /// Distinct people present at a session or lent a device.
    pub unique_attendees: u64,
    pub sessions_held: u64,
    /// Hours of courses and school labs held.
    pub training_hours: f64,
    /// Distinct devices on loan at some moment of the period (of the month, grouped
    /// by month).
    pub devices_on_loan: u64,
    /// Loans open at the end of the period (of the month) past their expected return.
    pub overdue_loans: u64,
    /// People counted at sessions: the anonymous headcount of public meetings plus the
    /// registered participants present.
    pub headcount: u64,
}

/// The group of records that do not say their site, partner or audience.
pub const UNKNOWN_GROUP: &str = "?";
/// The group name of the total row.
pub const TOTAL_GROUP: &str = "total";

/// A report: one row per group, in group order, and the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub group_by: GroupBy,
    pub rows: Vec<ReportRow>,
    /// Sums of the rows, except `unique_attendees`, which counts each person once, and,
    /// grouped by age band, sessions held and training hours (a session counts in each
    /// band of the people present at it, and once in the total).
    pub total: ReportRow,
    /// Sessions and loans left out because their dates could not be read.
    pub skipped: u64,
}

#[derive(Default)]
struct Tally {
    attendees: BTreeSet<DocId>,
    sessions_held: u64,
    training_minutes: u64,
    devices: BTreeSet<DocId>,
    overdue_loans: u64,
    headcount: u64,
}

impl Tally {
    fn row(&self, group: String) -> ReportRow {
        ReportRow {
            group,
            unique_attendees: self.attendees.len() as u64,
            sessions_held: self.sessions_held,
            training_hours: self.training_minutes as f64 / 60.0,
            devices_on_loan: self.devices.len() as u64,
            overdue_loans: self.overdue_loans,
            headcount: self.headcount,
        }
    }
}

/// What a report needs to look up: sites by id, attendees by id.
struct Lookup<'a> {
    sites: BTreeMap<DocId, &'a Site>,
    attendees: BTreeMap<DocId, &'a Attendee>,
    /// Site names that more than one site carries: those rows get the short id too.
    shared_names: BTreeSet<&'a str>,
}

impl<'a> Lookup<'a> {
    fn new(records: &'a [(DocId, Record)]) -> Self {
        let mut sites = BTreeMap::new();
        let mut attendees = BTreeMap::new();
        for (id, record) in records {
            match record {
                Record::Site(site) => {
                    sites.insert(*id, site);
                }
                Record::Attendee(attendee) => {
                    attendees.insert(*id, attendee);
                }
                _ => {}
            }
        }
        let mut seen = BTreeSet::new();
        let mut shared_names = BTreeSet::new();
        for site in sites.values() {
            if !seen.insert(site.name.as_str()) {
                shared_names.insert(site.name.as_str());
            }
        }
        Lookup { sites, attendees, shared_names }
    }

    /// The person an attendee id stands for, after merges.
    fn person(&self, id: DocId) -> DocId {
        crate::conflicts::person_of(id, |x| self.attendees.get(x).and_then(|a| a.merged_into).map(|m| m.id()))
    }

    fn site_group(&self, site: RecordRef) -> String {
        match self.sites.get(&site.id()) {
            Some(s) if self.shared_names.contains(s.name.as_str()) => {
                format!("{} ({})", s.name, site.short())
            }
            Some(s) => s.name.clone(),
            None => short_id(&site.id()),
        }
    }

    fn partner_group(&self, site: RecordRef) -> String {
        match self.sites.get(&site.id()).map(|s| s.partner.trim()) {
            Some(partner) if !partner.is_empty() => partner.to_string(),
            _ => UNKNOWN_GROUP.to_string(),
        }
    }

    /// The age band of the person `attendee` stands for, in the year of `date`.
    fn band(&self, attendee: RecordRef, date: NaiveDate) -> &'static str {
        match self.attendees.get(&self.person(attendee.id())) {
            Some(a) => age_band(a.birth_year, date.year()),
            None => UNKNOWN_GROUP,
        }
    }

    /// The group of a record of `site` dated `date`; `person` is the one person it is
    /// about (a loan's borrower), for grouping by age band.
    fn group(
        &self,
        by: GroupBy,
        site: RecordRef,
        date: NaiveDate,
        audience: Option<Audience>,
        topic: Option<Topic>,
        person: Option<RecordRef>,
    ) -> String {
        match by {
            GroupBy::Site => self.site_group(site),
            GroupBy::Partner => self.partner_group(site),
            GroupBy::Month => date.format("%Y-%m").to_string(),
            GroupBy::Audience => audience.map_or(UNKNOWN_GROUP, Audience::as_str).to_string(),
            GroupBy::AgeBand => person.map_or(UNKNOWN_GROUP, |p| self.band(p, date)).to_string(),
            GroupBy::Topic => topic.map_or(UNKNOWN_GROUP, Topic::as_str).to_string(),
        }
    }
}

/// The audience a borrower belongs to, for grouping loans by audience.
fn audience_of(role: AttendeeRole) -> Audience {
    match role {
        AttendeeRole::Student => Audience::Students,
        AttendeeRole::Parent => Audience::Parents,
        AttendeeRole::Teacher => Audience::Teachers,
        AttendeeRole::Citizen => Audience::Citizens,
    }
}

/// Computes the report of `query` over `records`.
pub fn report(records: &[(DocId, Record)], query: &ReportQuery) -> Report {
    let lookup = Lookup::new(records);
    let end = query.to.map_or(query.today, |to| to.min(query.today));
    let wanted = query.partner.as_deref().map(|p| p.trim().to_lowercase());
    let of_partner =
        |site: RecordRef| wanted.as_ref().is_none_or(|p| lookup.partner_group(site).to_lowercase() == *p);
    let in_period = |date: NaiveDate| {
        date <= query.today
            && query.from.is_none_or(|from| date >= from)
            && query.to.is_none_or(|to| date <= to)
    };
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut skipped = 0;
    for (_, record) in records {
        match record {
            Record::Session(session) => {
                let Some(start) = session.start_time() else {
                    skipped += 1;
                    continue;
                };
                if session.is_cancelled() || !in_period(start.date()) || !of_partner(session.site) {
                    continue; // a cancelled session is kept but never held
                }
                if query.group_by == GroupBy::AgeBand {
                    count_session_by_age(session, start.date(), &lookup, &mut groups);
                } else {
                    let group = lookup.group(
                        query.group_by,
                        session.site,
                        start.date(),
                        Some(session.audience),
                        session.topic_code,
                        None,
                    );
                    count_session(session, &lookup, groups.entry(group).or_default());
                }
                count_session(session, &lookup, &mut total);
            }
            Record::Loan(loan) => {
                if loan.closed_reason.is_some() || !of_partner(loan.site) {
                    continue; // closed resolving a conflict: never a loan
                }
                let Some(span) = LoanSpan::of(loan) else {
                    skipped += 1;
                    continue;
                };
                if !span.open_during(query.from, end) {
                    continue;
                }
                let borrower = lookup.attendees.get(&lookup.person(loan.attendee.id()));
                let audience = borrower.map(|a| audience_of(a.role));
                if query.group_by == GroupBy::Month {
                    for (month_from, month_end) in
                        months(span.start.max(query.from.unwrap_or(span.start)), end)
                    {
                        let first = query.from.map_or(month_from, |from| from.max(month_from));
                        if span.open_during(Some(first), month_end) {
                            let tally = groups.entry(month_end.format("%Y-%m").to_string()).or_default();
                            count_loan(loan, &span, &lookup, month_end, tally);
                        }
                    }
                } else {
                    let group = lookup.group(
                        query.group_by,
                        loan.site,
                        span.start,
                        audience,
                        None,
                        Some(loan.attendee),
                    );
                    count_loan(loan, &span, &lookup, end, groups.entry(group).or_default());
                }
                count_loan(loan, &span, &lookup, end, &mut total);
            }
            Record::Site(_) | Record::Attendee(_) | Record::Device(_) | Record::Personal(_) => {}
        }
    }
    Report {
        group_by: query.group_by,
        rows: groups.into_iter().map(|(group, tally)| tally.row(group)).collect(),
        total: total.row(TOTAL_GROUP.to_string()),
        skipped,
    }
}

fn count_session(session: &Session, lookup: &Lookup<'_>, tally: &mut Tally) {
    count_session_part(session, lookup, tally, |_| true, true);
}

/// One session, several bands: it counts in each band of the people present, with
/// their presences only. The anonymous headcount of a public meeting has no age, and a
/// session with nobody present none either: both count in [`UNKNOWN_GROUP`].
fn count_session_by_age(
    session: &Session,
    date: NaiveDate,
    lookup: &Lookup<'_>,
    groups: &mut BTreeMap<String, Tally>,
) {
    let present = || session.participants.iter().filter(|p| p.present);
    let mut bands: BTreeSet<&str> = present().map(|p| lookup.band(p.attendee, date)).collect();
    if session.headcount > 0 || bands.is_empty() {
        bands.insert(UNKNOWN_GROUP);
    }
    for band in bands {
        let in_band = |who: RecordRef| lookup.band(who, date) == band;
        let tally = groups.entry(band.to_string()).or_default();
        count_session_part(session, lookup, tally, in_band, band == UNKNOWN_GROUP);
    }
}

/// Counts `session` as held, with the presences of the participants `counted` picks
/// and, when `anonymous`, the anonymous headcount of a public meeting.
fn count_session_part(
    session: &Session,
    lookup: &Lookup<'_>,
    tally: &mut Tally,
    counted: impl Fn(RecordRef) -> bool,
    anonymous: bool,
) {
    tally.sessions_held += 1;
    if matches!(session.kind, SessionKind::Course | SessionKind::SchoolLab) {
        tally.training_minutes += session.duration_minutes().unwrap_or(0);
    }
    if anonymous && session.kind == SessionKind::PublicMeeting {
        tally.headcount += u64::from(session.headcount);
    }
    for participant in session.participants.iter().filter(|p| p.present && counted(p.attendee)) {
        tally.headcount += 1;
        tally.attendees.insert(lookup.person(participant.attendee.id()));
    }
}

/// A loan's dates, read.
struct LoanSpan {
    start: NaiveDate,
    expected_return: NaiveDate,
    returned: Option<NaiveDate>,
}

impl LoanSpan {
    /// `None` when a date cannot be read (the loan is then skipped and counted).
    fn of(loan: &Loan) -> Option<LoanSpan> {
        let returned = match &loan.returned_at {
            Some(text) => Some(parse_date(text)?),
            None => None,
        };
        Some(LoanSpan {
            start: parse_date(&loan.start)?,
            expected_return: parse_date(&loan.expected_return)?,
            returned,
        })
    }

    /// Open at some moment of the days `from..=end`: started by `end`, not returned
    /// before `from` (a return on `from` itself still counts: the device was out that
    /// morning).
    fn open_during(&self, from: Option<NaiveDate>, end: NaiveDate) -> bool {
        self.start <= end
            && from.is_none_or(|from| from <= end && self.returned.is_none_or(|returned| returned >= from))
    }

    /// Open at the end of `day` and past its expected return.
    fn overdue_at(&self, day: NaiveDate) -> bool {
        self.start <= day && self.expected_return < day && self.returned.is_none_or(|returned| returned > day)
    }
}

/// The months from the one of `first` to the one of `end`, each as its first day and
/// its last day (the last one cut at `end`).
fn months(first: NaiveDate, end: NaiveDate) -> impl Iterator<Item = (NaiveDate, NaiveDate)> {
    let mut month = first.with_day(1);
    std::iter::from_fn(move || {
        let from = month.filter(|m| *m <= end)?;
        let next = from.checked_add_months(Months::new(1));
        month = next;
        let last = next.and_then(|n| n.pred_opt()).map_or(end, |l| l.min(end));
        Some((from, last))
    })
}

fn count_loan(loan: &Loan, span: &LoanSpan, lookup: &Lookup<'_>, end: NaiveDate, tally: &mut Tally) {
    tally.devices.insert(loan.device.id());
    tally.attendees.insert(lookup.person(loan.attendee.id()));
    if span.overdue_at(end) {
        tally.overdue_loans += 1;
    }
}

const COLUMNS: usize = 7;

impl Report {
    /// The column headers in `lang` (the first names the grouping).
    pub fn headers(&self, lang: Lang) -> [&'static str; COLUMNS] {
        let first = match (self.group_by, lang) {
            (GroupBy::Site, Lang::En) => "Site",
            (GroupBy::Site, Lang::It) => "Sede",
            (GroupBy::Partner, Lang::En) => "Partner",
            (GroupBy::Partner, Lang::It) => "Ente partner",
            (GroupBy::Month, Lang::En) => "Month",
            (GroupBy::Month, Lang::It) => "Mese",
            (GroupBy::Audience, Lang::En) => "Audience",
            (GroupBy::Audience, Lang::It) => "Destinatari",
            (GroupBy::AgeBand, Lang::En) => "Age band",
            (GroupBy::AgeBand, Lang::It) => "Fascia d'età",
            (GroupBy::Topic, Lang::En) => "Request type",
            (GroupBy::Topic, Lang::It) => "Tipo di richiesta",
        };
        match lang {
            Lang::En => [
                first,
                "Unique attendees",
                "Sessions held",
                "Training hours",
                "Devices on loan",
                "Overdue loans",
                "Headcount",
            ],
            Lang::It => [
                first,
                "Partecipanti unici",
                "Incontri svolti",
                "Ore di formazione",
                "Dispositivi in comodato",
                "Comodati scaduti",
                "Presenze",
            ],
        }
    }

    fn group_label(&self, group: &str, lang: Lang) -> String {
        match (group, lang) {
            (TOTAL_GROUP, Lang::En) => "Total".to_string(),
            (TOTAL_GROUP, Lang::It) => "Totale".to_string(),
            (UNKNOWN_GROUP, Lang::En) => "(not recorded)".to_string(),
            (UNKNOWN_GROUP, Lang::It) => "(non indicato)".to_string(),
            _ if self.group_by == GroupBy::Audience => Audience::from_str_exact(group)
                .map_or_else(|| group.to_string(), |a| a.label(lang).to_string()),
            _ if self.group_by == GroupBy::Topic => {
                Topic::from_str_exact(group).map_or_else(|| group.to_string(), |t| t.label(lang).to_string())
            }
            _ => group.to_string(),
        }
    }

    /// One row's cells as shown: the group's label in `lang`, hours with `decimal`.
    pub fn cells(&self, row: &ReportRow, lang: Lang, decimal: char) -> [String; COLUMNS] {
        [
            self.group_label(&row.group, lang),
            row.unique_attendees.to_string(),
            row.sessions_held.to_string(),
            format_hours(row.training_hours, decimal),
            row.devices_on_loan.to_string(),
            row.overdue_loans.to_string(),
            row.headcount.to_string(),
        ]
    }

    /// The report as CSV (RFC 4180: commas, `.` decimals, CRLF line ends), headers in
    /// `lang`, the total last. Text cells that a spreadsheet would run as a formula are
    /// prefixed with `'`.
    pub fn to_csv(&self, lang: Lang, style: CsvStyle) -> String {
        let (separator, decimal) = match style {
            CsvStyle::Comma => (',', '.'),
            CsvStyle::Semicolon => (';', ','),
        };
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let escaped: Vec<String> = cells.iter().map(|cell| csv_cell(cell, separator)).collect();
            out.push_str(&escaped.join(&separator.to_string()));
            out.push_str("\r\n");
        };
        line(&self.headers(lang).map(str::to_string));
        for row in &self.rows {
            line(&self.cells(row, lang, decimal));
        }
        line(&self.cells(&self.total, lang, decimal));
        out
    }

    /// The report as an aligned text table for a terminal or a printout: text left,
    /// numbers right, a rule under the headers and above the total. Italian uses a
    /// decimal comma.
    pub fn to_table(&self, lang: Lang) -> String {
        let decimal = match lang {
            Lang::En => '.',
            Lang::It => ',',
        };
        let header = self.headers(lang).map(str::to_string);
        let mut body: Vec<[String; COLUMNS]> =
            self.rows.iter().map(|row| self.cells(row, lang, decimal)).collect();
        let total = self.cells(&self.total, lang, decimal);
        let mut widths = [0usize; COLUMNS];
        for cells in std::iter::once(&header).chain(body.iter()).chain(std::iter::once(&total)) {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let rule: String = {
            let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            dashes.join("  ")
        };
        let render = |cells: &[String; COLUMNS]| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(column, (cell, width))| {
                    let pad = " ".repeat(width - cell.chars().count());
                    if column == 0 {
                        format!("{cell}{pad}")
                    } else {
                        format!("{pad}{cell}")
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut lines = vec![render(&header), rule.clone()];
        lines.extend(body.drain(..).map(|cells| render(&cells)));
        lines.push(rule);
        lines.push(render(&total));
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }
}

/// Hours with at most two decimals, trailing zeros dropped: `4.5`, `3`, `1.33`.
fn format_hours(hours: f64, decimal: char) -> String {
    let fixed = format!("{hours:.2}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    trimmed.replace('.', &decimal.to_string())
}

/// How a CSV file separates its fields: what a spreadsheet of the operator's locale
/// opens without an import dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvStyle {
    /// `,` between fields, `.` in decimals (English spreadsheets).
    Comma,
    /// `;` between fields, `,` in decimals (Italian spreadsheets: Excel, LibreOffice).
    Semicolon,
}

impl CsvStyle {
    /// The convention of `lang`'s spreadsheets.
    pub fn of(lang: Lang) -> CsvStyle {
        match lang {
            Lang::En => CsvStyle::Comma,
            Lang::It => CsvStyle::Semicolon,
        }
    }
}

fn csv_cell(cell: &str, separator: char) -> String {
    let guarded = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    };
    if guarded.contains([separator, '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::RecordKind;
    use crate::model::samples::*;
    use crate::model::Participant;

    fn day(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn query(group_by: GroupBy) -> ReportQuery {
        ReportQuery {
            from: Some(day("2025-01-01")),
            to: Some(day("2025-06-30")),
            group_by,
            today: day("2025-06-15"),
            partner: None,
        }
    }

    fn present(n: u8, present: bool) -> Participant {
        Participant { attendee: r(RecordKind::Attendee, n), present }
    }

    /// Two sites, three people (one a duplicate merged into another), five sessions (one
    /// in the future, one before the period), three loans (one overdue, one returned).
    fn programme() -> Vec<(DocId, Record)> {
        let (alfa, beta) = (r(RecordKind::Site, 1), r(RecordKind::Site, 2));
        let mut duplicate = student("Giulia", "Esempio", beta);
        duplicate.merged_into = Some(r(RecordKind::Attendee, 1));

        let mut course = session(alfa, SessionKind::Course, "2025-03-03T15:00", "2025-03-03T17:00");
        course.participants = vec![present(1, true), present(2, false)];
        let mut lab = session(alfa, SessionKind::SchoolLab, "2025-03-10T09:00", "2025-03-10T11:30");
        lab.audience = Audience::Students;
        lab.participants = vec![present(3, true)];
        let mut meeting = session(beta, SessionKind::PublicMeeting, "2025-04-05T18:00", "2025-04-05T20:00");
        meeting.audience = Audience::Citizens;
        meeting.headcount = 40;
        meeting.participants = vec![present(2, true)];
        let mut future =
            session(beta, SessionKind::HelpDeskAppointment, "2025-06-20T10:00", "2025-06-20T10:30");
        future.participants = vec![present(2, true)];
        let mut before = session(alfa, SessionKind::Course, "2024-12-01T15:00", "2024-12-01T18:00");
        before.participants = vec![present(1, true)];
        let garbled = Session { start: "marzo".into(), ..course.clone() };

        let device = |n| r(RecordKind::Device, n);
        let overdue = loan(device(1), r(RecordKind::Attendee, 1), alfa, "2025-02-01", "2025-05-31");
        let open = loan(device(2), r(RecordKind::Attendee, 2), beta, "2025-03-01", "2025-09-30");
        let mut returned = loan(device(3), r(RecordKind::Attendee, 1), alfa, "2025-01-15", "2025-03-01");
        returned.returned_at = Some("2025-03-01".into());

        let mut records = vec![
            (id(RecordKind::Site, 1), Record::Site(site("Polo Alfa", "Cooperativa Uno"))),
            (id(RecordKind::Site, 2), Record::Site(site("Sportello Beta", "Comune Due"))),
            (id(RecordKind::Attendee, 1), Record::Attendee(student("Giulia", "Esempio", alfa))),
            (id(RecordKind::Attendee, 2), Record::Attendee(adult("Ahmed", "Prova", beta))),
            (id(RecordKind::Attendee, 3), Record::Attendee(duplicate)),
        ];
        for (n, s) in [course, lab, meeting, future, before, garbled].into_iter().enumerate() {
            records.push((id(RecordKind::Session, n as u8), Record::Session(s)));
        }
        for (n, l) in [overdue, open, returned].into_iter().enumerate() {
            records.push((id(RecordKind::Loan, n as u8), Record::Loan(l)));
        }
        records
    }

    fn row(
        group: &str,
        people: u64,
        sessions: u64,
        hours: f64,
        lent: u64,
        overdue: u64,
        heads: u64,
    ) -> ReportRow {
        ReportRow {
            group: group.to_string(),
            unique_attendees: people,
            sessions_held: sessions,
            training_hours: hours,
            devices_on_loan: lent,
            overdue_loans: overdue,
            headcount: heads,
        }
    }

    #[test]
    fn by_request_type_each_session_counts_under_its_topic() {
        let mut records = programme();
        // The course is about SPID, the public meeting about online scams; the lab has
        // no topic; loans have none either.
        for (_, record) in &mut records {
            if let Record::Session(session) = record {
                session.topic_code = match session.kind {
                    SessionKind::Course => Some(Topic::Spid),
                    SessionKind::PublicMeeting => Some(Topic::OnlineScams),
                    _ => None,
                };
            }
        }
        let by_topic = report(&records, &query(GroupBy::Topic));
        assert_eq!(
            by_topic.total,
            row("total", 2, 3, 4.5, 3, 1, 43),
            "the total does not depend on grouping"
        );
        assert_eq!(
            by_topic.rows,
            vec![
                // The lab (Giulia, as her merged duplicate) and the loans (to Giulia and Ahmed).
                row(UNKNOWN_GROUP, 2, 1, 2.5, 3, 1, 1),
                row("online-scams", 1, 1, 0.0, 0, 0, 41),
                row("spid", 1, 1, 2.0, 0, 0, 1),
            ]
        );
        let table = by_topic.to_table(Lang::It);
        assert!(table.starts_with("Tipo di richiesta"), "{table}");
        assert!(table.contains("identità digitale SPID") && table.contains("truffe online"), "{table}");
        assert_eq!(GroupBy::parse("tipo di richiesta"), Ok(GroupBy::Topic));
    }

    #[test]
    fn totals_of_a_small_programme() {
        let report = report(&programme(), &query(GroupBy::Site));
        // 3 sessions held (the future one and the one before the period do not count),
        // 2 people (the merged duplicate is Giulia), 2 h + 2.5 h of training, 3 devices
        // on loan at some moment, 1 loan overdue on June 15, 40 counted + 3 present.
        assert_eq!(report.total, row("total", 2, 3, 4.5, 3, 1, 43));
        assert_eq!(report.skipped, 1, "the session with an unreadable start");
        assert_eq!(
            report.rows,
            vec![row("Polo Alfa", 1, 2, 4.5, 2, 1, 2), row("Sportello Beta", 1, 1, 0.0, 1, 0, 41)]
        );
    }

    #[test]
    fn grouped_by_age_band_in_the_year_of_each_session_and_loan() {
        // Giulia (born 2012) is 13 in 2025, Ahmed (born 1950) 75; the public meeting
        // counts in Ahmed's band with his presence and in "?" with its anonymous 40.
        let by_age = report(&programme(), &query(GroupBy::AgeBand));
        assert_eq!(
            by_age.rows,
            vec![
                row("0-13", 1, 2, 4.5, 2, 1, 2),
                row("65+", 1, 1, 0.0, 1, 0, 1),
                row("?", 0, 1, 0.0, 0, 0, 40)
            ]
        );
        assert_eq!(by_age.total, row("total", 2, 3, 4.5, 3, 1, 43), "the total counts each session once");
        let table = by_age.to_table(Lang::It);
        assert!(table.contains("Fascia d'età") && table.contains("(non indicato)"), "{table}");
    }

    #[test]
    fn age_bands_have_their_edges_where_the_programmes_put_them() {
        for (birth, year, band) in [
            (2012, 2025, "0-13"),
            (2011, 2025, "14-17"),
            (2008, 2025, "14-17"),
            (2007, 2025, "18-64"),
            (1961, 2025, "18-64"),
            (1960, 2025, "65+"),
            (2026, 2025, "?"),
            (0, 2025, "?"),
        ] {
            assert_eq!(age_band(birth, year), band, "born {birth}, in {year}");
        }
    }

    #[test]
    fn a_cancelled_session_is_kept_but_counts_nowhere() {
        let mut records = programme();
        let before = report(&records, &query(GroupBy::Site)).total;
        // Cancel the session with the most people in it (the public meeting).
        let (_, Record::Session(meeting)) = records
            .iter_mut()
            .find(|(_, r)| matches!(r, Record::Session(s) if s.kind == SessionKind::PublicMeeting))
            .expect("the programme has a public meeting")
        else {
            unreachable!()
        };
        let heads =
            u64::from(meeting.headcount) + meeting.participants.iter().filter(|p| p.present).count() as u64;
        meeting.cancelled = Some("doppione".into());
        let after = report(&records, &query(GroupBy::Site)).total;
        assert_eq!(after.sessions_held, before.sessions_held - 1);
        assert_eq!(after.headcount, before.headcount - heads);
    }

    #[test]
    fn grouped_by_month_partner_and_audience() {
        let records = programme();
        let by_month = report(&records, &query(GroupBy::Month));
        assert_eq!(
            by_month.rows,
            vec![
                // Device 3 (lent in January, back on March 1) in January to March;
                // device 1 from February, device 2 from March, both to June.
                row("2025-01", 1, 0, 0.0, 1, 0, 0),
                row("2025-02", 1, 0, 0.0, 2, 0, 0),
                row("2025-03", 2, 2, 4.5, 3, 0, 2),
                row("2025-04", 2, 1, 0.0, 2, 0, 41),
                row("2025-05", 2, 0, 0.0, 2, 0, 0),
                // Device 1 was due back on May 31: overdue at the end of June's part
                // of the period (June 15, today), not at the end of May.
                row("2025-06", 2, 0, 0.0, 2, 1, 0),
            ]
        );
        let by_partner = report(&records, &query(GroupBy::Partner));
        let groups: Vec<&str> = by_partner.rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(groups, vec!["Comune Due", "Cooperativa Uno"]);

        let by_audience = report(&records, &query(GroupBy::Audience));
        assert_eq!(
            by_audience.rows,
            vec![
                // The meeting, and the loan to a citizen.
                row("citizens", 1, 1, 0.0, 1, 0, 41),
                // The course (sample audience: older people).
                row("elderly", 1, 1, 2.0, 0, 0, 1),
                // The lab, and the two loans to a student.
                row("students", 1, 1, 2.5, 2, 1, 1),
            ]
        );
        assert_eq!(by_audience.total, by_month.total);
    }

    /// One site, one student, and the given loans of devices 1, 2, 3... in order.
    fn loans(list: &[(&str, &str, Option<&str>, bool)]) -> Vec<(DocId, Record)> {
        let alfa = r(RecordKind::Site, 1);
        let mut records = vec![
            (id(RecordKind::Site, 1), Record::Site(site("Polo Alfa", "Cooperativa Uno"))),
            (id(RecordKind::Attendee, 1), Record::Attendee(student("Giulia", "Esempio", alfa))),
        ];
        for (n, (start, expected, returned, voided)) in list.iter().enumerate() {
            let mut l =
                loan(r(RecordKind::Device, n as u8 + 1), r(RecordKind::Attendee, 1), alfa, start, expected);
            l.returned_at = returned.map(str::to_string);
            if *voided {
                l = crate::conflicts::close_loan(&l, day("2025-10-20"), "closed resolving lent-1a2b3c4d");
            }
            records.push((id(RecordKind::Loan, n as u8), Record::Loan(l)));
        }
        records
    }

    fn months_query(from: &str, to: &str, today: &str) -> ReportQuery {
        ReportQuery {
            from: Some(day(from)),
            to: Some(day(to)),
            group_by: GroupBy::Month,
            today: day(today),
            partner: None,
        }
    }

    #[test]
    fn a_device_on_loan_for_two_months_counts_in_both_and_a_voided_loan_nowhere() {
        let records = loans(&[
            ("2025-10-01", "2025-11-30", Some("2025-11-30"), false),
            // Recorded twice by two hubs; the conflict resolution closed this one.
            ("2025-10-10", "2025-12-31", None, true),
        ]);
        let report = report(&records, &months_query("2025-10-01", "2025-11-30", "2025-12-15"));
        let lent: Vec<(&str, u64)> =
            report.rows.iter().map(|r| (r.group.as_str(), r.devices_on_loan)).collect();
        assert_eq!(lent, vec![("2025-10", 1), ("2025-11", 1)]);
        assert_eq!(report.total.devices_on_loan, 1);
        assert_eq!(report.total.overdue_loans, 0);
    }

    #[test]
    fn overdue_is_judged_at_the_end_of_each_month_and_a_late_return_changes_no_past_month() {
        // Due back on November 10, returned on December 3.
        let late = |returned: Option<&str>| loans(&[("2025-10-01", "2025-11-10", returned, false)]);
        let q = months_query("2025-10-01", "2025-12-31", "2025-12-02");
        let before_return = report(&late(None), &q);
        let overdue: Vec<(&str, u64)> =
            before_return.rows.iter().map(|r| (r.group.as_str(), r.overdue_loans)).collect();
        // Not overdue at the end of October; overdue at the end of November and today.
        assert_eq!(overdue, vec![("2025-10", 0), ("2025-11", 1), ("2025-12", 1)]);
        // Re-run after the return: October and November do not change.
        let q = ReportQuery { today: day("2026-01-10"), ..q };
        let after_return = report(&late(Some("2025-12-03")), &q);
        assert_eq!(after_return.rows[..2], before_return.rows[..2]);
        assert_eq!(after_return.rows[2].overdue_loans, 0, "back before the end of December");
    }

    proptest::proptest! {
        /// Sessions held, training hours, headcount and unique attendees, per month and
        /// per site, against a brute-force recount from the glossary's words, over
        /// random histories of three hubs merged together: cancelled sessions, people
        /// merged into others (chains, and cycles left by opposite merges on two hubs).
        #[test]
        fn session_figures_match_a_brute_force_recount_over_merged_hubs(
            merges in proptest::collection::vec(proptest::option::of(0u8..6), 6),
            raw in proptest::collection::vec((
                0u8..3, 0u8..4, 0i64..120, 8u32..19, 15i64..200, proptest::bool::weighted(0.2),
                proptest::collection::vec((0u8..6, proptest::bool::weighted(0.7)), 0..5), 0u32..30,
            ), 0..14),
        ) {
            let kinds = [SessionKind::Course, SessionKind::SchoolLab, SessionKind::PublicMeeting, SessionKind::HelpDeskAppointment];
            let names = ["Polo Alfa", "Polo Beta", "Sportello Gamma"];
            let mut records: Vec<(DocId, Record)> = (0..3u8)
                .map(|n| (id(RecordKind::Site, n + 1), Record::Site(site(names[n as usize], "Cooperativa Uno"))))
                .collect();
            for (n, into) in merges.iter().enumerate() {
                let mut a = adult("Persona", &format!("Prova{n}"), r(RecordKind::Site, n as u8 % 3 + 1));
                a.merged_into = into.filter(|m| *m as usize != n).map(|m| r(RecordKind::Attendee, m + 1));
                records.push((id(RecordKind::Attendee, n as u8 + 1), Record::Attendee(a)));
            }
            let base = day("2026-01-01");
            // (site, month, kind, minutes, cancelled, present people, headcount)
            let mut truth = Vec::new();
            for (n, (site_n, kind_n, offset, hour, minutes, cancelled, people, headcount)) in raw.iter().enumerate() {
                let kind = kinds[*kind_n as usize];
                let start = (base + chrono::Duration::days(*offset)).and_hms_opt(*hour, 0, 0).unwrap();
                let end = start + chrono::Duration::minutes(*minutes);
                let mut s = session(r(RecordKind::Site, site_n + 1), kind, &crate::model::format_date_time(start), &crate::model::format_date_time(end));
                let mut seen = BTreeSet::new();
                for (who, present) in people {
                    if seen.insert(*who) {
                        s.participants.push(Participant { attendee: r(RecordKind::Attendee, who + 1), present: *present });
                    }
                }
                if kind == SessionKind::PublicMeeting {
                    s.headcount = *headcount;
                }
                if *cancelled {
                    s.cancelled = Some("inserito due volte".into());
                }
                let present: Vec<u8> = s.participants.iter().filter(|p| p.present).map(|p| p.attendee.id().0[1] - 1).collect();
                truth.push((*site_n, start.format("%Y-%m").to_string(), kind, *minutes, *cancelled, present, s.headcount));
                records.push((id(RecordKind::Session, n as u8 + 1), Record::Session(s)));
            }
            // The person an attendee stands for, from the words: follow "merged into";
            // where the chain comes back on itself, the smallest of the circle.
            let person = |start: u8| -> u8 {
                let mut path = vec![start];
                let mut at = start;
                while let Some(next) = merges[at as usize].filter(|m| *m != at) {
                    if let Some(i) = path.iter().position(|p| *p == next) {
                        return *path[i..].iter().min().unwrap();
                    }
                    path.push(next);
                    at = next;
                }
                at
            };
            #[derive(Default, PartialEq, Debug)]
            struct Expected { held: u64, minutes: i64, headcount: u64, people: BTreeSet<u8> }
            let mut by_month: BTreeMap<String, Expected> = BTreeMap::new();
            let mut by_site: BTreeMap<String, Expected> = BTreeMap::new();
            for (site_n, month, kind, minutes, cancelled, present, headcount) in &truth {
                if *cancelled {
                    continue;
                }
                for e in [by_month.entry(month.clone()).or_default(), by_site.entry(names[*site_n as usize].to_string()).or_default()] {
                    e.held += 1;
                    if matches!(kind, SessionKind::Course | SessionKind::SchoolLab) {
                        e.minutes += minutes;
                    }
                    e.headcount += u64::from(*headcount) + present.len() as u64;
                    e.people.extend(present.iter().map(|p| person(*p)));
                }
            }
            let today = day("2026-12-01");
            for (group_by, expected) in [(GroupBy::Month, by_month), (GroupBy::Site, by_site)] {
                let q = ReportQuery { from: None, to: None, group_by, today, partner: None };
                let got = report(&records, &q);
                let rows: Vec<(String, u64, f64, u64, u64)> = got.rows.iter()
                    .filter(|r| r.sessions_held > 0)
                    .map(|r| (r.group.clone(), r.sessions_held, r.training_hours, r.headcount, r.unique_attendees))
                    .collect();
                let want: Vec<(String, u64, f64, u64, u64)> = expected.into_iter()
                    .map(|(g, e)| (g, e.held, e.minutes as f64 / 60.0, e.headcount, e.people.len() as u64))
                    .collect();
                proptest::prop_assert_eq!(rows, want);
            }
        }
    }

    proptest::proptest! {
        /// Devices on loan and overdue loans, per month and in total, against a
        /// day-by-day recount over random loans and periods.
        #[test]
        fn loan_figures_match_a_day_by_day_recount(
            raw in proptest::collection::vec((0u8..4, 0i64..150, 0i64..90, proptest::option::of(0i64..120), proptest::bool::weighted(0.2)), 0..12),
            from in 0i64..150, length in 0i64..150, today in 0i64..200,
        ) {
            let base = day("2025-09-01");
            let at = |offset: i64| base + chrono::Duration::days(offset);
            let text = |d: NaiveDate| crate::model::format_date(d);
            let alfa = r(RecordKind::Site, 1);
            let mut records = vec![
                (id(RecordKind::Site, 1), Record::Site(site("Polo Alfa", "Cooperativa Uno"))),
                (id(RecordKind::Attendee, 1), Record::Attendee(student("Giulia", "Esempio", alfa))),
            ];
            // (device, start, expected, returned, voided)
            let mut truth = Vec::new();
            for (n, (device, start, due, back, voided)) in raw.iter().enumerate() {
                let (start, expected) = (at(*start), at(start + due));
                let returned = back.map(|b| at(start.signed_duration_since(base).num_days() + b));
                let mut l = loan(r(RecordKind::Device, device + 1), r(RecordKind::Attendee, 1), alfa, &text(start), &text(expected));
                l.returned_at = returned.map(text);
                if *voided {
                    l.closed_reason = Some("closed resolving lent-1a2b3c4d".into());
                    l.returned_at = Some(text(start));
                }
                truth.push((*device, start, expected, returned, *voided));
                records.push((id(RecordKind::Loan, n as u8), Record::Loan(l)));
            }
            let q = ReportQuery { from: Some(at(from)), to: Some(at(from + length)), group_by: GroupBy::Month, today: at(today), partner: None };
            let end = at(from + length).min(at(today));
            let report = report(&records, &q);

            let on_loan = |d: NaiveDate| -> BTreeSet<u8> {
                truth.iter()
                    .filter(|(_, start, _, returned, voided)| !voided && *start <= d && returned.is_none_or(|r| d <= r))
                    .map(|(device, ..)| *device)
                    .collect()
            };
            let overdue_at = |e: NaiveDate| truth.iter()
                .filter(|(_, start, expected, returned, voided)| !voided && *start <= e && *expected < e && returned.is_none_or(|r| r > e))
                .count() as u64;
            let mut by_month: BTreeMap<String, (BTreeSet<u8>, NaiveDate)> = BTreeMap::new();
            let mut all = BTreeSet::new();
            let mut d = at(from);
            while d <= end {
                let devices = on_loan(d);
                let month = by_month.entry(d.format("%Y-%m").to_string()).or_insert((BTreeSet::new(), d));
                month.0.extend(devices.iter().copied());
                month.1 = d;
                all.extend(devices);
                d = d.succ_opt().unwrap();
            }
            let expected_rows: Vec<(String, u64, u64)> = by_month
                .into_iter()
                .map(|(month, (devices, last))| (month, devices.len() as u64, overdue_at(last)))
                .filter(|(_, devices, _)| *devices > 0)
                .collect();
            let rows: Vec<(String, u64, u64)> = report.rows.iter()
                .filter(|r| r.devices_on_loan > 0)
                .map(|r| (r.group.clone(), r.devices_on_loan, r.overdue_loans))
                .collect();
            proptest::prop_assert_eq!(rows, expected_rows);
            proptest::prop_assert_eq!(report.total.devices_on_loan, all.len() as u64);
            let total_overdue = if at(from) <= end { overdue_at(end) } else { 0 };
            proptest::prop_assert_eq!(report.total.overdue_loans, total_overdue);
        }
    }

    #[test]
    fn one_partners_figures() {
        let records = programme();
        assert_eq!(partners(&records), vec!["Comune Due".to_string(), "Cooperativa Uno".to_string()]);
        let q = ReportQuery { partner: Some(" cooperativa uno ".into()), ..query(GroupBy::Site) };
        let report = report(&records, &q);
        // Only Polo Alfa's sessions and loans, in the rows and in the total.
        assert_eq!(report.rows, vec![row("Polo Alfa", 1, 2, 4.5, 2, 1, 2)]);
        assert_eq!(report.total, row("total", 1, 2, 4.5, 2, 1, 2));
    }

    #[test]
    fn an_open_period_runs_to_today() {
        let q = ReportQuery { from: None, to: None, ..query(GroupBy::Site) };
        let all = report(&programme(), &q);
        assert_eq!(all.total.sessions_held, 4, "the December course counts, the June 20 appointment not");
        assert_eq!(all.total.training_hours, 7.5);
    }

    #[test]
    fn unknown_sites_and_partners_are_shown_as_such() {
        let mut records = programme();
        records.retain(|(_, record)| !matches!(record, Record::Site(_)));
        let by_site = report(&records, &query(GroupBy::Site));
        assert_eq!(by_site.rows[0].group, r(RecordKind::Site, 1).short());
        let by_partner = report(&records, &query(GroupBy::Partner));
        assert_eq!(by_partner.rows.len(), 1);
        assert_eq!(by_partner.rows[0].group, UNKNOWN_GROUP);
        assert!(by_partner.to_table(Lang::It).contains("(non indicato)"));
    }

    #[test]
    fn csv_and_table_in_both_languages_carry_no_names() {
        let records = programme();
        let by_site = report(&records, &query(GroupBy::Site));
        let csv = by_site.to_csv(Lang::En, CsvStyle::Comma);
        assert_eq!(
            csv,
            "Site,Unique attendees,Sessions held,Training hours,Devices on loan,Overdue loans,Headcount\r\n\
             Polo Alfa,1,2,4.5,2,1,2\r\n\
             Sportello Beta,1,1,0,1,0,41\r\n\
             Total,2,3,4.5,3,1,43\r\n"
        );
        // What an Italian spreadsheet opens as it is: `;` between fields, decimal comma.
        assert_eq!(
            by_site.to_csv(Lang::It, CsvStyle::of(Lang::It)),
            "Sede;Partecipanti unici;Incontri svolti;Ore di formazione;Dispositivi in comodato;Comodati scaduti;Presenze\r\n\
             Polo Alfa;1;2;4,5;2;1;2\r\n\
             Sportello Beta;1;1;0;1;0;41\r\n\
             Totale;2;3;4,5;3;1;43\r\n"
        );
        let table = by_site.to_table(Lang::It);
        let expected = "\
Sede            Partecipanti unici  Incontri svolti  Ore di formazione  Dispositivi in comodato  Comodati scaduti  Presenze
--------------  ------------------  ---------------  -----------------  -----------------------  ----------------  --------
Polo Alfa                        1                2                4,5                        2                 1         2
Sportello Beta                   1                1                  0                        1                 0        41
--------------  ------------------  ---------------  -----------------  -----------------------  ----------------  --------
Totale                           2                3                4,5                        3                 1        43
";
        assert_eq!(table, expected);
        let by_audience = report(&records, &query(GroupBy::Audience)).to_table(Lang::It);
        assert!(by_audience.contains("anziani") && by_audience.contains("studenti"));
        for output in [
            csv,
            table,
            by_audience,
            report(&records, &query(GroupBy::Month)).to_csv(Lang::It, CsvStyle::Semicolon),
        ] {
            for name in ["Giulia", "Esempio", "Ahmed", "Prova", "Facilitatore", "Operatrice", "Mario"] {
                assert!(!output.contains(name), "{name} in {output}");
            }
        }
    }

    #[test]
    fn csv_cells_are_escaped_and_defused() {
        assert_eq!(csv_cell("Polo \"San Nabore\", Lodi", ','), "\"Polo \"\"San Nabore\"\", Lodi\"");
        assert_eq!(csv_cell("Polo; Lodi", ';'), "\"Polo; Lodi\"");
        assert_eq!(csv_cell("Polo, Lodi", ';'), "Polo, Lodi");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")", ','), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1", ','), "'-1");
        assert_eq!(format_hours(1.0 / 3.0 + 1.0, '.'), "1.33");
        assert_eq!(format_hours(3.0, ','), "3");
        assert_eq!(format_hours(0.25, ','), "0,25");
    }

    #[test]
    fn two_sites_with_one_name_stay_apart() {
        let mut records = programme();
        records[1].1 = Record::Site(site("Polo Alfa", "Comune Due"));
        let by_site = report(&records, &query(GroupBy::Site));
        let groups: Vec<String> = by_site.rows.iter().map(|r| r.group.clone()).collect();
        assert_eq!(
            groups,
            vec![
                format!("Polo Alfa ({})", r(RecordKind::Site, 1).short()),
                format!("Polo Alfa ({})", r(RecordKind::Site, 2).short()),
            ]
        );
    }

    #[test]
    fn group_by_parses_both_languages() {
        assert_eq!(GroupBy::parse("mese"), Ok(GroupBy::Month));
        assert_eq!(GroupBy::parse("Ente"), Ok(GroupBy::Partner));
        assert_eq!(GroupBy::parse("età"), Ok(GroupBy::AgeBand));
        crate::vocab::tests::check_set::<GroupBy>();
    }
}
