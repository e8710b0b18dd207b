//! Flags for every stream config field, applied onto the protocol crate's typed `StreamConfig`, so
//! `stream add` (onto defaults) and `stream edit` (onto the current config, whose unmodelled fields
//! [`crate::jsapi::Kept`] carries) share one code path.

use std::time::Duration;

use clap::ValueEnum;
use rill_protocol::jsapi::{
    self, DiscardPolicy, Nanos, RePublish, RetentionPolicy, StorageType, StreamConfig,
    StreamSource, SubjectTransform,
};

use crate::parse;

/// Stream storage backend.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Storage {
    /// On disk
    File,
    /// In memory
    Memory,
}

/// Stream retention policy.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Retention {
    /// Keep messages until a limit is hit
    Limits,
    /// Keep messages while a consumer still needs them
    Interest,
    /// Remove each message once it is acknowledged
    #[value(alias = "work")]
    Workqueue,
}

/// What to do when a limit is hit.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Discard {
    /// Remove the oldest messages
    Old,
    /// Refuse new messages
    New,
}

/// Stream compression.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Compression {
    /// No compression
    None,
    /// S2 compression
    S2,
}

impl From<Storage> for StorageType {
    fn from(s: Storage) -> Self {
        match s {
            Storage::File => StorageType::File,
            Storage::Memory => StorageType::Memory,
        }
    }
}

impl From<Retention> for RetentionPolicy {
    fn from(r: Retention) -> Self {
        match r {
            Retention::Limits => RetentionPolicy::Limits,
            Retention::Interest => RetentionPolicy::Interest,
            Retention::Workqueue => RetentionPolicy::WorkQueue,
        }
    }
}

impl From<Discard> for DiscardPolicy {
    fn from(d: Discard) -> Self {
        match d {
            Discard::Old => DiscardPolicy::Old,
            Discard::New => DiscardPolicy::New,
        }
    }
}

impl From<Compression> for jsapi::Compression {
    fn from(c: Compression) -> Self {
        match c {
            Compression::None => jsapi::Compression::None,
            Compression::S2 => jsapi::Compression::S2,
        }
    }
}

