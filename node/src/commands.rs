//! What each `tessera` command does. Every command that changes something validates
//! first, then makes exactly one signed envelope through [`Node::transact`], and says
//! "saved" only after it is on disk. Errors name the problem and change nothing.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use chrono::NaiveDate;
use tessera_log::DocId;
use tessera_records::conflicts::{self, Conflict};
use tessera_records::kind::{parse_id_prefix, short_id, RecordKind};
use tessera_records::model::{
    parse_date, parse_date_time, Attendee, Consent, Device, Guardian, Loan, Participant, Record, RecordRef,
    Session, Site,
};
use tessera_records::report::{self, GroupBy, ReportQuery};
use tessera_records::text::fold;
use tessera_records::validate;
use tessera_records::vocab::{
    AttendeeRole, Audience, ConsentBy, DeviceCondition, DeviceKind, DeviceOrigin, DeviceStatus, SessionKind,
    SessionMode, SiteKind, Topic,
};

use crate::cli::*;
use crate::config::default_data_dir;
use crate::identity;
use crate::node::Node;
use crate::tr;
use crate::ui::{print_fields, print_table, Ui};

pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

pub fn data_dir(cli_data: &Option<PathBuf>) -> Result<PathBuf> {
    match cli_data {
        Some(dir) => Ok(dir.clone()),
        None => default_data_dir(),
    }
}

pub fn dispatch(cli: Cli, ui: &Ui) -> Result<()> {
    let dir = data_dir(&cli.data)?;
    match cli.command {
        Command::Init(args) => init(&dir, args, ui),
        Command::Quickstart => crate::commands::quickstart(&dir, ui),
        Command::Admin(cmd) => admin(cmd, ui),
        Command::Audit(cmd) => audit(&dir, cmd, ui),
        Command::Sync { peer } => crate::net_cmd::sync(&dir, &peer, ui),
        Command::Serve { listen, peers, ui_addr, no_ui } => {
            crate::net_cmd::serve(&dir, &listen, &peers, (!no_ui).then_some(ui_addr.as_str()), ui)
        }
        Command::Operator(cmd) => operator_cmd(&dir, cmd, ui),
        command => {
            let mut node = Node::open(&dir)?;
            node.set_operator(std::env::var(crate::operators::OPERATOR_ENV).ok().as_deref(), ui);
            on_node(&mut node, command, ui)
        }
    }
}

/// `tessera operator ...`: the hub's list of operators ([`crate::operators`]), a file of
/// this computer beside the store (not synced), so it works beside a running daemon.
fn operator_cmd(dir: &std::path::Path, cmd: OperatorCommand, ui: &Ui) -> Result<()> {
    use crate::operators::Operators;
    if !dir.join(crate::config::CONFIG_FILE).exists() {
        bail!(
            "{} {}: {}",
            ui.t("no Tessera node in", "nessun nodo Tessera in"),
            dir.display(),
            ui.t("run `tessera init` first", "esegui prima `tessera init`")
        );
    }
    let mut list = Operators::load(dir, ui)?;
    match cmd {
        OperatorCommand::Add { name, password } => {
            let password = if password { Some(crate::passphrase::new_operator_password(ui)?) } else { None };
            list.add(&name, password.as_deref().map(|p| p.as_str()), ui)?;
            list.save(dir, ui)?;
            let added = list.find(&name).map(|o| o.name.clone()).unwrap_or(name);
            crate::outln!(
                "{} {added}{}. {}",
                ui.t("Operator added:", "Operatore aggiunto:"),
                if password.is_some() { ui.t(" (with a password)", " (con password)") } else { "" },
                ui.t(
                    "From now on every change says who made it: set TESSERA_OPERATOR to your name at the command line; the page asks.",
                    "D'ora in poi ogni modifica dice chi l'ha fatta: imposta TESSERA_OPERATOR col tuo nome a riga di comando; la pagina lo chiede."
                )
            );
        }
        OperatorCommand::List => {
            if list.is_empty() {
                crate::outln!(
                    "{}",
                    ui.t(
                        "No operators yet: changes do not say who made them. Add one with `tessera operator add NAME`.",
                        "Nessun operatore: le modifiche non dicono chi le ha fatte. Aggiungine uno con `tessera operator add NOME`."
                    )
                );
            }
            for o in &list.operators {
                let password = if o.has_password() { ui.t("password", "password") } else { "—" };
                crate::outln!("{}\t{password}", o.name);
            }
        }
        OperatorCommand::Remove { name } => {
            let removed = list.remove(&name, ui)?;
            list.save(dir, ui)?;
            crate::outln!("{} {}", ui.t("Operator removed:", "Operatore tolto:"), removed.name);
        }
    }
    Ok(())
}

/// Runs a command on an open node: here after opening it, or in the daemon that
/// holds it ([`crate::daemon`]).
pub fn on_node(node: &mut Node, command: Command, ui: &Ui) -> Result<()> {
    match command {
        Command::Status => status(node, ui),
        Command::Site(cmd) => site(node, cmd, ui),
        Command::Attendee(cmd) => attendee(node, cmd, ui),
        Command::Device(cmd) => device(node, cmd, ui),
        Command::Loan(cmd) => loan(node, cmd, ui),
        Command::Session(cmd) => session(node, cmd, ui),
        Command::Conflicts(cmd) => conflicts_cmd(node, cmd, ui),
        Command::Report(args) => report_cmd(node, args, ui),
        Command::Export(args) => export(node, args, ui),
        Command::Import(args) => {
            import(node, args, ui)?;
            // A node taking over a site (`init --site-of`) adopts it as soon as it is known.
            if let Some(wanted) = node.config.site_of.clone() {
                if !sites_named(node, &wanted, ui)?.is_empty() {
                    adopt_site(node, &wanted, ui)?;
                }
            }
            Ok(())
        }
        Command::Repair { damage_reviewed } => repair(node, damage_reviewed, ui),
        Command::Keys(KeysCommand::Grant { device }) => keys_grant(node, &device, ui),
        other => bail!(
            "{}",
            tr!(
                ui,
                "`{other:?}` does not run on an open node",
                "`{other:?}` non si esegue su un nodo aperto"
            )
        ),
    }
}

// ---------------------------------------------------------------------------------
// Parsing what the operator typed

fn word<T>(
    value: &str,
    parse: impl Fn(&str) -> Result<T, tessera_records::vocab::ParseWordError>,
    ui: &Ui,
) -> Result<T> {
    parse(value).map_err(|e| anyhow!("`{value}`: {}", e.message(ui.lang)))
}

fn date(value: &str, field: &str, ui: &Ui) -> Result<String> {
    match parse_date(value) {
        Some(d) => Ok(tessera_records::model::format_date(d)),
        None => bail!(
            "{}",
            tr!(
                ui,
                "{field}: `{value}` is not a date; write it as YYYY-MM-DD, e.g. 2026-11-22",
                "{field}: `{value}` non è una data; scrivila come AAAA-MM-GG, per esempio 2026-11-22"
            )
        ),
    }
}

