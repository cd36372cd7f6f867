//! Every size limit of the signed-log formats, in one place.
//!
//! Decoders check each length against these before allocating, so that bytes from a
//! peer, a bundle or a damaged disk can never make a node allocate more than this.
//! Changing a limit downwards is a protocol change: older data may stop decoding.

/// Largest encoded envelope, header, signature and bodies included.
pub const ENVELOPE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most (document, change) pairs one transaction may carry.
pub const CHANGES_PER_ENVELOPE_MAX: usize = 1024;
/// Largest single change body (one automerge change of one document).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Longest text field (site name, partner name, revocation reason), in UTF-8 bytes.
pub const TEXT_BYTES_MAX: usize = 256;
/// Largest encoded trust entry (certificate or revocation).
pub const TRUST_ENTRY_BYTES_MAX: usize = 256 * 1024;
/// Most validly signed trust entries one node holds while their issuer's authority
/// cannot be checked yet (a revocation that arrived before the certificate it needs).
/// Past it, further such entries are refused: only then does arrival order matter.
pub const TRUST_ENTRIES_WAITING_MAX: usize = 4096;
/// Most per-device cut-offs one partner revocation may list.
pub const PARTNER_REVOCATION_DEVICES_MAX: usize = 4096;
/// Most authors one version vector may list (ten times the scale workload's devices).
pub const VERSION_VECTOR_AUTHORS_MAX: usize = 100_000;
/// Largest encoded log entry (an envelope or a trust entry plus its one-byte tag).
pub const LOG_ENTRY_BYTES_MAX: usize = ENVELOPE_BYTES_MAX + 1;
/// Largest encoded version vector: version, count and `VERSION_VECTOR_AUTHORS_MAX`
/// items of 72 bytes (7.2 MB).
pub const VERSION_VECTOR_BYTES_MAX: usize = 1 + 4 + 72 * VERSION_VECTOR_AUTHORS_MAX;
/// Most entries one bundle file may hold (over thirty times the scale workload's
/// 1.5 million changes, each envelope holding at least one).
pub const BUNDLE_ENTRIES_MAX: u64 = 50_000_000;
