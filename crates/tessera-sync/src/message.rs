//! The messages of the sync protocol and their canonical encoding
//! (`docs/protocol.md`, "Sync protocol").
//!
//! One message is one frame of the transport (which adds a `u32` length prefix); the
//! first byte is the message tag. Decoding takes untrusted bytes, checks every count
//! and length against [`crate::limits`] before allocating, refuses unknown tags and
//! trailing bytes, and never panics; `encode(decode(b)) == b` for every accepted `b`.
//! This module knows nothing of sessions: what may follow what is [`crate::Session`]'s
//! business.

use std::fmt;

use tessera_log::limits::{LOG_ENTRY_BYTES_MAX, VERSION_VECTOR_BYTES_MAX};
use tessera_log::{DecodeError, DeviceKey, LogEntry, NetworkId, Seq, TrustEntryId, VersionVector};

use crate::limits::{
    ACK_VECTOR_BYTES_MAX, BATCHES_IN_FLIGHT_MAX, CLOSE_TEXT_BYTES_MAX, ENTRIES_HEADER_BYTES,
    ENTRIES_PER_BATCH_MAX, HELLO_FIXED_BYTES, HELLO_TRUST_IDS_MAX, MESSAGE_BYTES_MAX, WANT_ITEMS_MAX,
};
use tessera_log::codec::{Reader, Writer};

/// The sync protocol version this build speaks. The first two bytes of a Hello (tag,
/// version) keep their meaning in every version, so a node can always tell a peer
/// which version it speaks before refusing it.
pub const PROTOCOL_VERSION: u8 = 1;

/// `what` of the decode error for a Hello of another protocol version.
pub(crate) const PROTOCOL_VERSION_WHAT: &str = "sync protocol";

const TAG_HELLO: u8 = 0x01;
const TAG_ENTRIES: u8 = 0x02;
const TAG_ACK: u8 = 0x03;
const TAG_CAUGHT_UP: u8 = 0x04;
const TAG_PING: u8 = 0x05;
const TAG_PONG: u8 = 0x06;
const TAG_CLOSE: u8 = 0x07;
const TAG_WANT: u8 = 0x08;

const WANT_ENVELOPE: u8 = 0;
const WANT_BODIES: u8 = 1;

/// What a node asks its peer for beyond the difference of version vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WantKind {
    /// The envelope itself: a hole below the author's head (a damaged log).
    Envelope,
    /// The bodies of an envelope held without them (a carrier stripped them).
    Bodies,
}

/// One item of a Want message: `author`'s envelope at `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wanted {
    pub author: DeviceKey,
    pub seq: Seq,
    pub kind: WantKind,
}

/// Bytes of one [`Wanted`] item: author, seq, kind.
pub const WANTED_ITEM_BYTES: usize = 32 + 8 + 1;

/// The number of an Entries message within one direction of one session: 1, 2, 3…
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct BatchId(pub u64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a session was closed, as carried by a Close message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Normal end: the sync is finished (or the node shuts down).
    Done,
    /// The peer's Hello names another protocol version.
    UnsupportedVersion,
    /// The peer belongs to another network.
    WrongNetwork,
    /// Malformed message, message out of order, or a limit exceeded.
    ProtocolViolation,
    /// An entry failed verification; nothing from its batch was stored.
    RejectedEntry,
    /// Nothing heard from the peer for the idle timeout.
    IdleTimeout,
    /// The closing node failed locally (its store), not because of the peer.
    InternalError,
    /// The closing node refuses this peer (e.g. its device is not certified).
    Refused,
    /// A code this build does not know (sent by a newer peer); kept for display.
    Unknown(u8),
}

