//! A hub's data directory after what disks and people do to it: a torn tail cut at
//! open, a backup whose `log/` is older than its `derived/`, a copy taken while the
//! node was writing, one bit flipped in the middle of the log. Every case must open,
//! keep every valid record and answer every command, through the real `tessera`.

mod common;

use std::fs;
use std::path::Path;

use tessera_node::commands::{own_site, today};
use tessera_node::ui::Ui;
use tessera_node::Node;
use tessera_records::kind::RecordKind;
use tessera_records::model::{format_date, Attendee, Consent, Record, RecordRef};
use tessera_records::vocab::{AttendeeRole, ConsentBy};

use common::{ok, tessera};

fn attendee(site: RecordRef, given: &str) -> Record {
    Record::Attendee(Attendee {
        given_name: given.into(),
        family_name: "Prova".into(),
        birth_year: 1980,
        role: AttendeeRole::Citizen,
        school: None,
        class: None,
        guardian: None,
        phone: None,
        email: None,
        languages: Vec::new(),
        consent: Consent {
            date: format_date(today()),
            given_by: ConsentBy::Attendee,
            operator: "Operatore Prova".into(),
        },
        referent_operator: None,
        plan_notes: String::new(),
        site,
        merged_into: None,
        not_duplicates_of: Vec::new(),
        registered_by: None,
        match_key: None,
        erased: None,
        id_nonce: None,
    })
}

/// Registers `count` attendees on the node in `data`, one envelope each.
fn register(data: &Path, first: usize, count: usize) {
    let ui = Ui::new(Some("en")).unwrap();
    let mut node = Node::open(data).unwrap();
    let site = RecordRef(own_site(&mut node, &ui).unwrap());
    for k in first..first + count {
        let id = Node::new_id(RecordKind::Attendee).unwrap();
        node.transact(&[(id, attendee(site, &format!("Persona{k:03}")))]).unwrap();
    }
}

/// How many attendees `attendee list` shows.
fn listed(data: &Path) -> usize {
    ok(data, &["attendee", "list"]).lines().filter(|l| l.contains("Persona")).count()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            // A file can vanish or change under a live copy; copy what is there.
            let _ = fs::copy(entry.path(), &target);
        }
    }
}

/// Every command a hub needs answers, `export` included (the guide's recovery path).
fn answers_every_command(data: &Path, dir: &Path) {
    ok(data, &["status"]);
    ok(data, &["attendee", "list"]);
    ok(data, &["report"]);
    let bundle = dir.join(format!("{}.tessera", data.file_name().unwrap().to_string_lossy()));
    ok(data, &["export", bundle.to_str().unwrap()]);
    let verify = tessera(data).args(["audit", "verify", bundle.to_str().unwrap()]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn a_backup_whose_log_is_older_than_its_derived_files_opens() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    ok(&hub, &["init", "--site", "Polo Copia"]);
    register(&hub, 0, 3);
    let old_log = dir.path().join("old-log");
    copy_dir(&hub.join("store/log"), &old_log);
    register(&hub, 3, 3);
    assert_eq!(listed(&hub), 6);

    // The backup: yesterday's log beside today's derived database.
    fs::remove_dir_all(hub.join("store/log")).unwrap();
    copy_dir(&old_log, &hub.join("store/log"));
    answers_every_command(&hub, dir.path());
    assert_eq!(listed(&hub), 3, "the documents are those of the log, not of the newer derived files");
    // It does not sign again the changes it signed after the backup: a copy of them
    // may be on another hub, and that would fork it.
    let (code, _, err) = rc(&hub, &["device", "add", "--tag", "N-1", "--kind", "pc", "--origin", "donated"]);
    assert_ne!(code, 0);
    assert!(err.contains("signed changes up to") && err.contains("tessera sync"), "{err}");
    // Once the operator has synced with everyone, it goes on working.
    ok(&hub, &["repair", "--damage-reviewed"]);
    register(&hub, 6, 1);
    assert_eq!(listed(&hub), 4);
}

#[test]
fn a_torn_tail_cut_at_open_leaves_a_working_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    ok(&hub, &["init", "--site", "Polo Strappo"]);
    register(&hub, 0, 5);
    let segment = hub.join("store/log/0000000000000001.tlog");
    let bytes = fs::read(&segment).unwrap();
    let (last, len) = *frames(&bytes).last().unwrap();
    // A crash in the middle of writing a sixth record: part of a frame at the end.
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[last..last + len / 2]);
    fs::write(&segment, &torn).unwrap();
    answers_every_command(&hub, dir.path());
    assert_eq!(listed(&hub), 5);
    register(&hub, 5, 1);
    assert_eq!(listed(&hub), 6);

    // The last acknowledged record damaged (it is cut like a torn write): the hub
    // knows it signed it, and does not sign that number again until a peer gives it
    // back or the operator has synced with everyone.
    let bytes = fs::read(&segment).unwrap();
    let (last, _) = *frames(&bytes).last().unwrap();
    fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(last as u64 + 12).unwrap();
    answers_every_command(&hub, dir.path());
    assert_eq!(listed(&hub), 5);
    let (code, _, err) = rc(&hub, &["device", "add", "--tag", "N-1", "--kind", "pc", "--origin", "donated"]);
    assert_ne!(code, 0);
    assert!(err.contains("signed changes up to"), "{err}");
    assert!(ok(&hub, &["status"]).contains("signed changes up to"));
    ok(&hub, &["repair", "--damage-reviewed"]);
    register(&hub, 6, 1);
    assert_eq!(listed(&hub), 6);
}

