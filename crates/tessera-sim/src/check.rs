//! The invariants checked at the end of every run, after the network healed:
//!
//! - every store (nodes and relays) converged to the same entries within the deadline,
//!   and nothing more was streamed once they had (quiescence);
//! - every acknowledged write is on every store, unless the run explains why not
//!   (destroyed with the only disk holding it, revoked, or forked by a copied data
//!   directory), Jepsen-style: total / acknowledged / survivors / lost;
//! - every log replays, in its own order, through admission into an empty store: no
//!   entry that fails verification was ever stored;
//! - no store lacks an envelope its disk damaged or a body a carrier stripped: each
//!   came back from a peer (save bodies an erasure removed from every store before it
//!   stopped counting: counted, `bodies_gone_with_void_erasures`);
//! - forks exist only for devices whose data directory was copied, and each such
//!   double history is reported on every node;
//! - every node materializes the same documents (hash of every record's value and
//!   automerge heads), although each applied the changes in its own arrival order;
//! - erasure (see [`check_erasures`]): every store holds the same set of erased
//!   persons, none holds a body of any document of an erased person (the erasure's own
//!   excepted), only the registering partner's erasures count, and each of them held
//!   whole and still counting does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tessera_log::{DeviceKey, DocId, EnvelopeId, LogEntry, Person, Seq};

use crate::store::SimStore;
use crate::world::{build_doc, IssuedErasure, World};

/// After convergence, batches already in flight may still arrive, and envelopes of a
/// forked author past its fork (which count for nothing) may still be passed on;
/// quiescence is `QUIET_WINDOW` without any envelope streamed, and it must come within
/// `QUIESCENCE_MAX` of convergence (else: a livelock).
pub(crate) const QUIET_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);
pub(crate) const QUIESCENCE_MAX: std::time::Duration = std::time::Duration::from_secs(600);

