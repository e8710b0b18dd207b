//! Request/response between MQTT 5 and NATS: an MQTT 5 request with a response topic and
//! correlation data goes to NATS with the reply subject
//! `$MQTT.reply.<correlation data, base64url>.<response subject>` (see
//! `props::reply_subject`). A NATS responder answers that subject as any reply; the
//! account's [`ReplyRelay`] passes the answer on to the response subject with the
//! correlation data in `Nmqtt-Corr`, so the MQTT requester gets it back as MQTT 5
//! correlation data. Nothing is remembered per request.

use std::sync::Arc;

use bytes::Bytes;

use super::props::{REPLY_PREFIX, split_reply, with_correlation};
use crate::account::Account;
use crate::router::{ByteString, Delivery, Msg, Subscriber, Subscription};

/// The subscriber on `$MQTT.reply.>` of one account.
#[derive(Debug)]
struct ReplyRelay {
    account: Arc<Account>,
}

impl Subscriber for ReplyRelay {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let Some((corr, response)) = split_reply(msg.subject) else {
            return Delivery::Dropped;
        };
        let subject = ByteString::from(response);
        let headers = with_correlation(msg.headers, &corr);
        let reply = msg.reply_text();
        let payload = msg.payload_bytes();
        let relayed = Msg::new(&subject, reply.as_ref(), Some(&headers), &payload);
        self.account.router.publish(0, true, &relayed);
        Delivery::Queued
    }
}

/// The relay's subscription in one account; unsubscribed when dropped.
#[derive(Debug)]
pub(crate) struct Relay {
    account: Arc<Account>,
    sub: Arc<Subscription>,
}

impl Relay {
    /// Starts relaying replies in `account`.
    pub(crate) fn start(account: Arc<Account>) -> Self {
        let owner = Arc::new(ReplyRelay {
            account: Arc::clone(&account),
        });
        let sub = Subscription::new(
            Bytes::from_static(b"mqtt-reply-relay"),
            Bytes::from(format!("{REPLY_PREFIX}>")),
            None,
            owner as Arc<dyn Subscriber>,
        );
        account.router.subscribe(&sub);
        Self { account, sub }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.account.router.unsubscribe(&self.sub);
    }
}
