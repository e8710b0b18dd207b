//! MQTT 5 properties ↔ NATS headers and reply subjects.
//!
//! | MQTT 5 | NATS |
//! |---|---|
//! | user property `k: v` | header `k: v` (names a header cannot carry are dropped) |
//! | content type | header `Nmqtt-Content-Type` |
//! | payload format indicator | header `Nmqtt-Format` |
//! | message expiry interval | header `Nmqtt-Expires: <Unix ms>`; a stored copy is not delivered after it (QoS 1/2 and retained), and a delivery carries what is left of the interval |
//! | response topic | reply subject (converted like any topic) |
//! | correlation data | header `Nmqtt-Corr` (base64) |
//! | response topic and correlation data | reply subject `$MQTT.reply.<correlation, base64url>.<response subject>`: a NATS responder's reply to it reaches the response topic with the correlation data (see `store::ReplyRelay`) |
//!
//! Every message an MQTT client publishes also carries `Nmqtt-Pub: <qos>`, as from
//! nats-server. Headers named `Nmqtt-*` and `Nats-*` are not shown to MQTT 5 clients
//! as user properties.

use base64::Engine;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use rill_protocol::headers::{HeaderMap, find};

use super::outlet::Outlet;
use super::packet::{Version, v5};
use super::topic::subject_to_topic;
use crate::router::Msg;

/// The header carrying the QoS an MQTT client published a message with.
pub(crate) const PUB_HEADER: &str = "Nmqtt-Pub";

/// Header carrying MQTT 5 correlation data (base64).
pub(crate) const CORR_HEADER: &str = "Nmqtt-Corr";
const CONTENT_TYPE: &str = "Nmqtt-Content-Type";
/// Header carrying when an MQTT 5 message expires (Unix milliseconds).
const EXPIRES: &str = "Nmqtt-Expires";
/// Reply subject prefix carrying correlation data to a response topic.
pub(crate) const REPLY_PREFIX: &str = "$MQTT.reply.";
/// Longest correlation data carried in a reply subject (longer: header only).
const CORR_IN_SUBJECT_MAX: usize = 192;
const FORMAT: &str = "Nmqtt-Format";