pub(crate) fn check(world: &mut World) {
    let mut failures = Vec::new();
    let peers: Vec<usize> = world.real_peers().collect();
    let nodes: Vec<usize> = peers.iter().copied().filter(|&p| world.is_node(p)).collect();
    if world.converged_at.is_none() {
        failures.push(format!(
            "the stores did not converge within {:?} after the network healed",
            world.config.heal_deadline
        ));
    }
    if world.converged_at.is_some() && !world.quiet {
        failures.push(format!(
            "entries were still being streamed {} s after every store had converged (no quiescence)",
            QUIESCENCE_MAX.as_secs()
        ));
    }
    let reference = world.store(nodes[0]);
    crate::debug::after_run(world, &peers);

    // Acknowledged writes.
    let mut counts = world.report.writes.clone();
    let mut described = 0;
    for a in &world.acked {
        let forked = reference.forks().iter().any(|f| f.author == a.author && a.seq >= f.seq);
        let revoked = reference.trust().authorize(&a.author, a.seq).is_err();
        let everywhere =
            peers.iter().all(|&p| world.store(p).envelope_at(&a.author, a.seq).map(|e| e.id()) == Some(a.id));
        if forked {
            counts.excluded_forked += 1;
        } else if revoked {
            counts.excluded_revoked += 1;
        } else if everywhere {
            counts.survivors += 1;
        } else if world.destroyed.contains(&(a.author, a.seq, a.id)) {
            counts.destroyed_by_restore += 1;
        } else {
            counts.lost += 1;
            if described < 5 {
                described += 1;
                let holding: Vec<usize> = peers
                    .iter()
                    .copied()
                    .filter(|&p| world.store(p).envelope_at(&a.author, a.seq).map(|e| e.id()) == Some(a.id))
                    .collect();
                let holders = holding.len();
                if std::env::var_os("TESSERA_SIM_DEBUG").is_some() && holders < 5 {
                    for &p in &peers {
                        let s = world.store(p);
                        eprintln!(
                            "peer {p} holds {:?}: head {:?} forks {:?}",
                            holding.contains(&p),
                            s.heads().get(&a.author).map(|h| h.seq),
                            s.forks()
                                .iter()
                                .filter(|f| f.author == a.author)
                                .map(|f| f.seq)
                                .collect::<Vec<_>>()
                        );
                    }
                }
                failures.push(format!(
                    "acknowledged write lost: device {} seq {} is on {holders} of {} stores",
                    a.author.short(),
                    a.seq,
                    peers.len()
                ));
            }
        }
    }

    // Forks: only copied devices may fork, and a double history must be reported.
    for fork in reference.forks() {
        if !world.cloned_devices.contains(&fork.author) {
            failures.push(format!(
                "device {} forked at seq {} although its data directory was never copied \
                 (a node restored from a backup wrote before it had its own history back?)",
                fork.author.short(),
                fork.seq
            ));
        }
    }
    let mut by_seq: BTreeMap<(tessera_log::DeviceKey, Seq), Vec<EnvelopeId>> = BTreeMap::new();
    for a in world.acked.iter().filter(|a| !world.destroyed.contains(&(a.author, a.seq, a.id))) {
        by_seq.entry((a.author, a.seq)).or_default().push(a.id);
    }
    for ((author, seq), ids) in by_seq {
        let distinct = ids.iter().collect::<std::collections::BTreeSet<_>>().len();
        // Past a revocation the envelopes count for nothing, and neither does a fork there.
        let revoked = reference.trust().authorize(&author, seq).is_err();
        if distinct > 1 && !revoked && !reference.forks().iter().any(|f| f.author == author && f.seq <= seq) {
            failures.push(format!(
                "device {} signed two envelopes at seq {seq} and no fork is reported",
                author.short()
            ));
        }
    }

    // Erasure. The tally is read first: the replay below counts into it too.
    let work = world.tally.get();
    let void = check_erasures(world, &peers, &mut failures);
    let e = &mut world.report.erasures;
    e.refused_on_arrival = work.refused_on_arrival;
    e.scrubbed = work.scrubbed;
    e.scrubbed_at_open = work.scrubbed_at_open;
    e.became_effective = work.became_effective;
    e.before_registration = work.before_registration;
    e.no_longer_counting = work.no_longer_counting;

    // Nothing a carrier stripped or a disk damaged stays missing: every hole and every
    // emptied body came back from a peer.
    for &p in &peers {
        let (holes, stripped) = world.store(p).incomplete();
        // Bodies an erasure removed everywhere before it stopped counting: gone for good.
        let stores: Vec<&SimStore> = peers.iter().map(|&q| world.store(q)).collect();
        let gone = world.store(p).lacking_only_bodies_nobody_has(&void, &stores);
        world.report.erasures.bodies_gone_with_void_erasures += gone as u64;
        let stripped = stripped - gone;
        if holes + stripped > 0 && std::env::var_os("TESSERA_SIM_DEBUG").is_some() {
            for (a, sq) in world.store(p).chain_keys() {
                if world.store(p).counts(a, *sq) && !world.store(p).whole_at(a, *sq) {
                    let whole: Vec<usize> =
                        peers.iter().copied().filter(|&q| world.store(q).whole_at(a, *sq)).collect();
                    let held: Vec<usize> = peers
                        .iter()
                        .copied()
                        .filter(|&q| world.store(q).envelope_at(a, *sq).is_some())
                        .collect();
                    eprintln!(
                        "store {p}: {} #{sq} whole on {whole:?}, held on {} stores",
                        a.short(),
                        held.len()
                    );
                }
            }
        }
        if holes + stripped > 0 {
            failures.push(format!(
                "store {p} still lacks {holes} envelopes lost to damage and the bodies of {stripped} \
                 envelopes a carrier stripped"
            ));
        }
    }

    // No stored entry fails verification: every log replays through admission.
    for &p in &peers {
        let mut fresh = world.genesis.clone();
        for (i, entry) in world.store(p).log().iter().enumerate() {
            if let Err(refused) = fresh.ingest(std::slice::from_ref(entry)) {
                let what = match entry {
                    LogEntry::Envelope(_) => "envelope",
                    LogEntry::Trust(_) => "trust entry",
                };
                failures.push(format!(
                    "store {p} holds a {what} (log index {i}) that fails verification: {}",
                    refused.error
                ));
                break;
            }
        }
    }

    // Identical documents on every node. Each node builds each document from its own
    // log order; nodes that applied the same changes in the same order share the work.
    let mut memo = DocMemo::default();
    let mut digests: BTreeMap<[u8; 32], Vec<usize>> = BTreeMap::new();
    for &p in &nodes {
        digests.entry(documents_digest(world.store(p), &world.device_of(p), &mut memo)).or_default().push(p);
    }
    if digests.len() > 1 {
        failures.push(format!("nodes hold different documents: {} distinct states", digests.len()));
    }
    // A device marked lent with no open loan (two hubs resolved a double loan
    // differently) is always a conflict an operator sees, never silent.
    let records: Vec<(DocId, tessera_records::model::Record)> =
        reference_records(world.store(nodes[0]), &world.device_of(nodes[0]));
    let found = tessera_records::conflicts::detect(&records);
    let mut open_loans: BTreeSet<DocId> = BTreeSet::new();
    for (_, record) in &records {
        if let tessera_records::model::Record::Loan(loan) = record {
            if loan.is_open() {
                open_loans.insert(loan.device.id());
            }
        }
    }
    for (id, record) in &records {
        let tessera_records::model::Record::Device(device) = record else { continue };
        if device.status != tessera_records::vocab::DeviceStatus::Lent || open_loans.contains(id) {
            continue;
        }
        world.report.lent_without_loan += 1;
        let reported = found.iter().any(|c| {
            matches!(c, tessera_records::conflicts::Conflict::DeviceLentWithoutLoan { device, .. } if device == id)
        });
        if !reported {
            failures.push(format!(
                "device {} is marked lent with no open loan and no conflict says so",
                tessera_records::kind::short_id(id)
            ));
        }
    }
    world.report.writes = counts;
    world.report.documents = digests.keys().next().copied();
    world.report.failures.extend(failures);
}

