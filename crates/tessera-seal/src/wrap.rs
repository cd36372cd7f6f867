//! Wrapped keys: a scope key sealed for one device, with the key that device is
//! certified with (its ed25519 key in Montgomery form, X25519; the same key pair for
//! signing and key agreement is proven safe for this use, Thormarker 2021).
//!
//! ```text
//! version (1) = 1 | ephemeral X25519 public key (32) | ciphertext+tag of the scope key (48)
//! ```
//!
//! The key-encryption key is BLAKE3 `derive_key("tessera/seal/wrap/v1", shared ‖
//! ephemeral public ‖ recipient public)`, used once (a fresh ephemeral key per wrap),
//! so the XChaCha20-Poly1305 nonce is 24 zero bytes; the associated data names the
//! network, the recipient device, the scope and the epoch.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use tessera_log::{DeviceKey, NetworkId, SecretKey};
use zeroize::Zeroizing;

use crate::error::OpenError;
use crate::scope::{Epoch, Scope, ScopeKey};
use crate::FORMAT_VERSION;

const WRAP_CONTEXT: &str = "tessera/seal/wrap/v1";
/// Bytes of one wrapped key.
pub const WRAPPED_KEY_BYTES: usize = 1 + 32 + 32 + 16;

/// A scope key wrapped for one device.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WrappedKey([u8; WRAPPED_KEY_BYTES]);

impl WrappedKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<WrappedKey, OpenError> {
        let array: [u8; WRAPPED_KEY_BYTES] =
            bytes.try_into().map_err(|_| OpenError::Malformed { reason: "a wrapped key is 81 bytes" })?;
        match array[0] {
            FORMAT_VERSION => Ok(WrappedKey(array)),
            other => Err(OpenError::UnknownVersion(other)),
        }
    }

    pub fn as_bytes(&self) -> &[u8; WRAPPED_KEY_BYTES] {
        &self.0
    }
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappedKey(..)")
    }
}

fn associated_data(network: &NetworkId, recipient: &DeviceKey, scope: &Scope, epoch: Epoch) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_CONTEXT.len() + 32 + 32 + 33 + 4);
    aad.extend_from_slice(WRAP_CONTEXT.as_bytes());
    aad.extend_from_slice(network.as_bytes());
    aad.extend_from_slice(recipient.as_bytes());
    scope.encode_into(&mut aad);
    aad.extend_from_slice(&epoch.0.to_be_bytes());
    aad
}

fn key_encryption_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut hasher = blake3::Hasher::new_derive_key(WRAP_CONTEXT);
    hasher.update(shared);
    hasher.update(ephemeral);
    hasher.update(recipient);
    Zeroizing::new(*hasher.finalize().as_bytes())
}

/// Wraps `key` for `recipient` with a fresh ephemeral key.
pub fn wrap_key(
    key: &ScopeKey,
    network: &NetworkId,
    recipient: &DeviceKey,
) -> Result<WrappedKey, getrandom::Error> {
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(ephemeral.as_mut())?;
    Ok(wrap_key_with_ephemeral(key, network, recipient, &ephemeral))
}

/// [`wrap_key`] with the ephemeral secret given: for test vectors. An ephemeral
/// secret must never be used twice.
pub fn wrap_key_with_ephemeral(
    key: &ScopeKey,
    network: &NetworkId,
    recipient: &DeviceKey,
    ephemeral_secret: &[u8; 32],
) -> WrappedKey {
    let ephemeral_public = MontgomeryPoint::mul_base_clamped(*ephemeral_secret).to_bytes();
    let recipient_x = recipient.0.to_x25519();
    // A certified device key is a valid point not of small order, so the shared
    // secret is never all zeroes here.
    let shared = Zeroizing::new(MontgomeryPoint(recipient_x).mul_clamped(*ephemeral_secret).to_bytes());
    let kek = key_encryption_key(&shared, &ephemeral_public, &recipient_x);
    let aad = associated_data(network, recipient, &key.scope(), key.epoch());
    let sealed = XChaCha20Poly1305::new(kek.as_ref().into())
        .encrypt(&XNonce::default(), Payload { msg: key.secret_bytes(), aad: &aad })
        .unwrap_or_else(|_| unreachable!("32 bytes are within the AEAD's limit"));
    let mut out = [0u8; WRAPPED_KEY_BYTES];
    out[0] = FORMAT_VERSION;
    out[1..33].copy_from_slice(&ephemeral_public);
    out[33..].copy_from_slice(&sealed);
    WrappedKey(out)
}

