//! The layout of the derived state in sled: one tree, keys prefixed by a byte that
//! names the kind of row, values in fixed-width big-endian encodings.
//!
//! Everything here is derived from the log and can be rebuilt from it. One log batch
//! is applied as one atomic sled batch together with the `applied` marker, so sled
//! always reflects a prefix of the log (it may lag, never lead).
//!
//! | key                                   | value                                   |
//! |---------------------------------------|-----------------------------------------|
//! | `m` `log_id`                          | the 16-byte id of the log it derives from |
//! | `m` `applied`                         | log position (segment u64, offset u64) up to which rows are applied |
//! | `m` `layout`                          | layout version (u32)                    |
//! | `m` `damage`                          | damaged log ranges the rows know of (segment, start, end u64 each) |
//! | `h` author(32)                        | head: seq u64, envelope id (32)         |
//! | `e` author(32) seq(u64)               | chain envelope: location (20), id (32)  |
//! | `f` author(32) seq(u64) id(32)        | fork evidence: location (20)            |
//! | `t` trust entry id(32)                | location (20)                           |
//! | `d` doc(16) author(32) seq(u64)       | change index in the envelope (u16)      |
//! | `b` author(32) seq(u64)               | (empty) the envelope lacks some bodies  |
//! | `o` author(32) seq(u64)               | (empty) a hole: below the head, not held |
//! | `x` person(15)                        | (empty) an erased person's bodies are gone from the log |

use tessera_log::{DeviceKey, DocId, EnvelopeId, Head, Seq, TrustEntryId};

use crate::segments::{LogPosition, RecordLocation};

/// 2: rows `b` (envelopes held without some of their bodies). 3: rows `o` (holes).
/// 4: rows `x` (erased persons scrubbed), and `b` rows ignore erased bodies.
pub(crate) const LAYOUT_VERSION: u32 = 4;
/// The first layout whose database never held attendees in clear (the node keeps them
/// in a database of its own since): an older one is deleted whole, not cleared.
pub(crate) const LAYOUT_PEOPLE_APART: u32 = 4;

pub(crate) fn decode_layout(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

pub(crate) const META_LOG_ID: &[u8] = b"mlog_id";
pub(crate) const META_APPLIED: &[u8] = b"mapplied";
pub(crate) const META_LAYOUT: &[u8] = b"mlayout";
/// The damaged ranges of the log the rows were derived with (see [`encode_damage`]).
pub(crate) const META_DAMAGE: &[u8] = b"mdamage";
pub(crate) const HEAD: u8 = b'h';
pub(crate) const CHAIN: u8 = b'e';
pub(crate) const FORK: u8 = b'f';
pub(crate) const TRUST: u8 = b't';
pub(crate) const DOC: u8 = b'd';
/// An envelope of the followed chain held without some of its bodies (stripped by a
/// carrier): kept until a copy with the bodies arrives, so sessions can ask for it.
pub(crate) const BODIES_MISSING: u8 = b'b';

/// The starts and ends of the log's damaged ranges, to notice damage found since the
/// rows were written (empty for an undamaged log).
pub(crate) fn encode_damage(ranges: &[crate::segments::DamagedRange]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ranges.len() * 24);
    for range in ranges {
        out.extend_from_slice(&range.segment.to_be_bytes());
        out.extend_from_slice(&range.start.to_be_bytes());
        out.extend_from_slice(&range.end.to_be_bytes());
    }
    out
}

pub(crate) fn head_key(author: &DeviceKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(HEAD);
    k.extend_from_slice(author.as_bytes());
    k
}

pub(crate) fn chain_key(author: &DeviceKey, seq: Seq) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(CHAIN);
    k.extend_from_slice(author.as_bytes());
    k.extend_from_slice(&seq.0.to_be_bytes());
    k
}

pub(crate) fn bodies_missing_key(author: &DeviceKey, seq: Seq) -> Vec<u8> {
    let mut k = chain_key(author, seq);
    k[0] = BODIES_MISSING;
    k
}

