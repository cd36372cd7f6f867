//! The trust chain: network key → partner certificates → device certificates, and
//! revocations by sequence number. Trust entries are signed statements that travel
//! with the log like envelopes do; [`TrustState`] is the set of accepted ones and
//! answers "may this device author its envelope number N?".
//!
//! Revocation is by seq, never by wall clock (offline clocks lie): "device D is valid
//! up to its envelope N". A partner revocation lists such a cut-off for each of the
//! partner's devices; a device it does not list is valid for nothing.
//! Every rule here is order-independent: the same set of entries gives the same
//! answers whatever order they arrived in (a requirement for convergence). An entry
//! whose issuer's authority cannot be checked yet (a device certificate before its
//! partner's, a revocation before the certificate of the device it revokes) is held
//! *waiting* and accepted as soon as what it needs arrives: the accepted set is the
//! fixpoint of the set held, never a function of arrival order.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::{BuildError, VerifyError};
use crate::ids::{
    DeviceKey, Hash, NetworkId, PartnerKey, PublicKey, SecretKey, Seq, Signature, Timestamp, TrustEntryId,
};
use crate::limits::{
    PARTNER_REVOCATION_DEVICES_MAX, TEXT_BYTES_MAX, TRUST_ENTRIES_WAITING_MAX, TRUST_ENTRY_BYTES_MAX,
};

/// Format version of trust entries.
pub const TRUST_ENTRY_VERSION: u8 = 1;
const SIGNING_CONTEXT: &[u8] = b"tessera/v1/trust\0";
const ID_CONTEXT: &str = "tessera 2026-11 trust entry id v1";

/// What a certified device is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceRole {
    /// A community hub ("polo di comunità").
    Hub,
    /// A help desk ("sportello digitale").
    HelpDesk,
    /// A store-and-forward relay: it syncs but never authors envelopes.
    Relay,
}

impl DeviceRole {
    fn to_byte(self) -> u8 {
        match self {
            DeviceRole::Hub => 1,
            DeviceRole::HelpDesk => 2,
            DeviceRole::Relay => 3,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(DeviceRole::Hub),
            2 => Some(DeviceRole::HelpDesk),
            3 => Some(DeviceRole::Relay),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerCertificate {
    pub partner: PartnerKey,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    pub partner: PartnerKey,
    pub device: DeviceKey,
    pub role: DeviceRole,
    pub site: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRevocation {
    /// The network key or a partner that certified the device.
    pub issuer: PublicKey,
    pub device: DeviceKey,
    /// The device's last envelope that stays valid (0: none).
    pub last_valid: Seq,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerRevocation {
    pub partner: PartnerKey,
    /// Per device of the partner, its last envelope that stays valid. Sorted by
    /// device, no duplicates (canonical). Devices not listed keep nothing.
    pub last_valid: Vec<(DeviceKey, Seq)>,
    pub reason: String,
}

/// The network key erases a person (GDPR art. 17): the coordinator's way when the
/// registering partner cannot (it has left the programme, or the person was registered
/// before ids were bound to their partner). Same effect as an erasure change
/// (`crate::erasure`), with no stub: reports keep the person's presences but not their
/// age band.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonErasure {
    pub person: crate::erasure::Person,
    /// `YYYY-MM-DD`.
    pub erased_on: String,
    pub reason: crate::erasure::ErasureReason,
}

/// The statement a trust entry signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustStatement {
    /// Signed by the network key.
    Partner(PartnerCertificate),
    /// Signed by the partner key it names.
    Device(DeviceCertificate),
    /// Signed by `issuer`.
    RevokeDevice(DeviceRevocation),
    /// Signed by the network key.
    RevokePartner(PartnerRevocation),
    /// Signed by the network key.
    ErasePerson(PersonErasure),
}

impl TrustStatement {
    fn kind_byte(&self) -> u8 {
        match self {
            TrustStatement::Partner(_) => 1,
            TrustStatement::Device(_) => 2,
            TrustStatement::RevokeDevice(_) => 3,
            TrustStatement::RevokePartner(_) => 4,
            TrustStatement::ErasePerson(_) => 5,
        }
    }
    /// A short name for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            TrustStatement::Partner(_) => "partner certificate",
            TrustStatement::Device(_) => "device certificate",
            TrustStatement::RevokeDevice(_) => "device revocation",
            TrustStatement::RevokePartner(_) => "partner revocation",
            TrustStatement::ErasePerson(_) => "erasure of a person by the network",
        }
    }
    /// The key whose signature this statement needs.
    pub fn issuer(&self, network: &NetworkId) -> PublicKey {
        match self {
            TrustStatement::Partner(_)
            | TrustStatement::RevokePartner(_)
            | TrustStatement::ErasePerson(_) => network.0,
            TrustStatement::Device(c) => c.partner.0,
            TrustStatement::RevokeDevice(r) => r.issuer,
        }
    }
    fn check_limits(&self) -> Result<(), BuildError> {
        let text = |s: &str, what| {
            if s.len() > TEXT_BYTES_MAX {
                Err(BuildError::Oversized { what, len: s.len(), max: TEXT_BYTES_MAX })
            } else {
                Ok(())
            }
        };
        match self {
            TrustStatement::Partner(c) => text(&c.name, "partner name"),
            TrustStatement::Device(c) => text(&c.site, "site name"),
            TrustStatement::RevokeDevice(r) => text(&r.reason, "revocation reason"),
            TrustStatement::RevokePartner(r) => {
                if r.last_valid.len() > PARTNER_REVOCATION_DEVICES_MAX {
                    return Err(BuildError::Oversized {
                        what: "partner revocation device list",
                        len: r.last_valid.len(),
                        max: PARTNER_REVOCATION_DEVICES_MAX,
                    });
                }
                text(&r.reason, "revocation reason")
            }
            TrustStatement::ErasePerson(e) => {
                if crate::erasure::valid_date(e.erased_on.as_bytes()) {
                    Ok(())
                } else {
                    Err(BuildError::Oversized {
                        what: "erasure date (YYYY-MM-DD)",
                        len: e.erased_on.len(),
                        max: 10,
                    })
                }
            }
        }
    }
}

/// A signed trust statement, as it travels and is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustEntry {
    pub network: NetworkId,
    /// Informational wall-clock time of issue.
    pub issued_at: Timestamp,
    pub statement: TrustStatement,
    pub signature: Signature,
}

