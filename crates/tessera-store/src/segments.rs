//! The segment log: an append-only, checksummed, fsync'd sequence of opaque byte
//! records, split over numbered segment files in one directory. It is the durability
//! boundary of Tessera: `append_batch` returns only once its records are on disk, and
//! everything else (sled, documents, indexes) is derived from this log and can be
//! rebuilt from it. It is not a database: it knows nothing about envelopes, keys or
//! sled, has no index (a record is found by the [`RecordLocation`] returned when it was
//! appended, or by iterating), and never rewrites or deletes a record it acknowledged,
//! except when asked to by [`SegmentLog::rewrite_records`] (erasure, see below).
//!
//! # On-disk format (format version 1)
//!
//! A log is a directory holding `<16 lowercase hex digits>.tlog` segment files numbered
//! contiguously from 1 (`0000000000000001.tlog`, `0000000000000002.tlog`, ...), a
//! `segments.lock` file (held with an exclusive advisory lock while a [`SegmentLog`] is
//! open) and, after a repair, a `quarantine/` directory. All integers are little endian.
//!
//! Each segment file starts with a 32-byte header:
//!
//! | offset | size | field                                                            |
//! |-------:|-----:|------------------------------------------------------------------|
//! |      0 |    8 | magic `b"TSSEG\0\0"` followed by the format version byte `0x01` |
//! |      8 |   16 | log id ([`LogId`]), the same in every segment of one log         |
//! |     24 |    8 | segment number (u64), equal to the number in the file name       |
//!
//! The header has no checksum: each of its fields is compared with a value known in
//! advance. It is followed by zero or more record frames, back to back, up to the end of
//! the file:
//!
//! | offset | size | field                                                                          |
//! |-------:|-----:|--------------------------------------------------------------------------------|
//! |      0 |    4 | payload length `n` (u32), at most `record_bytes_max`; padding if bit 31 is set |
//! |      4 |    4 | CRC-32 (IEEE, as `crc32fast`) of bytes 0..4 followed by the payload            |
//! |      8 |  `n` | payload (zero bytes in a padding frame)                                        |
//!
//! A frame whose length field has its top bit ([`PADDING_FLAG`]) set is a padding frame:
//! its payload length is the field without that bit, its payload is zero bytes, and its
//! checksum is computed like any other (over the four length bytes as written, flag
//! included). Padding is a valid frame for verification, damage resync and torn-tail
//! detection, but not a record: iteration and [`read_records`] skip it, reading it is
//! an error, and `record_bytes_max` does not bound it (its segment does). Records are
//! at most [`RECORD_BYTES_MAX_LIMIT`] (1 GiB) long, so the bit is never set in theirs.
//! Only [`SegmentLog::rewrite_records`] writes padding.
//!
//! The checksum covers the length so that a zero-filled area (a crash after the file
//! size was updated but before the data reached the disk) never reads as a valid empty
//! record: the CRC-32 of four zero bytes is not zero. The log rotates to a new segment
//! before a record would take the current one past `segment_bytes_max`; `open` checks
//! that one largest record fits in an empty segment. A [`LogPosition`] is a (segment
//! number, byte offset in that file) pair; a [`RecordLocation`] adds the payload length
//! to the offset of a frame. Reads and writes are positioned (`pread`/`pwrite` through
//! `std::os::unix::fs::FileExt`), so this module is Unix only.
//!
//! # Crash safety
//!
//! Records are written after the current end only, with one positioned write per segment
//! per batch followed by one `fdatasync`. A segment is created only after the previous
//! one is durable, and the directory is fsync'd after each creation, so only the last
//! segment can hold a torn write. [`SegmentLog::open`] therefore verifies every record
//! of every segment and treats a bad record in the last segment as a torn tail: the bytes
//! from the bad record to the end of the file are copied to
//! `quarantine/<segment file stem>-<decimal offset>.torn` and the segment is cut back to
//! its last good record. A last segment shorter than its header, or holding nothing but
//! zeros, is a crash right after its creation: it is quarantined whole and removed.
//! Records are atomic; batches are not: after a crash the log may hold a prefix of a
//! batch whose `append_batch` never returned.
//!
//! # Damage is not a crash
//!
//! A bad record followed by valid ones (a flipped bit on the disk, a bad sector) is not
//! a torn write: the records after it were acknowledged and must not be cut. `open` looks
//! for the next valid frame after the bad one (first where the bad frame's own length
//! says it ends, then at every later offset, confirmed by a chain of valid frames), keeps
//! the bytes in place, copies them to `quarantine/<segment file stem>-<offset>.damaged`
//! and reports the [`DamagedRange`]; reads and iteration skip it. Only in the last
//! segment, a zero-filled frame header (space allocated but never written) is still a
//! crash even with valid-looking frames after it: they belong to the same unfinished
//! batch, which was never acknowledged. A valid record above `record_bytes_max` (a
//! lowered limit), a zero-filled segment header in front of data, or more than
//! [`DAMAGED_RANGES_MAX`] damaged ranges make opening fail without touching anything.
//!
//! # Rewriting a record (erasure)
//!
//! [`SegmentLog::rewrite_records`] replaces the payload of acknowledged records with
//! shorter ones (the same record with its bodies stripped) so that the old bytes are
//! physically gone from the log, while every record keeps its position: the new frame
//! starts where the old one did, and one padding frame fills the rest of the old
//! frame's space (so a new payload is as long as the old one, or at least
//! [`FRAME_HEADER_BYTES`] shorter). For each affected segment a complete new copy is
//! written to `<segment file stem>.tlog.rewrite` in the log directory, fsync'd, renamed
//! over the segment and the directory fsync'd: after a crash at any point either the old
//! or the new segment is there, whole. `open` removes leftover `.tlog.rewrite` files (a
//! crash before the rename) before anything else; [`read_records`] ignores them. A
//! rewrite needs free space for one more segment file while it runs.
//!
//! Only the segment files are rewritten. Copies in `quarantine/` (torn tails cut and
//! damaged ranges found by `open`) are separate files that may hold the same bytes: if
//! they matter, the caller must deal with them. Records in a damaged range cannot be
//! rewritten. Whether the freed disk blocks of the old file are overwritten is up to the
//! file system and the device.
//!
//! The format version stays 1, and binaries older than padding frames do not refuse a
//! log holding them: they read the flag as part of the length, a frame claiming over
//! 2 GiB that runs past the end of its segment, that is damage. Padding followed by a
//! valid frame is reported as a [`DamagedRange`] (its zeros copied to quarantine) and
//! the records around it read as they should; but padding at the very end of the last
//! segment (the last record of the log was rewritten) is taken for a torn tail and cut,
//! which moves the end of the log back so that their next appends land at other
//! positions than this code would use; and more than [`DAMAGED_RANGES_MAX`] padding
//! frames make them refuse to open, without touching anything. An erased log must not
//! be opened by an older binary.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::iter::FusedIterator;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The first 8 bytes of every segment file; the last byte is the format version.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TSSEG\0\0\x01";
/// The format version this code reads and writes (the last byte of [`SEGMENT_MAGIC`]).
pub const FORMAT_VERSION: u8 = 1;
/// Size of the header at the start of every segment file.
pub const SEGMENT_HEADER_BYTES: u64 = 32;
/// Size of the length and checksum fields in front of every payload.
pub const FRAME_HEADER_BYTES: u64 = 8;
/// Default for [`SegmentLimits::record_bytes_max`]: 16 MiB.
pub const RECORD_BYTES_MAX_DEFAULT: u32 = 16 << 20;
/// Default for [`SegmentLimits::segment_bytes_max`]: 64 MiB.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// The largest `record_bytes_max` accepted: 1 GiB.
pub const RECORD_BYTES_MAX_LIMIT: u32 = 1 << 30;
/// The largest `segment_bytes_max` accepted: 4 GiB (a batch is buffered per segment).
pub const SEGMENT_BYTES_MAX_LIMIT: u64 = 4 << 30;
/// Set in the length field of a padding frame (see the module documentation). Never set
/// in a record's: records are at most [`RECORD_BYTES_MAX_LIMIT`] bytes.
pub const PADDING_FLAG: u32 = 1 << 31;

const SEGMENT_FILE_EXTENSION: &str = "tlog";
/// Appended to a segment file name for the new copy written by a rewrite.
const REWRITE_FILE_EXTENSION: &str = "rewrite";
const LOCK_FILE_NAME: &str = "segments.lock";
const QUARANTINE_DIR_NAME: &str = "quarantine";
/// Read buffer for sequential scans and iteration.
const SCAN_BUFFER_BYTES: usize = 256 << 10;
/// Read-only handles kept open for sealed segments (the tail uses the writer handle).
const READ_HANDLES_MAX: usize = 16;
/// Damaged ranges a log may hold and still open: past this it is not a few bad sectors.
pub const DAMAGED_RANGES_MAX: usize = 1024;
/// Bytes read into memory to look for valid records after a bad one; a segment with
/// more left after the damage is only searched where the bad frame's length points.
const RESYNC_READ_BYTES_MAX: u64 = 256 << 20;
/// Valid frames in a row that confirm a resync point (fewer if the segment ends first).
const RESYNC_CONFIRM_FRAMES: usize = 4;

/// Identifies one log; written in every segment header so that derived state can tell
/// which log it belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogId(pub [u8; 16]);

impl fmt::Display for LogId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "LogId({self})")
    }
}

/// Size limits of a log. Both are checked on append and on read: a record frame claiming
/// a longer payload than `record_bytes_max` is treated as damage, never allocated
/// (padding frames are bounded by their segment only, and never allocated either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentLimits {
    /// Largest payload of one record.
    pub record_bytes_max: u32,
    /// Largest segment file, header included; the log rotates to a new segment before a
    /// record would make the current one exceed it.
    pub segment_bytes_max: u64,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        SegmentLimits {
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
        }
    }
}

impl SegmentLimits {
    fn validate(&self) -> Result<(), SegmentError> {
        let reason = if self.record_bytes_max > RECORD_BYTES_MAX_LIMIT {
            "record_bytes_max is above RECORD_BYTES_MAX_LIMIT"
        } else if self.segment_bytes_max > SEGMENT_BYTES_MAX_LIMIT {
            "segment_bytes_max is above SEGMENT_BYTES_MAX_LIMIT"
        } else if self.segment_bytes_max
            < SEGMENT_HEADER_BYTES + frame_bytes(u64::from(self.record_bytes_max))
        {
            "segment_bytes_max cannot hold the segment header and one largest record"
        } else {
            return Ok(());
        };
        Err(SegmentError::InvalidLimits { limits: *self, reason })
    }
}

/// A point in the log: the start of a record or the end of the log. The end of a full
/// segment and the first record of the next one name the same point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    /// Segment number (from 1).
    pub segment: u64,
    /// Byte offset in the segment file (at least [`SEGMENT_HEADER_BYTES`]).
    pub offset: u64,
}

impl fmt::Display for LogPosition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "segment {} offset {}", self.segment, self.offset)
    }
}

/// Where one record is: the offset of its frame (length field) and its payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordLocation {
    /// Segment number (from 1).
    pub segment: u64,
    /// Byte offset of the frame (its length field) in the segment file.
    pub offset: u64,
    /// Payload length.
    pub len: u32,
}

impl RecordLocation {
    /// The start of the record.
    pub fn start(&self) -> LogPosition {
        LogPosition { segment: self.segment, offset: self.offset }
    }

    /// The position just after this record (the next record, or the end).
    pub fn end(&self) -> LogPosition {
        LogPosition { segment: self.segment, offset: self.offset + frame_bytes(u64::from(self.len)) }
    }
}

/// The end of the last segment that [`read_records`] could not read as records: a torn
/// write (a crash), or a record being appended by a node running right now. Left as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadTail {
    pub segment: u64,
    pub offset: u64,
    pub bytes: u64,
    pub reason: CorruptReason,
}

/// Bytes in a segment that do not read as records, followed by records that do: the
/// damage of a disk, not of a crash. Kept in place, skipped by reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRange {
    pub segment: u64,
    /// Where the first bad frame starts.
    pub start: u64,
    /// Where the next valid frame starts (or the end of a sealed segment).
    pub end: u64,
    pub reason: CorruptReason,
}

impl DamagedRange {
    pub fn start_position(&self) -> LogPosition {
        LogPosition { segment: self.segment, offset: self.start }
    }
    pub fn bytes(&self) -> u64 {
        self.end - self.start
    }
}

/// What [`read_records`] read.
#[derive(Debug, Default)]
pub struct RecordsRead {
    pub records: Vec<PositionedRecord>,
    /// The end of the last segment that could not be read, if any.
    pub tail: Option<UnreadTail>,
    /// Damaged ranges skipped, with the records after each kept.
    pub damaged: Vec<DamagedRange>,
}

/// A record read by [`read_records`], with where its frame starts.
pub type PositionedRecord = (LogPosition, Vec<u8>);

/// Every record of the log in `dir`, in order, read without changing anything: no lock,
/// no repair, no file created. For auditors (a copy that must stay as it was, perhaps on
/// read-only media) and for reading a store a running node holds. Damage at the end of
/// the last segment stops the read and is reported; damaged ranges followed by valid
/// records are reported and skipped, as in [`SegmentLog::open`]. Memory grows with the
/// log: the caller asked for all of it.
pub fn read_records(dir: &Path, limits: SegmentLimits) -> Result<RecordsRead, SegmentError> {
    limits.validate()?;
    let numbers = list_segments(dir)?;
    let mut records = Vec::new();
    let verified = verify_segments(dir, &numbers, limits, Some(&mut records))?;
    let damaged = verified.damaged;
    let tail = verified.repair.map(|repair| match repair {
        Repair::CutTail { segment, offset, file_bytes, reason } => {
            UnreadTail { segment, offset, bytes: file_bytes - offset, reason }
        }
        Repair::RemoveSegment { segment, file_bytes } => UnreadTail {
            segment,
            offset: 0,
            bytes: file_bytes,
            reason: CorruptReason::TornSegmentHeader { file_bytes },
        },
    });
    Ok(RecordsRead { records, tail, damaged })
}

/// What [`verify_segments`] found.
struct Verified {
    log_id: Option<LogId>,
    /// End of the last good record of each segment kept.
    segment_lens: Vec<u64>,
    records: u64,
    /// Damage at the end of the last segment (repairable), if any.
    repair: Option<Repair>,
    /// Damage followed by valid records, in log order.
    damaged: Vec<DamagedRange>,
}

/// Reads and verifies every segment of `numbers` (headers and every record's CRC),
/// changing nothing; each good record is also pushed into `sink` if given. A bad
/// record or header in the last segment is reported as the repair it calls for; any
/// other damage is an error.
fn verify_segments(
    dir: &Path,
    numbers: &[u64],
    limits: SegmentLimits,
    mut sink: Option<&mut Vec<PositionedRecord>>,
) -> Result<Verified, SegmentError> {
    let mut verified = Verified {
        log_id: None,
        segment_lens: Vec::with_capacity(numbers.len()),
        records: 0,
        repair: None,
        damaged: Vec::new(),
    };
    for &segment in numbers {
        let is_last = Some(&segment) == numbers.last();
        let path = segment_path(dir, segment);
        let file = File::open(&path).map_err(io_error("open", &path, None))?;
        let file_bytes = file.metadata().map_err(io_error("read metadata of", &path, None))?.len();
        let header = match read_segment_header(&file, &path, file_bytes)? {
            SegmentHeaderRead::Present(header) => header,
            SegmentHeaderRead::Torn if is_last => {
                verified.repair = Some(Repair::RemoveSegment { segment, file_bytes });
                break;
            }
            SegmentHeaderRead::Torn | SegmentHeaderRead::ZeroedWithData => {
                return Err(SegmentError::Corrupt {
                    path,
                    segment,
                    offset: 0,
                    reason: CorruptReason::TornSegmentHeader { file_bytes },
                })
            }
        };
        check_segment_header(&header, &path, segment, verified.log_id)?;
        verified.log_id = Some(header.log_id);

        let scan = scan_records(
            &file,
            &path,
            SegmentPlace { segment, file_bytes, is_last },
            limits.record_bytes_max,
            sink.as_deref_mut(),
        )?;
        verified.records += scan.records;
        verified.damaged.extend(scan.damaged);
        if verified.damaged.len() > DAMAGED_RANGES_MAX {
            let first = &verified.damaged[0];
            return Err(SegmentError::TooDamaged {
                dir: dir.to_path_buf(),
                ranges: verified.damaged.len(),
                first: first.start_position(),
            });
        }
        if let Some((offset, reason)) = scan.damage {
            let repairable = is_last && !matches!(reason, CorruptReason::ValidRecordOverLimit { .. });
            if !repairable {
                return Err(SegmentError::Corrupt { path, segment, offset, reason });
            }
            verified.repair = Some(Repair::CutTail { segment, offset, file_bytes, reason });
        }
        verified.segment_lens.push(scan.valid_end);
    }
    Ok(verified)
}