/// True for a header name NATS can carry (no `:`, whitespace or control characters).
fn header_name_ok(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// True for a header value NATS can carry on one line.
fn header_value_ok(value: &str) -> bool {
    !value.contains(['\r', '\n'])
}

/// The header block of a message an MQTT client published at `qos`.
pub(crate) fn to_nats(qos: u8, props: Option<&v5::PublishProperties>) -> Bytes {
    let mut h = HeaderMap::new();
    h.append(PUB_HEADER, qos.to_string());
    if let Some(p) = props {
        for (k, v) in &p.user_properties {
            if header_name_ok(k) && header_value_ok(v) {
                h.append(k.as_str(), v.as_str());
            }
        }
        if let Some(ct) = p.content_type.as_deref().filter(|c| header_value_ok(c)) {
            h.append(CONTENT_TYPE, ct);
        }
        if let Some(f) = p.payload_format_indicator {
            h.append(FORMAT, f.to_string());
        }
        if let Some(c) = &p.correlation_data {
            h.append(CORR_HEADER, STANDARD.encode(c));
        }
        if let Some(secs) = p.message_expiry_interval {
            let at = now_ms().saturating_add(u64::from(secs) * 1000);
            h.append(EXPIRES, at.to_string());
        }
    }
    h.to_bytes()
}

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds left before `headers`' message expires: `None` when it never does,
/// `Some(0)` once it has.
pub(crate) fn expiry_left(headers: Option<&[u8]>) -> Option<u64> {
    let at = find(headers?, EXPIRES)?;
    let at: u64 = std::str::from_utf8(at).ok()?.parse().ok()?;
    Some(at.saturating_sub(now_ms()))
}

/// The reply subject of an MQTT publish with `response` subject: with correlation
/// data, one that carries it through a NATS responder (see [`REPLY_PREFIX`]).
pub(crate) fn reply_subject(response: String, props: &v5::PublishProperties) -> String {
    match &props.correlation_data {
        Some(c) if !c.is_empty() && c.len() <= CORR_IN_SUBJECT_MAX => {
            format!("{REPLY_PREFIX}{}.{response}", URL_SAFE_NO_PAD.encode(c))
        }
        _ => response,
    }
}

/// A reply subject made by [`reply_subject`], split into the correlation data and the
/// response subject.
pub(crate) fn split_reply(subject: &str) -> Option<(Bytes, &str)> {
    let (corr, response) = subject.strip_prefix(REPLY_PREFIX)?.split_once('.')?;
    let corr = URL_SAFE_NO_PAD.decode(corr).ok()?;
    Some((Bytes::from(corr), response))
}

/// `headers` with `Nmqtt-Corr` set to `corr` (the block of a relayed reply).
pub(crate) fn with_correlation(headers: Option<&[u8]>, corr: &[u8]) -> Bytes {
    let mut h = headers
        .and_then(|b| HeaderMap::parse(b).ok())
        .unwrap_or_default();
    h.insert(CORR_HEADER, STANDARD.encode(corr));
    h.to_bytes()
}

/// The MQTT 5 properties a delivery of `msg` carries (none for 3.1.1, or when there is
/// nothing to carry).
pub(crate) fn to_mqtt(
    outlet: &Outlet,
    msg: &Msg<'_>,
    sub_id: Option<usize>,
) -> Option<v5::PublishProperties> {
    if outlet.version != Version::V5 {
        return None;
    }
    let mut p = v5::PublishProperties::default();
    if let Some(block) = msg.headers
        && let Ok(h) = HeaderMap::parse(block)
    {
        for (k, v) in h.iter() {
            match k {
                CORR_HEADER => p.correlation_data = STANDARD.decode(v).ok().map(Bytes::from),
                CONTENT_TYPE => p.content_type = Some(v.to_string()),
                EXPIRES => {
                    let left = v.parse::<u64>().ok().map(|at| at.saturating_sub(now_ms()));
                    let secs = left.map(|ms| ms.div_ceil(1000).max(1));
                    p.message_expiry_interval = secs.map(|s| u32::try_from(s).unwrap_or(u32::MAX));
                }
                FORMAT => p.payload_format_indicator = v.parse().ok(),
                k if is_internal(k) => {}
                k => p.user_properties.push((k.to_string(), v.to_string())),
            }
        }
    }
    if let Some(reply) = msg.reply {
        match split_reply(reply) {
            Some((corr, response)) => {
                p.response_topic = Some(subject_to_topic(response));
                p.correlation_data = Some(corr);
            }
            None => p.response_topic = Some(subject_to_topic(reply)),
        }
    }
    p.subscription_identifiers.extend(sub_id);
    let empty = p.user_properties.is_empty()
        && p.correlation_data.is_none()
        && p.content_type.is_none()
        && p.payload_format_indicator.is_none()
        && p.message_expiry_interval.is_none()
        && p.response_topic.is_none()
        && p.subscription_identifiers.is_empty();
    (!empty).then_some(p)
}

/// Headers rill or nats-server set for their own use.
fn is_internal(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("nmqtt-") || lower.starts_with("nats-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_become_headers_and_invalid_names_are_dropped() {
        let props = v5::PublishProperties {
            user_properties: vec![
                ("unit".into(), "celsius".into()),
                ("bad name".into(), "x".into()),
                ("multi".into(), "a\r\nb".into()),
            ],
            correlation_data: Some(Bytes::from_static(b"\x01\x02")),
            ..Default::default()
        };
        let block = to_nats(1, Some(&props));
        let h = HeaderMap::parse(&block).expect("valid block");
        assert_eq!(h.get(PUB_HEADER), Some("1"));
        assert_eq!(h.get("unit"), Some("celsius"));
        assert_eq!(h.get("bad name"), None);
        assert_eq!(h.get("multi"), None);
        assert_eq!(h.get(CORR_HEADER), Some("AQI="));
    }
}