#[test]
fn a_data_directory_copied_while_the_node_writes_opens() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    ok(&hub, &["init", "--site", "Polo Vivo"]);
    register(&hub, 0, 1);
    let writer = {
        let hub = hub.clone();
        std::thread::spawn(move || register(&hub, 1, 300))
    };
    let mut copies = Vec::new();
    // Copies taken one file at a time while the writer runs, in both orders (log
    // first: derived ahead of the log; derived first: derived behind).
    for n in 0..6 {
        let copy = dir.path().join(format!("copy{n}"));
        let (first, second) = if n % 2 == 0 { ("log", "derived") } else { ("derived", "log") };
        fs::create_dir_all(copy.join("store")).unwrap();
        for entry in fs::read_dir(&hub).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() != "store" {
                let target = copy.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    copy_dir(&entry.path(), &target);
                } else {
                    fs::copy(entry.path(), target).unwrap();
                }
            }
        }
        for entry in fs::read_dir(hub.join("store")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                fs::copy(entry.path(), copy.join("store").join(entry.file_name())).unwrap();
            }
        }
        copy_dir(&hub.join("store").join(first), &copy.join("store").join(first));
        std::thread::sleep(std::time::Duration::from_millis(20));
        copy_dir(&hub.join("store").join(second), &copy.join("store").join(second));
        copies.push(copy);
    }
    writer.join().unwrap();
    assert_eq!(listed(&hub), 301);
    for copy in &copies {
        answers_every_command(copy, dir.path());
        let n = listed(copy);
        assert!((1..=301).contains(&n), "{} lists {n}", copy.display());
    }
}

/// Where each record frame of a segment file starts, and its payload length.
fn frames(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 32;
    while at + 8 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len));
        at += 8 + len;
    }
    out
}

fn rc(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tessera(data).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_bit_flipped_mid_log_comes_back_from_a_peer_without_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    let b = common::joined_hub_of_same_partner(&a, dir.path(), "Sportello B");
    register(&a, 0, 6);
    let daemon = common::Daemon::start(&a);
    ok(&b, &["sync", "--peer", &daemon.addr]);
    daemon.stop();
    assert_eq!(listed(&b), 6);

    // One bit of the fourth-last record (the third attendee of A) flips on A's disk.
    let segment = a.join("store/log/0000000000000001.tlog");
    let mut bytes = fs::read(&segment).unwrap();
    let all = frames(&bytes);
    let (at, len) = all[all.len() - 4];
    bytes[at + 8 + len / 2] ^= 0x04;
    fs::write(&segment, &bytes).unwrap();

    // A opens, keeps the records after the damage, says so, and refuses to write.
    let status = ok(&a, &["status"]);
    assert!(status.contains("Damaged records in the log"), "{status}");
    assert_eq!(common::field(&status, "Changes lost to damage"), "1", "{status}");
    assert_eq!(listed(&a), 5, "the records after the damaged one are all there");
    let (code, _, err) = rc(
        &a,
        &[
            "attendee",
            "add",
            "--given",
            "Nuova",
            "--family",
            "Prova",
            "--birth-year",
            "1980",
            "--role",
            "citizen",
            "--consent-by",
            "self",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("not saved") && err.contains("sync"), "{err}");
    // The auditor is not told OK.
    let (code, out, _) = rc(&a, &["audit", "verify", a.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("DAMAGED") && !out.contains("\nOK"), "{out}");

    // A sync with B brings the lost change back; A writes again at its next seq.
    let daemon = common::Daemon::start(&b);
    ok(&a, &["sync", "--peer", &daemon.addr]);
    daemon.stop();
    let status = ok(&a, &["status"]);
    assert_eq!(common::field(&status, "Changes lost to damage"), "0", "{status}");
    assert_eq!(listed(&a), 6);
    register(&a, 6, 1);
    let daemon = common::Daemon::start(&a);
    ok(&b, &["sync", "--peer", &daemon.addr]);
    daemon.stop();
    assert_eq!(listed(&b), 7);
    let (status_a, status_b) = (ok(&a, &["status"]), ok(&b, &["status"]));
    assert_eq!(common::field(&status_a, "Forks found"), "0");
    assert_eq!(common::field(&status_b, "Forks found"), "0", "{status_b}");
    assert_eq!(
        common::field(&status_a, "Records fingerprint"),
        common::field(&status_b, "Records fingerprint")
    );
}