/// What [`SegmentLog::open`] found and repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files in the log after repair.
    pub segments: usize,
    /// Records verified (all of them).
    pub records: u64,
    /// The torn tail cut from the last segment, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Damaged ranges kept in place and skipped (see the module documentation).
    pub damaged: Vec<DamagedRange>,
}

/// A torn tail cut from the last segment by [`SegmentLog::open`]. The bytes are kept
/// in the quarantine file; nothing is deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment that was cut.
    pub segment: u64,
    /// Where the first bad record started (0 when the segment header itself was torn
    /// and the whole file was removed).
    pub offset: u64,
    /// How many bytes were removed from the segment.
    pub bytes_cut: u64,
    /// Why the record at `offset` was rejected.
    pub reason: CorruptReason,
    /// Copy of the removed bytes.
    pub quarantined_to: PathBuf,
}

/// Why bytes in a segment are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptReason {
    /// The file ends inside the 32-byte segment header, or the header is all zeros.
    TornSegmentHeader { file_bytes: u64 },
    /// The file ends inside an 8-byte frame header.
    TruncatedFrameHeader { bytes_left: u64 },
    /// The frame header is all zeros (space allocated but never written).
    ZeroFilled,
    /// The frame claims more payload than the file holds.
    TruncatedPayload { len: u32, bytes_left: u64 },
    /// The frame claims a payload above `record_bytes_max` and its checksum is wrong.
    LengthOverLimit { len: u32, record_bytes_max: u32 },
    /// The checksum does not match the length and payload.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// A record with a valid checksum is larger than `record_bytes_max`: most likely the
    /// log was written with a larger limit. Never repaired automatically.
    ValidRecordOverLimit { len: u32, record_bytes_max: u32 },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CorruptReason::TornSegmentHeader { file_bytes } => {
                write!(formatter, "segment header missing or zero-filled (file is {file_bytes} bytes)")
            }
            CorruptReason::TruncatedFrameHeader { bytes_left } => {
                write!(formatter, "frame header cut short ({bytes_left} of {FRAME_HEADER_BYTES} bytes)")
            }
            CorruptReason::ZeroFilled => write!(formatter, "zero-filled area"),
            CorruptReason::TruncatedPayload { len, bytes_left } => {
                write!(formatter, "frame claims {len} payload bytes but only {bytes_left} follow")
            }
            CorruptReason::LengthOverLimit { len, record_bytes_max } => write!(
                formatter,
                "frame claims {len} payload bytes, above record_bytes_max {record_bytes_max}"
            ),
            CorruptReason::ChecksumMismatch { stored, computed } => {
                write!(formatter, "checksum mismatch (stored {stored:08x}, computed {computed:08x})")
            }
            CorruptReason::ValidRecordOverLimit { len, record_bytes_max } => write!(
                formatter,
                "valid {len}-byte record is above record_bytes_max {record_bytes_max} \
                 (was the log written with a larger limit?)"
            ),
        }
    }
}

/// Errors of the segment log. IO errors carry the file and, where it matters, the offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    #[error("invalid segment limits {limits:?}: {reason}")]
    InvalidLimits { limits: SegmentLimits, reason: &'static str },
    #[error("failed to {action} {}{}", .path.display(), OffsetSuffix(*.offset))]
    Io {
        action: &'static str,
        path: PathBuf,
        offset: Option<u64>,
        #[source]
        source: io::Error,
    },
    #[error("fsync of {} failed: the log is poisoned until it is reopened", .path.display())]
    SyncFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the segment log is poisoned by an earlier fsync failure: reopen it")]
    Poisoned,
    #[error("the log in {} is already open (lock {} is held)", .dir.display(), .lock_path.display())]
    Locked { dir: PathBuf, lock_path: PathBuf },
    #[error("unexpected segment file {}: {reason}", .path.display())]
    UnexpectedSegmentFile { path: PathBuf, reason: &'static str },
    #[error("segment {missing} is missing from {} (segments must be numbered 1, 2, 3, ...)", .dir.display())]
    MissingSegment { dir: PathBuf, missing: u64 },
    #[error("{} is not a Tessera segment (bad magic {found:02x?})", .path.display())]
    BadMagic { path: PathBuf, found: [u8; 8] },
    #[error("{} has segment format version {found}, this build reads version {FORMAT_VERSION}", .path.display())]
    UnsupportedVersion { path: PathBuf, found: u8 },
    #[error("segment {} belongs to another log (log id {found}, expected {expected})", .path.display())]
    ForeignSegment { path: PathBuf, expected: LogId, found: LogId },
    #[error("segment {} says it is segment {found}", .path.display())]
    SegmentNumberMismatch { path: PathBuf, found: u64 },
    #[error("segment {segment} is corrupt at offset {offset} ({}): {reason}", .path.display())]
    Corrupt { path: PathBuf, segment: u64, offset: u64, reason: CorruptReason },
    #[error("record {index} of the batch is {len} bytes, above record_bytes_max {record_bytes_max}")]
    RecordTooLarge { index: usize, len: usize, record_bytes_max: u32 },
    #[error("no record at segment {segment} offset {offset}: {reason} (log end is {end})")]
    InvalidPosition { segment: u64, offset: u64, reason: &'static str, end: LogPosition },
    /// A replacement given to [`SegmentLog::rewrite_records`] that it refused; nothing
    /// was changed.
    #[error(
        "replacement {index} (segment {} offset {}, {} payload bytes to {new_len}) refused, \
         nothing rewritten: {reason}",
        .location.segment, .location.offset, .location.len
    )]
    InvalidReplacement { index: usize, location: RecordLocation, new_len: usize, reason: &'static str },
    #[error(
        "the log in {} has {ranges} damaged areas (the first at {first}): more than a few bad \
         sectors, the disk is failing",
        .dir.display()
    )]
    TooDamaged { dir: PathBuf, ranges: usize, first: LogPosition },
    #[error("segment numbers exhausted")]
    SegmentNumbersExhausted,
    #[error("{write}; rolling the log back also failed, so it is poisoned: {rollback}")]
    RollbackFailed { write: Box<SegmentError>, rollback: Box<SegmentError> },
}

/// Formats `Some(offset)` as " at offset N" in error messages.
struct OffsetSuffix(Option<u64>);

impl fmt::Display for OffsetSuffix {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(offset) => write!(formatter, " at offset {offset}"),
            None => Ok(()),
        }
    }
}

fn io_error<'path>(
    action: &'static str,
    path: &'path Path,
    offset: Option<u64>,
) -> impl FnOnce(io::Error) -> SegmentError + 'path {
    move |source| SegmentError::Io { action, path: path.to_path_buf(), offset, source }
}

/// The append-only record log. See the module documentation.
#[derive(Debug)]
pub struct SegmentLog {
    dir: PathBuf,
    limits: SegmentLimits,
    log_id: LogId,
    /// Length of every segment file (all bytes durable and verified), index 0 = segment 1.
    segment_lens: Vec<u64>,
    /// Sum of `segment_lens`.
    total_bytes: u64,
    /// Read-write handle on the last segment; also serves reads of it.
    tail: File,
    /// Read-only handles on sealed segments, for `&self` reads.
    read_handles: Mutex<ReadHandles>,
    /// Damaged ranges found at open, skipped by iteration, in log order.
    damaged: Vec<DamagedRange>,
    /// Set when an fsync failed: the page cache may no longer match the disk.
    poisoned: bool,
    faults: FaultInjector,
    /// Holds the exclusive lock on `segments.lock` for as long as the log is open.
    _lock: File,
}

/// What went wrong during an append, which decides how to recover.
enum AppendFailure {
    /// Nothing acknowledged changed on disk: truncate back and carry on.
    Write(SegmentError),
    /// An fsync failed: the state of the disk is unknown, poison.
    Sync(SegmentError),
}

/// The state an append rolls back to.
#[derive(Clone, Copy)]
struct TailSnapshot {
    segment_count: usize,
    tail_len: u64,
    total_bytes: u64,
}

