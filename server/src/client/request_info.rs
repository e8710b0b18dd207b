//! The `Nats-Request-Info` header of a client's request crossing a service import
//! (see [`crate::account::Requesters`]): the fields nats-server 2.15.1 writes, in its
//! order, empty ones left out.

use serde::Serialize;

use super::ClientLink;
use crate::locks;
use crate::monitoring::format::rfc3339;

/// The header's JSON: `acc` and `rtt` always, the rest when the import shares them.
#[derive(Debug, Serialize)]
struct RequestInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    acc: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ver: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_type: Option<&'static str>,
}

impl ClientLink {
    /// This client's `Nats-Request-Info` on server `server`: its account and round trip,
    /// or with `share` its whole client info.
    pub fn request_info(&self, server: &str, share: bool) -> String {
        let info = locks::read(&self.info);
        let rtt = self
            .rtt()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut out = RequestInfo {
            start: None,
            host: None,
            id: None,
            acc: &info.account,
            user: None,
            name: None,
            lang: None,
            ver: None,
            rtt,
            server: None,
            kind: None,
            client_type: None,
        };
        if share {
            out.start = Some(rfc3339(self.started));
            out.host = Some(self.addr.ip().to_string());
            out.id = Some(self.cid);
            out.user = info.user.as_deref().and_then(non_empty);
            out.name = non_empty(&info.name);
            out.lang = non_empty(&info.lang);
            out.ver = non_empty(&info.version);
            out.server = Some(server);
            out.kind = Some("Client");
            out.client_type = Some(match (&info.mqtt_client, self.websocket) {
                (Some(_), _) => "mqtt",
                (None, true) => "websocket",
                (None, false) => "nats",
            });
        }
        serde_json::to_string(&out).unwrap_or_default()
    }
}

/// `s`, unless it is empty.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}
