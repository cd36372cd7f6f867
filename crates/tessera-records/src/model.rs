//! The records of Tessera as Rust values: sites, attendees, devices, loans (comodato
//! d'uso) and sessions, and [`Record`], the one of them a document holds.
//!
//! Each type maps to an automerge map field by field (autosurgeon derives), so that two
//! hubs editing different fields of the same record offline both keep their edit. The
//! values are plain data: dates are ISO strings (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`) so
//! that a badly typed date still loads and is reported by [`crate::validate()`] instead of
//! making a whole record unreadable; they are parsed with chrono only when computing.
//! References to other records are [`RecordRef`]s, stored as the 32 hex digits of the
//! id. Personal data lives only in [`Attendee`]: loans and sessions name a person by id,
//! so that erasing a person means erasing one document.
//!
//! Optional fields (options, lists, free text that may be empty) hydrate to their
//! default when absent, so documents written before such a field existed still load.

use std::fmt;

use autosurgeon::{Hydrate, Reconcile};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use tessera_log::DocId;

use crate::kind::{kind_of, parse_doc_id, short_id, RecordKind};
use crate::vocab::{
    AttendeeRole, Audience, ConsentBy, DeviceCondition, DeviceKind, DeviceOrigin, DeviceStatus, SessionKind,
    SessionMode, SiteKind, Topic,
};

/// The stored shape of a date.
pub const DATE_FORMAT: &str = "%Y-%m-%d";
/// The stored shape of a date and time (local time of the site, minutes).
pub const DATE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// A date in the stored shape `YYYY-MM-DD` exactly (no sign, no extra digits).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let shape_ok = text.len() == 10
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, DATE_FORMAT).ok()
}

/// A date and time in the stored shape `YYYY-MM-DDTHH:MM` exactly.
pub fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let (date, time) = (text.get(..10)?, text.get(10..)?);
    parse_date(date)?;
    let shape_ok = time.len() == 6
        && time.bytes().enumerate().all(|(i, b)| match i {
            0 => b == b'T',
            3 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDateTime::parse_from_str(text, DATE_TIME_FORMAT).ok()
}

pub fn format_date(date: NaiveDate) -> String {
    date.format(DATE_FORMAT).to_string()
}

pub fn format_date_time(time: NaiveDateTime) -> String {
    time.format(DATE_TIME_FORMAT).to_string()
}

/// A reference to another record: its id, stored as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordRef(pub DocId);

impl RecordRef {
    pub fn id(self) -> DocId {
        self.0
    }
    /// The kind of record referred to, from the id's kind byte.
    pub fn kind(self) -> Option<RecordKind> {
        kind_of(&self.0)
    }
    pub fn short(self) -> String {
        short_id(&self.0)
    }
}

impl From<DocId> for RecordRef {
    fn from(id: DocId) -> Self {
        RecordRef(id)
    }
}

impl fmt::Debug for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordRef({})", self.0.to_hex())
    }
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl Serialize for RecordRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_hex())
    }
}

impl<'de> Deserialize<'de> for RecordRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        parse_doc_id(&hex)
            .map(RecordRef)
            .ok_or_else(|| serde::de::Error::custom("not a record id (32 hex digits)"))
    }
}

impl Reconcile for RecordRef {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.0.to_hex())
    }
}

impl Hydrate for RecordRef {
    fn hydrate_string(hex: &str) -> Result<Self, autosurgeon::HydrateError> {
        parse_doc_id(hex)
            .map(RecordRef)
            .ok_or_else(|| autosurgeon::HydrateError::unexpected("a record id", "other text".to_string()))
    }
}

/// A community hub, help desk, school or library where the programme works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Site {
    pub name: String,
    pub kind: SiteKind,
    /// The partner organisation running the site: its name, or its partner key in hex.
    pub partner: String,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub address: String,
    /// Free text, e.g. "lun-ven 14:30-18:30".
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub opening_hours: String,
}

/// Who to call about a minor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Guardian {
    pub name: String,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub phone: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub email: Option<String>,
}

