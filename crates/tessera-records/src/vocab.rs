//! The closed sets of words the records use (kinds of site, device states, session
//! audiences...), each with its stored form, its labels in English and Italian, and a
//! parser that accepts what an operator types in either language.
//!
//! Every set is made by one macro, so that the stored word, the serde form, the
//! automerge form, the parser and the labels cannot drift apart. The stored form is a
//! lowercase, hyphenated English word (`"in-stock"`) and never changes once shipped:
//! it is in every document already written. Labels may be reworded at will. This is
//! not a translation system: the node translates its own messages; these are only the
//! words of the data.

use std::fmt;

use crate::text::fold;

/// The language of labels, CSV headers and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    It,
}

impl Lang {
    /// `en`/`english`/`inglese` or `it`/`italian`/`italiano`, in any case.
    pub fn parse(word: &str) -> Result<Lang, ParseWordError> {
        match fold(word).as_str() {
            "en" | "english" | "inglese" => Ok(Lang::En),
            "it" | "italian" | "italiano" => Ok(Lang::It),
            _ => Err(ParseWordError {
                what: "language",
                allowed: "en, it".to_string(),
                what_it: "lingua",
                allowed_it: "it, en".to_string(),
            }),
        }
    }
}

/// An operator typed a word that is not in a closed set. The typed word is not
/// repeated: the message names the set and lists the words it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this is not a known {what}; use one of: {allowed}")]
pub struct ParseWordError {
    pub what: &'static str,
    pub allowed: String,
    /// `what` in Italian.
    pub what_it: &'static str,
    /// The Italian words accepted, one per member.
    pub allowed_it: String,
}

impl ParseWordError {
    /// The message in the operator's language.
    pub fn message(&self, lang: Lang) -> String {
        match lang {
            Lang::En => self.to_string(),
            Lang::It => {
                format!("non è un valore valido per {}; usare uno di: {}", self.what_it, self.allowed_it)
            }
        }
    }
}

/// Defines a closed set: `Variant => "stored-word" / "parola-italiana", "English
/// label", "etichetta italiana", ["other accepted words", ...];`. The stored word is
/// also the English word to type; the Italian word is what an Italian operator types
/// (short, hyphenated, no accents needed) and what Italian messages offer.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal, $what_it:literal) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $wire:literal / $it_word:literal, $en:literal, $it:literal, [$($alias:literal),* $(,)?];
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored form: lowercase, hyphenated, never changes.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The word to type: the stored word in English, the Italian word in
            /// Italian. Both parse back to this member.
            pub fn word(self, lang: $crate::vocab::Lang) -> &'static str {
                match (self, lang) {
                    $(
                        ($name::$variant, $crate::vocab::Lang::En) => $wire,
                        ($name::$variant, $crate::vocab::Lang::It) => $it_word,
                    )+
                }
            }

            /// The word to show a person.
            pub fn label(self, lang: $crate::vocab::Lang) -> &'static str {
                match (self, lang) {
                    $(
                        ($name::$variant, $crate::vocab::Lang::En) => $en,
                        ($name::$variant, $crate::vocab::Lang::It) => $it,
                    )+
                }
            }

            /// What an operator typed, in English or Italian, in any case, with or
            /// without accents, hyphens for spaces: the stored word, either label, or a
            /// common synonym.
            pub fn parse(word: &str) -> Result<Self, $crate::vocab::ParseWordError> {
                let folded = $crate::text::fold(word);
                $(
                    if [$wire, $it_word, $en, $it $(, $alias)*]
                        .iter()
                        .any(|candidate| $crate::text::fold(candidate) == folded)
                    {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::vocab::ParseWordError {
                    what: $what,
                    allowed: Self::allowed(),
                    what_it: $what_it,
                    allowed_it: Self::ALL
                        .iter()
                        .map(|member| member.word($crate::vocab::Lang::It))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }

            /// The stored form only (documents and JSON).
            pub fn from_str_exact(word: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|member| member.as_str() == word)
            }

            fn allowed() -> String {
                Self::ALL.iter().map(|member| member.as_str()).collect::<Vec<_>>().join(", ")
            }

            #[cfg(test)]
            fn all_accepted_words(self) -> Vec<&'static str> {
                match self { $($name::$variant => vec![$wire, $it_word, $en, $it $(, $alias)*]),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let word = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Self::from_str_exact(&word).ok_or_else(|| {
                    serde::de::Error::custom(format!("not a known {}; one of: {}", $what, Self::allowed()))
                })
            }
        }

        impl autosurgeon::Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }

        impl autosurgeon::Hydrate for $name {
            fn hydrate_string(word: &str) -> Result<Self, autosurgeon::HydrateError> {
                // The found word is left out: errors never carry document content.
                Self::from_str_exact(word).ok_or_else(|| {
                    autosurgeon::HydrateError::unexpected(concat!("a ", $what), "another word".to_string())
                })
            }
        }

        #[cfg(test)]
        impl $crate::vocab::ClosedSetForTests for $name {
            fn members() -> Vec<Self> { Self::ALL.to_vec() }
            fn words(self) -> Vec<&'static str> { self.all_accepted_words() }
            fn stored(self) -> &'static str { self.as_str() }
            fn parse_word(word: &str) -> Option<Self> { Self::parse(word).ok() }
            fn typed(self, lang: $crate::vocab::Lang) -> &'static str { self.word(lang) }
            fn shown(self, lang: $crate::vocab::Lang) -> &'static str { self.label(lang) }
        }
    };
}
pub(crate) use closed_set;