fn date_time(value: &str, field: &str, ui: &Ui) -> Result<String> {
    match parse_date_time(value) {
        Some(d) => Ok(tessera_records::model::format_date_time(d)),
        None => bail!(
            "{}",
            tr!(
                ui,
                "{field}: `{value}` is not a date and time; write it as YYYY-MM-DDTHH:MM, e.g. 2026-11-22T15:30",
                "{field}: `{value}` non è una data con l'ora; scrivila come AAAA-MM-GGTHH:MM, per esempio 2026-11-22T15:30"
            )
        ),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn validate_record(record: &Record, ui: &Ui) -> Result<()> {
    validate::validate(record, today())
        .map_err(|e| anyhow!("{}: {}", ui.t("not saved", "non salvato"), e.message(ui.lang)))
}

fn saved(ui: &Ui, what: &str, id: &DocId) {
    crate::outln!("{} {what} {}", ui.t("Saved", "Salvato"), short_id(id));
}

// ---------------------------------------------------------------------------------
// Resolving ids

/// Finds the one record of `kind` that `text` names (a short id or its prefix).
pub fn resolve(node: &Node, kind: RecordKind, text: &str, ui: &Ui) -> Result<DocId> {
    let prefix =
        parse_id_prefix(text).map_err(|e| anyhow!("`{text}`: {}", crate::msg::id_error_text(&e, ui)))?;
    let name = |k: RecordKind| count_noun(k, 1, ui);
    if let Some(other) = prefix.kind.filter(|k| *k != kind) {
        let (other, kind) = (name(other), name(kind));
        bail!(
            "{}",
            tr!(
                ui,
                "`{text}` is the id of a {other}, not of a {kind}",
                "`{text}` è il codice di una scheda di tipo {other}, non di tipo {kind}"
            )
        );
    }
    let matches: Vec<DocId> =
        node.docs().ids_with_prefix(kind, "")?.into_iter().filter(|id| prefix.matches(id)).collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => {
            let kind = name(kind);
            bail!(
                "{}",
                tr!(
                    ui,
                    "no {kind} with id `{text}` on this node",
                    "nessuna scheda di tipo {kind} con codice `{text}` su questo nodo"
                )
            )
        }
        many => {
            let (n, kind) = (many.len(), name(kind));
            bail!(
                "{}",
                tr!(
                    ui,
                    "`{text}` matches {n} records of kind {kind}: type more characters of the id",
                    "`{text}` corrisponde a {n} schede di tipo {kind}: scrivi altre cifre del codice"
                )
            )
        }
    }
}

/// A device by id or by asset tag.
fn resolve_device(node: &Node, text: &str, ui: &Ui) -> Result<DocId> {
    let folded = fold(text);
    let by_tag: Vec<DocId> = node
        .docs()
        .records(RecordKind::Device)?
        .into_iter()
        .filter_map(|(id, r)| match r {
            Record::Device(d) if fold(&d.asset_tag) == folded => Some(id),
            _ => None,
        })
        .collect();
    match by_tag.as_slice() {
        [one] => Ok(*one),
        [] => match parse_id_prefix(text) {
            Ok(_) => resolve(node, RecordKind::Device, text, ui),
            Err(_) => bail!(
                "{}",
                tr!(
                    ui,
                    "no device with asset tag or id `{text}` on this node",
                    "nessun dispositivo con etichetta o codice `{text}` su questo nodo"
                )
            ),
        },
        _ => bail!(
            "{}",
            tr!(
                ui,
                "several devices have the asset tag `{text}`: use the device id instead",
                "più dispositivi hanno l'etichetta `{text}`: usa il codice del dispositivo"
            )
        ),
    }
}

fn load(node: &Node, id: &DocId, ui: &Ui) -> Result<Record> {
    node.docs().record(id)?.with_context(|| {
        let id = short_id(id);
        tr!(ui, "{id} is not readable on this node yet", "{id} non è ancora leggibile su questo nodo")
    })
}

/// This node's own site; made on first use from the name given at `init`.
pub fn own_site(node: &mut Node, ui: &Ui) -> Result<DocId> {
    if let Some(id) = node.config.site_id.as_deref().and_then(tessera_records::kind::parse_doc_id) {
        return Ok(id);
    }
    if let Some(wanted) = node.config.site_of.clone() {
        return adopt_site(node, &wanted, ui);
    }
    let id = Node::new_id(RecordKind::Site)?;
    let kind = if node.config.role == "help-desk" { SiteKind::HelpDesk } else { SiteKind::CommunityHub };
    let partner = node
        .store()
        .trust()
        .devices()
        .find(|c| c.device == node.device())
        .and_then(|c| node.store().trust().partner(&c.partner))
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let site = Site {
        name: node.config.site_name.clone(),
        kind,
        partner,
        address: String::new(),
        opening_hours: String::new(),
    };
    node.transact(&[(id, Record::Site(site))])?;
    node.config.site_id = Some(id.to_hex());
    node.config.save(node.dir())?;
    crate::outln!("{} {}", ui.t("Created this node's site", "Creata la sede di questo nodo"), short_id(&id));
    Ok(id)
}

/// The existing sites `wanted` names: by id, else by name (accents and case ignored).
fn sites_named(node: &Node, wanted: &str, ui: &Ui) -> Result<Vec<(DocId, Site)>> {
    let sites: Vec<(DocId, Site)> = node
        .docs()
        .records(RecordKind::Site)?
        .into_iter()
        .filter_map(|(id, r)| match r {
            Record::Site(s) => Some((id, s)),
            _ => None,
        })
        .collect();
    if let Ok(by_id) = resolve(node, RecordKind::Site, wanted, ui) {
        return Ok(sites.into_iter().filter(|(id, _)| *id == by_id).collect());
    }
    Ok(sites.into_iter().filter(|(_, s)| fold(&s.name) == fold(wanted)).collect())
}

/// `init --site-of`: this node takes over an existing site, once it knows it.
fn adopt_site(node: &mut Node, wanted: &str, ui: &Ui) -> Result<DocId> {
    let found = sites_named(node, wanted, ui)?;
    let (id, site) = match found.as_slice() {
        [one] => one.clone(),
        [] => bail!(
            "{} «{wanted}» {}",
            ui.t("not saved: the site", "non salvato: la sede"),
            ui.t(
                "is not known here yet. Sync with the relay (`tessera sync --peer ADDRESS`) or import a bundle of the hub first.",
                "non è ancora nota qui. Prima sincronizza con il relay (`tessera sync --peer INDIRIZZO`) o importa un pacchetto del polo."
            )
        ),
        several => bail!(
            "{} «{wanted}»: {}. {}",
            ui.t("not saved: several sites are called", "non salvato: più sedi si chiamano"),
            several.iter().map(|(id, _)| short_id(id)).collect::<Vec<_>>().join(", "),
            ui.t(
                "Set the one to take over in node.json (\"site_of\") by its id.",
                "Indica in node.json (\"site_of\") l'id di quella da riprendere."
            )
        ),
    };
    node.config.site_id = Some(id.to_hex());
    node.config.site_name = site.name.clone();
    node.config.site_of = None;
    node.config.save(node.dir())?;
    crate::outln!(
        "{} «{}» ({})",
        ui.t("This node now serves the existing site", "Questo nodo ora serve la sede esistente"),
        site.name,
        short_id(&id)
    );
    Ok(id)
}

fn site_or_own(node: &mut Node, text: &Option<String>, ui: &Ui) -> Result<RecordRef> {
    match text {
        Some(t) => Ok(RecordRef(resolve(node, RecordKind::Site, t, ui)?)),
        None => Ok(RecordRef(own_site(node, ui)?)),
    }
}

// ---------------------------------------------------------------------------------
// init, admin, status

fn init(dir: &std::path::Path, args: InitArgs, ui: &Ui) -> Result<()> {
    let role = identity::parse_role(&args.role)?;
    let site = args.site.as_deref().or(args.site_of.as_deref()).unwrap_or_default();
    match args.network {
        None => {
            identity::init_single_machine(dir, site, role, &args.partner)?;
            let mut node = Node::open(dir)?;
            own_site(&mut node, ui)?;
            crate::outln!("{} {}", ui.t("Node ready in", "Nodo pronto in"), dir.display());
            crate::outln!(
                "{}",
                ui.t(
                    "This is a single-machine network, good for a first try. Next: `tessera attendee add --help`.",
                    "È una rete su un solo computer, adatta a una prova. Poi: `tessera attendee add --help`."
                )
            );
        }
        Some(network) => {
            let network = crate::trust_file::parse_network(&network)?;
            let mut config = identity::init_joining(dir, site, role, network)?;
            if let Some(site_of) = &args.site_of {
                config.site_of = Some(site_of.clone());
                config.save(dir)?;
            }
            crate::outln!("{} {}", ui.t("Node created in", "Nodo creato in"), dir.display());
            if let Some(site_of) = &args.site_of {
                crate::outln!(
                    "{} «{site_of}» {}",
                    ui.t("This node takes over the site", "Questo nodo prende il posto della sede"),
                    ui.t(
                        "once it has learned it: after the certificate, sync with the relay or import a bundle of the hub.",
                        "appena la conosce: dopo il certificato, sincronizza con il relay o importa un pacchetto del polo."
                    )
                );
            }
            crate::outln!("{}: {}", ui.t("Device key", "Chiave del dispositivo"), config.device);
            crate::outln!(
                "{}",
                ui.t(
                    "Send the device key to your partner's administrator; they run \
                     `tessera admin certify-device --device KEY ...` and give you a .trust file. \
                     Then run `tessera import FILE.trust`.",
                    "Invia la chiave del dispositivo all'amministratore del tuo ente; eseguirà \
                     `tessera admin certify-device --device CHIAVE ...` e ti darà un file .trust. \
                     Poi esegui `tessera import FILE.trust`."
                )
            );
        }
    }
    Ok(())
}

fn admin(cmd: AdminCommand, ui: &Ui) -> Result<()> {
    match cmd {
        AdminCommand::NewNetwork { out, passphrase } => {
            let network = identity::admin_new_network(&out, passphrase, ui)?;
            crate::outln!("{}: {}", ui.t("Network id", "Id della rete"), network.0.to_hex());
            crate::outln!(
                "{} {}",
                ui.t("Keep this key safe and offline:", "Conserva questa chiave al sicuro e offline:"),
                out.join(crate::config::NETWORK_KEY_FILE).display()
            );
        }
        AdminCommand::NewPartner { network_key, name, out, passphrase } => {
            let (partner, trust) = identity::admin_new_partner(&network_key, &name, &out, passphrase, ui)?;
            crate::outln!("{}: {}", ui.t("Partner key", "Chiave dell'ente"), partner.0.to_hex());
            crate::outln!("{}: {}", ui.t("Partner certificate", "Certificato dell'ente"), trust.display());
        }
        AdminCommand::ProtectKey { file, role } => {
            if role != "network" && role != "partner" {
                bail!(
                    "{}",
                    ui.t("--role must be `network` or `partner`", "--role deve essere `network` o `partner`")
                );
            }
            if tessera_store::needs_passphrase(&file) {
                bail!(
                    "{} {}",
                    file.display(),
                    ui.t("is already under a passphrase", "è già protetta da una frase segreta")
                );
            }
            let key = tessera_store::read_secret_key(&file, &role)?;
            // Written beside it, then put in its place: the plain file is never lost
            // before the protected one is durable.
            let protected = file.with_extension("key.new");
            let _ = std::fs::remove_file(&protected);
            crate::passphrase::write_key(&protected, &role, &key, true, ui)?;
            std::fs::rename(&protected, &file)?;
            crate::outln!(
                "{} {}",
                file.display(),
                ui.t(
                    "is now under a passphrase. Copies of the old file (backups) still hold the key in clear: delete them.",
                    "è ora protetta da una frase segreta. Le copie del vecchio file (backup) contengono ancora la chiave in chiaro: cancellale."
                )
            );
        }
        AdminCommand::CertifyDevice { partner_key, partner_trust, device, site, role, out } => {
            let device = tessera_log::DeviceKey(identity::parse_public_key(&device)?);
            let role = identity::parse_role(&role)?;
            identity::admin_certify_device(&partner_key, &partner_trust, device, &site, role, &out, ui)?;
            crate::outln!(
                "{} {}: {}",
                ui.t("Certificate written to", "Certificato scritto in"),
                out.display(),
                ui.t(
                    "import it on the node with `tessera import`",
                    "importalo sul nodo con `tessera import`"
                )
            );
        }
        AdminCommand::RevokeDevice { key, key_role, network, device, after, reason, out } => {
            let network = crate::trust_file::parse_network(&network)?;
            let device = tessera_log::DeviceKey(identity::parse_public_key(&device)?);
            let key_role = match fold(&key_role).as_str() {
                "ente" => "partner".to_string(),
                "rete" => "network".to_string(),
                _ => key_role,
            };
            if key_role != "partner" && key_role != "network" {
                bail!(
                    "{}",
                    ui.t(
                        "--key-role must be `partner` or `network`",
                        "--key-role deve essere `partner` (ente) o `network` (rete)"
                    )
                );
            }
            let key = crate::passphrase::read_key(&key, &key_role, ui)?;
            identity::admin_revoke_device(&key, network, device, tessera_log::Seq(after), &reason, &out)?;
            crate::outln!("{} {}", ui.t("Revocation written to", "Revoca scritta in"), out.display());
        }
    }
    Ok(())
}

/// A person's name as an operator reads it in a list, or what stands in for it
/// (another organisation's person, an erased one).
fn person_name(node: &Node, person: &RecordRef, ui: &Ui) -> Result<String> {
    Ok(match node.docs().record(&person.0)? {
        Some(Record::Attendee(a)) if a.is_erased() => ui.t("(erased)", "(cancellata)").to_string(),
        Some(Record::Attendee(a)) if a.is_reserved() => {
            format!(
                "({} {})",
                ui.t("reserved to", "riservato a"),
                registering_partner(node, &a).unwrap_or_else(|| "?".into())
            )
        }
        Some(Record::Attendee(a)) => format!("{} {}", a.given_name, a.family_name),
        _ => person.short(),
    })
}

/// Whom to call about a person: the guardian of a minor (name and contact), else the
/// person's own phone or e-mail. Empty when nothing readable is on record.
fn contact_of(node: &Node, person: &RecordRef, ui: &Ui) -> Result<String> {
    let Some(Record::Attendee(a)) = node.docs().record(&person.0)? else { return Ok(String::new()) };
    if a.is_reserved() || a.is_erased() {
        return Ok(String::new());
    }
    let either = |phone: &Option<String>, email: &Option<String>| {
        [phone.as_deref(), email.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(", ")
    };
    Ok(match &a.guardian {
        Some(g) => format!("{} {}: {}", ui.t("guardian", "tutore"), g.name, either(&g.phone, &g.email)),
        None => either(&a.phone, &a.email),
    })
}

/// The name of the organisation that registered `attendee`, if known.
pub(crate) fn registering_partner(node: &Node, attendee: &Attendee) -> Option<String> {
    let key = crate::identity::parse_public_key(attendee.registered_by.as_deref()?).ok()?;
    node.store().trust().partner(&tessera_log::PartnerKey(key)).map(|p| p.name.clone())
}

/// What to tell an operator whose hub holds changes sealed with keys it lacks.
pub fn unreadable_note(ui: &Ui) -> String {
    ui.t(
        "some changes are sealed with a read key this hub has not been given yet. A hub that \
         holds it gives it at its next sync or export once it has seen this hub's certificate: \
         sync again, or export a bundle from here and import it there",
        "alcune modifiche sono cifrate con una chiave di lettura che questo polo non ha ancora \
         ricevuto. Un polo che la possiede la consegna alla sua prossima sincronizzazione o \
         esportazione, dopo aver visto il certificato di questo polo: sincronizza di nuovo, \
         oppure esporta un pacchetto da qui e importalo là",
    )
    .to_string()
}

fn status(node: &Node, ui: &Ui) -> Result<()> {
    let store = node.store();
    let own = store.head(&node.device());
    let mut fields = vec![
        (ui.t("Data directory", "Cartella dei dati"), node.dir().display().to_string()),
        (ui.t("Network", "Rete"), node.network().0.to_hex()),
        (ui.t("Device key", "Chiave del dispositivo"), node.device().0.to_hex()),
        (
            ui.t("Site", "Sede"),
            match &node.config.site_of {
                Some(wanted) => format!(
                    "{wanted} ({})",
                    ui.t(
                        "to take over once learned from a sync or a bundle",
                        "da riprendere appena nota da una sincronizzazione o un pacchetto"
                    )
                ),
                None => node.config.site_name.clone(),
            },
        ),
        (
            ui.t("Certified", "Certificato"),
            if node.is_certified() {
                ui.t("yes", "sì")
            } else {
                ui.t("no: import a certificate", "no: importa un certificato")
            }
            .to_string(),
        ),
        (
            ui.t("Log size", "Dimensione del registro"),
            format!("{} {}", store.log_bytes(), ui.t("bytes", "byte")),
        ),
        (
            ui.t("Own changes", "Modifiche proprie"),
            own.map(|h| format!("{} ({} {})", h.seq, ui.t("head", "ultima"), &h.id.to_string()[..16]))
                .unwrap_or_else(|| "0".into()),
        ),
        (ui.t("Devices known", "Dispositivi noti"), store.heads().len().to_string()),
        (ui.t("Changes held", "Modifiche presenti"), store.heads().total_envelopes().to_string()),
        (ui.t("Forks found", "Biforcazioni trovate"), store.forks().len().to_string()),
        (
            ui.t(
                "Changes without their content (asked of peers)",
                "Modifiche senza contenuto (chiesto ai nodi)",
            ),
            match store.bodies_missing(tessera_sync::WANT_ITEMS_MAX + 1)?.len() {
                n if n > tessera_sync::WANT_ITEMS_MAX => format!("{}+", tessera_sync::WANT_ITEMS_MAX),
                n => n.to_string(),
            },
        ),
    ];
    let keys = node.docs().keys();
    fields.push((
        ui.t("Read keys held", "Chiavi di lettura"),
        match keys.ring().len() {
            0 => ui
                .t("none yet (made at the first change)", "nessuna (creata alla prima modifica)")
                .to_string(),
            n => n.to_string(),
        },
    ));
    if node.lacks_read_keys() {
        fields.push((
            ui.t("Changes not readable here yet", "Modifiche non ancora leggibili qui"),
            unreadable_note(ui),
        ));
    }
    let damage = store.damage();
    if !damage.is_empty() {
        let unknown = damage.iter().filter(|d| d.held == tessera_store::DamagedEntry::Unknown).count();
        fields.push((
            ui.t(
                "Damaged records in the log (kept aside)",
                "Registrazioni danneggiate nel registro (messe da parte)",
            ),
            format!("{} ({} {})", damage.len(), unknown, ui.t("unreadable", "illeggibili")),
        ));
        fields.push((
            ui.t("Changes lost to damage (asked of peers)", "Modifiche perse per danno (chieste ai nodi)"),
            store.holes(tessera_sync::WANT_ITEMS_MAX)?.len().to_string(),
        ));
    }
    if let Some(blocked) = store.signing_blocked(&node.device())? {
        fields.push((
            ui.t("This node may write", "Questo nodo può scrivere"),
            format!(
                "{} ({blocked})",
                ui.t(
                    "no, sync with a peer or the relay first",
                    "no, prima sincronizza con un nodo o il relay"
                )
            ),
        ));
    }
    let counts: Vec<String> =
        [RecordKind::Site, RecordKind::Attendee, RecordKind::Device, RecordKind::Loan, RecordKind::Session]
            .iter()
            .map(|k| {
                let n = node.docs().count(*k)?;
                Ok(format!("{n} {}", count_noun(*k, n, ui)))
            })
            .collect::<Result<_>>()?;
    fields.push((ui.t("Records", "Schede"), counts.join(", ")));
    fields.push((
        ui.t("Records fingerprint", "Impronta delle schede"),
        node.docs().state_digest()?[..16].to_string(),
    ));
    let own_seq = own.map(|h| h.seq.0).unwrap_or(0);
    fields.push((
        ui.t("Own changes not yet exported", "Modifiche proprie non ancora esportate"),
        own_seq.saturating_sub(node.config.exported_own_seq).to_string(),
    ));
    print_fields(&fields);
    let peers = crate::net_cmd::load_peers(node.dir());
    if !peers.is_empty() {
        crate::outln!();
        let rows: Vec<Vec<String>> = peers
            .iter()
            .map(|(key, p)| {
                vec![
                    key[..16].to_string(),
                    p.site.clone(),
                    p.address.clone(),
                    p.last_success.clone().unwrap_or_else(|| ui.t("never", "mai").to_string()),
                    p.last_result.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                ui.t("peer", "nodo"),
                ui.t("site", "sede"),
                ui.t("address", "indirizzo"),
                ui.t("last successful sync", "ultima sincronizzazione riuscita"),
                ui.t("last result", "ultimo esito"),
            ],
            &rows,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Sites

fn site(node: &mut Node, cmd: SiteCommand, ui: &Ui) -> Result<()> {
    match cmd {
        SiteCommand::Add(f) => {
            let site = Site {
                name: non_empty(f.name).context(ui.t("--name is required", "--name è obbligatorio"))?,
                kind: word(f.kind.as_deref().unwrap_or("community-hub"), SiteKind::parse, ui)?,
                partner: f.partner.unwrap_or_default(),
                address: f.address.unwrap_or_default(),
                opening_hours: f.hours.unwrap_or_default(),
            };
            let record = Record::Site(site);
            validate_record(&record, ui)?;
            let id = Node::new_id(RecordKind::Site)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("site", "sede"), &id);
        }
        SiteCommand::Edit { id, fields: f } => {
            let id = resolve(node, RecordKind::Site, &id, ui)?;
            let Record::Site(mut site) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a site", "non è una sede"))
            };
            if let Some(v) = non_empty(f.name) {
                site.name = v;
            }
            if let Some(v) = f.kind {
                site.kind = word(&v, SiteKind::parse, ui)?;
            }
            if let Some(v) = f.partner {
                site.partner = v;
            }
            if let Some(v) = f.address {
                site.address = v;
            }
            if let Some(v) = f.hours {
                site.opening_hours = v;
            }
            let record = Record::Site(site);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("site", "sede"), &id);
        }
        SiteCommand::Show { id } => {
            let id = resolve(node, RecordKind::Site, &id, ui)?;
            let Record::Site(s) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a site", "non è una sede"))
            };
            print_fields(&[
                ("id", short_id(&id)),
                (ui.t("Name", "Nome"), s.name),
                (ui.t("Kind", "Tipo"), s.kind.label(ui.lang).to_string()),
                (ui.t("Partner", "Ente"), s.partner),
                (ui.t("Address", "Indirizzo"), s.address),
                (ui.t("Opening hours", "Orari"), s.opening_hours),
            ]);
        }
        SiteCommand::List => {
            let rows: Vec<Vec<String>> = node
                .docs()
                .records(RecordKind::Site)?
                .into_iter()
                .filter_map(|(id, r)| match r {
                    Record::Site(s) => {
                        Some(vec![short_id(&id), s.name, s.kind.label(ui.lang).to_string(), s.partner])
                    }
                    _ => None,
                })
                .collect();
            print_table(&["id", ui.t("name", "nome"), ui.t("kind", "tipo"), ui.t("partner", "ente")], &rows);
        }
    }
    Ok(())
}

fn site_name(node: &Node, site: &RecordRef) -> String {
    match node.docs().record(&site.0) {
        Ok(Some(Record::Site(s))) => s.name,
        _ => site.short(),
    }
}

/// Site names read once for a whole listing (a lookup per row costs a read and a
/// decode each).
struct SiteNames(std::collections::HashMap<DocId, String>);

impl SiteNames {
    fn load(node: &Node) -> Result<SiteNames> {
        Ok(SiteNames(
            node.docs()
                .records(RecordKind::Site)?
                .into_iter()
                .filter_map(|(id, r)| match r {
                    Record::Site(s) => Some((id, s.name)),
                    _ => None,
                })
                .collect(),
        ))
    }

    fn name(&self, site: &RecordRef) -> String {
        self.0.get(&site.0).cloned().unwrap_or_else(|| site.short())
    }
}

// ---------------------------------------------------------------------------------
// Attendees

/// A new attendee from what was typed (or read from a spreadsheet row), checked
/// against the rules; not saved.
pub(crate) fn new_attendee(node: &mut Node, mut f: AttendeeFields, ui: &Ui) -> Result<Attendee> {
    // Who collected the consent: as given, else who is working (here or at the client
    // of the daemon: `$TESSERA_OPERATOR` where the command was typed).
    if non_empty(f.operator.clone()).is_none() {
        f.operator = node.operator().map(str::to_string);
    }
    let site = site_or_own(node, &f.site, ui)?;
    let consent_by = match &f.consent_by {
        Some(v) => word(v, ConsentBy::parse, ui)?,
        None => bail!(
            "{}",
            ui.t(
                "--consent-by is required: `self` or `guardian` (who signed the consent form)",
                "--consent-by è obbligatorio: `interessato` o `tutore` (chi ha firmato il modulo di consenso)"
            )
        ),
    };
    let mut a = Attendee {
        given_name: non_empty(f.given.clone())
            .context(ui.t("--given (given name) is required", "--given (nome) è obbligatorio"))?,
        family_name: non_empty(f.family.clone())
            .context(ui.t("--family (family name) is required", "--family (cognome) è obbligatorio"))?,
        birth_year: f
            .birth_year
            .context(ui.t("--birth-year is required", "--birth-year (anno di nascita) è obbligatorio"))?,
        role: word(
            f.role.as_deref().context(ui.t(
                "--role is required: student, parent, teacher or citizen",
                "--role è obbligatorio: studente, genitore, insegnante o cittadino",
            ))?,
            AttendeeRole::parse,
            ui,
        )?,
        school: None,
        class: None,
        guardian: None,
        phone: None,
        email: None,
        languages: Vec::new(),
        consent: Consent {
            date: tessera_records::model::format_date(today()),
            given_by: consent_by,
            operator: String::new(),
        },
        referent_operator: None,
        plan_notes: String::new(),
        site,
        merged_into: None,
        not_duplicates_of: Vec::new(),
        registered_by: None,
        match_key: None,
        erased: None,
        id_nonce: None,
    };
    if non_empty(f.operator.clone()).is_none() {
        bail!(
            "{}",
            ui.t(
                "--operator is required: the name of the operator who collected the consent form (or set TESSERA_OPERATOR)",
                "--operator è obbligatorio: il nome dell'operatore che ha raccolto il modulo di consenso (o imposta TESSERA_OPERATOR)"
            )
        );
    }
    let f = AttendeeFields { site: None, ..f };
    apply_attendee_fields(&mut a, f, node, ui)?;
    validate_record(&Record::Attendee(a.clone()), ui)?;
    Ok(a)
}

fn apply_attendee_fields(a: &mut Attendee, f: AttendeeFields, node: &mut Node, ui: &Ui) -> Result<()> {
    if let Some(v) = non_empty(f.given) {
        a.given_name = v;
    }
    if let Some(v) = non_empty(f.family) {
        a.family_name = v;
    }
    if let Some(v) = f.birth_year {
        a.birth_year = v;
    }
    if let Some(v) = f.role {
        a.role = word(&v, AttendeeRole::parse, ui)?;
    }
    if let Some(v) = f.school {
        a.school = non_empty(Some(v));
    }
    if let Some(v) = f.class {
        a.class = non_empty(Some(v));
    }
    if f.guardian_name.is_some() || f.guardian_phone.is_some() || f.guardian_email.is_some() {
        let mut g = a.guardian.clone().unwrap_or(Guardian { name: String::new(), phone: None, email: None });
        if let Some(v) = f.guardian_name {
            g.name = v.trim().to_string();
        }
        if let Some(v) = f.guardian_phone {
            g.phone = non_empty(Some(v));
        }
        if let Some(v) = f.guardian_email {
            g.email = non_empty(Some(v));
        }
        a.guardian = Some(g);
    }
    if let Some(v) = f.phone {
        a.phone = non_empty(Some(v));
    }
    if let Some(v) = f.email {
        a.email = non_empty(Some(v));
    }
    if !f.languages.is_empty() {
        a.languages =
            f.languages.into_iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    }
    if let Some(v) = f.consent_date {
        a.consent.date = date(&v, "--consent-date", ui)?;
    }
    if let Some(v) = f.consent_by {
        a.consent.given_by = word(&v, ConsentBy::parse, ui)?;
    }
    if let Some(v) = f.operator {
        a.consent.operator = v.trim().to_string();
    }
    if let Some(v) = f.referent {
        a.referent_operator = non_empty(Some(v));
    }
    if let Some(v) = f.notes {
        a.plan_notes = v;
    }
    if f.site.is_some() {
        a.site = site_or_own(node, &f.site, ui)?;
    }
    Ok(())
}

fn attendee(node: &mut Node, cmd: AttendeeCommand, ui: &Ui) -> Result<()> {
    match cmd {
        AttendeeCommand::Add { fields: f, force } => {
            let mut a = new_attendee(node, f, ui)?;
            if !force {
                let people = node.docs().records(RecordKind::Attendee)?;
                let same = tessera_records::conflicts::probable_duplicates_of(&a, &people);
                if !same.is_empty() {
                    let labels = Labels::new(node, &people, ui)?;
                    bail!(
                        "{} {}. {}",
                        ui.t("not saved: probably already registered:", "non salvato: probabilmente già iscritta:"),
                        labels.list(&same, Labels::person),
                        ui.t(
                            "Check with `tessera attendee show ID`; if it is another person, add --force.",
                            "Controlla con `tessera attendee show ID`; se è un'altra persona, aggiungi --force."
                        )
                    );
                }
            }
            let (id, nonce) = node.new_attendee_id()?;
            a.id_nonce = Some(nonce);
            node.transact(&[(id, Record::Attendee(a))])?;
            saved(ui, ui.t("attendee", "iscritto"), &id);
        }
        AttendeeCommand::Import { file, dry_run, columns, consent_by, force } => {
            let asked = crate::import_csv::ImportRequest {
                file: &file,
                dry_run,
                columns: &columns,
                consent_by: consent_by.as_deref(),
                force,
            };
            crate::import_csv::import(node, &asked, ui)?;
        }
        AttendeeCommand::Edit { id, fields } => {
            let id = resolve(node, RecordKind::Attendee, &id, ui)?;
            let Record::Attendee(mut a) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not an attendee", "non è un iscritto"))
            };
            if let Some(erased) = &a.erased {
                bail!(
                    "{} {}",
                    ui.t(
                        "not saved: this person was erased on",
                        "non salvato: questa persona è stata cancellata il"
                    ),
                    erased.on
                );
            }
            if a.is_reserved() {
                bail!(
                    "{} {}",
                    ui.t(
                        "not saved: this person was registered by",
                        "non salvato: questa persona è stata registrata da"
                    ),
                    registering_partner(node, &a)
                        .unwrap_or_else(|| ui.t("another organisation", "un altro ente").into()),
                );
            }
            apply_attendee_fields(&mut a, fields, node, ui)?;
            let record = Record::Attendee(a);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("attendee", "iscritto"), &id);
        }
        AttendeeCommand::Show { id } => {
            let id = resolve(node, RecordKind::Attendee, &id, ui)?;
            let Record::Attendee(a) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not an attendee", "non è un iscritto"))
            };
            if let Some(erased) = &a.erased {
                print_fields(&[
                    ("id", short_id(&id)),
                    (ui.t("Erased", "Cancellato"), erased_words(erased, ui)),
                    (ui.t("Birth year", "Anno di nascita"), a.birth_year.to_string()),
                    (ui.t("Role", "Ruolo"), a.role.label(ui.lang).to_string()),
                    (ui.t("Registered at", "Iscritto presso"), site_name(node, &a.site)),
                ]);
                return Ok(());
            }
            if a.is_reserved() {
                let mut fields = vec![
                    ("id", short_id(&id)),
                    (
                        ui.t("Personal details", "Dati personali"),
                        format!(
                            "{} {}",
                            ui.t("reserved to", "riservati a"),
                            registering_partner(node, &a)
                                .unwrap_or_else(|| ui.t("another organisation", "un altro ente").into())
                        ),
                    ),
                    (ui.t("Birth year", "Anno di nascita"), a.birth_year.to_string()),
                    (ui.t("Role", "Ruolo"), a.role.label(ui.lang).to_string()),
                    (ui.t("Registered at", "Iscritto presso"), site_name(node, &a.site)),
                ];
                if let Some(m) = a.merged_into {
                    fields.push((ui.t("Merged into", "Unito a"), m.short()));
                }
                print_fields(&fields);
                return Ok(());
            }
            let mut fields = vec![
                ("id", short_id(&id)),
                (ui.t("Given name", "Nome"), a.given_name.clone()),
                (ui.t("Family name", "Cognome"), a.family_name.clone()),
                (ui.t("Birth year", "Anno di nascita"), a.birth_year.to_string()),
                (ui.t("Role", "Ruolo"), a.role.label(ui.lang).to_string()),
                (ui.t("School", "Scuola"), a.school.clone().unwrap_or_default()),
                (ui.t("Class", "Classe"), a.class.clone().unwrap_or_default()),
                (
                    ui.t("Guardian", "Tutore"),
                    a.guardian
                        .as_ref()
                        .map(|g| {
                            [Some(g.name.clone()), g.phone.clone(), g.email.clone()]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                ),
                (ui.t("Phone", "Telefono"), a.phone.clone().unwrap_or_default()),
                (ui.t("E-mail", "E-mail"), a.email.clone().unwrap_or_default()),
                (ui.t("Languages", "Lingue"), a.languages.join(", ")),
                (
                    ui.t("Consent", "Consenso"),
                    format!(
                        "{} ({}, {})",
                        a.consent.date,
                        a.consent.given_by.label(ui.lang),
                        a.consent.operator
                    ),
                ),
                (ui.t("Referent", "Referente"), a.referent_operator.clone().unwrap_or_default()),
                (ui.t("Plan notes", "Note del piano"), a.plan_notes.clone()),
                (ui.t("Registered at", "Iscritto presso"), site_name(node, &a.site)),
            ];
            if let Some(m) = a.merged_into {
                fields.push((ui.t("Merged into", "Unito a"), m.short()));
            }
            print_fields(&fields);
        }
        AttendeeCommand::List { site, search, role } => {
            let site = site.map(|s| resolve(node, RecordKind::Site, &s, ui)).transpose()?;
            let role = role.map(|r| word(&r, AttendeeRole::parse, ui)).transpose()?;
            let needle = search.as_deref().map(fold);
            let sites = SiteNames::load(node)?;
            let mut rows = Vec::new();
            let mut reserved = 0usize;
            let mut erased = 0usize;
            for (id, r) in node.docs().records(RecordKind::Attendee)? {
                let Record::Attendee(a) = r else { continue };
                if a.is_erased() {
                    erased += 1;
                    continue;
                }
                if a.is_reserved() {
                    reserved += usize::from(!a.is_merged());
                    continue;
                }
                if a.is_merged()
                    || site.is_some_and(|s| a.site.0 != s)
                    || role.is_some_and(|r| a.role != r)
                    || needle
                        .as_ref()
                        .is_some_and(|n| !fold(&format!("{} {}", a.given_name, a.family_name)).contains(n))
                {
                    continue;
                }
                rows.push(vec![
                    short_id(&id),
                    a.family_name,
                    a.given_name,
                    a.birth_year.to_string(),
                    a.role.label(ui.lang).to_string(),
                    sites.name(&a.site),
                ]);
            }
            rows.sort_by_cached_key(|row| (fold(&row[1]), fold(&row[2])));
            print_table(
                &[
                    "id",
                    ui.t("family name", "cognome"),
                    ui.t("given name", "nome"),
                    ui.t("born", "nato"),
                    ui.t("role", "ruolo"),
                    ui.t("site", "sede"),
                ],
                &rows,
            );
            if reserved > 0 {
                crate::outln!(
                    "{reserved} {}",
                    ui.t(
                        "people registered by other organisations are not listed: their personal details are theirs to read",
                        "persone registrate da altri enti non sono elencate: i loro dati personali sono visibili solo a quegli enti"
                    )
                );
            }
            if erased > 0 {
                crate::outln!(
                    "{erased} {}",
                    ui.t(
                        "people erased (GDPR art. 17) are not listed: they still count, anonymously, in reports",
                        "persone cancellate (GDPR art. 17) non sono elencate: restano contate, in forma anonima, nei report"
                    )
                );
            }
        }
        AttendeeCommand::Erase { id, reason, yes, network_key } => {
            let id = resolve(node, RecordKind::Attendee, &id, ui)?;
            let Record::Attendee(a) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not an attendee", "non è un iscritto"))
            };
            if let Some(erased) = &a.erased {
                bail!(
                    "{} {}",
                    ui.t(
                        "nothing to do: this person was erased on",
                        "niente da fare: questa persona è stata cancellata il"
                    ),
                    erased.on
                );
            }
            let reason = match reason.trim() {
                "request" | "richiesta" => tessera_log::ErasureReason::Request,
                "mistake" | "errore" => tessera_log::ErasureReason::Mistake,
                other => bail!(
                    "{} \"{other}\": {}",
                    ui.t("unknown --reason", "--reason sconosciuto"),
                    ui.t(
                        "use `request` (the person asked, art. 17) or `mistake` (registered by mistake)",
                        "usare `richiesta` (la persona l'ha chiesto, art. 17) o `errore` (iscritto per errore)"
                    )
                ),
            };
            if a.is_reserved() && network_key.is_none() {
                bail!(
                    "{} {}",
                    ui.t(
                        "not erased: only the organisation that registered this person may erase them:",
                        "non cancellato: solo l'ente che ha iscritto questa persona può cancellarla:"
                    ),
                    registering_partner(node, &a)
                        .unwrap_or_else(|| ui.t("another organisation", "un altro ente").into()),
                );
            }
            if !yes {
                bail!(
                    "{}",
                    ui.t(
                        "not erased: an erasure cannot be undone. It removes this person's details and history from this hub and from every hub and relay it syncs with. Run again with --yes to confirm",
                        "non cancellato: una cancellazione non si può annullare. Toglie i dati e la storia di questa persona da questo polo e da ogni polo e relay con cui si sincronizza. Ripetere con --yes per confermare"
                    )
                );
            }
            let on = tessera_records::model::format_date(today());
            // The records merged into this one are the same person: erased with it.
            let everyone = node.docs().records(RecordKind::Attendee)?;
            let mut targets = vec![(id, a)];
            let mut frontier = vec![id];
            while let Some(into) = frontier.pop() {
                for (other, record) in &everyone {
                    let Record::Attendee(duplicate) = record else { continue };
                    let merged_here = duplicate.merged_into.is_some_and(|m| m.0 == into);
                    if merged_here && !duplicate.is_erased() && targets.iter().all(|(t, _)| t != other) {
                        targets.push((*other, duplicate.clone()));
                        frontier.push(*other);
                    }
                }
            }
            match &network_key {
                None => {
                    node.erase_all(&targets, &on, reason)?;
                }
                Some(file) => {
                    let key = crate::passphrase::read_key(file, "network", ui)?;
                    let ids: Vec<DocId> = targets.iter().map(|(t, _)| *t).collect();
                    node.erase_by_network(&key, &ids, &on, reason)?;
                }
            }
            let ids: Vec<String> = targets.iter().map(|(t, _)| short_id(t)).collect();
            crate::outln!(
                "{} {} {}. {}",
                ids.join(", "),
                ui.t("erased", "cancellato"),
                erased_words(&tessera_records::Erased::new(&on, reason), ui),
                ui.t(
                    "Their details are gone from this hub; every hub and relay removes them when it syncs.",
                    "I suoi dati sono stati tolti da questo polo; ogni polo e relay li toglie quando si sincronizza."
                )
            );
        }
    }
    Ok(())
}

