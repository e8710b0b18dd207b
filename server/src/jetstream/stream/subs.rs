//! A stream's subscriptions in the router: its subjects (ingest) and, with
//! `allow_direct`, `$JS.API.DIRECT.GET.<stream>` and `.<stream>.>`.
//!
//! Delivery runs on the publisher's thread, so [`StreamSubscriber::deliver`] only
//! copies the (refcounted) parts into the stream's bounded queue. A full queue
//! drops the message, counted (`/jsz` stream detail `ingest_dropped`, `/metrics`
//! `rill_stream_dropped_messages`) and logged; from three quarters full the router is told
//! `Delivery::Pressure`, and the publisher waits (up to [`PUBLISHER_STALL`]) until the
//! stream actor has drained the queue to half.

use std::sync::Arc;
use std::sync::mpsc::TrySendError;
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{ApiSubject, StreamConfig};

use super::Command;
use super::queue::QueueTx;
use super::source::Origins;
use crate::account::Account;
use crate::router::{Delivery, Msg, Subscriber, Subscription};
use crate::shared::BoxFuture;
use tracing::warn;

/// How long a publisher into a backlogged stream waits for it to drain before it
/// reads on: long, so a fire-and-forget burst is stored whole instead of dropped.
const PUBLISHER_STALL: Duration = Duration::from_secs(10);

/// Receives a stream's messages from the router.
#[derive(Debug)]
struct StreamSubscriber {
    tx: QueueTx,
    name: String,
}

impl Subscriber for StreamSubscriber {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let direct = sub.sid.starts_with(b"direct");
        if direct && msg.trace.is_some_and(|t| t.only()) {
            return Delivery::Queued;
        }
        let cmd = if direct {
            Command::Direct {
                subject: msg.subject_bytes(),
                reply: msg.reply_bytes(),
                payload: msg.payload_bytes(),
            }
        } else {
            Command::Publish {
                subject: msg.subject_bytes(),
                reply: msg.reply_bytes(),
                headers: msg.headers_bytes(),
                payload: msg.payload_bytes(),
                trace: msg.trace.cloned(),
            }
        };
        match self.tx.try_send(cmd) {
            Ok(()) if self.tx.under_pressure() => Delivery::Pressure,
            Ok(()) => Delivery::Queued,
            Err(TrySendError::Full(_)) => {
                let n = self.tx.count_dropped();
                // The first drop and then at each power of two: visible, never a flood.
                if n.is_power_of_two() {
                    warn!(stream = %self.name, dropped = n, "stream ingest queue full: message dropped");
                }
                Delivery::Dropped
            }
            Err(TrySendError::Disconnected(_)) => Delivery::Dropped,
        }
    }

    fn drained(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.tx.drained())
    }

    fn max_stall(&self) -> Duration {
        PUBLISHER_STALL
    }

    fn follows_traces(&self) -> bool {
        true
    }
}

/// The queue group of direct-get subscriptions.
const DIRECT_GROUP: &[u8] = b"_rill_dget";

/// The live subscriptions of one stream, and its mirror/source tasks.
#[derive(Debug, Default)]
pub(crate) struct StreamSubs {
    subs: Vec<Arc<Subscription>>,
    origins: Origins,
}

impl StreamSubs {
    /// Subscribes the stream's subjects (and direct-get subjects) in `account`. A
    /// replicated stream's subjects are left out (`ingest` false): its group's leader
    /// subscribes them and feeds the stream through the group (`cluster::replica`).
    pub(crate) fn install(
        account: &Arc<Account>,
        cfg: &StreamConfig,
        tx: &QueueTx,
        ingest: bool,
    ) -> Self {
        let owner: Arc<dyn Subscriber> = Arc::new(StreamSubscriber {
            tx: tx.clone(),
            name: cfg.name.clone(),
        });
        let mut subs = Vec::new();
        for (i, subject) in cfg.subjects.iter().enumerate().filter(|_| ingest) {
            subs.push(Subscription::new(
                Bytes::from(format!("ingest{i}")),
                Bytes::from(subject.clone()),
                None,
                Arc::clone(&owner),
            ));
        }
        // A stream answers its own direct gets; with `mirror_direct`, a mirror answers
        // its origin's too. One of them answers each request (a queue group, whose
        // members on other servers of a cluster answer for clients here, as on
        // nats-server: a direct get reaches wherever the stream is).
        let mut direct: Vec<&str> = Vec::new();
        if cfg.allow_direct {
            direct.push(&cfg.name);
        }
        if let Some(m) = cfg.mirror.as_ref().filter(|_| cfg.mirror_direct) {
            direct.push(&m.name);
        }
        for stream in direct {
            for subject in [None, Some(">")] {
                let subject = ApiSubject::DirectGet { stream, subject }.to_string();
                subs.push(Subscription::new(
                    Bytes::from_static(b"direct"),
                    Bytes::from(subject),
                    Some(Bytes::from_static(DIRECT_GROUP)),
                    Arc::clone(&owner),
                ));
            }
        }
        for s in &subs {
            account.router.subscribe(s);
        }
        let origins = Origins::start(account, cfg, tx);
        Self { subs, origins }
    }

    /// Removes every subscription.
    pub(crate) fn remove(&mut self, account: &Account) {
        for s in self.subs.drain(..) {
            account.router.unsubscribe(&s);
        }
        self.origins = Origins::default();
    }
}
