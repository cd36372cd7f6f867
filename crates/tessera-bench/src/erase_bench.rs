//! `tessera-bench node --sections erase`: erasure (GDPR art. 17) on a hub holding the
//! reference workload, as `tessera attendee erase ID --yes` does it.
//!
//! Two copies of the cached workload node are opened side by side. The device of one
//! is certified as a hub of the first partner, the other as a hub of the last. For
//! each person (taken in turn from the two hubs):
//!
//! 0. the person registered again under an id the hub's partner made (the workload's
//!    ids are random, as older releases wrote them, and cannot be erased);
//! 1. an edit through [`Node::transact`];
//! 2. a second edit: one ordinary durable attendee edit, the baseline of the ratio;
//!    then the node is closed and opened again (both timed), as between two commands;
//! 3. [`Node::erase`], what the CLI command runs after resolving the id: one signed
//!    erasure change, the store's scrub (the log records holding the person's bodies
//!    rewritten in place, segment by segment) and the people database deleted and
//!    rebuilt from the log. The log's size is read before and after;
//! 4. the raw limit of the rewrite: a plain copy of the segments the erasure rewrote
//!    (read, write, `fdatasync`, rename, directory fsync), in the same minutes; then
//!    the node is closed and opened again (timed: what the CLI adds to `Node::erase`).
//!
//! Where the erasure's time goes is read from the events the store and the node emit
//! anyway (a `tracing` subscriber of this process notes when each arrives): "rewrote
//! records of a segment" (per segment), "erased bodies removed from the log" (end of
//! the scrub) and "people database rebuilt after an erasure". No node or store code
//! is changed for it.
//!
//! Then, on the first hub, in the same run: the two parts of a people rebuild alone
//! (decoding the whole log; replaying the people documents' changes in memory), a
//! prototype of a cheaper rebuild (the people database's live rows copied into a new
//! database), a full materializer rebuild, and the release `tessera` binary: `attendee edit` and
//! `attendee erase ID --yes`, spawn to exit, the last one with the store evicted from
//! the page cache first.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tessera_log::{DocId, ErasureReason, LogEntry};
use tessera_node::Node;
use tessera_records::kind::RecordKind;
use tessera_records::model::Record;
use tessera_store::Store;

use crate::node_bench::{
    copy_dir, dir_bytes, evict, median_of, ms, replay_documents, run_cli, Config, FRAME_OVERHEAD_BYTES,
};
use crate::stats::{percentile, put, Metrics};
use crate::workload::{self, Workload, DEVICES_PER_PARTNER};

/// The target for one erasure on a hub.
pub const ERASE_TARGET_MS: f64 = 1_000.0;
/// The events timed, by message, and the modules they come from.
const SEGMENT_REWRITTEN: &str = "rewrote records of a segment";
const SCRUBBED: &str = "erased bodies removed from the log";
const PEOPLE_REBUILT: &str = "people database rebuilt after an erasure";
const WATCHED_TARGETS: [&str; 3] =
    ["tessera_store::segments", "tessera_store::store::erase", "tessera_node::materialize"];
/// The buffer the store's segment rewrite copies with (`SCAN_BUFFER_BYTES`).
const COPY_BUFFER_BYTES: usize = 256 << 10;

// ---------------------------------------------------------------------------------
// Marks: when the store's and the node's events arrive

#[derive(Clone, Debug)]
struct Mark {
    at: Instant,
    message: String,
    segment: Option<u64>,
}

/// The events of [`WATCHED_TARGETS`] seen since the last [`Marks::take`].
#[derive(Debug, Default)]
struct Marks(Mutex<Vec<Mark>>);

impl Marks {
    /// The process's marks; the subscriber is installed by the first call.
    fn install() -> Result<Arc<Marks>> {
        static MARKS: OnceLock<Arc<Marks>> = OnceLock::new();
        if let Some(marks) = MARKS.get() {
            return Ok(marks.clone());
        }
        let marks = Arc::new(Marks::default());
        tracing::subscriber::set_global_default(MarkSubscriber(marks.clone()))
            .context("another tracing subscriber is installed in this process")?;
        let _ = MARKS.set(marks.clone());
        Ok(marks)
    }

