//! Sealed bodies, through real `tessera` processes and a relay on loopback: the
//! relay's files and the bundles on a stick hold none of the personal data they
//! carry; hubs given the read key read each other's records; a revoked device reads
//! nothing written after its revocation.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{certified_relay, field, joined_hub, joined_hub_unknown_to, ok, RelayProcess};

/// Synthetic canary values, unlikely anywhere by chance.
const CANARIES: [&str; 8] = [
    "Zefirina",
    "Canarinosky",
    "3470001122",
    "zefirina.canarinosky@example.org",
    "Scuola Canarina",
    "Ortensia Canarinosky",
    "3489998877",
    "nota-canarina-riservata",
];

fn add_canary(data: &Path) -> String {
    let out = ok(
        data,
        &[
            "attendee",
            "add",
            "--given",
            CANARIES[0],
            "--family",
            CANARIES[1],
            "--birth-year",
            "2012",
            "--role",
            "student",
            "--phone",
            CANARIES[2],
            "--email",
            CANARIES[3],
            "--school",
            CANARIES[4],
            "--guardian-name",
            CANARIES[5],
            "--guardian-phone",
            CANARIES[6],
            "--notes",
            CANARIES[7],
            "--consent-by",
            "guardian",
        ],
    );
    common::saved_id(&out).unwrap()
}

/// Every file under `dir` (recursively) that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    if dir.is_file() {
        let bytes = std::fs::read(dir).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(dir.display().to_string());
        }
        return found;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

fn assert_no_canary(dir: &Path, canaries: &[&str]) {
    for canary in canaries {
        let found = files_holding(dir, canary);
        assert!(found.is_empty(), "{canary:?} found in {found:?}");
    }
}

#[test]
fn relay_child() {
    common::relay_child_main();
}

