//! `rill events`: print JetStream advisories and metrics (`$JS.EVENT.>`) as they arrive.

use anyhow::Context as _;
use futures::StreamExt;
use serde_json::Value;

use crate::connect::ConnOpts;
use crate::output;

/// Arguments of `rill events`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Exit after this many events
    #[arg(long)]
    count: Option<u64>,
    /// Print each event's JSON on one line
    #[arg(long)]
    json: bool,
    /// Subject to listen on
    #[arg(long, default_value = "$JS.EVENT.>")]
    subject: String,
}

/// Runs `rill events`.
pub(crate) async fn run(conn: &ConnOpts, args: Args) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    let mut sub = client
        .subscribe(args.subject.clone())
        .await
        .context("subscribe")?;
    client.flush().await.context("flush subscription")?;
    eprintln!("Listening for advisories on {}", args.subject);
    let mut n = 0u64;
    let run = async {
        while let Some(msg) = sub.next().await {
            print_event(&msg, args.json)?;
            n += 1;
            if args.count.is_some_and(|c| n >= c) {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = run => r,
        _ = super::stopped() => Ok(()),
    }
}

fn print_event(msg: &async_nats::Message, json: bool) -> anyhow::Result<()> {
    if json {
        return Ok(output::raw_line(&msg.payload)?);
    }
    let event: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
    let kind = output::s(&event, "type");
    let kind = kind.rsplit('.').next().unwrap_or("event").to_string();
    let mut details = Vec::new();
    for key in [
        "action",
        "stream",
        "consumer",
        "stream_seq",
        "deliveries",
        "subject",
        "reason",
    ] {
        let value = output::s(&event, key);
        if !value.is_empty() {
            details.push(format!("{key}={value}"));
        }
    }
    println!(
        "[{}] {kind} on {}: {}",
        output::s(&event, "timestamp"),
        msg.subject,
        details.join(" ")
    );
    Ok(())
}
