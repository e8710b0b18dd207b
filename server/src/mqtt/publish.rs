//! MQTT → NATS: a PUBLISH (or a will) becomes a message on the converted subject, with
//! `Nmqtt-Pub: <qos>` and the MQTT 5 properties as headers (see `props`) and the
//! response topic as its reply subject, routed through the account's router like any
//! NATS publish. A QoS 1 or 2 message is also stored in `$MQTT_msgs` for the QoS 1 and 2
//! subscriptions' consumers; a retained one replaces its topic's retained message.
//!
//! QoS 1: the PUBACK goes out once the message is stored. QoS 2, as nats-server does it:
//! the message is held in `$MQTT_qos2in` and answered PUBREC once held (a PUBLISH sent
//! again with the same packet id before PUBREL is answered PUBREC and not held twice);
//! the PUBREL delivers it, and PUBCOMP follows once it is in `$MQTT_msgs`. A PUBREL for
//! a packet id held by an earlier connection of a persistent session finds it in the
//! stream; one for an unknown id is answered PUBCOMP.

use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tracing::error;

use super::conn::{Ended, MqttConn, TOPIC_ALIAS_MAX};
use super::jsa::AckKind;
use super::packet::{QoS, v5};
use super::props;
use super::store::{Held2, MqttStore};
use super::topic::topic_to_subject;
use crate::client::CloseReason;
use crate::router::{ByteString, Msg};
use crate::stats::Stats;

/// A message an MQTT client published, converted for NATS.
#[derive(Debug)]
struct Inbound {
    subject: String,
    topic: String,
    reply: Option<ByteString>,
    headers: Bytes,
    payload: Bytes,
    qos: QoS,
    retain: bool,
}

impl Inbound {
    fn of(subject: String, p: &v5::Publish) -> Self {
        let reply = p.properties.as_ref().and_then(|x| {
            let response = topic_to_subject(x.response_topic.as_deref()?).ok()?;
            Some(ByteString::from(props::reply_subject(response, x)))
        });
        Self {
            subject,
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            reply,
            headers: props::to_nats(p.qos as u8, p.properties.as_ref()),
            payload: p.payload.clone(),
            qos: p.qos,
            retain: p.retain,
        }
    }

    fn held(&self, pkid: u16) -> Held2 {
        Held2 {
            pkid,
            subject: self.subject.clone(),
            topic: self.topic.clone(),
            reply: self.reply.as_ref().map(ByteString::to_string),
            headers: STANDARD.encode(&self.headers),
            payload: STANDARD.encode(&self.payload),
            retain: self.retain,
        }
    }

    fn released(h: Held2) -> Self {
        let decode = |s: &str| Bytes::from(STANDARD.decode(s).unwrap_or_default());
        Self {
            headers: decode(&h.headers),
            payload: decode(&h.payload),
            reply: h.reply.map(ByteString::from),
            subject: h.subject,
            topic: h.topic,
            qos: QoS::ExactlyOnce,
            retain: h.retain,
        }
    }
}