/// "on 2026-12-07 (art. 17, at the person's request)" in the operator's language.
fn erased_words(erased: &tessera_records::Erased, ui: &Ui) -> String {
    let why = match erased.reason.as_str() {
        "mistake" => ui.t("registered by mistake", "iscritto per errore"),
        _ => ui.t("art. 17, at the person's request", "art. 17, su richiesta della persona"),
    };
    format!("{} {} ({why})", ui.t("on", "il"), erased.on)
}

// ---------------------------------------------------------------------------------
// Devices

fn apply_device_fields(d: &mut Device, f: DeviceFields, node: &mut Node, ui: &Ui) -> Result<()> {
    if let Some(v) = non_empty(f.tag) {
        d.asset_tag = v;
    }
    if let Some(v) = f.kind {
        d.kind = word(&v, DeviceKind::parse, ui)?;
    }
    if let Some(v) = f.model {
        d.model = v;
    }
    if let Some(v) = f.serial {
        d.serial = v;
    }
    if let Some(v) = f.origin {
        d.origin = word(&v, DeviceOrigin::parse, ui)?;
    }
    if let Some(v) = f.condition {
        d.condition = word(&v, DeviceCondition::parse, ui)?;
    }
    if let Some(v) = f.status {
        d.status = word(&v, DeviceStatus::parse, ui)?;
    }
    if f.site.is_some() {
        d.site = site_or_own(node, &f.site, ui)?;
    }
    Ok(())
}

