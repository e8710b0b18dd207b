//! Core NATS benchmarks: `rill bench pub` (publish only), `rill bench pubsub` (N publishers, M
//! subscribers, optionally one queue group, optionally on other servers of a cluster with
//! `--sub-server`). `rill bench request` is in `request.rs`.
//!
//! Honesty rules: every publisher, subscriber and client has its own connection; a publisher's time
//! ends only after a server round trip proves all its messages were processed; subscribers count only
//! messages they actually received; every loop stops at its message count or its deadline, whichever
//! comes first. A `sub` phase's `errors` counts the events that lose messages: the client's
//! slow-consumer events (async-nats dropped messages because the subscriber fell more than its queue
//! behind) and disconnections (for example the server cutting the subscriber off as a slow consumer). In `pubsub`, one message in [`STAMP_EVERY`] carries its send time, so subscribers also
//! report end-to-end latency (under full load, so it includes queueing).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::report::{Phase, Report};
use super::run::{self, Bound, Common, Progress, Target};

/// One published message in this many carries a send-time stamp in `pubsub`.
pub(crate) const STAMP_EVERY: u64 = 32;
/// A subscriber that got nothing for this long after the publishers finished stops waiting.
const IDLE: Duration = Duration::from_millis(500);
/// Smallest and largest client-side queue of a subscriber, in messages.
const MIN_QUEUE: u64 = 64 * 1024;
const MAX_QUEUE: u64 = 4 * 1024 * 1024;
/// How long subscribers and responders may run past the publishers' deadline to drain.
pub(crate) const DRAIN: Duration = Duration::from_secs(5);

/// Arguments of `rill bench pub`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct PubArgs {
    /// Subject to publish to
    #[arg(long, default_value = "rill.bench")]
    pub(crate) subject: String,
    /// Number of concurrent publishers, each on its own connection
    #[arg(long, default_value_t = 1)]
    pub(crate) pubs: usize,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `rill bench pubsub`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct PubSubArgs {
    /// Subject to publish and subscribe to
    #[arg(long, default_value = "rill.bench")]
    pub(crate) subject: String,
    /// Number of concurrent publishers
    #[arg(long, default_value_t = 1)]
    pub(crate) pubs: usize,
    /// Number of subscribers, each on its own connection
    #[arg(long, default_value_t = 1)]
    pub(crate) subs: usize,
    /// Put the subscribers in one queue group (each message goes to one of them)
    #[arg(long, num_args = 0..=1, default_missing_value = "rill-bench", value_name = "GROUP")]
    pub(crate) queue: Option<String>,
    /// Connect the subscribers to these servers instead, in turn (other members of the
    /// publishers' cluster: every message then crosses a route); comma separated
    #[arg(long = "sub-server", value_delimiter = ',', value_name = "URL")]
    pub(crate) sub_servers: Vec<String>,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Runs `rill bench pub`.
pub(crate) async fn publish(target: &Target, args: &PubArgs) -> anyhow::Result<Report> {
    let c = &args.common;
    let clients = connect_all(target, args.pubs).await?;
    let (progress, ticker) = Progress::start("pub", c.msgs, run::show_progress(c));
    let started = Instant::now();
    let (sent, _) = run_publishers(target, clients, &args.subject, c, &progress, None).await?;
    let elapsed = started.elapsed();
    ticker.finish();
    Ok(Report {
        bench: "pub".into(),
        url: target.display(),
        params: json!({"subject": args.subject, "pubs": args.pubs, "msgs": c.msgs, "size": c.size}),
        phases: vec![Phase::new("pub", sent, c.msgs, c.size, elapsed)],
    })
}

/// Runs `rill bench pubsub`.
pub(crate) async fn pubsub(target: &Target, args: &PubSubArgs) -> anyhow::Result<Report> {
    let c = &args.common;
    let drops = Arc::new(AtomicU64::new(0));
    let subs = subscribe_all(target, args, &drops).await?;
    let pubs = connect_all(target, args.pubs).await?;
    let (own, total) = match args.queue {
        Some(_) => (u64::MAX, c.msgs),
        None => (c.msgs, c.msgs.saturating_mul(args.subs as u64)),
    };
    let (progress, ticker) = Progress::start("sub", total, run::show_progress(c));
    let (done_tx, done_rx) = watch::channel(false);
    let epoch = Instant::now();
    let bound = c.bound();
    let limits = SubLimits {
        own,
        total,
        deadline: bound.deadline() + DRAIN,
    };
    let mut readers = JoinSet::new();
    for sub in subs {
        readers.spawn(subscriber(
            sub,
            limits,
            progress.clone(),
            done_rx.clone(),
            epoch,
        ));
    }
    let publish_progress = Progress::start("pub", 0, false).0;
    let started = Instant::now();
    let (sent, _) = run_publishers(
        target,
        pubs,
        &args.subject,
        c,
        &publish_progress,
        Some(epoch),
    )
    .await?;
    let pub_elapsed = started.elapsed();
    let _ = done_tx.send(true);
    let (received, last, hist) = join_subscribers(readers).await?;
    ticker.finish();
    let sub_elapsed = last.map_or(Duration::ZERO, |t| t.saturating_duration_since(started));
    Ok(Report {
        bench: "pubsub".into(),
        url: target.display(),
        params: json!({"subject": args.subject, "pubs": args.pubs, "subs": args.subs,
            "queue": args.queue, "sub_servers": args.sub_servers, "msgs": c.msgs, "size": c.size}),
        phases: vec![
            Phase::new("pub", sent, c.msgs, c.size, pub_elapsed),
            Phase::new("sub", received, total, c.size, sub_elapsed)
                .errors(drops.load(Ordering::Relaxed))
                .latency(&hist),
        ],
    })
}

/// Connects `n` clients, one after the other.
pub(crate) async fn connect_all(target: &Target, n: usize) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        clients.push(target.connect().await?);
    }
    Ok(clients)
}

