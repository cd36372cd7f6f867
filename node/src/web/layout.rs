//! The frame of every page: language, skip link, navigation, the language switch, the
//! one stylesheet and the one small script (both inside the binary, see `assets/`).

use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::security::Ctx;

/// The sections of the page, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    People,
    Devices,
    Loans,
    Sessions,
    Conflicts,
    Reports,
    Usb,
    /// Outside the sections (the "who is working" screen): none is current.
    Other,
    /// Printable pages: no navigation.
    Print,
}

fn nav_items(ctx: &Ctx) -> [(Section, &'static str, &'static str); 8] {
    [
        (Section::Home, "/", ctx.t("Today", "Oggi")),
        (Section::People, "/people", ctx.t("People", "Persone")),
        (Section::Devices, "/devices", ctx.t("Devices", "Dispositivi")),
        (Section::Loans, "/loans", ctx.t("Loans", "Prestiti")),
        (Section::Sessions, "/sessions", ctx.t("Sessions", "Incontri")),
        (Section::Conflicts, "/conflicts", ctx.t("Conflicts", "Conflitti")),
        (Section::Reports, "/reports", ctx.t("Reports", "Report")),
        (Section::Usb, "/usb", ctx.t("USB stick", "Chiavetta USB")),
    ]
}

/// The page asked, with `lang=WORD` in place of any `lang` it had.
fn with_lang(here: &str, word: &str) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut pairs: Vec<&str> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("lang=")).collect();
    let lang = format!("lang={word}");
    pairs.push(&lang);
    format!("{path}?{}", pairs.join("&"))
}

fn lang_switch(ctx: &Ctx) -> Markup {
    let it = ctx.lang() == tessera_records::vocab::Lang::It;
    html! {
        nav class="lang" aria-label=(ctx.t("Language", "Lingua")) {
            @if it {
                span aria-current="true" { "Italiano" } " · "
                a href=(with_lang(&ctx.here, "en")) lang="en" hreflang="en" { "English" }
            } @else {
                a href=(with_lang(&ctx.here, "it")) lang="it" hreflang="it" { "Italiano" } " · "
                span aria-current="true" { "English" }
            }
        }
    }
}

/// A whole page.
pub fn page(ctx: &Ctx, section: Section, title: &str, body: Markup) -> Response {
    let lang = if ctx.lang() == tessera_records::vocab::Lang::En { "en" } else { "it" };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tessera" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body class={@if section == Section::Print { "print-page" }} {
                a class="skip" href="#main" { (ctx.t("Skip to content", "Vai al contenuto")) }
                @if section != Section::Print {
                    header class="top" {
                        a class="brand" href="/" { "Tessera" }
                        nav class="main" aria-label=(ctx.t("Sections", "Sezioni")) {
                            ul {
                                @for (s, href, label) in nav_items(ctx) {
                                    li { a href=(href) aria-current=[(s == section).then_some("page")] { (label) } }
                                }
                            }
                        }
                        @if let Some(who) = &ctx.operator {
                            p class="who" {
                                (ctx.t("Working:", "Al lavoro:")) " " strong { (who) } " · "
                                a href="/who" { (ctx.t("change", "cambia")) }
                            }
                        }
                        (lang_switch(ctx))
                    }
                }
                main id="main" tabindex="-1" {
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A short confirmation or notice above a page's content.
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { div class={"notice " (kind)} role="status" { p { (text) } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_keeps_the_page_and_its_query() {
        assert_eq!(with_lang("/people?q=giu", "en"), "/people?q=giu&lang=en");
        assert_eq!(with_lang("/people?lang=it&q=a", "en"), "/people?q=a&lang=en");
        assert_eq!(with_lang("/", "it"), "/?lang=it");
    }
}
