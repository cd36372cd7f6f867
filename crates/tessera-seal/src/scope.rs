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

/// The scope keys a device holds, by scope and epoch. Old epochs stay: bodies sealed
/// before a rotation are read with the key of their epoch.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: BTreeMap<(Scope, Epoch), ScopeKey>,
}

impl KeyRing {
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Adds a key; a key already held for its scope and epoch is kept.
    pub fn insert(&mut self, key: ScopeKey) {
        self.keys.entry((key.scope, key.epoch)).or_insert(key);
    }

    pub fn get(&self, scope: &Scope, epoch: Epoch) -> Option<&ScopeKey> {
        self.keys.get(&(*scope, epoch))
    }

    /// The newest epoch's key of `scope`: the one new bodies are sealed with.
    pub fn current(&self, scope: &Scope) -> Option<&ScopeKey> {
        self.keys.range((*scope, Epoch(0))..=(*scope, Epoch(u32::MAX))).next_back().map(|(_, key)| key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
