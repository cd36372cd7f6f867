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
    match tessera_relay::run(tessera_relay::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  because: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