/// A seq below its author's head whose envelope the log lost to damage: kept until a
/// copy arrives, so sessions can ask for it.
pub(crate) const HOLE: u8 = b'o';

/// An erased person whose bodies this log no longer holds (see `store::erase`).
pub(crate) const ERASED: u8 = b'x';

pub(crate) fn erased_key(person: &tessera_log::Person) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.push(ERASED);
    k.extend_from_slice(&person.0);
    k
}

pub(crate) fn hole_key(author: &DeviceKey, seq: Seq) -> Vec<u8> {
    let mut k = chain_key(author, seq);
    k[0] = HOLE;
    k
}

/// The (author, seq) of a [`chain_key`], [`bodies_missing_key`] or [`hole_key`].
pub(crate) fn decode_author_seq(key: &[u8]) -> Option<(DeviceKey, Seq)> {
    let author = DeviceKey::from_bytes(array_at::<32>(key, 1)?).ok()?;
    Some((author, Seq(u64_at(key, 33)?)))
}

pub(crate) fn fork_key(author: &DeviceKey, seq: Seq, id: &EnvelopeId) -> Vec<u8> {
    let mut k = chain_key(author, seq);
    k[0] = FORK;
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn trust_key(id: &TrustEntryId) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(TRUST);
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn doc_key(doc: &DocId, author: &DeviceKey, seq: Seq) -> Vec<u8> {
    let mut k = Vec::with_capacity(57);
    k.push(DOC);
    k.extend_from_slice(&doc.0);
    k.extend_from_slice(author.as_bytes());
    k.extend_from_slice(&seq.0.to_be_bytes());
    k
}

pub(crate) fn doc_prefix(doc: &DocId) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(DOC);
    k.extend_from_slice(&doc.0);
    k
}

pub(crate) fn encode_head(head: &Head) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&head.seq.0.to_be_bytes());
    v.extend_from_slice(head.id.as_bytes());
    v
}

pub(crate) fn decode_head(v: &[u8]) -> Option<Head> {
    if v.len() != 40 {
        return None;
    }
    Some(Head { seq: Seq(u64_at(v, 0)?), id: EnvelopeId::from_bytes(array_at(v, 8)?) })
}

pub(crate) fn encode_location(at: &RecordLocation) -> [u8; 20] {
    let mut v = [0u8; 20];
    v[..8].copy_from_slice(&at.segment.to_be_bytes());
    v[8..16].copy_from_slice(&at.offset.to_be_bytes());
    v[16..].copy_from_slice(&at.len.to_be_bytes());
    v
}

pub(crate) fn decode_location(v: &[u8]) -> Option<RecordLocation> {
    if v.len() < 20 {
        return None;
    }
    let len = u32::from_be_bytes(array_at(v, 16)?);
    Some(RecordLocation { segment: u64_at(v, 0)?, offset: u64_at(v, 8)?, len })
}

pub(crate) fn encode_chain(at: &RecordLocation, id: &EnvelopeId) -> Vec<u8> {
    let mut v = encode_location(at).to_vec();
    v.extend_from_slice(id.as_bytes());
    v
}

pub(crate) fn decode_chain(v: &[u8]) -> Option<(RecordLocation, EnvelopeId)> {
    if v.len() != 52 {
        return None;
    }
    Some((decode_location(v)?, EnvelopeId::from_bytes(array_at(v, 20)?)))
}

pub(crate) fn encode_position(p: &LogPosition) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&p.segment.to_be_bytes());
    v[8..].copy_from_slice(&p.offset.to_be_bytes());
    v
}

pub(crate) fn decode_position(v: &[u8]) -> Option<LogPosition> {
    if v.len() != 16 {
        return None;
    }
    Some(LogPosition { segment: u64_at(v, 0)?, offset: u64_at(v, 8)? })
}

pub(crate) fn u64_at(v: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(array_at(v, at)?))
}

pub(crate) fn array_at<const N: usize>(v: &[u8], at: usize) -> Option<[u8; N]> {
    let slice = v.get(at..at.checked_add(N)?)?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Some(out)
}