/// The erasure invariant, after the heal, on every store (nodes and relays):
///
/// 1. every store holds the same set of erased persons;
/// 2. no store holds, in a readable record, the body of a change of any document of a
///    person erased on any store (the erasure's own body excepted): stripped on arrival,
///    scrubbed when the erasure started counting, scrubbed again when a restored image
///    had them back, and nothing brought them back;
/// 3. a person is erased only if a device of the partner that registered them signed
///    an erasure (one signed by another partner, with the right nonce, counts nowhere);
/// 4. an erasure signed by a device of the registering partner that the reference store
///    holds whole and that still counts there (not past a revocation, not at or after a
///    fork) is effective there.
///
/// Returns the persons whose erasures by their registering partner all count for
/// nothing at the end (destroyed with their last disk, past a revocation, past a fork):
/// stores that scrubbed their bodies before learning it want them back, and may find
/// them nowhere (see the bodies check).
fn check_erasures(world: &mut World, peers: &[usize], failures: &mut Vec<String>) -> BTreeSet<Person> {
    let reference = world.store(peers[0]);
    let short = |person: &Person| person.0[..4].iter().map(|b| format!("{b:02x}")).collect::<String>();
    let names = |set: &BTreeSet<Person>| set.iter().map(short).collect::<Vec<_>>().join(", ");
    let registrar_of = |person: &Person| world.persons.get(person).map(|r| r.0);
    let by_registrar: Vec<IssuedErasure> =
        world.issued.iter().filter(|e| registrar_of(&e.person) == Some(e.partner)).copied().collect();
    let whole_and_counting = |e: &IssuedErasure| {
        reference.envelope_at(&e.author, e.seq).is_some_and(|env| env.id() == e.id && env.has_all_bodies())
            && reference.counts(&e.author, e.seq)
    };

    // 1. The same erased set everywhere.
    let want = reference.erased().clone();
    let mut disagreeing = 0;
    for &p in peers {
        let got = world.store(p).erased();
        if *got != want {
            disagreeing += 1;
            if disagreeing <= 3 {
                let more: BTreeSet<Person> = got.difference(&want).copied().collect();
                let fewer: BTreeSet<Person> = want.difference(got).copied().collect();
                failures.push(format!(
                    "erasure: store {p} does not agree with store {} on the erased persons: it also erases [{}] \
                     and does not erase [{}]",
                    peers[0],
                    names(&more),
                    names(&fewer)
                ));
            }
        }
    }

    // 2. No body of an erased person on any store.
    let mut erased_anywhere: BTreeSet<Person> = BTreeSet::new();
    for &p in peers {
        erased_anywhere.extend(world.store(p).erased().iter().copied());
    }
    let mut in_damaged = 0u64;
    for &p in peers {
        let s = world.store(p);
        let (readable, damaged) = s.bodies_of(&erased_anywhere);
        in_damaged += damaged.len() as u64;
        if let Some((at, doc)) = readable.first() {
            let whose: BTreeSet<Person> = readable.iter().map(|(_, d)| Person::of(d)).collect();
            failures.push(format!(
                "erasure: store {p} holds {} bodies of erased persons [{}] (first: log index {at}, a change of \
                 document kind {:#04x}); {}",
                readable.len(),
                names(&whose),
                doc.0[0],
                if s.erased().contains(&Person::of(doc)) {
                    "the erasure counts on this store"
                } else {
                    "the erasure counts on other stores, not this one"
                }
            ));
        }
    }

    // 3. Only the registering partner's erasures are effective.
    for person in &erased_anywhere {
        if !by_registrar.iter().any(|e| e.person == *person) {
            let holders: Vec<usize> =
                peers.iter().copied().filter(|&p| world.store(p).erased().contains(person)).collect();
            failures.push(format!(
                "erasure: person {} is erased on stores {holders:?} although no device of the partner that \
                 registered them signed an erasure (only another partner did)",
                short(person)
            ));
        }
    }

    // 4. Every registering partner's erasure held whole and counting is effective.
    for e in by_registrar.iter().filter(|e| whole_and_counting(e)) {
        if !reference.erased().contains(&e.person) {
            failures.push(format!(
                "erasure: the erasure of person {} by its registering partner (device {} seq {}) is held whole \
                 and counts on store {}, and the person is not erased there",
                short(&e.person),
                e.author.short(),
                e.seq,
                peers[0]
            ));
        }
    }

    let void: BTreeSet<Person> = by_registrar
        .iter()
        .map(|e| e.person)
        .filter(|person| !by_registrar.iter().any(|e| e.person == *person && whole_and_counting(e)))
        .collect();
    let counts = &mut world.report.erasures;
    counts.persons_erased = want.len() as u64;
    counts.void = void.len() as u64;
    counts.left_in_damaged_records = in_damaged;
    void
}