/// Runs one publisher task per client, each sending its share of `c.msgs` (stamped one in
/// [`STAMP_EVERY`] when `epoch` is given). Returns the messages sent and the time the last one finished.
async fn run_publishers(
    target: &Target,
    clients: Vec<Client>,
    subject: &str,
    c: &Common,
    progress: &Progress,
    epoch: Option<Instant>,
) -> anyhow::Result<(u64, Instant)> {
    let bound = c.bound();
    let payload = run::payload(c.size);
    let n = clients.len();
    let mut tasks = JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let job = PubJob {
            subject: Subject::from(subject),
            payload: payload.clone(),
            bound: Bound {
                msgs: run::share(c.msgs, n, i),
                ..bound
            },
            epoch,
            timeout: target.timeout(),
        };
        tasks.spawn(publisher(client, job, progress.clone()));
    }
    let mut sent = 0;
    while let Some(joined) = tasks.join_next().await {
        sent += joined.context("publisher task failed")??;
    }
    Ok((sent, Instant::now()))
}

/// What one publisher sends.
struct PubJob {
    subject: Subject,
    payload: Bytes,
    bound: Bound,
    epoch: Option<Instant>,
    timeout: Duration,
}

/// Publishes up to `job.bound.msgs` messages, then flushes and waits for the server round trip.
async fn publisher(client: Client, job: PubJob, progress: Progress) -> anyhow::Result<u64> {
    const BATCH: u64 = 1024;
    let mut sent = 0u64;
    let mut reported = 0u64;
    while sent < job.bound.msgs {
        if sent.is_multiple_of(BATCH) {
            if job.bound.expired() {
                break;
            }
            progress.add(sent - reported);
            reported = sent;
        }
        let body = match job.epoch {
            Some(epoch) if sent.is_multiple_of(STAMP_EVERY) => run::stamped(&job.payload, epoch),
            _ => job.payload.clone(),
        };
        client.publish(job.subject.clone(), body).await?;
        sent += 1;
    }
    progress.add(sent - reported);
    client.flush().await?;
    run::sync(&client, job.timeout).await?;
    Ok(sent)
}

