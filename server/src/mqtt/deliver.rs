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

use rill_protocol::headers::find;

use super::outlet::{Outlet, Sent, publish_packet};
use super::packet::QoS;
use super::props;
use super::topic::{is_reserved, subject_to_topic};
use crate::router::{Delivery, Msg, Subscriber, Subscription};

/// The header carrying the QoS an MQTT client published a message with.
pub(crate) const PUB_HEADER: &str = "Nmqtt-Pub";

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
        if self.comes_by_jetstream(msg) {
            return Delivery::Dropped;
        }
        let topic = subject_to_topic(msg.subject_str());
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