/// Digests of documents already built, by document and the exact sequence of changes
/// applied to it.
pub(crate) type DocMemo = HashMap<(DocId, Vec<(DeviceKey, Seq)>), [u8; 32]>;

/// A hash of every document a node materializes: its record value (or that it cannot be
/// read as a record) and its automerge heads. An erased person's documents have no body
/// left anywhere: each is an empty document on every node.
/// Every record a node materializes, readable or not skipped.
fn reference_records(store: &SimStore, device: &DeviceKey) -> Vec<(DocId, tessera_records::model::Record)> {
    store
        .docs()
        .filter(|doc| store.doc_changes(doc).iter().any(|(a, s)| store.counts(a, *s)))
        .filter_map(|doc| Some((*doc, build_doc(store, device, doc)?.hydrate().ok()?)))
        .collect()
}

pub(crate) fn documents_digest(store: &SimStore, device: &DeviceKey, memo: &mut DocMemo) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for doc in store.docs() {
        let order: Vec<(DeviceKey, Seq)> =
            store.doc_changes(doc).iter().copied().filter(|(a, s)| store.counts(a, *s)).collect();
        if order.is_empty() {
            continue;
        }
        let digest = memo.entry((*doc, order)).or_insert_with(|| {
            let mut d = blake3::Hasher::new();
            if let Some(mut document) = build_doc(store, device, doc) {
                match document.hydrate() {
                    Ok(record) => d.update(&serde_json::to_vec(&record).unwrap_or_default()),
                    Err(_) => d.update(b"unreadable"),
                };
                let mut heads = document.heads();
                heads.sort();
                for head in heads {
                    d.update(&head.0);
                }
            }
            *d.finalize().as_bytes()
        });
        h.update(&doc.0);
        h.update(digest);
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    //! Property: any order and any duplication of the same set of entries gives the
    //! same documents (and the same store digest), with concurrent edits of the same
    //! records by four devices of two partners, a revocation, and a device that signed
    //! two histories. Entries a store cannot place yet (a chain gap, a certificate not
    //! there yet) are retried, as sync and import do.

    use proptest::prelude::*;
    use tessera_log::testkit::TestNetwork;
    use tessera_records::kind::{new_doc_id, RecordKind};
    use tessera_records::model::{Record, RecordRef};
    use tessera_records::{actor_for, RecordDoc};

    use super::*;
    use crate::rng::Rng;
    use crate::store::VerifiedMemo;
    use crate::workload;

    struct Scenario {
        genesis: SimStore,
        entries: Vec<LogEntry>,
        device: DeviceKey,
    }

    fn scenario() -> Scenario {
        let mut net = TestNetwork::new(11, 2, 2);
        let network = net.network;
        let genesis = SimStore::new(&net.entries, network, VerifiedMemo::default());
        let mut rng = Rng::new(5);
        let site = RecordRef(new_doc_id(RecordKind::Site, [1; 15]));
        let docs: Vec<DocId> = (0..3).map(|i| new_doc_id(RecordKind::Attendee, [i + 2; 15])).collect();
        let mut entries = Vec::new();
        // Device 0 creates the records; every device edits them from that base,
        // without seeing the others' edits (concurrent edits of the same fields).
        let mut base = Vec::new();
        for doc in &docs {
            let record = Record::Attendee(workload::attendee(&mut rng, site));
            let (mut created, change) = RecordDoc::create(actor_for(&net.devices[0].id), &record, 0).unwrap();
            let env = net.devices[0].next(&network, &[(*doc, &change)]);
            entries.push(LogEntry::Envelope(env));
            base.push((created.save(), record));
        }
        for d in 0..4 {
            for (i, doc) in docs.iter().enumerate() {
                let mut document = RecordDoc::load(&base[i].0, actor_for(&net.devices[d].id)).unwrap();
                let edited = workload::edit(&mut rng, base[i].1.clone(), None);
                if let Some(change) = document.update(&edited, 1_000 * (d as i64 + 1)).unwrap() {
                    let env = net.devices[d].next(&network, &[(*doc, &change)]);
                    entries.push(LogEntry::Envelope(env));
                }
            }
        }
        // Device 3 signs a second history from its seq 2 on (a copied data directory).
        let first = match &entries.iter().rev().find(
            |e| matches!(e, LogEntry::Envelope(env) if env.author() == net.devices[3].id && env.seq().0 == 1),
        ) {
            Some(LogEntry::Envelope(env)) => (env.seq(), env.id()),
            _ => unreachable!("device 3 wrote at seq 1"),
        };
        net.devices[3].head = Some(first);
        let record = Record::Attendee(workload::attendee(&mut rng, site));
        let (_, change) = RecordDoc::create(actor_for(&net.devices[3].id), &record, 5_000).unwrap();
        let other_doc = new_doc_id(RecordKind::Attendee, [9; 15]);
        for _ in 0..2 {
            let env = net.devices[3].next(&network, &[(other_doc, &change)]);
            entries.push(LogEntry::Envelope(env));
        }
        // Partner 0 revokes device 1 after its first envelope.
        let revocation = net.revoke_device(0, net.devices[1].id, Seq(1), "tablet smarrito");
        entries.push(LogEntry::Trust(revocation));
        Scenario { genesis, entries, device: net.devices[0].id }
    }

    /// Delivers `entries` in batches of `batch`, retrying what could not be placed.
    fn deliver(genesis: &SimStore, entries: Vec<LogEntry>, batch: usize) -> SimStore {
        let mut store = genesis.clone();
        let mut pending = entries;
        for _ in 0..pending.len() + 2 {
            let mut next = Vec::new();
            for chunk in pending.chunks(batch) {
                if store.ingest(chunk).is_err() {
                    for entry in chunk {
                        if store.ingest(std::slice::from_ref(entry)).is_err() {
                            next.push(entry.clone());
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            pending = next;
        }
        store
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn any_order_and_duplication_gives_the_same_documents(
            keys in proptest::collection::vec(any::<u64>(), 40),
            dup_every in 2usize..6,
            batch in 1usize..9,
        ) {
            let s = scenario();
            let in_order = deliver(&s.genesis, s.entries.clone(), 64);
            prop_assert!(!in_order.forks().is_empty());
            let expected = documents_digest(&in_order, &s.device, &mut DocMemo::default());

            let mut shuffled: Vec<(u64, LogEntry)> =
                s.entries.iter().cloned().enumerate().map(|(i, e)| (keys[i % keys.len()] ^ i as u64, e)).collect();
            shuffled.sort_by_key(|(k, _)| *k);
            let mut entries: Vec<LogEntry> = shuffled.into_iter().map(|(_, e)| e).collect();
            let dups: Vec<LogEntry> = entries.iter().step_by(dup_every).cloned().collect();
            entries.extend(dups);
            let store = deliver(&s.genesis, entries, batch);
            prop_assert_eq!(documents_digest(&store, &s.device, &mut DocMemo::default()), expected);
            prop_assert_eq!(store.digest(), in_order.digest());
        }
    }
}
