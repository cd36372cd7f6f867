//! Helpers shared by the end-to-end tests that run real `tessera` processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tessera --data DATA --lang en`, with a fixed operator name and no inherited data dir.
pub fn tessera(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("--data").arg(data).arg("--lang").arg("en");
    cmd.env("TESSERA_OPERATOR", "Operatore Prova").env_remove("TESSERA_DATA");
    cmd
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let out = tessera(data).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tessera {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The last word of the line starting with `label` (a `status` or `init` field).
pub fn field(text: &str, label: &str) -> String {
    text.lines().find(|l| l.starts_with(label)).unwrap().rsplit(' ').next().unwrap().to_string()
}

/// Has hub `a`'s single-machine network certify `device` through a second partner
/// (made on first use), writing the trust file to `out`.
pub fn certify(a: &Path, device: &str, site: &str, role: &str, out: &Path) {
    if !a.join("partner2").exists() {
        ok(
            a,
            &[
                "admin",
                "new-partner",
                "--network-key",
                a.join("keys/network.key").to_str().unwrap(),
                "--name",
                "Associazione Prova",
                "--out",
                a.join("partner2").to_str().unwrap(),
            ],
        );
    }
    ok(
        a,
        &[
            "admin",
            "certify-device",
            "--partner-key",
            a.join("partner2/partner.key").to_str().unwrap(),
            "--partner-trust",
            a.join("partner2/partner.trust").to_str().unwrap(),
            "--device",
            device,
            "--site",
            site,
            "--role",
            role,
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

/// A hub joined to `a`'s network, certified and ready to write.
pub fn joined_hub(a: &Path, dir: &Path, name: &str) -> PathBuf {
    let network = field(&ok(a, &["status"]), "Network");
    let data = dir.join(name.replace(' ', "_"));
    let init = ok(&data, &["init", "--site", name, "--network", &network]);
    let cert = dir.join(format!("{}.trust", name.replace(' ', "_")));
    certify(a, &field(&init, "Device key"), name, "hub", &cert);
    ok(&data, &["import", cert.to_str().unwrap()]);
    data
}
