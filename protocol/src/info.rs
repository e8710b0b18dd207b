//! The INFO JSON the server sends on accept (and again when something changes).

use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// The fields of `INFO {json}` that clients read. Optional fields are omitted when unset,
/// as nats-server omits them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Info {
    /// Unique server id (56 upper-case characters, nkey style).
    pub server_id: String,
    /// Server name (defaults to the id).
    pub server_name: String,
    /// Server version.
    pub version: String,
    /// Protocol version, 1.
    pub proto: i64,
    /// Git commit of the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// Implementation/toolchain string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<String>,
    /// Listen host.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Headers supported.
    pub headers: bool,
    /// Authentication required.
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// TLS required.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Client certificates verified.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// TLS available but not required.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_available: bool,
    /// Largest payload accepted.
    pub max_payload: i64,
    /// JetStream enabled.
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// Client id assigned to this connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The client's address as the server sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Nonce to sign for nkey authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Cluster name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// JetStream domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Other URLs clients may connect to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Lame-duck mode: the server is going away.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// Connect info is being reported back.
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    /// The account this client is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// JetStream API level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_lvl: Option<i64>,
    /// rill's own version, beside the nats-server `version` it implements (a field of
    /// rill's; clients ignore fields they do not know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rill_version: Option<String>,
}
