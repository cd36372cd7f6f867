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
    ExitCode::from(tessera_node::cli::run(tessera_node::cli::Cli::parse()))
}
