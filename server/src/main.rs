//! The `rill-server` binary: parse flags, load config, init logging, run.

use std::process::ExitCode;

use rill_server::config::{Config, JetStreamConfig};

/// Minimal flag handling until the full nats-server-compatible parser lands.
fn parse_args() -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    let mut js = false;
    let mut store_dir = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("flag needs an argument: {name}"))
        };
        match arg.as_str() {
            "-a" | "--addr" | "--net" => config.host = value(&arg)?,
            "-p" | "--port" => {
                let v = value(&arg)?;
                config.port = if v == "-1" {
                    0
                } else {
                    v.parse().map_err(|_| format!("invalid port: {v}"))?
                };
            }
            "-js" | "--jetstream" => js = true,
            "-sd" | "--store_dir" => store_dir = Some(value(&arg)?),
            "-D" | "--debug" => config.logging.debug = true,
            "-V" | "--trace" => config.logging.trace = true,
            "-DV" => {
                config.logging.debug = true;
                config.logging.trace = true;
            }
            other => return Err(format!("flag provided but not defined: {other}")),
        }
    }
    if js {
        let mut jsc = JetStreamConfig::default();
        if let Some(dir) = store_dir {
            jsc.store_dir = dir.into();
        }
        config.jetstream = Some(jsc);
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rill-server: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = rill_server::logging::init(&config.logging) {
        eprintln!("rill-server: {e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rill-server: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(rill_server::run(config, std::future::pending())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("[{}] [FTL] {e}", std::process::id());
            ExitCode::from(1)
        }
    }
}
