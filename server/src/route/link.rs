//! The part of a route other tasks reach ([`RouteLink`]): its outbound queue, the peer's
//! INFO, the interest the peer registered with us, and the counters `/routez` shows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use rill_protocol::RouteInfo;

use crate::client::Outbound;
use crate::link::{Link, LinkCounters};
use crate::locks;
use crate::trace::record::{Conn, Kind};

/// What the peer asked for: `(account, subject, queue)`.
pub(crate) type SubKey = (Bytes, Bytes, Option<Bytes>);

/// One entry of an account's remote interest: this route wants messages on a subject
/// (for a queue group: with this weight, the group's member count on the peer).
pub(crate) type RemoteSub = crate::link::forward::RemoteSub<RouteLink>;

/// A route to one peer, shared by its read loop, the accounts' forwarding, and monitoring.
#[derive(Debug)]
pub(crate) struct RouteLink {
    /// Route id (drawn from the client ids, as nats-server numbers `rid`s and `cid`s alike).
    pub(crate) rid: u64,
    /// The peer's socket address.
    pub(crate) addr: SocketAddr,
    /// Our own address on this connection (the peer reaches us there).
    pub(crate) local: SocketAddr,
    /// When the connection was made.
    pub(crate) started: SystemTime,
    /// What we send.
    pub(crate) outbound: Outbound,
    /// We dialled it.
    pub(crate) solicited: bool,
    /// It was dialled from a configured (seed) route URL.
    pub(crate) configured: bool,
    /// The peer's INFO (its id, name, route and client URLs); replaced by updates.
    peer: RwLock<RouteInfo>,
    /// In the peers table (after the handshake and duplicate check).
    registered: AtomicBool,
    /// What the peer asked for, to update weights and clean up when the route goes.
    pub(crate) subs: Mutex<HashMap<SubKey, RemoteSub>>,
    /// Messages and bytes in and out, round-trip time.
    pub(crate) counters: LinkCounters,
}

impl RouteLink {
    /// A link for a connection whose handshake is done.
    pub(crate) fn new(
        rid: u64,
        addrs: (SocketAddr, SocketAddr),
        max_pending: usize,
        solicited: bool,
        configured: bool,
        peer: RouteInfo,
    ) -> Self {
        Self {
            rid,
            addr: addrs.0,
            local: addrs.1,
            started: SystemTime::now(),
            outbound: Outbound::new(max_pending),
            solicited,
            configured,
            peer: RwLock::new(peer),
            registered: AtomicBool::new(false),
            subs: Mutex::new(HashMap::new()),
            counters: LinkCounters::default(),
        }
    }

    /// A copy of the peer's INFO.
    pub(crate) fn peer(&self) -> RouteInfo {
        locks::read(&self.peer).clone()
    }

    /// The peer's server id.
    pub(crate) fn peer_id(&self) -> String {
        locks::read(&self.peer).server_id.clone()
    }

    /// Replaces the peer's INFO (an update it sent about itself).
    pub(crate) fn set_peer(&self, info: RouteInfo) {
        *locks::write(&self.peer) = info;
    }

    /// Marks it registered in the peers table.
    pub(crate) fn set_registered(&self) {
        self.registered.store(true, Ordering::Release);
    }

    /// True while it is in the peers table.
    pub(crate) fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// The id of the server that dialled this connection (the duplicate rule keeps the
    /// route dialled by the greater id).
    pub(crate) fn dialler_id<'a>(&self, own_id: &'a str, peer_id: &'a str) -> &'a str {
        if self.solicited { own_id } else { peer_id }
    }
}

impl Link for RouteLink {
    fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// `"<addr> - rid:<n>"`, as nats-server prefixes route log lines.
    fn log_prefix(&self) -> String {
        format!("{} - rid:{}", self.addr, self.rid)
    }

    fn trace_conn(&self) -> Conn {
        let name = locks::read(&self.peer).server_name.clone();
        Conn::new(Kind::Route, self.rid, name)
    }
}

crate::link::link_subscriber!(RouteLink, |_l| 0);
