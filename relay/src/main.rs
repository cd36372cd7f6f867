//! The `tessera-relay` binary: parses the command line, runs it, prints the whole
//! error chain once if it fails. Everything else is in the library.

use std::process::ExitCode;

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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let ui = tessera_relay::ui_of_args(&args, &tessera_relay::ui::locale());
    let cli = match tessera_relay::Cli::parse_in(&args, &ui) {
        Ok(cli) => cli,
        Err(stopped) => {
            let _ = stopped.print();
            return ExitCode::from(u8::try_from(stopped.exit_code()).unwrap_or(2));
        }
    };
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
