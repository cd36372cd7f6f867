//! `tessera-bench log`: the signed log and the durable store against the machine's
//! limits (raw `fdatasync`, raw ed25519).
//!
//! Every Tessera figure is compared with a raw limit measured in the same run, and
//! the series that are compared are interleaved in rounds (raw, then Tessera, then
//! raw again...) so that a noisy neighbour slows both sides of a ratio alike. One run
//! returns a flat map of metrics; the caller repeats runs and reports medians.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use tessera_log::envelope::{CHANGE_REF_BYTES, HEADER_FIXED_BYTES};
use tessera_log::testkit::{seed_bytes, test_doc, TestNetwork};
use tessera_log::{commit, verify_envelope, Body, Envelope, Head, LogEntry, NewChange, Salt, Timestamp};
use tessera_store::segments::{LogId, SegmentLimits};
use tessera_store::{Policy, SegmentLog, Store};

use crate::stats::{get, median, put, Latency};

/// Metric name → value, for one run (or the medians over runs).
pub use crate::stats::Metrics;

/// Size of a segment-log frame header (length + CRC) in front of each record.
const FRAME_HEADER_BYTES: usize = 8;
/// Size of the header at the start of a segment file.
const SEGMENT_HEADER_BYTES: usize = 32;
/// Bytes of an envelope that do not depend on its changes: fixed header, signature.
const ENVELOPE_FIXED_BYTES: usize = HEADER_FIXED_BYTES + 64;
/// Bytes per change besides its body: header reference, body tag, salt, length.
const PER_CHANGE_BYTES: usize = CHANGE_REF_BYTES + 1 + 16 + 4;
/// Operations of each append series run before measuring (file creation, first blocks).
const WARMUP_APPENDS: usize = 16;
/// Group-commit batch sizes; the largest is also the sync batch size.
pub const GROUP_BATCHES: [usize; 3] = [10, 100, 1000];
const SYNC_BATCH: usize = 1000;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Encoded size of one envelope (1 change), the record of the append benchmarks.
    pub record_bytes: usize,
    /// Timed appends of each durable-append series.
    pub appends: usize,
    /// Rounds the append and group-commit series are interleaved in.
    pub rounds: usize,
    /// Envelopes in each verification set.
    pub verify_envelopes: usize,
    /// Timed passes over each verification set (the median pass is kept).
    pub verify_passes: usize,
    /// Envelopes ingested per group-commit batch size.
    pub group_envelopes: usize,
    /// Sync batches of 1000 envelopes ingested in each verification pass.
    pub sync_batches_per_pass: usize,
}

impl Config {
    pub fn full(record_bytes: usize) -> Config {
        Config {
            record_bytes,
            appends: 2000,
            rounds: 4,
            verify_envelopes: 4000,
            verify_passes: 7,
            group_envelopes: 8000,
            sync_batches_per_pass: 2,
        }
    }

    pub fn quick(record_bytes: usize) -> Config {
        Config {
            record_bytes,
            appends: 200,
            rounds: 2,
            verify_envelopes: 300,
            verify_passes: 2,
            group_envelopes: 2000,
            sync_batches_per_pass: 1,
        }
    }
}

/// Body length of each of `changes` changes so that the envelope encodes to
/// `record_bytes` (rounded down when it does not divide evenly).
pub fn body_len(changes: usize, record_bytes: usize) -> usize {
    record_bytes.saturating_sub(ENVELOPE_FIXED_BYTES + changes * PER_CHANGE_BYTES) / changes.max(1)
}

fn put_latency(m: &mut Metrics, name: &str, l: &Latency) {
    put(m, format!("{name}.p50_us"), l.p50_us);
    put(m, format!("{name}.p99_us"), l.p99_us);
    put(m, format!("{name}.max_us"), l.max_us);
    put(m, format!("{name}.per_s"), l.per_sec);
}

fn trust_entries(net: &TestNetwork) -> Vec<LogEntry> {
    net.entries.iter().cloned().map(LogEntry::Trust).collect()
}

fn open_store(dir: &Path, net: &TestNetwork) -> Result<Store> {
    let (mut store, _) = Store::open(dir, Some(net.network)).context("open store")?;
    store.ingest(&trust_entries(net), Policy::AllOrNothing).context("ingest trust entries")?;
    Ok(store)
}

