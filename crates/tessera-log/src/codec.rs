//! Canonical binary encoding primitives shared by every format of this crate.
//!
//! Integers are little-endian and fixed width; byte strings and texts carry a length
//! prefix that is checked against a named limit *before* anything is allocated; there
//! is exactly one encoding of each value (booleans are 0 or 1, texts are UTF-8, no
//! trailing bytes), so that `encode(decode(b)) == b` for every accepted `b`.
//! The reader never panics: every read is bounds-checked and returns [`DecodeError`].
//! Public so that other formats of the protocol (sync messages) share one codec.

use thiserror::Error;

/// Why a byte string could not be decoded. Each variant names what was being read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated input: {what} needs {needed} more byte(s) at offset {offset}, only {available} left")]
    Truncated { what: &'static str, offset: usize, needed: usize, available: usize },
    #[error("unsupported {what} format version {found} (this build reads version {supported})")]
    UnsupportedVersion { what: &'static str, found: u8, supported: u8 },
    #[error("{what} is too large: {len} bytes or items, the limit is {max}")]
    Oversized { what: &'static str, len: usize, max: usize },
    #[error("invalid {what} at offset {offset}: {reason}")]
    Invalid { what: &'static str, offset: usize, reason: &'static str },
    #[error("{count} unexpected trailing byte(s) after the {what}")]
    TrailingBytes { what: &'static str, count: usize },
}

/// Appends canonical encodings to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(capacity: usize) -> Self {
        Writer { buf: Vec::with_capacity(capacity) }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A text with a u16 length prefix. Callers validate the length against their
    /// limit (e.g. [`crate::limits::TEXT_BYTES_MAX`]) when the value is built.
    pub fn text(&mut self, v: &str) {
        debug_assert!(v.len() <= u16::MAX as usize);
        self.u16(v.len() as u16);
        self.bytes(v.as_bytes());
    }
    /// Overwrites two bytes already written (a count known only at the end).
    pub fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(slot) = self.buf.get_mut(at..at + 2) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical encodings from untrusted bytes, never panicking.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }
    /// The bytes consumed so far.
    pub fn consumed(&self) -> &'a [u8] {
        &self.bytes[..self.offset]
    }
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(out)
    }
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    /// A `u32` length checked against `max`, then that many bytes.
    pub fn sized(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::Oversized { what, len, max });
        }
        self.take(len, what)
    }
    /// A u16-prefixed UTF-8 text of at most `max` bytes.
    pub fn text(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(DecodeError::Oversized { what, len, max });
        }
        let at = self.offset;
        let raw = self.take(len, what)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::Invalid { what, offset: at, reason: "not valid UTF-8" }),
        }
    }
    pub fn invalid(&self, what: &'static str, reason: &'static str) -> DecodeError {
        DecodeError::Invalid { what, offset: self.offset, reason }
    }
    /// Fails unless every byte was consumed (canonical encodings have no slack).
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }
}