#[test]
fn the_relay_bundles_and_other_partners_hold_no_personal_data_and_every_hub_reads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    // B and C are hubs of a second partner; A learns of B only through the relay.
    let b = joined_hub_unknown_to(&a, dir.path(), "Polo B");
    let c = joined_hub(&a, dir.path(), "Polo C");
    let relay_dir = certified_relay(&a, dir.path());
    let relay = RelayProcess::start("relay_child", &relay_dir, 0, Duration::from_secs(30));
    let addr = relay.addr.to_string();

    let id = add_canary(&a);
    ok(&a, &["sync", "--peer", &addr]);
    ok(&b, &["sync", "--peer", &addr]);
    // B holds A's changes, sealed with keys A made before it knew B: nothing to read.
    assert!(!ok(&b, &["site", "list"]).contains("Polo A"));
    // A meets B's certificate at the relay and grants it the network's key.
    ok(&a, &["sync", "--peer", &addr]);
    ok(&b, &["sync", "--peer", &addr]);
    assert!(ok(&b, &["site", "list"]).contains("Polo A"), "B reads what every hub reads");
    // Not the personal details of A's attendee: they are A's partner's to read.
    let shown = ok(&b, &["attendee", "show", &id]);
    assert!(shown.contains("reserved to") && shown.contains("2012"), "{shown}");
    assert!(!CANARIES.iter().any(|c| shown.contains(c)), "{shown}");
    let listed = ok(&b, &["attendee", "list"]);
    assert!(listed.contains("1 people registered by other organisations"), "{listed}");

    // B registers a person of its own: C, of B's partner, reads her; A does not.
    let own = ok(
        &b,
        &[
            "attendee",
            "add",
            "--given",
            "Berenice",
            "--family",
            "Zaffirotti",
            "--birth-year",
            "1990",
            "--role",
            "citizen",
            "--phone",
            "3331112223",
            "--consent-by",
            "self",
        ],
    );
    let own = common::saved_id(&own).unwrap();
    ok(&b, &["sync", "--peer", &addr]);
    ok(&c, &["sync", "--peer", &addr]);
    ok(&a, &["sync", "--peer", &addr]);
    assert!(ok(&c, &["attendee", "show", &own]).contains("Zaffirotti"), "a hub of the same partner reads");
    assert!(!ok(&a, &["attendee", "show", &own]).contains("Zaffirotti"));
    // What every hub reads is the same everywhere.
    let fingerprint = |d: &Path| field(&ok(d, &["status"]), "Records fingerprint");
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_eq!(fingerprint(&b), fingerprint(&c));

    // The same person registered by both partners is found without either reading
    // the other's names (the blind index).
    common::add_person_named(&a, "Giulia", "Doppiotti");
    common::add_person_named(&b, "Giulia", "Doppiotti");
    ok(&a, &["sync", "--peer", &addr]);
    ok(&b, &["sync", "--peer", &addr]);
    let conflicts = ok(&b, &["conflicts", "list"]);
    assert!(conflicts.contains("dup-"), "{conflicts}");

    // Not one canary in any file of the relay, of B or of C, nor in a bundle.
    drop(relay);
    for d in [&relay_dir, &b, &c] {
        assert_no_canary(d, &CANARIES);
    }
    assert_no_canary(&relay_dir, &["Zaffirotti", "3331112223", "Doppiotti"]);
    assert_no_canary(&a, &["Zaffirotti", "3331112223"]);
    let bundle = dir.path().join("a.tessera");
    ok(&a, &["export", bundle.to_str().unwrap()]);
    assert_no_canary(&bundle, &CANARIES);
    assert!(std::fs::read(&bundle).unwrap().len() > 1000, "the bundle carries the changes");

    // The auditor without a read key verifies everything and reads nothing.
    let auditor = dir.path().join("auditor");
    let verify =
        common::tessera(&auditor).args(["audit", "verify", bundle.to_str().unwrap()]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let log = common::tessera(&auditor)
        .args(["audit", "log", bundle.to_str().unwrap(), "--show-personal-data"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("encrypted (the network scope, epoch 0)"), "{log}");
    assert!(log.contains("encrypted (the scope of partner"), "{log}");
    assert!(!CANARIES.iter().any(|c| log.contains(c)), "{log}");

    // A's organisation grants its auditor read access explicitly: the auditor's
    // computer has a device key (uncertified: it never writes), A gives it the keys.
    let network = field(&ok(&a, &["status"]), "Network");
    let auditor = dir.path().join("revisore");
    let init = ok(&auditor, &["init", "--site", "Revisore", "--network", &network]);
    let out = ok(&a, &["keys", "grant", "--device", &field(&init, "Device key")]);
    assert!(out.contains("Read keys given"), "{out}");
    ok(&a, &["export", bundle.to_str().unwrap()]);
    let log = ok(&auditor, &["audit", "log", bundle.to_str().unwrap(), "--show-personal-data"]);
    assert!(log.contains(CANARIES[1]) && log.contains(CANARIES[5]), "the auditor reads A's attendee: {log}");
    assert!(!log.contains("Zaffirotti"), "not B's: {log}");
    // Given twice, nothing new is written.
    assert!(ok(&a, &["keys", "grant", "--device", &field(&init, "Device key")]).contains("already holds"));
}

#[test]
fn a_revoked_device_reads_nothing_written_after_its_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    // A learns C's certificate (the partner administrator imports it there too), so
    // its first write grants C the key.
    let c = joined_hub(&a, dir.path(), "Polo C");
    let c_device = field(&ok(&c, &["status"]), "Device key");
    ok(&a, &["device", "add", "--tag", "A-1", "--kind", "tablet", "--origin", "donated"]);
    let before = dir.path().join("before.tessera");
    ok(&a, &["export", before.to_str().unwrap()]);
    ok(&c, &["import", before.to_str().unwrap()]);
    assert!(ok(&c, &["device", "list"]).contains("A-1"), "C reads what was written before");

    // C's laptop is stolen: its partner revokes it; A learns of the revocation.
    let revocation = common::revoke_on(&a, &c_device, 0, &dir.path().join("revoke-c.trust"));
    ok(&a, &["import", revocation.to_str().unwrap()]);
    let id = add_canary(&a);
    let after = dir.path().join("after.tessera");
    ok(&a, &["export", after.to_str().unwrap()]);
    let log = ok(&a, &["audit", "log", after.to_str().unwrap()]);
    assert!(log.contains("epoch 1"), "the revocation started a new epoch: {log}");

    // The stolen laptop gets the bundle anyway: the envelopes verify (A is not
    // revoked), their bodies stay sealed.
    ok(&c, &["import", after.to_str().unwrap()]);
    let listed = ok(&c, &["attendee", "list"]);
    assert!(!listed.contains(CANARIES[1]), "{listed}");
    assert!(common::tessera(&c).args(["attendee", "show", &id]).output().unwrap().stdout.is_empty());
    assert_no_canary(&c, &CANARIES);
    // A still reads everything.
    assert!(ok(&a, &["attendee", "show", &id]).contains(CANARIES[1]));
}

