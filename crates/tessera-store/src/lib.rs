//! Persistence for a Tessera node or relay.
//!
//! The log ([`segments`]) is the truth: append-only, checksummed, fsync'd before any
//! write is acknowledged. Everything in sled ([`derived`] rows: heads, chain index,
//! fork evidence, trust entries, document index) is derived from it and rebuilt when
//! missing or damaged. [`Store`] ties the two together and verifies every entry
//! before it is stored. [`keyfile`] keeps secret keys in owner-only files.
//!
//! sled 0.34 is never the only copy of anything: its `flush` is not an fsync and it has
//! open reports of corruption after abrupt stops, so it is treated as a cache.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod derived;
pub mod error;
pub mod keyfile;
pub mod segments;
pub mod store;
pub mod trust_file;

pub use error::StoreError;

/// Whether a log record may be written, whatever level the operator asked for. sled's
/// debug and trace records dump pages, and pages hold documents, names and phone
/// numbers included: they never pass. Every binary filters with this.
pub fn log_record_allowed(meta: &tracing::Metadata<'_>) -> bool {
    let from_sled = meta.target() == "sled" || meta.target().starts_with("sled::");
    !(from_sled && *meta.level() > tracing::Level::INFO)
}
pub use keyfile::{
    create_key_dir, needs_passphrase, read_secret_key, read_secret_key_with_passphrase, write_secret_key,
    write_secret_key_with_passphrase, KeyFileError, PASSPHRASE_CHARS_MIN,
};
pub use segments::{
    DamagedRange, LogPosition, OpenReport, RecordLocation, SegmentError, SegmentLog, UnreadTail,
};
pub use store::{
    read_store, Damage, DamagedEntry, DerivedStatus, Fork, IngestReport, Policy, Rejected, SigningBlocked,
    SkippedRecord, Store, StoreContents, StoreOpenReport, INGEST_ENTRIES_MAX,
};
