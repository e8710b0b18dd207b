//! The `cluster {}` block and the clustering flags (`--cluster`, `--routes`, …): where this
//! server listens for routes, which servers it dials, and how routes authenticate.

use std::time::Duration;

use super::TlsConfig;
use super::url::{LinkUrl, UrlKind};

/// nats-server's default route authorization timeout.
pub const DEFAULT_ROUTE_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// How a cluster member is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Cluster name; every member must have the same. `None`: a name is made up at start
    /// and the first peer's name is adopted (nats-server's dynamic cluster name).
    pub name: Option<String>,
    /// Route listen host.
    pub host: String,
    /// Route listen port; 0 picks a free one (`-1` in config and flags). `None` (a block
    /// without `listen` or `port`): no route listener and no routes, as nats-server.
    pub port: Option<u16>,
    /// `host:port` advertised to peers instead of the listen address.
    pub advertise: Option<String>,
    /// Do not advertise this server's client URLs to clients of other servers.
    pub no_advertise: bool,
    /// Seed routes this server dials (and redials when they go away).
    pub routes: Vec<RouteUrl>,
    /// Credentials peers must present.
    pub authorization: Option<RouteAuth>,
    /// TLS on routes (both directions).
    pub tls: Option<TlsConfig>,
    /// Attempts for a route learned by gossip (0: nats-server's default of a few).
    pub connect_retries: u32,
    /// Interval between route PINGs (default: the server's `ping_interval`).
    pub ping_interval: Option<Duration>,
    /// Unanswered route PINGs before the route is stale (default: the server's `ping_max`).
    pub ping_max: Option<u32>,
    /// `pool_size` as configured. rill keeps one route per peer (as nats-server with
    /// `pool_size: -1`); the value is accepted for config compatibility.
    pub pool_size: i64,
    /// `compression` as configured; rill does not compress routes and says so (`off`).
    pub compression: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            name: None,
            host: "0.0.0.0".into(),
            port: None,
            advertise: None,
            no_advertise: false,
            routes: Vec::new(),
            authorization: None,
            tls: None,
            connect_retries: 0,
            ping_interval: None,
            ping_max: None,
            pool_size: 3,
            compression: None,
        }
    }
}

/// Route credentials (`cluster { authorization { user, password, timeout } }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// User.
    pub user: String,
    /// Password (plain or bcrypt).
    pub password: String,
    /// How long a dialling peer has to send CONNECT.
    pub timeout: Duration,
}

/// Route URLs: `nats-route://`, `nats://`, `tls://`, `route://` or none; the port is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteKind;

impl UrlKind for RouteKind {
    const SCHEMES: &'static [&'static str] = &["nats-route", "nats", "tls", "route"];
    const DEFAULT_PORT: Option<u16> = None;
    const SHOWN: &'static str = "nats-route";
    const WHAT: &'static str = "route";
}

/// A route to dial: `nats-route://[user:pass@]host:port`, `nats://…` or `host:port`.
pub type RouteUrl = LinkUrl<RouteKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_urls_parse_in_every_form_nats_server_takes() {
        let full = RouteUrl::parse("nats-route://route:pw@10.0.0.2:6222/").expect("url");
        assert_eq!(
            (
                full.host.as_str(),
                full.port,
                full.user.as_deref(),
                full.pass.as_deref()
            ),
            ("10.0.0.2", 6222, Some("route"), Some("pw"))
        );
        assert_eq!(full.to_string(), "nats-route://route:xxxxx@10.0.0.2:6222");
        assert_eq!(
            RouteUrl::parse("nats://n2:6223").expect("url").addr(),
            "n2:6223"
        );
        assert_eq!(
            RouteUrl::parse("[::1]:6222").expect("url").addr(),
            "[::1]:6222"
        );
        for bad in ["http://a:1", "nats://a", "nats://a:0", "nats://:5", "a:x"] {
            assert!(RouteUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
