//! Cluster routes: this server as one member of a full mesh of servers that share
//! subscriptions and forward messages for each other (core NATS; JetStream stays per
//! server until it is clustered, issue 20).
//!
//! # The wire, as nats-server 2.15.1 speaks it (recorded through a proxy on a route port)
//! - The server that accepts a route sends its route `INFO` at once. The server that
//!   dialled sends `CONNECT {"echo":true,"verbose":false,"pedantic":false,
//!   "tls_required":false,"headers":true,"name":<its id>,"cluster":<its cluster>}`
//!   (plus `user`/`pass`) and its own `INFO`. Both INFOs carry `server_id`, `server_name`,
//!   `proto` 3, the cluster listen `host`/`port`, `cluster`, `connect_urls` (the server's
//!   client `host:port`s) and `compression`.
//! - Then each side sends `RS+ <account> <subject>[ <queue> <weight>]` for every local
//!   subscription (nats-server logs "Sent local subscriptions to route"), and keeps
//!   sending `RS+`/`RS-` as they change; a queue group's `RS+` is re-sent with the new
//!   member count on every change (`RS+ $G foo.bar q1 1`, `… q1 2`, back to `… q1 1`,
//!   then `RS- $G foo.bar q1`).
//! - Messages travel as `RMSG <account> <subject> [reply] <size>` and `HMSG … <hdr>
//!   <total>`; with queue groups `RMSG $G foo.bar | q1 5` or `RMSG $G foo.bar + r.1 q1 5`
//!   (see `rill_protocol::route`). A request with no interest anywhere gets its 503 from
//!   the publisher's own server: nothing crosses the route.
//! - `PING`/`PONG` keep the route alive (nats-server pings a new route about a second
//!   after it is up, then every `ping_interval`).
//! - Pooling (nats-server 2.10+): a server whose INFO carries `route_pool_size: N` opens N
//!   routes per peer, each with `route_pool_idx`, and one more pinned to `$SYS`
//!   (`route_account`, no account token on the wire). When the accepting side's INFO has
//!   no `route_pool_size`, nats-server gives up the pinned route (it sends `-ERR 'Not
//!   possible to have a dedicated route for account "$SYS" between those servers'` on it)
//!   and keeps **one route per peer carrying every account**, in both directions. rill
//!   takes that path: one route per peer, `route_pool_size` never sent.
//! - Compression: nats-server's default is `accept`. A side that sends `compression: off`
//!   declines it and the route stays uncompressed, even against `s2_fast`; rill always
//!   sends `off`.
//! - Gossip: when a server gains a route to a new peer, it sends each of its other routes
//!   an INFO describing the newcomer (its `server_id`, `connect_urls`, `ip:
//!   "nats-route://host:port/"`, `gossip_mode: 1`); the receiver dials that URL unless it
//!   already has a route to that id. Only existing members dial the newcomer, so the
//!   mesh completes without both sides dialling each other.
//! - A duplicate route (two connections between the same pair) is closed by one side;
//!   rill keeps the route dialled by the server with the greater id (both ends of a race
//!   reach the same answer). A configured route is redialled when it goes away (nats-
//!   server: about every second); a route learned by gossip is not.
//! - Refusals: a mismatched cluster name gets `-ERR 'Rejecting connection, cluster name
//!   "C1" does not match "C2"'` and the log lines `Rejecting connection, cluster name …`
//!   and `Router connection closed: Cluster Name Conflict`; bad route credentials get
//!   `-ERR 'Authorization Violation'`.
//! - Slow routes (recorded with a peer that stops reading, `write_deadline: 2s`): a write
//!   that passes the deadline having written something is logged `Slow Consumer Detected:
//!   WriteDeadline of 2s exceeded with 19 chunks of 63684 total bytes.` (then `Slow Consumer
//!   State: …`), counted once in `/varz` `slow_consumer_stats.routes`, and the route stays;
//!   once a deadline passes with nothing written it closes (`Router connection closed: Slow
//!   Consumer (Write Deadline)`). Publishers feeding it are stalled ~10 ms at a time; nothing
//!   else waits. nats-server puts no byte limit on a route's queue; rill closes one past
//!   `max_pending` (memory stays bounded). See [`crate::link::spawn_writer`].
//! - Clients: INFO to clients carries `cluster` and, once another server is connected,
//!   `connect_urls` (this server's client URL first, then the peers'); every client is
//!   sent a fresh INFO (with its `client_id`) whenever that list changes.
//! - WebSocket: a server with a `websocket {}` block also puts `ws_connect_urls` (its
//!   WebSocket `host:port`s) in its route INFO. A WebSocket client's INFO carries those
//!   of the whole cluster as its `connect_urls`, and no `ws_connect_urls` field; a plain
//!   client never sees the WebSocket URLs.
//!
//! # Design
//! ```text
//! accept loop ─┐                       ┌─ Peers: the live route per server id
//! dialers ─────┴─ conn (handshake, ────┤
//!                 read loop, writer)   └─ Hub: per account, AccountLinks = the router's Remote
//!                                             (local interest counts, peers' interest sublist)
//! ```
//! A client's message is delivered locally by the account's router, which then hands it
//! to the account's [`AccountLinks`](interest::AccountLinks) (the router's `Remote` hook):
//! one `RMSG` per interested route. A route's read loop hands `RMSG`s to the router with
//! [`Origin::Route`](crate::router::Origin), so they reach local subscribers and go to no
//! other route. Subscription changes reach `AccountLinks` through the same hook and become
//! `RS+`/`RS-` on every route. Without a `cluster` block none of this exists and the
//! router's hook costs one atomic load.