impl CloseCode {
    pub fn to_byte(self) -> u8 {
        match self {
            CloseCode::Done => 0,
            CloseCode::UnsupportedVersion => 1,
            CloseCode::WrongNetwork => 2,
            CloseCode::ProtocolViolation => 3,
            CloseCode::RejectedEntry => 4,
            CloseCode::IdleTimeout => 5,
            CloseCode::InternalError => 6,
            CloseCode::Refused => 7,
            CloseCode::Unknown(b) => b,
        }
    }
    pub fn from_byte(b: u8) -> CloseCode {
        match b {
            0 => CloseCode::Done,
            1 => CloseCode::UnsupportedVersion,
            2 => CloseCode::WrongNetwork,
            3 => CloseCode::ProtocolViolation,
            4 => CloseCode::RejectedEntry,
            5 => CloseCode::IdleTimeout,
            6 => CloseCode::InternalError,
            7 => CloseCode::Refused,
            other => CloseCode::Unknown(other),
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseCode::Done => f.write_str("done"),
            CloseCode::UnsupportedVersion => f.write_str("unsupported protocol version"),
            CloseCode::WrongNetwork => f.write_str("wrong network"),
            CloseCode::ProtocolViolation => f.write_str("protocol violation"),
            CloseCode::RejectedEntry => f.write_str("entry rejected"),
            CloseCode::IdleTimeout => f.write_str("idle timeout"),
            CloseCode::InternalError => f.write_str("internal error"),
            CloseCode::Refused => f.write_str("refused"),
            CloseCode::Unknown(b) => write!(f, "unknown code {b}"),
        }
    }
}

/// The first message of each side: who it is and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub network: NetworkId,
    /// The sender's device key (authenticated by the transport, not here).
    pub device: DeviceKey,
    /// Batches the sender accepts in flight (1..=[`BATCHES_IN_FLIGHT_MAX`]).
    pub batches_in_flight_max: u16,
    /// Entries per batch the sender accepts (1..=[`ENTRIES_PER_BATCH_MAX`]).
    pub entries_per_batch_max: u16,
    /// The sender's heads.
    pub heads: VersionVector,
    /// Ids of the trust entries the sender holds, strictly ascending.
    pub trust_ids: Vec<TrustEntryId>,
}

/// One message of the sync protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    /// A batch of log entries: trust entries first, then envelopes per author in seq order.
    Entries {
        batch: BatchId,
        entries: Vec<LogEntry>,
    },
    /// The batch was verified and durably stored; `heads` are the receiver's heads for
    /// the authors of the batch after storing it.
    Ack {
        batch: BatchId,
        heads: VersionVector,
    },
    /// The sender has sent everything the difference called for; `last_batch` is its
    /// last batch of it (0: none).
    CaughtUp {
        last_batch: BatchId,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// Envelopes below its heads the sender lacks, or holds without their bodies
    /// (`tessera/3`): sent once, right after the Hello, possibly empty.
    Want {
        items: Vec<Wanted>,
    },
    /// The sender ends the session; nothing follows.
    Close {
        code: CloseCode,
        text: String,
    },
}

