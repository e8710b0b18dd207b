//! Paging for the NAMES/LIST/INFO requests: `{offset}` in, `{total, offset, limit}` out.

use serde::{Deserialize, Serialize};

/// Page limit nats-server uses for `STREAM.NAMES` and `CONSUMER.NAMES`.
pub const NAMES_PAGE_LIMIT: usize = 1024;
/// Page limit nats-server uses for `STREAM.LIST` and `CONSUMER.LIST`.
pub const LIST_PAGE_LIMIT: usize = 256;
/// Page limit for `subjects` / `deleted` details in `STREAM.INFO`.
pub const STREAM_INFO_SUBJECTS_LIMIT: usize = 100_000;

/// The paging fields of a reply. Always emitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Paged {
    /// Items in total.
    pub total: usize,
    /// Offset of this page.
    pub offset: usize,
    /// Page size limit.
    pub limit: usize,
}

/// The paging field of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PagedRequest {
    /// Skip this many items.
    pub offset: usize,
}

/// `STREAM.NAMES` / `STREAM.LIST` body: page plus optional subject filter
/// (only streams whose subjects overlap `subject`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamNamesRequest {
    /// Skip this many streams.
    pub offset: usize,
    /// Only streams capturing this subject (filter).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
}
