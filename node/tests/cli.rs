//! End-to-end tests of the `tessera` command: real processes on temporary data
//! directories, checking what an operator sees and that bad input changes nothing.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use predicates::prelude::*;

struct Hub {
    _dir: tempfile::TempDir,
    data: PathBuf,
}

impl Hub {
    fn new(site: &str) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node");
        let hub = Hub { _dir: dir, data };
        hub.ok(&["init", "--site", site]);
        hub
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.arg("--data").arg(&self.data).arg("--lang").arg("en").args(args);
        cmd.env_remove("TESSERA_DATA");
        cmd.env("TESSERA_OPERATOR", "Operatore Prova");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tessera {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "tessera {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// The id printed by a "Saved <what> <id>" line.
    fn saved_id(output: &str) -> String {
        output
            .lines()
            .find(|l| l.starts_with("Saved"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no saved id in {output}"))
            .to_string()
    }

    fn add_student(&self, given: &str, family: &str, year: &str) -> String {
        Hub::saved_id(&self.ok(&[
            "attendee",
            "add",
            "--given",
            given,
            "--family",
            family,
            "--birth-year",
            year,
            "--role",
            "student",
            "--school",
            "IC Esempio",
            "--class",
            "2B",
            "--guardian-name",
            "Genitore Prova",
            "--guardian-phone",
            "3330000000",
            "--consent-by",
            "guardian",
            "--language",
            "italiano",
        ]))
    }

    fn add_device(&self, tag: &str) -> String {
        Hub::saved_id(&self.ok(&[
            "device",
            "add",
            "--tag",
            tag,
            "--kind",
            "tablet",
            "--origin",
            "refurbished",
        ]))
    }

    fn fingerprint(&self) -> String {
        let status = self.ok(&["status"]);
        status
            .lines()
            .find(|l| l.starts_with("Records fingerprint"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .unwrap()
    }

    fn log_bytes(&self) -> u64 {
        dir_size(&self.data.join("store/log"))
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

#[test]
fn help_and_version_work() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("--help").assert().success().stdout(predicate::str::contains("attendee"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("--version").assert().success();
}

#[test]
fn register_lend_return_and_report() {
    let hub = Hub::new("Oratorio San Prova");
    let student = hub.add_student("Giulia", "Esempio", "2012");
    let shown = hub.ok(&["attendee", "show", &student]);
    assert!(shown.contains("Giulia") && shown.contains("Esempio") && shown.contains("2B"), "{shown}");
    let tablet = hub.add_device("TAB-001");
    let loan = Hub::saved_id(&hub.ok(&[
        "loan",
        "add",
        "--device",
        "TAB-001",
        "--attendee",
        &student,
        "--expected-return",
        "2099-06-30",
        "--agreement-signed",
    ]));
    // The device is marked lent in the same transaction.
    assert!(hub.ok(&["device", "show", &tablet]).contains("on loan"));
    assert!(hub.ok(&["device", "list", "--status", "lent"]).contains("TAB-001"));
    assert!(hub.ok(&["loan", "list", "--open"]).contains(&loan));
    // Lending it again is refused with a reason.
    let other = hub.add_student("Ahmed", "Prova", "2011");
    let err = hub.fails(&[
        "loan",
        "add",
        "--device",
        "TAB-001",
        "--attendee",
        &other,
        "--expected-return",
        "2099-01-01",
        "--agreement-signed",
    ]);
    assert!(err.contains("lent") || err.contains("loan"), "{err}");
    hub.ok(&["loan", "return", &loan, "--condition", "fair"]);
    assert!(hub.ok(&["device", "show", &tablet]).contains("in stock"));
    // A course with both students present.
    let session = Hub::saved_id(&hub.ok(&[
        "session",
        "add",
        "--kind",
        "course",
        "--topic",
        "Tablet sicuro",
        "--start",
        "2026-11-02T15:00",
        "--end",
        "2026-11-02T17:30",
        "--participant",
        &student,
        "--participant",
        &other,
        "--audience",
        "students",
    ]));
    hub.ok(&["session", "attend", &session, "--attendee", &other, "--absent"]);
    assert!(hub.ok(&["session", "show", &session]).contains("1 present / 2"));
    let report = hub.ok(&["report", "--by", "month", "--csv"]);
    assert!(report.lines().count() >= 2, "{report}");
    assert!(!report.contains("Giulia") && !report.contains("Esempio"), "reports carry no names: {report}");
    // In Italian, what an Italian spreadsheet opens as it is; the other style on request.
    let italian = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("--data")
            .arg(&hub.data)
            .args(["--lang", "it", "report", "--csv"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let semicolons = italian(&[]);
    assert!(semicolons.starts_with("Sede;Partecipanti unici;"), "{semicolons}");
    assert!(semicolons.contains("Totale;1;1;2,5;"), "decimal comma: {semicolons}");
    assert!(italian(&["--csv-style", "comma"]).starts_with("Sede,Partecipanti unici,"));
    // The words around an error are the operator's too.
    let italian_error = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--data")
        .arg(&hub.data)
        .args(["--lang", "it", "report", "--by", "colore"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&italian_error.stderr);
    assert!(
        said.starts_with("errore: ") && said.contains("non è un valore valido per raggruppamento"),
        "{said}"
    );
    let refused = hub.run(&["report", "--csv", "--csv-style", "tab"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown --csv-style"));
    let listed = hub.ok(&["attendee", "list", "--search", "giulia"]);
    assert!(listed.contains(&student) && !listed.contains(&other), "{listed}");
    assert!(hub.ok(&["status"]).contains("Certified"));

    // The same course typed twice by mistake: cancelled, it is kept but counts nowhere.
    let twice = Hub::saved_id(&hub.ok(&[
        "session",
        "add",
        "--kind",
        "course",
        "--start",
        "2026-11-02T15:00",
        "--end",
        "2026-11-02T17:30",
        "--participant",
        &student,
    ]));
    let sessions_held = |hub: &Hub| {
        let csv = hub.ok(&["report", "--csv"]);
        let total = csv.lines().last().unwrap_or_default().to_string();
        total.split(',').nth(2).unwrap_or_default().to_string()
    };
    assert_eq!(sessions_held(&hub), "2");
    hub.ok(&["session", "cancel", &twice, "--reason", "typed twice"]);
    assert_eq!(sessions_held(&hub), "1");
    assert!(hub.ok(&["session", "list"]).contains("(cancelled)"));
    assert!(hub.ok(&["session", "show", &twice]).contains("typed twice"));
    let err = hub.fails(&["session", "attend", &twice, "--attendee", &other]);
    assert!(err.contains("cancelled"), "{err}");
    hub.ok(&["session", "cancel", &twice, "--undo"]);
    assert_eq!(sessions_held(&hub), "2");
    assert!(hub.ok(&["session", "cancel", &twice, "--undo"]).contains("not cancelled"));
    assert!(!hub.ok(&["session", "show", &twice]).contains("Cancelled"));
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let hub = Hub::new("Sportello Prova");
    let student = hub.add_student("Luca", "Campione", "2013");
    let before = hub.log_bytes();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["attendee", "show", "A00000000"], "no attendee"),
        (vec!["attendee", "show", "zz"], "id"),
        (
            vec![
                "loan",
                "add",
                "--device",
                "NOPE-1",
                "--attendee",
                &student,
                "--expected-return",
                "2099-01-01",
            ],
            "no device",
        ),
        (
            vec![
                "session",
                "add",
                "--kind",
                "course",
                "--start",
                "2026-13-45T10:00",
                "--end",
                "2026-11-02T11:00",
            ],
            "not a date",
        ),
        (
            vec![
                "session",
                "add",
                "--kind",
                "course",
                "--start",
                "2026-11-02T12:00",
                "--end",
                "2026-11-02T11:00",
            ],
            "end",
        ),
        (
            vec![
                "session",
                "add",
                "--kind",
                "party",
                "--start",
                "2026-11-02T10:00",
                "--end",
                "2026-11-02T11:00",
            ],
            "party",
        ),
        (
            vec![
                "attendee",
                "add",
                "--given",
                "Solo",
                "--birth-year",
                "2000",
                "--role",
                "citizen",
                "--consent-by",
                "self",
            ],
            "--family",
        ),
        (
            vec![
                "attendee",
                "add",
                "--given",
                "Minore",
                "--family",
                "Prova",
                "--birth-year",
                "2015",
                "--role",
                "student",
                "--consent-by",
                "guardian",
            ],
            "guardian",
        ),
        (vec!["device", "add", "--tag", "X-1", "--kind", "toaster", "--origin", "donated"], "toaster"),
        (vec!["report", "--by", "colour"], "colour"),
        (vec!["import", "/nonexistent/file.tessera"], "cannot read"),
    ];
    for (args, expected) in cases {
        let err = hub.fails(&args);
        assert!(
            err.to_lowercase().contains(&expected.to_lowercase()),
            "{args:?}: expected `{expected}` in: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    assert_eq!(hub.log_bytes(), before, "refused commands wrote nothing");
    // Wrong CLI arguments are clap errors with usage, not panics.
    let err = hub.fails(&["attendee", "add", "--birth-year", "twenty"]);
    assert!(err.contains("invalid value"), "{err}");
}

#[test]
fn a_locked_or_missing_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("--data").arg(dir.path().join("none")).arg("--lang").arg("en").args(["attendee", "list"]);
    cmd.assert().failure().stderr(predicate::str::contains("tessera init"));
    let hub = Hub::new("Biblioteca Prova");
    // Hold the store open in this process: the command must refuse, not wait or corrupt.
    let (_store, _) = tessera_store::Store::open(&hub.data.join("store"), None).unwrap();
    let err = hub.fails(&["attendee", "list"]);
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn two_hubs_diverge_offline_exchange_bundles_and_converge() {
    // Hub B joins hub A's network: A's administrator certifies B's device.
    let a = Hub::new("Polo Nord Prova");
    let dir = tempfile::tempdir().unwrap();
    let b_data = dir.path().join("b");
    let network = a
        .ok(&["status"])
        .lines()
        .find(|l| l.starts_with("Network"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    let b = Hub { _dir: dir, data: b_data };
    let init = b.ok(&["init", "--site", "Sportello Sud Prova", "--role", "help-desk", "--network", &network]);
    let device_key =
        init.lines().find(|l| l.starts_with("Device key")).unwrap().rsplit(' ').next().unwrap().to_string();
    // Not certified yet: writing is refused with what to do.
    let err = b.fails(&["device", "add", "--tag", "B-1", "--kind", "pc", "--origin", "donated"]);
    assert!(err.contains("certificate"), "{err}");
    let keys = a.data.join("keys");
    let partner_trust = a.data.join("partner.trust");
    a.ok(&[
        "admin",
        "new-partner",
        "--network-key",
        keys.join("network.key").to_str().unwrap(),
        "--name",
        "Associazione Prova",
        "--out",
        a.data.join("partner2").to_str().unwrap(),
    ]);
    let _ = partner_trust;
    let cert = a.data.join("b.trust");
    a.ok(&[
        "admin",
        "certify-device",
        "--partner-key",
        a.data.join("partner2/partner.key").to_str().unwrap(),
        "--partner-trust",
        a.data.join("partner2/partner.trust").to_str().unwrap(),
        "--device",
        &device_key,
        "--site",
        "Sportello Sud Prova",
        "--role",
        "help-desk",
        "--out",
        cert.to_str().unwrap(),
    ]);
    b.ok(&["import", cert.to_str().unwrap()]);
    // The administrator imports B's certificate on A too: A grants B its read keys.
    a.ok(&["import", cert.to_str().unwrap()]);

    // Shared starting point: A registers a device and exports everything to B.
    let tablet = a.add_device("TAB-100");
    let bundle_a = a.data.join("a1.tessera");
    a.ok(&["export", bundle_a.to_str().unwrap()]);
    b.ok(&["import", bundle_a.to_str().unwrap()]);
    assert!(b.ok(&["device", "list"]).contains("TAB-100"));

    // Offline: both lend the same tablet, and both register the same person.
    let sa = a.add_student("Sofia", "Fittizio", "2010");
    let sb = b.add_student("Sofìa", "FITTIZIO", "2010");
    a.ok(&[
        "loan",
        "add",
        "--device",
        &tablet,
        "--attendee",
        &sa,
        "--expected-return",
        "2099-01-01",
        "--agreement-signed",
    ]);
    b.ok(&[
        "loan",
        "add",
        "--device",
        &tablet,
        "--attendee",
        &sb,
        "--expected-return",
        "2099-01-01",
        "--agreement-signed",
    ]);
    // Concurrent edits of different fields of the same device.
    a.ok(&["device", "edit", &tablet, "--model", "Tablet 10 pollici"]);
    b.ok(&["device", "edit", &tablet, "--serial", "SN-PROVA-1"]);

    // Exchange both ways.
    let to_b = a.data.join("a2.tessera");
    let to_a = b.data.join("b2.tessera");
    a.ok(&["export", to_b.to_str().unwrap()]);
    b.ok(&["export", to_a.to_str().unwrap()]);
    a.ok(&["import", to_a.to_str().unwrap()]);
    b.ok(&["import", to_b.to_str().unwrap()]);
    assert_eq!(a.fingerprint(), b.fingerprint(), "both hubs hold identical documents");
    let shown = a.ok(&["device", "show", &tablet]);
    assert!(shown.contains("Tablet 10 pollici") && shown.contains("SN-PROVA-1"), "both edits kept: {shown}");

    // The same conflicts are listed on both sides; each names the people it may read
    // (its own organisation's) and says "another organisation" for the others.
    let conflicts_a = a.ok(&["conflicts", "list"]);
    let conflicts_b = b.ok(&["conflicts", "list"]);
    let ids_of = |text: &str| {
        text.lines().map(|l| l.split_whitespace().next().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids_of(&conflicts_a), ids_of(&conflicts_b));
    assert!(conflicts_a.contains("TAB-100") && conflicts_a.contains("Sofia Fittizio"), "{conflicts_a}");
    assert!(
        conflicts_b.contains("Sofìa FITTIZIO") && !conflicts_b.contains("Sofia Fittizio"),
        "{conflicts_b}"
    );
    assert_eq!(conflicts_a.lines().count(), 2, "a device lent twice and a duplicate person: {conflicts_a}");
    let ids: Vec<String> =
        conflicts_a.lines().map(|l| l.split_whitespace().next().unwrap().to_string()).collect();

    // A resolves both; the resolutions travel back to B and clear the conflicts there too.
    let loans = a.ok(&["loan", "list", "--open"]);
    let loan_b = loans
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .find(|l| l.starts_with('L'))
        .unwrap();
    for id in &ids {
        let listed = conflicts_a.lines().find(|l| l.starts_with(id.as_str())).unwrap();
        if listed.contains("loans") {
            a.ok(&["conflicts", "resolve", id, "--close-loan", &loan_b]);
        } else {
            a.ok(&["conflicts", "resolve", id, "--keep", &sa]);
        }
    }
    assert!(a.ok(&["conflicts", "list"]).contains("No conflicts"));
    let back = a.data.join("a3.tessera");
    a.ok(&["export", back.to_str().unwrap()]);
    b.ok(&["import", back.to_str().unwrap()]);
    assert!(b.ok(&["conflicts", "list"]).contains("No conflicts"));
    assert_eq!(a.fingerprint(), b.fingerprint());
}

#[test]
fn foreign_and_tampered_bundles_are_refused_whole() {
    let a = Hub::new("Polo Prova");
    a.add_device("TAB-1");
    let bundle = a.data.join("a.tessera");
    a.ok(&["export", bundle.to_str().unwrap()]);
    // Another network.
    let other = Hub::new("Altro Polo");
    let before = other.log_bytes();
    let err = other.fails(&["import", bundle.to_str().unwrap()]);
    assert!(err.contains("network"), "{err}");
    assert_eq!(other.log_bytes(), before);
    // A flipped byte anywhere in the bundle: refused, nothing stored.
    let bytes = std::fs::read(&bundle).unwrap();
    let copy = Hub::new("Copia");
    for at in [100, bytes.len() / 2, bytes.len() - 10] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        let path = a.data.join(format!("damaged-{at}.tessera"));
        std::fs::write(&path, &damaged).unwrap();
        let before = copy.log_bytes();
        let err = copy.fails(&["import", path.to_str().unwrap()]);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(copy.log_bytes(), before, "byte {at}: nothing stored");
    }
    // Truncated.
    let path = a.data.join("short.tessera");
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    let err = copy.fails(&["import", path.to_str().unwrap()]);
    assert!(err.contains("nothing was imported"), "{err}");
}

#[test]
fn quickstart_makes_a_usable_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    let out = cmd.arg("--data").arg(dir.path()).arg("--lang").arg("en").arg("quickstart").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Try next"), "{stdout}");
    let data = dir.path().to_path_buf();
    let hub = Hub { _dir: dir, data };
    assert!(hub.ok(&["loan", "list", "--overdue"]).contains("OVERDUE"));
    assert_eq!(hub.ok(&["attendee", "list"]).lines().count(), 2 + 12);
    let report = hub.ok(&["report"]);
    assert!(report.to_lowercase().contains("total"), "{report}");
    // One partner's figures; a partner nobody has is refused with the names there are.
    let err = hub.fails(&["report", "--partner", "Nessuno"]);
    let (_, known) = err.split_once("the partners are: ").unwrap_or_else(|| panic!("{err}"));
    let first = known.trim().split(", ").next().unwrap();
    let partner_report = hub.ok(&["report", "--partner", &first.to_uppercase()]);
    assert!(partner_report.contains("Total"), "{partner_report}");
    // Italian labels.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    let out = cmd
        .arg("--data")
        .arg(&hub.data)
        .args(["--lang", "it", "loan", "list", "--overdue"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SCADUTO"));
}

#[test]
fn an_import_keeps_valid_envelopes_and_names_the_refused_ones() {
    use tessera_log::bundle::{read_all, BundleWriter};
    use tessera_log::LogEntry;

    let a = Hub::new("Polo Prova");
    for i in 0..4 {
        a.add_device(&format!("TAB-{i}"));
    }
    let bundle = a.data.join("a.tessera");
    a.ok(&["export", bundle.to_str().unwrap()]);
    let (header, mut entries) = read_all(&std::fs::read(&bundle).unwrap()).unwrap();
    // Alter the body of A's third envelope (a change that no longer matches its
    // signed commitment), then re-sign the bundle itself with A's key: the file is
    // well formed, one envelope inside it is not.
    let positions: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, LogEntry::Envelope(_)))
        .map(|(i, _)| i)
        .collect();
    let target = positions[2];
    let LogEntry::Envelope(env) = &entries[target] else { unreachable!() };
    let seq = env.seq();
    let mut bytes = entries[target].encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    entries[target] = LogEntry::decode(&bytes).unwrap();
    let key = tessera_store::read_secret_key(&a.data.join("keys/device.key"), "device").unwrap();
    let mut writer =
        BundleWriter::new(Vec::new(), header.network, &key, header.created_at, &header.base, &header.heads)
            .unwrap();
    for entry in &entries {
        writer.write_entry(entry).unwrap();
    }
    let forged = a.data.join("forged.tessera");
    std::fs::write(&forged, writer.finish().unwrap()).unwrap();

    // A node of the same network (joining with the same certificates).
    let network = a
        .ok(&["status"])
        .lines()
        .find(|l| l.starts_with("Network"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let b = Hub { data: dir.path().join("b"), _dir: dir };
    b.ok(&["init", "--site", "Ricevente", "--network", &network]);
    let err = b.fails(&["import", forged.to_str().unwrap()]);
    assert!(
        err.contains(&format!("#{seq}")) && err.contains("commitment"),
        "names the envelope and why: {err}"
    );
    assert!(err.contains("refused"), "{err}");
    // The envelopes before it were imported; it and those after it were not.
    let status = b.ok(&["status"]);
    let held = status.lines().find(|l| l.starts_with("Changes held")).unwrap().rsplit(' ').next().unwrap();
    assert_eq!(held, (seq.0 - 1).to_string(), "{status}");
}

#[test]
fn no_log_level_writes_personal_data() {
    let hub = Hub::new("Polo Log");
    // Every level of every crate, sled's page dumps included if they were let through.
    let out = hub
        .cmd(&[
            "attendee",
            "add",
            "--given",
            "Canarino",
            "--family",
            "Zzyzxtest",
            "--birth-year",
            "1975",
            "--role",
            "citizen",
            "--consent-by",
            "self",
            "--phone",
            "3339876543",
        ])
        .env("TESSERA_LOG", "trace,sled=trace")
        .output()
        .unwrap();
    assert!(out.status.success());
    let reopened = hub.cmd(&["attendee", "list"]).env("TESSERA_LOG", "trace").output().unwrap();
    for log in [&out.stderr, &reopened.stderr] {
        let log = String::from_utf8_lossy(log);
        assert!(!log.contains("sled"), "sled's debug records reached the log");
        for canary in ["Canarino", "Zzyzxtest", "3339876543"] {
            assert!(!log.contains(canary), "{canary} in the log");
        }
    }
}

#[test]
fn lists_name_people_overdue_loans_say_whom_to_call_and_a_session_lists_who_came() {
    let hub = Hub::new("Polo Prova");
    let giulia = hub.add_student("Giulia", "Esempio", "2013");
    let marco = hub.add_student("Marco", "Prova", "2012");
    hub.ok(&["device", "add", "--tag", "TAB-0042", "--kind", "tablet", "--origin", "donated"]);
    hub.ok(&[
        "loan",
        "add",
        "--device",
        "TAB-0042",
        "--attendee",
        &giulia,
        "--start",
        "2026-01-10",
        "--expected-return",
        "2026-02-10",
        "--agreement-signed",
    ]);
    let overdue = hub.ok(&["loan", "list", "--overdue"]);
    let row = overdue.lines().find(|l| l.contains("TAB-0042")).unwrap_or_else(|| panic!("{overdue}"));
    assert!(row.contains("Giulia Esempio"), "the borrower by name: {row}");
    assert!(row.contains("guardian Genitore Prova: 3330000000"), "whom to call: {row}");
    assert!(overdue.lines().next().unwrap().contains("contact"), "{overdue}");
    assert!(hub.ok(&["loan", "list"]).contains("Giulia Esempio"));

    let session = Hub::saved_id(&hub.ok(&[
        "session",
        "add",
        "--kind",
        "course",
        "--topic",
        "Coding",
        "--start",
        "2026-11-02T15:00",
        "--end",
        "2026-11-02T17:00",
        "--participant",
        &giulia,
        "--participant",
        &marco,
        "--audience",
        "students",
    ]));
    hub.ok(&["session", "attend", &session, "--attendee", &marco, "--absent"]);
    let shown = hub.ok(&["session", "show", &session]);
    let line = |name: &str| {
        shown.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{shown}")).to_string()
    };
    assert!(line("Giulia Esempio").contains("present"), "{shown}");
    assert!(line("Marco Prova").contains("absent"), "{shown}");
}

#[test]
fn a_loan_recorded_by_mistake_is_voided_counts_nowhere_and_frees_its_device() {
    let hub = Hub::new("Polo Prova");
    let giulia = hub.add_student("Giulia", "Esempio", "2013");
    hub.ok(&["device", "add", "--tag", "PC-0007", "--kind", "pc", "--origin", "refurbished"]);
    let lend = |who: &str| {
        Hub::saved_id(&hub.ok(&[
            "loan",
            "add",
            "--device",
            "PC-0007",
            "--attendee",
            who,
            "--start",
            "2026-10-01",
            "--expected-return",
            "2027-06-30",
            "--agreement-signed",
        ]))
    };
    let mistaken = lend(&giulia);
    let on_loan = |report: &str| -> String {
        let header: Vec<&str> = report.lines().next().unwrap().split(',').collect();
        let column = header.iter().position(|h| *h == "Devices on loan").unwrap();
        report.lines().last().unwrap().split(',').nth(column).unwrap().to_string()
    };
    assert_eq!(on_loan(&hub.ok(&["report", "--by", "site", "--csv"])), "1");
    let refused = hub.fails(&["loan", "void", &mistaken, "--reason", ""]);
    assert!(refused.contains("--reason"), "{refused}");
    hub.ok(&["loan", "void", &mistaken, "--reason", "wrong person"]);
    assert!(hub.ok(&["device", "show", "PC-0007"]).contains("in stock"));
    assert!(hub.ok(&["loan", "list"]).contains("void"));
    assert_eq!(on_loan(&hub.ok(&["report", "--by", "site", "--csv"])), "0", "a void loan counts nowhere");
    let again = hub.fails(&["loan", "void", &mistaken, "--reason", "twice"]);
    assert!(again.contains("already void"), "{again}");
    // The device can be lent again, rightly.
    let marco = hub.add_student("Marco", "Prova", "2012");
    lend(&marco);
    assert_eq!(on_loan(&hub.ok(&["report", "--by", "site", "--csv"])), "1");
}

#[test]
fn the_same_person_twice_or_a_double_booking_is_refused_before_saving_unless_forced() {
    let hub = Hub::new("Sportello Prova");
    hub.add_student("Giulia", "Esempio", "2013");
    let before = hub.log_bytes();
    let twice = [
        "attendee",
        "add",
        "--given",
        "GIULIA",
        "--family",
        "Esempio",
        "--birth-year",
        "2013",
        "--role",
        "student",
        "--guardian-name",
        "Genitore Prova",
        "--guardian-phone",
        "3330000000",
        "--consent-by",
        "guardian",
    ];
    let err = hub.fails(&twice);
    assert!(err.contains("probably already registered") && err.contains("Giulia Esempio (2013"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(hub.log_bytes(), before, "nothing saved");
    let mut forced = twice.to_vec();
    forced.push("--force");
    assert!(Hub::saved_id(&hub.ok(&forced)).starts_with('A'));

    fn book<'a>(start: &'a str, end: &'a str, force: bool) -> Vec<&'a str> {
        let mut args = vec![
            "session",
            "add",
            "--kind",
            "help-desk-appointment",
            "--topic",
            "SPID",
            "--start",
            start,
            "--end",
            end,
        ];
        if force {
            args.push("--force");
        }
        args
    }
    let first = book("2026-11-03T10:00", "2026-11-03T10:30", false);
    hub.ok(&first);
    let overlapping = book("2026-11-03T10:15", "2026-11-03T10:45", false);
    let before = hub.log_bytes();
    let err = hub.fails(&overlapping);
    assert!(err.contains("overlaps another appointment") && err.contains("SPID, 2026-11-03 10:00"), "{err}");
    assert_eq!(hub.log_bytes(), before, "nothing saved");
    hub.ok(&book("2026-11-03T10:30", "2026-11-03T11:00", false));
    hub.ok(&book("2026-11-03T10:15", "2026-11-03T10:45", true));
    assert!(hub.ok(&["conflicts", "list"]).contains("overlapping appointments"));
}

/// A new laptop for an existing hub takes over its site (`init --site-of`): the hub's
/// figures stay one site, not two of the same name.
#[test]
fn a_replacement_laptop_takes_over_the_hubs_site_instead_of_making_a_second_one() {
    let old = Hub::new("Oratorio Prova");
    let giulia = old.add_student("Giulia", "Esempio", "2013");
    let session = Hub::saved_id(&old.ok(&[
        "session",
        "add",
        "--kind",
        "course",
        "--topic",
        "Coding",
        "--start",
        "2026-11-02T15:00",
        "--end",
        "2026-11-02T17:00",
        "--participant",
        &giulia,
        "--audience",
        "students",
    ]));
    old.ok(&["session", "attend", &session, "--attendee", &giulia]);
    let network = old
        .ok(&["status"])
        .lines()
        .find(|l| l.starts_with("Network"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let new =
        Hub { _dir: dir, data: std::env::temp_dir().join(format!("tessera-new-{}", std::process::id())) };
    let _ = std::fs::remove_dir_all(&new.data);
    let init = new.ok(&["init", "--network", &network, "--site-of", "oratorio prova"]);
    assert!(init.contains("takes over the site"), "{init}");
    let device =
        init.lines().find(|l| l.starts_with("Device key")).unwrap().rsplit(' ').next().unwrap().to_string();
    // Its partner administrator (here: the old laptop, a single-machine network) certifies it.
    let cert = new.data.join("new.trust");
    old.ok(&[
        "admin",
        "certify-device",
        "--partner-key",
        old.data.join("keys/partner.key").to_str().unwrap(),
        "--partner-trust",
        old.data.join("keys/partner.trust").to_str().unwrap(),
        "--device",
        &device,
        "--site",
        "Oratorio Prova",
        "--out",
        cert.to_str().unwrap(),
    ]);
    new.ok(&["import", cert.to_str().unwrap()]);
    old.ok(&["import", cert.to_str().unwrap()]);
    assert!(new.ok(&["status"]).contains("to take over"), "pending until it knows the site");
    // Before it knows the site, it saves nothing and says what to do.
    let refused = new.fails(&["device", "add", "--tag", "PC-1", "--kind", "pc", "--origin", "donated"]);
    assert!(refused.contains("not known here yet") && refused.contains("sync"), "{refused}");
    // The old laptop's last bundle brings the site: the new one adopts it.
    let bundle = new.data.join("old.bundle");
    old.ok(&["export", bundle.to_str().unwrap()]);
    let imported = new.ok(&["import", bundle.to_str().unwrap()]);
    assert!(imported.contains("now serves the existing site «Oratorio Prova»"), "{imported}");
    new.ok(&["device", "add", "--tag", "PC-1", "--kind", "pc", "--origin", "donated"]);
    let sites = new.ok(&["site", "list"]);
    assert_eq!(sites.lines().filter(|l| l.contains("Oratorio Prova")).count(), 1, "one site: {sites}");
    let report = new.ok(&["report", "--by", "site", "--csv"]);
    assert_eq!(report.lines().filter(|l| l.starts_with("Oratorio Prova")).count(), 1, "{report}");
}

/// A hub's attendee spreadsheet (synthetic people), as an Italian Excel saves it:
/// `;`, a byte-order mark, a quoted field holding the separator.
const SHEET: &str = "\u{feff}Nome;Cognome;Anno di nascita;Ruolo;Scuola;Tutore;Telefono tutore;Consenso\n\
Giulia;Esempio;2013;studente;\"IC Esempio; plesso Sud\";Maria Esempio;3330000000;tutore\n\
Marco;Prova;1975;genitore;;;;interessato\n";

#[test]
fn a_spreadsheet_of_attendees_is_checked_row_by_row_and_saved_whole_or_not_at_all() {
    let hub = Hub::new("Polo Prova");
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("iscritti.csv");
    std::fs::write(&sheet, SHEET).unwrap();
    let path = sheet.to_str().unwrap();
    let before = hub.log_bytes();
    let dry = hub.ok(&["attendee", "import", path, "--dry-run"]);
    assert!(
        dry.contains("row 2: Giulia Esempio (2013, student)") && dry.contains("row 3: Marco Prova"),
        "{dry}"
    );
    assert!(dry.contains("Dry run: 2 people"), "{dry}");
    assert_eq!(hub.log_bytes(), before, "a dry run saves nothing");

    // One bad row (a minor without a guardian): every row is listed, nothing is saved.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{SHEET}Sara;Fittizia;2015;studente;;;;tutore\n")).unwrap();
    let err = hub.fails(&["attendee", "import", bad.to_str().unwrap()]);
    assert!(err.contains("1 rows have errors") && err.contains("nothing was saved"), "{err}");
    let out = hub.run(&["attendee", "import", bad.to_str().unwrap()]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("row 4: ERROR") && listed.contains("guardian"), "{listed}");
    assert!(!listed.contains("Sara"), "errors do not repeat what was typed: {listed}");
    assert_eq!(hub.log_bytes(), before);

    // An unknown header is refused, or mapped with --column.
    let odd = dir.path().join("odd.csv");
    std::fs::write(&odd, "Nome,Cognome,Nascita,Ruolo\nLuca,Prova,1980,cittadino\n").unwrap();
    let err = hub.fails(&["attendee", "import", odd.to_str().unwrap(), "--consent-by", "self"]);
    assert!(err.contains("Nascita") && err.contains("--column"), "{err}");
    hub.ok(&[
        "attendee",
        "import",
        odd.to_str().unwrap(),
        "--consent-by",
        "self",
        "--column",
        "Nascita=birth-year",
    ]);

    let saved = hub.ok(&["attendee", "import", path]);
    assert!(saved.contains("Registered: 2"), "{saved}");
    let people = hub.ok(&["attendee", "list"]);
    assert!(people.contains("Giulia") && people.contains("Marco") && people.contains("Luca"), "{people}");
    let giulia =
        people.lines().find(|l| l.contains("Giulia")).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(hub.ok(&["attendee", "show", &giulia]).contains("IC Esempio; plesso Sud"));
    // The same sheet again: every row is probably already registered.
    let again = hub.fails(&["attendee", "import", path]);
    assert!(again.contains("2 rows have errors"), "{again}");
}
