//! The bundle file: log entries carried offline, from one hub to another on a USB
//! stick, or handed to an auditor.
//!
//! A bundle is a header (network, exporter device, the version vectors `base` and
//! `heads`), a stream of framed log entries, and an end frame holding the entry
//! count, a BLAKE3 hash of every byte before it and the exporter's ed25519 signature
//! over that hash. See `docs/protocol.md`, section "Bundle", for the bytes.
//!
//! Both ends stream: [`BundleWriter`] hashes as it writes, [`BundleReader`] hashes as
//! it reads and holds at most one entry in memory. The crate stays pure: both work on
//! `std::io::Read`/`Write` values passed in (a file, a `&[u8]`, a `Vec<u8>`), and the
//! creation time is passed in.
//!
//! What a verified bundle proves, and what it does not:
//! - the end frame proves that the exporter device signed exactly these bytes, in
//!   this order, for this network; a truncated, extended, reordered or altered file
//!   is an error, never a shorter or different valid bundle;
//! - whether the exporter is (still) a certified device is the caller's decision,
//!   from its own trust state; the reader only checks the signature by the key named
//!   in the header;
//! - entries are yielded *before* the end frame is reached. Each envelope and trust
//!   entry carries its own signature and is verified on import like one from a peer,
//!   so importing them as they come is safe; a caller that wants all or nothing
//!   stages them until [`BundleReader::next_entry`] returns `None`;
//! - the reader does not check that the entries are those the header claims
//!   ([`BundleHeader::claimed_ranges`]); chain verification on import does.

use std::fmt;
use std::io::{self, Read, Write};

use thiserror::Error;

use crate::codec::DecodeError;
use crate::entry::LogEntry;
use crate::ids::{DeviceKey, Hash, NetworkId, SecretKey, Signature, Timestamp};
use crate::limits::{
    BUNDLE_ENTRIES_MAX, LOG_ENTRY_BYTES_MAX, VERSION_VECTOR_AUTHORS_MAX, VERSION_VECTOR_BYTES_MAX,
};
use crate::version_vector::{SeqRange, VersionVector};

/// The first 8 bytes of every bundle file.
pub const BUNDLE_MAGIC: [u8; 8] = *b"TSBUNDLE";
/// Format version of bundles.
pub const BUNDLE_VERSION: u8 = 1;
/// Frame tag of one log entry.
pub const FRAME_ENTRY: u8 = 0x01;
/// Frame tag of the end frame (count, hash, signature).
pub const FRAME_END: u8 = 0xFF;
/// Bytes of the end frame: tag, count, hash, signature.
pub const END_FRAME_BYTES: usize = 1 + 8 + 32 + 64;

const HASH_CONTEXT: &str = "tessera 2026-11 bundle v1";
const SIGNING_CONTEXT: &[u8] = b"tessera/v1/bundle\0";
/// Magic, version, network id, exporter key, created at.
const FIXED_HEADER_BYTES: usize = 8 + 1 + 32 + 32 + 8;
/// Read variable-length fields in steps of this size, so that a length claimed by a
/// truncated or hostile file costs memory only as its bytes actually arrive.
const READ_CHUNK: usize = 64 * 1024;

/// What a bundle says about itself. Signed, like everything before the end frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleHeader {
    /// The network the bundle belongs to; the signature binds it.
    pub network: NetworkId,
    /// The device that exported and signed the bundle. Whether it is certified is
    /// for the caller to check against its trust state.
    pub exporter: DeviceKey,
    /// When the bundle was made, by the exporter's clock: informational only.
    pub created_at: Timestamp,
    /// What the bundle starts after; empty: from the beginning.
    pub base: VersionVector,
    /// What the exporter held when it wrote the bundle.
    pub heads: VersionVector,
}

impl BundleHeader {
    /// The envelopes the bundle claims to hold: per author of `heads`, those after
    /// its seq in `base` (0 if absent) up to its head.
    pub fn claimed_ranges(&self) -> Vec<SeqRange> {
        self.heads.missing_from(&self.base)
    }

    /// How many envelopes the header claims that `entries` (the bundle's) do not hold:
    /// a bundle cut short, or exported from a log with holes. Saturating (a header
    /// may claim seqs near `u64::MAX`); linear in the entries.
    pub fn claimed_but_absent(&self, entries: &[LogEntry]) -> u64 {
        let mut held: std::collections::BTreeMap<DeviceKey, std::collections::BTreeSet<u64>> =
            std::collections::BTreeMap::new();
        for entry in entries {
            if let LogEntry::Envelope(env) = entry {
                held.entry(env.author()).or_default().insert(env.seq().0);
            }
        }
        self.claimed_ranges().iter().fold(0u64, |absent, range| {
            let present = held
                .get(&range.author)
                .map_or(0, |seqs| seqs.range(range.first.0..=range.last.0).count() as u64);
            absent.saturating_add(range.len().saturating_sub(present))
        })
    }
}

