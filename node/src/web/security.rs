//! What every request passes before a page sees it ([`guard`]):
//!
//! - **Host** must name this page: `localhost:PORT` or an IP literal with the page's
//!   port (a loopback one when the page is bound to loopback). A DNS-rebinding attack
//!   needs a domain name of its own pointing at 127.0.0.1, so it is refused here.
//! - **Origin**, when a browser sends it with a POST, must be the page itself.
//! - **CSRF**: a token per browser session in a `SameSite=Strict`, `HttpOnly` cookie,
//!   made of a random nonce and its keyed hash (the key is made at each start, so a
//!   token is worth nothing to another daemon). Every POST carries the same token in
//!   a hidden field (`csrf`) or, for file uploads, in the form's URL; both are
//!   compared in constant time.
//! - The language: `?lang=en|it` on any page, remembered in a cookie; Italian first.
//!
//! The context a page needs (language, token) travels to it as [`Ctx`].

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_records::vocab::Lang;

use super::AppState;
use crate::ui::Ui;

pub const CSRF_COOKIE: &str = "tessera_csrf";
pub const LANG_COOKIE: &str = "tessera_lang";
/// Who is working on this browser: their name and its keyed hash ([`who_token`]).
pub const WHO_COOKIE: &str = "tessera_who";
/// The hidden field (or query parameter, for uploads) that carries the token.
pub const CSRF_FIELD: &str = "csrf";

/// Which `Host` headers name this page.
#[derive(Debug, Clone, Copy)]
pub struct HostRule {
    pub port: u16,
    pub loopback_only: bool,
}

impl HostRule {
    pub fn for_bound(addr: SocketAddr) -> HostRule {
        HostRule { port: addr.port(), loopback_only: addr.ip().is_loopback() }
    }

    /// `localhost:PORT`, `127.0.0.1:PORT`, `[::1]:PORT` (any IP literal when the page
    /// listens beyond loopback); never a domain name, never another port.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = host.rsplit_once(':') else { return false };
        if port.parse::<u16>().ok() != Some(self.port) {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        match literal.parse::<IpAddr>() {
            Ok(ip) => !self.loopback_only || ip.is_loopback(),
            Err(_) => false,
        }
    }
}

/// The CSRF token of a browser session: `NONCE.MAC`, hex.
pub fn new_token(secret: &[u8; 32]) -> anyhow::Result<String> {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).map_err(|e| anyhow::anyhow!("the random source failed: {e}"))?;
    let nonce = hex::encode(nonce);
    Ok(format!("{nonce}.{}", mac(secret, &nonce)))
}

fn mac(secret: &[u8; 32], nonce: &str) -> String {
    blake3::keyed_hash(secret, nonce.as_bytes()).to_hex().to_string()
}

/// The cookie that says `name` is working on this browser: `HEXNAME.MAC`, worth
/// nothing to another daemon (the key is made at each start).
pub fn who_token(secret: &[u8; 32], name: &str) -> String {
    let hex_name = hex::encode(name.as_bytes());
    let tag = mac(secret, &format!("who:{hex_name}"));
    format!("{hex_name}.{tag}")
}

/// The name in a cookie made by [`who_token`] with `secret`.
pub fn who_of(secret: &[u8; 32], token: &str) -> Option<String> {
    let (hex_name, tag) = token.split_once('.')?;
    if !constant_time_eq(tag.as_bytes(), mac(secret, &format!("who:{hex_name}")).as_bytes()) {
        return None;
    }
    String::from_utf8(hex::decode(hex_name).ok()?).ok()
}

/// A token this daemon made (its MAC checks).
pub fn token_is_ours(secret: &[u8; 32], token: &str) -> bool {
    match token.split_once('.') {
        Some((nonce, tag)) => constant_time_eq(tag.as_bytes(), mac(secret, nonce).as_bytes()),
        None => false,
    }
}

/// Compares without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// What a page needs to know of the request: the operator's language and the token its
/// forms carry.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub ui: Ui,
    pub csrf: String,
    /// Who is working (chosen on `/who`), when the hub has a list of operators.
    pub operator: Option<String>,
    /// The path and query of the page asked (for the language switch).
    pub here: String,
}

impl Ctx {
    pub fn t<'a>(&self, en: &'a str, it: &'a str) -> &'a str {
        self.ui.t(en, it)
    }
    pub fn lang(&self) -> Lang {
        self.ui.lang
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Ctx, StatusCode> {
        parts.extensions.get::<Ctx>().cloned().ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn refused(status: StatusCode, lang: Lang, en: &str, it: &str) -> Response {
    let ui = Ui { lang };
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], ui.t(en, it).to_string()).into_response()
}

fn language(parts: &Parts) -> (Lang, bool) {
    let asked = query_param(parts.uri.query(), "lang").and_then(|l| Lang::parse(l).ok());
    match asked {
        Some(lang) => (lang, true),
        None => {
            let kept = cookie(&parts.headers, LANG_COOKIE).and_then(|l| Lang::parse(l).ok());
            (kept.unwrap_or(Lang::It), false)
        }
    }
}

fn host_ok(rule: &HostRule, headers: &HeaderMap) -> bool {
    headers.get(HOST).and_then(|h| h.to_str().ok()).is_some_and(|h| rule.allows(h))
}

/// An `Origin` sent with a POST must be `http://` and the request's own (allowed) Host.
fn origin_ok(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else { return true };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    origin.to_str().ok().and_then(|o| o.strip_prefix("http://")).is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// The token a POST carries: in its urlencoded body (which is read, within the body
/// limit, and put back), or in its URL for a multipart upload.
async fn posted_token(parts: &Parts, body: Body) -> Result<(Option<String>, Body), Response> {
    let kind = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if kind.starts_with("multipart/form-data") {
        let token = query_param(parts.uri.query(), CSRF_FIELD).map(str::to_string);
        return Ok((token, body));
    }
    if !kind.starts_with("application/x-www-form-urlencoded") {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response());
    }
    let bytes = axum::body::to_bytes(body, super::BODY_BYTES_MAX)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let token = pairs.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v);
    Ok((token, Body::from(bytes)))
}

