//! Lending end to end over a real node: choose by search, the agreement rule, the
//! printable agreement, the return with its condition, the inventory's filters.

use tessera_records::kind::RecordKind;
use tessera_records::model::Record;
use tessera_records::vocab::{DeviceCondition, DeviceStatus};

use crate::web::testing::{tessera, TestPage};

fn hub_with_a_tablet_and_a_minor() -> TestPage {
    TestPage::with(|data| {
        tessera(
            data,
            &[
                "device",
                "add",
                "--tag",
                "TAB-0042",
                "--kind",
                "tablet",
                "--origin",
                "refurbished",
                "--model",
                "Galaxy Tab A",
            ],
        );
        tessera(
            data,
            &[
                "attendee",
                "add",
                "--given",
                "Giulia",
                "--family",
                "Esempio",
                "--birth-year",
                "2014",
                "--role",
                "student",
                "--guardian-name",
                "Anna Esempio",
                "--guardian-phone",
                "3331234567",
                "--consent-by",
                "guardian",
                "--operator",
                "Operatore Prova",
            ],
        );
    })
}

fn device(page: &TestPage) -> (String, tessera_records::model::Device) {
    page.hub.read(|node| {
        let (id, record) = node.docs().records(RecordKind::Device).unwrap().remove(0);
        let Record::Device(d) = record else { panic!("not a device") };
        (id.to_hex(), d)
    })
}

