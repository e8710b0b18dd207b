//! Where a consumer reads messages from: the [`Source`] trait (the stream, through its
//! handle, or a bare store in unit tests) and the pure read helpers that run *on* the
//! stream's side of it: batch reads, pending counts and deliver-policy start positions.
//!
//! Owns no state. Every helper takes `&dyn StreamStore`, so one closure per batch
//! crosses to the stream's actor and does all its reads in one hop.

use std::future::Future;
use std::sync::Arc;

use rill_protocol::jsapi::{ApiError, ConsumerConfig, DeliverPolicy};
use tokio::sync::watch;

use super::Shared;
use crate::jetstream::store::{StoreError, StoredMsg, StreamStore};

/// A stream as a consumer sees it.
pub trait Source: Clone + Send + Sync + 'static {
    /// Runs `f` against the stream's store on the stream's side and returns its result.
    fn read<R, F>(&self, f: F) -> impl Future<Output = Result<R, ApiError>> + Send
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static;

    /// Like [`Source::read`], but runs once the stream's last sequence is past `seen`:
    /// at once if it is already, else with the batch that makes a later message
    /// durable, before that batch's PubAcks (see `parked`).
    fn read_after<R, F>(
        &self,
        seen: u64,
        f: F,
    ) -> impl Future<Output = Result<R, ApiError>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static;

    /// The stream's last sequence; changes after every durable append.
    fn last_seq_watch(&self) -> watch::Receiver<u64>;

    /// Interest / work-queue retention: these sequences were acked by this consumer.
    fn remove_acked(&self, seqs: Vec<u64>) -> impl Future<Output = Result<u64, ApiError>> + Send;

    /// Adds the consumer to the stream's registry (consumer count, interest, stop).
    fn register(&self, shared: Arc<Shared>);

    /// Removes the consumer from the stream's registry.
    fn unregister(&self, name: String) -> impl Future<Output = ()> + Send;
}

/// Filters as the store wants them (empty = everything).
pub(crate) fn filter_refs(filters: &[String]) -> Vec<&str> {
    filters.iter().map(String::as_str).collect()
}

/// Which messages a read may return: sequences `start..=upto` matching `filters`, at
/// most `max` of them and, when `max_bytes` is not 0, stopping once that much was
/// read (at least one message).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadRange<'a> {
    pub start: u64,
    /// The last sequence the reader was told of (its `last_seq` watch). A read runs
    /// in the stream's queue, possibly behind newer publishes: bounding it keeps each
    /// message going out as soon as it is stored instead of paired with the next
    /// one, and what the reader skips ahead to is what it read.
    pub upto: u64,
    pub filters: &'a [String],
    pub max: usize,
    pub max_bytes: usize,
}

/// The messages of `range`, in order.
pub(crate) fn read_batch(store: &dyn StreamStore, range: ReadRange<'_>) -> Vec<StoredMsg> {
    let ReadRange {
        start,
        upto,
        filters,
        max,
        max_bytes,
    } = range;
    let f = filter_refs(filters);
    let mut out = Vec::new();
    let mut next = start;
    let mut bytes = 0;
    while out.len() < max && (max_bytes == 0 || bytes < max_bytes) {
        match store.load_next_multi(next, &f) {
            Ok(m) if m.seq <= upto => {
                next = m.seq + 1;
                bytes += m.payload.len() + m.headers.as_ref().map_or(0, |h| h.len());
                out.push(m);
            }
            Ok(_) | Err(_) => break,
        }
    }
    out
}

/// Matching messages after a read position, counted up to the stream's `counted_to`
/// sequence, so the next read only counts what was appended since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PendingCount {
    /// Matching messages not yet read.
    pub pending: u64,
    /// The stream's last sequence when counted.
    pub counted_to: u64,
}

/// Counts from scratch: matching messages at or after `start`.
pub(crate) fn full_count(store: &dyn StreamStore, start: u64, filters: &[String]) -> PendingCount {
    PendingCount {
        pending: count_pending(store, start, filters),
        counted_to: store.state().last_seq,
    }
}

/// Reads the next batch of `range` and updates `prev` (the count at `range.start`) by
/// what was read and what was appended since; recounts when messages at or after the
/// start were removed from the front (purge, limits) or there is no previous count.
/// The position after the read is past `range.upto` when nothing more matched there.
pub(crate) fn read_more(
    store: &dyn StreamStore,
    range: ReadRange<'_>,
    prev: Option<PendingCount>,
) -> (Vec<StoredMsg>, u64, PendingCount) {
    let (start, filters) = (range.start, range.filters);
    let msgs = read_batch(store, range);
    let after = match msgs.last() {
        Some(m) => m.seq + 1,
        None => start.max(range.upto.saturating_add(1)),
    };
    let st = store.state();
    let count = match prev {
        Some(p) if st.first_seq <= start && p.counted_to <= st.last_seq => PendingCount {
            pending: (p.pending + count_between(store, p.counted_to + 1, st.last_seq, filters))
                .saturating_sub(msgs.len() as u64),
            counted_to: st.last_seq,
        },
        _ => full_count(store, after, filters),
    };
    (msgs, after, count)
}

