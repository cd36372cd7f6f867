//! Read keys: which scope keys this node holds, who holds which, and the grants it
//! owes. Derived from the grant documents in the log (`tessera_seal::grant`), like
//! every other derived state, and persisted beside the materialized records as the
//! grants themselves (wrapped: sled holds no key a thief could use without the device
//! key, which is beside it anyway).
//!
//! The rules, checked against the signed author of each grant:
//! - the network scope is granted by any certified device that is not a relay, to
//!   every certified device that is not a relay and not revoked;
//! - a partner's scope (the personal details of the attendees it registered) is
//!   granted by that partner's devices, to that partner's devices.
//!
//! A device that writes and holds no key of a scope makes one (so a new hub works
//! before its first sync) and wraps it for every reader it knows; a device that holds
//! keys wraps them for every reader that lacks them, whenever it writes and while it
//! serves; a revocation of a device that held the current key makes a new epoch.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use tessera_log::{DeviceCertificate, DeviceKey, DeviceRole, DocId, NetworkId, SecretKey, TrustState};
use tessera_seal::{Epoch, Grant, KeyId, KeyRing, OpenError, Scope, ScopeKey};

/// Who may read `scope`, by certificate.
fn may_read(scope: &Scope, cert: &DeviceCertificate) -> bool {
    cert.role != DeviceRole::Relay
        && match scope {
            Scope::Network => true,
            Scope::Partner(partner) => cert.partner == *partner,
        }
}

/// The devices that may read `scope` now: its certified readers, and every device some
/// grant of the scope was ever made to (an auditor, another partner's desk: explicit
/// grants carry over to new epochs); never a revoked device nor a relay.
fn readers(trust: &TrustState, scope: &Scope, known: &BTreeMap<KeyId, KnownKey>) -> BTreeSet<DeviceKey> {
    let certified = trust.devices().filter(|cert| may_read(scope, cert)).map(|cert| cert.device);
    let granted = known.values().filter(|k| k.scope == *scope).flat_map(|k| k.recipients.iter().copied());
    let is_relay = |device: &DeviceKey| trust.devices().any(|c| c.device == *device && c.role == DeviceRole::Relay);
    certified.chain(granted).filter(|device| trust.last_valid(device).is_none() && !is_relay(device)).collect()
}

/// A key some grant in the log names.
#[derive(Debug, Clone)]
struct KnownKey {
    scope: Scope,
    epoch: Epoch,
    recipients: BTreeSet<DeviceKey>,
}

/// What a body is to this node. Not `Debug`: a change may hold personal data.
#[allow(missing_debug_implementations)]
pub enum Opened {
    /// Readable: the automerge change (opened, or written before bodies were sealed).
    Change(Vec<u8>),
    /// Sealed with a key this node does not hold (yet).
    NoKey,
    /// Does not open with the key it names: altered, or sealed for another record.
    Forged(OpenError),
}

/// The keys of one node.
pub struct Keys {
    network: NetworkId,
    device: DeviceKey,
    ring: KeyRing,
    known: BTreeMap<KeyId, KnownKey>,
    /// Every grant accepted, in the order learned: what is persisted.
    accepted: Vec<Grant>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("held", &self.ring.len()).field("known", &self.known.len()).finish()
    }
}

/// Grants persisted, at most: beyond this a network makes keys it should not.
const ACCEPTED_GRANTS_MAX: usize = 100_000;

impl Keys {
    pub fn new(network: NetworkId, device: DeviceKey) -> Keys {
        Keys { network, device, ring: KeyRing::new(), known: BTreeMap::new(), accepted: Vec::new() }
    }

