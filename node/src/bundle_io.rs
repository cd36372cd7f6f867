//! `tessera export` and `tessera import`: bundle files carried between hubs on a USB
//! stick, and the input of an auditor. The format is in `docs/protocol.md` ("Bundle");
//! this file only moves a store's entries into one and back.
//!
//! Import reads and checks the whole bundle (its framing, hash and the exporter's
//! signature) before storing anything, so a truncated or tampered file changes
//! nothing. Then every valid envelope is stored; an invalid one is refused together
//! with the later envelopes of its author (they no longer follow its chain), and the
//! report says which.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use crate::msg::SaidContext as _;
use anyhow::{bail, Result};
use tessera_log::bundle::{BundleReader, BundleWriter};
use tessera_log::{LogEntry, VersionVector};
use tessera_store::{IngestReport, Policy};

use crate::materialize::CatchUp;
use crate::node::{now, Node};
use crate::trust_file;

/// Largest bundle file read (ten times the scale workload fits).
pub const BUNDLE_FILE_BYTES_MAX: u64 = 8 * 1024 * 1024 * 1024;

/// What an export wrote.
#[derive(Debug, Clone, Copy)]
pub struct Exported {
    pub entries: u64,
    pub bytes: u64,
}

/// Writes every entry of the node's store to `path`: trust entries first (a receiver
/// needs certificates before envelopes), then envelopes in log order, which keeps
/// each author's chain in order. Written to a temporary file, fsync'd, then renamed,
/// so a full disk or a crash never leaves a half bundle under the final name.
pub fn export(node: &Node, path: &Path) -> Result<Exported> {
    let store = node.store();
    let tmp = path.with_extension("partial");
    let file = File::create(&tmp).with_said(|| crate::msg::cannot("create", &tmp))?;
    let key = tessera_store::read_secret_key(
        &node.dir().join(crate::config::KEYS_DIR).join(crate::config::DEVICE_KEY_FILE),
        "device",
    )?;
    let mut writer = BundleWriter::new(
        BufWriter::new(file),
        store.network(),
        &key,
        now(),
        &VersionVector::new(),
        store.heads(),
    )
    .with_said(|| crate::msg::cannot("write", &tmp))?;
    for entry in store.trust().entries_in_order() {
        writer.write_entry(&LogEntry::Trust(entry.clone()))?;
    }
    for item in store.entries_from(store.log_start()) {
        let (_, entry) = item?;
        if let LogEntry::Envelope(_) = entry {
            writer.write_entry(&entry).with_said(|| crate::msg::cannot("write", &tmp))?;
        }
    }
    let entries = writer.entries_written();
    let mut out = writer.finish().with_said(|| crate::msg::cannot("write", &tmp))?;
    out.flush()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all().with_said(|| crate::msg::cannot("write", &tmp))?;
    let bytes = file.metadata()?.len();
    fs::rename(&tmp, path).with_said(|| crate::msg::cannot("write", path))?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(Exported { entries, bytes })
}

/// What an import found.
#[derive(Debug)]
pub struct Imported {
    pub kind: &'static str,
    pub report: IngestReport,
    pub catch_up: CatchUp,
    /// The entries as stored (refused ones are named by their index here).
    pub entries: Vec<LogEntry>,
    /// Envelopes the bundle's header claims and the bundle does not carry.
    pub claimed_absent: u64,
}

/// A bundle signed by a device that no certificate, held or in the bundle, vouches
/// for: anyone can make one (and empty or reorder what it carries), so `import`
/// refuses it unless asked explicitly.
#[derive(Debug)]
pub struct UnknownExporter {
    pub exporter: tessera_log::DeviceKey,
}

impl std::fmt::Display for UnknownExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the bundle was signed by device {}, which no certificate of this network vouches for: \
             nothing was imported",
            self.exporter.short()
        )
    }
}

impl std::error::Error for UnknownExporter {}