/// Consent to data processing (GDPR art. 6 and 8): when, by whom, recorded by which
/// operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Consent {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub given_by: ConsentBy,
    /// The operator who collected the signed form.
    pub operator: String,
}

/// A person the programme serves: a student, a parent, a teacher, a citizen at a help
/// desk. The only record that holds personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Attendee {
    pub given_name: String,
    pub family_name: String,
    /// The year only: enough to tell a minor, less to hold than a birth date.
    pub birth_year: u16,
    pub role: AttendeeRole,
    /// For students (and teachers): the school attended.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub school: Option<String>,
    /// For students: the class, e.g. "2B".
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub class: Option<String>,
    /// Required for minors.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub guardian: Option<Guardian>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub phone: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub email: Option<String>,
    /// Languages spoken, as the operator writes them ("arabo", "italiano").
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub languages: Vec<String>,
    pub consent: Consent,
    /// The operator who follows this person.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub referent_operator: Option<String>,
    /// Notes of the intervention plan ("piano di intervento").
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub plan_notes: String,
    /// The site where the person was registered.
    pub site: RecordRef,
    /// Set when this record was found to be a duplicate and merged into another: the
    /// record stays (history, references) but no longer counts.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub merged_into: Option<RecordRef>,
    /// Attendees an operator checked and found to be other people with the same name and
    /// birth year: never reported as duplicates of this one again.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub not_duplicates_of: Vec<RecordRef>,
    /// The partner that registered the person (its key, hex): its scope holds the
    /// personal details. Set by the node when it writes; `None` in records written
    /// before personal details had a scope of their own.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub registered_by: Option<String>,
    /// The blind index of the person's folded names and birth year ([`match_key`]):
    /// what tells duplicates apart across partners without their names. Set by
    /// [`split_attendee`].
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub match_key: Option<String>,
    /// Set when the person was erased (GDPR art. 17, or a mistaken registration):
    /// what is left is this stub ([`erased_stub`]), never written to a document but
    /// made by the node from the erasure, so reports keep counting anonymously.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub erased: Option<Erased>,
    /// The nonce (hex) the registering partner made this person's id from
    /// (`tessera_log::person_id`): what lets that partner, and only it, erase them.
    /// `None` for people registered before ids were made so.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub id_nonce: Option<String>,
}

/// When and why a person was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Erased {
    /// `YYYY-MM-DD`.
    pub on: String,
    /// `"request"` (art. 17) or `"mistake"` (registered by mistake).
    pub reason: String,
}

impl Erased {
    pub fn new(on: &str, reason: tessera_log::ErasureReason) -> Erased {
        let reason = match reason {
            tessera_log::ErasureReason::Request => "request",
            tessera_log::ErasureReason::Mistake => "mistake",
        };
        Erased { on: on.to_string(), reason: reason.to_string() }
    }
}

/// What stays of an erased attendee: the fields reports count by (birth year, role,
/// site, the partner, a merge), nothing that tells who they were (no name, no match
/// key, no consent operator, no notes).
pub fn erased_stub(card: &Attendee, erased: Erased) -> Attendee {
    Attendee {
        given_name: String::new(),
        family_name: String::new(),
        birth_year: card.birth_year,
        role: card.role,
        school: None,
        class: None,
        guardian: None,
        phone: None,
        email: None,
        languages: Vec::new(),
        consent: Consent {
            date: card.consent.date.clone(),
            given_by: card.consent.given_by,
            operator: String::new(),
        },
        referent_operator: None,
        plan_notes: String::new(),
        site: card.site,
        merged_into: card.merged_into,
        not_duplicates_of: Vec::new(),
        registered_by: card.registered_by.clone(),
        match_key: None,
        erased: Some(erased),
        id_nonce: None,
    }
}

impl Attendee {
    /// Whether this is what stays of an erased person.
    pub fn is_erased(&self) -> bool {
        self.erased.is_some()
    }

    pub fn is_merged(&self) -> bool {
        self.merged_into.is_some()
    }