/// Why a bundle could not be read. Each variant says where in the file (byte
/// offsets from its start) and, for entries, which one (counted from 0).
#[derive(Debug, Error)]
pub enum BundleError {
    #[error("not a Tessera bundle: the file starts with {} instead of \"TSBUNDLE\"", hex::encode(.found))]
    NotABundle { found: Vec<u8> },
    #[error("this bundle has format version {found}; this build reads version {supported} (a newer Tessera wrote it)")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("bundle header, {field} at bytes {start}..{end}: {source}")]
    Header { field: &'static str, start: u64, end: u64, source: DecodeError },
    #[error("entry {index} at bytes {start}..{end}: {source}")]
    Entry { index: u64, start: u64, end: u64, source: DecodeError },
    #[error("byte {offset}, after {entries_read} entries: unknown frame tag 0x{tag:02x} (0x01 is an entry, 0xff the end): the file is damaged")]
    UnknownFrame { tag: u8, offset: u64, entries_read: u64 },
    #[error("byte {offset}: the bundle holds more than {max} entries, the limit")]
    TooManyEntries { offset: u64, max: u64 },
    #[error("the bundle ends at byte {offset}, after {entries_read} complete entries, while reading {reading}: the file is incomplete (an interrupted copy?) and has no valid end")]
    Truncated { offset: u64, entries_read: u64, reading: &'static str },
    #[error("the end frame at byte {offset} declares {declared} entries but the bundle holds {read}: entries were added or removed")]
    CountMismatch { offset: u64, declared: u64, read: u64 },
    #[error("the bundle's contents do not match the hash stored at byte {hash_at}: the file was altered or damaged")]
    HashMismatch { hash_at: u64 },
    #[error("the signature at byte {offset} by exporter device {exporter} does not verify: the bundle was altered or forged, or belongs to another network")]
    BadSignature { exporter: DeviceKey, offset: u64 },
    #[error("byte {offset}: data after the end of a complete bundle (bytes were appended to the file)")]
    TrailingBytes { offset: u64 },
    #[error("could not read the bundle at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

/// The message the exporter signs: context, network id, bundle hash.
fn signing_message(network: &NetworkId, hash: &Hash) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + 32 + 32);
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(network.as_bytes());
    msg.extend_from_slice(&hash.0);
    msg
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Writes a bundle to `W`, hashing as it streams. Writes go straight to `W`: give it
/// a `BufWriter` around a file. Durability (fsync) is the caller's business.
///
/// After any failed write the writer refuses further calls; the partial output can
/// never read as a valid bundle (it has no end frame).
pub struct BundleWriter<W: Write> {
    out: W,
    key: SecretKey,
    network: NetworkId,
    hasher: blake3::Hasher,
    offset: u64,
    entries: u64,
    max_entries: u64,
    failed: bool,
}

impl<W: Write> fmt::Debug for BundleWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleWriter")
            .field("network", &self.network)
            .field("exporter", &self.key.public())
            .field("offset", &self.offset)
            .field("entries", &self.entries)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<W: Write> BundleWriter<W> {
    /// Writes the header. `exporter_key` is this device's key; it signs the bundle
    /// when [`finish`](Self::finish) is called. The entries written should be those
    /// after `base` up to `heads` (see [`BundleHeader::claimed_ranges`]), plus the
    /// trust entries the receiver needs, trust entries first.
    pub fn new(
        out: W,
        network: NetworkId,
        exporter_key: &SecretKey,
        created_at: Timestamp,
        base: &VersionVector,
        heads: &VersionVector,
    ) -> io::Result<Self> {
        for (what, vv) in [("base", base), ("heads", heads)] {
            if vv.len() > VERSION_VECTOR_AUTHORS_MAX {
                return Err(invalid_input(format!(
                    "the {what} version vector lists {} authors, the limit is {VERSION_VECTOR_AUTHORS_MAX}",
                    vv.len()
                )));
            }
        }
        let base = base.encode();
        let heads = heads.encode();
        let mut header = Vec::with_capacity(FIXED_HEADER_BYTES + 8 + base.len() + heads.len());
        header.extend_from_slice(&BUNDLE_MAGIC);
        header.push(BUNDLE_VERSION);
        header.extend_from_slice(network.as_bytes());
        header.extend_from_slice(exporter_key.public().as_bytes());
        header.extend_from_slice(&created_at.0.to_le_bytes());
        for vv in [&base, &heads] {
            // At most VERSION_VECTOR_BYTES_MAX (checked above), far below u32::MAX.
            header.extend_from_slice(&(vv.len() as u32).to_le_bytes());
            header.extend_from_slice(vv);
        }
        let mut writer = BundleWriter {
            out,
            key: exporter_key.duplicate(),
            network,
            hasher: blake3::Hasher::new_derive_key(HASH_CONTEXT),
            offset: 0,
            entries: 0,
            max_entries: BUNDLE_ENTRIES_MAX,
            failed: false,
        };
        writer.put(&header, true)?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8], hashed: bool) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write of this bundle failed: the bundle is incomplete"));
        }
        self.failed = true;
        self.out.write_all(bytes)?;
        self.failed = false;
        if hashed {
            self.hasher.update(bytes);
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends one entry frame.
    pub fn write_entry(&mut self, entry: &LogEntry) -> io::Result<()> {
        if self.entries >= self.max_entries {
            return Err(invalid_input(format!("a bundle holds at most {} entries", self.max_entries)));
        }
        let bytes = entry.encode();
        if bytes.len() > LOG_ENTRY_BYTES_MAX {
            return Err(invalid_input(format!(
                "a log entry of {} bytes exceeds the limit of {LOG_ENTRY_BYTES_MAX}",
                bytes.len()
            )));
        }
        let mut frame = [0u8; 5];
        frame[0] = FRAME_ENTRY;
        frame[1..].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.put(&frame, true)?;
        self.put(&bytes, true)?;
        self.entries += 1;
        Ok(())
    }

    /// Entries written so far.
    pub fn entries_written(&self) -> u64 {
        self.entries
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Writes the end frame (count, hash, signature), flushes and returns the output.
    /// A bundle without this call has no end and never reads as complete.
    pub fn finish(mut self) -> io::Result<W> {
        let mut frame = [0u8; 9];
        frame[0] = FRAME_END;
        frame[1..].copy_from_slice(&self.entries.to_le_bytes());
        self.put(&frame, true)?;
        let hash = Hash(*self.hasher.finalize().as_bytes());
        let signature = self.key.sign(&signing_message(&self.network, &hash));
        let mut tail = [0u8; 32 + 64];
        tail[..32].copy_from_slice(&hash.0);
        tail[32..].copy_from_slice(&signature.0);
        self.put(&tail, false)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The input side: counts and hashes the bytes it reads.
struct Source<R> {
    inner: R,
    offset: u64,
    hasher: blake3::Hasher,
}

impl<R: Read> Source<R> {
    /// Reads until `buf` is full or the input ends; returns the number of bytes read.
    fn fill(&mut self, buf: &mut [u8], hashed: bool) -> Result<usize, BundleError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                // `min` guards against a `Read` that reports more than it was given.
                Ok(k) => n = (n + k).min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(BundleError::Io { offset: self.offset + n as u64, source });
                }
            }
        }
        if hashed {
            self.hasher.update(&buf[..n]);
        }
        self.offset += n as u64;
        Ok(n)
    }

