//! Forwarding to links, shared by routes and leaf nodes: the entries of the remote
//! interest sublists ([`RemoteSub`]: this link wants this subject, for a queue group
//! with this weight), the weighted pick of one link for a queue group, and queueing one
//! message per target link with the queue groups it serves ([`Targets`]).

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
    let text = std::str::from_utf8(subject).unwrap_or_default();
    remote.remove(text, queue, entry);
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

/// Queues `msg` on `link` with the queue groups it carries.
fn send_msg<L: Link>(link: &L, account: &[u8], msg: &Msg<'_>, queues: &[&[u8]]) -> Pushed {
    let head = MsgHead {
        account,
        subject: msg.subject,
        reply: msg.reply,
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
