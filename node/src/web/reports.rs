//! The funder's figures: per month, site, partner, audience, age band or request
//! type, over a period, with a bar chart drawn as inline SVG (no script, no library)
//! and the same table as a CSV download in the spreadsheet style of the operator's
//! language. The figures are the domain's ([`tessera_records::report`]): the same as
//! `tessera report`.

use anyhow::Result;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::IntoResponse;
use maud::{html, Markup};
use tessera_records::model::parse_date;
use tessera_records::report::{self, GroupBy, Report, ReportQuery};
use tessera_records::vocab::Lang;
use tessera_records::CsvStyle;

use super::forms::{self, input, select, with_any, FieldErrors, Opts, Typed};
use super::layout::{self, Section};
use super::security::Ctx;
use super::{read, AppState, PageResult};
use crate::commands::today;
use crate::ui::Ui;

/// The report a page's query asks for, and the partners to choose from.
fn make(node: &crate::node::Node, query: &Typed) -> Result<(Report, Vec<String>)> {
    let records = node.docs().all_records()?;
    let partners = report::partners(&records);
    let partner = query.optional("partner").filter(|p| partners.contains(p));
    let asked = ReportQuery {
        from: parse_date(query.get("from")),
        to: parse_date(query.get("to")),
        group_by: GroupBy::from_str_exact(query.get("by")).unwrap_or(GroupBy::Month),
        today: today(),
        partner,
    };
    Ok((report::report(&records, &asked), partners))
}

fn decimal(lang: Lang) -> char {
    match lang {
        Lang::En => '.',
        Lang::It => ',',
    }
}

/// Horizontal bars of the first figure (unique attendees) per group, with the
/// numbers written: readable without colour, and the table below says it all again.
fn chart(ctx: &Ctx, r: &Report) -> Markup {
    const LABEL: u32 = 200;
    const BAR_MAX: u32 = 440;
    const ROW: u32 = 28;
    let headers = r.headers(ctx.lang());
    let max = r.rows.iter().map(|row| row.unique_attendees).max().unwrap_or(0).max(1);
    let height = ROW * r.rows.len() as u32 + 8;
    html! {
        figure {
            svg class="chart" role="img" aria-labelledby="chart-title" viewBox={"0 0 " (LABEL + BAR_MAX + 80) " " (height)} width=(LABEL + BAR_MAX + 80) height=(height) xmlns="http://www.w3.org/2000/svg" {
                title id="chart-title" { (headers[1]) " " (ctx.t("by", "per")) " " (headers[0].to_lowercase()) }
                @for (i, row) in r.rows.iter().enumerate() {
                    @let y = ROW * i as u32 + 4;
                    @let width = (row.unique_attendees * u64::from(BAR_MAX) / max) as u32;
                    text x=(LABEL - 8) y=(y + 17) text-anchor="end" { (r.cells(row, ctx.lang(), decimal(ctx.lang()))[0]) }
                    rect class="bar" x=(LABEL) y=(y) width=(width.max(1)) height=(ROW - 8) {}
                    text x=(LABEL + width + 6) y=(y + 17) { (row.unique_attendees) }
                }
            }
            figcaption class="muted" { (headers[1]) " " (ctx.t("by", "per")) " " (headers[0].to_lowercase()) }
        }
    }
}

fn table(ctx: &Ctx, r: &Report) -> Markup {
    let lang = ctx.lang();
    html! {
        div class="table-wrap" { table {
            thead { tr { @for h in r.headers(lang) { th scope="col" { (h) } } } }
            tbody {
                @for row in &r.rows { tr { @for c in r.cells(row, lang, decimal(lang)) { td { (c) } } } }
                tr { @for c in r.cells(&r.total, lang, decimal(lang)) { th scope="row" { (c) } } }
            }
        } }
    }
}

fn group_options(ui: &Ui) -> forms::Options {
    forms::vocab_options(GroupBy::ALL, GroupBy::as_str, |g| g.label(ui.lang))
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let query = Typed(query);
    let wanted = query.clone();
    let (report, partners) = read(&state.hub, move |node| make(node, &wanted)).await?;
    let none = FieldErrors::default();
    let partners: forms::Options = partners.into_iter().map(|p| (p.clone(), p)).collect();
    let by = if query.get("by").is_empty() { "month" } else { query.get("by") };
    let csv_query = serde_urlencoded::to_string(
        ["by", "from", "to", "partner"].iter().map(|k| (*k, query.get(k))).collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    let title = ctx.t("Reports", "Report");
    let body = html! {
        h1 { (ctx.t("Figures for the funder", "Dati per il finanziatore")) }
        p class="muted" { (ctx.t("Counts only: no names leave with a report.", "Solo numeri: nessun nome esce con un report.")) }
        form method="get" action="/reports" class="filters" {
            (select("by", ctx.t("Per", "Per"), &group_options(&ctx.ui), by, &none, None))
            (input("from", ctx.t("From", "Dal"), query.get("from"), &none, Opts { kind: "date", ..Opts::default() }))
            (input("to", ctx.t("To", "Al"), query.get("to"), &none, Opts { kind: "date", ..Opts::default() }))
            (select("partner", ctx.t("Partner", "Ente"), &with_any(ctx.t("all", "tutti"), partners), query.get("partner"), &none, None))
            div class="field" { button type="submit" { (ctx.t("Show", "Mostra")) } }
        }
        @if report.rows.is_empty() {
            p { (ctx.t("Nothing to count in this period.", "Niente da contare in questo periodo.")) }
        } @else {
            (chart(&ctx, &report))
            (table(&ctx, &report))
        }
        @if report.skipped > 0 {
            p class="muted" { (report.skipped) " " (ctx.t("sessions or loans left out: their dates cannot be read.", "incontri o prestiti esclusi: le loro date non sono leggibili.")) }
        }
        div class="actions" { a class="button" href={"/reports/report.csv?" (csv_query)} download { (ctx.t("Download as CSV (spreadsheet)", "Scarica in CSV (foglio di calcolo)")) } }
    };
    Ok(layout::page(&ctx, Section::Reports, title, body))
}

/// The same report as a CSV file.
pub async fn csv(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> PageResult {
    let query = Typed(query);
    let wanted = query.clone();
    let (report, _) = read(&state.hub, move |node| make(node, &wanted)).await?;
    let text = report.to_csv(ctx.lang(), CsvStyle::of(ctx.lang()));
    let name = format!(
        "tessera-report-{}-{}.csv",
        report.group_by.as_str(),
        tessera_records::model::format_date(today())
    );
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use crate::web::testing::{tessera, TestPage};

    #[tokio::test]
    async fn figures_by_month_with_a_chart_and_the_same_csv() {
        let page = TestPage::with(|data| {
            tessera(
                data,
                &[
                    "session",
                    "add",
                    "--kind",
                    "public-meeting",
                    "--topic",
                    "Truffe online",
                    "--start",
                    "2026-11-20T18:00",
                    "--end",
                    "2026-11-20T19:00",
                    "--headcount",
                    "40",
                ],
            );
        });
        let shown = page.get("/reports?by=month").await;
        assert_eq!(shown.status, 200);
        assert!(shown.body.contains("<svg") && shown.body.contains("2026-11"), "{}", shown.body);
        assert!(shown.body.contains("Presenze") && shown.body.contains(">40<"), "the headcount counted");
        let csv = page.get("/reports/report.csv?by=month").await;
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(csv.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
        assert!(csv.body.starts_with("Mese;Partecipanti unici"), "Italian spreadsheet style: {}", csv.body);
        assert!(csv.body.contains("2026-11;"));
    }
}
