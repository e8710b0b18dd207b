//! The `allow_responses` grants of one connection: each request delivered to it lets it
//! publish to the request's reply subject, at most `max` times and within `expires`
//! (nats-server's rule; an unset or zero `expires` is its default of two minutes, so no
//! grant lives forever).
//!
//! Grants are kept in arrival order beside the lookup table, so expired ones are dropped
//! from the front as new ones arrive (amortised O(1) per grant, never a scan on publish),
//! and at most [`MAX_GRANTS`] are held: a connection flooded with requests it never answers
//! loses the oldest grants first instead of growing without bound (nats-server prunes
//! only by age).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use tokio::time::Instant;

/// Grants held per connection at most.
pub(crate) const MAX_GRANTS: usize = 65_536;

/// One grant: replies left and when it runs out.
#[derive(Debug, Clone, Copy)]
struct Grant {
    left: usize,
    expires: Instant,
}

/// Reply subject → grant, plus the order grants were made in.
#[derive(Debug, Default)]
pub(crate) struct ReplyGrants {
    by_subject: HashMap<Bytes, Grant>,
    /// `(subject, expiry)` in the order granted; an entry whose subject was granted again
    /// later (a newer expiry in `by_subject`) is skipped when it reaches the front.
    order: VecDeque<(Bytes, Instant)>,
}

impl ReplyGrants {
    /// Grants `max` replies to `reply` until `expires` (replacing an earlier grant), and
    /// drops what has expired or is over the cap.
    pub(crate) fn grant(&mut self, reply: &[u8], max: usize, expires: Instant) {
        let reply = Bytes::copy_from_slice(reply);
        let grant = Grant {
            left: max.max(1),
            expires,
        };
        self.by_subject.insert(reply.clone(), grant);
        self.order.push_back((reply, expires));
        self.prune(Instant::now());
    }

    /// Uses one reply of the grant for `subject`; false when there is none (or it
    /// expired).
    pub(crate) fn take(&mut self, subject: &[u8], now: Instant) -> bool {
        let Some(grant) = self.by_subject.get_mut(subject) else {
            return false;
        };
        if grant.expires <= now {
            self.by_subject.remove(subject);
            return false;
        }
        grant.left -= 1;
        if grant.left == 0 {
            self.by_subject.remove(subject);
        }
        true
    }

    /// Grants held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_subject.len()
    }

    /// Drops grants from the front while they have expired, were replaced, were used up,
    /// or more than [`MAX_GRANTS`] are held.
    fn prune(&mut self, now: Instant) {
        while let Some((subject, expires)) = self.order.front() {
            let current = self
                .by_subject
                .get(subject)
                .is_some_and(|g| g.expires == *expires);
            let over = self.by_subject.len() > MAX_GRANTS;
            if current && *expires > now && !over {
                if self.order.len() <= 2 * MAX_GRANTS {
                    break;
                }
                // Stale entries behind a live front: compact the queue.
                self.compact();
                break;
            }
            if current {
                self.by_subject.remove(subject);
            }
            self.order.pop_front();
        }
    }

    /// Keeps only the queue entries of grants still held.
    fn compact(&mut self) {
        let by_subject = &self.by_subject;
        self.order
            .retain(|(s, e)| by_subject.get(s).is_some_and(|g| g.expires == *e));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_grant_allows_max_replies_until_it_expires() {
        let mut grants = ReplyGrants::default();
        let now = Instant::now();
        grants.grant(b"_INBOX.a", 2, now + Duration::from_secs(60));
        grants.grant(b"_INBOX.b", 1, now + Duration::from_millis(10));
        assert!(grants.take(b"_INBOX.a", now));
        assert!(grants.take(b"_INBOX.a", now));
        assert!(!grants.take(b"_INBOX.a", now), "max used up");
        assert!(
            !grants.take(b"_INBOX.b", now + Duration::from_secs(1)),
            "expired"
        );
        assert!(!grants.take(b"_INBOX.c", now), "never granted");
        assert_eq!(grants.len(), 0);
    }

    #[test]
    fn a_flood_of_unanswered_requests_holds_at_most_the_cap() {
        let mut grants = ReplyGrants::default();
        let later = Instant::now() + Duration::from_secs(120);
        let total = MAX_GRANTS + 10_000;
        for i in 0..total {
            grants.grant(format!("_INBOX.{i}").as_bytes(), 1, later);
        }
        assert_eq!(grants.len(), MAX_GRANTS);
        assert!(grants.order.len() <= 2 * MAX_GRANTS + 1);
        let now = Instant::now();
        assert!(!grants.take(b"_INBOX.0", now), "the oldest went first");
        let newest = format!("_INBOX.{}", total - 1);
        assert!(grants.take(newest.as_bytes(), now));
    }

    #[test]
    fn expired_and_replaced_grants_leave_the_queue() {
        let mut grants = ReplyGrants::default();
        let start = Instant::now();
        for i in 0..1_000 {
            grants.grant(format!("_INBOX.{i}").as_bytes(), 1, start);
        }
        // Everything above expired at `start`: the next grant clears it.
        grants.grant(b"_INBOX.live", 1, start + Duration::from_secs(60));
        assert_eq!(grants.len(), 1);
        assert_eq!(grants.order.len(), 1);
        // The same reply granted again many times (a retried request) stays one grant,
        // and the queue does not grow without bound.
        for _ in 0..(3 * MAX_GRANTS) {
            grants.grant(b"_INBOX.again", 1, Instant::now() + Duration::from_secs(60));
        }
        assert_eq!(grants.len(), 2);
        assert!(grants.order.len() <= 2 * MAX_GRANTS + 1);
    }
}