/// A sled database with the store's configuration and the rows `Store::apply` writes
/// per envelope (layout of tessera-store's `derived.rs`: `e` author seq → location and
/// id; `d` doc author seq → change index; `h` author → head; `m` applied marker), to
/// price that part of an ingest on its own. A replica, not the store's code: keep it in
/// step with `derived.rs`.
struct SledReplica {
    db: sled::Db,
    seq: u64,
}

impl SledReplica {
    fn open(path: &Path) -> Result<SledReplica> {
        Ok(SledReplica { db: sled::Config::new().path(path).flush_every_ms(Some(2_000)).open()?, seq: 0 })
    }

    /// Applies the rows of `envs` (one change each) as one atomic batch, as one ingest does.
    fn apply(&mut self, envs: &[Envelope]) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut author = None;
        for env in envs {
            self.seq += 1;
            let a = env.author();
            author = Some(a);
            let mut chain = vec![b'e'];
            chain.extend_from_slice(a.as_bytes());
            chain.extend_from_slice(&self.seq.to_be_bytes());
            let mut value = vec![0u8; 20];
            value.extend_from_slice(env.id().as_bytes());
            batch.insert(chain, value);
            for (index, change) in env.changes().iter().enumerate() {
                let mut doc = vec![b'd'];
                doc.extend_from_slice(&change.doc.0);
                doc.extend_from_slice(a.as_bytes());
                doc.extend_from_slice(&self.seq.to_be_bytes());
                batch.insert(doc, &(index as u16).to_be_bytes());
            }
        }
        if let Some(a) = author {
            let mut head = vec![b'h'];
            head.extend_from_slice(a.as_bytes());
            batch.insert(head, vec![0u8; 40]);
        }
        batch.insert(b"mapplied", vec![0u8; 16]);
        self.db.apply_batch(batch)?;
        Ok(())
    }
}

/// One full run: every section, in a fresh directory under `base`.
pub fn run(cfg: &Config, base: &Path) -> Result<Metrics> {
    let dir = tempfile::Builder::new().prefix("log-run-").tempdir_in(base).context("create run dir")?;
    let mut m = Metrics::new();
    appends(cfg, dir.path(), &mut m)?;
    group_commit(cfg, dir.path(), &mut m)?;
    verification_and_sync(cfg, dir.path(), &mut m)?;
    cross_ratios(&mut m);
    Ok(m)
}

/// The durable-append series, in the order they are reported.
pub const APPEND_SERIES: [&str; 6] = [
    "raw_append",
    "raw_overwrite",
    "seglog_append",
    "store_ingest1",
    "store_append_local",
    "raw_append_sled",
];

