//! `rill sub`: print messages from a core subscription, or replay a stream through an ordered consumer
//! (`--stream` with a deliver policy flag).

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;

use crate::connect::ConnOpts;
use crate::output;
use crate::parse;

/// Arguments of `rill sub`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Subject to subscribe to (wildcards allowed); with --stream, a filter on the stream's subjects
    subject: Option<String>,
    /// Join this queue group
    #[arg(long, short = 'q')]
    queue: Option<String>,
    /// Exit after this many messages
    #[arg(long)]
    count: Option<u64>,
    /// Also print headers in --raw mode
    #[arg(long)]
    headers: bool,
    /// Print only each message's payload, one per line
    #[arg(long)]
    raw: bool,
    /// Replay this stream through an ephemeral ordered consumer (default: all messages)
    #[arg(long, value_name = "STREAM")]
    stream: Option<String>,
    #[command(flatten)]
    deliver: Deliver,
}

/// Where a stream replay starts (only with --stream).
#[derive(clap::Args, Debug, Default)]
#[group(multiple = false, requires = "stream")]
pub(crate) struct Deliver {
    /// Deliver every message in the stream
    #[arg(long)]
    all: bool,
    /// Deliver only messages published from now on
    #[arg(long)]
    new: bool,
    /// Deliver the last message and what follows
    #[arg(long)]
    last: bool,
    /// Deliver the last message of every subject, then new ones
    #[arg(long)]
    last_per_subject: bool,
    /// Deliver messages newer than this duration ago (e.g. 1h) or RFC 3339 time
    #[arg(long, value_name = "DURATION|TIME")]
    since: Option<String>,
    /// Deliver from this stream sequence on
    #[arg(long, value_name = "SEQ")]
    start_seq: Option<u64>,
}

impl Deliver {
    fn policy(&self) -> anyhow::Result<DeliverPolicy> {
        Ok(if self.new {
            DeliverPolicy::New
        } else if self.last {
            DeliverPolicy::Last
        } else if self.last_per_subject {
            DeliverPolicy::LastPerSubject
        } else if let Some(since) = &self.since {
            DeliverPolicy::ByStartTime {
                start_time: parse::time_or_duration(since, false)?,
            }
        } else if let Some(seq) = self.start_seq {
            DeliverPolicy::ByStartSequence {
                start_sequence: seq,
            }
        } else {
            DeliverPolicy::All
        })
    }
}

/// Runs `rill sub`.
pub(crate) async fn run(conn: &ConnOpts, args: Args) -> anyhow::Result<()> {
    if args.count == Some(0) {
        return Ok(());
    }
    let client = conn.connect().await?;
    match args.stream.clone() {
        Some(stream) => replay(client, &stream, &args).await,
        None => core(client, &args).await,
    }
}

async fn core(client: async_nats::Client, args: &Args) -> anyhow::Result<()> {
    let Some(subject) = args.subject.clone() else {
        bail!("a subject is required (or --stream)");
    };
    let mut sub = match &args.queue {
        Some(q) => client.queue_subscribe(subject.clone(), q.clone()).await,
        None => client.subscribe(subject.clone()).await,
    }
    .with_context(|| format!("subscribe to {subject}"))?;
    client.flush().await.context("flush subscription")?;
    eprintln!("Subscribing on {subject}");
    let mut n = 0u64;
    let forever = async {
        while let Some(msg) = sub.next().await {
            n += 1;
            print_core(n, &msg, args)?;
            if args.count.is_some_and(|c| n >= c) {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = forever => r,
        _ = super::stopped() => Ok(()),
    }
}

fn print_core(n: u64, msg: &async_nats::Message, args: &Args) -> anyhow::Result<()> {
    if args.raw {
        if args.headers
            && let Some(h) = &msg.headers
        {
            output::headers(h);
        }
        output::raw_line(&msg.payload)?;
        return Ok(());
    }
    match &msg.reply {
        Some(reply) => println!(
            "[#{n}] Received on \"{}\" with reply \"{reply}\"",
            msg.subject
        ),
        None => println!("[#{n}] Received on \"{}\"", msg.subject),
    }
    if let Some(h) = &msg.headers {
        output::headers(h);
    }
    println!("\n{}\n", String::from_utf8_lossy(&msg.payload));
    Ok(())
}

async fn replay(client: async_nats::Client, stream: &str, args: &Args) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(client);
    let stream_handle = js
        .get_stream(stream)
        .await
        .with_context(|| format!("stream {stream}"))?;
    // Some deliver policies (last per subject) need a filter: default to all the stream's subjects.
    let filter_subjects = match &args.subject {
        Some(subject) => vec![subject.clone()],
        None => stream_handle.cached_info().config.subjects.clone(),
    };
    let config = OrderedConfig {
        filter_subjects,
        deliver_policy: args.deliver.policy()?,
        ..OrderedConfig::default()
    };
    let consumer = stream_handle
        .create_consumer(config)
        .await
        .context("create ordered consumer")?;
    let mut messages = consumer.messages().await.context("start replay")?;
    eprintln!("Replaying stream {stream}");
    let mut n = 0u64;
    let forever = async {
        while let Some(msg) = messages.next().await {
            let msg = msg.context("replay")?;
            n += 1;
            print_js(n, &msg, args)?;
            if args.count.is_some_and(|c| n >= c) {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = forever => r,
        _ = super::stopped() => Ok(()),
    }
}

fn print_js(n: u64, msg: &async_nats::jetstream::Message, args: &Args) -> anyhow::Result<()> {
    if args.raw {
        return print_core(n, &msg.message, args);
    }
    match msg.info() {
        Ok(info) => println!(
            "[#{n}] Received JetStream message: stream: {} seq {} / subject: {} / time: {}",
            info.stream,
            info.stream_sequence,
            msg.subject,
            parse::rfc3339(info.published)
        ),
        Err(_) => println!("[#{n}] Received on \"{}\"", msg.subject),
    }
    if let Some(h) = &msg.headers {
        output::headers(h);
    }
    println!("\n{}\n", String::from_utf8_lossy(&msg.payload));
    Ok(())
}
