//! `rill pub`: publish one or more messages, with body templates, headers and optional JetStream acks.
//!
//! Delayed delivery: `--at <RFC 3339 time>` or `--delay <duration>` stores the message
//! as a one-shot schedule (`Nats-Schedule: @at <time>`, ADR-51) on
//! `<--schedule-prefix>.<subject>.<unique id>`, targeting the subject; the stream (with
//! `allow_msg_schedules` and both subjects) stores it on the subject at that time.

use std::time::Duration;

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    /// Deliver at this time (RFC 3339, e.g. 2026-12-24T18:00:00Z) through a stream schedule
    #[arg(long, value_parser = parse_time, conflicts_with = "delay")]
    at: Option<OffsetDateTime>,
    /// Deliver after this long (e.g. 5m) through a stream schedule
    #[arg(long, value_parser = parse::duration)]
    delay: Option<Duration>,
    /// Subject prefix the schedule of a delayed message is stored under
    #[arg(long, default_value = "sched")]
    schedule_prefix: String,
    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,
}

fn parse_time(text: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .with_context(|| format!("bad time {text:?} (use RFC 3339, e.g. 2026-12-24T18:00:00Z)"))
}

impl Args {
    /// When a delayed message is due, if it is one.
    fn due(&self) -> Option<OffsetDateTime> {
        self.at
            .or_else(|| self.delay.map(|d| OffsetDateTime::now_utc() + d))
    }
}

/// Headers and subject of a delayed message: a one-shot schedule targeting the
/// subject, stored under its own unique subject.
fn scheduled(args: &Args, due: OffsetDateTime) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let at = due
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .context("due time")?
        .format(&Rfc3339)
        .context("due time")?;
    let id: u64 = rand::random();
    let subject = format!("{}.{}.{id:016x}", args.schedule_prefix, args.subject);
    let mut headers = args.headers.clone();
    headers.push(("Nats-Schedule".to_owned(), format!("@at {at}")));
    headers.push(("Nats-Schedule-Target".to_owned(), args.subject.clone()));
    Ok((subject, headers))
}

/// Runs `rill pub`.
pub(crate) async fn run(conn: &ConnOpts, args: Args) -> anyhow::Result<()> {
    let template_body = super::body_or_stdin(args.body.clone())?;
    let client = conn.connect().await?;
    if let Some(due) = args.due() {
        let body = template::render(&template_body, &Vars::default());
        return publish_delayed(&client, &args, due, body).await;
    }
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

/// Stores one delayed message as a schedule (see the module doc).
async fn publish_delayed(
    client: &async_nats::Client,
    args: &Args,
    due: OffsetDateTime,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let (subject, headers) = scheduled(args, due)?;
    let js = async_nats::jetstream::new(client.clone());
    let headers = super::header_map(&headers).unwrap_or_default();
    let ack = js
        .publish_with_headers(subject.clone(), headers, body.into())
        .await
        .with_context(|| format!("publish to {subject}"))?
        .await
        .with_context(|| format!("schedule on {subject}"))?;
    if !args.quiet {
        let at = due.format(&Rfc3339).unwrap_or_default();
        println!(
            "Scheduled in {} sequence {} for {} at {at} (schedule {subject})",
            ack.stream, ack.sequence, args.subject
        );
    }
    Ok(())
}