impl Message {
    /// A short name for messages and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Entries { .. } => "Entries",
            Message::Ack { .. } => "Ack",
            Message::CaughtUp { .. } => "CaughtUp",
            Message::Ping { .. } => "Ping",
            Message::Pong { .. } => "Pong",
            Message::Close { .. } => "Close",
            Message::Want { .. } => "Want",
        }
    }

    /// The kind named by a message's first byte, for errors about undecodable bytes.
    pub fn kind_of(bytes: &[u8]) -> &'static str {
        match bytes.first() {
            Some(&TAG_HELLO) => "Hello",
            Some(&TAG_ENTRIES) => "Entries",
            Some(&TAG_ACK) => "Ack",
            Some(&TAG_CAUGHT_UP) => "CaughtUp",
            Some(&TAG_PING) => "Ping",
            Some(&TAG_PONG) => "Pong",
            Some(&TAG_CLOSE) => "Close",
            Some(&TAG_WANT) => "Want",
            _ => "unknown",
        }
    }

    /// A Close message whose text is cut to [`CLOSE_TEXT_BYTES_MAX`] at a character
    /// boundary.
    pub fn close(code: CloseCode, text: &str) -> Message {
        Message::Close { code, text: truncate(text, CLOSE_TEXT_BYTES_MAX).to_owned() }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Hello(h) => encode_hello(
                h.network,
                h.device,
                h.batches_in_flight_max,
                h.entries_per_batch_max,
                &h.heads,
                &h.trust_ids,
            ),
            Message::Entries { batch, entries } => {
                let mut w = EntriesWriter::new(*batch);
                for entry in entries {
                    w.push(&entry.encode());
                }
                w.finish()
            }
            Message::Ack { batch, heads } => {
                let vector = heads.encode();
                let mut w = Writer::with_capacity(1 + 8 + 4 + vector.len());
                w.u8(TAG_ACK);
                w.u64(batch.0);
                w.u32(vector.len() as u32);
                w.bytes(&vector);
                w.into_vec()
            }
            Message::CaughtUp { last_batch } => tagged_u64(TAG_CAUGHT_UP, last_batch.0),
            Message::Ping { nonce } => tagged_u64(TAG_PING, *nonce),
            Message::Pong { nonce } => tagged_u64(TAG_PONG, *nonce),
            Message::Close { code, text } => {
                // Cut here too, so that encode never yields bytes decode refuses.
                let text = truncate(text, CLOSE_TEXT_BYTES_MAX);
                let mut w = Writer::with_capacity(1 + 1 + 2 + text.len());
                w.u8(TAG_CLOSE);
                w.u8(code.to_byte());
                w.u16(text.len() as u16);
                w.bytes(text.as_bytes());
                w.into_vec()
            }
            Message::Want { items } => {
                debug_assert!(items.len() <= WANT_ITEMS_MAX);
                let mut w = Writer::with_capacity(1 + 2 + WANTED_ITEM_BYTES * items.len());
                w.u8(TAG_WANT);
                w.u16(items.len() as u16);
                for item in items {
                    w.bytes(item.author.as_bytes());
                    w.u64(item.seq.0);
                    w.u8(match item.kind {
                        WantKind::Envelope => WANT_ENVELOPE,
                        WantKind::Bodies => WANT_BODIES,
                    });
                }
                w.into_vec()
            }
        }
    }

    /// Decodes one message from untrusted bytes.
    ///
    /// A Hello of another protocol version fails with
    /// [`DecodeError::UnsupportedVersion`] before the rest of it is read (its layout
    /// may differ).
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(DecodeError::Oversized { what: "message", len: bytes.len(), max: MESSAGE_BYTES_MAX });
        }
        let mut r = Reader::new(bytes);
        let tag = r.u8("message tag")?;
        let message = match tag {
            TAG_HELLO => Message::Hello(decode_hello(&mut r)?),
            TAG_ENTRIES => decode_entries(&mut r)?,
            TAG_ACK => {
                let batch = batch_id(&mut r)?;
                let vector = r.sized("ack vector", ACK_VECTOR_BYTES_MAX)?;
                Message::Ack { batch, heads: VersionVector::decode(vector)? }
            }
            TAG_CAUGHT_UP => Message::CaughtUp { last_batch: BatchId(r.u64("last batch id")?) },
            TAG_PING => Message::Ping { nonce: r.u64("ping nonce")? },
            TAG_PONG => Message::Pong { nonce: r.u64("pong nonce")? },
            TAG_CLOSE => {
                let code = CloseCode::from_byte(r.u8("close code")?);
                let text = r.text("close reason", CLOSE_TEXT_BYTES_MAX)?;
                Message::Close { code, text }
            }
            TAG_WANT => {
                let count = usize::from(r.u16("wanted count")?);
                if count > WANT_ITEMS_MAX {
                    return Err(DecodeError::Oversized {
                        what: "wanted items",
                        len: count,
                        max: WANT_ITEMS_MAX,
                    });
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    let author = DeviceKey::from_bytes(r.array("wanted author")?)?;
                    let seq = Seq(r.u64("wanted seq")?);
                    if seq.0 == 0 {
                        return Err(r.invalid("wanted seq", "seqs start at 1"));
                    }
                    let kind = match r.u8("wanted kind")? {
                        WANT_ENVELOPE => WantKind::Envelope,
                        WANT_BODIES => WantKind::Bodies,
                        _ => return Err(r.invalid("wanted kind", "unknown kind")),
                    };
                    items.push(Wanted { author, seq, kind });
                }
                Message::Want { items }
            }
            _ => {
                return Err(DecodeError::Invalid {
                    what: "message tag",
                    offset: 0,
                    reason: "unknown message",
                })
            }
        };
        r.finish("message")?;
        Ok(message)
    }
}

