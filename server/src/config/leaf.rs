//! The `leafnodes {}` block: where this server accepts leaf-node connections (the hub
//! role), who may connect and to which account each is bound, and which hubs this
//! server dials as a leaf (`remotes`).

use std::time::Duration;

use super::TlsConfig;
use super::url::{LinkUrl, UrlKind};

/// nats-server's delay between attempts to reach a remote hub.
const DEFAULT_RECONNECT: Duration = Duration::from_secs(1);

/// `leafnodes { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafConfig {
    /// Listen host.
    pub host: String,
    /// Listen port; 0 picks a free one (`-1` in the file). `None`: no listener (a block
    /// with only `remotes`).
    pub port: Option<u16>,
    /// `host:port` advertised to leafs (`leafnode_urls`) instead of the listen address.
    pub advertise: Option<String>,
    /// Leave `leafnode_urls` out of the INFO.
    pub no_advertise: bool,
    /// Who may connect, and the account each credential is bound to. `None`: leafs
    /// connect without credentials and are bound to the global account.
    pub authorization: Option<LeafAuth>,
    /// Hubs this server dials.
    pub remotes: Vec<RemoteLeaf>,
    /// Wait between attempts to reach a remote hub.
    pub reconnect: Duration,
    /// `compression` as configured; rill does not compress leaf links and says so
    /// (`off`), which nats-server accepts.
    pub compression: Option<String>,
    /// TLS on accepted leaf connections (`tls {}`: after the INFO, or first with
    /// `handshake_first`).
    pub tls: Option<TlsConfig>,
}

impl Default for LeafConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: None,
            advertise: None,
            no_advertise: false,
            authorization: None,
            remotes: Vec::new(),
            reconnect: DEFAULT_RECONNECT,
            compression: None,
            tls: None,
        }
    }
}

/// `leafnodes { authorization { user, password, account, timeout, users: [...] } }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeafAuth {
    /// Accepted credentials: the single `user`/`password` first, then `users`.
    pub users: Vec<LeafUser>,
    /// How long a leaf has to send CONNECT.
    pub timeout: Option<Duration>,
}

/// One leaf credential and the local account its connection is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeafUser {
    /// User name.
    pub user: String,
    /// Password (plain or bcrypt).
    pub password: String,
    /// Account the leaf's interest and messages live in (global when `None`).
    pub account: Option<String>,
}

/// One `remotes` entry: a hub this server connects to as a leaf.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteLeaf {
    /// Hub URLs, tried in turn (`nats-leaf://[user:pass@]host:port`, `nats://…`, `ws://…`).
    pub urls: Vec<LeafUrl>,
    /// Local account bound to this link (global when `None`).
    pub account: Option<String>,
    /// A `.creds` file: its user JWT is sent and its seed signs the hub's nonce.
    pub credentials: Option<std::path::PathBuf>,
    /// Subjects whose messages this leaf does not take from the hub (nor asks for).
    pub deny_imports: Vec<String>,
    /// Subjects this leaf does not send to the hub (nor announces interest in).
    pub deny_exports: Vec<String>,
    /// TLS to the hub (`tls {}`: the hub verified against `ca_file`, our certificate
    /// presented when given; `handshake_first` as the hub's).
    pub tls: Option<TlsConfig>,
    /// `ws_compression`: a WebSocket remote offers permessage-deflate.
    pub ws_compression: bool,
    /// `ws_no_masking`: accepted as nats-server's; rill always masks what it sends
    /// (the hub must agree to unmasked frames anyway, and masking always works).
    pub ws_no_masking: bool,
}

impl RemoteLeaf {
    /// True when the remote's URLs are `ws://` or `wss://` (all or none are).
    pub fn is_websocket(&self) -> bool {
        self.urls.first().is_some_and(LeafUrl::is_websocket)
    }
}

/// Leaf remote URLs: `nats-leaf://`, `nats://`, `leafnode://`, `leaf://` or none (the
/// port defaults to 7422), or `ws://` / `wss://` to a hub's WebSocket port (80 / 443).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafKind;

impl UrlKind for LeafKind {
    const SCHEMES: &'static [&'static str] =
        &["nats-leaf", "nats", "leafnode", "leaf", "ws", "wss"];
    const DEFAULT_PORT: Option<u16> = Some(7422);
    const SHOWN: &'static str = "nats-leaf";
    const WHAT: &'static str = "leafnode remote";

    fn default_port(scheme: &str) -> Option<u16> {
        match scheme {
            "ws" => Some(80),
            "wss" => Some(443),
            _ => Self::DEFAULT_PORT,
        }
    }
}

/// A hub URL of a remote: `nats-leaf://[user:pass@]host[:port]`.
pub type LeafUrl = LinkUrl<LeafKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_parse_with_default_port_and_credentials() {
        let u = LeafUrl::parse("nats-leaf://a:b@127.0.0.1:7423").expect("url");
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.user.as_deref(),
                u.pass.as_deref()
            ),
            ("127.0.0.1", 7423, Some("a"), Some("b"))
        );
        assert_eq!(LeafUrl::parse("nats://hub").expect("url").port, 7422);
        assert_eq!(LeafUrl::parse("[::1]:9").expect("url").host, "::1");
        assert!(LeafUrl::parse("http://x:1").is_err());
        assert!(LeafUrl::parse("nats-leaf://x:notaport").is_err());
        assert_eq!(
            LeafUrl::parse("nats-leaf://u:p@h:1")
                .expect("url")
                .to_string(),
            "nats-leaf://u:xxxxx@h:1"
        );
    }

    #[test]
    fn websocket_urls_keep_their_path_and_default_to_web_ports() {
        let u = LeafUrl::parse("ws://u:p@hub/edge/").expect("url");
        assert!(u.is_websocket());
        assert_eq!((u.port, u.path.as_str()), (80, "edge"));
        assert_eq!(u.to_string(), "ws://u:xxxxx@hub:80");
        let u = LeafUrl::parse("wss://hub:8443").expect("url");
        assert_eq!((u.port, u.path.as_str()), (8443, ""));
        assert_eq!(LeafUrl::parse("wss://hub").expect("url").port, 443);
        assert!(!LeafUrl::parse("nats://hub").expect("url").is_websocket());
    }
}