    fn take(&self) -> Vec<Mark> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[derive(Debug)]
struct MarkSubscriber(Arc<Marks>);

#[derive(Default)]
struct MarkFields {
    message: String,
    segment: Option<u64>,
}

impl tracing::field::Visit for MarkFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "segment" {
            self.segment = Some(value);
        }
    }
}

impl tracing::Subscriber for MarkSubscriber {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event() && WATCHED_TARGETS.contains(&meta.target())
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let at = Instant::now();
        let mut fields = MarkFields::default();
        event.record(&mut fields);
        let mark = Mark { at, message: fields.message, segment: fields.segment };
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner).push(mark);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------------
// The hubs

/// A copy of the workload's node, its device certified as a hub of `partner`, and
/// the people of that partner it erases (the first one as a warm-up).
struct Hub {
    label: &'static str,
    dir: PathBuf,
    /// `None` only while it is closed and opened again.
    node: Option<Node>,
    persons: Vec<DocId>,
}

impl Hub {
    fn node(&mut self) -> Result<&mut Node> {
        self.node.as_mut().context("the hub is closed")
    }

    /// Closes the node and opens it again, as one `tessera` command after another
    /// does: the time of each.
    fn reopen(&mut self) -> Result<(Duration, Duration)> {
        let t = Instant::now();
        drop(self.node.take());
        let close = t.elapsed();
        let t = Instant::now();
        self.node = Some(Node::open(&self.dir)?);
        Ok((close, t.elapsed()))
    }
}

fn open_hub(
    w: &Workload,
    scratch: &Path,
    label: &'static str,
    partner: usize,
    persons: usize,
) -> Result<Hub> {
    let dir = scratch.join(label);
    copy_dir(&w.node_dir, &dir)?;
    let mut node = Node::open(&dir)?;
    let net = tessera_log::testkit::TestNetwork::new(w.spec.seed, w.spec.partners, DEVICES_PER_PARTNER);
    let cert = crate::compare::hub_certificate(&net, partner, node.device(), "Polo di prova");
    node.ingest(&[cert], tessera_store::Policy::AllOrNothing)?;
    ensure!(node.is_certified(), "the bench hub is not certified");
    // The workload's ids are random (as a release before person ids were bound to
    // their partner wrote them), and only a person whose id this partner made can be
    // erased: each person to erase is registered again here, with the same fields,
    // under an id of this hub's partner. The people database holds the whole
    // workload all the same, which is what a rebuild costs.
    let mut registered = Vec::with_capacity(persons);
    for id in persons_of(w, &node, partner, persons)? {
        let Some(Record::Attendee(mut a)) = node.docs().record(&id)? else {
            bail!("{id} is not an attendee")
        };
        let (new_id, nonce) = node.new_attendee_id()?;
        a.id_nonce = Some(nonce);
        a.registered_by = None;
        node.transact(&[(new_id, Record::Attendee(a))])?;
        registered.push(new_id);
    }
    Ok(Hub { label, dir, node: Some(node), persons: registered })
}

/// `n` attendees registered by `partner`'s nodes, spread over its registrations, that
/// are neither merged nor erased.
fn persons_of(w: &Workload, node: &Node, partner: usize, n: usize) -> Result<Vec<DocId>> {
    let indices: Vec<u64> = workload::layout(&w.spec)
        .iter()
        .filter(|plan| plan.partner == partner)
        .flat_map(|plan| plan.attendees.clone())
        .collect();
    let stride = (indices.len() / (2 * n).max(1)).max(1);
    let mut out = Vec::with_capacity(n);
    for i in indices.iter().step_by(stride).chain(indices.iter()) {
        if out.len() == n {
            break;
        }
        let id = workload::doc_id(w.spec.seed, RecordKind::Attendee, *i);
        if out.contains(&id) {
            continue;
        }
        if let Some(Record::Attendee(a)) = node.docs().record(&id)? {
            if !a.is_merged() && !a.is_erased() && !a.is_reserved() {
                out.push(id);
            }
        }
    }
    ensure!(out.len() == n, "partner {partner} has {} people to erase, {n} wanted", out.len());
    Ok(out)
}