/// Whether `exporter` is a certified device under the node's trust together with the
/// trust entries the bundle carries.
fn exporter_certified(node: &Node, entries: &[LogEntry], exporter: &tessera_log::DeviceKey) -> bool {
    let mut trust = node.store().trust().clone();
    let mut carried: Vec<&tessera_log::TrustEntry> =
        entries.iter().filter_map(|e| if let LogEntry::Trust(t) = e { Some(t) } else { None }).collect();
    carried.sort_by_key(|t| t.dependency_rank());
    for entry in carried {
        let _ = trust.add(entry.clone());
    }
    let certified = trust.devices().any(|c| c.device == *exporter);
    certified
}

/// Reads a bundle or trust file and stores its valid entries. A bundle whose exporter
/// is not certified is refused ([`UnknownExporter`]) unless `allow_unknown_exporter`.
pub fn import(node: &mut Node, path: &Path, allow_unknown_exporter: bool) -> Result<Imported> {
    let meta = fs::metadata(path).with_said(|| crate::msg::cannot("read", path))?;
    if meta.len() > BUNDLE_FILE_BYTES_MAX {
        let (file, len) = (path.display(), meta.len());
        bail!(crate::said!(
            "{file} is too large to import ({len} bytes)",
            "{file} è troppo grande per essere importato ({len} byte)"
        ));
    }
    let mut head = [0u8; 32];
    let head_len = {
        use std::io::Read;
        File::open(path)?.read(&mut head)?
    };
    let network = node.network();
    if trust_file::looks_like(&head[..head_len]) {
        let (file_network, entries) = trust_file::read(path)?;
        if file_network != network {
            let (file, theirs, ours) = (path.display(), file_network.short(), network.short());
            bail!(crate::said!(
                "{file} is for network {theirs}, but this node is in network {ours}",
                "{file} è per la rete {theirs}, ma questo nodo è nella rete {ours}"
            ));
        }
        let entries: Vec<LogEntry> = entries.into_iter().map(LogEntry::Trust).collect();
        let (report, catch_up) = node.ingest(&entries, Policy::SkipInvalid)?;
        return Ok(Imported { kind: "trust", report, catch_up, entries, claimed_absent: 0 });
    }
    let file = File::open(path).with_said(|| crate::msg::cannot("read", path))?;
    let mut reader = BundleReader::open(BufReader::new(file)).with_said(|| {
        let file = path.display();
        (
            format!("{file} is not a readable Tessera bundle"),
            format!("{file} non è un pacchetto Tessera leggibile"),
        )
    })?;
    if reader.header().network != network {
        let (file, theirs, ours) = (path.display(), reader.header().network.short(), network.short());
        bail!(crate::said!(
            "{file} belongs to network {theirs}, but this node is in network {ours}: nothing was imported",
            "{file} appartiene alla rete {theirs}, ma questo nodo è nella rete {ours}: non è stato importato nulla"
        ));
    }
    let mut entries = Vec::new();
    for entry in reader.by_ref() {
        entries.push(entry.with_said(|| {
            let file = path.display();
            (
                format!("{file} is damaged: nothing was imported"),
                format!("{file} è danneggiato: non è stato importato nulla"),
            )
        })?);
    }
    if !reader.is_verified() {
        let file = path.display();
        bail!(crate::said!(
            "{file} ended before its signature: nothing was imported",
            "{file} finisce prima della sua firma: non è stato importato nulla"
        ));
    }
    let exporter = reader.header().exporter;
    if !allow_unknown_exporter && !exporter_certified(node, &entries, &exporter) {
        return Err(UnknownExporter { exporter }.into());
    }
    let claimed_absent = reader.header().claimed_but_absent(&entries);
    // The order of a bundle's entries means nothing (audit verify reads them as a
    // set): trust entries in dependency order, then each author's envelopes by seq,
    // so a reordered bundle imports exactly as the ordered one. Stable: fork evidence
    // keeps its place after the envelope the exporter followed.
    entries.sort_by_key(|entry| match entry {
        LogEntry::Trust(t) => (0, t.dependency_rank(), None),
        LogEntry::Envelope(e) => (1, 0, Some((e.author(), e.seq()))),
    });
    let (report, catch_up) = node.ingest(&entries, Policy::SkipInvalid)?;
    Ok(Imported { kind: "bundle", report, catch_up, entries, claimed_absent })
}
