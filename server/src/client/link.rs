//! The part of a connection other tasks can reach ([`ClientLink`]): its outbound
//! queue, subscription table, counters and permissions, and its side of routing
//! (the router delivers to it as a [`Subscriber`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::warn;

use super::outbound::{Outbound, Pushed};
use crate::auth::Permissions;
use crate::locks;
use crate::router::{Delivery, Msg, Subscriber, Subscription};
use crate::shared::BoxFuture;
use crate::stats::Stats;
use crate::trace::record::{Conn, Kind};

/// What a client told us in CONNECT, kept for monitoring.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client name.
    pub name: String,
    /// Client library language.
    pub lang: String,
    /// Client library version.
    pub version: String,
    /// Authenticated user, if any.
    pub user: Option<String>,
    /// The MQTT client identifier, for an MQTT connection (`/connz` shows it and
    /// `"type": "mqtt"`).
    pub mqtt_client: Option<String>,
    /// The account the client joined (empty before CONNECT).
    pub account: String,
    /// CONNECT's `protocol`: 1 or more takes asynchronous INFO (cluster and lame-duck
    /// updates).
    pub protocol: i64,
    /// When a JWT user's connection ends (JWT expiry or the end of its connect-time
    /// window), unix seconds.
    pub expires: Option<i64>,
    /// A JWT user's `name` claim, if not empty.
    pub user_name: Option<String>,
}

/// The part of a connection other tasks can reach.
#[derive(Debug)]
pub struct ClientLink {
    /// Client id.
    pub cid: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Came through the WebSocket listener (`/connz` says `"type": "websocket"`).
    pub websocket: bool,
    /// When the connection was accepted.
    pub started: SystemTime,
    /// Outbound queue.
    pub outbound: Outbound,
    /// Subscriptions by sid.
    pub subs: Mutex<HashMap<Bytes, Arc<Subscription>>>,
    /// CONNECT details.
    pub info: RwLock<ClientInfo>,
    pub(super) echo: AtomicBool,
    pub(super) headers: AtomicBool,
    /// Messages received from this client.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from this client.
    pub in_bytes: AtomicU64,
    /// Messages delivered to this client.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to this client.
    pub out_bytes: AtomicU64,
    /// Permissions of the authenticated user (`None`: anything goes); replaced on reload.
    pub(super) perms: RwLock<Option<Arc<Permissions>>>,
    /// True when `perms` has something to apply to deliveries (subscribe denies or reply
    /// grants), so deliveries to everyone else skip the lock.
    pub(super) delivery_perms: AtomicBool,
    /// Wakes the read loop after a reload of users, accounts or permissions. One per
    /// connection (not one shared watch) so waiting on it contends with no one.
    pub(super) reload: Notify,
    /// `allow_responses` grants made by the requests delivered to this client.
    pub(super) responses: Mutex<super::grants::ReplyGrants>,
    /// The server's counters (slow consumers are counted at delivery).
    stats: Arc<Stats>,
    /// The client's last CONNECT, SUB, UNSUB or message in (unix ns); messages out are
    /// the outbound queue's ([`ClientLink::last_activity`]).
    activity_ns: AtomicI64,
    /// Round trip in ns, 0 until measured ([`ClientLink::rtt`]).
    rtt_ns: AtomicU64,
}

impl ClientLink {
    /// The shared side of a new connection: an outbound queue bounded by `max_pending`
    /// bytes, no subscriptions, no permissions yet.
    /// Every kind of client connection has one (NATS clients and MQTT devices).
    pub fn new(cid: u64, addr: SocketAddr, max_pending: usize, stats: Arc<Stats>) -> Self {
        Self {
            cid,
            addr,
            websocket: false,
            started: SystemTime::now(),
            outbound: Outbound::new(max_pending),
            subs: Mutex::new(HashMap::new()),
            info: RwLock::new(ClientInfo::default()),
            echo: AtomicBool::new(true),
            headers: AtomicBool::new(false),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            perms: RwLock::new(None),
            delivery_perms: AtomicBool::new(false),
            reload: Notify::new(),
            responses: Mutex::new(super::grants::ReplyGrants::default()),
            stats,
            activity_ns: AtomicI64::new(crate::shared::unix_ns()),
            rtt_ns: AtomicU64::new(0),
        }
    }

