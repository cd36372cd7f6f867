//! The properties every decoder of untrusted bytes must keep, one function per
//! decoder, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the stable
//! replay of the regression corpus (`tests/tests/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes and panics only on a finding: a decoder that
//! panics, an accepted input whose re-encoding differs (`encode(decode(x)) == x`, or
//! for the text formats, which trim whitespace, `decode(encode(decode(x))) ==
//! decode(x)`), or a session that misbehaves on hostile messages. Hangs and huge
//! allocations are caught by libFuzzer's `-timeout` and `-malloc_limit_mb`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tessera_log::bundle::{BUNDLE_MAGIC, BUNDLE_VERSION, FRAME_END, FRAME_ENTRY};
use tessera_log::channel::ChannelAuth;
use tessera_log::testkit::TestNetwork;
use tessera_log::{BundleReader, DeviceKey, Envelope, LogEntry, Seq, TrustEntry, TrustState, VersionVector};
use tessera_net::{
    encode_data_frame, encode_frame, frame_payload_len, inflate_message, split_frame, FrameKind,
    FRAME_BYTES_MAX,
};
use tessera_sync::limits::{BATCHES_IN_FLIGHT_MAX, MESSAGE_BYTES_MAX};
use tessera_sync::{Event, IngestFailure, LocalLog, LocalLogError, Message, Session, SessionConfig};

/// A property check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the directory of its corpus) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("envelope", envelope),
    ("trust_entry", trust_entry),
    ("log_entry", log_entry),
    ("version_vector", version_vector),
    ("channel_auth", channel_auth),
    ("sync_message", sync_message),
    ("bundle", bundle),
    ("net_frames", net_frames),
    ("trust_file", trust_file),
    ("key_file", key_file),
    ("sync_session", sync_session),
];

/// `tessera_log::Envelope::decode`: canonical, and verification never panics.
pub fn envelope(data: &[u8]) {
    let Ok(envelope) = Envelope::decode(data) else { return };
    assert_eq!(envelope.encode(), data, "envelope: encode(decode(x)) != x");
    assert_eq!(envelope.encoded_len(), data.len(), "envelope: encoded_len is wrong");
    let _ = envelope.verify_bodies();
    let _ = envelope.verify_signature_and_bodies(&fixture().net.network);
    let _ = fixture().trust.authorize(&envelope.author(), envelope.seq());
}

/// `tessera_log::TrustEntry::decode` (certificates and revocations): canonical, and
/// adding it to a trust state never panics.
pub fn trust_entry(data: &[u8]) {
    let Ok(entry) = TrustEntry::decode(data) else { return };
    assert_eq!(entry.encode(), data, "trust entry: encode(decode(x)) != x");
    let _ = entry.id();
    let _ = entry.verify_signature(&fixture().net.network);
    let mut trust = fixture().trust.clone();
    let _ = trust.add(entry);
}

/// `tessera_log::LogEntry::decode`: canonical.
pub fn log_entry(data: &[u8]) {
    let Ok(entry) = LogEntry::decode(data) else { return };
    assert_eq!(entry.encode(), data, "log entry: encode(decode(x)) != x");
}

/// `tessera_log::VersionVector::decode`: canonical, and comparing it never panics.
pub fn version_vector(data: &[u8]) {
    let Ok(vector) = VersionVector::decode(data) else { return };
    assert_eq!(vector.encode(), data, "version vector: encode(decode(x)) != x");
    let local = fixture().local.heads();
    let _ = vector.missing_from(local);
    let _ = local.missing_from(&vector);
    let _ = vector.total_envelopes();
}

/// `tessera_log::channel::ChannelAuth::decode`: canonical, and verifying it against
/// the fixture's trust state never panics.
pub fn channel_auth(data: &[u8]) {
    let Ok(auth) = ChannelAuth::decode(data) else { return };
    assert_eq!(auth.encode(), data, "channel auth: encode(decode(x)) != x");
    let _ = auth.verify(&fixture().trust, &EXPORTED);
}

