//! `rill bench schedules`: message schedules at scale (issue 22). Publishes `--msgs` one-shot
//! schedules (`Nats-Schedule: @at <time>`, each producing one message on `<subject>.out`), their due
//! times spread over `--spread` whole seconds starting `--lead` after the run begins, then reads the
//! produced messages back with an ordered consumer: each one's lateness is its stored time minus its
//! due time (carried in its payload). Phases: `schedule` (publish with acks) and `fire` (lateness
//! percentiles). With `--pid` of a server on this machine, the server's resident memory with every
//! schedule pending is reported too (Linux `/proc`). Against any server with `allow_msg_schedules`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use serde_json::json;

use super::js::Storage;
use super::report::{Phase, Report};
use super::run::{self, Common, Target};
use crate::parse;

/// Arguments of `rill bench schedules`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SchedulesArgs {
    /// Stream name (created with allow_msg_schedules; deleted at the end)
    #[arg(long, default_value = "benchsched")]
    pub(crate) stream: String,
    /// Subject prefix: schedules on `<subject>.<n>`, produced messages on `<subject>.out`
    #[arg(long, default_value = "rill.bench.sched")]
    pub(crate) subject: String,
    /// Storage type
    #[arg(long, value_enum, default_value_t = Storage::File)]
    pub(crate) storage: Storage,
    /// Due times are spread over this many whole seconds
    #[arg(long, default_value_t = 10)]
    pub(crate) spread: u64,
    /// The first due time, after the start (must leave time to publish every schedule)
    #[arg(long, default_value = "25s", value_parser = parse::duration)]
    pub(crate) lead: Duration,
    /// Schedule acks that may be outstanding
    #[arg(long, default_value_t = 1000)]
    pub(crate) window: usize,
    /// Process id of the server, to report its resident memory (same machine, Linux)
    #[arg(long)]
    pub(crate) pid: Option<u32>,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Runs `rill bench schedules`.
pub(crate) async fn run(target: &Target, args: &SchedulesArgs) -> anyhow::Result<Report> {
    let client = target.connect().await?;
    let js = jetstream::new(client.clone());
    let _ = js.delete_stream(&args.stream).await;
    let subject = &args.subject;
    js.create_stream(jetstream::stream::Config {
        name: args.stream.clone(),
        subjects: vec![format!("{subject}.>")],
        storage: args.storage.nats(),
        allow_message_schedules: true,
        ..Default::default()
    })
    .await
    .context("creating the stream (does the server allow message schedules?)")?;
    let rss_before = args.pid.map(rss_kib).transpose()?;
    let first_due = unix_secs() + args.lead.as_secs().max(1);
    let (schedule, published) = publish(&js, args, first_due).await?;
    let rss_pending = args.pid.map(rss_kib).transpose()?;
    if unix_secs() >= first_due {
        bail!("publishing took past the first due time: raise --lead");
    }
    let fire = read_back(&js, args, published, first_due).await;
    let _ = js.delete_stream(&args.stream).await;
    let fire = fire?;
    Ok(Report {
        bench: "schedules".into(),
        url: target.display(),
        params: json!({
            "msgs": args.common.msgs, "spread_s": args.spread, "storage": args.storage.name(),
            "rss_before_kib": rss_before, "rss_pending_kib": rss_pending,
        }),
        phases: vec![schedule, fire],
    })
}

/// Publishes the schedules with up to `window` acks outstanding; the phase and the count acked.
async fn publish(
    js: &jetstream::Context,
    args: &SchedulesArgs,
    first_due: u64,
) -> anyhow::Result<(Phase, u64)> {
    let n = args.common.msgs;
    let target = format!("{}.out", args.subject);
    let start = Instant::now();
    let mut acks = futures::stream::FuturesOrdered::new();
    let (mut acked, mut errors) = (0, 0);
    for i in 0..n {
        let due = first_due + i % args.spread.max(1);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Schedule", format!("@at {}", rfc3339(due)).as_str());
        headers.insert("Nats-Schedule-Target", target.as_str());
        let subject = format!("{}.{i}", args.subject);
        let ack = js
            .publish_with_headers(subject, headers, due.to_string().into())
            .await?;
        acks.push_back(ack.into_future());
        while acks.len() >= args.window.max(1) || (i + 1 == n && !acks.is_empty()) {
            match acks.next().await {
                Some(Ok(_)) => acked += 1,
                Some(Err(_)) => errors += 1,
                None => break,
            }
        }
    }
    let phase = Phase::new("schedule", acked, n, 0, start.elapsed()).errors(errors);
    Ok((phase, acked))
}

/// Reads the `n` produced messages once the last is due: their lateness.
async fn read_back(
    js: &jetstream::Context,
    args: &SchedulesArgs,
    n: u64,
    first_due: u64,
) -> anyhow::Result<Phase> {
    let last_due = UNIX_EPOCH + Duration::from_secs(first_due + args.spread.max(1));
    if let Ok(wait) = last_due.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let stream = js.get_stream(&args.stream).await?;
    let config = consumer::pull::OrderedConfig {
        filter_subject: format!("{}.out", args.subject),
        ..Default::default()
    };
    let mut messages = stream.create_consumer(config).await?.messages().await?;
    let mut hist = run::histogram();
    let start = Instant::now();
    let (mut got, deadline) = (0, tokio::time::Instant::now() + args.common.duration);
    while got < n {
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, messages.next()).await else {
            break;
        };
        let msg = msg?;
        let due: u64 = std::str::from_utf8(&msg.payload)?.trim().parse()?;
        let stored = msg.info().map_err(anyhow::Error::msg)?.published;
        let late_ns = stored.unix_timestamp_nanos() - i128::from(due) * 1_000_000_000;
        run::record(&mut hist, Duration::from_nanos(late_ns.max(0) as u64));
        got += 1;
    }
    Ok(Phase::new("fire", got, n, 0, start.elapsed()).latency(&hist))
}

/// Resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in /proc status")
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` after the epoch as RFC 3339 UTC (`2026-12-05T14:00:00Z`).
fn rfc3339(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::format_description::well_known::Rfc3339;
    t.format(&f).unwrap_or_default()
}