fn tagged_u64(tag: u8, v: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(9);
    w.u8(tag);
    w.u64(v);
    w.into_vec()
}

fn batch_id(r: &mut Reader<'_>) -> Result<BatchId, DecodeError> {
    let id = r.u64("batch id")?;
    if id == 0 {
        return Err(r.invalid("batch id", "batch ids start at 1"));
    }
    Ok(BatchId(id))
}

/// Encodes a Hello from borrowed parts (the session does not clone its vector).
pub(crate) fn encode_hello(
    network: NetworkId,
    device: DeviceKey,
    batches_in_flight_max: u16,
    entries_per_batch_max: u16,
    heads: &VersionVector,
    trust_ids: &[TrustEntryId],
) -> Vec<u8> {
    debug_assert!(trust_ids.len() <= HELLO_TRUST_IDS_MAX);
    debug_assert!(trust_ids.windows(2).all(|w| w[0] < w[1]), "trust ids must be strictly ascending");
    let vector = heads.encode();
    let mut w = Writer::with_capacity(HELLO_FIXED_BYTES + vector.len() + 4 + 32 * trust_ids.len());
    w.u8(TAG_HELLO);
    w.u8(PROTOCOL_VERSION);
    w.bytes(network.as_bytes());
    w.bytes(device.as_bytes());
    w.u16(batches_in_flight_max);
    w.u16(entries_per_batch_max);
    w.u32(vector.len() as u32);
    w.bytes(&vector);
    w.u32(trust_ids.len() as u32);
    for id in trust_ids {
        w.bytes(id.as_bytes());
    }
    w.into_vec()
}

fn decode_hello(r: &mut Reader<'_>) -> Result<Hello, DecodeError> {
    let version = r.u8("protocol version")?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            what: PROTOCOL_VERSION_WHAT,
            found: version,
            supported: PROTOCOL_VERSION,
        });
    }
    let network = NetworkId::from_bytes(r.array("network id")?)?;
    let device = DeviceKey::from_bytes(r.array("device key")?)?;
    let batches_in_flight_max = r.u16("batches in flight")?;
    if batches_in_flight_max == 0 || usize::from(batches_in_flight_max) > BATCHES_IN_FLIGHT_MAX {
        return Err(r.invalid("batches in flight", "must be between 1 and 64"));
    }
    let entries_per_batch_max = r.u16("entries per batch")?;
    if entries_per_batch_max == 0 || usize::from(entries_per_batch_max) > ENTRIES_PER_BATCH_MAX {
        return Err(r.invalid("entries per batch", "must be between 1 and 4096"));
    }
    let heads = VersionVector::decode(r.sized("version vector", VERSION_VECTOR_BYTES_MAX)?)?;
    let count = r.u32("trust id count")? as usize;
    if count > HELLO_TRUST_IDS_MAX {
        return Err(DecodeError::Oversized { what: "trust id list", len: count, max: HELLO_TRUST_IDS_MAX });
    }
    // 32 bytes per id: never allocate more than the input holds.
    if r.remaining() < count * 32 {
        return Err(DecodeError::Truncated {
            what: "trust id list",
            offset: r.offset(),
            needed: count * 32,
            available: r.remaining(),
        });
    }
    let mut trust_ids: Vec<TrustEntryId> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = TrustEntryId::from_bytes(r.array("trust entry id")?);
        if trust_ids.last().is_some_and(|last| *last >= id) {
            return Err(r.invalid("trust id list", "ids not in strictly ascending order"));
        }
        trust_ids.push(id);
    }
    Ok(Hello { network, device, batches_in_flight_max, entries_per_batch_max, heads, trust_ids })
}