/// The middleware in front of every page (see the module's notes).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let (lang, lang_asked) = language(&parts);
    if !host_ok(&state.hosts, &parts.headers) {
        tracing::warn!("page request refused: its Host header does not name this page");
        return refused(
            StatusCode::MISDIRECTED_REQUEST,
            lang,
            "Refused: this page answers only at its own address.",
            "Rifiutato: questa pagina risponde solo al proprio indirizzo.",
        );
    }
    let kept =
        cookie(&parts.headers, CSRF_COOKIE).filter(|t| token_is_ours(&state.secret, t)).map(str::to_string);
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        if !origin_ok(&parts.headers) {
            tracing::warn!("form refused: sent from another site (Origin)");
            return refused(
                StatusCode::FORBIDDEN,
                lang,
                "Refused: the form was sent from another site.",
                "Rifiutato: il modulo è stato inviato da un altro sito.",
            );
        }
        let (token, body) = match posted_token(&parts, body).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        let matches = match (&kept, &token) {
            (Some(cookie), Some(field)) => constant_time_eq(cookie.as_bytes(), field.as_bytes()),
            _ => false,
        };
        if !matches {
            tracing::info!("form refused: missing or stale CSRF token");
            return refused(
                StatusCode::FORBIDDEN,
                lang,
                "The form has expired (the page was open before Tessera restarted, or came from elsewhere). Go back, reload the page and send it again.",
                "Il modulo è scaduto (la pagina era aperta da prima che Tessera ripartisse, o viene da altrove). Torna indietro, ricarica la pagina e invialo di nuovo.",
            );
        }
        body
    };
    let (csrf, fresh) = match kept {
        Some(token) => (token, false),
        None => match new_token(&state.secret) {
            Ok(token) => (token, true),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
    };
    // A GET form that shares its fields with a POST one (print the agreement before
    // saving the loan) sends the token in its URL: go to the same URL without it, so
    // the token stays out of the address bar and the history.
    if parts.method == Method::GET && query_param(parts.uri.query(), CSRF_FIELD).is_some() {
        let kept: Vec<&str> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(CSRF_FIELD))
            .collect();
        let path = parts.uri.path();
        let to = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
        return super::see_other(&to);
    }
    let here = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    // Who is working: once the hub has operators, every page but the choice itself
    // (and its assets) wants one of them, by a cookie this daemon made.
    let ui = Ui { lang };
    let operators = match crate::operators::Operators::load(&state.dir, &ui) {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "the list of operators could not be read");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let operator = cookie(&parts.headers, WHO_COOKIE)
        .and_then(|t| who_of(&state.secret, t))
        .and_then(|name| operators.find(&name).map(|o| o.name.clone()));
    let path = parts.uri.path();
    if !operators.is_empty() && operator.is_none() && path != "/who" && !path.starts_with("/assets/") {
        let next = if parts.method == Method::GET { here.clone() } else { "/".to_string() };
        let to = format!("/who?next={}", super::who::encode_next(&next));
        let mut response = super::see_other(&to);
        if fresh {
            let value = format!("{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().append(SET_COOKIE, v);
            }
        }
        return response;
    }
    let ctx = Ctx { ui, csrf: csrf.clone(), here, operator };
    parts.extensions.insert(ctx.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if response.extensions().get::<super::Failed>().is_some() {
        response = super::failure_page(&ctx);
    }
    let headers = response.headers_mut();
    if fresh {
        let value = format!("{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(SET_COOKIE, v);
        }
    }
    if lang_asked {
        let word = if lang == Lang::En { "en" } else { "it" };
        let value = format!("{LANG_COOKIE}={word}; Path=/; Max-Age=31536000; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(SET_COOKIE, v);
        }
    }
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_this_page_only() {
        let rule = HostRule::for_bound("127.0.0.1:7421".parse().unwrap());
        for ok in ["127.0.0.1:7421", "localhost:7421", "LOCALHOST:7421", "[::1]:7421"] {
            assert!(rule.allows(ok), "{ok}");
        }
        for bad in ["evil.example:7421", "127.0.0.1:80", "127.0.0.1", "192.168.1.5:7421", "", "evil.example"]
        {
            assert!(!rule.allows(bad), "{bad}");
        }
        let wide = HostRule::for_bound("0.0.0.0:7421".parse().unwrap());
        assert!(wide.allows("192.168.1.5:7421"));
        assert!(!wide.allows("rebind.example:7421"));
    }

    #[tokio::test]
    async fn a_token_in_a_get_url_is_taken_out_of_it() {
        let page = crate::web::testing::TestPage::new();
        let answer = page.get("/loans/preview?person=1&csrf=abc.def&device=2").await;
        assert_eq!(answer.status, 303);
        assert_eq!(answer.location(), "/loans/preview?person=1&device=2");
        assert_eq!(page.get("/people?csrf=x").await.location(), "/people");
    }

    #[test]
    fn tokens_are_checked_by_their_mac() {
        let secret = [7u8; 32];
        let token = new_token(&secret).unwrap();
        assert!(token_is_ours(&secret, &token));
        assert!(!token_is_ours(&[8u8; 32], &token));
        assert!(!token_is_ours(&secret, "00.00"));
        assert!(!token_is_ours(&secret, "nodot"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
