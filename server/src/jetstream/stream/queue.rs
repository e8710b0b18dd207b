//! A stream's bounded command queue, with a depth counter so the router
//! can slow a fast publisher down (`Delivery::Pressure`) before the queue is full
//! and messages would be dropped, and a drain signal that ends the publisher's wait
//! as soon as the stream has worked the queue down to half.
//!
//! Sending a command wakes the stream's [`Job`] on the stream pool (see `pool`).
//!
//! The queue holds at most `capacity` commands but allocates only for what it holds
//! (a linked channel, bounded by the depth counter): an idle stream costs a few
//! hundred bytes here, not `capacity` preallocated slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, TrySendError, channel};

use tokio::sync::Notify;

use super::Command;
use super::pool::{self, Job};

/// Sending side (cloned into the handle and the router subscriptions).
#[derive(Clone)]
pub(crate) struct QueueTx {
    tx: Sender<Command>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    drained: Arc<Notify>,
    /// Messages refused because the queue was full (counted by the subscriber).
    dropped: Arc<AtomicU64>,
    /// The stream that takes the commands.
    job: Arc<dyn Job>,
}

impl std::fmt::Debug for QueueTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueTx")
            .field("depth", &self.depth)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Receiving side, owned by the stream's actor.
#[derive(Debug)]
pub(crate) struct QueueRx {
    rx: Receiver<Command>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    drained: Arc<Notify>,
}

/// A queue of `capacity` commands for the job `taker` makes from its receiving side.
pub(crate) fn queue(capacity: usize, taker: impl FnOnce(QueueRx) -> Arc<dyn Job>) -> QueueTx {
    let (tx, rx) = channel();
    let depth = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    let job = taker(QueueRx {
        rx,
        depth: Arc::clone(&depth),
        capacity,
        drained: Arc::clone(&drained),
    });
    QueueTx {
        tx,
        depth,
        capacity,
        drained,
        dropped: Arc::default(),
        job,
    }
}

impl QueueTx {
    /// Queues `cmd` without blocking; gives it back (boxed) when the queue is full
    /// or the stream is gone.
    pub(crate) fn try_send(&self, cmd: Command) -> Result<(), TrySendError<Box<Command>>> {
        // Count first: the stream may take the command before this call returns. The
        // count is what the pool reads after a run to decide whether to run again, so it
        // is sequentially consistent with the job's `scheduled` flag (see `pool`).
        if self.depth.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(TrySendError::Full(Box::new(cmd)));
        }
        self.tx.send(cmd).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            TrySendError::Disconnected(Box::new(e.0))
        })?;
        pool::wake(&self.job);
        Ok(())
    }

    /// Counts one message dropped on a full queue; returns the count so far.
    pub(crate) fn count_dropped(&self) -> u64 {
        self.dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Messages dropped on a full queue since the stream was opened.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// True when the queue is more than three quarters full.
    pub(crate) fn under_pressure(&self) -> bool {
        self.depth.load(Ordering::Relaxed).saturating_mul(4) > self.capacity * 3
    }

    /// Resolves once the queue is at most half full. Publishers bound the wait.
    pub(crate) async fn drained(&self) {
        let notified = self.drained.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before the check, so a drain in between still wakes us.
        notified.as_mut().enable();
        if self.depth.load(Ordering::Relaxed) <= self.capacity / 2 {
            return;
        }
        notified.await;
    }
}

impl QueueRx {
    /// The count of queued commands (shared with the senders).
    pub(crate) fn depth(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.depth)
    }

    /// The next command if one is queued.
    pub(crate) fn try_recv(&self) -> Result<Command, TryRecvError> {
        let cmd = self.rx.try_recv()?;
        self.taken();
        Ok(cmd)
    }

    /// Counts a command taken; wakes stalled publishers when the queue falls to half.
    fn taken(&self) {
        let before = self.depth.fetch_sub(1, Ordering::SeqCst);
        if before == self.capacity / 2 + 1 {
            self.drained.notify_waiters();
        }
    }
}
