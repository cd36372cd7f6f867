//! The guard in front of every page: Host (DNS rebinding), Origin, CSRF, language.

use axum::body::Body;
use axum::http::{header, Request};
use tessera_records::kind::RecordKind;

use super::testing::{TestPage, ADULT, HOST};

#[tokio::test]
async fn a_host_that_is_not_this_page_is_refused() {
    let page = TestPage::new();
    for host in ["evil.example:7421", "evil.example", "127.0.0.1:8080"] {
        let request = Request::get("/").header(header::HOST, host).body(Body::empty()).unwrap();
        let answer = page.send(request).await;
        assert_eq!(answer.status, 421, "{host}");
        assert!(!answer.body.contains("Polo Prova"), "nothing of the hub shown to {host}");
    }
    let request = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(page.send(request).await.status, 421, "no Host at all");
    assert_eq!(page.get("/").await.status, 200);
    let request = Request::get("/").header(header::HOST, "localhost:7421").body(Body::empty()).unwrap();
    assert_eq!(page.send(request).await.status, 200);
}

#[tokio::test]
async fn a_post_without_the_token_is_refused_and_saves_nothing() {
    let page = TestPage::new();
    let no_token = page.post_raw("/people", ADULT, true).await;
    assert_eq!(no_token.status, 403);
    let mut wrong = vec![("csrf", "00.00")];
    wrong.extend_from_slice(ADULT);
    assert_eq!(page.post_raw("/people", &wrong, true).await.status, 403);
    // The token without its cookie (another browser's page) is refused too.
    let mut token_only = vec![("csrf", page.token.as_str())];
    token_only.extend_from_slice(ADULT);
    assert_eq!(page.post_raw("/people", &token_only, false).await.status, 403);
    assert_eq!(page.count(RecordKind::Attendee), 0);
    // With it, the same form saves.
    assert_eq!(page.post("/people", ADULT).await.status, 303);
    assert_eq!(page.count(RecordKind::Attendee), 1);
}

#[tokio::test]
async fn a_post_from_another_origin_is_refused() {
    let page = TestPage::new();
    let mut fields = vec![("csrf", page.token.as_str())];
    fields.extend_from_slice(ADULT);
    let request = Request::post("/people")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "http://evil.example")
        .header(header::COOKIE, format!("tessera_csrf={}", page.token))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded::to_string(&fields).unwrap()))
        .unwrap();
    assert_eq!(page.send(request).await.status, 403);
    assert_eq!(page.count(RecordKind::Attendee), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let page = TestPage::new();
    let huge = "x".repeat(super::BODY_BYTES_MAX + 1);
    let answer = page.post("/people", &[("notes", &huge)]).await;
    assert_eq!(answer.status, 413);
    assert_eq!(page.count(RecordKind::Attendee), 0);
}

#[tokio::test]
async fn a_first_visit_gets_a_strict_session_cookie_and_italian() {
    let page = TestPage::new();
    let request = Request::get("/").header(header::HOST, HOST).body(Body::empty()).unwrap();
    let answer = page.send(request).await;
    let cookie = answer.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(
        cookie.starts_with("tessera_csrf=")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(answer.body.contains(r#"<html lang="it">"#) && answer.body.contains("Persone"));
    // The page's own forms carry the token of the cookie.
    let token = cookie.trim_start_matches("tessera_csrf=").split(';').next().unwrap();
    let form = page.get("/people/new").await;
    assert!(form.body.contains(&format!(r#"name="csrf" value="{}""#, page.token)));
    assert_ne!(token, page.token, "a new browser gets its own token");
}

#[tokio::test]
async fn english_is_one_click_away_and_remembered() {
    let page = TestPage::new();
    let answer = page.get("/people?lang=en").await;
    assert!(answer.body.contains(r#"<html lang="en">"#) && answer.body.contains("Register a person"));
    let cookies: Vec<_> =
        answer.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("tessera_lang=en")), "{cookies:?}");
    let request = Request::get("/")
        .header(header::HOST, HOST)
        .header(header::COOKIE, format!("tessera_csrf={}; tessera_lang=en", page.token))
        .body(Body::empty())
        .unwrap();
    assert!(page.send(request).await.body.contains("Today"));
}

#[tokio::test]
async fn the_stylesheet_and_script_come_from_the_binary() {
    let page = TestPage::new();
    let css = page.get("/assets/style.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/css"));
    assert!(css.body.contains("@page { size: A4"));
    assert!(!css.body.contains("http://") && !css.body.contains("https://"), "nothing from the network");
    let js = page.get("/assets/app.js").await;
    assert_eq!(js.status, 200);
    assert!(!js.body.contains("http"), "nothing from the network");
}
