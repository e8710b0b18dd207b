//! MQTT → NATS: a PUBLISH (or a will) becomes a message on the converted subject, with
//! `Nmqtt-Pub: <qos>` and the MQTT 5 properties as headers (see `props`) and the
//! response topic as its reply subject, routed through the account's router like any
//! NATS publish. A QoS 1 message is also stored in `$MQTT_msgs` for the QoS 1
//! subscriptions' consumers, and its PUBACK goes out once it is stored; a retained one
//! replaces its topic's retained message.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tracing::error;

use super::conn::{Ended, MqttConn, TOPIC_ALIAS_MAX};
use super::packet::{QoS, v5};
use super::props;
use super::topic::topic_to_subject;
use crate::client::CloseReason;
use crate::router::Msg;
use crate::stats::Stats;

impl MqttConn {
    /// Handles a PUBLISH from the client.
    pub(super) fn on_publish(&mut self, mut p: v5::Publish) -> Result<(), Ended> {
        self.resolve_alias(&mut p)?;
        let subject = match std::str::from_utf8(&p.topic).map(topic_to_subject) {
            Ok(Ok(s)) => s,
            _ => return Err(self.violation(v5::DisconnectReasonCode::TopicNameInvalid)),
        };
        if p.qos == QoS::ExactlyOnce {
            if self.service.config().reject_qos2_publish {
                return Err(self.violation(v5::DisconnectReasonCode::QoSNotSupported));
            }
            if !self.qos2.insert(p.pkid) {
                // Sent again before PUBREL: acknowledged, not delivered twice.
                self.outlet
                    .send(&v5::Packet::PubRec(v5::PubRec::new(p.pkid, None)));
                return Ok(());
            }
        }
        let allowed = self.perms.as_ref().is_none_or(|x| x.can_publish(&subject));
        if allowed {
            let headers = self.route(&subject, &p);
            if p.qos == QoS::AtLeastOnce
                && let Some(session) = &self.session
            {
                let stored = super::store::MqttStore::msgs_subject(&subject);
                let jsa = &session.store.jsa;
                jsa.store_then_puback(&stored, &headers, &p.payload, &self.outlet, p.pkid);
                return Ok(());
            }
        } else {
            error!(
                "{} - \"{}/user:{}\" - Publish Violation - Subject \"{subject}\"",
                self.link.log_prefix(),
                self.account.name,
                self.link.user_name()
            );
        }
        self.acknowledge(&p, allowed);
        Ok(())
    }

    /// PUBACK or PUBREC for a QoS 1 or 2 publish (MQTT 5: "not authorized" when refused).
    fn acknowledge(&self, p: &v5::Publish, allowed: bool) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                let mut ack = v5::PubAck::new(p.pkid, None);
                if !allowed {
                    ack.reason = v5::PubAckReason::NotAuthorized;
                }
                self.outlet.send(&v5::Packet::PubAck(ack));
            }
            QoS::ExactlyOnce => {
                let mut rec = v5::PubRec::new(p.pkid, None);
                if !allowed {
                    rec.reason = v5::PubRecReason::NotAuthorized;
                }
                self.outlet.send(&v5::Packet::PubRec(rec));
            }
        }
    }

    /// Replaces an MQTT 5 topic alias by its topic (and records a new one).
    fn resolve_alias(&mut self, p: &mut v5::Publish) -> Result<(), Ended> {
        let Some(alias) = p.properties.as_ref().and_then(|x| x.topic_alias) else {
            return Ok(());
        };
        if alias == 0 || alias > TOPIC_ALIAS_MAX {
            return Err(self.violation(v5::DisconnectReasonCode::TopicAliasInvalid));
        }
        if p.topic.is_empty() {
            match self.aliases.get(&alias) {
                Some(t) => p.topic = t.clone(),
                None => return Err(self.violation(v5::DisconnectReasonCode::ProtocolError)),
            }
        } else {
            self.aliases.insert(alias, p.topic.clone());
        }
        Ok(())
    }

    /// Sends DISCONNECT with `reason` (MQTT 5) and ends the connection.
    pub(super) fn violation(&self, reason: v5::DisconnectReasonCode) -> Ended {
        self.outlet.disconnect(reason);
        Ended::Lost(CloseReason::ProtocolViolation)
    }

    /// Publishes the message on `subject` to NATS subscribers (MQTT ones included) and
    /// keeps it when it is retained; returns its header block.
    fn route(&self, subject: &str, p: &v5::Publish) -> Bytes {
        let headers = props::to_nats(p.qos as u8, p.properties.as_ref());
        let reply = p
            .properties
            .as_ref()
            .and_then(|x| x.response_topic.as_deref())
            .and_then(|t| topic_to_subject(t).ok())
            .map(Bytes::from);
        // The account's `mappings {}` apply to MQTT publishes too (as nats-server).
        let subject = (self.account.router.mappings().map(subject.as_bytes()))
            .unwrap_or_else(|| Bytes::copy_from_slice(subject.as_bytes()));
        let msg = Msg::new(&subject, reply.as_ref(), Some(&headers), &p.payload);
        let fanout = self.account.router.publish(self.link.cid, true, &msg);
        let size = msg.size() as u64;
        let stats = &self.service.state.stats;
        self.link.in_msgs.fetch_add(1, Ordering::Relaxed);
        self.link.in_bytes.fetch_add(size, Ordering::Relaxed);
        Stats::add(&stats.in_msgs, 1);
        Stats::add(&stats.in_bytes, size);
        Stats::add(&stats.out_msgs, fanout.delivered as u64);
        Stats::add(&stats.out_bytes, fanout.delivered as u64 * size);
        if p.retain
            && let Some(session) = &self.session
        {
            let topic = String::from_utf8_lossy(&p.topic);
            let store = &session.store;
            store.retain(msg.subject_str(), &topic, p.qos as u8, &headers, &p.payload);
        }
        headers
    }

    /// Publishes the will of a connection that ended without DISCONNECT.
    pub(super) fn publish_will(&self, w: v5::LastWill) {
        let Ok(Ok(subject)) = std::str::from_utf8(&w.topic).map(topic_to_subject) else {
            return;
        };
        if self
            .perms
            .as_ref()
            .is_some_and(|x| !x.can_publish(&subject))
        {
            return;
        }
        let p = v5::Publish {
            dup: false,
            qos: w.qos,
            retain: w.retain,
            topic: w.topic,
            pkid: 0,
            payload: w.message,
            properties: None,
        };
        let headers = self.route(&subject, &p);
        if p.qos != QoS::AtMostOnce
            && let Some(session) = &self.session
        {
            let stored = super::store::MqttStore::msgs_subject(&subject);
            session
                .store
                .jsa
                .publish(&stored, None, Some(&headers), &p.payload);
        }
    }
}
