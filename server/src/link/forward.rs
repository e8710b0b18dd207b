//! Forwarding to links, shared by routes and leaf nodes: the entries of the remote
//! interest sublists ([`RemoteSub`]: this link wants this subject, for a queue group
//! with this weight), the choice of links for one message ([`forward`]: every link with
//! plain interest, one link per queue group drawn by weight), and queueing one message
//! per target link with the queue groups it serves ([`Targets`]).
//!
//! A JetStream push delivery is routed by its deliver subject while it shows the stored
//! message's subject ([`Msg::routing`]). Over a link it travels, as with nats-server,
//! under its deliver subject with the stored subject after an `@` in its ack reply
//! (`LMSG $JS.S.x $JS.ACK.<...>@orders.new`); the receiving side turns it back
//! ([`arrived`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rand::RngExt;
use rill_protocol::route::{self, MsgHead};

use super::Link;
use crate::client::Pushed;
use crate::locks;
use crate::router::{Forwarded, Msg, Sublist, Subscriber};

/// The reply prefix of JetStream acks: only such replies carry a stored subject.
const JS_ACK: &str = "$JS.ACK.";

/// One entry of an account's remote interest: `link` wants messages on a subject (for
/// a queue group: with this weight, the group's member count behind the link).
#[derive(Debug)]
pub(crate) struct RemoteSub<L> {
    pub(crate) link: Arc<L>,
    pub(crate) weight: Arc<AtomicU32>,
}

impl<L> Clone for RemoteSub<L> {
    fn clone(&self) -> Self {
        Self {
            link: Arc::clone(&self.link),
            weight: Arc::clone(&self.weight),
        }
    }
}

/// Entries compare by identity (a sublist removes exactly the entry it was given).
impl<L> PartialEq for RemoteSub<L> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.link, &other.link) && Arc::ptr_eq(&self.weight, &other.weight)
    }
}

/// Records that `link` wants `subject` (for `queue`, with `weight` members): a new entry
/// goes into `remote` and the link's `subs` under `key`; a known one takes the new weight.
/// True for a new entry.
pub(crate) fn add_interest<K: Eq + Hash, L>(
    remote: &Sublist<RemoteSub<L>>,
    subs: &Mutex<HashMap<K, RemoteSub<L>>>,
    key: K,
    link: &Arc<L>,
    (subject, queue, weight): (&str, Option<&Bytes>, u32),
) -> bool {
    let weight = weight.max(1);
    let mut subs = locks::lock(subs);
    if let Some(existing) = subs.get(&key) {
        existing.weight.store(weight, Ordering::Relaxed);
        return false;
    }
    let entry = RemoteSub {
        link: Arc::clone(link),
        weight: Arc::new(AtomicU32::new(weight)),
    };
    remote.insert(subject, queue, entry.clone());
    subs.insert(key, entry);
    true
}

/// Takes `entry` for `subject`/`queue` out of `remote`.
pub(crate) fn drop_interest<L>(
    remote: &Sublist<RemoteSub<L>>,
    subject: &[u8],
    queue: Option<&Bytes>,
    entry: &RemoteSub<L>,
) {
    // The link decoders refuse interest that is not text.
    if let Ok(text) = std::str::from_utf8(subject) {
        remote.remove(text, queue, entry);
    }
}

/// One member of `members` (live links not `skip`ped), drawn in proportion to its weight.
pub(crate) fn pick_weighted<L: Link>(
    members: &[RemoteSub<L>],
    skip: impl Fn(&L) -> bool,
) -> Option<&RemoteSub<L>> {
    let live = || {
        members
            .iter()
            .filter(|m| !m.link.is_closed() && !skip(&m.link))
    };
    let total: u64 = live()
        .map(|m| u64::from(m.weight.load(Ordering::Relaxed)))
        .sum();
    if total == 0 {
        return None;
    }
    let mut at = rand::rng().random_range(0..total);
    live().find(|m| {
        let w = u64::from(m.weight.load(Ordering::Relaxed));
        if at < w {
            return true;
        }
        at -= w;
        false
    })
}

/// Sends `msg` to the links of `remote` that want it: every link with plain interest,
/// and for each queue group with members behind links, not `served` here and `named`
/// by the sender (all when `None`), one link drawn by weight. Links `skip` says are
/// left out (the one the message came in on); `may_send` filters by the link's deny
/// lists. `account` is the account token of route frames (empty on leaf links).
pub(crate) fn forward<L: Link>(
    remote: &Sublist<RemoteSub<L>>,
    msg: &Msg<'_>,
    (served, named): (&[&[u8]], Option<&[&[u8]]>),
    (skip, may_send): (impl Fn(&L) -> bool, impl Fn(&L, &[u8]) -> bool),
    account: &[u8],
) -> Forwarded {
    let subject = msg.routing().as_bytes();
    let result = remote.matches(subject);
    if result.is_empty() {
        return Forwarded::default();
    }
    let mut targets = Targets::new();
    for entry in &result.plain {
        if !skip(&entry.link) && may_send(&entry.link, subject) {
            targets.add(&entry.link);
        }
    }
    for (name, members) in &result.queues {
        let wanted = named.is_none_or(|n| n.contains(&&name[..]));
        if !wanted || served.contains(&&name[..]) {
            continue;
        }
        if let Some(entry) = pick_weighted(members, &skip)
            && may_send(&entry.link, subject)
        {
            targets.add_queue(&entry.link, name);
        }
    }
    targets.send(account, msg)
}