/// Every settable stream config field. Unset flags leave the field as it was.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct StreamFlags {
    /// Subjects the stream captures, comma separated or repeated (default: the stream name)
    #[arg(long, value_delimiter = ',')]
    subjects: Vec<String>,
    /// Description
    #[arg(long)]
    description: Option<String>,
    /// Storage backend
    #[arg(long)]
    storage: Option<Storage>,
    /// Retention policy
    #[arg(long)]
    retention: Option<Retention>,
    /// Discard policy when limits are reached
    #[arg(long)]
    discard: Option<Discard>,
    /// Apply discard new per subject (with --discard new and --max-msgs-per-subject)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    discard_per_subject: Option<bool>,
    /// Maximum number of messages (-1 = unlimited)
    #[arg(long, allow_negative_numbers = true)]
    max_msgs: Option<i64>,
    /// Maximum total size, e.g. 1GB (-1 = unlimited)
    #[arg(long, allow_negative_numbers = true, value_parser = parse::size)]
    max_bytes: Option<i64>,
    /// Maximum message age, e.g. 1h (0 = unlimited)
    #[arg(long, value_parser = parse::duration)]
    max_age: Option<Duration>,
    /// Maximum size of one message (-1 = unlimited)
    #[arg(long, allow_negative_numbers = true, value_parser = parse::size)]
    max_msg_size: Option<i64>,
    /// Maximum messages kept per subject (-1 = unlimited)
    #[arg(long, allow_negative_numbers = true)]
    max_msgs_per_subject: Option<i64>,
    /// Maximum number of consumers (-1 = unlimited)
    #[arg(long, allow_negative_numbers = true)]
    max_consumers: Option<i64>,
    /// Number of replicas
    #[arg(long)]
    replicas: Option<u32>,
    /// Window for Nats-Msg-Id duplicate detection, e.g. 2m
    #[arg(long, value_parser = parse::duration)]
    dupe_window: Option<Duration>,
    /// Do not acknowledge publishes
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    no_ack: Option<bool>,
    /// Allow Nats-Rollup headers
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    allow_rollup: Option<bool>,
    /// Refuse message deletes
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    deny_delete: Option<bool>,
    /// Refuse purges
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    deny_purge: Option<bool>,
    /// Allow direct get
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    allow_direct: Option<bool>,
    /// Allow per-message TTLs (Nats-TTL header)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    allow_msg_ttl: Option<bool>,
    /// Allow message schedules (Nats-Schedule header, delayed delivery)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    allow_schedules: Option<bool>,
    /// Leave delete markers with this TTL when max age removes a subject's last message
    #[arg(long, value_parser = parse::duration)]
    marker_ttl: Option<Duration>,
    /// Seal the stream (no more writes or deletes; edit only)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    sealed: Option<bool>,
    /// Compression
    #[arg(long)]
    compression: Option<Compression>,
    /// First sequence number of a new stream
    #[arg(long)]
    first_seq: Option<u64>,
    /// Mirror another stream
    #[arg(long, value_name = "STREAM")]
    mirror: Option<String>,
    /// Source messages from another stream, optionally only those on FILTER (repeatable)
    #[arg(long, value_name = "STREAM[:FILTER]")]
    source: Vec<String>,
    /// Republish stored messages whose subject matches this filter (with --republish-destination)
    #[arg(long, value_name = "SUBJECT")]
    republish_source: Option<String>,
    /// Subject (transform) stored messages are republished to
    #[arg(long, value_name = "SUBJECT")]
    republish_destination: Option<String>,
    /// Republish only the headers (with Nats-Msg-Size)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    republish_headers: Option<bool>,
    /// Store messages published on subjects matching this filter under a new subject (with --transform-destination)
    #[arg(long, value_name = "SUBJECT")]
    transform_source: Option<String>,
    /// The subject transform's destination, e.g. 'orders.{{partition(4,1)}}.$1'
    #[arg(long, value_name = "SUBJECT")]
    transform_destination: Option<String>,
    /// Metadata as key=value (repeatable)
    #[arg(long, value_parser = parse::key_value)]
    metadata: Vec<(String, String)>,
}

/// The config `stream add` starts from: nats-server's defaults, named `name`.
pub(crate) fn defaults(name: &str) -> StreamConfig {
    StreamConfig {
        max_consumers: -1,
        max_msgs: -1,
        max_bytes: -1,
        max_msgs_per_subject: -1,
        max_msg_size: -1,
        num_replicas: 1,
        ..StreamConfig::named(name)
    }
}

/// Overwrites `field` when the flag was given.
fn set<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

fn nanos(d: Option<Duration>) -> Option<Nanos> {
    d.map(Nanos::from_duration)
}

impl StreamFlags {
    /// Writes every given flag into `cfg`.
    pub(crate) fn apply(&self, cfg: &mut StreamConfig) {
        if !self.subjects.is_empty() {
            cfg.subjects.clone_from(&self.subjects);
        }
        set(&mut cfg.description, self.description.clone());
        set(&mut cfg.storage, self.storage.map(Into::into));
        set(&mut cfg.retention, self.retention.map(Into::into));
        set(&mut cfg.discard, self.discard.map(Into::into));
        set(&mut cfg.discard_new_per_subject, self.discard_per_subject);
        set(&mut cfg.max_msgs, self.max_msgs);
        set(&mut cfg.max_bytes, self.max_bytes);
        set(&mut cfg.max_age, nanos(self.max_age));
        set(
            &mut cfg.max_msg_size,
            self.max_msg_size
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        );
        set(&mut cfg.max_msgs_per_subject, self.max_msgs_per_subject);
        set(&mut cfg.max_consumers, self.max_consumers);
        set(&mut cfg.num_replicas, self.replicas.map(i64::from));
        set(&mut cfg.duplicate_window, nanos(self.dupe_window));
        set(&mut cfg.no_ack, self.no_ack);
        set(&mut cfg.allow_rollup_hdrs, self.allow_rollup);
        set(&mut cfg.deny_delete, self.deny_delete);
        set(&mut cfg.deny_purge, self.deny_purge);
        set(&mut cfg.allow_direct, self.allow_direct);
        set(&mut cfg.allow_msg_ttl, self.allow_msg_ttl);
        set(&mut cfg.allow_msg_schedules, self.allow_schedules);
        set(&mut cfg.subject_delete_marker_ttl, nanos(self.marker_ttl));
        set(&mut cfg.sealed, self.sealed);
        set(&mut cfg.compression, self.compression.map(Into::into));
        set(&mut cfg.first_seq, self.first_seq);
        if let Some(origin) = &self.mirror {
            cfg.mirror = Some(StreamSource {
                name: origin.clone(),
                ..StreamSource::default()
            });
        }
        self.apply_lists(cfg);
    }

