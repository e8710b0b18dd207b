//! The `rill-server` binary: parse nats-server-compatible flags and config, init
//! logging, write the pid file, run until a signal says stop.
//!
//! Failures read as nats-server's: a bad config file prints `rill-server: file:line:col:
//! message` on stderr and exits 1; a bad command line prints the flag error and exits 2;
//! a server that cannot start (port in use, bad host, unusable store) logs `[FTL] …` and
//! exits 1.

use std::process::ExitCode;

use rill_server::config::{self, Action, ConfigError, Loaded};
use rill_server::logging;

fn main() -> ExitCode {
    let loaded = match config::load(std::env::args_os().skip(1)) {
        Ok(loaded) => loaded,
        Err(e) => return config_error(&e),
    };
    match &loaded.action {
        Action::Run => run(loaded),
        Action::CheckConfig => check(&loaded),
        Action::PrintVersion => {
            println!("{}", config::version_line());
            ExitCode::SUCCESS
        }
        Action::PrintHelp => {
            println!("{}", config::flags::USAGE);
            ExitCode::SUCCESS
        }
        Action::Signal(request) => match request.send() {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => config_error(&e),
        },
    }
}

/// Prints a configuration error as nats-server does and returns its exit code.
fn config_error(e: &ConfigError) -> ExitCode {
    match e {
        ConfigError::Flags(text) => eprintln!("{text}"),
        other => eprintln!("rill-server: {other}"),
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}

/// `-t`: the file parsed and validated (nats-server insists on `-c`).
fn check(loaded: &Loaded) -> ExitCode {
    if loaded.config.config_file.is_none() {
        eprintln!(
            "rill-server: must specify [-c, --config] option to check configuration file syntax"
        );
        return ExitCode::from(1);
    }
    // nats-server prints this on stderr too.
    eprintln!("{}", config::check_message(&loaded.config));
    ExitCode::SUCCESS
}

fn run(loaded: Loaded) -> ExitCode {
    if let Err(e) = logging::init(&loaded.config.logging) {
        eprintln!("rill-server: {e}");
        return ExitCode::from(1);
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    if let Err(e) = config::startup_check(&loaded.config) {
        logging::fatal(e);
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::fatal(e);
            return ExitCode::from(1);
        }
    };
    let flags = loaded.flags;
    let reload = move |path: Option<&std::path::Path>| config::reload(path, &flags);
    match runtime.block_on(rill_server::run(loaded.config, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::fatal(e);
            ExitCode::from(1)
        }
    }
}
