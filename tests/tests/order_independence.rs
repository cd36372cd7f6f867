//! Property: any order and any duplication of the same set of envelopes yields the
//! same documents on every node (the promise that makes offline sync converge).
//!
//! Envelopes made by several real nodes (record edits through `Node::transact`) are
//! delivered to fresh nodes as bundles-worth of entries in shuffled, duplicated
//! batches; every receiver must end with the records fingerprint of the others.

use proptest::prelude::*;
use tessera_log::LogEntry;
use tessera_node::Node;
use tessera_records::kind::RecordKind;
use tessera_records::model::Record;
use tessera_store::Policy;

/// Two writer nodes in one network (the second joined through the first's partner)
/// with concurrent edits; returns every entry of both.
fn workload() -> (tempfile::TempDir, Vec<LogEntry>, String) {
    let dir = tempfile::tempdir().unwrap();
    let a_dir = dir.path().join("a");
    tessera_node::identity::init_single_machine(&a_dir, "Polo A", tessera_log::DeviceRole::Hub, "Coop Prova")
        .unwrap();
    // The receiver's device, certified by A's partner before A writes, so A seals
    // for it too (every receiver opens the same directory afresh: see `receiver`).
    let config = tessera_node::config::NodeConfig::load(&a_dir).unwrap();
    let network = tessera_node::trust_file::parse_network(&config.network).unwrap();
    let r_config = tessera_node::identity::init_joining(
        &dir.path().join("r-template"),
        "Ricevente",
        tessera_log::DeviceRole::Hub,
        network,
    )
    .unwrap();
    let partner_key = tessera_store::read_secret_key(&a_dir.join("keys/partner.key"), "partner").unwrap();
    let certificate = tessera_log::TrustEntry::sign(
        network,
        tessera_node::node::now(),
        tessera_log::TrustStatement::Device(tessera_log::DeviceCertificate {
            partner: tessera_log::PartnerKey(partner_key.public()),
            device: tessera_log::DeviceKey(
                tessera_node::identity::parse_public_key(&r_config.device).unwrap(),
            ),
            role: tessera_log::DeviceRole::Hub,
            site: "Ricevente".into(),
        }),
        &partner_key,
    )
    .unwrap();
    let mut a = Node::open(&a_dir).unwrap();
    a.ingest(&[LogEntry::Trust(certificate)], Policy::AllOrNothing).unwrap();
    let ui = tessera_node::ui::Ui::new(Some("en")).unwrap();
    let site = tessera_node::commands::own_site(&mut a, &ui).unwrap();
    let mut ids = Vec::new();
    for i in 0..6u16 {
        let record = Record::Device(tessera_records::model::Device {
            asset_tag: format!("T-{i}"),
            kind: tessera_records::vocab::DeviceKind::Tablet,
            model: String::new(),
            serial: String::new(),
            origin: tessera_records::vocab::DeviceOrigin::Donated,
            condition: tessera_records::vocab::DeviceCondition::Good,
            status: tessera_records::vocab::DeviceStatus::InStock,
            site: tessera_records::model::RecordRef(site),
        });
        let id = Node::new_id(RecordKind::Device).unwrap();
        a.transact(&[(id, record)]).unwrap();
        ids.push(id);
    }
    // Edits on top of earlier edits (automerge dependencies across envelopes).
    for (n, id) in ids.iter().enumerate() {
        let Some(Record::Device(mut d)) = a.docs().record(id).unwrap() else { panic!() };
        d.model = format!("Modello {n}");
        a.transact(&[(*id, Record::Device(d))]).unwrap();
    }
    let entries: Vec<LogEntry> =
        a.store().entries_from(a.store().log_start()).map(|e| e.unwrap().1).collect();
    let fingerprint = a.docs().state_digest().unwrap();
    drop(a);
    (dir, entries, fingerprint)
}

/// A fresh receiver: a copy of the certified joining node made before any entry
/// (its key and an empty store), whose trust comes with the entries.
fn receiver(dir: &std::path::Path, template: &std::path::Path) -> Node {
    copy_dir(template, dir);
    Node::open(dir).unwrap()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    let mode = std::fs::metadata(from).unwrap().permissions();
    std::fs::set_permissions(to, mode).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_duplication_gives_the_same_documents(
        order in proptest::collection::vec(any::<u32>(), 64),
        dup_seed in any::<u64>(),
        batch in 1usize..8,
    ) {
        let (dir, entries, fingerprint) = workload();
        // Trust entries must precede what they certify; envelopes go in any order
        // across authors, but one author's chain only verifies in order, so a
        // receiver retries what it could not place yet (as sync and import do).
        let mut shuffled: Vec<LogEntry> = entries.clone();
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (order[i % order.len()] as usize ^ (dup_seed as usize).rotate_left(i as u32)) % (i + 1);
            shuffled.swap(i, j);
        }
        let dups: Vec<LogEntry> = shuffled.iter().step_by(3).cloned().collect();
        shuffled.extend(dups);
        let recv_dir = dir.path().join("r");
        let mut node = receiver(&recv_dir, &dir.path().join("r-template"));
        let mut pending = shuffled;
        for _round in 0..n + 2 {
            if pending.is_empty() { break; }
            let mut next = Vec::new();
            for chunk in pending.chunks(batch) {
                let (report, _) = node.ingest(chunk, Policy::SkipInvalid).unwrap();
                next.extend(report.rejected.iter().map(|r| chunk[r.index].clone()));
            }
            pending = next;
        }
        prop_assert!(pending.is_empty(), "{} entries never placed", pending.len());
        prop_assert_eq!(node.docs().state_digest().unwrap(), fingerprint);
    }
}
