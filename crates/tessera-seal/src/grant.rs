//! Grants: scope keys wrapped for the devices that may read them, published as the
//! body of a change in a *grant document* so they travel, are signed and are verified
//! like every other change (a relay carries them without reading anything: a wrapped
//! key opens only with its recipient's device key).
//!
//! ```text
//! body  = version (1) = 1 | count (2, big-endian, 1..=GRANTS_PER_BODY_MAX) | count × grant
//! grant = scope (1 or 33) | epoch (4, big-endian) | key id (16) | recipient device (32) | wrapped key (81)
//! ```
//!
//! A grant document's id starts with [`GRANT_DOC_KIND`]; its bodies are never sealed
//! (they hold nothing but wrapped keys and public fingerprints). Who may grant which
//! scope is the node's rule, checked against the signed author of the envelope.

use tessera_log::{DeviceKey, DocId, NetworkId, SecretKey};

use crate::error::OpenError;
use crate::scope::{Epoch, KeyId, Scope, ScopeKey};
use crate::wrap::{unwrap_key, wrap_key, WrappedKey, WRAPPED_KEY_BYTES};
use crate::FORMAT_VERSION;

/// The first byte of a grant document's id (record kinds use 1 to 5).
pub const GRANT_DOC_KIND: u8 = 0xF0;
/// Grants in one body, at most (a body of 256 partner-scope grants is 42 KiB).
pub const GRANTS_PER_BODY_MAX: usize = 256;

/// One scope key wrapped for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    pub epoch: Epoch,
    /// The fingerprint of the key wrapped inside.
    pub key: KeyId,
    pub recipient: DeviceKey,
    pub wrapped: WrappedKey,
}

impl Grant {
    /// Wraps `key` for `recipient`.
    pub fn new(key: &ScopeKey, network: &NetworkId, recipient: DeviceKey) -> Result<Grant, getrandom::Error> {
        Ok(Grant {
            scope: key.scope(),
            epoch: key.epoch(),
            key: key.id(),
            recipient,
            wrapped: wrap_key(key, network, &recipient)?,
        })
    }

    /// Opens the grant with the recipient's device key, and checks that the key inside
    /// is the one the grant names.
    pub fn open(&self, network: &NetworkId, device: &SecretKey) -> Result<ScopeKey, OpenError> {
        let key = unwrap_key(&self.wrapped, network, self.scope, self.epoch, device)?;
        if key.id() != self.key {
            return Err(OpenError::Malformed { reason: "a grant names another key than it carries" });
        }
        Ok(key)
    }
}

/// Whether `doc` is a grant document.
pub fn is_grant_doc(doc: &DocId) -> bool {
    doc.0[0] == GRANT_DOC_KIND
}

/// A new grant document id, from 15 random bytes.
pub fn grant_doc_id(random: [u8; 15]) -> DocId {
    let mut id = [0u8; 16];
    id[0] = GRANT_DOC_KIND;
    id[1..].copy_from_slice(&random);
    DocId(id)
}

