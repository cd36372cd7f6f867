//! Trust depends on the set of entries held, never on the order they arrive in: a
//! revocation that reaches a hub before the certificate of the device it revokes is
//! kept until it can be checked, and then cuts the device's later changes exactly as
//! it does when it arrives last.

mod common;

use std::path::Path;

use common::{add_person, field, joined_hub, ok};

/// The number of changes the node signed itself ("Own changes: 3 (head ...)").
fn own_changes(data: &Path) -> u64 {
    let status = ok(data, &["status"]);
    let line = status.lines().find(|l| l.starts_with("Own changes")).unwrap();
    line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_revocation_imported_before_its_certificate_still_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    let b = joined_hub(&a, dir.path(), "Sportello B");
    let early = joined_hub(&a, dir.path(), "Sportello Presto");
    let late = joined_hub(&a, dir.path(), "Sportello Tardi");
    // B knows the two desks it will give bundles to, so they are given its read key.
    for desk in ["Sportello_Presto", "Sportello_Tardi"] {
        ok(&b, &["import", dir.path().join(format!("{desk}.trust")).to_str().unwrap()]);
    }

    add_person(&b, "Valida");
    let last_valid = own_changes(&b);
    add_person(&b, "Dopo");
    let device = field(&ok(&b, &["status"]), "Device key");
    let revocation = common::revoke_on(&a, &device, last_valid, &dir.path().join("revoke-b.trust"));
    let bundle = dir.path().join("b.tessera");
    ok(&b, &["export", bundle.to_str().unwrap()]);

    // The revocation first: it cannot be checked yet (the hub does not hold the
    // certificate of B's device), so it waits, and the hub says so. Each command is
    // its own process: the waiting entry is stored, not only remembered.
    let out = ok(&early, &["import", revocation.to_str().unwrap()]);
    assert!(out.contains("held until the certificate they depend on arrives"), "{out}");
    // Then B's bundle: its certificate makes the revocation checkable, and the change
    // after the cut is refused, as on any hub that knew of the revocation already.
    let out = common::tessera(&early).args(["import", bundle.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("was revoked after its envelope"), "{err}");

    // The revocation last.
    ok(&late, &["import", bundle.to_str().unwrap()]);
    assert!(ok(&late, &["attendee", "list"]).contains("Dopo"), "before the revocation, B's change counts");
    let out = ok(&late, &["import", revocation.to_str().unwrap()]);
    assert!(!out.contains("held until"), "{out}");

    for hub in [&early, &late] {
        let list = ok(hub, &["attendee", "list"]);
        assert!(list.contains("Valida"), "{list}");
        assert!(!list.contains("Dopo"), "a change after the revocation counts:\n{list}");
    }
    assert_eq!(
        field(&ok(&early, &["status"]), "Records fingerprint"),
        field(&ok(&late, &["status"]), "Records fingerprint")
    );
}
