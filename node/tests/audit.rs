//! The auditor's checks: a valid bundle verifies; thousands of random mutations are
//! all either refused at read or reported as problems; gaps, forks and changes after
//! a revocation are named.

mod common;

use common::{field, ok, saved_id, tessera};
use tessera_log::bundle::{read_all, BundleWriter};
use tessera_log::LogEntry;
use tessera_node::audit::{read_bundle, verify};

fn exported(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let a = dir.join("a");
    ok(&a, &["init", "--site", "Polo Audit"]);
    // A hub of the network known to `a` before it writes: the bodies are sealed with
    // a key `a` grants it (see `audit_verify_and_import_agree...`).
    common::joined_hub(&a, dir, "Polo Ordine");
    for i in 0..6 {
        ok(&a, &["device", "add", "--tag", &format!("T-{i}"), "--kind", "tablet", "--origin", "donated"]);
    }
    let bundle = dir.join("a.tessera");
    ok(&a, &["export", bundle.to_str().unwrap()]);
    let bytes = std::fs::read(&bundle).unwrap();
    (a, bytes)
}

/// Re-signs `entries` as a bundle of `a`'s device (an exporter rewriting history).
fn resigned(a: &std::path::Path, bytes: &[u8], edit: impl FnOnce(&mut Vec<LogEntry>)) -> Vec<u8> {
    let (header, mut entries) = read_all(bytes).unwrap();
    edit(&mut entries);
    let key = tessera_store::read_secret_key(&a.join("keys/device.key"), "device").unwrap();
    let mut w =
        BundleWriter::new(Vec::new(), header.network, &key, header.created_at, &header.base, &header.heads)
            .unwrap();
    for e in &entries {
        w.write_entry(e).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn a_valid_bundle_verifies_and_no_mutation_passes_as_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (a, bytes) = exported(dir.path());
    let network = tessera_store::trust_file::parse_network(&field(&ok(&a, &["status"]), "Network")).unwrap();
    let source = read_bundle(bytes.as_slice(), "bundle".into()).unwrap();
    let clean = verify(&source, Some(network));
    assert_eq!(clean.exit_code(), 0, "{:?}", clean.problems);
    assert_eq!(clean.envelopes, 8, "a site, the grant of read keys to the hub, 6 devices");

    // Tamper campaign: bit flips, truncations, byte insertions; seeded for replay.
    let mut state = 0x5eed_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    for round in 0..2000 {
        let mut m = bytes.clone();
        match round % 3 {
            0 => {
                let at = (next() as usize) % m.len();
                m[at] ^= 1 << (next() % 8);
            }
            1 => m.truncate((next() as usize) % m.len()),
            _ => {
                let at = (next() as usize) % m.len();
                m.insert(at, next() as u8);
            }
        }
        match read_bundle(m.as_slice(), "mutated".into()) {
            Err(_) => refused += 1,
            Ok(source) => {
                let result = verify(&source, Some(network));
                assert_ne!(result.exit_code(), 0, "mutation {round} passed as valid");
            }
        }
    }
    assert!(refused > 1900, "almost every mutation breaks the bundle's own signature: {refused}");
}

#[test]
fn rewritten_histories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (a, bytes) = exported(dir.path());
    let network = tessera_store::trust_file::parse_network(&field(&ok(&a, &["status"]), "Network")).unwrap();
    // The exporter drops an envelope: a gap (exit 2), not tampering.
    let dropped = resigned(&a, &bytes, |entries| {
        let i = entries.iter().rposition(|e| matches!(e, LogEntry::Envelope(e) if e.seq().0 == 3)).unwrap();
        entries.remove(i);
    });
    let v = verify(&read_bundle(dropped.as_slice(), "dropped".into()).unwrap(), Some(network));
    assert_eq!(v.exit_code(), 2, "{:?}", v.problems);
    assert_eq!(v.devices[0].missing, vec![(3, 3)]);
    // The exporter alters a body and re-signs the bundle: the envelope's own
    // commitment still catches it.
    let altered = resigned(&a, &bytes, |entries| {
        let i = entries.iter().position(|e| matches!(e, LogEntry::Envelope(_))).unwrap();
        let mut raw = entries[i].encode();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        entries[i] = LogEntry::decode(&raw).unwrap();
    });
    let v = verify(&read_bundle(altered.as_slice(), "altered".into()).unwrap(), Some(network));
    assert_eq!(v.exit_code(), 1);
    assert!(v.problems.iter().any(|p| p.kind == "altered-body"), "{:?}", v.problems);
    // A bundle of another network, checked against the pinned one.
    let other = dir.path().join("other");
    ok(&other, &["init", "--site", "Altro"]);
    let v = verify(
        &read_bundle(bytes.as_slice(), "x".into()).unwrap(),
        Some(tessera_store::trust_file::parse_network(&field(&ok(&other, &["status"]), "Network")).unwrap()),
    );
    assert!(v.problems.iter().any(|p| p.kind == "foreign-network"), "{:?}", v.problems);
}