/// Section 1 and 2: one record per fdatasync, raw and through Tessera, interleaved.
fn appends(cfg: &Config, dir: &Path, m: &mut Metrics) -> Result<()> {
    let n = cfg.appends;
    let total = n + WARMUP_APPENDS;
    let mut net = TestNetwork::new(11, 1, 2);
    let network = net.network;
    let body = body_len(1, cfg.record_bytes);
    let ingest_envs: Vec<LogEntry> = (0..total)
        .map(|i| LogEntry::Envelope(net.devices[0].next_simple(&network, i as u64, body)))
        .collect();
    let record = ingest_envs[0].encode();
    let frame = vec![0xa5u8; record.len() + FRAME_HEADER_BYTES];
    put(m, "size.envelope_bytes", (record.len() - 1) as f64);
    put(m, "size.frame_bytes", frame.len() as f64);

    // Raw: positioned write at the end of a growing file + fdatasync (what the log does).
    let raw_path = dir.join("raw-append.dat");
    let raw = OpenOptions::new().read(true).write(true).create_new(true).open(&raw_path)?;
    raw.write_all_at(&[1u8; SEGMENT_HEADER_BYTES], 0)?;
    raw.sync_all()?;
    let mut raw_end = SEGMENT_HEADER_BYTES as u64;
    // Raw over a preallocated (written, synced) file: no size or extent change per sync.
    let over_path = dir.join("raw-overwrite.dat");
    let mut over = OpenOptions::new().read(true).write(true).create_new(true).open(&over_path)?;
    over.write_all(&vec![0x5au8; SEGMENT_HEADER_BYTES + total * frame.len()])?;
    over.sync_all()?;
    File::open(dir)?.sync_all()?;
    let mut over_at = SEGMENT_HEADER_BYTES as u64;

    // Diagnostic: raw append + fdatasync, then the sled rows of one envelope.
    let raw2_path = dir.join("raw-append-sled.dat");
    let raw2 = OpenOptions::new().read(true).write(true).create_new(true).open(&raw2_path)?;
    raw2.write_all_at(&[1u8; SEGMENT_HEADER_BYTES], 0)?;
    raw2.sync_all()?;
    let mut raw2_end = SEGMENT_HEADER_BYTES as u64;
    let mut replica = SledReplica::open(&dir.join("sled-replica"))?;
    let replica_envs: Vec<Envelope> = ingest_envs
        .iter()
        .filter_map(|e| match e {
            LogEntry::Envelope(env) => Some(env.clone()),
            LogEntry::Trust(_) => None,
        })
        .collect();

    let (mut seglog, _) = SegmentLog::open(&dir.join("seglog"), SegmentLimits::default(), LogId([7; 16]))
        .context("open segment log")?;
    let mut ingest_store = open_store(&dir.join("store-ingest"), &net)?;
    let mut local_store = open_store(&dir.join("store-local"), &net)?;
    let local_key = &net.devices[1].key;
    let local_body: Vec<u8> = (0..body).map(|i| i as u8).collect();
    let mut local_changes = (0..total).map(|i| {
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&seed_bytes(11, "bench salt", i as u64)[..16]);
        vec![NewChange { doc: test_doc(11, i as u64), salt: Salt(salt), body: local_body.clone() }]
    });

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); APPEND_SERIES.len()];
    let mut next = [0usize; APPEND_SERIES.len()];
    let per_round = n.div_ceil(cfg.rounds.max(1));
    // Round 0 is the warm-up, not recorded.
    let rounds =
        std::iter::once(WARMUP_APPENDS).chain((0..cfg.rounds).map(|r| per_round.min(n - r * per_round)));
    for (round, ops) in rounds.enumerate() {
        for k in 0..APPEND_SERIES.len() {
            let series = (k + round) % APPEND_SERIES.len();
            for _ in 0..ops {
                let i = next[series];
                next[series] += 1;
                let elapsed = match series {
                    0 => {
                        let t = Instant::now();
                        raw.write_all_at(&frame, raw_end)?;
                        raw.sync_data()?;
                        let e = t.elapsed();
                        raw_end += frame.len() as u64;
                        e
                    }
                    1 => {
                        let t = Instant::now();
                        over.write_all_at(&frame, over_at)?;
                        over.sync_data()?;
                        let e = t.elapsed();
                        over_at += frame.len() as u64;
                        e
                    }
                    2 => {
                        let t = Instant::now();
                        black_box(seglog.append(&record)?);
                        t.elapsed()
                    }
                    3 => {
                        let batch = std::slice::from_ref(&ingest_envs[i]);
                        let t = Instant::now();
                        let report = ingest_store.ingest(batch, Policy::AllOrNothing)?;
                        let e = t.elapsed();
                        ensure!(report.appended.len() == 1, "ingest of one envelope appended {report:?}");
                        e
                    }
                    4 => {
                        let changes = local_changes.next().context("out of local changes")?;
                        let t = Instant::now();
                        black_box(local_store.append_local(local_key, Timestamp(i as i64), changes)?);
                        t.elapsed()
                    }
                    _ => {
                        let t = Instant::now();
                        raw2.write_all_at(&frame, raw2_end)?;
                        raw2.sync_data()?;
                        replica.apply(std::slice::from_ref(&replica_envs[i]))?;
                        let e = t.elapsed();
                        raw2_end += frame.len() as u64;
                        e
                    }
                };
                if round > 0 {
                    samples[series].push(elapsed);
                }
            }
            // Keep sled's background flush (every 2 s) out of the other series.
            match series {
                3 => ingest_store.flush_derived()?,
                4 => local_store.flush_derived()?,
                5 => {
                    replica.db.flush()?;
                }
                _ => {}
            }
        }
    }
    for (name, s) in APPEND_SERIES.iter().zip(&mut samples) {
        let l = Latency::of(s).context("no samples")?;
        put_latency(m, name, &l);
    }
    let raw_p50 = get(m, "raw_append.p50_us");
    let raw_rate = get(m, "raw_append.per_s");
    for name in &APPEND_SERIES[1..] {
        let p50 = get(m, &format!("{name}.p50_us"));
        let rate = get(m, &format!("{name}.per_s"));
        put(m, format!("ratio.{name}_vs_raw.p50"), p50 / raw_p50);
        put(m, format!("ratio.{name}_vs_raw.mean"), raw_rate / rate);
    }
    Ok(())
}

