//! The signed log of Tessera: identities, the trust chain, envelopes, hash chains,
//! version vectors and their verification.
//!
//! Pure: no files, no sockets, no clock, no async. Time and salts are passed in;
//! randomness is drawn only by the explicit `generate`/`random` constructors. Every
//! decoder takes untrusted bytes, checks each length against [`limits`] before
//! allocating, and returns an error instead of panicking.
//!
//! Map: [`ids`] (keys and hashes), [`trust`] (certificates, revocations,
//! [`TrustState`]), [`envelope`] (the signed transaction), [`chain`] (where an envelope
//! sits, and [`verify_envelope`]), [`version_vector`], [`entry`] (the tagged record),
//! [`bundle`] (the signed file of entries carried offline), [`erasure`] (a person's
//! bodies removed from every copy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admit;
pub mod bundle;
pub mod chain;
pub mod channel;
pub mod codec;
pub mod entry;
pub mod envelope;
pub mod erasure;
pub mod error;
pub mod ids;
pub mod limits;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod trust;
pub mod version_vector;

pub use admit::{admit, admit_with, fork_point, still_counts, Admission, Fork, LogView, Staging};
pub use bundle::{BundleError, BundleHeader, BundleReader, BundleWriter};
pub use chain::{check_link, verify_envelope, Head, Placement};
pub use codec::DecodeError;
pub use entry::LogEntry;
pub use envelope::{commit, Body, ChangeRef, Envelope, Header, NewChange};
pub use erasure::{erasure_counts, person_id, Erasure, ErasureError, ErasureReason, Person};
pub use error::{BuildError, VerifyError};
pub use ids::{
    Commitment, DeviceKey, DocId, EnvelopeId, Hash, NetworkId, PartnerKey, PublicKey, Salt, SecretKey, Seq,
    Signature, Timestamp, TrustEntryId,
};
pub use trust::{
    Added, DeviceCertificate, DeviceRevocation, DeviceRole, PartnerCertificate, PartnerRevocation,
    PersonErasure, TrustEntry, TrustState, TrustStatement,
};
pub use version_vector::{SeqRange, VersionVector};
