//! `tessera audit`: verify a signed history without trusting anyone who handled it.
//!
//! Input is a bundle file or a store directory. Every envelope is checked on its own
//! (signature, body commitments, certificate chain, revocation by seq) and every
//! author's chain from seq 1 (prev links, gaps, forks), against the network key the
//! auditor pins with `--network` (else the one the bundle names, with a warning).
//! Needs no node identity. Exit status: 0 everything verifies and is complete, 1 a
//! verification failure or a fork, 2 verified but incomplete (gaps).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;
use tessera_log::bundle::BundleReader;
use tessera_log::{DeviceKey, EnvelopeId, LogEntry, NetworkId, SecretKey, Seq, TrustState, VerifyError};

use tessera_records::vocab::Lang;

use crate::keys::{Keys, Opened};
use crate::msg::SaidContext as _;
use crate::tr;
use crate::ui::Ui;

/// One line for a grant change: how many read keys, of which scopes, for how many devices.
fn describe_grants(body: &[u8], ui: &Ui) -> String {
    match tessera_seal::decode_grants(body) {
        Err(e) => tr!(ui, "malformed read keys: {e}", "chiavi di lettura malformate: {e}"),
        Ok(grants) => {
            let devices: BTreeSet<_> = grants.iter().map(|g| g.recipient).collect();
            let scopes: BTreeSet<String> = grants
                .iter()
                .map(|g| format!("{}, {} {}", scope_text(&g.scope, ui), ui.t("epoch", "periodo"), g.epoch))
                .collect();
            let (n, scopes) = (devices.len(), scopes.into_iter().collect::<Vec<_>>().join("; "));
            tr!(
                ui,
                "read keys for {n} device(s): {scopes}",
                "chiavi di lettura per {n} dispositivi: {scopes}"
            )
        }
    }
}

/// A read scope in words ("the network scope", "the scope of partner ...").
fn scope_text(scope: &tessera_seal::Scope, ui: &Ui) -> String {
    match (scope, ui.lang) {
        (tessera_seal::Scope::Network, Lang::It) => "l'ambito della rete".into(),
        (tessera_seal::Scope::Partner(p), Lang::It) => format!("l'ambito dell'ente {}", p.short()),
        (scope, _) => scope.to_string(),
    }
}

/// Entries read from a bundle or a store, and where they came from.
#[derive(Debug)]
pub struct Source {
    pub network: NetworkId,
    pub entries: Vec<LogEntry>,
    pub description: String,
    /// The bundle's exporter, if a bundle.
    pub exporter: Option<DeviceKey>,
    /// What the reader saw but is not a verification problem (shown with the result).
    pub notes: Vec<String>,
    /// Bytes at the end of a store's log that could not be read as records (so were
    /// not verified): the source is incomplete.
    pub unread_bytes: u64,
    /// Envelopes a bundle's header claims that the bundle does not carry.
    pub claimed_absent: u64,
}

/// Reads a bundle (checking its framing, hash and signature) or a store directory.
pub fn read_source(path: &Path, lang: Lang) -> Result<Source> {
    let ui = Ui { lang };
    if path.is_dir() {
        let store_dir = if path.join("store").is_dir() { path.join("store") } else { path.to_path_buf() };
        // Read only: the auditor's copy stays exactly as it was (no lock, no repair, no
        // derived state), and a store a node is running can be read too.
        let contents = tessera_store::read_store(&store_dir).with_said(|| {
            let dir = store_dir.display();
            (format!("cannot read the store in {dir}"), format!("non riesco a leggere l'archivio in {dir}"))
        })?;
        let unread_bytes = contents.unread_tail.as_ref().map_or(0, |tail| tail.bytes)
            + contents.damaged.iter().map(|d| d.bytes()).sum::<u64>();
        let damaged_notes: Vec<String> = contents
            .damaged
            .iter()
            .map(|d| {
                let (bytes, segment, start, reason) = (d.bytes(), d.segment, d.start, &d.reason);
                tr!(
                    ui,
                    "{bytes} bytes at log segment {segment} offset {start} could not be read ({reason}), with valid records \
                     after them: damage to the disk, not a crash. They were not verified.",
                    "{bytes} byte al segmento {segment} del registro, posizione {start}, non si sono potuti leggere \
                     ({reason}), e dopo ci sono registrazioni valide: un danno al disco, non un'interruzione. Non \
                     sono stati verificati."
                )
            })
            .collect();
        let notes = damaged_notes
            .into_iter()
            .chain(contents.unread_tail.map(|tail| {
                let (bytes, segment, reason) = (tail.bytes, tail.segment, &tail.reason);
                tr!(
                    ui,
                    "the last {bytes} bytes of log segment {segment} could not be read ({reason}): a write cut short \
                     by a crash, one in progress, or damage. They were not verified; the files \
                     were left as they are.",
                    "gli ultimi {bytes} byte del segmento {segment} del registro non si sono potuti leggere \
                     ({reason}): una scrittura interrotta da un arresto, una in corso, o un danno. Non sono stati \
                     verificati; i file sono rimasti come sono."
                )
            }))
            .collect();
        return Ok(Source {
            network: contents.network,
            entries: contents.entries,
            description: format!("{} {}", ui.t("store", "archivio"), store_dir.display()),
            exporter: None,
            notes,
            unread_bytes,
            claimed_absent: 0,
        });
    }
    let file = File::open(path).with_said(|| crate::msg::cannot("read", path))?;
    read_bundle(BufReader::new(file), format!("{} {}", ui.t("bundle", "pacchetto"), path.display()))
}

