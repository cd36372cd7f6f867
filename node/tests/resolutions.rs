//! Two hubs that resolve the same conflict differently while offline: after they
//! exchange bundles, both hold the same valid state or the same new conflict that says
//! so in words; nothing is left "lent with no open loan" silently. Real binaries.

mod common;

use std::path::Path;

use common::*;

fn exchange(a: &Path, b: &Path, dir: &Path) {
    for (from, to, name) in [(a, b, "a.bundle"), (b, a, "b.bundle")] {
        let file = dir.join(name);
        ok(from, &["export", file.to_str().unwrap()]);
        ok(to, &["import", file.to_str().unwrap()]);
    }
}

fn fails(data: &Path, args: &[&str]) -> String {
    let out = tessera(data).args(args).output().unwrap();
    assert!(!out.status.success(), "tessera {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

/// Conflict ids of `conflicts list`, with their lines.
fn conflicts(data: &Path) -> Vec<(String, String)> {
    ok(data, &["conflicts", "list"])
        .lines()
        .filter(|l| !l.starts_with("No conflicts"))
        .map(|l| (l.split_whitespace().next().unwrap().to_string(), l.to_string()))
        .collect()
}

fn lend(data: &Path, device: &str, person: &str) -> String {
    saved_id(&ok(
        data,
        &[
            "loan",
            "add",
            "--device",
            device,
            "--attendee",
            person,
            "--expected-return",
            "2099-06-30",
            "--agreement-signed",
        ],
    ))
    .unwrap()
}

fn person(data: &Path, given: &str) -> String {
    let out = ok(
        data,
        &[
            "attendee",
            "add",
            "--given",
            given,
            "--family",
            "Esempio",
            "--birth-year",
            "1985",
            "--role",
            "parent",
            "--consent-by",
            "self",
        ],
    );
    saved_id(&out).unwrap()
}

#[test]
fn a_double_loan_resolved_differently_on_two_hubs_becomes_one_conflict_in_words_then_one_state() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo Prova"]);
    let b = joined_hub_of_same_partner(&a, dir.path(), "Sportello Prova");
    ok(&a, &["device", "add", "--tag", "TAB-0043", "--kind", "tablet", "--origin", "donated"]);
    let giulia = person(&a, "Giulia");
    exchange(&a, &b, dir.path());
    let marco = person(&b, "Marco");
    // Offline, both hubs lend the same tablet.
    let loan_a = lend(&a, "TAB-0043", &giulia);
    let loan_b = lend(&b, "TAB-0043", &marco);
    exchange(&a, &b, dir.path());
    let lent_twice = conflicts(&a);
    assert_eq!(lent_twice.len(), 1, "{lent_twice:?}");
    assert_eq!(lent_twice, conflicts(&b), "both hubs see the same conflict");
    let (id, line) = &lent_twice[0];
    assert!(line.contains("TAB-0043"), "the device by its tag: {line}");
    // Each hub closes the other's loan, offline.
    ok(&a, &["conflicts", "resolve", id, "--close-loan", &loan_b]);
    ok(&b, &["conflicts", "resolve", id, "--close-loan", &loan_a]);
    exchange(&a, &b, dir.path());
    // Both loans are closed and the device still says lent: a new conflict, in words,
    // the same on both hubs, instead of a device nobody can lend.
    let unlent = conflicts(&a);
    assert_eq!(unlent, conflicts(&b));
    assert_eq!(unlent.len(), 1, "{unlent:?}");
    let (unlent_id, line) = &unlent[0];
    assert!(unlent_id.starts_with("unlent-"), "{line}");
    assert!(line.contains("TAB-0043") && line.contains("resolved a double loan differently"), "{line}");
    let refused = fails(
        &a,
        &[
            "loan",
            "add",
            "--device",
            "TAB-0043",
            "--attendee",
            &giulia,
            "--expected-return",
            "2099-01-01",
            "--agreement-signed",
        ],
    );
    assert!(refused.contains("conflicts list") && !refused.contains("0 open loans"), "{refused}");
    // Hub B finds the tablet is with Giulia: it reopens her loan.
    ok(&b, &["conflicts", "resolve", unlent_id, "--reopen-loan", &loan_a]);
    exchange(&a, &b, dir.path());
    for hub in [&a, &b] {
        assert!(conflicts(hub).is_empty(), "{:?}", conflicts(hub));
        let open = ok(hub, &["loan", "list", "--open"]);
        assert!(open.contains(&loan_a) && !open.contains(&loan_b), "{open}");
        assert!(ok(hub, &["device", "show", "TAB-0043"]).contains("on loan"));
    }
    assert_eq!(
        field(&ok(&a, &["status"]), "Records fingerprint"),
        field(&ok(&b, &["status"]), "Records fingerprint")
    );
}

#[test]
fn a_duplicate_merged_in_opposite_directions_leaves_one_person_on_both_hubs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo Prova"]);
    let b = joined_hub_of_same_partner(&a, dir.path(), "Sportello Prova");
    let on_a = person(&a, "Giulia");
    let on_b = person(&b, "Giulia");
    exchange(&a, &b, dir.path());
    let found = conflicts(&a);
    assert_eq!(found.len(), 1, "{found:?}");
    let (id, _) = &found[0];
    // Hub A keeps its record, hub B keeps its own: each merges the other into it.
    ok(&a, &["conflicts", "resolve", id, "--keep", &on_a]);
    ok(&b, &["conflicts", "resolve", id, "--keep", &on_b]);
    exchange(&a, &b, dir.path());
    let survivor = std::cmp::min(on_a.clone(), on_b.clone());
    for hub in [&a, &b] {
        assert!(conflicts(hub).is_empty(), "{:?}", conflicts(hub));
        let listed = ok(hub, &["attendee", "list", "--search", "giulia"]);
        let rows: Vec<&str> = listed.lines().filter(|l| l.contains("Giulia")).collect();
        assert_eq!(rows.len(), 1, "one person, not none and not two: {listed}");
        assert!(rows[0].starts_with(&survivor), "the same person on both hubs: {listed}");
        let report = ok(hub, &["report", "--by", "site", "--csv"]);
        assert!(report.contains("Total"), "{report}");
    }
    assert_eq!(ok(&a, &["report", "--by", "site", "--csv"]), ok(&b, &["report", "--by", "site", "--csv"]));
}