fn open_loans_of(node: &Node, device: &DocId) -> Result<Vec<(DocId, Loan)>> {
    Ok(node
        .docs()
        .records(RecordKind::Loan)?
        .into_iter()
        .filter_map(|(id, r)| match r {
            Record::Loan(l) if l.device.0 == *device && l.is_open() => Some((id, l)),
            _ => None,
        })
        .collect())
}

fn device(node: &mut Node, cmd: DeviceCommand, ui: &Ui) -> Result<()> {
    match cmd {
        DeviceCommand::Add(f) => {
            let site = site_or_own(node, &f.site, ui)?;
            let tag = non_empty(f.tag.clone())
                .context(ui.t("--tag (asset tag) is required", "--tag (etichetta) è obbligatorio"))?;
            let exists = node
                .docs()
                .records(RecordKind::Device)?
                .into_iter()
                .any(|(_, r)| matches!(r, Record::Device(d) if fold(&d.asset_tag) == fold(&tag)));
            if exists {
                bail!(
                    "{}",
                    tr!(
                        ui,
                        "a device with asset tag `{tag}` is already registered",
                        "un dispositivo con etichetta `{tag}` è già registrato"
                    )
                );
            }
            let mut d = Device {
                asset_tag: tag,
                kind: word(
                    f.kind.as_deref().context(ui.t(
                        "--kind is required: pc, laptop, tablet, hotspot or phone",
                        "--kind è obbligatorio: pc, portatile, tablet, hotspot o telefono",
                    ))?,
                    DeviceKind::parse,
                    ui,
                )?,
                model: String::new(),
                serial: String::new(),
                origin: word(
                    f.origin.as_deref().context(ui.t(
                        "--origin is required: donated, purchased, refurbished or public-access",
                        "--origin è obbligatorio: donato, acquistato, rigenerato o postazione-pubblica",
                    ))?,
                    DeviceOrigin::parse,
                    ui,
                )?,
                condition: DeviceCondition::Good,
                status: DeviceStatus::InStock,
                site,
            };
            let f = DeviceFields { site: None, tag: None, kind: None, origin: None, ..f };
            apply_device_fields(&mut d, f, node, ui)?;
            let record = Record::Device(d);
            validate_record(&record, ui)?;
            let id = Node::new_id(RecordKind::Device)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("device", "dispositivo"), &id);
        }
        DeviceCommand::Edit { id, fields } => {
            let id = resolve_device(node, &id, ui)?;
            let Record::Device(mut d) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a device", "non è un dispositivo"))
            };
            apply_device_fields(&mut d, fields, node, ui)?;
            let record = Record::Device(d);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("device", "dispositivo"), &id);
        }
        DeviceCommand::Show { id } => {
            let id = resolve_device(node, &id, ui)?;
            let Record::Device(d) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a device", "non è un dispositivo"))
            };
            let loans: Vec<String> = open_loans_of(node, &id)?.iter().map(|(l, _)| short_id(l)).collect();
            print_fields(&[
                ("id", short_id(&id)),
                (ui.t("Asset tag", "Etichetta"), d.asset_tag),
                (ui.t("Kind", "Tipo"), d.kind.label(ui.lang).to_string()),
                (ui.t("Model", "Modello"), d.model),
                (ui.t("Serial", "Matricola"), d.serial),
                (ui.t("Origin", "Provenienza"), d.origin.label(ui.lang).to_string()),
                (ui.t("Condition", "Condizioni"), d.condition.label(ui.lang).to_string()),
                (ui.t("Status", "Stato"), d.status.label(ui.lang).to_string()),
                (ui.t("Site", "Sede"), site_name(node, &d.site)),
                (ui.t("Open loans", "Prestiti aperti"), loans.join(", ")),
            ]);
        }
        DeviceCommand::List { site, status, kind } => {
            let site = site.map(|s| resolve(node, RecordKind::Site, &s, ui)).transpose()?;
            let status = status.map(|s| word(&s, DeviceStatus::parse, ui)).transpose()?;
            let kind = kind.map(|s| word(&s, DeviceKind::parse, ui)).transpose()?;
            let sites = SiteNames::load(node)?;
            let mut rows = Vec::new();
            for (id, r) in node.docs().records(RecordKind::Device)? {
                let Record::Device(d) = r else { continue };
                if site.is_some_and(|s| d.site.0 != s)
                    || status.is_some_and(|s| d.status != s)
                    || kind.is_some_and(|k| d.kind != k)
                {
                    continue;
                }
                rows.push(vec![
                    short_id(&id),
                    d.asset_tag,
                    d.kind.label(ui.lang).to_string(),
                    d.model,
                    d.status.label(ui.lang).to_string(),
                    sites.name(&d.site),
                ]);
            }
            rows.sort_by(|a, b| a[1].cmp(&b[1]));
            print_table(
                &[
                    "id",
                    ui.t("tag", "etichetta"),
                    ui.t("kind", "tipo"),
                    ui.t("model", "modello"),
                    ui.t("status", "stato"),
                    ui.t("site", "sede"),
                ],
                &rows,
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Loans

fn loan(node: &mut Node, cmd: LoanCommand, ui: &Ui) -> Result<()> {
    match cmd {
        LoanCommand::Add { device, attendee, expected_return, start, agreement_signed } => {
            let device_id = resolve_device(node, &device, ui)?;
            let attendee_id = resolve(node, RecordKind::Attendee, &attendee, ui)?;
            let Record::Device(mut d) = load(node, &device_id, ui)? else {
                bail!("{}", ui.t("not a device", "non è un dispositivo"))
            };
            let Record::Attendee(a) = load(node, &attendee_id, ui)? else {
                bail!("{}", ui.t("not an attendee", "non è un iscritto"))
            };
            if let Some(into) = a.merged_into {
                let (id, into) = (short_id(&attendee_id), into.short());
                bail!(
                    "{}",
                    tr!(
                        ui,
                        "attendee {id} was merged into {into}: lend to that record instead",
                        "l'iscritto {id} è stato unito a {into}: presta a quella scheda"
                    )
                );
            }
            let site = own_site(node, ui)?;
            let loan = Loan {
                device: RecordRef(device_id),
                attendee: RecordRef(attendee_id),
                site: RecordRef(site),
                start: match start {
                    Some(s) => date(&s, "--start", ui)?,
                    None => tessera_records::model::format_date(today()),
                },
                expected_return: date(&expected_return, "--expected-return", ui)?,
                returned_at: None,
                return_condition: None,
                agreement_signed,
                closed_reason: None,
            };
            let open = open_loans_of(node, &device_id)?.len();
            validate::validate_new_loan(&loan, &d, open)
                .map_err(|e| anyhow!("{}: {}", ui.t("not saved", "non salvato"), e.message(ui.lang)))?;
            let record = Record::Loan(loan);
            validate_record(&record, ui)?;
            d.status = DeviceStatus::Lent;
            let id = Node::new_id(RecordKind::Loan)?;
            node.transact(&[(id, record), (device_id, Record::Device(d))])?;
            saved(ui, ui.t("loan", "prestito"), &id);
        }
        LoanCommand::Return { id, date: when, condition } => {
            let id = resolve(node, RecordKind::Loan, &id, ui)?;
            let Record::Loan(mut l) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a loan", "non è un prestito"))
            };
            if !l.is_open() {
                let id = short_id(&id);
                bail!("{}", tr!(ui, "loan {id} is already closed", "il prestito {id} è già chiuso"));
            }
            l.returned_at = Some(match when {
                Some(w) => date(&w, "--date", ui)?,
                None => tessera_records::model::format_date(today()),
            });
            let condition = condition.map(|c| word(&c, DeviceCondition::parse, ui)).transpose()?;
            l.return_condition = condition;
            let device_id = l.device.0;
            let record = Record::Loan(l);
            validate_record(&record, ui)?;
            let mut writes = vec![(id, record)];
            if let Some(Record::Device(mut d)) = node.docs().record(&device_id)? {
                if open_loans_of(node, &device_id)?.len() <= 1 {
                    d.status = DeviceStatus::InStock;
                }
                if let Some(c) = condition {
                    d.condition = c;
                }
                writes.push((device_id, Record::Device(d)));
            }
            node.transact(&writes)?;
            saved(ui, ui.t("return of loan", "restituzione del prestito"), &id);
        }
        LoanCommand::Void { id, reason } => {
            let id = resolve(node, RecordKind::Loan, &id, ui)?;
            let Record::Loan(l) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a loan", "non è un comodato"))
            };
            if l.closed_reason.is_some() {
                bail!("{} {}", short_id(&id), ui.t("is already void", "è già annullato"));
            }
            let Some(reason) = non_empty(Some(reason)) else {
                bail!(
                    "{}",
                    ui.t(
                        "--reason is required: why the loan is void",
                        "serve --reason: perché il comodato è annullato"
                    )
                );
            };
            let was_open = l.is_open();
            let voided = tessera_records::conflicts::void_loan(&l, &reason);
            let device_id = l.device.0;
            let record = Record::Loan(voided);
            validate_record(&record, ui)?;
            let mut writes = vec![(id, record)];
            // The device is free again unless another loan of it is open.
            if let Some(Record::Device(mut d)) = node.docs().record(&device_id)? {
                let others_open =
                    open_loans_of(node, &device_id)?.iter().filter(|(other, _)| *other != id).count();
                if was_open && others_open == 0 && d.status == DeviceStatus::Lent {
                    d.status = DeviceStatus::InStock;
                    writes.push((device_id, Record::Device(d)));
                }
            }
            node.transact(&writes)?;
            saved(ui, ui.t("void loan", "comodato annullato"), &id);
        }
        LoanCommand::Edit { id, expected_return, agreement_signed } => {
            let id = resolve(node, RecordKind::Loan, &id, ui)?;
            let Record::Loan(mut l) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a loan", "non è un prestito"))
            };
            if let Some(v) = expected_return {
                l.expected_return = date(&v, "--expected-return", ui)?;
            }
            if let Some(v) = agreement_signed {
                l.agreement_signed = v;
            }
            let record = Record::Loan(l);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("loan", "prestito"), &id);
        }
        LoanCommand::Show { id } => {
            let id = resolve(node, RecordKind::Loan, &id, ui)?;
            let Record::Loan(l) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a loan", "non è un prestito"))
            };
            let device = match node.docs().record(&l.device.0)? {
                Some(Record::Device(d)) => format!("{} ({})", d.asset_tag, l.device.short()),
                _ => l.device.short(),
            };
            print_fields(&[
                ("id", short_id(&id)),
                (ui.t("Device", "Dispositivo"), device),
                (ui.t("Attendee", "Iscritto"), l.attendee.short()),
                (ui.t("Site", "Sede"), site_name(node, &l.site)),
                (ui.t("Start", "Inizio"), l.start.clone()),
                (ui.t("Expected return", "Restituzione prevista"), l.expected_return.clone()),
                (ui.t("Returned", "Restituito"), l.returned_at.clone().unwrap_or_default()),
                (
                    ui.t("Condition on return", "Condizioni alla restituzione"),
                    l.return_condition.map(|c| c.label(ui.lang).to_string()).unwrap_or_default(),
                ),
                (
                    ui.t("Agreement signed", "Comodato firmato"),
                    if l.agreement_signed { ui.t("yes", "sì") } else { ui.t("no", "no") }.to_string(),
                ),
                (
                    ui.t("Closed because", "Chiuso perché"),
                    l.closed_reason.as_deref().map(|r| crate::msg::stored_text(r, ui)).unwrap_or_default(),
                ),
            ]);
        }
        LoanCommand::List { site, open, overdue, from, to } => {
            let site = site.map(|s| resolve(node, RecordKind::Site, &s, ui)).transpose()?;
            let from = from.map(|d| date(&d, "--from", ui)).transpose()?;
            let to = to.map(|d| date(&d, "--to", ui)).transpose()?;
            let today_s = tessera_records::model::format_date(today());
            let mut rows = Vec::new();
            for (id, r) in node.docs().records(RecordKind::Loan)? {
                let Record::Loan(l) = r else { continue };
                let is_overdue = l.is_open() && l.expected_return < today_s;
                if site.is_some_and(|s| l.site.0 != s)
                    || (open && !l.is_open())
                    || (overdue && !is_overdue)
                    || from.as_ref().is_some_and(|f| &l.start < f)
                    || to.as_ref().is_some_and(|t| &l.start > t)
                {
                    continue;
                }
                let device = match node.docs().record(&l.device.0)? {
                    Some(Record::Device(d)) => d.asset_tag,
                    _ => l.device.short(),
                };
                let state = if is_overdue {
                    ui.t("OVERDUE", "SCADUTO")
                } else if l.is_open() {
                    ui.t("open", "aperto")
                } else if l.closed_reason.as_deref().is_some_and(|r| r.starts_with("void:")) {
                    ui.t("void", "annullato")
                } else if l.closed_reason.is_some() {
                    ui.t("closed by a resolution", "chiuso da una risoluzione")
                } else {
                    ui.t("returned", "restituito")
                };
                let mut row = vec![
                    short_id(&id),
                    device,
                    person_name(node, &l.attendee, ui)?,
                    l.start,
                    l.expected_return,
                    state.to_string(),
                ];
                if overdue {
                    // Overdue: who to call for the reminder.
                    row.push(contact_of(node, &l.attendee, ui)?);
                }
                rows.push(row);
            }
            rows.sort_by(|a, b| a[3].cmp(&b[3]));
            let mut header = vec![
                "id",
                ui.t("device", "dispositivo"),
                ui.t("borrower", "comodatario"),
                ui.t("start", "inizio"),
                ui.t("due", "scadenza"),
                ui.t("state", "stato"),
            ];
            if overdue {
                header.push(ui.t("contact", "contatto"));
            }
            print_table(&header, &rows);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Sessions

fn apply_session_fields(s: &mut Session, f: SessionFields, node: &mut Node, ui: &Ui) -> Result<()> {
    if let Some(v) = f.kind {
        s.kind = word(&v, SessionKind::parse, ui)?;
    }
    if let Some(v) = f.topic {
        s.topic = v;
    }
    if let Some(v) = f.topic_code {
        s.topic_code = Some(word(&v, Topic::parse, ui)?);
    }
    if let Some(v) = f.audience {
        s.audience = word(&v, Audience::parse, ui)?;
    }
    if let Some(v) = f.start {
        s.start = date_time(&v, "--start", ui)?;
    }
    if let Some(v) = f.end {
        s.end = date_time(&v, "--end", ui)?;
    }
    if let Some(v) = f.mode {
        s.mode = word(&v, SessionMode::parse, ui)?;
    }
    if let Some(v) = f.facilitator {
        s.facilitator = v;
    }
    for p in f.participants {
        let id = RecordRef(resolve(node, RecordKind::Attendee, &p, ui)?);
        if !s.participants.iter().any(|x| x.attendee == id) {
            s.participants.push(Participant { attendee: id, present: true });
        }
    }
    if let Some(v) = f.headcount {
        s.headcount = v;
    }
    if let Some(v) = f.language {
        s.language = v;
    }
    if let Some(v) = f.mediator {
        s.mediator = non_empty(Some(v));
    }
    if f.site.is_some() {
        s.site = site_or_own(node, &f.site, ui)?;
    }
    Ok(())
}

fn session(node: &mut Node, cmd: SessionCommand, ui: &Ui) -> Result<()> {
    match cmd {
        SessionCommand::Add { fields: f, force } => {
            let site = site_or_own(node, &f.site, ui)?;
            let mut s = Session {
                site,
                kind: word(f.kind.as_deref().context(ui.t("--kind is required: course, public-meeting, help-desk-appointment, school-lab or mediation", "--kind è obbligatorio: corso, incontro-pubblico, appuntamento, laboratorio o mediazione"))?, SessionKind::parse, ui)?,
                topic: String::new(),
                topic_code: None,
                audience: word(f.audience.as_deref().unwrap_or("mixed"), Audience::parse, ui)?,
                start: date_time(f.start.as_deref().context(ui.t("--start is required (YYYY-MM-DDTHH:MM)", "--start è obbligatorio (AAAA-MM-GGTHH:MM)"))?, "--start", ui)?,
                end: date_time(f.end.as_deref().context(ui.t("--end is required (YYYY-MM-DDTHH:MM)", "--end è obbligatorio (AAAA-MM-GGTHH:MM)"))?, "--end", ui)?,
                mode: SessionMode::InPerson,
                facilitator: String::new(),
                participants: Vec::new(),
                headcount: 0,
                language: String::new(),
                mediator: None,
                cancelled: None,
            };
            let f = SessionFields { site: None, kind: None, audience: None, start: None, end: None, ..f };
            apply_session_fields(&mut s, f, node, ui)?;
            let id = Node::new_id(RecordKind::Session)?;
            validate_record(&Record::Session(s.clone()), ui)?;
            if !force {
                let sessions = node.docs().records(RecordKind::Session)?;
                let overlapping = tessera_records::conflicts::overlapping_appointments(id, &s, &sessions);
                if !overlapping.is_empty() {
                    let labels = Labels::new(node, &sessions, ui)?;
                    bail!(
                        "{} {}. {}",
                        ui.t(
                            "not saved: it overlaps another appointment at this site:",
                            "non salvato: si sovrappone a un altro appuntamento in questa sede:"
                        ),
                        labels.list(&overlapping, Labels::session),
                        ui.t(
                            "Choose another time, or add --force.",
                            "Scegli un altro orario, o aggiungi --force."
                        )
                    );
                }
            }
            let record = Record::Session(s);
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("session", "incontro"), &id);
        }
        SessionCommand::Edit { id, fields } => {
            let id = resolve(node, RecordKind::Session, &id, ui)?;
            let Record::Session(mut s) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a session", "non è un incontro"))
            };
            apply_session_fields(&mut s, fields, node, ui)?;
            let record = Record::Session(s);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("session", "incontro"), &id);
        }
        SessionCommand::Attend { id, attendee, absent } => {
            let id = resolve(node, RecordKind::Session, &id, ui)?;
            let who = RecordRef(resolve(node, RecordKind::Attendee, &attendee, ui)?);
            let Record::Session(mut s) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a session", "non è un incontro"))
            };
            if s.is_cancelled() {
                bail!(
                    "{}",
                    ui.t(
                        "this session is cancelled: `tessera session cancel ID --undo` restores it first",
                        "questo incontro è annullato: ripristinalo prima con `tessera session cancel ID --undo`"
                    )
                );
            }
            match s.participants.iter_mut().find(|p| p.attendee == who) {
                Some(p) => p.present = !absent,
                None => s.participants.push(Participant { attendee: who, present: !absent }),
            }
            let record = Record::Session(s);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            saved(ui, ui.t("attendance", "presenza"), &id);
        }
        SessionCommand::Cancel { id, reason, undo } => {
            let id = resolve(node, RecordKind::Session, &id, ui)?;
            let Record::Session(mut s) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a session", "non è un incontro"))
            };
            if undo && !s.is_cancelled() {
                crate::outln!(
                    "{} {} {}",
                    ui.t("Session", "L'incontro"),
                    short_id(&id),
                    ui.t("is not cancelled: nothing to restore", "non è annullato: niente da ripristinare")
                );
                return Ok(());
            }
            s.cancelled = if undo {
                None
            } else {
                Some(reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).unwrap_or_else(|| {
                    format!("{} {}", ui.t("cancelled on", "annullato il"), today().format("%Y-%m-%d"))
                }))
            };
            let record = Record::Session(s);
            validate_record(&record, ui)?;
            node.transact(&[(id, record)])?;
            if undo {
                crate::outln!("{} {}", ui.t("Restored session", "Ripristinato l'incontro"), short_id(&id));
            } else {
                crate::outln!(
                    "{} {} {}",
                    ui.t("Cancelled session", "Annullato l'incontro"),
                    short_id(&id),
                    ui.t("(kept, counted nowhere)", "(resta registrato, non conta nei totali)")
                );
            }
        }
        SessionCommand::Show { id } => {
            let id = resolve(node, RecordKind::Session, &id, ui)?;
            let Record::Session(s) = load(node, &id, ui)? else {
                bail!("{}", ui.t("not a session", "non è un incontro"))
            };
            let present = s.participants.iter().filter(|p| p.present).count();
            let mut fields = vec![
                ("id", short_id(&id)),
                (ui.t("Kind", "Tipo"), s.kind.label(ui.lang).to_string()),
                (ui.t("Topic", "Argomento"), s.topic.clone()),
                (ui.t("Audience", "Destinatari"), s.audience.label(ui.lang).to_string()),
                (ui.t("Start", "Inizio"), s.start.clone()),
                (ui.t("End", "Fine"), s.end.clone()),
                (ui.t("Mode", "Modalità"), s.mode.label(ui.lang).to_string()),
                (ui.t("Facilitator", "Conduttore"), s.facilitator.clone()),
                (
                    ui.t("Participants", "Partecipanti"),
                    format!("{present} {} / {}", ui.t("present", "presenti"), s.participants.len()),
                ),
                (ui.t("Headcount", "Presenze anonime"), s.headcount.to_string()),
                (ui.t("Language", "Lingua"), s.language.clone()),
                (ui.t("Mediator", "Mediatore"), s.mediator.clone().unwrap_or_default()),
                (ui.t("Site", "Sede"), site_name(node, &s.site)),
            ];
            if let Some(reason) = &s.cancelled {
                fields.push((ui.t("Cancelled", "Annullato"), crate::msg::stored_text(reason, ui)));
            }
            print_fields(&fields);
            if !s.participants.is_empty() {
                crate::outln!();
                let mut rows = Vec::new();
                for p in &s.participants {
                    let presence =
                        if p.present { ui.t("present", "presente") } else { ui.t("absent", "assente") };
                    rows.push(vec![
                        person_name(node, &p.attendee, ui)?,
                        presence.to_string(),
                        p.attendee.short(),
                    ]);
                }
                rows.sort();
                print_table(
                    &[ui.t("participant", "partecipante"), ui.t("presence", "presenza"), "id"],
                    &rows,
                );
            }
        }
        SessionCommand::List { site, kind, from, to } => {
            let site = site.map(|s| resolve(node, RecordKind::Site, &s, ui)).transpose()?;
            let kind = kind.map(|k| word(&k, SessionKind::parse, ui)).transpose()?;
            let from = from.map(|d| date(&d, "--from", ui)).transpose()?;
            let to = to.map(|d| date(&d, "--to", ui)).transpose()?;
            let sites = SiteNames::load(node)?;
            let mut rows = Vec::new();
            for (id, r) in node.docs().records(RecordKind::Session)? {
                let Record::Session(s) = r else { continue };
                let day = s.start.get(..10).unwrap_or("").to_string();
                if site.is_some_and(|x| s.site.0 != x)
                    || kind.is_some_and(|k| s.kind != k)
                    || from.as_ref().is_some_and(|f| &day < f)
                    || to.as_ref().is_some_and(|t| &day > t)
                {
                    continue;
                }
                let present = s.participants.iter().filter(|p| p.present).count() as u32 + s.headcount;
                rows.push(vec![
                    short_id(&id),
                    s.start.clone(),
                    match s.is_cancelled() {
                        true => format!("{} ({})", s.kind.label(ui.lang), ui.t("cancelled", "annullato")),
                        false => s.kind.label(ui.lang).to_string(),
                    },
                    s.topic.clone(),
                    present.to_string(),
                    sites.name(&s.site),
                ]);
            }
            rows.sort_by(|a, b| a[1].cmp(&b[1]));
            print_table(
                &[
                    "id",
                    ui.t("start", "inizio"),
                    ui.t("kind", "tipo"),
                    ui.t("topic", "argomento"),
                    ui.t("people", "persone"),
                    ui.t("site", "sede"),
                ],
                &rows,
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Conflicts

/// The name of `n` records of `kind`, singular or plural, in the operator's language.
fn count_noun(kind: RecordKind, n: usize, ui: &Ui) -> &'static str {
    let (en_one, en_many, it_one, it_many) = match kind {
        RecordKind::Site => ("site", "sites", "sede", "sedi"),
        RecordKind::Attendee => ("attendee", "attendees", "iscritto", "iscritti"),
        RecordKind::Device => ("device", "devices", "dispositivo", "dispositivi"),
        RecordKind::Loan => ("loan", "loans", "prestito", "prestiti"),
        RecordKind::Session => ("session", "sessions", "incontro", "incontri"),
        RecordKind::Personal => ("personal details", "personal details", "dati personali", "dati personali"),
    };
    match n {
        1 => ui.t(en_one, it_one),
        _ => ui.t(en_many, it_many),
    }
}

/// What an operator reads for a record in a conflict: a device by its tag, a person by
/// name and birth year, a loan by its id (what the resolution is typed with) and whose
/// it is, a session by its id, topic and time, a site by its name.
struct Labels<'a> {
    records: std::collections::BTreeMap<DocId, &'a Record>,
    sites: SiteNames,
    ui: Ui,
}