impl SegmentLog {
    /// Opens or creates the log in `dir`. `new_log_id` is used only when the directory
    /// holds no segment yet. Removes the copies of an unfinished rewrite, verifies every
    /// frame of every segment (CRC), repairs a torn tail of the last segment (see the
    /// module documentation) and reports it. Any other damage is an error and leaves the
    /// segment files untouched.
    pub fn open(
        dir: &Path,
        limits: SegmentLimits,
        new_log_id: LogId,
    ) -> Result<(SegmentLog, OpenReport), SegmentError> {
        limits.validate()?;
        create_dir_durably(dir)?;
        let lock = lock_dir(dir)?;
        // A rewrite that crashed before its rename left the segment as it was.
        remove_leftover_rewrites(dir)?;
        let numbers = list_segments(dir)?;

        // Phase 1: read and verify everything, change nothing.
        let Verified { log_id, mut segment_lens, records, repair, damaged } =
            verify_segments(dir, &numbers, limits, None)?;
        for range in &damaged {
            let path = segment_path(dir, range.segment);
            quarantine_copy(dir, &path, range, "damaged")?;
            tracing::error!(
                segment = range.segment,
                offset = range.start,
                bytes = range.bytes(),
                reason = %range.reason,
                "damaged bytes in the middle of the log: kept the records after them"
            );
        }

        // Phase 2: repair the tail, if needed.
        let torn_tail = match repair {
            None => None,
            Some(Repair::CutTail { segment, offset, file_bytes, reason }) => {
                let path = segment_path(dir, segment);
                let quarantined_to = quarantine(dir, &path, segment, offset, file_bytes)?;
                let file = OpenOptions::new().write(true).open(&path).map_err(io_error(
                    "open for repair",
                    &path,
                    None,
                ))?;
                file.set_len(offset).map_err(io_error("truncate", &path, Some(offset)))?;
                file.sync_data().map_err(io_error("sync after truncating", &path, None))?;
                Some(TornTail { segment, offset, bytes_cut: file_bytes - offset, reason, quarantined_to })
            }
            Some(Repair::RemoveSegment { segment, file_bytes }) => {
                let path = segment_path(dir, segment);
                let quarantined_to = quarantine(dir, &path, segment, 0, file_bytes)?;
                fs::remove_file(&path).map_err(io_error("remove", &path, None))?;
                sync_dir(dir)?;
                Some(TornTail {
                    segment,
                    offset: 0,
                    bytes_cut: file_bytes,
                    reason: CorruptReason::TornSegmentHeader { file_bytes },
                    quarantined_to,
                })
            }
        };
        if let Some(torn) = &torn_tail {
            tracing::warn!(
                segment = torn.segment,
                offset = torn.offset,
                bytes_cut = torn.bytes_cut,
                "cut a torn tail off the segment log"
            );
        }

        let log_id = match log_id {
            Some(log_id) => log_id,
            None => {
                // No segment with a readable header: start a new log.
                debug_assert!(segment_lens.is_empty());
                let path = segment_path(dir, 1);
                let file = create_segment_file(&path)?;
                let header = encode_segment_header(new_log_id, 1);
                file.write_all_at(&header, 0).map_err(io_error("write", &path, Some(0)))?;
                file.sync_data().map_err(io_error("sync", &path, None))?;
                sync_dir(dir)?;
                segment_lens.push(SEGMENT_HEADER_BYTES);
                new_log_id
            }
        };

        let last = segment_lens.len() as u64;
        let tail_path = segment_path(dir, last);
        let tail = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tail_path)
            .map_err(io_error("open", &tail_path, None))?;
        let total_bytes = segment_lens.iter().sum();
        let log = SegmentLog {
            dir: dir.to_path_buf(),
            limits,
            log_id,
            segment_lens,
            total_bytes,
            tail,
            read_handles: Mutex::new(ReadHandles::default()),
            damaged,
            poisoned: false,
            faults: FaultInjector::default(),
            _lock: lock,
        };
        log.check_invariants();
        let report =
            OpenReport { segments: log.segment_lens.len(), records, torn_tail, damaged: log.damaged.clone() };
        tracing::debug!(
            segments = report.segments,
            records = report.records,
            total_bytes = log.total_bytes,
            "opened segment log"
        );
        Ok((log, report))
    }

    /// Writes all records, then fsyncs once per touched segment (group commit), and
    /// returns their locations only once they are durable. Rotates to a new segment when
    /// the current one would exceed `segment_bytes_max` (a batch may span segments).
    ///
    /// A record above `record_bytes_max` rejects the whole batch before anything is
    /// written. A failed write truncates the log back to where it was and the log stays
    /// usable. A failed fsync poisons the log: every later call returns
    /// [`SegmentError::Poisoned`] until it is reopened.
    pub fn append_batch(&mut self, records: &[&[u8]]) -> Result<Vec<RecordLocation>, SegmentError> {
        self.ensure_usable()?;
        for (index, record) in records.iter().enumerate() {
            if record.len() > self.limits.record_bytes_max as usize {
                return Err(SegmentError::RecordTooLarge {
                    index,
                    len: record.len(),
                    record_bytes_max: self.limits.record_bytes_max,
                });
            }
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let before = TailSnapshot {
            segment_count: self.segment_lens.len(),
            tail_len: self.tail_len(),
            total_bytes: self.total_bytes,
        };
        let mut locations = Vec::with_capacity(records.len());
        let mut created = Vec::new();
        match self.append_chunks(records, &mut locations, &mut created) {
            Ok(()) => {
                self.check_invariants();
                debug_assert_eq!(locations.len(), records.len());
                debug_assert!(locations.windows(2).all(|pair| pair[0].end() <= pair[1].start()));
                debug_assert!(locations.last().map(RecordLocation::end) == Some(self.end()));
                Ok(locations)
            }
            Err(AppendFailure::Sync(error)) => {
                self.poisoned = true;
                Err(error)
            }
            Err(AppendFailure::Write(error)) => match self.roll_back(before, &created) {
                Ok(()) => {
                    self.check_invariants();
                    Err(error)
                }
                Err(rollback) => {
                    self.poisoned = true;
                    Err(SegmentError::RollbackFailed { write: Box::new(error), rollback: Box::new(rollback) })
                }
            },
        }
    }

    /// Appends one record; see [`SegmentLog::append_batch`].
    pub fn append(&mut self, record: &[u8]) -> Result<RecordLocation, SegmentError> {
        let locations = self.append_batch(&[record])?;
        match locations.as_slice() {
            [location] => Ok(*location),
            _ => unreachable!("append_batch returns one location per record"),
        }
    }

    /// Replaces the payloads of records in place, for erasure. Each replacement pairs the
    /// location of a record of this log with its new payload, which must be as long as
    /// the old one or at least [`FRAME_HEADER_BYTES`] shorter: the new frame starts where
    /// the old one did and a padding frame fills the rest of its space, so no other
    /// record moves and [`SegmentLog::end`] and [`SegmentLog::total_bytes`] stay as they
    /// were. Returns the new location of each replacement, in order (same offset, new
    /// length).
    ///
    /// Every replacement is checked before anything is written: one whose location is
    /// not a record of the log (or is in a damaged range), whose payload is longer, or
    /// shorter by less than a frame header, fails with
    /// [`SegmentError::InvalidReplacement`] and nothing changes. Then each affected
    /// segment is rewritten once, into a new file renamed over it (see the module
    /// documentation), so that the old payloads are in no segment file when this
    /// returns. Segments are rewritten one after another, each atomically: an IO error
    /// leaves those before it rewritten. A failed fsync, or any error once a new file
    /// has replaced a segment, poisons the log.
    pub fn rewrite_records(
        &mut self,
        replacements: &[(RecordLocation, Vec<u8>)],
    ) -> Result<Vec<RecordLocation>, SegmentError> {
        self.ensure_usable()?;
        // Phase 1: check everything, change nothing.
        let mut by_segment: BTreeMap<u64, Vec<PlannedReplacement<'_>>> = BTreeMap::new();
        for (index, (at, payload)) in replacements.iter().enumerate() {
            self.check_replacement(index, *at, payload)?;
            by_segment.entry(at.segment).or_default().push(PlannedReplacement { index, at: *at, payload });
        }
        for (&segment, planned) in &mut by_segment {
            // Stable: of two replacements of one record, the later one is refused.
            planned.sort_by_key(|replacement| replacement.at.offset);
            for pair in planned.windows(2) {
                if pair[0].at.offset == pair[1].at.offset {
                    return Err(pair[1].refuse("another replacement names the same record"));
                }
            }
            self.check_frame_starts(segment, planned)?;
        }

        // Phase 2: one new copy per segment.
        for (&segment, planned) in &by_segment {
            self.rewrite_segment(segment, planned)?;
        }
        self.check_invariants();
        // Each new length is at most the old one (checked), so it fits a u32.
        Ok(replacements
            .iter()
            .map(|(at, payload)| RecordLocation { len: payload.len() as u32, ..*at })
            .collect())
    }

    /// Reads one record back, checking that `at` is inside the log, that a frame of
    /// that length starts there, and its checksum.
    pub fn read(&self, at: RecordLocation) -> Result<Vec<u8>, SegmentError> {
        self.ensure_usable()?;
        let invalid = |reason| SegmentError::InvalidPosition {
            segment: at.segment,
            offset: at.offset,
            reason,
            end: self.end(),
        };
        let segment_len = self.segment_len(at.segment).ok_or_else(|| invalid("no such segment"))?;
        if at.offset < SEGMENT_HEADER_BYTES {
            return Err(invalid("offset is inside the segment header"));
        }
        if at.len > self.limits.record_bytes_max {
            return Err(invalid("length is above record_bytes_max"));
        }
        let record_end = at
            .offset
            .checked_add(frame_bytes(u64::from(at.len)))
            .filter(|&record_end| record_end <= segment_len)
            .ok_or_else(|| invalid("record would end beyond the end of its segment"))?;
        debug_assert!(record_end <= segment_len);

        let path = segment_path(&self.dir, at.segment);
        let read = |file: &File| -> Result<Vec<u8>, SegmentError> {
            let mut frame_header = [0u8; FRAME_HEADER_BYTES as usize];
            file.read_exact_at(&mut frame_header, at.offset).map_err(io_error(
                "read",
                &path,
                Some(at.offset),
            ))?;
            let (len, stored) = parse_frame_header(&frame_header);
            if len & PADDING_FLAG != 0 {
                return Err(invalid("the frame at this offset is padding, not a record"));
            }
            if len != at.len {
                return Err(invalid("the frame at this offset has another length"));
            }
            let mut payload = vec![0u8; at.len as usize];
            let payload_offset = at.offset + FRAME_HEADER_BYTES;
            file.read_exact_at(&mut payload, payload_offset).map_err(io_error(
                "read",
                &path,
                Some(payload_offset),
            ))?;
            let computed = frame_checksum(&frame_header, &payload);
            if computed != stored {
                return Err(SegmentError::Corrupt {
                    path: path.clone(),
                    segment: at.segment,
                    offset: at.offset,
                    reason: CorruptReason::ChecksumMismatch { stored, computed },
                });
            }
            Ok(payload)
        };
        if at.segment == self.last_segment() {
            read(&self.tail)
        } else {
            let file = self.sealed_handle(at.segment)?;
            read(&file)
        }
    }

    /// All records from `from` (a record start, the end of a segment or the end of the
    /// log) to the end of the log, in order. A position that is not the start of a
    /// record yields a [`SegmentError::Corrupt`] (checksum) error. The iterator stops
    /// after the first error.
    pub fn iter_from(
        &self,
        from: LogPosition,
    ) -> impl Iterator<Item = Result<(RecordLocation, Vec<u8>), SegmentError>> + '_ {
        let pending_error = self.ensure_usable().err().or_else(|| {
            let reason = match self.segment_len(from.segment) {
                None => "no such segment",
                Some(_) if from.offset < SEGMENT_HEADER_BYTES => "offset is inside the segment header",
                Some(segment_len) if from.offset > segment_len => "offset is beyond the end of its segment",
                Some(_) => return None,
            };
            Some(SegmentError::InvalidPosition {
                segment: from.segment,
                offset: from.offset,
                reason,
                end: self.end(),
            })
        });
        RecordIter { log: self, position: from, reader: None, pending_error, done: false }
    }

    /// The position of the first record (or the end, if the log is empty).
    pub fn start(&self) -> LogPosition {
        LogPosition { segment: 1, offset: SEGMENT_HEADER_BYTES }
    }

    /// The position after the last durable record.
    pub fn end(&self) -> LogPosition {
        LogPosition { segment: self.last_segment(), offset: self.tail_len() }
    }

    /// The id written in every segment header.
    pub fn log_id(&self) -> LogId {
        self.log_id
    }

    /// The limits the log was opened with.
    pub fn limits(&self) -> SegmentLimits {
        self.limits
    }

    /// Total size of the segment files, headers included.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segment_lens.len()
    }

    /// The damaged ranges found at open (kept in place, skipped by iteration).
    pub fn damaged(&self) -> &[DamagedRange] {
        &self.damaged
    }

    /// The bytes of a damaged range (at most [`RECORD_BYTES_MAX_LIMIT`] of them), to
    /// tell what they held.
    pub fn read_damaged(&self, range: &DamagedRange) -> Result<Vec<u8>, SegmentError> {
        let path = segment_path(&self.dir, range.segment);
        let len = range.bytes().min(u64::from(RECORD_BYTES_MAX_LIMIT)) as usize;
        let mut bytes = vec![0u8; len];
        let file = File::open(&path).map_err(io_error("open", &path, None))?;
        file.read_exact_at(&mut bytes, range.start).map_err(io_error("read", &path, Some(range.start)))?;
        Ok(bytes)
    }

    fn ensure_usable(&self) -> Result<(), SegmentError> {
        if self.poisoned {
            Err(SegmentError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn last_segment(&self) -> u64 {
        self.segment_lens.len() as u64
    }

    fn tail_len(&self) -> u64 {
        self.segment_lens.last().copied().unwrap_or(SEGMENT_HEADER_BYTES)
    }

    fn segment_len(&self, segment: u64) -> Option<u64> {
        let index = usize::try_from(segment.checked_sub(1)?).ok()?;
        self.segment_lens.get(index).copied()
    }

    /// Whether a record of `payload_len` bytes fits in a segment of `segment_len` bytes.
    /// A segment with no record accepts any record, so rotation always makes progress.
    fn fits(&self, segment_len: u64, payload_len: usize) -> bool {
        segment_len == SEGMENT_HEADER_BYTES
            || segment_len + frame_bytes(payload_len as u64) <= self.limits.segment_bytes_max
    }

    fn check_invariants(&self) {
        debug_assert!(!self.segment_lens.is_empty());
        debug_assert!(self.segment_lens.iter().all(|&len| len >= SEGMENT_HEADER_BYTES));
        debug_assert_eq!(self.total_bytes, self.segment_lens.iter().sum::<u64>());
    }

    /// Writes the batch as one buffer per segment, each followed by an fsync, so that a
    /// segment is complete and durable before the next one is created.
    fn append_chunks(
        &mut self,
        records: &[&[u8]],
        locations: &mut Vec<RecordLocation>,
        created: &mut Vec<u64>,
    ) -> Result<(), AppendFailure> {
        let mut next = 0;
        while next < records.len() {
            let mut segment = self.last_segment();
            let mut chunk_start = self.tail_len();
            let new_segment = !self.fits(chunk_start, records[next].len());
            if new_segment {
                segment = segment
                    .checked_add(1)
                    .ok_or(AppendFailure::Write(SegmentError::SegmentNumbersExhausted))?;
                chunk_start = 0;
            }

            let mut chunk_end = chunk_start.max(SEGMENT_HEADER_BYTES);
            let first = next;
            while next < records.len() && self.fits(chunk_end, records[next].len()) {
                chunk_end += frame_bytes(records[next].len() as u64);
                next += 1;
            }
            debug_assert!(next > first, "a record always fits in a segment with no record");

            let mut buffer = Vec::with_capacity((chunk_end - chunk_start) as usize);
            if new_segment {
                buffer.extend_from_slice(&encode_segment_header(self.log_id, segment));
            }
            for record in &records[first..next] {
                let len = u32::try_from(record.len()).map_err(|_| {
                    AppendFailure::Write(SegmentError::RecordTooLarge {
                        index: first,
                        len: record.len(),
                        record_bytes_max: self.limits.record_bytes_max,
                    })
                })?;
                let offset = chunk_start + buffer.len() as u64;
                locations.push(RecordLocation { segment, offset, len });
                encode_frame(&mut buffer, record);
            }
            assert_eq!(buffer.len() as u64, chunk_end - chunk_start, "chunk size");

            let path = segment_path(&self.dir, segment);
            if new_segment {
                let file = create_segment_file(&path).map_err(AppendFailure::Write)?;
                created.push(segment);
                self.write_at(&file, &path, &buffer, 0).map_err(AppendFailure::Write)?;
                self.sync_file(&file, &path).map_err(AppendFailure::Sync)?;
                self.sync_dir().map_err(AppendFailure::Sync)?;
                self.tail = file;
                self.segment_lens.push(chunk_end);
            } else {
                self.write_at(&self.tail, &path, &buffer, chunk_start).map_err(AppendFailure::Write)?;
                self.sync_file(&self.tail, &path).map_err(AppendFailure::Sync)?;
                if let Some(tail_len) = self.segment_lens.last_mut() {
                    assert_eq!(*tail_len, chunk_start, "appends start at the end");
                    *tail_len = chunk_end;
                }
            }
            self.total_bytes += chunk_end - chunk_start;
        }
        Ok(())
    }

    /// Undoes a failed append: removes the segments it created (newest first, so a crash
    /// half way leaves a prefix of the batch) and truncates the old tail back.
    fn roll_back(&mut self, before: TailSnapshot, created: &[u64]) -> Result<(), SegmentError> {
        let tail_segment = before.segment_count as u64;
        if !created.is_empty() {
            let path = segment_path(&self.dir, tail_segment);
            self.tail = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_error("reopen", &path, None))?;
            for &segment in created.iter().rev() {
                let path = segment_path(&self.dir, segment);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(io_error("remove", &path, None)(error)),
                }
            }
            sync_dir(&self.dir)?;
            self.segment_lens.truncate(before.segment_count);
        }
        self.read_handles.lock().unwrap_or_else(PoisonError::into_inner).forget_from(tail_segment);
        let path = segment_path(&self.dir, tail_segment);
        self.tail.set_len(before.tail_len).map_err(io_error("truncate", &path, Some(before.tail_len)))?;
        self.tail.sync_data().map_err(io_error("sync after truncating", &path, None))?;
        if let Some(tail_len) = self.segment_lens.last_mut() {
            *tail_len = before.tail_len;
        }
        self.total_bytes = before.total_bytes;
        Ok(())
    }

    fn write_at(&self, file: &File, path: &Path, bytes: &[u8], offset: u64) -> Result<(), SegmentError> {
        let result = match self.faults.write_fault() {
            // Simulate a partial write: half the bytes land, then the disk is full.
            Some(fault) => file.write_all_at(&bytes[..bytes.len() / 2], offset).and(Err(fault)),
            None => file.write_all_at(bytes, offset),
        };
        result.map_err(io_error("write", path, Some(offset)))
    }

    fn sync_file(&self, file: &File, path: &Path) -> Result<(), SegmentError> {
        let result = match self.faults.sync_fault() {
            Some(fault) => Err(fault),
            None => file.sync_data(),
        };
        result.map_err(|source| SegmentError::SyncFailed { path: path.to_path_buf(), source })
    }

    fn sync_dir(&self) -> Result<(), SegmentError> {
        if let Some(fault) = self.faults.sync_fault() {
            return Err(SegmentError::SyncFailed { path: self.dir.clone(), source: fault });
        }
        match sync_dir(&self.dir) {
            Err(SegmentError::Io { path, source, .. }) => Err(SegmentError::SyncFailed { path, source }),
            other => other,
        }
    }

    /// Checks one replacement given to `rewrite_records`: sizes, place, and that a record
    /// of that length with a valid checksum is there. Whether a frame of the log starts
    /// there is left to `check_frame_starts`.
    fn check_replacement(
        &self,
        index: usize,
        at: RecordLocation,
        payload: &[u8],
    ) -> Result<(), SegmentError> {
        let refuse =
            |reason| SegmentError::InvalidReplacement { index, location: at, new_len: payload.len(), reason };
        let old_len = at.len as usize;
        if payload.len() > old_len {
            return Err(refuse("the new payload is longer than the old one"));
        }
        let spare = old_len - payload.len();
        if spare > 0 && spare < FRAME_HEADER_BYTES as usize {
            return Err(refuse(
                "the new payload must be as long as the old one or at least 8 bytes shorter \
                 (the rest becomes a padding frame)",
            ));
        }
        let end = at.offset.checked_add(frame_bytes(u64::from(at.len)));
        let in_damage = |range: &DamagedRange| {
            range.segment == at.segment && range.start < end.unwrap_or(u64::MAX) && at.offset < range.end
        };
        if self.damaged.iter().any(in_damage) {
            return Err(refuse("the location is in a damaged range"));
        }
        match self.read(at) {
            Ok(_) => Ok(()),
            Err(SegmentError::InvalidPosition { reason, .. }) => Err(refuse(reason)),
            Err(SegmentError::Corrupt { .. }) => {
                Err(refuse("the record there fails its checksum (damaged since the log was opened?)"))
            }
            Err(error) => Err(error),
        }
    }

    /// Checks that a frame of `segment` starts at each of `planned` (sorted by offset),
    /// walking the frame lengths from the segment header (damaged ranges skipped): a
    /// frame that reads well inside another record's payload (a record may hold the
    /// bytes of one) is not a record of the log.
    fn check_frame_starts(
        &self,
        segment: u64,
        planned: &[PlannedReplacement<'_>],
    ) -> Result<(), SegmentError> {
        const INSIDE: &str = "no frame of the log starts at this offset (it is inside another one)";
        let segment_len = self.segment_len(segment).unwrap_or(SEGMENT_HEADER_BYTES);
        let path = segment_path(&self.dir, segment);
        let file = File::open(&path).map_err(io_error("open", &path, None))?;
        let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, file);
        let mut position = SEGMENT_HEADER_BYTES;
        reader.seek(SeekFrom::Start(position)).map_err(io_error("seek in", &path, Some(position)))?;
        let mut pending = planned;
        loop {
            while let Some((first, rest)) = pending.split_first() {
                if first.at.offset > position {
                    break;
                }
                if first.at.offset < position {
                    return Err(first.refuse(INSIDE));
                }
                pending = rest;
            }
            let Some(first) = pending.first() else { return Ok(()) };
            if position >= segment_len {
                return Err(first.refuse(INSIDE));
            }
            if let Some(range) = self.damaged.iter().find(|r| r.segment == segment && r.start == position) {
                position = range.end;
                reader.seek(SeekFrom::Start(position)).map_err(io_error("seek in", &path, Some(position)))?;
                continue;
            }
            let mut header = [0u8; FRAME_HEADER_BYTES as usize];
            reader.read_exact(&mut header).map_err(io_error("read", &path, Some(position)))?;
            let frame = Frame::from_length_field(parse_frame_header(&header).0);
            reader.seek_relative(i64::from(frame.len)).map_err(io_error("seek in", &path, Some(position)))?;
            position += frame.bytes();
        }
    }

    /// Rewrites one segment with `planned` (checked, sorted by offset): writes the new
    /// copy next to it, makes it durable, renames it over the segment, points every
    /// handle at the new file and makes the rename durable.
    fn rewrite_segment(
        &mut self,
        segment: u64,
        planned: &[PlannedReplacement<'_>],
    ) -> Result<(), SegmentError> {
        let path = segment_path(&self.dir, segment);
        let copy_path = rewrite_path(&self.dir, segment);
        let segment_len = self.segment_len(segment).unwrap_or(SEGMENT_HEADER_BYTES);
        let written = self.write_rewrite_copy(&path, &copy_path, segment_len, planned);
        let renamed = written.and_then(|()| {
            fs::rename(&copy_path, &path).map_err(io_error("rename over the segment", &copy_path, None))
        });
        if let Err(error) = renamed {
            // The segment is as it was; the copy is of no use (or open removes it).
            if let Err(remove) = fs::remove_file(&copy_path) {
                if remove.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %copy_path.display(), error = %remove, "could not remove a rewrite copy");
                }
            }
            if matches!(error, SegmentError::SyncFailed { .. }) {
                self.poisoned = true;
            }
            return Err(error);
        }
        // The segment is the new file now: a handle left on the old one would read old
        // bytes or append to an unlinked file, so a failure from here on poisons.
        let result = self.reopen_segment(segment, &path).and_then(|()| self.sync_dir());
        match &result {
            Ok(()) => tracing::debug!(segment, records = planned.len(), "rewrote records of a segment"),
            Err(_) => self.poisoned = true,
        }
        result
    }

    /// Writes the new copy of a segment to `copy_path` and makes it durable: the bytes
    /// of `path` up to `segment_len`, streamed, except that each of `planned` (sorted by
    /// offset) becomes its new frame followed by a padding frame over the rest of the old.
    fn write_rewrite_copy(
        &self,
        path: &Path,
        copy_path: &Path,
        segment_len: u64,
        planned: &[PlannedReplacement<'_>],
    ) -> Result<(), SegmentError> {
        let source = File::open(path).map_err(io_error("open", path, None))?;
        let permissions = source.metadata().map_err(io_error("read metadata of", path, None))?.permissions();
        let copy = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(copy_path)
            .map_err(io_error("create", copy_path, None))?;
        copy.set_permissions(permissions).map_err(io_error("set permissions of", copy_path, None))?;
        let mut out = CopyWriter {
            writer: BufWriter::with_capacity(SCAN_BUFFER_BYTES, copy),
            path: copy_path,
            written: 0,
            faults: &self.faults,
        };
        let mut buffer = vec![0u8; SCAN_BUFFER_BYTES];
        let mut copied_to = 0;
        for replacement in planned {
            let at = replacement.at;
            out.copy_range(&source, path, copied_to, at.offset, &mut buffer)?;
            let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES as usize + replacement.payload.len());
            encode_frame(&mut frame, replacement.payload);
            out.write(&frame)?;
            // Checked: the new payload is not longer, and 0 or at least a header shorter.
            let spare = at.len - replacement.payload.len() as u32;
            if spare > 0 {
                let padding_len = spare - FRAME_HEADER_BYTES as u32;
                out.write(&padding_frame_header(padding_len))?;
                out.write_zeros(u64::from(padding_len), &mut buffer)?;
            }
            copied_to = at.end().offset;
        }
        out.copy_range(&source, path, copied_to, segment_len, &mut buffer)?;
        debug_assert_eq!(out.written, segment_len, "a rewrite keeps the segment's size");
        let copy = out
            .writer
            .into_inner()
            .map_err(|error| io_error("write", copy_path, None)(error.into_error()))?;
        self.sync_file(&copy, copy_path)
    }

    /// After a rewrite renamed a new file over `segment`: drops the cached read handle
    /// on the old file and, for the last segment, reopens the writer handle.
    fn reopen_segment(&mut self, segment: u64, path: &Path) -> Result<(), SegmentError> {
        self.read_handles.lock().unwrap_or_else(PoisonError::into_inner).forget(segment);
        if segment == self.last_segment() {
            self.tail = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io_error("reopen", path, None))?;
        }
        Ok(())
    }

    /// A read-only handle on a sealed (non-last) segment, from the cache.
    fn sealed_handle(&self, segment: u64) -> Result<Arc<File>, SegmentError> {
        debug_assert!(segment < self.last_segment());
        let mut handles = self.read_handles.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = handles.get(segment) {
            return Ok(file);
        }
        let path = segment_path(&self.dir, segment);
        let file = Arc::new(File::open(&path).map_err(io_error("open", &path, None))?);
        handles.insert(segment, Arc::clone(&file));
        Ok(file)
    }
}

