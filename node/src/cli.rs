//! The command line of `tessera`: argument parsing (clap) and dispatch. Commands live
//! in [`crate::commands`]; this file only says what can be typed.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use tessera_records::vocab::Lang;

use crate::commands;
use crate::ui::Ui;

/// Tessera: records of a digital-inclusion hub or help desk, offline first.
///
/// Every change is saved on this computer at once and signed by it; hubs exchange
/// changes with `export`/`import` (a file on a USB stick) when they meet.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, propagate_version = true)]
pub struct Cli {
    /// Data directory of the node (default: $TESSERA_DATA, else ~/.local/share/tessera).
    #[arg(long, global = true, env = "TESSERA_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Language of labels and messages: `it` or `en` (default: from $LANG).
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node: its device key, its store and its site.
    Init(InitArgs),
    /// Try Tessera: a node with a demo site and synthetic records, then what to try next.
    Quickstart,
    /// What this node holds: store size, its own history, peers.
    Status,
    /// Sites (hubs, help desks, schools, libraries).
    #[command(subcommand)]
    Site(SiteCommand),
    /// People the programme serves: students, parents, teachers, citizens.
    #[command(subcommand)]
    Attendee(AttendeeCommand),
    /// PCs, tablets, hotspots and phones of the inventory.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Free loans of devices (comodato d'uso).
    #[command(subcommand)]
    Loan(LoanCommand),
    /// Courses, public meetings, help-desk appointments, school labs, mediations.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Problems found after merging changes from other hubs, and their resolution.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Aggregate figures for funders (no personal data).
    Report(ReportArgs),
    /// Write this node's history to a bundle file (for another hub or an auditor).
    Export(ExportArgs),
    /// Read a bundle file or a trust file made elsewhere.
    Import(ImportArgs),
    /// Sync once with another hub or a relay, then exit.
    Sync {
        /// The peer's address, HOST:PORT.
        #[arg(long)]
        peer: String,
    },
    /// Run as a daemon: accept peers, keep syncing with configured peers and relays.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:7420.
        #[arg(long, default_value = "0.0.0.0:7420")]
        listen: String,
        /// A peer or relay to keep a session with (HOST:PORT); repeat for several.
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Address of the operator's page (a browser on this computer opens
        /// http://ADDR). Only this computer can reach the default.
        #[arg(long = "ui", value_name = "ADDR", default_value = crate::web::DEFAULT_ADDR)]
        ui_addr: String,
        /// Serve no operator's page (sync only).
        #[arg(long, conflicts_with = "ui_addr")]
        no_ui: bool,
    },
    /// After damage to the disk: confirm that every peer and relay has been synced, so
    /// this node may sign again although an unreadable record is left in its log.
    Repair {
        /// Required: you synced with every peer and relay that could hold this hub's
        /// changes, and `tessera status` still lists damage.
        #[arg(long)]
        damage_reviewed: bool,
    },
    /// Read keys: give this hub's keys to another device (an auditor, another
    /// organisation's help desk), so it reads your organisation's attendees.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The hub's operators: who works at it, so that every change records who made
    /// it. Once the list holds a name, say who you are with $TESSERA_OPERATOR (the
    /// page asks).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Partner administrator's tools: network and partner keys, certificates.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Auditor's tools: verify a bundle or store, compare two copies (no node needed).
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Add an operator (the page then asks who is working).
    Add {
        /// Their name, as it is to appear in the history (e.g. "Anna Rossi").
        name: String,
        /// Give them a password, asked on the terminal (or from
        /// $TESSERA_OPERATOR_PASSWORD); the page asks for it when it is reachable
        /// from other computers.
        #[arg(long)]
        password: bool,
    },
    /// List the operators.
    List,
    /// Remove an operator (their name stays in the history of what they did).
    Remove {
        /// Their name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Give the read keys this hub holds (the network's and your organisation's) to
    /// the device with this key (printed by `tessera init` on that computer). It then
    /// reads your organisation's attendees. A certified device (another organisation's
    /// desk) also gets the keys of later epochs until it is revoked; an uncertified one
    /// (an auditor's computer) keeps what it was given and must be granted again after
    /// a revocation starts a new epoch. The keys travel with the next sync or export.
    Grant {
        /// The device key (64 hex digits).
        #[arg(long)]
        device: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every envelope and every device's history in a bundle or store.
    /// Exit status: 0 all verified and complete, 1 a failure or fork, 2 gaps or unreadable (damaged) log bytes only.
    Verify {
        /// A bundle file or a node's data directory.
        source: PathBuf,
        /// The network id you trust (from the programme coordinator). Without it,
        /// the source's own claim is used, with a warning.
        #[arg(long)]
        network: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// What each of two copies lacks, per device, and any fork between them.
    Compare { a: PathBuf, b: PathBuf },
    /// Who changed what and when, field by field (ids only unless asked otherwise).
    Log {
        /// A bundle file or a node's data directory.
        source: PathBuf,
        #[arg(long)]
        network: Option<String>,
        /// Partner name or key prefix.
        #[arg(long)]
        partner: Option<String>,
        /// Device key prefix.
        #[arg(long)]
        device: Option<String>,
        /// A record's short id (e.g. A3f9c2b1d) or a device's tag (e.g. TAB-0042), with the records that refer to it.
        #[arg(long)]
        record: Option<String>,
        /// site, attendee, device, loan or session.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Show the values of attendees' fields (personal data).
        #[arg(long)]
        show_personal_data: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The name of the site this node serves, e.g. "Oratorio San Luca".
    #[arg(long, required_unless_present = "site_of")]
    pub site: Option<String>,
    /// Take over an existing site of the network (its name or id): for a new computer
    /// replacing a hub's old one, so the hub's records and figures stay one site. The
    /// node adopts it once it has learned it at its first sync or import.
    #[arg(long, value_name = "SITE", conflicts_with = "site", requires = "network")]
    pub site_of: Option<String>,
    /// `hub` or `help-desk`.
    #[arg(long, default_value = "hub")]
    pub role: String,
    /// Join an existing network (its id, from your partner administrator). Without it,
    /// a single-machine network is made for a first try.
    #[arg(long, value_name = "NETWORK_ID")]
    pub network: Option<String>,
    /// The partner organisation's name (single-machine network only).
    #[arg(long, default_value = "Partner locale")]
    pub partner: String,
}

#[derive(Debug, Args, Default)]
pub struct SiteFields {
    #[arg(long)]
    pub name: Option<String>,
    /// community-hub, help-desk, school, library, other.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub partner: Option<String>,
    #[arg(long)]
    pub address: Option<String>,
    /// Free text, e.g. "lun-ven 14:30-18:30".
    #[arg(long)]
    pub hours: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    Add(SiteFields),
    Edit {
        id: String,
        #[command(flatten)]
        fields: SiteFields,
    },
    Show {
        id: String,
    },
    List,
}

#[derive(Debug, Args, Default)]
pub struct AttendeeFields {
    #[arg(long)]
    pub given: Option<String>,
    #[arg(long)]
    pub family: Option<String>,
    #[arg(long)]
    pub birth_year: Option<u16>,
    /// student, parent, teacher, citizen.
    #[arg(long)]
    pub role: Option<String>,
    #[arg(long)]
    pub school: Option<String>,
    #[arg(long)]
    pub class: Option<String>,
    /// Guardian's name (required for minors).
    #[arg(long)]
    pub guardian_name: Option<String>,
    #[arg(long)]
    pub guardian_phone: Option<String>,
    #[arg(long)]
    pub guardian_email: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// A language spoken; repeat for several.
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Date the consent form was signed (YYYY-MM-DD; default today).
    #[arg(long)]
    pub consent_date: Option<String>,
    /// Who signed the consent: self or guardian.
    #[arg(long)]
    pub consent_by: Option<String>,
    /// The operator who collected the consent form (default: who is working,
    /// $TESSERA_OPERATOR).
    #[arg(long)]
    pub operator: Option<String>,
    /// The operator who follows this person.
    #[arg(long)]
    pub referent: Option<String>,
    /// Notes of the intervention plan.
    #[arg(long)]
    pub notes: Option<String>,
    /// Registering site (default: this node's site).
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AttendeeCommand {
    /// Register a person.
    Add {
        #[command(flatten)]
        fields: AttendeeFields,
        /// Save although a person with the same name and birth year is on record
        /// (checked first: nothing is saved without this when one is).
        #[arg(long)]
        force: bool,
    },
    /// Register the people of a spreadsheet (CSV, `;` or `,`): every row is checked
    /// first, and nothing is saved unless every row is right.
    Import {
        /// The CSV file, with a header line (Nome;Cognome;Anno di nascita;Ruolo;...).
        file: PathBuf,
        /// List what would be registered and every row's error; save nothing.
        #[arg(long)]
        dry_run: bool,
        /// What a column is, when its header is not a name Tessera knows:
        /// "Header=field" (fields: given, family, birth-year, role, school, class,
        /// guardian-name, guardian-phone, guardian-email, phone, email, language,
        /// consent-by, consent-date, referent, notes). Repeat for several.
        #[arg(long = "column", value_name = "HEADER=FIELD")]
        columns: Vec<String>,
        /// Who signed the consent, for rows that do not say: self or guardian.
        #[arg(long)]
        consent_by: Option<String>,
        /// Register rows that look like people already on record.
        #[arg(long)]
        force: bool,
    },
    /// Change some fields of a person.
    Edit {
        id: String,
        #[command(flatten)]
        fields: AttendeeFields,
    },
    Show {
        id: String,
    },
    /// Erase a person (GDPR art. 17, or a registration made by mistake): their
    /// details and history are removed from this hub and from every hub and relay it
    /// syncs with; what stays is the id, "erased on DATE" and anonymous counts.
    Erase {
        id: String,
        /// Why: `request` (the person asked, art. 17) or `mistake` (registered by mistake).
        #[arg(long, default_value = "request")]
        reason: String,
        /// Confirm: an erasure cannot be undone.
        #[arg(long)]
        yes: bool,
        /// The network key file (the coordinator's): erase a person whatever
        /// organisation registered them (one that has left the programme, or a person
        /// registered by a release before December 2026).
        #[arg(long, value_name = "FILE")]
        network_key: Option<PathBuf>,
    },
    List {
        /// Only people registered at this site.
        #[arg(long)]
        site: Option<String>,
        /// Only people whose name contains this text (accents and case ignored).
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        role: Option<String>,
    },
}

#[derive(Debug, Args, Default)]
pub struct DeviceFields {
    /// The label stuck on the device, e.g. "LO-0042".
    #[arg(long)]
    pub tag: Option<String>,
    /// pc, laptop, tablet, hotspot, phone.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub serial: Option<String>,
    /// donated, purchased, refurbished, public-access.
    #[arg(long)]
    pub origin: Option<String>,
    /// new, good, fair, poor, broken.
    #[arg(long)]
    pub condition: Option<String>,
    /// in-stock, lent, in-repair, retired.
    #[arg(long)]
    pub status: Option<String>,
    /// The site holding the device (default: this node's site).
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    Add(DeviceFields),
    Edit {
        /// Device id or asset tag.
        id: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    Show {
        id: String,
    },
    List {
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        kind: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LoanCommand {
    /// Lend a device: records the loan and marks the device lent, in one change.
    Add {
        /// Device id or asset tag.
        #[arg(long)]
        device: String,
        #[arg(long)]
        attendee: String,
        /// Expected return date (YYYY-MM-DD).
        #[arg(long)]
        expected_return: String,
        /// Start date (default today).
        #[arg(long)]
        start: Option<String>,
        /// The comodato agreement is signed.
        #[arg(long)]
        agreement_signed: bool,
    },
    /// Record the return of a device.
    Return {
        id: String,
        /// Return date (default today).
        #[arg(long)]
        date: Option<String>,
        /// Condition on return: new, good, fair, poor, broken.
        #[arg(long)]
        condition: Option<String>,
    },
    /// Void a loan recorded by mistake (typed twice, the wrong device or person): it
    /// stays on record, closed, and counts in no figure; its device is free again.
    Void {
        id: String,
        /// Why (kept with the loan).
        #[arg(long)]
        reason: String,
    },
    Edit {
        id: String,
        #[arg(long)]
        expected_return: Option<String>,
        #[arg(long)]
        agreement_signed: Option<bool>,
    },
    Show {
        id: String,
    },
    List {
        #[arg(long)]
        site: Option<String>,
        /// Only loans not returned yet.
        #[arg(long)]
        open: bool,
        /// Only open loans past their expected return.
        #[arg(long)]
        overdue: bool,
        /// Loans started on or after this date.
        #[arg(long)]
        from: Option<String>,
        /// Loans started on or before this date.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Args, Default)]
pub struct SessionFields {
    /// course, public-meeting, help-desk-appointment, school-lab, mediation.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub topic: Option<String>,
    /// spid, cie, email, bonus, cv, cyberbullying, ... (for reports).
    #[arg(long)]
    pub topic_code: Option<String>,
    /// students, parents, teachers, citizens, elderly, mixed.
    #[arg(long)]
    pub audience: Option<String>,
    /// Start, YYYY-MM-DDTHH:MM.
    #[arg(long)]
    pub start: Option<String>,
    /// End, YYYY-MM-DDTHH:MM.
    #[arg(long)]
    pub end: Option<String>,
    /// in-person or online.
    #[arg(long)]
    pub mode: Option<String>,
    #[arg(long)]
    pub facilitator: Option<String>,
    /// A registered participant (attendee id); repeat for several.
    #[arg(long = "participant")]
    pub participants: Vec<String>,
    /// People counted but not registered (public meetings).
    #[arg(long)]
    pub headcount: Option<u32>,
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub mediator: Option<String>,
    /// The site (default: this node's site).
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    Add {
        #[command(flatten)]
        fields: SessionFields,
        /// Save a help-desk appointment although it overlaps another at the same site
        /// (checked first: nothing is saved without this when it does).
        #[arg(long)]
        force: bool,
    },
    Edit {
        id: String,
        #[command(flatten)]
        fields: SessionFields,
    },
    /// Record that an attendee came (or not, with --absent).
    Attend {
        id: String,
        #[arg(long)]
        attendee: String,
        #[arg(long)]
        absent: bool,
    },
    /// Cancel a session or appointment (booked twice, or not held): it is kept, with
    /// its reason, but counts nowhere. `--undo` takes the cancellation back.
    Cancel {
        id: String,
        /// Why (e.g. "prenotato due volte"); the date is recorded when omitted.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, conflicts_with = "reason")]
        undo: bool,
    },
    Show {
        id: String,
    },
    List {
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        /// Sessions starting on or after this date.
        #[arg(long)]
        from: Option<String>,
        /// Sessions starting on or before this date.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// Show the conflicts found after merging changes from other hubs.
    List,
    /// Resolve one conflict; the resolution is a signed change that travels like any other.
    Resolve(ResolveArgs),
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The conflict id shown by `conflicts list`.
    pub id: String,
    /// Device lent twice: close this loan (the other stays open).
    #[arg(long, value_name = "LOAN")]
    pub close_loan: Option<String>,
    /// Probable duplicate: keep this attendee and merge the others into it.
    #[arg(long, value_name = "ATTENDEE")]
    pub keep: Option<String>,
    /// Probable duplicate: they are different people; keep both.
    #[arg(long)]
    pub not_duplicates: bool,
    /// Double-booked appointment: move this session...
    #[arg(long = "move", value_name = "SESSION")]
    pub move_session: Option<String>,
    /// ...to this start (YYYY-MM-DDTHH:MM)...
    #[arg(long)]
    pub start: Option<String>,
    /// ...and this end.
    #[arg(long)]
    pub end: Option<String>,
    /// Device lent with no open loan: this loan (closed by a resolution) is the one
    /// with the borrower; it is open again.
    #[arg(long, value_name = "LOAN")]
    pub reopen_loan: Option<String>,
    /// Device lent with no open loan: the device is back; it is in stock again.
    #[arg(long, conflicts_with = "reopen_loan")]
    pub device_back: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Group by site, partner, month, audience, age (bands 0-13, 14-17, 18-64, 65+) or
    /// topic (the request type: SPID, CIE, e-mail, bonus...).
    #[arg(long, default_value = "site")]
    pub by: String,
    /// First day included (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day included (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// Only the sites of this partner organisation (its name, any case).
    #[arg(long)]
    pub partner: Option<String>,
    /// CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Field separator of the CSV: `semicolon` (`;` and a decimal comma, what Italian
    /// spreadsheets open directly) or `comma` (`,` and a decimal point). Default: the
    /// language's convention (Italian: semicolon).
    #[arg(long, requires = "csv")]
    pub csv_style: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle file to write.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A bundle (from `tessera export`) or a trust file (from `tessera admin`).
    pub file: PathBuf,
    /// Import a bundle although the device that signed it is certified by nobody (it
    /// may come from anyone; its changes are still checked one by one).
    #[arg(long)]
    pub allow_unknown_exporter: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make the network key (the programme coordinator, once).
    NewNetwork {
        /// Directory for network.key.
        #[arg(long)]
        out: PathBuf,
        /// Keep the key under a passphrase (asked twice; or $TESSERA_KEY_PASSPHRASE).
        #[arg(long)]
        passphrase: bool,
    },
    /// Make a partner key and its certificate, signed by the network key.
    NewPartner {
        #[arg(long)]
        network_key: PathBuf,
        /// The partner organisation's name.
        #[arg(long)]
        name: String,
        /// Directory for partner.key and partner.trust.
        #[arg(long)]
        out: PathBuf,
        /// Keep the key under a passphrase (asked twice; or $TESSERA_KEY_PASSPHRASE).
        #[arg(long)]
        passphrase: bool,
    },
    /// Put an existing network or partner key file under a passphrase (for the keys a
    /// single-machine `init` made in DATA/keys, or a key made without one).
    ProtectKey {
        /// The key file (network.key or partner.key).
        file: PathBuf,
        /// Whose key it is: network or partner.
        #[arg(long)]
        role: String,
    },
    /// Certify a node's device key (printed by `tessera init --network ...`).
    CertifyDevice {
        #[arg(long)]
        partner_key: PathBuf,
        /// The partner.trust file made by `admin new-partner`.
        #[arg(long)]
        partner_trust: PathBuf,
        /// The node's device key (64 hex digits).
        #[arg(long)]
        device: String,
        #[arg(long)]
        site: String,
        #[arg(long, default_value = "hub")]
        role: String,
        /// The trust file to give to the node.
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a device: its changes after number N are no longer accepted.
    RevokeDevice {
        /// The partner key that certified the device, or the network key.
        #[arg(long)]
        key: PathBuf,
        /// Whose key it is: partner or network.
        #[arg(long, default_value = "partner")]
        key_role: String,
        #[arg(long)]
        network: String,
        #[arg(long)]
        device: String,
        /// The device's last change that stays valid.
        #[arg(long)]
        after: u64,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        out: PathBuf,
    },
}

impl Cli {
    /// Parses arguments given without the program's name (what the daemon receives),
    /// help and clap's errors in `lang`.
    pub fn try_parse_from_args(args: &[String], lang: Lang) -> Result<Cli, ParseFailure> {
        Cli::parse_in(std::iter::once("tessera".to_string()).chain(args.iter().cloned()), lang)
    }

    /// Parses a command line (the program's name first), with `--help` and clap's
    /// errors in `lang` ([`crate::help_it`] for Italian).
    pub fn parse_in<I, T>(args: I, lang: Lang) -> Result<Cli, ParseFailure>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let italian = (lang == Lang::It).then_some(&crate::help_it::TABLES);
        tessera_help::parse_in(args, italian)
    }
}

/// The language of a command line before it is parsed: `--lang` if given (Italian if
/// unknown), else the locale's ([`Ui::new`]).
pub fn lang_of_args(args: &[std::ffi::OsString]) -> Lang {
    match lang_flag(args).as_deref().map(Lang::parse) {
        Some(Ok(lang)) => lang,
        // An unknown --lang is itself an error, said in Italian.
        Some(Err(_)) => Lang::It,
        None => Ui::new(None).map_or(Lang::It, |ui| ui.lang),
    }
}

pub use tessera_help::{lang_flag, ParseFailure};

impl Command {
    /// Commands that open the node's store: beside a running daemon they go to it.
    pub fn needs_store(&self) -> bool {
        match self {
            Command::Init(_)
            | Command::Quickstart
            | Command::Admin(_)
            | Command::Audit(_)
            | Command::Operator(_) => false,
            Command::Status
            | Command::Site(_)
            | Command::Attendee(_)
            | Command::Device(_)
            | Command::Loan(_)
            | Command::Session(_)
            | Command::Conflicts(_)
            | Command::Report(_)
            | Command::Export(_)
            | Command::Import(_)
            | Command::Sync { .. }
            | Command::Serve { .. }
            | Command::Repair { .. }
            | Command::Keys(_) => true,
        }
    }
}

/// How an error is printed: the chain, in the operator's language, and the exit code.
pub fn error_text(error: &anyhow::Error, ui: &Ui) -> (String, u8) {
    use std::fmt::Write as _;
    let mut text = String::new();
    for (i, cause) in error.chain().enumerate() {
        let said = crate::msg::cause_text(cause, ui);
        match i {
            0 => _ = writeln!(text, "{} {said}", ui.t("error:", "errore:")),
            _ => _ = writeln!(text, "  {} {said}", ui.t("because:", "perché:")),
        }
    }
    let code = match error.downcast_ref::<crate::audit::AuditFailed>() {
        Some(failed) => failed.code,
        None => 1,
    };
    (text, code)
}

/// Runs the command line: through the daemon when one serves the data directory and
/// the command needs the store, here otherwise. Returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let fail = |error: anyhow::Error, ui: &Ui| {
        let (text, code) = error_text(&error, ui);
        crate::err!("{text}");
        code
    };
    let ui = match Ui::new(cli.lang.as_deref()) {
        Ok(ui) => ui,
        // An unknown --lang is itself the error, said in Italian.
        Err(e) => return fail(e, &Ui { lang: tessera_records::vocab::Lang::It }),
    };
    if cli.command.needs_store() {
        let forwarded =
            commands::data_dir(&cli.data).and_then(|dir| crate::daemon::forward(&dir, &cli.command, &ui));
        match forwarded {
            Ok(Some(done)) => {
                crate::out!("{}", done.stdout);
                crate::err!("{}", done.stderr);
                return done.code;
            }
            Ok(None) => {}
            Err(e) => return fail(e, &ui),
        }
    }
    match commands::dispatch(cli, &ui) {
        Ok(()) => 0,
        Err(e) => fail(e, &ui),
    }
}