    /// Whether the personal details are not readable here: a person registered by
    /// another partner (only the fields every hub reads are known).
    pub fn is_reserved(&self) -> bool {
        self.given_name.is_empty() && self.family_name.is_empty() && self.match_key.is_some()
    }
}

/// An attendee's personal details: what only the registering partner's devices (and
/// those it grants) read. Kept in a document of its own ([`personal_doc_id`]), beside
/// the attendee's, which holds the rest ([`split_attendee`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate, Default)]
pub struct PersonalDetails {
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub school: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub class: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub guardian: Option<Guardian>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub phone: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub email: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub languages: Vec<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub referent_operator: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub plan_notes: String,
}

/// The id of the personal-details document of attendee `attendee`: the same random
/// bytes, the kind byte of [`RecordKind::Personal`].
pub fn personal_doc_id(attendee: &DocId) -> DocId {
    let mut id = attendee.0;
    id[0] = RecordKind::Personal.byte();
    DocId(id)
}

/// The attendee a personal-details document belongs to.
pub fn attendee_of_personal(personal: &DocId) -> DocId {
    let mut id = personal.0;
    id[0] = RecordKind::Attendee.byte();
    DocId(id)
}

const MATCH_KEY_CONTEXT: &str = "tessera 2026-12 attendee match key v1";

/// The blind index of a person: 16 bytes (hex) of BLAKE3 over the folded given and
/// family names in sorted order (forms often swap them) and the birth year. Equal for
/// the same name and year, and reveals neither to someone who does not guess both.
pub fn match_key(given: &str, family: &str, birth_year: u16) -> String {
    let (given, family) = (crate::text::fold(given), crate::text::fold(family));
    let (first, second) = if given <= family { (given, family) } else { (family, given) };
    let mut hasher = blake3::Hasher::new_derive_key(MATCH_KEY_CONTEXT);
    hasher.update(first.as_bytes());
    hasher.update(&[0]);
    hasher.update(second.as_bytes());
    hasher.update(&[0]);
    hasher.update(&birth_year.to_be_bytes());
    hasher.finalize().as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits an attendee into what every hub reads (the attendee with its personal
/// fields emptied, its match key set) and its personal details.
pub fn split_attendee(attendee: &Attendee) -> (Attendee, PersonalDetails) {
    let a = attendee.clone();
    let personal = PersonalDetails {
        given_name: a.given_name,
        family_name: a.family_name,
        school: a.school,
        class: a.class,
        guardian: a.guardian,
        phone: a.phone,
        email: a.email,
        languages: a.languages,
        referent_operator: a.referent_operator,
        plan_notes: a.plan_notes,
    };
    let card = Attendee {
        given_name: String::new(),
        family_name: String::new(),
        school: None,
        class: None,
        guardian: None,
        phone: None,
        email: None,
        languages: Vec::new(),
        referent_operator: None,
        plan_notes: String::new(),
        match_key: Some(match_key(&personal.given_name, &personal.family_name, attendee.birth_year)),
        ..attendee.clone()
    };
    (card, personal)
}

/// The attendee from what every hub reads and, when readable here, its personal
/// details. Without them the attendee [`Attendee::is_reserved`] (unless it was written
/// before personal details had their own document, and holds them itself).
pub fn join_attendee(card: Attendee, personal: Option<PersonalDetails>) -> Attendee {
    match personal {
        None => card,
        Some(p) => Attendee {
            given_name: p.given_name,
            family_name: p.family_name,
            school: p.school,
            class: p.class,
            guardian: p.guardian,
            phone: p.phone,
            email: p.email,
            languages: p.languages,
            referent_operator: p.referent_operator,
            plan_notes: p.plan_notes,
            ..card
        },
    }
}

/// A device of the programme's inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Device {
    /// The label stuck on the device ("LO-0042").
    pub asset_tag: String,
    pub kind: DeviceKind,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub model: String,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub serial: String,
    pub origin: DeviceOrigin,
    pub condition: DeviceCondition,
    pub status: DeviceStatus,
    /// The site that holds the device.
    pub site: RecordRef,
}

/// A free loan of a device to an attendee (comodato d'uso).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Loan {
    pub device: RecordRef,
    pub attendee: RecordRef,
    pub site: RecordRef,
    /// `YYYY-MM-DD`.
    pub start: String,
    /// `YYYY-MM-DD`.
    pub expected_return: String,
    /// `YYYY-MM-DD`, once the device is back (or the loan was closed).
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub returned_at: Option<String>,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub return_condition: Option<DeviceCondition>,
    /// The comodato agreement is signed (by the guardian for a minor).
    pub agreement_signed: bool,
    /// Why the loan was closed other than by a return, e.g. by an operator resolving a
    /// device lent twice.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub closed_reason: Option<String>,
}

