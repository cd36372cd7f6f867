//! Channel binding: how a peer proves, inside one TLS session, that it holds a
//! certified device key.
//!
//! The transport's TLS certificates are throwaway; identity is the device key. Each
//! side signs the session's exported keying material (RFC 5705, different for every
//! TLS session) with its device key and sends the signature with the certificates that
//! make it verifiable. A man in the middle terminates two TLS sessions with two
//! different exported values, so a signature relayed from one does not verify on the
//! other; a captured signature does not verify in any later session.
//!
//! Bytes: version `0x01`, network id (32), device key (32), entry count (`u8`, at most
//! [`CHANNEL_CHAIN_ENTRIES_MAX`]), that many { `u32` length, trust entry }, signature (64)
//! over `"tessera/v1/channel\0" ‖ network id ‖ exported keying material (32 bytes)`.

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::VerifyError;
use crate::ids::{DeviceKey, NetworkId, SecretKey, Signature};
use crate::limits::TRUST_ENTRY_BYTES_MAX;
use crate::trust::{DeviceCertificate, TrustEntry, TrustState, TrustStatement};

pub const CHANNEL_AUTH_VERSION: u8 = 1;
/// Certificates one peer may present: its device's and its partner's, with room for
/// re-issued ones.
pub const CHANNEL_CHAIN_ENTRIES_MAX: usize = 8;
/// The TLS exporter label both sides use.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-tessera-channel-binding-v1";
/// Bytes of exported keying material signed.
pub const EXPORTER_BYTES: usize = 32;
const SIGNING_CONTEXT: &[u8] = b"tessera/v1/channel\0";

/// A peer's proof of identity for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelAuth {
    pub network: NetworkId,
    pub device: DeviceKey,
    /// The certificates that make `device` verifiable by a node that has not met it.
    pub chain: Vec<TrustEntry>,
    pub signature: Signature,
}

/// Why a peer was refused at the handshake. Sent to the peer too, so both sides can
/// say why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("malformed handshake: {0}")]
    Decode(#[from] DecodeError),
    #[error("the peer belongs to network {found}, not to this network ({expected})")]
    ForeignNetwork { expected: NetworkId, found: NetworkId },
    #[error("the peer's proof of its device key does not match this connection (forged or replayed)")]
    BadSignature,
    #[error("device {0} is not certified in this network")]
    NotCertified(DeviceKey),
    #[error("device {0} is revoked")]
    Revoked(DeviceKey),
    #[error("a certificate the peer presented is invalid: {0}")]
    BadCertificate(VerifyError),
}

impl ChannelError {
    /// The words sent to the refused peer, written from its side: its operator reads
    /// them after "the peer refused this node:".
    pub fn peer_text(&self) -> String {
        match self {
            ChannelError::Decode(e) => format!("this node's handshake was malformed: {e}"),
            ChannelError::ForeignNetwork { expected, found } => format!(
                "the node it connected to belongs to network {expected}, and this node to network \
                 {found}: they are different programmes"
            ),
            ChannelError::BadSignature => {
                "this node's proof of its device key did not match the connection (forged or replayed)".into()
            }
            ChannelError::NotCertified(device) => {
                format!("this node's device {device} is not certified in the network: import its certificate")
            }
            ChannelError::Revoked(device) => format!("this node's device {device} is revoked"),
            ChannelError::BadCertificate(e) => format!("a certificate this node presented is invalid: {e}"),
        }
    }
}

fn message(network: &NetworkId, exported: &[u8; EXPORTER_BYTES]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + 32 + EXPORTER_BYTES);
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(network.as_bytes());
    m.extend_from_slice(exported);
    m
}