/// `tessera_sync::Message::decode`: canonical.
pub fn sync_message(data: &[u8]) {
    let Ok(message) = Message::decode(data) else { return };
    assert_eq!(message.encode(), data, "sync message: encode(decode(x)) != x");
    assert_eq!(Message::kind_of(data), message.kind());
}

/// `tessera_log::BundleReader` (and `read_all`): every entry it yields re-encodes to
/// exactly the bytes it was read from, header included; a bundle that verifies is
/// exactly its re-encoding plus the end frame.
pub fn bundle(data: &[u8]) {
    let all = tessera_log::bundle::read_all(data);
    let Ok(mut reader) = BundleReader::open(data) else {
        assert!(all.is_err(), "bundle: read_all accepted what open refused");
        return;
    };
    let header = reader.header().clone();
    let mut expected = Vec::new();
    expected.extend_from_slice(&BUNDLE_MAGIC);
    expected.push(BUNDLE_VERSION);
    expected.extend_from_slice(header.network.as_bytes());
    expected.extend_from_slice(header.exporter.as_bytes());
    expected.extend_from_slice(&header.created_at.0.to_le_bytes());
    for vector in [&header.base, &header.heads] {
        let bytes = vector.encode();
        expected.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        expected.extend_from_slice(&bytes);
    }
    assert_eq!(reader.offset() as usize, expected.len(), "bundle: header is not canonical");
    assert_eq!(&data[..expected.len()], expected, "bundle: header is not canonical");
    let mut entries = Vec::new();
    while let Some(next) = reader.next_entry() {
        let Ok(entry) = next else {
            assert!(all.is_err(), "bundle: read_all accepted a bundle the stream refused");
            return;
        };
        let bytes = entry.encode();
        expected.push(FRAME_ENTRY);
        expected.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        expected.extend_from_slice(&bytes);
        assert_eq!(reader.offset() as usize, expected.len(), "bundle: entry frame is not canonical");
        assert_eq!(&data[..expected.len()], expected, "bundle: entry frame is not canonical");
        entries.push(entry);
    }
    assert!(reader.is_verified());
    let (all_header, all_entries) = all.expect("bundle: the stream verified what read_all refused");
    assert_eq!(all_header, header);
    assert_eq!(all_entries, entries);
    // The end frame: tag, count, hash, signature, and nothing after it.
    expected.push(FRAME_END);
    expected.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    expected.extend_from_slice(&reader.bundle_hash().expect("verified").0);
    assert_eq!(data.len(), expected.len() + 64, "bundle: a verified bundle has bytes left over");
    assert_eq!(&data[..expected.len()], expected, "bundle: end frame is not canonical");
}

/// `tessera_net` framing (`frame_payload_len`, `split_frame`, `encode_frame`) over a
/// stream of frames, with the channel handshake and sync message inside them.
pub fn net_frames(data: &[u8]) {
    let mut rest = data;
    while let Some((prefix, after)) = rest.split_first_chunk::<4>() {
        let Ok(len) = frame_payload_len(*prefix) else { return };
        let Some(payload) = after.get(..len) else { return };
        rest = &after[len..];
        let Ok((kind, body)) = split_frame(payload) else { continue };
        let frame = encode_frame(kind, body).expect("a frame read back fits the limit");
        assert_eq!(frame[..4], prefix[..], "net frame: length prefix not canonical");
        assert_eq!(frame[4..], payload[..], "net frame: encode(split(x)) != x");
        match kind {
            FrameKind::Auth => channel_auth(body),
            FrameKind::Data => {
                data_frame_round_trip(body);
                sync_message(body);
            }
            FrameKind::DataDeflate => {
                // Inflating is bounded whatever the frame claims; what inflates is a
                // sync message like any other.
                let Ok(message) = inflate_message(body) else { continue };
                assert!(message.len() < FRAME_BYTES_MAX, "net frame: inflated past the message limit");
                data_frame_round_trip(&message);
                sync_message(&message);
            }
            FrameKind::Refused => {}
        }
    }
}

