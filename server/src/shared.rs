//! Constants and small types every layer of the server shares. A leaf: it imports nothing
//! from the crate, so anything may import it without closing a loop.

use std::collections::HashMap;

/// The name of the default account, as nats-server calls it.
pub const GLOBAL_ACCOUNT: &str = "$G";

/// The system account's name when none is configured (outside operator mode), as
/// nats-server's.
pub const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// rill's own version (`--version`, the log banner, `rill_version` in INFO and `/varz`).
/// Where nats-server reports its version, rill reports
/// [`NATS_VERSION`](rill_protocol::compat::NATS_VERSION), the release it implements.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `server` object of nats-server's events and `$SYS` replies (and of message
/// trace reports).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    /// Server name.
    pub name: String,
    /// Client listen host.
    pub host: String,
    /// Server id.
    pub id: String,
    /// Cluster name, when in a cluster (left out of `$SYS` replies for now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Version.
    pub ver: String,
    /// JetStream enabled.
    pub jetstream: bool,
    /// Flags (nats-server: bit 1 JetStream, bit 2 binary stream snapshots...).
    pub flags: u64,
    /// Sequence number of this message from this server.
    pub seq: u64,
    /// When the message was sent.
    pub time: String,
}

/// A boxed `Send` future, for async methods of object-safe traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What the cluster (routes) tells clients and monitoring. The route layer registers it
/// with the server state when it starts ([`crate::server::ServerState::set_cluster`]).
pub trait ClusterReport: Send + Sync + std::fmt::Debug {
    /// The cluster's name.
    fn name(&self) -> String;
    /// `host:port` of every server clients may connect to, this one first; empty while
    /// no other server is connected (as nats-server), or with `no_advertise`.
    fn connect_urls(&self) -> Vec<String>;
    /// The same for WebSocket clients (`ws_connect_urls` of the routes' INFOs): what a
    /// WebSocket client's INFO carries as its `connect_urls`, as nats-server does.
    fn ws_connect_urls(&self) -> Vec<String>;
    /// Live routes.
    fn num_routes(&self) -> usize;
    /// The `routes` array of `/routez`; `subs` is the query's `subs` value (`1`: each
    /// route's subjects too, `detail`: with queue groups and accounts).
    fn routez(&self, subs: &str) -> serde_json::Value;
    /// The `cluster` object of `/varz`.
    fn varz(&self) -> serde_json::Value;
    /// Route traffic and closes since start (closed routes included).
    fn totals(&self) -> RouteTotals;
}

/// What every route since start added up to (for `/varz` and `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTotals {
    /// Messages received from routes.
    pub in_msgs: u64,
    /// Payload bytes received from routes.
    pub in_bytes: u64,
    /// Messages sent to routes.
    pub out_msgs: u64,
    /// Payload bytes sent to routes.
    pub out_bytes: u64,
    /// Routes closed as slow consumers.
    pub slow_consumers: u64,
    /// Routes closed as stale (unanswered PINGs).
    pub stale: u64,
}

/// An upgraded WebSocket connection, as the WebSocket listener hands it on.
pub type WsSocket = yawc::WebSocket<yawc::HttpStream>;

/// What other layers reach of the leaf nodes: monitoring's reports, and the WebSocket
/// listener's hand-over of leaf connections. The leaf layer registers it with the server
/// state when it starts ([`crate::server::ServerState::set_leafs`]).
pub trait LeafReport: Send + Sync + std::fmt::Debug {
    /// Live leaf-node links.
    fn num_leafs(&self) -> usize;
    /// The `leafnodes` count and `leafs` array of `/leafz` (`subs`: each link's
    /// subscriptions too).
    fn leafz(&self, subs: bool) -> serde_json::Value;
    /// The `leaf` object of `/varz`.
    fn varz(&self) -> serde_json::Value;
    /// Serves a leaf connection that came in on the WebSocket port (its upgrade asked
    /// for a path ending in `/leafnode`) until it closes.
    fn accept_websocket(
        self: std::sync::Arc<Self>,
        socket: WsSocket,
        addr: std::net::SocketAddr,
    ) -> BoxFuture<'static, ()>;
    /// An account JWT changed (operator mode): each accepted leaf's JWT user is checked
    /// again (against the server's operator trust) and the link closed when it no longer
    /// passes.
    fn recheck_jwt(&self);
    /// The ids of the accepted leaf links bound to `account` (counted against its JWT's
    /// `conn` limit on an update).
    fn account_links(&self, account: &str) -> Vec<u64>;
    /// Closes leaf link `lid`, over its account's connection limit.
    fn close_over_limit(&self, lid: u64);
}

/// What JetStream reports to monitoring. JetStream registers it with the server state when
/// it starts ([`crate::server::ServerState::set_js_report`]); monitoring reads it. Async
/// because stream state lives in each stream's actor (run on the stream pool).
pub trait JsReport: Send + Sync + std::fmt::Debug {
    /// The `/jsz` document (without `server_id`, `now` and `config`, added here).
    fn jsz<'a>(&'a self, query: &'a HashMap<String, String>) -> BoxFuture<'a, serde_json::Value>;
    /// Per-stream and per-consumer gauges in the Prometheus text format.
    fn metrics(&self) -> BoxFuture<'_, String>;
    /// `/healthz`: why this server is not current in its cluster's JetStream groups
    /// (nats-server's message), `Ok` when it is or is not clustered.
    fn health(&self) -> BoxFuture<'_, Result<(), String>>;
    /// The account JWTs changed (operator mode): accounts gain, lose or change JetStream.
    fn accounts_changed(&self) -> BoxFuture<'_, ()>;
    /// A bounded, read-only page of one stream's messages for the web console's message
    /// browser, read through the stream's handle as `DIRECT.GET` reads (`Err`: why not).
    fn browse(&self, req: BrowseRequest) -> BoxFuture<'_, Result<BrowsePage, String>>;
}

/// Which messages the console's message browser asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowseRequest {
    /// The stream's account (empty: the only account with JetStream).
    pub account: String,
    /// The stream's name.
    pub stream: String,
    /// The first sequence to look at (0 counts as 1).
    pub start: u64,
    /// Only messages on subjects matching this filter (empty: all).
    pub subject: String,
    /// At most this many messages.
    pub limit: usize,
    /// About this many bytes of headers and payload at most (at least one message).
    pub max_bytes: usize,
}

/// A page of stored messages, with the stream's bounds when it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowsePage {
    /// The stream's first sequence.
    pub first_seq: u64,
    /// The stream's last sequence.
    pub last_seq: u64,
    /// Stored messages in the stream.
    pub messages: u64,
    /// The messages found, in sequence order.
    pub msgs: Vec<BrowsedMsg>,
}

/// One stored message as the message browser gets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowsedMsg {
    /// Stream sequence.
    pub seq: u64,
    /// Time stored, nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The subject.
    pub subject: String,
    /// The raw header block, if any.
    pub headers: Option<bytes::Bytes>,
    /// The payload.
    pub payload: bytes::Bytes,
}

/// Now, in nanoseconds since the unix epoch (0 before it, saturating far after).
pub fn unix_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