impl Loan {
    /// Open: neither returned nor closed.
    pub fn is_open(&self) -> bool {
        self.returned_at.is_none() && self.closed_reason.is_none()
    }
}

/// One attendee of a session, and whether they came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Participant {
    /// The key lets two hubs add participants concurrently without overwriting each
    /// other's entries.
    #[key]
    pub attendee: RecordRef,
    pub present: bool,
}

/// A course lesson, public meeting, help-desk appointment, school lab or mediation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Session {
    pub site: RecordRef,
    pub kind: SessionKind,
    /// Free text ("SPID per over 65").
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub topic: String,
    /// The main subject, for reports.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub topic_code: Option<Topic>,
    pub audience: Audience,
    /// `YYYY-MM-DDTHH:MM`, local time of the site.
    pub start: String,
    /// `YYYY-MM-DDTHH:MM`, local time of the site.
    pub end: String,
    pub mode: SessionMode,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub facilitator: String,
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub participants: Vec<Participant>,
    /// People counted but not registered (public meetings).
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub headcount: u32,
    /// The language the session is held in.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub language: String,
    /// The language and cultural mediator, if one took part.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub mediator: Option<String>,
    /// Why the session was cancelled, when it was (`session cancel`). A cancelled
    /// session is kept, so its history stays, but counts nowhere: not in reports, not
    /// in double bookings.
    #[serde(default)]
    #[autosurgeon(missing = "Default::default")]
    pub cancelled: Option<String>,
}

impl Session {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_some()
    }

    pub fn start_time(&self) -> Option<NaiveDateTime> {
        parse_date_time(&self.start)
    }
    pub fn end_time(&self) -> Option<NaiveDateTime> {
        parse_date_time(&self.end)
    }
    /// Whole minutes from start to end, when both parse and the end is after the start.
    pub fn duration_minutes(&self) -> Option<u64> {
        let minutes = (self.end_time()? - self.start_time()?).num_minutes();
        u64::try_from(minutes).ok().filter(|m| *m > 0)
    }
}

/// The one record a document holds. Stored (in automerge and in JSON) as
/// `{"kind": "attendee", "record": {...fields...}}`, so that any document can be read
/// without knowing its kind first.
// Attendee is the largest variant (about 400 bytes): records are handled by the
// thousand at most, so plain variants are kept for simple matching and building.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "lowercase")]
pub enum Record {
    Site(Site),
    Attendee(Attendee),
    Device(Device),
    Loan(Loan),
    Session(Session),
    /// The personal details of an attendee (see [`PersonalDetails`]).
    Personal(PersonalDetails),
}

/// The root keys of a record document.
pub(crate) const KIND_KEY: &str = "kind";
pub(crate) const RECORD_KEY: &str = "record";

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Site(_) => RecordKind::Site,
            Record::Attendee(_) => RecordKind::Attendee,
            Record::Device(_) => RecordKind::Device,
            Record::Loan(_) => RecordKind::Loan,
            Record::Session(_) => RecordKind::Session,
            Record::Personal(_) => RecordKind::Personal,
        }
    }
}

