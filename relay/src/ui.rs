//! The relay operator's language: `--lang it|en`, else English when `$LC_ALL` or
//! `$LANG` asks for it, else Italian, as for `tessera` (the relay does not link
//! `tessera-records`, where the node's `Lang` lives, so the rule is restated here in
//! the same words; the node's tests and these keep the two the same).

use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    It,
    En,
}

#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub lang: Lang,
}

/// `$LC_ALL`, else `$LANG`.
pub fn locale() -> String {
    std::env::var("LC_ALL")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("LANG").ok())
        .unwrap_or_default()
}

impl Ui {
    pub fn new(flag: Option<&str>) -> Result<Ui> {
        Ui::for_locale(flag, &locale())
    }

    /// From `--lang`, else from a locale name (the client's, for the daemon).
    pub fn for_locale(flag: Option<&str>, locale: &str) -> Result<Ui> {
        let lang = match flag.map(str::to_lowercase).as_deref() {
            Some("it" | "italian" | "italiano") => Lang::It,
            Some("en" | "english" | "inglese") => Lang::En,
            Some(word) => {
                bail!("lingua sconosciuta `{word}`: usa `it` o `en` (unknown language: use `it` or `en`)")
            }
            None if locale.to_lowercase().starts_with("en") => Lang::En,
            None => Lang::It,
        };
        Ok(Ui { lang })
    }

    pub fn t<'a>(&self, en: &'a str, it: &'a str) -> &'a str {
        match self.lang {
            Lang::En => en,
            Lang::It => it,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_unless_asked_for_english() {
        for (flag, locale, lang) in [
            (None, "it_IT.UTF-8", Lang::It),
            (None, "C.UTF-8", Lang::It),
            (None, "", Lang::It),
            (None, "en_GB.UTF-8", Lang::En),
            (Some("it"), "en_GB.UTF-8", Lang::It),
            (Some("EN"), "", Lang::En),
        ] {
            assert_eq!(Ui::for_locale(flag, locale).unwrap().lang, lang, "{flag:?} {locale:?}");
        }
        assert!(Ui::for_locale(Some("fr"), "").is_err());
    }
}
