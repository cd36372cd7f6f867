//! Validation: the rules a record must follow before a node writes it, checked on the
//! new value alone ([`validate`]) or with the few other facts a rule needs
//! ([`validate_new_loan`]).
//!
//! These checks run where a person types, before a change is signed. They are not run
//! on changes that arrive from other nodes: a CRDT merge cannot be refused, and a rule
//! broken by two offline edits (a device lent twice) is a domain conflict, detected
//! after the merge by [`crate::conflicts`]. Every error names the field and the rule in
//! words a hub operator understands, and never repeats the value typed: the value may
//! be a person's name or phone number, and errors end up in logs.

use chrono::{Datelike, NaiveDate};

use crate::kind::RecordKind;
use crate::model::{
    parse_date, parse_date_time, Attendee, Consent, Device, Guardian, Loan, Record, RecordRef, Session, Site,
};
use crate::text::chars;
use crate::vocab::{ConsentBy, DeviceCondition, DeviceStatus, Lang, SessionKind};

/// Longest name of a person, site, partner, operator, device model, serial or tag.
pub const NAME_CHARS_MAX: usize = 100;
/// Longest short free text: an address, opening hours, a topic, a school, a reason.
pub const SHORT_TEXT_CHARS_MAX: usize = 200;
/// Longest notes (an intervention plan).
pub const NOTES_CHARS_MAX: usize = 2000;
/// Longest name of a language.
pub const LANGUAGE_CHARS_MAX: usize = 40;
/// Longest e-mail address (RFC 5321 path limit).
pub const EMAIL_CHARS_MAX: usize = 254;
/// Longest phone number as typed, spaces and signs included.
pub const PHONE_CHARS_MAX: usize = 32;
/// Fewest and most digits in a phone number (E.164 numbers have at most 15).
pub const PHONE_DIGITS_MIN: usize = 6;
pub const PHONE_DIGITS_MAX: usize = 15;
/// Most participants registered in one session.
pub const PARTICIPANTS_MAX: usize = 500;
/// Most languages listed for one person.
pub const LANGUAGES_MAX: usize = 10;
/// Most "not a duplicate of" marks on one person.
pub const NOT_DUPLICATES_MAX: usize = 100;
/// Largest anonymous headcount of one public meeting.
pub const HEADCOUNT_MAX: u32 = 10_000;
/// Longest session, in hours: longer is a typing mistake in the start or end.
pub const SESSION_HOURS_MAX: i64 = 12;
/// Earliest plausible birth year.
pub const BIRTH_YEAR_MIN: u16 = 1900;
/// Age (reached this calendar year) from which a person is an adult.
pub const ADULT_AGE: i32 = 18;
/// Age (reached this calendar year) below which consent to data processing must come
/// from a parent or guardian (Italy: D.lgs. 196/2003 art. 2-quinquies, GDPR art. 8).
pub const CONSENT_SELF_AGE_MIN: i32 = 14;

