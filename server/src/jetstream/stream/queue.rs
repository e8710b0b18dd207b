//! The stream thread's bounded command queue, with a depth counter so the router
//! can slow a fast publisher down (`Delivery::Pressure`) before the queue is full
//! and messages would be dropped, and a drain signal that ends the publisher's wait
//! as soon as the thread has worked the queue down to half.
//!
//! The queue holds at most `capacity` commands but allocates only for what it holds
//! (a linked channel, bounded by the depth counter): an idle stream costs a few
//! hundred bytes here, not `capacity` preallocated slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError, channel};
use std::time::Duration;

use tokio::sync::Notify;

use super::Command;

/// Sending side (cloned into the handle and the router subscriptions).
#[derive(Debug, Clone)]
pub(crate) struct QueueTx {
    tx: Sender<Command>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    drained: Arc<Notify>,
    /// Messages refused because the queue was full (counted by the subscriber).
    dropped: Arc<AtomicU64>,
}

/// Receiving side, owned by the stream thread.
#[derive(Debug)]
pub(crate) struct QueueRx {
    rx: Receiver<Command>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    drained: Arc<Notify>,
}

/// A queue of `capacity` commands.
pub(crate) fn queue(capacity: usize) -> (QueueTx, QueueRx) {
    let (tx, rx) = channel();
    let depth = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    (
        QueueTx {
            tx,
            depth: Arc::clone(&depth),
            capacity,
            drained: Arc::clone(&drained),
            dropped: Arc::default(),
        },
        QueueRx {
            rx,
            depth,
            capacity,
            drained,
        },
    )
}

impl QueueTx {
    /// Queues `cmd` without blocking; gives it back (boxed) when the queue is full
    /// or the thread is gone.
    pub(crate) fn try_send(&self, cmd: Command) -> Result<(), TrySendError<Box<Command>>> {
        // Count first: the thread may take the command before this call returns.
        if self.depth.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(TrySendError::Full(Box::new(cmd)));
        }
        self.tx.send(cmd).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            TrySendError::Disconnected(Box::new(e.0))
        })
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
    /// Waits up to `timeout` for the next command.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<Command, RecvTimeoutError> {
        let cmd = self.rx.recv_timeout(timeout)?;
        self.taken();
        Ok(cmd)
    }

    /// The next command if one is queued.
    pub(crate) fn try_recv(&self) -> Result<Command, TryRecvError> {
        let cmd = self.rx.try_recv()?;
        self.taken();
        Ok(cmd)
    }

    /// Counts a command taken; wakes stalled publishers when the queue falls to half.
    fn taken(&self) {
        let before = self.depth.fetch_sub(1, Ordering::Relaxed);
        if before == self.capacity / 2 + 1 {
            self.drained.notify_waiters();
        }
    }
}
