//! The web console on the monitoring port: a page at `/` (in place of nats-server's
//! list of links) and its script and stylesheet under `/console/`, all embedded in
//! the binary (`assets/`), no CDN.
//!
//! The page polls the monitoring JSON (`/varz`, `/jsz`, `/connz`) while it is open, so a
//! server with no page open does no console work at all. Everything it serves is
//! read-only. Responses carry a Content-Security-Policy that allows only this origin's
//! script and style (no inline script), a second guard behind the page's rule of
//! putting server data into the document as text only.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::text;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Only this origin's script, style and fetches; no inline script, no frames, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The console page, or one of its assets, for `path` (the request path without a
/// trailing `/`); `None` for any other path.
pub(super) fn asset(path: &str) -> Option<Response<Full<Bytes>>> {
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
