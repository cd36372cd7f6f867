//! Sessions (stub while the pages are built).
use super::not_found;
use super::security::Ctx;
use axum::response::Response;
pub async fn week(ctx: Ctx) -> Response {
    not_found(&ctx)
}
pub async fn create(ctx: Ctx) -> Response {
    not_found(&ctx)
}
pub async fn new_form(ctx: Ctx) -> Response {
    not_found(&ctx)
}
pub async fn show(ctx: Ctx) -> Response {
    not_found(&ctx)
}
pub async fn attendance(ctx: Ctx) -> Response {
    not_found(&ctx)
}
