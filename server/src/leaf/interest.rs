//! Interest over leaf-node links, per account ([`LeafAccount`], the account router's
//! [`Remote`] for leaf nodes).
//!
//! A link is told (`LS+`/`LS-`) about every subscription on this side of it: this
//! server's own (reported by the router) and those of the **other** leaf links of the
//! account, so a hub joins its leafs into one subject space (nats-server does the same).
//! The counts are kept per `(subject, queue)` as "local" plus one count per link; a link
//! sees the sum without its own part. A plain subject is announced when that sum leaves 0
//! and withdrawn when it returns there; a queue group is re-announced with its new
//! weight on every change, as nats-server does.
//!
//! Loop detection: each server announces `$LDS.<its loop id>` on every link; the id
//! travels on like any interest, so a server that hears its own id back is in a loop
//! and closes that link (`Loop detected`).
//!
//! Forwarding a message (after local delivery): every link with plain interest gets one
//! `LMSG`; each queue group no local member served goes to one link, drawn in proportion
//! to its weight there. A message never goes back over the link it came in on; one that
//! came from a leaf or a route goes on only for the queue groups the sender named.
//!
//! With routes too: what the links ask for is relayed to the cluster as this server's
//! own interest, and what cluster peers ask for reaches the links the same way
//! ([`crate::router::Relay`]), so a leaf of one cluster member hears the whole cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::{Bytes, BytesMut};
use rill_protocol::route;

use super::link::{LeafLink, LeafSub};
use crate::link::Link;
use crate::link::forward::{add_interest, drop_interest, forward, wanted};
use crate::locks;
use crate::router::{Forwarded, Msg, Origin, Relay, Remote, RemoteFactory, Sublist, Subscription};

/// Subscription counts of one `(subject, queue)`.
#[derive(Debug, Default)]
struct Counts {
    /// This server's subscriptions (queue: members).
    local: u32,
    /// Each link's announced interest (queue: weight), by link id.
    links: HashMap<u64, u32>,
}

impl Counts {
    /// What link `lid` is told: everything but its own part.
    fn seen_by(&self, lid: u64) -> u32 {
        let others: u32 = self
            .links
            .iter()
            .filter(|(id, _)| **id != lid)
            .map(|(_, n)| *n)
            .sum();
        self.local + others
    }

    fn is_empty(&self) -> bool {
        self.local == 0 && self.links.is_empty()
    }
}

/// One account's side of the leaf-node links.
#[derive(Debug)]
pub(crate) struct LeafAccount {
    /// Counts per `(subject, queue)`; changes are sent while it is held, so every link
    /// sees them in order.
    counts: Mutex<HashMap<(Bytes, Option<Bytes>), Counts>>,
    /// The links bound to this account.
    links: RwLock<Vec<Arc<LeafLink>>>,
    /// What the links asked for.
    remote: Sublist<LeafSub>,
    /// Passes what the links ask for on to routes.
    relay: OnceLock<Relay>,
}

/// The `LS+` / `LS-` frame telling a link that `(subject, queue)` now has `count`.
fn frame(subject: &[u8], queue: Option<&[u8]>, count: u32) -> BytesMut {
    let mut buf = BytesMut::new();
    match (queue, count) {
        (_, 0) => route::unsub(&mut buf, b"", subject, queue),
        (Some(q), n) => route::sub(&mut buf, b"", subject, Some((q, n))),
        (None, _) => route::sub(&mut buf, b"", subject, None),
    }
    buf
}

impl LeafAccount {
    /// An account's leaf side, announcing `loop_subject` (`$LDS.<id>`) as its own.
    pub(crate) fn new(loop_subject: &str) -> Self {
        let mut counts = HashMap::new();
        counts.insert(
            (Bytes::copy_from_slice(loop_subject.as_bytes()), None),
            Counts {
                local: 1,
                links: HashMap::new(),
            },
        );
        Self {
            counts: Mutex::new(counts),
            links: RwLock::new(Vec::new()),
            remote: Sublist::new(),
            relay: OnceLock::new(),
        }
    }

    /// Adds a link whose handshake is done and sends it everything it should know.
    pub(crate) fn join(&self, link: &Arc<LeafLink>) {
        let counts = locks::lock(&self.counts);
        locks::write(&self.links).push(Arc::clone(link));
        let mut buf = BytesMut::new();
        for ((subject, queue), c) in counts.iter() {
            let n = c.seen_by(link.lid);
            if n > 0 && link.may_ask(subject) {
                buf.extend_from_slice(&frame(subject, queue.as_deref(), n));
            }
        }
        if !buf.is_empty() {
            link.send(&buf);
        }
    }

    /// Removes a closed link and the interest it carried (the other links are told).
    pub(crate) fn leave(&self, link: &Arc<LeafLink>) {
        locks::write(&self.links).retain(|l| !Arc::ptr_eq(l, link));
        let subs: Vec<_> = locks::lock(&link.subs).drain().collect();
        for ((subject, queue), entry) in subs {
            self.drop_entry(&subject, queue.as_ref(), &entry);
            self.change(link.lid, &subject, queue.as_ref(), 0);
            self.relay(&subject, queue.as_ref(), false);
        }
    }

    /// Tells the other kinds of link (routes) that a link's interest came or went.
    fn relay(&self, subject: &Bytes, queue: Option<&Bytes>, added: bool) {
        if let Some(relay) = self.relay.get() {
            relay.interest(subject, queue, added);
        }
    }

