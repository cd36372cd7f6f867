//! Read scopes: who may read a change body, and the bytes that make it so.
//!
//! Every change body is sealed with the key of its **scope** (the whole network, or
//! one partner's attendees) at an **epoch** of that scope (a new epoch whenever a
//! reader is revoked, so a revoked device reads nothing written after). Scope keys are
//! random, made by a device of the scope's owner, and **wrapped** for each device that
//! may read them with that device's own certified key (X25519 from its ed25519 key).
//! A carrier (a relay, a USB stick) holds no key: it verifies signatures and body
//! commitments, which are over the sealed bytes, and reads only the scope and epoch a
//! sealed body names (`docs/protocol.md`, "Sealed bodies").
//!
//! This crate is the formats and the cryptography only: which scope a record belongs
//! to, who holds which key and when epochs change are the node's decisions.
//! Decoders of untrusted bytes return [`OpenError`], never panic.

mod body;
mod error;
mod grant;
mod scope;
mod wrap;

pub use body::{open_body, seal_body, seal_body_with_nonce, SealedHeader, NONCE_BYTES, SEALED_OVERHEAD_MAX};
pub use error::OpenError;
pub use grant::{
    decode_grants, encode_grants, grant_doc_id, is_grant_doc, Grant, GRANTS_PER_BODY_MAX, GRANT_DOC_KIND,
};
pub use scope::{Epoch, KeyId, KeyRing, Scope, ScopeKey, KEYS_PER_EPOCH_MAX};
pub use wrap::{unwrap_key, wrap_key, wrap_key_with_ephemeral, WrappedKey, WRAPPED_KEY_BYTES};

/// The first byte of every sealed body and wrapped key of this format.
pub const FORMAT_VERSION: u8 = 1;

#[cfg(test)]
mod vectors;
