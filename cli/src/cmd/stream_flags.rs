//! Flags for every stream config field, applied onto the server's `StreamConfig` JSON, so `stream add`
//! (onto defaults) and `stream edit` (onto the current config) share one code path and unknown fields
//! survive an edit untouched.

use std::time::Duration;

use clap::ValueEnum;
use serde_json::{Value, json};

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
pub(crate) fn defaults(name: &str) -> Value {
    json!({
        "name": name,
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
        "discard": "old",
        "storage": "file",
        "num_replicas": 1,
    })
}

fn nanos(d: Duration) -> Value {
    json!(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn lower<T: ValueEnum>(v: &T) -> Value {
    json!(v.to_possible_value().map(|p| p.get_name().to_string()))
}

impl StreamFlags {
    /// Writes every given flag into `cfg` (a `StreamConfig` JSON object).
    pub(crate) fn apply(&self, cfg: &mut Value) {
        if !self.subjects.is_empty() {
            cfg["subjects"] = json!(self.subjects);
        }
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                cfg[key] = v;
            }
        };
        set("description", self.description.as_ref().map(|d| json!(d)));
        set("storage", self.storage.as_ref().map(lower));
        set("retention", self.retention.as_ref().map(lower));
        set("discard", self.discard.as_ref().map(lower));
        set(
            "discard_new_per_subject",
            self.discard_per_subject.map(|b| json!(b)),
        );
        set("max_msgs", self.max_msgs.map(|n| json!(n)));
        set("max_bytes", self.max_bytes.map(|n| json!(n)));
        set("max_age", self.max_age.map(nanos));
        set("max_msg_size", self.max_msg_size.map(|n| json!(n)));
        set(
            "max_msgs_per_subject",
            self.max_msgs_per_subject.map(|n| json!(n)),
        );
        set("max_consumers", self.max_consumers.map(|n| json!(n)));
        set("num_replicas", self.replicas.map(|n| json!(n)));
        set("duplicate_window", self.dupe_window.map(nanos));
        set("no_ack", self.no_ack.map(|b| json!(b)));
        set("allow_rollup_hdrs", self.allow_rollup.map(|b| json!(b)));
        set("deny_delete", self.deny_delete.map(|b| json!(b)));
        set("deny_purge", self.deny_purge.map(|b| json!(b)));
        set("allow_direct", self.allow_direct.map(|b| json!(b)));
        set("allow_msg_ttl", self.allow_msg_ttl.map(|b| json!(b)));
        set(
            "allow_msg_schedules",
            self.allow_schedules.map(|b| json!(b)),
        );
        set("subject_delete_marker_ttl", self.marker_ttl.map(nanos));
        set("sealed", self.sealed.map(|b| json!(b)));
        set("compression", self.compression.as_ref().map(lower));
        set("first_seq", self.first_seq.map(|n| json!(n)));
        set("mirror", self.mirror.as_ref().map(|m| json!({ "name": m })));
        self.apply_lists(cfg);
    }

    fn apply_lists(&self, cfg: &mut Value) {
        if !self.source.is_empty() {
            let sources: Vec<Value> = self.source.iter().map(|s| source(s)).collect();
            cfg["sources"] = json!(sources);
        }
        if self.republish_source.is_some() || self.republish_destination.is_some() {
            let mut rp = cfg["republish"].clone();
            if !rp.is_object() {
                rp = json!({ "src": ">" });
            }
            if let Some(src) = &self.republish_source {
                rp["src"] = json!(src);
            }
            if let Some(dest) = &self.republish_destination {
                rp["dest"] = json!(dest);
            }
            cfg["republish"] = rp;
        }
        if let Some(h) = self
            .republish_headers
            .filter(|_| cfg["republish"].is_object())
        {
            cfg["republish"]["headers_only"] = json!(h);
        }
        if self.transform_source.is_some() || self.transform_destination.is_some() {
            cfg["subject_transform"] = json!({
                "src": self.transform_source.as_deref().unwrap_or(">"),
                "dest": self.transform_destination.as_deref().unwrap_or_default(),
            });
        }
        if !self.metadata.is_empty() {
            if !cfg["metadata"].is_object() {
                cfg["metadata"] = json!({});
            }
            for (k, v) in &self.metadata {
                cfg["metadata"][k] = json!(v);
            }
        }
    }
}

/// `STREAM` or `STREAM:FILTER` as a `StreamSource`.
fn source(spec: &str) -> Value {
    match spec.split_once(':') {
        Some((name, filter)) if !filter.is_empty() => {
            json!({ "name": name, "filter_subject": filter })
        }
        _ => json!({ "name": spec.trim_end_matches(':') }),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(cfg["subjects"], json!(["a.>", "b"]));
        assert_eq!(cfg["storage"], "memory");
        assert_eq!(cfg["retention"], "workqueue");
        assert_eq!(cfg["max_age"], 3_600_000_000_000u64);
        assert_eq!(cfg["deny_delete"], true);
        assert_eq!(cfg["metadata"]["team"], "core");
        assert_eq!(cfg["max_msgs"], -1);
    }

    #[test]
    fn sources_republish_and_transform_flags() {
        let flags = StreamFlags {
            source: vec!["A".into(), "B:b.>".into()],
            republish_destination: Some("out.>".into()),
            republish_headers: Some(true),
            transform_source: Some("in.*".into()),
            transform_destination: Some("st.$1".into()),
            ..StreamFlags::default()
        };
        let mut cfg = defaults("S");
        flags.apply(&mut cfg);
        assert_eq!(
            cfg["sources"],
            json!([{"name": "A"}, {"name": "B", "filter_subject": "b.>"}])
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