/// True when a live link of `remote` wants messages on the literal `subject` and
/// `may_send` lets them out.
pub(crate) fn wanted<L: Link>(
    remote: &Sublist<RemoteSub<L>>,
    subject: &[u8],
    may_send: impl Fn(&L, &[u8]) -> bool,
) -> bool {
    let result = remote.matches(subject);
    let mut entries = result
        .plain
        .iter()
        .chain(result.queues.iter().flat_map(|(_, m)| m));
    entries.any(|e| !e.link.is_closed() && may_send(&e.link, subject))
}

/// A message as it came over a link: a JetStream push delivery (an ack reply with
/// `@<subject>`) is routed by the subject it came on and shows the one after the `@`.
/// Link messages are frames ([`Msg::from_publish`]), so every part stays in the frame.
pub(crate) fn arrived(msg: Msg<'_>) -> Msg<'_> {
    let Some(reply) = msg.reply.filter(|r| r.starts_with(JS_ACK)) else {
        return msg;
    };
    let Some(at) = reply.rfind('@') else {
        return msg;
    };
    if at + 1 == reply.len() {
        return msg;
    }
    let mut msg = msg;
    msg.routed_by = Some(msg.subject);
    msg.subject = &reply[at + 1..];
    msg.reply = Some(&reply[..at]);
    msg
}

/// The links one message goes to, each once, with the queue groups it serves there.
pub(crate) struct Targets<'a, L> {
    list: Vec<(&'a Arc<L>, Vec<&'a [u8]>)>,
}

impl<'a, L: Link> Targets<'a, L> {
    pub(crate) fn new() -> Self {
        Self { list: Vec::new() }
    }

    /// `link` gets the message (plain interest).
    pub(crate) fn add(&mut self, link: &'a Arc<L>) -> usize {
        if let Some(i) = self.list.iter().position(|(l, _)| Arc::ptr_eq(l, link)) {
            return i;
        }
        self.list.push((link, Vec::new()));
        self.list.len() - 1
    }

    /// `link` gets the message for queue group `name`.
    pub(crate) fn add_queue(&mut self, link: &'a Arc<L>, name: &'a [u8]) {
        let i = self.add(link);
        self.list[i].1.push(name);
    }

    /// Queues the message on every target (`account`: the account token of route
    /// frames, empty on leaf links); the links that took it.
    pub(crate) fn send(self, account: &[u8], msg: &Msg<'_>) -> Forwarded {
        let mut forwarded = Forwarded::default();
        for (link, queues) in &self.list {
            match send_msg(&***link, account, msg, queues) {
                Pushed::Queued => forwarded.links += 1,
                Pushed::Pressure => {
                    forwarded.links += 1;
                    if forwarded.backlogged.is_none() {
                        forwarded.backlogged = Some(Arc::clone(link) as Arc<dyn Subscriber>);
                    }
                }
                Pushed::Closed | Pushed::SlowConsumer => {}
            }
        }
        forwarded
    }
}

/// Queues `msg` on `link` with the queue groups it carries (a push delivery under its
/// deliver subject, with its stored subject after the ack reply).
fn send_msg<L: Link>(link: &L, account: &[u8], msg: &Msg<'_>, queues: &[&[u8]]) -> Pushed {
    // A traced message goes with the hop the other server receives it as.
    let hopped;
    let msg = &match msg.trace {
        Some(trace) => {
            hopped = trace.egress_link(link.trace_conn(), msg.headers.unwrap_or_default());
            msg.with_headers(&hopped)
        }
        None => *msg,
    };
    let joined;
    let (subject, reply) = match (msg.routed_by, msg.reply) {
        (Some(route), Some(r)) if route != msg.subject && r.starts_with(JS_ACK) => {
            joined = [r, "@", msg.subject].concat();
            (route, Some(&joined[..]))
        }
        (Some(route), reply) => (route, reply),
        (None, reply) => (msg.subject, reply),
    };
    let head = MsgHead {
        account,
        subject: subject.as_bytes(),
        reply: reply.map(str::as_bytes),
        queues,
        hdr_len: msg.headers.map(<[u8]>::len),
        total_len: msg.size(),
    };
    let pushed = link
        .outbound()
        .push_frame(head.len_estimate(), msg, true, |tail| {
            route::msg_head(tail, &head)
        });
    if matches!(pushed, Pushed::Queued | Pushed::Pressure) {
        link.counters().add_out(msg.size() as u64);
    }
    pushed
}
