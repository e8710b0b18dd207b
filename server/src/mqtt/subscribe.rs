//! SUBSCRIBE and UNSUBSCRIBE: each MQTT filter becomes router subscriptions on its
//! converted subjects (checked against the user's subscribe permissions), owned by an
//! [`MqttSub`]; an MQTT 5 shared subscription `$share/<group>/<filter>` becomes a queue
//! group named `<group>`, so MQTT devices and NATS queue subscribers can share work.
//!
//! A QoS 1 or 2 subscription also gets a durable JetStream consumer on `$MQTT_msgs` and a
//! [`JsSub`] on its deliver subject, recorded in the session so that it survives the
//! connection. Matching retained messages follow the SUBACK, with the retain flag set.

use std::sync::Arc;

use bytes::Bytes;
use tracing::{error, warn};

use super::conn::{Held, MqttConn};
use super::deliver::{JsSub, MqttSub};
use super::outlet::publish_packet;
use super::packet::{QoS, Version, v5};
use super::props;
use super::store::StoredSub;
use super::topic::{filter_to_subjects, is_reserved};
use crate::locks;
use crate::router::{ByteString, Msg, Subscriber, Subscription};

/// A filter split into its shared-subscription group (MQTT 5) and the filter proper.
fn shared(filter: &str, version: Version) -> Result<(Option<&str>, &str), ()> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok((None, filter));
    };
    if version != Version::V5 {
        return Ok((None, filter));
    }
    match rest.split_once('/') {
        Some((group, f)) if !group.is_empty() && !group.contains(['+', '#']) && !f.is_empty() => {
            Ok((Some(group), f))
        }
        _ => Err(()),
    }
}

