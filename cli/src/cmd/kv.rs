//! `rill kv`: key-value buckets through async-nats's KV API (the ADR-8 conventions over a `KV_<bucket>`
//! stream), with bucket state read as raw stream info.

use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use rill_protocol::jsapi::{ApiSubject, StreamInfo};
use serde_json::json;

use super::stream_flags::Storage;
use crate::connect::ConnOpts;
use crate::jsapi::{Api, typed};
use crate::output::{self, Table, word};
use crate::parse;

/// `rill kv` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Create a bucket
    #[command(alias = "create", alias = "new")]
    Add {
        /// Bucket name
        bucket: String,
        /// Values kept per key
        #[arg(long, default_value_t = 1)]
        history: i64,
        /// Expire values after this long (e.g. 1h)
        #[arg(long, value_parser = parse::duration)]
        ttl: Option<Duration>,
        /// Storage backend
        #[arg(long, default_value = "file")]
        storage: Storage,
        /// Number of replicas
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Largest value accepted (-1 = unlimited)
        #[arg(long, default_value = "-1", allow_negative_numbers = true, value_parser = parse::size)]
        max_value_size: i64,
        /// Largest bucket size (-1 = unlimited)
        #[arg(long, default_value = "-1", allow_negative_numbers = true, value_parser = parse::size)]
        max_bucket_size: i64,
        /// Description
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Store a value (read from stdin when omitted)
    Put {
        /// Bucket name
        bucket: String,
        /// Key
        key: String,
        /// Value
        value: Option<String>,
    },
    /// Print a key's value
    Get {
        /// Bucket name
        bucket: String,
        /// Key
        key: String,
        /// A specific revision
        #[arg(long)]
        revision: Option<u64>,
        /// Print only the value
        #[arg(long)]
        raw: bool,
    },
    /// Delete a key (or the whole bucket when no key is given)
    #[command(alias = "rm")]
    Del {
        /// Bucket name
        bucket: String,
        /// Key
        key: Option<String>,
        /// Purge the key's history instead of adding a delete marker
        #[arg(long)]
        purge: bool,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Show every stored revision of a key
    History {
        /// Bucket name
        bucket: String,
        /// Key
        key: String,
    },
    /// Print changes to a bucket (or one key / key pattern) as they happen
    Watch {
        /// Bucket name
        bucket: String,
        /// Key or pattern (default: all keys)
        key: Option<String>,
        /// Exit after this many updates
        #[arg(long)]
        count: Option<u64>,
    },
    /// List buckets, or the keys of one bucket
    #[command(alias = "list")]
    Ls {
        /// Bucket whose keys to list
        bucket: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `rill kv` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    let js = jetstream::new(client.clone());
    match cmd {
        Cmd::Add { .. } => add(&js, &Api::new(client), cmd).await,
        Cmd::Put { bucket, key, value } => {
            let value = super::body_or_stdin(value)?;
            let store = open(&js, &bucket).await?;
            store
                .put(&key, value.clone().into())
                .await
                .with_context(|| format!("put {key}"))?;
            output::raw_line(&value)?;
            Ok(())
        }
        Cmd::Get {
            bucket,
            key,
            revision,
            raw,
        } => get(&js, &bucket, &key, revision, raw).await,
        Cmd::Del {
            bucket, key, purge, ..
        } => del(&js, &bucket, key, purge).await,
        Cmd::History { bucket, key } => history(&js, &bucket, &key).await,
        Cmd::Watch { bucket, key, count } => watch(&js, &bucket, key, count).await,
        Cmd::Ls {
            bucket: Some(bucket),
            json,
        } => keys(&js, &bucket, json).await,
        Cmd::Ls { bucket: None, json } => buckets(&Api::new(client), json).await,
    }
}

async fn open(js: &jetstream::Context, bucket: &str) -> anyhow::Result<kv::Store> {
    js.get_key_value(bucket)
        .await
        .with_context(|| format!("bucket {bucket}"))
}

async fn add(js: &jetstream::Context, api: &Api, cmd: Cmd) -> anyhow::Result<()> {
    let Cmd::Add {
        bucket,
        history,
        ttl,
        storage,
        replicas,
        max_value_size,
        max_bucket_size,
        description,
    } = cmd
    else {
        bail!("internal: kv add called with another command");
    };
    let config = kv::Config {
        bucket: bucket.clone(),
        description,
        history,
        max_age: ttl.unwrap_or_default(),
        storage: match storage {
            Storage::File => jetstream::stream::StorageType::File,
            Storage::Memory => jetstream::stream::StorageType::Memory,
        },
        num_replicas: replicas,
        max_value_size: i32::try_from(max_value_size).unwrap_or(i32::MAX),
        max_bytes: max_bucket_size,
        ..kv::Config::default()
    };
    js.create_key_value(config)
        .await
        .with_context(|| format!("create bucket {bucket}"))?;
    let reply = api
        .request(ApiSubject::StreamInfo(&format!("KV_{bucket}")), &())
        .await?;
    show_bucket(&bucket, &typed(&reply)?);
    Ok(())
}

fn show_bucket(bucket: &str, info: &StreamInfo) {
    let (c, st) = (&info.config, &info.state);
    output::section(
        &format!("Information for Key-Value Store Bucket {bucket}"),
        &[
            ("Description", c.description.clone()),
            ("Values Stored", st.messages.to_string()),
            ("History Kept", c.max_msgs_per_subject.to_string()),
            ("Maximum Age", output::age(c.max_age.0)),
            (
                "Maximum Value Size",
                output::bytes(i64::from(c.max_msg_size)),
            ),
            ("Maximum Bucket Size", output::bytes(c.max_bytes)),
            ("Storage", word(&c.storage)),
            ("Backing Stream", c.name.clone()),
        ],
    );
}

async fn get(
    js: &jetstream::Context,
    bucket: &str,
    key: &str,
    revision: Option<u64>,
    raw: bool,
) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    let entry = match revision {
        Some(rev) => store.entry_for_revision(key, rev).await,
        None => store.entry(key).await,
    }
    .with_context(|| format!("get {key}"))?;
    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
        bail!("key {key:?} not found in bucket {bucket}");
    };
    if raw {
        output::raw_line(&entry.value)?;
    } else {
        println!(
            "{bucket} > {key} revision: {} created @ {}\n",
            entry.revision,
            parse::rfc3339(entry.created)
        );
        println!("{}", String::from_utf8_lossy(&entry.value));
    }
    Ok(())
}

