//! The hooks through which links to other servers (cluster routes; leaf nodes later)
//! follow an account's local interest and carry its messages away.
//!
//! Each kind of link (routes, leaf nodes) attaches one [`Remote`] to a
//! [`Router`](super::Router) for the account's lifetime; the router keeps them in
//! [`Links`], which hands every call to each in turn. The router calls them:
//! - [`Remote::interest`] after each subscription it adds or removes, outside its locks,
//!   so the link layer can keep its own per-subject counts and tell peers (`RS+`/`RS-`);
//!   subscriptions made with [`Subscription::new_local`](super::Subscription::new_local)
//!   are not reported (they answer only this server's clients);
//! - [`Remote::forward`] after delivering a message locally (a JetStream push delivery
//!   too, routed by its deliver subject: [`Msg::routing`]), with where the message
//!   entered this server ([`Origin`]) and which queue groups a local member already
//!   served, so the link layer sends it to peers with interest and picks one member
//!   cluster-wide for the other queue groups (local members are preferred, as
//!   nats-server does).
//!
//! Remote interest itself is not in the router's trie: the link layer keeps it, so
//! local delivery and `/subsz` see local subscriptions only, and a message that came
//! from a route is never matched against other routes' interest by accident.
//!
//! Interest one kind of link learns from its peers is passed on to the other kinds
//! through the [`Relay`] each is given when attached: a leaf's `LS+` reaches the
//! cluster as this server's own interest (`RS+`), and a route's `RS+` reaches the leaf
//! nodes (`LS+`), so a leaf attached to one server of a cluster sees the interest of the
//! whole cluster and the cluster sees the leaf's, as with nats-server. Relayed interest
//! is told to the other kinds only, never back to the kind it came from, and a kind
//! does not relay what it was told (so nothing circles).
//!
//! # Cost
//! Without a remote attached, a publish and a subscription change each cost one atomic
//! load (the `OnceLock` check); nothing is allocated.

use std::fmt;
use std::sync::{Arc, RwLock, Weak};

use bytes::Bytes;

use super::{Delivery, Msg, Subscriber, Subscription};

/// Where a message entered this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client of this server, or an internal publisher.
    Local,
    /// A cluster route: it goes to no other route (one hop).
    Route,
    /// Carried into this account by a stream import. It goes to no route: each peer
    /// that wants it gets the exporter's message and imports it itself (as nats-server,
    /// which delivers it once per subscriber). Leaf nodes get it as a local message.
    Import,
    /// A leaf-node connection, by its connection id.
    Leaf(u64),
}

/// Links to other servers, attached to one account's router.
pub trait Remote: Send + Sync + fmt::Debug {
    /// `sub` was added to (`added`) or removed from the account's router. Called once
    /// per change, after the router changed, with no router lock held.
    fn interest(&self, sub: &Subscription, added: bool);

    /// Sends `msg` to the servers that want it. `served` names the queue groups a
    /// local member already got it for; every other queue group with remote members
    /// gets it once, of those `named` by the server the message came from (all when
    /// `None`: a message published here).
    fn forward(
        &self,
        msg: &Msg<'_>,
        origin: Origin,
        served: &[&[u8]],
        named: Option<&[&[u8]]>,
    ) -> Forwarded;

    /// Called once when attached, with the way to pass interest learned from peers on
    /// to the other kinds of link (see [`Relay`]). The default keeps nothing.
    fn attached(&self, _relay: Relay) {}

    /// True when a server behind these links wants messages on the literal `subject`
    /// (a JetStream consumer delivers only while someone listens).
    fn has_interest(&self, _subject: &[u8]) -> bool {
        false
    }
}

/// The parts of one router's [`Links`], shared with the [`Relay`]s handed out.
type Parts = RwLock<Vec<Arc<dyn Remote>>>;

/// Passes interest one kind of link learned from its peers to the other kinds attached
/// to the same router, as if it were a subscription of this server. Call it outside the
/// link layer's own locks: the other kinds take theirs.
#[derive(Debug, Clone)]
pub struct Relay {
    parts: Weak<Parts>,
    /// The address of the kind it was given to (told nothing of its own relays).
    from: usize,
}