mod conn;
mod dial;
mod interest;
mod link;
mod peers;
mod report;

/// TLS on routes (`cluster { tls {} }`): both halves of [`crate::link::tls::LinkTls`].
pub use crate::link::tls::LinkTls as RouteTls;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};

use bytes::BytesMut;
use rill_protocol::{RouteInfo, encode};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::client::CloseReason;
use crate::config::ClusterConfig;
use crate::link::{Link, concrete_host, join_host_port};
use crate::locks;
use crate::server::ServerState;
use crate::shared::{ClusterReport, VERSION};

use interest::Hub;
use link::RouteLink;
use peers::Peers;

/// Which of this server's client URLs: plain (`connect_urls`) or WebSocket
/// (`ws_connect_urls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlKind {
    Client,
    Websocket,
}

/// The route protocol level rill speaks (as nats-server 2.15).
const ROUTE_PROTO: i64 = 3;

/// This server's membership in a cluster.
#[derive(Debug)]
pub struct Cluster {
    state: Weak<ServerState>,
    config: ClusterConfig,
    server_id: String,
    server_name: String,
    /// The cluster's name (adopted from the first peer when not configured).
    name: RwLock<String>,
    dynamic: bool,
    /// Where routes are accepted.
    listen: SocketAddr,
    /// TLS on every route (`cluster { tls {} }`).
    tls: Option<RouteTls>,
    /// Counters of the routes that closed.
    closed: report::Closed,
    peers: Arc<Peers>,
    hub: Arc<Hub>,
    /// Route URLs learned by gossip that are being dialled now.
    dialing: Mutex<HashSet<String>>,
    stop: watch::Receiver<bool>,
    /// Held by every route task, so shutdown waits for them.
    done: crate::link::Done,
}

impl Cluster {
    /// Binds the route listener and starts accepting and dialling routes, when the
    /// configuration has a `cluster` block (`tls`: built from its `tls {}` block).
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(
        state: &Arc<ServerState>,
        tls: Option<RouteTls>,
        stop: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
    ) -> std::io::Result<Option<Arc<Cluster>>> {
        let config = state.config();
        let Some((cfg, port)) = config.cluster.clone().and_then(|c| c.port.map(|p| (c, p))) else {
            return Ok(None);
        };
        let crate::bind::Bound {
            listener,
            addr: listen,
        } = crate::bind::listen(&cfg.host, port).await?;
        let (name, dynamic) = match &cfg.name {
            Some(name) => (name.clone(), false),
            None => (crate::link::random_id(), true),
        };
        let peers = Arc::new(Peers::default());
        let cluster = Arc::new(Cluster {
            state: Arc::downgrade(state),
            server_id: state.server_id.clone(),
            server_name: state.server_name.clone(),
            name: RwLock::new(name.clone()),
            dynamic,
            listen,
            tls,
            closed: report::Closed::default(),
            hub: Arc::new(Hub::new(Arc::clone(&peers))),
            peers,
            dialing: Mutex::new(HashSet::new()),
            stop,
            done: crate::link::Done::new(done.clone()),
            config: cfg,
        });
        state
            .accounts
            .link(Arc::clone(&cluster.hub) as Arc<dyn crate::router::RemoteFactory>);
        state.set_cluster(Arc::clone(&cluster) as Arc<dyn ClusterReport>);
        info!("Cluster name is {name}");
        info!("Listening for route connections on {listen}");
        crate::link::serve_listener(
            listener,
            (cluster.stop.clone(), done),
            "route",
            Arc::clone(&cluster),
            conn::accept,
        );
        for url in cluster.config.routes.clone() {
            tokio::spawn(dial::keep_dialing(Arc::clone(&cluster), url));
        }
        Ok(Some(cluster))
    }

