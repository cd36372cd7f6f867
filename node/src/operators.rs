//! The hub's operators: the people who work at it, by name, so that each change says
//! who made it (with the device that signed it) and `audit log` answers "who" with a
//! person.
//!
//! The list is this computer's (`operators.json` in the data directory, mode 0600):
//! staff names are not records of the programme and are not synced. An operator may
//! have a password (argon2id, 19 MiB and 2 passes, a random salt; only the hash is
//! kept), which the operator's page asks for when it is reachable from other
//! computers. While the list is empty nobody is asked who they are; once it holds a
//! name, every change must say which of them made it: `$TESSERA_OPERATOR` on the
//! command line, the "who is working" screen on the page.
//!
//! The name is written as the message of the change's automerge commit, inside the
//! body sealed with the record: a relay and anyone without the read key never see it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ui::Ui;

/// The file of the list, in the data directory.
pub const FILE: &str = "operators.json";
/// Most operators on one computer.
pub const OPERATORS_MAX: usize = 200;
/// Longest name, in characters.
pub const NAME_CHARS_MAX: usize = 60;
/// Shortest password, in characters.
pub const PASSWORD_CHARS_MIN: usize = 8;
/// The environment variable that names who is working at the command line.
pub const OPERATOR_ENV: &str = "TESSERA_OPERATOR";
/// The environment variable a new password may come from (scripts, tests).
pub const PASSWORD_ENV: &str = "TESSERA_OPERATOR_PASSWORD";

/// argon2id cost of a password: OWASP's first recommendation (19 MiB, 2 passes, 1 lane).
const ARGON_M_KIB: u32 = 19 * 1024;
const ARGON_T: u32 = 2;
const SALT_BYTES: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    /// `argon2id m=.. t=.. p=1 salt=HEX hash=HEX`, when the operator has a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl Operator {
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether `typed` is this operator's password (false when it has none).
    pub fn password_is(&self, typed: &str) -> bool {
        let Some(stored) = &self.password else { return false };
        let Some((m, t, salt, hash)) = parse_hash(stored) else { return false };
        match derive(typed, m, t, &salt) {
            Some(derived) => constant_time_eq(&derived[..], &hash),
            None => false,
        }
    }
}

/// The list of one computer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Operators {
    pub operators: Vec<Operator>,
}

