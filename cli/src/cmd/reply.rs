//! `rill reply`: answer every request on a subject with a (templated) body until stopped or `--count`.

use anyhow::Context as _;
use futures::StreamExt;

use crate::connect::ConnOpts;
use crate::parse;
use crate::template::{self, Vars};

/// Arguments of `rill reply`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Subject to answer on (wildcards allowed)
    subject: String,
    /// Reply body. Templates: {{Request}} (the request body), {{Subject}}, {{Count}}, {{TimeStamp}},
    /// {{Unix}}, {{ID}}, {{Random}}
    body: String,
    /// Join this queue group, so several repliers share the load
    #[arg(long, short = 'q')]
    queue: Option<String>,
    /// Exit after answering this many requests
    #[arg(long)]
    count: Option<u64>,
    /// Header to add to replies as key:value (repeatable)
    #[arg(short = 'H', long = "header", value_parser = parse::header)]
    headers: Vec<(String, String)>,
    /// Do not print a line per request
    #[arg(long)]
    quiet: bool,
}

/// Runs `rill reply`.
pub(crate) async fn run(conn: &ConnOpts, args: Args) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    let mut sub = match &args.queue {
        Some(q) => {
            client
                .queue_subscribe(args.subject.clone(), q.clone())
                .await
        }
        None => client.subscribe(args.subject.clone()).await,
    }
    .with_context(|| format!("subscribe to {}", args.subject))?;
    client.flush().await.context("flush subscription")?;
    eprintln!("Listening on \"{}\"", args.subject);
    let mut n = 0u64;
    let serve = async {
        while let Some(msg) = sub.next().await {
            let Some(reply_to) = msg.reply.clone() else {
                continue;
            };
            n += 1;
            let vars = Vars {
                count: n,
                request: Some(&msg.payload),
                subject: Some(msg.subject.as_str()),
            };
            let body = template::render(args.body.as_bytes(), &vars);
            match super::header_map(&args.headers) {
                Some(h) => client.publish_with_headers(reply_to, h, body.into()).await,
                None => client.publish(reply_to, body.into()).await,
            }
            .context("publish reply")?;
            client.flush().await.context("flush reply")?;
            if !args.quiet {
                eprintln!("[#{n}] Answered request on \"{}\"", msg.subject);
            }
            if args.count.is_some_and(|c| n >= c) {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = serve => r,
        _ = super::stopped() => Ok(()),
    }
}