impl Relay {
    /// A peer of the relaying kind now wants (`added`) or no longer wants `subject`
    /// (for `queue`). Each peer entry counts once, however many members it stands for.
    pub fn interest(&self, subject: &Bytes, queue: Option<&Bytes>, added: bool) {
        let Some(parts) = self.parts.upgrade() else {
            return;
        };
        let sub = Subscription::new(
            Bytes::new(),
            subject.clone(),
            queue.cloned(),
            Arc::new(Relayed) as Arc<dyn Subscriber>,
        );
        let others: Vec<_> = crate::locks::read(&parts)
            .iter()
            .filter(|p| address(p) != self.from)
            .cloned()
            .collect();
        for part in others {
            part.interest(&sub, added);
        }
    }
}

fn address(remote: &Arc<dyn Remote>) -> usize {
    Arc::as_ptr(remote).cast::<()>() as usize
}

/// The owner of relayed interest: nothing is delivered to it (it never enters a
/// router's trie), and its id is no connection's or internal service's.
#[derive(Debug)]
struct Relayed;

impl Subscriber for Relayed {
    fn owner_id(&self) -> u64 {
        u64::MAX
    }

    fn deliver(&self, _sub: &Subscription, _msg: &Msg<'_>) -> Delivery {
        Delivery::Dropped
    }
}

/// What [`Remote::forward`] did.
#[derive(Debug, Default)]
pub struct Forwarded {
    /// Links that took the message.
    pub links: usize,
    /// A link whose backlog is past its stall threshold: the publisher waits for it
    /// (bounded), as for a backlogged local subscriber.
    pub backlogged: Option<Arc<dyn Subscriber>>,
}

/// Every kind of link attached to one router; itself a [`Remote`] that fans each call
/// out to them (the first backlogged link is reported).
#[derive(Debug, Default)]
pub struct Links {
    parts: Arc<Parts>,
}

impl Links {
    /// Adds one kind of link and gives it its [`Relay`]; false when that very link is
    /// attached already.
    pub fn add(&self, remote: Arc<dyn Remote>) -> bool {
        {
            let mut parts = crate::locks::write(&self.parts);
            if parts.iter().any(|p| Arc::ptr_eq(p, &remote)) {
                return false;
            }
            parts.push(Arc::clone(&remote));
        }
        remote.attached(Relay {
            parts: Arc::downgrade(&self.parts),
            from: address(&remote),
        });
        true
    }

    /// How many kinds of link are attached.
    pub fn len(&self) -> usize {
        crate::locks::read(&self.parts).len()
    }

    /// True when none is attached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Remote for Links {
    fn interest(&self, sub: &Subscription, added: bool) {
        for part in crate::locks::read(&self.parts).iter() {
            part.interest(sub, added);
        }
    }

    fn forward(
        &self,
        msg: &Msg<'_>,
        origin: Origin,
        served: &[&[u8]],
        named: Option<&[&[u8]]>,
    ) -> Forwarded {
        let mut total = Forwarded::default();
        for part in crate::locks::read(&self.parts).iter() {
            let one = part.forward(msg, origin, served, named);
            total.links += one.links;
            if total.backlogged.is_none() {
                total.backlogged = one.backlogged;
            }
        }
        total
    }

    fn has_interest(&self, subject: &[u8]) -> bool {
        crate::locks::read(&self.parts)
            .iter()
            .any(|p| p.has_interest(subject))
    }
}

/// Makes the [`Remote`] of each account: the link layer registers one with the account
/// table, which attaches it to every account, present and future.
pub trait RemoteFactory: Send + Sync + fmt::Debug {
    /// The links of the account called `account`.
    fn remote_for(&self, account: &str) -> Arc<dyn Remote>;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::router::ByteString;
    use crate::router::{Delivery, Router};

