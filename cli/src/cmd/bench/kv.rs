//! `rill bench kv`: key-value puts then gets, each awaited (so every operation's latency is a full
//! round trip), on a bucket the benchmark creates (`--replace` deletes an old one first) and deletes at
//! the end unless `--keep` is given. Keys cycle through `--keys` names, so gets hit stored keys.

use std::time::Instant;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;

use super::js::Storage;
use super::report::{Phase, Report};
use super::run::{self, Bound, Common, Progress, Target};

/// Arguments of `rill bench kv`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct KvArgs {
    /// Bucket name
    #[arg(long, default_value = "benchkv")]
    pub(crate) bucket: String,
    /// Storage type
    #[arg(long, value_enum, default_value_t = Storage::File)]
    pub(crate) storage: Storage,
    /// Number of distinct keys
    #[arg(long, default_value_t = 1000)]
    pub(crate) keys: u64,
    /// Number of concurrent clients (each has one operation in flight)
    #[arg(long, default_value_t = 1)]
    pub(crate) clients: usize,
    /// Delete an existing bucket of that name first
    #[arg(long)]
    pub(crate) replace: bool,
    /// Keep the bucket afterwards (it is deleted by default)
    #[arg(long)]
    pub(crate) keep: bool,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Which operation a phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
}

/// Runs `rill bench kv`.
pub(crate) async fn run(target: &Target, args: &KvArgs) -> anyhow::Result<Report> {
    let js = jetstream::new(target.connect().await?);
    if args.replace {
        let _ = js.delete_key_value(&args.bucket).await;
    }
    js.create_key_value(kv::Config {
        bucket: args.bucket.clone(),
        history: 1,
        storage: args.storage.nats(),
        ..Default::default()
    })
    .await
    .with_context(|| format!("create bucket {}", args.bucket))?;
    let mut stores = Vec::new();
    for _ in 0..args.clients.max(1) {
        let js = jetstream::new(target.connect().await?);
        stores.push(js.get_key_value(&args.bucket).await?);
    }
    let put = phase(&stores, args, Op::Put).await?;
    let get = phase(&stores, args, Op::Get).await?;
    if !args.keep {
        js.delete_key_value(&args.bucket)
            .await
            .with_context(|| format!("delete bucket {}", args.bucket))?;
    }
    let c = &args.common;
    Ok(Report {
        bench: "kv".into(),
        url: target.display(),
        params: json!({"bucket": args.bucket, "storage": args.storage.name(),
            "keys": args.keys, "clients": args.clients, "msgs": c.msgs, "size": c.size}),
        phases: vec![put, get],
    })
}

/// Runs `c.msgs` operations of one kind split over the stores.
async fn phase(stores: &[kv::Store], args: &KvArgs, op: Op) -> anyhow::Result<Phase> {
    let c = &args.common;
    let name = if op == Op::Put { "put" } else { "get" };
    let (progress, ticker) = Progress::start(&format!("kv {name}"), c.msgs, run::show_progress(c));
    let bound = c.bound();
    let payload = run::payload(c.size);
    let n = stores.len();
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let mut first = 0;
    for (i, store) in stores.iter().enumerate() {
        let job = Job {
            op,
            first,
            keys: args.keys.max(1),
            payload: payload.clone(),
            bound: Bound {
                msgs: run::share(c.msgs, n, i),
                ..bound
            },
        };
        first += job.bound.msgs;
        tasks.spawn(worker(store.clone(), job, progress.clone()));
    }
    let (mut ok, mut errors) = (0, 0);
    let mut hist = run::histogram();
    while let Some(joined) = tasks.join_next().await {
        let (o, e, h) = joined.context("kv worker failed")?;
        ok += o;
        errors += e;
        hist.add(&h).context("merge latency histograms")?;
    }
    let elapsed = started.elapsed();
    ticker.finish();
    Ok(Phase::new(name, ok, c.msgs, c.size, elapsed)
        .errors(errors)
        .latency(&hist))
}

struct Job {
    op: Op,
    first: u64,
    keys: u64,
    payload: Bytes,
    bound: Bound,
}

/// One client's operations, one at a time; a get that finds nothing counts as an error.
async fn worker(store: kv::Store, job: Job, progress: Progress) -> (u64, u64, Histogram<u64>) {
    let mut hist = run::histogram();
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut i = 0;
    while i < job.bound.msgs && !job.bound.expired() {
        let key = format!("k{}", (job.first + i) % job.keys);
        let at = Instant::now();
        let done = match job.op {
            Op::Put => store.put(key, job.payload.clone()).await.is_ok(),
            Op::Get => matches!(store.get(key).await, Ok(Some(_))),
        };
        if done {
            run::record(&mut hist, at.elapsed());
            ok += 1;
            progress.add(1);
        } else {
            errors += 1;
        }
        i += 1;
    }
    (ok, errors, hist)
}
