//! A clap command tree's `--help` and clap's own errors in Italian.
//!
//! The English help of a binary comes from its doc comments; the Italian from
//! [`Tables`] it keeps beside its command line: every `about`, argument help and value
//! name, keyed by command path (`""` for the binary, `"attendee add"`) and argument id
//! (the field name: `birth_year`). An argument is looked up at its command, then at
//! each parent, then at `""`, so shared fields are written once. [`Tables::missing`]
//! and [`Tables::stale`] let a unit test fail on a command or visible argument with
//! no Italian, or a table row that names nothing. [`ItalianErrors`] formats clap's
//! errors (unknown argument, missing value...) in Italian with the same facts, and
//! [`io_kind_it`] what an operating-system error means (its own text is English).

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorFormatter, ErrorKind};
use clap::Command;

/// The template of every help page: clap's own, with "Uso:" for "Usage:".
const TEMPLATE: &str = "{before-help}{about-with-newline}\nUso: {usage}\n\n{all-args}{after-help}";

/// The Italian of one binary's command line.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    /// `about` of every command, by path.
    pub commands: &'static [(&'static str, &'static str)],
    /// (command path, argument id, help, value name) of every argument; an empty
    /// value name keeps clap's.
    pub args: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

impl Tables {
    /// The Italian `about` of the command at `path`.
    pub fn about(&self, path: &str) -> Option<&'static str> {
        let path = if path == "help" || path.ends_with(" help") { "help".to_string() } else { unhelp(path) };
        self.commands.iter().find(|(p, _)| *p == path).map(|(_, it)| *it)
    }

    /// The Italian help and value name of argument `id` of the command at `path`:
    /// looked up there, then at each parent, then at the root.
    pub fn arg(&self, path: &str, id: &str) -> Option<(&'static str, &'static str)> {
        let mut at = path;
        loop {
            if let Some((_, _, help, value)) = self.args.iter().find(|(p, a, _, _)| *p == at && *a == id) {
                return Some((help, value));
            }
            if at.is_empty() {
                return None;
            }
            at = at.rsplit_once(' ').map_or("", |(parent, _)| parent);
        }
    }

    /// `cmd` with its help in Italian, and every subcommand's.
    pub fn localize(&self, mut cmd: Command) -> Command {
        cmd.build();
        self.localize_at(cmd, "")
    }

    fn localize_at(&self, mut cmd: Command, path: &str) -> Command {
        if let Some(about) = self.about(path) {
            cmd = cmd.about(about).long_about(None::<&str>);
        }
        cmd = cmd.help_template(TEMPLATE).subcommand_help_heading("Comandi").subcommand_value_name("COMANDO");
        let ids: Vec<String> = cmd.get_arguments().map(|a| a.get_id().to_string()).collect();
        for id in ids {
            let found = self.arg(&unhelp(path), &id);
            cmd = cmd.mut_arg(&id, |a| {
                let heading = if a.is_positional() { "Argomenti" } else { "Opzioni" };
                let mut a = a.help_heading(heading);
                let Some((help, value)) = found else { return a };
                let mut help = help.to_string();
                let defaults: Vec<String> =
                    a.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
                let shown = a.get_action().takes_values() && !a.is_hide_default_value_set();
                if shown && !defaults.is_empty() {
                    if !defaults.iter().all(String::is_empty) {
                        help.push_str(&format!(" [predefinito: {}]", defaults.join(", ")));
                    }
                    a = a.hide_default_value(true);
                }
                if let Some(env) = a.get_env().map(|e| e.to_string_lossy().into_owned()) {
                    if !a.is_hide_env_set() {
                        help.push_str(&format!(" [variabile: {env}]"));
                        a = a.hide_env(true);
                    }
                }
                a = a.help(help).long_help(None::<&str>);
                if !value.is_empty() {
                    a = a.value_name(value);
                }
                a
            });
        }
        let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
        for name in names {
            let sub_path = if path.is_empty() { name.clone() } else { format!("{path} {name}") };
            cmd = cmd.mut_subcommand(&name, |sub| self.localize_at(sub, &sub_path));
        }
        let usage = cmd.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage:").trim().replace("[OPTIONS]", "[OPZIONI]");
        cmd.override_usage(usage)
    }

    /// Every command and visible argument of `cmd` with no Italian, in words.
    pub fn missing(&self, mut cmd: Command) -> Vec<String> {
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "", &mut |c, path| {
            if !c.is_hide_set() && self.about(path).is_none() {
                missing.push(format!("command `{path}`"));
            }
            for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                if self.arg(path, a.get_id().as_str()).is_none() {
                    missing.push(format!("argument `{}` of `{path}`", a.get_id()));
                }
            }
        });
        missing
    }

    /// Every table row that names a command or argument `cmd` does not have.
    pub fn stale(&self, mut cmd: Command) -> Vec<String> {
        cmd.build();
        let mut paths = Vec::new();
        let mut args = Vec::new();
        walk(&cmd, "", &mut |c, path| {
            paths.push(path.to_string());
            for a in c.get_arguments() {
                args.push((path.to_string(), a.get_id().to_string()));
            }
        });
        let mut stale = Vec::new();
        for (path, _) in self.commands {
            if !paths.iter().any(|p| p == path) {
                stale.push(format!("command `{path}`"));
            }
        }
        for (path, id, _, _) in self.args {
            let under = |p: &String| p == path || path.is_empty() || p.starts_with(&format!("{path} "));
            if !args.iter().any(|(p, a)| a == id && under(p)) {
                stale.push(format!("argument `{id}` under `{path}`"));
            }
        }
        stale
    }
}

