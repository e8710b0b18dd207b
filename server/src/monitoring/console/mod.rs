//! The web console on the monitoring port: a page at `/` (in place of nats-server's
//! list of links) and its script and stylesheet under `/console/`, all embedded in
//! the binary (`assets/`), no CDN.
//!
//! The page polls the monitoring JSON (`/varz`, `/jsz`, `/connz`) while it is open, so a
//! server with no page open does no console work at all. Everything it serves is
//! read-only. Responses carry a Content-Security-Policy that allows only this origin's
//! script and style (no inline script), a second guard behind the page's rule of
//! putting server data into the document as text only.

mod browse;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use super::{json, text, with_status};
use crate::server::ServerState;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Only this origin's script, style and fetches; no inline script, no frames, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The console's own paths (its page is `/`), counted in `/varz`'s `http_req_stats`.
pub(super) const PATHS: &[&str] = &[
    "/console/console.js",
    "/console/console.css",
    "/console/api/msgs",
];

/// The console's answer to `path` (the request path without a trailing `/`) with query
/// `q`: its page, assets or message-browser JSON; `None` for any other path.
pub(super) async fn route(
    state: &Arc<ServerState>,
    path: &str,
    q: &HashMap<String, String>,
) -> Option<Response<Full<Bytes>>> {
    if path == "/console/api/msgs" {
        return Some(secured(messages(state, q).await));
    }
    asset(path)
}

/// `/console/api/msgs`: a page of a stream's messages (see [`browse`]); 400 without a
/// stream, 404 when JetStream, the account or the stream is not there.
async fn messages(state: &Arc<ServerState>, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let req = match browse::request(q) {
        Ok(req) => req,
        Err(e) => return with_status(json(&json!({ "error": e })), StatusCode::BAD_REQUEST),
    };
    let Some(js) = state.js_report() else {
        let body = json!({ "error": "JetStream not enabled" });
        return with_status(json(&body), StatusCode::NOT_FOUND);
    };
    match js.browse(req.clone()).await {
        Ok(page) => json(&browse::page_json(&req, &page)),
        Err(e) => with_status(json(&json!({ "error": e })), StatusCode::NOT_FOUND),
    }
}

/// The console page, or one of its assets, for `path`; `None` for any other path.
fn asset(path: &str) -> Option<Response<Full<Bytes>>> {
    let (content_type, body) = match path {
        "" => ("text/html; charset=utf-8", INDEX),
        "/console/console.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/console/console.css" => ("text/css; charset=utf-8", STYLE),
        _ => return None,
    };
    Some(secured(text(StatusCode::OK, content_type, body)))
}

/// Adds the console's security headers: the CSP, no MIME sniffing, no framing, no caching
/// (the assets are small and change with the binary).
fn secured(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let headers = resp.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_and_its_assets_with_a_csp() {
        for path in ["", "/console/console.js", "/console/console.css"] {
            let resp = asset(path).expect(path);
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()[CONTENT_SECURITY_POLICY], CSP);
        }
        assert!(asset("/console/other.js").is_none());
    }

    #[test]
    fn the_page_never_writes_markup_from_data() {
        // The script builds the document with textContent only.
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(banned), "console.js uses {banned}");
        }
    }
}