    /// Fills `buf` completely or fails with `Truncated`.
    fn exact(
        &mut self,
        buf: &mut [u8],
        hashed: bool,
        entries_read: u64,
        reading: &'static str,
    ) -> Result<(), BundleError> {
        if self.fill(buf, hashed)? < buf.len() {
            return Err(BundleError::Truncated { offset: self.offset, entries_read, reading });
        }
        Ok(())
    }

    /// Reads `len` hashed bytes into `out`, growing it only as bytes arrive.
    fn exact_vec(
        &mut self,
        len: usize,
        out: &mut Vec<u8>,
        entries_read: u64,
        reading: &'static str,
    ) -> Result<(), BundleError> {
        out.clear();
        while out.len() < len {
            let start = out.len();
            let step = READ_CHUNK.min(len - start);
            out.resize(start + step, 0);
            self.exact(&mut out[start..], true, entries_read, reading)?;
        }
        Ok(())
    }

    fn u32(&mut self, entries_read: u64, reading: &'static str) -> Result<u32, BundleError> {
        let mut b = [0u8; 4];
        self.exact(&mut b, true, entries_read, reading)?;
        Ok(u32::from_le_bytes(b))
    }

    /// A `u32` length and that many bytes of an encoded version vector.
    fn version_vector(&mut self, field: &'static str) -> Result<VersionVector, BundleError> {
        let start = self.offset;
        let len = self.u32(0, "the header")? as usize;
        let end = start + 4 + len as u64;
        let fail = |source| BundleError::Header { field, start, end, source };
        if len > VERSION_VECTOR_BYTES_MAX {
            return Err(fail(DecodeError::Oversized { what: field, len, max: VERSION_VECTOR_BYTES_MAX }));
        }
        let mut bytes = Vec::new();
        self.exact_vec(len, &mut bytes, 0, "the header")?;
        VersionVector::decode(&bytes).map_err(fail)
    }
}

enum State {
    /// Reading frames.
    Entries,
    /// The end frame verified; holds the bundle hash.
    Verified(Hash),
    /// An error was returned; nothing more is read.
    Failed,
}

/// Reads and verifies a bundle as a stream, holding at most one entry in memory.
///
/// [`next_entry`](Self::next_entry) yields the entries, then `None` only once the end
/// frame has verified: count, hash, the exporter's signature, and nothing after it.
/// A file that ends early yields an error, never a clean end.
pub struct BundleReader<R: Read> {
    src: Source<R>,
    header: BundleHeader,
    entries: u64,
    max_entries: u64,
    state: State,
    buf: Vec<u8>,
}

