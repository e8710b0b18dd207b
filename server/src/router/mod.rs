//! Message routing: subscriptions in a [`Sublist`], and delivery of a published
//! message to every matching plain subscription plus one member of each queue group.
//!
//! The router does not know what a connection is: a subscription belongs to a
//! [`Subscriber`] (a client connection, or an internal service such as the
//! JetStream API), which the router calls to deliver. Delivery never blocks:
//! subscribers queue the message or drop themselves as slow consumers.
//!
//! Links to other servers (routes, leaf nodes) attach through [`remote`]: the router
//! reports subscription changes to them and hands them each message after local
//! delivery; without one attached it costs one atomic load.

pub mod mapping;
pub mod remote;
pub mod sublist;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
pub use bytestring::ByteString;
use rand::RngExt;
use rill_protocol::Publish;

pub use mapping::Mappings;
pub use remote::{Forwarded, Links, Origin, Relay, Remote, RemoteFactory};
pub use sublist::{MatchResult, Sublist};

use crate::shared::BoxFuture;
use crate::trace::record::Trace;

/// A message as it is routed: borrowed parts, readable as slices and shareable as
/// `Bytes` without copying. Its subjects are text: every wire's decoder refuses others
/// and internal publishers name theirs with [`ByteString`].
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// The literal subject it was published to.
    pub subject: &'a str,
    /// Reply subject, if any.
    pub reply: Option<&'a str>,
    /// Raw header block, if any.
    pub headers: Option<&'a [u8]>,
    /// Payload.
    pub payload: &'a [u8],
    /// The subject a JetStream push delivery is routed by (its deliver subject) while
    /// it shows the stored message's subject; `None` for an ordinary publish, routed
    /// by `subject`. A stream import maps and routes by it (see [`Router::deliver_routed`]).
    pub routed_by: Option<&'a str>,
    /// The owner id of the local connection that published it, as [`Router::publish`]
    /// saw it (0 for internal publishers and messages from other servers): the system
    /// account's `$SYS.REQ.USER.INFO` answers the requester with it.
    pub publisher: u64,
    /// The record of a traced message (`Nats-Trace-Dest`), which the subscribers and
    /// links it reaches add their events to (see [`crate::trace`]).
    pub trace: Option<&'a Arc<Trace>>,
    source: Source<'a>,
}

/// Where a message's parts live, to hand them out as `Bytes`.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// Every part is a slice of this one buffer (a client's PUB frame): a message
    /// costs one reference count, and parts are shared only when a subscriber keeps them.
    Frame(&'a Bytes),
    /// Each part is its own buffer (internal publishers).
    Parts {
        subject: &'a ByteString,
        reply: Option<&'a ByteString>,
        headers: Option<&'a Bytes>,
        payload: &'a Bytes,
    },
}

impl<'a> Msg<'a> {
    /// A message from separately owned parts.
    pub fn new(
        subject: &'a ByteString,
        reply: Option<&'a ByteString>,
        headers: Option<&'a Bytes>,
        payload: &'a Bytes,
    ) -> Self {
        Self {
            subject,
            reply: reply.map(|r| &r[..]),
            headers: headers.map(|h| &h[..]),
            payload,
            routed_by: None,
            publisher: 0,
            trace: None,
            source: Source::Parts {
                subject,
                reply,
                headers,
                payload,
            },
        }
    }

    /// A client's published message, every part in its frame.
    pub fn from_publish(publish: &'a Publish) -> Self {
        Self {
            subject: publish.subject(),
            reply: publish.reply(),
            headers: publish.headers(),
            payload: publish.payload(),
            routed_by: None,
            publisher: 0,
            trace: None,
            source: Source::Frame(publish.frame()),
        }
    }

    /// The same message under another subject, as imports remap it.
    pub fn with_subject(mut self, subject: &'a ByteString) -> Self {
        self.subject = subject;
        if let Source::Parts { subject: s, .. } = &mut self.source {
            *s = subject;
        }
        self
    }

    /// The same message, routed by `route` while it shows its own subject.
    pub fn with_route(mut self, route: &'a str) -> Self {
        self.routed_by = Some(route);
        self
    }