/// The erased persons of the copy in `data` (a node's or relay's data directory), and
/// how many bodies of their documents it still holds (the erasures' own excepted).
fn erased_bodies_held(data: &Path) -> (usize, usize) {
    let store = if data.join("store").is_dir() { data.join("store") } else { data.to_path_buf() };
    let contents = tessera_store::read_store(&store).unwrap();
    let envelopes = || {
        contents.entries.iter().filter_map(|e| match e {
            tessera_log::LogEntry::Envelope(env) => Some(env),
            _ => None,
        })
    };
    let mut erased: std::collections::BTreeSet<tessera_log::Person> = envelopes()
        .flat_map(|env| env.changes().iter().map(|c| c.doc))
        .filter(tessera_log::erasure::is_erasure_doc)
        .map(|doc| tessera_log::Person::of(&doc))
        .collect();
    // And the persons the network key erased (trust entries).
    erased.extend(contents.entries.iter().filter_map(|e| match e {
        tessera_log::LogEntry::Trust(t) => match &t.statement {
            tessera_log::TrustStatement::ErasePerson(p) => Some(p.person),
            _ => None,
        },
        _ => None,
    }));
    let held = envelopes()
        .flat_map(|env| env.present_changes().map(|(doc, _)| doc).collect::<Vec<_>>())
        .filter(|doc| {
            tessera_log::erasure::erases_body_of(&|p: &tessera_log::Person| erased.contains(p), doc)
        })
        .count();
    (erased.len(), held)
}

/// The total line of `report --csv` (sessions held, unique attendees, hours...).
fn report_total(data: &Path) -> String {
    ok(data, &["report", "--csv"]).lines().last().unwrap_or_default().to_string()
}

