//! `$JS.API.INFO`: the account's JetStream usage, limits and API counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::response::ApiBody;
use super::time::serde_util::is_zero;

/// `limits` (-1 = unlimited). All fields always emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    /// Memory store bytes.
    pub max_memory: i64,
    /// File store bytes.
    pub max_storage: i64,
    /// Streams.
    pub max_streams: i64,
    /// Consumers.
    pub max_consumers: i64,
    /// Ack pending per consumer.
    pub max_ack_pending: i64,
    /// Max bytes of one memory stream.
    pub memory_max_stream_bytes: i64,
    /// Max bytes of one file stream.
    pub storage_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    pub max_bytes_required: bool,
}

impl Default for AccountLimits {
    /// Unlimited, as a server without account limits reports.
    fn default() -> Self {
        AccountLimits {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

/// Usage of one tier (also the top level of [`AccountInfo`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountTier {
    /// Memory bytes used.
    pub memory: u64,
    /// File bytes used.
    pub storage: u64,
    /// Memory bytes reserved by `max_bytes` of memory streams.
    pub reserved_memory: u64,
    /// File bytes reserved by `max_bytes` of file streams.
    pub reserved_storage: u64,
    /// Streams.
    pub streams: u64,
    /// Consumers.
    pub consumers: u64,
    /// Limits.
    pub limits: AccountLimits,
}

/// `api`: the API level and request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiStats {
    /// JetStream API level implemented (nats-server 2.15.1 says 5).
    pub level: u32,
    /// Requests since start.
    pub total: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Requests in flight.
    #[serde(skip_serializing_if = "is_zero")]
    pub inflight: u64,
}

/// `$JS.API.INFO` reply body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Totals.
    #[serde(flatten)]
    pub usage: AccountTier,
    /// JetStream domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// API stats.
    #[serde(default)]
    pub api: ApiStats,
    /// Per-tier usage (`R1`, `R3`) when tiered limits are configured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, AccountTier>,
}

impl ApiBody for AccountInfo {
    const TYPE: &'static str = "io.nats.jetstream.api.v1.account_info_response";
}
