//! `rill object`: object store buckets through async-nats (ADR-20 conventions over an `OBJ_<bucket>`
//! stream). Uploads from a terminal show a simple progress line on stderr.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, object_store};
use futures::StreamExt;
use rill_protocol::jsapi::StreamInfo;
use serde_json::json;
use tokio::io::{AsyncRead, ReadBuf};

use super::stream_flags::Storage;
use crate::connect::ConnOpts;
use crate::jsapi::Api;
use crate::output::{self, Table};
use crate::parse;

/// `rill object` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Create a bucket
    #[command(alias = "create", alias = "new")]
    Add {
        /// Bucket name
        bucket: String,
        /// Expire objects after this long
        #[arg(long, value_parser = parse::duration)]
        ttl: Option<Duration>,
        /// Storage backend
        #[arg(long, default_value = "file")]
        storage: Storage,
        /// Number of replicas
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Largest bucket size (-1 = unlimited)
        #[arg(long, default_value = "-1", allow_negative_numbers = true, value_parser = parse::size)]
        max_bucket_size: i64,
        /// Description
        #[arg(long)]
        description: Option<String>,
    },
    /// Upload a file (`-` = stdin)
    Put {
        /// Bucket name
        bucket: String,
        /// File to upload
        file: PathBuf,
        /// Object name (default: the file name)
        #[arg(long)]
        name: Option<String>,
        /// Description
        #[arg(long)]
        description: Option<String>,
    },
    /// Download an object to stdout or a file
    Get {
        /// Bucket name
        bucket: String,
        /// Object name
        name: String,
        /// Write to this file instead of stdout
        #[arg(long, short = 'O')]
        output: Option<PathBuf>,
    },
    /// List buckets, or the objects in one bucket
    #[command(alias = "list")]
    Ls {
        /// Bucket whose objects to list
        bucket: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete an object (or the whole bucket when no name is given)
    #[command(alias = "del", alias = "delete")]
    Rm {
        /// Bucket name
        bucket: String,
        /// Object name
        name: Option<String>,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long, short = 'f')]
        force: bool,
    },
}

/// Runs a `rill object` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    let js = jetstream::new(client.clone());
    match cmd {
        Cmd::Add {
            bucket,
            ttl,
            storage,
            replicas,
            max_bucket_size,
            description,
        } => {
            let config = object_store::Config {
                bucket: bucket.clone(),
                description,
                max_age: ttl.unwrap_or_default(),
                max_bytes: max_bucket_size,
                storage: match storage {
                    Storage::File => jetstream::stream::StorageType::File,
                    Storage::Memory => jetstream::stream::StorageType::Memory,
                },
                num_replicas: replicas,
                ..object_store::Config::default()
            };
            js.create_object_store(config)
                .await
                .with_context(|| format!("create bucket {bucket}"))?;
            println!("Created object store bucket {bucket}");
            Ok(())
        }
        Cmd::Put {
            bucket,
            file,
            name,
            description,
        } => put(&js, &bucket, file, name, description).await,
        Cmd::Get {
            bucket,
            name,
            output,
        } => get(&js, &bucket, &name, output).await,
        Cmd::Ls {
            bucket: Some(bucket),
            json,
        } => objects(&js, &bucket, json).await,
        Cmd::Ls { bucket: None, json } => buckets(&Api::new(client), json).await,
        Cmd::Rm { bucket, name, .. } => rm(&js, &bucket, name).await,
    }
}

async fn open(js: &jetstream::Context, bucket: &str) -> anyhow::Result<object_store::ObjectStore> {
    js.get_object_store(bucket)
        .await
        .with_context(|| format!("bucket {bucket}"))
}

async fn put(
    js: &jetstream::Context,
    bucket: &str,
    file: PathBuf,
    name: Option<String>,
    description: Option<String>,
) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    let stdin = file.as_os_str() == "-";
    let name = match name {
        Some(name) => name,
        None if stdin => bail!("--name is required when uploading from stdin"),
        None => file
            .file_name()
            .and_then(|n| n.to_str())
            .context("cannot derive an object name from the path; use --name")?
            .to_string(),
    };
    let meta = object_store::ObjectMetadata {
        name: name.clone(),
        description,
        ..Default::default()
    };
    let info = if stdin {
        let mut reader = Progress::new(tokio::io::stdin(), None);
        store.put(meta, &mut reader).await
    } else {
        let f = tokio::fs::File::open(&file)
            .await
            .with_context(|| format!("open {}", file.display()))?;
        let total = f.metadata().await.ok().map(|m| m.len());
        let mut reader = Progress::new(f, total);
        store.put(meta, &mut reader).await
    }
    .with_context(|| format!("upload {name}"))?;
    println!(
        "Stored {} ({}) in {bucket} as {name}",
        output::bytes(info.size as i64),
        info.digest.unwrap_or_default()
    );
    Ok(())
}

