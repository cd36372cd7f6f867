//! The `tessera` binary: parses the command line, runs it, and prints the whole error
//! chain once if it fails. Everything else is in the library.

use std::process::ExitCode;

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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let lang = tessera_node::cli::lang_of_args(&args);
    match tessera_node::cli::Cli::parse_in(args, lang) {
        Ok(cli) => ExitCode::from(tessera_node::cli::run(cli)),
        Err(stopped) => {
            let _ = stopped.print();
            ExitCode::from(u8::try_from(stopped.exit_code()).unwrap_or(2))
        }
    }
}
