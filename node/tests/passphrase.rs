//! Network and partner key files under a passphrase (argon2id), through the real
//! binary: made protected, or protected afterwards; every admin command that reads
//! them asks for it, refuses a wrong one, and says where a passphrase can come from
//! when there is no terminal; an erasure by the network key works through a daemon.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const PASSPHRASE: &str = "una frase segreta di prova";

fn with(data: &Path, args: &[&str], passphrase: Option<&str>) -> Output {
    let mut cmd = tessera(data);
    cmd.args(args).env_remove("TESSERA_KEY_PASSPHRASE");
    if let Some(p) = passphrase {
        cmd.env("TESSERA_KEY_PASSPHRASE", p);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_protected_network_key_is_useless_without_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("any");
    let coordinator = dir.path().join("coordinator");
    let made = with(
        &data,
        &["admin", "new-network", "--out", coordinator.to_str().unwrap(), "--passphrase"],
        Some(PASSPHRASE),
    );
    assert!(made.status.success(), "{}", text(&made));
    let key_file = coordinator.join("network.key");
    let stored = std::fs::read_to_string(&key_file).unwrap();
    assert!(stored.starts_with("TESSERA SECRET KEY v2 passphrase"), "{stored}");
    let partner = dir.path().join("partner");
    let args = [
        "admin",
        "new-partner",
        "--network-key",
        key_file.to_str().unwrap(),
        "--name",
        "Ente Prova",
        "--out",
        partner.to_str().unwrap(),
    ];
    // No terminal and no passphrase: says how to give one; nothing made.
    let none = with(&data, &args, None);
    assert!(!none.status.success());
    assert!(
        text(&none).contains("TESSERA_KEY_PASSPHRASE") && text(&none).contains("passphrase"),
        "{}",
        text(&none)
    );
    assert!(!partner.join("partner.key").exists());
    let wrong = with(&data, &args, Some("non è questa la frase"));
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("does not open"), "{}", text(&wrong));
    assert!(!text(&wrong).contains("non è questa"), "the passphrase is never repeated");
    let right = with(&data, &args, Some(PASSPHRASE));
    assert!(right.status.success(), "{}", text(&right));
    assert!(partner.join("partner.trust").exists());
    // A short passphrase is refused before anything is written.
    let short = with(
        &data,
        &["admin", "new-network", "--out", dir.path().join("other").to_str().unwrap(), "--passphrase"],
        Some("corta"),
    );
    assert!(!short.status.success() && text(&short).contains("at least 10"), "{}", text(&short));
}

#[test]
fn single_machine_keys_protected_afterwards_still_certify_and_erase_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok(&a, &["init", "--site", "Polo Prova"]);
    for (file, role) in [("keys/network.key", "network"), ("keys/partner.key", "partner")] {
        let key = a.join(file);
        let protected =
            with(&a, &["admin", "protect-key", key.to_str().unwrap(), "--role", role], Some(PASSPHRASE));
        assert!(protected.status.success(), "{}", text(&protected));
        assert!(text(&protected).contains("backups"), "{}", text(&protected));
        let again =
            with(&a, &["admin", "protect-key", key.to_str().unwrap(), "--role", role], Some(PASSPHRASE));
        assert!(!again.status.success() && text(&again).contains("already"), "{}", text(&again));
    }
    // Certifying a new hub needs the partner key's passphrase.
    let network = field(&ok(&a, &["status"]), "Network");
    let b = dir.path().join("b");
    let device = field(&ok(&b, &["init", "--site", "Sportello Prova", "--network", &network]), "Device key");
    let cert = dir.path().join("b.trust");
    let (partner_key, partner_trust) = (a.join("keys/partner.key"), a.join("keys/partner.trust"));
    let certify = [
        "admin",
        "certify-device",
        "--partner-key",
        partner_key.to_str().unwrap(),
        "--partner-trust",
        partner_trust.to_str().unwrap(),
        "--device",
        &device,
        "--site",
        "Sportello Prova",
        "--out",
        cert.to_str().unwrap(),
    ];
    assert!(!with(&a, &certify, None).status.success());
    assert!(with(&a, &certify, Some(PASSPHRASE)).status.success());
    // An erasure by the network key typed beside a running daemon: the client gives
    // the passphrase with the request, the daemon erases.
    let out = ok(
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
            "citizen",
            "--consent-by",
            "self",
        ],
    );
    let person = saved_id(&out).unwrap();
    let daemon = Daemon::start(&a);
    let key = a.join("keys/network.key");
    let erase = ["attendee", "erase", &person, "--yes", "--network-key", key.to_str().unwrap()];
    let refused = with(&a, &erase, None);
    assert!(
        !refused.status.success() && text(&refused).contains("TESSERA_KEY_PASSPHRASE"),
        "{}",
        text(&refused)
    );
    let erased = with(&a, &erase, Some(PASSPHRASE));
    assert!(erased.status.success(), "{}", text(&erased));
    assert!(!ok(&a, &["attendee", "list"]).contains("Giulia"));
    daemon.stop();
}
