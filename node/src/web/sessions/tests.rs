//! Booking, the week view and attendance over a real node.

use tessera_records::kind::RecordKind;
use tessera_records::model::Record;

use crate::web::testing::{tessera, TestPage};

fn hub_with_two_people() -> TestPage {
    TestPage::with(|data| {
        for given in ["Mario", "Lucia"] {
            tessera(
                data,
                &[
                    "attendee",
                    "add",
                    "--given",
                    given,
                    "--family",
                    "Prova",
                    "--birth-year",
                    "1950",
                    "--role",
                    "citizen",
                    "--consent-by",
                    "self",
                    "--operator",
                    "Operatore Prova",
                ],
            );
        }
    })
}

fn people(page: &TestPage) -> Vec<(String, String)> {
    page.hub.read(|node| {
        node.docs()
            .records(RecordKind::Attendee)
            .unwrap()
            .into_iter()
            .map(|(id, r)| match r {
                Record::Attendee(a) => (a.given_name, id.to_hex()),
                _ => unreachable!(),
            })
            .collect()
    })
}

fn session(page: &TestPage) -> tessera_records::model::Session {
    page.hub.read(|node| match node.docs().records(RecordKind::Session).unwrap().remove(0).1 {
        Record::Session(s) => s,
        _ => unreachable!(),
    })
}

