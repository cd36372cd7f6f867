//! Record kinds and record ids: the kind byte at the front of every [`DocId`], the
//! short ids people read and type ("A3f9c2b1d"), and the parser that turns what an
//! operator typed into a prefix the node can look up.
//!
//! This is not the id of a person or a device in the real world (an asset tag, a tax
//! code): it is the id of one automerge document. The kind lives in the id itself so
//! that an index, a conflict report or a reference can tell what a record is without
//! loading it, and so that a reference to the wrong kind of record is caught by
//! validation. The 15 other bytes are random and passed in: this crate draws none.

use std::fmt;

use tessera_log::DocId;

/// The kinds of record, each with a stable byte (the first byte of its [`DocId`]) and a
/// stable letter (the first character of its short id). Neither may ever change: both
/// are stored in every document id and printed on paper loan agreements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Site,
    Attendee,
    Device,
    Loan,
    Session,
    /// An attendee's personal details, in a document of their own beside the attendee
    /// (same id but the kind byte), readable only in the registering partner's scope.
    /// Never listed or typed by operators: they see the attendee.
    Personal,
}

impl RecordKind {
    /// The kinds operators list, count and type.
    pub const ALL: [RecordKind; 5] =
        [RecordKind::Site, RecordKind::Attendee, RecordKind::Device, RecordKind::Loan, RecordKind::Session];
    /// Every kind stored, [`RecordKind::Personal`] included.
    pub const STORED: [RecordKind; 6] = [
        RecordKind::Site,
        RecordKind::Attendee,
        RecordKind::Device,
        RecordKind::Loan,
        RecordKind::Session,
        RecordKind::Personal,
    ];

    /// The byte stored as the first byte of the record's [`DocId`].
    pub fn byte(self) -> u8 {
        match self {
            RecordKind::Site => 1,
            RecordKind::Attendee => 2,
            RecordKind::Device => 3,
            RecordKind::Loan => 4,
            RecordKind::Session => 5,
            RecordKind::Personal => 6,
        }
    }

    pub fn from_byte(byte: u8) -> Option<RecordKind> {
        RecordKind::STORED.into_iter().find(|kind| kind.byte() == byte)
    }

    /// The letter that starts a short id. Sessions use `E` (event) because `S` is taken
    /// by sites.
    pub fn letter(self) -> char {
        match self {
            RecordKind::Site => 'S',
            RecordKind::Attendee => 'A',
            RecordKind::Device => 'D',
            RecordKind::Loan => 'L',
            RecordKind::Session => 'E',
            RecordKind::Personal => 'P',
        }
    }

    /// The kind named by a short id's letter, in either case.
    pub fn from_letter(letter: char) -> Option<RecordKind> {
        let upper = letter.to_ascii_uppercase();
        RecordKind::ALL.into_iter().find(|kind| kind.letter() == upper)
    }

    /// The lowercase word stored in documents (`"attendee"`) and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Site => "site",
            RecordKind::Attendee => "attendee",
            RecordKind::Device => "device",
            RecordKind::Loan => "loan",
            RecordKind::Session => "session",
            RecordKind::Personal => "personal",
        }
    }

    pub fn from_str_exact(word: &str) -> Option<RecordKind> {
        RecordKind::STORED.into_iter().find(|kind| kind.as_str() == word)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RecordKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RecordKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        RecordKind::from_str_exact(&word).ok_or_else(|| {
            serde::de::Error::custom("not a record kind (site, attendee, device, loan, session)")
        })
    }
}

impl autosurgeon::Reconcile for RecordKind {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.as_str())
    }
}

impl autosurgeon::Hydrate for RecordKind {
    fn hydrate_string(word: &str) -> Result<Self, autosurgeon::HydrateError> {
        RecordKind::from_str_exact(word)
            .ok_or_else(|| autosurgeon::HydrateError::unexpected("a record kind", "another word".to_string()))
    }
}

/// Hex digits of a short id after its letter: 4 bytes, enough to tell apart the records
/// of one hub at a glance. The node resolves longer prefixes when two collide.
pub const SHORT_ID_HEX_CHARS: usize = 8;
/// Fewest hex digits [`parse_id_prefix`] accepts, so that a slip of the finger ("A3")
/// does not silently pick one of many records.
pub const ID_PREFIX_HEX_MIN: usize = 4;

