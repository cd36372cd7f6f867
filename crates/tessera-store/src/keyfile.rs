//! Secret key files: one ed25519 secret per file, readable by its owner only.
//!
//! Format (text, so an operator can recognise it): the line `TESSERA SECRET KEY v1`,
//! then a line with the key's role (`device`, `partner`, `network`), then the 32 secret
//! bytes in hex. A network or partner key may also be kept under a passphrase
//! (`TESSERA SECRET KEY v2 passphrase`): the role, the argon2id parameters and salt,
//! then the secret sealed with XChaCha20-Poly1305 under the key argon2id derives from
//! the passphrase (the role bound as associated data), so a copied file is worth
//! nothing without it. Files are created with mode 0600 and fsync'd, in a directory of mode
//! 0700 ([`create_key_dir`]); a file that others can read or change, or one in a
//! directory others can write (they could swap the key), is refused. No error or log
//! line ever contains the secret.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tessera_log::SecretKey;

const MAGIC_LINE: &str = "TESSERA SECRET KEY v1";
const SEALED_LINE: &str = "TESSERA SECRET KEY v2 passphrase";
/// argon2id cost for a new file: 64 MiB, 3 passes, 1 lane (about a quarter of a second
/// on a hub's laptop; OWASP's 2023 floor is 19 MiB and 2 passes).
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
const ARGON2_LANES: u32 = 1;
/// The most a file may ask for, so a forged file cannot make a reader allocate or spin
/// without bound.
const ARGON2_MEMORY_KIB_MAX: u32 = 1024 * 1024;
const ARGON2_PASSES_MAX: u32 = 16;
const ARGON2_LANES_MAX: u32 = 8;
/// Shortest passphrase accepted for a new file.
pub const PASSPHRASE_CHARS_MIN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot {action} key file {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("key file {} already exists; refusing to overwrite a secret key", .path.display())]
    Exists { path: PathBuf },
    #[error("key file {} can be {} by other users (mode {mode:o}); run `chmod 600 {}`", .path.display(), open_to(*.mode), .path.display())]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file {} is in a directory other users can write (mode {mode:o}), so they could replace the key; run `chmod 700 {}`", .path.display(), .dir.display())]
    DirectoryTooOpen { path: PathBuf, dir: PathBuf, mode: u32 },
    #[error("{} is not a Tessera secret key file ({reason})", .path.display())]
    Malformed { path: PathBuf, reason: &'static str },
    #[error("key file {} holds a {found} key, expected a {expected} key", .path.display())]
    WrongRole { path: PathBuf, expected: String, found: String },
    #[error("key file {} is protected by a passphrase, and none was given", .path.display())]
    NeedsPassphrase { path: PathBuf },
    #[error("the passphrase does not open key file {} (or the file was altered)", .path.display())]
    WrongPassphrase { path: PathBuf },
    #[error("a passphrase needs at least {min} characters")]
    PassphraseTooShort { min: usize },
    #[error("the operating system's random source failed")]
    Random,
}

/// What others may do with a file of `mode`, in words.
fn open_to(mode: u32) -> &'static str {
    match (mode & 0o044 != 0, mode & 0o022 != 0) {
        (true, true) => "read and changed",
        (false, true) => "changed",
        (true, false) => "read",
        // Only execute bits: still not the owner's alone.
        (false, false) => "used",
    }
}

/// Makes `dir` ready for key files: created with mode 0700 when missing; an existing
/// directory is left as it is (it may be the operator's own), unless others can write
/// it, which is refused.
pub fn create_key_dir(dir: &Path) -> Result<(), KeyFileError> {
    let io = |action| move |source| KeyFileError::Io { action, path: dir.to_path_buf(), source };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create the directory for"))?;
        // The umask cannot widen 0700, but make sure nothing else did.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("set permissions of"))?;
    }
    check_directory(&dir.join("key"))
}

