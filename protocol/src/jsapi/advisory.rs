//! Advisory events published on `$JS.EVENT.ADVISORY.>` (stream/consumer created, updated,
//! deleted; max deliveries; terminated; paused).
//!
//! Each event starts with `type`, `id` (a unique id, nats-server uses a 22-char nuid) and
//! `timestamp`. The subject helpers give the exact subjects nats-server publishes on.

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// Subject prefix of stream-created advisories (`.<stream>` follows).
pub const STREAM_CREATED_PRE: &str = "$JS.EVENT.ADVISORY.STREAM.CREATED";
/// Subject prefix of stream-updated advisories.
pub const STREAM_UPDATED_PRE: &str = "$JS.EVENT.ADVISORY.STREAM.UPDATED";
/// Subject prefix of stream-deleted advisories.
pub const STREAM_DELETED_PRE: &str = "$JS.EVENT.ADVISORY.STREAM.DELETED";
/// Subject prefix of consumer-created advisories (`.<stream>.<consumer>` follows).
pub const CONSUMER_CREATED_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.CREATED";
/// Subject prefix of consumer-deleted advisories.
pub const CONSUMER_DELETED_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.DELETED";
/// Subject prefix of consumer pause/resume advisories.
pub const CONSUMER_PAUSE_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.PAUSE";
/// Subject prefix of max-deliveries advisories (the DLQ hook).
pub const CONSUMER_MAX_DELIVERIES_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";
/// Subject prefix of `+TERM` advisories.
pub const CONSUMER_MSG_TERMINATED_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED";

/// `type` of stream create/update/delete advisories.
pub const STREAM_ACTION_TYPE: &str = "io.nats.jetstream.advisory.v1.stream_action";
/// `type` of consumer create/delete advisories.
pub const CONSUMER_ACTION_TYPE: &str = "io.nats.jetstream.advisory.v1.consumer_action";
/// `type` of consumer pause advisories.
pub const CONSUMER_PAUSE_TYPE: &str = "io.nats.jetstream.advisory.v1.consumer_pause";
/// `type` of max-deliveries advisories.
pub const MAX_DELIVER_TYPE: &str = "io.nats.jetstream.advisory.v1.max_deliver";
/// `type` of terminated advisories.
pub const TERMINATED_TYPE: &str = "io.nats.jetstream.advisory.v1.terminated";

/// `<prefix>.<stream>`.
pub fn stream_subject(prefix: &str, stream: &str) -> String {
    format!("{prefix}.{stream}")
}

/// `<prefix>.<stream>.<consumer>`.
pub fn consumer_subject(prefix: &str, stream: &str, consumer: &str) -> String {
    format!("{prefix}.{stream}.{consumer}")
}

/// What happened to a stream or consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// `"create"`.
    Create,
    /// `"delete"`.
    Delete,
    /// `"modify"` (stream update).
    Modify,
}

/// The fields every advisory starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHeader {
    /// Schema type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique event id.
    pub id: String,
    /// When.
    pub timestamp: Timestamp,
}

/// Stream created / updated / deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamActionAdvisory {
    /// Header (`type` = [`STREAM_ACTION_TYPE`]).
    #[serde(flatten)]
    pub header: EventHeader,
    /// Stream.
    pub stream: String,
    /// Action.
    pub action: ActionKind,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

/// Consumer created / deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerActionAdvisory {
    /// Header (`type` = [`CONSUMER_ACTION_TYPE`]).
    #[serde(flatten)]
    pub header: EventHeader,
    /// Stream.
    pub stream: String,
    /// Consumer.
    pub consumer: String,
    /// Action.
    pub action: ActionKind,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

/// Consumer paused or resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerPauseAdvisory {
    /// Header (`type` = [`CONSUMER_PAUSE_TYPE`]).
    #[serde(flatten)]
    pub header: EventHeader,
    /// Stream.
    pub stream: String,
    /// Consumer.
    pub consumer: String,
    /// Paused now.
    pub paused: bool,
    /// Until (Go zero time when resumed).
    pub pause_until: Timestamp,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

/// A message reached `max_deliver` (`type` = [`MAX_DELIVER_TYPE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxDeliveriesAdvisory {
    /// Header.
    #[serde(flatten)]
    pub header: EventHeader,
    /// Stream.
    pub stream: String,
    /// Consumer.
    pub consumer: String,
    /// Stream sequence of the message.
    pub stream_seq: u64,
    /// Deliveries so far.
    pub deliveries: u64,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

/// A message was `+TERM`ed (`type` = [`TERMINATED_TYPE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminatedAdvisory {
    /// Header.
    #[serde(flatten)]
    pub header: EventHeader,
    /// Stream.
    pub stream: String,
    /// Consumer.
    pub consumer: String,
    /// Consumer sequence.
    pub consumer_seq: u64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// Deliveries so far.
    pub deliveries: u64,
    /// Text after `+TERM `.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
}
