//! Priority groups on pull consumers (nats-server 2.11–2.12, ADR-42): which waiting pull
//! request may be served, by the consumer's `priority_policy`.
//!
//! - `overflow`: a request with `min_pending` / `min_ack_pending` is served only while the
//!   consumer has at least that many messages pending / awaiting ack (a far-away worker
//!   that helps only when the near ones fall behind); requests without them as usual.
//! - `pinned_client`: the first request served pins its client: every message carries
//!   `Nats-Pin-Id`, and only requests with that `id` are served; others wait (or get
//!   `423 Nats-Pin-Id mismatch` at once for another id). The pin goes when its client has
//!   not pulled for `priority_timeout` (advisory reason `timeout`) or on
//!   `$JS.API.CONSUMER.UNPIN` (reason `admin`); requests still carrying the old id then
//!   get `423 Nats-Wrong-Pin-Id`, and the next request served is pinned with a new id.
//! - `prioritized`: the waiting request with the lowest `priority` (0–9) is served first.
//!   Requests that arrive together compete: a new request is served only after
//!   [`GATHER`], so one sent beside it (in the same write, or by another task of the
//!   same client a moment later) is waiting by then. nats-server gets this from its
//!   read loop, which queues every request of one read before the consumer looks; rill
//!   hands each request to the consumer as it is parsed, so without the pause the first
//!   of two requests sent together was served before the second arrived, whatever
//!   their priorities (nats.py's test_consumer_prioritized_messages_stream: two
//!   `messages()` streams at priority 0 and 1 re-pull together every 100 ms and must
//!   take 30 and 20 of 50; rill split them 20/30 in 3 of 6 runs).
//!
//! The request checks (`400` for a missing or unknown group, for fields of another policy,
//! for a priority outside 0–9) are nats-server 2.15.1's, each seen over the wire.
//!
//! Owns the pin; the actor owns the waiting queue and asks here what may be served.

use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{ConsumerConfig, NextRequest, PriorityGroupState, PriorityPolicy};
use tokio::time::Instant;

use super::events::PinEvent;
use super::pull::PullRequest;
use super::status;
use crate::jetstream::store::now_ns;
use rill_protocol::jsapi::Timestamp;

/// How long a `prioritized` consumer lets new pull requests gather before serving.
const GATHER: Duration = Duration::from_millis(2);

/// The checks of a pull request's priority fields against the consumer: `Err` is the
/// `400` to answer.
pub(crate) fn check(cfg: &ConsumerConfig, req: &NextRequest) -> Result<(), Bytes> {
    use PriorityPolicy as P;
    let policy = cfg.priority_policy;
    if policy != P::None {
        if req.group.is_empty() {
            return Err(status::bad_request("Priority Group missing"));
        }
        if !cfg.priority_groups.contains(&req.group) {
            return Err(status::bad_request("Invalid Priority Group"));
        }
    }
    if (req.min_pending > 0 || req.min_ack_pending > 0) && policy != P::Overflow {
        return Err(status::bad_request("Not a Overflow Priority consumer"));
    }
    if !req.id.is_empty() && policy != P::PinnedClient {
        return Err(status::bad_request("Not a Pinned Client Priority consumer"));
    }
    if policy == P::Prioritized && !(0..=9).contains(&req.priority) {
        return Err(status::bad_request("Priority must be between 0 and 9"));
    }
    Ok(())
}

#[derive(Debug)]
struct Pin {
    group: String,
    id: String,
    since: Timestamp,
    /// Unpinned (`timeout`) when its client has not pulled by then.
    deadline: Instant,
}

/// One consumer's priority policy and, for `pinned_client`, its pin.
#[derive(Debug)]
pub(super) struct Priority {
    policy: PriorityPolicy,
    groups: Vec<String>,
    ttl: Duration,
    pin: Option<Pin>,
    /// `prioritized`: requests that arrived are served from then on (see [`GATHER`]).
    gathered: Option<Instant>,
}

impl Priority {
    /// The policy of `cfg` (validated: a policy other than `none` has groups).
    pub(super) fn new(cfg: &ConsumerConfig) -> Self {
        Self {
            policy: cfg.priority_policy,
            groups: cfg.priority_groups.clone(),
            ttl: cfg.priority_timeout.to_duration().unwrap_or_default(),
            pin: None,
            gathered: None,
        }
    }

    /// A request was queued (`prioritized`: it and those arriving with it are served
    /// after [`GATHER`]).
    pub(super) fn queued(&mut self, now: Instant) {
        if self.by_priority() && self.gathered.is_none() {
            self.gathered = Some(now + GATHER);
        }
    }

    /// Whether requests are still gathering (`prioritized`), so none is served yet.
    pub(super) fn gathering(&mut self, now: Instant) -> bool {
        match self.gathered {
            Some(at) if at > now => true,
            _ => {
                self.gathered = None;
                false
            }
        }
    }