closed_set! {
    /// What kind of place a site is.
    pub enum SiteKind ("site kind", "tipo di sede") {
        CommunityHub => "community-hub" / "polo-di-comunita", "community hub", "polo di comunità", ["hub", "polo", "oratorio", "doposcuola"];
        HelpDesk => "help-desk" / "sportello", "help desk", "sportello digitale", ["sportello", "desk", "sportello stranieri"];
        School => "school" / "scuola", "school", "scuola", ["istituto"];
        Library => "library" / "biblioteca", "library", "biblioteca", [];
        Other => "other" / "altro", "other", "altro", ["altra"];
    }
}

closed_set! {
    /// Why a person comes to the programme.
    pub enum AttendeeRole ("role", "ruolo") {
        Student => "student" / "studente", "student", "studente", ["studentessa", "alunno", "alunna", "pupil"];
        Parent => "parent" / "genitore", "parent", "genitore", ["madre", "padre", "mother", "father"];
        Teacher => "teacher" / "insegnante", "teacher", "insegnante", ["docente", "maestro", "maestra", "professore", "professoressa"];
        Citizen => "citizen" / "cittadino", "citizen", "cittadino", ["cittadina", "utente", "user"];
    }
}

closed_set! {
    /// Who gave consent to data processing.
    pub enum ConsentBy ("consent giver", "chi ha dato il consenso") {
        /// The attendee themselves (an adult, or a minor old enough by law).
        Attendee => "self" / "interessato", "the attendee", "l'interessato", ["attendee", "interessato", "interessata", "se stesso", "se stessa", "sé", "se"];
        Guardian => "guardian" / "tutore", "parent or guardian", "genitore o tutore", ["tutore", "tutrice", "genitore", "parent"];
    }
}

closed_set! {
    /// What kind of device.
    pub enum DeviceKind ("device kind", "tipo di dispositivo") {
        Pc => "pc" / "pc-fisso", "desktop PC", "PC fisso", ["desktop", "computer"];
        Laptop => "laptop" / "portatile", "laptop", "portatile", ["notebook", "pc portatile", "computer portatile"];
        Tablet => "tablet" / "tablet", "tablet", "tablet", [];
        Hotspot => "hotspot" / "hotspot", "mobile hotspot", "hotspot portatile", ["router", "saponetta", "modem", "chiavetta"];
        Phone => "phone" / "telefono", "phone", "telefono", ["smartphone", "cellulare"];
    }
}

