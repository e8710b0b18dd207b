//! The reply to a publish on a stream subject: `PubAck` or the pub-ack error form.
//!
//! Unlike API replies, a PubAck has no `type`. On failure nats-server sends
//! `{"error": {...}, "stream": "<name>", "seq": 0}`.

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::time::serde_util::{is_false, is_zero};

/// A successful publish acknowledgement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PubAck {
    /// Stream that stored the message.
    pub stream: String,
    /// Its sequence (the original one for a duplicate).
    pub seq: u64,
    /// JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// `Nats-Msg-Id` seen within the duplicate window; nothing was stored.
    #[serde(skip_serializing_if = "is_false")]
    pub duplicate: bool,
    /// Counter value (counter streams).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub val: String,
    /// Batch id (atomic batch commit).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub batch: String,
    /// Batch size (atomic batch commit).
    #[serde(skip_serializing_if = "is_zero")]
    pub count: u64,
}

/// The whole reply: an optional error followed by the ack fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAckResponse {
    /// Set when the publish was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Ack fields (`seq: 0` on error).
    #[serde(flatten)]
    pub ack: PubAck,
}

impl PubAckResponse {
    /// A success reply.
    pub fn ok(stream: impl Into<String>, seq: u64) -> PubAckResponse {
        PubAckResponse {
            error: None,
            ack: PubAck {
                stream: stream.into(),
                seq,
                ..PubAck::default()
            },
        }
    }

    /// The error form, as nats-server sends it (`stream` set, `seq` 0).
    pub fn err(stream: impl Into<String>, error: ApiError) -> PubAckResponse {
        PubAckResponse {
            error: Some(error),
            ack: PubAck {
                stream: stream.into(),
                ..PubAck::default()
            },
        }
    }
}