    /// The bound route address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    fn state(&self) -> Option<Arc<ServerState>> {
        self.state.upgrade()
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The route INFO this server sends on a connection whose local end is `local`.
    fn own_info(&self, local: Option<SocketAddr>) -> RouteInfo {
        let state = self.state();
        let config = state.as_ref().map(|s| s.config()).unwrap_or_default();
        let tls = self.config.tls.as_ref();
        let (host, port) = self.advertised(local);
        RouteInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: VERSION.to_string(),
            proto: ROUTE_PROTO,
            go: Some(format!("rill {VERSION}")),
            host,
            port,
            headers: true,
            auth_required: self.config.authorization.is_some(),
            tls_required: tls.is_some(),
            tls_verify: tls.is_some_and(|t| t.verify),
            max_payload: i64::try_from(config.max_payload).unwrap_or(i64::MAX),
            cluster: Some(locks::read(&self.name).clone()),
            connect_urls: self.own_urls(UrlKind::Client, local),
            ws_connect_urls: self.own_urls(UrlKind::Websocket, local),
            compression: Some("off".into()),
            jetstream: config.jetstream.is_some(),
            ldm: state.is_some_and(|s| s.is_lame_duck()),
            ..RouteInfo::default()
        }
    }

    /// The route `host`/`port` peers should dial: `cluster.advertise`, else the listen
    /// address (an unspecified host is replaced by our address on `local`).
    fn advertised(&self, local: Option<SocketAddr>) -> (String, u16) {
        crate::link::advertised(
            self.config.advertise.as_deref(),
            &self.listen.ip().to_string(),
            self.listen.port(),
            local,
        )
    }

    /// Where this server's clients of `kind` connect (none with `no_advertise`, or for
    /// WebSocket without a `websocket {}` block): the block's `advertise`, else its
    /// listen address (an unspecified host is replaced by our address on `local`).
    fn own_urls(&self, kind: UrlKind, local: Option<SocketAddr>) -> Vec<String> {
        let Some(state) = self.state() else {
            return Vec::new();
        };
        if self.config.no_advertise {
            return Vec::new();
        }
        let config = state.config();
        let (advertise, host, port) = match kind {
            UrlKind::Client => {
                let port = state.client_port.load(std::sync::atomic::Ordering::Relaxed);
                let port = u16::try_from(port).unwrap_or_default();
                (config.client_advertise.clone(), config.host.clone(), port)
            }
            UrlKind::Websocket => {
                let (Some(ws), Some(addr)) = (&config.websocket, state.websocket_addr()) else {
                    return Vec::new();
                };
                (ws.advertise.clone(), ws.host.clone(), addr.port())
            }
        };
        if let Some(adv) = advertise {
            return vec![adv];
        }
        let local = local.or_else(|| self.peers.all().first().map(|l| l.local));
        vec![join_host_port(&concrete_host(&host, local), port)]
    }

    /// Registers a route whose handshake is done: settles duplicates, announces our
    /// interest on it, tells the other peers about the newcomer and clients about the new
    /// URLs. False when `link` lost to a route already there (the caller closes it).
    fn register(&self, link: &Arc<RouteLink>) -> bool {
        let peer = link.peer();
        let own = self.server_id.as_str();
        let new_dialler = link.dialler_id(own, &peer.server_id).to_string();
        let lost = self.peers.insert(&peer.server_id, link, |old| {
            // The route dialled by the greater id wins; between equals the older stays.
            old.dialler_id(own, &peer.server_id) >= new_dialler.as_str()
        });
        if let Some(loser) = lost {
            debug!(
                "{} - Detected duplicate remote route {:?}",
                loser.log_prefix(),
                peer.server_id
            );
            if Arc::ptr_eq(&loser, link) {
                return false;
            }
            loser.outbound.close_with(CloseReason::DuplicateRoute);
        }
        debug!(
            "{} - Registering remote route {:?}",
            link.log_prefix(),
            peer.server_id
        );
        for account in self.hub.all() {
            account.announce_to(link);
        }
        debug!("{} - Sent local subscriptions to route", link.log_prefix());
        self.gossip(link, &peer);
        self.tell_clients();
        true
    }

    /// Tells every other route about `peer`, reached over `link`.
    fn gossip(&self, link: &Arc<RouteLink>, peer: &RouteInfo) {
        let mut about = peer.clone();
        let host = concrete_host(&peer.host, Some(link.addr));
        about.ip = Some(format!(
            "nats-route://{}/",
            join_host_port(&host, peer.port)
        ));
        about.gossip_mode = Some(1);
        let mut frame = BytesMut::new();
        encode_route_info(&mut frame, &about);
        self.peers.for_each(|other| {
            if !Arc::ptr_eq(other, link) {
                other.send(&frame);
            }
        });
    }

    /// A route closed: forget it and the interest it carried.
    fn unregister(&self, link: &Arc<RouteLink>) {
        let peer_id = link.peer_id();
        let was_live = link.is_registered() && self.peers.remove(&peer_id, link);
        let subs: Vec<_> = locks::lock(&link.subs).drain().collect();
        for ((account, subject, queue), entry) in subs {
            if let Some(links) = self.hub.get(&account) {
                links.remote_drop(&subject, queue.as_ref(), &entry);
            }
        }
        if was_live {
            self.tell_clients();
        }
    }

    /// An INFO on an established route: the peer updating itself, or gossip about
    /// another member (dialled unless already connected).
    fn on_info(self: &Arc<Self>, link: &Arc<RouteLink>, info: RouteInfo) {
        if info.server_id == link.peer_id() {
            let urls_changed = {
                let old = link.peer();
                old.connect_urls != info.connect_urls
                    || old.ws_connect_urls != info.ws_connect_urls
                    || old.ldm != info.ldm
            };
            link.set_peer(info);
            if urls_changed {
                self.tell_clients();
            }
            return;
        }
        if info.server_id == self.server_id || self.peers.get(&info.server_id).is_some() {
            return;
        }
        let Some(url) = info
            .ip
            .as_deref()
            .and_then(|ip| crate::config::RouteUrl::parse(ip).ok())
        else {
            return;
        };
        if locks::lock(&self.dialing).insert(url.addr()) {
            debug!("Connecting to implicit route {url} ({})", info.server_name);
            tokio::spawn(dial::dial_implicit(Arc::clone(self), url));
        }
    }

    /// Sends every client a fresh INFO (the cluster's client URLs changed).
    fn tell_clients(&self) {
        let Some(state) = self.state() else {
            return;
        };
        let plain = state.client_info(false);
        let websocket = state.client_info(true);
        // MQTT devices have no INFO.
        for client in state.clients.all().iter().filter(|c| !c.is_mqtt()) {
            let mut info = if client.websocket {
                websocket.clone()
            } else {
                plain.clone()
            };
            info.client_id = Some(client.cid);
            info.client_ip = Some(client.addr.ip().to_string());
            let mut buf = BytesMut::new();
            encode::info(&mut buf, &info);
            client.outbound.push_raw(&buf);
        }
    }

    /// Lame-duck mode: tells every peer (their clients stop being pointed here).
    pub fn lame_duck(&self) {
        self.peers.for_each(|link| {
            let mut frame = BytesMut::new();
            encode_route_info(&mut frame, &self.own_info(Some(link.local)));
            link.send(&frame);
        });
    }

    /// Closes every route (server shutdown).
    pub fn shutdown(&self) {
        self.done.release();
        self.peers
            .for_each(|link| link.outbound.close_with(CloseReason::ServerShutdown));
    }

    /// Adopts `name` when ours was made up (no `cluster.name` configured).
    fn adopt_name(&self, name: &str) {
        if self.dynamic && !name.is_empty() {
            let mut ours = locks::write(&self.name);
            if *ours != name {
                info!("Cluster name updated to {name}");
                *ours = name.to_string();
            }
        }
    }
}

use rill_protocol::route_info::encode_info as encode_route_info;