async fn del(
    js: &jetstream::Context,
    bucket: &str,
    key: Option<String>,
    purge: bool,
) -> anyhow::Result<()> {
    let Some(key) = key else {
        js.delete_key_value(bucket)
            .await
            .with_context(|| format!("delete bucket {bucket}"))?;
        println!("Deleted bucket {bucket}");
        return Ok(());
    };
    let store = open(js, bucket).await?;
    if purge {
        store
            .purge(&key)
            .await
            .with_context(|| format!("purge {key}"))?;
        println!("Purged {bucket} > {key}");
    } else {
        store
            .delete(&key)
            .await
            .with_context(|| format!("delete {key}"))?;
        println!("Deleted {bucket} > {key}");
    }
    Ok(())
}

fn op_name(op: kv::Operation) -> &'static str {
    match op {
        kv::Operation::Put => "PUT",
        kv::Operation::Delete => "DEL",
        kv::Operation::Purge => "PURGE",
    }
}

async fn history(js: &jetstream::Context, bucket: &str, key: &str) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    let mut entries = store
        .history(key)
        .await
        .with_context(|| format!("history of {key}"))?;
    let mut table = Table::new(&["Key", "Revision", "Op", "Length", "Value"]);
    while let Some(entry) = entries.next().await {
        let e = entry.context("history")?;
        table.row(vec![
            e.key.clone(),
            e.revision.to_string(),
            op_name(e.operation).to_string(),
            e.value.len().to_string(),
            String::from_utf8_lossy(&e.value).into_owned(),
        ]);
    }
    table.title(format!("History for {bucket} > {key}")).print();
    Ok(())
}

async fn watch(
    js: &jetstream::Context,
    bucket: &str,
    key: Option<String>,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    // Like natscli: the current value of every matching key first, then changes as they happen.
    let mut updates = store
        .watch_with_history(key.as_deref().unwrap_or(">"))
        .await
        .context("watch")?;
    eprintln!("Watching {bucket} > {}", key.as_deref().unwrap_or(">"));
    let mut n = 0u64;
    let run = async {
        while let Some(entry) = updates.next().await {
            let e = entry.context("watch")?;
            println!(
                "[{}] {} {bucket} > {}: {}",
                e.revision,
                op_name(e.operation),
                e.key,
                String::from_utf8_lossy(&e.value)
            );
            n += 1;
            if count.is_some_and(|c| n >= c) {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = run => r,
        _ = super::stopped() => Ok(()),
    }
}

async fn keys(js: &jetstream::Context, bucket: &str, json: bool) -> anyhow::Result<()> {
    let store = open(js, bucket).await?;
    let mut stream = store.keys().await.context("list keys")?;
    let mut keys = Vec::new();
    while let Some(key) = stream.next().await {
        keys.push(key.context("list keys")?);
    }
    keys.sort();
    if json {
        output::json(&json!(keys));
    } else {
        for key in keys {
            println!("{key}");
        }
    }
    Ok(())
}

async fn buckets(api: &Api, json: bool) -> anyhow::Result<()> {
    let streams: Vec<(String, StreamInfo)> = api
        .streams()
        .await?
        .into_iter()
        .filter_map(|(_, st)| Some((st.config.name.strip_prefix("KV_")?.to_string(), st)))
        .collect();
    if json {
        let names: Vec<&String> = streams.iter().map(|(name, _)| name).collect();
        output::json(&json!(names));
        return Ok(());
    }
    let mut table = Table::new(&["Bucket", "Values", "Size", "History", "TTL"]);
    for (name, st) in &streams {
        let (c, state) = (&st.config, &st.state);
        table.row(vec![
            name.clone(),
            state.messages.to_string(),
            output::bytes(i64::try_from(state.bytes).unwrap_or(i64::MAX)),
            c.max_msgs_per_subject.to_string(),
            output::age(c.max_age.0),
        ]);
    }
    table
        .title(format!("Key-Value buckets: {}", streams.len()))
        .print();
    Ok(())
}