    /// The keys held.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Grants accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.len()
    }

    /// Takes the grants of one change of a grant document authored by `author`.
    /// Returns the scope epochs of the keys this node now holds and did not. Grants the
    /// author may not make, and grants for this device that do not open, are dropped
    /// with a warning.
    pub fn learn(
        &mut self,
        author: &DeviceCertificate,
        grants: Vec<Grant>,
        secret: &SecretKey,
    ) -> Vec<(Scope, Epoch)> {
        let mut new = Vec::new();
        for grant in grants {
            if !may_read(&grant.scope, author) {
                tracing::warn!(author = %author.device.short(), scope = %grant.scope, "a grant by a device that may not grant this scope was ignored");
                continue;
            }
            let (scope, epoch) = (grant.scope, grant.epoch);
            if self.take(grant, secret) {
                new.push((scope, epoch));
            }
        }
        new
    }

    /// Records one grant; returns whether it gave this node a key it did not hold.
    fn take(&mut self, grant: Grant, secret: &SecretKey) -> bool {
        let known = self.known.entry(grant.key).or_insert_with(|| KnownKey {
            scope: grant.scope,
            epoch: grant.epoch,
            recipients: BTreeSet::new(),
        });
        if known.scope != grant.scope
            || known.epoch != grant.epoch
            || !known.recipients.insert(grant.recipient)
        {
            return false;
        }
        let mut grew = false;
        if grant.recipient == self.device {
            match grant.open(&self.network, secret) {
                Ok(key) => grew = self.ring.insert(key),
                Err(e) => tracing::warn!(error = %e, "a key granted to this device does not open"),
            }
        }
        if self.accepted.len() < ACCEPTED_GRANTS_MAX {
            self.accepted.push(grant);
        }
        grew
    }

    /// Opens one body of `doc`.
    pub fn open(&self, doc: &DocId, body: &[u8]) -> Opened {
        match body.first() {
            Some(&tessera_seal::FORMAT_VERSION) => {
                match tessera_seal::open_body(&self.ring, &self.network, doc, body) {
                    Ok(change) => Opened::Change(change),
                    Err(OpenError::NoKey { .. }) => Opened::NoKey,
                    Err(e) => Opened::Forged(e),
                }
            }
            // An automerge change in clear, from a release before sealed bodies.
            _ => Opened::Change(body.to_vec()),
        }
    }

    /// The grants this node owes now, and the keys it makes for them, for the scopes in
    /// `scopes`: a first key of a scope it holds none of, a new epoch when a revoked
    /// device held the current one, and every key it holds wrapped for every reader
    /// that lacks it. Keys made here are returned so the caller can seal with them in
    /// the same envelope.
    pub fn owed(&self, trust: &TrustState, scopes: &[Scope]) -> Result<(Vec<Grant>, Vec<ScopeKey>)> {
        let mut grants = Vec::new();
        let mut made = Vec::new();
        for scope in scopes {
            let epoch_known =
                self.known.values().filter(|k| k.scope == *scope).map(|k| k.epoch).max().unwrap_or_default();
            let new_epoch = match self.ring.current(scope) {
                None => Some(epoch_known),
                Some(current) => {
                    let revoked_holder = self
                        .known
                        .values()
                        .filter(|k| k.scope == *scope && k.epoch == current.epoch())
                        .flat_map(|k| &k.recipients)
                        .any(|device| trust.last_valid(device).is_some());
                    // A rotation somebody else made is followed, not repeated.
                    (revoked_holder && epoch_known == current.epoch()).then(|| Epoch(current.epoch().0 + 1))
                }
            };
            if let Some(epoch) = new_epoch {
                made.push(
                    ScopeKey::generate(*scope, epoch)
                        .context("the operating system's random source failed")?,
                );
            }
            let held = self
                .ring
                .iter()
                .filter(|k| k.scope() == *scope)
                .chain(made.iter().filter(|k| k.scope() == *scope));
            let readers = readers(trust, scope, &self.known);
            for key in held {
                let id = key.id();
                let has = self.known.get(&id).map(|k| &k.recipients);
                for reader in readers.iter().copied() {
                    if has.is_some_and(|r| r.contains(&reader)) {
                        continue;
                    }
                    grants.push(
                        Grant::new(key, &self.network, reader)
                            .context("the operating system's random source failed")?,
                    );
                }
            }
        }
        Ok((grants, made))
    }

    /// Every key held of `scopes` wrapped for `recipient`, but those it holds already.
    pub fn grants_to(&self, recipient: DeviceKey, scopes: &[Scope]) -> Result<Vec<Grant>> {
        let mut grants = Vec::new();
        for key in self.ring.iter().filter(|k| scopes.contains(&k.scope())) {
            if self.known.get(&key.id()).is_some_and(|k| k.recipients.contains(&recipient)) {
                continue;
            }
            grants.push(Grant::new(key, &self.network, recipient).context("the operating system's random source failed")?);
        }
        Ok(grants)
    }

    /// The persisted form: every accepted grant.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in self.accepted.chunks(tessera_seal::GRANTS_PER_BODY_MAX) {
            let body = tessera_seal::encode_grants(chunk);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&body);
        }
        out
    }

    /// Reads the persisted form back (grants were checked when first learned).
    /// `None` when damaged: the caller rebuilds from the log.
    pub fn decode(
        network: NetworkId,
        device: DeviceKey,
        mut bytes: &[u8],
        secret: &SecretKey,
    ) -> Option<Keys> {
        let mut keys = Keys::new(network, device);
        while !bytes.is_empty() {
            let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            let body = bytes.get(4..4 + len)?;
            for grant in tessera_seal::decode_grants(body).ok()? {
                keys.take(grant, secret);
            }
            bytes = &bytes[4 + len..];
        }
        Some(keys)
    }
}
