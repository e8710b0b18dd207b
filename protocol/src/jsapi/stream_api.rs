//! Stream API requests and replies: StreamInfo/StreamState and the CREATE, UPDATE, INFO,
//! DELETE, NAMES, LIST and PURGE bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::paging::Paged;
use super::response::ApiBody;
use super::stream::{ExternalStream, StreamConfig, SubjectTransform};
use super::time::serde_util::{is_false, is_zero};
use super::time::{Nanos, Timestamp};

/// Messages lost to corruption (`state.lost`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LostStreamData {
    /// Lost sequences.
    pub msgs: Vec<u64>,
    /// Lost bytes.
    pub bytes: u64,
}

/// `state` of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// First sequence (next to be stored when empty).
    pub first_seq: u64,
    /// Time of the first message ([`Timestamp::ZERO`] when empty).
    pub first_ts: Timestamp,
    /// Last sequence.
    pub last_seq: u64,
    /// Time of the last message.
    pub last_ts: Timestamp,
    /// Distinct subjects.
    #[serde(skip_serializing_if = "is_zero")]
    pub num_subjects: u64,
    /// Per-subject counts (only with `subjects_filter`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subjects: BTreeMap<String, u64>,
    /// Interior deletes.
    #[serde(skip_serializing_if = "is_zero")]
    pub num_deleted: u64,
    /// Deleted sequences (only with `deleted_details`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<u64>,
    /// Lost data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostStreamData>,
    /// Consumers.
    pub consumer_count: u64,
}

/// A replica in `cluster.replicas`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    /// Server name.
    pub name: String,
    /// Caught up.
    pub current: bool,
    /// Not seen recently.
    #[serde(skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Since last seen.
    pub active: Nanos,
    /// Operations behind.
    #[serde(skip_serializing_if = "is_zero")]
    pub lag: u64,
    /// Peer id.
    pub peer: String,
}

/// `cluster` of StreamInfo/ConsumerInfo. A standalone server sends only `leader`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Raft group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub raft_group: String,
    /// Leader server name (nats-server standalone: its server id).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub leader: String,
    /// Leader since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_since: Option<Timestamp>,
    /// The group's Raft traffic runs in the system account (a replicated group on
    /// nats-server 2.15: true; absent for one replica).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub system_account: bool,
    /// The account carrying the group's Raft traffic (`$SYS`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub traffic_account: String,
    /// Other replicas.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<PeerInfo>,
}

/// State of a mirror or source (`mirror` / `sources[]` of StreamInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSourceInfo {
    /// Origin stream.
    pub name: String,
    /// External origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// Messages behind.
    pub lag: u64,
    /// Last origin sequence seen (nats-server 2.15 sends it once sourcing started).
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Since last contact (-1 = never).
    pub active: Nanos,
    /// Last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Transforms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransform>,
}

/// StreamInfo: config, state and times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfo {
    /// Effective config (defaults filled in).
    pub config: StreamConfig,
    /// Creation time.
    pub created: Timestamp,
    /// Current state.
    pub state: StreamState,
    /// JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Cluster info (nats-server omits it in CREATE/UPDATE/LIST replies, sends it in INFO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    /// Mirror state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSourceInfo>,
    /// Source states.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSourceInfo>,
    /// The stream and its mirrors in the account, nearest first (`STREAM.INFO` in a
    /// JetStream cluster only; clients read from the first, `best()` in nats.js).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<StreamAlternate>,
    /// Time of this snapshot.
    pub ts: Timestamp,
}

/// One entry of StreamInfo's `alternates`: a stream holding the same messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamAlternate {
    /// The stream's name.
    pub name: String,
    /// Its JetStream domain, when it has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The cluster it lives in.
    pub cluster: String,
}

/// `STREAM.CREATE` / `STREAM.UPDATE` request: the config plus the `pedantic` flag
/// (reject instead of silently adjusting values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConfigRequest {
    /// The config.
    #[serde(flatten)]
    pub config: StreamConfig,
    /// Pedantic mode.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pedantic: bool,
}

