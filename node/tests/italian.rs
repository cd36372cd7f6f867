//! Italian everywhere: every command family and its main error paths run through the
//! real binary with `--lang it` (and `--help` of every subcommand with `--lang it` and
//! with `LANG=it_IT.UTF-8`), and what they print must carry no English.
//!
//! The check is a list of English words and phrases that Italian text never holds
//! ([`ENGLISH`]); names, ids, command names and the English value words the Italian
//! help offers as alternatives do not contain them. Synthetic names only.

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

/// English that must not appear in Italian output. Case-sensitive; words are padded
/// with spaces so Italian words that contain them ("theta", "notte") do not count.
const ENGLISH: &[&str] = &[
    " the ",
    "The ",
    " is ",
    " are ",
    " was ",
    " not ",
    " of ",
    " and ",
    " with ",
    " to ",
    " from ",
    " for ",
    " has ",
    " have ",
    " this ",
    "This ",
    " that ",
    " no longer",
    " cannot",
    "Cannot",
    "does not",
    "is required",
    "not found",
    "No such file",
    "os error",
    "Saved",
    "saved",
    "Created",
    "Exported",
    "Imported",
    "Resolved",
    "Restored",
    "Cancelled",
    "error:",
    "because:",
    "warning:",
    "Note:",
    "Try next",
    "Usage:",
    "Options:",
    "Commands:",
    "Arguments:",
    "[OPTIONS]",
    "<COMMAND>",
    "[default:",
    "[env:",
    "Print help",
    "Print version",
    "For more information",
    "tip:",
    "unexpected argument",
    "unrecognized",
    "invalid value",
    "required arguments",
    " bytes",
    "unknown ",
    "Unknown ",
    " expected",
    "Expected",
    "envelopes",
    "entries",
    "Data directory",
    "Network",
    "Device key",
    "Records",
    "family name",
    "given name",
    "OVERDUE",
    "open loans",
    "Source:",
    "Checked:",
    "PROBLEM",
    "only in",
    "changed",
];

struct It {
    dir: tempfile::TempDir,
    transcript: Vec<(String, String)>,
}