/// Section 3: `Store::ingest` of batches of one device's envelopes, one fsync each.
fn group_commit(cfg: &Config, dir: &Path, m: &mut Metrics) -> Result<()> {
    let largest = *GROUP_BATCHES.iter().max().unwrap_or(&1);
    let rounds = cfg.rounds.max(1);
    let per_round = (cfg.group_envelopes / rounds / largest).max(1) * largest;
    let total = per_round * rounds;
    let mut net = TestNetwork::new(12, 1, GROUP_BATCHES.len());
    let network = net.network;
    let body = body_len(1, cfg.record_bytes);
    let warm = 10;
    let sets: Vec<Vec<LogEntry>> = (0..GROUP_BATCHES.len())
        .map(|d| {
            (0..warm + total)
                .map(|i| LogEntry::Envelope(net.devices[d].next_simple(&network, i as u64, body)))
                .collect()
        })
        .collect();
    let mut store = open_store(&dir.join("store-group"), &net)?;
    // Warm-up: one small batch per device, not timed.
    for set in &sets {
        store.ingest(&set[..warm], Policy::AllOrNothing)?;
    }
    let mut spent = [Duration::ZERO; GROUP_BATCHES.len()];
    let mut count = [0usize; GROUP_BATCHES.len()];
    for round in 0..rounds {
        for k in 0..GROUP_BATCHES.len() {
            let which = (k + round) % GROUP_BATCHES.len();
            let start = warm + round * per_round;
            let range = &sets[which][start..start + per_round];
            for batch in range.chunks(GROUP_BATCHES[which]) {
                let t = Instant::now();
                let report = store.ingest(batch, Policy::AllOrNothing)?;
                spent[which] += t.elapsed();
                ensure!(report.appended.len() == batch.len(), "group batch not fully appended");
                count[which] += batch.len();
            }
            store.flush_derived()?;
        }
    }
    for (i, b) in GROUP_BATCHES.iter().enumerate() {
        put(m, format!("group.b{b}.per_s"), count[i] as f64 / spent[i].as_secs_f64());
    }
    Ok(())
}

/// Pre-built material for raw and Tessera verification of one set of envelopes.
struct VerifySet {
    envs: Vec<Envelope>,
    heads: Vec<Option<Head>>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<DalekSignature>,
    keys: Vec<VerifyingKey>,
    encoded: Vec<Vec<u8>>,
}

impl VerifySet {
    fn new(
        net: &mut TestNetwork,
        device: usize,
        changes: usize,
        count: usize,
        record_bytes: usize,
    ) -> Result<Self> {
        let network = net.network;
        let body: Vec<u8> = (0..body_len(changes, record_bytes)).map(|i| (i * 7) as u8).collect();
        let mut envs = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let docs: Vec<_> =
                (0..changes as u64).map(|c| (test_doc(net.seed, i * 16 + c), body.as_slice())).collect();
            envs.push(net.devices[device].next(&network, &docs));
        }
        let heads = std::iter::once(None)
            .chain(envs.iter().map(|e| Some(Head { seq: e.seq(), id: e.id() })))
            .take(count)
            .collect();
        let messages = envs.iter().map(|e| e.signing_message(&network)).collect();
        let signatures = envs.iter().map(|e| DalekSignature::from_bytes(&e.signature().0)).collect();
        let key = VerifyingKey::from_bytes(net.devices[device].id.as_bytes())?;
        let keys = vec![key; count];
        let encoded = envs.iter().map(|e| LogEntry::Envelope(e.clone()).encode()).collect();
        Ok(VerifySet { envs, heads, messages, signatures, keys, encoded })
    }

    fn strict(&self) -> Result<()> {
        for ((msg, sig), key) in self.messages.iter().zip(&self.signatures).zip(&self.keys) {
            key.verify_strict(black_box(msg), sig)?;
        }
        Ok(())
    }

    fn batch(&self, size: usize) -> Result<()> {
        let refs: Vec<&[u8]> = self.messages.iter().map(Vec::as_slice).collect();
        for ((msgs, sigs), keys) in
            refs.chunks(size).zip(self.signatures.chunks(size)).zip(self.keys.chunks(size))
        {
            ed25519_dalek::verify_batch(black_box(msgs), sigs, keys)?;
        }
        Ok(())
    }

    fn tessera(&self, trust: &tessera_log::TrustState) -> Result<()> {
        for (env, head) in self.envs.iter().zip(&self.heads) {
            black_box(verify_envelope(trust, *head, black_box(env))?);
        }
        Ok(())
    }
}

