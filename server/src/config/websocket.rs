//! The `websocket {}` block: the listener for browser and other WebSocket clients.

use std::time::Duration;

use super::TlsConfig;

/// nats-server's limit on the HTTP upgrade (TLS handshake included).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// `websocket { … }`: where WebSocket clients connect and how they are admitted.
#[derive(Debug, Clone, PartialEq)]
pub struct WebsocketConfig {
    /// Listen host; defaults to the client host.
    pub host: String,
    /// Port; 0 picks a free one (`-1` in the file).
    pub port: u16,
    /// `host:port` advertised to clients of a cluster instead of the listen address.
    pub advertise: Option<String>,
    /// TLS for `wss://` (required unless `no_tls`).
    pub tls: Option<TlsConfig>,
    /// Plain `ws://` allowed (test setups; nats-server warns in production).
    pub no_tls: bool,
    /// The `Origin` header, when present, must name the host the request was sent to.
    pub same_origin: bool,
    /// When not empty, the only accepted `Origin` values (scheme, host and port).
    pub allowed_origins: Vec<String>,
    /// permessage-deflate offered to clients that ask for it.
    pub compression: bool,
    /// Time allowed for the TLS handshake plus the HTTP upgrade.
    pub handshake_timeout: Duration,
    /// Cookie whose value is the user JWT when CONNECT carries none.
    pub jwt_cookie: Option<String>,
    /// Cookie whose value is the user name when CONNECT carries none.
    pub user_cookie: Option<String>,
    /// Cookie whose value is the password when CONNECT carries none.
    pub pass_cookie: Option<String>,
    /// Cookie whose value is the token when CONNECT carries none.
    pub token_cookie: Option<String>,
    /// WebSocket-only user name (with `password`): replaces the server's users for
    /// WebSocket clients, as nats-server's `websocket { authorization {} }` does.
    pub username: Option<String>,
    /// WebSocket-only password.
    pub password: Option<String>,
    /// WebSocket-only token.
    pub token: Option<String>,
    /// Overrides the authentication timeout for WebSocket clients.
    pub auth_timeout: Option<Duration>,
    /// User assumed by WebSocket clients that send no credentials.
    pub no_auth_user: Option<String>,
    /// Extra HTTP headers sent with the `101` upgrade answer (`headers {}`).
    pub headers: Vec<(String, String)>,
}

impl Default for WebsocketConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 0,
            advertise: None,
            tls: None,
            no_tls: false,
            same_origin: false,
            allowed_origins: Vec::new(),
            compression: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            jwt_cookie: None,
            user_cookie: None,
            pass_cookie: None,
            token_cookie: None,
            username: None,
            password: None,
            token: None,
            auth_timeout: None,
            no_auth_user: None,
            headers: Vec::new(),
        }
    }
}

impl WebsocketConfig {
    /// True when the block sets its own authentication, which then applies to WebSocket
    /// clients instead of the server's (nats-server's "auth override").
    pub fn overrides_auth(&self) -> bool {
        self.username.is_some() || self.token.is_some() || self.no_auth_user.is_some()
    }
}