impl<'a> Labels<'a> {
    fn new(node: &Node, records: &'a [(DocId, Record)], ui: &Ui) -> Result<Labels<'a>> {
        Ok(Labels {
            records: records.iter().map(|(id, r)| (*id, r)).collect(),
            sites: SiteNames::load(node)?,
            ui: *ui,
        })
    }

    fn device(&self, id: &DocId) -> String {
        match self.records.get(id) {
            Some(Record::Device(d)) => d.asset_tag.clone(),
            _ => short_id(id),
        }
    }

    fn person(&self, id: &DocId) -> String {
        let ui = &self.ui;
        match self.records.get(id) {
            Some(Record::Attendee(a)) if a.is_erased() => {
                ui.t("an erased person", "una persona cancellata").into()
            }
            Some(Record::Attendee(a)) if a.is_reserved() => format!(
                "{} ({}, {}, {})",
                ui.t("a person of another organisation", "una persona di un altro ente"),
                a.birth_year,
                self.sites.name(&a.site),
                short_id(id)
            ),
            Some(Record::Attendee(a)) => format!(
                "{} {} ({}, {}, {})",
                a.given_name,
                a.family_name,
                a.birth_year,
                self.sites.name(&a.site),
                short_id(id)
            ),
            _ => short_id(id),
        }
    }

    fn loan(&self, id: &DocId) -> String {
        let ui = &self.ui;
        match self.records.get(id) {
            Some(Record::Loan(l)) => {
                let who = match self.records.get(&l.attendee.0) {
                    Some(Record::Attendee(a)) if !a.is_reserved() && !a.is_erased() => {
                        format!("{} {}", a.given_name, a.family_name)
                    }
                    _ => ui.t("a person of another organisation", "una persona di un altro ente").into(),
                };
                format!(
                    "{} ({} {who}, {} {}, {})",
                    short_id(id),
                    ui.t("to", "a"),
                    ui.t("from", "dal"),
                    l.start,
                    self.sites.name(&l.site)
                )
            }
            _ => short_id(id),
        }
    }

    fn session(&self, id: &DocId) -> String {
        match self.records.get(id) {
            Some(Record::Session(s)) => {
                format!("{} ({}, {})", short_id(id), s.topic, s.start.replace('T', " "))
            }
            _ => short_id(id),
        }
    }

    fn list(&self, ids: &[DocId], one: impl Fn(&Self, &DocId) -> String) -> String {
        ids.iter().map(|id| one(self, id)).collect::<Vec<_>>().join(", ")
    }
}

fn describe_conflict(c: &Conflict, labels: &Labels<'_>, ui: &Ui) -> String {
    match c {
        Conflict::DeviceLentTwice { device, loans } => format!(
            "{} {}: {} {}",
            ui.t("device", "dispositivo"),
            labels.device(device),
            ui.t("has several open loans:", "ha più comodati aperti:"),
            labels.list(loans, Labels::loan)
        ),
        Conflict::ProbableDuplicateAttendee { attendees } => format!(
            "{}: {}",
            ui.t(
                "probably the same person registered twice",
                "probabilmente la stessa persona iscritta due volte"
            ),
            labels.list(attendees, Labels::person)
        ),
        Conflict::DoubleBookedAppointment { site, sessions } => format!(
            "{} {}: {}",
            ui.t("overlapping appointments at", "appuntamenti sovrapposti a"),
            labels.sites.name(&RecordRef(*site)),
            labels.list(sessions, Labels::session)
        ),
        Conflict::DeviceLentWithoutLoan { device, closed } => format!(
            "{} {} {} {}",
            ui.t("device", "dispositivo"),
            labels.device(device),
            ui.t(
                "is marked lent but none of its loans is open (two hubs resolved a double loan differently); loans closed by a resolution:",
                "risulta in comodato ma nessun suo comodato è aperto (due sedi hanno risolto diversamente un doppio comodato); comodati chiusi da una risoluzione:"
            ),
            if closed.is_empty() { "-".to_string() } else { labels.list(closed, Labels::loan) }
        ),
    }
}

fn conflicts_cmd(node: &mut Node, cmd: ConflictsCommand, ui: &Ui) -> Result<()> {
    let records = node.docs().all_records()?;
    let found = conflicts::detect(&records);
    match cmd {
        ConflictsCommand::List => {
            if found.is_empty() {
                crate::outln!("{}", ui.t("No conflicts.", "Nessun conflitto."));
            }
            let labels = Labels::new(node, &records, ui)?;
            for c in &found {
                crate::outln!("{}  {}", c.id(), describe_conflict(c, &labels, ui));
            }
        }
        ConflictsCommand::Resolve(args) => {
            let conflict = found.iter().find(|c| c.id() == args.id).with_context(|| {
                let id = &args.id;
                tr!(
                    ui,
                    "no open conflict `{id}` (see `tessera conflicts list`)",
                    "nessun conflitto aperto `{id}` (vedi `tessera conflicts list`)"
                )
            })?;
            let writes = resolution(node, conflict, &args, &records, ui)?;
            node.transact(&writes)?;
            crate::outln!("{} {}", ui.t("Resolved", "Risolto"), args.id);
        }
    }
    Ok(())
}

pub(crate) fn resolution(
    node: &Node,
    conflict: &Conflict,
    args: &ResolveArgs,
    records: &[(DocId, Record)],
    ui: &Ui,
) -> Result<Vec<(DocId, Record)>> {
    let get = |id: &DocId| records.iter().find(|(x, _)| x == id).map(|(_, r)| r.clone());
    match conflict {
        Conflict::DeviceLentTwice { loans, .. } => {
            let text = args.close_loan.as_deref().context(ui.t(
                "this conflict needs --close-loan LOAN (one of its loans)",
                "questo conflitto richiede --close-loan PRESTITO (uno dei suoi prestiti)",
            ))?;
            let loan_id = resolve(node, RecordKind::Loan, text, ui)?;
            if !loans.contains(&loan_id) {
                let id = short_id(&loan_id);
                bail!(
                    "{}",
                    tr!(
                        ui,
                        "loan {id} is not part of this conflict",
                        "il prestito {id} non fa parte di questo conflitto"
                    )
                );
            }
            let Some(Record::Loan(l)) = get(&loan_id) else {
                bail!("{}", ui.t("loan not readable", "prestito non leggibile"))
            };
            let reason = format!("closed resolving {}: the device is with another borrower", conflict.id());
            let closed = conflicts::close_loan(&l, today(), &reason);
            Ok(vec![(loan_id, Record::Loan(closed))])
        }
        Conflict::ProbableDuplicateAttendee { attendees } => {
            if args.not_duplicates {
                let mut writes = Vec::new();
                for id in attendees {
                    let Some(Record::Attendee(mut a)) = get(id) else { continue };
                    for other in attendees.iter().filter(|o| *o != id) {
                        if !a.not_duplicates_of.contains(&RecordRef(*other)) {
                            a.not_duplicates_of.push(RecordRef(*other));
                        }
                    }
                    writes.push((*id, Record::Attendee(a)));
                }
                return Ok(writes);
            }
            let text = args.keep.as_deref().context(ui.t(
                "this conflict needs --keep ATTENDEE (merge the others into it) or --not-duplicates",
                "questo conflitto richiede --keep ISCRITTO (gli altri vengono uniti a questo) oppure --not-duplicates",
            ))?;
            let keep_id = resolve(node, RecordKind::Attendee, text, ui)?;
            if !attendees.contains(&keep_id) {
                let id = short_id(&keep_id);
                bail!(
                    "{}",
                    tr!(
                        ui,
                        "attendee {id} is not part of this conflict",
                        "l'iscritto {id} non fa parte di questo conflitto"
                    )
                );
            }
            let Some(Record::Attendee(mut keep)) = get(&keep_id) else {
                bail!("{}", ui.t("attendee not readable", "iscritto non leggibile"))
            };
            let mut writes = Vec::new();
            let mut repointed: Vec<(DocId, Record)> = Vec::new();
            for drop_id in attendees.iter().filter(|a| **a != keep_id) {
                let Some(Record::Attendee(drop)) = get(drop_id) else { continue };
                let (kept, dropped) = conflicts::merge_attendees(keep_id, &keep, *drop_id, &drop);
                keep = kept;
                writes.push((*drop_id, Record::Attendee(dropped)));
                for (id, record) in records {
                    let current = repointed.iter().find(|(x, _)| x == id).map(|(_, r)| r.clone());
                    let base = current.as_ref().unwrap_or(record);
                    if let Some(updated) = conflicts::repoint_references(base, *drop_id, keep_id) {
                        repointed.retain(|(x, _)| x != id);
                        repointed.push((*id, updated));
                    }
                }
            }
            writes.push((keep_id, Record::Attendee(keep)));
            writes.extend(repointed);
            Ok(writes)
        }
        Conflict::DoubleBookedAppointment { sessions, .. } => {
            let text = args.move_session.as_deref().context(ui.t(
                "this conflict needs --move SESSION --start ... --end ...",
                "questo conflitto richiede --move INCONTRO --start ... --end ...",
            ))?;
            let id = resolve(node, RecordKind::Session, text, ui)?;
            if !sessions.contains(&id) {
                let id = short_id(&id);
                bail!(
                    "{}",
                    tr!(
                        ui,
                        "session {id} is not part of this conflict",
                        "l'incontro {id} non fa parte di questo conflitto"
                    )
                );
            }
            let start = date_time(
                args.start.as_deref().context(ui.t("--start is required", "--start è obbligatorio"))?,
                "--start",
                ui,
            )?;
            let end = date_time(
                args.end.as_deref().context(ui.t("--end is required", "--end è obbligatorio"))?,
                "--end",
                ui,
            )?;
            let (Some(start), Some(end)) = (parse_date_time(&start), parse_date_time(&end)) else {
                bail!(
                    "{}",
                    ui.t(
                        "--start and --end must be YYYY-MM-DDTHH:MM",
                        "--start e --end devono essere AAAA-MM-GGTHH:MM"
                    )
                );
            };
            let Some(Record::Session(s)) = get(&id) else {
                bail!("{}", ui.t("session not readable", "incontro non leggibile"))
            };
            let moved = conflicts::move_appointment(&s, start, end);
            let record = Record::Session(moved);
            validate_record(&record, ui)?;
            Ok(vec![(id, record)])
        }
        Conflict::DeviceLentWithoutLoan { device, closed } => {
            if args.device_back {
                let Some(Record::Device(mut d)) = get(device) else {
                    bail!("{}", ui.t("device not readable", "dispositivo non leggibile"))
                };
                d.status = DeviceStatus::InStock;
                return Ok(vec![(*device, Record::Device(d))]);
            }
            let text = args.reopen_loan.as_deref().with_context(|| {
                ui.t(
                    "this conflict needs --reopen-loan LOAN (the loan that is with the borrower) or --device-back",
                    "questo conflitto richiede --reopen-loan PRESTITO (il prestito che è davvero in corso) oppure --device-back",
                )
                .to_string()
            })?;
            let loan_id = resolve(node, RecordKind::Loan, text, ui)?;
            if !closed.contains(&loan_id) {
                bail!(
                    "{} {}",
                    short_id(&loan_id),
                    ui.t(
                        "is not one of the loans closed by a resolution of this device",
                        "non è uno dei prestiti di questo dispositivo chiusi da una risoluzione"
                    )
                );
            }
            let Some(Record::Loan(l)) = get(&loan_id) else {
                bail!("{}", ui.t("loan not readable", "prestito non leggibile"))
            };
            let record = Record::Loan(conflicts::reopen_loan(&l));
            validate_record(&record, ui)?;
            Ok(vec![(loan_id, record)])
        }
    }
}

// ---------------------------------------------------------------------------------
// Report, export, import

fn report_cmd(node: &Node, args: ReportArgs, ui: &Ui) -> Result<()> {
    let group_by = word(&args.by, GroupBy::parse, ui)?;
    let date = |flag: &str, text: &Option<String>| -> Result<Option<NaiveDate>> {
        text.as_deref()
            .map(|d| {
                parse_date(d).ok_or_else(|| {
                    anyhow!(
                        "{}",
                        ui.t(
                            &format!("{flag} `{d}` is not a date (YYYY-MM-DD)"),
                            &format!("{flag} `{d}` non è una data (AAAA-MM-GG)"),
                        )
                    )
                })
            })
            .transpose()
    };
    let (from, to) = (date("--from", &args.from)?, date("--to", &args.to)?);
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            bail!("{}", ui.t("--to is before --from", "--to è prima di --from"));
        }
    }
    let records = node.docs().all_records()?;
    let known = report::partners(&records);
    if let Some(partner) = &args.partner {
        let wanted = partner.trim().to_lowercase();
        if !known.iter().any(|k| k.to_lowercase() == wanted) {
            let list = if known.is_empty() { "-".to_string() } else { known.join(", ") };
            bail!(
                "{}",
                ui.t(
                    &format!("no site of this network belongs to a partner named `{partner}`; the partners are: {list}"),
                    &format!("nessuna sede di questa rete appartiene a un ente chiamato `{partner}`; gli enti sono: {list}"),
                )
            );
        }
    }
    let style = match args.csv_style.as_deref().map(str::trim) {
        None => tessera_records::CsvStyle::of(ui.lang),
        Some("semicolon" | "punto-e-virgola" | ";") => tessera_records::CsvStyle::Semicolon,
        Some("comma" | "virgola" | ",") => tessera_records::CsvStyle::Comma,
        Some(other) => bail!(
            "{} `{other}`: {}",
            ui.t("unknown --csv-style", "--csv-style sconosciuto"),
            ui.t("use `semicolon` or `comma`", "usare `punto-e-virgola` (semicolon) o `virgola` (comma)")
        ),
    };
    let query = ReportQuery { from, to, group_by, today: today(), partner: args.partner };
    let report = report::report(&records, &query);
    if args.csv {
        crate::out!("{}", report.to_csv(ui.lang, style));
    } else {
        crate::out!("{}", report.to_table(ui.lang));
    }
    Ok(())
}