/// Times `f` over a set of `count` items; returns items per second.
fn rate(count: usize, f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(count as f64 / t.elapsed().as_secs_f64())
}

/// Section 4 and 5: verification throughput against raw ed25519, the per-envelope
/// costs around it, and `Store::ingest` of other devices' envelopes (sync), with the
/// passes of each interleaved.
fn verification_and_sync(cfg: &Config, dir: &Path, m: &mut Metrics) -> Result<()> {
    let n = cfg.verify_envelopes;
    let mut net = TestNetwork::new(13, 1, 2);
    let one = VerifySet::new(&mut net, 0, 1, n, cfg.record_bytes)?;
    let two = VerifySet::new(&mut net, 1, 2, n, cfg.record_bytes)?;
    let trust = net.trust();
    put(m, "size.message1_bytes", one.messages[0].len() as f64);
    put(m, "size.message2_bytes", two.messages[0].len() as f64);
    put(m, "size.envelope2_bytes", two.envs[0].encoded_len() as f64);

    // Sync: envelopes of 40 devices in per-author order, as a peer streams them.
    let mut sync_net = TestNetwork::new(14, 10, 4);
    let sync_network = sync_net.network;
    let sync_total = SYNC_BATCH * cfg.sync_batches_per_pass * cfg.verify_passes;
    let per_device = sync_total.div_ceil(sync_net.devices.len());
    let body = body_len(1, cfg.record_bytes);
    let mut sync_envs = Vec::with_capacity(sync_total);
    for device in &mut sync_net.devices {
        for i in 0..per_device {
            sync_envs.push(LogEntry::Envelope(device.next_simple(&sync_network, i as u64, body)));
        }
    }
    sync_envs.truncate(sync_total);
    let mut sync_store = open_store(&dir.join("store-sync"), &sync_net)?;
    let mut sync_batches = sync_envs.chunks(SYNC_BATCH);
    let mut sync_spent = Duration::ZERO;
    let mut sync_count = 0usize;

    let mut replica = SledReplica::open(&dir.join("sled-rows"))?;

    const SERIES: [&str; 7] =
        ["strict1", "strict2", "batch64", "batch256", "envelope1", "envelope2", "costs"];
    let mut rates: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut costs: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for pass in 0..cfg.verify_passes {
        for k in 0..SERIES.len() {
            let series = SERIES[(k + pass) % SERIES.len()];
            let r = match series {
                "strict1" => rate(n, || one.strict())?,
                "strict2" => rate(n, || two.strict())?,
                "batch64" => rate(n, || one.batch(64))?,
                "batch256" => rate(n, || one.batch(256))?,
                "envelope1" => rate(n, || one.tessera(&trust))?,
                "envelope2" => rate(n, || two.tessera(&trust))?,
                _ => {
                    for (name, ns) in per_envelope_costs(&one, &trust, &mut replica)? {
                        costs.entry(name).or_default().push(ns);
                    }
                    continue;
                }
            };
            rates.entry(series).or_default().push(r);
        }
        for _ in 0..cfg.sync_batches_per_pass {
            let Some(batch) = sync_batches.next() else { break };
            let t = Instant::now();
            let report = sync_store.ingest(batch, Policy::AllOrNothing)?;
            sync_spent += t.elapsed();
            ensure!(report.appended.len() == batch.len(), "sync batch not fully appended");
            sync_count += batch.len();
        }
        sync_store.flush_derived()?;
    }
    for (name, r) in &rates {
        put(m, format!("verify.{name}.per_s"), median(r).unwrap_or(f64::NAN));
    }
    // Ratios pass by pass (the two series of a ratio ran within seconds of each
    // other), then their median.
    for (num, den) in
        [("envelope1", "strict1"), ("envelope2", "strict2"), ("batch64", "strict1"), ("batch256", "strict1")]
    {
        let per_pass: Vec<f64> = rates[num].iter().zip(&rates[den]).map(|(a, b)| a / b).collect();
        put(m, format!("ratio.{num}_vs_{den}"), median(&per_pass).unwrap_or(f64::NAN));
    }
    for (name, c) in &costs {
        put(m, format!("cost.{name}_ns"), median(c).unwrap_or(f64::NAN));
    }
    put(m, "sync.ingest1000.per_s", sync_count as f64 / sync_spent.as_secs_f64());
    Ok(())
}

