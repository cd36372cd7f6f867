//! `--help` in Italian: the clap command tree of [`Cli`](crate::cli::Cli) (its English
//! help comes from the doc comments) with every `about`, argument help, value name and
//! heading replaced from the tables below, and clap's own errors said in Italian
//! ([`ItalianErrors`]).
//!
//! Keys: a command by its path of subcommand names (`""` for `tessera`,
//! `"attendee add"`); an argument by its command's path and its id (the field name:
//! `birth_year`). An argument is looked up at its command, then at each parent
//! (`"site"` serves the fields `site add` and `site edit` share), then at `""`. A unit
//! test walks the whole tree and fails on any command or visible argument without
//! Italian.

use clap::Command;
pub use tessera_help::ItalianErrors;
use tessera_help::Tables;

/// `about` of every command, by path.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "",
        "Tessera: le schede di un polo di inclusione digitale o di uno sportello, anche senza rete.\n\n\
         Ogni modifica è salvata subito su questo computer e firmata da lui; i poli si scambiano le \
         modifiche con `export`/`import` (un file su una chiavetta USB) quando si incontrano, o in rete \
         con `sync` e `serve`.",
    ),
    ("init", "Crea questo nodo: la chiave del dispositivo, l'archivio e la sua sede."),
    (
        "quickstart",
        "Prova Tessera: un nodo con una sede di prova e schede inventate, poi cosa provare.",
    ),
    ("status", "Cosa contiene questo nodo: dimensione dell'archivio, la sua storia, i nodi collegati."),
    ("site", "Sedi (poli di comunità, sportelli, scuole, biblioteche)."),
    ("site add", "Registra una sede."),
    ("site edit", "Cambia alcuni campi di una sede."),
    ("site show", "Mostra una sede."),
    ("site list", "Elenca le sedi."),
    ("attendee", "Le persone iscritte al programma: studenti, genitori, insegnanti, cittadini."),
    ("attendee add", "Iscrivi una persona."),
    ("attendee edit", "Cambia alcuni campi di una persona iscritta."),
    ("attendee show", "Mostra la scheda di una persona iscritta."),
    (
        "attendee erase",
        "Cancella una persona (GDPR art. 17, o un'iscrizione fatta per errore): i suoi dati e la sua \
         storia sono tolti da questo polo e da ogni polo e relay con cui si sincronizza; restano il \
         codice, «cancellato il DATA» e i conteggi anonimi.",
    ),
    ("attendee list", "Elenca le persone iscritte."),
    ("device", "PC, tablet, hotspot e telefoni dell'inventario."),
    ("device add", "Registra un dispositivo."),
    ("device edit", "Cambia alcuni campi di un dispositivo."),
    ("device show", "Mostra un dispositivo e i suoi prestiti aperti."),
    ("device list", "Elenca i dispositivi."),
    ("loan", "Prestiti gratuiti di dispositivi (comodato d'uso)."),
    (
        "loan add",
        "Presta un dispositivo: registra il comodato e segna il dispositivo come prestato, in una sola modifica.",
    ),
    ("loan return", "Registra la restituzione di un dispositivo."),
    (
        "loan void",
        "Annulla un comodato registrato per sbaglio (due volte, dispositivo o persona sbagliati): resta \
         registrato, chiuso, non conta in nessun dato; il dispositivo torna disponibile.",
    ),
    (
        "attendee import",
        "Iscrive le persone di un foglio di calcolo (CSV, `;` o `,`): ogni riga è controllata prima, e non \
         si salva nulla se una riga ha un errore.",
    ),
    (
        "admin protect-key",
        "Protegge con una frase segreta un file di chiave della rete o di un ente già esistente (le chiavi \
         che `init` crea in DATA/keys su un solo computer, o una chiave fatta senza frase).",
    ),
    ("loan edit", "Cambia la data di restituzione prevista o la firma del comodato."),
    ("loan show", "Mostra un prestito."),
    ("loan list", "Elenca i prestiti."),
    ("session", "Corsi, incontri pubblici, appuntamenti allo sportello, laboratori scolastici, mediazioni."),
    ("session add", "Registra un incontro."),
    ("session edit", "Cambia alcuni campi di un incontro."),
    ("session attend", "Registra che una persona iscritta è venuta (o no, con --absent)."),
    (
        "session cancel",
        "Annulla un incontro o un appuntamento (inserito due volte, o non svolto): resta registrato, con \
         il suo motivo, ma non conta nei totali. `--undo` toglie l'annullamento.",
    ),
    ("session show", "Mostra un incontro."),
    ("session list", "Elenca gli incontri."),
    ("conflicts", "Problemi trovati unendo le modifiche di altri poli, e come risolverli."),
    ("conflicts list", "Mostra i conflitti trovati unendo le modifiche di altri poli."),
    (
        "conflicts resolve",
        "Risolvi un conflitto; la soluzione è una modifica firmata che viaggia come tutte le altre.",
    ),
    ("report", "Numeri aggregati per i finanziatori (nessun dato personale)."),
    ("export", "Scrivi la storia di questo nodo in un pacchetto (per un altro polo o un revisore)."),
    ("import", "Leggi un pacchetto o un file di fiducia fatto altrove."),
    ("sync", "Sincronizza una volta con un altro polo o un relay, poi esci."),
    (
        "serve",
        "Resta in servizio: accetta altri nodi, resta sincronizzato con i nodi e i relay indicati.",
    ),
    (
        "repair",
        "Dopo un danno al disco: conferma che ogni nodo e relay è stato sincronizzato, così questo nodo \
         può firmare di nuovo anche se nel suo registro resta una registrazione illeggibile.",
    ),
    (
        "keys",
        "Chiavi di lettura: dai le chiavi di questo polo a un altro dispositivo (un revisore, lo sportello \
         di un altro ente), così legge le persone iscritte dal tuo ente.",
    ),
    (
        "keys grant",
        "Dai le chiavi di lettura di questo polo (quelle della rete e del tuo ente) al dispositivo con \
         questa chiave (stampata da `tessera init` su quel computer), che così legge le persone iscritte \
         dal tuo ente. Un dispositivo certificato (lo sportello di un altro ente) riceve anche le chiavi \
         dei periodi successivi finché non è revocato; uno non certificato (il computer di un revisore) \
         tiene ciò che ha ricevuto e va autorizzato di nuovo dopo una revoca. Le chiavi partono con la \
         prossima sincronizzazione o esportazione.",
    ),
    ("admin", "Strumenti dell'amministratore dell'ente: chiavi della rete e degli enti, certificati."),
    ("admin new-network", "Crea la chiave della rete (il coordinatore del programma, una volta sola)."),
    ("admin new-partner", "Crea la chiave di un ente e il suo certificato, firmato con la chiave della rete."),
    (
        "admin certify-device",
        "Certifica la chiave di dispositivo di un nodo (stampata da `tessera init --network ...`).",
    ),
    (
        "admin revoke-device",
        "Revoca un dispositivo: le sue modifiche dopo il numero N non sono più accettate.",
    ),
    (
        "audit",
        "Strumenti del revisore: verifica un pacchetto o un archivio, confronta due copie (non serve un nodo).",
    ),
    (
        "audit verify",
        "Controlla ogni busta e la storia di ogni dispositivo in un pacchetto o in un archivio. Codice di \
         uscita: 0 tutto verificato e completo, 1 un errore o una biforcazione, 2 solo lacune o byte \
         illeggibili (danneggiati) nel registro.",
    ),
    ("audit compare", "Cosa manca a ciascuna di due copie, per dispositivo, e ogni biforcazione tra loro."),
    (
        "audit log",
        "Chi ha cambiato cosa e quando, campo per campo (solo codici, salvo richiesta diversa).",
    ),
    ("help", "Mostra questo aiuto o l'aiuto dei comandi indicati."),
    (
        "operator",
        "Gli operatori del polo: chi ci lavora, perché ogni modifica registri chi l'ha fatta. Quando \
         l'elenco contiene un nome, indica chi sei con $TESSERA_OPERATOR (la pagina lo chiede).",
    ),
    ("operator add", "Aggiungi un operatore (la pagina poi chiede chi sta lavorando)."),
    ("operator list", "Elenca gli operatori."),
    ("operator remove", "Togli un operatore (il suo nome resta nella storia di ciò che ha fatto)."),
];

