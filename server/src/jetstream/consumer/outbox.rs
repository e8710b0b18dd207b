//! How a consumer talks to the router: deliveries that are *routed* by one subject
//! (the pull request's inbox or the push deliver subject) but *presented* with the
//! message's own subject, plain publishes (advisories, ack replies), interest checks,
//! and internal subscriptions that feed the actor's bounded channels.
//!
//! Owns no routing state. Why not `Router::publish`: it routes and presents by the
//! same subject, while a JetStream delivery reaches the inbox subscription yet
//! must show `MSG orders.new <sid> $JS.ACK...` as nats-server does.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::account::Account;
use crate::router::{ByteString, Delivery, Msg, Origin, Subscriber, Subscription, text};

/// Publishing side of a consumer, bound to one account.
#[derive(Debug, Clone)]
pub struct Outbox {
    account: Arc<Account>,
}

/// A message as the consumer sends it (owned parts, cheap clones).
#[derive(Debug, Clone, Default)]
pub(crate) struct OutMsg {
    /// Subject shown to the receiver.
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// Header block.
    pub headers: Option<Bytes>,
    /// Payload.
    pub payload: Bytes,
}

impl OutMsg {
    /// nats-server's size of a delivery for `max_bytes`: subject, reply, headers, payload.
    pub(crate) fn size(&self) -> usize {
        self.subject.len()
            + self.reply.as_ref().map_or(0, Bytes::len)
            + self.headers.as_ref().map_or(0, Bytes::len)
            + self.payload.len()
    }
}

impl Outbox {
    /// An outbox publishing into `account`.
    pub fn new(account: Arc<Account>) -> Self {
        Self { account }
    }

    /// Delivers `msg` to the subscriptions matching `route` (one member per queue
    /// group), here and over links to other servers. Returns how many got it.
    pub(crate) fn deliver(&self, route: &Bytes, msg: &OutMsg) -> usize {
        let (Some(subject), Some(route)) = (text(&msg.subject), text(route)) else {
            return 0;
        };
        let reply = match &msg.reply {
            Some(r) => match text(r) {
                Some(r) => Some(r),
                None => return 0,
            },
            None => None,
        };
        let m = Msg::new(&subject, reply.as_ref(), msg.headers.as_ref(), &msg.payload);
        self.account
            .router
            .deliver_routed(Origin::Local, &route, &m)
    }

    /// A plain publish (routed and presented by `subject`).
    pub(crate) fn publish(&self, subject: &str, headers: Option<Bytes>, payload: Bytes) {
        let subject = ByteString::from(subject);
        self.account.router.publish(
            0,
            true,
            &Msg::new(&subject, None, headers.as_ref(), &payload),
        );
    }

    /// Answers an ack sent as a request: an empty message to `reply`.
    pub(crate) fn reply(&self, reply: &Bytes) {
        let Some(reply) = text(reply) else {
            return;
        };
        let empty = Bytes::new();
        self.account
            .router
            .publish(0, true, &Msg::new(&reply, None, None, &empty));
    }

    /// The account it publishes into.
    pub(crate) fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// True when someone subscribes to `subject`, here or on a server over a link (in
    /// another account, through an import, only once that account's client has subscribed).
    pub(crate) fn has_interest(&self, subject: &Bytes) -> bool {
        self.account.router.has_interest(subject)
    }

    /// Subscribes `subject` for an internal service; messages go to `tx` (dropped when full).
    pub(crate) fn subscribe(&self, subject: &str, tx: mpsc::Sender<Inbound>) -> InternalSub {
        let owner: Arc<dyn Subscriber> = Arc::new(Forward { tx });
        let sub = Subscription::new(
            Bytes::from_static(b"js"),
            Bytes::copy_from_slice(subject.as_bytes()),
            None,
            owner,
        );
        self.account.router.subscribe(&sub);
        InternalSub {
            account: Arc::clone(&self.account),
            sub,
        }
    }
}

/// A message that reached an internal subscription.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    /// Subject it was published to.
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// Payload.
    pub payload: Bytes,
}

#[derive(Debug)]
struct Forward {
    tx: mpsc::Sender<Inbound>,
}

impl Subscriber for Forward {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let m = Inbound {
            subject: msg.subject_bytes(),
            reply: msg.reply_bytes(),
            payload: msg.payload_bytes(),
        };
        match self.tx.try_send(m) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// An internal subscription; unsubscribes when dropped.
#[derive(Debug)]
pub(crate) struct InternalSub {
    account: Arc<Account>,
    sub: Arc<Subscription>,
}

impl Drop for InternalSub {
    fn drop(&mut self) {
        self.account.router.unsubscribe(&self.sub);
    }
}
