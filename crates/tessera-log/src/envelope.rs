//! The envelope: one local transaction of one device, signed.
//!
//! The signature covers the header: author, seq, the previous envelope's id, time, and
//! for each change the document id and a *commitment* to the change body (a salted
//! hash). The bodies travel beside the signed header, not inside it, so that a relay
//! can later carry them encrypted and a body can be erased (GDPR art. 17) while every
//! signature and the hash chain still verify. See `docs/protocol.md` for the bytes.

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::{BuildError, VerifyError};
use crate::ids::{
    Commitment, DeviceKey, DocId, EnvelopeId, Hash, NetworkId, Salt, SecretKey, Seq, Signature, Timestamp,
};
use crate::limits::{BODY_BYTES_MAX, CHANGES_PER_ENVELOPE_MAX, ENVELOPE_BYTES_MAX};

/// Format version of envelopes.
pub const ENVELOPE_VERSION: u8 = 1;
const SIGNING_CONTEXT: &[u8] = b"tessera/v1/envelope\0";
const ID_CONTEXT: &str = "tessera 2026-11 envelope id v1";
const COMMITMENT_CONTEXT: &str = "tessera 2026-11 body commitment v1";

/// Bytes of the fixed part of a header: version, author, seq, prev, time, count.
pub const HEADER_FIXED_BYTES: usize = 1 + 32 + 8 + 32 + 8 + 2;
/// Bytes of one change reference in the header: document id and commitment.
pub const CHANGE_REF_BYTES: usize = 16 + 32;

/// The commitment to a body: BLAKE3 (derive-key mode) over the salt and the body.
pub fn commit(salt: &Salt, body: &[u8]) -> Commitment {
    Commitment(Hash::derive(COMMITMENT_CONTEXT, &[&salt.0, body]))
}

/// One change of a transaction as the signature sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeRef {
    pub doc: DocId,
    pub commitment: Commitment,
}

/// A change body as carried beside the header.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// Not carried here (stripped for transport, or erased); the commitment remains.
    Absent,
    /// The salt and the plain body (an automerge change).
    Present { salt: Salt, bytes: Vec<u8> },
}

impl std::fmt::Debug for Body {
    // Bodies may hold personal data: print sizes, never contents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Absent => f.write_str("Absent"),
            Body::Present { bytes, .. } => write!(f, "Present({} bytes)", bytes.len()),
        }
    }
}

const BODY_ABSENT: u8 = 0;
const BODY_PRESENT: u8 = 1;

/// The signed part of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub author: DeviceKey,
    pub seq: Seq,
    /// Id of the author's envelope `seq - 1`; all zeros for seq 1.
    pub prev: EnvelopeId,
    pub time: Timestamp,
    pub changes: Vec<ChangeRef>,
}

impl Header {
    fn encode_into(&self, w: &mut Writer) {
        w.u8(ENVELOPE_VERSION);
        w.bytes(self.author.as_bytes());
        w.u64(self.seq.0);
        w.bytes(self.prev.as_bytes());
        w.i64(self.time.0);
        w.u16(self.changes.len() as u16);
        for change in &self.changes {
            w.bytes(&change.doc.0);
            w.bytes(change.commitment.as_bytes());
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_FIXED_BYTES + CHANGE_REF_BYTES * self.changes.len());
        self.encode_into(&mut w);
        w.into_vec()
    }
}

/// A signed transaction with its bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    header: Header,
    signature: Signature,
    bodies: Vec<Body>,
    /// Cached hash of the encoded header; derived, never decoded.
    id: EnvelopeId,
}

/// A change to put in a new envelope.
#[derive(Clone, Debug)]
pub struct NewChange {
    pub doc: DocId,
    pub salt: Salt,
    pub body: Vec<u8>,
}

