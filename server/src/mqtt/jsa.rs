//! rill's MQTT state goes through the account's own JetStream, as any NATS client's
//! would: requests to the `$JS.API` subjects and publishes to stream subjects, routed
//! through the account's router, with replies on `$MQTT.JSA.<token>.<n>`. No stream or
//! consumer internals are touched, so the stream and store work can change underneath
//! without breaking MQTT.
//!
//! A reply either wakes a waiting task (API requests) or, for the store acknowledgement
//! of a QoS 1 or 2 publish, sends the device its PUBACK, PUBREC or PUBCOMP at once: the
//! read loop never waits for the disk, and acknowledgements still go out in packet order
//! (one stream answers in order).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::oneshot;

use super::outlet::Outlet;
use super::packet::v5;
use crate::account::Account;
use crate::router::{ByteString, Delivery, Msg, Subscriber, Subscription};

/// Waiters older than this are dropped (their reply never came).
const STALE: Duration = Duration::from_secs(120);

/// Why an internal JetStream request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JsaError {
    /// No reply within `js_api_timeout`.
    #[error("JetStream API timeout")]
    Timeout,
    /// The API answered with an error.
    #[error("JetStream API error {code}: {description}")]
    Api {
        /// The JetStream error code (`err_code`).
        code: u64,
        /// Its description.
        description: String,
    },
}

/// Who waits for a reply.
#[derive(Debug)]
enum Waiter {
    /// A task awaiting the reply body.
    Task(oneshot::Sender<Bytes>),
    /// A publish whose acknowledgement goes out when the stream stored it.
    Ack(Weak<Outlet>, AckKind, u16),
    /// A reply nobody waits for (fire-and-forget API requests).
    Discard,
}

/// Which acknowledgement a stored publish gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    /// PUBACK of a QoS 1 PUBLISH.
    Ack,
    /// PUBREC of a QoS 2 PUBLISH (held in `$MQTT_qos2in` until PUBREL).
    Rec,
    /// PUBCOMP of a PUBREL (the released message is stored in `$MQTT_msgs`).
    Comp,
}

#[derive(Debug, Default)]
struct Replies {
    waiting: Mutex<HashMap<u64, (Instant, Waiter)>>,
}

impl Subscriber for Replies {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let Some(n) = msg
            .subject
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<u64>().ok())
        else {
            return Delivery::Dropped;
        };
        let waiter = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&n);
        match waiter {
            Some((_, Waiter::Task(tx))) => {
                let _ = tx.send(msg.payload_bytes());
            }
            Some((_, Waiter::Ack(outlet, kind, pkid))) => {
                if let Some(outlet) = outlet.upgrade() {
                    acknowledge(&outlet, kind, pkid, &msg.payload_bytes());
                }
            }
            Some((_, Waiter::Discard)) => {}
            None => return Delivery::Dropped,
        }
        Delivery::Queued
    }
}

/// Sends the acknowledgement of a stored publish (MQTT 5: "quota exceeded" when the
/// stream refused it).
fn acknowledge(outlet: &Outlet, kind: AckKind, pkid: u16, reply: &Bytes) {
    let refused = error_of(reply).is_some();
    let packet = match kind {
        AckKind::Ack => {
            let mut ack = v5::PubAck::new(pkid, None);
            if refused {
                ack.reason = v5::PubAckReason::QuotaExceeded;
            }
            v5::Packet::PubAck(ack)
        }
        AckKind::Rec => {
            let mut rec = v5::PubRec::new(pkid, None);
            if refused {
                rec.reason = v5::PubRecReason::QuotaExceeded;
            }
            v5::Packet::PubRec(rec)
        }
        AckKind::Comp => v5::Packet::PubComp(v5::PubComp::new(pkid, None)),
    };
    outlet.send(&packet);
}