impl MqttConn {
    /// Handles a PUBLISH from the client.
    pub(super) fn on_publish(&mut self, mut p: v5::Publish) -> Result<(), Ended> {
        self.resolve_alias(&mut p)?;
        let subject = match std::str::from_utf8(&p.topic).map(topic_to_subject) {
            Ok(Ok(s)) => s,
            _ => return Err(self.violation(v5::DisconnectReasonCode::TopicNameInvalid)),
        };
        if p.qos == QoS::ExactlyOnce && self.service.config().reject_qos2_publish {
            return Err(self.violation(v5::DisconnectReasonCode::QoSNotSupported));
        }
        if p.qos == QoS::ExactlyOnce && self.qos2.contains_key(&p.pkid) {
            // Sent again before PUBREL: acknowledged, not held twice.
            self.outlet
                .send(&v5::Packet::PubRec(v5::PubRec::new(p.pkid, None)));
            return Ok(());
        }
        let allowed = self.perms.as_ref().is_none_or(|x| x.can_publish(&subject));
        if !allowed {
            error!(
                "{} - \"{}/user:{}\" - Publish Violation - Subject \"{subject}\"",
                self.link.log_prefix(),
                self.account.name,
                self.link.user_name()
            );
            self.acknowledge(&p, false);
            return Ok(());
        }
        let m = Inbound::of(subject, &p);
        match (p.qos, &self.session) {
            (QoS::ExactlyOnce, Some(session)) => {
                let held = m.held(p.pkid);
                session
                    .store
                    .hold_qos2(&self.client_id, &held, &self.outlet);
                self.qos2.insert(p.pkid, held);
            }
            (QoS::AtLeastOnce, Some(_)) => self.route_and_store(&m, AckKind::Ack, p.pkid),
            _ => {
                self.route(&m);
                self.acknowledge(&p, true);
            }
        }
        Ok(())
    }

    /// PUBREL: delivers the held QoS 2 message (PUBCOMP once stored), or answers
    /// PUBCOMP at once for an id that holds nothing.
    pub(super) async fn on_pubrel(&mut self, pkid: u16) {
        let held = match self.qos2.remove(&pkid) {
            Some(h) => Some(h),
            None => match &self.session {
                Some(s) => s.store.held_qos2(&self.client_id, pkid).await,
                None => None,
            },
        };
        let Some(held) = held else {
            self.outlet
                .send(&v5::Packet::PubComp(v5::PubComp::new(pkid, None)));
            return;
        };
        self.route_and_store(&Inbound::released(held), AckKind::Comp, pkid);
        if let Some(session) = &self.session {
            session.store.release_qos2(&self.client_id, pkid);
        }
    }

    /// Routes `m` and stores it in `$MQTT_msgs`; `kind` for `pkid` goes out once stored.
    fn route_and_store(&self, m: &Inbound, kind: AckKind, pkid: u16) {
        self.route(m);
        if let Some(session) = &self.session {
            let stored = MqttStore::msgs_subject(&m.subject);
            let ack = (&self.outlet, kind, pkid);
            (session.store.jsa).store_then_ack(&stored, Some(&m.headers), &m.payload, ack);
        }
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

    /// Publishes `m` to NATS subscribers (MQTT ones included) and keeps it when it is
    /// retained.
    fn route(&self, m: &Inbound) {
        // The account's `mappings {}` apply to MQTT publishes too (as nats-server).
        let subject = (self.account.router.mappings().map(&m.subject))
            .unwrap_or_else(|| ByteString::from(m.subject.as_str()));
        let msg = Msg::new(&subject, m.reply.as_ref(), Some(&m.headers), &m.payload);
        let fanout = self.account.router.publish(self.link.cid, true, &msg);
        let size = msg.size() as u64;
        let stats = &self.service.state.stats;
        self.link.in_msgs.fetch_add(1, Ordering::Relaxed);
        self.link.in_bytes.fetch_add(size, Ordering::Relaxed);
        Stats::add(&stats.in_msgs, 1);
        Stats::add(&stats.in_bytes, size);
        Stats::add(&stats.out_msgs, fanout.delivered as u64);
        Stats::add(&stats.out_bytes, fanout.delivered as u64 * size);
        if m.retain
            && let Some(session) = &self.session
        {
            let store = &session.store;
            store.retain(msg.subject, &m.topic, m.qos as u8, &m.headers, &m.payload);
        }
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
        let m = Inbound::of(subject, &p);
        self.route(&m);
        if p.qos != QoS::AtMostOnce
            && let Some(session) = &self.session
        {
            let stored = MqttStore::msgs_subject(&m.subject);
            let jsa = &session.store.jsa;
            jsa.publish(&stored, None, Some(&m.headers), &m.payload);
        }
    }
}
