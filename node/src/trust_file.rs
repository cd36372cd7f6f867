//! Trust material files: certificates and revocations handed from a partner admin to
//! a node (on a USB stick, by e-mail). A text file, so a person can see what it is:
//!
//! ```text
//! TESSERA TRUST v1
//! network <64 hex digits>
//! <hex of one trust entry, as in docs/protocol.md>
//! ...
//! ```
//!
//! Every entry is signed on its own, so the file needs no signature: a node verifies
//! each entry against its network when it imports the file.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tessera_log::{NetworkId, TrustEntry};

pub const MAGIC_LINE: &str = "TESSERA TRUST v1";
/// Largest trust file read (thousands of certificates).
pub const TRUST_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

pub fn write(path: &Path, network: &NetworkId, entries: &[&TrustEntry]) -> Result<()> {
    let mut text = format!("{MAGIC_LINE}\nnetwork {}\n", network.0.to_hex());
    for entry in entries {
        text.push_str(&hex::encode(entry.encode()));
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Whether the file starts like a trust file.
pub fn looks_like(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC_LINE.as_bytes())
}

pub fn parse(text: &str) -> Result<(NetworkId, Vec<TrustEntry>)> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(MAGIC_LINE) {
        bail!("not a Tessera trust file (it should start with `{MAGIC_LINE}`)");
    }
    let network = lines
        .next()
        .and_then(|l| l.strip_prefix("network "))
        .context("trust file: the second line should be `network <id>`")?;
    let network = parse_network(network)?;
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        let bytes = hex::decode(line).with_context(|| format!("trust file: entry {} is not hex", i + 1))?;
        let entry = TrustEntry::decode(&bytes)
            .with_context(|| format!("trust file: entry {} is malformed", i + 1))?;
        entries.push(entry);
    }
    Ok((network, entries))
}

pub fn read(path: &Path) -> Result<(NetworkId, Vec<TrustEntry>)> {
    let len = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > TRUST_FILE_BYTES_MAX {
        bail!("{} is too large for a trust file ({len} bytes)", path.display());
    }
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse_network(hex_id: &str) -> Result<NetworkId> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id.trim(), &mut bytes)
        .ok()
        .with_context(|| format!("`{}` is not a network id (64 hex digits)", hex_id.trim()))?;
    NetworkId::from_bytes(bytes)
        .ok()
        .with_context(|| format!("`{}` is not a valid network id", hex_id.trim()))
}
