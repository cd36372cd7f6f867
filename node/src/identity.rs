//! Making identities: `tessera init` (a node's device key and store) and the partner
//! administrator's commands (`tessera admin ...`) that make network and partner keys,
//! certify devices and revoke them.
//!
//! A device key is made on the node and never leaves it: the partner administrator
//! receives only its public half and returns a trust file with the certificates.
//! `init` without `--network` makes a single-machine network (network, partner and
//! device keys on this computer) so a first try needs nothing else.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::msg::SaidContext as _;
use anyhow::{bail, Result};
use tessera_log::{
    DeviceCertificate, DeviceKey, DeviceRevocation, DeviceRole, LogEntry, NetworkId, PartnerCertificate,
    PartnerKey, PublicKey, SecretKey, Seq, TrustEntry, TrustStatement,
};
use tessera_store::{write_secret_key, Policy, Store};

use crate::config::{NodeConfig, DEVICE_KEY_FILE, KEYS_DIR, NETWORK_KEY_FILE, PARTNER_KEY_FILE, STORE_DIR};
use crate::node::now;
use crate::trust_file;

fn generate() -> Result<SecretKey> {
    SecretKey::generate().said(
        "the operating system's random source failed",
        "la sorgente casuale del sistema operativo non ha funzionato",
    )
}

fn make_keys_dir(dir: &Path) -> Result<PathBuf> {
    let keys = dir.join(KEYS_DIR);
    tessera_store::create_key_dir(&keys)?;
    // The node's own directory: owner only, even if it existed before.
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o700))?;
    Ok(keys)
}

fn ensure_fresh(dir: &Path) -> Result<()> {
    if NodeConfig::path(dir).exists() {
        let dir = dir.display();
        bail!(crate::said!(
            "{dir} already holds a Tessera node; use another --data directory or remove it first",
            "{dir} contiene già un nodo Tessera; usa un'altra cartella con --data o toglila prima"
        ));
    }
    fs::create_dir_all(dir).with_said(|| crate::msg::cannot("create", dir))?;
    Ok(())
}

pub fn parse_role(role: &str) -> Result<DeviceRole> {
    match role.to_lowercase().as_str() {
        "hub" | "polo" => Ok(DeviceRole::Hub),
        "help-desk" | "helpdesk" | "desk" | "sportello" => Ok(DeviceRole::HelpDesk),
        "relay" => Ok(DeviceRole::Relay),
        other => bail!(crate::said!(
            "unknown role `{other}`: use `hub`, `help-desk` or `relay`",
            "ruolo `{other}` sconosciuto: usa `polo` (hub), `sportello` (help-desk) o `relay`"
        )),
    }
}

pub fn role_name(role: DeviceRole) -> &'static str {
    match role {
        DeviceRole::Hub => "hub",
        DeviceRole::HelpDesk => "help-desk",
        DeviceRole::Relay => "relay",
    }
}

pub(crate) fn sign(network: NetworkId, key: &SecretKey, statement: TrustStatement) -> Result<TrustEntry> {
    Ok(TrustEntry::sign(network, now(), statement, key)?)
}

/// The partner's certificate, beside its key, for `admin certify-device`.
pub const PARTNER_TRUST_FILE: &str = "partner.trust";

/// `tessera init` without a network: a whole network on this machine.
pub fn init_single_machine(
    dir: &Path,
    site: &str,
    role: DeviceRole,
    partner_name: &str,
) -> Result<NodeConfig> {
    ensure_fresh(dir)?;
    let keys = make_keys_dir(dir)?;
    let network_key = generate()?;
    let partner_key = generate()?;
    let device_key = generate()?;
    let network = NetworkId(network_key.public());
    write_secret_key(&keys.join(NETWORK_KEY_FILE), "network", &network_key)?;
    write_secret_key(&keys.join(PARTNER_KEY_FILE), "partner", &partner_key)?;
    write_secret_key(&keys.join(DEVICE_KEY_FILE), "device", &device_key)?;
    let partner = PartnerKey(partner_key.public());
    let device = DeviceKey(device_key.public());
    let partner_cert = sign(
        network,
        &network_key,
        TrustStatement::Partner(PartnerCertificate { partner, name: partner_name.to_string() }),
    )?;
    // Beside partner.key, as `admin new-partner` leaves it: this machine can certify
    // more hubs of its own organisation (`admin certify-device`).
    trust_file::write(&keys.join(PARTNER_TRUST_FILE), &network, &[&partner_cert])?;
    let entries = vec![
        partner_cert,
        sign(
            network,
            &partner_key,
            TrustStatement::Device(DeviceCertificate { partner, device, role, site: site.to_string() }),
        )?,
    ];
    let (mut store, _) = Store::open(&dir.join(STORE_DIR), Some(network))?;
    let entries: Vec<LogEntry> = entries.into_iter().map(LogEntry::Trust).collect();
    store.ingest(&entries, Policy::AllOrNothing)?;
    drop(store);
    let config = NodeConfig {
        network: network.0.to_hex(),
        device: device.0.to_hex(),
        site_name: site.to_string(),
        role: role_name(role).to_string(),
        site_id: None,
        site_of: None,
        single_machine: true,
        exported_own_seq: 0,
    };
    config.save(dir)?;
    Ok(config)
}

