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

use crate::msg::SaidContext as _;
use anyhow::Result;
use tessera_log::{
    DeviceCertificate, DeviceKey, DeviceRole, DocId, Envelope, NetworkId, SecretKey, TrustState,
};
use tessera_seal::{Epoch, Grant, KeyId, KeyRing, OpenError, Scope, ScopeKey};

/// Who may read `scope`, by certificate.
fn may_read(scope: &Scope, cert: &DeviceCertificate) -> bool {
    cert.role != DeviceRole::Relay
        && match scope {
            Scope::Network => true,
            Scope::Partner(partner) => cert.partner == *partner,
        }
}

/// The devices that may read `scope` now: certified devices that are not relays nor
/// revoked, of the scope's partner, or (a partner's scope) certified devices of other
/// partners it granted explicitly. An uncertified key given a grant (an auditor's) is
/// not carried over to a new epoch: a revocation could not reach it, so it is granted
/// again, by hand, if it still should read.
fn readers(
    trust: &TrustState,
    scope: &Scope,
    known: &BTreeMap<(Scope, Epoch, KeyId), KnownKey>,
) -> BTreeSet<DeviceKey> {
    let granted: BTreeSet<DeviceKey> = known
        .iter()
        .filter(|((s, _, _), _)| s == scope)
        .flat_map(|(_, k)| k.recipients.iter().copied())
        .collect();
    trust
        .devices()
        .filter(|cert| cert.role != DeviceRole::Relay && trust.last_valid(&cert.device).is_none())
        .filter(|cert| may_read(scope, cert) || granted.contains(&cert.device))
        .map(|cert| cert.device)
        .collect()
}

/// A key some grant in the log names (by scope, epoch and key id: a grant cannot
/// claim another scope's key id and hide it).
#[derive(Debug, Clone, Default)]
struct KnownKey {
    recipients: BTreeSet<DeviceKey>,
}

