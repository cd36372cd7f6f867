//! Scopes, epochs, scope keys and the ring of keys a device holds.

use std::collections::BTreeMap;
use std::fmt;

use tessera_log::PartnerKey;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::OpenError;

/// Who may read a body: every certified device of the network (sites, devices,
/// loans, sessions: they name people by id only), or the devices a partner grants
/// (the attendees it registered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Network,
    Partner(PartnerKey),
}

const SCOPE_NETWORK: u8 = 0;
const SCOPE_PARTNER: u8 = 1;

impl Scope {
    /// Tag byte, then the partner's key for a partner scope (1 or 33 bytes).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Scope::Network => out.push(SCOPE_NETWORK),
            Scope::Partner(partner) => {
                out.push(SCOPE_PARTNER);
                out.extend_from_slice(partner.as_bytes());
            }
        }
    }

    /// Decodes a scope at the start of `bytes`; returns it and the bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<(Scope, usize), OpenError> {
        match bytes.first() {
            Some(&SCOPE_NETWORK) => Ok((Scope::Network, 1)),
            Some(&SCOPE_PARTNER) => {
                let key: [u8; 32] = bytes
                    .get(1..33)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(OpenError::Malformed { reason: "partner scope cut short" })?;
                let partner = PartnerKey::from_bytes(key)
                    .map_err(|_| OpenError::Malformed { reason: "bad partner key" })?;
                Ok((Scope::Partner(partner), 33))
            }
            Some(_) => Err(OpenError::Malformed { reason: "unknown scope tag" }),
            None => Err(OpenError::Malformed { reason: "scope missing" }),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Network => f.write_str("the network scope"),
            Scope::Partner(partner) => write!(f, "the scope of partner {}", partner.short()),
        }
    }
}

/// The generation of a scope's key: 0 at first, one more at each rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u32);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The secret key of one scope at one epoch. Wiped from memory when dropped; never
/// printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ScopeKey {
    #[zeroize(skip)]
    scope: Scope,
    #[zeroize(skip)]
    epoch: Epoch,
    key: [u8; 32],
}

impl ScopeKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(scope: Scope, epoch: Epoch) -> Result<ScopeKey, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key)?;
        Ok(ScopeKey { scope, epoch, key })
    }

    /// A key from its 32 secret bytes (unwrapped, read from a key file, or fixed in
    /// test vectors).
    pub fn from_bytes(scope: Scope, epoch: Epoch, key: [u8; 32]) -> ScopeKey {
        ScopeKey { scope, epoch, key }
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The 32 secret bytes, for sealing and for the key file writer only.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for ScopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeKey({}, epoch {}, secret)", self.scope, self.epoch)
    }
}

/// A key's public fingerprint: 16 bytes of BLAKE3 (derive-key mode) over the secret.
/// Grants name the key they carry by it, so every device can tell which readers hold
/// which key without being able to open the grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 16]);

const KEY_ID_CONTEXT: &str = "tessera 2026-12 scope key id v1";

impl KeyId {
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl ScopeKey {
    /// The key's fingerprint (reveals nothing of the key).
    pub fn id(&self) -> KeyId {
        let hash = blake3::derive_key(KEY_ID_CONTEXT, &self.key);
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash[..16]);
        KeyId(id)
    }
}

/// The scope keys a device holds, by scope and epoch. Old epochs stay: bodies sealed
/// before a rotation are read with the key of their epoch. Two devices that start a
/// scope or rotate it at the same time make two keys of one epoch: both are kept,
/// a body opens with whichever it was sealed with, and new bodies are sealed with the
/// one of lowest [`KeyId`], so every device converges on the same key.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: BTreeMap<(Scope, Epoch), Vec<ScopeKey>>,
}

/// Keys one ring holds for one scope and epoch, at most: more means a device makes
/// keys it should not, and are dropped.
pub const KEYS_PER_EPOCH_MAX: usize = 1024;

impl KeyRing {
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Adds a key. Returns whether it is new to the ring.
    pub fn insert(&mut self, key: ScopeKey) -> bool {
        let keys = self.keys.entry((key.scope, key.epoch)).or_default();
        let id = key.id();
        if keys.iter().any(|k| k.id() == id) || keys.len() >= KEYS_PER_EPOCH_MAX {
            return false;
        }
        keys.push(key);
        keys.sort_by_key(|k| k.id());
        true
    }

    /// Every key held of `scope` at `epoch`, lowest id first.
    pub fn get(&self, scope: &Scope, epoch: Epoch) -> &[ScopeKey] {
        self.keys.get(&(*scope, epoch)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The key new bodies of `scope` are sealed with: the newest epoch's, lowest id.
    pub fn current(&self, scope: &Scope) -> Option<&ScopeKey> {
        self.keys
            .range((*scope, Epoch(0))..=(*scope, Epoch(u32::MAX)))
            .next_back()
            .and_then(|(_, keys)| keys.first())
    }

    /// Every key held, oldest epoch first.
    pub fn iter(&self) -> impl Iterator<Item = &ScopeKey> {
        self.keys.values().flatten()
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_keys_of_one_epoch_are_both_held_and_the_lowest_id_is_current() {
        let a = ScopeKey::from_bytes(Scope::Network, Epoch(0), [1; 32]);
        let b = ScopeKey::from_bytes(Scope::Network, Epoch(0), [2; 32]);
        let lowest = if a.id() < b.id() { a.clone() } else { b.clone() };
        let mut ring = KeyRing::new();
        assert!(ring.insert(a.clone()));
        assert!(ring.insert(b.clone()));
        assert!(!ring.insert(a.clone()), "a key already held is not new");
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.get(&Scope::Network, Epoch(0)).len(), 2);
        assert_eq!(ring.current(&Scope::Network).map(ScopeKey::id), Some(lowest.id()));
        let newer = ScopeKey::from_bytes(Scope::Network, Epoch(1), [3; 32]);
        ring.insert(newer.clone());
        assert_eq!(ring.current(&Scope::Network).map(ScopeKey::id), Some(newer.id()));
        assert!(ring.get(&Scope::Network, Epoch(7)).is_empty());
    }
}