/// The `error` of a JetStream reply, if it has one.
fn error_of(reply: &[u8]) -> Option<JsaError> {
    let v: Value = serde_json::from_slice(reply).ok()?;
    let e = v.get("error")?;
    Some(JsaError::Api {
        code: e
            .get("err_code")
            .and_then(Value::as_u64)
            .unwrap_or_default(),
        description: e
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

/// An account's internal JetStream client.
#[derive(Debug)]
pub(crate) struct Jsa {
    account: Arc<Account>,
    api: String,
    prefix: String,
    replies: Arc<Replies>,
    sub: Arc<Subscription>,
    next: AtomicU64,
    timeout: Duration,
}

impl Jsa {
    /// A client for `account`'s JetStream (in `domain`, when set).
    pub(crate) fn new(account: Arc<Account>, domain: Option<&str>, timeout: Duration) -> Self {
        let token: u64 = rand::random();
        let prefix = format!("$MQTT.JSA.{token:x}.");
        let replies = Arc::new(Replies::default());
        let sub = Subscription::new(
            Bytes::from_static(b"mqtt-jsa"),
            Bytes::from(format!("{prefix}>")),
            None,
            Arc::clone(&replies) as Arc<dyn Subscriber>,
        );
        account.router.subscribe(&sub);
        let api = match domain {
            Some(d) if !d.is_empty() => format!("$JS.{d}.API"),
            _ => "$JS.API".to_string(),
        };
        Self {
            account,
            api,
            prefix,
            replies,
            sub,
            next: AtomicU64::new(1),
            timeout,
        }
    }

    fn wait(&self, waiter: Waiter) -> ByteString {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut waiting = self
            .replies
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if waiting.len() > 1024 {
            waiting.retain(|_, (at, _)| at.elapsed() < STALE);
        }
        waiting.insert(n, (Instant::now(), waiter));
        ByteString::from(format!("{}{n}", self.prefix))
    }

    /// Publishes into the account (internal publisher: no echo rules).
    pub(crate) fn publish(
        &self,
        subject: &str,
        reply: Option<&ByteString>,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) {
        let subject = ByteString::from(subject);
        self.account
            .router
            .publish(0, true, &Msg::new(&subject, reply, headers, payload));
    }

    /// Sends a request and waits for its reply body.
    ///
    /// # Errors
    /// [`JsaError::Timeout`] without a reply, [`JsaError::Api`] for an error reply.
    pub(crate) async fn request(
        &self,
        subject: &str,
        headers: Option<&Bytes>,
        body: &Bytes,
    ) -> Result<Bytes, JsaError> {
        let (tx, rx) = oneshot::channel();
        let reply = self.wait(Waiter::Task(tx));
        self.publish(subject, Some(&reply), headers, body);
        let body = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(b)) => b,
            _ => return Err(JsaError::Timeout),
        };
        match error_of(&body) {
            Some(e) => Err(e),
            None => Ok(body),
        }
    }

    /// A `$JS.API.<op>` request with a JSON body.
    ///
    /// # Errors
    /// As [`Jsa::request`].
    pub(crate) async fn api(&self, op: &str, body: &Value) -> Result<Value, JsaError> {
        let subject = format!("{}.{op}", self.api);
        let body = Bytes::from(body.to_string());
        let reply = self.request(&subject, None, &body).await?;
        Ok(serde_json::from_slice(&reply).unwrap_or(Value::Null))
    }

    /// A `$JS.API.<op>` request whose reply nobody waits for.
    pub(crate) fn api_nowait(&self, op: &str, body: &Value) {
        let reply = self.wait(Waiter::Discard);
        let subject = format!("{}.{op}", self.api);
        self.publish(&subject, Some(&reply), None, &Bytes::from(body.to_string()));
    }

    /// Stores a message; the device's `kind` acknowledgement for `pkid` goes out when
    /// the stream acknowledged it.
    pub(crate) fn store_then_ack(
        &self,
        subject: &str,
        headers: Option<&Bytes>,
        payload: &Bytes,
        ack: (&Arc<Outlet>, AckKind, u16),
    ) {
        let (outlet, kind, pkid) = ack;
        let reply = self.wait(Waiter::Ack(Arc::downgrade(outlet), kind, pkid));
        self.publish(subject, Some(&reply), headers, payload);
    }
}

impl Drop for Jsa {
    fn drop(&mut self) {
        self.account.router.unsubscribe(&self.sub);
    }
}
