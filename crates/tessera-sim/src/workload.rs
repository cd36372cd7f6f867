//! The domain workload: what operators at hubs and desks do, as records.
//!
//! Registrations, devices, loans (the same device lent by two hubs while they cannot
//! see each other happens naturally: a hub lends any device it knows of), sessions with
//! participants, edits of records written elsewhere (concurrent edits), closing one
//! loan of a device lent twice (the conflict resolution an operator makes), and a
//! partner revoking one of its devices. Names are synthetic.

use chrono::NaiveDate;
use tessera_records::model::{
    Attendee, Consent, Device, Loan, Participant, Record, RecordRef, Session, Site,
};
use tessera_records::vocab::{
    AttendeeRole, Audience, ConsentBy, DeviceCondition, DeviceKind, DeviceOrigin, DeviceStatus, SessionKind,
    SessionMode, SiteKind,
};

use crate::rng::Rng;

const GIVEN: &[&str] =
    &["Giulia", "Marco", "Amina", "Luca", "Sofia", "Karim", "Elena", "Omar", "Chiara", "Ion"];
const FAMILY: &[&str] =
    &["Esempio", "Prova", "Fittizi", "Campione", "Modello", "Sintesi", "Demo", "Bozza", "Schema", "Traccia"];
const OPERATORS: &[&str] = &["Operatrice Uno", "Operatore Due", "Volontaria Tre"];

/// What an operator does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    AddDevice,
    Lend,
    NewSession,
    Edit,
    ResolveDoubleLoan,
}

impl Action {
    pub fn draw(rng: &mut Rng) -> Action {
        match rng.below(100) {
            0..=29 => Action::Register,
            30..=39 => Action::AddDevice,
            40..=54 => Action::Lend,
            55..=69 => Action::NewSession,
            70..=93 => Action::Edit,
            _ => Action::ResolveDoubleLoan,
        }
    }
}

pub fn site(rng: &mut Rng, n: usize, partner: &str) -> Site {
    Site {
        name: format!("Polo di prova {n}"),
        kind: if rng.chance(0.2) { SiteKind::HelpDesk } else { SiteKind::CommunityHub },
        partner: partner.to_string(),
        address: format!("Via Esempio {n}, Lodi"),
        opening_hours: "lun-ven 14:30-18:30".into(),
    }
}

pub fn attendee(rng: &mut Rng, site: RecordRef) -> Attendee {
    let minor = rng.chance(0.4);
    Attendee {
        given_name: rng.pick(GIVEN).copied().unwrap_or("Anna").to_string(),
        family_name: rng.pick(FAMILY).copied().unwrap_or("Esempio").to_string(),
        birth_year: if minor { 2008 + rng.below(10) as u16 } else { 1940 + rng.below(60) as u16 },
        role: if minor { AttendeeRole::Student } else { AttendeeRole::Citizen },
        school: minor.then(|| "IC Esempio".to_string()),
        class: minor.then(|| format!("{}B", 1 + rng.below(5))),
        guardian: None,
        phone: None,
        email: None,
        languages: vec!["italiano".into()],
        consent: Consent {
            date: "2026-10-01".into(),
            given_by: if minor { ConsentBy::Guardian } else { ConsentBy::Attendee },
            operator: rng.pick(OPERATORS).copied().unwrap_or("Operatrice Uno").to_string(),
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

pub fn device(rng: &mut Rng, site: RecordRef, tag: u64) -> Device {
    Device {
        asset_tag: format!("TAB-{tag:04}"),
        kind: if rng.chance(0.5) { DeviceKind::Tablet } else { DeviceKind::Laptop },
        model: String::new(),
        serial: String::new(),
        origin: DeviceOrigin::Refurbished,
        condition: DeviceCondition::Good,
        status: DeviceStatus::InStock,
        site,
    }
}

pub fn loan(device: RecordRef, attendee: RecordRef, site: RecordRef) -> Loan {
    Loan {
        device,
        attendee,
        site,
        start: "2026-11-02".into(),
        expected_return: "2027-06-30".into(),
        returned_at: None,
        return_condition: None,
        agreement_signed: true,
        closed_reason: None,
    }
}

pub fn session(rng: &mut Rng, site: RecordRef, participants: &[RecordRef]) -> Session {
    let day = 2 + rng.below(27);
    Session {
        site,
        kind: if rng.chance(0.5) { SessionKind::Course } else { SessionKind::HelpDeskAppointment },
        topic: "Registro elettronico".into(),
        topic_code: None,
        audience: Audience::Mixed,
        start: format!("2026-11-{day:02}T15:00"),
        end: format!("2026-11-{day:02}T17:00"),
        mode: SessionMode::InPerson,
        facilitator: rng.pick(OPERATORS).copied().unwrap_or("Operatrice Uno").to_string(),
        participants: participants.iter().map(|a| Participant { attendee: *a, present: false }).collect(),
        headcount: 0,
        language: "italiano".into(),
        mediator: None,
        cancelled: None,
    }
}

/// One field changed the way an operator would change it.
pub fn edit(rng: &mut Rng, record: Record, participant: Option<RecordRef>) -> Record {
    match record {
        Record::Attendee(mut a) => {
            match rng.below(3) {
                0 => a.phone = Some(format!("+39 0371 {:06}", rng.below(1_000_000))),
                1 => a.plan_notes = format!("Incontro {} svolto", rng.below(100)),
                _ => a.languages.push("inglese".into()),
            }
            Record::Attendee(a)
        }
        Record::Device(mut d) => {
            d.condition = if rng.chance(0.5) { DeviceCondition::Fair } else { DeviceCondition::Poor };
            d.model = format!("Modello {}", rng.below(50));
            Record::Device(d)
        }
        Record::Loan(mut l) => {
            if l.is_open() && rng.chance(0.5) {
                l.returned_at = Some("2026-11-20".into());
                l.return_condition = Some(DeviceCondition::Good);
            } else {
                l.expected_return = "2027-07-15".into();
            }
            Record::Loan(l)
        }
        Record::Session(mut s) => {
            let new = participant.filter(|p| !s.participants.iter().any(|x| x.attendee == *p));
            match (new, s.participants.first_mut()) {
                (Some(p), _) => s.participants.push(Participant { attendee: p, present: true }),
                (None, Some(first)) => first.present = !first.present,
                (None, None) => s.headcount += 1,
            }
            Record::Session(s)
        }
        Record::Site(mut s) => {
            s.opening_hours = format!("lun-ven {}:00-18:30", 9 + rng.below(6));
            Record::Site(s)
        }
        // The simulator keeps attendees whole (it models sync, not read scopes).
        Record::Personal(mut p) => {
            p.plan_notes = format!("Incontro {} svolto", rng.below(100));
            Record::Personal(p)
        }
    }
}

/// The day an operator closes a loan of a device lent twice.
pub fn resolution_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default()
}
