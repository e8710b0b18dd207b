//! `STREAM.MSG.GET` / `STREAM.MSG.DELETE` bodies and the stored-message form, plus the
//! `DIRECT.GET` request (same shape, more fields).

use serde::{Deserialize, Serialize};

use super::response::ApiBody;
use super::time::Timestamp;
use super::time::serde_util::{base64_opt, is_false, is_zero};

/// `STREAM.MSG.GET` and `DIRECT.GET` request.
///
/// Exactly one of `seq`, `last_by_subj`, `next_by_subj` (with `seq` as the start), or the
/// direct-get batch forms is meaningful; the server checks the combination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgGetRequest {
    /// Sequence (or start sequence with `next_by_subj`).
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Last message on this subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_by_subj: String,
    /// First message at or after `seq` on this subject (filter).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub next_by_subj: String,
    /// Direct get: up to this many messages.
    #[serde(skip_serializing_if = "is_zero")]
    pub batch: i64,
    /// Direct get: byte budget.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    /// Direct get: start at this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// Direct get: last message of each of these subjects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub multi_last: Vec<String>,
    /// Direct get: as of this sequence.
    #[serde(skip_serializing_if = "is_zero")]
    pub up_to_seq: u64,
    /// Direct get: as of this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to_time: Option<Timestamp>,
    /// Direct get: no headers.
    #[serde(skip_serializing_if = "is_false")]
    pub no_hdr: bool,
}

/// A stored message as `STREAM.MSG.GET` returns it. `hdrs` and `data` are base64 and
/// omitted when absent/empty (nats-server omits `data` for an empty payload).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredMsg {
    /// Subject.
    pub subject: String,
    /// Sequence.
    pub seq: u64,
    /// Raw header block (`NATS/1.0\r\n...`), if any.
    #[serde(with = "base64_opt", skip_serializing_if = "Option::is_none")]
    pub hdrs: Option<Vec<u8>>,
    /// Payload; `None` for an empty payload.
    #[serde(with = "base64_opt", skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<u8>>,
    /// Store time.
    pub time: Timestamp,
}

/// `STREAM.MSG.GET` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgGetResponse {
    /// The message.
    pub message: StoredMsg,
}

impl ApiBody for MsgGetResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_msg_get_response";
}

/// `STREAM.MSG.DELETE` request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgDeleteRequest {
    /// Sequence to delete.
    pub seq: u64,
    /// Remove without overwriting the bytes on disk.
    #[serde(skip_serializing_if = "is_false")]
    pub no_erase: bool,
}

/// `STREAM.MSG.DELETE` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgDeleteResponse {
    /// Deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

impl ApiBody for MsgDeleteResponse {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.stream_msg_delete_response";
}