impl Reconcile for Record {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        use autosurgeon::reconcile::MapReconciler;
        let mut root = reconciler.map()?;
        root.put(KIND_KEY, self.kind())?;
        match self {
            Record::Site(site) => root.put(RECORD_KEY, site),
            Record::Attendee(attendee) => root.put(RECORD_KEY, attendee),
            Record::Device(device) => root.put(RECORD_KEY, device),
            Record::Loan(loan) => root.put(RECORD_KEY, loan),
            Record::Session(session) => root.put(RECORD_KEY, session),
            Record::Personal(personal) => root.put(RECORD_KEY, personal),
        }
    }
}

impl Hydrate for Record {
    fn hydrate_map<D: autosurgeon::ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
    ) -> Result<Self, autosurgeon::HydrateError> {
        use autosurgeon::hydrate_prop;
        let kind: RecordKind = hydrate_prop(doc, obj, KIND_KEY)?;
        Ok(match kind {
            RecordKind::Site => Record::Site(hydrate_prop(doc, obj, RECORD_KEY)?),
            RecordKind::Attendee => Record::Attendee(hydrate_prop(doc, obj, RECORD_KEY)?),
            RecordKind::Device => Record::Device(hydrate_prop(doc, obj, RECORD_KEY)?),
            RecordKind::Loan => Record::Loan(hydrate_prop(doc, obj, RECORD_KEY)?),
            RecordKind::Session => Record::Session(hydrate_prop(doc, obj, RECORD_KEY)?),
            RecordKind::Personal => Record::Personal(hydrate_prop(doc, obj, RECORD_KEY)?),
        })
    }
}

