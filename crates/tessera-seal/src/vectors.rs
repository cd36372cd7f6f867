//! Test vectors: fixed keys, nonces and inputs, the bytes they must give, and the
//! same bytes in `docs/protocol.md` (so the document cannot drift from the code).

use tessera_log::{DeviceKey, DocId, NetworkId, PartnerKey, SecretKey};

use crate::*;

struct Inputs {
    network: NetworkId,
    device: SecretKey,
    scope: Scope,
    key: ScopeKey,
    doc: DocId,
}

fn inputs() -> Inputs {
    let network = NetworkId(SecretKey::from_seed([1; 32]).public());
    let partner = PartnerKey(SecretKey::from_seed([2; 32]).public());
    let scope = Scope::Partner(partner);
    let mut doc = [0x11; 16];
    doc[0] = 2; // an attendee
    Inputs {
        network,
        device: SecretKey::from_seed([3; 32]),
        scope,
        key: ScopeKey::from_bytes(scope, Epoch(1), [0x42; 32]),
        doc: DocId(doc),
    }
}

/// Cross-checked with libsodium (PyNaCl 1.5: `crypto_aead_xchacha20poly1305_ietf_encrypt`,
/// `crypto_sign_ed25519_pk_to_curve25519`, `crypto_scalarmult`) and the `blake3`
/// Python package, 2026-12-07.
pub(crate) const SEALED_BODY_HEX: &str = "01018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000000013c8b784f4b14765dd58e4685cdda6598242424242424242424242424242424242424242424242424d13ba4160b562ddaeaf8be59fabe5461ead3fc58097f82";
pub(crate) const WRAPPED_KEY_HEX: &str = "0150a61409b1ddd0325e9b16b700e719e9772c07000b1bd7786e907c653d20495d54c11b280df8ff040159a2cc2fa689982cccaeab8cc8e1ebe3128c2eff6327eab6b29c4d45f14da29f04ad120c19fbeb";

/// The key id of the vector key, and a grant body carrying the wrapped key above
/// (derived from the vectors above by the formats in `docs/protocol.md`).
pub(crate) const KEY_ID_HEX: &str = "3c8b784f4b14765dd58e4685cdda6598";
pub(crate) const GRANT_BODY_HEX: &str = "010001018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000000013c8b784f4b14765dd58e4685cdda6598ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d10150a61409b1ddd0325e9b16b700e719e9772c07000b1bd7786e907c653d20495d54c11b280df8ff040159a2cc2fa689982cccaeab8cc8e1ebe3128c2eff6327eab6b29c4d45f14da29f04ad120c19fbeb";

#[test]
fn the_grant_vector_gives_the_documented_bytes() {
    let v = inputs();
    let device = DeviceKey(v.device.public());
    let wrapped = wrap_key_with_ephemeral(&v.key, &v.network, &device, &[5; 32]);
    let grant = Grant { scope: v.scope, epoch: Epoch(1), key: v.key.id(), recipient: device, wrapped };
    let body = encode_grants(std::slice::from_ref(&grant));
    assert_eq!(hex::encode(v.key.id().0), KEY_ID_HEX);
    assert_eq!(hex::encode(&body), GRANT_BODY_HEX);
    assert_eq!(decode_grants(&body).unwrap(), vec![grant.clone()]);
    assert_eq!(grant.open(&v.network, &v.device).unwrap(), v.key);
    let doc: String = include_str!("../../../docs/protocol.md").split_whitespace().collect();
    assert!(doc.contains(KEY_ID_HEX), "docs/protocol.md lacks the key id vector");
    assert!(doc.contains(GRANT_BODY_HEX), "docs/protocol.md lacks the grant body vector");
}

#[test]
fn the_vectors_give_the_documented_bytes() {
    let v = inputs();
    let sealed = seal_body_with_nonce(&v.key, &v.network, &v.doc, b"tessera", [0x24; 24]);
    let device = DeviceKey(v.device.public());
    let wrapped = wrap_key_with_ephemeral(&v.key, &v.network, &device, &[5; 32]);
    let (sealed_hex, wrapped_hex) = (hex::encode(&sealed), hex::encode(wrapped.as_bytes()));
    assert_eq!(sealed_hex, SEALED_BODY_HEX);
    assert_eq!(wrapped_hex, WRAPPED_KEY_HEX);
    // And they open again.
    let mut ring = KeyRing::new();
    ring.insert(v.key.clone());
    assert_eq!(open_body(&ring, &v.network, &v.doc, &sealed).unwrap(), b"tessera");
    let opened = unwrap_key(&wrapped, &v.network, v.scope, Epoch(1), &v.device).unwrap();
    assert_eq!(opened, v.key);
    // The protocol document shows the same bytes.
    let doc: String = include_str!("../../../docs/protocol.md").split_whitespace().collect();
    assert!(doc.contains(SEALED_BODY_HEX), "docs/protocol.md lacks the sealed body vector");
    assert!(doc.contains(WRAPPED_KEY_HEX), "docs/protocol.md lacks the wrapped key vector");
}