/// A broken rule. The message names the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the {field} is required")]
    Required { field: &'static str },
    #[error("the {field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("the {field} contains line breaks or control characters")]
    ControlCharacters { field: &'static str },
    #[error("the {field} list has more than {max} entries")]
    TooMany { field: &'static str, max: usize },
    #[error("the {field} is not a date of the form YYYY-MM-DD")]
    InvalidDate { field: &'static str },
    #[error("the {field} is not a date and time of the form YYYY-MM-DDTHH:MM")]
    InvalidDateTime { field: &'static str },
    #[error("the {field} is in the future")]
    DateInFuture { field: &'static str },
    #[error("the {field} is not a valid e-mail address")]
    InvalidEmail { field: &'static str },
    #[error("the {field} is not a valid phone number (digits, spaces, + - / ( ) only)")]
    InvalidPhone { field: &'static str },
    #[error("the {field} does not refer to a {expected} record")]
    WrongReference { field: &'static str, expected: RecordKind },
    #[error("the birth year must be between {min} and {max}")]
    BirthYearOutOfRange { min: u16, max: u16 },
    #[error("the attendee is a minor (born {born}): a guardian contact is required")]
    MinorWithoutGuardian { born: u16 },
    #[error("the guardian contact needs a phone number or an e-mail address")]
    GuardianWithoutContact,
    #[error(
        "the attendee is under {age_min} (born {born}): consent to data processing must be given by a parent \
         or guardian"
    )]
    ConsentNeedsGuardian { born: u16, age_min: i32 },
    #[error("the end time must be after the start time")]
    EndNotAfterStart,
    #[error("the session lasts more than {max_hours} hours: check the start and end")]
    SessionTooLong { max_hours: i64 },
    #[error("the expected return date is before the start date")]
    ExpectedReturnBeforeStart,
    #[error("the return date is before the start date")]
    ReturnedBeforeStart,
    #[error("the condition on return is set but the device has not been returned")]
    ReturnConditionWithoutReturn,
    #[error("an anonymous headcount is only recorded for public meetings")]
    HeadcountOnlyForPublicMeetings,
    #[error("the headcount is larger than {max}")]
    HeadcountTooLarge { max: u32 },
    #[error("attendee {attendee} is listed more than once among the participants")]
    DuplicateParticipant { attendee: String },
    #[error("a mediation session needs the name of its mediator")]
    MediatorRequired,
    #[error("the device is retired and cannot be lent")]
    DeviceRetired,
    #[error("the device is in repair and cannot be lent")]
    DeviceInRepair,
    #[error("the device is broken and cannot be lent")]
    DeviceBroken,
    #[error("the device is already lent ({open_loans} open loans on record): record its return first")]
    DeviceAlreadyLent { open_loans: usize },
    #[error("the device is marked lent but none of its loans is open (two hubs resolved a conflict differently): see `tessera conflicts list`")]
    DeviceLentWithoutLoan,
    #[error("the loan agreement (comodato d'uso) must be signed before the device is handed over")]
    AgreementNotSigned,
}

impl ValidationError {
    /// The field the rule is about, as named in the message (the node may translate it).
    pub fn field(&self) -> &'static str {
        use ValidationError as V;
        match self {
            V::Required { field }
            | V::TooLong { field, .. }
            | V::ControlCharacters { field }
            | V::TooMany { field, .. }
            | V::InvalidDate { field }
            | V::InvalidDateTime { field }
            | V::DateInFuture { field }
            | V::InvalidEmail { field }
            | V::InvalidPhone { field }
            | V::WrongReference { field, .. } => field,
            V::BirthYearOutOfRange { .. } => "birth year",
            V::MinorWithoutGuardian { .. } | V::GuardianWithoutContact => "guardian contact",
            V::ConsentNeedsGuardian { .. } => "consent",
            V::EndNotAfterStart | V::SessionTooLong { .. } => "end",
            V::ExpectedReturnBeforeStart => "expected return date",
            V::ReturnedBeforeStart => "return date",
            V::ReturnConditionWithoutReturn => "condition on return",
            V::HeadcountOnlyForPublicMeetings | V::HeadcountTooLarge { .. } => "headcount",
            V::DuplicateParticipant { .. } => "participants",
            V::MediatorRequired => "mediator",
            V::DeviceRetired
            | V::DeviceInRepair
            | V::DeviceBroken
            | V::DeviceAlreadyLent { .. }
            | V::DeviceLentWithoutLoan => "device",
            V::AgreementNotSigned => "agreement",
        }
    }
}

/// The fields the rules name, in English (as in the messages) and in Italian: the one
/// table both languages come from. A field missing here is a test failure.
pub const FIELD_NAMES: &[(&str, &str)] = &[
    ("address", "l'indirizzo"),
    ("agreement", "il contratto di comodato"),
    ("asset tag", "l'etichetta inventario"),
    ("attendee", "la persona"),
    ("birth year", "l'anno di nascita"),
    ("class", "la classe"),
    ("condition on return", "lo stato alla restituzione"),
    ("consent", "il consenso"),
    ("consent date", "la data del consenso"),
    ("consent operator", "l'operatore del consenso"),
    ("device", "il dispositivo"),
    ("e-mail", "l'e-mail"),
    ("end", "la fine"),
    ("expected return date", "la data di restituzione prevista"),
    ("facilitator", "il facilitatore"),
    ("family name", "il cognome"),
    ("given name", "il nome"),
    ("guardian contact", "il contatto del tutore"),
    ("guardian e-mail", "l'e-mail del tutore"),
    ("guardian name", "il nome del tutore"),
    ("guardian phone", "il telefono del tutore"),
    ("headcount", "il numero di presenti"),
    ("intervention plan notes", "le note del piano d'intervento"),
    ("language", "la lingua"),
    ("languages", "le lingue"),
    ("mediator", "il mediatore"),
    ("merged into", "unito a"),
    ("model", "il modello"),
    ("not a duplicate of", "non doppione di"),
    ("opening hours", "l'orario di apertura"),
    ("participant", "il partecipante"),
    ("participants", "i partecipanti"),
    ("partner", "l'ente"),
    ("phone", "il telefono"),
    ("reason for cancelling", "il motivo dell'annullamento"),
    ("reason for closing", "il motivo della chiusura"),
    ("referent operator", "l'operatore di riferimento"),
    ("return date", "la data di restituzione"),
    ("school", "la scuola"),
    ("serial number", "il numero di serie"),
    ("site", "la sede"),
    ("site name", "il nome della sede"),
    ("start", "l'inizio"),
    ("start date", "la data di inizio"),
    ("topic", "l'argomento"),
];

/// A field's name in Italian, with its article ("la sede"); the English name if the
/// table lacks it (a test keeps it complete).
pub fn field_it(field: &str) -> &str {
    FIELD_NAMES.iter().find(|(en, _)| *en == field).map_or(field, |(_, it)| it)
}

fn kind_it(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Site => "una sede",
        RecordKind::Attendee => "una persona",
        RecordKind::Device => "un dispositivo",
        RecordKind::Loan => "un comodato",
        RecordKind::Session => "un incontro",
        RecordKind::Personal => "dei dati personali",
    }
}

impl ValidationError {
    /// The message in the operator's language.
    pub fn message(&self, lang: Lang) -> String {
        match lang {
            Lang::En => self.to_string(),
            Lang::It => self.italian(),
        }
    }

    fn italian(&self) -> String {
        use ValidationError as V;
        let f = |field: &str| field_it(field).to_string();
        match self {
            V::Required { field } => format!("manca {}: è obbligatorio", f(field)),
            V::TooLong { field, max } => format!("{} supera i {max} caratteri", f(field)),
            V::ControlCharacters { field } => format!("{} contiene a capo o caratteri di controllo", f(field)),
            V::TooMany { field, max } => format!("{}: più di {max} voci", f(field)),
            V::InvalidDate { field } => format!("{} non è una data nella forma AAAA-MM-GG", f(field)),
            V::InvalidDateTime { field } => {
                format!("{} non è una data e un'ora nella forma AAAA-MM-GGTHH:MM", f(field))
            }
            V::DateInFuture { field } => format!("{} è nel futuro", f(field)),
            V::InvalidEmail { field } => format!("{} non è un indirizzo e-mail valido", f(field)),
            V::InvalidPhone { field } => {
                format!("{} non è un numero di telefono valido (solo cifre, spazi, + - / ( ))", f(field))
            }
            V::WrongReference { field, expected } => {
                format!("{} non si riferisce a {}", f(field), kind_it(*expected))
            }
            V::BirthYearOutOfRange { min, max } => format!("l'anno di nascita deve essere tra {min} e {max}"),
            V::MinorWithoutGuardian { born } => {
                format!("la persona è minorenne (nata nel {born}): serve il contatto di un genitore o tutore")
            }
            V::GuardianWithoutContact => "il contatto del tutore richiede un telefono o un'e-mail".into(),
            V::ConsentNeedsGuardian { born, age_min } => format!(
                "la persona ha meno di {age_min} anni (nata nel {born}): il consenso al trattamento dei dati \
                 lo dà un genitore o tutore"
            ),
            V::EndNotAfterStart => "la fine deve essere dopo l'inizio".into(),
            V::SessionTooLong { max_hours } => {
                format!("l'incontro dura più di {max_hours} ore: controlla inizio e fine")
            }
            V::ExpectedReturnBeforeStart => "la data di restituzione prevista è prima della data di inizio".into(),
            V::ReturnedBeforeStart => "la data di restituzione è prima della data di inizio".into(),
            V::ReturnConditionWithoutReturn => {
                "lo stato alla restituzione è indicato ma il dispositivo non è stato restituito".into()
            }
            V::HeadcountOnlyForPublicMeetings => {
                "il numero di presenti anonimi si registra solo per gli incontri pubblici".into()
            }
            V::HeadcountTooLarge { max } => format!("il numero di presenti supera {max}"),
            V::DuplicateParticipant { attendee } => {
                format!("la persona {attendee} compare più volte tra i partecipanti")
            }
            V::MediatorRequired => "una mediazione richiede il nome del mediatore".into(),
            V::DeviceRetired => "il dispositivo è dismesso e non si può prestare".into(),
            V::DeviceInRepair => "il dispositivo è in riparazione e non si può prestare".into(),
            V::DeviceBroken => "il dispositivo è guasto e non si può prestare".into(),
            V::DeviceAlreadyLent { open_loans } => format!(
                "il dispositivo è già in comodato ({open_loans} comodati aperti): registra prima la restituzione"
            ),
            V::DeviceLentWithoutLoan => "il dispositivo risulta in comodato ma nessun suo comodato è aperto \
                                         (due sedi hanno risolto diversamente un conflitto): vedi `tessera conflicts list`"
                .into(),
            V::AgreementNotSigned => {
                "il contratto di comodato d'uso va firmato prima di consegnare il dispositivo".into()
            }
        }
    }
}

type Check = Result<(), ValidationError>;

/// Checks the rules that concern one record alone. `today` is the operator's date: a
/// person's age, and dates that may not be in the future, depend on it.
pub fn validate(record: &Record, today: NaiveDate) -> Check {
    match record {
        Record::Site(site) => validate_site(site),
        Record::Attendee(attendee) => validate_attendee(attendee, today),
        Record::Device(device) => validate_device(device),
        Record::Loan(loan) => validate_loan(loan, today),
        Record::Session(session) => validate_session(session),
        // Checked as part of its attendee, before the node splits it.
        Record::Personal(_) => Ok(()),
    }
}

/// Checks that `device` may be lent now by `loan`: it is not retired, in repair, broken
/// or already lent (`open_loans_of_device` counts the open loans of this device on
/// record, this one excluded), and the comodato agreement is signed. Run [`validate`]
/// on the loan too: this checks only what needs the device.
pub fn validate_new_loan(loan: &Loan, device: &Device, open_loans_of_device: usize) -> Check {
    match device.status {
        DeviceStatus::Retired => return Err(ValidationError::DeviceRetired),
        DeviceStatus::InRepair => return Err(ValidationError::DeviceInRepair),
        DeviceStatus::Lent if open_loans_of_device == 0 => {
            return Err(ValidationError::DeviceLentWithoutLoan)
        }
        DeviceStatus::Lent => {
            return Err(ValidationError::DeviceAlreadyLent { open_loans: open_loans_of_device })
        }
        DeviceStatus::InStock => {}
    }
    if device.condition == DeviceCondition::Broken {
        return Err(ValidationError::DeviceBroken);
    }
    if open_loans_of_device > 0 {
        return Err(ValidationError::DeviceAlreadyLent { open_loans: open_loans_of_device });
    }
    if !loan.agreement_signed {
        return Err(ValidationError::AgreementNotSigned);
    }
    Ok(())
}

fn validate_site(site: &Site) -> Check {
    name(&site.name, "site name")?;
    name(&site.partner, "partner")?;
    optional_line(&site.address, "address", SHORT_TEXT_CHARS_MAX)?;
    optional_notes(&site.opening_hours, "opening hours", SHORT_TEXT_CHARS_MAX)?;
    Ok(())
}

fn validate_attendee(attendee: &Attendee, today: NaiveDate) -> Check {
    name(&attendee.given_name, "given name")?;
    name(&attendee.family_name, "family name")?;
    let this_year = u16::try_from(today.year()).unwrap_or(u16::MAX);
    if attendee.birth_year < BIRTH_YEAR_MIN || attendee.birth_year > this_year {
        return Err(ValidationError::BirthYearOutOfRange { min: BIRTH_YEAR_MIN, max: this_year });
    }
    let age = today.year() - i32::from(attendee.birth_year);
    let born = attendee.birth_year;
    match &attendee.guardian {
        Some(guardian) => validate_guardian(guardian)?,
        None if age < ADULT_AGE => return Err(ValidationError::MinorWithoutGuardian { born }),
        None => {}
    }
    validate_consent(&attendee.consent, today)?;
    if age < CONSENT_SELF_AGE_MIN && attendee.consent.given_by == ConsentBy::Attendee {
        return Err(ValidationError::ConsentNeedsGuardian { born, age_min: CONSENT_SELF_AGE_MIN });
    }
    optional_phone(attendee.phone.as_deref(), "phone")?;
    optional_email(attendee.email.as_deref(), "e-mail")?;
    optional_line(attendee.school.as_deref().unwrap_or(""), "school", SHORT_TEXT_CHARS_MAX)?;
    optional_line(attendee.class.as_deref().unwrap_or(""), "class", NAME_CHARS_MAX)?;
    list(&attendee.languages, "languages", LANGUAGES_MAX)?;
    for language in &attendee.languages {
        name_max(language, "language", LANGUAGE_CHARS_MAX)?;
    }
    optional_line(attendee.referent_operator.as_deref().unwrap_or(""), "referent operator", NAME_CHARS_MAX)?;
    optional_notes(&attendee.plan_notes, "intervention plan notes", NOTES_CHARS_MAX)?;
    reference(attendee.site, "site", RecordKind::Site)?;
    if let Some(kept) = attendee.merged_into {
        reference(kept, "merged into", RecordKind::Attendee)?;
    }
    list(&attendee.not_duplicates_of, "not a duplicate of", NOT_DUPLICATES_MAX)?;
    for other in &attendee.not_duplicates_of {
        reference(*other, "not a duplicate of", RecordKind::Attendee)?;
    }
    Ok(())
}

fn validate_guardian(guardian: &Guardian) -> Check {
    name(&guardian.name, "guardian name")?;
    if guardian.phone.as_deref().unwrap_or("").trim().is_empty()
        && guardian.email.as_deref().unwrap_or("").trim().is_empty()
    {
        return Err(ValidationError::GuardianWithoutContact);
    }
    optional_phone(guardian.phone.as_deref(), "guardian phone")?;
    optional_email(guardian.email.as_deref(), "guardian e-mail")?;
    Ok(())
}

fn validate_consent(consent: &Consent, today: NaiveDate) -> Check {
    let date = date(&consent.date, "consent date")?;
    if date > today {
        return Err(ValidationError::DateInFuture { field: "consent date" });
    }
    name(&consent.operator, "consent operator")?;
    Ok(())
}

fn validate_device(device: &Device) -> Check {
    name(&device.asset_tag, "asset tag")?;
    optional_line(&device.model, "model", NAME_CHARS_MAX)?;
    optional_line(&device.serial, "serial number", NAME_CHARS_MAX)?;
    reference(device.site, "site", RecordKind::Site)?;
    Ok(())
}

fn validate_loan(loan: &Loan, today: NaiveDate) -> Check {
    reference(loan.device, "device", RecordKind::Device)?;
    reference(loan.attendee, "attendee", RecordKind::Attendee)?;
    reference(loan.site, "site", RecordKind::Site)?;
    let start = date(&loan.start, "start date")?;
    let expected = date(&loan.expected_return, "expected return date")?;
    if expected < start {
        return Err(ValidationError::ExpectedReturnBeforeStart);
    }
    match &loan.returned_at {
        Some(returned) => {
            let returned = date(returned, "return date")?;
            if returned < start {
                return Err(ValidationError::ReturnedBeforeStart);
            }
            if returned > today {
                return Err(ValidationError::DateInFuture { field: "return date" });
            }
        }
        None if loan.return_condition.is_some() => return Err(ValidationError::ReturnConditionWithoutReturn),
        None => {}
    }
    optional_line(loan.closed_reason.as_deref().unwrap_or(""), "reason for closing", SHORT_TEXT_CHARS_MAX)?;
    Ok(())
}

fn validate_session(session: &Session) -> Check {
    reference(session.site, "site", RecordKind::Site)?;
    let start = parse_date_time(&session.start).ok_or(ValidationError::InvalidDateTime { field: "start" })?;
    let end = parse_date_time(&session.end).ok_or(ValidationError::InvalidDateTime { field: "end" })?;
    if end <= start {
        return Err(ValidationError::EndNotAfterStart);
    }
    if (end - start).num_minutes() > SESSION_HOURS_MAX * 60 {
        return Err(ValidationError::SessionTooLong { max_hours: SESSION_HOURS_MAX });
    }
    optional_line(&session.topic, "topic", SHORT_TEXT_CHARS_MAX)?;
    optional_line(&session.facilitator, "facilitator", NAME_CHARS_MAX)?;
    optional_line(&session.language, "language", LANGUAGE_CHARS_MAX)?;
    optional_line(session.cancelled.as_deref().unwrap_or(""), "reason for cancelling", SHORT_TEXT_CHARS_MAX)?;
    match &session.mediator {
        Some(mediator) => name(mediator, "mediator")?,
        None if session.kind == SessionKind::Mediation => return Err(ValidationError::MediatorRequired),
        None => {}
    }
    if session.headcount > 0 && session.kind != SessionKind::PublicMeeting {
        return Err(ValidationError::HeadcountOnlyForPublicMeetings);
    }
    if session.headcount > HEADCOUNT_MAX {
        return Err(ValidationError::HeadcountTooLarge { max: HEADCOUNT_MAX });
    }
    list(&session.participants, "participants", PARTICIPANTS_MAX)?;
    let mut seen = std::collections::BTreeSet::new();
    for participant in &session.participants {
        reference(participant.attendee, "participant", RecordKind::Attendee)?;
        if !seen.insert(participant.attendee) {
            return Err(ValidationError::DuplicateParticipant { attendee: participant.attendee.short() });
        }
    }
    Ok(())
}

/// A required one-line name of at most [`NAME_CHARS_MAX`] characters.
fn name(value: &str, field: &'static str) -> Check {
    name_max(value, field, NAME_CHARS_MAX)
}

fn name_max(value: &str, field: &'static str, max: usize) -> Check {
    if value.trim().is_empty() {
        return Err(ValidationError::Required { field });
    }
    optional_line(value, field, max)
}

/// An optional one-line text: no line breaks or control characters.
fn optional_line(value: &str, field: &'static str, max: usize) -> Check {
    if value.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacters { field });
    }
    length(value, field, max)
}

/// Optional text that may span lines (tabs and line breaks allowed).
fn optional_notes(value: &str, field: &'static str, max: usize) -> Check {
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(ValidationError::ControlCharacters { field });
    }
    length(value, field, max)
}

fn length(value: &str, field: &'static str, max: usize) -> Check {
    if chars(value) > max {
        return Err(ValidationError::TooLong { field, max });
    }
    Ok(())
}

fn list<T>(items: &[T], field: &'static str, max: usize) -> Check {
    if items.len() > max {
        return Err(ValidationError::TooMany { field, max });
    }
    Ok(())
}

fn date(value: &str, field: &'static str) -> Result<NaiveDate, ValidationError> {
    parse_date(value).ok_or(ValidationError::InvalidDate { field })
}

fn reference(value: RecordRef, field: &'static str, expected: RecordKind) -> Check {
    if value.kind() != Some(expected) {
        return Err(ValidationError::WrongReference { field, expected });
    }
    Ok(())
}

fn optional_email(value: Option<&str>, field: &'static str) -> Check {
    let Some(value) = value else { return Ok(()) };
    if chars(value) > EMAIL_CHARS_MAX {
        return Err(ValidationError::TooLong { field, max: EMAIL_CHARS_MAX });
    }
    if !email_shape_ok(value) {
        return Err(ValidationError::InvalidEmail { field });
    }
    Ok(())
}

/// One `@`, something before it, a domain with a dot inside, no spaces. Deliverability
/// is not checked: only typing mistakes.
fn email_shape_ok(value: &str) -> bool {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = value.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

fn optional_phone(value: Option<&str>, field: &'static str) -> Check {
    let Some(value) = value else { return Ok(()) };
    if chars(value) > PHONE_CHARS_MAX {
        return Err(ValidationError::TooLong { field, max: PHONE_CHARS_MAX });
    }
    let trimmed = value.trim();
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let signs_ok = body.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'));
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !signs_ok || !(PHONE_DIGITS_MIN..=PHONE_DIGITS_MAX).contains(&digits) {
        return Err(ValidationError::InvalidPhone { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::vocab::Lang;

    /// Every field a rule can name has its Italian name, and no Italian message is the
    /// English one.
    #[test]
    fn every_field_and_rule_has_its_italian_words() {
        let source = include_str!("validate.rs");
        let rules = &source[..source.find("#[cfg(test)]").unwrap()];
        // The rules, without the table and the Italian messages themselves.
        let code = [
            &rules[..rules.find("pub const FIELD_NAMES").unwrap()],
            &rules[rules.find("type Check =").unwrap()..],
        ]
        .concat();
        // The field names the rules pass: string literals right after a `field` or as
        // the second argument of the small checkers (`name(&x, "given name")`).
        let mut named = std::collections::BTreeSet::new();
        for (i, _) in code.match_indices(", \"") {
            let rest = &code[i + 3..];
            let Some(end) = rest.find('"') else { continue };
            let word = &rest[..end];
            let next = rest[end + 1..].trim_start();
            let field_like =
                word.len() >= 3 && word.chars().all(|c| c.is_ascii_lowercase() || c == ' ' || c == '-');
            if field_like && (next.starts_with(')') || next.starts_with(',')) {
                named.insert(word);
            }
        }
        for (i, _) in code.match_indices("field: \"") {
            let rest = &code[i + 8..];
            named.insert(&rest[..rest.find('"').unwrap()]);
        }
        assert!(named.len() > 30, "{named:?}");
        for field in &named {
            assert_ne!(field_it(field), *field, "`{field}` has no Italian name in FIELD_NAMES");
        }
        use ValidationError as V;
        let errors = [
            V::Required { field: "given name" },
            V::TooLong { field: "school", max: 200 },
            V::ControlCharacters { field: "topic" },
            V::TooMany { field: "languages", max: 10 },
            V::InvalidDate { field: "start date" },
            V::InvalidDateTime { field: "start" },
            V::DateInFuture { field: "consent date" },
            V::InvalidEmail { field: "e-mail" },
            V::InvalidPhone { field: "guardian phone" },
            V::WrongReference { field: "site", expected: RecordKind::Site },
            V::BirthYearOutOfRange { min: 1900, max: 2026 },
            V::MinorWithoutGuardian { born: 2014 },
            V::GuardianWithoutContact,
            V::ConsentNeedsGuardian { born: 2014, age_min: 14 },
            V::EndNotAfterStart,
            V::SessionTooLong { max_hours: 12 },
            V::ExpectedReturnBeforeStart,
            V::ReturnedBeforeStart,
            V::ReturnConditionWithoutReturn,
            V::HeadcountOnlyForPublicMeetings,
            V::HeadcountTooLarge { max: 10 },
            V::DuplicateParticipant { attendee: "A1".into() },
            V::MediatorRequired,
            V::DeviceRetired,
            V::DeviceInRepair,
            V::DeviceBroken,
            V::DeviceAlreadyLent { open_loans: 1 },
            V::DeviceLentWithoutLoan,
            V::AgreementNotSigned,
        ];
        for e in &errors {
            let it = e.message(Lang::It);
            assert_ne!(it, e.message(Lang::En));
            for english in [" the ", "the ", " is ", " must ", " required"] {
                assert!(!it.starts_with(english.trim_start()) && !it.contains(english), "English in `{it}`");
            }
        }
    }

    use super::*;
    use crate::model::samples::*;
    use crate::model::Participant;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
    }

    fn hub() -> RecordRef {
        r(RecordKind::Site, 1)
    }

    /// Personal values used in the samples: none may appear in an error.
    const PERSONAL: [&str; 8] = [
        "Giulia",
        "Esempio",
        "Ahmed",
        "Prova",
        "333 0000000",
        "genitore@example.invalid",
        "0371 000000",
        "Mario",
    ];

    /// Checks the variant, that the message names the field, and that neither the
    /// message nor the Debug output carries a personal value.
    #[track_caller]
    fn assert_error(record: Record, expected: ValidationError) {
        let err = validate(&record, today()).unwrap_err();
        assert_eq!(err, expected);
        let message = err.to_string();
        assert!(message.contains(err.field()), "{message:?} should name {:?}", err.field());
        let debug = format!("{err:?}");
        for value in PERSONAL {
            assert!(
                !message.contains(value) && !debug.contains(value),
                "{message:?} / {debug} leaks {value:?}"
            );
        }
    }

    fn attendee(change: impl FnOnce(&mut Attendee)) -> Record {
        let mut a = student("Giulia", "Esempio", hub());
        change(&mut a);
        Record::Attendee(a)
    }

    fn loan_with(change: impl FnOnce(&mut Loan)) -> Record {
        let mut l =
            loan(r(RecordKind::Device, 1), r(RecordKind::Attendee, 1), hub(), "2025-02-01", "2025-06-30");
        change(&mut l);
        Record::Loan(l)
    }

    fn session_with(change: impl FnOnce(&mut Session)) -> Record {
        let mut s = session(hub(), SessionKind::Course, "2025-03-03T15:00", "2025-03-03T17:00");
        s.participants = vec![Participant { attendee: r(RecordKind::Attendee, 1), present: true }];
        change(&mut s);
        Record::Session(s)
    }

    #[test]
    fn the_samples_are_valid() {
        for record in one_of_each() {
            assert_eq!(validate(&record, today()), Ok(()), "{:?}", record.kind());
        }
        assert_eq!(validate(&Record::Attendee(adult("Ahmed", "Prova", hub())), today()), Ok(()));
    }

    #[test]
    fn names_are_required() {
        assert_error(
            attendee(|a| a.given_name = "  ".into()),
            ValidationError::Required { field: "given name" },
        );
        assert_error(attendee(|a| a.family_name.clear()), ValidationError::Required { field: "family name" });
        let mut site = site("", "Cooperativa Esempio");
        assert_error(Record::Site(site.clone()), ValidationError::Required { field: "site name" });
        site.name = "Polo".into();
        site.partner = " ".into();
        assert_error(Record::Site(site), ValidationError::Required { field: "partner" });
    }

    #[test]
    fn asset_tag_is_required() {
        let mut d = device(hub());
        d.asset_tag.clear();
        assert_error(Record::Device(d), ValidationError::Required { field: "asset tag" });
    }

    #[test]
    fn references_must_point_to_the_right_kind() {
        let mut d = device(hub());
        d.site = r(RecordKind::Attendee, 1);
        assert_error(
            Record::Device(d),
            ValidationError::WrongReference { field: "site", expected: RecordKind::Site },
        );
        assert_error(
            loan_with(|l| l.attendee = r(RecordKind::Device, 1)),
            ValidationError::WrongReference { field: "attendee", expected: RecordKind::Attendee },
        );
        assert_error(
            session_with(|s| s.participants[0].attendee = r(RecordKind::Loan, 1)),
            ValidationError::WrongReference { field: "participant", expected: RecordKind::Attendee },
        );
    }

    #[test]
    fn a_minor_needs_a_guardian_contact() {
        assert_error(attendee(|a| a.guardian = None), ValidationError::MinorWithoutGuardian { born: 2012 });
        let err = validate(&attendee(|a| a.guardian = None), today()).unwrap_err();
        assert_eq!(err.to_string(), "the attendee is a minor (born 2012): a guardian contact is required");
        // An adult (18 this year) does not.
        let adult_now = attendee(|a| {
            a.guardian = None;
            a.birth_year = 2007;
            a.consent.given_by = ConsentBy::Attendee;
        });
        assert_eq!(validate(&adult_now, today()), Ok(()));
    }

    #[test]
    fn a_guardian_needs_a_phone_or_an_e_mail() {
        assert_error(
            attendee(|a| {
                let g = a.guardian.as_mut().unwrap();
                g.phone = None;
                g.email = Some(" ".into());
            }),
            ValidationError::GuardianWithoutContact,
        );
        assert_error(
            attendee(|a| a.guardian.as_mut().unwrap().name.clear()),
            ValidationError::Required { field: "guardian name" },
        );
    }

    #[test]
    fn a_young_child_cannot_consent_alone() {
        assert_error(
            attendee(|a| a.consent.given_by = ConsentBy::Attendee),
            ValidationError::ConsentNeedsGuardian { born: 2012, age_min: 14 },
        );
        // At 14 they may.
        let fourteen = attendee(|a| {
            a.birth_year = 2011;
            a.consent.given_by = ConsentBy::Attendee;
        });
        assert_eq!(validate(&fourteen, today()), Ok(()));
    }

    #[test]
    fn birth_year_must_be_plausible() {
        let expected = ValidationError::BirthYearOutOfRange { min: 1900, max: 2025 };
        assert_error(attendee(|a| a.birth_year = 1899), expected.clone());
        assert_error(attendee(|a| a.birth_year = 2026), expected);
    }

    #[test]
    fn consent_date_must_be_a_past_date() {
        assert_error(
            attendee(|a| a.consent.date = "10/01/2025".into()),
            ValidationError::InvalidDate { field: "consent date" },
        );
        assert_error(
            attendee(|a| a.consent.date = "2025-06-16".into()),
            ValidationError::DateInFuture { field: "consent date" },
        );
        assert_error(
            attendee(|a| a.consent.operator.clear()),
            ValidationError::Required { field: "consent operator" },
        );
    }

    #[test]
    fn e_mail_must_look_like_one() {
        for bad in [
            "giulia.esempio",
            "giulia@",
            "@example.it",
            "giulia esempio@example.it",
            "a@b@c.it",
            "a@example.",
        ] {
            assert_error(
                attendee(|a| a.email = Some(bad.into())),
                ValidationError::InvalidEmail { field: "e-mail" },
            );
        }
        assert_error(
            attendee(|a| a.guardian.as_mut().unwrap().email = Some("genitore at example".into())),
            ValidationError::InvalidEmail { field: "guardian e-mail" },
        );
        assert_eq!(
            validate(&attendee(|a| a.email = Some("g.esempio+corso@example.it".into())), today()),
            Ok(())
        );
    }

    #[test]
    fn phone_must_look_like_one() {
        for bad in ["chiamare la mamma", "12345", "+39 333 000 000 000 000 0", "333-000000x"] {
            assert_error(
                attendee(|a| a.phone = Some(bad.into())),
                ValidationError::InvalidPhone { field: "phone" },
            );
        }
        assert_eq!(validate(&attendee(|a| a.phone = Some("+39 (0371) 123-456".into())), today()), Ok(()));
    }

    #[test]
    fn text_lengths_are_limited() {
        assert_error(
            attendee(|a| a.given_name = "G".repeat(NAME_CHARS_MAX + 1)),
            ValidationError::TooLong { field: "given name", max: NAME_CHARS_MAX },
        );
        // Characters are counted, not bytes.
        assert_eq!(validate(&attendee(|a| a.given_name = "à".repeat(NAME_CHARS_MAX)), today()), Ok(()));
        assert_error(
            attendee(|a| a.plan_notes = "n".repeat(NOTES_CHARS_MAX + 1)),
            ValidationError::TooLong { field: "intervention plan notes", max: NOTES_CHARS_MAX },
        );
        assert_eq!(validate(&attendee(|a| a.plan_notes = "riga uno\nriga due".into()), today()), Ok(()));
        assert_error(
            attendee(|a| a.family_name = "Esempio\nAltro".into()),
            ValidationError::ControlCharacters { field: "family name" },
        );
        assert_error(
            attendee(|a| a.email = Some(format!("{}@example.it", "g".repeat(EMAIL_CHARS_MAX)))),
            ValidationError::TooLong { field: "e-mail", max: EMAIL_CHARS_MAX },
        );
    }

    #[test]
    fn list_lengths_are_limited() {
        assert_error(
            attendee(|a| a.languages = vec!["lingua".into(); LANGUAGES_MAX + 1]),
            ValidationError::TooMany { field: "languages", max: LANGUAGES_MAX },
        );
        assert_error(
            attendee(|a| a.languages = vec![String::new()]),
            ValidationError::Required { field: "language" },
        );
        assert_error(
            session_with(|s| {
                s.participants = (0..=PARTICIPANTS_MAX)
                    .map(|n| Participant {
                        attendee: RecordRef(crate::kind::new_doc_id(RecordKind::Attendee, {
                            let mut b = [0u8; 15];
                            b[..8].copy_from_slice(&(n as u64).to_be_bytes());
                            b
                        })),
                        present: true,
                    })
                    .collect()
            }),
            ValidationError::TooMany { field: "participants", max: PARTICIPANTS_MAX },
        );
    }

    #[test]
    fn session_end_must_follow_start() {
        assert_error(session_with(|s| s.end = "2025-03-03T15:00".into()), ValidationError::EndNotAfterStart);
        assert_error(session_with(|s| s.end = "2025-03-03T14:00".into()), ValidationError::EndNotAfterStart);
        assert_error(
            session_with(|s| s.end = "2025-03-04T17:00".into()),
            ValidationError::SessionTooLong { max_hours: SESSION_HOURS_MAX },
        );
        assert_error(
            session_with(|s| s.start = "2025-03-03 15:00".into()),
            ValidationError::InvalidDateTime { field: "start" },
        );
        assert_error(
            session_with(|s| s.end = "17:00".into()),
            ValidationError::InvalidDateTime { field: "end" },
        );
    }

    #[test]
    fn loan_dates_must_be_dates_in_order() {
        assert_error(
            loan_with(|l| l.start = "2025-13-01".into()),
            ValidationError::InvalidDate { field: "start date" },
        );
        assert_error(
            loan_with(|l| l.expected_return = "giugno".into()),
            ValidationError::InvalidDate { field: "expected return date" },
        );
        assert_error(
            loan_with(|l| l.expected_return = "2025-01-31".into()),
            ValidationError::ExpectedReturnBeforeStart,
        );
        assert_error(
            loan_with(|l| l.returned_at = Some("2025-01-31".into())),
            ValidationError::ReturnedBeforeStart,
        );
        assert_error(
            loan_with(|l| l.returned_at = Some("2025-06-16".into())),
            ValidationError::DateInFuture { field: "return date" },
        );
        assert_error(
            loan_with(|l| l.return_condition = Some(DeviceCondition::Good)),
            ValidationError::ReturnConditionWithoutReturn,
        );
        let returned = loan_with(|l| {
            l.returned_at = Some("2025-06-01".into());
            l.return_condition = Some(DeviceCondition::Fair);
        });
        assert_eq!(validate(&returned, today()), Ok(()));
    }

    #[test]
    fn headcount_is_only_for_public_meetings() {
        assert_error(session_with(|s| s.headcount = 30), ValidationError::HeadcountOnlyForPublicMeetings);
        let meeting = session_with(|s| {
            s.kind = SessionKind::PublicMeeting;
            s.headcount = 30;
        });
        assert_eq!(validate(&meeting, today()), Ok(()));
        assert_error(
            session_with(|s| {
                s.kind = SessionKind::PublicMeeting;
                s.headcount = HEADCOUNT_MAX + 1;
            }),
            ValidationError::HeadcountTooLarge { max: HEADCOUNT_MAX },
        );
    }

    #[test]
    fn participants_are_listed_once() {
        let twice = session_with(|s| s.participants.push(s.participants[0].clone()));
        let short = r(RecordKind::Attendee, 1).short();
        assert_error(twice, ValidationError::DuplicateParticipant { attendee: short.clone() });
        let message = validate(&session_with(|s| s.participants.push(s.participants[0].clone())), today())
            .unwrap_err()
            .to_string();
        assert!(message.contains(&short));
    }

    #[test]
    fn mediation_needs_a_mediator() {
        assert_error(session_with(|s| s.kind = SessionKind::Mediation), ValidationError::MediatorRequired);
    }

    #[test]
    fn a_new_loan_needs_a_free_working_device_and_a_signed_agreement() {
        let Record::Loan(new_loan) = loan_with(|_| {}) else { unreachable!() };
        let free = device(hub());
        assert_eq!(validate_new_loan(&new_loan, &free, 0), Ok(()));

        let cases = [
            (Device { status: DeviceStatus::Retired, ..free.clone() }, 0, ValidationError::DeviceRetired),
            (Device { status: DeviceStatus::InRepair, ..free.clone() }, 0, ValidationError::DeviceInRepair),
            (Device { condition: DeviceCondition::Broken, ..free.clone() }, 0, ValidationError::DeviceBroken),
            (free.clone(), 1, ValidationError::DeviceAlreadyLent { open_loans: 1 }),
            (
                Device { status: DeviceStatus::Lent, ..free.clone() },
                0,
                ValidationError::DeviceLentWithoutLoan,
            ),
        ];
        for (device, open, expected) in cases {
            let err = validate_new_loan(&new_loan, &device, open).unwrap_err();
            assert_eq!(err, expected);
            assert!(err.to_string().contains(err.field()));
        }
        let unsigned = Loan { agreement_signed: false, ..new_loan };
        let err = validate_new_loan(&unsigned, &free, 0).unwrap_err();
        assert_eq!(err, ValidationError::AgreementNotSigned);
        assert!(err.to_string().contains(err.field()));
    }
}