    /// The link `link` wants `subject` (for `queue`, with `weight` members).
    pub(crate) fn add_remote(
        &self,
        link: &Arc<LeafLink>,
        subject: Bytes,
        queue: Option<Bytes>,
        weight: u32,
    ) {
        let Ok(text) = std::str::from_utf8(&subject) else {
            return;
        };
        if rill_protocol::subject::validate_filter(text).is_err() || !link.may_serve(&subject) {
            return;
        }
        let key = (subject.clone(), queue.clone());
        let new = add_interest(
            &self.remote,
            &link.subs,
            key,
            link,
            (text, queue.as_ref(), weight),
        );
        self.change(link.lid, &subject, queue.as_ref(), weight.max(1));
        if new {
            self.relay(&subject, queue.as_ref(), true);
        }
    }

    /// The link `link` no longer wants `subject` (for `queue`).
    pub(crate) fn remove_remote(&self, link: &LeafLink, subject: Bytes, queue: Option<Bytes>) {
        let removed = locks::lock(&link.subs).remove(&(subject.clone(), queue.clone()));
        if let Some(entry) = removed {
            self.drop_entry(&subject, queue.as_ref(), &entry);
            self.change(link.lid, &subject, queue.as_ref(), 0);
            self.relay(&subject, queue.as_ref(), false);
        }
    }

    fn drop_entry(&self, subject: &[u8], queue: Option<&Bytes>, entry: &LeafSub) {
        drop_interest(&self.remote, subject, queue, entry);
    }

    /// Sets link `from`'s part of `(subject, queue)` to `n` and tells the other links
    /// what changed for them.
    fn change(&self, from: u64, subject: &Bytes, queue: Option<&Bytes>, n: u32) {
        let key = (subject.clone(), queue.cloned());
        let mut counts = locks::lock(&self.counts);
        let entry = counts.entry(key.clone()).or_default();
        let links = locks::read(&self.links);
        let before: Vec<u32> = links.iter().map(|l| entry.seen_by(l.lid)).collect();
        if n == 0 {
            entry.links.remove(&from);
        } else {
            entry.links.insert(from, n);
        }
        self.tell(&links, &before, entry, subject, queue);
        if entry.is_empty() {
            counts.remove(&key);
        }
    }

    /// Sends each link whose view of `(subject, queue)` changed from `before` its new one.
    fn tell(
        &self,
        links: &[Arc<LeafLink>],
        before: &[u32],
        entry: &Counts,
        subject: &[u8],
        queue: Option<&Bytes>,
    ) {
        for (link, old) in links.iter().zip(before) {
            let new = entry.seen_by(link.lid);
            let announce = match queue {
                None => (*old == 0) != (new == 0),
                Some(_) => *old != new,
            };
            if announce && link.may_ask(subject) {
                link.send(&frame(subject, queue.map(|q| &q[..]), new));
            }
        }
    }
}

impl Remote for LeafAccount {
    fn interest(&self, sub: &Subscription, added: bool) {
        let key = (sub.subject.clone(), sub.queue.clone());
        let mut counts = locks::lock(&self.counts);
        let entry = counts.entry(key.clone()).or_default();
        let links = locks::read(&self.links);
        let before: Vec<u32> = links.iter().map(|l| entry.seen_by(l.lid)).collect();
        entry.local = if added {
            entry.local + 1
        } else {
            entry.local.saturating_sub(1)
        };
        self.tell(&links, &before, entry, &sub.subject, sub.queue.as_ref());
        if entry.is_empty() {
            counts.remove(&key);
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
        let came_in = match origin {
            Origin::Leaf(lid) => lid,
            Origin::Local | Origin::Import | Origin::Route => 0,
        };
        forward(
            &self.remote,
            msg,
            (served, named),
            (|l: &LeafLink| l.lid == came_in, LeafLink::may_send),
            b"",
        )
    }

    fn has_interest(&self, subject: &[u8]) -> bool {
        wanted(&self.remote, subject, LeafLink::may_send)
    }
}

/// Makes each account's [`LeafAccount`] and keeps them by name.
#[derive(Debug)]
pub(crate) struct LeafAccounts {
    loop_subject: String,
    accounts: Mutex<HashMap<String, Arc<LeafAccount>>>,
}

impl LeafAccounts {
    pub(crate) fn new(loop_subject: String) -> Self {
        Self {
            loop_subject,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// The leaf side of `account`, made on first use (the router tells it of the
    /// subscriptions that existed before, when it is attached).
    fn make(&self, account: &str) -> (Arc<LeafAccount>, bool) {
        let mut accounts = locks::lock(&self.accounts);
        if let Some(a) = accounts.get(account) {
            return (Arc::clone(a), false);
        }
        let a = Arc::new(LeafAccount::new(&self.loop_subject));
        accounts.insert(account.to_string(), Arc::clone(&a));
        (a, true)
    }

    /// The leaf side of `account`, if it exists.
    pub(crate) fn get(&self, account: &str) -> Option<Arc<LeafAccount>> {
        locks::lock(&self.accounts).get(account).cloned()
    }
}

impl RemoteFactory for LeafAccounts {
    fn remote_for(&self, account: &str) -> Arc<dyn Remote> {
        let (leaf, _) = self.make(account);
        leaf as Arc<dyn Remote>
    }
}