/// Epochs beyond this are refused: no network rotates a key a million times, and a
/// grant naming such an epoch would stop rotations (the next one would overflow).
const EPOCH_MAX: u32 = 1_000_000;

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
    known: BTreeMap<(Scope, Epoch, KeyId), KnownKey>,
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
    fn learn(
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

    /// Takes one change of `envelope` if it is a grant document's: its grants, checked
    /// against the envelope's author under `trust`. Returns the scope epochs now held
    /// that were not, or `None` when `doc` is not a grant document (a record's change).
    pub fn learn_change(
        &mut self,
        trust: &TrustState,
        envelope: &Envelope,
        doc: &DocId,
        body: &[u8],
        secret: &SecretKey,
    ) -> Option<Vec<(Scope, Epoch)>> {
        if !tessera_seal::is_grant_doc(doc) {
            return None;
        }
        let Ok(author) = trust.authorize(&envelope.author(), envelope.seq()) else { return Some(Vec::new()) };
        match tessera_seal::decode_grants(body) {
            Ok(grants) => Some(self.learn(author, grants, secret)),
            Err(e) => {
                tracing::warn!(doc = %doc, error = %e, "a grant document change is malformed");
                Some(Vec::new())
            }
        }
    }

    /// Records one grant; returns whether it gave this node a key it did not hold.
    fn take(&mut self, grant: Grant, secret: &SecretKey) -> bool {
        if grant.epoch.0 > EPOCH_MAX {
            tracing::warn!(epoch = grant.epoch.0, "a grant naming an impossible epoch was ignored");
            return false;
        }
        if self.accepted.len() >= ACCEPTED_GRANTS_MAX {
            // Dropped whole, so what is held in memory is what is persisted.
            tracing::warn!("too many grants in this network: one was ignored");
            return false;
        }
        let slot = (grant.scope, grant.epoch, grant.key);
        if self.known.get(&slot).is_some_and(|k| k.recipients.contains(&grant.recipient)) {
            return false;
        }
        let mut grew = false;
        if grant.recipient == self.device {
            match grant.open(&self.network, secret) {
                Ok(key) => grew = self.ring.insert(key),
                Err(e) => {
                    // Not counted as given: holders grant it again.
                    tracing::warn!(error = %e, "a key granted to this device does not open");
                    return false;
                }
            }
        }
        self.known.entry(slot).or_default().recipients.insert(grant.recipient);
        self.accepted.push(grant);
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
        let mut rest = Vec::new();
        let mut made = Vec::new();
        for scope in scopes {
            let epoch_known = self
                .known
                .keys()
                .filter(|(s, _, _)| s == scope)
                .map(|(_, e, _)| *e)
                .max()
                .unwrap_or_default();
            let new_epoch = match self.ring.current(scope) {
                None => Some(epoch_known),
                Some(current) => {
                    let revoked_holder = self
                        .known
                        .iter()
                        .filter(|((s, e, _), _)| s == scope && *e == current.epoch())
                        .flat_map(|(_, k)| &k.recipients)
                        .any(|device| trust.last_valid(device).is_some());
                    // Two devices rotating at once make two keys of one epoch: both
                    // are kept, the lowest id seals.
                    revoked_holder
                        .then(|| {
                            epoch_known.max(current.epoch()).0.checked_add(1).filter(|e| *e <= EPOCH_MAX)
                        })
                        .flatten()
                        .map(Epoch)
                }
            };
            let readers = readers(trust, scope, &self.known);
            if let Some(epoch) = new_epoch {
                let key = ScopeKey::generate(*scope, epoch).said(
                    "the operating system's random source failed",
                    "la sorgente casuale del sistema operativo non ha funzionato",
                )?;
                // A new key's grants come first (this device's own first of all), so a
                // cut at the envelope's limit never leaves a key nobody holds.
                let mut first = vec![self.device];
                first.extend(readers.iter().copied().filter(|d| *d != self.device));
                for reader in first {
                    grants.push(Grant::new(&key, &self.network, reader).said(
                        "the operating system's random source failed",
                        "la sorgente casuale del sistema operativo non ha funzionato",
                    )?);
                }
                made.push(key);
            }
            for key in self.ring.iter().filter(|k| k.scope() == *scope) {
                let has = self.known.get(&(key.scope(), key.epoch(), key.id())).map(|k| &k.recipients);
                for reader in readers.iter().copied() {
                    if has.is_some_and(|r| r.contains(&reader)) {
                        continue;
                    }
                    rest.push(Grant::new(key, &self.network, reader).said(
                        "the operating system's random source failed",
                        "la sorgente casuale del sistema operativo non ha funzionato",
                    )?);
                }
            }
        }
        grants.extend(rest);
        Ok((grants, made))
    }

    /// Every key held of `scopes` wrapped for `recipient`, but those it holds already.
    pub fn grants_to(&self, recipient: DeviceKey, scopes: &[Scope]) -> Result<Vec<Grant>> {
        let mut grants = Vec::new();
        for key in self.ring.iter().filter(|k| scopes.contains(&k.scope())) {
            if self
                .known
                .get(&(key.scope(), key.epoch(), key.id()))
                .is_some_and(|k| k.recipients.contains(&recipient))
            {
                continue;
            }
            grants.push(Grant::new(key, &self.network, recipient).said(
                "the operating system's random source failed",
                "la sorgente casuale del sistema operativo non ha funzionato",
            )?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_log::testkit::TestNetwork;

    fn keys_of(net: &TestNetwork, d: usize) -> Keys {
        Keys::new(net.network, net.devices[d].id)
    }

    fn cert(net: &TestNetwork, d: usize) -> DeviceCertificate {
        net.trust().devices().find(|c| c.device == net.devices[d].id).unwrap().clone()
    }

    #[test]
    fn a_first_key_is_granted_to_its_maker_first_and_to_every_certified_reader() {
        let net = TestNetwork::new(7, 2, 2);
        let keys = keys_of(&net, 0);
        let (grants, made) = keys.owed(&net.trust(), &[Scope::Network]).unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(grants[0].recipient, net.devices[0].id, "its maker first");
        assert_eq!(grants.len(), 4, "every certified device of both partners");
    }

    #[test]
    fn a_grant_claiming_another_scopes_key_id_does_not_hide_the_key() {
        let net = TestNetwork::new(8, 1, 2);
        let key = ScopeKey::from_bytes(Scope::Network, Epoch(0), [4; 32]);
        let mut fake = Grant::new(&key, &net.network, net.devices[1].id).unwrap();
        fake.scope = Scope::Partner(net.devices[0].partner);
        let genuine = Grant::new(&key, &net.network, net.devices[1].id).unwrap();
        let mut keys = keys_of(&net, 1);
        keys.learn(&cert(&net, 0), vec![fake], &net.devices[1].key);
        let new = keys.learn(&cert(&net, 0), vec![genuine], &net.devices[1].key);
        assert_eq!(new, vec![(Scope::Network, Epoch(0))]);
        assert_eq!(keys.ring().len(), 1);
    }

    #[test]
    fn a_revoked_holder_starts_a_new_epoch_and_an_impossible_epoch_is_ignored() {
        let mut net = TestNetwork::new(9, 1, 3);
        let key = ScopeKey::from_bytes(Scope::Network, Epoch(0), [5; 32]);
        let mut keys = keys_of(&net, 0);
        let grants: Vec<Grant> =
            net.devices.iter().map(|d| Grant::new(&key, &net.network, d.id).unwrap()).collect();
        keys.learn(&cert(&net, 0), grants, &net.devices[0].key);
        let far = ScopeKey::from_bytes(Scope::Network, Epoch(u32::MAX), [6; 32]);
        let far = Grant::new(&far, &net.network, net.devices[0].id).unwrap();
        assert!(keys.learn(&cert(&net, 1), vec![far], &net.devices[0].key).is_empty());
        assert!(keys.owed(&net.trust(), &[Scope::Network]).unwrap().1.is_empty(), "nothing owed");
        let revoked = net.devices[2].id;
        net.entries.push(net.revoke_device(0, revoked, tessera_log::Seq(0), "rubato"));
        let (grants, made) = keys.owed(&net.trust(), &[Scope::Network]).unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].epoch(), Epoch(1));
        assert!(grants.iter().all(|g| g.recipient != revoked), "the revoked device is given nothing");
        assert_eq!(grants.len(), 2);
    }
}