/// Opens a key of `scope` at `epoch` wrapped for the device whose secret is `device`.
pub fn unwrap_key(
    wrapped: &WrappedKey,
    network: &NetworkId,
    scope: Scope,
    epoch: Epoch,
    device: &SecretKey,
) -> Result<ScopeKey, OpenError> {
    let ephemeral_public: [u8; 32] =
        wrapped.0[1..33].try_into().unwrap_or_else(|_| unreachable!("fixed layout"));
    let scalar = Zeroizing::new(device.to_x25519_scalar_bytes());
    let shared = Zeroizing::new(MontgomeryPoint(ephemeral_public).mul_clamped(*scalar).to_bytes());
    if *shared == [0u8; 32] {
        // A small-order ephemeral key: no secret was agreed.
        return Err(OpenError::NotForThisDevice);
    }
    let recipient = DeviceKey(device.public());
    let recipient_x = recipient.0.to_x25519();
    let kek = key_encryption_key(&shared, &ephemeral_public, &recipient_x);
    let aad = associated_data(network, &recipient, &scope, epoch);
    let opened = Zeroizing::new(
        XChaCha20Poly1305::new(kek.as_ref().into())
            .decrypt(&XNonce::default(), Payload { msg: &wrapped.0[33..], aad: &aad })
            .map_err(|_| OpenError::NotForThisDevice)?,
    );
    let secret: [u8; 32] = opened
        .as_slice()
        .try_into()
        .map_err(|_| OpenError::Malformed { reason: "a scope key is 32 bytes" })?;
    Ok(ScopeKey::from_bytes(scope, epoch, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_log::testkit::TestNetwork;

    #[test]
    fn a_wrapped_key_opens_only_for_its_device_scope_and_epoch() {
        let net = TestNetwork::new(5, 1, 2);
        let key = ScopeKey::generate(Scope::Network, Epoch(2)).unwrap();
        let (alice, bob) = (&net.devices[0], &net.devices[1]);
        let wrapped = wrap_key(&key, &net.network, &alice.id).unwrap();
        let opened = unwrap_key(&wrapped, &net.network, Scope::Network, Epoch(2), &alice.key).unwrap();
        assert_eq!(opened, key);
        assert_eq!(
            unwrap_key(&wrapped, &net.network, Scope::Network, Epoch(2), &bob.key).unwrap_err(),
            OpenError::NotForThisDevice
        );
        assert!(unwrap_key(&wrapped, &net.network, Scope::Network, Epoch(3), &alice.key).is_err());
        let partner = Scope::Partner(tessera_log::PartnerKey(net.partner_keys[0].public()));
        assert!(unwrap_key(&wrapped, &net.network, partner, Epoch(2), &alice.key).is_err());
        for byte in 1..WRAPPED_KEY_BYTES {
            let mut bad = *wrapped.as_bytes();
            bad[byte] ^= 0x40;
            let bad = WrappedKey::from_bytes(&bad).unwrap();
            assert!(
                unwrap_key(&bad, &net.network, Scope::Network, Epoch(2), &alice.key).is_err(),
                "byte {byte}"
            );
        }
    }

    #[test]
    fn a_small_order_ephemeral_key_is_refused() {
        let net = TestNetwork::new(5, 1, 1);
        let mut bytes = [0u8; WRAPPED_KEY_BYTES];
        bytes[0] = FORMAT_VERSION; // ephemeral key 0: the identity, of small order
        let wrapped = WrappedKey::from_bytes(&bytes).unwrap();
        let device = &net.devices[0].key;
        assert_eq!(
            unwrap_key(&wrapped, &net.network, Scope::Network, Epoch(0), device).unwrap_err(),
            OpenError::NotForThisDevice
        );
    }

    proptest! {
        #[test]
        fn any_bytes_as_a_wrapped_key_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let net = TestNetwork::new(5, 1, 1);
            if let Ok(wrapped) = WrappedKey::from_bytes(&bytes) {
                let _ = unwrap_key(&wrapped, &net.network, Scope::Network, Epoch(0), &net.devices[0].key);
            }
        }
    }
}