    /// Records what the router tells it; takes every message.
    #[derive(Debug, Default)]
    struct Recorder {
        interest: Mutex<Vec<(String, Option<String>, bool)>>,
        forwarded: Mutex<Vec<(String, Origin, Vec<String>)>>,
    }

    impl Remote for Recorder {
        fn interest(&self, sub: &Subscription, added: bool) {
            let queue = sub
                .queue
                .as_ref()
                .map(|q| String::from_utf8_lossy(q).into());
            self.interest
                .lock()
                .unwrap()
                .push((sub.subject_str().into(), queue, added));
        }

        fn forward(
            &self,
            msg: &Msg<'_>,
            origin: Origin,
            served: &[&[u8]],
            _named: Option<&[&[u8]]>,
        ) -> Forwarded {
            let served = served
                .iter()
                .map(|q| String::from_utf8_lossy(q).into())
                .collect();
            self.forwarded
                .lock()
                .unwrap()
                .push((msg.subject.into(), origin, served));
            Forwarded {
                links: 1,
                backlogged: None,
            }
        }
    }

    /// A subscriber that counts deliveries.
    #[derive(Debug, Default)]
    struct Counter {
        id: u64,
        got: Mutex<usize>,
    }

    impl Subscriber for Counter {
        fn owner_id(&self) -> u64 {
            self.id
        }

        fn deliver(&self, _sub: &Subscription, _msg: &Msg<'_>) -> Delivery {
            *self.got.lock().unwrap() += 1;
            Delivery::Queued
        }
    }

    fn sub(
        owner: &Arc<Counter>,
        subject: &'static str,
        queue: Option<&'static str>,
    ) -> Arc<Subscription> {
        Subscription::new(
            Bytes::from_static(b"1"),
            Bytes::from_static(subject.as_bytes()),
            queue.map(|q| Bytes::from_static(q.as_bytes())),
            Arc::clone(owner) as Arc<dyn Subscriber>,
        )
    }

    fn attached() -> (Router, Arc<Recorder>) {
        let router = Router::new();
        let recorder = Arc::new(Recorder::default());
        router.attach(Arc::clone(&recorder) as Arc<dyn Remote>);
        (router, recorder)
    }

    #[test]
    fn subscription_changes_are_reported_once_each_except_local_ones() {
        let (router, recorder) = attached();
        let owner = Arc::new(Counter {
            id: 7,
            ..Counter::default()
        });
        let plain = sub(&owner, "a.>", None);
        let queued = sub(&owner, "a.b", Some("q"));
        let local = Subscription::new_local(
            Bytes::from_static(b"2"),
            Bytes::from_static(b"$JS.API.>"),
            None,
            Arc::clone(&owner) as Arc<dyn Subscriber>,
        );
        router.subscribe(&plain);
        router.subscribe(&queued);
        router.subscribe(&local);
        assert!(router.unsubscribe(&plain));
        assert!(!router.unsubscribe(&plain), "second removal");
        router.unsubscribe(&local);
        // An auto-unsubscribe after the last allowed delivery is a removal too.
        router.auto_unsubscribe(&queued, 1);
        let body = Bytes::from_static(b"x");
        let subject = ByteString::from_static("a.b");
        router.publish(0, true, &Msg::new(&subject, None, None, &body));
        let seen = recorder.interest.lock().unwrap().clone();
        let q = Some("q".to_string());
        assert_eq!(
            seen,
            vec![
                ("a.>".into(), None, true),
                ("a.b".into(), q.clone(), true),
                ("a.>".into(), None, false),
                ("a.b".into(), q, false),
            ]
        );
    }