/// The frame a sender makes of a sync message (compressed or not) gives the message back.
fn data_frame_round_trip(message: &[u8]) {
    let frame = encode_data_frame(message).expect("a message under the limit fits a frame");
    let len = frame_payload_len(frame[..4].try_into().expect("a length prefix")).expect("a valid length");
    assert_eq!(len, frame.len() - 4, "net frame: length prefix of a data frame");
    let again = match split_frame(&frame[4..]).expect("a data frame splits") {
        (FrameKind::Data, body) => body.to_vec(),
        (FrameKind::DataDeflate, body) => inflate_message(body).expect("a compressed frame inflates"),
        (kind, _) => panic!("net frame: a sync message framed as {kind:?}"),
    };
    assert_eq!(again, message, "net frame: inflate(deflate(x)) != x");
}

/// `tessera_store::trust_file::parse`: a text format (blank lines and surrounding
/// whitespace are ignored, hex may be upper case), so not canonical: re-writing what
/// was parsed and parsing that gives the same network and entries.
pub fn trust_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((network, entries)) = tessera_store::trust_file::parse(text) else { return };
    let mut canonical =
        format!("{}\nnetwork {}\n", tessera_store::trust_file::MAGIC_LINE, network.0.to_hex());
    for entry in &entries {
        canonical.push_str(&hex::encode(entry.encode()));
        canonical.push('\n');
    }
    let again = tessera_store::trust_file::parse(&canonical).expect("trust file: re-written file refused");
    assert_eq!(again, (network, entries), "trust file: decode(encode(decode(x))) != decode(x)");
}

/// `tessera_store::read_secret_key` (it reads a path: the bytes go to a 0600 file in a
/// per-process directory). A text format, so not canonical: writing the key read and
/// reading it again gives the same key.
pub fn key_file(data: &[u8]) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    // Tests run on several threads in one process: each call gets its own names.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let input = dir.path().join(format!("input-{call}.key"));
    let output = dir.path().join(format!("output-{call}.key"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&input)
        .expect("create the key file");
    file.write_all(data).expect("write the key file");
    drop(file);
    let read = tessera_store::read_secret_key(&input, "device");
    let _ = std::fs::remove_file(&input);
    let Ok(key) = read else { return };
    tessera_store::write_secret_key(&output, "device", &key).expect("write the key read");
    let again = tessera_store::read_secret_key(&output, "device").expect("key file: re-written key refused");
    let _ = std::fs::remove_file(&output);
    assert_eq!(again.to_seed(), key.to_seed(), "key file: decode(encode(decode(x))) != decode(x)");
}

/// A `tessera_sync::Session` that accepted a valid Hello, then gets hostile messages.
///
/// Input: one flags byte (bit 0: the store refuses every batch; bit 1: time jumps
/// past the timeouts between messages; bit 2: the first message replaces the valid
/// Hello, so hostile Hellos are fuzzed too), then messages, each a `u16` length and
/// its bytes (the last one takes whatever is left). The session must never panic;
/// an `Err` leaves it closed; everything it sends decodes; it holds at most the batches
/// it announced; `poll_transmit` stops.
pub fn sync_session(data: &[u8]) {
    let fx = fixture();
    let (flags, mut rest) = data.split_first().map(|(f, r)| (*f, r)).unwrap_or((0, &[]));
    let refuse = flags & 1 != 0;
    let hostile_hello = flags & 4 != 0;
    let jump = if flags & 2 != 0 { Duration::from_secs(11) } else { Duration::from_millis(1) };
    let mut session = Session::new(SessionConfig::new(fx.net.network, fx.net.devices[0].id), Duration::ZERO);
    let mut now = Duration::ZERO;
    pump(&mut session, now, &fx.local, refuse);
    if !hostile_hello {
        session.handle_message(now, &fx.peer_hello).expect("a valid Hello is accepted");
        pump(&mut session, now, &fx.local, refuse);
    }
    while !rest.is_empty() && !session.is_closed() {
        let message = match rest.split_first_chunk::<2>() {
            Some((len, after)) if usize::from(u16::from_le_bytes(*len)) <= after.len() => {
                let (message, after) = after.split_at(usize::from(u16::from_le_bytes(*len)));
                rest = after;
                message
            }
            _ => std::mem::take(&mut rest),
        };
        now += jump;
        if let Some(deadline) = session.poll_timeout() {
            if deadline <= now {
                session.handle_timeout(now);
            }
        }
        if session.handle_message(now, message).is_err() {
            assert!(session.is_closed(), "session: an error left the session open");
        }
        pump(&mut session, now, &fx.local, refuse);
    }
    session.close();
    pump(&mut session, now, &fx.local, refuse);
    assert!(session.is_drained(), "session: closed but the Close was not sent");
}

