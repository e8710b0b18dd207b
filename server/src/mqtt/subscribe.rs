//! SUBSCRIBE and UNSUBSCRIBE: each MQTT filter becomes router subscriptions on its
//! converted subjects (checked against the user's subscribe permissions), owned by an
//! [`MqttSub`]; an MQTT 5 shared subscription `$share/<group>/<filter>` becomes a queue
//! group named `<group>`, so MQTT devices and NATS queue subscribers can share work.

use std::sync::Arc;

use bytes::Bytes;
use tracing::error;

use super::conn::{Held, MqttConn};
use super::deliver::MqttSub;
use super::packet::{QoS, Version, v5};
use super::topic::filter_to_subjects;
use crate::router::{Subscriber, Subscription};

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

impl MqttConn {
    pub(super) fn on_subscribe(&mut self, s: v5::Subscribe) {
        let sub_id = s.properties.as_ref().and_then(|p| p.id);
        let codes = s
            .filters
            .iter()
            .map(|f| self.subscribe_one(f, sub_id))
            .collect();
        let ack = v5::SubAck {
            pkid: s.pkid,
            return_codes: codes,
            properties: None,
        };
        self.outlet.send(&v5::Packet::SubAck(ack));
    }

    fn subscribe_one(&mut self, f: &v5::Filter, sub_id: Option<usize>) -> v5::SubscribeReasonCode {
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
        let qos = match f.qos {
            QoS::AtMostOnce => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        };
        self.unsubscribe_one(&f.path);
        let owner: Arc<dyn Subscriber> = Arc::new(MqttSub {
            outlet: Arc::clone(&self.outlet),
            filter: filter.to_string(),
            qos,
            sub_id,
        });
        let queue = group.map(|g| Bytes::copy_from_slice(g.as_bytes()));
        let subs: Vec<Arc<Subscription>> = subjects
            .iter()
            .map(|subject| {
                let sid = Bytes::from(format!("{} {subject}", f.path));
                let sub = Subscription::new(
                    sid.clone(),
                    Bytes::copy_from_slice(subject.as_bytes()),
                    queue.clone(),
                    Arc::clone(&owner),
                );
                self.account.router.subscribe(&sub);
                if let Ok(mut link_subs) = self.link.subs.lock() {
                    link_subs.insert(sid, Arc::clone(&sub));
                }
                sub
            })
            .collect();
        self.subs.insert(f.path.clone(), Held { subs });
        R::Success(qos)
    }

    pub(super) fn on_unsubscribe(&mut self, u: v5::Unsubscribe) {
        let reasons = u
            .filters
            .iter()
            .map(|f| match self.unsubscribe_one(f) {
                true => v5::UnsubAckReason::Success,
                false => v5::UnsubAckReason::NoSubscriptionExisted,
            })
            .collect();
        let ack = v5::UnsubAck {
            pkid: u.pkid,
            reasons,
            properties: None,
        };
        self.outlet.send(&v5::Packet::UnsubAck(ack));
    }

    /// Removes the subscription on `filter`; false when there was none.
    fn unsubscribe_one(&mut self, filter: &str) -> bool {
        let Some(held) = self.subs.remove(filter) else {
            return false;
        };
        for sub in &held.subs {
            self.account.router.unsubscribe(sub);
            if let Ok(mut link_subs) = self.link.subs.lock() {
                link_subs.remove(&sub.sid);
            }
        }
        true
    }
}
