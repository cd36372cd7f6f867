//! Deterministic identities and envelopes for tests, benchmarks and the simulator.
//!
//! Everything derives from a `u64` seed (keys, salts), so a failing run can be
//! replayed and test vectors are stable. Not for production: keys from a seed are
//! not secret.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use crate::envelope::{Envelope, NewChange};
use crate::ids::{DeviceKey, DocId, EnvelopeId, NetworkId, PartnerKey, Salt, SecretKey, Seq, Timestamp};
use crate::trust::{
    DeviceCertificate, DeviceRevocation, DeviceRole, PartnerCertificate, TrustEntry, TrustState,
    TrustStatement,
};

/// 32 deterministic bytes for (`seed`, `label`, `index`).
pub fn seed_bytes(seed: u64, label: &str, index: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tessera testkit seed v1");
    h.update(&seed.to_le_bytes());
    h.update(label.as_bytes());
    h.update(&index.to_le_bytes());
    *h.finalize().as_bytes()
}

/// A fixed instant (2026-11-01T09:00:00Z) plus `minutes`, for reproducible fixtures.
pub fn time(minutes: i64) -> Timestamp {
    Timestamp(1_793_523_600_000 + minutes * 60_000)
}

/// One device of a [`TestNetwork`], able to sign its next envelope.
#[derive(Debug)]
pub struct TestDevice {
    pub key: SecretKey,
    pub id: DeviceKey,
    pub partner: PartnerKey,
    pub head: Option<(Seq, EnvelopeId)>,
    seed: u64,
    index: u64,
}

impl TestDevice {
    /// Signs the next envelope: one change per `(doc, body)`, salts derived from the
    /// seed, so the same calls give the same bytes.
    pub fn next(&mut self, network: &NetworkId, changes: &[(DocId, &[u8])]) -> Envelope {
        let seq = self.head.map(|(s, _)| s.0 + 1).unwrap_or(1);
        let changes = changes
            .iter()
            .enumerate()
            .map(|(i, (doc, body))| {
                let salt_bytes = seed_bytes(self.seed, "salt", (self.index << 40) ^ (seq << 10) ^ i as u64);
                let mut salt = [0u8; 16];
                salt.copy_from_slice(&salt_bytes[..16]);
                NewChange { doc: *doc, salt: Salt(salt), body: body.to_vec() }
            })
            .collect();
        let envelope = Envelope::sign(network, &self.key, self.head, time(seq as i64), changes)
            .unwrap_or_else(|e| panic!("testkit envelope: {e}"));
        self.head = Some((envelope.seq(), envelope.id()));
        envelope
    }

    /// An envelope with one change of `len` bytes to a document derived from `n`.
    pub fn next_simple(&mut self, network: &NetworkId, n: u64, len: usize) -> Envelope {
        let doc = test_doc(self.seed, n);
        let body: Vec<u8> = (0..len).map(|i| (i as u64 ^ n) as u8).collect();
        self.next(network, &[(doc, &body)])
    }
}

/// A document id derived from (`seed`, `n`).
pub fn test_doc(seed: u64, n: u64) -> DocId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&seed_bytes(seed, "doc", n)[..16]);
    DocId(id)
}

/// A network with `partners` partners of `devices_per_partner` devices each.
#[derive(Debug)]
pub struct TestNetwork {
    pub seed: u64,
    pub network_key: SecretKey,
    pub network: NetworkId,
    pub partner_keys: Vec<SecretKey>,
    pub devices: Vec<TestDevice>,
    /// Certificates in dependency order (partners first).
    pub entries: Vec<TrustEntry>,
}

impl TestNetwork {
    pub fn new(seed: u64, partners: usize, devices_per_partner: usize) -> TestNetwork {
        let network_key = SecretKey::from_seed(seed_bytes(seed, "network", 0));
        let network = NetworkId(network_key.public());
        let mut entries = Vec::new();
        let mut partner_keys = Vec::new();
        let mut devices = Vec::new();
        for p in 0..partners {
            let partner_key = SecretKey::from_seed(seed_bytes(seed, "partner", p as u64));
            let partner = PartnerKey(partner_key.public());
            let cert = PartnerCertificate { partner, name: format!("Cooperativa Prova {p}") };
            entries.push(sign(network, &network_key, TrustStatement::Partner(cert)));
            partner_keys.push(partner_key);
        }
        for (p, partner_key) in partner_keys.iter().enumerate() {
            let partner = PartnerKey(partner_key.public());
            for d in 0..devices_per_partner {
                let index = (p * devices_per_partner + d) as u64;
                let key = SecretKey::from_seed(seed_bytes(seed, "device", index));
                let id = DeviceKey(key.public());
                let role = if d % 4 == 3 { DeviceRole::HelpDesk } else { DeviceRole::Hub };
                let cert = DeviceCertificate { partner, device: id, role, site: format!("Polo {index}") };
                entries.push(sign(network, partner_key, TrustStatement::Device(cert)));
                devices.push(TestDevice { key, id, partner, head: None, seed, index });
            }
        }
        TestNetwork { seed, network_key, network, partner_keys, devices, entries }
    }

    /// A trust state holding every certificate of the network.
    pub fn trust(&self) -> TrustState {
        let mut trust = TrustState::new(self.network);
        for entry in &self.entries {
            trust.add(entry.clone()).unwrap_or_else(|e| panic!("testkit trust: {e}"));
        }
        trust
    }

    /// Signs a statement with the network key.
    pub fn sign_as_network(&self, statement: TrustStatement) -> TrustEntry {
        sign(self.network, &self.network_key, statement)
    }

    /// Signs a statement with partner `p`'s key.
    pub fn sign_as_partner(&self, p: usize, statement: TrustStatement) -> TrustEntry {
        sign(self.network, &self.partner_keys[p], statement)
    }

    /// Partner `p` revokes `device` after its envelope `last_valid`.
    pub fn revoke_device(&self, p: usize, device: DeviceKey, last_valid: Seq, reason: &str) -> TrustEntry {
        let issuer = self.partner_keys[p].public();
        let revocation = DeviceRevocation { issuer, device, last_valid, reason: reason.into() };
        self.sign_as_partner(p, TrustStatement::RevokeDevice(revocation))
    }
}

fn sign(network: NetworkId, key: &SecretKey, statement: TrustStatement) -> TrustEntry {
    TrustEntry::sign(network, time(0), statement, key).unwrap_or_else(|e| panic!("testkit sign: {e}"))
}
