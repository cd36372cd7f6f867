//! For the page's tests: a real node in a temporary directory behind the real router,
//! and requests sent the way a browser on this computer sends them.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use super::security::{new_token, CSRF_COOKIE};
use super::{router, AppState};
use crate::cli::Cli;
use crate::daemon::Hub;
use crate::node::Node;
use crate::ui::Ui;
use tessera_records::kind::RecordKind;
use tessera_records::vocab::Lang;

pub const HOST: &str = "127.0.0.1:7421";

pub struct TestPage {
    pub _dir: tempfile::TempDir,
    pub hub: Hub,
    pub app: Router,
    pub token: String,
    /// The "who is working" cookie, once chosen ([`TestPage::choose`]).
    pub who: std::sync::Mutex<Option<String>>,
}

/// What the page answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// Where a redirect goes.
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Runs a `tessera` command on `data`; returns what it printed (captured).
pub fn tessera(data: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["--data".to_string(), data.display().to_string(), "--lang".into(), "it".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    let cli = Cli::try_parse_from_args(&all, Lang::It).unwrap();
    let ui = Ui { lang: Lang::It };
    let (result, captured) = crate::ui::capture(|| crate::commands::dispatch(cli, &ui));
    result.unwrap_or_else(|e| panic!("tessera {args:?}: {e:#}\n{captured:?}"));
    captured.stdout
}

impl TestPage {
    /// A node made with `init --site "Polo Prova"`, after `setup` ran commands on it.
    pub fn with(setup: impl FnOnce(&std::path::Path)) -> TestPage {
        TestPage::bound(HOST, setup)
    }

    /// [`TestPage::with`], the page bound to `bound` (beyond loopback: passwords asked).
    pub fn bound(bound: &str, setup: impl FnOnce(&std::path::Path)) -> TestPage {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("hub");
        tessera(&data, &["init", "--site", "Polo Prova"]);
        setup(&data);
        let node = Node::open(&data).unwrap();
        let hub = Hub::new(node, tokio::sync::broadcast::channel(16).0);
        let state = AppState::new(hub.clone(), bound.parse().unwrap(), None).unwrap();
        let token = new_token(&state.secret).unwrap();
        TestPage { _dir: dir, hub, app: router(state), token, who: std::sync::Mutex::new(None) }
    }

    pub fn new() -> TestPage {
        TestPage::with(|_| {})
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024).await.unwrap();
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let request = Request::get(path)
            .header(header::HOST, HOST)
            .header(header::COOKIE, self.cookies())
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// A form as a browser sends it: the session cookie, the hidden token, our Origin.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, true).await
    }

    /// A form with exactly `fields` (no token added), with or without the cookie.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], cookie: bool) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let mut request = Request::post(path)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, format!("http://{HOST}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if cookie {
            request = request.header(header::COOKIE, self.cookies());
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    fn cookies(&self) -> String {
        let mut all = format!("{CSRF_COOKIE}={}", self.token);
        if let Some(who) = self.who.lock().unwrap().as_ref() {
            all.push_str(&format!("; {who}"));
        }
        all
    }

    /// Chooses who is working on `/who`; keeps the cookie when the page sets one.
    pub async fn choose(&self, fields: &[(&str, &str)]) -> Answer {
        let answer = self.post("/who", fields).await;
        let set =
            answer.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
                v.split(';')
                    .next()
                    .filter(|pair| pair.starts_with(super::security::WHO_COOKIE))
                    .map(str::to_string)
            });
        if let Some(cookie) = set {
            *self.who.lock().unwrap() = Some(cookie);
        }
        answer
    }

    pub fn count(&self, kind: RecordKind) -> usize {
        self.hub.read(|node| node.docs().count(kind).unwrap())
    }

    /// The full hex id of the only record of `kind`.
    pub fn only(&self, kind: RecordKind) -> String {
        self.hub.read(|node| {
            let records = node.docs().records(kind).unwrap();
            assert_eq!(records.len(), 1, "one {kind:?} expected");
            records[0].0.to_hex()
        })
    }
}

/// The adult registered by [`adult_fields`].
pub const ADULT: &[(&str, &str)] = &[
    ("given", "Mario"),
    ("family", "Prova"),
    ("birth_year", "1970"),
    ("role", "citizen"),
    ("phone", "333 1234567"),
    ("consent_by", "self"),
    ("consent_date", "2026-01-10"),
    ("operator", "Operatore Prova"),
];