    /// The same message, traced by `trace` (or no longer traced).
    pub fn with_trace(mut self, trace: Option<&'a Arc<Trace>>) -> Self {
        self.trace = trace;
        self
    }

    /// The same message with another header block (a link's `Nats-Trace-Hop`).
    pub fn with_headers(mut self, headers: &'a Bytes) -> Self {
        self.headers = Some(headers);
        if let Source::Parts { headers: h, .. } = &mut self.source {
            *h = Some(headers);
        }
        self
    }

    /// The same message with another reply subject (or none).
    pub fn with_reply(mut self, reply: Option<&'a ByteString>) -> Self {
        self.reply = reply.map(|r| &r[..]);
        if let Source::Parts { reply: r, .. } = &mut self.source {
            *r = reply;
        }
        self
    }

    /// Payload plus header bytes, as nats-server counts message size.
    pub fn size(&self) -> usize {
        self.payload.len() + self.headers.map_or(0, <[u8]>::len)
    }

    /// The subject it is routed by: its deliver subject for a push delivery, else its
    /// own subject.
    pub fn routing(&self) -> &'a str {
        self.routed_by.unwrap_or(self.subject)
    }

    /// The subject, shared.
    pub fn subject_bytes(&self) -> Bytes {
        self.subject_text().into_bytes()
    }

    /// The subject, shared, as text.
    pub fn subject_text(&self) -> ByteString {
        match self.source {
            Source::Parts { subject, .. } => subject.clone(),
            source => source.share_text(self.subject),
        }
    }

    /// The reply subject, shared.
    pub fn reply_bytes(&self) -> Option<Bytes> {
        self.reply_text().map(ByteString::into_bytes)
    }

    /// The reply subject, shared, as text.
    pub fn reply_text(&self) -> Option<ByteString> {
        let reply = self.reply?;
        Some(match self.source {
            Source::Parts { reply: Some(r), .. } => r.clone(),
            source => source.share_text(reply),
        })
    }

    /// The header block, shared.
    pub fn headers_bytes(&self) -> Option<Bytes> {
        let headers = self.headers?;
        Some(match self.source {
            Source::Parts {
                headers: Some(h), ..
            } => h.clone(),
            source => source.share(headers),
        })
    }

    /// The payload, shared.
    pub fn payload_bytes(&self) -> Bytes {
        match self.source {
            Source::Parts { payload, .. } => payload.clone(),
            source => source.share(self.payload),
        }
    }
}

/// A subject kept as bytes by a layer that does not carry text yet (JetStream's stored
/// messages and consumer state, written from text), as text to route by; `None` when it
/// is not UTF-8, which such a message is then not routed for.
pub fn text(subject: &Bytes) -> Option<ByteString> {
    ByteString::try_from(subject.clone()).ok()
}

impl Source<'_> {
    /// `part` as `Bytes`: a shared slice of the frame, or a copy when it is not in it
    /// (a remapped subject).
    fn share(self, part: &[u8]) -> Bytes {
        match self {
            Source::Frame(frame) if contains(frame, part) => frame.slice_ref(part),
            _ => Bytes::copy_from_slice(part),
        }
    }

    /// Text `part` as a [`ByteString`], shared as [`Source::share`] shares bytes.
    fn share_text(self, part: &str) -> ByteString {
        match self {
            // A slice of the frame that is `part`'s own memory: text already.
            Source::Frame(frame) if contains(frame, part.as_bytes()) => {
                ByteString::try_from(frame.slice_ref(part.as_bytes()))
                    .unwrap_or_else(|_| ByteString::from(part))
            }
            _ => ByteString::from(part),
        }
    }
}

/// True when `part` lies inside `buf`'s memory.
fn contains(buf: &[u8], part: &[u8]) -> bool {
    let range = buf.as_ptr_range();
    let start = part.as_ptr();
    range.start <= start && start as usize + part.len() <= range.end as usize
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not delivered: the subscriber is gone or dropped it.
    Dropped,
    /// Queued.
    Queued,
    /// Queued, but the subscriber's backlog is past its stall threshold: the
    /// publisher should wait (bounded) for it to drain (nats-server's fast-producer stall).
    Pressure,
}

