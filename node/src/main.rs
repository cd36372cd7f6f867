//! The `tessera` binary: parses the command line, runs it, and prints the whole error
//! chain once if it fails. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    {
        use tracing_subscriber::prelude::*;
        let wanted = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let safe = tracing_subscriber::filter::filter_fn(tessera_store::log_record_allowed);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .without_time()
                    .with_filter(wanted)
                    .with_filter(safe),
            )
            .init();
    }
    let cli = tessera_node::cli::Cli::parse();
    // The words around the message in the operator's language (the message itself is
    // the command's); an unknown --lang is itself the error, said in Italian first.
    let ui = tessera_node::ui::Ui::new(cli.lang.as_deref())
        .unwrap_or(tessera_node::ui::Ui { lang: tessera_records::vocab::Lang::It });
    match tessera_node::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{} {error}", ui.t("error:", "errore:"));
            for cause in error.chain().skip(1) {
                eprintln!("  {} {cause}", ui.t("because:", "perché:"));
            }
            match error.downcast_ref::<tessera_node::audit::AuditFailed>() {
                Some(failed) => ExitCode::from(failed.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
