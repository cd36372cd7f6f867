//! The `tessera-relay` binary: parses the command line, runs it, prints the whole
//! error chain once if it fails. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    {
        use tracing_subscriber::prelude::*;
        let wanted = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let safe = tracing_subscriber::filter::filter_fn(tessera_store::log_record_allowed);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(wanted)
                    .with_filter(safe),
            )
            .init();
    }
    let cli = tessera_relay::Cli::parse();
    let ui = tessera_relay::ui::Ui::new(cli.lang.as_deref())
        .unwrap_or(tessera_relay::ui::Ui { lang: tessera_relay::ui::Lang::It });
    match tessera_relay::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Answered by the serving relay: its output is printed already.
        Err(error) if error.downcast_ref::<tessera_relay::ExitCode>().is_some() => {
            ExitCode::from(error.downcast_ref::<tessera_relay::ExitCode>().map_or(1, |c| c.0))
        }
        Err(error) => {
            eprint!("{}", tessera_relay::error_text(&error, &ui));
            ExitCode::FAILURE
        }
    }
}
