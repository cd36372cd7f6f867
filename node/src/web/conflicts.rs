//! Conflicts (stub while the pages are built).
use super::names::Names;
use super::not_found;
use super::security::Ctx;
use crate::ui::Ui;
use axum::response::Response;
use tessera_records::conflicts::Conflict;
pub fn describe(c: &Conflict, _names: &Names, _ui: &Ui) -> String {
    c.word().to_string()
}
pub async fn list(ctx: Ctx) -> Response {
    not_found(&ctx)
}
pub async fn resolve(ctx: Ctx) -> Response {
    not_found(&ctx)
}