/// Nanoseconds per envelope of each step that verification or ingest adds to a raw
/// `verify_strict`, over the 1-change set.
fn per_envelope_costs(
    set: &VerifySet,
    trust: &tessera_log::TrustState,
    replica: &mut SledReplica,
) -> Result<Vec<(&'static str, f64)>> {
    let n = set.envs.len();
    let ns = |d: Duration| d.as_nanos() as f64 / n as f64;
    let mut out = Vec::new();

    let t = Instant::now();
    for env in &set.envs {
        black_box(VerifyingKey::from_bytes(black_box(env.author().as_bytes()))?);
    }
    out.push(("key_decompress", ns(t.elapsed())));

    let network = trust.network();
    let t = Instant::now();
    for env in &set.envs {
        black_box(env.signing_message(black_box(&network)));
    }
    out.push(("signing_message", ns(t.elapsed())));

    let t = Instant::now();
    for env in &set.envs {
        for body in env.bodies() {
            if let Body::Present { salt, bytes } = body {
                black_box(commit(salt, black_box(bytes)));
            }
        }
    }
    out.push(("commitment", ns(t.elapsed())));

    let t = Instant::now();
    for env in &set.envs {
        black_box(trust.authorize(&env.author(), env.seq())?);
    }
    out.push(("authorize", ns(t.elapsed())));

    let t = Instant::now();
    for bytes in &set.encoded {
        black_box(LogEntry::decode(black_box(bytes))?);
    }
    out.push(("decode", ns(t.elapsed())));

    let entries: Vec<LogEntry> = set.envs.iter().take(64).cloned().map(LogEntry::Envelope).collect();
    let t = Instant::now();
    for i in 0..n {
        black_box(entries[i % entries.len()].encode());
    }
    out.push(("encode", ns(t.elapsed())));

    let t = Instant::now();
    for chunk in set.envs.chunks(SYNC_BATCH) {
        replica.apply(chunk)?;
    }
    out.push(("sled_rows", ns(t.elapsed())));
    // The same rows one envelope per batch (one ingest per local write).
    let single = &set.envs[..n.min(200)];
    let t = Instant::now();
    for env in single {
        replica.apply(std::slice::from_ref(env))?;
    }
    out.push(("sled_apply_single", t.elapsed().as_nanos() as f64 / single.len() as f64));
    Ok(out)
}

/// Ratios between sections, computed within one run.
fn cross_ratios(m: &mut Metrics) {
    let strict1 = get(m, "verify.strict1.per_s");
    let batch256 = get(m, "verify.batch256.per_s");
    let raw_rate = get(m, "raw_append.per_s");
    let sync = get(m, "sync.ingest1000.per_s");
    put(m, "ratio.sync_vs_strict1", sync / strict1);
    put(m, "ratio.sync_vs_batch256", sync / batch256);
    put(m, "ratio.group_b1_vs_strict1", get(m, "store_ingest1.per_s") / strict1);
    for b in GROUP_BATCHES {
        let r = get(m, &format!("group.b{b}.per_s"));
        put(m, format!("ratio.group_b{b}_vs_raw_append"), r / raw_rate);
        put(m, format!("ratio.group_b{b}_vs_strict1"), r / strict1);
    }
    let strict_ns = 1e9 / strict1;
    put(m, "cost.strict_verify_ns", strict_ns);
    put(m, "cost.verify_envelope_ns", 1e9 / get(m, "verify.envelope1.per_s"));
    put(m, "cost.fsync_per_1000_ns", 1e9 / raw_rate / SYNC_BATCH as f64);
    put(m, "cost.sync_ingest_ns", 1e9 / sync);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_len_hits_the_record_size() {
        let mut net = TestNetwork::new(1, 1, 1);
        let network = net.network;
        let env = net.devices[0].next_simple(&network, 1, body_len(1, 400));
        assert_eq!(env.encoded_len(), 400);
        let b = body_len(2, 400);
        let doc = |n| test_doc(1, n);
        let body = vec![0u8; b];
        let env = net.devices[0].next(&network, &[(doc(1), body.as_slice()), (doc(2), body.as_slice())]);
        assert!(env.encoded_len() <= 400 && env.encoded_len() > 398, "{}", env.encoded_len());
        assert_eq!(body_len(1, 10), 0);
    }
}
