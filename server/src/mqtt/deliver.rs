//! NATS → MQTT: the router subscriptions of an MQTT subscription ([`MqttSub`]), which
//! turn routed messages into PUBLISH packets on the device's connection.
//!
//! Every MQTT subscription holds a plain NATS subscription on its converted filter
//! (two for a filter ending in `/#`). Through it arrive QoS 0 MQTT publishes and every
//! NATS publish; they go out at QoS 0. A message an MQTT client published at QoS 1 is
//! also stored in `$MQTT_msgs` and reaches QoS 1 subscriptions through their JetStream
//! consumer, so the plain path skips it for them (the `Nmqtt-Pub` header tells the QoS
//! it was published with), as nats-server does.

use std::sync::Arc;

use bytes::Bytes;
use rill_protocol::headers::find;

use super::outlet::{Outlet, Sent, publish_packet};
use super::packet::QoS;
use super::props::{self, PUB_HEADER};
use super::topic::{is_reserved, subject_to_topic};
use crate::account::Account;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

/// One MQTT subscription's router side.
#[derive(Debug)]
pub(crate) struct MqttSub {
    /// The connection it delivers to.
    pub(crate) outlet: Arc<Outlet>,
    /// The MQTT filter as the client sent it.
    pub(crate) filter: String,
    /// The QoS granted.
    pub(crate) qos: QoS,
    /// MQTT 5 subscription identifier, echoed in each PUBLISH.
    pub(crate) sub_id: Option<usize>,
}

impl MqttSub {
    /// True when this filter must not see `topic`: a filter starting with a wildcard
    /// does not match topics starting with `$` (MQTT 4.7.2).
    fn hides(&self, topic: &str) -> bool {
        is_reserved(topic) && !is_reserved(&self.filter)
    }

    /// True when the message comes to this subscription through JetStream instead.
    fn comes_by_jetstream(&self, msg: &Msg<'_>) -> bool {
        self.qos != QoS::AtMostOnce
            && msg
                .headers
                .and_then(|h| find(h, PUB_HEADER))
                .is_some_and(|q| q != b"0")
    }
}

impl Subscriber for MqttSub {
    fn owner_id(&self) -> u64 {
        self.outlet.link.cid
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        if self.comes_by_jetstream(msg) || props::expiry_left(msg.headers) == Some(0) {
            return Delivery::Dropped;
        }
        let topic = subject_to_topic(msg.subject);
        if self.hides(&topic) {
            return Delivery::Dropped;
        }
        let mut p = publish_packet(&topic, QoS::AtMostOnce, false, msg.payload_bytes());
        p.properties = props::to_mqtt(&self.outlet, msg, self.sub_id);
        match self.outlet.publish(p) {
            Sent::Queued => Delivery::Queued,
            Sent::Discarded | Sent::Refused => Delivery::Dropped,
        }
    }

    fn is_alive(&self) -> bool {
        !self.outlet.link.outbound.is_closed()
    }
}

/// The delivery side of a QoS 1 or 2 subscription: its JetStream consumer pushes the
/// stored messages to `$MQTT.sub.<id>`, and each goes out at the QoS it was published
/// with, at most the granted one, with a packet id tied to the message's `$JS.ACK…`
/// subject until the client's PUBACK (QoS 1) or PUBREC (QoS 2) settles it. A redelivery
/// of a message still in flight reuses its packet id with DUP set.
#[derive(Debug)]
pub(crate) struct JsSub {
    /// The connection it delivers to.
    pub(crate) outlet: Arc<Outlet>,
    /// The MQTT filter as the client sent it.
    pub(crate) filter: String,
    /// MQTT 5 subscription identifier.
    pub(crate) sub_id: Option<usize>,
    /// The QoS granted (1 or 2).
    pub(crate) qos: QoS,
    /// Where acknowledgements are published.
    pub(crate) account: Arc<Account>,
}

impl Subscriber for JsSub {
    fn owner_id(&self) -> u64 {
        self.outlet.link.cid
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let (Some(subject), Some(ack)) = (stored_subject(msg.subject), msg.reply_bytes()) else {
            return Delivery::Dropped;
        };
        let topic = subject_to_topic(subject);
        let expired = props::expiry_left(msg.headers) == Some(0);
        if expired || (is_reserved(&topic) && !is_reserved(&self.filter)) {
            ack_now(&self.account, &ack);
            return Delivery::Queued;
        }
        let Some((pkid, dup)) = self.outlet.track(ack_key(&ack), ack.clone()) else {
            // The client's receive maximum is used up: JetStream sends it again later.
            return Delivery::Dropped;
        };
        let published = msg.headers.and_then(|h| find(h, PUB_HEADER));
        let qos = match published {
            Some(b"2") if self.qos == QoS::ExactlyOnce => QoS::ExactlyOnce,
            _ => QoS::AtLeastOnce,
        };
        let mut p = publish_packet(&topic, qos, false, msg.payload_bytes());
        p.pkid = pkid;
        // Sent before on this connection, or by JetStream before (a redelivery, also one after a
        // restart of the server or of the session), as nats-server marks it.
        p.dup = dup || redelivered(&ack);
        p.properties = props::to_mqtt(&self.outlet, msg, self.sub_id);
        match self.outlet.publish(p) {
            Sent::Queued => Delivery::Queued,
            Sent::Discarded => {
                // Too large for the client: settled as if delivered (MQTT 5 says drop it).
                self.outlet.acked(pkid);
                ack_now(&self.account, &ack);
                Delivery::Queued
            }
            Sent::Refused => Delivery::Dropped,
        }
    }

    fn is_alive(&self) -> bool {
        !self.outlet.link.outbound.is_closed()
    }
}

/// Acknowledges a JetStream delivery: an empty message to its `$JS.ACK…` subject.
pub(crate) fn ack_now(account: &Account, ack: &Bytes) {
    if ack.is_empty() {
        return;
    }
    let Some(ack) = crate::router::text(ack) else {
        return;
    };
    let empty = Bytes::new();
    account
        .router
        .publish(0, true, &Msg::new(&ack, None, None, &empty));
}

/// A stored message's identity across redeliveries, from its ack subject
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`: consumer and stream sequence.
fn ack_key(ack: &[u8]) -> String {
    let text = String::from_utf8_lossy(ack);
    let t: Vec<&str> = text.split('.').collect();
    match t.as_slice() {
        ["$JS", "ACK", _stream, consumer, _delivered, sseq, ..] => format!("{consumer}.{sseq}"),
        _ => text.into_owned(),
    }
}

/// True when the JetStream ack subject says this is not the first delivery
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.…`).
fn redelivered(ack: &[u8]) -> bool {
    let mut tokens = ack.split(|&b| b == b'.');
    let delivered = match (tokens.next(), tokens.next()) {
        (Some(b"$JS"), Some(b"ACK")) => tokens.nth(2),
        _ => None,
    };
    delivered
        .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > 1)
}

/// The subject a stored QoS 1 message was published on, without the `$MQTT.msgs.` prefix.
fn stored_subject(subject: &str) -> Option<&str> {
    subject.strip_prefix(super::store::MSGS_PREFIX)
}