/// Help of every argument: (command path, argument id, help, value name or "").
pub const ARGS: &[(&str, &str, &str, &str)] = &[
    // Everywhere.
    (
        "",
        "data",
        "Cartella dei dati del nodo (predefinita: $TESSERA_DATA, altrimenti ~/.local/share/tessera).",
        "CARTELLA",
    ),
    ("operator", "name", "Il nome, come deve apparire nella storia (es. \"Anna Rossi\").", "NOME"),
    (
        "operator add",
        "password",
        "Dagli una password, chiesta nel terminale (o da $TESSERA_OPERATOR_PASSWORD); la pagina la chiede \
         quando è raggiungibile da altri computer.",
        "",
    ),
    ("", "lang", "Lingua di etichette e messaggi: `it` o `en` (predefinita: da $LANG).", "LINGUA"),
    ("", "help", "Mostra l'aiuto.", ""),
    ("", "version", "Mostra la versione.", ""),
    ("", "id", "Il codice della scheda (per esempio A3f9c2b1d; bastano le prime cifre).", "CODICE"),
    // init
    ("init", "site", "Il nome della sede servita da questo nodo, per esempio \"Oratorio San Luca\".", "SEDE"),
    (
        "init",
        "site_of",
        "Riprende una sede esistente della rete (nome o codice): per un computer nuovo che sostituisce quello \
         di un polo, così schede e numeri restano di una sede sola. Il nodo la adotta appena la conosce, alla \
         prima sincronizzazione o importazione.",
        "SEDE",
    ),
    (
        "attendee add",
        "force",
        "Salva anche se in archivio c'è una persona con lo stesso nome e anno di nascita (il controllo \
         viene prima: senza questa opzione non si salva).",
        "",
    ),
    ("attendee import", "file", "Il file CSV, con una riga di intestazioni (Nome;Cognome;Anno di nascita;Ruolo;...).", "FILE"),
    ("attendee import", "dry_run", "Mostra chi verrebbe iscritto e l'errore di ogni riga; non salva nulla.", ""),
    (
        "attendee import",
        "columns",
        "Cosa contiene una colonna, quando la sua intestazione non è un nome che Tessera conosce: \
         \"Intestazione=campo\" (campi: given, family, birth-year, role, school, class, guardian-name, \
         guardian-phone, guardian-email, phone, email, language, consent-by, consent-date, referent, notes). Si \
         può ripetere.",
        "INTESTAZIONE=CAMPO",
    ),
    ("attendee import", "consent_by", "Chi ha firmato il consenso, per le righe che non lo dicono: interessato o tutore.", "CHI"),
    ("attendee import", "force", "Iscrive anche le righe che sembrano persone già in archivio.", ""),
    ("loan void", "reason", "Perché (resta scritto con il comodato).", "MOTIVO"),
    (
        "session add",
        "force",
        "Salva un appuntamento dello sportello anche se si sovrappone a un altro nella stessa sede (il \
         controllo viene prima: senza questa opzione non si salva).",
        "",
    ),
    (
        "serve",
        "ui_addr",
        "Indirizzo della pagina dell'operatore (predefinito 127.0.0.1:7421, solo questo computer).",
        "INDIRIZZO",
    ),
    ("serve", "no_ui", "Nessuna pagina dell'operatore: solo la sincronizzazione.", ""),
    (
        "admin new-network",
        "passphrase",
        "Protegge la chiave con una frase segreta (chiesta due volte, o da $TESSERA_KEY_PASSPHRASE).",
        "",
    ),
    (
        "admin new-partner",
        "passphrase",
        "Protegge la chiave con una frase segreta (chiesta due volte, o da $TESSERA_KEY_PASSPHRASE).",
        "",
    ),
    ("admin protect-key", "file", "Il file di chiave (network.key o partner.key).", "FILE"),
    ("admin protect-key", "role", "Di chi è la chiave: network (della rete) o partner (di un ente).", "RUOLO"),
    ("init", "role", "`polo` (hub) o `sportello` (help-desk).", "RUOLO"),
    (
        "init",
        "network",
        "Entra in una rete esistente (il suo id, dall'amministratore del tuo ente). Senza, si crea una \
         rete su un solo computer per una prima prova.",
        "ID_RETE",
    ),
    ("init", "partner", "Il nome dell'ente (solo per la rete su un solo computer).", "ENTE"),
    // sync, serve, repair, keys
    ("sync", "peer", "L'indirizzo dell'altro nodo, HOST:PORTA.", "HOST:PORTA"),
    ("serve", "listen", "Indirizzo su cui ascoltare, per esempio 0.0.0.0:7420.", "INDIRIZZO"),
    (
        "serve",
        "peers",
        "Un nodo o relay con cui restare collegati (HOST:PORTA); ripetilo per indicarne più d'uno.",
        "HOST:PORTA",
    ),
    (
        "repair",
        "damage_reviewed",
        "Obbligatorio: hai sincronizzato con ogni nodo e relay che potrebbe avere le modifiche di questo \
         polo, e `tessera status` mostra ancora un danno.",
        "",
    ),
    ("keys grant", "device", "La chiave del dispositivo (64 cifre esadecimali).", "CHIAVE"),
    // audit
    ("audit", "source", "Un pacchetto o la cartella dei dati di un nodo.", "ORIGINE"),
    (
        "audit",
        "network",
        "L'id della rete di cui ti fidi (dal coordinatore del programma). Senza, si usa quello dichiarato \
         dall'origine, con un avviso.",
        "ID_RETE",
    ),
    ("audit", "json", "Risultato leggibile da un programma (JSON).", ""),
    ("audit compare", "a", "La prima copia: un pacchetto o la cartella dei dati di un nodo.", "COPIA_A"),
    ("audit compare", "b", "La seconda copia.", "COPIA_B"),
    ("audit log", "partner", "Nome dell'ente o inizio della sua chiave.", "ENTE"),
    ("audit log", "device", "Inizio della chiave del dispositivo.", "CHIAVE"),
    ("audit log", "record", "Codice breve di una scheda (per esempio A3f9c2b1d) o etichetta di un dispositivo (per esempio TAB-0042), con le schede che vi si riferiscono.", "CODICE"),
    (
        "audit log",
        "kind",
        "site (sede), attendee (iscritto), device (dispositivo), loan (prestito) o session (incontro).",
        "TIPO",
    ),
    ("audit log", "from", "Solo le modifiche da questo giorno (AAAA-MM-GG).", "DAL"),
    ("audit log", "to", "Solo le modifiche fino a questo giorno (AAAA-MM-GG).", "AL"),
    (
        "audit log",
        "show_personal_data",
        "Mostra i valori dei campi delle persone iscritte (dati personali).",
        "",
    ),
    // site
    ("site", "name", "Il nome della sede.", "NOME"),
    (
        "site",
        "kind",
        "polo-di-comunita, sportello, scuola, biblioteca, altro (anche in inglese: community-hub, \
         help-desk, school, library, other).",
        "TIPO",
    ),
    ("site", "partner", "L'ente a cui appartiene la sede.", "ENTE"),
    ("site", "address", "L'indirizzo.", "INDIRIZZO"),
    ("site", "hours", "Testo libero, per esempio \"lun-ven 14:30-18:30\".", "ORARI"),
    // attendee
    ("attendee", "given", "Nome.", "NOME"),
    ("attendee", "family", "Cognome.", "COGNOME"),
    ("attendee", "birth_year", "Anno di nascita.", "ANNO"),
    (
        "attendee",
        "role",
        "studente, genitore, insegnante, cittadino (anche student, parent, teacher, citizen).",
        "RUOLO",
    ),
    ("attendee", "school", "Scuola.", "SCUOLA"),
    ("attendee", "class", "Classe.", "CLASSE"),
    ("attendee", "guardian_name", "Nome del genitore o tutore (obbligatorio per i minorenni).", "NOME"),
    ("attendee", "guardian_phone", "Telefono del genitore o tutore.", "TELEFONO"),
    ("attendee", "guardian_email", "E-mail del genitore o tutore.", "EMAIL"),
    ("attendee", "phone", "Telefono.", "TELEFONO"),
    ("attendee", "email", "E-mail.", "EMAIL"),
    ("attendee", "languages", "Una lingua parlata; ripetilo per indicarne più d'una.", "LINGUA"),
    (
        "attendee",
        "consent_date",
        "Data della firma del modulo di consenso (AAAA-MM-GG; predefinita: oggi).",
        "DATA",
    ),
    (
        "attendee",
        "consent_by",
        "Chi ha firmato il consenso: interessato o tutore (anche self o guardian).",
        "CHI",
    ),
    (
        "attendee",
        "operator",
        "L'operatore che ha raccolto il modulo di consenso (predefinito: chi sta lavorando, $TESSERA_OPERATOR).",
        "OPERATORE",
    ),
    ("attendee", "referent", "L'operatore che segue questa persona.", "REFERENTE"),
    ("attendee", "notes", "Note del piano di intervento.", "NOTE"),
    ("attendee", "site", "Sede di iscrizione (predefinita: la sede di questo nodo).", "SEDE"),
    (
        "attendee erase",
        "reason",
        "Perché: `richiesta` (la persona l'ha chiesto, art. 17) o `errore` (iscritta per errore); anche \
         request o mistake.",
        "MOTIVO",
    ),
    ("attendee erase", "yes", "Conferma: una cancellazione non si può annullare.", ""),
    (
        "attendee erase",
        "network_key",
        "Il file della chiave della rete (del coordinatore): cancella una persona qualunque ente l'abbia \
         iscritta (uno che ha lasciato il programma, o una persona iscritta con una versione precedente a \
         dicembre 2026).",
        "FILE",
    ),
    ("attendee list", "site", "Solo le persone iscritte in questa sede.", "SEDE"),
    (
        "attendee list",
        "search",
        "Solo le persone il cui nome contiene questo testo (senza badare ad accenti e maiuscole).",
        "TESTO",
    ),
    ("attendee list", "role", "Solo le persone con questo ruolo.", "RUOLO"),
    // device
    ("device", "tag", "L'etichetta attaccata al dispositivo, per esempio \"LO-0042\".", "ETICHETTA"),
    ("device", "kind", "pc, portatile, tablet, hotspot, telefono (anche laptop, phone).", "TIPO"),
    ("device", "model", "Modello.", "MODELLO"),
    ("device", "serial", "Numero di serie (matricola).", "MATRICOLA"),
    (
        "device",
        "origin",
        "donato, acquistato, rigenerato, postazione-pubblica (anche donated, purchased, refurbished, \
         public-access).",
        "PROVENIENZA",
    ),
    (
        "device",
        "condition",
        "nuovo, buono, discreto, scadente, guasto (anche new, good, fair, poor, broken).",
        "CONDIZIONI",
    ),
    (
        "device",
        "status",
        "in-magazzino, in-comodato, in-riparazione, dismesso (anche in-stock, lent, in-repair, retired).",
        "STATO",
    ),
    ("device", "site", "La sede che tiene il dispositivo (predefinita: la sede di questo nodo).", "SEDE"),
    ("device edit", "id", "Codice o etichetta del dispositivo.", "CODICE"),
    ("device show", "id", "Codice o etichetta del dispositivo.", "CODICE"),
    ("device list", "site", "Solo i dispositivi di questa sede.", "SEDE"),
    ("device list", "status", "Solo i dispositivi in questo stato.", "STATO"),
    ("device list", "kind", "Solo i dispositivi di questo tipo.", "TIPO"),
    // loan
    ("loan add", "device", "Codice o etichetta del dispositivo.", "DISPOSITIVO"),
    ("loan add", "attendee", "Il codice della persona iscritta che lo riceve.", "ISCRITTO"),
    ("loan", "expected_return", "Data di restituzione prevista (AAAA-MM-GG).", "DATA"),
    ("loan add", "start", "Data di inizio (predefinita: oggi).", "DATA"),
    ("loan add", "agreement_signed", "Il contratto di comodato è firmato.", ""),
    ("loan edit", "agreement_signed", "Il contratto di comodato è firmato: true (sì) o false (no).", "SÌ_NO"),
    ("loan return", "date", "Data di restituzione (predefinita: oggi).", "DATA"),
    (
        "loan return",
        "condition",
        "Condizioni alla restituzione: nuovo, buono, discreto, scadente, guasto.",
        "CONDIZIONI",
    ),
    ("loan list", "site", "Solo i prestiti di questa sede.", "SEDE"),
    ("loan list", "open", "Solo i prestiti non ancora restituiti.", ""),
    ("loan list", "overdue", "Solo i prestiti aperti oltre la data di restituzione prevista.", ""),
    ("loan list", "from", "Prestiti iniziati in questo giorno o dopo.", "DAL"),
    ("loan list", "to", "Prestiti iniziati in questo giorno o prima.", "AL"),
    // session
    (
        "session",
        "kind",
        "corso, incontro-pubblico, appuntamento, laboratorio, mediazione (anche course, public-meeting, \
         help-desk-appointment, school-lab, mediation).",
        "TIPO",
    ),
    ("session", "topic", "L'argomento, in testo libero.", "ARGOMENTO"),
    (
        "session",
        "topic_code",
        "Il tema, per i report: spid, cie, posta-elettronica, bonus, cv, cyberbullismo, truffe-online, \
         smartphone, piattaforme-scolastiche, lingua-italiana, altro.",
        "TEMA",
    ),
    (
        "session",
        "audience",
        "studenti, genitori, insegnanti, cittadini, anziani, stranieri, misto (anche students, parents, \
         teachers, citizens, elderly, migrants, mixed).",
        "DESTINATARI",
    ),
    ("session", "start", "Inizio, AAAA-MM-GGTHH:MM.", "INIZIO"),
    ("session", "end", "Fine, AAAA-MM-GGTHH:MM.", "FINE"),
    ("session", "mode", "in-presenza o online.", "MODALITA"),
    ("session", "facilitator", "Chi conduce l'incontro.", "CONDUTTORE"),
    (
        "session",
        "participants",
        "Un partecipante iscritto (codice della persona); ripetilo per indicarne più d'uno.",
        "ISCRITTO",
    ),
    ("session", "headcount", "Persone contate ma non iscritte (incontri pubblici).", "NUMERO"),
    ("session", "language", "Lingua dell'incontro.", "LINGUA"),
    ("session", "mediator", "Mediatore linguistico-culturale.", "MEDIATORE"),
    ("session", "site", "La sede (predefinita: la sede di questo nodo).", "SEDE"),
    ("session attend", "attendee", "Il codice della persona iscritta.", "ISCRITTO"),
    ("session attend", "absent", "La persona non è venuta.", ""),
    (
        "session cancel",
        "reason",
        "Perché (per esempio \"prenotato due volte\"); senza, si registra la data.",
        "MOTIVO",
    ),
    ("session cancel", "undo", "Togli l'annullamento.", ""),
    ("session list", "site", "Solo gli incontri di questa sede.", "SEDE"),
    ("session list", "kind", "Solo gli incontri di questo tipo.", "TIPO"),
    ("session list", "from", "Incontri che iniziano in questo giorno o dopo.", "DAL"),
    ("session list", "to", "Incontri che iniziano in questo giorno o prima.", "AL"),
    // conflicts
    ("conflicts resolve", "id", "Il codice del conflitto mostrato da `conflicts list`.", "CONFLITTO"),
    (
        "conflicts resolve",
        "close_loan",
        "Dispositivo prestato due volte: chiudi questo prestito (l'altro resta aperto).",
        "PRESTITO",
    ),
    (
        "conflicts resolve",
        "keep",
        "Probabile doppione: tieni questa persona e unisci a lei le altre.",
        "ISCRITTO",
    ),
    (
        "conflicts resolve",
        "not_duplicates",
        "Probabile doppione: sono persone diverse; tienile entrambe.",
        "",
    ),
    ("conflicts resolve", "move_session", "Appuntamenti sovrapposti: sposta questo incontro...", "INCONTRO"),
    ("conflicts resolve", "start", "...a questo inizio (AAAA-MM-GGTHH:MM)...", "INIZIO"),
    ("conflicts resolve", "end", "...e a questa fine.", "FINE"),
    (
        "conflicts resolve",
        "reopen_loan",
        "Dispositivo in comodato senza prestito aperto: questo prestito (chiuso da una risoluzione) è \
         quello davvero in corso; viene riaperto.",
        "PRESTITO",
    ),
    (
        "conflicts resolve",
        "device_back",
        "Dispositivo in comodato senza prestito aperto: il dispositivo è tornato; è di nuovo in magazzino.",
        "",
    ),
    // report
    (
        "report",
        "by",
        "Raggruppa per sede, ente, mese, destinatari, eta (fasce 0-13, 14-17, 18-64, 65+) o tema (il tipo \
         di richiesta: SPID, CIE, e-mail, bonus...); anche in inglese: site, partner, month, audience, \
         age, topic.",
        "CRITERIO",
    ),
    ("report", "from", "Primo giorno compreso (AAAA-MM-GG).", "DAL"),
    ("report", "to", "Ultimo giorno compreso (AAAA-MM-GG).", "AL"),
    ("report", "partner", "Solo le sedi di questo ente (il suo nome, maiuscole o minuscole).", "ENTE"),
    ("report", "csv", "CSV invece di una tabella.", ""),
    (
        "report",
        "csv_style",
        "Separatore dei campi del CSV: `punto-e-virgola` (`;` e la virgola decimale, quello che i fogli \
         di calcolo italiani aprono direttamente) o `virgola` (`,` e il punto decimale). Predefinito: \
         l'uso della lingua (italiano: punto e virgola).",
        "STILE",
    ),
    // export, import
    ("export", "file", "Il pacchetto da scrivere.", "FILE"),
    (
        "import",
        "file",
        "Un pacchetto (da `tessera export`) o un file di fiducia (da `tessera admin`).",
        "FILE",
    ),
    (
        "import",
        "allow_unknown_exporter",
        "Importa un pacchetto anche se il dispositivo che l'ha firmato non è certificato da nessuno \
         (potrebbe venire da chiunque; le sue modifiche sono comunque controllate una per una).",
        "",
    ),
    // admin
    ("admin new-network", "out", "Cartella in cui scrivere network.key.", "CARTELLA"),
    ("admin new-partner", "network_key", "Il file della chiave della rete.", "FILE"),
    ("admin new-partner", "name", "Il nome dell'ente.", "NOME"),
    ("admin new-partner", "out", "Cartella in cui scrivere partner.key e partner.trust.", "CARTELLA"),
    ("admin certify-device", "partner_key", "Il file della chiave dell'ente.", "FILE"),
    ("admin certify-device", "partner_trust", "Il file partner.trust fatto da `admin new-partner`.", "FILE"),
    (
        "admin certify-device",
        "device",
        "La chiave del dispositivo del nodo (64 cifre esadecimali).",
        "CHIAVE",
    ),
    ("admin certify-device", "site", "Il nome della sede del nodo.", "SEDE"),
    ("admin certify-device", "role", "`hub` (polo), `help-desk` (sportello) o `relay`.", "RUOLO"),
    ("admin certify-device", "out", "Il file di fiducia da dare al nodo.", "FILE"),
    (
        "admin revoke-device",
        "key",
        "La chiave dell'ente che ha certificato il dispositivo, o la chiave della rete.",
        "FILE",
    ),
    ("admin revoke-device", "key_role", "Di chi è la chiave: partner (ente) o network (rete).", "RUOLO"),
    ("admin revoke-device", "network", "L'id della rete.", "ID_RETE"),
    (
        "admin revoke-device",
        "device",
        "La chiave del dispositivo da revocare (64 cifre esadecimali).",
        "CHIAVE",
    ),
    ("admin revoke-device", "after", "L'ultima modifica del dispositivo che resta valida.", "N"),
    ("admin revoke-device", "reason", "Perché (testo libero).", "MOTIVO"),
    ("admin revoke-device", "out", "Il file di revoca da scrivere.", "FILE"),
];

