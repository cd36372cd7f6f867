//! Messages in both languages where no [`Ui`] is at hand, and the words of other
//! crates' errors in Italian.
//!
//! Code that has a [`Ui`] says `ui.t(en, it)` (or [`tr!`](crate::tr) for formatted
//! text). Library code that does not know the operator's language (opening a node,
//! reading a bundle, the materializer) returns a [`Said`]: an error that carries both
//! texts; [`crate::cli::error_text`] picks the operator's. Errors of the crates below
//! the node (store, network, control socket, key files) are put in Italian by
//! [`foreign`], by their type, so those crates stay free of any language.
//!
//! Texts the node itself writes into records (why a loan was closed by a
//! resolution, why a session was cancelled when no reason was given) are stored as
//! they always were, and shown in the reader's language by [`stored_text`]: the
//! stored form is what older releases and other hubs read, and what `audit log`
//! shows; the display is translated, whichever language wrote it.

use std::error::Error as StdError;
use std::fmt;

use tessera_records::vocab::Lang;

use crate::ui::Ui;

/// An error in English and Italian, with the error it wraps, if any.
pub struct Said {
    en: String,
    it: String,
    source: Option<anyhow::Error>,
}

impl Said {
    pub fn new(en: impl Into<String>, it: impl Into<String>) -> Said {
        Said { en: en.into(), it: it.into(), source: None }
    }

    /// The text in `lang`.
    pub fn text(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::It => &self.it,
        }
    }
}

impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.en)
    }
}

impl fmt::Debug for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Said").field("en", &self.en).field("source", &self.source).finish_non_exhaustive()
    }
}

impl StdError for Said {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_ref().map(|e| {
            let inner: &(dyn StdError + Send + Sync + 'static) = e.as_ref();
            inner as &(dyn StdError + 'static)
        })
    }
}

/// `said!("English {x}", "italiano {x}")`: a [`Said`] error, both texts formatted.
#[macro_export]
macro_rules! said {
    ($en:literal, $it:literal $(,)?) => {
        $crate::msg::Said::new(format!($en), format!($it))
    };
}

/// `tr!(ui, "English {x}", "italiano {x}")`: the formatted text in the operator's
/// language (only that one is formatted).
#[macro_export]
macro_rules! tr {
    ($ui:expr, $en:literal, $it:literal $(,)?) => {
        match $ui.lang {
            tessera_records::vocab::Lang::En => format!($en),
            tessera_records::vocab::Lang::It => format!($it),
        }
    };
}

/// `.said(en, it)` and `.with_said(|| (en, it))`: `context` in both languages.
pub trait SaidContext<T> {
    fn said(self, en: &str, it: &str) -> anyhow::Result<T>;
    fn with_said(self, texts: impl FnOnce() -> (String, String)) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> SaidContext<T> for Result<T, E> {
    fn said(self, en: &str, it: &str) -> anyhow::Result<T> {
        self.map_err(|e| Said { en: en.into(), it: it.into(), source: Some(e.into()) }.into())
    }

    fn with_said(self, texts: impl FnOnce() -> (String, String)) -> anyhow::Result<T> {
        self.map_err(|e| {
            let (en, it) = texts();
            Said { en, it, source: Some(e.into()) }.into()
        })
    }
}

impl<T> SaidContext<T> for Option<T> {
    fn said(self, en: &str, it: &str) -> anyhow::Result<T> {
        self.ok_or_else(|| Said::new(en, it).into())
    }