/// One replacement of [`SegmentLog::rewrite_records`], with its index in the call.
#[derive(Clone, Copy, Debug)]
struct PlannedReplacement<'call> {
    index: usize,
    at: RecordLocation,
    payload: &'call [u8],
}

impl PlannedReplacement<'_> {
    fn refuse(&self, reason: &'static str) -> SegmentError {
        SegmentError::InvalidReplacement {
            index: self.index,
            location: self.at,
            new_len: self.payload.len(),
            reason,
        }
    }
}

/// The buffered writer of a segment copy made by a rewrite, counting what it wrote.
struct CopyWriter<'a> {
    writer: BufWriter<File>,
    path: &'a Path,
    written: u64,
    faults: &'a FaultInjector,
}

impl CopyWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SegmentError> {
        let result = match self.faults.write_fault() {
            // Simulate a partial write: half the bytes land, then the disk is full.
            Some(fault) => self.writer.write_all(&bytes[..bytes.len() / 2]).and(Err(fault)),
            None => self.writer.write_all(bytes),
        };
        result.map_err(io_error("write", self.path, Some(self.written)))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Copies bytes `from..to` of `source` through `buffer`.
    fn copy_range(
        &mut self,
        source: &File,
        source_path: &Path,
        from: u64,
        to: u64,
        buffer: &mut [u8],
    ) -> Result<(), SegmentError> {
        debug_assert_eq!(self.written, from, "copies are contiguous");
        let mut offset = from;
        while offset < to {
            let chunk_len = usize::try_from(to - offset).map_or(buffer.len(), |left| left.min(buffer.len()));
            let chunk = &mut buffer[..chunk_len];
            source.read_exact_at(chunk, offset).map_err(io_error("read", source_path, Some(offset)))?;
            self.write(chunk)?;
            offset += chunk_len as u64;
        }
        Ok(())
    }

    /// Writes `len` zero bytes, using `buffer` (overwritten).
    fn write_zeros(&mut self, len: u64, buffer: &mut [u8]) -> Result<(), SegmentError> {
        buffer.fill(0);
        let mut remaining = len;
        while remaining > 0 {
            let chunk_len = usize::try_from(remaining).map_or(buffer.len(), |left| left.min(buffer.len()));
            self.write(&buffer[..chunk_len])?;
            remaining -= chunk_len as u64;
        }
        Ok(())
    }
}

/// A small cache of read-only segment handles, least recently used evicted first.
#[derive(Debug, Default)]
struct ReadHandles {
    entries: Vec<(u64, Arc<File>, u64)>,
    clock: u64,
}

impl ReadHandles {
    fn get(&mut self, segment: u64) -> Option<Arc<File>> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.iter_mut().find(|entry| entry.0 == segment)?;
        entry.2 = clock;
        Some(Arc::clone(&entry.1))
    }

    fn insert(&mut self, segment: u64, file: Arc<File>) {
        if self.entries.len() >= READ_HANDLES_MAX {
            if let Some(oldest) = (0..self.entries.len()).min_by_key(|&index| self.entries[index].2) {
                self.entries.swap_remove(oldest);
            }
        }
        self.clock += 1;
        self.entries.push((segment, file, self.clock));
        debug_assert!(self.entries.len() <= READ_HANDLES_MAX);
    }

    fn forget_from(&mut self, segment: u64) {
        self.entries.retain(|entry| entry.0 < segment);
    }

    fn forget(&mut self, segment: u64) {
        self.entries.retain(|entry| entry.0 != segment);
    }
}

/// Iterator returned by [`SegmentLog::iter_from`].
struct RecordIter<'log> {
    log: &'log SegmentLog,
    position: LogPosition,
    /// Sequential reader on `position.segment`, positioned at `position.offset`.
    reader: Option<BufReader<File>>,
    pending_error: Option<SegmentError>,
    done: bool,
}

impl RecordIter<'_> {
    fn next_record(&mut self) -> Result<Option<(RecordLocation, Vec<u8>)>, SegmentError> {
        let mut payload = Vec::new();
        while self.seek_frame() {
            let frame = self.read_frame_here(&mut payload)?;
            if frame.kind == FrameKind::Record {
                let location = RecordLocation {
                    segment: self.position.segment,
                    offset: self.position.offset,
                    len: frame.len,
                };
                self.position = location.end();
                return Ok(Some((location, payload)));
            }
            // Padding: not a record, the reader is already past it.
            self.position.offset += frame.bytes();
        }
        Ok(None)
    }

    /// Moves `position` past damaged ranges and ends of sealed segments, to the next
    /// frame to read; false at the end of the log.
    fn seek_frame(&mut self) -> bool {
        let log = self.log;
        let end = log.end();
        loop {
            if self.position >= end {
                return false;
            }
            if let Some(range) = log
                .damaged
                .iter()
                .find(|r| r.segment == self.position.segment && r.start == self.position.offset)
            {
                // Skip the damaged bytes: the records after them are valid.
                self.position.offset = range.end;
                self.reader = None;
                continue;
            }
            let segment_len = log.segment_len(self.position.segment).unwrap_or(0);
            if self.position.offset < segment_len {
                return true;
            }
            // End of a sealed segment: continue with the first record of the next one.
            self.position = LogPosition { segment: self.position.segment + 1, offset: SEGMENT_HEADER_BYTES };
            self.reader = None;
        }
    }

    /// Reads and verifies the frame at `position` (payload into `payload` if a record).
    fn read_frame_here(&mut self, payload: &mut Vec<u8>) -> Result<Frame, SegmentError> {
        let log = self.log;
        let LogPosition { segment, offset } = self.position;
        let segment_len = log.segment_len(segment).unwrap_or(0);
        let path = segment_path(&log.dir, segment);
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => {
                let file = File::open(&path).map_err(io_error("open", &path, None))?;
                let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, file);
                reader.seek(SeekFrom::Start(offset)).map_err(io_error("seek in", &path, Some(offset)))?;
                self.reader.insert(reader)
            }
        };
        read_frame(reader, segment_len - offset, log.limits.record_bytes_max, Some(payload))
            .map_err(|error| error.into_segment_error(&path, segment, offset))
    }
}

impl Iterator for RecordIter<'_> {
    type Item = Result<(RecordLocation, Vec<u8>), SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(error) = self.pending_error.take() {
            self.done = true;
            return Some(Err(error));
        }
        match self.next_record() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for RecordIter<'_> {}

/// A repair planned by the verification pass of `open`.
enum Repair {
    /// Cut the last segment at `offset`.
    CutTail { segment: u64, offset: u64, file_bytes: u64, reason: CorruptReason },
    /// The last segment's header is torn: it cannot hold a record, remove it.
    RemoveSegment { segment: u64, file_bytes: u64 },
}

struct SegmentHeader {
    magic: [u8; 8],
    log_id: LogId,
    segment: u64,
}

fn encode_segment_header(log_id: LogId, segment: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..24].copy_from_slice(&log_id.0);
    header[24..32].copy_from_slice(&segment.to_le_bytes());
    header
}

/// What the first bytes of a segment file hold.
enum SegmentHeaderRead {
    Present(SegmentHeader),
    /// Shorter than a header, or nothing but zeros: the crash came right after the file
    /// was created, before any of it was durable, so it cannot hold an acknowledged record.
    Torn,
    /// A zero-filled header in front of non-zero bytes: not a plausible torn write of a
    /// new segment (its header and first records are one write), so never repaired.
    ZeroedWithData,
}

/// Reads the header of a segment file (not yet checked against the expected values).
fn read_segment_header(file: &File, path: &Path, file_bytes: u64) -> Result<SegmentHeaderRead, SegmentError> {
    if file_bytes < SEGMENT_HEADER_BYTES {
        return Ok(SegmentHeaderRead::Torn);
    }
    let mut bytes = [0u8; SEGMENT_HEADER_BYTES as usize];
    file.read_exact_at(&mut bytes, 0).map_err(io_error("read header of", path, Some(0)))?;
    if bytes.iter().all(|&byte| byte == 0) {
        return if is_all_zeros(file, path, file_bytes)? {
            Ok(SegmentHeaderRead::Torn)
        } else {
            Ok(SegmentHeaderRead::ZeroedWithData)
        };
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[0..8]);
    let mut log_id = [0u8; 16];
    log_id.copy_from_slice(&bytes[8..24]);
    let mut segment = [0u8; 8];
    segment.copy_from_slice(&bytes[24..32]);
    Ok(SegmentHeaderRead::Present(SegmentHeader {
        magic,
        log_id: LogId(log_id),
        segment: u64::from_le_bytes(segment),
    }))
}

/// Whether the first `file_bytes` bytes of `file` are all zero (read in bounded chunks).
fn is_all_zeros(file: &File, path: &Path, file_bytes: u64) -> Result<bool, SegmentError> {
    let mut buffer = vec![0u8; SCAN_BUFFER_BYTES];
    let mut offset = 0;
    while offset < file_bytes {
        let chunk_len =
            usize::try_from(file_bytes - offset).map_or(buffer.len(), |left| left.min(buffer.len()));
        let chunk = &mut buffer[..chunk_len];
        file.read_exact_at(chunk, offset).map_err(io_error("read", path, Some(offset)))?;
        if chunk.iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
        offset += chunk_len as u64;
    }
    Ok(true)
}

fn check_segment_header(
    header: &SegmentHeader,
    path: &Path,
    segment: u64,
    expected_log_id: Option<LogId>,
) -> Result<(), SegmentError> {
    if header.magic[..7] != SEGMENT_MAGIC[..7] {
        return Err(SegmentError::BadMagic { path: path.to_path_buf(), found: header.magic });
    }
    if header.magic[7] != FORMAT_VERSION {
        return Err(SegmentError::UnsupportedVersion { path: path.to_path_buf(), found: header.magic[7] });
    }
    if let Some(expected) = expected_log_id {
        if header.log_id != expected {
            return Err(SegmentError::ForeignSegment {
                path: path.to_path_buf(),
                expected,
                found: header.log_id,
            });
        }
    }
    if header.segment != segment {
        return Err(SegmentError::SegmentNumberMismatch { path: path.to_path_buf(), found: header.segment });
    }
    Ok(())
}

fn frame_bytes(payload_len: u64) -> u64 {
    FRAME_HEADER_BYTES + payload_len
}

/// Whether a frame is a record or padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    Record,
    Padding,
}

/// What a frame's length field says: its kind and payload length (flag removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    kind: FrameKind,
    len: u32,
}

impl Frame {
    fn from_length_field(field: u32) -> Frame {
        if field & PADDING_FLAG == 0 {
            Frame { kind: FrameKind::Record, len: field }
        } else {
            Frame { kind: FrameKind::Padding, len: field & !PADDING_FLAG }
        }
    }

    /// Whether `record_bytes_max` forbids this frame (it does not bound padding).
    fn over_limit(&self, record_bytes_max: u32) -> bool {
        self.kind == FrameKind::Record && self.len > record_bytes_max
    }

    /// Header and payload.
    fn bytes(&self) -> u64 {
        frame_bytes(u64::from(self.len))
    }
}

fn parse_frame_header(bytes: &[u8; FRAME_HEADER_BYTES as usize]) -> (u32, u32) {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *bytes;
    (u32::from_le_bytes([l0, l1, l2, l3]), u32::from_le_bytes([c0, c1, c2, c3]))
}

