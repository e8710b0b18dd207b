//! Consumer API requests and replies: ConsumerInfo, CREATE (all subject forms), INFO,
//! NAMES, LIST, DELETE, PAUSE, RESET, UNPIN, and the `MSG.NEXT` pull request.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::consumer::ConsumerConfig;
use super::paging::Paged;
use super::response::{ApiBody, parse_request};
use super::stream_api::ClusterInfo;
use super::time::serde_util::{is_false, is_zero};
use super::time::{Nanos, Timestamp};

/// `delivered` / `ack_floor` of ConsumerInfo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceInfo {
    /// Consumer sequence.
    pub consumer_seq: u64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// Last activity (omitted before the first delivery/ack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active: Option<Timestamp>,
}

/// State of one priority group (`priority_groups[]` of ConsumerInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorityGroupState {
    /// Group name.
    pub group: String,
    /// Pinned client id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pinned_client_id: String,
    /// Pinned since (Go always emits it).
    pub pinned_ts: Timestamp,
}

/// ConsumerInfo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerInfo {
    /// Stream.
    pub stream_name: String,
    /// Consumer name.
    pub name: String,
    /// Creation time.
    pub created: Timestamp,
    /// Effective config.
    pub config: ConsumerConfig,
    /// Last delivered.
    pub delivered: SequenceInfo,
    /// Ack floor.
    pub ack_floor: SequenceInfo,
    /// Delivered, not yet acked.
    pub num_ack_pending: u64,
    /// Redelivered and pending.
    pub num_redelivered: u64,
    /// Waiting pull requests.
    pub num_waiting: u64,
    /// Matching messages not yet delivered.
    pub num_pending: u64,
    /// Cluster info (nats-server standalone omits it for consumers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// Push consumer has an active subscriber on its deliver subject.
    #[serde(skip_serializing_if = "is_false")]
    pub push_bound: bool,
    /// Paused.
    #[serde(skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Time left paused.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub pause_remaining: Nanos,
    /// Snapshot time.
    pub ts: Timestamp,
    /// Priority group states.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<PriorityGroupState>,
}

/// `action` of a create request: `""` create-or-update, `"create"`, `"update"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ConsumerAction {
    /// `""`: create, or update if it exists.
    #[default]
    CreateOrUpdate,
    /// `"create"`: fail with `CONSUMER_ALREADY_EXISTS` if it exists with another config.
    Create,
    /// `"update"`: fail with `CONSUMER_DOES_NOT_EXIST` if missing.
    Update,
}

impl Serialize for ConsumerAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            ConsumerAction::CreateOrUpdate => "",
            ConsumerAction::Create => "create",
            ConsumerAction::Update => "update",
        })
    }
}

impl<'de> Deserialize<'de> for ConsumerAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match <std::borrow::Cow<'de, str>>::deserialize(d)?.as_ref() {
            "" => Ok(ConsumerAction::CreateOrUpdate),
            "create" => Ok(ConsumerAction::Create),
            "update" => Ok(ConsumerAction::Update),
            other => Err(serde::de::Error::custom(format!(
                "unknown consumer action: \"{other}\""
            ))),
        }
    }
}

/// `CONSUMER.CREATE.<s>[.<c>[.<filter>]]` and `CONSUMER.DURABLE.CREATE.<s>.<c>` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateConsumerRequest {
    /// Must equal the stream in the subject.
    pub stream_name: String,
    /// The config.
    pub config: ConsumerConfig,
    /// Create/update semantics.
    pub action: ConsumerAction,
    /// Reject instead of silently adjusting values.
    #[serde(skip_serializing_if = "is_false")]
    pub pedantic: bool,
}

macro_rules! info_response {
    ($(#[$doc:meta])* $name:ident, $ty:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            /// The consumer.
            #[serde(flatten)]
            pub info: ConsumerInfo,
        }

        impl ApiBody for $name {
            const TYPE: &'static str = $ty;
        }
    };
}

info_response!(
    /// `CONSUMER.CREATE` / `CONSUMER.DURABLE.CREATE` reply.
    ConsumerCreateResponse,
    "io.nats.jetstream.api.v1.consumer_create_response"
);
info_response!(
    /// `CONSUMER.INFO` reply.
    ConsumerInfoResponse,
    "io.nats.jetstream.api.v1.consumer_info_response"
);