/// The outcome of routing one message.
#[derive(Debug, Default)]
pub struct Fanout {
    /// Subscriptions that got the message, plus links to other servers that took it.
    pub delivered: usize,
    /// The first subscriber that answered [`Delivery::Pressure`]: its backlog is
    /// past the stall threshold, and the publisher should wait for [`Subscriber::drained`].
    pub backlogged: Option<Arc<dyn Subscriber>>,
}

impl Fanout {
    fn add(&mut self, sub: &Subscription, d: Delivery) -> bool {
        if d == Delivery::Pressure && self.backlogged.is_none() {
            self.backlogged = Some(Arc::clone(&sub.owner));
        }
        let ok = d != Delivery::Dropped;
        self.delivered += usize::from(ok);
        ok
    }
}

/// How long a subscriber without its own drain signal stalls a publisher, and the
/// longest a publisher waits for a backlogged connection (nats-server's fast-producer
/// stall): bounded, so a stuck reader delays others only briefly and still ends up a
/// slow consumer.
pub const FAST_PRODUCER_STALL: Duration = Duration::from_millis(5);

/// Whoever owns subscriptions: a connection or an internal service.
pub trait Subscriber: Send + Sync + fmt::Debug {
    /// Identity used for `echo: false` and no-responders (a connection's cid; 0 for internal).
    fn owner_id(&self) -> u64;

    /// Delivers `msg` for `sub`.
    fn deliver(&self, sub: &Subscription, msg: &Msg<'_>) -> Delivery;

    /// Called once when `sub` auto-unsubscribed after its last allowed delivery.
    fn auto_unsubscribed(&self, _sub: &Subscription) {}

    /// Resolves once this subscriber's backlog is back under its stall threshold
    /// (or it closed). The publisher bounds the wait. The default waits a fixed
    /// moment, for subscribers without a drain signal.
    fn drained(&self) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(FAST_PRODUCER_STALL))
    }

    /// The longest a publisher waits for [`Subscriber::drained`] before it reads on.
    /// Connections keep nats-server's short stall; a stream, which stores what it is
    /// sent instead of dropping it, holds its publishers back for longer.
    fn max_stall(&self) -> Duration {
        FAST_PRODUCER_STALL
    }

    /// False while the owner is closing: queue groups then pick another member.
    fn is_alive(&self) -> bool {
        true
    }

    /// True when a message on `subject` delivered to this subscriber would reach
    /// someone. A forwarder into another account (a stream import) answers for the
    /// subscribers there, as nats-server's shadow subscriptions exist only while the
    /// importer has one: a push consumer then waits for the importing client instead
    /// of pushing into an import nobody listens to yet.
    fn reaches(&self, _subject: &[u8]) -> bool {
        true
    }

    /// True when it records its part in a traced message itself (an egress to a client,
    /// an import, a stream). Other subscribers get no `Nats-Trace-Only` messages.
    fn follows_traces(&self) -> bool {
        false
    }
}

/// One subscription.
#[derive(Debug)]
pub struct Subscription {
    /// The subscriber's id for it.
    pub sid: Bytes,
    /// Filter subject.
    pub subject: Bytes,
    /// Queue group, if any.
    pub queue: Option<Bytes>,
    /// Who receives its messages.
    pub owner: Arc<dyn Subscriber>,
    /// Answers this server's clients only: not reported to links to other servers.
    local: bool,
    /// Deliveries after which it auto-unsubscribes; 0 for none.
    max: AtomicU64,
    delivered: AtomicU64,
    removed: AtomicBool,
}

impl Subscription {
    /// A new subscription (not yet in any sublist).
    pub fn new(
        sid: Bytes,
        subject: Bytes,
        queue: Option<Bytes>,
        owner: Arc<dyn Subscriber>,
    ) -> Arc<Self> {
        Self::build(sid, subject, queue, owner, false)
    }

