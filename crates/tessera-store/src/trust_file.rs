//! Trust material files: certificates and revocations handed from a partner admin to
//! a node or relay (on a USB stick, by e-mail). A text file, so a person can see what
//! it is:
//!
//! ```text
//! TESSERA TRUST v1
//! network <64 hex digits>
//! <hex of one trust entry, as in docs/protocol.md>
//! ...
//! ```
//!
//! Every entry is signed on its own, so the file needs no signature: the receiver
//! verifies each entry against its network when it imports the file.

use std::fs;
use std::path::{Path, PathBuf};

use tessera_log::{NetworkId, TrustEntry};

pub const MAGIC_LINE: &str = "TESSERA TRUST v1";
/// Largest trust file read (thousands of certificates).
pub const TRUST_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Why a trust file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrustFileError {
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is too large for a trust file ({len} bytes)", .path.display())]
    TooLarge { path: PathBuf, len: u64 },
    #[error("not a valid Tessera trust file: {0}")]
    Malformed(String),
}

fn malformed(text: impl Into<String>) -> TrustFileError {
    TrustFileError::Malformed(text.into())
}

pub fn write(path: &Path, network: &NetworkId, entries: &[&TrustEntry]) -> Result<(), TrustFileError> {
    let mut text = format!("{MAGIC_LINE}\nnetwork {}\n", network.0.to_hex());
    for entry in entries {
        text.push_str(&hex::encode(entry.encode()));
        text.push('\n');
    }
    fs::write(path, text).map_err(|source| TrustFileError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Whether the bytes start like a trust file.
pub fn looks_like(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC_LINE.as_bytes())
}

pub fn parse(text: &str) -> Result<(NetworkId, Vec<TrustEntry>), TrustFileError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(MAGIC_LINE) {
        return Err(malformed(format!("it should start with `{MAGIC_LINE}`")));
    }
    let network = lines
        .next()
        .and_then(|l| l.strip_prefix("network "))
        .ok_or_else(|| malformed("the second line should be `network <id>`"))?;
    let network = parse_network(network)?;
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        let bytes = hex::decode(line).map_err(|_| malformed(format!("entry {} is not hex", i + 1)))?;
        let entry = TrustEntry::decode(&bytes)
            .map_err(|e| malformed(format!("entry {} is malformed: {e}", i + 1)))?;
        entries.push(entry);
    }
    Ok((network, entries))
}

pub fn read(path: &Path) -> Result<(NetworkId, Vec<TrustEntry>), TrustFileError> {
    let io = |source| TrustFileError::Io { action: "read", path: path.to_path_buf(), source };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > TRUST_FILE_BYTES_MAX {
        return Err(TrustFileError::TooLarge { path: path.to_path_buf(), len });
    }
    let text = fs::read_to_string(path).map_err(io)?;
    parse(&text)
}

pub fn parse_network(hex_id: &str) -> Result<NetworkId, TrustFileError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id.trim(), &mut bytes)
        .map_err(|_| malformed(format!("`{}` is not a network id (64 hex digits)", hex_id.trim())))?;
    NetworkId::from_bytes(bytes)
        .map_err(|_| malformed(format!("`{}` is not a valid network id", hex_id.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_log::testkit::TestNetwork;

    #[test]
    fn round_trip_and_clear_errors() {
        let net = TestNetwork::new(1, 1, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.trust");
        let entries: Vec<&TrustEntry> = net.entries.iter().collect();
        write(&path, &net.network, &entries).unwrap();
        let (network, back) = read(&path).unwrap();
        assert_eq!(network, net.network);
        assert_eq!(back, net.entries);
        assert!(matches!(parse("hello"), Err(TrustFileError::Malformed(_))));
        assert!(matches!(parse("TESSERA TRUST v1\nnetwork zz\n"), Err(TrustFileError::Malformed(_))));
        let bad = format!("TESSERA TRUST v1\nnetwork {}\nabcd\n", net.network.0.to_hex());
        assert!(parse(&bad).unwrap_err().to_string().contains("entry 1"));
    }
}
