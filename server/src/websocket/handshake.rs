//! The HTTP side of a WebSocket connection: checking the upgrade request the way
//! nats-server does (method, headers, key, version, origin), answering it, and taking
//! credentials from its cookies; and the [`Session`] the upgrade leaves to the client code.
//!
//! A refused request gets nats-server's answer (`403 Forbidden` for an origin, `405` for
//! a method, `400 Bad Request` otherwise, with `Sec-Websocket-Version: 13`) and its log
//! line, `<addr> - websocket handshake error: <reason>`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::Empty;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rill_protocol::Connect;

use crate::auth::Authenticator;
use crate::config::WebsocketConfig;

/// Why an upgrade request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// Not a GET.
    #[error("request method must be GET")]
    Method,
    /// No `Host` header.
    #[error("'Host' missing in request")]
    Host,
    /// A header does not ask for the upgrade.
    #[error("invalid value for header '{0}'")]
    Header(&'static str),
    /// `Sec-WebSocket-Key` is missing or not 16 bytes in base64.
    #[error("invalid websocket key")]
    Key,
    /// Not version 13.
    #[error("invalid version")]
    Version,
    /// The `Origin` header fails `same_origin` or `allowed_origins`.
    #[error("origin not allowed: {0}")]
    Origin(&'static str),
}

impl Refused {
    /// The HTTP status nats-server answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::Origin(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The response for a refused request.
    pub(crate) fn response(&self) -> Response<Empty<bytes::Bytes>> {
        let mut resp = Response::new(Empty::new());
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    }
}

/// Checks an upgrade request against RFC 6455 and the listener's origin rules.
///
/// # Errors
/// The first check that fails, in nats-server's order.
pub(crate) fn check<B>(req: &Request<B>, ws: &WebsocketConfig, tls: bool) -> Result<(), Refused> {
    if req.method() != Method::GET {
        return Err(Refused::Method);
    }
    let h = req.headers();
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(Refused::Host)?;
    if !has_token(h, header::UPGRADE, "websocket") {
        return Err(Refused::Header("Upgrade"));
    }
    if !has_token(h, header::CONNECTION, "upgrade") {
        return Err(Refused::Header("Connection"));
    }
    let key = h.get(header::SEC_WEBSOCKET_KEY).map(HeaderValue::as_bytes);
    if !key.is_some_and(|k| STANDARD.decode(k).is_ok_and(|d| d.len() == 16)) {
        return Err(Refused::Key);
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(Refused::Version);
    }
    if let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        check_origin(origin, host, tls, ws)?;
    }
    Ok(())
}

/// True when the comma-separated header `name` holds `token` (case-insensitive).
fn has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `same_origin` and `allowed_origins`, each applied when set (an origin must pass both).
fn check_origin(origin: &str, host: &str, tls: bool, ws: &WebsocketConfig) -> Result<(), Refused> {
    let Some(from) = Origin::parse(origin) else {
        return Err(Refused::Origin("invalid origin"));
    };
    if ws.same_origin {
        let (h, p) = split_host_port(host, if tls { 443 } else { 80 });
        if !from.host.eq_ignore_ascii_case(h) || from.port != p {
            return Err(Refused::Origin("not same origin"));
        }
    }
    if !ws.allowed_origins.is_empty() {
        let allowed = ws
            .allowed_origins
            .iter()
            .filter_map(|a| Origin::parse(a))
            .any(|a| a == from);
        if !allowed {
            return Err(Refused::Origin("not in the allowed list"));
        }
    }
    Ok(())
}

/// An origin: scheme, host and port (80 for `http`, 443 for `https` when absent).
#[derive(Debug, PartialEq, Eq)]
struct Origin<'a> {
    scheme: String,
    host: &'a str,
    port: u16,
}

impl<'a> Origin<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "https" | "wss" => 443,
            _ => 80,
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = split_host_port(authority, default);
        (!host.is_empty()).then_some(Self { scheme, host, port })
    }
}

/// `host:port`, `[v6]:port` or a bare host (then `default`).
fn split_host_port(authority: &str, default: u16) -> (&str, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').unwrap_or((rest, ""));
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host, port.unwrap_or(default));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().unwrap_or(default)),
        _ => (authority, default),
    }
}

/// What the client code needs to know about a connection that came through WebSocket.
#[derive(Debug)]
pub struct Session {
    /// The WebSocket port, which INFO reports to these clients (as nats-server does).
    pub port: u16,
    /// The block's own authentication, when it overrides the server's.
    pub auth: Option<Arc<Authenticator>>,
    /// The block's authentication timeout, when set.
    pub auth_timeout: Option<Duration>,
    /// Credentials from the upgrade request's cookies.
    pub cookies: Cookies,
}