/// `STREAM.CREATE` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCreateResponse {
    /// The stream.
    #[serde(flatten)]
    pub info: StreamInfo,
    /// True when this request created it (nats-server 2.15.1 also says true when an
    /// identical stream already existed).
    #[serde(default, skip_serializing_if = "is_false")]
    pub did_create: bool,
}

impl ApiBody for StreamCreateResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_create_response";
}

/// `STREAM.UPDATE` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamUpdateResponse {
    /// The stream after the update.
    #[serde(flatten)]
    pub info: StreamInfo,
}

impl ApiBody for StreamUpdateResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_update_response";
}

/// `STREAM.INFO` request (optional body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfoRequest {
    /// Page offset into `subjects`.
    pub offset: usize,
    /// Include `state.deleted`.
    #[serde(skip_serializing_if = "is_false")]
    pub deleted_details: bool,
    /// Include `state.subjects` for subjects matching this filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subjects_filter: String,
}

/// `STREAM.INFO` reply: paging (for `state.subjects`) plus StreamInfo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfoResponse {
    /// Paging of `state.subjects` (all zero without `subjects_filter`).
    #[serde(flatten)]
    pub paged: Paged,
    /// The stream.
    #[serde(flatten)]
    pub info: StreamInfo,
}

impl ApiBody for StreamInfoResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_info_response";
    const PAGED_ERRORS: bool = true;
}

/// `STREAM.NAMES` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamNamesResponse {
    /// Paging.
    #[serde(flatten)]
    pub paged: Paged,
    /// Names, sorted. nats-server 2.15.1 sends `null` (not `[]`) when there are none;
    /// so does this type.
    #[serde(default, serialize_with = "empty_as_null")]
    pub streams: Vec<String>,
}

fn empty_as_null<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        serde::Serialize::serialize(v, s)
    }
}

impl ApiBody for StreamNamesResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_names_response";
}

/// `STREAM.LIST` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamListResponse {
    /// Paging.
    #[serde(flatten)]
    pub paged: Paged,
    /// Stream infos, sorted by name.
    #[serde(default)]
    pub streams: Vec<StreamInfo>,
    /// Streams that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Offline streams and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub offline: BTreeMap<String, String>,
}

impl ApiBody for StreamListResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_list_response";
}

/// `STREAM.DELETE` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDeleteResponse {
    /// Deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for StreamDeleteResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_delete_response";
}

/// `STREAM.PURGE` request (optional body, ADR-10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamPurgeRequest {
    /// Purge up to (not including) this sequence.
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Only this subject filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter: String,
    /// Keep this many newest messages.
    #[serde(skip_serializing_if = "is_zero")]
    pub keep: u64,
}

/// `STREAM.PURGE` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPurgeResponse {
    /// Purged.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
    /// Messages removed.
    #[serde(default)]
    pub purged: u64,
}

impl ApiBody for StreamPurgeResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_purge_response";
}

/// `META.LEADER.STEPDOWN` request (optional body): `placement.preferred` names the
/// server to hand the meta leadership to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaLeaderStepdownRequest {
    /// Where the new leader should be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<super::stream::Placement>,
}

/// `META.LEADER.STEPDOWN` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaLeaderStepdownResponse {
    /// The leader stepped down.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for MetaLeaderStepdownResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.meta_leader_stepdown_response";
}

/// `STREAM.LEADER.STEPDOWN` request: the same body as the meta group's
/// (`placement.preferred` names the server to hand the stream's leadership to).
pub type StreamLeaderStepdownRequest = MetaLeaderStepdownRequest;

/// `STREAM.LEADER.STEPDOWN` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamLeaderStepdownResponse {
    /// The leader stepped down.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for StreamLeaderStepdownResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_leader_stepdown_response";
}

/// `STREAM.PEER.REMOVE` request: the server (`server_name`) whose replica goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamRemovePeerRequest {
    /// The server's name.
    pub peer: String,
}

/// `STREAM.PEER.REMOVE` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRemovePeerResponse {
    /// The peer was removed (and is being replaced).
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for StreamRemovePeerResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_remove_peer_response";
}
