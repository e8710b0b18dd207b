//! Reads parked at a stream's end: a consumer that has read everything the stream
//! holds asks for its next read in advance ([`StreamHandle::read_after`]), and the
//! stream runs it in the flush that makes a later message durable, after the sync and
//! before the batch's PubAcks go out.
//!
//! Without it a consumer learns of a new message from the last-sequence watch (after
//! the acks) and then queues a read behind whatever the stream does next: a mirror or
//! source on another server got a write a few milliseconds after the writer's PubAck,
//! so a client reading the mirror right after its write did not find it. nats-server's
//! consumers have the message as its ack leaves (its mirror has it before the ack
//! reaches the client); so do rill's now. The work is the same read the watch would
//! have caused, done earlier; nothing is read before it is durable.
//!
//! [`StreamHandle::read_after`]: super::StreamHandle::read_after

use std::fmt;

use tokio::sync::oneshot;

use crate::jetstream::store::StreamStore;

/// A parked read: runs against the store and answers its consumer.
trait Read: Send {
    /// The consumer stopped waiting (its actor ended): drop the read.
    fn gone(&self) -> bool;
    fn run(self: Box<Self>, store: &dyn StreamStore);
}

struct Waiting<R, F> {
    read: F,
    answer: oneshot::Sender<R>,
}

impl<R, F> Read for Waiting<R, F>
where
    R: Send,
    F: FnOnce(&dyn StreamStore) -> R + Send,
{
    fn gone(&self) -> bool {
        self.answer.is_closed()
    }

    fn run(self: Box<Self>, store: &dyn StreamStore) {
        let _ = self.answer.send((self.read)(store));
    }
}

/// The stream's parked reads, each waiting for the stream to grow past a sequence.
#[derive(Default)]
pub(crate) struct ParkedReads {
    reads: Vec<(u64, Box<dyn Read>)>,
}

impl fmt::Debug for ParkedReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkedReads")
            .field("reads", &self.reads.len())
            .finish()
    }
}

impl ParkedReads {
    /// Parks `read` until the stream's last sequence is past `seen`; its result goes to
    /// `answer`. Reads whose consumer is gone are dropped here, so a quiet stream keeps
    /// at most one per live consumer.
    pub(crate) fn park<R, F>(&mut self, seen: u64, read: F, answer: oneshot::Sender<R>)
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static,
    {
        self.reads.retain(|(_, r)| !r.gone());
        self.reads.push((seen, Box::new(Waiting { read, answer })));
    }

    /// Runs every read waiting for less than `last` (the stream's durable last sequence).
    pub(crate) fn run_due(&mut self, store: &dyn StreamStore, last: u64) {
        if self.reads.iter().all(|(seen, _)| *seen >= last) {
            return;
        }
        let (due, waiting) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|(seen, _)| *seen < last);
        self.reads = waiting;
        for (_, read) in due {
            read.run(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::{MemStore, StoreConfig};

    #[test]
    fn a_parked_read_runs_once_the_stream_grows_past_it() {
        let mut store = MemStore::new(StoreConfig::default());
        let mut parked = ParkedReads::default();
        let (tx, mut rx) = oneshot::channel();
        parked.park(0, |s: &dyn StreamStore| s.state().last_seq, tx);
        parked.run_due(&store, 0);
        assert!(rx.try_recv().is_err(), "ran before the stream grew");
        store.append("a", None, b"1").unwrap();
        parked.run_due(&store, 1);
        assert_eq!(rx.try_recv().ok(), Some(1));
        assert!(parked.reads.is_empty());
    }

    #[test]
    fn reads_of_gone_consumers_are_dropped_when_another_parks() {
        let mut parked = ParkedReads::default();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel::<u64>();
            parked.park(5, |s: &dyn StreamStore| s.state().last_seq, tx);
            drop(rx);
        }
        assert_eq!(parked.reads.len(), 1);
    }
}
