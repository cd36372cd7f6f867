//! Where a node keeps its files, and the small configuration file beside the store.
//!
//! A data directory holds `node.json` (this node's identity and site, no secrets),
//! `keys/` (secret key files, mode 0600) and `store/` (the log and derived state).
//! The directory is chosen by `--data`, else `$TESSERA_DATA`, else the platform's data
//! directory (`$XDG_DATA_HOME/tessera` or `~/.local/share/tessera`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::msg::SaidContext as _;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "node.json";
pub const KEYS_DIR: &str = "keys";
pub const STORE_DIR: &str = "store";
pub const DEVICE_KEY_FILE: &str = "device.key";
pub const NETWORK_KEY_FILE: &str = "network.key";
pub const PARTNER_KEY_FILE: &str = "partner.key";

/// The default data directory when neither `--data` nor `$TESSERA_DATA` is given.
pub fn default_data_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("tessera"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) if cfg!(target_os = "macos") => {
            Ok(PathBuf::from(home).join("Library/Application Support/tessera"))
        }
        Some(home) => Ok(PathBuf::from(home).join(".local/share/tessera")),
        None => bail!(crate::said!(
            "cannot find a data directory: pass --data DIR or set TESSERA_DATA",
            "non trovo una cartella dei dati: indica --data CARTELLA o imposta TESSERA_DATA"
        )),
    }
}

/// What a node knows about itself. No secrets: those are in `keys/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeConfig {
    /// Network id (hex of the coordinator's public key).
    pub network: String,
    /// This node's device public key (hex).
    pub device: String,
    /// The name of the site this node serves.
    pub site_name: String,
    /// `hub` or `help-desk`.
    pub role: String,
    /// The id of this node's own site record, once created.
    #[serde(default)]
    pub site_id: Option<String>,
    /// `init --site-of`: the existing site (its name or id) this node takes over, until
    /// the node has learned it from a sync or a bundle and adopted it as `site_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_of: Option<String>,
    /// True when `init` made a single-machine network (network and partner keys here).
    #[serde(default)]
    pub single_machine: bool,
    /// This node's own last change included in a bundle it exported.
    #[serde(default)]
    pub exported_own_seq: u64,
}

impl NodeConfig {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CONFIG_FILE)
    }

    pub fn load(dir: &Path) -> Result<NodeConfig> {
        let path = Self::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = dir.display();
                bail!(crate::said!(
                    "no Tessera node in {dir}: run `tessera init --site \"Your site\"` or `tessera quickstart` first",
                    "nessun nodo Tessera in {dir}: esegui prima `tessera init --site \"La tua sede\"` o `tessera quickstart`"
                ))
            }
            Err(e) => return Err(e).with_said(|| crate::msg::cannot("read", &path)),
        };
        serde_json::from_str(&text).with_said(|| {
            let path = path.display();
            (
                format!("{path} is damaged (not valid node settings)"),
                format!("{path} è danneggiato (non sono impostazioni valide di un nodo)"),
            )
        })
    }

    /// Writes the file durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        let mut file = fs::File::create(&tmp).with_said(|| crate::msg::cannot("write", &tmp))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path).with_said(|| crate::msg::cannot("write", &path))?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }
}