    /// A subscription that serves this server's clients only: other servers are not
    /// told about it (a per-server service such as the JetStream API while JetStream
    /// is not clustered).
    pub fn new_local(
        sid: Bytes,
        subject: Bytes,
        queue: Option<Bytes>,
        owner: Arc<dyn Subscriber>,
    ) -> Arc<Self> {
        Self::build(sid, subject, queue, owner, true)
    }

    fn build(
        sid: Bytes,
        subject: Bytes,
        queue: Option<Bytes>,
        owner: Arc<dyn Subscriber>,
        local: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            sid,
            subject,
            queue,
            owner,
            local,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        })
    }

    /// The filter subject as text (validated before the subscription was made).
    pub fn subject_str(&self) -> &str {
        std::str::from_utf8(&self.subject).unwrap_or_default()
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Auto-unsubscribe limit (0 = none).
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// True when other servers are not told about it.
    pub fn is_local(&self) -> bool {
        self.local
    }
}

/// Subscriptions compare by identity in the sublist.
#[derive(Debug, Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The routing table of one account.
#[derive(Debug, Default)]
pub struct Router {
    subs: Sublist<SubRef>,
    /// Links to other servers (routes, leaf nodes), created when the first attaches.
    remote: OnceLock<Links>,
    /// Held shared by every subscription change (trie and links together) and
    /// exclusively while a link is attached, so a new link hears each existing
    /// subscription exactly once.
    changes: std::sync::RwLock<()>,
    mappings: Mappings,
    /// Woken on every new subscription (push consumers waiting for their subscriber).
    subscribed: tokio::sync::Notify,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// The account's subject mappings (applied by publishers before [`Router::publish`]).
    pub fn mappings(&self) -> &Mappings {
        &self.mappings
    }

    /// The subscription trie (for monitoring).
    pub fn sublist(&self) -> &Sublist<SubRef> {
        &self.subs
    }

    /// Attaches one kind of link to other servers (each kind once: routes, leaf nodes;
    /// attaching the same one again does nothing); each attached kind hears every
    /// subscription change and every message. It is told at once of the subscriptions
    /// made before it came (internal ones too: imports, MQTT, the system account), so
    /// interest that predates a cluster or leaf link still reaches its peers.
    pub fn attach(&self, remote: Arc<dyn Remote>) {
        let _quiet = crate::locks::write(&self.changes);
        if !self
            .remote
            .get_or_init(Links::default)
            .add(Arc::clone(&remote))
        {
            return;
        }
        self.subs.for_each(|SubRef(sub)| {
            if !sub.local {
                remote.interest(sub, true);
            }
        });
    }

    /// The attached links to other servers, if any.
    pub fn remote(&self) -> Option<&Links> {
        self.remote.get()
    }

    /// Adds a subscription.
    pub fn subscribe(&self, sub: &Arc<Subscription>) {
        let _change = crate::locks::read(&self.changes);
        self.subs.insert(
            sub.subject_str(),
            sub.queue.as_ref(),
            SubRef(Arc::clone(sub)),
        );
        self.tell_remote(sub, true);
        self.subscribed.notify_waiters();
    }

