//! Version vectors: for each author, the seq and id of the last envelope held.
//!
//! Because each author's envelopes form a contiguous chain, one vector says exactly
//! what a peer holds, and comparing two vectors gives exactly what each side lacks,
//! in one round trip whatever the number of documents. This is the basis of sync.

use std::collections::BTreeMap;

use crate::chain::Head;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{DeviceKey, EnvelopeId, Seq};
use crate::limits::VERSION_VECTOR_AUTHORS_MAX;

pub const VERSION_VECTOR_VERSION: u8 = 1;
const ITEM_BYTES: usize = 32 + 8 + 32;

/// A contiguous range of one author's envelopes, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    pub author: DeviceKey,
    pub first: Seq,
    pub last: Seq,
}

impl SeqRange {
    pub fn len(&self) -> u64 {
        self.last.0 - self.first.0 + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Author → head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector {
    heads: BTreeMap<DeviceKey, Head>,
}

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, author: &DeviceKey) -> Option<Head> {
        self.heads.get(author).copied()
    }

    /// Records `head` as the author's head. Heads only move forward; a lower seq is
    /// ignored (the vector tracks the chain the holder follows).
    pub fn advance(&mut self, author: DeviceKey, head: Head) {
        let slot = self.heads.entry(author).or_insert(head);
        if head.seq > slot.seq {
            *slot = head;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DeviceKey, &Head)> {
        self.heads.iter()
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Total number of envelopes the vector covers (saturating: a decoded vector may
    /// claim seqs near `u64::MAX`).
    pub fn total_envelopes(&self) -> u64 {
        self.heads.values().fold(0u64, |n, h| n.saturating_add(h.seq.0))
    }

    /// The envelopes `self` holds that `other` lacks, per author in seq order.
    pub fn missing_from(&self, other: &VersionVector) -> Vec<SeqRange> {
        let mut out = Vec::new();
        for (author, mine) in &self.heads {
            let theirs = other.heads.get(author).map(|h| h.seq).unwrap_or(Seq(0));
            if mine.seq > theirs {
                out.push(SeqRange { author: *author, first: Seq(theirs.0 + 1), last: mine.seq });
            }
        }
        out
    }

    /// Authors whose head in `other` is at a seq we hold but with a different id:
    /// each is a fork. `id_at` looks up the id of the envelope we hold at a seq.
    pub fn forks_against(
        &self,
        other: &VersionVector,
        id_at: impl Fn(&DeviceKey, Seq) -> Option<EnvelopeId>,
    ) -> Vec<(DeviceKey, Seq)> {
        let mut out = Vec::new();
        for (author, theirs) in &other.heads {
            let Some(mine) = self.heads.get(author) else { continue };
            if theirs.seq > mine.seq {
                continue;
            }
            let ours = if theirs.seq == mine.seq { Some(mine.id) } else { id_at(author, theirs.seq) };
            if ours.is_some_and(|id| id != theirs.id) {
                out.push((*author, theirs.seq));
            }
        }
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(5 + ITEM_BYTES * self.heads.len());
        w.u8(VERSION_VECTOR_VERSION);
        w.u32(self.heads.len() as u32);
        for (author, head) in &self.heads {
            w.bytes(author.as_bytes());
            w.u64(head.seq.0);
            w.bytes(head.id.as_bytes());
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<VersionVector, DecodeError> {
        const WHAT: &str = "version vector";
        let mut r = Reader::new(bytes);
        let version = r.u8("version vector version")?;
        if version != VERSION_VECTOR_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                found: version,
                supported: VERSION_VECTOR_VERSION,
            });
        }
        let count = r.u32("author count")? as usize;
        if count > VERSION_VECTOR_AUTHORS_MAX {
            return Err(DecodeError::Oversized {
                what: "version vector",
                len: count,
                max: VERSION_VECTOR_AUTHORS_MAX,
            });
        }
        if r.remaining() != count * ITEM_BYTES {
            return Err(DecodeError::Invalid {
                what: WHAT,
                offset: r.offset(),
                reason: "length does not match the author count",
            });
        }
        let mut heads = BTreeMap::new();
        let mut last: Option<DeviceKey> = None;
        for _ in 0..count {
            let author = DeviceKey::from_bytes(r.array("author key")?)?;
            let seq = Seq(r.u64("head seq")?);
            let id = EnvelopeId::from_bytes(r.array("head id")?);
            if last.is_some_and(|l| l >= author) {
                return Err(r.invalid(WHAT, "authors not in strictly ascending order"));
            }
            if seq.0 == 0 {
                return Err(r.invalid(WHAT, "a head seq starts at 1"));
            }
            last = Some(author);
            heads.insert(author, Head { seq, id });
        }
        r.finish(WHAT)?;
        Ok(VersionVector { heads })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestNetwork;
    use proptest::prelude::*;

    fn id(n: u8) -> EnvelopeId {
        EnvelopeId::from_bytes([n; 32])
    }

    /// Found by the `version_vector` fuzz target: two heads at seq near u64::MAX
    /// (bytes from a peer or a bundle) made the sum overflow.
    #[test]
    fn total_envelopes_saturates_on_decoded_vectors() {
        let net = TestNetwork::new(1, 1, 2);
        let mut vv = VersionVector::new();
        vv.advance(net.devices[0].id, Head { seq: Seq(u64::MAX), id: id(1) });
        vv.advance(net.devices[1].id, Head { seq: Seq(u64::MAX - 1), id: id(2) });
        let decoded = VersionVector::decode(&vv.encode()).unwrap();
        assert_eq!(decoded.total_envelopes(), u64::MAX);
    }

    #[test]
    fn missing_ranges_per_author() {
        let net = TestNetwork::new(1, 1, 3);
        let (a, b, c) = (net.devices[0].id, net.devices[1].id, net.devices[2].id);
        let mut mine = VersionVector::new();
        mine.advance(a, Head { seq: Seq(5), id: id(5) });
        mine.advance(b, Head { seq: Seq(2), id: id(2) });
        let mut theirs = VersionVector::new();
        theirs.advance(a, Head { seq: Seq(3), id: id(3) });
        theirs.advance(c, Head { seq: Seq(4), id: id(4) });
        let mut they_lack = mine.missing_from(&theirs);
        they_lack.sort_by_key(|r| r.author);
        let mut expected = vec![
            SeqRange { author: a, first: Seq(4), last: Seq(5) },
            SeqRange { author: b, first: Seq(1), last: Seq(2) },
        ];
        expected.sort_by_key(|r| r.author);
        assert_eq!(they_lack, expected);
        assert_eq!(theirs.missing_from(&mine), vec![SeqRange { author: c, first: Seq(1), last: Seq(4) }]);
        assert_eq!(mine.total_envelopes(), 7);
    }

    #[test]
    fn heads_only_move_forward() {
        let net = TestNetwork::new(1, 1, 1);
        let a = net.devices[0].id;
        let mut vv = VersionVector::new();
        vv.advance(a, Head { seq: Seq(5), id: id(5) });
        vv.advance(a, Head { seq: Seq(3), id: id(3) });
        assert_eq!(vv.get(&a), Some(Head { seq: Seq(5), id: id(5) }));
    }

    #[test]
    fn differing_heads_at_a_held_seq_are_forks() {
        let net = TestNetwork::new(1, 1, 2);
        let (a, b) = (net.devices[0].id, net.devices[1].id);
        let mut mine = VersionVector::new();
        mine.advance(a, Head { seq: Seq(5), id: id(5) });
        mine.advance(b, Head { seq: Seq(2), id: id(2) });
        let mut theirs = VersionVector::new();
        theirs.advance(a, Head { seq: Seq(3), id: id(33) }); // we hold id(3) at seq 3
        theirs.advance(b, Head { seq: Seq(2), id: id(2) });
        let forks = mine.forks_against(&theirs, |_, seq| Some(id(seq.0 as u8)));
        assert_eq!(forks, vec![(a, Seq(3))]);
    }

    #[test]
    fn encoding_is_canonical() {
        let net = TestNetwork::new(1, 1, 3);
        let mut vv = VersionVector::new();
        for (i, d) in net.devices.iter().enumerate() {
            vv.advance(d.id, Head { seq: Seq(i as u64 + 1), id: id(i as u8) });
        }
        let bytes = vv.encode();
        assert_eq!(VersionVector::decode(&bytes).unwrap(), vv);
        // Swap the first two items: order is no longer ascending.
        let mut swapped = bytes.clone();
        let (x, y) = (5..5 + ITEM_BYTES, 5 + ITEM_BYTES..5 + 2 * ITEM_BYTES);
        let first = swapped[x.clone()].to_vec();
        let second = swapped[y.clone()].to_vec();
        swapped[x].copy_from_slice(&second);
        swapped[y].copy_from_slice(&first);
        assert!(VersionVector::decode(&swapped).is_err());
        let mut huge = bytes.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(VersionVector::decode(&huge).unwrap_err(), DecodeError::Oversized { .. }));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(vv) = VersionVector::decode(&bytes) {
                prop_assert_eq!(vv.encode(), bytes);
            }
        }
    }
}