impl ChannelAuth {
    /// Signs the exported keying material of this session.
    pub fn sign(
        network: NetworkId,
        key: &SecretKey,
        chain: Vec<TrustEntry>,
        exported: &[u8; EXPORTER_BYTES],
    ) -> ChannelAuth {
        let chain = chain.into_iter().take(CHANNEL_CHAIN_ENTRIES_MAX).collect();
        let signature = key.sign(&message(&network, exported));
        ChannelAuth { network, device: DeviceKey(key.public()), chain, signature }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.u8(CHANNEL_AUTH_VERSION);
        w.bytes(self.network.as_bytes());
        w.bytes(self.device.as_bytes());
        w.u8(self.chain.len() as u8);
        for entry in &self.chain {
            let bytes = entry.encode();
            w.u32(bytes.len() as u32);
            w.bytes(&bytes);
        }
        w.bytes(&self.signature.0);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<ChannelAuth, DecodeError> {
        const WHAT: &str = "channel handshake";
        let mut r = Reader::new(bytes);
        let version = r.u8("handshake version")?;
        if version != CHANNEL_AUTH_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                found: version,
                supported: CHANNEL_AUTH_VERSION,
            });
        }
        let network = NetworkId::from_bytes(r.array("network id")?)?;
        let device = DeviceKey::from_bytes(r.array("device key")?)?;
        let count = r.u8("certificate count")? as usize;
        if count > CHANNEL_CHAIN_ENTRIES_MAX {
            return Err(DecodeError::Oversized {
                what: "certificate list",
                len: count,
                max: CHANNEL_CHAIN_ENTRIES_MAX,
            });
        }
        let mut chain = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u32("certificate length")? as usize;
            if len > TRUST_ENTRY_BYTES_MAX {
                return Err(DecodeError::Oversized { what: "certificate", len, max: TRUST_ENTRY_BYTES_MAX });
            }
            chain.push(TrustEntry::decode(r.take(len, "certificate")?)?);
        }
        let signature = Signature(r.array("handshake signature")?);
        r.finish(WHAT)?;
        Ok(ChannelAuth { network, device, chain, signature })
    }

    /// Checks the proof against this session's exported material and `trust` (plus
    /// the certificates presented). Returns the peer's certificate.
    pub fn verify(
        &self,
        trust: &TrustState,
        exported: &[u8; EXPORTER_BYTES],
    ) -> Result<DeviceCertificate, ChannelError> {
        let network = trust.network();
        if self.network != network {
            return Err(ChannelError::ForeignNetwork { expected: network, found: self.network });
        }
        if !self.device.0.verify(&message(&network, exported), &self.signature) {
            return Err(ChannelError::BadSignature);
        }
        let mut trust = trust.clone();
        let mut chain = self.chain.clone();
        chain.sort_by_key(TrustEntry::dependency_rank);
        for entry in chain {
            // Only certificates: a peer cannot bring revocations of others here.
            if matches!(entry.statement, TrustStatement::Partner(_) | TrustStatement::Device(_)) {
                trust.add(entry).map_err(ChannelError::BadCertificate)?;
            }
        }
        if trust.device_revoked_after(&self.device).is_some() {
            return Err(ChannelError::Revoked(self.device));
        }
        match trust.authorize(&self.device, crate::ids::Seq::FIRST) {
            Ok(cert) => Ok(cert.clone()),
            Err(VerifyError::UnknownAuthor { .. }) => Err(ChannelError::NotCertified(self.device)),
            Err(_) => Err(ChannelError::Revoked(self.device)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestNetwork;
    use crate::trust::DeviceRevocation;
    use proptest::prelude::*;

    fn auth_for(net: &TestNetwork, device: usize, exported: &[u8; 32]) -> ChannelAuth {
        let trust = net.trust();
        let chain = trust.chain_of(&net.devices[device].id).into_iter().cloned().collect();
        ChannelAuth::sign(net.network, &net.devices[device].key, chain, exported)
    }

    #[test]
    fn a_certified_peer_is_accepted_by_a_node_that_never_met_it() {
        let net = TestNetwork::new(5, 2, 1);
        let auth = auth_for(&net, 1, &[7; 32]);
        let decoded = ChannelAuth::decode(&auth.encode()).unwrap();
        assert_eq!(decoded, auth);
        // A node that knows only the network key.
        let empty = TrustState::new(net.network);
        let cert = decoded.verify(&empty, &[7; 32]).unwrap();
        assert_eq!(cert.device, net.devices[1].id);
    }

    #[test]
    fn another_session_or_network_or_revocation_is_refused() {
        let net = TestNetwork::new(5, 1, 1);
        let auth = auth_for(&net, 0, &[7; 32]);
        // Replayed into another session (other exported material).
        assert_eq!(auth.verify(&net.trust(), &[8; 32]), Err(ChannelError::BadSignature));
        // Another network.
        let other = TestNetwork::new(6, 1, 1);
        assert!(matches!(auth.verify(&other.trust(), &[7; 32]), Err(ChannelError::ForeignNetwork { .. })));
        // Revoked.
        let mut trust = net.trust();
        trust
            .add(net.sign_as_partner(
                0,
                TrustStatement::RevokeDevice(DeviceRevocation {
                    issuer: net.partner_keys[0].public(),
                    device: net.devices[0].id,
                    last_valid: crate::ids::Seq(10),
                    reason: String::new(),
                }),
            ))
            .unwrap();
        assert_eq!(auth.verify(&trust, &[7; 32]), Err(ChannelError::Revoked(net.devices[0].id)));
        // Uncertified: no chain and unknown to the verifier.
        let bare = ChannelAuth::sign(net.network, &net.devices[0].key, vec![], &[7; 32]);
        assert_eq!(
            bare.verify(&TrustState::new(net.network), &[7; 32]),
            Err(ChannelError::NotCertified(net.devices[0].id))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(auth) = ChannelAuth::decode(&bytes) {
                prop_assert_eq!(auth.encode(), bytes);
            }
        }
    }
}