    /// Completes at the next subscription made after this call (not at earlier ones):
    /// create it before checking interest, then await it.
    pub fn subscribed(&self) -> tokio::sync::futures::Notified<'_> {
        self.subscribed.notified()
    }

    /// Removes a subscription; returns whether it was present.
    pub fn unsubscribe(&self, sub: &Arc<Subscription>) -> bool {
        sub.removed.store(true, Ordering::Release);
        let _change = crate::locks::read(&self.changes);
        let removed = self.subs.remove(
            sub.subject_str(),
            sub.queue.as_ref(),
            &SubRef(Arc::clone(sub)),
        );
        if removed {
            self.tell_remote(sub, false);
        }
        removed
    }

    fn tell_remote(&self, sub: &Subscription, added: bool) {
        if let Some(remote) = self.remote.get()
            && !sub.local
        {
            remote.interest(sub, added);
        }
    }

    /// Sets the auto-unsubscribe limit; removes the subscription at once when it
    /// has already delivered that many (as nats-server does). Returns true when removed.
    pub fn auto_unsubscribe(&self, sub: &Arc<Subscription>, max: u64) -> bool {
        sub.max.store(max, Ordering::Release);
        if max > 0 && sub.delivered() >= max {
            self.unsubscribe(sub);
            return true;
        }
        false
    }

    /// Routes `msg` from the publisher `from` (its owner id; `echo` says whether it
    /// wants its own messages), then hands it to the attached links to other servers.
    pub fn publish(&self, from: u64, echo: bool, msg: &Msg<'_>) -> Fanout {
        let skip_own = |s: &Subscription| !echo && from != 0 && s.owner.owner_id() == from;
        let msg = Msg {
            publisher: from,
            ..*msg
        };
        self.route(&msg, Origin::Local, None, &skip_own)
    }

    /// Delivers `msg` to the subscriptions matching `route` (one member per queue
    /// group, picked at random), presenting it with its own subject: a JetStream push
    /// delivery, routed by its deliver subject. The attached links get it too, routed by
    /// `route` (`origin` as for [`Router::publish_from`]: an import's copy goes to no
    /// route). Returns how many subscriptions and links got it.
    pub fn deliver_routed(&self, origin: Origin, route: &str, msg: &Msg<'_>) -> usize {
        let msg = msg.with_route(route);
        let result = self.sublist().matches(route.as_bytes());
        let mut n = 0;
        for SubRef(sub) in &result.plain {
            n += usize::from(sub.owner.deliver(sub, &msg) != Delivery::Dropped);
        }
        let mut served: Vec<&[u8]> = Vec::new();
        for (name, members) in &result.queues {
            let alive: Vec<&SubRef> = members.iter().filter(|s| s.0.owner.is_alive()).collect();
            if alive.is_empty() {
                continue;
            }
            let sub = &alive[rand::rng().random_range(0..alive.len())].0;
            if sub.owner.deliver(sub, &msg) != Delivery::Dropped {
                n += 1;
                served.push(name);
            }
        }
        if let Some(remote) = self.remote.get() {
            n += remote.forward(&msg, origin, &served, None).links;
        }
        n
    }

    /// True when a subscription here, or a server over an attached link, wants
    /// messages on the literal `subject` (a stream import into another account only
    /// when that account wants them: [`Subscriber::reaches`]).
    pub fn has_interest(&self, subject: &[u8]) -> bool {
        let m = self.subs.matches(subject);
        let queued = m.queues.iter().flat_map(|(_, members)| members.iter());
        let here = m
            .plain
            .iter()
            .chain(queued)
            .any(|s| s.0.owner.reaches(subject));
        here || self.remote.get().is_some_and(|r| r.has_interest(subject))
    }

    /// Routes `msg` that came from another server over a link of kind `origin`:
    /// every matching plain subscription gets it, and one member of each queue group
    /// in `queues` (all groups when `None`), as the sending server chose them. The
    /// attached links get it afterwards and apply their own forwarding rules (a
    /// message from a route goes to no other route).
    pub fn publish_from(&self, origin: Origin, msg: &Msg<'_>, queues: Option<&[&[u8]]>) -> Fanout {
        self.route(msg, origin, queues, &|_| false)
    }

    fn route(
        &self,
        msg: &Msg<'_>,
        origin: Origin,
        queues: Option<&[&[u8]]>,
        skip: &impl Fn(&Subscription) -> bool,
    ) -> Fanout {
        let result = self.subs.matches(msg.routing().as_bytes());
        let remote = self.remote.get();
        let mut fanout = Fanout::default();
        // Queue groups a local member got it for; only gathered for the links.
        let mut served: Vec<&[u8]> = Vec::new();
        for SubRef(sub) in &result.plain {
            if !skip(sub) {
                fanout.add(sub, self.deliver_one(sub, msg));
            }
        }
        for (name, members) in &result.queues {
            if queues.is_some_and(|q| !q.contains(&&name[..])) {
                continue;
            }
            if self.deliver_queue(members, msg, skip, &mut fanout) && remote.is_some() {
                served.push(name);
            }
        }
        if let Some(remote) = remote {
            let forwarded = remote.forward(msg, origin, &served, queues);
            fanout.delivered += forwarded.links;
            if fanout.backlogged.is_none() {
                fanout.backlogged = forwarded.backlogged;
            }
        }
        fanout
    }

    /// Delivers `msg` only to subscriptions of `owner` that match its subject
    /// (no-responders status messages go back to the requester alone).
    pub fn publish_to_owner(&self, owner: u64, msg: &Msg<'_>) -> usize {
        let result = self.subs.matches(msg.subject.as_bytes());
        let mine = result
            .plain
            .iter()
            .chain(result.queues.iter().flat_map(|(_, m)| m));
        mine.filter(|SubRef(s)| s.owner.owner_id() == owner)
            .filter(|SubRef(s)| self.deliver_one(s, msg) != Delivery::Dropped)
            .count()
    }

    /// One random live member of a queue group; the next ones if it refuses. True
    /// when one took it.
    fn deliver_queue(
        &self,
        members: &[SubRef],
        msg: &Msg<'_>,
        skip: &impl Fn(&Subscription) -> bool,
        fanout: &mut Fanout,
    ) -> bool {
        let n = members.len();
        let start = if n > 1 {
            rand::rng().random_range(0..n)
        } else {
            0
        };
        (0..n)
            .map(|i| &members[(start + i) % n].0)
            .filter(|sub| !skip(sub) && sub.owner.is_alive())
            .any(|sub| fanout.add(sub, self.deliver_one(sub, msg)))
    }

    fn deliver_one(&self, sub: &Arc<Subscription>, msg: &Msg<'_>) -> Delivery {
        if sub.removed.load(Ordering::Acquire) {
            return Delivery::Dropped;
        }
        if msg.trace.is_some_and(|t| t.only()) && !sub.owner.follows_traces() {
            return Delivery::Queued;
        }
        let max = sub.max.load(Ordering::Acquire);
        let n = sub.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if max > 0 && n > max {
            return Delivery::Dropped;
        }
        let ok = sub.owner.deliver(sub, msg);
        if max > 0 && n == max && self.unsubscribe(sub) {
            sub.owner.auto_unsubscribed(sub);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_message_shares_its_frame_and_copies_only_remapped_parts() {
        let publish = Publish::new(
            "orders.new",
            Some("_INBOX.1"),
            Some(b"NATS/1.0\r\n\r\n"),
            b"hi",
        );
        let frame = publish.frame().as_ptr_range();
        let msg = Msg::from_publish(&publish);
        assert_eq!(msg.subject, "orders.new");
        assert_eq!(msg.size(), 2 + 12);
        for shared in [msg.subject_bytes(), msg.payload_bytes()] {
            assert!(frame.contains(&shared.as_ptr()), "{shared:?} was copied");
        }
        assert_eq!(msg.reply_bytes().as_deref(), Some(&b"_INBOX.1"[..]));
        assert_eq!(
            msg.headers_bytes().as_deref(),
            Some(&b"NATS/1.0\r\n\r\n"[..])
        );

        let remapped = ByteString::from_static("billing.orders.new");
        let moved = msg.with_subject(&remapped).with_reply(None);
        assert_eq!(moved.subject_text(), remapped);
        assert!(!frame.contains(&moved.subject_bytes().as_ptr()));
        assert_eq!(moved.reply_bytes(), None);
        assert!(frame.contains(&moved.payload_bytes().as_ptr()));
    }

    #[test]
    fn a_message_from_parts_hands_out_those_parts() {
        let (subject, payload) = (ByteString::from_static("a.b"), Bytes::from(vec![7u8; 8]));
        let msg = Msg::new(&subject, None, None, &payload);
        assert_eq!(msg.payload_bytes().as_ptr(), payload.as_ptr());
        assert_eq!(msg.subject_bytes().as_ptr(), subject.as_ptr());
        assert_eq!((msg.reply_bytes(), msg.headers_bytes()), (None, None));
    }
}
