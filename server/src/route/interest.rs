//! Interest across the cluster, per account ([`AccountLinks`], the account router's
//! [`Remote`]):
//! - **local interest**, what we tell peers: a count per `(subject, queue)` of this
//!   server's subscriptions. A plain subject is announced (`RS+`) when its count leaves 0
//!   and withdrawn (`RS-`) when it returns there; a queue group is re-announced with its
//!   new weight (member count) on every change, and withdrawn at 0, as nats-server does.
//!   A new route gets every entry at once ([`AccountLinks::announce_to`]).
//! - **remote interest**, what peers told us: a [`Sublist`] of [`RemoteSub`] entries, each
//!   naming the route that wants the subject (and a queue group's weight there).
//!
//! Forwarding a message from a client or an internal publisher: every route with plain
//! interest gets one `RMSG`; each queue group that no local member served goes to one
//! route, picked at random in proportion to the group's weight on each peer, and its
//! name rides in that route's `RMSG` (so the receiver hands it to one of its members).
//! A message that arrived over a route is never forwarded to another route: the mesh is
//! full, one hop reaches everyone. A message from a leaf node goes to the queue groups
//! the leaf named only.
//!
//! What peers ask for is relayed to the other kinds of link (leaf nodes), and what those
//! relay in counts as this server's own interest ([`crate::router::Relay`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use rill_protocol::route;

use super::link::{RemoteSub, RouteLink};
use super::peers::Peers;
use crate::link::Link;
use crate::link::forward::{add_interest, drop_interest, forward, wanted};
use crate::locks;
use crate::router::{Forwarded, Msg, Origin, Relay, Remote, RemoteFactory, Sublist, Subscription};

/// One account's side of the cluster.
#[derive(Debug)]
pub(crate) struct AccountLinks {
    account: Bytes,
    peers: Arc<Peers>,
    /// This server's subscriptions per `(subject, queue)`.
    local: Mutex<HashMap<(Bytes, Option<Bytes>), u32>>,
    /// What peers asked for.
    remote: Sublist<RemoteSub>,
    /// Passes what peers ask for on to leaf nodes.
    relay: OnceLock<Relay>,
}

impl AccountLinks {
    pub(crate) fn new(account: &str, peers: Arc<Peers>) -> Self {
        Self {
            account: Bytes::copy_from_slice(account.as_bytes()),
            peers,
            local: Mutex::new(HashMap::new()),
            remote: Sublist::new(),
            relay: OnceLock::new(),
        }
    }

    /// The frame announcing `(subject, queue)` with `count` local subscriptions.
    fn frame(&self, subject: &[u8], queue: Option<&[u8]>, count: u32) -> BytesMut {
        let mut buf = BytesMut::new();
        match (queue, count) {
            (_, 0) => route::unsub(&mut buf, &self.account, subject, queue),
            (Some(q), n) => route::sub(&mut buf, &self.account, subject, Some((q, n))),
            (None, _) => route::sub(&mut buf, &self.account, subject, None),
        }
        buf
    }

    /// Sends every local interest entry to a new route.
    pub(crate) fn announce_to(&self, link: &RouteLink) {
        let local = locks::lock(&self.local);
        let mut buf = BytesMut::new();
        for ((subject, queue), count) in local.iter() {
            buf.extend_from_slice(&self.frame(subject, queue.as_deref(), *count));
        }
        if !buf.is_empty() {
            link.send(&buf);
        }
    }

    /// The peer behind `link` wants `subject` (for `queue`, with `weight` members).
    pub(crate) fn add_remote(
        &self,
        link: &Arc<RouteLink>,
        subject: Bytes,
        queue: Option<Bytes>,
        weight: u32,
    ) {
        let Ok(text) = std::str::from_utf8(&subject) else {
            return;
        };
        if rill_protocol::subject::validate_filter(text).is_err() {
            return;
        }
        let key = (self.account.clone(), subject.clone(), queue.clone());
        let new = add_interest(
            &self.remote,
            &link.subs,
            key,
            link,
            (text, queue.as_ref(), weight),
        );
        if new && let Some(relay) = self.relay.get() {
            relay.interest(&subject, queue.as_ref(), true);
        }
    }