/// One attendee edit through the node (new plan notes), timed.
fn edit(node: &mut Node, id: &DocId, notes: String) -> Result<Duration> {
    let Some(Record::Attendee(mut a)) = node.docs().record(id)? else { bail!("{id} is not an attendee") };
    a.plan_notes = notes;
    let t = Instant::now();
    let written = node.transact(&[(*id, Record::Attendee(a))])?;
    let took = t.elapsed();
    ensure!(written.is_some(), "an edit wrote no change");
    Ok(took)
}

/// One erasure through the node, with where its time went.
#[derive(Clone, Debug)]
struct Erasure {
    total: Duration,
    /// From the call to the end of the scrub: checks, seal, sign, log append and fsync,
    /// derived rows, the search of the log, the segment rewrites, the rows updated.
    scrubbed: Duration,
    /// From the call to the end of the first segment rewrite.
    first_segment: Duration,
    /// From the end of the last segment rewrite to the end of the scrub.
    after_segments: Duration,
    /// From the end of the scrub to the people database rebuilt (catch-up included).
    people: Duration,
    /// The segments rewritten, in order.
    segments: Vec<u64>,
    log_growth: u64,
    envelope_frame: u64,
}

fn erase(node: &mut Node, id: &DocId, marks: &Marks) -> Result<Erasure> {
    let Some(Record::Attendee(a)) = node.docs().record(id)? else { bail!("{id} is not an attendee") };
    let on = tessera_records::model::format_date(chrono::Local::now().date_naive());
    let before = node.store().log_bytes();
    marks.take();
    let t = Instant::now();
    let envelope = node.erase(id, &a, &on, ErasureReason::Request)?;
    let total = t.elapsed();
    let seen = marks.take();
    let log_growth = node.store().log_bytes() - before;
    match node.docs().record(id)? {
        Some(Record::Attendee(stub)) if stub.is_erased() => {}
        _ => bail!("after its erasure, {id} does not read as an erased stub"),
    }
    let since = |m: &Mark| m.at.saturating_duration_since(t);
    let at = |message: &str| {
        seen.iter()
            .find(|m| m.message == message)
            .map(since)
            .with_context(|| format!("no `{message}` event during the erasure of {id}"))
    };
    let rewrites: Vec<&Mark> = seen.iter().filter(|m| m.message == SEGMENT_REWRITTEN).collect();
    let (Some(first), Some(last)) = (rewrites.first(), rewrites.last()) else {
        bail!("the erasure of {id} rewrote no segment of the log")
    };
    let scrubbed = at(SCRUBBED)?;
    Ok(Erasure {
        total,
        scrubbed,
        first_segment: since(first),
        after_segments: scrubbed.saturating_sub(since(last)),
        people: at(PEOPLE_REBUILT)?.saturating_sub(scrubbed),
        segments: rewrites.iter().filter_map(|m| m.segment).collect(),
        log_growth,
        envelope_frame: (envelope.encoded_len() + FRAME_OVERHEAD_BYTES) as u64,
    })
}

/// The raw limit of rewriting `segments` of the log in `dir`: each copied with a plain
/// read/write loop to a new file, `fdatasync`, renamed, directory fsync'd.
fn raw_segment_copies(dir: &Path, segments: &[u64], scratch: &Path) -> Result<Duration> {
    let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
    let t = Instant::now();
    for segment in segments {
        let source = dir.join("store").join("log").join(format!("{segment:016x}.tlog"));
        let copy_path = scratch.join("raw-segment.rewrite");
        let mut from = File::open(&source).with_context(|| format!("open {}", source.display()))?;
        let mut to = File::create(&copy_path)?;
        loop {
            let n = from.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            to.write_all(&buffer[..n])?;
        }
        to.sync_data()?;
        fs::rename(&copy_path, scratch.join("raw-segment.tlog"))?;
        File::open(scratch)?.sync_all()?;
    }
    Ok(t.elapsed())
}

// ---------------------------------------------------------------------------------
// The section

/// Samples of one series, in milliseconds, with the metrics' key.
#[derive(Debug, Default)]
struct Series(BTreeMap<String, Vec<f64>>);