fn qos_of(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

impl MqttConn {
    pub(super) async fn on_subscribe(&mut self, s: v5::Subscribe) {
        let sub_id = s.properties.as_ref().and_then(|p| p.id);
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut granted = Vec::new();
        for f in &s.filters {
            let code = self.subscribe_one(f, sub_id).await;
            if matches!(code, v5::SubscribeReasonCode::Success(_)) {
                granted.push(f.clone());
            }
            codes.push(code);
        }
        let ack = v5::SubAck {
            pkid: s.pkid,
            return_codes: codes,
            properties: None,
        };
        self.outlet.send(&v5::Packet::SubAck(ack));
        self.save_session().await;
        for f in &granted {
            if f.retain_forward_rule != v5::RetainForwardRule::Never {
                self.send_retained(&f.path);
            }
        }
    }

    async fn subscribe_one(
        &mut self,
        f: &v5::Filter,
        sub_id: Option<usize>,
    ) -> v5::SubscribeReasonCode {
        use v5::SubscribeReasonCode as R;
        let Ok((group, filter)) = shared(&f.path, self.outlet.version) else {
            return R::TopicFilterInvalid;
        };
        let Ok(subjects) = filter_to_subjects(filter) else {
            return R::TopicFilterInvalid;
        };
        if let Some(perms) = &self.perms
            && let Some(denied) = subjects.iter().find(|s| !perms.can_subscribe(s, group))
        {
            error!(
                "{} - \"{}/user:{}\" - Subscription Violation - Subject \"{denied}\"",
                self.link.log_prefix(),
                self.account.name,
                self.link.user_name()
            );
            return R::NotAuthorized;
        }
        // A shared subscription is a queue group of plain subscriptions: granted QoS 0,
        // since one consumer per member would hand every member every QoS 1 message.
        let qos = match group {
            Some(_) => QoS::AtMostOnce,
            None if f.qos == QoS::ExactlyOnce && self.service.config().downgrade_qos2_subscribe => {
                QoS::AtLeastOnce
            }
            None => f.qos,
        };
        let old = self.detach(&f.path);
        if qos == QoS::AtMostOnce
            && let (Some(old), Some(session)) = (&old, &self.session)
        {
            session.store.delete_consumer(&old.consumer).await;
        }
        let mut stored = StoredSub {
            qos: qos as u8,
            sub_id,
            ..StoredSub::default()
        };
        if qos != QoS::AtMostOnce {
            match self.qos1_consumer(old, &subjects).await {
                Some((consumer, deliver)) => {
                    (stored.consumer, stored.deliver) = (consumer, deliver)
                }
                None => return R::Unspecified,
            }
        }
        self.attach(&f.path, group, &subjects, &stored);
        R::Success(qos)
    }

    /// The consumer of a QoS 1 subscription: the stored one when the filter had one
    /// (a repeated SUBSCRIBE keeps what is pending), a new one otherwise.
    async fn qos1_consumer(
        &mut self,
        old: Option<StoredSub>,
        subjects: &[String],
    ) -> Option<(String, String)> {
        if let Some(old) = old.filter(|o| !o.consumer.is_empty()) {
            return Some((old.consumer, old.deliver));
        }
        let receive_max = self.outlet.receive_max();
        let session = self.session.as_mut()?;
        let (name, deliver) = session.next_consumer();
        let max = self
            .service
            .config()
            .max_ack_pending()
            .min(receive_max)
            .max(1);
        match session
            .store
            .create_consumer(&name, &deliver, subjects, max)
            .await
        {
            Ok(()) => Some((name, deliver)),
            Err(e) => {
                warn!("{} - MQTT QoS 1 consumer: {e}", self.link.log_prefix());
                None
            }
        }
    }

    /// Puts the subscription on `filter` in the router (and the session record).
    fn attach(&mut self, filter: &str, group: Option<&str>, subjects: &[String], s: &StoredSub) {
        let bare = shared(filter, self.outlet.version).map_or(filter, |(_, f)| f);
        let owner: Arc<dyn Subscriber> = Arc::new(MqttSub {
            outlet: Arc::clone(&self.outlet),
            filter: bare.to_string(),
            qos: qos_of(s.qos),
            sub_id: s.sub_id,
        });
        let queue = group.map(|g| Bytes::copy_from_slice(g.as_bytes()));
        let mut subs: Vec<Arc<Subscription>> = subjects
            .iter()
            .map(|subject| {
                let sid = Bytes::from(format!("{filter} {subject}"));
                let sub = Subscription::new(
                    sid.clone(),
                    Bytes::copy_from_slice(subject.as_bytes()),
                    queue.clone(),
                    Arc::clone(&owner),
                );
                self.account.router.subscribe(&sub);
                locks::lock(&self.link.subs).insert(sid, Arc::clone(&sub));
                sub
            })
            .collect();
        if !s.deliver.is_empty() {
            let js: Arc<dyn Subscriber> = Arc::new(JsSub {
                outlet: Arc::clone(&self.outlet),
                filter: bare.to_string(),
                sub_id: s.sub_id,
                qos: qos_of(s.qos),
                account: Arc::clone(&self.account),
            });
            let sub = Subscription::new(
                Bytes::from(format!("{filter} js")),
                Bytes::copy_from_slice(s.deliver.as_bytes()),
                None,
                js,
            );
            self.account.router.subscribe(&sub);
            subs.push(sub);
        }
        let qos = qos_of(s.qos);
        self.subs.insert(filter.to_string(), Held { qos, subs });
        if let Some(session) = &mut self.session {
            session.record.subs.insert(filter.to_string(), s.clone());
        }
    }

    /// Puts a resumed session's subscriptions back in the router (their consumers kept
    /// what was published meanwhile and deliver it now).
    pub(super) async fn restore_subscriptions(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        let stored: Vec<(String, StoredSub)> = session
            .record
            .subs
            .iter()
            .map(|(f, s)| (f.clone(), s.clone()))
            .collect();
        for (filter, s) in stored {
            let Ok((group, bare)) = shared(&filter, self.outlet.version) else {
                continue;
            };
            if let Ok(subjects) = filter_to_subjects(bare) {
                let group = group.map(str::to_string);
                self.attach(&filter, group.as_deref(), &subjects, &s);
            }
        }
    }

    /// Sends the retained messages matching `filter` (retain flag set), at the QoS they
    /// were published with, at most the granted one.
    fn send_retained(&self, filter: &str) {
        let Ok((None, bare)) = shared(filter, self.outlet.version) else {
            return;
        };
        let (Some(session), Some(held), Ok(subjects)) = (
            &self.session,
            self.subs.get(filter),
            filter_to_subjects(bare),
        ) else {
            return;
        };
        for r in session.store.retained_for(&subjects, is_reserved(bare)) {
            if props::expiry_left(r.headers.as_deref()) == Some(0) {
                continue;
            }
            let qos = qos_of(r.qos.min(held.qos as u8));
            let mut p = publish_packet(&r.topic, qos, true, r.payload.clone());
            let subject = ByteString::from(r.topic.as_str());
            let msg = Msg::new(&subject, None, r.headers.as_ref(), &r.payload);
            p.properties = props::to_mqtt(&self.outlet, &msg, None);
            if qos != QoS::AtMostOnce {
                let key = format!("retained {}", r.topic);
                let Some((pkid, _)) = self.outlet.track(key, Bytes::new()) else {
                    continue;
                };
                p.pkid = pkid;
            }
            self.outlet.publish(p);
        }
    }

    pub(super) async fn on_unsubscribe(&mut self, u: v5::Unsubscribe) {
        let mut reasons = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            reasons.push(match self.unsubscribe_one(f).await {
                true => v5::UnsubAckReason::Success,
                false => v5::UnsubAckReason::NoSubscriptionExisted,
            });
        }
        let ack = v5::UnsubAck {
            pkid: u.pkid,
            reasons,
            properties: None,
        };
        self.outlet.send(&v5::Packet::UnsubAck(ack));
        self.save_session().await;
    }

    /// Removes the subscription on `filter` (and its consumer); false when there was none.
    async fn unsubscribe_one(&mut self, filter: &str) -> bool {
        let had = self.subs.contains_key(filter);
        if let (Some(s), Some(session)) = (self.detach(filter), &self.session) {
            session.store.delete_consumer(&s.consumer).await;
        }
        had
    }

    /// Takes the subscription on `filter` out of the router and the session record;
    /// returns what the record held (its consumer stays).
    fn detach(&mut self, filter: &str) -> Option<StoredSub> {
        if let Some(held) = self.subs.remove(filter) {
            for sub in &held.subs {
                self.account.router.unsubscribe(sub);
                locks::lock(&self.link.subs).remove(&sub.sid);
            }
        }
        self.session.as_mut()?.record.subs.remove(filter)
    }

    /// Saves the session record after its subscriptions changed.
    async fn save_session(&self) {
        if let Some(session) = &self.session {
            session.save().await;
        }
    }
}