fn export(node: &mut Node, args: ExportArgs, ui: &Ui) -> Result<()> {
    // The keys readers lack travel with the bundle.
    node.grant_owed()?;
    let out = crate::bundle_io::export(node, &args.file)?;
    if let Some(head) = node.store().head(&node.device()) {
        node.config.exported_own_seq = head.seq.0;
        node.config.save(node.dir())?;
    }
    crate::outln!(
        "{} {} {} ({} {}) {} {}",
        ui.t("Exported", "Esportate"),
        out.entries,
        ui.t("entries", "voci"),
        out.bytes,
        ui.t("bytes", "byte"),
        ui.t("to", "in"),
        args.file.display()
    );
    Ok(())
}

/// `tessera keys grant --device KEY`.
fn keys_grant(node: &mut Node, device: &str, ui: &Ui) -> Result<()> {
    let device = tessera_log::DeviceKey(crate::identity::parse_public_key(device)?);
    let granted = node.grant_read(device)?;
    if granted == 0 {
        crate::outln!(
            "{}",
            ui.t(
                "That device already holds every read key this hub holds.",
                "Quel dispositivo ha già tutte le chiavi di lettura di questo polo."
            )
        );
    } else {
        crate::outln!(
            "{} {} {} {}. {}",
            ui.t("Read keys given to device", "Chiavi di lettura date al dispositivo"),
            device.short(),
            ui.t("keys:", "chiavi:"),
            granted,
            ui.t(
                "They reach it with the next sync or export (`tessera export FILE`).",
                "Gli arrivano con la prossima sincronizzazione o esportazione (`tessera export FILE`)."
            )
        );
    }
    Ok(())
}

