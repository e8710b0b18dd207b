//! `rill server ping|ls|info`: the servers reachable over the system account, asked with
//! `$SYS.REQ.SERVER.PING` (every server answers, once routes connect them) and
//! `$SYS.REQ.SERVER.PING.VARZ`. Needs a user of the system account.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::Value;

use crate::connect::ConnOpts;
use crate::output::{self, Table, i, s};

/// How long answers are collected.
const WAIT: Duration = Duration::from_secs(1);

/// `rill server` subcommands served over the system account.
#[derive(clap::Parser, Debug)]
#[command(name = "rill server")]
pub(crate) enum Cmd {
    /// Ping every server and show how long each took to answer
    Ping {
        /// Print each server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// List the servers with their connections, subscriptions, memory and uptime
    Ls {
        /// Print each server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Show one server's settings and counters (`/varz`), by name or id (default: the first to answer)
    Info {
        /// Server name or id
        server: Option<String>,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
}

/// Sends `body` to `subject` and collects every answer that comes within [`WAIT`], with the
/// time each took.
async fn gather(
    client: &async_nats::Client,
    subject: &str,
    body: &str,
) -> anyhow::Result<Vec<(Duration, Value)>> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await?;
    let started = Instant::now();
    client
        .publish_with_reply(subject.to_string(), inbox, body.to_string().into())
        .await?;
    client.flush().await?;
    let mut out = Vec::new();
    let deadline = tokio::time::sleep(WAIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            msg = sub.next() => match msg {
                Some(msg) => {
                    let v: Value = serde_json::from_slice(&msg.payload).context("server reply")?;
                    out.push((started.elapsed(), v));
                }
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    out.sort_by(|a, b| s(&a.1["server"], "name").cmp(&s(&b.1["server"], "name")));
    Ok(out)
}

/// Runs a `rill server` system subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    match cmd {
        Cmd::Ping { json } => {
            let answers = gather(&client, "$SYS.REQ.SERVER.PING", "").await?;
            for (took, v) in &answers {
                if json {
                    output::json(v);
                } else {
                    println!("{:<40} rtt={took:.1?}", s(&v["server"], "name"));
                }
            }
            println!("\n{} server(s) answered", answers.len());
        }
        Cmd::Ls { json } => ls(&client, json).await?,
        Cmd::Info { server, json } => info(&client, server, json).await?,
    }
    Ok(())
}

async fn ls(client: &async_nats::Client, json: bool) -> anyhow::Result<()> {
    let answers = gather(client, "$SYS.REQ.SERVER.PING.STATSZ", "").await?;
    let mut table = Table::new(&["Name", "Version", "Conns", "Subs", "Mem", "Slow", "Started"]);
    for (_, v) in &answers {
        if json {
            output::json(v);
            continue;
        }
        let (server, stats) = (&v["server"], &v["statsz"]);
        table.row(vec![
            s(server, "name"),
            s(server, "ver"),
            i(stats, "connections").to_string(),
            i(stats, "subscriptions").to_string(),
            output::bytes(i(stats, "mem")),
            i(stats, "slow_consumers").to_string(),
            s(stats, "start"),
        ]);
    }
    if !json {
        table.print();
    }
    Ok(())
}

async fn info(
    client: &async_nats::Client,
    server: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let body = match &server {
        Some(name) if name.len() == 56 && name.starts_with('N') => String::new(),
        Some(name) => serde_json::json!({"name": name, "exact_match": true}).to_string(),
        None => String::new(),
    };
    let subject = match &server {
        Some(id) if id.len() == 56 && id.starts_with('N') => format!("$SYS.REQ.SERVER.{id}.VARZ"),
        _ => "$SYS.REQ.SERVER.PING.VARZ".to_string(),
    };
    let answers = gather(client, &subject, &body).await?;
    let (_, v) = answers
        .first()
        .context("no server answered (is this a system account user?)")?;
    if json {
        output::json(v);
        return Ok(());
    }
    let d = &v["data"];
    output::section(
        "Server Information",
        &[
            ("Name", s(d, "server_name")),
            ("ID", s(d, "server_id")),
            ("Version", s(d, "version")),
            ("Host", format!("{}:{}", s(d, "host"), i(d, "port"))),
            ("Max Payload", output::bytes(i(d, "max_payload"))),
            ("Connections", i(d, "connections").to_string()),
            ("Subscriptions", i(d, "subscriptions").to_string()),
            ("Messages In", i(d, "in_msgs").to_string()),
            ("Messages Out", i(d, "out_msgs").to_string()),
            ("Uptime", s(d, "uptime")),
            ("System Account", s(d, "system_account")),
        ],
    );
    Ok(())
}