#[tokio::test]
async fn book_an_appointment_and_see_it_in_its_week() {
    let page = hub_with_two_people();
    let found = page.get("/sessions/new?person_q=mario").await;
    assert!(found.body.contains("Mario Prova") && !found.body.contains("Lucia Prova"));
    let mario = people(&page).into_iter().find(|(g, _)| g == "Mario").unwrap().1;
    let mut fields = vec![
        ("person", mario.as_str()),
        ("kind", "help-desk-appointment"),
        ("topic_code", "spid"),
        ("topic", "Attivare lo SPID"),
        ("start", "2026-12-09T10:00"),
        ("end", "2026-12-09T09:30"),
        ("audience", "citizens"),
        ("mode", "in-person"),
    ];
    let refused = page.post("/sessions", &fields).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains(r#"id="e-end">La fine deve essere dopo l'inizio."#), "{}", refused.body);
    assert!(
        refused.body.contains(r#"value="Attivare lo SPID""#) && refused.body.contains("Mario Prova"),
        "typed values and the chosen person kept"
    );
    assert_eq!(page.count(RecordKind::Session), 0);

    fields.retain(|(k, _)| *k != "end");
    fields.push(("end", "2026-12-09T10:30"));
    let saved = page.post("/sessions", &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let week = page.get("/sessions?week=2026-12-10").await;
    assert!(
        week.body.contains("mercoledì 09/12/2026")
            && week.body.contains("Attivare lo SPID")
            && week.body.contains("10:00–10:30"),
        "{}",
        week.body
    );
    assert!(!page.get("/sessions?week=2026-12-17").await.body.contains("Attivare lo SPID"));
    let person = page.get(&format!("/people/{mario}")).await;
    assert!(person.body.contains("Attivare lo SPID"));
}

#[tokio::test]
async fn attendance_with_checkboxes_and_a_headcount_for_public_meetings_only() {
    let page = hub_with_two_people();
    let ids = people(&page);
    let (mario, lucia) =
        (&ids.iter().find(|p| p.0 == "Mario").unwrap().1, &ids.iter().find(|p| p.0 == "Lucia").unwrap().1);
    let course = [
        ("person", mario.as_str()),
        ("person", lucia.as_str()),
        ("kind", "course"),
        ("topic", "Posta elettronica"),
        ("start", "2026-12-01T15:00"),
        ("end", "2026-12-01T17:00"),
    ];
    assert_eq!(page.post("/sessions", &course).await.status, 303);
    let id = page.only(RecordKind::Session);
    let shown = page.get(&format!("/sessions/{id}")).await;
    assert!(
        shown.body.contains("Mario Prova")
            && shown.body.contains("Lucia Prova")
            && shown.body.contains(r#"type="checkbox""#)
    );
    assert!(!shown.body.contains(r#"name="headcount""#), "no headcount on a course");

    // Lucia unticked: absent; Mario stays present.
    let saved = page
        .post(&format!("/sessions/{id}"), &[("listed", mario), ("listed", lucia), ("present", mario)])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let s = session(&page);
    let present: Vec<bool> = [mario, lucia]
        .iter()
        .map(|w| s.participants.iter().find(|p| p.attendee.0.to_hex() == **w).unwrap().present)
        .collect();
    assert_eq!(present, [true, false]);

    // A headcount on a course breaks a rule: said next to the field, not saved.
    let refused = page
        .post(&format!("/sessions/{id}"), &[("listed", mario), ("present", mario), ("headcount", "12")])
        .await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("solo per gli incontri pubblici"), "{}", refused.body);
    assert_eq!(session(&page).headcount, 0);
}

#[tokio::test]
async fn a_public_meeting_counts_people_without_names() {
    let page = hub_with_two_people();
    let meeting = [
        ("kind", "public-meeting"),
        ("topic", "Truffe online"),
        ("start", "2026-12-02T18:00"),
        ("end", "2026-12-02T19:30"),
    ];
    assert_eq!(page.post("/sessions", &meeting).await.status, 303);
    let id = page.only(RecordKind::Session);
    assert!(page.get(&format!("/sessions/{id}")).await.body.contains(r#"name="headcount""#));
    let bad = page.post(&format!("/sessions/{id}"), &[("headcount", "trenta")]).await;
    assert!(bad.body.contains(r#"id="e-headcount">Scrivi un numero intero"#), "{}", bad.body);
    assert_eq!(page.post(&format!("/sessions/{id}"), &[("headcount", "35")]).await.status, 303);
    assert_eq!(session(&page).headcount, 35);
}

/// An appointment's form for `who`, from `start` to `end`.
fn book(who: &str, start: &str, end: &str) -> Vec<(&'static str, String)> {
    vec![
        ("person", who.to_string()),
        ("kind", "help-desk-appointment".to_string()),
        ("topic_code", "spid".to_string()),
        ("topic", "SPID".to_string()),
        ("start", start.to_string()),
        ("end", end.to_string()),
    ]
}

fn as_refs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_double_booking_is_flagged_and_saved_only_when_confirmed() {
    let page = hub_with_two_people();
    let ids = people(&page);
    let first = book(&ids[0].1, "2026-12-09T10:00", "2026-12-09T10:30");
    assert_eq!(page.post("/sessions", &as_refs(&first)).await.status, 303);

    let second = book(&ids[1].1, "2026-12-09T10:15", "2026-12-09T10:45");
    let refused = page.post("/sessions", &as_refs(&second)).await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("Si sovrappone a un altro appuntamento in questa sede: appuntamento allo sportello: SPID (2026-12-09 10:00)"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r#"name="force""#));
    assert_eq!(page.count(RecordKind::Session), 1, "nothing saved");

    let mut confirmed = second.clone();
    confirmed.push(("force", "1".to_string()));
    assert_eq!(page.post("/sessions", &as_refs(&confirmed)).await.status, 303);
    assert_eq!(page.count(RecordKind::Session), 2);
    // Back to back is not an overlap.
    let after = book(&ids[1].1, "2026-12-09T10:45", "2026-12-09T11:00");
    assert_eq!(page.post("/sessions", &as_refs(&after)).await.status, 303);
}

#[tokio::test]
async fn a_session_is_cancelled_and_restored_from_its_page() {
    let page = hub_with_two_people();
    let ids = people(&page);
    let booked = book(&ids[0].1, "2026-12-09T10:00", "2026-12-09T10:30");
    assert_eq!(page.post("/sessions", &as_refs(&booked)).await.status, 303);
    let id = page.only(RecordKind::Session);
    assert!(page.get(&format!("/sessions/{id}")).await.body.contains("Annulla questo incontro"));

    let cancelled = page.post(&format!("/sessions/{id}/cancel"), &[("reason", "prenotato due volte")]).await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(session(&page).cancelled.as_deref(), Some("prenotato due volte"));
    let shown = page.get(&format!("/sessions/{id}")).await;
    assert!(
        shown.body.contains("Questo incontro è annullato: prenotato due volte")
            && shown.body.contains("Ripristina questo incontro"),
        "{}",
        shown.body
    );
    assert_eq!(page.post(&format!("/sessions/{id}/cancel"), &[("undo", "1")]).await.status, 303);
    assert_eq!(session(&page).cancelled, None);
}