/// Refuses a key whose directory others can write (unless sticky, like /tmp: then
/// they cannot replace a file they do not own).
fn check_directory(path: &Path) -> Result<(), KeyFileError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let meta = fs::metadata(dir).map_err(|source| KeyFileError::Io {
        action: "read the directory of",
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(KeyFileError::DirectoryTooOpen {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Writes `key` to a new file at `path` with mode 0600, durably.
pub fn write_secret_key(path: &Path, role: &str, key: &SecretKey) -> Result<(), KeyFileError> {
    let text = format!("{MAGIC_LINE}\n{role}\n{}\n", hex::encode(key.to_seed()));
    write_new_file(path, &text)
}

/// Writes `key` to a new file at `path` sealed under `passphrase` (see the module).
pub fn write_secret_key_with_passphrase(
    path: &Path,
    role: &str,
    key: &SecretKey,
    passphrase: &str,
) -> Result<(), KeyFileError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    if passphrase.chars().count() < PASSPHRASE_CHARS_MIN {
        return Err(KeyFileError::PassphraseTooShort { min: PASSPHRASE_CHARS_MIN });
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut salt).map_err(|_| KeyFileError::Random)?;
    getrandom::getrandom(&mut nonce).map_err(|_| KeyFileError::Random)?;
    let params = (ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES);
    let sealing = derive(passphrase, &salt, params).ok_or(KeyFileError::Random)?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&*sealing).into());
    let aad = associated_data(role);
    let sealed = cipher
        .encrypt((&nonce).into(), Payload { msg: &key.to_seed(), aad: aad.as_bytes() })
        .map_err(|_| KeyFileError::Random)?;
    let text = format!(
        "{SEALED_LINE}\n{role}\nargon2id m={} t={} p={} salt={}\n{} {}\n",
        params.0,
        params.1,
        params.2,
        hex::encode(salt),
        hex::encode(nonce),
        hex::encode(sealed)
    );
    write_new_file(path, &text)
}

fn associated_data(role: &str) -> String {
    format!("tessera key file v2 {role}")
}

/// The 32-byte sealing key argon2id derives from `passphrase`; `None` for parameters
/// argon2 refuses.
fn derive(passphrase: &str, salt: &[u8], (m, t, p): (u32, u32, u32)) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(m, t, p, Some(32)).ok()?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    argon.hash_password_into(passphrase.as_bytes(), salt, &mut *out).ok()?;
    Some(out)
}

/// Whether the key file at `path` is kept under a passphrase.
pub fn needs_passphrase(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|text| text.lines().next() == Some(SEALED_LINE))
}

fn write_new_file(path: &Path, text: &str) -> Result<(), KeyFileError> {
    let io = |action| move |source| KeyFileError::Io { action, path: path.to_path_buf(), source };
    let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(KeyFileError::Exists { path: path.to_path_buf() })
        }
        Err(e) => return Err(io("create")(e)),
    };
    // The umask cannot widen 0600, but make sure nothing else did.
    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io("set permissions of"))?;
    file.write_all(text.as_bytes()).map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))?;
    if let Some(parent) = path.parent() {
        let dir = fs::File::open(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })
            .map_err(io("open the directory of"))?;
        dir.sync_all().map_err(io("sync the directory of"))?;
    }
    Ok(())
}

/// Reads a secret key of `role` from `path`, refusing files others can read. A file
/// kept under a passphrase is [`KeyFileError::NeedsPassphrase`]: see
/// [`read_secret_key_with_passphrase`].
pub fn read_secret_key(path: &Path, role: &str) -> Result<SecretKey, KeyFileError> {
    read_secret_key_with_passphrase(path, role, None)
}