    /// The peer behind `link` no longer wants `subject` (for `queue`).
    pub(crate) fn remove_remote(&self, link: &RouteLink, subject: Bytes, queue: Option<Bytes>) {
        let key = (self.account.clone(), subject, queue);
        let removed = locks::lock(&link.subs).remove(&key);
        if let Some(entry) = removed {
            self.remote_drop(&key.1, key.2.as_ref(), &entry);
        }
    }

    /// Takes one entry out of the remote interest (the route closed or withdrew it).
    pub(crate) fn remote_drop(&self, subject: &Bytes, queue: Option<&Bytes>, entry: &RemoteSub) {
        drop_interest(&self.remote, subject, queue, entry);
        if let Some(relay) = self.relay.get() {
            relay.interest(subject, queue, false);
        }
    }
}

/// True for a JetStream API subscription of this server's own, which peers must not
/// hear of: `$JS.API.…` and a domain's `$JS.<domain>.API.>`. Every server answers its
/// own clients' API requests (those about a stream another server holds travel to it,
/// `jetstream::cluster::forward`), so none is announced to routes. The rest of
/// JetStream's subscriptions are announced as nats-server announces them: a consumer's
/// acks, flow-control answers and pull requests (`$JS.ACK.…`, `$JS.FC.…`,
/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`), a stream's direct gets
/// (`$JS.API.DIRECT.GET.<stream>…`, a queue group of its replicas) and a source's
/// deliveries (`$JS.S.…`, `$JS.M.…`) come from clients and consumers on other members.
fn per_server(sub: &Subscription) -> bool {
    const SERVED_WHERE_THEY_LIVE: [&[u8]; 2] =
        [b"$JS.API.CONSUMER.MSG.NEXT.", b"$JS.API.DIRECT.GET."];
    let subject = &sub.subject[..];
    let Some(rest) = subject.strip_prefix(b"$JS.") else {
        return false;
    };
    let api = rest.starts_with(b"API.") || domain_api(rest);
    sub.owner.owner_id() == 0
        && api
        && !SERVED_WHERE_THEY_LIVE
            .iter()
            .any(|p| subject.starts_with(p))
}

/// `<domain>.API.…` (after `$JS.`), the first token not one of JetStream's own
/// (a stream named `API` appears in the second token of its acks).
fn domain_api(rest: &[u8]) -> bool {
    const OWN: [&[u8]; 5] = [b"ACK", b"FC", b"S", b"M", b"EVENT"];
    let mut tokens = rest.splitn(3, |b| *b == b'.');
    let first = tokens.next().unwrap_or_default();
    tokens.next() == Some(b"API") && !OWN.contains(&first)
}

impl Remote for AccountLinks {
    fn interest(&self, sub: &Subscription, added: bool) {
        if per_server(sub) {
            return;
        }
        let key = (sub.subject.clone(), sub.queue.clone());
        let mut local = locks::lock(&self.local);
        let count = local.entry(key).or_insert(0);
        let before = *count;
        *count = if added {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        let after = *count;
        if after == 0 {
            local.remove(&(sub.subject.clone(), sub.queue.clone()));
        }
        let announce = match sub.queue {
            None => (before == 0) != (after == 0),
            Some(_) => before != after,
        };
        if announce {
            let frame = self.frame(&sub.subject, sub.queue.as_deref(), after);
            // Sent while holding `local`, so two changes of one subject reach every
            // route in the order they happened.
            self.peers.for_each(|link| link.send(&frame));
        }
    }

    fn attached(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    fn forward(
        &self,
        msg: &Msg<'_>,
        origin: Origin,
        served: &[&[u8]],
        named: Option<&[&[u8]]>,
    ) -> Forwarded {
        if matches!(origin, Origin::Route | Origin::Import) {
            return Forwarded::default();
        }
        forward(
            &self.remote,
            msg,
            (served, named),
            (|_: &RouteLink| false, |_: &RouteLink, _: &[u8]| true),
            &self.account,
        )
    }

    fn has_interest(&self, subject: &[u8]) -> bool {
        wanted(&self.remote, subject, |_, _| true)
    }
}

/// Makes each account's [`AccountLinks`] and keeps them by name (the read loops of routes
/// look them up for `RS+`, `RS-` and `RMSG`).
#[derive(Debug)]
pub(crate) struct Hub {
    peers: Arc<Peers>,
    accounts: Mutex<HashMap<String, Arc<AccountLinks>>>,
}

impl Hub {
    pub(crate) fn new(peers: Arc<Peers>) -> Self {
        Self {
            peers,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// The links of `account`, if it has any (every existing account does).
    pub(crate) fn get(&self, account: &[u8]) -> Option<Arc<AccountLinks>> {
        let name = std::str::from_utf8(account).ok()?;
        locks::lock(&self.accounts).get(name).cloned()
    }

    /// The links of `account`, made now if this server has no such account yet: a peer's
    /// `RS+` is sent once, and the account it names may be created here only later (the
    /// system account is created after the routes start; JWT accounts on first use), so
    /// the interest is kept and the account gets these links when it is created
    /// ([`RemoteFactory::remote_for`]). No account is created here.
    pub(crate) fn get_or_make(&self, account: &[u8]) -> Option<Arc<AccountLinks>> {
        Some(self.links_of(std::str::from_utf8(account).ok()?))
    }

    /// The links of the account called `name`, made on first use.
    fn links_of(&self, name: &str) -> Arc<AccountLinks> {
        let mut accounts = locks::lock(&self.accounts);
        let links = accounts
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(AccountLinks::new(name, Arc::clone(&self.peers))));
        Arc::clone(links)
    }

    /// Every account's links.
    pub(crate) fn all(&self) -> Vec<Arc<AccountLinks>> {
        locks::lock(&self.accounts).values().cloned().collect()
    }
}

impl RemoteFactory for Hub {
    fn remote_for(&self, account: &str) -> Arc<dyn Remote> {
        self.links_of(account) as Arc<dyn Remote>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{Delivery, Subscriber};

    /// An internal (owner 0) or client subscriber.
    #[derive(Debug)]
    struct Owner(u64);

    impl Subscriber for Owner {
        fn owner_id(&self) -> u64 {
            self.0
        }

        fn deliver(&self, _sub: &Subscription, _msg: &Msg<'_>) -> Delivery {
            Delivery::Dropped
        }
    }

    fn kept_here(subject: &'static str, owner: u64) -> bool {
        let sub = Subscription::new(
            Bytes::from_static(b"1"),
            Bytes::from_static(subject.as_bytes()),
            None,
            Arc::new(Owner(owner)),
        );
        per_server(&sub)
    }

    /// A peer's `RS+` for an account this server creates only later (the system
    /// account comes after the routes; the `$NRG.HELLO` of the JetStream meta group was
    /// never forwarded to a peer whose `RS+` arrived first) is kept for that account.
    #[test]
    fn interest_in_an_account_created_later_is_kept() {
        let hub = Hub::new(Arc::new(Peers::default()));
        let addr = "127.0.0.1:1".parse().expect("addr");
        let info = rill_protocol::RouteInfo {
            server_id: "PEER".into(),
            ..Default::default()
        };
        let link = Arc::new(RouteLink::new(1, (addr, addr), 1 << 20, true, true, info));
        assert!(hub.get(b"$SYS").is_none(), "no such account yet");
        let links = hub.get_or_make(b"$SYS").expect("links");
        links.add_remote(&link, Bytes::from_static(b"$NRG.HELLO"), None, 1);
        let remote = hub.remote_for("$SYS");
        assert!(remote.has_interest(b"$NRG.HELLO"));
        assert!(!remote.has_interest(b"$NRG.OTHER"));
    }

    #[test]
    fn only_the_jetstream_api_stays_on_its_server() {
        for api in ["$JS.API.>", "$JS.API.STREAM.>", "$JS.hub.API.>"] {
            assert!(kept_here(api, 0), "{api}");
            assert!(!kept_here(api, 7), "a client's {api}");
        }
        for announced in [
            "$JS.ACK.ORDERS.SHIP.>",
            "$JS.ACK.API.C.>",
            "$JS.FC.ORDERS.PUSH.>",
            "$JS.API.CONSUMER.MSG.NEXT.ORDERS.PULL",
            "$JS.API.DIRECT.GET.KV_CFG",
            "$JS.S.a1b2",
            "$JS.M.a1b2",
            "orders.>",
        ] {
            assert!(!kept_here(announced, 0), "{announced}");
        }
    }
}