/// A new record id: the kind byte, then 15 random bytes drawn by the caller.
pub fn new_doc_id(kind: RecordKind, random: [u8; 15]) -> DocId {
    let mut bytes = [0u8; 16];
    bytes[0] = kind.byte();
    bytes[1..].copy_from_slice(&random);
    DocId(bytes)
}

/// The kind of record an id names, or `None` for an id not made by [`new_doc_id`].
pub fn kind_of(id: &DocId) -> Option<RecordKind> {
    RecordKind::from_byte(id.0[0])
}

/// The short id people read: the kind letter and the first 8 hex digits after the kind
/// byte, e.g. `A3f9c2b1d` for an attendee. An id of no known kind starts with `?`.
pub fn short_id(id: &DocId) -> String {
    let letter = kind_of(id).map_or('?', RecordKind::letter);
    let hex = id.to_hex();
    let mut out = String::with_capacity(1 + SHORT_ID_HEX_CHARS);
    out.push(letter);
    out.push_str(&hex[2..2 + SHORT_ID_HEX_CHARS]);
    out
}

/// A full id from its 32 hex digits (either case).
pub fn parse_doc_id(hex: &str) -> Option<DocId> {
    let digits = hex.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        bytes[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(DocId(bytes))
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// What an operator typed to name a record, ready for the node to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPrefix {
    /// The kind, when the input said it (a letter, or the kind byte of a full id).
    pub kind: Option<RecordKind>,
    /// Lowercase hex digits of the id *after* the kind byte: what follows the letter of
    /// a short id.
    pub hex: String,
}

impl IdPrefix {
    /// Whether `id` starts with this prefix (and is of its kind, when it has one).
    pub fn matches(&self, id: &DocId) -> bool {
        if let Some(kind) = self.kind {
            if kind_of(id) != Some(kind) {
                return false;
            }
        }
        id.to_hex()[2..].starts_with(&self.hex)
    }

    /// The prefix of the full hex id (kind byte included), for a prefix scan of an index
    /// keyed by id; `None` when the kind is not known.
    pub fn full_hex_prefix(&self) -> Option<String> {
        self.kind.map(|kind| format!("{:02x}{}", kind.byte(), self.hex))
    }
}

/// Why some typed text is not a record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "a record id is a letter (S, A, D, L or E) followed by at least {min} hex digits, e.g. A3f9c2b1d"
    )]
    TooShort { min: usize },
    #[error("a record id may only contain the digits 0-9 and the letters a-f after its first letter")]
    NotHex,
    #[error("a record id is at most 32 hex digits long (or a letter and 30)")]
    TooLong,
    #[error("a record id starts with S (site), A (attendee), D (device), L (loan) or E (session)")]
    UnknownKind,
}

