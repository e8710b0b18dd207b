//! Message schedules (`allow_msg_schedules`, ADR-51): a stored message with a
//! `Nats-Schedule` header makes the stream publish its body into
//! `Nats-Schedule-Target` (a subject of the same stream) on that schedule.
//!
//! A schedule is an ordinary stored message, kept one per subject (it is stored with
//! `Nats-Rollup: sub`), so schedules survive restarts with the stream. The stream
//! keeps only a time-ordered index in memory ([`Schedules`]: one `(due, sequence)`
//! entry per schedule, no task or timer each), woken through the stream's `on_timer`.
//! A firing loads the schedule message again: one that was replaced, deleted, purged
//! or expired meanwhile is simply gone from the store and dropped from the index.
//!
//! A firing stores the schedule's body (or, with `Nats-Schedule-Source`, the last
//! message of that subject, nothing but headers when there is none) on the target
//! with every non-`Nats-` header of it, plus `Nats-Scheduler: <schedule subject>`,
//! `Nats-Schedule-Next: <next time>` (`purge` for an `@at`, whose schedule message is
//! then removed), `Nats-TTL` from `Nats-Schedule-TTL` and `Nats-Rollup: sub` from
//! `Nats-Schedule-Rollup`. After a restart the index is rebuilt from the stored
//! messages: a schedule continues at the `Nats-Schedule-Next` of its last firing, so
//! each period fires once even across a restart; periods missed while the server was
//! down fire once, at once, as nats-server does.
//!
//! Publish checks, in nats-server's order and with its errors: `Nats-Scheduler` /
//! `Nats-Schedule-Next` from a client `10212`; no `allow_msg_schedules` `10188`;
//! time zone `10223`; pattern `10189` (see `spec`); `Nats-Schedule-TTL` `10191`
//! (`10166` without `allow_msg_ttl`); target (missing, a wildcard, the schedule's own
//! subject or outside the stream) `10190`; `Nats-Schedule-Rollup` or `Nats-Rollup`
//! other than `sub` `10192`; source (a wildcard, the target, the schedule's subject or
//! outside the stream) `10203`.

mod fire;
mod spec;

use std::collections::BTreeSet;

use bytes::Bytes;
use rill_protocol::headers::{HeaderMap, find};

use spec::Spec;

/// The schedule pattern.
pub(crate) const SCHEDULE: &str = "Nats-Schedule";
const TARGET: &str = "Nats-Schedule-Target";
const SOURCE: &str = "Nats-Schedule-Source";
const SCHEDULE_TTL: &str = "Nats-Schedule-TTL";
const TIME_ZONE: &str = "Nats-Schedule-Time-Zone";
const SCHEDULE_ROLLUP: &str = "Nats-Schedule-Rollup";
/// On a firing: the subject of the schedule that made it.
pub(crate) const SCHEDULER: &str = "Nats-Scheduler";
/// On a firing: when the schedule fires next, or [`PURGE`].
pub(crate) const NEXT: &str = "Nats-Schedule-Next";
const PURGE: &str = "purge";
const ROLLUP: &str = "Nats-Rollup";

/// Most schedules fired in one timer round, so a burst that falls due together does
/// not hold the stream's other work back; the rest follow in the next round.
const FIRE_BATCH: usize = 1024;

/// Due times (ns since the epoch) of the stream's schedules, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Schedules {
    due: BTreeSet<(i64, u64)>,
}

impl Schedules {
    /// Schedules message `seq` to fire at `at`.
    pub(crate) fn add(&mut self, seq: u64, at: i64) {
        self.due.insert((at, seq));
    }

    /// The earliest due time.
    pub(crate) fn next(&self) -> Option<i64> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Takes up to `limit` schedules due at `now`, earliest first.
    fn take_due(&mut self, now: i64, limit: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.due.first() {
                Some(&(at, _)) if at <= now => {}
                _ => break,
            }
            if let Some((_, seq)) = self.due.pop_first() {
                out.push(seq);
            }
        }
        out
    }
}

/// A schedule as its message's headers give it.
struct Schedule<'a> {
    spec: Spec,
    target: &'a str,
    source: Option<&'a str>,
    ttl: Option<&'a str>,
    rollup: bool,
}

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or_default()
}

fn header<'a>(h: &'a [u8], name: &str) -> Option<&'a str> {
    find(h, name).map(text)
}

/// A schedule's header block as stored: with `Nats-Rollup: sub`, so one schedule is
/// kept per subject.
pub(crate) fn with_subject_rollup(h: &[u8]) -> Bytes {
    if find(h, ROLLUP).is_some() {
        return Bytes::copy_from_slice(h);
    }
    let mut map = HeaderMap::parse(h).unwrap_or_default();
    map.append(ROLLUP, "sub");
    map.to_bytes()
}

/// The pattern of a message that holds a schedule (`None`: an ordinary message).
fn pattern(h: &[u8]) -> Option<&str> {
    header(h, SCHEDULE).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_due_schedules_in_time_order_up_to_the_limit() {
        let mut s = Schedules::default();
        s.add(7, 30);
        s.add(3, 10);
        s.add(5, 10);
        s.add(9, 99);
        assert_eq!(s.next(), Some(10));
        assert_eq!(s.take_due(30, 2), [3, 5]);
        assert_eq!(s.take_due(30, 10), [7]);
        assert_eq!(s.next(), Some(99));
        assert!(s.take_due(50, 10).is_empty());
    }
}
