//! `rill bench request`: request/reply round trips against a built-in responder, reporting the rate
//! and latency percentiles. Each requester has exactly one request in flight, so the latency is the
//! full round trip (requester → server → responder → server → requester) without client-side queueing.

use std::time::Instant;

use anyhow::Context as _;
use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::core::{DRAIN, connect_all};
use super::report::{Phase, Report};
use super::run::{self, Bound, Common, Progress, Target};

/// Queue group of the built-in responders.
const GROUP: &str = "rill-bench";

/// Arguments of `rill bench request`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RequestArgs {
    /// Subject the built-in responder serves
    #[arg(long, default_value = "rill.bench.request")]
    pub(crate) subject: String,
    /// Number of concurrent requesters (each has one request in flight)
    #[arg(long, default_value_t = 1)]
    pub(crate) clients: usize,
    /// Number of responders (one queue group)
    #[arg(long, default_value_t = 1)]
    pub(crate) responders: usize,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Runs `rill bench request`.
pub(crate) async fn request(target: &Target, args: &RequestArgs) -> anyhow::Result<Report> {
    let c = &args.common;
    let (stop_tx, stop_rx) = watch::channel(false);
    let responders = start_responders(target, args, stop_rx).await?;
    let clients = connect_all(target, args.clients).await?;
    let (progress, ticker) = Progress::start("request", c.msgs, run::show_progress(c));
    let bound = c.bound();
    let payload = run::payload(c.size);
    let mut tasks = JoinSet::new();
    let n = clients.len();
    let started = Instant::now();
    for (i, client) in clients.into_iter().enumerate() {
        let job = Job {
            subject: Subject::from(args.subject.as_str()),
            payload: payload.clone(),
            bound: Bound {
                msgs: run::share(c.msgs, n, i),
                ..bound
            },
        };
        tasks.spawn(requester(client, job, progress.clone()));
    }
    let (ok, errors, hist) = join_requesters(tasks).await?;
    let elapsed = started.elapsed();
    ticker.finish();
    let _ = stop_tx.send(true);
    let mut responders = responders;
    while let Some(joined) = responders.join_next().await {
        joined.context("responder task failed")?;
    }
    Ok(Report {
        bench: "request".into(),
        url: target.display(),
        params: json!({"subject": args.subject, "clients": args.clients,
            "responders": args.responders, "msgs": c.msgs, "size": c.size}),
        phases: vec![
            Phase::new("request", ok, c.msgs, c.size, elapsed)
                .errors(errors)
                .latency(&hist),
        ],
    })
}

/// Subscribes the responders (synced with the server) and spawns one echo task per responder.
async fn start_responders(
    target: &Target,
    args: &RequestArgs,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinSet<()>> {
    let deadline = tokio::time::Instant::now() + args.common.duration + DRAIN;
    let mut tasks = JoinSet::new();
    for _ in 0..args.responders.max(1) {
        let client = target.connect().await?;
        let sub = client
            .queue_subscribe(args.subject.clone(), GROUP.to_string())
            .await?;
        client.flush().await?;
        run::sync(&client, target.timeout()).await?;
        tasks.spawn(responder(client, sub, stop.clone(), deadline));
    }
    Ok(tasks)
}

/// Echoes every request's payload to its reply subject until told to stop or the deadline passes.
async fn responder(
    client: Client,
    mut sub: async_nats::Subscriber,
    mut stop: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) {
    loop {
        let msg = tokio::select! {
            msg = sub.next() => msg,
            _ = stop.changed() => None,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some(msg) = msg else { break };
        if let Some(reply) = msg.reply
            && client.publish(reply, msg.payload).await.is_err()
        {
            break;
        }
    }
}

/// What one requester sends.
struct Job {
    subject: Subject,
    payload: Bytes,
    bound: Bound,
}

/// Sends requests one at a time until the bound; returns successes, failures and latencies.
async fn requester(client: Client, job: Job, progress: Progress) -> (u64, u64, Histogram<u64>) {
    let mut hist = run::histogram();
    let (mut ok, mut errors) = (0u64, 0u64);
    while ok + errors < job.bound.msgs && !job.bound.expired() {
        let sent = Instant::now();
        match client
            .request(job.subject.clone(), job.payload.clone())
            .await
        {
            Ok(_) => {
                run::record(&mut hist, sent.elapsed());
                ok += 1;
                progress.add(1);
            }
            Err(_) => errors += 1,
        }
    }
    (ok, errors, hist)
}

async fn join_requesters(
    mut tasks: JoinSet<(u64, u64, Histogram<u64>)>,
) -> anyhow::Result<(u64, u64, Histogram<u64>)> {
    let (mut ok, mut errors) = (0, 0);
    let mut hist = run::histogram();
    while let Some(joined) = tasks.join_next().await {
        let (o, e, h) = joined.context("requester task failed")?;
        ok += o;
        errors += e;
        hist.add(&h).context("merge latency histograms")?;
    }
    Ok((ok, errors, hist))
}