/// Reads a secret key of `role` from `path`, opening it with `passphrase` if it is kept
/// under one (a plain file is read as it is, whatever `passphrase`).
pub fn read_secret_key_with_passphrase(
    path: &Path,
    role: &str,
    passphrase: Option<&str>,
) -> Result<SecretKey, KeyFileError> {
    let io = |action| move |source| KeyFileError::Io { action, path: path.to_path_buf(), source };
    let meta = fs::metadata(path).map_err(io("read"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen { path: path.to_path_buf(), mode });
    }
    check_directory(path)?;
    if meta.len() > 4096 {
        return Err(KeyFileError::Malformed { path: path.to_path_buf(), reason: "file too large" });
    }
    let text = fs::read_to_string(path).map_err(io("read"))?;
    let malformed = |reason| KeyFileError::Malformed { path: path.to_path_buf(), reason };
    let mut lines = text.lines();
    let sealed = match lines.next() {
        Some(MAGIC_LINE) => false,
        Some(SEALED_LINE) => true,
        _ => return Err(malformed("missing header line")),
    };
    let found_role = lines.next().ok_or_else(|| malformed("missing role line"))?.trim();
    if found_role != role {
        return Err(KeyFileError::WrongRole {
            path: path.to_path_buf(),
            expected: role.to_string(),
            found: found_role.chars().take(32).collect(),
        });
    }
    if sealed {
        let passphrase =
            passphrase.ok_or_else(|| KeyFileError::NeedsPassphrase { path: path.to_path_buf() })?;
        return open_sealed(&mut lines, role, passphrase, path);
    }
    let hex_line = lines.next().ok_or_else(|| malformed("missing key line"))?.trim();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex_line, &mut seed).map_err(|_| malformed("key line is not 64 hex digits"))?;
    Ok(SecretKey::from_seed(seed))
}