/// Parses a command line (the program's name first) into `P`, with `--help` and
/// clap's errors in Italian from `italian`, or clap's English when it is `None`.
pub fn parse_in<P, I, T>(args: I, italian: Option<&Tables>) -> Result<P, ParseFailure>
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match italian {
        None => P::try_parse_from(args).map_err(ParseFailure::En),
        Some(tables) => tables
            .localize(P::command())
            .try_get_matches_from(args)
            .and_then(|matches| P::from_arg_matches(&matches))
            .map_err(|e| ParseFailure::It(e.apply::<ItalianErrors>())),
    }
}

/// clap stopped: a help or version page to print, or an error, in either language.
#[derive(Debug)]
pub enum ParseFailure {
    En(clap::Error),
    It(clap::error::Error<ItalianErrors>),
}

impl ParseFailure {
    /// Prints it where clap prints it (help on stdout, errors on stderr).
    pub fn print(&self) -> std::io::Result<()> {
        match self {
            ParseFailure::En(e) => e.print(),
            ParseFailure::It(e) => e.print(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            ParseFailure::En(e) => e.exit_code(),
            ParseFailure::It(e) => e.exit_code(),
        }
    }

    /// The text, without colours.
    pub fn text(&self) -> String {
        match self {
            ParseFailure::En(e) => e.to_string(),
            ParseFailure::It(e) => e.to_string(),
        }
    }
}

/// The value of `--lang` in a command line not parsed yet (the language its help and
/// errors are to be in).
pub fn lang_flag(args: &[std::ffi::OsString]) -> Option<String> {
    let mut flag = None;
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--lang" {
            flag = args.next().map(|v| v.into_owned());
        } else if let Some(value) = arg.strip_prefix("--lang=") {
            flag = Some(value.to_string());
        }
    }
    flag
}

/// What an operating-system error means, in Italian (by its kind; the OS's own text is
/// in English).
pub fn io_kind_it(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::NotFound => "file o cartella inesistente",
        K::PermissionDenied => "permesso negato",
        K::AlreadyExists => "esiste già",
        K::ConnectionRefused => "connessione rifiutata",
        K::ConnectionReset => "connessione interrotta dall'altra parte",
        K::TimedOut => "tempo scaduto",
        K::AddrInUse => "indirizzo già in uso",
        K::AddrNotAvailable => "indirizzo non disponibile su questo computer",
        K::InvalidData => "dati non validi",
        K::InvalidInput => "valore non valido",
        K::UnexpectedEof => "il file finisce prima del previsto",
        K::WriteZero | K::StorageFull => "disco pieno",
        K::Interrupted => "interrotto",
        K::IsADirectory => "è una cartella, non un file",
        K::NotADirectory => "non è una cartella",
        K::ReadOnlyFilesystem => "disco in sola lettura",
        _ => return None,
    })
}

/// The path of the command that a command of clap's `help` tree stands for
/// (`help site add` is `site add`).
fn unhelp(path: &str) -> String {
    path.split(' ').filter(|word| *word != "help").collect::<Vec<_>>().join(" ")
}

