//! Persistence for a Tessera node or relay (placeholder while the crate is built).

pub mod segments;
