//! Erasure (GDPR art. 17): a signed change that removes a person's bodies from every
//! copy of the log, while every header stays (the chain still verifies).
//!
//! A person is the 15 random bytes shared by the ids of their documents (the
//! attendee and its personal details differ only in the kind byte). An erasure is a
//! change of the *erasure document* of that person: id [`ERASURE_DOC_KIND`] followed
//! by those 15 bytes, so any carrier (a relay holds no read key) learns from the
//! envelope header alone whom it erases. Its body:
//!
//! ```text
//! body = version (1) = 1 | erased on (10, ASCII YYYY-MM-DD) | reason (1) | nonce (16) | stub (the rest)
//! ```
//!
//! `reason` is 1 (a request under art. 17) or 2 (registered by mistake); `nonce` is the
//! one the person's id was made from ([`person_id`]); `stub` is a body sealed in the
//! network scope by the node (what reports keep counting: birth year, role, site), at
//! most [`STUB_BYTES_MAX`]. Nothing in the body is personal.
//!
//! Who may erase: a device certified by the partner that registered the person. The
//! person's id is made by that partner from its own key and a random nonce, so the
//! erasure proves it with the nonce alone ([`erasure_counts`]): nobody else can find a
//! nonce that gives the same id from their key. Every store, a relay included, decides
//! this from the erasure's envelope and body, which it reads without a key, so an
//! erasure counts on a relay exactly when it does on a hub. From then on, the bodies of
//! every change of the person's documents (the erasure's own excepted) are dropped
//! from the log and refused on arrival, from any copy.

use crate::ids::{DeviceKey, DocId, PartnerKey};
use crate::trust::TrustState;

/// The first byte of an erasure document's id (records use 1 to 6, grants `0xF0`).
pub const ERASURE_DOC_KIND: u8 = 0xF1;
/// The first byte of a personal-details document's id: the documents only the
/// registering partner (and those it grants) writes.
pub const PERSONAL_DOC_KIND: u8 = 6;
/// The body format version.
pub const ERASURE_FORMAT_VERSION: u8 = 1;
/// The largest sealed stub an erasure carries.
pub const STUB_BYTES_MAX: usize = 4096;
/// Bytes of the nonce a person's id is made from.
pub const NONCE_BYTES: usize = 16;

/// The id (15 bytes) of a person `partner` registers, from a random `nonce`:
/// BLAKE3 `derive_key("tessera 2026-12 person id v1", partner key ‖ nonce)`, first 15
/// bytes.
pub fn person_id(partner: &PartnerKey, nonce: &[u8; NONCE_BYTES]) -> Person {
    let mut hasher = blake3::Hasher::new_derive_key("tessera 2026-12 person id v1");
    hasher.update(partner.as_bytes());
    hasher.update(nonce);
    let mut id = [0u8; 15];
    id.copy_from_slice(&hasher.finalize().as_bytes()[..15]);
    Person(id)
}

/// Whether `erasure`, a change of `person`'s erasure document signed by `author`,
/// may erase them: `author` is certified by a partner whose key and the erasure's
/// nonce make the person's id. The caller checks that the envelope verifies and still
/// counts (not past a revocation, not at or after a fork).
pub fn erasure_counts(trust: &TrustState, author: &DeviceKey, person: &Person, erasure: &Erasure) -> bool {
    trust.certificates_of(author).any(|cert| person_id(&cert.partner, &erasure.nonce) == *person)
}

/// The 15 random bytes of a person's document ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person(pub [u8; 15]);

impl Person {
    /// The person whose document `doc` is (any kind).
    pub fn of(doc: &DocId) -> Person {
        let mut random = [0u8; 15];
        random.copy_from_slice(&doc.0[1..]);
        Person(random)
    }

    /// This person's document of kind `kind`.
    pub fn doc(&self, kind: u8) -> DocId {
        let mut id = [0u8; 16];
        id[0] = kind;
        id[1..].copy_from_slice(&self.0);
        DocId(id)
    }

    /// The erasure document of this person.
    pub fn erasure_doc(&self) -> DocId {
        self.doc(ERASURE_DOC_KIND)
    }

    /// The personal-details document of this person.
    pub fn personal_doc(&self) -> DocId {
        self.doc(PERSONAL_DOC_KIND)
    }
}

/// Whether `doc` is an erasure document.
pub fn is_erasure_doc(doc: &DocId) -> bool {
    doc.0[0] == ERASURE_DOC_KIND
}

/// Whether an erasure makes the body of a change of `doc` go: any document of an
/// erased person but the erasure itself.
pub fn erases_body_of(erased: &impl Fn(&Person) -> bool, doc: &DocId) -> bool {
    !is_erasure_doc(doc) && erased(&Person::of(doc))
}

/// Why erasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureReason {
    /// The person asked (GDPR art. 17).
    Request,
    /// The registration was a mistake (a test, a double entry).
    Mistake,
}

impl ErasureReason {
    pub(crate) fn byte(self) -> u8 {
        match self {
            ErasureReason::Request => 1,
            ErasureReason::Mistake => 2,
        }
    }
    pub(crate) fn from_byte(byte: u8) -> Option<ErasureReason> {
        match byte {
            1 => Some(ErasureReason::Request),
            2 => Some(ErasureReason::Mistake),
            _ => None,
        }
    }
}

/// The body of an erasure change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// `YYYY-MM-DD`.
    pub erased_on: String,
    pub reason: ErasureReason,
    /// The nonce the person's id was made from ([`person_id`]).
    pub nonce: [u8; NONCE_BYTES],
    /// Sealed in the network scope by the node; opaque here.
    pub stub: Vec<u8>,
}

