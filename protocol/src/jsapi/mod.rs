//! `$JS.API` JSON: the request/response types JetStream clients exchange with the server,
//! the single JetStream error table, and advisory events.
//!
//! Everything here is plain serde data checked against nats-server 2.15.1 replies (see
//! `protocol/tests/jsapi_*.rs` and the captured fixtures in `protocol/tests/fixtures/`):
//!
//! * `Default` of a config type is Go's zero value, i.e. what nats-server sees for an omitted
//!   field. Server-side defaulting and validation live in the server crate.
//! * Serialisation omits exactly the fields nats-server omits (`omitempty`).
//! * Durations are [`Nanos`] (int64 nanoseconds); instants are [`Timestamp`] (RFC 3339, UTC).
//! * Read request bodies with [`parse_request`] (Go semantics for `null` and empty bodies);
//!   write replies with [`Response`], which adds the `type` string and the `error` form.
//!
//! [`ApiSubject`] parses and formats every `$JS.API.*` request subject. What does *not*
//! live here: the handlers, and status-line messages (`NATS/1.0 408 ...`), which belong
//! to the headers module.

mod account;
mod advisory;
mod api_subject;
mod consumer;
mod consumer_api;
mod error;
mod error_table;
mod msg;
mod name;
mod paging;
mod pubs;
mod response;
mod stream;
mod stream_api;
mod time;

pub use account::{AccountInfo, AccountLimits, AccountTier, ApiStats};
pub use advisory::*;
pub use api_subject::{API_PREFIX, ApiSubject, ApiSubjectError};
pub use consumer::{AckPolicy, ConsumerConfig, DeliverPolicy, PriorityPolicy, ReplayPolicy};
pub use consumer_api::{
    ConsumerAction, ConsumerCreateResponse, ConsumerDeleteResponse, ConsumerInfo,
    ConsumerInfoResponse, ConsumerLeaderStepdownResponse, ConsumerListResponse,
    ConsumerNamesResponse, ConsumerPauseRequest, ConsumerPauseResponse, ConsumerResetRequest,
    ConsumerResetResponse, ConsumerUnpinRequest, ConsumerUnpinResponse, CreateConsumerRequest,
    NakOptions, NextRequest, PriorityGroupState, SequenceInfo,
};
pub use error::{ApiError, ErrorCode};
pub use msg::{MsgDeleteRequest, MsgDeleteResponse, MsgGetRequest, MsgGetResponse, StoredMsg};
pub use name::{ConsumerName, MAX_NAME_LEN, NameError, StreamName, check_name_chars};
pub use paging::{
    LIST_PAGE_LIMIT, NAMES_PAGE_LIMIT, Paged, PagedRequest, STREAM_INFO_SUBJECTS_LIMIT,
    StreamNamesRequest,
};
pub use pubs::{PubAck, PubAckResponse};
pub use response::{ApiBody, Response, parse_request, strip_nulls};
pub use stream::{
    Compression, DiscardPolicy, ExternalStream, Metadata, PersistMode, Placement, RePublish,
    RetentionPolicy, StorageType, StreamConfig, StreamConsumerLimits, StreamConsumerSource,
    StreamSource, SubjectTransform,
};
pub use stream_api::{
    ClusterInfo, LostStreamData, MetaLeaderStepdownRequest, MetaLeaderStepdownResponse, PeerInfo,
    StreamAlternate, StreamConfigRequest, StreamCreateResponse, StreamDeleteResponse, StreamInfo,
    StreamInfoRequest, StreamInfoResponse, StreamLeaderStepdownRequest,
    StreamLeaderStepdownResponse, StreamListResponse, StreamNamesResponse, StreamPurgeRequest,
    StreamPurgeResponse, StreamRemovePeerRequest, StreamRemovePeerResponse, StreamSourceInfo,
    StreamState, StreamUpdateResponse,
};
pub use time::{Nanos, Timestamp};

pub use crate::compat::API_LEVEL;