impl Series {
    fn push(&mut self, key: &str, d: Duration) {
        self.0.entry(key.to_string()).or_default().push(ms(d));
    }
    /// p50, p95 and max of every series, as `erase.<key>.p50_ms` etc.
    fn summarize(&self, m: &mut Metrics) {
        for (key, values) in &self.0 {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            put(m, format!("erase.{key}.p50_ms"), median_of(&sorted));
            put(m, format!("erase.{key}.p95_ms"), percentile(&sorted, 95.0).unwrap_or(f64::NAN));
            put(m, format!("erase.{key}.max_ms"), sorted.last().copied().unwrap_or(f64::NAN));
            put(m, format!("erase.{key}.count"), sorted.len() as f64);
        }
    }
}

pub fn run(cfg: &Config, base: &Path, w: &Workload, m: &mut Metrics) -> Result<()> {
    let marks = Marks::install()?;
    let scratch = tempfile::Builder::new().prefix("node-erase-").tempdir_in(base)?;
    let per_hub = cfg.erasures.div_ceil(2);
    let last_partner = w.spec.partners - 1;
    let mut hubs = [
        open_hub(w, scratch.path(), "first-partner", 0, 1 + per_hub + cfg.cli_erasures)?,
        open_hub(w, scratch.path(), "last-partner", last_partner, 1 + per_hub)?,
    ];
    put(m, "erase.log_bytes", hubs[0].node()?.store().log_bytes() as f64);
    put(m, "erase.log_segments", count_segments(&hubs[0].dir)? as f64);

    // Warm-up, per hub: the first write makes the read keys and their grants.
    let mut s = Series::default();
    for hub in &mut hubs {
        let id = hub.persons[0];
        edit(hub.node()?, &id, "Piano rivisto".into())?;
        edit(hub.node()?, &id, "Piano rivisto, secondo colloquio".into())?;
        let first = erase(hub.node()?, &id, &marks)?;
        s.push("warmup_erase", first.total);
        hub.reopen()?;
    }

    let (mut growth, mut frames) = (Vec::new(), Vec::new());
    let mut segments: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let raw_dir = scratch.path().join("raw");
    fs::create_dir_all(&raw_dir)?;
    for i in 0..cfg.erasures {
        let hub = &mut hubs[i % 2];
        let id = hub.persons[1 + i / 2];
        s.push("edit_first", edit(hub.node()?, &id, format!("Piano rivisto ({i})"))?);
        s.push("edit", edit(hub.node()?, &id, format!("Piano rivisto ({i}), secondo colloquio"))?);
        let (close, open) = hub.reopen()?;
        s.push("close_after_edit", close);
        s.push("open", open);
        let e = erase(hub.node()?, &id, &marks)?;
        let raw = raw_segment_copies(&hub.dir, &e.segments, &raw_dir)?;
        let (close, open) = hub.reopen()?;
        s.push("close_after_erase", close);
        s.push("open_after_erase", open);
        for (key, d) in [
            ("total", e.total),
            ("scrubbed", e.scrubbed),
            ("first_segment", e.first_segment),
            ("after_segments", e.after_segments),
            ("people", e.people),
            ("after_people", e.total.saturating_sub(e.scrubbed + e.people)),
            ("raw_segment_copy", raw),
        ] {
            s.push(key, d);
            s.push(&format!("{}.{key}", hub.label), d);
        }
        growth.push(e.log_growth as f64);
        frames.push(e.envelope_frame as f64);
        segments.entry(hub.label).or_default().push(e.segments.len());
        eprintln!(
            "  erasure {}/{} ({}): {:.0} ms (scrub {:.0}, people {:.0}), segments {:?}, log +{} B",
            i + 1,
            cfg.erasures,
            hub.label,
            ms(e.total),
            ms(e.scrubbed),
            ms(e.people),
            e.segments,
            e.log_growth
        );
    }
    s.summarize(m);
    let ratio = |m: &Metrics, a: &str, b: &str| crate::stats::get(m, a) / crate::stats::get(m, b);
    put(m, "erase.ratio.erase_vs_edit.p50", ratio(m, "erase.total.p50_ms", "erase.edit.p50_ms"));
    put(
        m,
        "erase.ratio.scrubbed_vs_raw_copy.p50",
        ratio(m, "erase.scrubbed.p50_ms", "erase.raw_segment_copy.p50_ms"),
    );
    let min_max =
        |v: &[f64]| (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max));
    let (g_min, g_max) = min_max(&growth);
    let (f_min, f_max) = min_max(&frames);
    put(m, "erase.log_growth.min_bytes", g_min);
    put(m, "erase.log_growth.max_bytes", g_max);
    put(m, "erase.envelope_frame.min_bytes", f_min);
    put(m, "erase.envelope_frame.max_bytes", f_max);
    put(m, "erase.log_growth_is_one_envelope", f64::from(u8::from(growth == frames)));
    for (label, counts) in &segments {
        let counts: Vec<f64> = counts.iter().map(|c| *c as f64).collect();
        let (lo, hi) = min_max(&counts);
        put(m, format!("erase.{label}.segments_rewritten.min"), lo);
        put(m, format!("erase.{label}.segments_rewritten.max"), hi);
    }

    let [mut first, last] = hubs;
    drop(last);
    people_rebuild_parts(first.node()?, m)?;
    let Hub { dir, node, persons, .. } = first;
    drop(node);
    people_copy(&dir, scratch.path(), m)?;
    cli(cfg, &dir, &persons[1 + per_hub..], m)?;
    full_rebuild(&dir, m)?;
    put(
        m,
        "erase.ratio.people_vs_full_rebuild.p50",
        ratio(m, "erase.people.p50_ms", "erase.full_rebuild_ms"),
    );
    Ok(())
}