impl Envelope {
    /// Builds and signs the envelope after `prev` (`None`: the author's first).
    pub fn sign(
        network: &NetworkId,
        key: &SecretKey,
        prev: Option<(Seq, EnvelopeId)>,
        time: Timestamp,
        changes: Vec<NewChange>,
    ) -> Result<Envelope, BuildError> {
        if changes.is_empty() {
            return Err(BuildError::NoChanges);
        }
        if changes.len() > CHANGES_PER_ENVELOPE_MAX {
            return Err(BuildError::Oversized {
                what: "number of changes",
                len: changes.len(),
                max: CHANGES_PER_ENVELOPE_MAX,
            });
        }
        let (seq, prev) = match prev {
            None => (Seq::FIRST, EnvelopeId::default()),
            Some((seq, id)) => (seq.next().ok_or(BuildError::SeqExhausted(seq))?, id),
        };
        let mut refs = Vec::with_capacity(changes.len());
        let mut bodies = Vec::with_capacity(changes.len());
        let mut total = HEADER_FIXED_BYTES + 64;
        for change in changes {
            if change.body.len() > BODY_BYTES_MAX {
                return Err(BuildError::Oversized {
                    what: "change body",
                    len: change.body.len(),
                    max: BODY_BYTES_MAX,
                });
            }
            total += CHANGE_REF_BYTES + 1 + 16 + 4 + change.body.len();
            refs.push(ChangeRef { doc: change.doc, commitment: commit(&change.salt, &change.body) });
            bodies.push(Body::Present { salt: change.salt, bytes: change.body });
        }
        if total > ENVELOPE_BYTES_MAX {
            return Err(BuildError::Oversized { what: "envelope", len: total, max: ENVELOPE_BYTES_MAX });
        }
        let header = Header { author: DeviceKey(key.public()), seq, prev, time, changes: refs };
        let header_bytes = header.encode();
        let signature = key.sign(&signing_message(network, &header_bytes));
        let id = envelope_id(&header_bytes);
        Ok(Envelope { header, signature, bodies, id })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn author(&self) -> DeviceKey {
        self.header.author
    }
    pub fn seq(&self) -> Seq {
        self.header.seq
    }
    pub fn prev(&self) -> EnvelopeId {
        self.header.prev
    }
    pub fn time(&self) -> Timestamp {
        self.header.time
    }
    pub fn id(&self) -> EnvelopeId {
        self.id
    }
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
    pub fn changes(&self) -> &[ChangeRef] {
        &self.header.changes
    }
    pub fn bodies(&self) -> &[Body] {
        &self.bodies
    }
    /// The `(document, body bytes)` pairs whose bodies are present.
    pub fn present_changes(&self) -> impl Iterator<Item = (DocId, &[u8])> {
        self.header.changes.iter().zip(&self.bodies).filter_map(|(c, b)| match b {
            Body::Present { bytes, .. } => Some((c.doc, bytes.as_slice())),
            Body::Absent => None,
        })
    }

    /// Drops the body of change `index` (for transport or erasure). The envelope
    /// still verifies: the signature covers only the commitment.
    pub fn strip_body(&mut self, index: usize) {
        if let Some(body) = self.bodies.get_mut(index) {
            *body = Body::Absent;
        }
    }

    /// Drops every present body whose document `doc` picks (erasure). Returns how many
    /// were dropped.
    pub fn strip_bodies_where(&mut self, doc: impl Fn(&DocId) -> bool) -> usize {
        let mut dropped = 0;
        for (change, body) in self.header.changes.iter().zip(self.bodies.iter_mut()) {
            if matches!(body, Body::Present { .. }) && doc(&change.doc) {
                *body = Body::Absent;
                dropped += 1;
            }
        }
        dropped
    }

    /// Whether every change's body is carried (none stripped or erased).
    pub fn has_all_bodies(&self) -> bool {
        self.bodies.iter().all(|b| matches!(b, Body::Present { .. }))
    }

    /// Takes from `other` (the same envelope: same id) the bodies this copy lacks.
    /// Returns how many were filled in; 0 when `other` is another envelope. The
    /// caller has checked `other`'s bodies against their commitments
    /// ([`Envelope::verify_bodies`]); since the ids are equal, so are the commitments.
    pub fn fill_bodies_from(&mut self, other: &Envelope) -> usize {
        if other.id != self.id {
            return 0;
        }
        let mut filled = 0;
        for (mine, theirs) in self.bodies.iter_mut().zip(&other.bodies) {
            if matches!(mine, Body::Absent) && matches!(theirs, Body::Present { .. }) {
                *mine = theirs.clone();
                filled += 1;
            }
        }
        filled
    }

    /// Checks the signature against `network` and every present body against its
    /// commitment. The caller checks that the author may sign this seq
    /// ([`crate::TrustState::authorize`]) and where it sits in the chain.
    pub fn verify_signature_and_bodies(&self, network: &NetworkId) -> Result<(), VerifyError> {
        self.verify_with_key(network, &self.header.author.0.verifying_key())
    }

    /// As [`Envelope::verify_signature_and_bodies`], with the author's key already
    /// decompressed (see [`crate::TrustState::verify_envelope_signature`]).
    pub(crate) fn verify_with_key(
        &self,
        network: &NetworkId,
        key: &ed25519_dalek::VerifyingKey,
    ) -> Result<(), VerifyError> {
        let header_bytes = self.header.encode();
        if !crate::ids::verify_strict(key, &signing_message(network, &header_bytes), &self.signature) {
            return Err(VerifyError::BadSignature { device: self.header.author, seq: self.header.seq });
        }
        self.verify_bodies()
    }

    /// Checks every present body against its signed commitment.
    pub fn verify_bodies(&self) -> Result<(), VerifyError> {
        for (index, (change, body)) in self.header.changes.iter().zip(&self.bodies).enumerate() {
            if let Body::Present { salt, bytes } = body {
                if commit(salt, bytes) != change.commitment {
                    return Err(VerifyError::CommitmentMismatch {
                        device: self.header.author,
                        seq: self.header.seq,
                        index,
                    });
                }
            }
        }
        Ok(())
    }

    /// The message an ed25519 signature covers, for batch verification.
    pub fn signing_message(&self, network: &NetworkId) -> Vec<u8> {
        signing_message(network, &self.header.encode())
    }

    pub fn encoded_len(&self) -> usize {
        let bodies: usize = self
            .bodies
            .iter()
            .map(|b| match b {
                Body::Absent => 1,
                Body::Present { bytes, .. } => 1 + 16 + 4 + bytes.len(),
            })
            .sum();
        HEADER_FIXED_BYTES + CHANGE_REF_BYTES * self.header.changes.len() + 64 + bodies
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.encode_into_writer(&mut w);
        w.into_vec()
    }

    /// Appends the encoding to `out` (avoids a copy when framing many envelopes).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.encode_into_writer(&mut w);
        out.extend_from_slice(w.as_slice());
    }

