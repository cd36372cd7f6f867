//! What the operator reads: the chosen language, and plain tables.
//!
//! Labels come in Italian and English; the language is `--lang`, else English when
//! `$LC_ALL` or `$LANG` asks for it (`en_GB.UTF-8`), else Italian: the people at the
//! hubs read Italian, and many of their computers say only `C.UTF-8` or nothing.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;

use anyhow::{bail, Result};
use tessera_records::vocab::Lang;

/// What a command printed while its output was captured (see [`capture`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
}

thread_local! {
    static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Runs `f` with what it prints through [`out!`](crate::out) and [`err!`](crate::err)
/// kept instead of written: the daemon runs a command for a `tessera` process beside
/// it and sends back the same text the command would have printed. The capture is per
/// thread (the command runs on one), like libtest's.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Captured) {
    let previous = CAPTURE.with(|c| c.replace(Some(Captured::default())));
    let result = f();
    let captured = CAPTURE.with(|c| c.replace(previous)).unwrap_or_default();
    (result, captured)
}

/// Writes to stdout, or to the capture. A closed stdout (a pipe to `head`) is not an
/// error worth a panic: the rest is dropped.
pub fn write_out(args: fmt::Arguments<'_>) {
    let kept = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(captured) => {
            let _ = fmt::Write::write_fmt(&mut captured.stdout, args);
            true
        }
        None => false,
    });
    if !kept {
        let _ = std::io::stdout().lock().write_fmt(args);
    }
}

/// Writes to stderr, or to the capture.
pub fn write_err(args: fmt::Arguments<'_>) {
    let kept = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(captured) => {
            let _ = fmt::Write::write_fmt(&mut captured.stderr, args);
            true
        }
        None => false,
    });
    if !kept {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_fmt(args);
        let _ = stderr.flush();
    }
}

/// `print!` that the daemon can capture ([`capture`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::ui::write_out(format_args!($($arg)*)) };
}

/// `println!` that the daemon can capture ([`capture`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::ui::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::ui::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that the daemon can capture ([`capture`]).
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::ui::write_err(format_args!($($arg)*)) };
}

/// `eprintln!` that the daemon can capture ([`capture`]).
#[macro_export]
macro_rules! errln {
    () => { $crate::ui::write_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::ui::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}

/// The language of a locale name: English for `en...`, Italian for anything else.
fn lang_of_locale(locale: &str) -> Lang {
    if locale.to_lowercase().starts_with("en") {
        Lang::En
    } else {
        Lang::It
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub lang: Lang,
}

impl Ui {
    pub fn new(flag: Option<&str>) -> Result<Ui> {
        let env = std::env::var("LC_ALL")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var("LANG").ok())
            .unwrap_or_default();
        Ui::for_locale(flag, &env)
    }

    /// The language from `--lang`, else from a locale name (`$LC_ALL`, else `$LANG`,
    /// of the process that asks: the daemon answers in its client's language).
    pub fn for_locale(flag: Option<&str>, locale: &str) -> Result<Ui> {
        let lang = match flag {
            Some(word) => match Lang::parse(word) {
                Ok(lang) => lang,
                Err(_) => bail!(crate::said!(
                    "unknown language `{word}`: use `it` or `en`",
                    "lingua `{word}` sconosciuta: usa `it` o `en`"
                )),
            },
            None => lang_of_locale(locale),
        };
        Ok(Ui { lang })
    }

    /// The English or the Italian text.
    pub fn t<'a>(&self, en: &'a str, it: &'a str) -> &'a str {
        match self.lang {
            Lang::En => en,
            Lang::It => it,
        }
    }
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    crate::out!("{}", table(header, rows));
}

pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(|s| s.as_str()).collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Prints `label: value` lines, labels aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
    for (label, value) in fields {
        let pad = width - label.chars().count();
        crate::outln!("{label}:{} {value}", " ".repeat(pad));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_unless_the_computer_asks_for_english() {
        for (locale, lang) in [
            ("it_IT.UTF-8", Lang::It),
            ("C.UTF-8", Lang::It),
            ("POSIX", Lang::It),
            ("", Lang::It),
            ("en_GB.UTF-8", Lang::En),
            ("EN_us", Lang::En),
        ] {
            assert_eq!(lang_of_locale(locale), lang, "{locale:?}");
        }
    }

    #[test]
    fn capture_keeps_what_a_command_prints_on_its_thread() {
        let (value, captured) = capture(|| {
            crate::outln!("one {}", 1);
            crate::out!("two");
            crate::errln!("warned");
            crate::outln!();
            7
        });
        assert_eq!(value, 7);
        assert_eq!(captured.stdout, "one 1\ntwo\n");
        assert_eq!(captured.stderr, "warned\n");
        // Nested captures do not leak into each other.
        let (_, outer) = capture(|| {
            let (_, inner) = capture(|| crate::outln!("inner"));
            assert_eq!(inner.stdout, "inner\n");
            crate::outln!("outer");
        });
        assert_eq!(outer.stdout, "outer\n");
    }
}