fn is_all(filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.is_empty() || f == ">")
}

/// Matching messages in `from..=to` (newly appended ones).
fn count_between(store: &dyn StreamStore, from: u64, to: u64, filters: &[String]) -> u64 {
    if from > to {
        return 0;
    }
    if is_all(filters) {
        return to - from + 1;
    }
    let f = filter_refs(filters);
    let mut n = 0;
    let mut next = from;
    while let Ok(m) = store.load_next_multi(next, &f) {
        if m.seq > to {
            break;
        }
        n += 1;
        next = m.seq + 1;
    }
    n
}

/// Matching messages at or after `start`.
pub(crate) fn count_pending(store: &dyn StreamStore, start: u64, filters: &[String]) -> u64 {
    let st = store.state();
    if start > st.last_seq || st.msgs == 0 {
        return 0;
    }
    if is_all(filters) {
        if start <= st.first_seq {
            return st.msgs;
        }
        if st.num_deleted == 0 {
            return st.last_seq - start + 1;
        }
        let gone = store.deleted().iter().filter(|&&d| d >= start).count() as u64;
        return (st.last_seq - start + 1).saturating_sub(gone);
    }
    let mut n = 0;
    for f in filters {
        for (subj, ss) in store.subjects(f) {
            n += if ss.first >= start {
                ss.msgs
            } else if ss.last < start {
                0
            } else {
                count_scan(store, start, &subj)
            };
        }
    }
    n
}

fn count_scan(store: &dyn StreamStore, start: u64, subject: &str) -> u64 {
    let mut n = 0;
    let mut next = start;
    while let Ok(m) = store.load_next(next, subject) {
        n += 1;
        next = m.seq + 1;
    }
    n
}

/// Where a new consumer starts: its first stream sequence, and for
/// `last_per_subject` the sequences to deliver before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StartPos {
    /// Next stream sequence the cursor reads.
    pub next: u64,
    /// `last_per_subject`: the last sequence of every matching subject, ascending.
    pub last_per_subject: Vec<u64>,
}

/// Computes the start position for `cfg`'s deliver policy.
///
/// # Errors
/// Store read failures other than "no message".
pub(crate) fn start_position(
    store: &dyn StreamStore,
    cfg: &ConsumerConfig,
) -> Result<StartPos, StoreError> {
    let st = store.state();
    let filters: Vec<String> = cfg.filters().into_iter().map(str::to_owned).collect();
    let next = match cfg.deliver_policy {
        DeliverPolicy::All => st.first_seq.max(1),
        DeliverPolicy::New => st.last_seq + 1,
        DeliverPolicy::ByStartSequence => cfg.opt_start_seq.max(1),
        DeliverPolicy::ByStartTime => {
            let t = cfg.opt_start_time.map_or(0, |t| t.unix_nanos());
            seq_at_time(store, i64::try_from(t).unwrap_or(i64::MAX))
        }
        DeliverPolicy::Last => last_matching(store, &filters).unwrap_or(st.last_seq + 1),
        DeliverPolicy::LastPerSubject => {
            let mut seqs: Vec<u64> = all_or(&filters)
                .iter()
                .flat_map(|f| store.subjects(f))
                .map(|(_, ss)| ss.last)
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            return Ok(StartPos {
                next: st.last_seq + 1,
                last_per_subject: seqs,
            });
        }
    };
    Ok(StartPos {
        next,
        last_per_subject: Vec::new(),
    })
}

fn all_or(filters: &[String]) -> Vec<String> {
    if filters.is_empty() {
        vec![">".to_owned()]
    } else {
        filters.to_vec()
    }
}

fn last_matching(store: &dyn StreamStore, filters: &[String]) -> Option<u64> {
    all_or(filters)
        .iter()
        .filter_map(|f| store.load_last(f).ok().map(|m| m.seq))
        .max()
}

/// First sequence stored at or after `t` (ns since the epoch); binary search, as
/// timestamps never decrease with the sequence.
fn seq_at_time(store: &dyn StreamStore, t: i64) -> u64 {
    let st = store.state();
    let (mut lo, mut hi) = (st.first_seq.max(1), st.last_seq + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match store.load_next(mid, ">") {
            Ok(m) if m.ts >= t => hi = mid,
            Ok(m) => lo = m.seq + 1,
            Err(_) => hi = mid,
        }
    }
    lo
}