    /// Notes activity from the client (CONNECT, SUB, UNSUB, messages in).
    pub fn touch(&self) {
        self.activity_ns
            .store(crate::shared::unix_ns(), Ordering::Relaxed);
    }

    /// The last activity either way, as /connz's `last_activity` (nats-server counts
    /// messages in and out, subscriptions and the CONNECT; PING/PONG do not count).
    pub fn last_activity(&self) -> SystemTime {
        let ns = self
            .activity_ns
            .load(Ordering::Relaxed)
            .max(self.outbound.last_msg_written());
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
    }

    /// The last round trip measured (`None` before the first).
    pub fn rtt(&self) -> Option<std::time::Duration> {
        match self.rtt_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(std::time::Duration::from_nanos(ns)),
        }
    }

    /// Records a measured round trip (at least 1 ns, so it reads as measured).
    pub(super) fn set_rtt(&self, rtt: std::time::Duration) {
        let ns = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.rtt_ns.store(ns, Ordering::Relaxed);
    }

    /// The `<addr> - cid:<n>` prefix of this connection's log lines.
    pub fn log_prefix(&self) -> String {
        format!("{} - cid:{}", self.addr, self.cid)
    }

    /// The authenticated user's name (empty without one).
    pub fn user_name(&self) -> String {
        locks::read(&self.info).user.clone().unwrap_or_default()
    }

    /// Asks the connection to re-check itself against reloaded users and permissions.
    pub fn auth_reloaded(&self) {
        self.reload.notify_one();
    }

    /// Waits until the connection is asked to re-check itself ([`Self::auth_reloaded`]).
    pub async fn reload_asked(&self) {
        self.reload.notified().await;
    }

    /// The permissions in force (`None`: anything goes).
    pub fn permissions(&self) -> Option<Arc<Permissions>> {
        locks::read(&self.perms).clone()
    }

    /// True for an MQTT device's connection (it speaks MQTT, not the NATS protocol).
    pub fn is_mqtt(&self) -> bool {
        locks::read(&self.info).mqtt_client.is_some()
    }

    /// Number of subscriptions.
    pub fn num_subs(&self) -> usize {
        locks::lock(&self.subs).len()
    }
}

impl Subscriber for ClientLink {
    fn owner_id(&self) -> u64 {
        self.cid
    }

    fn deliver(&self, sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        if self.delivery_perms.load(Ordering::Acquire) && !self.permits_delivery(msg) {
            return Delivery::Dropped;
        }
        if let Some(trace) = msg.trace {
            let info = locks::read(&self.info);
            let conn = Conn::new(Kind::Client, self.cid, info.name.clone());
            trace.egress_client(conn, &info.account, &sub.subject, sub.queue.as_deref());
            if trace.only() {
                return Delivery::Queued;
            }
        }
        // A client that did not ask for headers gets the payload alone, as nats-server does.
        let with_headers = self.headers.load(Ordering::Relaxed);
        match self.outbound.push_msg(&sub.sid, msg, with_headers) {
            pushed @ (Pushed::Queued | Pushed::Pressure) => {
                self.out_msgs.fetch_add(1, Ordering::Relaxed);
                self.out_bytes
                    .fetch_add(msg.size() as u64, Ordering::Relaxed);
                match pushed {
                    Pushed::Pressure => Delivery::Pressure,
                    _ => Delivery::Queued,
                }
            }
            Pushed::SlowConsumer => {
                Stats::add(&self.stats.slow_consumers, 1);
                warn!(
                    "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                    self.log_prefix(),
                    self.outbound.max_pending()
                );
                Delivery::Dropped
            }
            Pushed::Closed => Delivery::Dropped,
        }
    }

    fn auto_unsubscribed(&self, sub: &Subscription) {
        locks::lock(&self.subs).remove(&sub.sid);
    }

    fn drained(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.outbound.drained())
    }

    fn is_alive(&self) -> bool {
        !self.outbound.is_closed()
    }

    fn follows_traces(&self) -> bool {
        true
    }
}
