//! The part of a leaf-node connection other tasks reach ([`LeafLink`]): its outbound
//! queue, the account it is bound to, the other side's INFO or CONNECT, the interest
//! the other side registered, its deny lists and the counters `/leafz` shows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use bytes::Bytes;
use rill_protocol::subject;

use crate::client::Outbound;
use crate::link::{Link, LinkCounters};
use crate::router::{Delivery, Msg, Subscriber, Subscription};
use crate::shared::BoxFuture;

/// What the other side asked for: `(subject, queue)`.
pub(crate) type SubKey = (Bytes, Option<Bytes>);

/// One entry of an account's leaf interest: this link wants messages on a subject (for
/// a queue group: with this weight, the group's member count behind the link).
pub(crate) type LeafSub = crate::link::forward::RemoteSub<LeafLink>;

/// Who the other side is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peer {
    /// Its server id.
    pub(crate) server_id: String,
    /// Its server name.
    pub(crate) name: String,
}

/// One leaf-node connection, in either role.
#[derive(Debug)]
pub(crate) struct LeafLink {
    /// Connection id (drawn from the client ids, as nats-server numbers `lid`s).
    pub(crate) lid: u64,
    /// The other side's socket address.
    pub(crate) addr: SocketAddr,
    /// What we send.
    pub(crate) outbound: Outbound,
    /// We dialled it (this server is the leaf).
    pub(crate) solicited: bool,
    /// The local account the link is bound to.
    pub(crate) account: String,
    /// The other side.
    pub(crate) peer: Peer,
    /// Subjects we do not send (nor announce interest for): the remote's `deny_exports`.
    deny_pub: Vec<String>,
    /// Subjects we do not take (nor ask for): the remote's `deny_imports`.
    deny_sub: Vec<String>,
    /// What the other side asked for, to update weights and clean up when the link goes.
    pub(crate) subs: Mutex<HashMap<SubKey, LeafSub>>,
    /// Messages and bytes in and out, round-trip time.
    pub(crate) counters: LinkCounters,
}

/// How a link is set up (everything but the socket).
#[derive(Debug)]
pub(crate) struct LinkSetup {
    pub(crate) lid: u64,
    pub(crate) addr: SocketAddr,
    pub(crate) solicited: bool,
    pub(crate) account: String,
    pub(crate) peer: Peer,
    pub(crate) max_pending: usize,
    pub(crate) deny_exports: Vec<String>,
    pub(crate) deny_imports: Vec<String>,
}

impl LeafLink {
    /// A link for a connection whose handshake is done.
    pub(crate) fn new(setup: LinkSetup) -> Self {
        Self {
            lid: setup.lid,
            addr: setup.addr,
            outbound: Outbound::new(setup.max_pending),
            solicited: setup.solicited,
            account: setup.account,
            peer: setup.peer,
            deny_pub: setup.deny_exports,
            deny_sub: setup.deny_imports,
            subs: Mutex::new(HashMap::new()),
            counters: LinkCounters::default(),
        }
    }

    /// True when messages on `subject` may go out on this link.
    pub(crate) fn may_send(&self, subject: &[u8]) -> bool {
        !denied(&self.deny_pub, subject)
    }

    /// True when messages on `subject` may come in on this link.
    pub(crate) fn may_take(&self, subject: &[u8]) -> bool {
        !denied(&self.deny_sub, subject)
    }

    /// True when interest in `filter` may be announced on this link: messages on it
    /// may come in.
    pub(crate) fn may_ask(&self, filter: &[u8]) -> bool {
        let Ok(filter) = std::str::from_utf8(filter) else {
            return false;
        };
        !self.deny_sub.iter().any(|d| subject::is_subset(filter, d))
    }

    /// True when the other side's interest in `filter` is honoured: messages on it may
    /// go out.
    pub(crate) fn may_serve(&self, filter: &[u8]) -> bool {
        let Ok(filter) = std::str::from_utf8(filter) else {
            return false;
        };
        !self.deny_pub.iter().any(|d| subject::is_subset(filter, d))
    }
}

fn denied(list: &[String], subject: &[u8]) -> bool {
    if list.is_empty() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(subject) else {
        return true;
    };
    list.iter().any(|d| subject::matches(d, text))
}

impl Link for LeafLink {
    fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// `"<addr> - lid:<n>"`, as nats-server prefixes leaf-node log lines.
    fn log_prefix(&self) -> String {
        format!("{} - lid:{}", self.addr, self.lid)
    }
}

/// A link is what a backlogged publisher waits on when its queue is past the stall
/// threshold. Nothing is delivered to it through a subscription: leaf interest lives
/// in the leaf layer.
impl Subscriber for LeafLink {
    fn owner_id(&self) -> u64 {
        self.lid
    }

    fn deliver(&self, _sub: &Subscription, _msg: &Msg<'_>) -> Delivery {
        Delivery::Dropped
    }

    fn drained(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.outbound.drained())
    }

    fn is_alive(&self) -> bool {
        !self.outbound.is_closed()
    }
}