    /// A consumer update: the pin stays while the policy stays `pinned_client` with its group.
    pub(super) fn update(&mut self, cfg: &ConsumerConfig) {
        let pin = self.pin.take().filter(|p| {
            cfg.priority_policy == PriorityPolicy::PinnedClient
                && cfg.priority_groups.contains(&p.group)
        });
        *self = Self {
            pin,
            ..Self::new(cfg)
        };
    }

    /// `prioritized`: the lowest `priority` among the waiting requests goes first.
    pub(super) fn by_priority(&self) -> bool {
        self.policy == PriorityPolicy::Prioritized
    }

    /// A request arrives: `Err` answers it at once (`pinned_client`: an id other than the
    /// pinned one). A request from the pinned client keeps the pin alive.
    pub(super) fn admit(&mut self, req: &PullRequest, now: Instant) -> Result<(), Bytes> {
        if self.policy != PriorityPolicy::PinnedClient || req.pin_id.is_empty() {
            return Ok(());
        }
        match self.pin.as_mut() {
            Some(pin) if pin.id == req.pin_id => {
                pin.deadline = now + self.ttl;
                Ok(())
            }
            Some(_) => Err(status::pin_id_mismatch()),
            None => Err(status::wrong_pin_id(req.batch, req.bytes_left())),
        }
    }

    /// Whether `req` may be served now, with `pending` messages not yet delivered and
    /// `ack_pending` awaiting their ack.
    pub(super) fn may_serve(&self, req: &PullRequest, pending: u64, ack_pending: u64) -> bool {
        match self.policy {
            PriorityPolicy::Overflow => {
                let unset = req.min_pending == 0 && req.min_ack_pending == 0;
                unset
                    || (req.min_pending > 0 && pending >= req.min_pending)
                    || (req.min_ack_pending > 0 && ack_pending >= req.min_ack_pending)
            }
            PriorityPolicy::PinnedClient => match &self.pin {
                Some(pin) => req.pin_id == pin.id,
                None => req.pin_id.is_empty(),
            },
            PriorityPolicy::None | PriorityPolicy::Prioritized => true,
        }
    }

    /// A message goes to `req`: under `pinned_client` the request is pinned if nobody is,
    /// and the returned id goes on the message as `Nats-Pin-Id`.
    pub(super) fn serve(
        &mut self,
        req: &mut PullRequest,
        now: Instant,
    ) -> (Option<String>, Option<PinEvent>) {
        if self.policy != PriorityPolicy::PinnedClient {
            return (None, None);
        }
        let mut event = None;
        let pin = self.pin.get_or_insert_with(|| {
            let id = super::events::event_id();
            event = Some(PinEvent::Pinned {
                group: req.group.clone(),
                id: id.clone(),
            });
            Pin {
                group: req.group.clone(),
                id,
                since: Timestamp::from_unix_nanos(i128::from(now_ns())).unwrap_or_default(),
                deadline: now,
            }
        });
        pin.deadline = now + self.ttl;
        req.pin_id.clone_from(&pin.id);
        (Some(pin.id.clone()), event)
    }

    /// `CONSUMER.UNPIN` for `group`: `None` when the consumer has no such group; else the
    /// id that was pinned (if any) and the advisory, sent even when nothing was pinned,
    /// as nats-server does.
    pub(super) fn unpin(&mut self, group: &str) -> Option<(Option<String>, PinEvent)> {
        if !self.groups.iter().any(|g| g == group) {
            return None;
        }
        let old = self.pin.take().map(|p| p.id);
        let event = PinEvent::Unpinned {
            group: group.to_owned(),
            reason: "admin",
        };
        Some((old, event))
    }

