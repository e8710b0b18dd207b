//! The command tree and its dispatch. Each command family is one module with its own clap types and a
//! `run` function; adding a family (e.g. `bench`) means one variant here and one arm in [`run`].

mod account;
mod bench;
mod consumer;
mod consumer_flags;
mod context;
mod events;
mod kv;
mod object;
mod publish;
mod reply;
mod request;
mod server;
mod stream;
mod stream_flags;
mod subscribe;
mod system;

use std::io::Read as _;

use clap::Subcommand;

use crate::connect::ConnOpts;

/// Every `rill` subcommand.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Publish messages to a subject
    #[command(name = "pub", alias = "publish")]
    Pub(publish::Args),
    /// Subscribe to a subject (or replay a stream) and print messages
    #[command(alias = "subscribe")]
    Sub(subscribe::Args),
    /// Send a request and print the reply
    #[command(alias = "req")]
    Request(request::Args),
    /// Answer requests on a subject
    Reply(reply::Args),
    /// Manage JetStream streams
    #[command(subcommand, alias = "str")]
    Stream(stream::Cmd),
    /// Manage JetStream consumers
    #[command(subcommand, alias = "con")]
    Consumer(consumer::Cmd),
    /// Key-value buckets
    #[command(subcommand)]
    Kv(kv::Cmd),
    /// Object store buckets
    #[command(subcommand, alias = "obj")]
    Object(object::Cmd),
    /// JetStream account usage and limits
    #[command(subcommand)]
    Account(account::Cmd),
    /// Show JetStream advisories ($JS.EVENT.>) as they happen
    Events(events::Args),
    /// Manage saved connection contexts
    #[command(subcommand, alias = "ctx")]
    Context(context::Cmd),
    /// Benchmark a server, or compare two servers side by side
    #[command(subcommand)]
    Bench(bench::Cmd),
    /// Run rill-server (execs the rill-server binary with the given arguments)
    Server(server::Args),
}

/// Runs one command with the global connection options.
pub(crate) async fn run(conn: ConnOpts, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Pub(args) => publish::run(&conn, args).await,
        Command::Sub(args) => subscribe::run(&conn, args).await,
        Command::Request(args) => request::run(&conn, args).await,
        Command::Reply(args) => reply::run(&conn, args).await,
        Command::Stream(cmd) => stream::run(&conn, cmd).await,
        Command::Consumer(cmd) => consumer::run(&conn, cmd).await,
        Command::Kv(cmd) => kv::run(&conn, cmd).await,
        Command::Object(cmd) => object::run(&conn, cmd).await,
        Command::Account(cmd) => account::run(&conn, cmd).await,
        Command::Events(args) => events::run(&conn, args).await,
        Command::Context(cmd) => context::run(&conn, cmd),
        Command::Bench(cmd) => bench::run(&conn, cmd).await,
        Command::Server(args) => server::run(&conn, args).await,
    }
}

/// The body given on the command line, or all of stdin when none was given.
fn body_or_stdin(body: Option<String>) -> anyhow::Result<Vec<u8>> {
    match body {
        Some(body) => Ok(body.into_bytes()),
        None => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

/// Builds a header map from `key:value` pairs.
fn header_map(pairs: &[(String, String)]) -> Option<async_nats::HeaderMap> {
    if pairs.is_empty() {
        return None;
    }
    let mut map = async_nats::HeaderMap::new();
    for (k, v) in pairs {
        map.append(k.as_str(), v.as_str());
    }
    Some(map)
}

/// Waits for Ctrl-C or SIGTERM (for the commands that run until stopped).
async fn stopped() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
