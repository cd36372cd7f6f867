//! Sealed bodies: a change body encrypted with its scope's key, bound to the network
//! and the document it belongs to.
//!
//! ```text
//! version (1) = 1 | scope (1 or 33) | epoch (4, big-endian) | key id (16) | nonce (24) | ciphertext+tag (n+16)
//! ```
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce; the associated data is the context
//! string, the network id, the document id and the header above, so a sealed body
//! moved to another document, network, scope or epoch does not open. The key id tells
//! a reader which key to use, and so whether it lacks that key or the body is forged.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tessera_log::{DocId, NetworkId};

use crate::error::OpenError;
use crate::scope::{Epoch, KeyId, KeyRing, Scope, ScopeKey};
use crate::FORMAT_VERSION;

pub const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
const BODY_CONTEXT: &[u8] = b"tessera/seal/body/v1";
/// The most bytes sealing adds to a body (a partner scope): bodies are sealed within
/// the envelope's body limit, so plaintext may be this much shorter.
pub const SEALED_OVERHEAD_MAX: usize = 1 + 33 + 4 + 16 + NONCE_BYTES + TAG_BYTES;

/// What anyone can read of a sealed body without a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedHeader {
    pub scope: Scope,
    pub epoch: Epoch,
    /// The key it is sealed with.
    pub key: KeyId,
    /// Bytes of the header (version, scope, epoch, key id), before the nonce.
    header_len: usize,
}

impl SealedHeader {
    /// Reads the scope and epoch a sealed body names; checks only its shape.
    pub fn parse(sealed: &[u8]) -> Result<SealedHeader, OpenError> {
        match sealed.first() {
            None => return Err(OpenError::Malformed { reason: "empty sealed body" }),
            Some(&FORMAT_VERSION) => {}
            Some(&other) => return Err(OpenError::UnknownVersion(other)),
        }
        let (scope, scope_len) = Scope::decode(&sealed[1..])?;
        let at = 1 + scope_len;
        let epoch = sealed
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| Epoch(u32::from_be_bytes(b)))
            .ok_or(OpenError::Malformed { reason: "epoch cut short" })?;
        let key = sealed
            .get(at + 4..at + 20)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(KeyId)
            .ok_or(OpenError::Malformed { reason: "key id cut short" })?;
        let header_len = at + 20;
        if sealed.len() < header_len + NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Malformed { reason: "shorter than a nonce and a tag" });
        }
        Ok(SealedHeader { scope, epoch, key, header_len })
    }
}

fn header(key: &ScopeKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 33 + 4 + 16);
    out.push(FORMAT_VERSION);
    key.scope().encode_into(&mut out);
    out.extend_from_slice(&key.epoch().0.to_be_bytes());
    out.extend_from_slice(&key.id().0);
    out
}

fn associated_data(network: &NetworkId, doc: &DocId, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(BODY_CONTEXT.len() + 32 + 16 + header.len());
    aad.extend_from_slice(BODY_CONTEXT);
    aad.extend_from_slice(network.as_bytes());
    aad.extend_from_slice(&doc.0);
    aad.extend_from_slice(header);
    aad
}

/// Seals `plaintext`, a body of document `doc`, with `key` and a fresh random nonce.
pub fn seal_body(
    key: &ScopeKey,
    network: &NetworkId,
    doc: &DocId,
    plaintext: &[u8],
) -> Result<Vec<u8>, getrandom::Error> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::getrandom(&mut nonce)?;
    Ok(seal_body_with_nonce(key, network, doc, plaintext, nonce))
}