closed_set! {
    /// Where a device came from.
    pub enum DeviceOrigin ("device origin", "provenienza del dispositivo") {
        Donated => "donated" / "donato", "donated", "donato", ["donata", "donazione", "donation"];
        Purchased => "purchased" / "acquistato", "purchased", "acquistato", ["acquistata", "acquisto", "comprato", "bought"];
        Refurbished => "refurbished" / "rigenerato", "refurbished", "rigenerato", ["rigenerata", "ricondizionato", "ricondizionata"];
        PublicAccess => "public-access" / "postazione-pubblica", "public-access station", "postazione pubblica", ["accesso pubblico", "public access", "postazione"];
    }
}

closed_set! {
    /// The physical state of a device.
    pub enum DeviceCondition ("device condition", "stato d'uso del dispositivo") {
        New => "new" / "nuovo", "new", "nuovo", ["nuova"];
        Good => "good" / "buono", "good", "buono", ["buona", "ok"];
        Fair => "fair" / "discreto", "fair", "discreto", ["discreta", "usato", "usata"];
        Poor => "poor" / "scadente", "poor", "scadente", ["mediocre", "rovinato", "rovinata"];
        Broken => "broken" / "guasto", "broken", "guasto", ["guasta", "rotto", "rotta", "non funzionante"];
    }
}

closed_set! {
    /// Where a device is in its life at the programme.
    pub enum DeviceStatus ("device status", "stato del dispositivo") {
        InStock => "in-stock" / "in-magazzino", "in stock", "in magazzino", ["disponibile", "available", "stock", "magazzino"];
        Lent => "lent" / "in-comodato", "on loan", "in comodato", ["prestato", "prestata", "in prestito", "loaned"];
        InRepair => "in-repair" / "in-riparazione", "in repair", "in riparazione", ["repair", "riparazione"];
        Retired => "retired" / "dismesso", "retired", "dismesso", ["dismessa", "ritirato", "ritirata"];
    }
}

closed_set! {
    /// What kind of session.
    pub enum SessionKind ("session kind", "tipo di incontro") {
        Course => "course" / "corso", "course", "corso", ["lezione", "lesson", "training", "formazione"];
        PublicMeeting => "public-meeting" / "incontro-pubblico", "public meeting", "incontro pubblico", ["incontro", "meeting", "evento", "event"];
        HelpDeskAppointment => "help-desk-appointment" / "appuntamento", "help-desk appointment", "appuntamento allo sportello", ["appuntamento", "appointment", "consulenza", "sportello", "help-desk", "desk"];
        SchoolLab => "school-lab" / "laboratorio", "school lab", "laboratorio scolastico", ["laboratorio", "lab", "workshop"];
        Mediation => "mediation" / "mediazione", "language and cultural mediation", "mediazione linguistico-culturale", ["mediazione", "mediazione linguistica", "mediazione culturale"];
    }
}

closed_set! {
    /// The main subject of a session, for reports; the session also keeps free text.
    pub enum Topic ("topic", "tema") {
        Spid => "spid" / "spid", "SPID digital identity", "identità digitale SPID", ["spid"];
        Cie => "cie" / "cie", "electronic ID card (CIE)", "carta d'identità elettronica (CIE)", ["carta d'identità elettronica", "carta di identità elettronica"];
        Email => "email" / "posta-elettronica", "e-mail", "posta elettronica", ["mail", "e mail", "casella di posta"];
        BonusRequest => "bonus-request" / "bonus", "bonus request", "richiesta di bonus", ["bonus", "richiesta bonus"];
        CvWriting => "cv-writing" / "cv", "CV writing", "scrittura del CV", ["cv", "curriculum", "curriculum vitae"];
        Cyberbullying => "cyberbullying" / "cyberbullismo", "cyber-bullying", "cyberbullismo", ["bullismo online"];
        OnlineScams => "online-scams" / "truffe-online", "online scams and safety", "truffe online e sicurezza", ["truffe", "truffe online", "phishing", "sicurezza online"];
        Smartphone => "smartphone" / "smartphone", "using a smartphone", "uso dello smartphone", ["cellulare"];
        SchoolPlatforms => "school-platforms" / "piattaforme-scolastiche", "school platforms (e-register, remote learning)", "piattaforme scolastiche (registro elettronico, DAD)", ["registro elettronico", "dad", "didattica a distanza"];
        ItalianLanguage => "italian-language" / "lingua-italiana", "Italian language", "lingua italiana", ["italiano", "alfabetizzazione", "italian"];
        Other => "other" / "altro", "other", "altro", ["altra"];
    }
}

