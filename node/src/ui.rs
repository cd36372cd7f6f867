//! What the operator reads: the chosen language, and plain tables.
//!
//! Labels come in Italian and English; the language is `--lang`, else English when
//! `$LC_ALL` or `$LANG` asks for it (`en_GB.UTF-8`), else Italian: the people at the
//! hubs read Italian, and many of their computers say only `C.UTF-8` or nothing.

use anyhow::{bail, Result};
use tessera_records::vocab::Lang;

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
        let lang = match flag {
            Some(word) => match Lang::parse(word) {
                Ok(lang) => lang,
                Err(_) => bail!("unknown language `{word}`: use `it` or `en`"),
            },
            None => {
                let env = std::env::var("LC_ALL")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .or_else(|| std::env::var("LANG").ok())
                    .unwrap_or_default();
                lang_of_locale(&env)
            }
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
    print!("{}", table(header, rows));
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
        println!("{label}:{} {value}", " ".repeat(pad));
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
}