fn decode_entries(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    let batch = batch_id(r)?;
    let count = usize::from(r.u16("entry count")?);
    if count == 0 {
        return Err(r.invalid("entry count", "a batch holds at least one entry"));
    }
    if count > ENTRIES_PER_BATCH_MAX {
        return Err(DecodeError::Oversized { what: "entry count", len: count, max: ENTRIES_PER_BATCH_MAX });
    }
    // Each entry takes at least 5 bytes (length and tag): cap the allocation by input.
    let mut entries = Vec::with_capacity(count.min(r.remaining() / 5));
    for _ in 0..count {
        let at = r.offset();
        let bytes = r.sized("log entry", LOG_ENTRY_BYTES_MAX)?;
        if bytes.is_empty() {
            return Err(DecodeError::Invalid { what: "log entry", offset: at, reason: "empty entry" });
        }
        entries.push(LogEntry::decode(bytes)?);
    }
    Ok(Message::Entries { batch, entries })
}

/// Builds an Entries message from already encoded log entries, so that each entry is
/// encoded once and its size known before it is added.
#[derive(Debug)]
pub(crate) struct EntriesWriter {
    w: Writer,
    count: usize,
}

impl EntriesWriter {
    pub(crate) fn new(batch: BatchId) -> Self {
        let mut w = Writer::with_capacity(64 * 1024);
        w.u8(TAG_ENTRIES);
        w.u64(batch.0);
        w.u16(0); // count, patched in `finish`
        EntriesWriter { w, count: 0 }
    }
    pub(crate) fn push(&mut self, encoded_entry: &[u8]) {
        debug_assert!(self.count < ENTRIES_PER_BATCH_MAX);
        self.w.u32(encoded_entry.len() as u32);
        self.w.bytes(encoded_entry);
        self.count += 1;
    }
    pub(crate) fn count(&self) -> usize {
        self.count
    }
    /// Bytes of the message so far.
    pub(crate) fn len(&self) -> usize {
        self.w.len()
    }
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.w.patch_u16(ENTRIES_HEADER_BYTES - 2, self.count as u16);
        self.w.into_vec()
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character
/// boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_log::testkit::TestNetwork;
    use tessera_log::Head;

    /// One valid message of each kind.
    fn samples() -> Vec<Message> {
        let mut net = TestNetwork::new(30, 1, 2);
        let network = net.network;
        let first = net.devices[0].next_simple(&network, 1, 40);
        let second = net.devices[0].next_simple(&network, 2, 0);
        let mut heads = VersionVector::new();
        heads.advance(first.author(), Head { seq: second.seq(), id: second.id() });
        let mut trust_ids: Vec<TrustEntryId> = net.entries.iter().map(|e| e.id()).collect();
        trust_ids.sort();
        vec![
            Message::Hello(Hello {
                network,
                device: net.devices[1].id,
                batches_in_flight_max: 4,
                entries_per_batch_max: 1024,
                heads: heads.clone(),
                trust_ids,
            }),
            Message::Entries {
                batch: BatchId(1),
                entries: vec![
                    LogEntry::Trust(net.entries[0].clone()),
                    LogEntry::Envelope(first),
                    LogEntry::Envelope(second),
                ],
            },
            Message::Ack { batch: BatchId(7), heads },
            Message::CaughtUp { last_batch: BatchId(0) },
            Message::Ping { nonce: 1 },
            Message::Pong { nonce: u64::MAX },
            Message::close(CloseCode::RejectedEntry, "envelope 5 of device 0123: refused"),
            Message::close(CloseCode::Unknown(200), ""),
        ]
    }

