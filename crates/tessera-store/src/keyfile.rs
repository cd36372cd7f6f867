//! Secret key files: one ed25519 secret per file, readable by its owner only.
//!
//! Format (text, so an operator can recognise it): the line `TESSERA SECRET KEY v1`,
//! then a line with the key's role (`device`, `partner`, `network`), then the 32 secret
//! bytes in hex. Files are created with mode 0600 and fsync'd, in a directory of mode
//! 0700 ([`create_key_dir`]); a file that others can read or change, or one in a
//! directory others can write (they could swap the key), is refused. No error or log
//! line ever contains the secret.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tessera_log::SecretKey;

const MAGIC_LINE: &str = "TESSERA SECRET KEY v1";

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
    let text = format!("{MAGIC_LINE}\n{role}\n{}\n", hex::encode(key.to_seed()));
    file.write_all(text.as_bytes()).map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))?;
    if let Some(parent) = path.parent() {
        let dir = fs::File::open(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })
            .map_err(io("open the directory of"))?;
        dir.sync_all().map_err(io("sync the directory of"))?;
    }
    Ok(())
}

/// Reads a secret key of `role` from `path`, refusing files others can read.
pub fn read_secret_key(path: &Path, role: &str) -> Result<SecretKey, KeyFileError> {
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
    if lines.next() != Some(MAGIC_LINE) {
        return Err(malformed("missing header line"));
    }
    let found_role = lines.next().ok_or_else(|| malformed("missing role line"))?.trim();
    if found_role != role {
        return Err(KeyFileError::WrongRole {
            path: path.to_path_buf(),
            expected: role.to_string(),
            found: found_role.chars().take(32).collect(),
        });
    }
    let hex_line = lines.next().ok_or_else(|| malformed("missing key line"))?.trim();
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex_line, &mut seed).map_err(|_| malformed("key line is not 64 hex digits"))?;
    Ok(SecretKey::from_seed(seed))
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