    #[test]
    fn local_publish_names_the_queue_groups_served_here() {
        let (router, recorder) = attached();
        let (me, other) = (
            Arc::new(Counter {
                id: 1,
                ..Counter::default()
            }),
            Arc::new(Counter {
                id: 2,
                ..Counter::default()
            }),
        );
        router.subscribe(&sub(&other, "orders.*", Some("served")));
        // The publisher's own member does not count with echo off: the group is not served.
        router.subscribe(&sub(&me, "orders.*", Some("own")));
        let subject = ByteString::from_static("orders.new");
        let body = Bytes::from_static(b"x");
        let fanout = router.publish(1, false, &Msg::new(&subject, None, None, &body));
        assert_eq!(fanout.delivered, 2, "one local member plus the links");
        assert_eq!(
            recorder.forwarded.lock().unwrap().clone(),
            vec![("orders.new".into(), Origin::Local, vec!["served".into()])]
        );
    }

    #[test]
    fn a_message_from_a_route_reaches_plain_subs_and_the_named_queue_groups() {
        let (router, recorder) = attached();
        let owner = Arc::new(Counter {
            id: 3,
            ..Counter::default()
        });
        router.subscribe(&sub(&owner, "x", None));
        router.subscribe(&sub(&owner, "x", Some("named")));
        router.subscribe(&sub(&owner, "x", Some("other")));
        let subject = ByteString::from_static("x");
        let body = Bytes::from_static(b"x");
        let msg = Msg::new(&subject, None, None, &body);
        router.publish_from(Origin::Route, &msg, Some(&[b"named"]));
        assert_eq!(*owner.got.lock().unwrap(), 2);
        router.publish_from(Origin::Route, &msg, Some(&[]));
        assert_eq!(*owner.got.lock().unwrap(), 3, "plain only");
        let forwarded = recorder.forwarded.lock().unwrap();
        assert!(forwarded.iter().all(|(_, o, _)| *o == Origin::Route));
    }

    #[test]
    fn two_kinds_of_link_each_hear_everything() {
        let (router, first) = attached();
        let second = Arc::new(Recorder::default());
        router.attach(Arc::clone(&second) as Arc<dyn Remote>);
        assert_eq!(router.remote().map(Links::len), Some(2));
        let owner = Arc::new(Counter::default());
        router.subscribe(&sub(&owner, "x", None));
        let subject = ByteString::from_static("y");
        let body = Bytes::from_static(b"x");
        let fanout = router.publish(0, true, &Msg::new(&subject, None, None, &body));
        assert_eq!(fanout.delivered, 2, "one per link kind");
        for r in [&first, &second] {
            assert_eq!(r.interest.lock().unwrap().len(), 1);
            assert_eq!(r.forwarded.lock().unwrap().len(), 1);
        }
    }

    #[test]
    fn a_link_attached_late_hears_the_subscriptions_made_before_it_once() {
        let router = Router::new();
        let owner = Arc::new(Counter::default());
        router.subscribe(&sub(&owner, "early", None));
        router.subscribe(&sub(&owner, "early", Some("q")));
        router.subscribe(&Subscription::new_local(
            Bytes::from_static(b"2"),
            Bytes::from_static(b"$JS.API.>"),
            None,
            Arc::clone(&owner) as Arc<dyn Subscriber>,
        ));
        let recorder = Arc::new(Recorder::default());
        router.attach(Arc::clone(&recorder) as Arc<dyn Remote>);
        router.attach(Arc::clone(&recorder) as Arc<dyn Remote>);
        router.subscribe(&sub(&owner, "late", None));
        let mut seen = recorder.interest.lock().unwrap().clone();
        seen.sort();
        let q = Some("q".to_string());
        assert_eq!(
            seen,
            vec![
                ("early".into(), None, true),
                ("early".into(), q, true),
                ("late".into(), None, true),
            ]
        );
        assert_eq!(router.remote().map(Links::len), Some(1));
    }

    #[test]
    fn without_a_remote_nothing_is_forwarded_or_counted() {
        let router = Router::new();
        let owner = Arc::new(Counter::default());
        router.subscribe(&sub(&owner, "x", Some("q")));
        let subject = ByteString::from_static("x");
        let body = Bytes::from_static(b"x");
        let fanout = router.publish(0, true, &Msg::new(&subject, None, None, &body));
        assert_eq!(fanout.delivered, 1);
        assert!(router.remote().is_none());
    }
}