closed_set! {
    /// Who a session is for.
    pub enum Audience ("audience", "destinatari") {
        Students => "students" / "studenti", "students", "studenti", ["studentesse", "alunni", "ragazzi"];
        Parents => "parents" / "genitori", "parents and families", "genitori e famiglie", ["genitori", "famiglie", "families"];
        Teachers => "teachers" / "insegnanti", "teachers", "insegnanti", ["docenti"];
        Citizens => "citizens" / "cittadini", "citizens", "cittadini", ["cittadinanza", "adulti", "adults"];
        Elderly => "elderly" / "anziani", "older people", "anziani", ["over 65", "senior", "seniors", "terza età"];
        Migrants => "migrants" / "stranieri", "migrants and foreign families", "cittadini stranieri", ["stranieri", "migranti", "foreigners"];
        Mixed => "mixed" / "misto", "mixed", "misto", ["tutti", "everyone", "mista"];
    }
}

closed_set! {
    /// Where a session happens.
    pub enum SessionMode ("session mode", "modalità") {
        InPerson => "in-person" / "in-presenza", "in person", "in presenza", ["presenza", "di persona"];
        Online => "online" / "online", "online", "online", ["a distanza", "remote", "remoto", "da remoto"];
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::En => "en",
            Lang::It => "it",
        })
    }
}

/// Lets the tests walk every closed set the same way.
#[cfg(test)]
pub(crate) trait ClosedSetForTests: Sized + Copy + PartialEq + fmt::Debug {
    fn members() -> Vec<Self>;
    fn words(self) -> Vec<&'static str>;
    fn stored(self) -> &'static str;
    fn parse_word(word: &str) -> Option<Self>;
    fn typed(self, lang: Lang) -> &'static str;
    fn shown(self, lang: Lang) -> &'static str;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use autosurgeon::{hydrate_prop, reconcile_prop};