impl Operators {
    /// The list in `dir` (empty when there is no file yet).
    pub fn load(dir: &Path, ui: &Ui) -> Result<Operators> {
        let path = dir.join(FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} {}", path.display(), ui.t("is damaged", "è danneggiato"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Operators::default()),
            Err(e) => Err(e).with_context(|| {
                format!("{} {}", ui.t("cannot read", "non riesco a leggere"), path.display())
            }),
        }
    }

    /// Writes the list to `dir` (a new file renamed over the old, mode 0600).
    pub fn save(&self, dir: &Path, ui: &Ui) -> Result<()> {
        let path = dir.join(FILE);
        let tmp: PathBuf = dir.join(format!("{FILE}.new"));
        let cannot = || format!("{} {}", ui.t("cannot write", "non riesco a scrivere"), path.display());
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)
        }
        .with_context(cannot)?;
        file.write_all(&serde_json::to_vec_pretty(self)?).with_context(cannot)?;
        file.sync_all().with_context(cannot)?;
        fs::rename(&tmp, &path).with_context(cannot)?;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.operators.is_empty()
    }

    /// The operator called `name` (case and surrounding spaces do not count).
    pub fn find(&self, name: &str) -> Option<&Operator> {
        let wanted = fold_name(name);
        self.operators.iter().find(|o| fold_name(&o.name) == wanted)
    }

    /// Adds `name`, with the hash of `password` if given.
    pub fn add(&mut self, name: &str, password: Option<&str>, ui: &Ui) -> Result<()> {
        let name = check_name(name, ui)?;
        if self.find(&name).is_some() {
            bail!(
                "{} `{name}` {}",
                ui.t("the operator", "l'operatore"),
                ui.t("is already on the list", "è già nell'elenco")
            );
        }
        if self.operators.len() >= OPERATORS_MAX {
            bail!(
                "{} {OPERATORS_MAX} {}",
                ui.t("the list already holds", "l'elenco contiene già"),
                ui.t("operators: remove someone first", "operatori: togline prima qualcuno")
            );
        }
        let password = password.map(|p| hash(p, ui)).transpose()?;
        self.operators.push(Operator { name, password });
        self.operators.sort_by_key(|o| fold_name(&o.name));
        Ok(())
    }

    /// Removes `name`; an error in words when it is not on the list.
    pub fn remove(&mut self, name: &str, ui: &Ui) -> Result<Operator> {
        let wanted = fold_name(name);
        match self.operators.iter().position(|o| fold_name(&o.name) == wanted) {
            Some(at) => Ok(self.operators.remove(at)),
            None => bail!("{}", not_on_list(name, self, ui)),
        }
    }

    /// The registered spelling of who is working, checked against the list: `None`
    /// when the list is empty and nobody said (nothing to record); an error in words
    /// when the list holds names and `named` is missing or not one of them.
    pub fn working(&self, named: Option<&str>, ui: &Ui) -> Result<Option<String>> {
        let named = named.map(str::trim).filter(|n| !n.is_empty());
        match (named, self.is_empty()) {
            (None, true) => Ok(None),
            (Some(name), true) => Ok(Some(check_name(name, ui)?)),
            (Some(name), false) => match self.find(name) {
                Some(found) => Ok(Some(found.name.clone())),
                None => bail!("{}", not_on_list(name, self, ui)),
            },
            (None, false) => bail!(
                "{} {OPERATOR_ENV}={} ({}: {})",
                ui.t(
                    "not saved: say who is working, so that the change records it: set",
                    "non salvato: indica chi sta lavorando, perché la modifica lo registri: imposta"
                ),
                ui.t("NAME", "NOME"),
                ui.t("one of", "uno tra"),
                self.names().join(", ")
            ),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.operators.iter().map(|o| o.name.clone()).collect()
    }
}

fn not_on_list(name: &str, list: &Operators, ui: &Ui) -> String {
    format!(
        "`{}` {} ({}: {}); {}",
        name.trim(),
        ui.t("is not an operator of this hub", "non è un operatore di questo polo"),
        ui.t("the list", "l'elenco"),
        match list.names() {
            names if names.is_empty() => ui.t("empty", "vuoto").to_string(),
            names => names.join(", "),
        },
        ui.t("add them with `tessera operator add NAME`", "aggiungilo con `tessera operator add NOME`")
    )
}

/// A name as it is compared: trimmed, case and accents folded.
pub fn fold_name(name: &str) -> String {
    tessera_records::text::fold(name.trim())
}

/// A name as it is kept: trimmed, one line, not too long.
fn check_name(name: &str, ui: &Ui) -> Result<String> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        bail!("{}", ui.t("the operator's name is empty", "il nome dell'operatore è vuoto"));
    }
    if name.chars().count() > NAME_CHARS_MAX || name.chars().any(char::is_control) {
        bail!(
            "{} {NAME_CHARS_MAX} {}",
            ui.t(
                "an operator's name is one line of at most",
                "il nome di un operatore è una riga di al massimo"
            ),
            ui.t("characters", "caratteri")
        );
    }
    Ok(name)
}

fn hash(password: &str, ui: &Ui) -> Result<String> {
    if password.chars().count() < PASSWORD_CHARS_MIN {
        bail!(
            "{} {PASSWORD_CHARS_MIN} {}",
            ui.t("a password has at least", "una password ha almeno"),
            ui.t("characters", "caratteri")
        );
    }
    let mut salt = [0u8; SALT_BYTES];
    getrandom::getrandom(&mut salt).context(ui.t(
        "the operating system's random source failed",
        "la sorgente casuale del sistema operativo non ha funzionato",
    ))?;
    let derived = derive(password, ARGON_M_KIB, ARGON_T, &salt)
        .context(ui.t("the password could not be hashed", "non è stato possibile cifrare la password"))?;
    Ok(format!(
        "argon2id m={ARGON_M_KIB} t={ARGON_T} p=1 salt={} hash={}",
        hex::encode(salt),
        hex::encode(&derived[..])
    ))
}