    fn with_said(self, texts: impl FnOnce() -> (String, String)) -> anyhow::Result<T> {
        self.ok_or_else(|| {
            let (en, it) = texts();
            Said::new(en, it).into()
        })
    }
}

/// One link of an error chain in the operator's language: a [`Said`] in theirs,
/// the errors of the crates below in Italian when asked ([`foreign`]), anything else
/// as it says itself.
pub fn cause_text(cause: &(dyn StdError + 'static), ui: &Ui) -> String {
    if let Some(said) = cause.downcast_ref::<Said>() {
        return said.text(ui.lang).to_string();
    }
    if ui.lang == Lang::It {
        if let Some(text) = foreign(cause) {
            return text;
        }
    }
    cause.to_string()
}

pub use tessera_help::io_kind_it;

/// "cannot read FILE" in both languages, for [`SaidContext::with_said`].
pub fn cannot(action: &str, path: &std::path::Path) -> (String, String) {
    (
        format!("cannot {action} {}", path.display()),
        format!("non riesco a {} {}", action_it(action), path.display()),
    )
}

fn action_it(action: &str) -> &str {
    match action {
        "read" => "leggere",
        "write" => "scrivere",
        "create" => "creare",
        "open" => "aprire",
        "remove" => "togliere",
        "rename" => "rinominare",
        "sync" => "salvare su disco",
        "lock" => "bloccare",
        "list" => "elencare",
        "open the people database in" => "aprire l'archivio delle persone in",
        other => other,
    }
}

/// The Italian of the errors the crates below the node return to it, by type; `None`
/// for those left as they are (internal faults a developer reads, in English).
pub fn foreign(cause: &(dyn StdError + 'static)) -> Option<String> {
    use tessera_control::ControlError;
    use tessera_net::NetError;
    use tessera_store::{KeyFileError, StoreError};
    if let Some(e) = cause.downcast_ref::<std::io::Error>() {
        return io_kind_it(e.kind()).map(str::to_string);
    }
    if let Some(e) = cause.downcast_ref::<StoreError>() {
        return Some(match e {
            StoreError::InUse { dir } => format!(
                "i dati in {} sono in uso da un altro programma Tessera; fermalo prima (un solo \
                 programma alla volta può aprirli)",
                dir.display()
            ),
            StoreError::NotInitialized { dir } => {
                format!("nessun archivio Tessera in {}: esegui prima `tessera init`", dir.display())
            }
            StoreError::WrongNetwork { dir, expected, found } => {
                format!(
                    "i dati in {} appartengono alla rete {found}, non alla rete {expected}",
                    dir.display()
                )
            }
            StoreError::BadNetworkFile { path } => {
                format!("{} è danneggiato: dovrebbe contenere l'id della rete in esadecimale", path.display())
            }
            StoreError::Rejected { index, error } => format!(
                "la voce {index} del gruppo è stata rifiutata, nulla del gruppo è stato salvato: {error}"
            ),
            StoreError::SigningBlocked(why) => {
                format!("questo dispositivo non può firmare nuove modifiche: {}", signing_blocked_it(why))
            }
            StoreError::Random(_) => "la sorgente casuale del sistema operativo non ha funzionato".into(),
            StoreError::Io { action, path, .. } => {
                format!("non riesco a {} {}", action_it(action), path.display())
            }
            _ => return None,
        });
    }
    if let Some(e) = cause.downcast_ref::<KeyFileError>() {
        return Some(match e {
            KeyFileError::Io { action, path, .. } => {
                format!("non riesco a {} il file di chiave {}", action_it(action), path.display())
            }
            KeyFileError::Exists { path } => format!(
                "il file di chiave {} esiste già; non sovrascrivo una chiave segreta",
                path.display()
            ),
            KeyFileError::TooOpen { path, mode } => format!(
                "il file di chiave {} è accessibile ad altri utenti (permessi {mode:o}); esegui `chmod 600 {}`",
                path.display(),
                path.display()
            ),
            KeyFileError::DirectoryTooOpen { path, dir, mode } => format!(
                "il file di chiave {} è in una cartella in cui altri utenti possono scrivere (permessi \
                 {mode:o}), e potrebbero sostituire la chiave; esegui `chmod 700 {}`",
                path.display(),
                dir.display()
            ),
            KeyFileError::Malformed { path, .. } => {
                format!("{} non è un file di chiave segreta di Tessera", path.display())
            }
            KeyFileError::WrongRole { path, expected, found } => format!(
                "il file di chiave {} contiene una chiave «{found}», serve una chiave «{expected}»",
                path.display()
            ),
            KeyFileError::NeedsPassphrase { path } => {
                format!("il file di chiave {} è protetto da una frase segreta, e non ne è stata data nessuna", path.display())
            }
            KeyFileError::WrongPassphrase { path } => format!(
                "la frase segreta non apre il file di chiave {} (o il file è stato alterato)",
                path.display()
            ),
            KeyFileError::PassphraseTooShort { min } => {
                format!("una frase segreta deve avere almeno {min} caratteri")
            }
            KeyFileError::Random => "la sorgente casuale del sistema operativo non ha funzionato".into(),
        });
    }
    if let Some(e) = cause.downcast_ref::<tessera_store::trust_file::TrustFileError>() {
        use tessera_store::trust_file::TrustFileError as T;
        return Some(match e {
            T::Io { action, path, .. } => format!("non riesco a {} {}", action_it(action), path.display()),
            T::TooLarge { path, len } => {
                format!("{} è troppo grande per un file di fiducia ({len} byte)", path.display())
            }
            // What `parse_network` says of a typed network id.
            T::Malformed(why) => match why.split_once("` is not a") {
                Some((typed, rest)) if rest.contains("network id") => {
                    let typed = typed.trim_start_matches('`');
                    format!("`{typed}` non è un id di rete valido (64 cifre esadecimali)")
                }
                _ => "non è un file di fiducia di Tessera valido".into(),
            },
        });
    }
    if let Some(e) = cause.downcast_ref::<tessera_log::VerifyError>() {
        return Some(verify_error_it(e));
    }
    if let Some(e) = cause.downcast_ref::<tessera_log::BundleError>() {
        use tessera_log::BundleError as B;
        return Some(match e {
            B::NotABundle { .. } => "non è un pacchetto Tessera: il file non inizia con \"TSBUNDLE\"".into(),
            B::UnsupportedVersion { found, supported } => format!(
                "questo pacchetto ha la versione di formato {found}; questa versione di Tessera legge la \
                 {supported} (l'ha scritto un Tessera più recente)"
            ),
            B::Header { field, start, end, .. } => {
                format!("intestazione del pacchetto, {field} ai byte {start}..{end}: non leggibile")
            }
            B::Entry { index, start, end, .. } => {
                format!("voce {index} ai byte {start}..{end}: non leggibile")
            }
            B::UnknownFrame { offset, entries_read, .. } => format!(
                "byte {offset}, dopo {entries_read} voci: contenuto sconosciuto: il file è danneggiato"
            ),
            B::TooManyEntries { offset, max } => {
                format!("byte {offset}: il pacchetto contiene più di {max} voci, il limite")
            }
            B::Truncated { offset, entries_read, .. } => format!(
                "il pacchetto finisce al byte {offset}, dopo {entries_read} voci complete: il file è \
                 incompleto (una copia interrotta?) e non ha una fine valida"
            ),
            B::CountMismatch { offset, declared, read } => format!(
                "la fine al byte {offset} dichiara {declared} voci ma il pacchetto ne contiene {read}: \
                 sono state aggiunte o tolte voci"
            ),
            B::HashMismatch { hash_at } => format!(
                "il contenuto del pacchetto non corrisponde all'impronta al byte {hash_at}: il file è stato \
                 alterato o danneggiato"
            ),
            B::BadSignature { exporter, offset } => format!(
                "la firma al byte {offset} del dispositivo {exporter} non è valida: il pacchetto è stato \
                 alterato o falsificato, o appartiene a un'altra rete"
            ),
            B::TrailingBytes { offset } => {
                format!("byte {offset}: dati dopo la fine di un pacchetto completo (byte aggiunti al file)")
            }
            B::Io { offset, .. } => format!("non riesco a leggere il pacchetto al byte {offset}"),
        });
    }
    if let Some(e) = cause.downcast_ref::<NetError>() {
        return Some(match e {
            NetError::Setup(why) => format!("non riesco a preparare la rete: {why}"),
            NetError::Connect { addr, reason } => format!("non riesco a collegarmi a {addr}: {reason}"),
            NetError::Connection(why) => format!("collegamento perso: {why}"),
            NetError::Write(why) => format!("errore di trasmissione: {why}"),
            NetError::Read(why) => format!("errore di trasmissione: {why}"),
            NetError::FrameTooLarge { len, max } => {
                format!("l'altro nodo ha inviato un messaggio di {len} byte, il limite è {max}")
            }
            NetError::BadFrame(why) => format!("l'altro nodo ha inviato un messaggio malformato: {why}"),
            NetError::PeerRefused(why) => format!("l'altro nodo è stato rifiutato: {why}"),
            NetError::RefusedByPeer(why) => format!("l'altro nodo ha rifiutato questo nodo: {why}"),
            NetError::HandshakeTimeout(limit) => format!(
                "il collegamento non si è stabilito entro {} s: l'altro nodo non risponde (è acceso? \
                 l'indirizzo e la porta sono giusti?)",
                limit.as_secs()
            ),
            NetError::Busy { addr } => format!(
                "{addr} è troppo occupato per accettare un nuovo collegamento adesso: riprova tra un minuto"
            ),
            NetError::ProtocolVersion { addr } => format!(
                "{addr} usa un'altra versione del protocollo Tessera (questo nodo usa tessera/3, \
                 tessera/2 e tessera/1): installa la stessa versione di Tessera su entrambi"
            ),
            NetError::MessageTooLarge { len, max } => {
                format!("l'altro nodo ha annunciato un messaggio compresso di {len} byte, il limite è {max}")
            }
        });
    }
    if let Some(e) = cause.downcast_ref::<ControlError>() {
        return Some(match e {
            ControlError::NotAnswering { socket, seconds } => {
                format!("il servizio su {} non risponde da {seconds} s", socket.display())
            }
            ControlError::Refused { socket, reason } => {
                format!("il servizio su {} ha rifiutato la richiesta: {reason}", socket.display())
            }
            ControlError::Closed { socket } => {
                format!("il servizio su {} ha chiuso il collegamento prima di rispondere", socket.display())
            }
            ControlError::Version { socket, theirs, ours } => format!(
                "il servizio su {} usa la versione {theirs} del protocollo di controllo, questo \
                 programma la {ours}: usa la stessa versione di Tessera per entrambi",
                socket.display()
            ),
            _ => return None,
        });
    }
    None
}

/// Why typed text is not a record id, in the operator's language.
pub fn id_error_text(e: &tessera_records::kind::IdError, ui: &Ui) -> String {
    use tessera_records::kind::IdError;
    match ui.lang {
        Lang::En => e.to_string(),
        Lang::It => match e {
            IdError::TooShort { min } => format!(
                "un codice di scheda è una lettera (S, A, D, L o E) seguita da almeno {min} cifre \
                 esadecimali, per esempio A3f9c2b1d"
            ),
            IdError::NotHex => "un codice di scheda può contenere solo le cifre 0-9 e le lettere a-f dopo \
                                la prima lettera"
                .into(),
            IdError::TooLong => {
                "un codice di scheda ha al massimo 32 cifre esadecimali (o una lettera e 30)".into()
            }
            IdError::UnknownKind => {
                "un codice di scheda inizia con S (sede), A (iscritto), D (dispositivo), \
                                     L (prestito) o E (incontro)"
                    .into()
            }
        },
    }
}

/// Why an envelope or trust entry was refused, in Italian.
pub fn verify_error_it(e: &tessera_log::VerifyError) -> String {
    use tessera_log::VerifyError as V;
    match e {
        V::Decode(_) => "dati malformati".into(),
        V::ForeignNetwork { expected, found } => {
            format!("questa voce appartiene alla rete {found}, non a questa rete ({expected})")
        }
        V::BadSignature { device, seq } => format!(
            "busta {seq} del dispositivo {device}: la firma non corrisponde, quindi è stata alterata o falsificata"
        ),
        V::BadTrustSignature { issuer, .. } => format!(
            "certificato o revoca firmato da {issuer}: la firma non corrisponde, quindi è stato alterato o falsificato"
        ),
        V::SeqGap { device, expected, got } => format!(
            "la busta {got} del dispositivo {device} è arrivata prima della busta {expected}: una lacuna nella \
             sua storia (mancano buste, non per forza manomesse)"
        ),
        V::WrongPrev { device, seq, prev_seq } => format!(
            "la busta {seq} del dispositivo {device} non segue la busta {prev_seq} presente (l'impronta \
             precedente è diversa): il dispositivo ha firmato due storie diverse"
        ),
        V::UnknownAuthor { device, seq } => format!(
            "il dispositivo {device} non è certificato in questa rete (autore sconosciuto della busta {seq})"
        ),
        V::UnknownPartner { partner } => {
            format!("l'ente {partner} non è certificato dal coordinatore di questa rete")
        }
        V::UnauthorizedIssuer { issuer, device } => format!(
            "{issuer} non può revocare il dispositivo {device}: può farlo solo la chiave della rete o l'ente \
             che l'ha certificato"
        ),
        V::TooManyWaiting { max, .. } => format!(
            "{max} certificati o revoche aspettano già il certificato da cui dipendono; questo è rifiutato"
        ),
        V::Revoked { device, seq, last_valid } => format!(
            "il dispositivo {device} è stato revocato dopo la sua busta {last_valid}; la busta {seq} non è accettata"
        ),
        V::PartnerRevoked { partner, device, seq, last_valid } => format!(
            "l'ente {partner} del dispositivo {device} è stato revocato, valido fino alla busta {last_valid} del \
             dispositivo; la busta {seq} non è accettata"
        ),
        V::CommitmentMismatch { device, seq, index } => format!(
            "busta {seq} del dispositivo {device}: la modifica {index} non corrisponde al suo impegno firmato \
             (il contenuto è stato alterato o scambiato)"
        ),
    }
}

/// What a trust entry is, in the operator's language.
pub fn statement_text(statement: &tessera_log::TrustStatement, lang: Lang) -> &'static str {
    use tessera_log::TrustStatement as T;
    match lang {
        Lang::En => statement.describe(),
        Lang::It => match statement {
            T::Partner(_) => "certificato di un ente",
            T::Device(_) => "certificato di un dispositivo",
            T::RevokeDevice(_) => "revoca di un dispositivo",
            T::RevokePartner(_) => "revoca di un ente",
            T::ErasePerson(_) => "cancellazione di una persona da parte della rete",
        },
    }
}

/// A refusal in the operator's language.
pub fn verify_error_text(e: &tessera_log::VerifyError, lang: Lang) -> String {
    match lang {
        Lang::En => e.to_string(),
        Lang::It => verify_error_it(e),
    }
}

fn signing_blocked_it(why: &tessera_store::SigningBlocked) -> String {
    use tessera_store::SigningBlocked as B;
    match why {
        B::OwnHoles { seqs } => {
            let list: Vec<String> = seqs.iter().map(|s| s.0.to_string()).collect();
            format!("le modifiche {} di questo dispositivo mancano dal registro danneggiato", list.join(", "))
        }
        B::OwnEnvelopeDamaged { seq } => {
            format!("la modifica {} di questo dispositivo è danneggiata nel registro", seq.0)
        }
        B::UnknownDamageAfterOwnHead { at } => {
            format!("una registrazione illeggibile in {at} potrebbe essere una modifica più recente di questo dispositivo")
        }
        B::SignedBeyondLog { seq } => format!(
            "questo dispositivo ha firmato modifiche fino alla {}, e il registro finisce prima (la sua fine \
             era danneggiata)",
            seq.0
        ),
    }
}

/// Why this device may not sign, in the operator's language.
pub fn signing_blocked_text(why: &tessera_store::SigningBlocked, ui: &Ui) -> String {
    match ui.lang {
        Lang::En => why.to_string(),
        Lang::It => signing_blocked_it(why),
    }
}

/// A text the node wrote into a record, in the reader's language (see the module's
/// words). Text an operator typed is shown as typed.
pub fn stored_text(text: &str, ui: &Ui) -> String {
    const LENT_TWICE_EN: &str = ": the device is with another borrower";
    const LENT_TWICE_IT: &str = ": il dispositivo è presso un'altra persona";
    let (closing_en, closing_it) = ("closed resolving ", "chiuso risolvendo ");
    let (cancel_en, cancel_it) = ("cancelled on ", "annullato il ");
    let pick = |en: String, it: String| match ui.lang {
        Lang::En => en,
        Lang::It => it,
    };
    if let Some(rest) = text.strip_prefix(closing_en).or_else(|| text.strip_prefix(closing_it)) {
        if let Some(id) = rest.strip_suffix(LENT_TWICE_EN).or_else(|| rest.strip_suffix(LENT_TWICE_IT)) {
            return pick(
                format!("{closing_en}{id}{LENT_TWICE_EN}"),
                format!("{closing_it}{id}{LENT_TWICE_IT}"),
            );
        }
        if rest == "a device lent twice" || rest == "un dispositivo prestato due volte" {
            return pick(
                format!("{closing_en}a device lent twice"),
                format!("{closing_it}un dispositivo prestato due volte"),
            );
        }
        if !rest.contains(' ') {
            return pick(format!("{closing_en}{rest}"), format!("{closing_it}{rest}"));
        }
    }
    // A void loan's reason (`conflicts::void_loan`): the operator's words after it.
    if let Some(why) = text.strip_prefix("void: ") {
        return pick(format!("void: {why}"), format!("annullato: {why}"));
    }
    if let Some(day) = text.strip_prefix(cancel_en).or_else(|| text.strip_prefix(cancel_it)) {
        if tessera_records::model::parse_date(day).is_some() {
            return pick(format!("{cancel_en}{day}"), format!("{cancel_it}{day}"));
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IT: Ui = Ui { lang: Lang::It };
    const EN: Ui = Ui { lang: Lang::En };

    #[test]
    fn said_errors_read_in_the_operator_language_along_the_chain() {
        let inner: anyhow::Result<()> = Err(std::io::Error::from(std::io::ErrorKind::NotFound).into());
        let error = inner.said("cannot read node.json", "non riesco a leggere node.json").unwrap_err();
        let it: Vec<String> = error.chain().map(|c| cause_text(c, &IT)).collect();
        assert_eq!(it, ["non riesco a leggere node.json", "file o cartella inesistente"]);
        let en: Vec<String> = error.chain().map(|c| cause_text(c, &EN)).collect();
        assert_eq!(en[0], "cannot read node.json");
        let none: Option<u8> = None;
        let x = 3;
        let error = none.with_said(|| (format!("no {x}"), format!("nessun {x}"))).unwrap_err();
        assert_eq!(cause_text(error.chain().next().unwrap(), &IT), "nessun 3");
        let error: anyhow::Error = said!("a {x}", "b {x}").into();
        assert_eq!(cause_text(error.chain().next().unwrap(), &IT), "b 3");
        assert_eq!(error.to_string(), "a 3");
    }

    #[test]
    fn stored_texts_are_shown_in_the_reader_language() {
        let en = "closed resolving lent-1a2b3c4d: the device is with another borrower";
        let it = "chiuso risolvendo lent-1a2b3c4d: il dispositivo è presso un'altra persona";
        assert_eq!(stored_text(en, &IT), it);
        assert_eq!(stored_text(en, &EN), en);
        assert_eq!(stored_text(it, &EN), en);
        assert_eq!(stored_text("closed resolving lent-1a2b3c4d", &IT), "chiuso risolvendo lent-1a2b3c4d");
        assert_eq!(stored_text("annullato il 2026-11-22", &EN), "cancelled on 2026-11-22");
        assert_eq!(stored_text("cancelled on 2026-11-22", &IT), "annullato il 2026-11-22");
        assert_eq!(stored_text("prenotato due volte", &EN), "prenotato due volte");
        assert_eq!(stored_text("cancelled on Monday", &IT), "cancelled on Monday");
        assert_eq!(stored_text("void: prestato due volte", &IT), "annullato: prestato due volte");
        assert_eq!(stored_text("void: lent twice", &EN), "void: lent twice");
    }
}
