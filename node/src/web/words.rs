//! Words of the pages: the messages of [`ValidationError`] as sentences (the
//! domain's Italian and English, without the value typed) and dates as people in
//! Italy write them.

use tessera_records::model::{parse_date, parse_date_time};
use tessera_records::validate::ValidationError;
use tessera_records::vocab::Lang;

use crate::ui::Ui;

/// The message of a broken rule in the operator's language, as a sentence: the
/// domain's own words ([`ValidationError::message`], one table for the CLI and the
/// page), with a capital and a full stop.
pub fn validation_message(error: &ValidationError, ui: &Ui) -> String {
    let text = error.message(ui.lang);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).chain(std::iter::once('.')).collect(),
        None => text,
    }
}

/// A date as stored (`YYYY-MM-DD`) as people write it: `22/11/2026` in Italian.
pub fn date(text: &str, ui: &Ui) -> String {
    match (parse_date(text), ui.lang) {
        (Some(d), Lang::It) => d.format("%d/%m/%Y").to_string(),
        (Some(d), Lang::En) => d.format("%-d %b %Y").to_string(),
        (None, _) => text.to_string(),
    }
}

/// A date and time as stored (`YYYY-MM-DDTHH:MM`) as people write it.
pub fn date_time(text: &str, ui: &Ui) -> String {
    match (parse_date_time(text), ui.lang) {
        (Some(d), Lang::It) => d.format("%d/%m/%Y %H:%M").to_string(),
        (Some(d), Lang::En) => d.format("%-d %b %Y %H:%M").to_string(),
        (None, _) => text.to_string(),
    }
}

/// The time of day of a stored date and time (`15:00`).
pub fn time_of(text: &str) -> String {
    parse_date_time(text).map(|d| d.format("%H:%M").to_string()).unwrap_or_default()
}

/// "yes" / "no" in the operator's language.
pub fn yes_no(value: bool, ui: &Ui) -> &'static str {
    if value {
        ui.t("yes", "sì")
    } else {
        ui.t("no", "no")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_speaks_italian_without_the_value() {
        let it = Ui { lang: Lang::It };
        let message = validation_message(&ValidationError::MinorWithoutGuardian { born: 2012 }, &it);
        assert!(message.contains("minorenne") && message.contains("tutore"), "{message}");
        let message = validation_message(&ValidationError::Required { field: "given name" }, &it);
        assert_eq!(message, "Manca il nome: è obbligatorio.");
        let en = Ui { lang: Lang::En };
        assert!(
            validation_message(&ValidationError::Required { field: "given name" }, &en).starts_with("The")
        );
    }

    #[test]
    fn dates_as_people_write_them() {
        let it = Ui { lang: Lang::It };
        assert_eq!(date("2026-11-22", &it), "22/11/2026");
        assert_eq!(date_time("2026-11-22T15:00", &it), "22/11/2026 15:00");
        assert_eq!(time_of("2026-11-22T15:00"), "15:00");
    }
}