fn count_segments(dir: &Path) -> Result<usize> {
    let log = dir.join("store").join("log");
    let mut n = 0;
    for entry in fs::read_dir(&log)? {
        n += usize::from(entry?.path().extension().is_some_and(|e| e == "tlog"));
    }
    Ok(n)
}

/// What a rebuild of the people database does, part by part, in memory: decode every
/// entry of the log; replay the people documents' changes (attendees and personal
/// details, those in clear) into documents, saved, hydrated and made JSON once each.
fn people_rebuild_parts(node: &Node, m: &mut Metrics) -> Result<()> {
    let t = Instant::now();
    let entries = node.store().log_entries().collect::<Result<Vec<_>, _>>()?;
    put(m, "erase.limit.decode_log_ms", ms(t.elapsed()));
    let mut by_doc: BTreeMap<DocId, Vec<&[u8]>> = BTreeMap::new();
    let mut sealed = 0usize;
    for entry in &entries {
        let LogEntry::Envelope(env) = entry else { continue };
        for (doc, body) in env.present_changes() {
            if !matches!(tessera_records::kind_of(&doc), Some(RecordKind::Attendee | RecordKind::Personal)) {
                continue;
            }
            if body.first() == Some(&tessera_seal::FORMAT_VERSION) {
                sealed += 1;
                continue;
            }
            by_doc.entry(doc).or_default().push(body);
        }
    }
    put(m, "erase.limit.people_docs", by_doc.len() as f64);
    put(m, "erase.limit.people_changes", by_doc.values().map(Vec::len).sum::<usize>() as f64);
    put(m, "erase.limit.people_changes_sealed_skipped", sealed as f64);
    let actor = tessera_records::actor_for(&node.device());
    put(m, "erase.limit.people_apply_ms", ms(replay_documents(&by_doc, &actor, false)?));
    put(m, "erase.limit.people_replay_ms", ms(replay_documents(&by_doc, &actor, true)?));
    Ok(())
}