fn frame_checksum(frame_header: &[u8; FRAME_HEADER_BYTES as usize], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame_header[..4]);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one frame to `buffer`. The caller has checked the length.
fn encode_frame(buffer: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(payload);
    buffer.extend_from_slice(&len);
    buffer.extend_from_slice(&hasher.finalize().to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// The header of a padding frame of `len` zero bytes (`len` below [`PADDING_FLAG`]).
fn padding_frame_header(len: u32) -> [u8; FRAME_HEADER_BYTES as usize] {
    debug_assert!(len < PADDING_FLAG);
    let field = (len | PADDING_FLAG).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&field);
    let zeros = [0u8; 4096];
    let mut remaining = len as usize;
    while remaining > 0 {
        let take = remaining.min(zeros.len());
        hasher.update(&zeros[..take]);
        remaining -= take;
    }
    let mut header = [0u8; FRAME_HEADER_BYTES as usize];
    header[..4].copy_from_slice(&field);
    header[4..].copy_from_slice(&hasher.finalize().to_le_bytes());
    header
}

/// Why `read_frame` did not return a record.
enum FrameError {
    Io(io::Error),
    Bad(CorruptReason),
}

impl FrameError {
    fn into_segment_error(self, path: &Path, segment: u64, offset: u64) -> SegmentError {
        match self {
            FrameError::Io(source) => io_error("read", path, Some(offset))(source),
            FrameError::Bad(reason) => {
                SegmentError::Corrupt { path: path.to_path_buf(), segment, offset, reason }
            }
        }
    }
}

/// Reads and verifies the frame at the reader's position, `bytes_left` being the bytes
/// between that position and the end of the segment. Returns the frame's kind and
/// payload length; a record's payload goes into `payload` if given, otherwise (and
/// always for padding) it is only checksummed (streamed, never allocated). Nothing is
/// allocated before the length is checked against both `record_bytes_max` and
/// `bytes_left`.
fn read_frame<R: BufRead>(
    reader: &mut R,
    bytes_left: u64,
    record_bytes_max: u32,
    payload: Option<&mut Vec<u8>>,
) -> Result<Frame, FrameError> {
    if bytes_left < FRAME_HEADER_BYTES {
        return Err(FrameError::Bad(CorruptReason::TruncatedFrameHeader { bytes_left }));
    }
    let mut frame_header = [0u8; FRAME_HEADER_BYTES as usize];
    reader.read_exact(&mut frame_header).map_err(FrameError::Io)?;
    if frame_header.iter().all(|&byte| byte == 0) {
        return Err(FrameError::Bad(CorruptReason::ZeroFilled));
    }
    let (field, stored) = parse_frame_header(&frame_header);
    let frame = Frame::from_length_field(field);
    let len = frame.len;
    let payload_left = bytes_left - FRAME_HEADER_BYTES;
    if u64::from(len) > payload_left {
        return Err(FrameError::Bad(CorruptReason::TruncatedPayload { len, bytes_left: payload_left }));
    }
    let over_limit = frame.over_limit(record_bytes_max);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame_header[..4]);
    match payload {
        Some(payload) if !over_limit && frame.kind == FrameKind::Record => {
            payload.clear();
            payload.resize(len as usize, 0);
            reader.read_exact(payload).map_err(FrameError::Io)?;
            hasher.update(payload);
        }
        _ => {
            // Stream the payload through the hasher: an over-limit length is bounded by
            // the file size here, and reading it tells a torn length from a real record
            // written with a larger limit (never allocated, even if a payload was asked).
            // Padding is streamed too: it is not a record and may be large.
            let mut remaining = u64::from(len);
            while remaining > 0 {
                let available = reader.fill_buf().map_err(FrameError::Io)?;
                if available.is_empty() {
                    return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                let take = available.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                hasher.update(&available[..take]);
                reader.consume(take);
                remaining -= take as u64;
            }
        }
    }
    let computed = hasher.finalize();
    match (computed == stored, over_limit) {
        (true, false) => Ok(frame),
        (true, true) => Err(FrameError::Bad(CorruptReason::ValidRecordOverLimit { len, record_bytes_max })),
        (false, true) => Err(FrameError::Bad(CorruptReason::LengthOverLimit { len, record_bytes_max })),
        (false, false) => Err(FrameError::Bad(CorruptReason::ChecksumMismatch { stored, computed })),
    }
}

/// What the verification of one segment found.
struct SegmentScan {
    /// End of the last good record.
    valid_end: u64,
    records: u64,
    /// Offset and reason of a bad record no valid record follows, if any.
    damage: Option<(u64, CorruptReason)>,
    /// Bad records followed by valid ones.
    damaged: Vec<DamagedRange>,
}

/// Which segment a scan reads and what it knows of it.
#[derive(Clone, Copy)]
struct SegmentPlace {
    segment: u64,
    file_bytes: u64,
    is_last: bool,
}

/// Verifies every frame of a segment whose header is valid; pushes each good record
/// into `sink` if given (otherwise payloads are only checksummed, never allocated).
/// Padding frames are verified like records, then passed over.
fn scan_records(
    file: &File,
    path: &Path,
    place: SegmentPlace,
    record_bytes_max: u32,
    mut sink: Option<&mut Vec<PositionedRecord>>,
) -> Result<SegmentScan, SegmentError> {
    let SegmentPlace { segment, file_bytes, is_last } = place;
    debug_assert!(file_bytes >= SEGMENT_HEADER_BYTES);
    let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, file);
    reader.seek(SeekFrom::Start(SEGMENT_HEADER_BYTES)).map_err(io_error(
        "seek in",
        path,
        Some(SEGMENT_HEADER_BYTES),
    ))?;
    let mut scan =
        SegmentScan { valid_end: SEGMENT_HEADER_BYTES, records: 0, damage: None, damaged: Vec::new() };
    while scan.valid_end < file_bytes {
        let mut payload = Vec::new();
        let want_payload = sink.is_some().then_some(&mut payload);
        match read_frame(&mut reader, file_bytes - scan.valid_end, record_bytes_max, want_payload) {
            Ok(frame) => {
                if frame.kind == FrameKind::Record {
                    if let Some(sink) = sink.as_deref_mut() {
                        sink.push((LogPosition { segment, offset: scan.valid_end }, payload));
                    }
                    scan.records += 1;
                }
                scan.valid_end += frame.bytes();
            }
            Err(FrameError::Bad(reason)) => {
                let at = scan.valid_end;
                // A zero-filled frame in the last segment is space a crash left
                // unwritten: whatever follows it was never acknowledged.
                let crash_shaped = is_last && reason == CorruptReason::ZeroFilled;
                let over_limit = matches!(reason, CorruptReason::ValidRecordOverLimit { .. });
                let resync = if crash_shaped || over_limit {
                    None
                } else {
                    find_resync(file, path, at, file_bytes, record_bytes_max)?
                };
                match resync {
                    Some(next) => {
                        scan.damaged.push(DamagedRange { segment, start: at, end: next, reason });
                        scan.valid_end = next;
                        reader.seek(SeekFrom::Start(next)).map_err(io_error("seek in", path, Some(next)))?;
                    }
                    // Damage at the end of a sealed segment: no torn write can be there
                    // (it was durable before the next segment was made).
                    None if !is_last && !over_limit => {
                        scan.damaged.push(DamagedRange { segment, start: at, end: file_bytes, reason });
                        scan.valid_end = file_bytes;
                    }
                    None => {
                        scan.damage = Some((at, reason));
                        break;
                    }
                }
            }
            Err(FrameError::Io(source)) => return Err(io_error("read", path, Some(scan.valid_end))(source)),
        }
    }
    debug_assert!(scan.valid_end <= file_bytes);
    Ok(scan)
}

/// The offset of the next valid frame after a bad one at `from`, if valid frames follow:
/// first where the bad frame's own length says it ends (a flipped bit in a payload or a
/// checksum), then at every later offset (a flipped length). A candidate counts when
/// [`RESYNC_CONFIRM_FRAMES`] valid frames follow in a row, or fewer ending exactly at
/// the end of the segment; a frame that ends exactly at the end of the segment alone
/// does not (a torn last record looks the same). Padding frames count as valid frames.
/// Lengths are walked before any checksum is computed, so false candidates cost a few
/// header reads each.
fn find_resync(
    file: &File,
    path: &Path,
    from: u64,
    file_bytes: u64,
    record_bytes_max: u32,
) -> Result<Option<u64>, SegmentError> {
    let left = file_bytes - from;
    if left > RESYNC_READ_BYTES_MAX {
        return Ok(None);
    }
    let mut bytes = vec![0u8; left as usize];
    file.read_exact_at(&mut bytes, from).map_err(io_error("read", path, Some(from)))?;
    let header_at = |at: usize| -> Option<(u32, [u8; FRAME_HEADER_BYTES as usize])> {
        let header: [u8; FRAME_HEADER_BYTES as usize] =
            bytes.get(at..at + FRAME_HEADER_BYTES as usize)?.try_into().ok()?;
        let frame = Frame::from_length_field(parse_frame_header(&header).0);
        (header.iter().any(|&b| b != 0) && !frame.over_limit(record_bytes_max)).then_some((frame.len, header))
    };
    // The frames from `at`, by their lengths only: Some(ends) when they confirm.
    let walk = |at: usize| -> Option<Vec<usize>> {
        let mut starts = Vec::with_capacity(RESYNC_CONFIRM_FRAMES);
        let mut position = at;
        while starts.len() < RESYNC_CONFIRM_FRAMES && position < bytes.len() {
            let (len, _) = header_at(position)?;
            let end = position.checked_add(FRAME_HEADER_BYTES as usize + len as usize)?;
            if end > bytes.len() {
                return None;
            }
            starts.push(position);
            position = end;
        }
        (starts.len() == RESYNC_CONFIRM_FRAMES || position == bytes.len()).then_some(starts)
    };
    let checks = |starts: &[usize]| {
        starts.iter().all(|&at| {
            let Some((len, header)) = header_at(at) else { return false };
            let payload =
                &bytes[at + FRAME_HEADER_BYTES as usize..at + FRAME_HEADER_BYTES as usize + len as usize];
            frame_checksum(&header, payload) == parse_frame_header(&header).1
        })
    };
    let confirmed = |at: usize| walk(at).filter(|starts| !starts.is_empty() && checks(starts)).is_some();
    if let Some((len, _)) = header_at(0) {
        let next = FRAME_HEADER_BYTES as usize + len as usize;
        if next < bytes.len() && confirmed(next) {
            return Ok(Some(from + next as u64));
        }
    }
    Ok((1..bytes.len()).find(|&at| confirmed(at)).map(|at| from + at as u64))
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016x}.{SEGMENT_FILE_EXTENSION}"))
}

/// Where a rewrite writes the new copy of a segment before renaming it over the segment.
fn rewrite_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016x}.{SEGMENT_FILE_EXTENSION}.{REWRITE_FILE_EXTENSION}"))
}

/// Removes the `*.tlog.rewrite` files in `dir`, left by rewrites that stopped before
/// their rename (the segments are intact), and makes the removal durable.
fn remove_leftover_rewrites(dir: &Path) -> Result<(), SegmentError> {
    let suffix = format!(".{SEGMENT_FILE_EXTENSION}.{REWRITE_FILE_EXTENSION}");
    let mut removed = false;
    let entries = fs::read_dir(dir).map_err(io_error("list directory", dir, None))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list directory", dir, None))?;
        let path = entry.path();
        if !entry.file_name().to_str().is_some_and(|name| name.ends_with(&suffix)) {
            continue;
        }
        if !entry.file_type().map_err(io_error("read metadata of", &path, None))?.is_file() {
            continue;
        }
        fs::remove_file(&path).map_err(io_error("remove", &path, None))?;
        tracing::warn!(path = %path.display(), "removed the copy of a segment rewrite that did not finish");
        removed = true;
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Lists the segment numbers in `dir`, sorted, checking that they are 1, 2, 3, ...
fn list_segments(dir: &Path) -> Result<Vec<u64>, SegmentError> {
    let mut numbers = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_error("list directory", dir, None))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list directory", dir, None))?;
        let path = entry.path();
        if path.extension().and_then(|extension| extension.to_str()) != Some(SEGMENT_FILE_EXTENSION) {
            continue;
        }
        let unexpected = |reason| SegmentError::UnexpectedSegmentFile { path: path.clone(), reason };
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .ok_or_else(|| unexpected("the name is not 16 lowercase hex digits"))?;
        if stem.len() != 16 || !stem.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(unexpected("the name is not 16 lowercase hex digits"));
        }
        let number = u64::from_str_radix(stem, 16)
            .ok()
            .filter(|&number| number > 0)
            .ok_or_else(|| unexpected("segment numbers start at 1"))?;
        let file_type = entry.file_type().map_err(io_error("read metadata of", &path, None))?;
        if !file_type.is_file() {
            return Err(unexpected("not a regular file"));
        }
        numbers.push(number);
    }
    numbers.sort_unstable();
    for (index, &number) in numbers.iter().enumerate() {
        let expected = index as u64 + 1;
        if number != expected {
            return Err(SegmentError::MissingSegment { dir: dir.to_path_buf(), missing: expected });
        }
    }
    Ok(numbers)
}

fn create_segment_file(path: &Path) -> Result<File, SegmentError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("create", path, None))
}

/// Takes the exclusive lock that keeps two `SegmentLog`s (in this or another process)
/// from appending to the same directory.
fn lock_dir(dir: &Path) -> Result<File, SegmentError> {
    let lock_path = dir.join(LOCK_FILE_NAME);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_error("open lock file", &lock_path, None))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(SegmentError::Locked { dir: dir.to_path_buf(), lock_path }),
        Err(fs::TryLockError::Error(source)) => Err(io_error("lock", &lock_path, None)(source)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SegmentError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error("sync directory", dir, None))
}