/// (m, t, salt, hash) of a stored hash; `None` when it is not one this code writes, or
/// when its cost is outside what this code would ever write (a forged file cannot make
/// a login take minutes or gigabytes).
fn parse_hash(stored: &str) -> Option<(u32, u32, Vec<u8>, Vec<u8>)> {
    let mut words = stored.split(' ');
    if words.next()? != "argon2id" {
        return None;
    }
    let mut field = |key: &str| words.next()?.strip_prefix(key).map(str::to_string);
    let m: u32 = field("m=")?.parse().ok()?;
    let t: u32 = field("t=")?.parse().ok()?;
    if field("p=")? != "1" {
        return None;
    }
    let salt = hex::decode(field("salt=")?).ok()?;
    let hash = hex::decode(field("hash=")?).ok()?;
    let sane =
        (8..=64 * 1024).contains(&m) && (1..=4).contains(&t) && salt.len() == SALT_BYTES && hash.len() == 32;
    sane.then_some((m, t, salt, hash))
}

fn derive(password: &str, m: u32, t: u32, salt: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(m, t, 1, Some(32)).ok()?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(password.as_bytes(), salt, &mut *out).ok()?;
    Some(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_records::vocab::Lang;

    const UI: Ui = Ui { lang: Lang::En };

    #[test]
    fn names_are_found_whatever_their_case_and_a_password_is_checked() {
        let mut list = Operators::default();
        list.add("  Anna   Rossi ", Some("lungapassword"), &UI).unwrap();
        list.add("Luca Bianchi", None, &UI).unwrap();
        assert!(list.add("anna rossi", None, &UI).is_err(), "twice");
        assert!(list.add("Corto", Some("1234"), &UI).is_err(), "short password");
        let anna = list.find("ANNA ROSSI").unwrap();
        assert_eq!(anna.name, "Anna Rossi");
        assert!(anna.password_is("lungapassword") && !anna.password_is("lungapassworD"));
        assert!(!list.find("Luca Bianchi").unwrap().password_is(""), "no password: no login by password");
        assert!(!anna.password.as_deref().unwrap().contains("lungapassword"), "only the hash is kept");
    }

    #[test]
    fn who_is_working_is_checked_only_once_there_is_a_list() {
        let empty = Operators::default();
        assert_eq!(empty.working(None, &UI).unwrap(), None);
        assert_eq!(empty.working(Some(" Chiunque "), &UI).unwrap().as_deref(), Some("Chiunque"));
        let mut list = Operators::default();
        list.add("Anna Rossi", None, &UI).unwrap();
        assert_eq!(list.working(Some("anna rossi"), &UI).unwrap().as_deref(), Some("Anna Rossi"));
        let unknown = list.working(Some("Mallory"), &UI).unwrap_err().to_string();
        assert!(
            unknown.contains("is not an operator of this hub") && unknown.contains("Anna Rossi"),
            "{unknown}"
        );
        let missing = list.working(None, &UI).unwrap_err().to_string();
        assert!(missing.contains("TESSERA_OPERATOR"), "{missing}");
    }

    #[test]
    fn a_forged_cost_is_refused_not_computed() {
        let forged = Operator {
            name: "X".into(),
            password: Some(format!(
                "argon2id m=4194304 t=100 p=1 salt={} hash={}",
                "00".repeat(16),
                "00".repeat(32)
            )),
        };
        assert!(!forged.password_is("anything"));
        assert_eq!(parse_hash("argon2id m=19456 t=2 p=1 salt=zz hash=00"), None);
    }

    #[test]
    fn the_list_survives_a_round_trip_on_disk_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(Operators::load(dir.path(), &UI).unwrap().is_empty());
        let mut list = Operators::default();
        list.add("Anna Rossi", Some("lungapassword"), &UI).unwrap();
        list.save(dir.path(), &UI).unwrap();
        let again = Operators::load(dir.path(), &UI).unwrap();
        assert!(again.find("anna rossi").unwrap().password_is("lungapassword"));
        let mode = fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
