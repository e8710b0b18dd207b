//! JetStream benchmarks: `rill bench js pub` (synchronous publish latency with `--sync`, or async
//! publish throughput with a window of in-flight acks), `rill bench js fetch` (pull consumer batches)
//! and `rill bench js ordered` (ordered-consumer replay). Each creates its own stream (`--replace`
//! deletes an old one of that name first) and deletes it at the end unless `--keep` is given.
//!
//! `fetch` and `ordered` first fill the stream (reported as phase `fill`), then time only the reading.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::Subject;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;

use super::report::{Phase, Report};
use super::run::{self, Bound, Common, Progress, Target};

/// Where the messages are kept.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// On disk
    File,
    /// In memory
    Memory,
}

impl Storage {
    /// The async-nats form.
    pub(crate) fn nats(self) -> stream::StorageType {
        match self {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        }
    }

    /// The flag value (`file` or `memory`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Storage::File => "file",
            Storage::Memory => "memory",
        }
    }
}

/// The stream a JetStream benchmark creates.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct StreamOpts {
    /// Stream name
    #[arg(long, default_value = "benchstream")]
    pub(crate) stream: String,
    /// Subject the stream captures and the benchmark publishes to
    #[arg(long, default_value = "rill.bench.js")]
    pub(crate) subject: String,
    /// Storage type
    #[arg(long, value_enum, default_value_t = Storage::File)]
    pub(crate) storage: Storage,
    /// Delete an existing stream of that name first
    #[arg(long)]
    pub(crate) replace: bool,
    /// Keep the stream afterwards (it is deleted by default)
    #[arg(long)]
    pub(crate) keep: bool,
    /// Spread the messages over this many subjects, `<subject>.0` … `<subject>.<N-1>` in
    /// turn (the stream then captures `<subject>.*`)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) subjects: u32,
    /// Replicas of the stream in a JetStream cluster (`num_replicas`)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub(crate) replicas: u32,
}

impl StreamOpts {
    /// The subjects the stream captures.
    fn captured(&self) -> String {
        match self.subjects {
            1 => self.subject.clone(),
            _ => format!("{}.*", self.subject),
        }
    }

    /// The subjects published to, in turn.
    fn published(&self) -> Vec<Subject> {
        match self.subjects {
            1 => vec![Subject::from(self.subject.as_str())],
            n => (0..n)
                .map(|i| Subject::from(format!("{}.{i}", self.subject)))
                .collect(),
        }
    }
}

/// `rill bench js` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub(crate) enum JsCmd {
    /// Publish to a stream (async with a window of in-flight acks, or --sync)
    Pub(JsPubArgs),
    /// Fill a stream, then read it with a pull consumer in batches
    Fetch(JsFetchArgs),
    /// Fill a stream, then replay it with an ordered consumer
    Ordered(JsOrderedArgs),
}

impl JsCmd {
    /// The common flags of whichever subcommand this is.
    pub(crate) fn common(&self) -> &Common {
        match self {
            JsCmd::Pub(a) => &a.common,
            JsCmd::Fetch(a) => &a.common,
            JsCmd::Ordered(a) => &a.common,
        }
    }
}