/// Parses what an operator typed to name a record. Accepted forms:
/// - a short id or its prefix, letter first: `A3f9c2b1d`, `a3f9c` (kind known);
/// - a full id of 32 hex digits (the kind byte first): kind known from that byte;
/// - bare hex digits of the part after the kind byte, as printed after the letter:
///   `3f9c2b1d` (kind not known: the node looks in every kind).
///
/// At least [`ID_PREFIX_HEX_MIN`] hex digits are required. Surrounding spaces are ignored.
pub fn parse_id_prefix(text: &str) -> Result<IdPrefix, IdError> {
    let text = text.trim();
    let all_hex = text.bytes().all(|b| b.is_ascii_hexdigit());
    if all_hex && text.len() == 32 {
        let id = parse_doc_id(text).ok_or(IdError::NotHex)?;
        let kind = kind_of(&id).ok_or(IdError::UnknownKind)?;
        return Ok(IdPrefix { kind: Some(kind), hex: text[2..].to_ascii_lowercase() });
    }
    let mut chars = text.chars();
    let first = chars.next().ok_or(IdError::TooShort { min: ID_PREFIX_HEX_MIN })?;
    // A leading a-f could be hex or the letters A/D/E: the letter reading wins, because
    // short ids are what the node prints. Bare hex starting with a-f is still accepted
    // with the full 32 digits.
    let (kind, hex) = match RecordKind::from_letter(first) {
        Some(kind) => (Some(kind), chars.as_str()),
        None if first.is_ascii_hexdigit() => (None, text),
        None => return Err(IdError::UnknownKind),
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdError::NotHex);
    }
    if hex.len() < ID_PREFIX_HEX_MIN {
        return Err(IdError::TooShort { min: ID_PREFIX_HEX_MIN });
    }
    if hex.len() > 30 {
        return Err(IdError::TooLong);
    }
    Ok(IdPrefix { kind, hex: hex.to_ascii_lowercase() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; 15] {
        let mut r = [0u8; 15];
        for (i, b) in r.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(i as u8 * 17);
        }
        r
    }

    #[test]
    fn kind_byte_round_trips_through_the_id() {
        for (n, kind) in RecordKind::ALL.into_iter().enumerate() {
            let id = new_doc_id(kind, random(n as u8));
            assert_eq!(id.0[0], kind.byte());
            assert_eq!(&id.0[1..], &random(n as u8));
            assert_eq!(kind_of(&id), Some(kind));
            assert_eq!(RecordKind::from_byte(kind.byte()), Some(kind));
            assert_eq!(RecordKind::from_letter(kind.letter().to_ascii_lowercase()), Some(kind));
            assert_eq!(RecordKind::from_str_exact(kind.as_str()), Some(kind));
        }
        assert_eq!(kind_of(&DocId([0; 16])), None);
        assert_eq!(kind_of(&DocId([6; 16])), Some(RecordKind::Personal));
        assert_eq!(kind_of(&DocId([7; 16])), None);
    }

    #[test]
    fn bytes_and_letters_are_stable() {
        let bytes: Vec<u8> = RecordKind::ALL.iter().map(|k| k.byte()).collect();
        assert_eq!(bytes, vec![1, 2, 3, 4, 5]);
        let letters: String = RecordKind::ALL.iter().map(|k| k.letter()).collect();
        assert_eq!(letters, "SADLE");
    }

    #[test]
    fn short_id_is_letter_and_eight_hex_digits() {
        let mut bytes = [0u8; 15];
        bytes[..4].copy_from_slice(&[0x3f, 0x9c, 0x2b, 0x1d]);
        let id = new_doc_id(RecordKind::Attendee, bytes);
        assert_eq!(short_id(&id), "A3f9c2b1d");
        assert_eq!(short_id(&new_doc_id(RecordKind::Session, bytes)), "E3f9c2b1d");
        assert_eq!(short_id(&DocId([0xff; 16])), "?ffffffff");
    }

    #[test]
    fn prefixes_parse_and_match() {
        let mut bytes = [0u8; 15];
        bytes[..4].copy_from_slice(&[0x3f, 0x9c, 0x2b, 0x1d]);
        let id = new_doc_id(RecordKind::Attendee, bytes);

        let short = parse_id_prefix(" A3F9C ").unwrap();
        assert_eq!(short, IdPrefix { kind: Some(RecordKind::Attendee), hex: "3f9c".into() });
        assert!(short.matches(&id));
        assert_eq!(short.full_hex_prefix().as_deref(), Some("023f9c"));
        assert!(!parse_id_prefix("D3f9c").unwrap().matches(&id));

        let full = parse_id_prefix(&id.to_hex()).unwrap();
        assert_eq!(full.kind, Some(RecordKind::Attendee));
        assert!(full.matches(&id));

        let bare = parse_id_prefix("3f9c2b").unwrap();
        assert_eq!(bare.kind, None);
        assert!(bare.matches(&id));

        assert_eq!(parse_id_prefix("A3f"), Err(IdError::TooShort { min: 4 }));
        assert_eq!(parse_id_prefix(""), Err(IdError::TooShort { min: 4 }));
        assert_eq!(parse_id_prefix("Azzzz"), Err(IdError::NotHex));
        assert_eq!(parse_id_prefix("X1234"), Err(IdError::UnknownKind));
        assert_eq!(parse_id_prefix(&"0".repeat(32)), Err(IdError::UnknownKind));
        assert_eq!(parse_id_prefix(&format!("L{}", "1".repeat(31))), Err(IdError::TooLong));
        // 32 hex digits are a full id, even when the first is also a kind letter.
        assert_eq!(parse_id_prefix(&format!("A{}", "1".repeat(31))), Err(IdError::UnknownKind));
    }

    #[test]
    fn full_ids_parse_from_hex() {
        let id = new_doc_id(RecordKind::Loan, random(7));
        assert_eq!(parse_doc_id(&id.to_hex()), Some(id));
        assert_eq!(parse_doc_id(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(parse_doc_id("04"), None);
        assert_eq!(parse_doc_id(&"g".repeat(32)), None);
    }
}
