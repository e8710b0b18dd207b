//! HTTP monitoring on `-m` / `http_port`: nats-server's `/varz`, `/connz`,
//! `/subsz`, `/routez`, `/jsz`, `/healthz`, `/accountz` (same JSON field names
//! and meanings, so prometheus-nats-exporter and the nats CLI can read them),
//! plus `/metrics` in the Prometheus text format, which nats-server lacks.
//!
//! Served by hyper (HTTP/1 only) on its own accept loop, in plain HTTP (`http_port`)
//! or over TLS with the server's `tls {}` settings (`https_port`); every handler reads
//! the shared [`ServerState`] and never blocks the messaging path. `/` is the web
//! console ([`console`]) unless `http_console: false`.

mod connz;
mod console;
pub(crate) mod format;
mod metrics;
mod process;
mod varz;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::jetstream::cluster::health as cluster_health;
use crate::server::ServerState;

pub use format::{go_duration, rfc3339, uptime};
pub use process::{cpu_percent, rss_bytes};

pub use crate::shared::{BoxFuture, JsReport};

/// Binds the monitoring listener and serves until `stop` turns true; with `https`,
/// each connection first completes a TLS handshake with the server's current `tls {}`
/// settings (as reloaded).
///
/// # Errors
/// When the address cannot be bound.
pub async fn start(
    state: Arc<ServerState>,
    host: &str,
    port: u16,
    https: bool,
    stop: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let crate::bind::Bound { listener, addr } = crate::bind::listen(host, port).await?;
    let scheme = if https { "https" } else { "http" };
    info!("Starting {scheme} monitor on {addr}");
    tokio::spawn(accept_loop(state, listener, https, stop));
    Ok(addr)
}

async fn accept_loop(
    state: Arc<ServerState>,
    listener: TcpListener,
    https: bool,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    debug!("monitoring accept error: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            if !https {
                return serve(state, stream).await;
            }
            let Some(acceptor) = state.tls_acceptor() else {
                return;
            };
            let wait = state
                .config()
                .tls
                .as_ref()
                .map_or(Duration::from_secs(2), |t| t.timeout);
            match tokio::time::timeout(wait, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(state, tls).await,
                Ok(Err(e)) => debug!("monitoring TLS handshake error: {e}"),
                Err(_) => debug!("monitoring TLS handshake timeout"),
            }
        });
    }
}

/// Serves HTTP/1 requests on one connection until it closes.
async fn serve<S>(state: Arc<ServerState>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(route(&state, &req).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        debug!("monitoring connection error: {e}");
    }
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// The JSON and text endpoints, as nats-server names them (`/` is the console or the index).
const PATHS: &[&str] = &[
    "/",
    "/varz",
    "/connz",
    "/subsz",
    "/subscriptionsz",
    "/routez",
    "/accountz",
    "/leafz",
    "/jsz",
    "/healthz",
    "/metrics",
];

async fn route(state: &Arc<ServerState>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let q = query(req);
    let path = req.uri().path().trim_end_matches('/');
    let console = state.config().http_console;
    let known = if path.is_empty() { "/" } else { path };
    if let Some(path) = PATHS
        .iter()
        .chain(if console { console::PATHS } else { &[] })
        .find(|p| **p == known)
    {
        state.stats.http_requests.count(path);
    }
    if console && let Some(page) = console::route(state, path, &q).await {
        return page;
    }
    match path {
        "" => text(StatusCode::OK, "text/html; charset=utf-8", index()),
        "/varz" => json(&varz::varz(state).await),
        "/connz" => json(&connz::connz(state, &q)),
        "/subsz" | "/subscriptionsz" => json(&connz::subsz(state, &q)),
        "/routez" => json(&varz::routez(state, routez_subs(&q))),
        "/accountz" => json(&varz::accountz(state)),
        "/leafz" => json(&varz::leafz(state, leafz_subs(&q), acc_of(&q))),
        "/jsz" => json(&varz::jsz(state, &q).await),
        "/healthz" => healthz(state, &q).await,
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics::render(state).await,
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n",
        ),
    }
}

/// The monitoring document `kind` (`VARZ`, `CONNZ`, `SUBSZ`, `JSZ`, `ACCOUNTZ`, `ROUTEZ`)
/// with query options `q`, for the system account's requests; `None` for other kinds.
pub async fn document(
    state: &Arc<ServerState>,
    kind: &str,
    q: &HashMap<String, String>,
) -> Option<serde_json::Value> {
    Some(match kind {
        "VARZ" => varz::varz(state).await,
        "CONNZ" => connz::connz(state, q),
        "SUBSZ" => connz::subsz(state, q),
        "JSZ" => varz::jsz(state, q).await,
        "ACCOUNTZ" => varz::accountz(state),
        "ROUTEZ" => varz::routez(state, routez_subs(q)),
        "LEAFZ" => varz::leafz(state, leafz_subs(q), acc_of(q)),
        _ => return None,
    })
}

/// `subs=1` (or `true`) lists each route's subscriptions, `subs=detail` with details.
fn routez_subs(q: &HashMap<String, String>) -> &str {
    q.get("subs").map_or("", String::as_str)
}

/// `acc=<name>`: one account only.
fn acc_of(q: &HashMap<String, String>) -> Option<&str> {
    q.get("acc").map(String::as_str).filter(|a| !a.is_empty())
}

/// `subs=1` (or `true`) lists each leaf link's subscriptions.
fn leafz_subs(q: &HashMap<String, String>) -> bool {
    q.get("subs").is_some_and(|v| v == "1" || v == "true")
}

/// `/healthz`: 200 `{"status":"ok"}`, or 503 when JetStream is required and off, or
/// (without `js-enabled-only` / `js-server-only`) when this server is not current in its
/// cluster's JetStream groups (nats-server's messages, `jetstream::cluster::health`).
async fn healthz(state: &Arc<ServerState>, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let js_required = q.contains_key("js-enabled-only") || q.contains_key("js-server-only");
    if js_required && state.config().jetstream.is_none() {
        let body = serde_json::json!({
            "status": "unavailable",
            "status_code": 503,
            "error": "JetStream not enabled",
        });
        return with_status(json(&body), StatusCode::SERVICE_UNAVAILABLE);
    }
    let current = match state.js_report() {
        Some(report) => report.health().await,
        // JetStream has not started yet.
        None if cluster_health::clustered(&state.config()) => {
            Err(cluster_health::RECOVERING.to_string())
        }
        None => Ok(()),
    };
    if !js_required && let Err(error) = current {
        let body = serde_json::json!({ "status": "unavailable", "error": error });
        return with_status(json(&body), StatusCode::SERVICE_UNAVAILABLE);
    }
    json(&serde_json::json!({ "status": "ok" }))
}

fn index() -> String {
    let links = [
        "varz", "connz", "subsz", "routez", "leafz", "accountz", "jsz", "healthz", "metrics",
    ];
    let items: String = links
        .iter()
        .map(|l| format!("<li><a href=\"/{l}\">/{l}</a></li>"))
        .collect();
    format!("<html><body><h1>rill monitoring</h1><ul>{items}</ul></body></html>\n")
}

fn json(value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    with_status(resp, status)
}

fn with_status(mut resp: Response<Full<Bytes>>, status: StatusCode) -> Response<Full<Bytes>> {
    *resp.status_mut() = status;
    resp
}