/// `tessera init --network ID`: a device key and an empty store, waiting for the
/// partner administrator's certificate.
pub fn init_joining(dir: &Path, site: &str, role: DeviceRole, network: NetworkId) -> Result<NodeConfig> {
    ensure_fresh(dir)?;
    let keys = make_keys_dir(dir)?;
    let device_key = generate()?;
    write_secret_key(&keys.join(DEVICE_KEY_FILE), "device", &device_key)?;
    drop(Store::open(&dir.join(STORE_DIR), Some(network))?);
    let config = NodeConfig {
        network: network.0.to_hex(),
        device: device_key.public().to_hex(),
        site_name: site.to_string(),
        role: role_name(role).to_string(),
        site_id: None,
        site_of: None,
        single_machine: false,
        exported_own_seq: 0,
    };
    config.save(dir)?;
    Ok(config)
}

/// `tessera admin new-network`: the coordinator's key.
pub fn admin_new_network(out: &Path, protect: bool, ui: &crate::ui::Ui) -> Result<NetworkId> {
    tessera_store::create_key_dir(out)?;
    let key = generate()?;
    crate::passphrase::write_key(&out.join(NETWORK_KEY_FILE), "network", &key, protect, ui)?;
    Ok(NetworkId(key.public()))
}

/// `tessera admin new-partner`: a partner key and its certificate by the network key.
pub fn admin_new_partner(
    network_key_file: &Path,
    name: &str,
    out: &Path,
    protect: bool,
    ui: &crate::ui::Ui,
) -> Result<(PartnerKey, PathBuf)> {
    let network_key = crate::passphrase::read_key(network_key_file, "network", ui)?;
    let network = NetworkId(network_key.public());
    tessera_store::create_key_dir(out)?;
    let partner_key = generate()?;
    crate::passphrase::write_key(&out.join(PARTNER_KEY_FILE), "partner", &partner_key, protect, ui)?;
    let partner = PartnerKey(partner_key.public());
    let cert = sign(
        network,
        &network_key,
        TrustStatement::Partner(PartnerCertificate { partner, name: name.into() }),
    )?;
    let trust_path = out.join(PARTNER_TRUST_FILE);
    trust_file::write(&trust_path, &network, &[&cert])?;
    Ok((partner, trust_path))
}

pub fn parse_public_key(hex_key: &str) -> Result<PublicKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut bytes).ok().with_said(|| {
        let key = hex_key.trim();
        (
            format!("`{key}` is not a device key (64 hex digits)"),
            format!("`{key}` non è una chiave di dispositivo (64 cifre esadecimali)"),
        )
    })?;
    PublicKey::from_bytes(bytes).ok().with_said(|| {
        let key = hex_key.trim();
        (format!("`{key}` is not a valid key"), format!("`{key}` non è una chiave valida"))
    })
}

/// `tessera admin certify-device`: a trust file with the partner's certificate and a
/// new certificate of `device`, to import on that node.
pub fn admin_certify_device(
    partner_key_file: &Path,
    partner_trust_file: &Path,
    device: DeviceKey,
    site: &str,
    role: DeviceRole,
    out: &Path,
    ui: &crate::ui::Ui,
) -> Result<()> {
    let partner_key = crate::passphrase::read_key(partner_key_file, "partner", ui)?;
    let partner = PartnerKey(partner_key.public());
    let (network, entries) = trust_file::read(partner_trust_file)?;
    let partner_cert = entries
        .iter()
        .find(|e| matches!(&e.statement, TrustStatement::Partner(c) if c.partner == partner))
        .with_said(|| {
            let file = partner_trust_file.display();
            (
                format!("{file} holds no certificate of this partner key"),
                format!("{file} non contiene alcun certificato di questa chiave dell'ente"),
            )
        })?;
    partner_cert.verify_signature(&network)?;
    let device_cert = sign(
        network,
        &partner_key,
        TrustStatement::Device(DeviceCertificate { partner, device, role, site: site.to_string() }),
    )?;
    Ok(trust_file::write(out, &network, &[partner_cert, &device_cert])?)
}

/// `tessera admin revoke-device`: a revocation signed by a partner or network key.
pub fn admin_revoke_device(
    key: &SecretKey,
    network: NetworkId,
    device: DeviceKey,
    last_valid: Seq,
    reason: &str,
    out: &Path,
) -> Result<()> {
    let revocation = sign(
        network,
        key,
        TrustStatement::RevokeDevice(DeviceRevocation {
            issuer: key.public(),
            device,
            last_valid,
            reason: reason.to_string(),
        }),
    )?;
    Ok(trust_file::write(out, &network, &[&revocation])?)
}