/// Credentials the upgrade request carried in cookies (`jwt_cookie`, `user_cookie`,
/// `pass_cookie`, `token_cookie`), used when CONNECT leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies {
    jwt: Option<String>,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
}

impl Cookies {
    /// Picks the configured cookies out of the request's `Cookie` headers.
    pub(crate) fn from_request<B>(req: &Request<B>, ws: &WebsocketConfig) -> Self {
        let pairs: Vec<(&str, &str)> = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .collect();
        let find = |name: &Option<String>| {
            let name = name.as_deref()?;
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim_matches('"').to_string())
        };
        Self {
            jwt: find(&ws.jwt_cookie),
            user: find(&ws.user_cookie),
            pass: find(&ws.pass_cookie),
            token: find(&ws.token_cookie),
        }
    }

    /// Fills each credential CONNECT left empty.
    pub(crate) fn complete(&self, connect: &mut Connect) {
        let fill = |field: &mut Option<String>, cookie: &Option<String>| {
            if field.as_deref().is_none_or(str::is_empty) && cookie.is_some() {
                field.clone_from(cookie);
            }
        };
        fill(&mut connect.jwt, &self.jwt);
        fill(&mut connect.user, &self.user);
        fill(&mut connect.pass, &self.pass);
        fill(&mut connect.auth_token, &self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("GET").uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    const UPGRADE: [(&str, &str); 5] = [
        ("Host", "127.0.0.1:8080"),
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    fn with(extra: (&str, &str)) -> Request<()> {
        let mut h: Vec<(&str, &str)> = UPGRADE
            .iter()
            .copied()
            .filter(|(k, _)| *k != extra.0)
            .collect();
        h.push(extra);
        request(&h)
    }

    #[test]
    fn a_browser_upgrade_passes_and_bad_ones_fail_in_order() {
        let ws = WebsocketConfig::default();
        assert_eq!(check(&request(&UPGRADE), &ws, false), Ok(()));
        assert_eq!(
            check(&with(("Upgrade", "h2c")), &ws, false),
            Err(Refused::Header("Upgrade"))
        );
        assert_eq!(
            check(&with(("Connection", "close")), &ws, false),
            Err(Refused::Header("Connection"))
        );
        assert_eq!(
            check(&with(("Sec-WebSocket-Key", "abc")), &ws, false),
            Err(Refused::Key)
        );
        assert_eq!(
            check(&with(("Sec-WebSocket-Version", "12")), &ws, false),
            Err(Refused::Version)
        );
        let post = Request::builder()
            .method("POST")
            .uri("/")
            .body(())
            .expect("request");
        assert_eq!(check(&post, &ws, false), Err(Refused::Method));
    }

    #[test]
    fn origins_must_pass_same_origin_and_the_allowed_list() {
        let mut ws = WebsocketConfig {
            same_origin: true,
            ..WebsocketConfig::default()
        };
        let origin = |o| with(("Origin", o));
        assert_eq!(check(&origin("http://127.0.0.1:8080"), &ws, false), Ok(()));
        assert_eq!(
            check(&origin("http://evil.example"), &ws, false),
            Err(Refused::Origin("not same origin"))
        );
        ws.same_origin = false;
        ws.allowed_origins = vec!["http://a.example".into(), "https://b.example:8443".into()];
        assert_eq!(check(&origin("http://a.example:80"), &ws, false), Ok(()));
        assert_eq!(check(&origin("https://b.example:8443"), &ws, false), Ok(()));
        assert_eq!(
            check(&origin("https://a.example"), &ws, false),
            Err(Refused::Origin("not in the allowed list"))
        );
        // Without an Origin header (not a browser) there is nothing to check.
        assert_eq!(check(&request(&UPGRADE), &ws, false), Ok(()));
    }

    #[test]
    fn cookies_fill_only_what_connect_left_out() {
        let ws = WebsocketConfig {
            user_cookie: Some("u".into()),
            pass_cookie: Some("p".into()),
            token_cookie: Some("t".into()),
            ..WebsocketConfig::default()
        };
        let req = with(("Cookie", "theme=dark; u=alice; p=\"s3cret\""));
        let cookies = Cookies::from_request(&req, &ws);
        let mut connect = Connect {
            user: Some("bob".into()),
            ..Connect::default()
        };
        cookies.complete(&mut connect);
        assert_eq!(connect.user.as_deref(), Some("bob"));
        assert_eq!(connect.pass.as_deref(), Some("s3cret"));
        assert_eq!(connect.auth_token, None);
    }
}
