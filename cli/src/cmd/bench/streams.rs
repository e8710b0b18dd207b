//! `rill bench streams`: how fast a server creates many streams (or KV buckets), and — run by
//! `rill bench compare`, which can see the server's process — what they cost in memory and threads.
//! Each create is awaited (`STREAM.CREATE` / a KV bucket create), with `--clients` of them in flight;
//! the streams are deleted again at the end unless `--keep` is given. The phase is `create`, with the
//! create rate and latency percentiles.

use std::time::Instant;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv, stream};
use serde_json::json;
use tokio::task::JoinSet;

use super::js::Storage;
use super::report::{Phase, Report};
use super::run::{self, Common, Progress, Target};

/// Arguments of `rill bench streams`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct StreamsArgs {
    /// Name prefix of the streams (or buckets): `<prefix><n>`
    #[arg(long, default_value = "benchstreams")]
    pub(crate) prefix: String,
    /// Create KV buckets instead of plain streams
    #[arg(long)]
    pub(crate) kv: bool,
    /// Storage type
    #[arg(long, value_enum, default_value_t = Storage::Memory)]
    pub(crate) storage: Storage,
    /// Creates in flight at once
    #[arg(long, default_value_t = 16)]
    pub(crate) clients: usize,
    /// Keep the streams afterwards (they are deleted by default)
    #[arg(long)]
    pub(crate) keep: bool,
    /// `--msgs` is the number of streams to create
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Runs `rill bench streams`.
pub(crate) async fn run(target: &Target, args: &StreamsArgs) -> anyhow::Result<Report> {
    let js = jetstream::new(target.connect().await?);
    let create = create_all(&js, args).await?;
    if !args.keep {
        delete_all(&js, args, args.common.msgs).await;
    }
    let c = &args.common;
    Ok(Report {
        bench: "streams".into(),
        url: target.display(),
        params: json!({"prefix": args.prefix, "kv": args.kv, "storage": args.storage.name(),
            "clients": args.clients, "streams": c.msgs}),
        phases: vec![create],
    })
}

/// Creates `--msgs` streams, `--clients` at a time.
async fn create_all(js: &jetstream::Context, args: &StreamsArgs) -> anyhow::Result<Phase> {
    let c = &args.common;
    let (progress, ticker) = Progress::start("streams create", c.msgs, run::show_progress(c));
    let bound = c.bound();
    let mut tasks = JoinSet::new();
    let mut hist = run::histogram();
    let (mut ok, mut errors, mut next) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    loop {
        while tasks.len() < args.clients.max(1) && next < c.msgs && !bound.expired() {
            tasks.spawn(create_one(js.clone(), args.clone(), next));
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined.context("create task failed")? {
            Ok(took) => {
                run::record(&mut hist, took);
                ok += 1;
                progress.add(1);
            }
            Err(_) => errors += 1,
        }
    }
    ticker.finish();
    Ok(Phase::new("create", ok, c.msgs, 0, started.elapsed())
        .errors(errors)
        .latency(&hist))
}

async fn create_one(
    js: jetstream::Context,
    args: StreamsArgs,
    n: u64,
) -> anyhow::Result<std::time::Duration> {
    let name = format!("{}{n}", args.prefix);
    let at = Instant::now();
    if args.kv {
        js.create_key_value(kv::Config {
            bucket: name,
            storage: args.storage.nats(),
            ..Default::default()
        })
        .await?;
    } else {
        js.create_stream(stream::Config {
            subjects: vec![format!("{name}.>")],
            name,
            storage: args.storage.nats(),
            ..Default::default()
        })
        .await?;
    }
    Ok(at.elapsed())
}

/// Deletes the first `n` streams (or buckets), `--clients` at a time; names never created are
/// skipped by the server's not-found answer.
async fn delete_all(js: &jetstream::Context, args: &StreamsArgs, n: u64) {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        if tasks.len() >= args.clients.max(1) {
            tasks.join_next().await;
        }
        let (js, kv, name) = (js.clone(), args.kv, format!("{}{i}", args.prefix));
        tasks.spawn(async move {
            match kv {
                true => js.delete_key_value(&name).await.is_ok(),
                false => js.delete_stream(&name).await.is_ok(),
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
