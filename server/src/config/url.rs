//! URLs of other servers a link dials, shared by routes (`cluster { routes }`) and leaf
//! remotes (`leafnodes { remotes [{ url }] }`): `scheme://[user:pass@]host[:port][/]`.
//! The kinds differ only in the schemes they take, whether the port may be left out,
//! and how they are named in messages; see [`UrlKind`].

use std::fmt;
use std::marker::PhantomData;

/// What one kind of link URL takes.
pub trait UrlKind {
    /// Accepted schemes (compared without case).
    const SCHEMES: &'static [&'static str];
    /// The port when the URL has none; `None`: the port is required.
    const DEFAULT_PORT: Option<u16>;
    /// The scheme URLs are shown with in logs.
    const SHOWN: &'static str;
    /// What the URL is, in error messages ("route", "leafnode remote").
    const WHAT: &'static str;

    /// The port when a URL with `scheme` has none (`None`: required).
    fn default_port(scheme: &str) -> Option<u16> {
        let _ = scheme;
        Self::DEFAULT_PORT
    }
}

/// A URL of another server for link kind `K`.
pub struct LinkUrl<K> {
    /// The scheme as written, lower case (`nats-route`, `nats-leaf`, `ws`, …; empty when
    /// the URL has none).
    pub scheme: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User from the URL.
    pub user: Option<String>,
    /// Password from the URL.
    pub pass: Option<String>,
    /// The path after `host:port`, without its leading and trailing `/` (often empty).
    pub path: String,
    kind: PhantomData<K>,
}

impl<K: UrlKind> LinkUrl<K> {
    /// Parses a URL of this kind.
    ///
    /// # Errors
    /// A message naming what is wrong (an unsupported scheme, a missing or bad port).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if !K::SCHEMES.contains(&scheme.as_str()) {
                    return Err(format!("unsupported {} URL scheme {scheme:?}", K::WHAT));
                }
                (scheme, rest)
            }
            None => (String::new(), text),
        };
        let (rest, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.trim_matches('/');
        let (creds, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (user, pass) = match creds.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (None, None),
        };
        let bad = || format!("could not parse {} URL {text:?}", K::WHAT);
        let default_port = K::default_port(&scheme);
        let (host, port) = match (hostport.rsplit_once(':'), default_port) {
            // A colon inside `[v6]` is not a port separator.
            (Some((h, p)), _) if !h.ends_with(']') || hostport.starts_with('[') => {
                if p.ends_with(']') {
                    (hostport, default_port.ok_or_else(bad)?)
                } else {
                    (h, p.parse::<u16>().map_err(|_| bad())?)
                }
            }
            (_, Some(default)) => (hostport, default),
            (_, None) => return Err(bad()),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self {
            scheme,
            host: host.to_string(),
            port,
            user,
            pass,
            path: path.to_string(),
            kind: PhantomData,
        })
    }

    /// True for `ws://` and `wss://` URLs.
    pub fn is_websocket(&self) -> bool {
        matches!(self.scheme.as_str(), "ws" | "wss")
    }

    /// `host:port` to dial, with brackets around an IPv6 host.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl<K> Clone for LinkUrl<K> {
    fn clone(&self) -> Self {
        Self {
            scheme: self.scheme.clone(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            pass: self.pass.clone(),
            path: self.path.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for LinkUrl<K> {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.scheme,
            &self.host,
            self.port,
            &self.user,
            &self.pass,
            &self.path,
        ) == (
            &other.scheme,
            &other.host,
            other.port,
            &other.user,
            &other.pass,
            &other.path,
        )
    }
}

impl<K> Eq for LinkUrl<K> {}

/// Shown without the password, as nats-server logs route URLs.
impl<K: UrlKind> fmt::Display for LinkUrl<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let scheme = if self.is_websocket() {
            self.scheme.as_str()
        } else {
            K::SHOWN
        };
        match &self.user {
            Some(user) => write!(f, "{scheme}://{user}:xxxxx@{host}"),
            None => write!(f, "{scheme}://{host}"),
        }
    }
}

impl<K: UrlKind> fmt::Debug for LinkUrl<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