/// Creates `dir` (and missing parents) and makes each new directory entry durable.
fn create_dir_durably(dir: &Path) -> Result<(), SegmentError> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path);
        cursor = path.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_error("create directory", dir, None))?;
    for path in missing.iter().rev() {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Copies bytes `offset..file_bytes` of a segment into the quarantine directory and
/// makes the copy durable before the caller cuts them from the segment. Re-running it
/// after a crash overwrites the copy with the same bytes.
fn quarantine(
    dir: &Path,
    segment_path: &Path,
    segment: u64,
    offset: u64,
    file_bytes: u64,
) -> Result<PathBuf, SegmentError> {
    quarantine_bytes(dir, segment_path, segment, offset, file_bytes, "torn")
}

/// Copies a damaged range into the quarantine directory (once: a later open finds the
/// copy there), leaving the segment as it is.
fn quarantine_copy(
    dir: &Path,
    segment_path: &Path,
    range: &DamagedRange,
    kind: &str,
) -> Result<PathBuf, SegmentError> {
    let target = dir.join(QUARANTINE_DIR_NAME).join(format!("{:016x}-{}.{kind}", range.segment, range.start));
    if fs::metadata(&target).is_ok_and(|m| m.len() == range.bytes()) {
        return Ok(target);
    }
    quarantine_bytes(dir, segment_path, range.segment, range.start, range.end, kind)
}

/// Copies bytes `offset..file_bytes` of a segment to `quarantine/<segment>-<offset>.<kind>`.
fn quarantine_bytes(
    dir: &Path,
    segment_path: &Path,
    segment: u64,
    offset: u64,
    file_bytes: u64,
    kind: &str,
) -> Result<PathBuf, SegmentError> {
    let quarantine_dir = dir.join(QUARANTINE_DIR_NAME);
    if !quarantine_dir.is_dir() {
        fs::create_dir(&quarantine_dir).map_err(io_error("create directory", &quarantine_dir, None))?;
        sync_dir(dir)?;
    }
    let target = quarantine_dir.join(format!("{segment:016x}-{offset}.{kind}"));
    let mut source = File::open(segment_path).map_err(io_error("open", segment_path, None))?;
    source.seek(SeekFrom::Start(offset)).map_err(io_error("seek in", segment_path, Some(offset)))?;
    let mut copy = File::create(&target).map_err(io_error("create", &target, None))?;
    let copied = io::copy(&mut source.take(file_bytes - offset), &mut copy).map_err(io_error(
        "copy torn tail of",
        segment_path,
        Some(offset),
    ))?;
    if copied != file_bytes - offset {
        return Err(io_error("copy torn tail of", segment_path, Some(offset))(
            io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    copy.flush().map_err(io_error("write", &target, None))?;
    copy.sync_all().map_err(io_error("sync", &target, None))?;
    sync_dir(&quarantine_dir)?;
    Ok(target)
}

/// Failure injection for the tests of the append error paths; a no-op outside tests.
#[derive(Debug, Default)]
struct FaultInjector {
    #[cfg(test)]
    plan: Mutex<FaultPlan>,
}

#[cfg(test)]
#[derive(Debug, Default)]
struct FaultPlan {
    /// Writes to let through before one fails half way with "no space left".
    writes_before_failure: Option<u32>,
    /// fsyncs to let through before one fails.
    syncs_before_failure: Option<u32>,
}

impl FaultInjector {
    #[cfg(not(test))]
    fn write_fault(&self) -> Option<io::Error> {
        None
    }

    #[cfg(not(test))]
    fn sync_fault(&self) -> Option<io::Error> {
        None
    }

    #[cfg(test)]
    fn write_fault(&self) -> Option<io::Error> {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        Self::countdown(&mut plan.writes_before_failure)
            .then(|| io::Error::new(io::ErrorKind::StorageFull, "injected: no space left on device"))
    }

    #[cfg(test)]
    fn sync_fault(&self) -> Option<io::Error> {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        Self::countdown(&mut plan.syncs_before_failure).then(|| io::Error::other("injected: fsync failed"))
    }

    #[cfg(test)]
    fn countdown(counter: &mut Option<u32>) -> bool {
        match counter {
            Some(0) => {
                *counter = None;
                true
            }
            Some(left) => {
                *left -= 1;
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const LOG_ID: LogId = LogId([7; 16]);
    const OTHER_LOG_ID: LogId = LogId([9; 16]);

    /// Small limits so that a few records span several segments.
    fn small_limits() -> SegmentLimits {
        SegmentLimits { record_bytes_max: 100, segment_bytes_max: 300 }
    }

    fn record(index: usize) -> Vec<u8> {
        (0..index % 101).map(|byte| (index * 31 + byte) as u8).collect()
    }

    fn open(dir: &Path) -> Result<(SegmentLog, OpenReport), SegmentError> {
        SegmentLog::open(dir, small_limits(), LOG_ID)
    }

    fn read_all(log: &SegmentLog) -> Vec<(RecordLocation, Vec<u8>)> {
        log.iter_from(log.start()).collect::<Result<_, _>>().unwrap()
    }

    /// Appends `count` records in batches of 1, 2, 3, ... 7 records.
    fn append_records(log: &mut SegmentLog, count: usize) -> Vec<RecordLocation> {
        let records: Vec<Vec<u8>> = (0..count).map(record).collect();
        let mut locations = Vec::new();
        let mut batch_len = 1;
        let mut next = 0;
        while next < count {
            let end = (next + batch_len).min(count);
            let batch: Vec<&[u8]> = records[next..end].iter().map(Vec::as_slice).collect();
            locations.extend(log.append_batch(&batch).unwrap());
            next = end;
            batch_len = batch_len % 7 + 1;
        }
        locations
    }

    /// Every file under `dir` (relative path -> bytes), to check that nothing changed.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(dir).unwrap().to_path_buf();
                    files.insert(relative, fs::read(&path).unwrap());
                }
            }
        }
        files
    }

    fn segment_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = snapshot(dir);
        files.retain(|path, _| path.extension().is_some_and(|extension| extension == "tlog"));
        files
    }

    fn write_files(dir: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) {
        for (path, bytes) in files {
            fs::write(dir.join(path), bytes).unwrap();
        }
    }

    fn flip_byte(path: &Path, offset: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[offset as usize] ^= 0x55;
        fs::write(path, bytes).unwrap();
    }

    fn append_to_file(path: &Path, extra: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(extra).unwrap();
    }

    /// A log with `count` records, closed; returns their locations.
    fn closed_log(dir: &Path, count: usize) -> Vec<RecordLocation> {
        let (mut log, _) = open(dir).unwrap();
        append_records(&mut log, count)
    }

    #[test]
    fn segment_log_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SegmentLog>();
        assert_send_sync::<SegmentError>();
    }

    #[test]
    fn format_test_vector() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, report) = open(dir.path()).unwrap();
        assert_eq!(report, OpenReport { segments: 1, records: 0, torn_tail: None, damaged: Vec::new() });
        let location = log.append(b"abc").unwrap();
        assert_eq!(location, RecordLocation { segment: 1, offset: 32, len: 3 });
        let mut expected = Vec::new();
        expected.extend_from_slice(b"TSSEG\0\0\x01");
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[3, 0, 0, 0]);
        // zlib.crc32(b"\x03\x00\x00\x00abc") == 0x66e15d33
        expected.extend_from_slice(&0x66e1_5d33_u32.to_le_bytes());
        expected.extend_from_slice(b"abc");
        let path = dir.path().join("0000000000000001.tlog");
        assert_eq!(fs::read(path).unwrap(), expected);
        assert_eq!(log.total_bytes(), expected.len() as u64);
        // A zero-filled frame header can never pass for an empty record.
        assert_ne!(crc32fast::hash(&[0; 4]), 0);
    }

    #[test]
    fn round_trip_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        assert_eq!(log.end(), log.start());
        let locations = append_records(&mut log, 300);
        assert!(log.segment_count() > 10, "{} segments", log.segment_count());
        assert!(locations.windows(2).all(|pair| pair[0].end() <= pair[1].start()));
        for (index, location) in locations.iter().enumerate() {
            assert_eq!(log.read(*location).unwrap(), record(index), "record {index}");
        }
        let end = log.end();
        let total_bytes = log.total_bytes();
        assert_eq!(locations.last().unwrap().end(), end);
        drop(log);

        let files = segment_files(dir.path());
        assert!(files.values().all(|bytes| bytes.len() as u64 <= small_limits().segment_bytes_max));
        assert_eq!(files.values().map(|bytes| bytes.len() as u64).sum::<u64>(), total_bytes);

        let (log, report) = open(dir.path()).unwrap();
        assert_eq!(report.records, 300);
        assert_eq!(report.segments, files.len());
        assert_eq!(report.torn_tail, None);
        assert_eq!((log.end(), log.total_bytes(), log.log_id()), (end, total_bytes, LOG_ID));
        let all = read_all(&log);
        let expected: Vec<_> =
            locations.iter().enumerate().map(|(index, location)| (*location, record(index))).collect();
        assert_eq!(all, expected);
        for (index, location) in locations.iter().enumerate().rev() {
            assert_eq!(log.read(*location).unwrap(), record(index), "record {index}");
        }
    }

    #[test]
    fn empty_batch_and_empty_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        assert_eq!(log.append_batch(&[]).unwrap(), Vec::new());
        assert_eq!(log.end(), log.start());
        let location = log.append(b"").unwrap();
        assert_eq!(location.len, 0);
        assert_eq!(log.read(location).unwrap(), Vec::<u8>::new());
        drop(log);
        let (log, report) = open(dir.path()).unwrap();
        assert_eq!(report.records, 1);
        assert_eq!(read_all(&log), vec![(location, Vec::new())]);
    }

    #[test]
    fn iter_from_middle_and_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 60);
        for start in [0, 1, 17, 30, 59] {
            let suffix: Vec<_> = log.iter_from(locations[start].start()).map(Result::unwrap).collect();
            assert_eq!(suffix.len(), 60 - start);
            assert_eq!(suffix[0], (locations[start], record(start)));
            assert_eq!(suffix.last().unwrap().0, locations[59]);
        }
        assert_eq!(log.iter_from(log.end()).count(), 0);

        // The end of a sealed segment is the same point as the start of the next one.
        let boundary = locations.windows(2).position(|pair| pair[0].segment != pair[1].segment).unwrap();
        let suffix: Vec<_> = log.iter_from(locations[boundary].end()).map(Result::unwrap).collect();
        assert_eq!(suffix.len(), 60 - boundary - 1);
        assert_eq!(suffix[0].0, locations[boundary + 1]);

        // A point inside a record is not a record start.
        let inside = LogPosition { segment: locations[5].segment, offset: locations[5].offset + 1 };
        let first = log.iter_from(inside).next().unwrap();
        assert!(matches!(first, Err(SegmentError::Corrupt { .. })), "{first:?}");

        for bogus in [
            LogPosition { segment: 0, offset: 32 },
            LogPosition { segment: 999, offset: 32 },
            LogPosition { segment: 1, offset: 3 },
            LogPosition { segment: log.end().segment, offset: log.end().offset + 1 },
        ] {
            let mut iter = log.iter_from(bogus);
            assert!(matches!(iter.next(), Some(Err(SegmentError::InvalidPosition { .. }))), "{bogus}");
            assert!(iter.next().is_none(), "the iterator stops after an error");
        }
    }

    #[test]
    fn torn_tail_at_every_offset_of_the_last_record() {
        let pristine_dir = tempfile::tempdir().unwrap();
        let locations = closed_log(pristine_dir.path(), 40);
        let last = *locations.last().unwrap();
        assert!(last.segment > 1 && last.len > 20, "{last:?}");
        let pristine = segment_files(pristine_dir.path());
        let last_name = PathBuf::from(format!("{:016x}.tlog", last.segment));
        let last_bytes = pristine[&last_name].clone();
        assert_eq!(last_bytes.len() as u64, last.end().offset);

        for cut in last.offset..last.end().offset {
            let dir = tempfile::tempdir().unwrap();
            write_files(dir.path(), &pristine);
            fs::write(dir.path().join(&last_name), &last_bytes[..cut as usize]).unwrap();

            let (mut log, report) = open(dir.path()).unwrap();
            assert_eq!(report.records, 39, "cut at {cut}");
            assert_eq!(log.end(), last.start(), "cut at {cut}");
            if cut == last.offset {
                assert_eq!(report.torn_tail, None);
            } else {
                let torn = report.torn_tail.unwrap();
                assert_eq!(
                    (torn.segment, torn.offset, torn.bytes_cut),
                    (last.segment, last.offset, cut - last.offset)
                );
                assert_eq!(
                    fs::read(&torn.quarantined_to).unwrap(),
                    &last_bytes[last.offset as usize..cut as usize]
                );
            }
            let records = read_all(&log);
            assert_eq!(records.len(), 39);
            assert!(records.iter().enumerate().all(|(index, (location, payload))| *location
                == locations[index]
                && *payload == record(index)));

            let new_location = log.append(b"after the crash").unwrap();
            assert_eq!(new_location.start(), last.start());
            drop(log);
            let (log, report) = open(dir.path()).unwrap();
            assert_eq!((report.records, report.torn_tail), (40, None), "cut at {cut}");
            assert_eq!(log.read(new_location).unwrap(), b"after the crash");
        }
    }

    #[test]
    fn garbage_after_the_last_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 10);
        let last = *locations.last().unwrap();
        let path = segment_path(dir.path(), last.segment);
        let garbage = b"\x05\x00\x00\x00not a frame at all";
        append_to_file(&path, garbage);

        let (log, report) = open(dir.path()).unwrap();
        let torn = report.torn_tail.unwrap();
        assert_eq!((torn.offset, torn.bytes_cut), (last.end().offset, garbage.len() as u64));
        assert!(matches!(torn.reason, CorruptReason::ChecksumMismatch { .. }), "{:?}", torn.reason);
        assert_eq!(fs::read(&torn.quarantined_to).unwrap(), garbage);
        assert_eq!(fs::metadata(&path).unwrap().len(), last.end().offset);
        assert_eq!(read_all(&log).len(), 10);
    }

    #[test]
    fn read_records_gives_what_the_log_holds_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 30);
        assert!(locations.last().unwrap().segment > 2, "the records span several segments");
        let expected: Vec<(LogPosition, Vec<u8>)> =
            read_all(&log).into_iter().map(|(at, bytes)| (at.start(), bytes)).collect();
        let before = snapshot(dir.path());
        // While the writer holds the lock, and after it is gone.
        let read = read_records(dir.path(), small_limits()).unwrap();
        assert_eq!((read.records, read.tail, read.damaged), (expected.clone(), None, Vec::new()));
        drop(log);
        assert_eq!(read_records(dir.path(), small_limits()).unwrap().records, expected);
        assert_eq!(snapshot(dir.path()), before, "a read-only read changed the directory");
    }

    #[test]
    fn read_records_reports_a_torn_tail_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 10);
        let last = *locations.last().unwrap();
        let garbage = b"\x05\x00\x00\x00half a record";
        append_to_file(&segment_path(dir.path(), last.segment), garbage);
        let before = snapshot(dir.path());
        let read = read_records(dir.path(), small_limits()).unwrap();
        assert_eq!(read.records.len(), 10);
        let tail = read.tail.expect("the torn tail is reported");
        assert_eq!(
            (tail.segment, tail.offset, tail.bytes),
            (last.segment, last.end().offset, garbage.len() as u64)
        );
        assert_eq!(snapshot(dir.path()), before, "the torn tail must stay where it is");
        assert!(!dir.path().join("quarantine").exists());
    }

    #[test]
    fn read_records_reports_damage_before_the_last_segment_and_reads_on() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 30);
        let victim = locations[1];
        flip_byte(&segment_path(dir.path(), victim.segment), victim.offset + FRAME_HEADER_BYTES);
        let before = snapshot(dir.path());
        let read = read_records(dir.path(), small_limits()).unwrap();
        assert_eq!(read.records.len(), 29);
        assert_eq!(
            read.damaged.iter().map(|d| (d.segment, d.start, d.end)).collect::<Vec<_>>(),
            vec![(victim.segment, victim.offset, victim.end().offset)]
        );
        assert_eq!(snapshot(dir.path()), before, "a read-only read changed the directory");
        // A missing segment is named, too.
        fs::remove_file(segment_path(dir.path(), 2)).unwrap();
        assert!(matches!(read_records(dir.path(), small_limits()), Err(SegmentError::MissingSegment { .. })));
    }

    #[test]
    fn zero_filled_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 10);
        let last = *locations.last().unwrap();
        append_to_file(&segment_path(dir.path(), last.segment), &[0; 4096]);
        let (log, report) = open(dir.path()).unwrap();
        let torn = report.torn_tail.unwrap();
        assert_eq!(
            (torn.offset, torn.bytes_cut, torn.reason),
            (last.end().offset, 4096, CorruptReason::ZeroFilled)
        );
        assert_eq!(log.end(), last.end());
    }

    #[test]
    fn checksum_flip_in_the_last_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 10);
        let last = *locations.last().unwrap();
        let path = segment_path(dir.path(), last.segment);
        flip_byte(&path, last.offset + FRAME_HEADER_BYTES + 3);
        let (log, report) = open(dir.path()).unwrap();
        let torn = report.torn_tail.unwrap();
        assert_eq!(
            (torn.segment, torn.offset, torn.bytes_cut),
            (last.segment, last.offset, frame_bytes(u64::from(last.len)))
        );
        assert!(matches!(torn.reason, CorruptReason::ChecksumMismatch { .. }));
        assert_eq!(log.end(), last.start());
        assert_eq!(report.records, 9);
        let quarantine_name = format!("{:016x}-{}.torn", last.segment, last.offset);
        assert_eq!(torn.quarantined_to, dir.path().join("quarantine").join(quarantine_name));
    }

    /// Every record of the log but those at `skipped` (indexes into `locations`).
    fn all_but(locations: &[RecordLocation], skipped: &[usize]) -> Vec<(RecordLocation, Vec<u8>)> {
        locations
            .iter()
            .enumerate()
            .filter(|(index, _)| !skipped.contains(index))
            .map(|(index, at)| (*at, record(index)))
            .collect()
    }

    #[test]
    fn checksum_flip_in_a_sealed_segment_keeps_every_other_record() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 30);
        let victim = locations[1];
        assert!(victim.segment < locations.last().unwrap().segment);
        let path = segment_path(dir.path(), victim.segment);
        flip_byte(&path, victim.offset + FRAME_HEADER_BYTES);
        let damaged_bytes = fs::read(&path).unwrap();
        let (log, report) = open(dir.path()).unwrap();
        assert_eq!(report.torn_tail, None);
        assert_eq!(report.records, 29);
        let range = &report.damaged[..];
        assert_eq!(range.len(), 1);
        assert_eq!((range[0].segment, range[0].start, range[0].end), (1, victim.offset, victim.end().offset));
        assert!(matches!(range[0].reason, CorruptReason::ChecksumMismatch { .. }));
        assert_eq!(read_all(&log), all_but(&locations, &[1]));
        assert_eq!(fs::read(&path).unwrap(), damaged_bytes, "the damaged segment is left as it was");
        let copy = dir.path().join("quarantine").join(format!("{:016x}-{}.damaged", 1, victim.offset));
        assert_eq!(
            fs::read(copy).unwrap(),
            damaged_bytes[victim.offset as usize..victim.end().offset as usize]
        );
    }

    #[test]
    fn truncated_sealed_segment_is_damage_and_later_segments_stay() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 30);
        let path = segment_path(dir.path(), 1);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (log, report) = open(dir.path()).unwrap();
        let last_of_first = locations.iter().rposition(|l| l.segment == 1).unwrap();
        assert_eq!(report.damaged.len(), 1);
        assert_eq!(read_all(&log), all_but(&locations, &[last_of_first]));
    }

    #[test]
    fn a_flipped_bit_in_the_middle_of_the_last_segment_is_damage_not_a_torn_tail() {
        // In the payload, in the checksum and in the length of a record followed by
        // valid ones: each is skipped alone, the records after it are kept.
        for (name, offset_in_frame) in [("payload", FRAME_HEADER_BYTES + 2), ("checksum", 5), ("length", 1)] {
            let dir = tempfile::tempdir().unwrap();
            let open = |dir: &Path| SegmentLog::open(dir, SegmentLimits::default(), LOG_ID);
            let (mut log, _) = open(dir.path()).unwrap();
            let locations = append_records(&mut log, 40);
            drop(log);
            assert_eq!(locations.last().unwrap().segment, 1, "one segment, the last");
            let victim_index = 20;
            let victim = locations[victim_index];
            assert!(victim.len > 3);
            flip_byte(&segment_path(dir.path(), victim.segment), victim.offset + offset_in_frame);
            let (mut log, report) = open(dir.path()).unwrap();
            assert_eq!(report.torn_tail, None, "{name}");
            assert_eq!(report.damaged.len(), 1, "{name}");
            assert_eq!(report.damaged[0].start, victim.offset, "{name}");
            assert_eq!(read_all(&log), all_but(&locations, &[victim_index]), "{name}");
            // The log goes on: appends land after the end, and a reopen finds the same.
            let more = log.append(b"after the damage").unwrap();
            drop(log);
            let (log, again) = open(dir.path()).unwrap();
            let span = |d: &DamagedRange| (d.segment, d.start, d.end);
            assert_eq!(
                again.damaged.iter().map(span).collect::<Vec<_>>(),
                vec![span(&report.damaged[0])],
                "{name}"
            );
            assert_eq!(read_all(&log).last().unwrap(), &(more, b"after the damage".to_vec()), "{name}");
        }
    }

    #[test]
    fn zero_filled_frames_before_valid_ones_in_the_last_segment_are_a_crash() {
        // An unfinished batch whose first page never reached the disk: the valid-looking
        // frames after it were never acknowledged, the tail is cut as before.
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 10);
        let last = *locations.last().unwrap();
        let path = segment_path(dir.path(), last.segment);
        let mut tail = vec![0u8; 64];
        encode_frame(&mut tail, b"never acknowledged");
        append_to_file(&path, &tail);
        let (log, report) = open(dir.path()).unwrap();
        assert!(report.damaged.is_empty());
        assert_eq!(report.torn_tail.unwrap().reason, CorruptReason::ZeroFilled);
        assert_eq!(log.end(), last.end());
    }

    #[test]
    fn segment_of_another_log_is_rejected() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        closed_log(ours.path(), 30);
        let (mut other, _) = SegmentLog::open(theirs.path(), small_limits(), OTHER_LOG_ID).unwrap();
        append_records(&mut other, 30);
        drop(other);
        fs::copy(segment_path(theirs.path(), 3), segment_path(ours.path(), 3)).unwrap();
        let before = snapshot(ours.path());
        let error = open(ours.path()).unwrap_err();
        assert!(
            matches!(error, SegmentError::ForeignSegment { expected: LOG_ID, found: OTHER_LOG_ID, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("segment")
                && error.to_string().contains("0000000000000003.tlog belongs to another log"),
            "{error}"
        );
        assert_eq!(snapshot(ours.path()), before);
    }

    #[test]
    fn bad_segment_headers_are_typed_errors() {
        type Check = fn(&SegmentError) -> bool;
        let cases: [(u64, u8, Check); 3] = [
            (0, b'X', |error| matches!(error, SegmentError::BadMagic { .. })),
            (7, 2, |error| matches!(error, SegmentError::UnsupportedVersion { found: 2, .. })),
            (24, 5, |error| matches!(error, SegmentError::SegmentNumberMismatch { found: 5, .. })),
        ];
        for (offset, value, check) in cases {
            for segment in [1, 2] {
                let dir = tempfile::tempdir().unwrap();
                closed_log(dir.path(), 20);
                let path = segment_path(dir.path(), segment);
                let mut bytes = fs::read(&path).unwrap();
                bytes[offset as usize] = value;
                fs::write(&path, bytes).unwrap();
                let before = snapshot(dir.path());
                let error = open(dir.path()).unwrap_err();
                assert!(check(&error), "byte {offset} of segment {segment}: {error:?}");
                assert_eq!(snapshot(dir.path()), before);
            }
        }
    }

    #[test]
    fn missing_or_misnamed_segments_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        closed_log(dir.path(), 30);
        fs::remove_file(segment_path(dir.path(), 2)).unwrap();
        assert!(matches!(open(dir.path()), Err(SegmentError::MissingSegment { missing: 2, .. })));
        fs::remove_file(segment_path(dir.path(), 1)).unwrap();
        assert!(matches!(open(dir.path()), Err(SegmentError::MissingSegment { missing: 1, .. })));

        for name in ["notes.tlog", "000000000000000A.tlog", "0000000000000000.tlog"] {
            let dir = tempfile::tempdir().unwrap();
            closed_log(dir.path(), 3);
            fs::write(dir.path().join(name), b"").unwrap();
            let error = open(dir.path()).unwrap_err();
            assert!(matches!(error, SegmentError::UnexpectedSegmentFile { .. }), "{name}: {error:?}");
        }
    }

    #[test]
    fn torn_segment_header_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 30);
        let last_segment = locations.last().unwrap().segment;
        let new_segment = last_segment + 1;
        let header = encode_segment_header(LOG_ID, new_segment);
        for torn_bytes in [Vec::new(), header[..10].to_vec(), vec![0; 100]] {
            fs::write(segment_path(dir.path(), new_segment), &torn_bytes).unwrap();
            let (log, report) = open(dir.path()).unwrap();
            let torn = report.torn_tail.unwrap();
            assert_eq!(
                (torn.segment, torn.offset, torn.bytes_cut),
                (new_segment, 0, torn_bytes.len() as u64)
            );
            assert_eq!(fs::read(&torn.quarantined_to).unwrap(), torn_bytes);
            assert!(!segment_path(dir.path(), new_segment).exists());
            assert_eq!((report.segments as u64, report.records), (last_segment, 30));
            assert_eq!(log.end(), locations.last().unwrap().end());
        }
        let (mut log, _) = open(dir.path()).unwrap();
        append_records(&mut log, 20);
        assert!(log.segment_count() as u64 >= new_segment);
        drop(log);
        assert_eq!(open(dir.path()).unwrap().1.records, 50);

        // A zero-filled header in front of data is not a torn creation: never repaired.
        let mut zeroed = vec![0; 40];
        zeroed.extend_from_slice(b"records?");
        fs::write(segment_path(dir.path(), new_segment + 1), &zeroed).unwrap();
        let before = snapshot(dir.path());
        let error = open(dir.path()).unwrap_err();
        assert!(
            matches!(
                error,
                SegmentError::Corrupt {
                    offset: 0,
                    reason: CorruptReason::TornSegmentHeader { file_bytes: 48 },
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(snapshot(dir.path()), before);
        fs::remove_file(segment_path(dir.path(), new_segment + 1)).unwrap();

        // A torn header in a sealed segment is corruption.
        fs::write(segment_path(dir.path(), 2), [0; 10]).unwrap();
        assert!(matches!(open(dir.path()), Err(SegmentError::Corrupt { segment: 2, offset: 0, .. })));
    }

    #[test]
    fn torn_header_of_the_only_segment_starts_a_new_log() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(segment_path(dir.path(), 1), b"TSSEG").unwrap();
        let (mut log, report) = SegmentLog::open(dir.path(), small_limits(), OTHER_LOG_ID).unwrap();
        assert_eq!((report.segments, report.records), (1, 0));
        assert_eq!(report.torn_tail.unwrap().bytes_cut, 5);
        assert_eq!(log.log_id(), OTHER_LOG_ID);
        log.append(b"first").unwrap();
        drop(log);
        // An existing log keeps its id whatever `new_log_id` says.
        let (log, report) = open(dir.path()).unwrap();
        assert_eq!((log.log_id(), report.records), (OTHER_LOG_ID, 1));
    }

    #[test]
    fn opens_a_new_log_in_a_missing_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b").join("log");
        let (mut log, report) = open(&dir).unwrap();
        assert_eq!((report.segments, report.records, report.torn_tail), (1, 0, None));
        log.append(b"x").unwrap();
        drop(log);
        assert_eq!(open(&dir).unwrap().1.records, 1);
    }

    #[test]
    fn oversized_record_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        append_records(&mut log, 5);
        let (end, total_bytes) = (log.end(), log.total_bytes());
        let before = segment_files(dir.path());
        let big = vec![1u8; 101];
        let error = log.append_batch(&[b"fine", &big, b"fine"]).unwrap_err();
        assert!(
            matches!(error, SegmentError::RecordTooLarge { index: 1, len: 101, record_bytes_max: 100 }),
            "{error:?}"
        );
        assert!(matches!(log.append(&big), Err(SegmentError::RecordTooLarge { index: 0, .. })));
        assert_eq!((log.end(), log.total_bytes()), (end, total_bytes));
        assert_eq!(segment_files(dir.path()), before);
        let location = log.append(&[2u8; 100]).unwrap();
        assert_eq!(log.read(location).unwrap(), vec![2u8; 100]);
    }

    #[test]
    fn reads_at_bogus_locations_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 30);
        let sealed = locations[3];
        let tail = *locations.last().unwrap();
        let invalid = [
            RecordLocation { segment: 0, ..sealed },
            RecordLocation { segment: 999, ..sealed },
            RecordLocation { offset: 0, ..sealed },
            RecordLocation { len: sealed.len + 1, ..sealed },
            RecordLocation { len: u32::MAX, ..sealed },
            RecordLocation { offset: u64::MAX - 4, ..tail },
            RecordLocation { offset: tail.end().offset, len: 0, ..tail },
            RecordLocation { len: tail.len + 1, ..tail },
        ];
        for location in invalid {
            let error = log.read(location).unwrap_err();
            assert!(matches!(error, SegmentError::InvalidPosition { .. }), "{location:?}: {error:?}");
        }
        // Inside the log but not at a record start: never a panic, always an error.
        for location in [
            RecordLocation { offset: sealed.offset + 1, len: 0, ..sealed },
            RecordLocation { offset: tail.offset + 2, len: 1, ..tail },
        ] {
            assert!(log.read(location).is_err(), "{location:?}");
        }
        assert_eq!(log.read(sealed).unwrap(), record(3));
    }

    #[test]
    fn write_failure_rolls_back_and_the_log_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 7);
        let batch_records: Vec<Vec<u8>> = (80..100).map(record).collect();
        let batch: Vec<&[u8]> = batch_records.iter().map(Vec::as_slice).collect();
        // Fail the first chunk, then a chunk in a new segment after one chunk was durable.
        for writes_before_failure in [0, 1, 2] {
            let (end, total_bytes, segments) = (log.end(), log.total_bytes(), log.segment_count());
            let before = segment_files(dir.path());
            log.faults.plan.lock().unwrap().writes_before_failure = Some(writes_before_failure);
            let error = log.append_batch(&batch).unwrap_err();
            match &error {
                SegmentError::Io { source, offset: Some(_), .. } => {
                    assert_eq!(source.kind(), io::ErrorKind::StorageFull)
                }
                other => panic!("{other:?}"),
            }
            assert_eq!((log.end(), log.total_bytes(), log.segment_count()), (end, total_bytes, segments));
            assert_eq!(segment_files(dir.path()), before, "after {writes_before_failure} writes");
            assert_eq!(read_all(&log).len(), 7);
        }
        let batch_locations = log.append_batch(&batch).unwrap();
        assert!(batch_locations.last().unwrap().segment > batch_locations[0].segment);
        for (location, payload) in batch_locations.iter().zip(&batch_records) {
            assert_eq!(&log.read(*location).unwrap(), payload);
        }
        drop(log);
        let (log, report) = open(dir.path()).unwrap();
        assert_eq!((report.records, report.torn_tail), (27, None));
        let all = read_all(&log);
        assert_eq!(all[..7].iter().map(|(location, _)| *location).collect::<Vec<_>>(), locations);
        assert_eq!(all[7..].iter().map(|(location, _)| *location).collect::<Vec<_>>(), batch_locations);
    }

    #[test]
    fn sync_failure_poisons_until_reopen() {
        for syncs_before_failure in [0, 1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = open(dir.path()).unwrap();
            let locations = append_records(&mut log, 7);
            log.faults.plan.lock().unwrap().syncs_before_failure = Some(syncs_before_failure);
            let batch_records: Vec<Vec<u8>> = (80..100).map(record).collect();
            let batch: Vec<&[u8]> = batch_records.iter().map(Vec::as_slice).collect();
            let error = log.append_batch(&batch).unwrap_err();
            assert!(matches!(error, SegmentError::SyncFailed { .. }), "{error:?}");
            assert!(matches!(log.append(b"x"), Err(SegmentError::Poisoned)));
            assert!(matches!(log.read(locations[0]), Err(SegmentError::Poisoned)));
            assert!(matches!(log.iter_from(log.start()).next(), Some(Err(SegmentError::Poisoned))));
            drop(log);

            // The reopened log trusts only what it finds on disk: the old records and
            // possibly a prefix of the failed batch.
            let (mut log, _) = open(dir.path()).unwrap();
            let all = read_all(&log);
            assert!(all.len() >= 7 && all.len() <= 27);
            assert!(all
                .iter()
                .skip(7)
                .zip(&batch_records)
                .all(|((_, payload), expected)| payload == expected));
            log.append(b"after reopen").unwrap();
        }
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = open(dir.path()).unwrap();
        assert!(matches!(open(dir.path()), Err(SegmentError::Locked { .. })));
        drop(log);
        open(dir.path()).unwrap();
    }

    #[test]
    fn valid_record_above_a_lowered_limit_is_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        log.append(&[1; 10]).unwrap();
        log.append(&[2; 90]).unwrap();
        drop(log);
        let before = snapshot(dir.path());
        let lowered = SegmentLimits { record_bytes_max: 50, segment_bytes_max: 300 };
        let error = SegmentLog::open(dir.path(), lowered, LOG_ID).unwrap_err();
        assert!(
            matches!(
                error,
                SegmentError::Corrupt {
                    reason: CorruptReason::ValidRecordOverLimit { len: 90, record_bytes_max: 50 },
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn invalid_limits_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for limits in [
            SegmentLimits { record_bytes_max: 100, segment_bytes_max: 139 },
            SegmentLimits {
                record_bytes_max: RECORD_BYTES_MAX_LIMIT + 1,
                segment_bytes_max: SEGMENT_BYTES_MAX_LIMIT,
            },
            SegmentLimits { record_bytes_max: 100, segment_bytes_max: SEGMENT_BYTES_MAX_LIMIT + 1 },
        ] {
            assert!(matches!(
                SegmentLog::open(dir.path(), limits, LOG_ID),
                Err(SegmentError::InvalidLimits { .. })
            ));
        }
        SegmentLimits::default().validate().unwrap();
        SegmentLimits { record_bytes_max: 100, segment_bytes_max: 140 }.validate().unwrap();
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing created");
    }

    /// How many times `needle` appears in the files under `dir`.
    fn occurrences(dir: &Path, needle: &[u8]) -> usize {
        snapshot(dir).values().map(|bytes| bytes.windows(needle.len()).filter(|w| *w == needle).count()).sum()
    }

    fn in_any_file(dir: &Path, needle: &[u8]) -> bool {
        occurrences(dir, needle) > 0
    }

    fn rewrite_copies(dir: &Path) -> Vec<PathBuf> {
        snapshot(dir).into_keys().filter(|path| path.to_string_lossy().ends_with(".tlog.rewrite")).collect()
    }

    /// `locations` and their `record(index)` payloads, with `replaced` (index, new
    /// location, new payload) in place of the old ones.
    fn with_replaced(
        locations: &[RecordLocation],
        replaced: &[(usize, RecordLocation, Vec<u8>)],
    ) -> Vec<(RecordLocation, Vec<u8>)> {
        let mut expected = all_but(locations, &[]);
        for (index, location, payload) in replaced {
            expected[*index] = (*location, payload.clone());
        }
        expected
    }

    #[test]
    fn rewrite_in_a_sealed_segment_and_in_the_tail_keeps_every_other_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 100);
        // Payloads found nowhere else in the log (`record` payloads overlap).
        let (sealed, tail) = (93, 99);
        assert!(locations[sealed].segment < locations[tail].segment);
        assert_eq!(locations[tail].segment, log.segment_count() as u64);
        // A cached read handle on the sealed segment must not outlive the rewrite.
        assert_eq!(log.read(locations[sealed]).unwrap(), record(sealed));
        let (end, total_bytes, segments) = (log.end(), log.total_bytes(), log.segment_count());
        let sizes =
            |dir: &Path| segment_files(dir).into_iter().map(|(p, b)| (p, b.len())).collect::<Vec<_>>();
        let sizes_before = sizes(dir.path());
        assert_eq!(
            (occurrences(dir.path(), &record(sealed)), occurrences(dir.path(), &record(tail))),
            (1, 1)
        );

        // 40 bytes shorter (a padding frame of 32), and exactly a frame header shorter
        // (an empty padding frame, at the end of the log).
        let new_sealed = vec![0xEE; record(sealed).len() - 40];
        let new_tail = vec![0xEE; record(tail).len() - 8];
        let replaced = log
            .rewrite_records(&[(locations[tail], new_tail.clone()), (locations[sealed], new_sealed.clone())])
            .unwrap();
        assert_eq!(
            replaced,
            vec![
                RecordLocation { len: new_tail.len() as u32, ..locations[tail] },
                RecordLocation { len: new_sealed.len() as u32, ..locations[sealed] },
            ]
        );
        assert_eq!((log.end(), log.total_bytes(), log.segment_count()), (end, total_bytes, segments));
        assert_eq!(sizes(dir.path()), sizes_before);
        assert!(!in_any_file(dir.path(), &record(sealed)), "the old payload is still in the directory");
        assert!(!in_any_file(dir.path(), &record(tail)), "the old payload is still in the directory");
        assert_eq!(rewrite_copies(dir.path()), Vec::<PathBuf>::new());

        assert_eq!(log.read(replaced[0]).unwrap(), new_tail);
        assert_eq!(log.read(replaced[1]).unwrap(), new_sealed);
        assert!(matches!(log.read(locations[sealed]), Err(SegmentError::InvalidPosition { .. })));
        let padding = RecordLocation { offset: replaced[1].end().offset, len: 32, ..replaced[1] };
        let error = log.read(padding).unwrap_err();
        assert!(error.to_string().contains("padding"), "{error}");
        let expected =
            with_replaced(&locations, &[(tail, replaced[0], new_tail), (sealed, replaced[1], new_sealed)]);
        assert_eq!(read_all(&log), expected);
        for (location, payload) in &expected {
            assert_eq!(&log.read(*location).unwrap(), payload);
        }
        drop(log);

        let (log, report) = open(dir.path()).unwrap();
        assert_eq!(
            report,
            OpenReport { segments, records: 100, torn_tail: None, damaged: Vec::new() },
            "padding is neither a record nor damage"
        );
        assert_eq!((log.end(), log.total_bytes()), (end, total_bytes));
        assert_eq!(read_all(&log), expected);
        let read = read_records(dir.path(), small_limits()).unwrap();
        let positioned: Vec<_> = expected.iter().map(|(at, payload)| (at.start(), payload.clone())).collect();
        assert_eq!((read.records, read.tail, read.damaged), (positioned, None, Vec::new()));
    }

    #[test]
    fn appends_and_rewrites_after_a_rewrite_of_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let open = |dir: &Path| SegmentLog::open(dir, SegmentLimits::default(), LOG_ID);
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 20);
        assert_eq!(log.segment_count(), 1, "one segment: the tail");
        let victim = locations[19];
        assert_eq!(occurrences(dir.path(), &record(19)), 1);
        let replaced = log.rewrite_records(&[(victim, vec![0xEE; 3])]).unwrap()[0];
        assert!(!in_any_file(dir.path(), &record(19)));
        // The writer handle is on the new file: what is appended now is still there
        // after a reopen.
        let more = log.append_batch(&[b"after", b"the rewrite"]).unwrap();
        assert_eq!(more[0].start(), victim.end());
        assert_eq!(log.read(more[1]).unwrap(), b"the rewrite");
        // A record rewritten twice (equal length the second time) and one just appended.
        let again = log.rewrite_records(&[(replaced, b"xyz".to_vec()), (more[1], b"the".to_vec())]).unwrap();
        assert_eq!(again, vec![replaced, RecordLocation { len: 3, ..more[1] }]);
        let last = log.append(b"last").unwrap();
        let end = log.end();
        assert_eq!(last.end(), end);
        drop(log);

        let (log, report) = open(dir.path()).unwrap();
        assert_eq!((report.records, report.torn_tail, report.damaged.len()), (23, None, 0));
        assert_eq!(log.end(), end);
        let mut expected = with_replaced(&locations, &[(19, replaced, b"xyz".to_vec())]);
        expected.push((more[0], b"after".to_vec()));
        expected.push((again[1], b"the".to_vec()));
        expected.push((last, b"last".to_vec()));
        assert_eq!(read_all(&log), expected);
        assert!(!in_any_file(dir.path(), b"the rewrite"));
    }

    #[test]
    fn invalid_replacements_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 60);
        // A record holding the bytes of a frame: that frame reads well (`read` checks a
        // frame, not that it is one of the log's), but it is not a record.
        let mut holder_payload = b"prefix".to_vec();
        encode_frame(&mut holder_payload, &[0xAB; 40]);
        let holder = log.append(&holder_payload).unwrap();
        let fake = RecordLocation {
            segment: holder.segment,
            offset: holder.offset + FRAME_HEADER_BYTES + 6,
            len: 40,
        };
        assert_eq!(log.read(fake).unwrap(), vec![0xAB; 40]);
        let victim = locations[50];
        let replaced = log.rewrite_records(&[(victim, vec![0xEE; 10])]).unwrap()[0];
        let padding = RecordLocation { offset: replaced.end().offset, len: 50 - 10 - 8, ..victim };
        assert_eq!(log.rewrite_records(&[]).unwrap(), Vec::new());

        let target = locations[40];
        let good = (target, vec![0xEE; 30]);
        let mut cases = vec![
            ("longer", target, vec![1; 41]),
            ("inside a record", RecordLocation { offset: target.offset + 1, ..target }, Vec::new()),
            ("a frame inside a payload", fake, vec![1; 10]),
            ("padding", padding, Vec::new()),
            ("the old location of a rewritten record", victim, vec![1; 10]),
            ("no such segment", RecordLocation { segment: 999, ..target }, Vec::new()),
            ("segment 0", RecordLocation { segment: 0, ..target }, Vec::new()),
            ("the segment header", RecordLocation { offset: 0, ..target }, Vec::new()),
            ("past the end", RecordLocation { offset: u64::MAX - 4, ..target }, Vec::new()),
            ("above record_bytes_max", RecordLocation { len: u32::MAX, ..target }, Vec::new()),
            ("the end of the log", RecordLocation { offset: log.end().offset, len: 0, ..holder }, Vec::new()),
        ];
        for shrink in 1..FRAME_HEADER_BYTES as usize {
            cases.push(("shrunk by less than a frame header", target, vec![1; 40 - shrink]));
        }
        let before = snapshot(dir.path());
        for (name, at, payload) in cases {
            for batch in [vec![(at, payload.clone())], vec![good.clone(), (at, payload.clone())]] {
                let error = log.rewrite_records(&batch).unwrap_err();
                match &error {
                    SegmentError::InvalidReplacement { index, location, new_len, .. } => {
                        assert_eq!(
                            (*index, *location, *new_len),
                            (batch.len() - 1, at, payload.len()),
                            "{name}"
                        )
                    }
                    other => panic!("{name}: {other:?}"),
                }
                assert!(error.to_string().contains("refused, nothing rewritten"), "{error}");
                assert_eq!(snapshot(dir.path()), before, "{name}");
            }
        }
        let error = log.rewrite_records(&[good.clone(), (locations[10], vec![]), good.clone()]).unwrap_err();
        assert!(matches!(error, SegmentError::InvalidReplacement { index: 2, .. }), "{error:?}");
        assert_eq!(snapshot(dir.path()), before, "the same record twice");

        // The log is as usable as before.
        let done = log.rewrite_records(&[good]).unwrap();
        assert_eq!(log.read(done[0]).unwrap(), vec![0xEE; 30]);
    }

    #[test]
    fn leftover_rewrite_copies_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let locations = closed_log(dir.path(), 30);
        let before = snapshot(dir.path());
        // A crash after part of the copy was written, before the rename.
        let leftover = rewrite_path(dir.path(), 2);
        fs::write(&leftover, &fs::read(segment_path(dir.path(), 2)).unwrap()[..50]).unwrap();
        let read = read_records(dir.path(), small_limits()).unwrap();
        assert_eq!((read.records.len(), read.tail, read.damaged), (30, None, Vec::new()));
        assert!(leftover.exists(), "read_records changes nothing");

        let (log, report) = open(dir.path()).unwrap();
        assert!(!leftover.exists());
        assert_eq!((report.records, report.torn_tail, report.damaged.len()), (30, None, 0));
        assert_eq!(read_all(&log), all_but(&locations, &[]));
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn a_damaged_padding_frame_is_damage_like_any_frame() {
        type Damage = fn(&Path, u64);
        let flip_flag: Damage = |path, offset| {
            let mut bytes = fs::read(path).unwrap();
            bytes[offset as usize] ^= 0x80;
            fs::write(path, bytes).unwrap();
        };
        let cases: [(&str, u64, Damage); 4] = [
            ("payload", FRAME_HEADER_BYTES + 2, flip_byte),
            ("checksum", 5, flip_byte),
            ("length", 1, flip_byte),
            ("padding flag", 3, flip_flag),
        ];
        for (name, offset_in_frame, damage) in cases {
            let dir = tempfile::tempdir().unwrap();
            let open = |dir: &Path| SegmentLog::open(dir, SegmentLimits::default(), LOG_ID);
            let (mut log, _) = open(dir.path()).unwrap();
            let locations = append_records(&mut log, 40);
            let replaced = log.rewrite_records(&[(locations[20], vec![0xEE; 4])]).unwrap()[0];
            drop(log);
            // A padding frame of 8 zero bytes, followed by valid records.
            let padding_at = replaced.end().offset;
            damage(&segment_path(dir.path(), 1), padding_at + offset_in_frame);

            let (mut log, report) = open(dir.path()).unwrap();
            assert_eq!(report.torn_tail, None, "{name}");
            let span = |d: &DamagedRange| (d.segment, d.start, d.end);
            let expected_span = vec![(1, padding_at, padding_at + 16)];
            assert_eq!(report.damaged.iter().map(span).collect::<Vec<_>>(), expected_span, "{name}");
            let expected = with_replaced(&locations, &[(20, replaced, vec![0xEE; 4])]);
            assert_eq!(read_all(&log), expected, "{name}");
            let read = read_records(dir.path(), SegmentLimits::default()).unwrap();
            assert_eq!(read.damaged.iter().map(span).collect::<Vec<_>>(), expected_span, "{name}");
            assert_eq!(read.records.len(), 40, "{name}");
            // What is in a damaged range cannot be rewritten.
            let in_damage = RecordLocation { segment: 1, offset: padding_at, len: 8 };
            let error = log.rewrite_records(&[(in_damage, Vec::new())]).unwrap_err();
            assert!(error.to_string().contains("damaged range"), "{name}: {error}");
            // The records around it can, and the damaged range stays where it is.
            let next = log.rewrite_records(&[(locations[21], Vec::new())]).unwrap()[0];
            drop(log);
            let (log, again) = open(dir.path()).unwrap();
            assert_eq!(again.damaged.iter().map(span).collect::<Vec<_>>(), expected_span, "{name}");
            assert_eq!(read_all(&log)[21], (next, Vec::new()), "{name}");
        }
    }

    #[test]
    fn torn_tail_after_a_rewrite_is_still_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 40);
        let last = *locations.last().unwrap();
        let replaced = log.rewrite_records(&[(last, vec![0xEE; 9])]).unwrap()[0];
        let end = log.end();
        assert_eq!(end, last.end());
        drop(log);
        let expected = with_replaced(&locations, &[(39, replaced, vec![0xEE; 9])]);

        // A torn append after the padding frame that ends the log.
        let path = segment_path(dir.path(), last.segment);
        let garbage = b"\x05\x00\x00\x00half a record";
        append_to_file(&path, garbage);
        let (log, report) = open(dir.path()).unwrap();
        let torn = report.torn_tail.unwrap();
        assert_eq!(
            (torn.segment, torn.offset, torn.bytes_cut),
            (last.segment, end.offset, garbage.len() as u64)
        );
        assert_eq!(log.end(), end);
        assert_eq!(read_all(&log), expected);
        drop(log);

        // The padding frame cut short reads like any torn frame: cut back to its start.
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let (mut log, report) = open(dir.path()).unwrap();
        let torn = report.torn_tail.unwrap();
        assert_eq!((torn.offset, torn.bytes_cut), (replaced.end().offset, 30 - 5));
        assert_eq!(log.end(), replaced.end());
        assert_eq!(read_all(&log), expected);
        let appended = log.append(b"after").unwrap();
        assert_eq!(appended.start(), replaced.end());
    }

    #[test]
    fn a_failed_rewrite_leaves_the_segment_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path()).unwrap();
        let locations = append_records(&mut log, 100);
        let victim = locations[70];
        let replacement = [(victim, vec![0xEE; 20])];
        // The header and records before the victim, its new frame, the padding header,
        // the padding: every write of the copy fails once.
        for writes_before_failure in 0..4 {
            let before = snapshot(dir.path());
            log.faults.plan.lock().unwrap().writes_before_failure = Some(writes_before_failure);
            let error = log.rewrite_records(&replacement).unwrap_err();
            assert!(
                matches!(&error, SegmentError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull),
                "{error:?}"
            );
            assert_eq!(snapshot(dir.path()), before, "after {writes_before_failure} writes");
            assert_eq!(read_all(&log), all_but(&locations, &[]));
        }

        // The copy's fsync fails: poisoned, the segment is as it was.
        let before = snapshot(dir.path());
        log.faults.plan.lock().unwrap().syncs_before_failure = Some(0);
        assert!(matches!(log.rewrite_records(&replacement), Err(SegmentError::SyncFailed { .. })));
        assert!(matches!(log.append(b"x"), Err(SegmentError::Poisoned)));
        assert!(matches!(log.rewrite_records(&replacement), Err(SegmentError::Poisoned)));
        assert_eq!(snapshot(dir.path()), before);
        drop(log);

        // The directory fsync after the rename fails: poisoned, the new file is in place.
        let (mut log, _) = open(dir.path()).unwrap();
        log.faults.plan.lock().unwrap().syncs_before_failure = Some(1);
        assert!(matches!(log.rewrite_records(&replacement), Err(SegmentError::SyncFailed { .. })));
        assert!(matches!(log.read(victim), Err(SegmentError::Poisoned)));
        drop(log);
        let (log, report) = open(dir.path()).unwrap();
        assert_eq!((report.records, report.torn_tail, report.damaged.len()), (100, None, 0));
        let replaced = RecordLocation { len: 20, ..victim };
        assert_eq!(read_all(&log), with_replaced(&locations, &[(70, replaced, vec![0xEE; 20])]));
        assert_eq!(rewrite_copies(dir.path()), Vec::<PathBuf>::new());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn random_bytes_as_a_segment_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            with_header in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut contents = Vec::new();
            if with_header {
                contents.extend_from_slice(&encode_segment_header(LOG_ID, 1));
            }
            contents.extend_from_slice(&bytes);
            fs::write(segment_path(dir.path(), 1), &contents).unwrap();
            if let Ok((log, report)) = open(dir.path()) {
                let all: Vec<_> = log.iter_from(log.start()).collect::<Result<_, _>>().unwrap();
                prop_assert_eq!(all.len() as u64, report.records);
            }
        }

        #[test]
        fn damaged_last_segment_opens_to_a_prefix_or_fails(
            count in 1usize..12,
            damage_at in any::<proptest::sample::Index>(),
            value in any::<u8>(),
            truncate in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = SegmentLog::open(dir.path(), SegmentLimits::default(), LOG_ID).unwrap();
            let records: Vec<Vec<u8>> = (0..count).map(record).collect();
            let batch: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            log.append_batch(&batch).unwrap();
            drop(log);
            let path = segment_path(dir.path(), 1);
            let mut bytes = fs::read(&path).unwrap();
            let at = damage_at.index(bytes.len());
            if truncate {
                bytes.truncate(at);
            } else {
                bytes[at] = value;
            }
            fs::write(&path, &bytes).unwrap();
            if let Ok((log, _)) = SegmentLog::open(dir.path(), SegmentLimits::default(), LOG_ID) {
                let all: Vec<Vec<u8>> = log
                    .iter_from(log.start())
                    .map(|item| item.map(|(_, payload)| payload))
                    .collect::<Result<_, _>>()
                    .unwrap();
                // What opens is the records in order, less damaged ones (a truncation
                // loses a suffix); never a record that was not written.
                prop_assert!(all.len() <= count);
                let mut written = records.iter();
                for payload in &all {
                    prop_assert!(written.any(|r| r == payload), "{:?} was not written here", payload);
                }
                if truncate {
                    prop_assert_eq!(&all[..], &records[..all.len()]);
                }
            }
        }

        #[test]
        fn rewrites_keep_every_other_record(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..=100), 1..40),
            rounds in proptest::collection::vec(
                proptest::collection::vec(
                    (any::<proptest::sample::Index>(), any::<u8>(), any::<bool>()),
                    0..6,
                ),
                1..4,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = open(dir.path()).unwrap();
            let batch: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let locations = log.append_batch(&batch).unwrap();
            // What the log should hold, and the payloads that must be gone.
            let mut model: Vec<(RecordLocation, Vec<u8>)> =
                locations.iter().copied().zip(payloads.iter().cloned()).collect();
            // Only the original (random) payloads: the new ones are runs of one byte that
            // other new payloads may contain.
            let mut original = vec![true; model.len()];
            let mut erased = Vec::new();
            for (round, picks) in rounds.iter().enumerate() {
                let mut replacements = Vec::new();
                let mut picked = Vec::new();
                for (pick, byte, same_len) in picks {
                    let index = pick.index(model.len());
                    if picked.contains(&index) {
                        continue;
                    }
                    let (at, old) = &model[index];
                    let n = old.len();
                    let new_len = if *same_len || n < 8 { n } else { usize::from(*byte) % (n - 7) };
                    let new = vec![*byte; new_len];
                    if original[index] && old.len() >= 16 {
                        erased.push(old.clone());
                    }
                    original[index] = false;
                    picked.push(index);
                    replacements.push((*at, new));
                }
                let (end, total_bytes) = (log.end(), log.total_bytes());
                let replaced = log.rewrite_records(&replacements).unwrap();
                prop_assert_eq!((log.end(), log.total_bytes()), (end, total_bytes));
                for ((index, location), (_, payload)) in picked.iter().zip(replaced).zip(replacements) {
                    prop_assert_eq!(location.start(), model[*index].0.start());
                    model[*index] = (location, payload);
                }
                // The tail's writer handle follows the rewrite.
                let extra = format!("appended after round {round}").into_bytes();
                let location = log.append(&extra).unwrap();
                model.push((location, extra));
                original.push(false);
            }
            let (end, total_bytes) = (log.end(), log.total_bytes());
            drop(log);

            let (log, report) = open(dir.path()).unwrap();
            prop_assert_eq!((report.records, report.torn_tail, report.damaged.len()), (model.len() as u64, None, 0));
            prop_assert_eq!((log.end(), log.total_bytes()), (end, total_bytes));
            prop_assert_eq!(&read_all(&log), &model);
            for (location, payload) in &model {
                prop_assert_eq!(&log.read(*location).unwrap(), payload);
            }
            let read = read_records(dir.path(), small_limits()).unwrap();
            let positioned: Vec<_> = model.iter().map(|(at, payload)| (at.start(), payload.clone())).collect();
            prop_assert_eq!(read.records, positioned);
            for old in &erased {
                prop_assert!(!in_any_file(dir.path(), old), "an erased payload is still there: {:?}", old);
            }
        }
    }
}
