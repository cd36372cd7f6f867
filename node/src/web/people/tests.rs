//! The people pages over a real node: registration refused with the error next to its
//! field and nothing saved, registration saved, search, edit, the person's page.

use tessera_records::kind::RecordKind;

use crate::web::testing::{TestPage, ADULT};

fn minor_without_guardian() -> Vec<(&'static str, &'static str)> {
    vec![
        ("given", "Giulia"),
        ("family", "Esempio"),
        ("birth_year", "2014"),
        ("role", "student"),
        ("consent_by", "guardian"),
        ("consent_date", "2026-01-10"),
        ("operator", "Operatore Prova"),
    ]
}

#[tokio::test]
async fn a_minor_without_guardian_is_refused_next_to_the_field_and_nothing_is_saved() {
    let page = TestPage::new();
    let before = page.count(RecordKind::Attendee);
    let answer = page.post("/people", &minor_without_guardian()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The Italian message, right under the guardian's name field, tied to it.
    let field = answer.body.find(r#"id="f-guardian_name""#).expect("guardian field");
    let error = answer.body.find(r#"id="e-guardian_name""#).expect("error next to the field");
    assert!(error > field, "the error follows its field");
    assert!(
        answer.body[error..].starts_with(r#"id="e-guardian_name">La persona è minorenne"#),
        "{}",
        &answer.body[error..error + 200]
    );
    assert!(answer.body.contains(r#"aria-describedby="e-guardian_name""#));
    assert!(answer.body.contains("Non salvato"));
    // What was typed is kept.
    assert!(answer.body.contains(r#"value="Giulia""#));
    assert!(answer.body.contains(r#"value="Esempio""#));
    assert!(answer.body.contains(r#"value="2014""#));
    assert_eq!(page.count(RecordKind::Attendee), before, "nothing saved");
}

#[tokio::test]
async fn a_year_that_is_not_a_number_is_an_error_of_its_field() {
    let page = TestPage::new();
    let mut fields = ADULT.to_vec();
    fields.retain(|(k, _)| *k != "birth_year");
    fields.push(("birth_year", "settanta"));
    let answer = page.post("/people", &fields).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains(r#"id="e-birth_year">Scrivi l'anno di nascita"#), "{}", answer.body);
    assert!(answer.body.contains(r#"value="settanta""#));
    assert_eq!(page.count(RecordKind::Attendee), 0);
}

#[tokio::test]
async fn english_errors_for_an_english_operator() {
    let page = TestPage::new();
    let answer = page.post("/people?lang=en", &minor_without_guardian()).await;
    assert!(answer.body.contains("The attendee is a minor"), "{}", answer.body);
}

#[tokio::test]
async fn a_registered_person_has_a_page_and_is_found_as_you_type() {
    let page = TestPage::new();
    let mut fields = minor_without_guardian();
    fields.extend([("guardian_name", "Anna Esempio"), ("guardian_phone", "3331234567")]);
    let answer = page.post("/people", &fields).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(page.count(RecordKind::Attendee), 1);
    let id = page.only(RecordKind::Attendee);
    assert_eq!(answer.location(), format!("/people/{id}?saved=1"));

    let shown = page.get(answer.location()).await;
    assert_eq!(shown.status, 200);
    assert!(
        shown.body.contains("Giulia Esempio") && shown.body.contains("Anna Esempio, 3331234567"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("Salvato."));
    assert!(shown.body.contains("Polo Prova"), "the site by name");

    // Search: folded, partial fragment for the script, full page without it.
    let found = page.get("/people?q=GIUL&partial=1").await;
    assert!(found.body.contains("Esempio") && !found.body.contains("<html"), "{}", found.body);
    let found = page.get("/people?q=esempio+giulia").await;
    assert!(found.body.contains(&format!("/people/{id}")) && found.body.contains("<html"));
    let none = page.get("/people?q=Rossi&partial=1").await;
    assert!(!none.body.contains("Esempio") && none.body.contains("Nessuno con quel nome"));
}

#[tokio::test]
async fn an_edit_is_checked_by_the_same_rules() {
    let page = TestPage::new();
    let mut fields = minor_without_guardian();
    fields.extend([("guardian_name", "Anna Esempio"), ("guardian_phone", "3331234567")]);
    page.post("/people", &fields).await;
    let id = page.only(RecordKind::Attendee);
    let form = page.get(&format!("/people/{id}/edit")).await;
    assert!(form.body.contains(r#"value="Anna Esempio""#), "the form shows what is saved");

    // Removing the guardian of a minor is refused; the record keeps its guardian.
    let refused = page.post(&format!("/people/{id}"), &minor_without_guardian()).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains(r#"id="e-guardian_name""#));
    let shown = page.get(&format!("/people/{id}")).await;
    assert!(shown.body.contains("Anna Esempio"));

    // A good edit is saved.
    let mut changed = fields.clone();
    changed.retain(|(k, _)| *k != "given");
    changed.push(("given", "Giulietta"));
    let saved = page.post(&format!("/people/{id}"), &changed).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert!(page.get(&format!("/people/{id}")).await.body.contains("Giulietta Esempio"));
    assert_eq!(page.count(RecordKind::Attendee), 1);
}

#[tokio::test]
async fn unknown_ids_are_not_found_in_words() {
    let page = TestPage::new();
    let answer = page.get("/people/notanid").await;
    assert_eq!(answer.status, 404);
    assert!(answer.body.contains("Non trovato"));
}

#[tokio::test]
async fn a_probable_duplicate_at_this_hub_is_flagged_and_saved_only_when_confirmed() {
    let page = TestPage::new();
    assert_eq!(page.post("/people", ADULT).await.status, 303);
    let again = page.post("/people", ADULT).await;
    assert_eq!(again.status, 200, "the same name and year again is not saved silently");
    assert!(
        again.body.contains("Probabilmente già iscritta: Mario Prova (nato/a nel 1970"),
        "{}",
        again.body
    );
    assert!(again.body.contains(r#"name="force""#), "a box to save anyway: {}", again.body);
    assert!(again.body.contains(r#"value="Mario""#), "what was typed is kept");
    assert_eq!(page.count(RecordKind::Attendee), 1);

    let mut confirmed = ADULT.to_vec();
    confirmed.push(("force", "1"));
    assert_eq!(page.post("/people", &confirmed).await.status, 303);
    assert_eq!(page.count(RecordKind::Attendee), 2, "another person of the same name, confirmed");
}

#[tokio::test]
async fn a_person_is_erased_from_their_page_only_when_confirmed() {
    let page = TestPage::new();
    assert_eq!(page.post("/people", ADULT).await.status, 303);
    let id = page.only(RecordKind::Attendee);
    let shown = page.get(&format!("/people/{id}")).await;
    assert!(shown.body.contains("Cancella questa persona"), "{}", shown.body);

    let unconfirmed = page.post(&format!("/people/{id}/erase"), &[("reason", "request")]).await;
    assert_eq!(unconfirmed.status, 200);
    assert!(
        unconfirmed.body.contains(r#"id="e-yes">Spunta la casella per confermare"#),
        "{}",
        unconfirmed.body
    );
    let still =
        page.hub.read(|node| node.docs().record(&tessera_records::parse_doc_id(&id).unwrap()).unwrap());
    assert!(matches!(still, Some(tessera_records::model::Record::Attendee(a)) if !a.is_erased()));

    let erased = page.post(&format!("/people/{id}/erase"), &[("reason", "mistake"), ("yes", "1")]).await;
    assert_eq!(erased.status, 303, "{}", erased.body);
    assert_eq!(erased.location(), "/people?erased=1");
    let list = page.get(erased.location()).await;
    assert!(
        list.body.contains("Cancellata: i suoi dati sono stati tolti") && !list.body.contains("Mario"),
        "{}",
        list.body
    );
    let after = page.get(&format!("/people/{id}")).await;
    assert!(
        !after.body.contains("Mario") && !after.body.contains("Cancella questa persona"),
        "{}",
        after.body
    );
}