impl<R: Read> fmt::Debug for BundleReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleReader")
            .field("header", &self.header)
            .field("entries_read", &self.entries)
            .field("offset", &self.src.offset)
            .field("verified", &self.is_verified())
            .finish_non_exhaustive()
    }
}

impl<R: Read> BundleReader<R> {
    /// Reads and checks the magic, the version and the header.
    pub fn open(inner: R) -> Result<Self, BundleError> {
        let mut src = Source { inner, offset: 0, hasher: blake3::Hasher::new_derive_key(HASH_CONTEXT) };
        let mut magic = [0u8; 8];
        let n = src.fill(&mut magic, true)?;
        if magic[..n] != BUNDLE_MAGIC[..n] {
            return Err(BundleError::NotABundle { found: magic[..n].to_vec() });
        }
        if n < magic.len() {
            return Err(BundleError::Truncated { offset: src.offset, entries_read: 0, reading: "the magic" });
        }
        let mut fixed = [0u8; FIXED_HEADER_BYTES - 8];
        src.exact(&mut fixed[..1], true, 0, "the header")?;
        if fixed[0] != BUNDLE_VERSION {
            return Err(BundleError::UnsupportedVersion { found: fixed[0], supported: BUNDLE_VERSION });
        }
        src.exact(&mut fixed[1..], true, 0, "the header")?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&fixed[1..33]);
        let network = NetworkId::from_bytes(key).map_err(|source| BundleError::Header {
            field: "network id",
            start: 9,
            end: 41,
            source,
        })?;
        key.copy_from_slice(&fixed[33..65]);
        let exporter = DeviceKey::from_bytes(key).map_err(|source| BundleError::Header {
            field: "exporter device key",
            start: 41,
            end: 73,
            source,
        })?;
        let mut time = [0u8; 8];
        time.copy_from_slice(&fixed[65..73]);
        let created_at = Timestamp(i64::from_le_bytes(time));
        let base = src.version_vector("base version vector")?;
        let heads = src.version_vector("heads version vector")?;
        Ok(BundleReader {
            src,
            header: BundleHeader { network, exporter, created_at, base, heads },
            entries: 0,
            max_entries: BUNDLE_ENTRIES_MAX,
            state: State::Entries,
            buf: Vec::new(),
        })
    }

    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// Entries read so far.
    pub fn entries_read(&self) -> u64 {
        self.entries
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.src.offset
    }

    /// Whether the end frame was read and verified.
    pub fn is_verified(&self) -> bool {
        matches!(self.state, State::Verified(_))
    }

    /// The hash the exporter signed (of every byte from the magic through the entry
    /// count), once verified: a name for this exact bundle in logs and audit reports.
    pub fn bundle_hash(&self) -> Option<Hash> {
        match self.state {
            State::Verified(hash) => Some(hash),
            _ => None,
        }
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.src.inner
    }

    /// The next entry; `None` once the end frame has verified (and after an error).
    pub fn next_entry(&mut self) -> Option<Result<LogEntry, BundleError>> {
        if !matches!(self.state, State::Entries) {
            return None;
        }
        match self.step() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => None,
            Err(e) => {
                self.state = State::Failed;
                Some(Err(e))
            }
        }
    }

    fn step(&mut self) -> Result<Option<LogEntry>, BundleError> {
        let start = self.src.offset;
        let mut tag = [0u8; 1];
        self.src.exact(&mut tag, true, self.entries, "the next frame")?;
        match tag[0] {
            FRAME_ENTRY => self.read_entry(start).map(Some),
            FRAME_END => {
                let hash = self.read_end(start)?;
                self.state = State::Verified(hash);
                Ok(None)
            }
            tag => Err(BundleError::UnknownFrame { tag, offset: start, entries_read: self.entries }),
        }
    }

    fn read_entry(&mut self, start: u64) -> Result<LogEntry, BundleError> {
        let index = self.entries;
        if index >= self.max_entries {
            return Err(BundleError::TooManyEntries { offset: start, max: self.max_entries });
        }
        let len = self.src.u32(index, "an entry frame")? as usize;
        let end = start + 5 + len as u64;
        if len > LOG_ENTRY_BYTES_MAX {
            let source = DecodeError::Oversized { what: "log entry", len, max: LOG_ENTRY_BYTES_MAX };
            return Err(BundleError::Entry { index, start, end, source });
        }
        let mut buf = std::mem::take(&mut self.buf);
        let read = self.src.exact_vec(len, &mut buf, index, "an entry frame");
        let decoded = read.and_then(|()| {
            LogEntry::decode(&buf).map_err(|source| BundleError::Entry { index, start, end, source })
        });
        self.buf = buf;
        let entry = decoded?;
        self.entries += 1;
        Ok(entry)
    }

    /// Reads and checks the end frame, whose tag was read at `start`.
    fn read_end(&mut self, start: u64) -> Result<Hash, BundleError> {
        let entries = self.entries;
        let mut count = [0u8; 8];
        self.src.exact(&mut count, true, entries, "the end frame")?;
        let declared = u64::from_le_bytes(count);
        let computed = Hash(*self.src.hasher.finalize().as_bytes());
        let hash_at = self.src.offset;
        let mut stored = [0u8; 32];
        self.src.exact(&mut stored, false, entries, "the end frame")?;
        let signature_at = self.src.offset;
        let mut signature = [0u8; 64];
        self.src.exact(&mut signature, false, entries, "the end frame")?;
        if declared != entries {
            return Err(BundleError::CountMismatch { offset: start + 1, declared, read: entries });
        }
        if stored != computed.0 {
            return Err(BundleError::HashMismatch { hash_at });
        }
        let message = signing_message(&self.header.network, &computed);
        if !self.header.exporter.0.verify(&message, &Signature(signature)) {
            return Err(BundleError::BadSignature { exporter: self.header.exporter, offset: signature_at });
        }
        let end = self.src.offset;
        let mut extra = [0u8; 1];
        if self.src.fill(&mut extra, false)? > 0 {
            return Err(BundleError::TrailingBytes { offset: end });
        }
        Ok(computed)
    }

    #[cfg(test)]
    fn with_entry_limit(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }
}

