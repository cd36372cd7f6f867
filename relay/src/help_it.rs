//! `tessera-relay --help` in Italian: the tables of [`tessera_help::Tables`] for the
//! relay's command line ([`Cli`](crate::Cli)); the English comes from its doc
//! comments. A unit test fails on any command or visible argument without Italian.

use tessera_help::Tables;

/// The Italian of `tessera-relay`'s command line.
pub const TABLES: Tables = Tables {
    commands: &[
        ("", "Relay di Tessera: porta le modifiche firmate tra i poli che non sono mai in rete insieme."),
        ("init", "Crea la chiave del dispositivo e l'archivio del relay; mostra la chiave da far certificare."),
        ("import", "Importa il certificato del relay (un file .trust dall'amministratore dell'ente)."),
        ("serve", "In servizio: accetta poli e relay, conserva e inoltra le loro modifiche."),
        ("status", "Cosa contiene il relay."),
        ("help", "Mostra questo aiuto o l'aiuto dei comandi indicati."),
    ],
    args: &[
        ("", "data", "La cartella dei dati del relay.", "CARTELLA"),
        ("", "lang", "Lingua dei messaggi: `it` o `en` (predefinita: da $LANG; italiano se non è inglese).", "LINGUA"),
        ("", "help", "Mostra l'aiuto.", ""),
        ("", "version", "Mostra la versione.", ""),
        ("init", "network", "L'id della rete (dal coordinatore del programma).", "ID_RETE"),
        ("init", "name", "Un nome per questo relay, mostrato agli altri nodi.", "NOME"),
        ("import", "file", "Il file .trust da importare.", "FILE"),
        ("serve", "listen", "Indirizzo UDP per le sessioni QUIC.", "INDIRIZZO"),
        ("serve", "metrics", "Indirizzo HTTP locale delle metriche Prometheus (tienilo su localhost).", "INDIRIZZO"),
        ("serve", "sessions_max", "Sessioni servite insieme (nodi autenticati; agli altri si dice che il relay è pieno).", "N"),
        ("serve", "sessions_per_device", "Sessioni insieme di uno stesso dispositivo (il servizio di un polo e un `tessera sync`).", "N"),
        ("serve", "handshakes_max", "Connessioni insieme in fase di presentazione, prima che il nodo abbia provato chi è; le altre sono rifiutate.", "N"),
        ("serve", "handshake_timeout_secs", "Secondi che una connessione ha per provare chi è.", "SECONDI"),
        ("serve", "device_rate_max", "Modifiche al secondo che un dispositivo può caricare (media su un minuto).", "N"),
        ("serve", "partner_quota_bytes", "Byte di modifiche conservati per ciascun ente.", "BYTE"),
    ],
};

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_command_and_visible_argument_has_italian() {
        let missing = TABLES.missing(crate::Cli::command());
        assert!(missing.is_empty(), "no Italian help for:\n{}", missing.join("\n"));
        let stale = TABLES.stale(crate::Cli::command());
        assert!(stale.is_empty(), "the tables name what no command has:\n{}", stale.join("\n"));
    }

    #[test]
    fn italian_help_has_no_english_headings() {
        let mut cmd = TABLES.localize(crate::Cli::command());
        let mut pages = vec![cmd.render_long_help().to_string()];
        pages.push(
            cmd.find_subcommand_mut("serve").map(|c| c.render_long_help().to_string()).unwrap_or_default(),
        );
        for page in pages {
            for english in ["Usage:", "Options:", "Commands:", "[OPTIONS]", "Print help", "[default:"] {
                assert!(!page.contains(english), "{english:?} in\n{page}");
            }
            assert!(page.contains("Uso: tessera-relay"), "{page}");
        }
    }
}