/// Why an erasure body does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ErasureError {
    #[error("the erasure has format version {0}, this version reads 1")]
    Version(u8),
    #[error("the erasure is cut short")]
    Truncated,
    #[error("the erasure's date is not YYYY-MM-DD")]
    Date,
    #[error("the erasure gives an unknown reason ({0})")]
    Reason(u8),
    #[error("the erasure's summary is {0} bytes, at most {STUB_BYTES_MAX}")]
    StubTooLarge(usize),
}

impl Erasure {
    pub fn encode(&self) -> Result<Vec<u8>, ErasureError> {
        if !valid_date(self.erased_on.as_bytes()) {
            return Err(ErasureError::Date);
        }
        if self.stub.len() > STUB_BYTES_MAX {
            return Err(ErasureError::StubTooLarge(self.stub.len()));
        }
        let mut out = Vec::with_capacity(12 + NONCE_BYTES + self.stub.len());
        out.push(ERASURE_FORMAT_VERSION);
        out.extend_from_slice(self.erased_on.as_bytes());
        out.push(self.reason.byte());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.stub);
        Ok(out)
    }

    /// Decodes untrusted bytes; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Erasure, ErasureError> {
        let (&version, rest) = bytes.split_first().ok_or(ErasureError::Truncated)?;
        if version != ERASURE_FORMAT_VERSION {
            return Err(ErasureError::Version(version));
        }
        let date = rest.get(..10).ok_or(ErasureError::Truncated)?;
        if !valid_date(date) {
            return Err(ErasureError::Date);
        }
        let &reason = rest.get(10).ok_or(ErasureError::Truncated)?;
        let reason = ErasureReason::from_byte(reason).ok_or(ErasureError::Reason(reason))?;
        let nonce: [u8; NONCE_BYTES] =
            rest.get(11..11 + NONCE_BYTES).and_then(|n| n.try_into().ok()).ok_or(ErasureError::Truncated)?;
        let stub = rest.get(11 + NONCE_BYTES..).unwrap_or_default();
        if stub.len() > STUB_BYTES_MAX {
            return Err(ErasureError::StubTooLarge(stub.len()));
        }
        Ok(Erasure {
            erased_on: String::from_utf8_lossy(date).into_owned(),
            reason,
            nonce,
            stub: stub.to_vec(),
        })
    }
}

pub(crate) fn valid_date(date: &[u8]) -> bool {
    date.len() == 10
        && date
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let e = Erasure {
            erased_on: "2026-12-07".into(),
            reason: ErasureReason::Request,
            nonce: [3; NONCE_BYTES],
            stub: vec![7; 40],
        };
        let bytes = e.encode().unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..11], b"2026-12-07");
        assert_eq!(bytes[11], 1);
        assert_eq!(&bytes[12..28], &[3; 16]);
        assert_eq!(Erasure::decode(&bytes).unwrap(), e);
        assert_eq!(Erasure::decode(&[]), Err(ErasureError::Truncated));
        assert_eq!(Erasure::decode(&[2]), Err(ErasureError::Version(2)));
        assert_eq!(Erasure::decode(b"\x012026-12-0"), Err(ErasureError::Truncated));
        assert_eq!(Erasure::decode(b"\x012026/12/07\x01"), Err(ErasureError::Date));
        assert_eq!(Erasure::decode(b"\x012026-12-07\x09"), Err(ErasureError::Reason(9)));
        assert_eq!(Erasure::decode(b"\x012026-12-07\x01short"), Err(ErasureError::Truncated));
        let mut big = bytes[..28].to_vec();
        big.extend(vec![0; STUB_BYTES_MAX + 1]);
        assert_eq!(Erasure::decode(&big), Err(ErasureError::StubTooLarge(STUB_BYTES_MAX + 1)));
        // Every prefix of a valid body decodes or errs, never panics.
        for n in 0..bytes.len() {
            let _ = Erasure::decode(&bytes[..n]);
        }
    }

    #[test]
    fn only_a_device_of_the_registering_partner_erases() {
        let net = crate::testkit::TestNetwork::new(7, 2, 1);
        let trust = net.trust();
        let nonce = [9; NONCE_BYTES];
        let person = person_id(&net.devices[0].partner, &nonce);
        let erasure = Erasure {
            erased_on: "2026-12-07".into(),
            reason: ErasureReason::Mistake,
            nonce,
            stub: Vec::new(),
        };
        assert!(erasure_counts(&trust, &net.devices[0].id, &person, &erasure));
        assert!(!erasure_counts(&trust, &net.devices[1].id, &person, &erasure), "another partner's device");
        // The other partner's own nonce for that id does not exist; any other nonce
        // names another person.
        let other = Erasure { nonce: [8; NONCE_BYTES], ..erasure.clone() };
        assert!(!erasure_counts(&trust, &net.devices[0].id, &person, &other));
        assert_ne!(person_id(&net.devices[1].partner, &nonce), person);
    }

    #[test]
    fn a_person_is_the_random_part_of_every_id() {
        let attendee = DocId([2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        let person = Person::of(&attendee);
        assert_eq!(person.doc(2), attendee);
        assert_eq!(person.personal_doc().0[0], 6);
        assert!(is_erasure_doc(&person.erasure_doc()));
        let erased = |p: &Person| *p == person;
        assert!(erases_body_of(&erased, &attendee));
        assert!(erases_body_of(&erased, &person.personal_doc()));
        assert!(!erases_body_of(&erased, &person.erasure_doc()));
        assert!(!erases_body_of(&erased, &DocId([2; 16])));
    }
}