    fn encode_into_writer(&self, w: &mut Writer) {
        self.header.encode_into(w);
        w.bytes(&self.signature.0);
        for body in &self.bodies {
            match body {
                Body::Absent => w.u8(BODY_ABSENT),
                Body::Present { salt, bytes } => {
                    w.u8(BODY_PRESENT);
                    w.bytes(&salt.0);
                    w.u32(bytes.len() as u32);
                    w.bytes(bytes);
                }
            }
        }
        debug_assert_eq!(w.len(), self.encoded_len());
    }

    /// Decodes an envelope from untrusted bytes. Checks structure and limits only;
    /// signature, authority and chain are checked by verification.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        const WHAT: &str = "envelope";
        if bytes.len() > ENVELOPE_BYTES_MAX {
            return Err(DecodeError::Oversized { what: WHAT, len: bytes.len(), max: ENVELOPE_BYTES_MAX });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("envelope version")?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                found: version,
                supported: ENVELOPE_VERSION,
            });
        }
        let author = DeviceKey::from_bytes(r.array("author key")?)?;
        let seq_at = r.offset();
        let seq = Seq(r.u64("seq")?);
        let prev = EnvelopeId::from_bytes(r.array("previous envelope id")?);
        if seq.0 == 0 {
            return Err(DecodeError::Invalid { what: "seq", offset: seq_at, reason: "seq starts at 1" });
        }
        if seq == Seq::FIRST && prev != EnvelopeId::default() {
            return Err(DecodeError::Invalid {
                what: "previous envelope id",
                offset: seq_at + 8,
                reason: "the first envelope of a device has no previous one",
            });
        }
        let time = Timestamp(r.i64("time")?);
        let count = r.u16("change count")? as usize;
        if count == 0 {
            return Err(r.invalid("change count", "an envelope carries at least one change"));
        }
        if count > CHANGES_PER_ENVELOPE_MAX {
            return Err(DecodeError::Oversized {
                what: "number of changes",
                len: count,
                max: CHANGES_PER_ENVELOPE_MAX,
            });
        }
        // Each change needs its reference and at least a one-byte body tag.
        if r.remaining() < count * (CHANGE_REF_BYTES + 1) + 64 {
            return Err(DecodeError::Truncated {
                what: "change list",
                offset: r.offset(),
                needed: count * (CHANGE_REF_BYTES + 1) + 64,
                available: r.remaining(),
            });
        }
        let mut changes = Vec::with_capacity(count);
        for _ in 0..count {
            let doc = DocId(r.array("document id")?);
            let commitment = Commitment::from_bytes(r.array("commitment")?);
            changes.push(ChangeRef { doc, commitment });
        }
        let header_len = r.offset();
        let id = envelope_id(r.consumed());
        debug_assert_eq!(header_len, HEADER_FIXED_BYTES + CHANGE_REF_BYTES * count);
        let signature = Signature(r.array("signature")?);
        let mut bodies = Vec::with_capacity(count);
        for _ in 0..count {
            match r.u8("body tag")? {
                BODY_ABSENT => bodies.push(Body::Absent),
                BODY_PRESENT => {
                    let salt = Salt(r.array("salt")?);
                    let len = r.u32("body length")? as usize;
                    if len > BODY_BYTES_MAX {
                        return Err(DecodeError::Oversized { what: "change body", len, max: BODY_BYTES_MAX });
                    }
                    let body = r.take(len, "change body")?.to_vec();
                    bodies.push(Body::Present { salt, bytes: body });
                }
                _ => {
                    return Err(DecodeError::Invalid {
                        what: "body tag",
                        offset: r.offset() - 1,
                        reason: "unknown body encoding",
                    })
                }
            }
        }
        r.finish(WHAT)?;
        Ok(Envelope { header: Header { author, seq, prev, time, changes }, signature, bodies, id })
    }
}