impl<R: Read> Iterator for BundleReader<R> {
    type Item = Result<LogEntry, BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
}

/// Reads and verifies a whole bundle held in memory (tests, small files).
pub fn read_all(bytes: &[u8]) -> Result<(BundleHeader, Vec<LogEntry>), BundleError> {
    let mut reader = BundleReader::open(bytes)?;
    let mut entries = Vec::new();
    while let Some(entry) = reader.next_entry() {
        entries.push(entry?);
    }
    debug_assert!(reader.is_verified());
    Ok((reader.header, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Head;
    use crate::ids::Seq;
    use crate::testkit::{time, TestNetwork};
    use proptest::prelude::*;
    use std::ops::Range;
    use std::sync::OnceLock;

    fn vv_of(net: &TestNetwork) -> VersionVector {
        let mut vv = VersionVector::new();
        for d in &net.devices {
            if let Some((seq, id)) = d.head {
                vv.advance(d.id, Head { seq, id });
            }
        }
        vv
    }

    /// A network of 2 partners × 2 devices, its 6 certificates and 2 envelopes of
    /// each device (one with a stripped body), exported by device 0.
    fn sample() -> (TestNetwork, VersionVector, Vec<LogEntry>) {
        let mut net = TestNetwork::new(7, 2, 2);
        let mut entries: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
        let network = net.network;
        for round in 0..2u64 {
            for (i, device) in net.devices.iter_mut().enumerate() {
                let mut envelope = device.next_simple(&network, round * 10 + i as u64, 20 + i);
                if round == 1 && i == 2 {
                    envelope.strip_body(0);
                }
                entries.push(LogEntry::Envelope(envelope));
            }
        }
        let heads = vv_of(&net);
        (net, heads, entries)
    }

    fn write(
        net: &TestNetwork,
        base: &VersionVector,
        heads: &VersionVector,
        entries: &[LogEntry],
    ) -> Vec<u8> {
        let mut w =
            BundleWriter::new(Vec::new(), net.network, &net.devices[0].key, time(5), base, heads).unwrap();
        for entry in entries {
            w.write_entry(entry).unwrap();
        }
        assert_eq!(w.entries_written(), entries.len() as u64);
        let written = w.bytes_written();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() as u64, written + END_FRAME_BYTES as u64);
        bytes
    }

    /// The sample bundle, built once for all tests and proptest cases.
    fn sample_bundle() -> &'static (Vec<u8>, Vec<LogEntry>) {
        static BUNDLE: OnceLock<(Vec<u8>, Vec<LogEntry>)> = OnceLock::new();
        BUNDLE.get_or_init(|| {
            let (net, heads, entries) = sample();
            (write(&net, &VersionVector::new(), &heads, &entries), entries)
        })
    }

    /// The byte ranges of the entry frames of a well-formed bundle.
    fn frames(bytes: &[u8]) -> Vec<Range<usize>> {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let mut at = FIXED_HEADER_BYTES;
        at += 4 + u32_at(at);
        at += 4 + u32_at(at);
        let mut out = Vec::new();
        while bytes[at] == FRAME_ENTRY {
            let end = at + 5 + u32_at(at + 1);
            out.push(at..end);
            at = end;
        }
        assert_eq!(bytes.len() - at, END_FRAME_BYTES);
        out
    }

    /// Rewrites the stored hash of `bytes` to match its (altered) contents.
    fn rehash(bytes: &mut [u8]) {
        let hash_at = bytes.len() - 96;
        let mut hasher = blake3::Hasher::new_derive_key(HASH_CONTEXT);
        hasher.update(&bytes[..hash_at]);
        bytes[hash_at..hash_at + 32].copy_from_slice(hasher.finalize().as_bytes());
    }

    #[test]
    fn round_trip_with_trust_entries_and_envelopes_of_several_devices() {
        let (net, heads, entries) = sample();
        let bytes = write(&net, &VersionVector::new(), &heads, &entries);
        let (header, read) = read_all(&bytes).unwrap();
        assert_eq!(read, entries);
        assert_eq!(header.network, net.network);
        assert_eq!(header.exporter, net.devices[0].id);
        assert_eq!(header.created_at, time(5));
        assert!(header.base.is_empty());
        assert_eq!(header.heads, heads);
        assert_eq!(header.claimed_ranges().len(), 4);
        assert!(header.claimed_ranges().iter().all(|r| r.first == Seq(1) && r.last == Seq(2)));
        assert_eq!(header.claimed_but_absent(&read), 0);
        let mut one_envelope_less = read.clone();
        let first = one_envelope_less.iter().position(|e| matches!(e, LogEntry::Envelope(_))).unwrap();
        one_envelope_less.remove(first);
        assert_eq!(header.claimed_but_absent(&one_envelope_less), 1);
        // Deterministic: ed25519 signatures are, so the same input gives the same file.
        assert_eq!(write(&net, &VersionVector::new(), &heads, &entries), bytes);

        let mut reader = BundleReader::open(bytes.as_slice()).unwrap();
        for (i, expected) in entries.iter().enumerate() {
            assert!(!reader.is_verified());
            assert_eq!(&reader.next_entry().unwrap().unwrap(), expected, "entry {i}");
        }
        assert!(reader.next_entry().is_none());
        assert!(reader.is_verified());
        assert!(reader.bundle_hash().is_some());
        assert_eq!(reader.offset(), bytes.len() as u64);
        assert!(reader.next_entry().is_none(), "fused after the end");
    }

    #[test]
    fn incremental_bundle_from_a_base() {
        let (net, heads, entries) = sample();
        // The receiver already holds seq 1 of every device.
        let mut base = VersionVector::new();
        for entry in &entries {
            if let LogEntry::Envelope(e) = entry {
                if e.seq() == Seq(1) {
                    base.advance(e.author(), Head { seq: e.seq(), id: e.id() });
                }
            }
        }
        let newer: Vec<LogEntry> = entries
            .iter()
            .filter(|e| matches!(e, LogEntry::Envelope(env) if env.seq() == Seq(2)))
            .cloned()
            .collect();
        let bytes = write(&net, &base, &heads, &newer);
        let (header, read) = read_all(&bytes).unwrap();
        assert_eq!(header.base, base);
        assert_eq!(read, newer);
        assert!(header.claimed_ranges().iter().all(|r| r.first == Seq(2) && r.last == Seq(2)));
    }

    #[test]
    fn empty_bundle() {
        let net = TestNetwork::new(3, 1, 1);
        let empty = VersionVector::new();
        let bytes = write(&net, &empty, &empty, &[]);
        assert_eq!(bytes.len(), FIXED_HEADER_BYTES + 2 * (4 + 5) + END_FRAME_BYTES);
        let (header, entries) = read_all(&bytes).unwrap();
        assert!(entries.is_empty());
        assert!(header.base.is_empty() && header.heads.is_empty());
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let (bytes, entries) = sample_bundle();
        let frames = frames(bytes);
        for len in 0..bytes.len() {
            match read_all(&bytes[..len]) {
                Err(BundleError::Truncated { offset, entries_read, .. }) => {
                    assert_eq!(offset, len as u64);
                    let complete = frames.iter().filter(|f| f.end <= len).count() as u64;
                    assert_eq!(entries_read, complete, "cut at {len}");
                }
                other => panic!("cut at {len} of {}: {other:?}", bytes.len()),
            }
        }
        // A streaming reader yields the entries before the cut, then the error.
        let cut = frames[3].end + 2;
        let mut reader = BundleReader::open(&bytes[..cut]).unwrap();
        for expected in &entries[..4] {
            assert_eq!(&reader.next_entry().unwrap().unwrap(), expected);
        }
        assert!(matches!(reader.next_entry(), Some(Err(BundleError::Truncated { entries_read: 4, .. }))));
        assert!(reader.next_entry().is_none());
        assert!(!reader.is_verified());
    }

    #[test]
    fn foreign_files_and_versions() {
        let (bytes, _) = sample_bundle();
        let err = read_all(b"PK\x03\x04 a zip file, not a bundle").unwrap_err();
        assert!(matches!(&err, BundleError::NotABundle { found } if found == b"PK\x03\x04 a z"));
        assert!(err.to_string().contains("504b0304"), "{err}");
        assert!(matches!(read_all(b"TSB").unwrap_err(), BundleError::Truncated { offset: 3, .. }));
        assert!(matches!(read_all(b"TSX").unwrap_err(), BundleError::NotABundle { .. }));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(
            read_all(&v2).unwrap_err(),
            BundleError::UnsupportedVersion { found: 2, supported: 1 }
        ));
    }

    #[test]
    fn malformed_header_fields_name_their_bytes() {
        let (bytes, _) = sample_bundle();
        let mut weak = bytes.clone();
        weak[41..73].copy_from_slice(&[0; 32]); // a small-order point
        let err = read_all(&weak).unwrap_err();
        assert!(matches!(err, BundleError::Header { field: "exporter device key", start: 41, end: 73, .. }));
        assert!(err.to_string().starts_with("bundle header, exporter device key at bytes 41..73"), "{err}");

        let mut huge = bytes.clone();
        huge[81..85].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = read_all(&huge).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::Header {
                    field: "base version vector",
                    start: 81,
                    source: DecodeError::Oversized { .. },
                    ..
                }
            ),
            "{err}"
        );
        let mut short = bytes.clone();
        short[81..85].copy_from_slice(&4u32.to_le_bytes()); // the empty vector takes 5 bytes
        assert!(matches!(
            read_all(&short).unwrap_err(),
            BundleError::Header { field: "base version vector", start: 81, end: 89, .. }
        ));
    }

    #[test]
    fn malformed_entries_name_their_index_and_bytes() {
        let (bytes, _) = sample_bundle();
        let frames = frames(bytes);
        let f = frames[7].clone();
        let mut bad_kind = bytes.clone();
        bad_kind[f.start + 5] = 0x07; // log entry tag
        let err = read_all(&bad_kind).unwrap_err();
        match &err {
            BundleError::Entry { index: 7, start, end, .. } => {
                assert_eq!((*start, *end), (f.start as u64, f.end as u64));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("entry 7 at bytes {}..{}: ", f.start, f.end)), "{err}");

        let mut oversized = bytes.clone();
        oversized[f.start + 1..f.start + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_all(&oversized).unwrap_err(),
            BundleError::Entry { index: 7, source: DecodeError::Oversized { .. }, .. }
        ));

        let mut unknown = bytes.clone();
        unknown[f.start] = 0x02;
        let err = read_all(&unknown).unwrap_err();
        assert!(matches!(err, BundleError::UnknownFrame { tag: 2, entries_read: 7, .. }), "{err}");
        assert!(err.to_string().contains("0x02"), "{err}");

        let reader = BundleReader::open(bytes.as_slice()).unwrap().with_entry_limit(3);
        let results: Vec<_> = reader.collect();
        assert_eq!(results.len(), 4);
        assert!(matches!(results[3], Err(BundleError::TooManyEntries { max: 3, .. })));
    }

    #[test]
    fn end_frame_errors() {
        let (bytes, _) = sample_bundle();
        let n = bytes.len();

        let mut count = bytes.clone();
        count[n - 104] ^= 1;
        assert!(matches!(
            read_all(&count).unwrap_err(),
            BundleError::CountMismatch { declared: 15, read: 14, .. }
        ));

        let mut content = bytes.clone();
        content[73] ^= 1; // created_at: decodes fine, changes the hash
        let err = read_all(&content).unwrap_err();
        assert!(matches!(err, BundleError::HashMismatch { hash_at } if hash_at == n as u64 - 96), "{err}");

        let mut hash = bytes.clone();
        hash[n - 70] ^= 0x80;
        assert!(matches!(read_all(&hash).unwrap_err(), BundleError::HashMismatch { .. }));

        let mut signature = bytes.clone();
        signature[n - 1] ^= 1;
        assert!(matches!(read_all(&signature).unwrap_err(), BundleError::BadSignature { .. }));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            read_all(&trailing).unwrap_err(),
            BundleError::TrailingBytes { offset } if offset == n as u64
        ));
        let mut second = bytes.clone();
        second.extend_from_slice(bytes);
        assert!(matches!(read_all(&second).unwrap_err(), BundleError::TrailingBytes { .. }));
    }

    #[test]
    fn a_consistent_hash_does_not_make_a_forgery() {
        // An attacker who edits the file and fixes the hash still lacks the signature.
        let (bytes, _) = sample_bundle();
        let other = TestNetwork::new(8, 1, 2);
        let (net, _, _) = sample();

        let mut exporter = bytes.clone();
        exporter[41..73].copy_from_slice(net.devices[1].id.as_bytes());
        rehash(&mut exporter);
        let err = read_all(&exporter).unwrap_err();
        assert!(matches!(err, BundleError::BadSignature { exporter, .. } if exporter == net.devices[1].id));

        // The same bundle presented as one of another network.
        let mut network = bytes.clone();
        network[9..41].copy_from_slice(other.network.as_bytes());
        rehash(&mut network);
        assert!(matches!(read_all(&network).unwrap_err(), BundleError::BadSignature { .. }));

        // A dropped entry, with the count and hash fixed up.
        let frames = frames(bytes);
        let mut dropped = bytes.clone();
        dropped.drain(frames[9].clone());
        let count_at = dropped.len() - 104;
        dropped[count_at..count_at + 8].copy_from_slice(&13u64.to_le_bytes());
        rehash(&mut dropped);
        assert!(matches!(read_all(&dropped).unwrap_err(), BundleError::BadSignature { .. }));
    }

    /// Reads the first `ok` bytes, then fails.
    struct Failing<'a> {
        bytes: &'a [u8],
        ok: usize,
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::other("USB stick removed"));
            }
            let n = buf.len().min(self.ok).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            self.ok -= n;
            Ok(n)
        }
    }

    impl Write for Failing<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.ok);
            self.ok -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_keep_their_offset() {
        let (bytes, _) = sample_bundle();
        let at = frames(bytes)[2].start + 3;
        let mut reader = BundleReader::open(Failing { bytes, ok: at }).unwrap();
        let results: Vec<_> = reader.by_ref().collect();
        assert_eq!(results.len(), 3);
        let err = results.into_iter().last().unwrap().unwrap_err();
        assert!(matches!(&err, BundleError::Io { offset, .. } if *offset == at as u64), "{err:?}");
        assert!(err.to_string().contains("USB stick removed"), "{err}");
        assert!(!reader.is_verified());
    }

    #[test]
    fn a_failed_write_poisons_the_writer() {
        let (net, heads, entries) = sample();
        let mut w = BundleWriter::new(
            Failing { bytes: &[], ok: 400 },
            net.network,
            &net.devices[0].key,
            time(5),
            &VersionVector::new(),
            &heads,
        )
        .unwrap();
        assert!(w.write_entry(&entries[0]).is_err());
        assert!(w.write_entry(&entries[1]).is_err());
        assert!(w.finish().is_err());
    }

    #[test]
    fn messages_read_well() {
        let err = BundleError::Truncated { offset: 1234, entries_read: 5, reading: "an entry frame" };
        assert_eq!(
            err.to_string(),
            "the bundle ends at byte 1234, after 5 complete entries, while reading an entry frame: \
             the file is incomplete (an interrupted copy?) and has no valid end"
        );
        let exporter = TestNetwork::new(1, 1, 1).devices[0].id;
        let err = BundleError::BadSignature { exporter, offset: 9 };
        assert!(err.to_string().contains(&exporter.to_string()), "{err}");
    }

    fn mutated_is_refused(original: &[u8], mutated: &[u8]) -> Result<(), TestCaseError> {
        if mutated != original {
            prop_assert!(read_all(mutated).is_err(), "a mutated bundle read as valid");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = read_all(&bytes);
            let mut framed = BUNDLE_MAGIC.to_vec();
            framed.push(BUNDLE_VERSION);
            framed.extend_from_slice(&bytes);
            let _ = read_all(&framed);
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let (bytes, _) = sample_bundle();
            let mut mutated = bytes[..frames(bytes)[0].start].to_vec();
            mutated.extend_from_slice(&tail);
            prop_assert!(read_all(&mutated).is_err());
        }

        #[test]
        fn bit_flips_are_refused(at in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let (bytes, _) = sample_bundle();
            let mut mutated = bytes.clone();
            mutated[at.index(bytes.len())] ^= 1 << bit;
            mutated_is_refused(bytes, &mutated)?;
        }

        #[test]
        fn byte_overwrites_and_insertions_are_refused(
            at in any::<proptest::sample::Index>(),
            value in any::<u8>(),
            insert in any::<bool>(),
        ) {
            let (bytes, _) = sample_bundle();
            let mut mutated = bytes.clone();
            let at = at.index(bytes.len() + 1);
            if insert {
                mutated.insert(at, value);
            } else if at < bytes.len() {
                mutated[at] = value;
            }
            mutated_is_refused(bytes, &mutated)?;
        }

        #[test]
        fn reordered_duplicated_or_dropped_frames_are_refused(
            a in any::<proptest::sample::Index>(),
            b in any::<proptest::sample::Index>(),
            op in 0u8..3,
        ) {
            let (bytes, _) = sample_bundle();
            let frames = frames(bytes);
            let (a, b) = (a.index(frames.len()), b.index(frames.len()));
            let mut order: Vec<usize> = (0..frames.len()).collect();
            match op {
                0 => order.swap(a, b),
                1 => order.insert(b, a),
                _ => { order.remove(a); }
            }
            let body_start = frames[0].start;
            let body_end = frames[frames.len() - 1].end;
            let mut mutated = bytes[..body_start].to_vec();
            for i in order {
                mutated.extend_from_slice(&bytes[frames[i].clone()]);
            }
            mutated.extend_from_slice(&bytes[body_end..]);
            mutated_is_refused(bytes, &mutated)?;
        }
    }
}
