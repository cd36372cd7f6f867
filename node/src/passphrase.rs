//! Passphrases of the network and partner key files (`tessera_store` keeps such a file
//! sealed under argon2id): where one comes from when a command needs it.
//!
//! In order: the one the `tessera` process beside a daemon sent with its request (it
//! asked its operator; the daemon has no terminal), `$TESSERA_KEY_PASSPHRASE` (scripts,
//! tests: it is visible to this user's other processes, so prefer the prompt), the
//! terminal (asked without echo). Never logged, never in an error.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Result};
use tessera_log::SecretKey;
use tessera_store::KeyFileError;
use zeroize::Zeroizing;

use crate::ui::Ui;

/// The environment variable a passphrase may come from.
pub const PASSPHRASE_ENV: &str = "TESSERA_KEY_PASSPHRASE";

thread_local! {
    static FROM_CLIENT: RefCell<Option<Zeroizing<String>>> = const { RefCell::new(None) };
}

/// Runs `f` with `passphrase` (sent by a client) as the first source, on this thread.
pub fn with_client_passphrase<R>(passphrase: Option<String>, f: impl FnOnce() -> R) -> R {
    let previous = FROM_CLIENT.with(|p| p.replace(passphrase.map(Zeroizing::new)));
    let result = f();
    FROM_CLIENT.with(|p| *p.borrow_mut() = previous);
    result
}

/// The passphrase of an existing key file `path`.
pub fn existing(path: &Path, ui: &Ui) -> Result<Zeroizing<String>> {
    if let Some(given) = FROM_CLIENT.with(|p| p.borrow().clone()) {
        return Ok(given);
    }
    if let Some(env) = std::env::var(PASSPHRASE_ENV).ok().filter(|v| !v.is_empty()) {
        return Ok(Zeroizing::new(env));
    }
    if std::io::stdin().is_terminal() {
        let prompt = format!("{} {}: ", ui.t("Passphrase of", "Frase segreta di"), path.display());
        return Ok(Zeroizing::new(rpassword::prompt_password(prompt)?));
    }
    bail!(
        "{} {} {}",
        path.display(),
        ui.t(
            "is protected by a passphrase: run the command in a terminal to type it, or set",
            "è protetta da una frase segreta: esegui il comando in un terminale per scriverla, o imposta"
        ),
        PASSPHRASE_ENV
    )
}

/// A passphrase for a new key file: from the environment, or typed twice.
pub fn new(ui: &Ui) -> Result<Zeroizing<String>> {
    if let Some(env) = std::env::var(PASSPHRASE_ENV).ok().filter(|v| !v.is_empty()) {
        return Ok(Zeroizing::new(env));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "{} {PASSPHRASE_ENV}",
            ui.t(
                "--passphrase: run the command in a terminal to type the passphrase, or set",
                "--passphrase: esegui il comando in un terminale per scrivere la frase segreta, o imposta"
            )
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password(format!(
        "{} ({} {}): ",
        ui.t("New passphrase", "Nuova frase segreta"),
        ui.t("at least", "almeno"),
        ui.t(
            &format!("{} characters", tessera_store::PASSPHRASE_CHARS_MIN),
            &format!("{} caratteri", tessera_store::PASSPHRASE_CHARS_MIN)
        )
    ))?);
    let again = Zeroizing::new(rpassword::prompt_password(ui.t("Again: ", "Di nuovo: "))?);
    if first != again {
        bail!(
            "{}",
            ui.t(
                "the two passphrases differ: nothing was written",
                "le due frasi sono diverse: non è stato scritto nulla"
            )
        );
    }
    Ok(first)
}

/// A new operator's password: from `$TESSERA_OPERATOR_PASSWORD`, or typed twice.
pub fn new_operator_password(ui: &Ui) -> Result<Zeroizing<String>> {
    let env = crate::operators::PASSWORD_ENV;
    if let Some(given) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
        return Ok(Zeroizing::new(given));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "{} {env}",
            ui.t(
                "--password: run the command in a terminal to type the password, or set",
                "--password: esegui il comando in un terminale per scrivere la password, o imposta"
            )
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password(ui.t("Password: ", "Password: "))?);
    let again = Zeroizing::new(rpassword::prompt_password(ui.t("Again: ", "Di nuovo: "))?);
    if first != again {
        bail!(
            "{}",
            ui.t(
                "the two passwords differ: nothing was saved",
                "le due password sono diverse: non è stato salvato nulla"
            )
        );
    }
    Ok(first)
}

/// Reads a network or partner key, asking for its passphrase when it has one.
pub fn read_key(path: &Path, role: &str, ui: &Ui) -> Result<SecretKey> {
    match tessera_store::read_secret_key(path, role) {
        Err(KeyFileError::NeedsPassphrase { .. }) => {
            let passphrase = existing(path, ui)?;
            Ok(tessera_store::read_secret_key_with_passphrase(path, role, Some(&passphrase))?)
        }
        other => Ok(other?),
    }
}

/// Writes a new network or partner key, under a passphrase when `protect`.
pub fn write_key(path: &Path, role: &str, key: &SecretKey, protect: bool, ui: &Ui) -> Result<()> {
    if protect {
        let passphrase = new(ui)?;
        tessera_store::write_secret_key_with_passphrase(path, role, key, &passphrase)?;
    } else {
        tessera_store::write_secret_key(path, role, key)?;
    }
    Ok(())
}