/// Small hand-made records for the tests of every module. Synthetic names only.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use crate::kind::new_doc_id;

    pub(crate) fn id(kind: RecordKind, n: u8) -> DocId {
        let mut random = [0u8; 15];
        random[0] = n;
        random[14] = 0xa5;
        new_doc_id(kind, random)
    }

    pub(crate) fn r(kind: RecordKind, n: u8) -> RecordRef {
        RecordRef(id(kind, n))
    }

    pub(crate) fn site(name: &str, partner: &str) -> Site {
        Site {
            name: name.into(),
            kind: SiteKind::CommunityHub,
            partner: partner.into(),
            address: "Via Esempio 1, Lodi".into(),
            opening_hours: "lun-ven 14:30-18:30".into(),
        }
    }

    pub(crate) fn adult(given: &str, family: &str, site: RecordRef) -> Attendee {
        Attendee {
            given_name: given.into(),
            family_name: family.into(),
            birth_year: 1950,
            role: AttendeeRole::Citizen,
            school: None,
            class: None,
            guardian: None,
            phone: Some("+39 0371 000000".into()),
            email: None,
            languages: vec!["italiano".into()],
            consent: Consent {
                date: "2025-01-10".into(),
                given_by: ConsentBy::Attendee,
                operator: "Operatrice Uno".into(),
            },
            referent_operator: None,
            plan_notes: String::new(),
            site,
            merged_into: None,
            not_duplicates_of: Vec::new(),
            registered_by: None,
            match_key: None,
            erased: None,
            id_nonce: None,
        }
    }

    pub(crate) fn student(given: &str, family: &str, site: RecordRef) -> Attendee {
        Attendee {
            birth_year: 2012,
            role: AttendeeRole::Student,
            school: Some("IC Esempio".into()),
            class: Some("2B".into()),
            guardian: Some(Guardian {
                name: "Mario Esempio".into(),
                phone: Some("333 0000000".into()),
                email: Some("genitore@example.invalid".into()),
            }),
            phone: None,
            consent: Consent {
                date: "2025-01-10".into(),
                given_by: ConsentBy::Guardian,
                operator: "Operatrice Uno".into(),
            },
            languages: vec!["italiano".into(), "arabo".into()],
            ..adult(given, family, site)
        }
    }

    pub(crate) fn device(site: RecordRef) -> Device {
        Device {
            asset_tag: "LO-0042".into(),
            kind: DeviceKind::Laptop,
            model: "ThinkPad T480".into(),
            serial: "SN-EXAMPLE-1".into(),
            origin: DeviceOrigin::Refurbished,
            condition: DeviceCondition::Good,
            status: DeviceStatus::InStock,
            site,
        }
    }

    pub(crate) fn loan(
        device: RecordRef,
        attendee: RecordRef,
        site: RecordRef,
        start: &str,
        until: &str,
    ) -> Loan {
        Loan {
            device,
            attendee,
            site,
            start: start.into(),
            expected_return: until.into(),
            returned_at: None,
            return_condition: None,
            agreement_signed: true,
            closed_reason: None,
        }
    }

    pub(crate) fn session(site: RecordRef, kind: SessionKind, start: &str, end: &str) -> Session {
        Session {
            site,
            kind,
            topic: "SPID e CIE".into(),
            topic_code: Some(Topic::Spid),
            audience: Audience::Elderly,
            start: start.into(),
            end: end.into(),
            mode: SessionMode::InPerson,
            facilitator: "Facilitatore Prova".into(),
            participants: Vec::new(),
            headcount: 0,
            language: "italiano".into(),
            mediator: None,
            cancelled: None,
        }
    }

    /// One record of each kind.
    pub(crate) fn one_of_each() -> Vec<Record> {
        let hub = r(RecordKind::Site, 1);
        let mut course = session(hub, SessionKind::Course, "2025-03-03T15:00", "2025-03-03T17:00");
        course.participants = vec![
            Participant { attendee: r(RecordKind::Attendee, 1), present: true },
            Participant { attendee: r(RecordKind::Attendee, 2), present: false },
        ];
        course.mediator = Some("Mediatrice Prova".into());
        vec![
            Record::Site(site("Polo Esempio", "Cooperativa Esempio")),
            Record::Attendee(student("Giulia", "Esempio", hub)),
            Record::Device(device(hub)),
            Record::Loan(loan(
                r(RecordKind::Device, 1),
                r(RecordKind::Attendee, 1),
                hub,
                "2025-02-01",
                "2025-06-30",
            )),
            Record::Session(course),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    #[test]
    fn dates_parse_only_in_the_stored_shape() {
        assert_eq!(parse_date("2025-03-01"), NaiveDate::from_ymd_opt(2025, 3, 1));
        for bad in ["2025-3-01", "2025-02-30", "+2025-03-01", "2025-03-01 ", "01/03/2025", "", "2025-03-0１"]
        {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        let t = parse_date_time("2025-03-01T09:30").unwrap();
        assert_eq!(format_date_time(t), "2025-03-01T09:30");
        for bad in
            ["2025-03-01T9:30", "2025-03-01 09:30", "2025-03-01T24:00", "2025-03-01T09:30:00", "2025-03-01"]
        {
            assert_eq!(parse_date_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn records_serialize_with_their_kind_beside_the_fields() {
        for record in one_of_each() {
            let json = serde_json::to_value(&record).unwrap();
            assert_eq!(json["kind"], record.kind().as_str());
            assert!(json["record"].is_object());
            let back: Record = serde_json::from_value(json).unwrap();
            assert_eq!(back, record);
        }
    }

    #[test]
    fn references_serialize_as_hex() {
        let reference = r(RecordKind::Device, 3);
        let json = serde_json::to_string(&reference).unwrap();
        assert_eq!(json, format!("\"{}\"", reference.id().to_hex()));
        assert_eq!(serde_json::from_str::<RecordRef>(&json).unwrap(), reference);
        assert!(serde_json::from_str::<RecordRef>("\"zz\"").is_err());
        assert_eq!(reference.kind(), Some(RecordKind::Device));
    }

    #[test]
    fn session_duration_is_in_whole_minutes() {
        let s = session(r(RecordKind::Site, 1), SessionKind::Course, "2025-03-03T15:00", "2025-03-03T16:30");
        assert_eq!(s.duration_minutes(), Some(90));
        let backwards = Session { end: "2025-03-03T14:00".into(), ..s.clone() };
        assert_eq!(backwards.duration_minutes(), None);
        let garbled = Session { end: "tomorrow".into(), ..s };
        assert_eq!(garbled.duration_minutes(), None);
    }
}