    /// Every accepted word parses to its own member (no word is claimed by two members
    /// of one set), the stored word is lowercase and hyphenated, and serde and automerge
    /// store the same word.
    pub(crate) fn check_set<T>()
    where
        T: ClosedSetForTests + serde::Serialize + serde::de::DeserializeOwned + autosurgeon::Reconcile,
        T: autosurgeon::Hydrate,
    {
        for member in T::members() {
            let stored = member.stored();
            assert!(
                stored.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "stored word {stored:?} must be lowercase and hyphenated"
            );
            for word in member.words() {
                assert_eq!(T::parse_word(word), Some(member), "{word:?}");
                assert_eq!(T::parse_word(&word.to_uppercase()), Some(member), "{word:?} upper case");
            }
            let json = serde_json::to_string(&member).unwrap();
            assert_eq!(json, format!("\"{stored}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), member);

            let mut doc = automerge::AutoCommit::new();
            reconcile_prop(&mut doc, automerge::ROOT, "v", member).unwrap();
            let (value, _) = automerge::ReadDoc::get(&doc, automerge::ROOT, "v").unwrap().unwrap();
            assert_eq!(value.into_string().unwrap(), stored);
            let back: T = hydrate_prop(&doc, automerge::ROOT, "v").unwrap();
            assert_eq!(back, member);
        }
        assert_eq!(T::parse_word("zzz not a word"), None);
        assert!(serde_json::from_str::<T>("\"zzz\"").is_err());
    }

    #[test]
    fn every_closed_set_parses_its_words_and_stores_one_form() {
        check_set::<SiteKind>();
        check_set::<AttendeeRole>();
        check_set::<ConsentBy>();
        check_set::<DeviceKind>();
        check_set::<DeviceOrigin>();
        check_set::<DeviceCondition>();
        check_set::<DeviceStatus>();
        check_set::<SessionKind>();
        check_set::<Topic>();
        check_set::<Audience>();
        check_set::<SessionMode>();
    }

    /// Every member parses from its Italian and its English word and from both its
    /// labels, and has a label in both languages; the Italian word is typable (lowercase,
    /// hyphenated, no accents) and is not another member's English word.
    pub(crate) fn check_words<T: ClosedSetForTests>() {
        for member in T::members() {
            for lang in [Lang::En, Lang::It] {
                let word = member.typed(lang);
                assert_eq!(T::parse_word(word), Some(member), "{word:?} ({lang})");
                let label = member.shown(lang);
                assert!(!label.trim().is_empty(), "{member:?} has no {lang} label");
                assert_eq!(T::parse_word(label), Some(member), "label {label:?} ({lang})");
            }
            let it = member.typed(Lang::It);
            assert!(
                it.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "Italian word {it:?} must be lowercase, hyphenated, without accents"
            );
        }
        let err = T::parse_word("zzz not a word");
        assert_eq!(err, None);
    }

    #[test]
    fn every_value_has_an_italian_and_an_english_word_and_label() {
        check_words::<SiteKind>();
        check_words::<AttendeeRole>();
        check_words::<ConsentBy>();
        check_words::<DeviceKind>();
        check_words::<DeviceOrigin>();
        check_words::<DeviceCondition>();
        check_words::<DeviceStatus>();
        check_words::<SessionKind>();
        check_words::<Topic>();
        check_words::<Audience>();
        check_words::<SessionMode>();
        check_words::<crate::report::GroupBy>();
        assert_eq!(Topic::parse("piattaforme-scolastiche"), Ok(Topic::SchoolPlatforms));
        assert_eq!(DeviceStatus::parse("in-comodato"), Ok(DeviceStatus::Lent));
        assert_eq!(SessionKind::parse("incontro-pubblico"), Ok(SessionKind::PublicMeeting));
    }

    #[test]
    fn parse_accepts_italian_and_english_words() {
        assert_eq!(DeviceStatus::parse("In magazzino"), Ok(DeviceStatus::InStock));
        assert_eq!(DeviceStatus::parse("in_stock"), Ok(DeviceStatus::InStock));
        assert_eq!(SessionMode::parse("IN PRESENZA"), Ok(SessionMode::InPerson));
        assert_eq!(SiteKind::parse("polo di comunita"), Ok(SiteKind::CommunityHub));
        assert_eq!(DeviceKind::parse("saponetta"), Ok(DeviceKind::Hotspot));
        assert_eq!(Topic::parse("Carta d’identità elettronica"), Ok(Topic::Cie));
        assert_eq!(SessionKind::Mediation.label(Lang::It), "mediazione linguistico-culturale");
        assert_eq!(Lang::parse("Italiano"), Ok(Lang::It));
    }

    #[test]
    fn parse_error_lists_the_words_but_not_the_input() {
        let err = DeviceKind::parse("Giulia Esempio").unwrap_err();
        let message = err.to_string();
        assert_eq!(
            message,
            "this is not a known device kind; use one of: pc, laptop, tablet, hotspot, phone"
        );
        assert!(!message.contains("Giulia") && !format!("{err:?}").contains("Giulia"));
        assert_eq!(message, err.message(Lang::En));
        assert_eq!(
            err.message(Lang::It),
            "non è un valore valido per tipo di dispositivo; usare uno di: pc-fisso, portatile, tablet, \
             hotspot, telefono"
        );
        // Every word the Italian message offers is accepted.
        for offered in ["pc-fisso", "portatile", "tablet", "hotspot", "telefono"] {
            assert!(DeviceKind::parse(offered).is_ok(), "{offered}");
        }
        assert_eq!(SessionKind::parse("sportello"), Ok(SessionKind::HelpDeskAppointment));
    }
}
