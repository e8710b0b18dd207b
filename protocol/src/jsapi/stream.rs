//! `StreamConfig` and the types it is built from (policies, sources, transforms, limits).
//!
//! `Default` is Go's zero value, i.e. what nats-server sees for an omitted field, *not*
//! the server defaults (`max_msgs: -1`, 2 min duplicate window, ...): those are applied by
//! the server's validation layer. Serialisation mirrors nats-server's `omitempty` choices
//! field by field (checked against nats-server 2.15.1 replies in `tests/fixtures/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::time::serde_util::{is_false, is_zero};
use super::time::{Nanos, Timestamp};

/// Metadata map (`metadata`); sorted, as Go writes map keys in order.
pub type Metadata = BTreeMap<String, String>;

/// `retention`: when messages are removed besides the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    /// `"limits"`: only the limits remove messages.
    #[default]
    Limits,
    /// `"interest"`: removed once every interested consumer acked.
    Interest,
    /// `"workqueue"`: removed on first ack.
    #[serde(rename = "workqueue")]
    WorkQueue,
}

/// `discard`: what to do when a limit is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscardPolicy {
    /// `"old"`: drop the oldest messages.
    #[default]
    Old,
    /// `"new"`: refuse the new message.
    New,
}

/// `storage`: the store backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// `"file"` (nats-server's default).
    #[default]
    File,
    /// `"memory"`.
    Memory,
}

/// `compression` of file store blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `"none"`.
    #[default]
    None,
    /// `"s2"`.
    S2,
}

/// `persist_mode` (2.12): omitted when `Default`; `""` is accepted as `Default`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistMode {
    /// `"default"`: flush according to the server's sync policy.
    #[default]
    Default,
    /// `"async"`: R1 file streams acknowledge before the write is flushed.
    Async,
}

impl PersistMode {
    fn is_default(&self) -> bool {
        *self == PersistMode::Default
    }
}

impl<'de> Deserialize<'de> for PersistMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match <std::borrow::Cow<'de, str>>::deserialize(d)?.as_ref() {
            "" | "default" => Ok(PersistMode::Default),
            "async" => Ok(PersistMode::Async),
            other => Err(serde::de::Error::custom(format!(
                "can not unmarshal \"\\\"{other}\\\"\""
            ))),
        }
    }
}

/// `placement`: cluster and tags (accepted and echoed; rill is single-node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Server tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Preferred server (nats-server rejects it on create).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub preferred: String,
}

/// `subject_transform` and the entries of `subject_transforms`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectTransform {
    /// Source filter.
    pub src: String,
    /// Destination template.
    pub dest: String,
}

/// `republish`: re-send stored messages to another subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RePublish {
    /// Source filter (empty = `>`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src: String,
    /// Destination template.
    pub dest: String,
    /// Republish headers only (with `Nats-Msg-Size`).
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// `external` of a mirror/source in another domain or account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalStream {
    /// API prefix (`$JS.<domain>.API`).
    pub api: String,
    /// Delivery prefix.
    pub deliver: String,
}

/// `consumer` of a mirror/source (2.14 durable sourcing consumer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConsumerSource {
    /// Durable name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Deliver subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
}

/// `mirror` and the entries of `sources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSource {
    /// Origin stream name.
    pub name: String,
    /// Start at this origin sequence.
    #[serde(skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    /// Start at this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<Timestamp>,
    /// Only this origin subject filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Filters with transforms (exclusive with `filter_subject`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransform>,
    /// Origin in another domain/account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// Durable sourcing consumer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<StreamConsumerSource>,
}

/// `consumer_limits`: defaults/ceilings for the stream's consumers. Always emitted (`{}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConsumerLimits {
    /// Default and maximum `inactive_threshold`.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub inactive_threshold: Nanos,
    /// Default and maximum `max_ack_pending`.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
}

/// A stream's configuration (`$JS.API.STREAM.CREATE/UPDATE` body and `config` of StreamInfo).
///
/// Durations are [`Nanos`]. Not modelled: the deprecated `template_owner` (removed from
/// nats-server; ignored on input like any unknown field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// Stream name.
    pub name: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Subjects (filters) the stream captures. Omitted when empty (mirrors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Retention policy.
    pub retention: RetentionPolicy,
    /// Max consumers (-1 = unlimited).
    pub max_consumers: i64,
    /// Max messages (-1 = unlimited).
    pub max_msgs: i64,
    /// Max bytes (-1 = unlimited).
    pub max_bytes: i64,
    /// Max age (0 = forever).
    pub max_age: Nanos,
    /// Max messages per subject (-1 = unlimited).
    pub max_msgs_per_subject: i64,
    /// Max message size (-1 = unlimited).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_msg_size: i32,
    /// Discard policy.
    pub discard: DiscardPolicy,
    /// Storage backend.
    pub storage: StorageType,
    /// Replicas (rill: always 1).
    pub num_replicas: i64,
    /// Don't send PubAcks.
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    /// `Nats-Msg-Id` dedupe window.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub duplicate_window: Nanos,
    /// Placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Mirror origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    /// Sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    /// Block compression.
    pub compression: Compression,
    /// First sequence of a new stream.
    #[serde(skip_serializing_if = "is_zero")]
    pub first_seq: u64,
    /// Subject transform on ingest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransform>,
    /// Republish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    /// Allow `$JS.API.DIRECT.GET`.
    pub allow_direct: bool,
    /// Mirror answers direct gets for its origin.
    pub mirror_direct: bool,
    /// Discard new per subject (needs `discard: new` and `max_msgs_per_subject`).
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    /// No more changes, deletes or purges.
    pub sealed: bool,
    /// Refuse message deletes.
    pub deny_delete: bool,
    /// Refuse purges.
    pub deny_purge: bool,
    /// Honour `Nats-Rollup`.
    pub allow_rollup_hdrs: bool,
    /// Consumer defaults/ceilings.
    pub consumer_limits: StreamConsumerLimits,
    /// Honour `Nats-TTL`.
    pub allow_msg_ttl: bool,
    /// TTL of subject delete markers (0 = no markers).
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub subject_delete_marker_ttl: Nanos,
    /// Counter stream (`Nats-Incr`, 2.12).
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    /// Atomic batch publish (2.12).
    #[serde(skip_serializing_if = "is_false")]
    pub allow_atomic: bool,
    /// Message schedules (2.12).
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    /// Persist mode (2.12).
    #[serde(skip_serializing_if = "PersistMode::is_default")]
    pub persist_mode: PersistMode,
    /// Fast batch publish (2.14).
    #[serde(skip_serializing_if = "is_false")]
    pub allow_batched: bool,
    /// User metadata plus the server's `_nats.*` keys.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
}

impl StreamConfig {
    /// A config with only `name` set (what `nats stream add --defaults` style clients send).
    pub fn named(name: impl Into<String>) -> StreamConfig {
        StreamConfig {
            name: name.into(),
            ..StreamConfig::default()
        }
    }
}