/// The body of a change of a grant document. `grants` must hold 1 to
/// [`GRANTS_PER_BODY_MAX`] grants.
pub fn encode_grants(grants: &[Grant]) -> Vec<u8> {
    assert!(
        !grants.is_empty() && grants.len() <= GRANTS_PER_BODY_MAX,
        "a grant body holds 1 to {GRANTS_PER_BODY_MAX} grants"
    );
    let mut out = Vec::with_capacity(3 + grants.len() * (33 + 4 + 16 + 32 + WRAPPED_KEY_BYTES));
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(grants.len() as u16).to_be_bytes());
    for grant in grants {
        grant.scope.encode_into(&mut out);
        out.extend_from_slice(&grant.epoch.0.to_be_bytes());
        out.extend_from_slice(&grant.key.0);
        out.extend_from_slice(grant.recipient.as_bytes());
        out.extend_from_slice(grant.wrapped.as_bytes());
    }
    out
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], OpenError> {
    if bytes.len() < n {
        return Err(OpenError::Malformed { reason: what });
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// Decodes a grant body (untrusted bytes: never panics).
pub fn decode_grants(mut bytes: &[u8]) -> Result<Vec<Grant>, OpenError> {
    match take(&mut bytes, 1, "empty grant body")?[0] {
        FORMAT_VERSION => {}
        other => return Err(OpenError::UnknownVersion(other)),
    }
    let count = take(&mut bytes, 2, "grant count cut short")?;
    let count = u16::from_be_bytes([count[0], count[1]]) as usize;
    if count == 0 || count > GRANTS_PER_BODY_MAX {
        return Err(OpenError::Malformed { reason: "grant count out of range" });
    }
    let mut grants = Vec::with_capacity(count);
    for _ in 0..count {
        let (scope, used) = Scope::decode(bytes)?;
        take(&mut bytes, used, "scope cut short")?;
        let epoch = take(&mut bytes, 4, "epoch cut short")?;
        let epoch = Epoch(u32::from_be_bytes([epoch[0], epoch[1], epoch[2], epoch[3]]));
        let mut key = [0u8; 16];
        key.copy_from_slice(take(&mut bytes, 16, "key id cut short")?);
        let mut recipient = [0u8; 32];
        recipient.copy_from_slice(take(&mut bytes, 32, "recipient cut short")?);
        let recipient = DeviceKey::from_bytes(recipient)
            .map_err(|_| OpenError::Malformed { reason: "bad recipient key" })?;
        let wrapped = WrappedKey::from_bytes(take(&mut bytes, WRAPPED_KEY_BYTES, "wrapped key cut short")?)?;
        grants.push(Grant { scope, epoch, key: KeyId(key), recipient, wrapped });
    }
    if !bytes.is_empty() {
        return Err(OpenError::Malformed { reason: "bytes after the last grant" });
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_log::testkit::TestNetwork;

    fn sample() -> (TestNetwork, Vec<Grant>, ScopeKey) {
        let net = TestNetwork::new(4, 1, 2);
        let key = ScopeKey::from_bytes(Scope::Partner(net.devices[0].partner), Epoch(3), [9; 32]);
        let grants = net.devices.iter().map(|d| Grant::new(&key, &net.network, d.id).unwrap()).collect();
        (net, grants, key)
    }

    #[test]
    fn grants_round_trip_and_open_only_for_their_recipient() {
        let (net, grants, key) = sample();
        let body = encode_grants(&grants);
        let decoded = decode_grants(&body).unwrap();
        assert_eq!(decoded, grants);
        let opened = decoded[0].open(&net.network, &net.devices[0].key).unwrap();
        assert_eq!(opened.secret_bytes(), key.secret_bytes());
        assert_eq!(decoded[0].open(&net.network, &net.devices[1].key), Err(OpenError::NotForThisDevice));
        assert!(decoded[1].open(&net.network, &net.devices[1].key).is_ok());
    }

    #[test]
    fn a_grant_that_names_another_key_is_refused() {
        let (net, mut grants, _) = sample();
        grants[0].key = KeyId([0; 16]);
        assert!(matches!(
            grants[0].open(&net.network, &net.devices[0].key),
            Err(OpenError::Malformed { .. })
        ));
    }

    #[test]
    fn grant_documents_are_told_apart_from_records() {
        let doc = grant_doc_id([7; 15]);
        assert!(is_grant_doc(&doc));
        assert!(!is_grant_doc(&DocId([2; 16])));
    }

    #[test]
    fn malformed_grant_bodies_are_refused() {
        let (_, grants, _) = sample();
        let body = encode_grants(&grants);
        for cut in 0..body.len() {
            assert!(decode_grants(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = body.clone();
        long.push(0);
        assert!(decode_grants(&long).is_err());
        let mut zero = body.clone();
        zero[1] = 0;
        zero[2] = 0;
        assert!(decode_grants(&zero).is_err());
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_grants(&bytes);
        }
    }
}