/// Reads a whole bundle, checking its framing, hash and exporter's signature; any
/// damage is an error naming the byte range and entry, never a partial result.
pub fn read_bundle(input: impl Read, description: String) -> Result<Source> {
    let mut reader = BundleReader::open(input).with_said(|| {
        (
            format!("{description} is not a readable bundle"),
            format!("{description} non è un pacchetto leggibile"),
        )
    })?;
    let mut entries = Vec::new();
    for entry in reader.by_ref() {
        entries.push(entry.with_said(|| {
            (
                format!("{description} is damaged or was altered"),
                format!("{description} è danneggiato o è stato alterato"),
            )
        })?);
    }
    if !reader.is_verified() {
        bail!(crate::said!(
            "{description} ended before its signature: it is incomplete",
            "{description} finisce prima della sua firma: è incompleto"
        ));
    }
    let header = reader.header().clone();
    let claimed_absent = header.claimed_but_absent(&entries);
    Ok(Source {
        network: header.network,
        entries,
        description,
        exporter: Some(header.exporter),
        notes: Vec::new(),
        unread_bytes: 0,
        claimed_absent,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub kind: &'static str,
    pub device: Option<String>,
    pub seq: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PartnerSummary {
    pub partner: String,
    pub name: String,
    pub devices: usize,
    pub changes: u64,
    pub first_time_ms: Option<i64>,
    pub last_time_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceSummary {
    pub device: String,
    pub partner: String,
    pub site: String,
    pub changes: u64,
    pub head_seq: u64,
    pub head_id: String,
    pub missing: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub source: String,
    pub network: String,
    pub network_pinned: bool,
    pub envelopes: u64,
    pub trust_entries: u64,
    pub partners: Vec<PartnerSummary>,
    pub devices: Vec<DeviceSummary>,
    pub problems: Vec<Problem>,
    pub gaps: u64,
    /// Said about the source, not verification problems (e.g. an unread torn tail).
    pub notes: Vec<String>,
    /// Bytes at the end of the source that could not be read: it is incomplete.
    pub unread_bytes: u64,
    /// Envelopes the bundle's header claims and the bundle does not carry.
    pub claimed_absent: u64,
}

impl Verification {
    /// 0 all verified and complete, 1 a failure or fork, 2 verified with gaps.
    pub fn exit_code(&self) -> u8 {
        if !self.problems.is_empty() {
            1
        } else if self.gaps > 0 || self.unread_bytes > 0 || self.claimed_absent > 0 {
            2
        } else {
            0
        }
    }
}

/// One envelope held at a seq: its id, its prev, its time (ms).
type Held = (EnvelopeId, EnvelopeId, i64);

fn problem(kind: &'static str, device: Option<DeviceKey>, seq: Option<Seq>, detail: String) -> Problem {
    Problem { kind, device: device.map(|d| d.0.to_hex()), seq: seq.map(|s| s.0), detail }
}

fn kind_of(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::BadSignature { .. } | VerifyError::BadTrustSignature { .. } => "bad-signature",
        VerifyError::CommitmentMismatch { .. } => "altered-body",
        VerifyError::Revoked { .. } | VerifyError::PartnerRevoked { .. } => "after-revocation",
        VerifyError::UnknownAuthor { .. } => "unknown-device",
        VerifyError::UnknownPartner { .. } => "unknown-partner",
        VerifyError::UnauthorizedIssuer { .. } => "unauthorized-issuer",
        VerifyError::ForeignNetwork { .. } => "foreign-network",
        _ => "invalid",
    }
}

/// The trust state `source`'s certificates and revocations give under `network`,
/// added in dependency order whatever order the source holds them in; refused entries
/// become problems. Also returns how many trust entries the source holds.
fn trust_of(
    source: &Source,
    network: NetworkId,
    problems: &mut Vec<Problem>,
    lang: Lang,
) -> (TrustState, u64) {
    let mut trust = TrustState::new(network);
    let mut entries: Vec<_> = source
        .entries
        .iter()
        .filter_map(|e| match e {
            LogEntry::Trust(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let count = entries.len() as u64;
    entries.sort_by_key(tessera_log::TrustEntry::dependency_rank);
    for entry in entries {
        let what = crate::msg::statement_text(&entry.statement, lang);
        if let Err(e) = trust.add(entry) {
            let why = crate::msg::verify_error_text(&e, lang);
            problems.push(problem(kind_of(&e), None, None, format!("{what}: {why}")));
        }
    }
    // Entries still waiting once every entry is held can never be checked: their
    // issuer's certificate is not in the source.
    for (entry, reason) in trust.waiting() {
        let what = crate::msg::statement_text(&entry.statement, lang);
        let why = crate::msg::verify_error_text(reason, lang);
        problems.push(problem(kind_of(reason), None, None, format!("{what}: {why}")));
    }
    (trust, count)
}

/// Verifies every entry of `source` against `network` (the auditor's pinned key, or
/// the source's own).
pub fn verify(source: &Source, pinned: Option<NetworkId>) -> Verification {
    verify_in(source, pinned, Lang::En)
}

/// [`verify`], its problems and notes in `lang` (English for `--json`).
pub fn verify_in(source: &Source, pinned: Option<NetworkId>, lang: Lang) -> Verification {
    let ui = Ui { lang };
    let network = pinned.unwrap_or(source.network);
    let mut problems = Vec::new();
    if source.network != network {
        problems.push(problem("foreign-network", None, None, {
            let found = source.network;
            tr!(
                ui,
                "the source belongs to network {found}, not to the pinned {network}",
                "l'origine appartiene alla rete {found}, non a quella indicata {network}"
            )
        }));
    }
    let (trust, trust_count) = trust_of(source, network, &mut problems, lang);
    // Every envelope on its own, then each author's chain.
    let mut by_author: BTreeMap<DeviceKey, BTreeMap<Seq, Vec<Held>>> = BTreeMap::new();
    let mut envelopes = 0u64;
    for entry in &source.entries {
        let LogEntry::Envelope(env) = entry else { continue };
        envelopes += 1;
        let (author, seq) = (env.author(), env.seq());
        if let Err(e) = trust.authorize(&author, seq) {
            problems.push(problem(
                kind_of(&e),
                Some(author),
                Some(seq),
                crate::msg::verify_error_text(&e, lang),
            ));
        }
        if let Err(e) = trust.verify_envelope_signature(env) {
            problems.push(problem(
                kind_of(&e),
                Some(author),
                Some(seq),
                crate::msg::verify_error_text(&e, lang),
            ));
            continue;
        }
        let slot = by_author.entry(author).or_default().entry(seq).or_default();
        if !slot.iter().any(|(id, _, _)| *id == env.id()) {
            slot.push((env.id(), env.prev(), env.time().0));
        }
    }
    let mut devices = Vec::new();
    let mut gaps = 0u64;
    let mut partners: BTreeMap<String, PartnerSummary> = BTreeMap::new();
    for (author, chain) in &by_author {
        let mut missing = Vec::new();
        let mut expected = 1u64;
        for (seq, versions) in chain {
            if seq.0 > expected {
                missing.push((expected, seq.0 - 1));
                gaps += seq.0 - expected;
            }
            expected = seq.0 + 1;
            if versions.len() > 1 {
                problems.push(problem("fork", Some(*author), Some(*seq), {
                    let n = versions.len();
                    tr!(
                        ui,
                        "the device signed {n} different envelopes with this number",
                        "il dispositivo ha firmato {n} buste diverse con questo numero"
                    )
                }));
            }
            // The previous-hash link, where the previous envelope is present and unique.
            if seq.0 > 1 {
                if let Some(prev_versions) = chain.get(&Seq(seq.0 - 1)) {
                    for (_, prev, _) in versions {
                        if prev_versions.len() == 1 && prev_versions[0].0 != *prev {
                            problems.push(problem(
                                "broken-chain",
                                Some(*author),
                                Some(*seq),
                                ui.t(
                                    "its previous-hash does not match the envelope before it",
                                    "la sua impronta precedente non corrisponde alla busta prima di lei",
                                )
                                .into(),
                            ));
                        }
                    }
                }
            }
        }
        let certificate = trust.devices().find(|c| c.device == *author).cloned();
        let partner_key = certificate.as_ref().map(|c| c.partner.0.to_hex()).unwrap_or_default();
        let partner_name = certificate
            .as_ref()
            .and_then(|c| trust.partner(&c.partner))
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let (head_seq, head) =
            chain.iter().next_back().map(|(s, v)| (s.0, v[0].0.to_string())).unwrap_or_default();
        let changes = chain.values().map(|v| v.len() as u64).sum();
        let times: Vec<i64> = chain.values().flat_map(|v| v.iter().map(|(_, _, t)| *t)).collect();
        let summary = partners.entry(partner_key.clone()).or_insert_with(|| PartnerSummary {
            partner: partner_key.clone(),
            name: partner_name,
            ..PartnerSummary::default()
        });
        summary.devices += 1;
        summary.changes += changes;
        summary.first_time_ms = summary.first_time_ms.into_iter().chain(times.iter().copied()).min();
        summary.last_time_ms = summary.last_time_ms.into_iter().chain(times.iter().copied()).max();
        devices.push(DeviceSummary {
            device: author.0.to_hex(),
            partner: partner_key,
            site: certificate.map(|c| c.site).unwrap_or_default(),
            changes,
            head_seq,
            head_id: head,
            missing,
        });
    }
    if let Some(exporter) = source.exporter {
        if !trust.devices().any(|c| c.device == exporter) {
            problems.push(problem(
                "unknown-exporter",
                Some(exporter),
                None,
                ui.t(
                    "the device that signed the bundle is not certified in it",
                    "il dispositivo che ha firmato il pacchetto non vi è certificato",
                )
                .into(),
            ));
        }
    }
    Verification {
        source: source.description.clone(),
        network: network.0.to_hex(),
        network_pinned: pinned.is_some(),
        envelopes,
        trust_entries: trust_count,
        partners: partners.into_values().collect(),
        devices,
        problems,
        gaps,
        notes: source.notes.clone(),
        unread_bytes: source.unread_bytes,
        claimed_absent: source.claimed_absent,
    }
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Prints a verification for a person.
pub fn print(v: &Verification, ui: &Ui) {
    let labels = [
        ui.t("Source", "Origine"),
        ui.t("Network", "Rete"),
        ui.t("Checked", "Controllate"),
        ui.t("Note", "Nota"),
    ];
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 3;
    let label = |l: &str| format!("{l}:{}", " ".repeat(width - l.chars().count() - 1));
    crate::outln!("{}{}", label(labels[0]), v.source);
    crate::outln!(
        "{}{}{}",
        label(labels[1]),
        v.network,
        if v.network_pinned {
            ui.t(" (pinned)", " (indicata)")
        } else {
            ui.t(
                " (as the source says: pin it with --network)",
                " (quella dichiarata dall'origine: indicala con --network)",
            )
        }
    );
    let (envelopes, trust) = (v.envelopes, v.trust_entries);
    crate::outln!(
        "{}{}",
        label(labels[2]),
        tr!(
            ui,
            "{envelopes} envelopes, {trust} certificates and revocations",
            "{envelopes} buste, {trust} certificati e revoche"
        )
    );
    for note in &v.notes {
        crate::outln!("{}{note}", label(labels[3]));
    }
    crate::outln!();
    let rows: Vec<Vec<String>> = v
        .partners
        .iter()
        .map(|p| {
            vec![
                if p.name.is_empty() {
                    ui.t("(uncertified)", "(non certificato)").into()
                } else {
                    p.name.clone()
                },
                p.devices.to_string(),
                p.changes.to_string(),
                time_text(p.first_time_ms),
                time_text(p.last_time_ms),
            ]
        })
        .collect();
    crate::ui::print_table(
        &[
            ui.t("partner", "ente"),
            ui.t("devices", "dispositivi"),
            ui.t("changes", "modifiche"),
            ui.t("first", "prima"),
            ui.t("last", "ultima"),
        ],
        &rows,
    );
    crate::outln!();
    let rows: Vec<Vec<String>> = v
        .devices
        .iter()
        .map(|d| {
            vec![
                d.device[..16].to_string(),
                d.site.clone(),
                d.head_seq.to_string(),
                d.head_id[..16].to_string(),
                if d.missing.is_empty() {
                    "-".into()
                } else {
                    d.missing.iter().map(|(a, b)| format!("{a}..{b}")).collect::<Vec<_>>().join(" ")
                },
            ]
        })
        .collect();
    crate::ui::print_table(
        &[
            ui.t("device", "dispositivo"),
            ui.t("site", "sede"),
            ui.t("head", "ultima"),
            ui.t("head id", "id dell'ultima"),
            ui.t("missing", "mancanti"),
        ],
        &rows,
    );
    crate::outln!();
    if v.problems.is_empty() && v.gaps == 0 && v.unread_bytes == 0 && v.claimed_absent == 0 {
        crate::outln!(
            "{}",
            ui.t(
                "OK: every envelope verifies and every history is complete from its first change.",
                "OK: ogni busta è verificata e ogni storia è completa dalla sua prima modifica."
            )
        );
    }
    if v.unread_bytes > 0 {
        let bytes = v.unread_bytes;
        crate::outln!(
            "{}",
            tr!(
                ui,
                "DAMAGED: {bytes} bytes of the log could not be read (see the notes above); what they held was not verified.",
                "DANNEGGIATO: {bytes} byte del registro non si sono potuti leggere (vedi le note sopra); ciò che contenevano non è verificato."
            )
        );
    }
    if v.gaps > 0 {
        let gaps = v.gaps;
        crate::outln!(
            "{}",
            tr!(
                ui,
                "INCOMPLETE: {gaps} envelopes are missing (listed above); missing is not tampering.",
                "INCOMPLETO: mancano {gaps} buste (elencate sopra); mancare non è manomissione."
            )
        );
    }
    if v.claimed_absent > 0 {
        let absent = v.claimed_absent;
        crate::outln!(
            "{}",
            tr!(
                ui,
                "INCOMPLETE: the bundle's header claims {absent} envelopes it does not carry (cut short, or \
                 exported from a log with holes).",
                "INCOMPLETO: l'intestazione del pacchetto dichiara {absent} buste che non contiene (troncato, o \
                 esportato da un registro con lacune)."
            )
        );
    }
    for p in &v.problems {
        let device = p.device.as_deref().map(|d| &d[..16]).unwrap_or("-");
        let seq = p.seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let (kind, detail) = (p.kind, &p.detail);
        crate::outln!(
            "{}",
            tr!(
                ui,
                "PROBLEM {kind}: device {device} change {seq}: {detail}",
                "PROBLEMA {kind}: dispositivo {device} modifica {seq}: {detail}"
            )
        );
    }
}

/// `tessera audit compare A B`: what each side lacks, per author, and forks between them.
pub fn compare(a: &Source, b: &Source, lang: Lang) -> (Vec<String>, bool) {
    let ui = Ui { lang };
    fn heads(source: &Source) -> BTreeMap<DeviceKey, BTreeMap<Seq, EnvelopeId>> {
        let mut out: BTreeMap<DeviceKey, BTreeMap<Seq, EnvelopeId>> = BTreeMap::new();
        for entry in &source.entries {
            if let LogEntry::Envelope(env) = entry {
                out.entry(env.author()).or_default().entry(env.seq()).or_insert(env.id());
            }
        }
        out
    }
    let (ha, hb) = (heads(a), heads(b));
    let mut lines = Vec::new();
    let mut differ = a.network != b.network;
    if differ {
        lines.push(
            ui.t(
                "the two sources belong to different networks",
                "le due origini appartengono a reti diverse",
            )
            .to_string(),
        );
    }
    let authors: BTreeSet<&DeviceKey> = ha.keys().chain(hb.keys()).collect();
    for author in authors {
        let empty = BTreeMap::new();
        let (sa, sb) = (ha.get(author).unwrap_or(&empty), hb.get(author).unwrap_or(&empty));
        let only_a: Vec<u64> = sa.keys().filter(|s| !sb.contains_key(s)).map(|s| s.0).collect();
        let only_b: Vec<u64> = sb.keys().filter(|s| !sa.contains_key(s)).map(|s| s.0).collect();
        let forks: Vec<u64> =
            sa.iter().filter(|(s, id)| sb.get(s).is_some_and(|o| o != *id)).map(|(s, _)| s.0).collect();
        let short = &author.0.to_hex()[..16];
        if !only_a.is_empty() {
            differ = true;
            let only = ranges(&only_a);
            lines.push(tr!(
                ui,
                "device {short}: only in A: {only}",
                "dispositivo {short}: solo in A: {only}"
            ));
        }
        if !only_b.is_empty() {
            differ = true;
            let only = ranges(&only_b);
            lines.push(tr!(
                ui,
                "device {short}: only in B: {only}",
                "dispositivo {short}: solo in B: {only}"
            ));
        }
        if !forks.is_empty() {
            differ = true;
            let at = ranges(&forks);
            lines.push(tr!(
                ui,
                "device {short}: FORK, different envelopes at {at}",
                "dispositivo {short}: BIFORCAZIONE, buste diverse a {at}"
            ));
        }
    }
    (lines, differ)
}

fn ranges(seqs: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut end = start;
        while i + 1 < seqs.len() && seqs[i + 1] == end + 1 {
            i += 1;
            end = seqs[i];
        }
        out.push(if start == end { start.to_string() } else { format!("{start}..{end}") });
        i += 1;
    }
    out.join(", ")
}

/// A finished audit that did not pass: the binary exits with `code`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AuditFailed {
    pub code: u8,
    pub message: String,
}

/// Filters of `tessera audit log`.
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    /// Partner key prefix or name (case-insensitive substring).
    pub partner: Option<String>,
    /// Device key prefix.
    pub device: Option<String>,
    /// Record id (short id or prefix).
    pub doc: Option<tessera_records::IdPrefix>,
    /// A device's asset tag (any case): the device, and the loans that name it.
    pub tag: Option<String>,
    pub kind: Option<tessera_records::RecordKind>,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub show_personal_data: bool,
}

/// One change of one record, as the auditor reads it.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub time_ms: i64,
    pub device: String,
    pub site: String,
    pub partner: String,
    pub seq: u64,
    pub record: String,
    /// A device's asset tag, for a device's line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub kind: String,
    /// `field: old -> new`, or what is known when the body is not there.
    pub changes: Vec<String>,
    /// The operator the change says made it (inside its sealed body: known only to a
    /// reader with the read key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// What `tessera audit log` found.
#[derive(Debug, Clone, Default)]
pub struct LogReport {
    pub lines: Vec<LogLine>,
    /// With `--record`: whether that record (id or tag) is in the copy at all.
    pub record_found: bool,
}

/// A record's fields as `path -> value` lines. A reference to another record is shown
/// as everywhere else, by its short id, or by its tag for a device whose tag is known:
/// never as the 32 hex digits it is stored as.
fn flatten(
    prefix: &str,
    value: &serde_json::Value,
    tags: &BTreeMap<tessera_log::DocId, String>,
    out: &mut BTreeMap<String, String>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, tags, out);
            }
        }
        other => {
            let shown = match other.as_str().and_then(reference) {
                Some(id) => tags.get(&id).cloned().unwrap_or_else(|| tessera_records::short_id(&id)),
                None => other.to_string(),
            };
            out.insert(prefix.to_string(), shown);
        }
    }
}

