//! The JSON of a route's `INFO` and `CONNECT`.
//!
//! Recorded from nats-server 2.15.1: the server that accepts a route sends INFO at
//! once; the server that dialled sends `CONNECT` (with `name` = its server id and
//! `cluster` = its cluster name, plus `user`/`pass` for route authorization) and then
//! its own INFO. An INFO received later on an established route describes either the
//! peer itself (an update, such as `ldm` or new `connect_urls`) or, when `server_id`
//! is another server's and `ip` carries its route URL, a cluster member the peer
//! tells about (gossip: the receiver dials it).

use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// Route `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    /// The server's id.
    pub server_id: String,
    /// The server's name.
    pub server_name: String,
    /// Version.
    pub version: String,
    /// Route protocol level (nats-server 2.15 sends 3).
    pub proto: i64,
    /// Implementation/toolchain string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<String>,
    /// Cluster listen host.
    pub host: String,
    /// Cluster listen port.
    pub port: u16,
    /// Headers supported.
    pub headers: bool,
    /// Route authorization required.
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// TLS required on the route.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// TLS client certificates verified.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// Largest payload.
    pub max_payload: i64,
    /// The route URL of the server described, in gossip (`nats-route://host:port/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Cluster name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `host:port` URLs where clients can reach the described server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// `host:port` URLs where WebSocket clients can reach the described server (sent
    /// when it has a `websocket {}` block).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    /// Compression mode: rill sends `off`, which nats-server accepts as declining s2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Route pool size (pooling); rill leaves it out and nats-server then keeps one
    /// route per peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_pool_size: Option<i64>,
    /// Index of this connection in the pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_pool_idx: Option<i64>,
    /// The account a dedicated route serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_account: Option<String>,
    /// Gossip mode marker nats-server puts on gossiped INFOs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gossip_mode: Option<i64>,
    /// Lame-duck mode: the server is going away.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// JetStream enabled.
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
}

/// Route `CONNECT`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteConnect {
    /// Echo (always true between servers).
    pub echo: bool,
    /// Verbose (false).
    pub verbose: bool,
    /// Pedantic (false).
    pub pedantic: bool,
    /// The dialling server uses TLS.
    pub tls_required: bool,
    /// Headers supported.
    pub headers: bool,
    /// The dialling server's id.
    pub name: String,
    /// The dialling server's cluster name.
    pub cluster: String,
    /// Route user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Route password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
}

/// Writes `CONNECT {json}\r\n` for a route.
pub fn encode_connect(buf: &mut bytes::BytesMut, connect: &RouteConnect) {
    crate::encode::connect_json(buf, connect);
}

/// Writes `INFO {json} \r\n` for a route (nats-server puts a space before the line ending).
pub fn encode_info(buf: &mut bytes::BytesMut, info: &RouteInfo) {
    crate::encode::info_json(buf, info);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_server_route_info_and_connect_parse() {
        let info: RouteInfo = serde_json::from_str(
            r#"{"server_id":"NAZSL6","server_name":"C","version":"2.15.1","proto":3,"go":"go1.27.2","host":"127.0.0.1","port":16224,"headers":true,"max_payload":1048576,"ip":"nats-route://127.0.0.1:16224/","cluster":"C1","connect_urls":["127.0.0.1:14224"],"compression":"off","lnoc":true,"lnocu":true,"ln":true,"route_pool_size":3,"route_account":"$SYS","gossip_mode":1}"#,
        )
        .expect("gossip INFO");
        assert_eq!(info.ip.as_deref(), Some("nats-route://127.0.0.1:16224/"));
        assert_eq!(info.route_account.as_deref(), Some("$SYS"));
        let connect: RouteConnect = serde_json::from_str(
            r#"{"echo":true,"verbose":false,"pedantic":false,"tls_required":false,"headers":true,"name":"NDVRQU","cluster":"C1","lnoc":true,"ln":true}"#,
        )
        .expect("route CONNECT");
        assert_eq!(
            (connect.name.as_str(), connect.cluster.as_str()),
            ("NDVRQU", "C1")
        );
    }
}