impl TrustEntry {
    /// Rank for ordering entries so that each comes after those it depends on:
    /// partner certificates, device certificates, then revocations.
    pub fn dependency_rank(&self) -> u8 {
        self.statement.kind_byte()
    }

    /// Signs `statement` with `issuer_key`, which must be the statement's issuer.
    pub fn sign(
        network: NetworkId,
        issued_at: Timestamp,
        mut statement: TrustStatement,
        issuer_key: &SecretKey,
    ) -> Result<TrustEntry, BuildError> {
        if let TrustStatement::RevokePartner(r) = &mut statement {
            r.last_valid.sort_by_key(|(d, _)| *d);
            r.last_valid.dedup_by_key(|(d, _)| *d);
        }
        statement.check_limits()?;
        let mut entry = TrustEntry { network, issued_at, statement, signature: Signature([0; 64]) };
        let signed = entry.signed_bytes();
        entry.signature = issuer_key.sign(&signing_message(&signed));
        Ok(entry)
    }

    /// The bytes the signature covers (everything but the signature).
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        w.u8(TRUST_ENTRY_VERSION);
        w.u8(self.statement.kind_byte());
        w.bytes(self.network.as_bytes());
        w.i64(self.issued_at.0);
        match &self.statement {
            TrustStatement::Partner(c) => {
                w.bytes(c.partner.as_bytes());
                w.text(&c.name);
            }
            TrustStatement::Device(c) => {
                w.bytes(c.partner.as_bytes());
                w.bytes(c.device.as_bytes());
                w.u8(c.role.to_byte());
                w.text(&c.site);
            }
            TrustStatement::RevokeDevice(r) => {
                w.bytes(r.issuer.as_bytes());
                w.bytes(r.device.as_bytes());
                w.u64(r.last_valid.0);
                w.text(&r.reason);
            }
            TrustStatement::RevokePartner(r) => {
                w.bytes(r.partner.as_bytes());
                w.u16(r.last_valid.len() as u16);
                for (device, seq) in &r.last_valid {
                    w.bytes(device.as_bytes());
                    w.u64(seq.0);
                }
                w.text(&r.reason);
            }
            TrustStatement::ErasePerson(e) => {
                w.bytes(&e.person.0);
                w.bytes(e.erased_on.as_bytes());
                w.u8(e.reason.byte());
            }
        }
        w.into_vec()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// The content id: a hash of the signed bytes.
    pub fn id(&self) -> TrustEntryId {
        TrustEntryId(Hash::derive(ID_CONTEXT, &[&self.signed_bytes()]))
    }

