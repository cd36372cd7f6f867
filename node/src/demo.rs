//! Synthetic records for `tessera quickstart`: a hub with students, families, a few
//! devices on loan and a month of sessions, so a newcomer sees every command at work.
//! All names are invented ("Esempio", "Prova"): no real person is in here.

use anyhow::Result;
use chrono::Duration;
use tessera_log::DocId;
use tessera_records::kind::RecordKind;
use tessera_records::model::{
    format_date, Attendee, Consent, Device, Guardian, Loan, Participant, Record, RecordRef, Session,
};
use tessera_records::vocab::{
    AttendeeRole, Audience, ConsentBy, DeviceCondition, DeviceKind, DeviceOrigin, DeviceStatus, SessionKind,
    SessionMode, Topic,
};

use crate::commands::{own_site, today};
use crate::node::Node;
use crate::ui::Ui;

const GIVEN: [&str; 12] = [
    "Giulia", "Ahmed", "Sofia", "Luca", "Fatima", "Matteo", "Amina", "Davide", "Chiara", "Omar", "Elena",
    "Yusuf",
];
const FAMILY: [&str; 6] = ["Esempio", "Prova", "Campione", "Fittizio", "Modello", "Saggio"];

pub fn populate(node: &mut Node, ui: &Ui) -> Result<()> {
    let site = RecordRef(own_site(node, ui)?);
    let today = today();
    let year = chrono::Datelike::year(&today) as u16;
    let mut attendees: Vec<DocId> = Vec::new();
    for (i, given) in GIVEN.iter().enumerate() {
        let student = i % 3 != 2;
        let birth_year = if student { year - 10 - (i as u16 % 6) } else { year - 35 - i as u16 };
        let family = FAMILY[i % FAMILY.len()];
        let attendee = Attendee {
            given_name: given.to_string(),
            family_name: family.to_string(),
            birth_year,
            role: if student { AttendeeRole::Student } else { AttendeeRole::Parent },
            school: student.then(|| "IC Esempio".to_string()),
            class: student.then(|| format!("{}{}", 1 + i % 3, ['A', 'B', 'C'][i % 3])),
            guardian: student.then(|| Guardian {
                name: format!("Genitore {family}"),
                phone: Some(format!("333000{:04}", i)),
                email: None,
            }),
            phone: None,
            email: None,
            languages: vec!["italiano".into()],
            consent: Consent {
                date: format_date(today - Duration::days(30)),
                given_by: if student { ConsentBy::Guardian } else { ConsentBy::Attendee },
                operator: "Operatore Demo".into(),
            },
            referent_operator: Some("Operatore Demo".into()),
            plan_notes: String::new(),
            site,
            merged_into: None,
            not_duplicates_of: Vec::new(),
            registered_by: None,
            match_key: None,
            erased: None,
            id_nonce: None,
        };
        let (id, nonce) = node.new_attendee_id()?;
        let attendee = Attendee { id_nonce: Some(nonce), ..attendee };
        node.transact(&[(id, Record::Attendee(attendee))])?;
        attendees.push(id);
    }
    let mut devices = Vec::new();
    for i in 0..8 {
        let device = Device {
            asset_tag: format!("DEMO-{:03}", i + 1),
            kind: if i % 2 == 0 { DeviceKind::Tablet } else { DeviceKind::Laptop },
            model: if i % 2 == 0 { "Tablet 10\"".into() } else { "Portatile ricondizionato".into() },
            serial: format!("SN-DEMO-{i:04}"),
            origin: if i < 5 { DeviceOrigin::Refurbished } else { DeviceOrigin::Donated },
            condition: DeviceCondition::Good,
            status: DeviceStatus::InStock,
            site,
        };
        let id = Node::new_id(RecordKind::Device)?;
        node.transact(&[(id, Record::Device(device.clone()))])?;
        devices.push((id, device));
    }
    for (n, (device_id, device)) in devices.iter().take(4).enumerate() {
        let start = today - Duration::days(60 - n as i64 * 10);
        let expected = if n == 0 { today - Duration::days(5) } else { today + Duration::days(90) };
        let loan = Loan {
            device: RecordRef(*device_id),
            attendee: RecordRef(attendees[n]),
            site,
            start: format_date(start),
            expected_return: format_date(expected),
            returned_at: None,
            return_condition: None,
            agreement_signed: true,
            closed_reason: None,
        };
        let mut lent = device.clone();
        lent.status = DeviceStatus::Lent;
        let id = Node::new_id(RecordKind::Loan)?;
        node.transact(&[(id, Record::Loan(loan)), (*device_id, Record::Device(lent))])?;
    }
    for week in 0..4 {
        let day = today - Duration::days(7 * (4 - week));
        let start = format!("{}T15:00", format_date(day));
        let end = format!("{}T17:00", format_date(day));
        let participants = attendees
            .iter()
            .take(6)
            .enumerate()
            .map(|(i, a)| Participant {
                attendee: RecordRef(*a),
                present: !(i + week as usize).is_multiple_of(4),
            })
            .collect();
        let course = Session {
            site,
            kind: SessionKind::Course,
            topic: "Uso sicuro del tablet".into(),
            topic_code: Some(Topic::SchoolPlatforms),
            audience: Audience::Students,
            start,
            end,
            mode: SessionMode::InPerson,
            facilitator: "Educatore Demo".into(),
            participants,
            headcount: 0,
            language: "italiano".into(),
            mediator: None,
            cancelled: None,
        };
        node.transact(&[(Node::new_id(RecordKind::Session)?, Record::Session(course))])?;
    }
    let meeting_day = today - Duration::days(3);
    let meeting = Session {
        site,
        kind: SessionKind::PublicMeeting,
        topic: "Truffe online: come difendersi".into(),
        topic_code: Some(Topic::OnlineScams),
        audience: Audience::Citizens,
        start: format!("{}T18:00", format_date(meeting_day)),
        end: format!("{}T19:30", format_date(meeting_day)),
        mode: SessionMode::InPerson,
        facilitator: "Educatore Demo".into(),
        participants: Vec::new(),
        headcount: 35,
        language: "italiano".into(),
        mediator: None,
        cancelled: None,
    };
    node.transact(&[(Node::new_id(RecordKind::Session)?, Record::Session(meeting))])?;
    crate::outln!(
        "{}",
        ui.t(
            "Demo data created: 12 attendees, 8 devices, 4 loans (1 overdue), 5 sessions.",
            "Dati dimostrativi creati: 12 iscritti, 8 dispositivi, 4 prestiti (1 scaduto), 5 incontri."
        )
    );
    Ok(())
}
