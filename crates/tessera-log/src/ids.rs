//! Newtypes for every identifier and key of the signed log.
//!
//! Public keys are the identities: a network is named by its coordinator's key, a
//! partner by its partner key, a device (the author of envelopes) by its device key.
//! Secret keys never print: their `Debug` is redacted and they have no `Display`.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::codec::DecodeError;

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// BLAKE3 in derive-key mode: `context` separates the domains (envelope ids,
    /// commitments, trust ids) so that a hash of one kind is never valid as another.
    pub(crate) fn derive(context: &str, parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub Hash);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0 .0
            }
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(Hash(bytes))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

hash_newtype!(
    /// The id of an envelope: a hash of its signed header. The next envelope of the same
    /// author names it as `prev`, which makes each author's history a hash chain.
    EnvelopeId
);
hash_newtype!(
    /// The commitment to one change body: a hash over a random salt and the body, so a
    /// short erased body cannot be recovered by guessing and hashing.
    Commitment
);
hash_newtype!(
    /// The id of a trust entry (certificate or revocation): a hash of its signed bytes.
    TrustEntryId
);

/// Public keys remembered as valid, per thread (see [`PublicKey::from_bytes`]).
const VALID_KEYS_MAX: usize = 4096;

thread_local! {
    static VALID_KEYS: std::cell::RefCell<std::collections::HashSet<[u8; 32]>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// An ed25519 public key, checked to be a valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Checks that the bytes are a canonical point that is not of small order: weak
    /// keys would let anyone produce signatures that verify for many messages.
    ///
    /// The check decompresses the point (≈20 µs); every sync message names the same few
    /// hundred device keys again, so keys that passed are remembered per thread (a
    /// bounded set, cleared when full): the answer is the same, the work is not.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, DecodeError> {
        if VALID_KEYS.with(|known| known.borrow().contains(&bytes)) {
            return Ok(PublicKey(bytes));
        }
        match VerifyingKey::from_bytes(&bytes) {
            Ok(key) if !key.is_weak() => {
                VALID_KEYS.with(|known| {
                    let mut known = known.borrow_mut();
                    if known.len() >= VALID_KEYS_MAX {
                        known.clear();
                    }
                    known.insert(bytes);
                });
                Ok(PublicKey(bytes))
            }
            _ => Err(DecodeError::Invalid {
                what: "public key",
                offset: 0,
                reason: "not a valid ed25519 public key",
            }),
        }
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The same key as an X25519 public key (the Montgomery u-coordinate of the
    /// point), so that keys can be wrapped for a device with the key it is certified
    /// with (see `tessera-seal`).
    pub fn to_x25519(&self) -> [u8; 32] {
        self.verifying_key().to_montgomery().to_bytes()
    }
    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        // Invariant: only constructed through `from_bytes`, which checked the point.
        VerifyingKey::from_bytes(&self.0).unwrap_or_else(|_| unreachable!("checked in from_bytes"))
    }
    /// Strict ed25519 verification (rejects malleable and small-order signatures).
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        verify_strict(&self.verifying_key(), message, signature)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

macro_rules! key_newtype {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub PublicKey);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                self.0.as_bytes()
            }
            pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, DecodeError> {
                PublicKey::from_bytes(bytes).map($name)
            }
            /// The first 8 bytes in hex: enough for a person to tell keys apart.
            pub fn short(&self) -> String {
                self.0.to_hex()[..16].to_string()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, " {:?}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

key_newtype!(
    /// The programme coordinator's key; its public half names the network.
    NetworkId,
    "network"
);
key_newtype!(
    /// A partner organisation's key, certified by the network key.
    PartnerKey,
    "partner"
);
key_newtype!(
    /// A node's key, made at `init`, certified by a partner; the author of envelopes.
    DeviceKey,
    "device"
);

/// Strict ed25519 verification with an already decompressed key (decompressing costs
/// about a tenth of a verification, so callers that verify many signatures of one key
/// keep it).
pub(crate) fn verify_strict(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &sig).is_ok()
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..8]))
    }
}

/// An ed25519 secret key. Never printed, never serialized except by the key file
/// code of the store, which writes it with owner-only permissions.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }
    /// A key from 32 secret bytes (a key file, or a fixed seed in tests and vectors).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(&seed))
    }
    /// The 32 secret bytes, for the key file writer only.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    /// The X25519 secret scalar of this key (the first half of SHA-512 of the seed,
    /// as ed25519 derives it), matching [`PublicKey::to_x25519`]. The caller clamps
    /// and must wipe it after use.
    pub fn to_x25519_scalar_bytes(&self) -> [u8; 32] {
        self.0.to_scalar_bytes()
    }
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
    /// A second handle on the same key, for a signer that must outlive the caller's
    /// borrow (the bundle writer signs when it finishes). Crate-internal on purpose:
    /// secret keys are not `Clone`, so copies stay visible in review.
    pub(crate) fn duplicate(&self) -> SecretKey {
        SecretKey(self.0.clone())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {:?}, secret <redacted>)", self.public())
    }
}

/// A document id: 16 random bytes chosen when the record is created.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DocId(pub [u8; 16]);

impl DocId {
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; 16];
        getrandom::getrandom(&mut id)?;
        Ok(DocId(id))
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({})", self.to_hex())
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A position in one author's history: contiguous from 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Seq(pub u64);

impl Seq {
    pub const FIRST: Seq = Seq(1);
    /// The seq after this one, or `None` at the end of the range (never reached in
    /// practice: 2^64 transactions).
    pub fn next(self) -> Option<Seq> {
        self.0.checked_add(1).map(Seq)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Wall-clock time in milliseconds since the Unix epoch. Informational only: clocks
/// of offline machines lie, so no rule of the log depends on it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub i64);

/// A 16-byte random salt mixed into a body's commitment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Salt(pub [u8; 16]);

impl Salt {
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt)?;
        Ok(Salt(salt))
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_keys_do_not_change_what_is_valid() {
        let valid = SecretKey::from_seed([7; 32]).public();
        // A small-order point and bytes that are no curve point stay refused
        // however many valid keys were seen before and after.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let not_a_point = (2u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some 32 equal bytes are not a curve point");
        for _ in 0..3 {
            assert_eq!(PublicKey::from_bytes(*valid.as_bytes()), Ok(valid));
            assert!(PublicKey::from_bytes(weak).is_err());
            assert!(PublicKey::from_bytes(not_a_point).is_err());
        }
        // The set is bounded: filling it past its limit keeps answers right.
        for i in 0..(VALID_KEYS_MAX as u64 + 10) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            let key = SecretKey::from_seed(seed).public();
            assert_eq!(PublicKey::from_bytes(*key.as_bytes()), Ok(key));
        }
        VALID_KEYS.with(|known| assert!(known.borrow().len() <= VALID_KEYS_MAX));
        assert!(PublicKey::from_bytes(weak).is_err());
    }
}
