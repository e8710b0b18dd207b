//! The `rill-server` binary: parse nats-server-compatible flags and config, init
//! logging, write the pid file, run until a signal says stop.

use std::process::ExitCode;

use rill_server::config::{self, Action};

fn main() -> ExitCode {
    let loaded = match config::load(std::env::args_os().skip(1)) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    };
    match &loaded.action {
        Action::Run => {}
        Action::CheckConfig => {
            println!("{}", config::check_message(&loaded.config));
            return ExitCode::SUCCESS;
        }
        Action::PrintVersion => {
            println!("{}", config::version_line());
            return ExitCode::SUCCESS;
        }
        Action::PrintHelp => {
            println!("{}", config::flags::USAGE);
            return ExitCode::SUCCESS;
        }
        Action::Signal(request) => {
            return match request.send() {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            };
        }
    }
    if let Err(e) = rill_server::logging::init(&loaded.config.logging) {
        eprintln!("rill-server: cannot open log file: {e}");
        return ExitCode::from(1);
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let flags = loaded.flags;
    let reload = move |path: Option<&std::path::Path>| config::reload(path, &flags);
    match runtime.block_on(rill_server::run(loaded.config, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}