#[tokio::test]
async fn lend_print_and_return_a_device() {
    let page = hub_with_a_tablet_and_a_minor();
    let person = page.only(RecordKind::Attendee);
    let (tablet, _) = device(&page);

    // Both are found by search on the lending form, by name and tag, never by id.
    let form = page.get("/loans/new?person_q=giulia&device_q=tab-00").await;
    assert!(
        form.body.contains("Giulia Esempio") && form.body.contains("TAB-0042 (Galaxy Tab A)"),
        "{}",
        form.body
    );
    assert!(
        form.body.contains(&format!(r#"value="{person}""#))
            && form.body.contains(&format!(r#"value="{tablet}""#))
    );

    // The agreement must be signed first: refused next to the box, nothing saved.
    let base = [
        ("person", person.as_str()),
        ("device", tablet.as_str()),
        ("start", "2026-11-02"),
        ("expected_return", "2027-06-30"),
    ];
    let refused = page.post("/loans", &base).await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains(r#"id="e-agreement_signed">Il contratto di comodato d'uso va firmato"#),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r#"value="2027-06-30""#), "typed dates kept");
    assert_eq!(page.count(RecordKind::Loan), 0);
    assert_eq!(device(&page).1.status, DeviceStatus::InStock);

    // The agreement printed before signing names everything.
    let preview = page
        .get(&format!(
            "/loans/preview?person={person}&device={tablet}&start=2026-11-02&expected_return=2027-06-30"
        ))
        .await;
    assert!(
        preview.body.contains("Giulia Esempio")
            && preview.body.contains("Anna Esempio")
            && preview.body.contains("TAB-0042")
    );

    let mut signed = base.to_vec();
    signed.push(("agreement_signed", "1"));
    let saved = page.post("/loans", &signed).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let loan = page.only(RecordKind::Loan);
    assert_eq!(saved.location(), format!("/loans/{loan}/agreement?saved=1"));
    assert_eq!(device(&page).1.status, DeviceStatus::Lent);

    let agreement = page.get(saved.location()).await;
    assert_eq!(agreement.status, 200);
    for expected in [
        "Contratto di comodato d'uso gratuito",
        "Giulia Esempio",
        "Anna Esempio",
        "3331234567",
        "TAB-0042",
        "Galaxy Tab A",
        "02/11/2026",
        "30/06/2027",
        "Polo Prova",
        "Il genitore o tutore",
    ] {
        assert!(agreement.body.contains(expected), "{expected} missing from the agreement");
    }
    assert!(!agreement.body.contains(r#"class="top""#), "no navigation on the printed page");
    for id in [&loan, &person, &tablet] {
        let short = tessera_records::kind::short_id(&tessera_records::kind::parse_doc_id(id).unwrap());
        assert!(!agreement.body.contains(&short), "no short id {short} on the agreement");
    }

    // A second loan of the same device is refused by the same rules.
    let again = page.post("/loans", &signed).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("già in comodato"), "{}", again.body);
    assert_eq!(page.count(RecordKind::Loan), 1);

    // The inventory filters by status and names the borrower.
    let lent = page.get("/devices?status=lent").await;
    assert!(lent.body.contains("TAB-0042") && lent.body.contains("Giulia Esempio"));
    assert!(!page.get("/devices?status=in-stock").await.body.contains("TAB-0042 (Galaxy"));

    // The return, with its condition, puts the device back in stock.
    let condition = format!("condition-{loan}");
    let date = format!("date-{loan}");
    let back = page
        .post(
            &format!("/loans/{loan}/return"),
            &[("back", "/loans"), (&condition, "fair"), (&date, "2026-12-01")],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), "/loans?returned=1");
    let (_, d) = device(&page);
    assert_eq!((d.status, d.condition), (DeviceStatus::InStock, DeviceCondition::Fair));
    let person_page = page.get(&format!("/people/{person}")).await;
    assert!(person_page.body.contains("restituito il 01/12/2026"), "{}", person_page.body);
    // Returning twice is said in words, not saved again.
    let twice = page.post(&format!("/loans/{loan}/return"), &[("back", "/loans")]).await;
    assert!(twice.body.contains("già stato restituito"));
}

#[tokio::test]
async fn a_device_tag_is_registered_once() {
    let page = hub_with_a_tablet_and_a_minor();
    let fields = [("tag", "tab-0042"), ("kind", "laptop"), ("origin", "donated"), ("condition", "good")];
    let refused = page.post("/devices", &fields).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains(r#"id="e-tag">Un dispositivo con questa etichetta"#), "{}", refused.body);
    assert_eq!(page.count(RecordKind::Device), 1);
    let saved = page
        .post(
            "/devices",
            &[("tag", "PC-0001"), ("kind", "laptop"), ("origin", "donated"), ("condition", "good")],
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(page.count(RecordKind::Device), 2);
}

#[tokio::test]
async fn an_unsafe_back_link_is_not_followed() {
    assert_eq!(super::safe_back("//evil.example"), "/loans");
    assert_eq!(super::safe_back("http://evil.example"), "/loans");
    assert_eq!(super::safe_back("/devices/abc"), "/devices/abc");
}

#[tokio::test]
async fn a_loan_registered_by_mistake_is_voided_from_the_page() {
    let page = hub_with_a_tablet_and_a_minor();
    let person = page.only(RecordKind::Attendee);
    let (tablet, _) = device(&page);
    let lent = [
        ("person", person.as_str()),
        ("device", tablet.as_str()),
        ("start", "2026-11-02"),
        ("expected_return", "2027-06-30"),
        ("agreement_signed", "1"),
    ];
    assert_eq!(page.post("/loans", &lent).await.status, 303);
    let loan = page.only(RecordKind::Loan);
    let shown = page.get(&format!("/devices/{tablet}")).await;
    assert!(shown.body.contains("Registrato per sbaglio?"), "{}", shown.body);

    // Without a reason: the CLI's rule, in Italian; nothing changes.
    let back = format!("/devices/{tablet}");
    let refused = page.post(&format!("/loans/{loan}/void"), &[("back", back.as_str())]).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("serve --reason"), "{}", refused.body);
    assert_eq!(device(&page).1.status, DeviceStatus::Lent);

    let reason = format!("reason-{loan}");
    let voided = page
        .post(&format!("/loans/{loan}/void"), &[("back", back.as_str()), (&reason, "prestato due volte")])
        .await;
    assert_eq!(voided.status, 303, "{}", voided.body);
    assert_eq!(voided.location(), format!("/devices/{tablet}?voided=1"));
    assert_eq!(device(&page).1.status, DeviceStatus::InStock, "the device is free again");
    let after = page.get(voided.location()).await;
    assert!(
        after.body.contains("Comodato annullato") && after.body.contains("annullato: prestato due volte"),
        "{}",
        after.body
    );
    assert!(!after.body.contains(&format!("/loans/{loan}/return")), "no return form for a void loan");
}

#[tokio::test]
async fn a_device_is_edited_with_errors_next_to_their_field() {
    let page = hub_with_a_tablet_and_a_minor();
    let (tablet, _) = device(&page);
    let stored = |page: &TestPage| {
        page.hub.read(|node| {
            match node.docs().record(&tessera_records::parse_doc_id(&tablet).unwrap()).unwrap() {
                Some(Record::Device(d)) => d,
                _ => panic!("not a device"),
            }
        })
    };
    assert_eq!(
        page.post(
            "/devices",
            &[("tag", "PC-0007"), ("kind", "laptop"), ("origin", "donated"), ("condition", "good")]
        )
        .await
        .status,
        303
    );
    let form = page.get(&format!("/devices/{tablet}/edit")).await;
    assert!(
        form.body.contains(r#"value="TAB-0042""#) && form.body.contains(r#"name="status""#),
        "{}",
        form.body
    );

    let mut fields = vec![
        ("tag", "pc-0007"),
        ("kind", "tablet"),
        ("model", "Galaxy Tab A"),
        ("origin", "refurbished"),
        ("condition", "fair"),
        ("status", "in-repair"),
    ];
    let taken = page.post(&format!("/devices/{tablet}"), &fields).await;
    assert_eq!(taken.status, 200);
    assert!(
        taken.body.contains(r#"id="e-tag">Un dispositivo con questa etichetta è già registrato."#),
        "{}",
        taken.body
    );
    assert!(taken.body.contains(r#"value="pc-0007""#), "what was typed is kept");
    assert_eq!(stored(&page).condition, DeviceCondition::Good, "nothing saved");

    fields[0] = ("tag", "TAB-0042");
    let saved = page.post(&format!("/devices/{tablet}"), &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let d = page.hub.read(|node| {
        match node.docs().record(&tessera_records::parse_doc_id(&tablet).unwrap()).unwrap() {
            Some(Record::Device(d)) => d,
            _ => panic!("not a device"),
        }
    });
    assert_eq!((d.condition, d.status), (DeviceCondition::Fair, DeviceStatus::InRepair));
}