    /// Decodes one trust entry. Checks structure only; [`TrustState::add`] checks
    /// the signature and the issuer's authority.
    pub fn decode(bytes: &[u8]) -> Result<TrustEntry, DecodeError> {
        const WHAT: &str = "trust entry";
        if bytes.len() > TRUST_ENTRY_BYTES_MAX {
            return Err(DecodeError::Oversized { what: WHAT, len: bytes.len(), max: TRUST_ENTRY_BYTES_MAX });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("trust entry version")?;
        if version != TRUST_ENTRY_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                found: version,
                supported: TRUST_ENTRY_VERSION,
            });
        }
        let kind = r.u8("trust entry kind")?;
        let network = NetworkId::from_bytes(r.array("network key")?)?;
        let issued_at = Timestamp(r.i64("issue time")?);
        let statement = match kind {
            1 => TrustStatement::Partner(PartnerCertificate {
                partner: PartnerKey::from_bytes(r.array("partner key")?)?,
                name: r.text("partner name", TEXT_BYTES_MAX)?,
            }),
            2 => {
                let partner = PartnerKey::from_bytes(r.array("partner key")?)?;
                let device = DeviceKey::from_bytes(r.array("device key")?)?;
                let role_byte = r.u8("device role")?;
                let role = DeviceRole::from_byte(role_byte)
                    .ok_or_else(|| r.invalid("device role", "unknown role"))?;
                let site = r.text("site name", TEXT_BYTES_MAX)?;
                TrustStatement::Device(DeviceCertificate { partner, device, role, site })
            }
            3 => TrustStatement::RevokeDevice(DeviceRevocation {
                issuer: PublicKey::from_bytes(r.array("issuer key")?)?,
                device: DeviceKey::from_bytes(r.array("device key")?)?,
                last_valid: Seq(r.u64("last valid seq")?),
                reason: r.text("revocation reason", TEXT_BYTES_MAX)?,
            }),
            4 => {
                let partner = PartnerKey::from_bytes(r.array("partner key")?)?;
                let count = r.u16("revoked device count")? as usize;
                if count > PARTNER_REVOCATION_DEVICES_MAX {
                    return Err(DecodeError::Oversized {
                        what: "partner revocation device list",
                        len: count,
                        max: PARTNER_REVOCATION_DEVICES_MAX,
                    });
                }
                // 40 bytes per item: never allocate more than the input can hold.
                if r.remaining() < count * 40 {
                    return Err(DecodeError::Truncated {
                        what: "partner revocation device list",
                        offset: r.offset(),
                        needed: count * 40,
                        available: r.remaining(),
                    });
                }
                let mut last_valid: Vec<(DeviceKey, Seq)> = Vec::with_capacity(count);
                for _ in 0..count {
                    let device = DeviceKey::from_bytes(r.array("device key")?)?;
                    let seq = Seq(r.u64("last valid seq")?);
                    if let Some((prev, _)) = last_valid.last() {
                        if *prev >= device {
                            return Err(r.invalid(
                                "partner revocation device list",
                                "devices not in strictly ascending order",
                            ));
                        }
                    }
                    last_valid.push((device, seq));
                }
                let reason = r.text("revocation reason", TEXT_BYTES_MAX)?;
                TrustStatement::RevokePartner(PartnerRevocation { partner, last_valid, reason })
            }
            5 => {
                let person = crate::erasure::Person(r.array("person id")?);
                let date: [u8; 10] = r.array("erasure date")?;
                if !crate::erasure::valid_date(&date) {
                    return Err(r.invalid("erasure date", "not YYYY-MM-DD"));
                }
                let reason_byte = r.u8("erasure reason")?;
                let reason = crate::erasure::ErasureReason::from_byte(reason_byte)
                    .ok_or_else(|| r.invalid("erasure reason", "unknown reason"))?;
                TrustStatement::ErasePerson(PersonErasure {
                    person,
                    erased_on: String::from_utf8_lossy(&date).into_owned(),
                    reason,
                })
            }
            _ => return Err(r.invalid("trust entry kind", "unknown kind")),
        };
        let signature = Signature(r.array("trust entry signature")?);
        r.finish(WHAT)?;
        Ok(TrustEntry { network, issued_at, statement, signature })
    }

    /// Checks the network and the signature (not the issuer's authority).
    pub fn verify_signature(&self, network: &NetworkId) -> Result<(), VerifyError> {
        if self.network != *network {
            return Err(VerifyError::ForeignNetwork { expected: *network, found: self.network });
        }
        let issuer = self.statement.issuer(network);
        if !issuer.verify(&signing_message(&self.signed_bytes()), &self.signature) {
            return Err(VerifyError::BadTrustSignature { what: self.statement.describe(), issuer });
        }
        Ok(())
    }
}

fn signing_message(signed: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + signed.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(signed);
    msg
}

/// Whether [`TrustState::add`] learned something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Accepted (and with it, any waiting entries it made checkable).
    New,
    /// Already held, accepted or waiting.
    AlreadyKnown,
    /// Validly signed but its issuer's authority cannot be checked yet: held, and
    /// accepted when the certificate it depends on arrives.
    Waiting,
}

/// Whether `error` may go away once more certificates are held.
fn waits_for_certificate(error: &VerifyError) -> bool {
    matches!(error, VerifyError::UnknownPartner { .. } | VerifyError::UnauthorizedIssuer { .. })
}