    /// When the pin times out or gathered requests are served, whichever comes first.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let pin = self.pin.as_ref().map(|p| p.deadline);
        pin.into_iter().chain(self.gathered).min()
    }

    /// Unpins a client that has not pulled within `priority_timeout` (`pulling`: it has a
    /// request waiting, which keeps it pinned): the old id and the advisory.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        pulling: impl Fn(&str) -> bool,
    ) -> Option<(String, PinEvent)> {
        let pin = self.pin.as_mut()?;
        if pin.deadline > now {
            return None;
        }
        if pulling(&pin.id) {
            pin.deadline = now + self.ttl;
            return None;
        }
        let pin = self.pin.take()?;
        let event = PinEvent::Unpinned {
            group: pin.group,
            reason: "timeout",
        };
        Some((pin.id, event))
    }

    /// `priority_groups` of ConsumerInfo: each group with its pinned client, if any.
    pub(super) fn state(&self) -> Vec<PriorityGroupState> {
        if self.policy == PriorityPolicy::None {
            return Vec::new();
        }
        self.groups
            .iter()
            .map(|g| {
                let pin = self.pin.as_ref().filter(|p| &p.group == g);
                PriorityGroupState {
                    group: g.clone(),
                    pinned_client_id: pin.map(|p| p.id.clone()).unwrap_or_default(),
                    pinned_ts: pin.map(|p| p.since).unwrap_or_default(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_protocol::jsapi::Nanos;

    fn cfg(policy: PriorityPolicy) -> ConsumerConfig {
        ConsumerConfig {
            priority_policy: policy,
            priority_groups: vec!["A".into()],
            priority_timeout: Nanos(2_000_000_000),
            ..ConsumerConfig::default()
        }
    }

    fn pull(body: &str) -> (NextRequest, PullRequest) {
        let req = NextRequest::parse(body.as_bytes()).expect("body");
        let pull = PullRequest::new(Bytes::from_static(b"_INBOX.x"), &req, Instant::now());
        (req, pull)
    }

    fn refused(c: &ConsumerConfig, body: &str) -> String {
        let (req, _) = pull(body);
        let st = check(c, &req).expect_err("refused");
        String::from_utf8_lossy(&st).into_owned()
    }

    #[test]
    fn requests_are_checked_as_nats_server_checks_them() {
        let pinned = cfg(PriorityPolicy::PinnedClient);
        assert!(
            refused(&pinned, r#"{"batch":1}"#).contains("400 Bad Request - Priority Group missing")
        );
        assert!(refused(&pinned, r#"{"group":"B"}"#).contains("Invalid Priority Group"));
        assert!(refused(&pinned, r#"{"group":"A","min_pending":1}"#).contains("Not a Overflow"));
        let overflow = cfg(PriorityPolicy::Overflow);
        assert!(refused(&overflow, r#"{"group":"A","id":"x"}"#).contains("Not a Pinned Client"));
        let (req, _) = pull(r#"{"group":"A","priority":3}"#);
        assert!(check(&overflow, &req).is_ok(), "overflow ignores priority");
        let prio = cfg(PriorityPolicy::Prioritized);
        assert!(refused(&prio, r#"{"group":"A","priority":10}"#).contains("between 0 and 9"));
        assert!(refused(&prio, r#"{"group":"A","priority":-1}"#).contains("between 0 and 9"));
        let none = ConsumerConfig::default();
        let (req, _) = pull(r#"{"group":"A","priority":1}"#);
        assert!(
            check(&none, &req).is_ok(),
            "a consumer without policy ignores both"
        );
    }

    #[test]
    fn prioritized_requests_gather_before_they_are_served() {
        let now = Instant::now();
        let mut p = Priority::new(&cfg(PriorityPolicy::Prioritized));
        assert!(!p.gathering(now));
        p.queued(now);
        p.queued(now + GATHER / 2);
        assert_eq!(
            p.deadline(),
            Some(now + GATHER),
            "the first request sets the time"
        );
        assert!(p.gathering(now + GATHER / 2));
        assert!(!p.gathering(now + GATHER));
        assert_eq!(p.deadline(), None);
        let mut overflow = Priority::new(&cfg(PriorityPolicy::Overflow));
        overflow.queued(now);
        assert!(!overflow.gathering(now), "other policies serve at once");
    }

    #[test]
    fn overflow_serves_only_past_its_thresholds() {
        let p = Priority::new(&cfg(PriorityPolicy::Overflow));
        let (_, plain) = pull(r#"{"group":"A"}"#);
        let (_, min_pending) = pull(r#"{"group":"A","min_pending":5}"#);
        let (_, min_ack) = pull(r#"{"group":"A","min_ack_pending":2}"#);
        assert!(p.may_serve(&plain, 0, 0));
        assert!(!p.may_serve(&min_pending, 4, 0));
        assert!(p.may_serve(&min_pending, 5, 0));
        assert!(!p.may_serve(&min_ack, 9, 1));
        assert!(p.may_serve(&min_ack, 0, 2));
    }

    #[test]
    fn a_pin_is_given_kept_refused_to_others_and_times_out() {
        let mut p = Priority::new(&cfg(PriorityPolicy::PinnedClient));
        let now = Instant::now();
        let (_, mut first) = pull(r#"{"group":"A"}"#);
        let (id, event) = p.serve(&mut first, now);
        let id = id.expect("pinned");
        assert_eq!(id.len(), 22);
        assert!(matches!(event, Some(PinEvent::Pinned { .. })));
        assert_eq!(p.serve(&mut first, now).1, None, "pinned once");
        let (_, other) = pull(r#"{"group":"A"}"#);
        assert!(!p.may_serve(&other, 1, 0), "others wait");
        let (_, bogus) = pull(r#"{"group":"A","id":"bogus"}"#);
        assert!(p.admit(&bogus, now).is_err());
        assert_eq!(p.state()[0].pinned_client_id, id);
        assert!(p.expire(now + Duration::from_secs(1), |_| false).is_none());
        assert!(
            p.expire(now + Duration::from_secs(3), |_| true).is_none(),
            "still pulling"
        );
        let later = now + Duration::from_secs(6);
        let (old, event) = p.expire(later, |_| false).expect("timed out");
        assert_eq!(old, id);
        assert!(matches!(
            event,
            PinEvent::Unpinned {
                reason: "timeout",
                ..
            }
        ));
        assert!(p.may_serve(&other, 1, 0), "the next one may be pinned");
        assert!(p.unpin("B").is_none());
        assert!(
            p.unpin("A").is_some(),
            "unpinning an unpinned group is answered"
        );
    }
}
