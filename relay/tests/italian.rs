//! The relay operator's command line in Italian through the real binary: `--help`,
//! clap's own errors and the relay's errors, with `--lang it` and with an Italian
//! locale; English when asked.

use std::process::{Command, Output};

fn relay(args: &[&str], locale: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera-relay"))
        .args(args)
        .env("LANG", locale)
        .env_remove("LC_ALL")
        .env_remove("TESSERA_RELAY_DATA")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn help_is_italian_by_default_and_with_an_italian_locale() {
    for (args, locale) in [(&["--help"][..], "C"), (&["serve", "--help"][..], "it_IT.UTF-8")] {
        let out = relay(args, locale);
        assert!(out.status.success());
        let said = text(&out);
        assert!(said.contains("Uso: tessera-relay") && said.contains("Opzioni:"), "{said}");
        for english in ["Usage:", "Options:", "Print help", "[default:", "Data directory"] {
            assert!(!said.contains(english), "{english:?} in\n{said}");
        }
    }
    let english = text(&relay(&["--lang", "en", "--help"], "it_IT.UTF-8"));
    assert!(english.contains("Usage: tessera-relay") && english.contains("Data directory"), "{english}");
}

#[test]
fn errors_are_italian_with_the_os_error_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nessuno");
    let out = relay(&["--data", missing.to_str().unwrap(), "status"], "it_IT.UTF-8");
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.contains("errore: nessun relay in") && said.contains("esegui prima `tessera-relay init"),
        "{said}"
    );
    assert!(said.contains("perché: file o cartella inesistente") && !said.contains("os error"), "{said}");

    let typo = relay(&["statu"], "it_IT.UTF-8");
    assert_eq!(typo.status.code(), Some(2));
    let said = text(&typo);
    assert!(
        said.contains("comando 'statu' sconosciuto") && said.contains("esiste un comando simile: 'status'"),
        "{said}"
    );

    let english = text(&relay(&["--lang", "en", "--data", missing.to_str().unwrap(), "status"], "C"));
    assert!(english.contains("error: no relay in"), "{english}");
}