/// `tessera repair --damage-reviewed`: the operator confirms that the unreadable
/// records left in the log cannot be newer changes of this device.
fn repair(node: &mut Node, damage_reviewed: bool, ui: &Ui) -> Result<()> {
    if !damage_reviewed {
        bail!(
            "{}",
            ui.t(
                "say what was done: `tessera repair --damage-reviewed` (after syncing with every peer and relay)",
                "dire cosa è stato fatto: `tessera repair --damage-reviewed` (dopo aver sincronizzato con ogni nodo e relay)"
            )
        );
    }
    let reviewed = node.accept_unknown_damage()?;
    crate::outln!(
        "{} {reviewed}",
        ui.t("Unreadable records reviewed:", "Registrazioni illeggibili verificate:")
    );
    match node.store().signing_blocked(&node.device())? {
        None => crate::outln!("{}", ui.t("This node may write again.", "Questo nodo può di nuovo scrivere.")),
        Some(blocked) => crate::outln!(
            "{} {blocked}. {}",
            ui.t("This node still may not write:", "Questo nodo non può ancora scrivere:"),
            ui.t(
                "sync with a peer or the relay that holds it.",
                "sincronizza con un nodo o il relay che la possiede."
            )
        ),
    }
    Ok(())
}

fn import(node: &mut Node, args: ImportArgs, ui: &Ui) -> Result<()> {
    let imported = match crate::bundle_io::import(node, &args.file, args.allow_unknown_exporter) {
        Ok(imported) => imported,
        Err(e) => match e.downcast_ref::<crate::bundle_io::UnknownExporter>() {
            Some(unknown) => bail!(
                "{} {} {}",
                ui.t("the bundle was signed by device", "il pacchetto è firmato dal dispositivo"),
                unknown.exporter.short(),
                ui.t(
                    "which no certificate of this network vouches for: nothing was imported. \
                     Ask who gave it to you to export it again from a certified hub, or import \
                     it anyway with --allow-unknown-exporter",
                    "che nessun certificato di questa rete garantisce: non è stato importato nulla. \
                     Chiedi a chi te lo ha dato di esportarlo di nuovo da un polo certificato, o \
                     importalo comunque con --allow-unknown-exporter"
                )
            ),
            None => return Err(e),
        },
    };
    if args.allow_unknown_exporter {
        crate::errln!(
            "{}",
            ui.t(
                "warning: importing without checking who exported the bundle (--allow-unknown-exporter)",
                "attenzione: importazione senza verificare chi ha esportato il pacchetto (--allow-unknown-exporter)"
            )
        );
    }
    // Readers the bundle made known get the keys this node holds (sent at the next
    // sync or export).
    node.grant_owed()?;
    if node.lacks_read_keys() {
        crate::errln!("{}: {}", ui.t("Note", "Nota"), unreadable_note(ui));
    }
    let r = &imported.report;
    crate::outln!(
        "{}: {} {}, {} {}, {} {}",
        ui.t("Imported", "Importato"),
        r.appended.len(),
        ui.t("new changes", "nuove modifiche"),
        r.trust_added,
        ui.t("certificates or revocations", "certificati o revoche"),
        r.duplicates,
        ui.t("already here", "già presenti"),
    );
    if !r.bodies_filled.is_empty() {
        crate::outln!(
            "{} {} {}",
            ui.t("Content restored for", "Contenuto recuperato per"),
            r.bodies_filled.len(),
            ui.t(
                "changes held without it (a copy had been emptied on the way)",
                "modifiche che ne erano prive (una copia era stata svuotata lungo la strada)"
            ),
        );
    }
    if imported.claimed_absent > 0 {
        crate::outln!(
            "{} {} {}",
            ui.t("Note: the bundle says it carries", "Nota: il pacchetto dichiara"),
            imported.claimed_absent,
            ui.t(
                "more changes that are not in it (cut short, or exported from a damaged log): \
                 they come with a later bundle or sync",
                "modifiche in più che non contiene (troncato, o esportato da un registro \
                 danneggiato): arriveranno con un altro pacchetto o una sincronizzazione"
            ),
        );
    }
    let waiting = node.store().trust().waiting().count();
    if waiting > 0 {
        crate::outln!(
            "{waiting} {}",
            ui.t(
                "certificates or revocations held until the certificate they depend on arrives \
                 (import the partner's or the network's trust file)",
                "certificati o revoche in attesa del certificato da cui dipendono \
                 (importa il file di fiducia del partner o della rete)"
            ),
        );
    }
    for fork in &r.forks {
        crate::outln!(
            "{} {} {} {}",
            ui.t("WARNING: device", "ATTENZIONE: il dispositivo"),
            fork.author.short(),
            ui.t("signed two different histories at change", "ha firmato due storie diverse alla modifica"),
            fork.seq
        );
    }
    if !r.rejected.is_empty() {
        for rejected in &r.rejected {
            let what = match imported.entries.get(rejected.index) {
                Some(tessera_log::LogEntry::Envelope(e)) => format!(
                    "{} {} #{}",
                    ui.t("change of device", "modifica del dispositivo"),
                    e.author().short(),
                    e.seq()
                ),
                Some(tessera_log::LogEntry::Trust(t)) => {
                    crate::msg::statement_text(&t.statement, ui.lang).to_string()
                }
                None => format!("{} {}", ui.t("entry", "voce"), rejected.index),
            };
            crate::errln!(
                "{} {what}: {}",
                ui.t("refused", "rifiutata"),
                crate::msg::verify_error_text(&rejected.error, ui.lang)
            );
        }
        bail!(
            "{} {} {}",
            r.rejected.len(),
            ui.t("entries of the file were refused", "voci del file sono state rifiutate"),
            ui.t("(the valid ones were imported)", "(quelle valide sono state importate)")
        );
    }
    let conflicts = conflicts::detect(&node.docs().all_records()?);
    if !conflicts.is_empty() {
        crate::outln!(
            "{} {} tessera conflicts list",
            conflicts.len(),
            ui.t("conflicts to look at:", "conflitti da guardare:")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Audit

fn audit(dir: &std::path::Path, cmd: AuditCommand, ui: &Ui) -> Result<()> {
    use crate::audit::{compare, print, read_source, AuditFailed};
    match cmd {
        AuditCommand::Verify { source, network, json } => {
            let pinned = network.map(|n| crate::trust_file::parse_network(&n)).transpose()?;
            // --json stays as it always was: machine-readable, in English.
            let lang = if json { tessera_records::vocab::Lang::En } else { ui.lang };
            let read = read_source(&source, lang)?;
            let result = crate::audit::verify_in(&read, pinned, lang);
            if json {
                crate::outln!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print(&result, ui);
            }
            match result.exit_code() {
                0 => Ok(()),
                code => Err(AuditFailed {
                    code,
                    message: if code == 2 && result.gaps == 0 {
                        let source = &result.source;
                        tr!(
                            ui,
                            "the end of {source} could not be read: it is incomplete",
                            "la fine di {source} non si è potuta leggere: è incompleto"
                        )
                    } else if code == 2 {
                        let (gaps, source) = (result.gaps, &result.source);
                        tr!(
                            ui,
                            "{gaps} envelopes are missing from {source}",
                            "in {source} mancano {gaps} buste"
                        )
                    } else {
                        let (n, source) = (result.problems.len(), &result.source);
                        tr!(ui, "{n} problems found in {source}", "{n} problemi trovati in {source}")
                    },
                }
                .into()),
            }
        }
        AuditCommand::Log {
            source,
            network,
            partner,
            device,
            record,
            kind,
            from,
            to,
            show_personal_data,
            json,
        } => {
            let pinned = network.map(|n| crate::trust_file::parse_network(&n)).transpose()?;
            let day = |d: Option<String>, flag: &str| {
                d.map(|d| {
                    parse_date(&d).with_context(|| {
                        tr!(
                            ui,
                            "{flag} `{d}` is not a date (YYYY-MM-DD)",
                            "{flag} `{d}` non è una data (AAAA-MM-GG)"
                        )
                    })
                })
                .transpose()
            };
            let filter = crate::audit::LogFilter {
                partner,
                device,
                // A short id (or prefix), or a device's tag: whichever the copy holds.
                doc: record.as_deref().and_then(|r| parse_id_prefix(r).ok()),
                tag: record.clone(),
                kind: kind
                    .map(|k| {
                        let italian = match fold(&k).as_str() {
                            "sede" => Some(RecordKind::Site),
                            "iscritto" | "iscritta" | "persona" => Some(RecordKind::Attendee),
                            "dispositivo" => Some(RecordKind::Device),
                            "prestito" | "comodato" => Some(RecordKind::Loan),
                            "incontro" => Some(RecordKind::Session),
                            _ => None,
                        };
                        RecordKind::from_str_exact(&k).or(italian).with_context(|| {
                            tr!(
                                ui,
                                "--kind `{k}`: use site, attendee, device, loan or session",
                                "--kind `{k}`: usa sede, iscritto, dispositivo, prestito o incontro (anche site, attendee, device, loan, session)"
                            )
                        })
                    })
                    .transpose()?,
                from: day(from, "--from")?,
                to: day(to, "--to")?,
                show_personal_data,
            };
            // Sealed bodies open with the read keys granted to this computer's device,
            // if it has one (the file only: the store is not opened, nor locked).
            let key_file = dir.join(crate::config::KEYS_DIR).join(crate::config::DEVICE_KEY_FILE);
            let reader = match key_file.exists() {
                true => Some(tessera_store::read_secret_key(&key_file, "device")?),
                false => None,
            };
            let lang = if json { tessera_records::vocab::Lang::En } else { ui.lang };
            let report =
                crate::audit::log(&read_source(&source, lang)?, pinned, &filter, reader.as_ref(), lang);
            if let (Some(r), false) = (&record, report.record_found) {
                let source = source.display();
                bail!(tr!(
                    ui,
                    "--record `{r}`: no record with this id or device tag in {source}",
                    "--record `{r}`: in {source} non c'è una scheda con questo codice o un dispositivo con questa etichetta"
                ));
            }
            let lines = report.lines;
            if json {
                crate::outln!("{}", serde_json::to_string_pretty(&lines)?);
                return Ok(());
            }
            for line in &lines {
                let time = chrono::DateTime::from_timestamp_millis(line.time_ms)
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                let record = match &line.tag {
                    Some(tag) => format!("{tag} ({})", line.record),
                    None => line.record.clone(),
                };
                crate::outln!(
                    "{time}  {} #{} ({}, {})  {} {record}",
                    &line.device[..16],
                    line.seq,
                    line.site,
                    line.partner,
                    line.kind,
                );
                if let Some(operator) = &line.operator {
                    crate::outln!("    {} {operator}", ui.t("by", "fatto da"));
                }
                for change in &line.changes {
                    crate::outln!("    {change}");
                }
            }
            Ok(())
        }
        AuditCommand::Compare { a, b } => {
            let (lines, differ) = compare(&read_source(&a, ui.lang)?, &read_source(&b, ui.lang)?, ui.lang);
            for line in &lines {
                crate::outln!("{line}");
            }
            if differ {
                return Err(AuditFailed {
                    code: 1,
                    message: ui.t("the two copies differ", "le due copie sono diverse").into(),
                }
                .into());
            }
            crate::outln!(
                "{}",
                ui.t("The two copies hold the same envelopes.", "Le due copie contengono le stesse buste.")
            );
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------
// Quickstart

pub fn quickstart(dir: &std::path::Path, ui: &Ui) -> Result<()> {
    if crate::config::NodeConfig::path(dir).exists() {
        crate::outln!("{} {}", ui.t("A node already exists in", "Esiste già un nodo in"), dir.display());
    } else {
        identity::init_single_machine(
            dir,
            "Polo di comunità Esempio",
            tessera_log::DeviceRole::Hub,
            "Cooperativa Esempio",
        )?;
        let mut node = Node::open(dir)?;
        crate::demo::populate(&mut node, ui)?;
    }
    let node = Node::open(dir)?;
    status(&node, ui)?;
    let data = format!("--data {}", dir.display());
    crate::outln!();
    crate::outln!("{}", ui.t("Try next:", "Prova ora:"));
    for line in [
        format!("tessera {data} attendee list"),
        format!("tessera {data} device list --status lent"),
        format!("tessera {data} loan list --overdue"),
        format!("tessera {data} session list"),
        format!("tessera {data} report --by month"),
        tr!(
            ui,
            "tessera {data} attendee add --given Giulia --family Esempio --birth-year 2011 --role student --guardian-name \"Anna Esempio\" --guardian-phone 3331234567 --consent-by guardian --operator \"Your Name\"",
            "tessera {data} attendee add --given Giulia --family Esempio --birth-year 2011 --role studente --guardian-name \"Anna Esempio\" --guardian-phone 3331234567 --consent-by tutore --operator \"Il tuo nome\""
        ),
        format!("tessera {data} export hub.tessera"),
    ] {
        crate::outln!("  {line}");
    }
    Ok(())
}