/// Subscribes every subscriber of `args` on its own connection and makes sure the server has the
/// subscription before any message is published. Each subscriber's client queue holds the whole run
/// (up to [`MAX_QUEUE`]), so a subscriber that falls behind the publisher buffers rather than drops.
async fn subscribe_all(
    target: &Target,
    args: &PubSubArgs,
    drops: &Arc<AtomicU64>,
) -> anyhow::Result<Vec<async_nats::Subscriber>> {
    let capacity = args.common.msgs.clamp(MIN_QUEUE, MAX_QUEUE) as usize;
    let mut subs = Vec::with_capacity(args.subs);
    let prober = match args.sub_servers.is_empty() {
        true => None,
        false => Some(target.connect().await?),
    };
    for i in 0..args.subs.max(1) {
        let own = match args.sub_servers.get(i % args.sub_servers.len().max(1)) {
            Some(url) => target.at(url),
            None => target.clone(),
        };
        let client = own.connect_subscriber(capacity, Arc::clone(drops)).await?;
        let sub = match &args.queue {
            Some(group) => {
                client
                    .queue_subscribe(args.subject.clone(), group.clone())
                    .await?
            }
            None => client.subscribe(args.subject.clone()).await?,
        };
        client.flush().await?;
        run::sync(&client, target.timeout()).await?;
        if let Some(prober) = &prober {
            wait_routed(prober, &client, target.timeout()).await?;
        }
        subs.push(sub);
    }
    Ok(subs)
}

/// Waits until the publishers' server (where `prober` is connected) knows the interest of
/// `client`, a subscriber on another server: `client` subscribes to a probe subject of its
/// own after its bench subscription, so once a probe published through `prober` reaches it
/// the bench subscription has crossed the route too (a route carries interest in order).
async fn wait_routed(prober: &Client, client: &Client, timeout: Duration) -> anyhow::Result<()> {
    let probe = format!("_rill_bench_probe.{}", client.new_inbox().replace('.', "_"));
    let mut arrivals = client.subscribe(probe.clone()).await?;
    client.flush().await?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        prober.publish(probe.clone(), Bytes::new()).await?;
        prober.flush().await?;
        if tokio::time::timeout(Duration::from_millis(50), arrivals.next())
            .await
            .is_ok_and(|m| m.is_some())
        {
            arrivals.unsubscribe().await?;
            return Ok(());
        }
    }
    anyhow::bail!(
        "the subscription on another server did not reach the publishers' server within {timeout:?}"
    )
}

/// When a subscriber stops: its own count, the count over all subscribers, or the deadline.
#[derive(Debug, Clone, Copy)]
struct SubLimits {
    own: u64,
    total: u64,
    deadline: tokio::time::Instant,
}

/// What one subscriber saw.
type SubResult = (u64, Option<Instant>, Histogram<u64>);

/// Receives until a limit is reached, or until nothing arrived for [`IDLE`] after the publishers
/// finished (`done`). Returns the count, the time of the last message and the stamp latencies.
async fn subscriber(
    mut sub: async_nats::Subscriber,
    limits: SubLimits,
    progress: Progress,
    done: watch::Receiver<bool>,
    epoch: Instant,
) -> SubResult {
    let mut hist = run::histogram();
    let mut received = 0u64;
    let mut last = None;
    while received < limits.own && progress.get() < limits.total {
        let next = tokio::time::timeout(IDLE, sub.next());
        match tokio::time::timeout_at(limits.deadline, next).await {
            Err(_) | Ok(Ok(None)) => break,
            Ok(Err(_)) if *done.borrow() => break,
            Ok(Err(_)) => {}
            Ok(Ok(Some(msg))) => {
                received += 1;
                progress.add(1);
                last = Some(Instant::now());
                if let Some(latency) = run::stamp_latency(&msg.payload, epoch) {
                    run::record(&mut hist, latency);
                }
            }
        }
    }
    (received, last, hist)
}

async fn join_subscribers(mut readers: JoinSet<SubResult>) -> anyhow::Result<SubResult> {
    let mut received = 0;
    let mut last: Option<Instant> = None;
    let mut hist = run::histogram();
    while let Some(joined) = readers.join_next().await {
        let (n, at, h) = joined.context("subscriber task failed")?;
        received += n;
        last = last.max(at);
        hist.add(&h).context("merge latency histograms")?;
    }
    Ok((received, last, hist))
}
