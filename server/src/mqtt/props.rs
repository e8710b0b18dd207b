//! MQTT 5 properties ↔ NATS headers and reply subjects.
//!
//! | MQTT 5 | NATS |
//! |---|---|
//! | user property `k: v` | header `k: v` (names a header cannot carry are dropped) |
//! | content type | header `Nmqtt-Content-Type` |
//! | payload format indicator | header `Nmqtt-Format` |
//! | message expiry interval | header `Nats-TTL` on the stored copy, and what is left of it on delivery |
//! | response topic | reply subject (converted like any topic) |
//! | correlation data | header `Nmqtt-Corr` (base64) |
//!
//! Every message an MQTT client publishes also carries `Nmqtt-Pub: <qos>`, as from
//! nats-server. Headers named `Nmqtt-*` and `Nats-*` are not shown to MQTT 5 clients
//! as user properties.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use rill_protocol::headers::HeaderMap;

use super::outlet::Outlet;
use super::packet::{Version, v5};
use super::topic::subject_to_topic;
use crate::router::Msg;

/// The header carrying the QoS an MQTT client published a message with.
pub(crate) const PUB_HEADER: &str = "Nmqtt-Pub";

/// Header carrying MQTT 5 correlation data (base64).
pub(crate) const CORR_HEADER: &str = "Nmqtt-Corr";
const CONTENT_TYPE: &str = "Nmqtt-Content-Type";
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
    }
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
                FORMAT => p.payload_format_indicator = v.parse().ok(),
                k if is_internal(k) => {}
                k => p.user_properties.push((k.to_string(), v.to_string())),
            }
        }
    }
    if let Some(reply) = msg.reply {
        p.response_topic = Some(subject_to_topic(&String::from_utf8_lossy(reply)));
    }
    p.subscription_identifiers.extend(sub_id);
    let empty = p.user_properties.is_empty()
        && p.correlation_data.is_none()
        && p.content_type.is_none()
        && p.payload_format_indicator.is_none()
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
