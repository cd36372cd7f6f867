//! "Who is working?": once the hub has a list of operators (`tessera operator add`),
//! the page asks for one of them before anything else, and every change made on the
//! page records them. A short list of names; when the page is reachable from other
//! computers (bound beyond loopback) the operator's password too, checked against its
//! argon2id hash. The choice is a cookie this daemon signs ([`who_token`]), good until
//! the daemon restarts or another name is chosen. Passwords are checked two at a time,
//! off the async threads, and a wrong one is answered a second later.

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Form;
use maud::html;

use super::forms::{csrf, form_errors, input, FieldErrors, Opts, Typed};
use super::layout::{page, Section};
use super::security::{who_token, Ctx, WHO_COOKIE};
use super::{see_other, AppState, PageResult};
use crate::operators::{fold_name, Operators};

/// How long a wrong password waits before its answer.
const WRONG_PASSWORD_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest `next` kept (a path of this page).
const NEXT_CHARS_MAX: usize = 512;

/// `next` for a URL's query: percent-encoded.
pub fn encode_next(next: &str) -> String {
    serde_urlencoded::to_string([("", next)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// Where to go after choosing: a path of this page only (never another site).
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= NEXT_CHARS_MAX;
    if ok && !next.starts_with("/who") {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn needs_password(state: &AppState) -> bool {
    !state.hosts.loopback_only
}

fn who_page(ctx: &Ctx, state: &AppState, list: &Operators, typed: &Typed, errors: &FieldErrors) -> Response {
    let title = ctx.t("Who is working?", "Chi sta lavorando?");
    let chosen = typed.get("name");
    let body = html! {
        h1 { (title) }
        @if list.is_empty() {
            p { (ctx.t(
                "This hub has no list of operators: changes do not say who made them. Add names with `tessera operator add NAME`.",
                "Questo polo non ha un elenco di operatori: le modifiche non dicono chi le ha fatte. Aggiungi i nomi con `tessera operator add NOME`."
            )) }
        } @else {
            (form_errors(ctx, errors))
            form method="post" action="/who" class="stack" novalidate {
                (csrf(ctx))
                input type="hidden" name="next" value=(typed.get("next"));
                fieldset class={@if errors.get("name").is_some() { "has-error" }} {
                    legend { (ctx.t("Your name", "Il tuo nome")) }
                    @for (i, o) in list.operators.iter().enumerate() {
                        div class="field check" {
                            input type="radio" name="name" id={"f-name-" (i)} value=(o.name)
                                checked[fold_name(&o.name) == fold_name(chosen)] required;
                            label for={"f-name-" (i)} { (o.name) }
                        }
                    }
                    @if let Some(e) = errors.get("name") { p class="field-error" id="e-name" { (e) } }
                }
                @if needs_password(state) {
                    (input("password", ctx.t("Password", "Password"), "", errors,
                        Opts { kind: "password", required: true, autocomplete: Some("current-password"),
                            hint: Some(ctx.t("This page can be reached from other computers: say it is you.", "Questa pagina è raggiungibile da altri computer: conferma che sei tu.")),
                            ..Opts::default() }))
                }
                div class="actions" { button type="submit" { (ctx.t("Start working", "Inizia a lavorare")) } }
            }
        }
    };
    page(ctx, Section::Other, title, body)
}

pub async fn form(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let list = Operators::load(&state.dir, &ctx.ui)?;
    let mut typed = Typed::default();
    let next = query.iter().find(|(k, _)| k == "next").map(|(_, v)| v.as_str()).unwrap_or("/");
    typed.set("next", safe_next(next));
    if let Some(current) = &ctx.operator {
        typed.set("name", current.clone());
    }
    Ok(who_page(&ctx, &state, &list, &typed, &FieldErrors::default()))
}

pub async fn choose(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let typed = Typed(form);
    let list = Operators::load(&state.dir, &ctx.ui)?;
    let mut errors = FieldErrors::default();
    let found = list.find(typed.get("name"));
    let password_ok = match found {
        Some(o) if needs_password(&state) && o.has_password() => {
            // argon2id off the async threads, a few at a time; a wrong one waits a
            // second more, so guessing over the network is slow.
            let _place = state.password_checks.acquire().await.context("the page is stopping")?;
            let (o, typed_password) = (o.clone(), typed.get("password").to_string());
            let ok = tokio::task::spawn_blocking(move || o.password_is(&typed_password))
                .await
                .context("a password check stopped")?;
            if !ok {
                tokio::time::sleep(WRONG_PASSWORD_PAUSE).await;
            }
            ok
        }
        _ => false,
    };
    match found {
        None => errors.add("name", ctx.t("Choose your name in the list.", "Scegli il tuo nome nell'elenco.")),
        Some(o) if needs_password(&state) && !o.has_password() => errors.add(
            "name",
            ctx.t(
                "This page can be reached from other computers, and this operator has no password yet: give one with `tessera operator add NAME --password` (after `tessera operator remove NAME`).",
                "Questa pagina è raggiungibile da altri computer, e questo operatore non ha ancora una password: dagliela con `tessera operator add NOME --password` (dopo `tessera operator remove NOME`).",
            ),
        ),
        Some(_) if needs_password(&state) && !password_ok => {
            tracing::info!("operator choice refused: wrong password");
            errors.add("password", ctx.t("Wrong password.", "Password sbagliata."))
        }
        Some(_) => {}
    }
    let Some(operator) = found.filter(|_| errors.is_empty()) else {
        return Ok(who_page(&ctx, &state, &list, &typed, &errors));
    };
    let mut response = see_other(&safe_next(typed.get("next")));
    let value = format!(
        "{WHO_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        who_token(&state.secret, &operator.name)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use tessera_records::kind::RecordKind;

    use crate::web::testing::{tessera, TestPage, ADULT};

    fn with_operators(page_bound: &str) -> TestPage {
        TestPage::bound(page_bound, |data| {
            std::env::set_var(crate::operators::PASSWORD_ENV, "una-password-lunga");
            tessera(data, &["operator", "add", "Anna Rossi", "--password"]);
            std::env::remove_var(crate::operators::PASSWORD_ENV);
            tessera(data, &["operator", "add", "Luca Bianchi"]);
        })
    }

    #[tokio::test]
    async fn without_a_list_nobody_is_asked() {
        let page = TestPage::new();
        assert_eq!(page.get("/").await.status, 200);
        assert_eq!(page.post("/people", ADULT).await.status, 303);
    }

    #[tokio::test]
    async fn the_page_asks_who_is_working_and_every_change_records_them() {
        let page = with_operators("127.0.0.1:7421");
        let home = page.get("/people").await;
        assert_eq!(home.status, 303);
        assert_eq!(home.location(), "/who?next=%2Fpeople");
        let refused = page.post("/people", ADULT).await;
        assert_eq!(refused.status, 303, "no write before choosing");
        assert_eq!(page.count(RecordKind::Attendee), 0);

        let asked = page.get("/who?next=%2Fpeople").await;
        assert!(
            asked.body.contains("Chi sta lavorando?") && asked.body.contains("Anna Rossi"),
            "{}",
            asked.body
        );
        assert!(!asked.body.contains(r#"type="password""#), "no password on loopback");
        let wrong = page.choose(&[("name", "Mallory"), ("next", "/people")]).await;
        assert_eq!(wrong.status, 200);
        assert!(wrong.body.contains("Scegli il tuo nome nell'elenco."), "{}", wrong.body);

        let chosen = page.choose(&[("name", "Luca Bianchi"), ("next", "/people")]).await;
        assert_eq!(chosen.status, 303);
        assert_eq!(chosen.location(), "/people");
        let people = page.get("/people").await;
        assert!(
            people.body.contains("Al lavoro:") && people.body.contains("Luca Bianchi"),
            "{}",
            people.body
        );
        assert_eq!(page.post("/people", ADULT).await.status, 303);
        let dir = page.hub.read(|node| node.dir().to_path_buf());
        let log = tessera(&dir, &["audit", "log", dir.to_str().unwrap(), "--kind", "attendee"]);
        assert!(log.contains("fatto da Luca Bianchi"), "{log}");
    }

    #[tokio::test]
    async fn beyond_loopback_the_password_is_asked_and_checked() {
        let page = with_operators("0.0.0.0:7421");
        let asked = page.get("/who").await;
        assert!(asked.body.contains(r#"type="password""#), "{}", asked.body);
        let wrong = page.choose(&[("name", "Anna Rossi"), ("password", "sbagliata")]).await;
        assert!(wrong.body.contains("Password sbagliata."), "{}", wrong.body);
        assert_eq!(page.get("/").await.status, 303, "still not chosen");
        let none = page.choose(&[("name", "Luca Bianchi"), ("password", "qualsiasi")]).await;
        assert!(none.body.contains("non ha ancora una password"), "{}", none.body);
        let right = page
            .choose(&[("name", "Anna Rossi"), ("password", "una-password-lunga"), ("next", "//evil.example")])
            .await;
        assert_eq!(right.status, 303);
        assert_eq!(right.location(), "/", "never to another site");
        assert_eq!(page.get("/").await.status, 200);
    }
}