    fn apply_lists(&self, cfg: &mut StreamConfig) {
        if !self.source.is_empty() {
            cfg.sources = self.source.iter().map(|s| source(s)).collect();
        }
        if self.republish_source.is_some() || self.republish_destination.is_some() {
            let rp = cfg.republish.get_or_insert_with(|| RePublish {
                src: ">".into(),
                ..RePublish::default()
            });
            set(&mut rp.src, self.republish_source.clone());
            set(&mut rp.dest, self.republish_destination.clone());
        }
        if let Some(rp) = &mut cfg.republish {
            set(&mut rp.headers_only, self.republish_headers);
        }
        if self.transform_source.is_some() || self.transform_destination.is_some() {
            cfg.subject_transform = Some(SubjectTransform {
                src: self.transform_source.clone().unwrap_or_else(|| ">".into()),
                dest: self.transform_destination.clone().unwrap_or_default(),
            });
        }
        cfg.metadata.extend(self.metadata.iter().cloned());
    }
}

/// `STREAM` or `STREAM:FILTER` as a `StreamSource`.
fn source(spec: &str) -> StreamSource {
    let (name, filter) = spec.split_once(':').unwrap_or((spec, ""));
    StreamSource {
        name: name.into(),
        filter_subject: filter.into(),
        ..StreamSource::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flags_apply_onto_defaults() {
        let flags = StreamFlags {
            subjects: vec!["a.>".into(), "b".into()],
            storage: Some(Storage::Memory),
            retention: Some(Retention::Workqueue),
            max_age: Some(Duration::from_secs(3600)),
            deny_delete: Some(true),
            metadata: vec![("team".into(), "core".into())],
            ..StreamFlags::default()
        };
        let mut cfg = defaults("S");
        flags.apply(&mut cfg);
        let cfg = serde_json::to_value(&cfg).unwrap();
        assert_eq!(cfg["subjects"], json!(["a.>", "b"]));
        assert_eq!(cfg["storage"], "memory");
        assert_eq!(cfg["retention"], "workqueue");
        assert_eq!(cfg["max_age"], 3_600_000_000_000u64);
        assert_eq!(cfg["deny_delete"], true);
        assert_eq!(cfg["metadata"]["team"], "core");
        assert_eq!(cfg["max_msgs"], -1);
        assert_eq!(cfg["max_msg_size"], -1);
    }

    #[test]
    fn sources_republish_and_transform_flags() {
        let flags = StreamFlags {
            source: vec!["A".into(), "B:b.>".into(), "C:".into()],
            republish_destination: Some("out.>".into()),
            republish_headers: Some(true),
            transform_source: Some("in.*".into()),
            transform_destination: Some("st.$1".into()),
            ..StreamFlags::default()
        };
        let mut cfg = defaults("S");
        flags.apply(&mut cfg);
        let cfg = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            cfg["sources"],
            json!([{"name": "A"}, {"name": "B", "filter_subject": "b.>"}, {"name": "C"}])
        );
        assert_eq!(
            cfg["republish"],
            json!({"src": ">", "dest": "out.>", "headers_only": true})
        );
        assert_eq!(
            cfg["subject_transform"],
            json!({"src": "in.*", "dest": "st.$1"})
        );
    }
}
