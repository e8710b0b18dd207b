//! `ConsumerConfig` and its policies.
//!
//! `Default` is Go's zero value (what nats-server sees for omitted fields: `deliver_policy:
//! all`, `ack_policy: none`, `replay_policy: instant`); the server's validation layer fills
//! the defaults (`ack_wait` 30 s, `max_deliver` -1, `max_waiting` 512, ...). Serialisation
//! follows nats-server's `omitempty` per field.

use serde::{Deserialize, Deserializer, Serialize};

use super::stream::Metadata;
use super::time::serde_util::{is_false, is_zero};
use super::time::{Nanos, Timestamp};

/// `deliver_policy`: where a new consumer starts. Input `"undefined"` means `all`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// `"all"`.
    #[default]
    All,
    /// `"last"`.
    Last,
    /// `"new"`.
    New,
    /// `"by_start_sequence"` (needs `opt_start_seq`).
    ByStartSequence,
    /// `"by_start_time"` (needs `opt_start_time`).
    ByStartTime,
    /// `"last_per_subject"`.
    LastPerSubject,
}

impl<'de> Deserialize<'de> for DeliverPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(
            match <std::borrow::Cow<'de, str>>::deserialize(d)?.as_ref() {
                "all" | "undefined" => DeliverPolicy::All,
                "last" => DeliverPolicy::Last,
                "new" => DeliverPolicy::New,
                "by_start_sequence" => DeliverPolicy::ByStartSequence,
                "by_start_time" => DeliverPolicy::ByStartTime,
                "last_per_subject" => DeliverPolicy::LastPerSubject,
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "can not unmarshal \"{other}\""
                    )));
                }
            },
        )
    }
}

/// `ack_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckPolicy {
    /// `"none"` (Go's zero value).
    #[default]
    None,
    /// `"all"`: an ack covers every earlier message.
    All,
    /// `"explicit"`.
    Explicit,
    /// `"flow_control"` (2.14, push sourcing consumers).
    FlowControl,
}

/// `replay_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPolicy {
    /// `"instant"`.
    #[default]
    Instant,
    /// `"original"`: at the original publish pace.
    Original,
}

/// `priority_policy` (2.11). Omitted when `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityPolicy {
    /// `"none"`.
    #[default]
    None,
    /// `"overflow"`.
    Overflow,
    /// `"pinned_client"`.
    PinnedClient,
    /// `"prioritized"`.
    Prioritized,
}

impl PriorityPolicy {
    fn is_none(&self) -> bool {
        *self == PriorityPolicy::None
    }
}

/// A consumer's configuration.
///
/// Durations are [`Nanos`]. Not modelled beyond pass-through: `direct` and `sourcing`
/// (internal flags nats-server uses for mirrors/sources; kept so a round trip is exact).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    /// Durable name (legacy; equals `name` when both are set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub durable_name: String,
    /// Name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Start position.
    pub deliver_policy: DeliverPolicy,
    /// Start sequence for `by_start_sequence`.
    #[serde(skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    /// Start time for `by_start_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<Timestamp>,
    /// Ack policy.
    pub ack_policy: AckPolicy,
    /// Redelivery timeout.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub ack_wait: Nanos,
    /// Max deliveries (-1 = unlimited).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_deliver: i64,
    /// Redelivery delays per attempt.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<Nanos>,
    /// Single filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Several non-overlapping filters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    /// Replay policy.
    pub replay_policy: ReplayPolicy,
    /// Push rate limit in bits per second.
    #[serde(skip_serializing_if = "is_zero")]
    pub rate_limit_bps: u64,
    /// Ack sampling (`"30%"` or `"30"`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sample_freq: String,
    /// Pull: max waiting requests.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    /// Max unacknowledged (-1 = unlimited).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    /// Push flow control.
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    /// Deliver headers only (+`Nats-Msg-Size`).
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    /// Pull: max `batch` per request.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_batch: i64,
    /// Pull: max `expires` per request.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub max_expires: Nanos,
    /// Pull: max `max_bytes` per request.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    /// Push: deliver subject (empty = pull consumer).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    /// Push: queue group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    /// Push: idle heartbeat.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub idle_heartbeat: Nanos,
    /// Delete after this long without interest.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub inactive_threshold: Nanos,
    /// Replicas (0 = as the stream).
    pub num_replicas: i64,
    /// Keep state in memory.
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    /// Internal (mirror/source) consumer.
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
    /// Internal sourcing consumer (2.14).
    #[serde(skip_serializing_if = "is_false")]
    pub sourcing: bool,
    /// User metadata plus the server's `_nats.*` keys.
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// Paused until this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<Timestamp>,
    /// Priority groups (at most one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    /// Priority policy.
    #[serde(skip_serializing_if = "PriorityPolicy::is_none")]
    pub priority_policy: PriorityPolicy,
    /// Pin TTL for `pinned_client`.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub priority_timeout: Nanos,
}

impl ConsumerConfig {
    /// True for a push consumer (has a deliver subject).
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    /// True for a durable consumer (`durable_name` set).
    pub fn is_durable(&self) -> bool {
        !self.durable_name.is_empty()
    }

    /// The filters as a list (`filter_subject` or `filter_subjects`; empty = all).
    pub fn filters(&self) -> Vec<&str> {
        if self.filter_subject.is_empty() {
            self.filter_subjects.iter().map(String::as_str).collect()
        } else {
            vec![self.filter_subject.as_str()]
        }
    }
}