/// `CONSUMER.NAMES` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerNamesResponse {
    /// Paging.
    #[serde(flatten)]
    pub paged: Paged,
    /// Names, sorted.
    #[serde(default)]
    pub consumers: Vec<String>,
}

impl ApiBody for ConsumerNamesResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_names_response";
}

/// `CONSUMER.LIST` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerListResponse {
    /// Paging.
    #[serde(flatten)]
    pub paged: Paged,
    /// Infos, sorted by name.
    #[serde(default)]
    pub consumers: Vec<ConsumerInfo>,
    /// Consumers that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl ApiBody for ConsumerListResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_list_response";
}

/// `CONSUMER.DELETE` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerDeleteResponse {
    /// Deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for ConsumerDeleteResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_delete_response";
}

/// `CONSUMER.PAUSE` request: a time in the future pauses, absent/zero/past resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerPauseRequest {
    /// Pause until.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<Timestamp>,
}

/// `CONSUMER.PAUSE` reply. `pause_until` is always emitted (Go zero time when resumed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerPauseResponse {
    /// Paused now.
    pub paused: bool,
    /// Until.
    pub pause_until: Timestamp,
    /// Time left.
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub pause_remaining: Nanos,
}

impl ApiBody for ConsumerPauseResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_pause_response";
}

/// `CONSUMER.RESET` request (2.14): empty = back to the ack floor, or a stream sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerResetRequest {
    /// Stream sequence to restart from.
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
}

/// `CONSUMER.RESET` reply: ConsumerInfo plus `reset_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerResetResponse {
    /// The consumer after the reset.
    #[serde(flatten)]
    pub info: ConsumerInfo,
    /// Sequence it restarts from.
    #[serde(default)]
    pub reset_seq: u64,
}

impl ApiBody for ConsumerResetResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_reset_response";
    const ZERO_IN_ERRORS: &'static [&'static str] = &["reset_seq"];
}

/// `CONSUMER.UNPIN` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerUnpinRequest {
    /// Priority group.
    pub group: String,
}

/// `CONSUMER.UNPIN` reply: nothing but its `type` (or an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerUnpinResponse {}

impl ApiBody for ConsumerUnpinResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_unpin_response";
}

/// `-NAK {"delay": <ns>}` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NakOptions {
    /// Redelivery delay.
    pub delay: Nanos,
}

/// A pull request (`CONSUMER.MSG.NEXT.<s>.<c>` body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    /// Expire after (0 = never; nats-server keeps it until `max_waiting` pushes it out).
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub expires: Nanos,
    /// Messages wanted.
    #[serde(skip_serializing_if = "is_zero")]
    pub batch: i64,
    /// Byte budget.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    /// Answer 404 at once when nothing is pending.
    #[serde(skip_serializing_if = "is_false")]
    pub no_wait: bool,
    /// Heartbeat interval (must be at most half of `expires`).
    #[serde(skip_serializing_if = "Nanos::is_zero")]
    pub idle_heartbeat: Nanos,
    /// Priority group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Overflow: only when this many are pending.
    #[serde(skip_serializing_if = "is_zero")]
    pub min_pending: i64,
    /// Overflow: only when this many await ack.
    #[serde(skip_serializing_if = "is_zero")]
    pub min_ack_pending: i64,
    /// Pin id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Priority 0-9 (`prioritized` policy).
    #[serde(skip_serializing_if = "is_zero")]
    pub priority: i64,
}

impl NextRequest {
    /// Parses a pull request body the way nats-server does: empty = batch 1, `{...}` = JSON,
    /// a bare integer = that batch, anything else = batch 1.
    ///
    /// # Errors
    /// Malformed JSON after `{`.
    pub fn parse(body: &[u8]) -> serde_json::Result<NextRequest> {
        let body = body.trim_ascii();
        if body.first() == Some(&b'{') {
            return parse_request(body);
        }
        let batch = std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(1);
        Ok(NextRequest {
            batch,
            ..NextRequest::default()
        })
    }
}

/// `CONSUMER.LEADER.STEPDOWN` reply (the request is the stream stepdown's:
/// `placement.preferred` names the server to hand the consumer's leadership to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerLeaderStepdownResponse {
    /// The leader stepped down.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for ConsumerLeaderStepdownResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.consumer_leader_stepdown_response";
}