/// The Italian of `tessera`'s command line.
pub const TABLES: Tables = Tables { commands: COMMANDS, args: ARGS };

/// `cmd` (the [`Cli`](crate::cli::Cli)'s) with its help in Italian.
pub fn localize(cmd: Command) -> Command {
    TABLES.localize(cmd)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_command_and_visible_argument_has_italian() {
        let missing = TABLES.missing(crate::cli::Cli::command());
        assert!(missing.is_empty(), "no Italian help for:\n{}", missing.join("\n"));
    }

    #[test]
    fn every_table_entry_names_a_command_or_argument_that_exists() {
        let stale = TABLES.stale(crate::cli::Cli::command());
        assert!(stale.is_empty(), "the tables name what no command has:\n{}", stale.join("\n"));
    }

    #[test]
    fn italian_help_has_no_english_headings() {
        let mut cmd = localize(crate::cli::Cli::command());
        let mut pages = vec![cmd.render_long_help().to_string()];
        let sub = cmd.find_subcommand_mut("attendee").and_then(|c| c.find_subcommand_mut("add"));
        pages.push(sub.map(|c| c.render_long_help().to_string()).unwrap_or_default());
        for page in pages {
            for english in
                ["Usage:", "Options:", "Commands:", "Arguments:", "[OPTIONS]", "Print help", "[default:"]
            {
                assert!(!page.contains(english), "{english:?} in\n{page}");
            }
            assert!(page.contains("Uso: tessera"), "{page}");
        }
    }
}