/// A prototype of another way to make the people database again: copy its live rows
/// (every tree) into a new sled database and flush it, instead of replaying the
/// people's history from the log. Timed three times; the median is kept.
fn people_copy(dir: &Path, scratch: &Path, m: &mut Metrics) -> Result<()> {
    let people = sled::Config::new().path(dir.join("store").join("people")).open()?;
    let (mut took, mut rows, mut bytes) = (Vec::new(), 0u64, 0u64);
    for run in 0..3 {
        let path = scratch.join(format!("people-copy-{run}"));
        let t = Instant::now();
        let copy = sled::Config::new().path(&path).flush_every_ms(Some(2_000)).open()?;
        (rows, bytes) = (0, 0);
        for name in people.tree_names() {
            let (from, to) = (people.open_tree(&name)?, copy.open_tree(&name)?);
            let mut batch = sled::Batch::default();
            for (n, row) in from.iter().enumerate() {
                let (k, v) = row?;
                (rows, bytes) = (rows + 1, bytes + (k.len() + v.len()) as u64);
                batch.insert(k, v);
                if n % 1_000 == 999 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            to.apply_batch(batch)?;
        }
        copy.flush()?;
        drop(copy);
        took.push(ms(t.elapsed()));
        fs::remove_dir_all(&path)?;
    }
    put(m, "erase.proposal.people_copy_ms", median_of(&took));
    put(m, "erase.proposal.people_copy_rows", rows as f64);
    put(m, "erase.proposal.people_copy_bytes", bytes as f64);
    Ok(())
}

/// The release binary: for each person, `attendee edit` (untimed: the person's details
/// get their own document), `attendee edit` again (timed: an ordinary edit) and
/// `attendee erase ID --yes` (timed), spawn to exit. The last person's edit and erasure
/// run with the data directory and the binary evicted from the page cache first.
fn cli(cfg: &Config, dir: &Path, persons: &[DocId], m: &mut Metrics) -> Result<()> {
    if persons.is_empty() {
        return Ok(());
    }
    let bin = &cfg.tessera;
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p tessera-node` (or pass --tessera PATH)",
            bin.display()
        );
    }
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let mut s = Series::default();
    let mut growth = Vec::new();
    for (k, id) in persons.iter().enumerate() {
        let id = id.to_hex();
        let cold = persons.len() > 1 && k + 1 == persons.len();
        let tag = if cold { "cli_cold" } else { "cli" };
        run_cli(bin, dir, &args(&["attendee", "edit", &id, "--notes", "Piano rivisto"]))?;
        if cold {
            evict(&[dir, bin.as_path()])?;
        }
        let edit = run_cli(bin, dir, &args(&["attendee", "edit", &id, "--notes", "Secondo colloquio"]))?;
        s.push(&format!("{tag}.edit"), edit.wall);
        let log = dir.join("store").join("log");
        let before = dir_bytes(&log)?;
        if cold {
            evict(&[dir, bin.as_path()])?;
        }
        let erase = run_cli(bin, dir, &args(&["attendee", "erase", &id, "--yes"]))?;
        s.push(&format!("{tag}.erase"), erase.wall);
        growth.push(dir_bytes(&log)? - before);
        eprintln!(
            "  cli erasure {}/{}{}: {:.0} ms",
            k + 1,
            persons.len(),
            if cold { " (cold)" } else { "" },
            ms(erase.wall)
        );
    }
    s.summarize(m);
    put(m, "erase.cli.log_growth.max_bytes", growth.iter().copied().max().unwrap_or(0) as f64);
    put(
        m,
        "erase.ratio.cli_erase_vs_cli_edit.p50",
        crate::stats::get(m, "erase.cli.erase.p50_ms") / crate::stats::get(m, "erase.cli.edit.p50_ms"),
    );
    Ok(())
}

/// A full materializer rebuild of the same hub (every document, people included): its
/// `docs` tree cleared, then [`Node::open`].
fn full_rebuild(dir: &Path, m: &mut Metrics) -> Result<()> {
    {
        let (store, _) = Store::open(&dir.join("store"), None)?;
        store.derived_tree("docs")?.clear()?;
    }
    let t = Instant::now();
    let node = Node::open(dir)?;
    put(m, "erase.full_rebuild_ms", ms(t.elapsed()));
    drop(node);
    Ok(())
}

// ---------------------------------------------------------------------------------
// report

pub fn print(cfg: &Config, m: &Metrics) {
    let g = |key: &str| crate::stats::get(m, key);
    println!();
    println!(
        "== Erasure: `Node::erase` on a hub holding the workload (log {:.1} MB in {:.0} segments), {} persons ==",
        g("erase.log_bytes") / 1e6,
        g("erase.log_segments"),
        cfg.erasures
    );
    println!("{:<58} {:>9} {:>9} {:>9}", "series (ms)", "p50", "p95", "max");
    let row = |label: &str, key: &str| {
        println!(
            "{label:<58} {:>9.1} {:>9.1} {:>9.1}",
            g(&format!("erase.{key}.p50_ms")),
            g(&format!("erase.{key}.p95_ms")),
            g(&format!("erase.{key}.max_ms"))
        );
    };
    row("Node::erase, end to end", "total");
    row("  first partner's people (history in the first segment)", "first-partner.total");
    row("  last partner's people (history in the last segment)", "last-partner.total");
    row("  to the end of the scrub (append + search + rewrite)", "scrubbed");
    row("    to the end of the first segment rewrite", "first_segment");
    row("    last segment rewritten to the end of the scrub", "after_segments");
    row("  scrub to people database rebuilt", "people");
    row("  people database rebuilt to return (stub)", "after_people");
    row("raw copy + fdatasync + rename of the same segments", "raw_segment_copy");
    row("Node::transact, an ordinary attendee edit (baseline)", "edit");
    row("Node::transact, first edit (details into their own doc)", "edit_first");
    row("warm-up erasure (first on each hub)", "warmup_erase");
    row("Node::open (after an edit and close)", "open");
    row("close (drop) of the node after the edits", "close_after_edit");
    row("close (drop) of the node after an erasure", "close_after_erase");
    row("Node::open after an erasure and close", "open_after_erase");
    let erase = g("erase.total.p50_ms");
    println!(
        "erase ÷ edit (p50): {:.0}×; scrub ÷ raw segment copy (p50): {:.2}×; people rebuild ÷ full materializer \
         rebuild ({:.1} s): {:.2}",
        g("erase.ratio.erase_vs_edit.p50"),
        g("erase.ratio.scrubbed_vs_raw_copy.p50"),
        g("erase.full_rebuild_ms") / 1e3,
        g("erase.ratio.people_vs_full_rebuild.p50")
    );
    println!(
        "segments rewritten per erasure: first partner {:.0}–{:.0}, last partner {:.0}–{:.0}",
        g("erase.first-partner.segments_rewritten.min"),
        g("erase.first-partner.segments_rewritten.max"),
        g("erase.last-partner.segments_rewritten.min"),
        g("erase.last-partner.segments_rewritten.max")
    );
    println!(
        "log growth per erasure: {:.0}–{:.0} B; the erasure envelope's frame: {:.0}–{:.0} B ({})",
        g("erase.log_growth.min_bytes"),
        g("erase.log_growth.max_bytes"),
        g("erase.envelope_frame.min_bytes"),
        g("erase.envelope_frame.max_bytes"),
        if g("erase.log_growth_is_one_envelope") == 1.0 { "one envelope, no copy: met" } else { "MISSED" }
    );
    println!(
        "parts of a people rebuild, in memory: decode the whole log {:.0} ms; replay {:.0} changes of {:.0} people \
         documents: RecordDoc::apply_change {:.0} ms, + save, hydrate, JSON once per document {:.0} ms",
        g("erase.limit.decode_log_ms"),
        g("erase.limit.people_changes"),
        g("erase.limit.people_docs"),
        g("erase.limit.people_apply_ms"),
        g("erase.limit.people_replay_ms")
    );
    println!(
        "proposal: copy the people database's {:.0} live rows ({:.1} MB) into a new sled database and flush: {:.0} ms",
        g("erase.proposal.people_copy_rows"),
        g("erase.proposal.people_copy_bytes") / 1e6,
        g("erase.proposal.people_copy_ms")
    );
    if cfg.cli_erasures > 0 {
        println!(
            "`tessera attendee erase ID --yes`, spawn to exit: p50 {:.0} ms, max {:.0} ms ({:.0} runs); \
             `attendee edit` {:.0} ms; ratio {:.0}×; store evicted first: erase {:.0} ms, edit {:.0} ms; \
             log growth ≤ {:.0} B",
            g("erase.cli.erase.p50_ms"),
            g("erase.cli.erase.max_ms"),
            g("erase.cli.erase.count"),
            g("erase.cli.edit.p50_ms"),
            g("erase.ratio.cli_erase_vs_cli_edit.p50"),
            g("erase.cli_cold.erase.p50_ms"),
            g("erase.cli_cold.edit.p50_ms"),
            g("erase.cli.log_growth.max_bytes")
        );
    }
    println!(
        "target < {ERASE_TARGET_MS:.0} ms per erasure: {}",
        if erase < ERASE_TARGET_MS {
            "met".to_string()
        } else {
            format!("MISSED ({:.1}× at p50)", erase / ERASE_TARGET_MS)
        }
    );
}