async fn get(
    js: &jetstream::Context,
    bucket: &str,
    name: &str,
    output_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    let mut object = store
        .get(name)
        .await
        .with_context(|| format!("object {name}"))?;
    match output_path {
        Some(path) => {
            let mut f = tokio::fs::File::create(&path)
                .await
                .with_context(|| format!("create {}", path.display()))?;
            let n = tokio::io::copy(&mut object, &mut f)
                .await
                .context("download")?;
            eprintln!("Wrote {} to {}", output::bytes(n as i64), path.display());
        }
        None => {
            let mut out = tokio::io::stdout();
            tokio::io::copy(&mut object, &mut out)
                .await
                .context("download")?;
            tokio::io::AsyncWriteExt::flush(&mut out).await?;
        }
    }
    Ok(())
}

async fn objects(js: &jetstream::Context, bucket: &str, json_out: bool) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    let mut list = store.list().await.context("list objects")?;
    let mut infos = Vec::new();
    while let Some(info) = list.next().await {
        infos.push(info.context("list objects")?);
    }
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    if json_out {
        output::json(&serde_json::to_value(&infos)?);
        return Ok(());
    }
    let mut table = Table::new(&["Name", "Size", "Chunks", "Digest"]);
    for o in &infos {
        table.row(vec![
            o.name.clone(),
            output::bytes(o.size as i64),
            o.chunks.to_string(),
            o.digest.clone().unwrap_or_default(),
        ]);
    }
    table
        .title(format!("Objects in {bucket}: {}", infos.len()))
        .print();
    Ok(())
}

async fn buckets(api: &Api, json_out: bool) -> anyhow::Result<()> {
    let streams: Vec<(String, StreamInfo)> = api
        .streams()
        .await?
        .into_iter()
        .filter_map(|(_, st)| Some((st.config.name.strip_prefix("OBJ_")?.to_string(), st)))
        .collect();
    if json_out {
        let names: Vec<&String> = streams.iter().map(|(name, _)| name).collect();
        output::json(&json!(names));
        return Ok(());
    }
    let mut table = Table::new(&["Bucket", "Size", "Description"]);
    for (name, st) in &streams {
        table.row(vec![
            name.clone(),
            output::bytes(i64::try_from(st.state.bytes).unwrap_or(i64::MAX)),
            st.config.description.clone(),
        ]);
    }
    table
        .title(format!("Object store buckets: {}", streams.len()))
        .print();
    Ok(())
}

async fn rm(js: &jetstream::Context, bucket: &str, name: Option<String>) -> anyhow::Result<()> {
    match name {
        Some(name) => {
            open(js, bucket)
                .await?
                .delete(&name)
                .await
                .with_context(|| format!("delete {name}"))?;
            println!("Deleted {bucket} > {name}");
        }
        None => {
            js.delete_object_store(bucket)
                .await
                .with_context(|| format!("delete bucket {bucket}"))?;
            println!("Deleted bucket {bucket}");
        }
    }
    Ok(())
}

/// An `AsyncRead` wrapper that prints upload progress to stderr when stderr is a terminal.
struct Progress<R> {
    inner: R,
    total: Option<u64>,
    done: u64,
    shown_percent: u64,
    enabled: bool,
}

impl<R> Progress<R> {
    fn new(inner: R, total: Option<u64>) -> Self {
        Progress {
            inner,
            total,
            done: 0,
            shown_percent: 0,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn report(&mut self, finished: bool) {
        if !self.enabled {
            return;
        }
        match self.total.filter(|t| *t > 0) {
            Some(total) => {
                let percent = self.done * 100 / total;
                if percent > self.shown_percent || finished {
                    self.shown_percent = percent;
                    let bar = "#".repeat((percent / 4) as usize);
                    eprint!(
                        "\r[{bar:<25}] {percent:>3}% {}",
                        output::bytes(self.done as i64)
                    );
                }
            }
            None => eprint!("\r{} read", output::bytes(self.done as i64)),
        }
        if finished {
            eprintln!();
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Progress<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let read = (buf.filled().len() - before) as u64;
            self.done += read;
            self.report(read == 0);
        }
        poll
    }
}
