//! `rill pub`: publish one or more messages, with body templates, headers and optional JetStream acks.

use std::time::Duration;

use anyhow::Context as _;

use crate::connect::ConnOpts;
use crate::parse;
use crate::template::{self, Vars};

/// Arguments of `rill pub`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Subject to publish to
    subject: String,
    /// Message body; read from stdin when omitted. Templates: {{Count}}, {{TimeStamp}}, {{Unix}},
    /// {{UnixNano}}, {{Time}}, {{ID}}, {{Random}}, {{Random min max}}
    body: Option<String>,
    /// Number of messages to publish
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Pause between messages (e.g. 100ms)
    #[arg(long, value_parser = parse::duration)]
    sleep: Option<Duration>,
    /// Header as key:value (repeatable)
    #[arg(short = 'H', long = "header", value_parser = parse::header)]
    headers: Vec<(String, String)>,
    /// Reply subject to set on the message
    #[arg(long)]
    reply: Option<String>,
    /// Publish to JetStream and wait for each acknowledgement
    #[arg(short = 'J', long = "jetstream")]
    jetstream: bool,
    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `rill pub`.
pub(crate) async fn run(conn: &ConnOpts, args: Args) -> anyhow::Result<()> {
    let template_body = super::body_or_stdin(args.body.clone())?;
    let client = conn.connect().await?;
    let js = async_nats::jetstream::new(client.clone());
    for n in 1..=args.count {
        let body = template::render(
            &template_body,
            &Vars {
                count: n,
                ..Vars::default()
            },
        );
        let len = body.len();
        if args.jetstream {
            publish_js(&js, &args, body).await?;
        } else {
            publish_core(&client, &args, body).await?;
        }
        if !args.quiet && args.count == 1 && !args.jetstream {
            eprintln!("Published {len} bytes to \"{}\"", args.subject);
        }
        if let Some(pause) = args.sleep.filter(|_| n < args.count) {
            tokio::time::sleep(pause).await;
        }
    }
    client.flush().await.context("flush")?;
    if !args.quiet && args.count > 1 {
        eprintln!("Published {} messages to \"{}\"", args.count, args.subject);
    }
    Ok(())
}

async fn publish_core(
    client: &async_nats::Client,
    args: &Args,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let subject = args.subject.clone();
    let headers = super::header_map(&args.headers);
    let result = match (&args.reply, headers) {
        (Some(reply), Some(h)) => {
            client
                .publish_with_reply_and_headers(subject, reply.clone(), h, body.into())
                .await
        }
        (Some(reply), None) => {
            client
                .publish_with_reply(subject, reply.clone(), body.into())
                .await
        }
        (None, Some(h)) => client.publish_with_headers(subject, h, body.into()).await,
        (None, None) => client.publish(subject, body.into()).await,
    };
    result.with_context(|| format!("publish to {}", args.subject))
}

async fn publish_js(
    js: &async_nats::jetstream::Context,
    args: &Args,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let subject = args.subject.clone();
    let ack_future = match super::header_map(&args.headers) {
        Some(h) => js.publish_with_headers(subject, h, body.into()).await,
        None => js.publish(subject, body.into()).await,
    }
    .with_context(|| format!("publish to {}", args.subject))?;
    let ack = ack_future
        .await
        .with_context(|| format!("JetStream publish to {}", args.subject))?;
    if !args.quiet {
        let dup = if ack.duplicate { " (duplicate)" } else { "" };
        println!("Stored in {} sequence {}{dup}", ack.stream, ack.sequence);
    }
    Ok(())
}