/// Walks the command tree (not the `help` copies of it) and calls `f` on each command
/// with its path.
fn walk(cmd: &Command, path: &str, f: &mut impl FnMut(&Command, &str)) {
    f(cmd, path);
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        if name == "help" {
            f(sub, format!("{path} help").trim_start());
            continue;
        }
        let sub_path = if path.is_empty() { name.to_string() } else { format!("{path} {name}") };
        walk(sub, &sub_path, f);
    }
}

/// clap's errors in Italian (the same facts clap gives, in its order).
#[derive(Debug)]
pub struct ItalianErrors;

impl ErrorFormatter for ItalianErrors {
    fn format_error(error: &clap::error::Error<Self>) -> StyledStr {
        let text = |kind: ContextKind| match error.get(kind) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            Some(ContextValue::Strings(v)) => Some(v.join(", ")),
            Some(ContextValue::StyledStr(s)) => Some(s.to_string()),
            Some(ContextValue::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let list = |kind: ContextKind| match error.get(kind) {
            Some(ContextValue::Strings(v)) => v.clone(),
            Some(ContextValue::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let arg = text(ContextKind::InvalidArg).unwrap_or_default();
        let value = text(ContextKind::InvalidValue).unwrap_or_default();
        let mut out = String::from("errore: ");
        match error.kind() {
            ErrorKind::InvalidValue if value.is_empty() => {
                out.push_str(&format!("manca il valore di '{arg}'"));
            }
            ErrorKind::InvalidValue => {
                out.push_str(&format!("valore '{value}' non valido per '{arg}'"));
                let valid = list(ContextKind::ValidValue);
                if !valid.is_empty() {
                    out.push_str(&format!("\n  [valori possibili: {}]", valid.join(", ")));
                }
            }
            ErrorKind::ValueValidation => {
                out.push_str(&format!("valore '{value}' non valido per '{arg}'"));
                if let Some(source) = std::error::Error::source(error) {
                    out.push_str(&format!(": {}", number_error_it(&source.to_string())));
                }
            }
            ErrorKind::UnknownArgument => out.push_str(&format!("argomento '{arg}' inatteso")),
            ErrorKind::InvalidSubcommand => {
                let sub = text(ContextKind::InvalidSubcommand).unwrap_or_default();
                out.push_str(&format!("comando '{sub}' sconosciuto"));
            }
            ErrorKind::MissingRequiredArgument => {
                out.push_str("mancano questi argomenti obbligatori:");
                for missing in list(ContextKind::InvalidArg) {
                    out.push_str(&format!("\n  {missing}"));
                }
            }
            ErrorKind::MissingSubcommand => {
                let sub = text(ContextKind::InvalidSubcommand).unwrap_or_default();
                out.push_str(&format!("'{sub}' richiede un comando"));
                let valid = list(ContextKind::ValidSubcommand);
                if !valid.is_empty() {
                    out.push_str(&format!("\n  [comandi: {}]", valid.join(", ")));
                }
            }
            ErrorKind::ArgumentConflict => {
                let prior = list(ContextKind::PriorArg);
                if prior.first() == Some(&arg) {
                    out.push_str(&format!("l'argomento '{arg}' non si può usare più volte"));
                } else if prior.is_empty() {
                    out.push_str(&format!("l'argomento '{arg}' non si può usare con gli altri indicati"));
                } else {
                    out.push_str(&format!(
                        "l'argomento '{arg}' non si può usare con '{}'",
                        prior.join("', '")
                    ));
                }
            }
            ErrorKind::TooManyValues => {
                out.push_str(&format!("valore '{value}' inatteso per '{arg}': non ne servono altri"))
            }
            ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
                out.push_str(&format!("numero di valori sbagliato per '{arg}'"))
            }
            ErrorKind::NoEquals => out.push_str(&format!("serve un segno = per dare un valore a '{arg}'")),
            ErrorKind::InvalidUtf8 => out.push_str("un argomento non è testo valido (UTF-8)"),
            _ => out.push_str("la riga di comando non è valida"),
        }
        for (kind, what) in [
            (ContextKind::SuggestedSubcommand, "un comando simile"),
            (ContextKind::SuggestedArg, "un argomento simile"),
            (ContextKind::SuggestedValue, "un valore simile"),
        ] {
            if let Some(similar) = text(kind) {
                out.push_str(&format!("\n\n  suggerimento: esiste {what}: '{similar}'"));
            }
        }
        if let Some(ContextValue::StyledStrs(tips)) = error.get(ContextKind::Suggested) {
            for tip in tips {
                out.push_str(&format!("\n\n  suggerimento: {}", tip_it(&tip.to_string())));
            }
        }
        if let Some(usage) = text(ContextKind::Usage) {
            let usage = usage.trim_start_matches("Usage:").trim().replace("[OPTIONS]", "[OPZIONI]");
            out.push_str(&format!("\n\nUso: {usage}"));
        }
        out.push_str("\n\nPer saperne di più, prova '--help'.\n");
        StyledStr::from(out)
    }
}

/// What clap's number parsers say, in Italian.
fn number_error_it(text: &str) -> String {
    if text.contains("invalid digit") {
        "non è un numero intero".into()
    } else if text.contains("too large") || text.contains("out of range") || text.contains("not in") {
        "numero fuori dai limiti".into()
    } else if text.contains("provided string was not") {
        "scrivi `true` (sì) o `false` (no)".into()
    } else if text.contains("empty string") {
        "non può essere vuoto".into()
    } else {
        text.to_string()
    }
}

/// clap's tips, in Italian.
fn tip_it(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("to pass '") {
        if let Some((value, _)) = rest.split_once('\'') {
            return format!("per passare '{value}' come valore, usa '-- {value}'");
        }
    }
    text.replace("a similar argument exists", "esiste un argomento simile")
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    use super::*;

    const TABLES: Tables = Tables {
        commands: &[("", "Un programma."), ("add", "Aggiunge."), ("help", "Mostra l'aiuto.")],
        args: &[
            ("", "data", "La cartella dei dati.", "CARTELLA"),
            ("", "help", "Mostra questo aiuto.", ""),
            ("add", "name", "Il nome.", "NOME"),
        ],
    };

    fn cmd() -> Command {
        Command::new("prova")
            .about("A program.")
            .arg(Arg::new("data").long("data").global(true).default_value("/tmp").help("The data folder."))
            .subcommand(
                Command::new("add").about("Adds.").arg(Arg::new("name").long("name").help("The name.")),
            )
    }

    #[test]
    fn help_is_italian_with_defaults_and_no_english_headings() {
        let mut localized = TABLES.localize(cmd());
        let page = localized.find_subcommand_mut("add").unwrap().render_long_help().to_string();
        assert!(page.contains("Aggiunge.") && page.contains("Il nome.") && page.contains("NOME"), "{page}");
        assert!(page.contains("La cartella dei dati. [predefinito: /tmp]"), "{page}");
        for english in ["Usage:", "Options:", "[OPTIONS]", "Print help", "[default:"] {
            assert!(!page.contains(english), "{english:?} in\n{page}");
        }
    }

    #[test]
    fn a_parent_serves_its_children_and_gaps_are_found() {
        assert_eq!(TABLES.arg("add", "data"), Some(("La cartella dei dati.", "CARTELLA")));
        assert_eq!(TABLES.missing(cmd()), Vec::<String>::new());
        let more = cmd().subcommand(Command::new("list").arg(Arg::new("all").long("all")));
        assert_eq!(
            TABLES.missing(more),
            vec!["command `list`".to_string(), "argument `all` of `list`".to_string()]
        );
        let bare = Command::new("prova").arg(Arg::new("data").long("data"));
        assert_eq!(
            TABLES.stale(bare),
            vec!["command `add`", "command `help`", "argument `name` under `add`"]
        );
    }

    #[test]
    fn the_language_flag_is_found_before_parsing() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(lang_flag(&args(&["x", "status", "--lang", "en"])).as_deref(), Some("en"));
        assert_eq!(lang_flag(&args(&["x", "--lang=it", "status"])).as_deref(), Some("it"));
        assert_eq!(lang_flag(&args(&["x", "import", "--", "--lang"])), None);
    }

    #[test]
    fn clap_errors_are_italian() {
        let error = TABLES.localize(cmd()).try_get_matches_from(["prova", "add", "--nome", "x"]).unwrap_err();
        let said = error.apply::<ItalianErrors>().to_string();
        assert!(said.starts_with("errore: argomento '--nome' inatteso"), "{said}");
        assert!(said.contains("Uso: prova add"), "{said}");
    }
}
