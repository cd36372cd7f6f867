//! A log entry: what one record of the log, a bundle or a sync batch holds, an
//! envelope or a trust entry, told apart by a one-byte tag.

use crate::codec::DecodeError;
use crate::envelope::Envelope;
use crate::limits::LOG_ENTRY_BYTES_MAX;
use crate::trust::TrustEntry;

const TAG_ENVELOPE: u8 = 1;
const TAG_TRUST: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    Envelope(Envelope),
    Trust(TrustEntry),
}

impl LogEntry {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            LogEntry::Envelope(e) => {
                let mut out = Vec::with_capacity(1 + e.encoded_len());
                out.push(TAG_ENVELOPE);
                e.encode_into(&mut out);
                out
            }
            LogEntry::Trust(t) => {
                let mut out = vec![TAG_TRUST];
                out.extend_from_slice(&t.encode());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<LogEntry, DecodeError> {
        if bytes.len() > LOG_ENTRY_BYTES_MAX {
            return Err(DecodeError::Oversized {
                what: "log entry",
                len: bytes.len(),
                max: LOG_ENTRY_BYTES_MAX,
            });
        }
        match bytes.split_first() {
            None => Err(DecodeError::Truncated { what: "log entry tag", offset: 0, needed: 1, available: 0 }),
            Some((&TAG_ENVELOPE, rest)) => Envelope::decode(rest).map(LogEntry::Envelope),
            Some((&TAG_TRUST, rest)) => TrustEntry::decode(rest).map(LogEntry::Trust),
            Some(_) => {
                Err(DecodeError::Invalid { what: "log entry tag", offset: 0, reason: "unknown entry kind" })
            }
        }
    }
}
