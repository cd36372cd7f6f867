//! Words the pages show that the domain gives in English only: the messages of
//! [`ValidationError`] (in the operator's language, without the value typed, as the
//! rules are written), which form field each one belongs to, and dates as people in
//! Italy write them.

use tessera_records::model::{parse_date, parse_date_time};
use tessera_records::validate::ValidationError;
use tessera_records::vocab::Lang;

use crate::ui::Ui;

/// The Italian name of a field as [`ValidationError`] names it.
fn field_it(field: &str) -> &str {
    match field {
        "given name" => "nome",
        "family name" => "cognome",
        "birth year" => "anno di nascita",
        "guardian name" => "nome del tutore",
        "guardian phone" => "telefono del tutore",
        "guardian e-mail" => "e-mail del tutore",
        "guardian contact" => "contatto del tutore",
        "consent" => "consenso",
        "consent date" => "data del consenso",
        "consent operator" => "operatore che ha raccolto il consenso",
        "phone" => "telefono",
        "e-mail" => "e-mail",
        "school" => "scuola",
        "class" => "classe",
        "languages" | "language" => "lingue",
        "referent operator" => "operatore di riferimento",
        "intervention plan notes" => "note del piano",
        "asset tag" => "etichetta",
        "model" => "modello",
        "serial number" => "matricola",
        "start date" => "data di inizio",
        "expected return date" => "data di restituzione prevista",
        "return date" => "data di restituzione",
        "reason for closing" => "motivo della chiusura",
        "start" => "inizio",
        "end" => "fine",
        "topic" => "argomento",
        "facilitator" => "conduttore",
        "mediator" => "mediatore",
        "participants" | "participant" => "partecipanti",
        "headcount" => "presenze anonime",
        "site" => "sede",
        "site name" => "nome della sede",
        "partner" => "ente",
        "device" => "dispositivo",
        "attendee" => "persona",
        other => other,
    }
}

/// The message of a broken rule in the operator's language.
pub fn validation_message(error: &ValidationError, ui: &Ui) -> String {
    if ui.lang == Lang::En {
        let text = error.to_string();
        let mut chars = text.chars();
        return match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => text,
        };
    }
    use ValidationError as V;
    match error {
        V::Required { field } => format!("Campo obbligatorio: {}.", field_it(field)),
        V::TooLong { field, max } => format!("Il campo {} supera i {max} caratteri.", field_it(field)),
        V::ControlCharacters { field } => {
            format!("Il campo {} contiene a capo o caratteri di controllo.", field_it(field))
        }
        V::TooMany { field, max } => format!("L'elenco {} ha più di {max} voci.", field_it(field)),
        V::InvalidDate { field } => format!("Il campo {} non è una data (GG/MM/AAAA).", field_it(field)),
        V::InvalidDateTime { field } => format!("Il campo {} non è una data con ora.", field_it(field)),
        V::DateInFuture { field } => format!("Il campo {} è una data futura.", field_it(field)),
        V::InvalidEmail { field } => format!("Il campo {} non è un indirizzo e-mail valido.", field_it(field)),
        V::InvalidPhone { field } => format!(
            "Il campo {} non è un numero di telefono valido (solo cifre, spazi e + - / ( )).",
            field_it(field)
        ),
        V::WrongReference { field, .. } => format!("Il campo {} non indica la scheda giusta.", field_it(field)),
        V::BirthYearOutOfRange { min, max } => format!("L'anno di nascita deve essere tra {min} e {max}."),
        V::MinorWithoutGuardian { born } => {
            format!("La persona è minorenne (nata nel {born}): serve il nome e un contatto di un tutore.")
        }
        V::GuardianWithoutContact => "Il tutore deve avere un telefono o un indirizzo e-mail.".into(),
        V::ConsentNeedsGuardian { born, age_min } => format!(
            "La persona ha meno di {age_min} anni (nata nel {born}): il consenso al trattamento dei dati deve darlo un genitore o tutore."
        ),
        V::EndNotAfterStart => "La fine deve essere dopo l'inizio.".into(),
        V::SessionTooLong { max_hours } => {
            format!("L'incontro dura più di {max_hours} ore: controlla inizio e fine.")
        }
        V::ExpectedReturnBeforeStart => "La restituzione prevista è prima dell'inizio del prestito.".into(),
        V::ReturnedBeforeStart => "La data di restituzione è prima dell'inizio del prestito.".into(),
        V::ReturnConditionWithoutReturn => {
            "Le condizioni alla restituzione si indicano solo quando il dispositivo torna.".into()
        }
        V::HeadcountOnlyForPublicMeetings => "Le presenze anonime si contano solo negli incontri pubblici.".into(),
        V::HeadcountTooLarge { max } => format!("Le presenze anonime superano {max}."),
        V::DuplicateParticipant { .. } => "Una persona è nell'elenco dei partecipanti più di una volta.".into(),
        V::MediatorRequired => "Un incontro di mediazione richiede il nome del mediatore.".into(),
        V::DeviceRetired => "Il dispositivo è dismesso e non si può prestare.".into(),
        V::DeviceInRepair => "Il dispositivo è in riparazione e non si può prestare.".into(),
        V::DeviceBroken => "Il dispositivo è guasto e non si può prestare.".into(),
        V::DeviceAlreadyLent { .. } => {
            "Il dispositivo è già in prestito: registra prima la sua restituzione.".into()
        }
        V::DeviceLentWithoutLoan => {
            "Il dispositivo risulta in prestito ma nessun suo prestito è aperto: vedi la pagina Conflitti.".into()
        }
        V::AgreementNotSigned => {
            "Il contratto di comodato d'uso deve essere firmato prima di consegnare il dispositivo.".into()
        }
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
        assert_eq!(message, "Campo obbligatorio: nome.");
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