/// A stored reference to a record: 32 hex digits whose kind byte is a record kind.
fn reference(text: &str) -> Option<tessera_log::DocId> {
    tessera_records::parse_doc_id(text).filter(|id| tessera_records::kind_of(id).is_some())
}

/// Every record a record's body refers to (a loan's device and borrower, a session's
/// participants...).
fn references_in(value: &serde_json::Value, out: &mut BTreeSet<tessera_log::DocId>) {
    match value {
        serde_json::Value::Object(map) => map.values().for_each(|v| references_in(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| references_in(v, out)),
        serde_json::Value::String(text) => out.extend(reference(text)),
        _ => {}
    }
}

/// The read keys granted to `reader` in the verified envelopes of `source`.
fn keys_in(source: &Source, trust: &TrustState, network: NetworkId, reader: &SecretKey) -> Keys {
    let mut keys = Keys::new(network, DeviceKey(reader.public()));
    for entry in &source.entries {
        let LogEntry::Envelope(env) = entry else { continue };
        if trust.verify_envelope_signature(env).is_err() {
            continue;
        }
        for (doc, body) in env.present_changes() {
            keys.learn_change(trust, env, &doc, body, reader);
        }
    }
    keys
}

/// The persons an erasure in `source` erases (by the rule every store applies,
/// `tessera_log::erasure_counts`, the first in (device, seq) order when several do),
/// with when and why; and the erasures that do not count, with the organisation that
/// signed them.
fn erasures_in(
    source: &Source,
    trust: &TrustState,
) -> (BTreeMap<tessera_log::Person, tessera_log::Erasure>, BTreeMap<tessera_log::Person, String>) {
    let mut counting: BTreeMap<tessera_log::Person, (DeviceKey, Seq, tessera_log::Erasure)> = BTreeMap::new();
    let mut refused = BTreeMap::new();
    for entry in &source.entries {
        let LogEntry::Envelope(env) = entry else { continue };
        let Ok(cert) = trust.authorize(&env.author(), env.seq()) else { continue };
        if trust.verify_envelope_signature(env).is_err() {
            continue;
        }
        for (change, body) in env.changes().iter().zip(env.bodies()) {
            if !tessera_log::erasure::is_erasure_doc(&change.doc) {
                continue;
            }
            let person = tessera_log::Person::of(&change.doc);
            let erasure = match body {
                tessera_log::Body::Present { bytes, .. } => tessera_log::Erasure::decode(bytes).ok(),
                tessera_log::Body::Absent => None,
            };
            match erasure {
                Some(erasure) if tessera_log::erasure_counts(trust, &env.author(), &person, &erasure) => {
                    let key = (env.author(), env.seq());
                    if counting.get(&person).is_none_or(|(a, s, _)| key < (*a, *s)) {
                        counting.insert(person, (key.0, key.1, erasure));
                    }
                }
                _ => {
                    let by = trust.partner(&cert.partner).map(|p| p.name.clone()).unwrap_or_default();
                    refused.insert(person, by);
                }
            }
        }
    }
    let mut erased: BTreeMap<tessera_log::Person, tessera_log::Erasure> =
        counting.into_iter().map(|(person, (_, _, erasure))| (person, erasure)).collect();
    for by_network in trust.network_erasures() {
        erased.entry(by_network.person).or_insert_with(|| tessera_log::Erasure {
            erased_on: by_network.erased_on.clone(),
            reason: by_network.reason,
            nonce: [0; tessera_log::erasure::NONCE_BYTES],
            stub: Vec::new(),
        });
    }
    refused.retain(|person, _| !erased.contains_key(person));
    (erased, refused)
}

fn erasure_words(erasure: &tessera_log::Erasure, ui: &Ui) -> String {
    let on = &erasure.erased_on;
    match erasure.reason {
        tessera_log::ErasureReason::Request => tr!(
            ui,
            "erased on {on} (art. 17, at the person's request)",
            "cancellato il {on} (art. 17, su richiesta della persona)"
        ),
        tessera_log::ErasureReason::Mistake => {
            tr!(ui, "erased on {on} (registered by mistake)", "cancellato il {on} (iscritto per errore)")
        }
    }
}

/// A record kind's name: the stored word in English (as `--json` and older output
/// say it), the Italian noun in Italian.
fn kind_name(kind: tessera_records::RecordKind, ui: &Ui) -> String {
    use tessera_records::RecordKind as K;
    match ui.lang {
        Lang::En => kind.as_str().to_string(),
        Lang::It => match kind {
            K::Site => "sede",
            K::Attendee => "iscritto",
            K::Device => "dispositivo",
            K::Loan => "prestito",
            K::Session => "incontro",
            K::Personal => "dati personali",
        }
        .to_string(),
    }
}

/// Who changed what and when: field-level changes decoded by replaying each record's
/// changes in order. Attendee values are personal data: shown only when asked. Sealed
/// bodies are read with the keys granted to `reader` (this computer's device), else
/// shown as encrypted.
pub fn log(
    source: &Source,
    pinned: Option<NetworkId>,
    filter: &LogFilter,
    reader: Option<&SecretKey>,
    lang: Lang,
) -> LogReport {
    let ui = &Ui { lang };
    use tessera_records::{kind_of, short_id, RecordDoc};
    let network = pinned.unwrap_or(source.network);
    let (trust, _) = trust_of(source, network, &mut Vec::new(), lang);
    let keys = match reader {
        Some(reader) => keys_in(source, &trust, network, reader),
        None => Keys::new(network, DeviceKey(network.0)),
    };
    let (erased, refused) = erasures_in(source, &trust);
    let mut docs: BTreeMap<tessera_log::DocId, (RecordDoc, BTreeMap<String, String>)> = BTreeMap::new();
    // Each line with the record it is about; the record filter is applied at the end,
    // when every device's tag and every record's references are known.
    let mut lines: Vec<(tessera_log::DocId, LogLine)> = Vec::new();
    let mut tags: BTreeMap<tessera_log::DocId, String> = BTreeMap::new();
    let mut refers: BTreeMap<tessera_log::DocId, BTreeSet<tessera_log::DocId>> = BTreeMap::new();
    let by_record = filter.doc.is_some() || filter.tag.is_some();
    for entry in &source.entries {
        let LogEntry::Envelope(env) = entry else { continue };
        // Only what verifies is reported as someone's change.
        let Ok(cert) = trust.authorize(&env.author(), env.seq()).cloned() else { continue };
        if trust.verify_envelope_signature(env).is_err() {
            continue;
        }
        let partner = trust.partner(&cert.partner).map(|p| p.name.clone()).unwrap_or_default();
        let device_hex = env.author().0.to_hex();
        let day = chrono::DateTime::from_timestamp_millis(env.time().0).map(|t| t.date_naive());
        let selected = filter.device.as_ref().is_none_or(|d| device_hex.starts_with(&d.to_lowercase()))
            && filter.partner.as_ref().is_none_or(|p| {
                let p = p.to_lowercase();
                cert.partner.0.to_hex().starts_with(&p) || partner.to_lowercase().contains(&p)
            })
            && filter.from.is_none_or(|f| day.is_some_and(|d| d >= f))
            && filter.to.is_none_or(|t| day.is_some_and(|d| d <= t));
        let line = |record: String, kind: String, changes: Vec<String>| LogLine {
            time_ms: env.time().0,
            device: device_hex.clone(),
            site: cert.site.clone(),
            partner: partner.clone(),
            seq: env.seq().0,
            record,
            tag: None,
            kind,
            changes,
            operator: None,
        };
        for (change, body) in env.changes().iter().zip(env.bodies()) {
            if tessera_seal::is_grant_doc(&change.doc) {
                let wanted = selected && filter.kind.is_none() && !by_record;
                if let (true, tessera_log::Body::Present { bytes, .. }) = (wanted, body) {
                    lines.push((
                        change.doc,
                        line(
                            "-".into(),
                            ui.t("read keys", "chiavi di lettura").into(),
                            vec![describe_grants(bytes, ui)],
                        ),
                    ));
                }
                continue;
            }
            let person = tessera_log::Person::of(&change.doc);
            let attendee = person.doc(tessera_records::RecordKind::Attendee.byte());
            // A line about the person as a whole (an erasure), under their attendee id.
            let attendee_line = |what: String| {
                line(short_id(&attendee), kind_name(tessera_records::RecordKind::Attendee, ui), vec![what])
            };
            let wanted_attendee =
                selected && filter.kind.is_none_or(|k| k == tessera_records::RecordKind::Attendee);
            if tessera_log::erasure::is_erasure_doc(&change.doc) {
                if wanted_attendee {
                    let what = match (erased.get(&person), refused.get(&person)) {
                        (Some(erasure), _) => erasure_words(erasure, ui),
                        (None, Some(by)) => tr!(
                            ui,
                            "erasure not effective: signed by {by}, which did not register this person",
                            "cancellazione senza effetto: firmata da {by}, che non ha iscritto questa persona"
                        ),
                        (None, None) => ui
                            .t(
                                "erasure whose content is not in this copy",
                                "cancellazione il cui contenuto non è in questa copia",
                            )
                            .into(),
                    };
                    lines.push((attendee, attendee_line(what)));
                }
                continue;
            }
            let kind = kind_of(&change.doc);
            if let Some(erasure) = erased.get(&person) {
                // Nothing of an erased person is shown, even from a copy that still
                // carries their bodies (an old bundle).
                if wanted_attendee {
                    let what = format!(
                        "{}: {}",
                        erasure_words(erasure, ui),
                        ui.t("content removed", "contenuto tolto")
                    );
                    lines.push((attendee, attendee_line(what)));
                }
                continue;
            }
            let mut operator = None;
            let (doc, before) = docs.entry(change.doc).or_insert_with(|| {
                (RecordDoc::empty(tessera_records::actor_for(&env.author())), BTreeMap::new())
            });
            let described = match body {
                tessera_log::Body::Absent => {
                    vec![ui
                        .t(
                            "body erased or not present (the signed commitment remains)",
                            "contenuto cancellato o assente (resta l'impegno firmato)",
                        )
                        .into()]
                }
                tessera_log::Body::Present { bytes, .. } => match keys.open(&change.doc, bytes) {
                    Opened::NoKey => vec![match tessera_seal::SealedHeader::parse(bytes) {
                        Ok(head) => {
                            let (scope, epoch) = (scope_text(&head.scope, ui), head.epoch);
                            tr!(
                                ui,
                                "encrypted ({scope}, epoch {epoch}): no read key on this computer",
                                "cifrato ({scope}, periodo {epoch}): nessuna chiave di lettura su questo computer"
                            )
                        }
                        Err(_) => ui.t("encrypted", "cifrato").into(),
                    }],
                    Opened::Forged(e) => vec![tr!(
                        ui,
                        "encrypted change that does not open: {e}",
                        "modifica cifrata che non si apre: {e}"
                    )],
                    Opened::Change(bytes) => match doc.apply_change(&bytes).inspect(|()| {
                        operator = tessera_records::change_by(&bytes);
                    }) {
                        Err(e) => vec![tr!(ui, "change not readable: {e}", "modifica non leggibile: {e}")],
                        Ok(()) => match doc.hydrate() {
                            Err(_) => vec![ui
                                .t(
                                    "waiting for earlier changes of this record",
                                    "in attesa di modifiche precedenti di questa scheda",
                                )
                                .into()],
                            Ok(record) => {
                                let mut after = BTreeMap::new();
                                if let Ok(value) = serde_json::to_value(&record) {
                                    let body = &value["record"];
                                    if let Some(tag) = body["asset_tag"].as_str() {
                                        tags.insert(change.doc, tag.to_string());
                                    }
                                    references_in(body, refers.entry(change.doc).or_default());
                                    flatten("", body, &tags, &mut after);
                                }
                                let personal = matches!(
                                    kind,
                                    Some(
                                        tessera_records::RecordKind::Attendee
                                            | tessera_records::RecordKind::Personal
                                    )
                                ) && !filter.show_personal_data;
                                let mut out = Vec::new();
                                for (field, value) in &after {
                                    let old = before.get(field);
                                    if old == Some(value) {
                                        continue;
                                    }
                                    out.push(if personal {
                                        tr!(ui, "{field} changed", "{field} cambiato")
                                    } else {
                                        match old {
                                            Some(old) => format!("{field}: {old} -> {value}"),
                                            None => format!("{field}: {value}"),
                                        }
                                    });
                                }
                                for field in before.keys().filter(|f| !after.contains_key(*f)) {
                                    out.push(tr!(ui, "{field} removed", "{field} tolto"));
                                }
                                *before = after;
                                out
                            }
                        },
                    },
                },
            };
            // Personal details are shown as part of their attendee: same id, same
            // filters, kind "attendee (personal details)".
            let (record_id, kind_word) = match kind {
                Some(tessera_records::RecordKind::Personal) => (
                    tessera_records::attendee_of_personal(&change.doc),
                    ui.t("attendee (personal details)", "iscritto (dati personali)").to_string(),
                ),
                other => (change.doc, other.map(|k| kind_name(k, ui)).unwrap_or_else(|| "?".into())),
            };
            let record_kind = kind_of(&record_id);
            let wanted = selected && filter.kind.is_none_or(|k| record_kind == Some(k));
            if wanted {
                let mut shown = line(short_id(&record_id), kind_word, described);
                shown.operator = operator;
                lines.push((record_id, shown));
            }
        }
    }
    // `--record`: the records named by id prefix or device tag, and the records that
    // refer to them (a device's loans, a person's loans and sessions).
    let folded = |t: &str| t.trim().to_lowercase();
    let targets: BTreeSet<tessera_log::DocId> = docs
        .keys()
        .chain(lines.iter().map(|(id, _)| id))
        .filter(|id| {
            filter.doc.as_ref().is_some_and(|d| d.matches(id))
                || filter
                    .tag
                    .as_ref()
                    .is_some_and(|t| tags.get(*id).is_some_and(|tag| folded(tag) == folded(t)))
        })
        .copied()
        .collect();
    let record_found = !targets.is_empty();
    let mut lines: Vec<LogLine> = lines
        .into_iter()
        .filter(|(id, _)| {
            !by_record
                || targets.contains(id)
                || refers.get(id).is_some_and(|refs| refs.iter().any(|r| targets.contains(r)))
        })
        .map(|(id, mut line)| {
            line.tag = tags.get(&id).cloned();
            line
        })
        .collect();
    lines.sort_by(|a, b| (a.time_ms, &a.device, a.seq).cmp(&(b.time_ms, &b.device, b.seq)));
    LogReport { lines, record_found }
}
