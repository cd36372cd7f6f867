//! Who did it: the hub's operators (`tessera operator`), every change recording who
//! made it, `audit log` naming them, and the same beside a running daemon, where the
//! name comes from the client's `$TESSERA_OPERATOR`, not the daemon's.

mod common;

use std::path::Path;

use common::{ok, tessera, Daemon};

fn as_operator(data: &Path, who: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = tessera(data);
    match who {
        Some(name) => cmd.env("TESSERA_OPERATOR", name),
        None => cmd.env_remove("TESSERA_OPERATOR"),
    };
    cmd.args(args).output().unwrap()
}

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const DEVICE: &[&str] = &["device", "add", "--tag", "PC-0001", "--kind", "laptop", "--origin", "donated"];

#[test]
fn every_change_names_its_operator_once_the_hub_has_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    ok(&hub, &["init", "--site", "Polo Operatori"]);
    assert!(ok(&hub, &["operator", "list"]).contains("No operators yet"));

    let added = tessera(&hub)
        .env("TESSERA_OPERATOR_PASSWORD", "una-password-lunga")
        .args(["operator", "add", "Anna Rossi", "--password"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", said(&added));
    ok(&hub, &["operator", "add", "Luca Bianchi"]);
    let twice = tessera(&hub).args(["operator", "add", "anna rossi"]).output().unwrap();
    assert!(!twice.status.success() && said(&twice).contains("already on the list"), "{}", said(&twice));
    let list = ok(&hub, &["operator", "list"]);
    assert!(list.contains("Anna Rossi\tpassword") && list.contains("Luca Bianchi\t—"), "{list}");
    let file = std::fs::read_to_string(hub.join("operators.json")).unwrap();
    assert!(!file.contains("una-password-lunga"), "only the hash is kept");

    // Reading needs no name; writing does, and only a name on the list.
    assert!(as_operator(&hub, None, &["device", "list"]).status.success());
    let nobody = as_operator(&hub, None, DEVICE);
    assert!(!nobody.status.success() && said(&nobody).contains("say who is working"), "{}", said(&nobody));
    let stranger = as_operator(&hub, Some("Mallory"), DEVICE);
    assert!(
        !stranger.status.success() && said(&stranger).contains("`Mallory` is not an operator of this hub"),
        "{}",
        said(&stranger)
    );
    assert!(ok(&hub, &["device", "list"]).lines().all(|l| !l.contains("PC-0001")), "nothing saved");
    let saved = as_operator(&hub, Some("anna rossi"), DEVICE);
    assert!(saved.status.success(), "{}", said(&saved));

    let log = ok(&hub, &["audit", "log", hub.to_str().unwrap(), "--record", "PC-0001"]);
    assert!(log.contains("by Anna Rossi"), "the auditor reads who: {log}");

    // Beside a running daemon: the client's operator, not the daemon's.
    let daemon = Daemon::start(&hub);
    let person = as_operator(
        &hub,
        Some("Luca Bianchi"),
        &[
            "attendee",
            "add",
            "--given",
            "Carla",
            "--family",
            "Prova",
            "--birth-year",
            "1975",
            "--role",
            "citizen",
            "--consent-by",
            "self",
        ],
    );
    assert!(person.status.success(), "{}", said(&person));
    let refused = as_operator(
        &hub,
        Some("Mallory"),
        &["device", "add", "--tag", "PC-0002", "--kind", "laptop", "--origin", "donated"],
    );
    assert!(!refused.status.success() && said(&refused).contains("is not an operator"), "{}", said(&refused));
    daemon.stop();
    let log = ok(&hub, &["audit", "log", hub.to_str().unwrap(), "--kind", "attendee"]);
    assert!(log.contains("by Luca Bianchi") && !log.contains("by Operatore Prova"), "{log}");
    let shown = ok(&hub, &["attendee", "list"]);
    assert!(shown.contains("Carla"), "{shown}");

    // Removed: their past changes still name them; they can no longer write.
    ok(&hub, &["operator", "remove", "Luca Bianchi"]);
    let gone = as_operator(
        &hub,
        Some("Luca Bianchi"),
        &["device", "add", "--tag", "PC-0003", "--kind", "laptop", "--origin", "donated"],
    );
    assert!(!gone.status.success());
    let log = ok(&hub, &["audit", "log", hub.to_str().unwrap(), "--kind", "attendee"]);
    assert!(log.contains("by Luca Bianchi"), "{log}");
}

#[test]
fn operator_commands_speak_italian_and_need_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let italian = |data: &Path, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("--data")
            .arg(data)
            .args(args)
            .env("LANG", "it_IT.UTF-8")
            .env_remove("LC_ALL")
            .output()
            .unwrap()
    };
    let none = italian(&dir.path().join("nessuno"), &["operator", "list"]);
    assert!(!none.status.success() && said(&none).contains("nessun nodo Tessera in"), "{}", said(&none));
    let help = italian(dir.path(), &["operator", "add", "--help"]);
    assert!(
        said(&help).contains("Aggiungi un operatore") && said(&help).contains("Opzioni:"),
        "{}",
        said(&help)
    );
    let hub = dir.path().join("polo");
    ok(&hub, &["init", "--site", "Polo Italiano"]);
    let added = italian(&hub, &["operator", "add", "Anna Rossi"]);
    assert!(said(&added).contains("Operatore aggiunto: Anna Rossi"), "{}", said(&added));
    let nobody =
        italian(&hub, &["device", "add", "--tag", "PC-1", "--kind", "laptop", "--origin", "donated"]);
    assert!(said(&nobody).contains("indica chi sta lavorando"), "{}", said(&nobody));
}