    #[test]
    fn every_kind_round_trips_and_every_truncation_fails() {
        for message in samples() {
            let bytes = message.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), message, "{}", message.kind());
            assert_eq!(Message::kind_of(&bytes), message.kind());
            for len in 0..bytes.len() {
                assert!(Message::decode(&bytes[..len]).is_err(), "{} cut at {len}", message.kind());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Message::decode(&longer).is_err(), "{} with a trailing byte", message.kind());
        }
    }

    #[test]
    fn fixed_layouts() {
        assert_eq!(Message::Ping { nonce: 0x0102 }.encode(), [0x05, 2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Message::CaughtUp { last_batch: BatchId(3) }.encode(), [0x04, 3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Message::close(CloseCode::Done, "ok").encode(), [0x07, 0, 2, 0, b'o', b'k']);
        // A Hello with an empty vector and no trust ids: 74 + 5 + 4 bytes.
        let Message::Hello(mut hello) = samples().remove(0) else { unreachable!() };
        hello.heads = VersionVector::new();
        hello.trust_ids.clear();
        let bytes = Message::Hello(hello).encode();
        assert_eq!(bytes.len(), HELLO_FIXED_BYTES + 5 + 4);
        assert_eq!(&bytes[..2], &[0x01, PROTOCOL_VERSION]);
        assert_eq!(&bytes[66..74], &[4, 0, 0, 4, 5, 0, 0, 0]);
    }

    #[test]
    fn other_versions_and_bad_values_are_refused() {
        let mut hello = samples().remove(0).encode();
        hello[1] = 2;
        // Refused on the version alone, whatever follows.
        hello.truncate(2);
        assert!(matches!(
            Message::decode(&hello),
            Err(DecodeError::UnsupportedVersion { what: PROTOCOL_VERSION_WHAT, found: 2, supported: 1 })
        ));
        let hello = samples().remove(0).encode();
        for (at, value) in [(66, 0u8), (68, 0u8)] {
            let mut bad = hello.clone();
            bad[at] = value;
            bad[at + 1] = 0;
            assert!(matches!(Message::decode(&bad), Err(DecodeError::Invalid { .. })));
        }
        let mut zero_batch = samples().remove(1).encode();
        zero_batch[1..9].copy_from_slice(&0u64.to_le_bytes());
        assert!(Message::decode(&zero_batch).is_err());
        // A huge entry count is refused before anything is allocated.
        let mut huge = samples().remove(1).encode();
        huge[9..11].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(Message::decode(&huge), Err(DecodeError::Oversized { .. })));
        assert!(Message::decode(&[0x00]).is_err());
        assert!(Message::decode(&[0x08]).is_err());
    }

    #[test]
    fn close_texts_are_cut_at_a_character_boundary() {
        let long = "è".repeat(CLOSE_TEXT_BYTES_MAX);
        let Message::Close { text, .. } = Message::close(CloseCode::Refused, &long) else { unreachable!() };
        assert_eq!(text.len(), CLOSE_TEXT_BYTES_MAX);
        let bytes = Message::Close { code: CloseCode::Refused, text: long }.encode();
        assert!(Message::decode(&bytes).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(message) = Message::decode(&bytes) {
                prop_assert_eq!(message.encode(), bytes);
            }
        }

        #[test]
        fn mutated_messages_never_panic(
            which in 0usize..8,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<Option<usize>>(),
        ) {
            let mut bytes = samples()[which].encode();
            for (at, byte) in edits {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if let Ok(message) = Message::decode(&bytes) {
                prop_assert_eq!(message.encode(), bytes);
            }
        }
    }
}