/// The lines after the role of a file kept under a passphrase.
fn open_sealed<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
    role: &str,
    passphrase: &str,
    path: &Path,
) -> Result<SecretKey, KeyFileError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let malformed = |reason| KeyFileError::Malformed { path: path.to_path_buf(), reason };
    let params_line = lines.next().ok_or_else(|| malformed("missing argon2id line"))?.trim();
    let mut words = params_line.split(' ');
    if words.next() != Some("argon2id") {
        return Err(malformed("unknown key derivation"));
    }
    let mut value = |name: &str| -> Option<&str> { words.next()?.strip_prefix(name)?.strip_prefix('=') };
    let number =
        |v: Option<&str>, max: u32| v.and_then(|v| v.parse::<u32>().ok()).filter(|n| (1..=max).contains(n));
    let m =
        number(value("m"), ARGON2_MEMORY_KIB_MAX).ok_or_else(|| malformed("argon2id memory out of range"))?;
    let t = number(value("t"), ARGON2_PASSES_MAX).ok_or_else(|| malformed("argon2id passes out of range"))?;
    let p = number(value("p"), ARGON2_LANES_MAX).ok_or_else(|| malformed("argon2id lanes out of range"))?;
    let mut salt = [0u8; 16];
    hex::decode_to_slice(value("salt").unwrap_or(""), &mut salt)
        .map_err(|_| malformed("salt is not 32 hex digits"))?;
    let sealed_line = lines.next().ok_or_else(|| malformed("missing sealed key line"))?.trim();
    let (nonce_hex, sealed_hex) = sealed_line.split_once(' ').ok_or_else(|| malformed("sealed key line"))?;
    let mut nonce = [0u8; 24];
    hex::decode_to_slice(nonce_hex, &mut nonce).map_err(|_| malformed("nonce is not 48 hex digits"))?;
    let mut sealed = [0u8; 48];
    hex::decode_to_slice(sealed_hex, &mut sealed)
        .map_err(|_| malformed("sealed key is not 96 hex digits"))?;
    let sealing =
        derive(passphrase, &salt, (m, t, p)).ok_or_else(|| malformed("argon2id parameters refused"))?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&*sealing).into());
    let aad = associated_data(role);
    let seed = cipher
        .decrypt((&nonce).into(), Payload { msg: &sealed, aad: aad.as_bytes() })
        .map_err(|_| KeyFileError::WrongPassphrase { path: path.to_path_buf() })?;
    let seed: zeroize::Zeroizing<[u8; 32]> =
        zeroize::Zeroizing::new(seed.try_into().map_err(|_| malformed("sealed key length"))?);
    Ok(SecretKey::from_seed(*seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let key = SecretKey::from_seed([7; 32]);
        write_secret_key(&path, "device", &key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_secret_key(&path, "device").unwrap();
        assert_eq!(back.public(), key.public());
        assert!(matches!(write_secret_key(&path, "device", &key), Err(KeyFileError::Exists { .. })));
        assert!(matches!(read_secret_key(&path, "partner"), Err(KeyFileError::WrongRole { .. })));
    }

    #[test]
    fn readable_by_others_is_refused_and_secret_never_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let key = SecretKey::from_seed([0xab; 32]);
        write_secret_key(&path, "device", &key).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_key(&path, "device").unwrap_err();
        assert!(matches!(err, KeyFileError::TooOpen { mode: 0o644, .. }));
        let secret_hex = hex::encode(key.to_seed());
        assert!(!err.to_string().contains(&secret_hex));
        assert!(!format!("{key:?}").contains(&secret_hex));
        // Writable but not readable by others: said as it is.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        let err = read_secret_key(&path, "device").unwrap_err().to_string();
        assert!(err.contains("can be changed by other users (mode 620)"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "TESSERA SECRET KEY v1\ndevice\nzz\n").unwrap();
        assert!(matches!(read_secret_key(&path, "device"), Err(KeyFileError::Malformed { .. })));
    }

    #[test]
    fn a_key_under_a_passphrase_opens_only_with_it_and_tells_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network.key");
        let key = SecretKey::from_seed([0x3c; 32]);
        let short = write_secret_key_with_passphrase(&path, "network", &key, "corta");
        assert!(matches!(short, Err(KeyFileError::PassphraseTooShort { min: 10 })));
        write_secret_key_with_passphrase(&path, "network", &key, "una frase lunga di prova").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(needs_passphrase(&path));
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(key.to_seed())), "the secret is not in the file");
        assert!(matches!(read_secret_key(&path, "network"), Err(KeyFileError::NeedsPassphrase { .. })));
        let wrong = read_secret_key_with_passphrase(&path, "network", Some("un'altra frase lunga"));
        assert!(matches!(wrong, Err(KeyFileError::WrongPassphrase { .. })));
        let opened =
            read_secret_key_with_passphrase(&path, "network", Some("una frase lunga di prova")).unwrap();
        assert_eq!(opened.public(), key.public());
        // The role is bound: the same file renamed as a partner key does not open.
        let relabelled = text.replacen("\nnetwork\n", "\npartner\n", 1);
        let other = dir.path().join("partner.key");
        fs::write(&other, relabelled).unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        let swapped = read_secret_key_with_passphrase(&other, "partner", Some("una frase lunga di prova"));
        assert!(matches!(swapped, Err(KeyFileError::WrongPassphrase { .. })));
        // A forged file asking for a huge cost is refused before any work.
        let costly = text.replacen("m=65536", "m=99999999", 1);
        fs::write(&other, costly.replacen("\nnetwork\n", "\npartner\n", 1)).unwrap();
        let refused = read_secret_key_with_passphrase(&other, "partner", Some("una frase lunga di prova"));
        assert!(matches!(refused, Err(KeyFileError::Malformed { .. })), "{refused:?}");
        // A plain file reads whatever passphrase is given.
        let plain = dir.path().join("device.key");
        write_secret_key(&plain, "device", &key).unwrap();
        assert!(!needs_passphrase(&plain));
        assert!(read_secret_key_with_passphrase(&plain, "device", Some("whatever it is")).is_ok());
    }

    #[test]
    fn a_key_in_a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        create_key_dir(&keys).unwrap();
        assert_eq!(fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        let path = keys.join("device.key");
        write_secret_key(&path, "device", &SecretKey::from_seed([5; 32])).unwrap();
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o777)).unwrap();
        let err = read_secret_key(&path, "device").unwrap_err();
        assert!(matches!(err, KeyFileError::DirectoryTooOpen { mode: 0o777, .. }), "{err}");
        assert!(err.to_string().contains("chmod 700"), "{err}");
        assert!(matches!(create_key_dir(&keys), Err(KeyFileError::DirectoryTooOpen { .. })));
        // Sticky (like /tmp): others cannot replace the owner's file.
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(read_secret_key(&path, "device").is_ok());
        assert!(create_key_dir(&keys).is_ok());
    }
}