/// [`seal_body`] with the nonce given: for test vectors. A nonce must never be used
/// twice with one key.
pub fn seal_body_with_nonce(
    key: &ScopeKey,
    network: &NetworkId,
    doc: &DocId,
    plaintext: &[u8],
    nonce: [u8; NONCE_BYTES],
) -> Vec<u8> {
    let mut out = header(key);
    let aad = associated_data(network, doc, &out);
    let cipher = XChaCha20Poly1305::new(key.secret_bytes().into());
    // Encryption fails only for plaintexts beyond the AEAD's limit (256 GiB);
    // bodies are capped far below by the envelope format.
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
        .unwrap_or_else(|_| unreachable!("body beyond the AEAD's length limit"));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a sealed body of document `doc` with the matching key of `ring`.
pub fn open_body(
    ring: &KeyRing,
    network: &NetworkId,
    doc: &DocId,
    sealed: &[u8],
) -> Result<Vec<u8>, OpenError> {
    let head = SealedHeader::parse(sealed)?;
    let key = ring
        .get(&head.scope, head.epoch)
        .iter()
        .find(|k| k.id() == head.key)
        .ok_or(OpenError::NoKey { scope: head.scope, epoch: head.epoch })?;
    let (header, rest) = sealed.split_at(head.header_len);
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    let aad = associated_data(network, doc, header);
    XChaCha20Poly1305::new(key.secret_bytes().into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
        .map_err(|_| OpenError::Forged { scope: head.scope, epoch: head.epoch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_log::testkit::TestNetwork;

    fn ring_with(key: &ScopeKey) -> KeyRing {
        let mut ring = KeyRing::new();
        ring.insert(key.clone());
        ring
    }

    #[test]
    fn a_body_opens_only_with_its_key_document_network_and_epoch() {
        let net = TestNetwork::new(1, 2, 1);
        let other_net = TestNetwork::new(2, 1, 1);
        let partner = Scope::Partner(tessera_log::PartnerKey(net.partner_keys[0].public()));
        let key = ScopeKey::from_bytes(partner, Epoch(3), [7; 32]);
        let doc = DocId([2; 16]);
        let sealed = seal_body(&key, &net.network, &doc, b"nome: Giulia").unwrap();
        assert_eq!(sealed.len(), b"nome: Giulia".len() + SEALED_OVERHEAD_MAX);
        assert!(!sealed.windows(6).any(|w| w == b"Giulia"), "no plaintext in the sealed bytes");
        let ring = ring_with(&key);
        assert_eq!(open_body(&ring, &net.network, &doc, &sealed).unwrap(), b"nome: Giulia");
        // Another document, another network: forged.
        let forged = open_body(&ring, &net.network, &DocId([3; 16]), &sealed).unwrap_err();
        assert_eq!(forged, OpenError::Forged { scope: partner, epoch: Epoch(3) });
        assert!(open_body(&ring, &other_net.network, &doc, &sealed).is_err());
        // Another epoch's key, or none: named.
        let other_epoch = ring_with(&ScopeKey::from_bytes(partner, Epoch(4), [7; 32]));
        assert_eq!(
            open_body(&other_epoch, &net.network, &doc, &sealed).unwrap_err(),
            OpenError::NoKey { scope: partner, epoch: Epoch(3) }
        );
        // The same secret under another scope does not open it either: the scope is
        // in the associated data.
        let mut relabelled = sealed.clone();
        relabelled.splice(1..34, [0u8]);
        let network_ring = ring_with(&ScopeKey::from_bytes(Scope::Network, Epoch(3), [7; 32]));
        assert!(matches!(
            open_body(&network_ring, &net.network, &doc, &relabelled),
            Err(OpenError::Forged { scope: Scope::Network, .. })
        ));
        // Every flipped bit is caught.
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(open_body(&ring, &net.network, &doc, &bad).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn two_seals_of_one_body_differ() {
        let net = TestNetwork::new(1, 1, 1);
        let key = ScopeKey::from_bytes(Scope::Network, Epoch(0), [1; 32]);
        let a = seal_body(&key, &net.network, &DocId([1; 16]), b"x").unwrap();
        let b = seal_body(&key, &net.network, &DocId([1; 16]), b"x").unwrap();
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn opening_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let net = TestNetwork::new(1, 1, 1);
            let ring = ring_with(&ScopeKey::from_bytes(Scope::Network, Epoch(0), [1; 32]));
            let _ = SealedHeader::parse(&bytes);
            let _ = open_body(&ring, &net.network, &DocId([1; 16]), &bytes);
        }

        #[test]
        fn what_is_sealed_opens(body in proptest::collection::vec(any::<u8>(), 0..300), epoch in any::<u32>()) {
            let net = TestNetwork::new(1, 1, 1);
            let key = ScopeKey::from_bytes(Scope::Network, Epoch(epoch), [9; 32]);
            let sealed = seal_body(&key, &net.network, &DocId([4; 16]), &body).unwrap();
            let head = SealedHeader::parse(&sealed).unwrap();
            prop_assert_eq!((head.scope, head.epoch), (Scope::Network, Epoch(epoch)));
            prop_assert_eq!(open_body(&ring_with(&key), &net.network, &DocId([4; 16]), &sealed).unwrap(), body);
        }
    }
}