/// Arguments of `rill bench js pub`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct JsPubArgs {
    #[command(flatten)]
    pub(crate) stream: StreamOpts,
    /// Wait for each ack before the next publish (latency mode)
    #[arg(long)]
    pub(crate) sync: bool,
    /// Acks that may be outstanding per publisher in async mode
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
    /// Number of concurrent publishers
    #[arg(long, default_value_t = 1)]
    pub(crate) pubs: usize,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `rill bench js fetch`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct JsFetchArgs {
    #[command(flatten)]
    pub(crate) stream: StreamOpts,
    /// Messages per fetch request
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Acknowledge every message (explicit ack policy; default: ack policy none)
    #[arg(long)]
    pub(crate) ack: bool,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Arguments of `rill bench js ordered`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct JsOrderedArgs {
    #[command(flatten)]
    pub(crate) stream: StreamOpts,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Runs one `rill bench js` subcommand.
pub(crate) async fn run(target: &Target, cmd: &JsCmd) -> anyhow::Result<Report> {
    match cmd {
        JsCmd::Pub(args) => publish(target, args).await,
        JsCmd::Fetch(args) => fetch(target, args).await,
        JsCmd::Ordered(args) => ordered(target, args).await,
    }
}

/// The async publish window of one publisher (1 in `--sync` mode).
fn window(args: &JsPubArgs) -> usize {
    if args.sync { 1 } else { args.window.max(1) }
}

async fn publish(target: &Target, args: &JsPubArgs) -> anyhow::Result<Report> {
    let c = &args.common;
    let js = jetstream::new(target.connect().await?);
    let guard = create_stream(&js, &args.stream).await?;
    let mut contexts = Vec::new();
    for _ in 0..args.pubs.max(1) {
        contexts.push(jetstream::new(target.connect().await?));
    }
    let (progress, ticker) = Progress::start("js pub", c.msgs, run::show_progress(c));
    let started = Instant::now();
    let (ok, errors, hist) =
        publish_all(contexts, &args.stream, c, window(args), &progress).await?;
    let elapsed = started.elapsed();
    ticker.finish();
    guard.finish(&js).await?;
    Ok(Report {
        bench: "js-pub".into(),
        url: target.display(),
        params: json!({"stream": args.stream.stream, "storage": args.stream.storage.name(),
            "replicas": args.stream.replicas,
            "sync": args.sync, "window": window(args), "pubs": args.pubs, "msgs": c.msgs,
            "size": c.size}),
        phases: vec![
            Phase::new("pub", ok, c.msgs, c.size, elapsed)
                .errors(errors)
                .latency(&hist),
        ],
    })
}

/// Publishes `c.msgs` split over the contexts, each keeping up to `window` acks in flight.
async fn publish_all(
    contexts: Vec<jetstream::Context>,
    opts: &StreamOpts,
    c: &Common,
    window: usize,
    progress: &Progress,
) -> anyhow::Result<(u64, u64, Histogram<u64>)> {
    let bound = c.bound();
    let payload = run::payload(c.size);
    let n = contexts.len();
    let subjects: Arc<[Subject]> = opts.published().into();
    let mut tasks = JoinSet::new();
    for (i, js) in contexts.into_iter().enumerate() {
        let job = PubJob {
            subjects: Arc::clone(&subjects),
            payload: payload.clone(),
            bound: Bound {
                msgs: run::share(c.msgs, n, i),
                ..bound
            },
            window,
        };
        tasks.spawn(js_publisher(js, job, progress.clone()));
    }
    let (mut ok, mut errors) = (0, 0);
    let mut hist = run::histogram();
    while let Some(joined) = tasks.join_next().await {
        let (o, e, h) = joined.context("publisher task failed")?;
        ok += o;
        errors += e;
        hist.add(&h).context("merge latency histograms")?;
    }
    Ok((ok, errors, hist))
}

struct PubJob {
    /// Published to in turn.
    subjects: Arc<[Subject]>,
    payload: Bytes,
    bound: Bound,
    window: usize,
}

/// Publishes with up to `job.window` acks outstanding; the latency of a message runs from its
/// publish call to its ack.
async fn js_publisher(
    js: jetstream::Context,
    job: PubJob,
    progress: Progress,
) -> (u64, u64, Histogram<u64>) {
    let mut hist = run::histogram();
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut inflight = VecDeque::with_capacity(job.window);
    let mut sent = 0u64;
    while sent < job.bound.msgs && !job.bound.expired() {
        if inflight.len() >= job.window
            && let Some((at, ack)) = inflight.pop_front()
        {
            settle(at, ack, &mut hist, &mut ok, &mut errors, &progress).await;
        }
        let at = Instant::now();
        let subject = &job.subjects[(sent % job.subjects.len() as u64) as usize];
        match js.publish(subject.clone(), job.payload.clone()).await {
            Ok(ack) => inflight.push_back((at, ack)),
            Err(_) => errors += 1,
        }
        sent += 1;
    }
    while let Some((at, ack)) = inflight.pop_front() {
        settle(at, ack, &mut hist, &mut ok, &mut errors, &progress).await;
    }
    (ok, errors, hist)
}

async fn settle(
    at: Instant,
    ack: jetstream::context::PublishAckFuture,
    hist: &mut Histogram<u64>,
    ok: &mut u64,
    errors: &mut u64,
    progress: &Progress,
) {
    match ack.await {
        Ok(_) => {
            run::record(hist, at.elapsed());
            *ok += 1;
            progress.add(1);
        }
        Err(_) => *errors += 1,
    }
}

async fn fetch(target: &Target, args: &JsFetchArgs) -> anyhow::Result<Report> {
    let c = &args.common;
    let js = jetstream::new(target.connect().await?);
    let guard = create_stream(&js, &args.stream).await?;
    let fill = fill(target, &args.stream, c).await?;
    let stream = js.get_stream(&args.stream.stream).await?;
    let ack_policy = if args.ack {
        consumer::AckPolicy::Explicit
    } else {
        consumer::AckPolicy::None
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("rill-bench".into()),
            ack_policy,
            ..Default::default()
        })
        .await
        .context("create the pull consumer")?;
    let (progress, ticker) = Progress::start("js fetch", fill.msgs, run::show_progress(c));
    let bound = Bound::new(fill.msgs, c.duration);
    let started = Instant::now();
    let (got, hist) = fetch_all(&consumer, args, bound, &progress).await?;
    let elapsed = started.elapsed();
    ticker.finish();
    guard.finish(&js).await?;
    Ok(Report {
        bench: "js-fetch".into(),
        url: target.display(),
        params: json!({"stream": args.stream.stream, "storage": args.stream.storage.name(),
            "replicas": args.stream.replicas,
            "batch": args.batch, "ack": args.ack, "msgs": c.msgs, "size": c.size}),
        phases: vec![
            fill,
            Phase::new("fetch", got, bound.msgs, c.size, elapsed).latency(&hist),
        ],
    })
}

/// Fetches batches until `bound.msgs` messages arrived; the latency is per batch (request to last
/// message).
async fn fetch_all(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    args: &JsFetchArgs,
    bound: Bound,
    progress: &Progress,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut hist = run::histogram();
    let mut got = 0u64;
    while got < bound.msgs && !bound.expired() {
        let want = (bound.msgs - got).min(args.batch.max(1) as u64) as usize;
        let at = Instant::now();
        let mut batch = consumer
            .batch()
            .max_messages(want)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .context("fetch request")?;
        let mut n = 0;
        while let Some(msg) = tokio::time::timeout_at(bound.deadline(), batch.next())
            .await
            .ok()
            .flatten()
        {
            let msg = msg.map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
            if args.ack {
                msg.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            }
            n += 1;
        }
        if n == 0 {
            bail!("a fetch returned no messages after {got} of {}", bound.msgs);
        }
        run::record(&mut hist, at.elapsed());
        got += n;
        progress.add(n);
    }
    Ok((got, hist))
}

async fn ordered(target: &Target, args: &JsOrderedArgs) -> anyhow::Result<Report> {
    let c = &args.common;
    let js = jetstream::new(target.connect().await?);
    let guard = create_stream(&js, &args.stream).await?;
    let fill = fill(target, &args.stream, c).await?;
    let stream = js.get_stream(&args.stream.stream).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .context("create the ordered consumer")?;
    let (progress, ticker) = Progress::start("js ordered", fill.msgs, run::show_progress(c));
    let bound = Bound::new(fill.msgs, c.duration);
    let started = Instant::now();
    let mut messages = consumer
        .messages()
        .await
        .context("start the ordered consumer")?;
    let mut got = 0u64;
    while got < bound.msgs {
        match tokio::time::timeout_at(bound.deadline(), messages.next()).await {
            Ok(Some(Ok(_))) => {
                got += 1;
                progress.add(1);
            }
            Ok(Some(Err(e))) => bail!("ordered consumer: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    let elapsed = started.elapsed();
    ticker.finish();
    drop(messages);
    guard.finish(&js).await?;
    Ok(Report {
        bench: "js-ordered".into(),
        url: target.display(),
        params: json!({"stream": args.stream.stream, "storage": args.stream.storage.name(),
            "replicas": args.stream.replicas,
            "msgs": c.msgs, "size": c.size}),
        phases: vec![
            fill,
            Phase::new("ordered", got, bound.msgs, c.size, elapsed),
        ],
    })
}

/// Fills the stream with `c.msgs` messages (async, 256 acks in flight) and reports it as `fill`.
async fn fill(target: &Target, opts: &StreamOpts, c: &Common) -> anyhow::Result<Phase> {
    let js = jetstream::new(target.connect().await?);
    let progress = Progress::start("fill", 0, false).0;
    let started = Instant::now();
    let (ok, errors, hist) = publish_all(vec![js], opts, c, 256, &progress).await?;
    if ok == 0 {
        bail!(
            "could not store any message in stream {:?} ({errors} errors)",
            opts.stream
        );
    }
    Ok(Phase::new("fill", ok, c.msgs, c.size, started.elapsed())
        .errors(errors)
        .latency(&hist))
}

/// Deletes the benchmark stream at the end unless `--keep` was given.
#[derive(Debug)]
pub(crate) struct Cleanup {
    name: Option<String>,
}

impl Cleanup {
    /// Deletes the stream (if it is to be deleted).
    pub(crate) async fn finish(self, js: &jetstream::Context) -> anyhow::Result<()> {
        if let Some(name) = self.name {
            js.delete_stream(&name)
                .await
                .with_context(|| format!("delete stream {name}"))?;
        }
        Ok(())
    }
}

/// Creates the benchmark stream (after deleting an old one with `--replace`).
async fn create_stream(js: &jetstream::Context, opts: &StreamOpts) -> anyhow::Result<Cleanup> {
    if opts.replace {
        let _ = js.delete_stream(&opts.stream).await;
    }
    js.create_stream(stream::Config {
        name: opts.stream.clone(),
        subjects: vec![opts.captured()],
        storage: opts.storage.nats(),
        num_replicas: usize::try_from(opts.replicas).unwrap_or(1),
        ..Default::default()
    })
    .await
    .with_context(|| format!("create stream {}", opts.stream))?;
    Ok(Cleanup {
        name: (!opts.keep).then(|| opts.stream.clone()),
    })
}
