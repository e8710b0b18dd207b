//! `rill`: the command-line tool for rill and any NATS server. This file only parses arguments, builds
//! the runtime and reports errors; each command family lives in `cmd/`.

mod cmd;
mod connect;
mod jsapi;
mod output;
mod parse;
mod template;

use std::process::ExitCode;

use clap::Parser;

/// Command-line tool for rill and any NATS server.
#[derive(Parser, Debug)]
#[command(name = "rill", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    conn: connect::ConnOpts,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rill: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli.conn, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rill: error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined with `: `, skipping causes whose text the message already holds
/// (async-nats errors repeat their source in their own message).
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