fn envelope_id(header_bytes: &[u8]) -> EnvelopeId {
    EnvelopeId(Hash::derive(ID_CONTEXT, &[header_bytes]))
}

fn signing_message(network: &NetworkId, header_bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + 32 + header_bytes.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(network.as_bytes());
    msg.extend_from_slice(header_bytes);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{test_doc, TestNetwork};
    use proptest::prelude::*;

    fn sample() -> (TestNetwork, Envelope) {
        let mut net = TestNetwork::new(7, 1, 1);
        let network = net.network;
        let doc_a = test_doc(7, 1);
        let doc_b = test_doc(7, 2);
        let env = net.devices[0]
            .next(&network, &[(doc_a, b"loan opened".as_slice()), (doc_b, b"device lent".as_slice())]);
        (net, env)
    }

    #[test]
    fn round_trip_keeps_bytes_and_id() {
        let (net, env) = sample();
        let bytes = env.encode();
        assert_eq!(bytes.len(), env.encoded_len());
        let back = Envelope::decode(&bytes).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.id(), env.id());
        assert_eq!(back.encode(), bytes);
        back.verify_signature_and_bodies(&net.network).unwrap();
    }

    #[test]
    fn a_stripped_copy_is_filled_from_the_full_one_and_never_from_another() {
        let (net, env) = sample();
        let mut stripped = env.clone();
        stripped.strip_body(1);
        assert!(!stripped.has_all_bodies());
        // Another envelope (another seq of the same author) fills nothing.
        let mut other_net = net;
        let network = other_net.network;
        let other = other_net.devices[0].next(&network, &[(test_doc(7, 2), b"device lent".as_slice())]);
        assert_eq!(stripped.fill_bodies_from(&other), 0);
        // A copy stripped the same way fills nothing either.
        assert_eq!(stripped.fill_bodies_from(&stripped.clone()), 0);
        assert_eq!(stripped.fill_bodies_from(&env), 1);
        assert_eq!(stripped, env);
        assert!(stripped.has_all_bodies());
    }

    #[test]
    fn every_truncation_is_a_clean_error() {
        let (_, env) = sample();
        let bytes = env.encode();
        for len in 0..bytes.len() {
            let err = Envelope::decode(&bytes[..len]).unwrap_err();
            assert!(matches!(err, DecodeError::Truncated { .. }), "len {len}: {err}");
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let (_, env) = sample();
        let mut bytes = env.encode();
        bytes.push(0);
        assert_eq!(
            Envelope::decode(&bytes).unwrap_err(),
            DecodeError::TrailingBytes { what: "envelope", count: 1 }
        );
    }

    #[test]
    fn unsupported_version_is_named() {
        let (_, env) = sample();
        let mut bytes = env.encode();
        bytes[0] = 9;
        let err = Envelope::decode(&bytes).unwrap_err();
        assert_eq!(err, DecodeError::UnsupportedVersion { what: "envelope", found: 9, supported: 1 });
        assert!(err.to_string().contains("version 9"));
    }

    #[test]
    fn oversized_fields_are_refused_before_allocating() {
        let (_, env) = sample();
        let bytes = env.encode();
        // Change count above the limit.
        let mut too_many = bytes.clone();
        too_many[HEADER_FIXED_BYTES - 2..HEADER_FIXED_BYTES].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            Envelope::decode(&too_many).unwrap_err(),
            DecodeError::Oversized { what: "number of changes", .. }
        ));
        // Body length above the limit.
        let body_len_at = HEADER_FIXED_BYTES + 2 * CHANGE_REF_BYTES + 64 + 1 + 16;
        let mut huge_body = bytes.clone();
        huge_body[body_len_at..body_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Envelope::decode(&huge_body).unwrap_err(),
            DecodeError::Oversized { what: "change body", .. }
        ));
        // Whole input above the limit.
        let big = vec![1u8; ENVELOPE_BYTES_MAX + 1];
        assert!(matches!(
            Envelope::decode(&big).unwrap_err(),
            DecodeError::Oversized { what: "envelope", .. }
        ));
    }

    #[test]
    fn seq_zero_and_first_with_prev_are_malformed() {
        let (_, env) = sample();
        let mut bytes = env.encode();
        bytes[33..41].copy_from_slice(&0u64.to_le_bytes());
        assert!(matches!(Envelope::decode(&bytes).unwrap_err(), DecodeError::Invalid { what: "seq", .. }));
        let mut bytes = env.encode();
        bytes[41] = 1; // seq 1 with a non-zero prev
        assert!(matches!(
            Envelope::decode(&bytes).unwrap_err(),
            DecodeError::Invalid { what: "previous envelope id", .. }
        ));
    }

    #[test]
    fn unknown_body_tag_is_refused() {
        let (_, env) = sample();
        let mut bytes = env.encode();
        let tag_at = HEADER_FIXED_BYTES + 2 * CHANGE_REF_BYTES + 64;
        bytes[tag_at] = 7;
        assert!(matches!(
            Envelope::decode(&bytes).unwrap_err(),
            DecodeError::Invalid { what: "body tag", .. }
        ));
    }

    #[test]
    fn stripped_body_still_verifies_and_round_trips() {
        let (net, mut env) = sample();
        let id = env.id();
        env.strip_body(0);
        assert_eq!(env.bodies()[0], Body::Absent);
        assert_eq!(env.id(), id, "the id covers the commitment, not the body");
        env.verify_signature_and_bodies(&net.network).unwrap();
        let back = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.present_changes().count(), 1);
    }

    #[test]
    fn altered_body_fails_its_commitment() {
        let (net, env) = sample();
        let mut bytes = env.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // inside the second body
        let altered = Envelope::decode(&bytes).unwrap();
        let err = altered.verify_signature_and_bodies(&net.network).unwrap_err();
        assert!(matches!(err, VerifyError::CommitmentMismatch { index: 1, .. }), "{err}");
    }

    #[test]
    fn altered_header_fails_the_signature() {
        let (net, env) = sample();
        let mut bytes = env.encode();
        bytes[75] ^= 0x10; // time (offset 73..81)
        let altered = Envelope::decode(&bytes).unwrap();
        assert!(matches!(
            altered.verify_signature_and_bodies(&net.network),
            Err(VerifyError::BadSignature { .. })
        ));
        // And a signature from another network never verifies here.
        let other = TestNetwork::new(8, 1, 1);
        assert!(matches!(
            env.verify_signature_and_bodies(&other.network),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn building_checks_limits() {
        let net = TestNetwork::new(1, 1, 1);
        let key = &net.devices[0].key;
        let err = Envelope::sign(&net.network, key, None, Timestamp(0), vec![]).unwrap_err();
        assert_eq!(err, BuildError::NoChanges);
        let big = NewChange { doc: test_doc(1, 1), salt: Salt([0; 16]), body: vec![0; BODY_BYTES_MAX + 1] };
        let err = Envelope::sign(&net.network, key, None, Timestamp(0), vec![big]).unwrap_err();
        assert!(matches!(err, BuildError::Oversized { what: "change body", .. }));
        let many: Vec<NewChange> = (0..CHANGES_PER_ENVELOPE_MAX + 1)
            .map(|i| NewChange { doc: test_doc(1, i as u64), salt: Salt([0; 16]), body: vec![] })
            .collect();
        let err = Envelope::sign(&net.network, key, None, Timestamp(0), many).unwrap_err();
        assert!(matches!(err, BuildError::Oversized { what: "number of changes", .. }));
        let fat: Vec<NewChange> = (0..5)
            .map(|i| NewChange { doc: test_doc(1, i), salt: Salt([0; 16]), body: vec![0; BODY_BYTES_MAX] })
            .collect();
        let err = Envelope::sign(&net.network, key, None, Timestamp(0), fat).unwrap_err();
        assert!(matches!(err, BuildError::Oversized { what: "envelope", .. }));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Envelope::decode(&bytes);
        }

        #[test]
        fn mutated_envelopes_never_panic_and_reencode_canonically(at in 0usize..400, xor in 1u8..=255) {
            let (_, env) = sample();
            let mut bytes = env.encode();
            let i = at % bytes.len();
            bytes[i] ^= xor;
            if let Ok(decoded) = Envelope::decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }

        #[test]
        fn round_trip_any_changes(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8),
            time in any::<i64>(),
            strip in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let net = TestNetwork::new(3, 1, 1);
            let changes = bodies.iter().enumerate().map(|(i, b)| NewChange {
                doc: test_doc(3, i as u64), salt: Salt([i as u8; 16]), body: b.clone(),
            }).collect();
            let mut env = Envelope::sign(&net.network, &net.devices[0].key, None, Timestamp(time), changes).unwrap();
            for (i, s) in strip.iter().enumerate() {
                if *s { env.strip_body(i); }
            }
            let bytes = env.encode();
            let back = Envelope::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &env);
            prop_assert_eq!(back.encode(), bytes);
            prop_assert!(back.verify_signature_and_bodies(&net.network).is_ok());
        }
    }
}
