//! The CONNECT JSON a client sends after INFO.

use serde::{Deserialize, Serialize};

/// The fields of `CONNECT {json}` that real clients send.
///
/// Defaults follow nats-server: a client that omits `verbose` or `pedantic` gets
/// them on, and one that omits `echo` sees its own messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connect {
    /// Acknowledge each CONNECT/PUB/SUB/UNSUB with `+OK`.
    pub verbose: bool,
    /// Strict checking of publish subjects.
    pub pedantic: bool,
    /// The client requires TLS.
    pub tls_required: bool,
    /// Token for token authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// Client name, shown in monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Client library language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Client library version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Protocol level: 0 original, 1 accepts asynchronous INFO.
    pub protocol: i64,
    /// Deliver the client's own publishes back to it.
    pub echo: bool,
    /// Base64url signature of the INFO nonce (nkey and JWT authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// User JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// User public nkey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// The client understands HPUB/HMSG.
    pub headers: bool,
    /// The client wants a 503 status when a request has no responders.
    pub no_responders: bool,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            verbose: true,
            pedantic: true,
            tls_required: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: true,
            sig: None,
            jwt: None,
            nkey: None,
            headers: false,
            no_responders: false,
        }
    }
}