/// Sends everything the session has to send and answers its events as a store would.
fn pump(session: &mut Session, now: Duration, log: &MemLog, refuse: bool) {
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(event) = session.poll_event() {
            moved = true;
            if let Event::Ingest { batch, entries } = event {
                assert!(!entries.is_empty(), "session: an empty batch to ingest");
                let result = if refuse {
                    Err(IngestFailure::Rejected { index: entries.len() - 1, reason: "fuzz".into() })
                } else {
                    Ok(())
                };
                if session.handle_ingested(batch, result).is_err() {
                    assert!(session.is_closed(), "session: an ingest error left the session open");
                }
            }
        }
        if let Some(message) = session.poll_transmit(now, log) {
            moved = true;
            assert!(message.len() <= MESSAGE_BYTES_MAX, "session: sent an oversized message");
            if let Err(e) = Message::decode(&message) {
                panic!("session: sent a message that does not decode: {e}");
            }
        }
        assert!(
            session.batches_unacknowledged() <= BATCHES_IN_FLIGHT_MAX,
            "session: holds more batches than it announced"
        );
        if !moved {
            return;
        }
    }
    panic!("session: poll_transmit / poll_event never stop");
}

/// The exported keying material the channel check verifies against.
const EXPORTED: [u8; 32] = [7; 32];

/// A small network (one partner, two devices), the local node (device 0) holding the
/// certificates and three envelopes of its own, and the peer (device 1)'s Hello
/// announcing two envelopes of its own.
pub struct Fixture {
    pub net: TestNetwork,
    pub trust: TrustState,
    pub local: MemLog,
    pub peer_envelopes: Vec<Envelope>,
    pub peer_hello: Vec<u8>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut net = TestNetwork::new(6, 1, 2);
        let network = net.network;
        let trust = net.trust();
        let mut local =
            MemLog { heads: VersionVector::new(), trust: trust.clone(), envelopes: BTreeMap::new() };
        for n in 0..3 {
            let envelope = net.devices[0].next_simple(&network, n, 40);
            local
                .heads
                .advance(envelope.author(), tessera_log::Head { seq: envelope.seq(), id: envelope.id() });
            local.envelopes.insert((envelope.author(), envelope.seq()), envelope);
        }
        let peer_envelopes: Vec<Envelope> =
            (0..2).map(|n| net.devices[1].next_simple(&network, 10 + n, 30)).collect();
        let mut peer_heads = VersionVector::new();
        let last = &peer_envelopes[1];
        peer_heads.advance(last.author(), tessera_log::Head { seq: last.seq(), id: last.id() });
        let mut trust_ids: Vec<_> = net.entries.iter().map(TrustEntry::id).collect();
        trust_ids.sort();
        let peer_hello = Message::Hello(tessera_sync::Hello {
            network,
            device: net.devices[1].id,
            batches_in_flight_max: 4,
            entries_per_batch_max: 16,
            heads: peer_heads,
            trust_ids,
        })
        .encode();
        Fixture { net, trust, local, peer_envelopes, peer_hello }
    })
}

/// The local node's log, in memory.
#[derive(Debug)]
pub struct MemLog {
    pub heads: VersionVector,
    pub trust: TrustState,
    pub envelopes: BTreeMap<(DeviceKey, Seq), Envelope>,
}

impl LocalLog for MemLog {
    fn heads(&self) -> &VersionVector {
        &self.heads
    }
    fn trust(&self) -> &TrustState {
        &self.trust
    }
    fn envelope(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, LocalLogError> {
        Ok(self.envelopes.get(&(*author, seq)).cloned())
    }
}
