//! Reports (stub while the pages are built).
use super::not_found;
use super::security::Ctx;
use axum::response::Response;
pub async fn page(ctx: Ctx) -> Response {
    not_found(&ctx)
}
pub async fn csv(ctx: Ctx) -> Response {
    not_found(&ctx)
}