#[test]
fn the_cli_exit_codes_follow_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, bytes) = exported(dir.path());
    let path = dir.path().join("a.tessera");
    let out = common::tessera(&a).args(["audit", "verify", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let json =
        common::tessera(&a).args(["audit", "verify", "--json", path.to_str().unwrap()]).output().unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["envelopes"], 8);
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 40);
    let short = dir.path().join("short.tessera");
    std::fs::write(&short, &cut).unwrap();
    let out = common::tessera(&a).args(["audit", "verify", short.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("byte"),
        "names where: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Compare a bundle with the store it came from, then with an older copy.
    let out = common::tessera(&a)
        .args(["audit", "compare", path.to_str().unwrap(), a.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    ok(&a, &["device", "add", "--tag", "NEW", "--kind", "pc", "--origin", "donated"]);
    let out = common::tessera(&a)
        .args(["audit", "compare", path.to_str().unwrap(), a.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("only in B: 9"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `audit verify` and `import` agree: a reordered bundle of a certified exporter is
/// complete for both (import takes every entry), and a bundle whose header claims an
/// envelope it does not carry is incomplete for both.
#[test]
fn audit_verify_and_import_agree_on_reordered_and_cut_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let (a, bytes) = exported(dir.path());
    let run = |data: &std::path::Path, args: &[&str]| {
        let out = common::tessera(data).args(args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    // Envelopes last to first (the same set, signed by the certified exporter).
    let reordered = dir.path().join("reordered.tessera");
    std::fs::write(
        &reordered,
        resigned(&a, &bytes, |entries| {
            let first_envelope = entries.iter().position(|e| matches!(e, LogEntry::Envelope(_))).unwrap();
            entries[first_envelope..].reverse();
        }),
    )
    .unwrap();
    let hub = dir.path().join("Polo_Ordine");
    let (code, out, _) = run(&hub, &["audit", "verify", reordered.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, err) = run(&hub, &["import", reordered.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Imported: 8 new changes"), "{out}");
    assert!(ok(&hub, &["device", "list"]).contains("T-5"));

    // The last envelope left out: the header still claims it.
    let cut = dir.path().join("cut.tessera");
    std::fs::write(&cut, resigned(&a, &bytes, |entries| drop(entries.pop()))).unwrap();
    let other = common::joined_hub(&a, dir.path(), "Polo Taglio");
    let (code, out, _) = run(&other, &["audit", "verify", cut.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("claims 1 envelopes it does not carry") && !out.contains("OK:"), "{out}");
    let (code, out, err) = run(&other, &["import", cut.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("says it carries 1 more changes that are not in it"), "{out}");
}

/// Every file under `dir` with its bytes (and every directory), to see that nothing changed.
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Option<Vec<u8>>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.insert(path.clone(), None);
                pending.push(path);
            } else {
                files.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    files
}

/// An auditor verifies a hub's data directory as it is: nothing in it changes (no
/// lock, no repair, no rebuilt cache), and a torn tail is noted, not cut.
#[test]
fn an_audited_store_stays_exactly_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = exported(dir.path());
    let verify = |expected_code: i32| {
        let out = common::tessera(&a).args(["audit", "verify", a.to_str().unwrap()]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(expected_code), "{stdout}{stderr}");
        assert!(stdout.contains("8 envelopes"), "{stdout}");
        stdout + &stderr
    };
    let before = snapshot(&a);
    assert!(!verify(0).contains("Note:"));
    assert_eq!(snapshot(&a), before, "audit verify changed the data directory");

    // A write cut short by a crash at the end of the log.
    let log = a.join("store/log");
    let last = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tlog"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(b"\x40\x00\x00\x00cut short");
    std::fs::write(&last, bytes).unwrap();
    let before = snapshot(&a);
    // Verified as far as it could be read, and said to be incomplete (exit status 2).
    let output = verify(2);
    assert!(
        output.contains("Note:") && output.contains("13 bytes") && output.contains("not verified"),
        "{output}"
    );
    assert!(output.contains("incomplete"), "{output}");
    assert_eq!(snapshot(&a), before, "the torn tail must be left for the node to repair");
}

#[test]
fn audit_log_shows_field_changes_and_hides_personal_data_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo Log"]);
    let saved = ok(
        &a,
        &[
            "attendee",
            "add",
            "--given",
            "Giulia",
            "--family",
            "Esempio",
            "--birth-year",
            "1990",
            "--role",
            "parent",
            "--consent-by",
            "self",
        ],
    );
    let person =
        saved.lines().find(|l| l.starts_with("Saved")).unwrap().rsplit(' ').next().unwrap().to_string();
    ok(&a, &["attendee", "edit", &person, "--phone", "3331112222"]);
    ok(&a, &["device", "add", "--tag", "LOG-1", "--kind", "tablet", "--origin", "donated"]);
    ok(&a, &["device", "edit", "LOG-1", "--model", "Modello Nuovo"]);
    let bundle = dir.path().join("log.tessera");
    ok(&a, &["export", bundle.to_str().unwrap()]);
    let path = bundle.to_str().unwrap();

    let default = ok(&a, &["audit", "log", path, "--record", &person]);
    assert!(default.contains("phone changed"), "{default}");
    assert!(
        !default.contains("Giulia") && !default.contains("3331112222"),
        "no personal data by default: {default}"
    );
    let shown = ok(&a, &["audit", "log", path, "--record", &person, "--show-personal-data"]);
    assert!(
        shown.contains("given_name: \"Giulia\"") && shown.contains("phone: null -> \"3331112222\""),
        "{shown}"
    );
    let devices = ok(&a, &["audit", "log", path, "--kind", "device"]);
    assert!(devices.contains("model: \"\" -> \"Modello Nuovo\""), "{devices}");
    assert!(!devices.contains("attendee"), "{devices}");
}

/// `audit log --record` takes a device's tag as well as a short id, and shows the
/// device with the loans that name it; references are shown by tag or short id, never
/// as the 32 hex digits they are stored as.
#[test]
fn audit_log_finds_a_device_by_its_tag_with_its_loans() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo Etichette"]);
    let person = saved_id(&ok(
        &a,
        &[
            "attendee",
            "add",
            "--given",
            "Marta",
            "--family",
            "Prova",
            "--birth-year",
            "1980",
            "--consent-by",
            "self",
            "--role",
            "citizen",
        ],
    ))
    .unwrap();
    ok(&a, &["device", "add", "--tag", "TAB-0042", "--kind", "tablet", "--origin", "donated"]);
    ok(&a, &["device", "add", "--tag", "TAB-0043", "--kind", "tablet", "--origin", "donated"]);
    let loan = saved_id(&ok(
        &a,
        &[
            "loan",
            "add",
            "--device",
            "TAB-0042",
            "--attendee",
            &person,
            "--expected-return",
            "2099-06-30",
            "--agreement-signed",
        ],
    ))
    .unwrap();
    let bundle = dir.path().join("tags.tessera");
    ok(&a, &["export", bundle.to_str().unwrap()]);
    let path = bundle.to_str().unwrap();

    let log = ok(&a, &["audit", "log", path, "--record", "tab-0042"]);
    assert!(log.contains("TAB-0042 (D"), "the device's lines name its tag: {log}");
    assert!(log.contains(&loan), "the device's loan is shown with it: {log}");
    assert!(log.contains("device: TAB-0042"), "the loan names the device by tag: {log}");
    assert!(!log.contains("TAB-0043"), "another device is not: {log}");
    let hex32 = log.split(|c: char| !c.is_ascii_hexdigit()).any(|w| w.len() == 32);
    assert!(!hex32, "no 32-hex ids in the auditor's log: {log}");
    // The same by short id.
    let by_id = ok(&a, &["audit", "log", path, "--record", &loan]);
    assert!(by_id.contains("device: TAB-0042"), "{by_id}");

    let unknown = tessera(&a).args(["audit", "log", path, "--record", "TAB-9999"]).output().unwrap();
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("TAB-9999") && said.contains("no record with this id or device tag"), "{said}");
}

/// Bundles made from testkit identities, to craft what a hub's CLI never writes.
mod crafted {
    use tessera_log::bundle::BundleWriter;
    use tessera_log::testkit::TestNetwork;
    use tessera_log::{LogEntry, SecretKey, Seq, TrustStatement, VersionVector};
    use tessera_node::audit::{read_bundle, verify, Verification};

    fn bundle(net: &TestNetwork, entries: &[LogEntry]) -> Verification {
        let key = &net.devices[0].key;
        let mut w = BundleWriter::new(
            Vec::new(),
            net.network,
            key,
            tessera_log::testkit::time(0),
            &VersionVector::new(),
            &VersionVector::new(),
        )
        .unwrap();
        for e in entries {
            w.write_entry(e).unwrap();
        }
        let bytes = w.finish().unwrap();
        verify(&read_bundle(bytes.as_slice(), "crafted".into()).unwrap(), Some(net.network))
    }

    fn kinds(v: &Verification) -> Vec<&'static str> {
        v.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn forks_revoked_devices_forgeries_and_unknown_partners_are_named() {
        let mut net = TestNetwork::new(77, 2, 1);
        let network = net.network;
        let certs: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
        let mut entries = certs.clone();
        let chain: Vec<LogEntry> =
            (0..4).map(|n| LogEntry::Envelope(net.devices[0].next_simple(&network, n, 50))).collect();
        entries.extend(chain.clone());
        assert_eq!(bundle(&net, &entries).exit_code(), 0);

        // A fork: the device signs another seq 3.
        let LogEntry::Envelope(second) = &chain[1] else { unreachable!() };
        net.devices[0].head = Some((second.seq(), second.id()));
        let other_third = net.devices[0].next_simple(&network, 99, 50);
        let mut forked = entries.clone();
        forked.push(LogEntry::Envelope(other_third));
        assert!(kinds(&bundle(&net, &forked)).contains(&"fork"));

        // Changes after a revocation at seq 2.
        let mut revoked = entries.clone();
        revoked.push(LogEntry::Trust(net.revoke_device(0, net.devices[0].id, Seq(2), "rubato")));
        let v = bundle(&net, &revoked);
        assert_eq!(v.problems.iter().filter(|p| p.kind == "after-revocation").count(), 2, "{:?}", v.problems);

        // An envelope re-signed by an uncertified key but claiming the certified author.
        let LogEntry::Envelope(first) = &chain[0] else { unreachable!() };
        let mut raw = first.encode();
        let sig_at = tessera_log::envelope::HEADER_FIXED_BYTES + tessera_log::envelope::CHANGE_REF_BYTES;
        let forger = SecretKey::from_seed([3; 32]);
        let forged_sig = tessera_log::Envelope::sign(
            &network,
            &forger,
            None,
            first.time(),
            vec![tessera_log::NewChange {
                doc: first.changes()[0].doc,
                salt: tessera_log::Salt([0; 16]),
                body: vec![],
            }],
        )
        .unwrap();
        raw[sig_at..sig_at + 64].copy_from_slice(&forged_sig.signature().0);
        let mut forged = certs.clone();
        forged.push(LogEntry::Envelope(tessera_log::Envelope::decode(&raw).unwrap()));
        assert!(kinds(&bundle(&net, &forged)).contains(&"bad-signature"));

        // A device whose partner certificate is missing from the bundle.
        let partnerless: Vec<LogEntry> = certs
            .iter()
            .filter(|e| !matches!(e, LogEntry::Trust(t) if matches!(&t.statement, TrustStatement::Partner(p) if p.partner == net.devices[0].partner)))
            .cloned()
            .chain(chain.iter().cloned())
            .collect();
        let v = bundle(&net, &partnerless);
        assert!(kinds(&v).contains(&"unknown-partner"), "{:?}", v.problems);
        assert!(kinds(&v).contains(&"unknown-device"), "{:?}", v.problems);
    }
}