/// The accepted trust entries of one network and what follows from them.
#[derive(Clone, Debug)]
pub struct TrustState {
    network: NetworkId,
    entries: BTreeMap<TrustEntryId, TrustEntry>,
    /// Validly signed entries not accepted yet, with why (see [`Added::Waiting`]).
    waiting: BTreeMap<TrustEntryId, (TrustEntry, VerifyError)>,
    partners: BTreeMap<PartnerKey, BTreeMap<TrustEntryId, PartnerCertificate>>,
    devices: BTreeMap<DeviceKey, BTreeMap<TrustEntryId, DeviceCertificate>>,
    /// Lowest cut-off over all revocations of each device.
    device_last_valid: BTreeMap<DeviceKey, Seq>,
    /// Per revoked partner, per device, the lowest cut-off over all its revocations.
    partner_last_valid: BTreeMap<PartnerKey, BTreeMap<DeviceKey, Seq>>,
    /// Decompressed keys of certified devices, so verifying an envelope does not
    /// decompress its author's key each time.
    verifying_keys: BTreeMap<DeviceKey, ed25519_dalek::VerifyingKey>,
}

impl TrustState {
    pub fn new(network: NetworkId) -> Self {
        TrustState {
            network,
            entries: BTreeMap::new(),
            waiting: BTreeMap::new(),
            partners: BTreeMap::new(),
            devices: BTreeMap::new(),
            device_last_valid: BTreeMap::new(),
            partner_last_valid: BTreeMap::new(),
            verifying_keys: BTreeMap::new(),
        }
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// Verifies `entry` (network, signature, authority of its issuer) and adds it. An
    /// entry whose issuer's authority depends on a certificate not held yet is kept
    /// waiting ([`Added::Waiting`]) and accepted when that certificate is added, so any
    /// order of the same entries ends in the same state.
    pub fn add(&mut self, entry: TrustEntry) -> Result<Added, VerifyError> {
        let id = entry.id();
        if self.entries.contains_key(&id) || self.waiting.contains_key(&id) {
            return Ok(Added::AlreadyKnown);
        }
        entry.verify_signature(&self.network)?;
        match self.accept(id, &entry) {
            Ok(()) => {
                self.accept_waiting();
                Ok(Added::New)
            }
            Err(error) if waits_for_certificate(&error) => {
                if self.waiting.len() >= TRUST_ENTRIES_WAITING_MAX {
                    return Err(VerifyError::TooManyWaiting {
                        what: entry.statement.describe(),
                        max: TRUST_ENTRIES_WAITING_MAX,
                    });
                }
                self.waiting.insert(id, (entry, error));
                Ok(Added::Waiting)
            }
            Err(error) => Err(error),
        }
    }

    /// Accepts every waiting entry that has become checkable, until none does.
    fn accept_waiting(&mut self) {
        loop {
            let mut progress = false;
            for id in self.waiting.keys().copied().collect::<Vec<_>>() {
                let Some((entry, _)) = self.waiting.remove(&id) else { continue };
                match self.accept(id, &entry) {
                    Ok(()) => progress = true,
                    Err(error) => {
                        self.waiting.insert(id, (entry, error));
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Checks the issuer's authority of a signature-checked entry and applies it, or
    /// says why not.
    fn accept(&mut self, id: TrustEntryId, entry: &TrustEntry) -> Result<(), VerifyError> {
        match &entry.statement {
            TrustStatement::Partner(c) => {
                self.partners.entry(c.partner).or_default().insert(id, c.clone());
            }
            TrustStatement::Device(c) => {
                if !self.partners.contains_key(&c.partner) {
                    let error = VerifyError::UnknownPartner { partner: c.partner };
                    return Err(error);
                }
                self.devices.entry(c.device).or_default().insert(id, c.clone());
                self.verifying_keys.entry(c.device).or_insert_with(|| c.device.0.verifying_key());
            }
            TrustStatement::RevokeDevice(r) => {
                let by_network = r.issuer == self.network.0;
                let by_certifier = self
                    .devices
                    .get(&r.device)
                    .is_some_and(|certs| certs.values().any(|c| c.partner.0 == r.issuer));
                if !by_network && !by_certifier {
                    let error = VerifyError::UnauthorizedIssuer { issuer: r.issuer, device: r.device };
                    return Err(error);
                }
                let cut = self.device_last_valid.entry(r.device).or_insert(r.last_valid);
                *cut = (*cut).min(r.last_valid);
            }
            TrustStatement::RevokePartner(r) => {
                let listed: BTreeMap<DeviceKey, Seq> = r.last_valid.iter().copied().collect();
                match self.partner_last_valid.get_mut(&r.partner) {
                    None => {
                        self.partner_last_valid.insert(r.partner, listed);
                    }
                    // Two revocations of one partner: a device keeps the lower cut-off,
                    // and a device absent from either keeps nothing, so the result does
                    // not depend on arrival order.
                    Some(cuts) => cuts.retain(|device, seq| match listed.get(device) {
                        Some(other) => {
                            *seq = (*seq).min(*other);
                            true
                        }
                        None => false,
                    }),
                }
            }
            // Signed by the network key (checked with the signature): nothing else to
            // check; the stores act on it (`network_erasures`).
            TrustStatement::ErasePerson(_) => {}
        }
        self.entries.insert(id, entry.clone());
        Ok(())
    }

    /// The persons the network key erased, with when and why.
    pub fn network_erasures(&self) -> impl Iterator<Item = &PersonErasure> {
        self.entries.values().filter_map(|entry| match &entry.statement {
            TrustStatement::ErasePerson(e) => Some(e),
            _ => None,
        })
    }

    /// Entries held waiting for a certificate, with what they wait for.
    pub fn waiting(&self) -> impl Iterator<Item = (&TrustEntry, &VerifyError)> {
        self.waiting.values().map(|(entry, error)| (entry, error))
    }

    /// May `device` author its envelope `seq`? Returns the certificate that allows it.
    /// With several valid certificates, the one with the lowest entry id is chosen, so
    /// every node attributes the device to the same partner.
    pub fn authorize(&self, device: &DeviceKey, seq: Seq) -> Result<&DeviceCertificate, VerifyError> {
        let certs = self.devices.get(device).ok_or(VerifyError::UnknownAuthor { device: *device, seq })?;
        if let Some(last_valid) = self.device_last_valid.get(device) {
            if seq > *last_valid {
                return Err(VerifyError::Revoked { device: *device, seq, last_valid: *last_valid });
            }
        }
        let mut refusal = None;
        for cert in certs.values() {
            match self.partner_last_valid.get(&cert.partner) {
                Some(cuts) => {
                    let last_valid = cuts.get(device).copied().unwrap_or(Seq(0));
                    if seq <= last_valid {
                        return Ok(cert);
                    }
                    refusal.get_or_insert(VerifyError::PartnerRevoked {
                        partner: cert.partner,
                        device: *device,
                        seq,
                        last_valid,
                    });
                }
                None => return Ok(cert),
            }
        }
        Err(refusal.unwrap_or(VerifyError::UnknownAuthor { device: *device, seq }))
    }

    /// Checks an envelope's signature and bodies with its author's cached key.
    pub fn verify_envelope_signature(&self, envelope: &crate::Envelope) -> Result<(), VerifyError> {
        match self.verifying_keys.get(&envelope.author()) {
            Some(key) => envelope.verify_with_key(&self.network, key),
            None => envelope.verify_signature_and_bodies(&self.network),
        }
    }

    /// The partner certificate of `partner` with the lowest entry id, if certified.
    pub fn partner(&self, partner: &PartnerKey) -> Option<&PartnerCertificate> {
        self.partners.get(partner).and_then(|certs| certs.values().next())
    }

    pub fn partners(&self) -> impl Iterator<Item = &PartnerCertificate> {
        self.partners.values().filter_map(|certs| certs.values().next())
    }

    /// Every device that has a certificate, with its chosen certificate.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceCertificate> {
        self.devices.values().filter_map(|certs| certs.values().next())
    }

    /// Every certificate held for `device` (a device may be certified by more than
    /// one partner; [`TrustState::devices`] shows one).
    pub fn certificates_of(&self, device: &DeviceKey) -> impl Iterator<Item = &DeviceCertificate> {
        self.devices.get(device).into_iter().flat_map(|certs| certs.values())
    }

    /// The last seq of `device` that [`TrustState::authorize`] accepts, when its
    /// revocation or its partner's bounds it (`None`: unbounded, or not certified).
    /// Sessions do not offer envelopes past it: every node refuses them.
    pub fn last_valid(&self, device: &DeviceKey) -> Option<Seq> {
        let certs = self.devices.get(device)?;
        // Through its partners: the most any certificate allows.
        let mut by_partner = Some(Seq(0));
        for cert in certs.values() {
            match self.partner_last_valid.get(&cert.partner) {
                None => by_partner = None,
                Some(cuts) => {
                    let cut = cuts.get(device).copied().unwrap_or(Seq(0));
                    by_partner = by_partner.map(|seq| seq.max(cut));
                }
            }
            if by_partner.is_none() {
                break;
            }
        }
        match (self.device_last_valid.get(device).copied(), by_partner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The last valid seq of a revoked device (device revocations only).
    pub fn device_revoked_after(&self, device: &DeviceKey) -> Option<Seq> {
        self.device_last_valid.get(device).copied()
    }

    /// Whether the entry is held, accepted or waiting.
    pub fn contains(&self, id: &TrustEntryId) -> bool {
        self.entries.contains_key(id) || self.waiting.contains_key(id)
    }

    /// Number of accepted entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All accepted entries in dependency order (partner certificates, then device
    /// certificates, then revocations), the order that leaves none waiting on the way.
    /// Waiting entries are not included: they are not passed on until accepted.
    pub fn entries_in_order(&self) -> Vec<&TrustEntry> {
        let mut out: Vec<&TrustEntry> = self.entries.values().collect();
        out.sort_by_key(|e| e.dependency_rank());
        out
    }

    /// Keys the entry ids so a peer can tell which entries it lacks.
    pub fn ids(&self) -> impl Iterator<Item = &TrustEntryId> {
        self.entries.keys()
    }

    pub fn get(&self, id: &TrustEntryId) -> Option<&TrustEntry> {
        self.entries.get(id)
    }

    /// Certificates that an unrelated node needs to follow `device`: its partner's
    /// and its own.
    pub fn chain_of(&self, device: &DeviceKey) -> Vec<&TrustEntry> {
        let mut out = Vec::new();
        for e in self.entries_in_order() {
            let keep = match &e.statement {
                TrustStatement::Device(c) => c.device == *device,
                TrustStatement::Partner(p) => self
                    .devices
                    .get(device)
                    .is_some_and(|certs| certs.values().any(|c| c.partner == p.partner)),
                _ => false,
            };
            if keep {
                out.push(e);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestNetwork;
    use proptest::prelude::*;

    #[test]
    fn every_kind_round_trips() {
        let net = TestNetwork::new(4, 2, 2);
        let mut entries = net.entries.clone();
        entries.push(net.revoke_device(0, net.devices[0].id, Seq(3), "rubato"));
        entries.push(net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
            partner: net.devices[2].partner,
            last_valid: vec![(net.devices[3].id, Seq(9)), (net.devices[2].id, Seq(4))],
            reason: "fine convenzione".into(),
        })));
        for entry in entries {
            let bytes = entry.encode();
            let back = TrustEntry::decode(&bytes).unwrap();
            assert_eq!(back, entry);
            assert_eq!(back.encode(), bytes);
            back.verify_signature(&net.network).unwrap();
            for len in 0..bytes.len() {
                assert!(TrustEntry::decode(&bytes[..len]).is_err());
            }
        }
    }

    #[test]
    fn device_certificate_waits_for_its_partner() {
        let net = TestNetwork::new(4, 2, 1);
        let mut trust = TrustState::new(net.network);
        // Device certificate of partner 0 before partner 0's own certificate.
        let device_cert = net.entries[2].clone();
        assert!(matches!(device_cert.statement, TrustStatement::Device(_)));
        assert_eq!(trust.add(device_cert.clone()).unwrap(), Added::Waiting);
        assert_eq!(trust.add(device_cert.clone()).unwrap(), Added::AlreadyKnown);
        let device = net.devices[0].id;
        assert!(matches!(trust.authorize(&device, Seq(1)), Err(VerifyError::UnknownAuthor { .. })));
        let (_, why) = trust.waiting().next().unwrap();
        assert_eq!(*why, VerifyError::UnknownPartner { partner: net.devices[0].partner });
        trust.add(net.entries[0].clone()).unwrap();
        assert!(trust.authorize(&device, Seq(1)).is_ok());
        assert_eq!(trust.waiting().count(), 0);
        assert_eq!(trust.add(device_cert).unwrap(), Added::AlreadyKnown);
    }

    #[test]
    fn last_valid_is_what_authorize_accepts() {
        let net = TestNetwork::new(41, 2, 2);
        let mut trust = net.trust();
        let (d0, d1, d2) = (net.devices[0].id, net.devices[1].id, net.devices[2].id);
        assert_eq!(trust.last_valid(&d0), None);
        trust.add(net.revoke_device(0, d0, Seq(7), "lost")).unwrap();
        trust.add(net.revoke_device(0, d0, Seq(4), "stolen")).unwrap();
        assert_eq!(trust.last_valid(&d0), Some(Seq(4)));
        // A partner revoked with a cut-off for one device, none for the other.
        let partner = net.devices[2].partner;
        let revoke_partner = net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
            partner,
            last_valid: vec![(d2, Seq(3))],
            reason: "closed".into(),
        }));
        trust.add(revoke_partner).unwrap();
        assert_eq!(trust.last_valid(&d2), Some(Seq(3)));
        assert_eq!(trust.last_valid(&d1), None);
        for (device, seq) in [(d0, 4), (d0, 5), (d2, 3), (d2, 4)] {
            let cut = trust.last_valid(&device).unwrap();
            assert_eq!(trust.authorize(&device, Seq(seq)).is_ok(), Seq(seq) <= cut, "{seq}");
        }
    }

    #[test]
    fn a_revocation_before_the_certificate_it_needs_still_revokes() {
        let net = TestNetwork::new(4, 1, 1);
        let device = net.devices[0].id;
        let revocation = net.revoke_device(0, device, Seq(3), "rubato");
        let mut trust = TrustState::new(net.network);
        assert_eq!(trust.add(revocation.clone()).unwrap(), Added::Waiting);
        assert!(!trust.entries_in_order().iter().any(|e| e.id() == revocation.id()), "not passed on yet");
        for entry in &net.entries {
            trust.add(entry.clone()).unwrap();
        }
        assert_eq!(trust.device_revoked_after(&device), Some(Seq(3)));
        assert!(trust.authorize(&device, Seq(3)).is_ok());
        assert!(matches!(trust.authorize(&device, Seq(4)), Err(VerifyError::Revoked { .. })));
        assert!(trust.entries_in_order().iter().any(|e| e.id() == revocation.id()));
    }

    #[test]
    fn waiting_entries_are_bounded() {
        let net = TestNetwork::new(4, 1, 1);
        let mut trust = TrustState::new(net.network);
        let stranger = SecretKey::from_seed([9; 32]);
        let revoke = |n: u64| {
            TrustEntry::sign(
                net.network,
                Timestamp(0),
                TrustStatement::RevokeDevice(DeviceRevocation {
                    issuer: stranger.public(),
                    device: net.devices[0].id,
                    last_valid: Seq(n),
                    reason: String::new(),
                }),
                &stranger,
            )
            .unwrap()
        };
        for n in 0..TRUST_ENTRIES_WAITING_MAX as u64 {
            assert_eq!(trust.add(revoke(n)).unwrap(), Added::Waiting);
        }
        let err = trust.add(revoke(u64::MAX)).unwrap_err();
        assert!(matches!(err, VerifyError::TooManyWaiting { .. }), "{err}");
        // A stranger's revocation never becomes valid: the device stays usable.
        for entry in &net.entries {
            trust.add(entry.clone()).unwrap();
        }
        assert!(trust.authorize(&net.devices[0].id, Seq(100)).is_ok());
        assert_eq!(trust.waiting().count(), TRUST_ENTRIES_WAITING_MAX);
    }

    #[test]
    fn a_partner_certificate_must_come_from_the_network_key() {
        let net = TestNetwork::new(4, 1, 1);
        let mut trust = TrustState::new(net.network);
        // A partner certifying itself.
        let self_signed = net.sign_as_partner(
            0,
            TrustStatement::Partner(PartnerCertificate {
                partner: net.devices[0].partner,
                name: "io".into(),
            }),
        );
        let err = trust.add(self_signed).unwrap_err();
        assert!(matches!(err, VerifyError::BadTrustSignature { what: "partner certificate", .. }), "{err}");
        // A certificate from another network.
        let other = TestNetwork::new(5, 1, 1);
        let err = trust.add(other.entries[0].clone()).unwrap_err();
        assert!(matches!(err, VerifyError::ForeignNetwork { .. }), "{err}");
        assert!(trust.is_empty());
    }

    #[test]
    fn only_the_certifier_or_the_network_may_revoke_a_device() {
        let net = TestNetwork::new(4, 2, 1);
        let mut trust = net.trust();
        let device = net.devices[0].id; // certified by partner 0
        let by_other_partner = net.sign_as_partner(
            1,
            TrustStatement::RevokeDevice(DeviceRevocation {
                issuer: net.partner_keys[1].public(),
                device,
                last_valid: Seq(0),
                reason: String::new(),
            }),
        );
        // Kept waiting (partner 1 might certify the device later), never applied.
        assert_eq!(trust.add(by_other_partner).unwrap(), Added::Waiting);
        let (_, why) = trust.waiting().next().unwrap();
        assert_eq!(*why, VerifyError::UnauthorizedIssuer { issuer: net.partner_keys[1].public(), device });
        assert_eq!(trust.device_revoked_after(&device), None);
        let by_network = net.sign_as_network(TrustStatement::RevokeDevice(DeviceRevocation {
            issuer: net.network.0,
            device,
            last_valid: Seq(5),
            reason: String::new(),
        }));
        trust.add(by_network).unwrap();
        assert_eq!(trust.device_revoked_after(&device), Some(Seq(5)));
    }

    #[test]
    fn revocations_give_the_same_answers_in_any_order() {
        let net = TestNetwork::new(4, 1, 3);
        let partner = net.devices[0].partner;
        let d = |i: usize| net.devices[i].id;
        let revocations = [
            net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
                partner,
                last_valid: vec![(d(0), Seq(10)), (d(1), Seq(3))],
                reason: "a".into(),
            })),
            net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
                partner,
                last_valid: vec![(d(0), Seq(7)), (d(2), Seq(8))],
                reason: "b".into(),
            })),
            net.revoke_device(0, d(0), Seq(5), "c"),
        ];
        let answers = |order: &[usize]| {
            let mut trust = net.trust();
            for i in order {
                trust.add(revocations[*i].clone()).unwrap();
            }
            (0..3)
                .flat_map(|dev| (1..12).map(move |s| (dev, s)))
                .map(|(dev, s)| trust.authorize(&d(dev), Seq(s)).is_ok())
                .collect::<Vec<_>>()
        };
        let reference = answers(&[0, 1, 2]);
        for order in [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            assert_eq!(answers(&order), reference, "order {order:?}");
        }
        // Device 0: min(10, 7, 5) = 5; device 1: listed only in the first: 0; device 2: 0.
        let allowed: Vec<usize> = (1..12).filter(|s| reference[*s - 1]).collect();
        assert_eq!(allowed, vec![1, 2, 3, 4, 5]);
        assert!(reference[11..].iter().all(|ok| !ok));
    }

    #[test]
    fn oversized_text_is_refused_when_signing_and_decoding() {
        let net = TestNetwork::new(4, 1, 1);
        let long = "x".repeat(TEXT_BYTES_MAX + 1);
        let err = TrustEntry::sign(
            net.network,
            Timestamp(0),
            TrustStatement::Partner(PartnerCertificate { partner: net.devices[0].partner, name: long }),
            &net.network_key,
        )
        .unwrap_err();
        assert!(matches!(err, BuildError::Oversized { what: "partner name", .. }));
        let mut bytes = net.entries[0].encode();
        let len_at = 1 + 1 + 32 + 8 + 32;
        bytes[len_at..len_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            TrustEntry::decode(&bytes).unwrap_err(),
            DecodeError::Oversized { what: "partner name", .. }
        ));
    }

    #[test]
    fn unsupported_version_and_kind_are_named() {
        let net = TestNetwork::new(4, 1, 1);
        let mut bytes = net.entries[0].encode();
        bytes[0] = 2;
        assert!(matches!(
            TrustEntry::decode(&bytes).unwrap_err(),
            DecodeError::UnsupportedVersion { found: 2, .. }
        ));
        let mut bytes = net.entries[0].encode();
        bytes[1] = 77;
        assert!(matches!(
            TrustEntry::decode(&bytes).unwrap_err(),
            DecodeError::Invalid { what: "trust entry kind", .. }
        ));
    }

    proptest! {
        /// The project's invariant: the same set of trust entries, in any order of
        /// arrival, gives the same answers.
        #[test]
        fn trust_depends_only_on_the_set_held(order in Just((0..9usize).collect::<Vec<_>>()).prop_shuffle()) {
            let net = TestNetwork::new(4, 2, 2);
            let mut all = net.entries.clone();
            all.push(net.revoke_device(0, net.devices[0].id, Seq(3), "rubato"));
            all.push(net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
                partner: net.devices[1].partner,
                last_valid: vec![(net.devices[1].id, Seq(5))],
                reason: "fine convenzione".into(),
            })));
            prop_assert_eq!(all.len(), 8);
            all.push(net.revoke_device(1, net.devices[0].id, Seq(2), "not its certifier"));
            let answers = |order: &[usize]| {
                let mut trust = TrustState::new(net.network);
                for i in order {
                    trust.add(all[*i].clone()).unwrap();
                }
                let ids: Vec<_> = trust.ids().copied().collect();
                let allowed: Vec<bool> = net
                    .devices
                    .iter()
                    .flat_map(|d| (1..8).map(move |s| (d.id, Seq(s))))
                    .map(|(d, s)| trust.authorize(&d, s).is_ok())
                    .collect();
                (ids, allowed, trust.waiting().count())
            };
            let reference = answers(&(0..9).collect::<Vec<_>>());
            prop_assert_eq!(reference.2, 1, "the revocation by a partner that did not certify the device waits");
            prop_assert_eq!(answers(&order), reference);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = TrustEntry::decode(&bytes);
        }

        #[test]
        fn mutations_never_verify(at in 0usize..200, xor in 1u8..=255) {
            let net = TestNetwork::new(4, 1, 1);
            let mut bytes = net.entries[1].encode();
            let i = at % bytes.len();
            bytes[i] ^= xor;
            if let Ok(entry) = TrustEntry::decode(&bytes) {
                prop_assert_eq!(entry.encode(), bytes);
                let mut trust = TrustState::new(net.network);
                trust.add(net.entries[0].clone()).unwrap();
                prop_assert!(trust.add(entry).is_err());
            }
        }
    }

    #[test]
    fn the_network_erases_a_person_and_nobody_else_can_sign_it() {
        let net = TestNetwork::new(77, 2, 1);
        let mut trust = net.trust();
        let erasure = PersonErasure {
            person: crate::erasure::Person([4; 15]),
            erased_on: "2026-12-07".into(),
            reason: crate::erasure::ErasureReason::Mistake,
        };
        let entry = net.sign_as_network(TrustStatement::ErasePerson(erasure.clone()));
        let decoded = TrustEntry::decode(&entry.encode()).unwrap();
        assert_eq!(decoded, entry);
        assert_eq!(trust.add(entry.clone()).unwrap(), Added::New);
        assert_eq!(trust.network_erasures().cloned().collect::<Vec<_>>(), vec![erasure.clone()]);
        // A partner signing it: refused (the signature is checked against the network key).
        let forged = net.sign_as_partner(0, TrustStatement::ErasePerson(erasure.clone()));
        assert!(net.trust().add(forged).is_err());
        // A bad date or reason does not decode.
        let mut bytes = entry.encode();
        let at = bytes.len() - 64 - 11;
        bytes[at + 4] = b'/';
        assert!(TrustEntry::decode(&bytes).is_err());
        let mut bytes = entry.encode();
        let at = bytes.len() - 64 - 1;
        bytes[at] = 9;
        assert!(TrustEntry::decode(&bytes).is_err());
        for n in 0..entry.encode().len() {
            let _ = TrustEntry::decode(&entry.encode()[..n]);
        }
    }
}