#[test]
fn an_erased_person_is_gone_from_every_copy_and_nothing_brings_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    // A2 and the stale hub S are hubs of A's organisation (they read its people); B is
    // another organisation's hub.
    let a2 = common::joined_hub_of_same_partner(&a, dir.path(), "Polo A2");
    let stale = common::joined_hub_of_same_partner(&a, dir.path(), "Polo S");
    let b = joined_hub(&a, dir.path(), "Polo B");
    let relay_dir = certified_relay(&a, dir.path());
    let relay = RelayProcess::start("relay_child", &relay_dir, 0, Duration::from_secs(60));
    let addr = relay.addr.to_string();
    // The organisation's auditor, granted read access: what it reads, is there.
    let network = field(&ok(&a, &["status"]), "Network");
    let auditor = dir.path().join("revisore");
    let init = ok(&auditor, &["init", "--site", "Revisore", "--network", &network]);

    let id = add_canary(&a);
    // The same child registered again at A2 (merged into A's record below).
    let twice = add_canary(&a2);
    // A person of B's organisation, which the coordinator will erase with the network key.
    let of_b = ok(
        &b,
        &[
            "attendee",
            "add",
            "--given",
            "Ottavina",
            "--family",
            "Coordinatelli",
            "--birth-year",
            "1961",
            "--role",
            "citizen",
            "--phone",
            "3397770001",
            "--consent-by",
            "self",
        ],
    );
    let of_b = common::saved_id(&of_b).unwrap();
    let session = ok(
        &a,
        &[
            "session",
            "add",
            "--kind",
            "course",
            "--topic",
            "Tablet sicuro",
            "--start",
            "2026-11-02T15:00",
            "--end",
            "2026-11-02T17:00",
            "--participant",
            &id,
        ],
    );
    assert!(common::saved_id(&session).is_some(), "{session}");
    ok(&a, &["keys", "grant", "--device", &field(&init, "Device key")]);
    for hub in [&a, &a2, &stale, &b, &a, &a2, &stale, &b] {
        ok(hub, &["sync", "--peer", &addr]);
    }
    let conflicts = ok(&a, &["conflicts", "list"]);
    let dup = conflicts.lines().find(|l| l.contains(&twice)).and_then(|l| l.split_whitespace().next());
    let dup = dup.unwrap_or_else(|| panic!("{twice} not in {conflicts}"));
    ok(&a, &["conflicts", "resolve", dup, "--keep", &id]);
    assert!(ok(&a2, &["attendee", "show", &id]).contains(CANARIES[1]), "A2 reads A's people");
    assert!(ok(&stale, &["attendee", "show", &id]).contains(CANARIES[1]));
    let counted = report_total(&b);
    assert!(counted.starts_with("Total,1,1,"), "{counted}");
    let old_bundle = dir.path().join("old.tessera");
    ok(&a, &["export", old_bundle.to_str().unwrap()]);
    let log = ok(&auditor, &["audit", "log", relay_dir.to_str().unwrap(), "--show-personal-data"]);
    assert!(log.contains(CANARIES[1]), "the auditor reads the person in the relay's copy: {log}");

    // Another organisation may not erase A's person; nobody erases without --yes.
    let refused = common::tessera(&b).args(["attendee", "erase", &id, "--yes"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only the organisation that registered"));
    let unconfirmed = common::tessera(&a).args(["attendee", "erase", &id]).output().unwrap();
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    assert!(ok(&a, &["attendee", "show", &id]).contains(CANARIES[1]), "nothing was erased yet");

    // A may not erase B's person; the coordinator (A's machine holds the network key
    // here) may, for an organisation that cannot.
    let refused = common::tessera(&a).args(["attendee", "erase", &of_b, "--yes"]).output().unwrap();
    assert!(!refused.status.success());
    let network_key = a.join("keys/network.key");
    let by_network =
        ok(&a, &["attendee", "erase", &of_b, "--yes", "--network-key", network_key.to_str().unwrap()]);
    assert!(by_network.contains("erased on"), "{by_network}");
    let erased = ok(&a, &["attendee", "erase", &id, "--yes"]);
    assert!(erased.contains("erased on") && erased.contains(&twice), "the merged duplicate too: {erased}");
    assert_no_canary(&a, &CANARIES);
    let shown = ok(&a, &["attendee", "show", &id]);
    assert!(shown.contains("art. 17") && shown.contains("2012"), "{shown}");
    let edit = common::tessera(&a).args(["attendee", "edit", &id, "--phone", "3330000000"]).output().unwrap();
    assert!(!edit.status.success(), "an erased person is not written again");

    // Every hub that syncs removes them; the stale hub, syncing last, offers the old
    // bodies to the relay, which refuses them, and then removes its own.
    for hub in [&a, &a2, &b, &stale, &a2, &b] {
        ok(hub, &["sync", "--peer", &addr]);
    }
    // The old bundle, imported anywhere, brings nothing back.
    for hub in [&a, &a2] {
        ok(hub, &["import", old_bundle.to_str().unwrap()]);
    }
    drop(relay);
    for d in [&a, &a2, &stale, &b, &relay_dir] {
        assert_no_canary(d, &CANARIES);
        assert_no_canary(d, &["Coordinatelli", "3397770001"]);
    }
    let shown = ok(&b, &["attendee", "show", &of_b]);
    assert!(
        shown.contains("art. 17") && shown.contains("1961"),
        "B's own person, erased by the network: {shown}"
    );
    for hub in [&a2, &stale, &b] {
        let shown = ok(hub, &["attendee", "show", &id]);
        assert!(shown.contains("art. 17"), "{shown}");
    }
    // The session stays counted, anonymously, everywhere.
    assert_eq!(report_total(&b), counted);
    assert_eq!(report_total(&a2), counted);
    let fingerprint = |d: &Path| field(&ok(d, &["status"]), "Records fingerprint");
    for hub in [&a2, &stale, &b] {
        assert_eq!(fingerprint(hub), fingerprint(&a));
    }
    // Not one body of the person's documents is left in any log (the relay's included).
    for d in [&a, &a2, &stale, &b, &relay_dir] {
        assert_eq!(erased_bodies_held(d), (3, 0), "{}", d.display());
    }
    // The relay's copy verifies, and the auditor, who could read the person's
    // details before, finds only that they were erased.
    for copy in [&relay_dir, &a, &stale] {
        let verify =
            common::tessera(&auditor).args(["audit", "verify", copy.to_str().unwrap()]).output().unwrap();
        assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
        let log = ok(&auditor, &["audit", "log", copy.to_str().unwrap(), "--show-personal-data"]);
        assert!(log.contains("erased on") && log.contains("art. 17"), "{log}");
        assert!(!CANARIES.iter().any(|c| log.contains(c)), "{log}");
    }
}