impl It {
    fn new() -> It {
        It { dir: tempfile::tempdir().unwrap(), transcript: Vec::new() }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> String {
        self.data().join(name).to_str().unwrap().to_string()
    }

    fn command(&self) -> Command {
        let mut cmd = self.command_without_lang();
        cmd.arg("--lang").arg("it");
        cmd
    }

    /// The language from the arguments a test gives, else from `LANG=en_GB.UTF-8`.
    fn command_without_lang(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.arg("--data").arg(self.data().join("node"));
        cmd.env("TESSERA_OPERATOR", "Operatore Prova").env_remove("TESSERA_DATA");
        cmd.env("LANG", "en_GB.UTF-8").env_remove("LC_ALL");
        cmd
    }

    /// Runs a command, keeps what it printed; returns (success, stdout, stderr).
    fn run(&mut self, args: &[&str]) -> (bool, String, String) {
        let out = self.command().args(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        self.transcript.push((args.join(" "), format!("{stdout}{stderr}")));
        (out.status.success(), stdout, stderr)
    }

    fn ok(&mut self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "tessera {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    fn fails(&mut self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(!ok, "tessera {args:?} should fail:\n{stdout}");
        assert!(stderr.contains("errore:"), "tessera {args:?}: {stderr}");
        stderr
    }

    /// The id after "Salvato <what>" in a command's output.
    fn saved_id(output: &str) -> String {
        let line = output.lines().find(|l| l.starts_with("Salvato")).unwrap_or_else(|| panic!("{output}"));
        line.rsplit(' ').next().unwrap().to_string()
    }

    /// Runs a command that saves a record; returns its id.
    fn saved(&mut self, args: &[&str]) -> String {
        It::saved_id(&self.ok(args))
    }

    /// Fails naming every command whose output holds English.
    fn assert_italian(&self) {
        let mut found = Vec::new();
        for (args, text) in &self.transcript {
            for english in ENGLISH {
                if let Some(at) = text.find(english) {
                    let line = text[..at].rsplit('\n').next().unwrap_or("").to_string()
                        + text[at..].split('\n').next().unwrap_or("");
                    found.push(format!("`tessera {args}`: {english:?} in: {line}"));
                }
            }
        }
        assert!(found.is_empty(), "English in Italian output:\n{}", found.join("\n"));
    }
}

#[test]
fn every_command_and_error_speaks_italian() {
    let mut it = It::new();
    // Before any node.
    it.fails(&["status"]);
    it.fails(&["attendee", "list"]);
    let out = it.command_without_lang().args(["--lang", "xx", "status"]).output().unwrap();
    assert!(!out.status.success());
    it.transcript.push(("--lang xx status".into(), String::from_utf8_lossy(&out.stderr).into_owned()));
    let out = it.command_without_lang().args(["--lang", "xx", "statu"]).output().unwrap();
    it.transcript.push(("--lang xx statu".into(), String::from_utf8_lossy(&out.stderr).into_owned()));
    it.fails(&["statu"]);
    it.fails(&["status", "--bogus"]);
    it.fails(&["init"]);
    it.fails(&["init", "--site", "Polo Prova", "--network", "zz"]);
    // quickstart: a node with demo data, and what to try next.
    let quick = it.ok(&["quickstart"]);
    assert!(quick.contains("Prova ora:"), "{quick}");
    it.ok(&["quickstart"]);
    it.fails(&["init", "--site", "Polo Prova"]);
    // A handshake with nobody takes its whole timeout: started first, checked last.
    // (on a node of its own: the sync holds its store meanwhile).
    let mut beside = It::new();
    beside.ok(&["quickstart"]);
    let silent = {
        let mut cmd = beside.command();
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = socket.local_addr().unwrap().to_string();
            let out = cmd.args(["sync", "--peer", &addr]).output().unwrap();
            drop(socket);
            (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
    };
    it.ok(&["status"]);

    // Sites.
    let site = it.saved(&[
        "site",
        "add",
        "--name",
        "Biblioteca Esempio",
        "--kind",
        "biblioteca",
        "--partner",
        "Cooperativa Esempio",
    ]);
    it.ok(&["site", "show", &site]);
    it.ok(&["site", "edit", &site, "--hours", "lun-ven 9-12"]);
    it.ok(&["site", "list"]);
    it.fails(&["site", "add"]);
    it.fails(&["site", "add", "--name", "Sede Prova", "--kind", "castello"]);
    it.fails(&["site", "show", "Szzzz"]);
    it.fails(&["site", "show", "Lffff"]);
    it.fails(&["site", "show", "Q12"]);

    // Attendees, with Italian value words.
    let person = it.saved(&[
        "attendee",
        "add",
        "--given",
        "Giulia",
        "--family",
        "Esempio",
        "--birth-year",
        "2012",
        "--role",
        "studente",
        "--school",
        "IC Esempio",
        "--guardian-name",
        "Anna Esempio",
        "--guardian-phone",
        "3331234567",
        "--consent-by",
        "tutore",
    ]);
    let adult = it.saved(&[
        "attendee",
        "add",
        "--given",
        "Marco",
        "--family",
        "Prova",
        "--birth-year",
        "1970",
        "--role",
        "genitore",
        "--consent-by",
        "interessato",
    ]);
    it.ok(&["attendee", "show", &person]);
    it.ok(&["attendee", "edit", &person, "--class", "2B"]);
    it.ok(&["attendee", "list", "--search", "esempio"]);
    it.ok(&["attendee", "list", "--role", "studente"]);
    it.fails(&["attendee", "add", "--given", "Giulia"]);
    it.fails(&["attendee", "add", "--given", "Giulia", "--family", "Prova", "--consent-by", "tutore"]);
    it.fails(&[
        "attendee",
        "add",
        "--given",
        "Giulia",
        "--family",
        "Prova",
        "--birth-year",
        "2015",
        "--role",
        "studente",
        "--consent-by",
        "tutore",
    ]);
    it.fails(&["attendee", "add", "--birth-year", "duemila"]);
    it.fails(&["attendee", "list", "--role", "astronauta"]);
    it.fails(&["attendee", "edit", &person, "--consent-date", "ieri"]);

    // Devices and loans.
    let device =
        it.saved(&["device", "add", "--tag", "TAB-9001", "--kind", "portatile", "--origin", "donato"]);
    it.ok(&["device", "show", "TAB-9001"]);
    it.ok(&["device", "edit", "TAB-9001", "--condition", "discreto"]);
    it.ok(&["device", "list", "--status", "in-magazzino"]);
    it.fails(&["device", "add", "--tag", "TAB-9001", "--kind", "tablet", "--origin", "donato"]);
    it.fails(&["device", "add", "--tag", "TAB-9002"]);
    it.fails(&["device", "show", "NESSUNO-1"]);
    it.fails(&["loan", "add", "--device", "TAB-9001"]);
    it.fails(&["loan", "add", "--device", "TAB-9001", "--attendee", &person, "--expected-return", "domani"]);
    let loan = it.saved(&[
        "loan",
        "add",
        "--device",
        &device,
        "--attendee",
        &person,
        "--expected-return",
        "2030-06-30",
        "--agreement-signed",
    ]);
    it.fails(&[
        "loan",
        "add",
        "--device",
        "TAB-9001",
        "--attendee",
        &adult,
        "--expected-return",
        "2030-06-30",
    ]);
    it.ok(&["loan", "show", &loan]);
    it.ok(&["loan", "edit", &loan, "--expected-return", "2030-07-31"]);
    it.ok(&["loan", "list", "--open"]);
    it.ok(&["loan", "list", "--overdue"]);
    it.ok(&["device", "list", "--status", "in-comodato"]);
    it.ok(&["loan", "return", &loan, "--condition", "buono"]);
    it.fails(&["loan", "return", &loan]);
    it.fails(&["loan", "edit", &loan, "--agreement-signed", "forse"]);

    // Sessions.
    let session = it.saved(&[
        "session",
        "add",
        "--kind",
        "corso",
        "--topic",
        "Registro elettronico",
        "--topic-code",
        "piattaforme-scolastiche",
        "--audience",
        "genitori",
        "--mode",
        "in-presenza",
        "--start",
        "2026-11-22T15:00",
        "--end",
        "2026-11-22T17:00",
        "--participant",
        &adult,
    ]);
    it.ok(&["session", "attend", &session, "--attendee", &person]);
    it.ok(&["session", "attend", &session, "--attendee", &person, "--absent"]);
    it.ok(&["session", "show", &session]);
    it.ok(&["session", "cancel", &session]);
    let shown = it.ok(&["session", "show", &session]);
    assert!(shown.contains("annullato il"), "{shown}");
    it.fails(&["session", "attend", &session, "--attendee", &person]);
    it.ok(&["session", "cancel", &session, "--undo"]);
    it.ok(&["session", "cancel", &session, "--undo"]);
    it.ok(&["session", "list"]);
    it.fails(&["session", "add", "--kind", "corso"]);
    it.fails(&[
        "session",
        "add",
        "--kind",
        "festa",
        "--start",
        "2026-11-22T15:00",
        "--end",
        "2026-11-22T17:00",
    ]);
    it.fails(&[
        "session",
        "add",
        "--kind",
        "corso",
        "--start",
        "2026-11-22T17:00",
        "--end",
        "2026-11-22T15:00",
    ]);
    it.fails(&["session", "edit", &session, "--start", "22/11/2026"]);
    it.fails(&["session", "cancel", &session, "--reason", "doppio", "--undo"]);

    // Conflicts, reports.
    it.ok(&["conflicts", "list"]);
    it.fails(&["conflicts", "resolve", "lent-00000000", "--close-loan", &loan]);
    it.ok(&["report"]);
    it.ok(&["report", "--by", "mese"]);
    it.ok(&["report", "--by", "tema", "--csv"]);
    it.ok(&["report", "--by", "eta", "--from", "2026-01-01", "--to", "2026-12-31"]);
    it.fails(&["report", "--by", "colore"]);
    it.fails(&["report", "--from", "primavera"]);
    it.fails(&["report", "--from", "2026-12-31", "--to", "2026-01-01"]);
    it.fails(&["report", "--partner", "Ente Inesistente"]);
    it.fails(&["report", "--csv", "--csv-style", "tab"]);
    it.fails(&["report", "--csv-style", "virgola"]);

    // Bundles, keys, repair.
    let bundle = it.path("polo.tessera");
    it.ok(&["export", &bundle]);
    it.ok(&["import", &bundle]);
    it.fails(&["import", &it.path("nessuno.tessera")]);
    std::fs::write(it.data().join("junk.tessera"), b"questo non e un pacchetto").unwrap();
    it.fails(&["import", &it.path("junk.tessera")]);
    it.fails(&["keys", "grant", "--device", "abc"]);
    it.fails(&["keys", "grant", "--device", &"0".repeat(64)]);
    it.fails(&["repair"]);
    it.fails(&["sync", "--peer", "nessun-indirizzo"]);

    // Erasure.
    it.fails(&["attendee", "erase", &adult]);
    it.fails(&["attendee", "erase", &adult, "--reason", "capriccio", "--yes"]);
    it.ok(&["attendee", "erase", &adult, "--reason", "errore", "--yes"]);
    it.fails(&["attendee", "erase", &adult, "--yes"]);
    it.fails(&["attendee", "edit", &adult, "--class", "3A"]);
    it.ok(&["attendee", "show", &adult]);
    it.ok(&["attendee", "list"]);

    // The partner administrator's tools.
    let admin = it.path("admin");
    it.ok(&["admin", "new-network", "--out", &admin]);
    it.fails(&["admin", "new-network", "--out", &admin]);
    it.ok(&[
        "admin",
        "new-partner",
        "--network-key",
        &format!("{admin}/network.key"),
        "--name",
        "Ente Prova",
        "--out",
        &admin,
    ]);
    it.fails(&[
        "admin",
        "certify-device",
        "--partner-key",
        &format!("{admin}/partner.key"),
        "--partner-trust",
        &format!("{admin}/partner.trust"),
        "--device",
        "xyz",
        "--site",
        "Polo Prova",
        "--out",
        &it.path("cert.trust"),
    ]);
    it.fails(&[
        "admin",
        "revoke-device",
        "--key",
        &format!("{admin}/partner.key"),
        "--key-role",
        "capo",
        "--network",
        &"0".repeat(64),
        "--device",
        &"0".repeat(64),
        "--after",
        "1",
        "--out",
        &it.path("rev.trust"),
    ]);
    it.fails(&[
        "admin",
        "new-partner",
        "--network-key",
        &it.path("nessuna.key"),
        "--name",
        "X",
        "--out",
        &admin,
    ]);

    // A help page: Italian, on stdout.
    let help = it.ok(&["attendee", "add", "--help"]);
    assert!(help.contains("Uso: tessera attendee add [OPZIONI]"), "{help}");

    let (synced, stderr) = silent.join().unwrap();
    assert!(!synced && stderr.contains("errore:"), "{stderr}");
    it.transcript.push(("sync --peer (nobody answers)".into(), stderr));
    it.assert_italian();
}

#[test]
fn audit_speaks_italian() {
    let mut it = It::new();
    it.ok(&["quickstart"]);
    let bundle = it.path("polo.tessera");
    it.ok(&["export", &bundle]);
    let store = it.path("node");
    it.ok(&["audit", "verify", &bundle]);
    it.ok(&["audit", "verify", &store]);
    it.ok(&["audit", "log", &bundle]);
    it.ok(&["audit", "log", &bundle, "--kind", "prestito"]);
    it.ok(&["audit", "log", &store, "--show-personal-data", "--kind", "iscritto"]);
    it.ok(&["audit", "compare", &bundle, &store]);
    it.fails(&["audit", "verify", &it.path("nessuno.tessera")]);
    it.fails(&["audit", "verify", &bundle, "--network", "zz"]);
    it.fails(&["audit", "verify", &bundle, "--network", &"0".repeat(64)]);
    it.fails(&["audit", "log", &bundle, "--kind", "astronave"]);
    it.fails(&["audit", "log", &bundle, "--from", "ieri"]);
    it.fails(&["audit", "log", &bundle, "--record", "Q1"]);
    // A second hub with one more change: the copies differ.
    let other = it.path("altro.tessera");
    it.ok(&["device", "add", "--tag", "TAB-7001", "--kind", "tablet", "--origin", "acquistato"]);
    it.ok(&["export", &other]);
    it.fails(&["audit", "compare", &bundle, &other]);
    // --json stays machine-readable, in English keys.
    let json = it.ok(&["audit", "verify", &bundle, "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(value.get("envelopes").is_some(), "{json}");
    it.transcript.pop();
    // `audit log` names the records' fields by their stored names (`expected_return`),
    // the same in both languages: those are left out of the check.
    for (_, text) in &mut it.transcript {
        *text = text
            .lines()
            .map(|line| match line.strip_prefix("    ").and_then(|l| l.split_once([':', ' '])) {
                Some((field, rest))
                    if field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.') =>
                {
                    format!("    FIELD {rest}")
                }
                _ => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    it.assert_italian();
}

/// Every subcommand's path, from the real command tree.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut next = path.clone();
            next.push(sub.get_name().to_string());
            walk(sub, next, out);
        }
    }
    let mut out = Vec::new();
    walk(&tessera_node::cli::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn every_help_page_is_italian_by_flag_and_by_locale() {
    let paths = command_paths();
    assert!(paths.len() > 40, "{}", paths.len());
    let mut transcript = Vec::new();
    for path in &paths {
        for by_flag in [true, false] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
            cmd.env_remove("LC_ALL").env_remove("TESSERA_DATA");
            if by_flag {
                cmd.env("LANG", "en_GB.UTF-8").arg("--lang").arg("it");
            } else {
                cmd.env("LANG", "it_IT.UTF-8");
            }
            let out = cmd.args(path).arg("--help").output().unwrap();
            assert!(out.status.success(), "{path:?}");
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.contains("Uso: tessera"), "{path:?} (by flag: {by_flag}):\n{text}");
            assert!(text.contains("Mostra l'aiuto."), "{path:?}:\n{text}");
            transcript.push((format!("{} --help (by flag: {by_flag})", path.join(" ")), text));
        }
    }
    let it = It { dir: tempfile::tempdir().unwrap(), transcript };
    it.assert_italian();
    // English stays English.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("LANG", "it_IT.UTF-8")
        .args(["--lang", "en", "attendee", "add", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Usage: tessera attendee add [OPTIONS]") && text.contains("Print help"), "{text}");
}
