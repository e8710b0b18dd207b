//! The consumer's read parked at its stream's end (the stream side is
//! `jetstream::stream::parked`): a consumer that has read everything asks the stream for
//! its next read in advance ([`Source::read_after`]), so the next message arrives with
//! the batch that stores it, before that batch's PubAcks, instead of one hop after the
//! last-sequence watch moved. The watch still wakes the consumer as before; a parked
//! read's answer is taken only if the consumer's position and filters are still those
//! it was parked with.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use rill_protocol::jsapi::ApiError;

use super::source::{PendingCount, ReadRange, Source, read_more};
use crate::jetstream::store::{StoredMsg, StreamStore};

/// A cursor read: the messages, the position after them and the pending count.
pub(super) type CursorRead = (Vec<StoredMsg>, u64, PendingCount);

type ReadFuture = Pin<Box<dyn Future<Output = Result<CursorRead, ApiError>> + Send>>;

/// Where the read was parked: a consumer takes its answer only from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct From {
    pub(super) start: u64,
    pub(super) filters: Vec<String>,
}

/// A parked read's answer, with where it was parked.
pub(super) struct Answer {
    pub(super) from: From,
    pub(super) read: Result<CursorRead, ApiError>,
}

/// At most one parked read of a consumer.
#[derive(Default)]
pub(super) struct Parked {
    read: Option<(From, ReadFuture)>,
    /// The watch's value when a parked read failed: not parked again until it moves,
    /// so a failing stream is not asked in a loop.
    failed_at: Option<u64>,
}

impl fmt::Debug for Parked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parked")
            .field("from", &self.read.as_ref().map(|(from, _)| from))
            .field("failed_at", &self.failed_at)
            .finish()
    }
}

impl Parked {
    /// Parks the next read of up to `max` messages from `from` at `src`, to run once
    /// the stream holds a message at `from.start` or later; nothing when a read is
    /// parked already or the last one failed while the watch said `watch`.
    ///
    /// The read waits for the stream to grow past `from.start - 1`, what the consumer
    /// has read, not past the watch's value: the stream answers a parked read before it
    /// moves the watch, so a consumer that took that answer and parks again may still
    /// see the old value. A read parked there answered at once, empty, and the next
    /// one was parked only after that round trip; under load the next write often came
    /// first and reached the consumer through the watch, after its PubAck, every other
    /// write (CI: stale mirror reads after writes 1, 3, 5, ...).
    pub(super) fn park<S: Source>(&mut self, src: &S, watch: u64, from: From, max: usize) {
        if self.read.is_some() || self.failed_at == Some(watch) {
            return;
        }
        let (start, filters) = (from.start, from.filters.clone());
        let read = src.read_after(start.saturating_sub(1), move |s: &dyn StreamStore| {
            let range = ReadRange {
                start,
                upto: s.state().last_seq,
                filters: &filters,
                max,
                max_bytes: 0,
            };
            read_more(s, range, None)
        });
        self.read = Some((from, Box::pin(read)));
        self.failed_at = None;
    }

    /// The parked read's answer; never resolves while none is parked.
    pub(super) async fn answer(&mut self) -> Answer {
        let Some((from, read)) = self.read.as_mut() else {
            return std::future::pending().await;
        };
        // Cancel-safe: the read stays parked until it answers.
        let read = read.await;
        let from = from.clone();
        self.read = None;
        Answer { from, read }
    }

    /// Notes that the parked read failed while the watch said `seen`.
    pub(super) fn failed(&mut self, seen: u64) {
        self.failed_at = Some(seen);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;
    use crate::jetstream::consumer::StoreSource;
    use crate::jetstream::store::{MemStore, StoreConfig};

    fn from(start: u64) -> From {
        From {
            start,
            filters: Vec::new(),
        }
    }

    /// The stream answers a parked read before it moves its watch, so the consumer may
    /// park its next read while the watch still shows the sequence before: that read
    /// must wait for the next message, not answer at once with nothing.
    #[tokio::test]
    async fn a_read_parked_behind_a_late_watch_waits_for_the_next_message() {
        let src = StoreSource::new(Box::new(MemStore::new(StoreConfig::default())), false);
        for _ in 0..2 {
            src.append("a", None, b"x").expect("append");
        }
        let mut parked = Parked::default();
        parked.park(&src, 1, from(3), 16);
        assert!(
            parked.answer().now_or_never().is_none(),
            "answered before the stream grew past what was read"
        );
        src.append("a", None, b"y").expect("append");
        let answer = tokio::time::timeout(Duration::from_secs(5), parked.answer())
            .await
            .expect("answered once the stream grew");
        assert_eq!(answer.from, from(3));
        let (msgs, after, _) = answer.read.expect("read");
        assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(after, 4);
    }
}
