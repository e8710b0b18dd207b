//! [`Actor`]: one stream as a [`Job`] of the stream pool.
//!
//! The actor owns the stream's [`StreamCore`] and the receiving end of its command
//! queue. Each run drains up to `MAX_BATCH` commands in order, applies them, makes the
//! batch durable with one `sync()` before the batch's PubAcks go out (group commit), runs
//! the stream's timers (expiry, TTLs, lazy sync) and tells the pool when they are next
//! due. A `Close` command closes the store and drops the queue, so later sends fail with
//! "stream not found".

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::error;

use super::core::StreamCore;
use super::pool::{self, Job, Slot};
use super::queue::QueueRx;
use super::{Command, MAX_BATCH};
use crate::locks;

/// A stream run by the pool.
pub(crate) struct Actor {
    slot: Slot,
    /// Set once the store is open ([`Actor::start`]), cleared when the stream closed.
    live: AtomicBool,
    /// Commands queued (the queue's own counter, read without the state lock).
    depth: Arc<AtomicUsize>,
    state: Mutex<State>,
}

struct State {
    core: Option<StreamCore>,
    rx: Option<QueueRx>,
}

impl Actor {
    /// An actor for the stream whose commands arrive on `rx`; it runs once started.
    pub(crate) fn new(rx: QueueRx) -> Self {
        Self {
            slot: Slot::new(),
            live: AtomicBool::new(false),
            depth: rx.depth(),
            state: Mutex::new(State {
                core: None,
                rx: Some(rx),
            }),
        }
    }

    /// Hands the opened stream to the actor and runs it (commands queued meanwhile and
    /// the stream's first timers).
    pub(crate) fn start(self: &Arc<Self>, core: StreamCore) {
        locks::lock(&self.state).core = Some(core);
        self.live.store(true, Ordering::SeqCst);
        let job: Arc<dyn Job> = Arc::clone(self) as Arc<dyn Job>;
        pool::wake(&job);
    }
}

impl Job for Actor {
    fn slot(&self) -> &Slot {
        &self.slot
    }

    fn run(&self) -> Option<Instant> {
        let mut state = locks::lock(&self.state);
        let State {
            core: Some(core),
            rx: Some(rx),
        } = &mut *state
        else {
            return None;
        };
        for _ in 0..MAX_BATCH {
            let Ok(cmd) = rx.try_recv() else {
                break;
            };
            if let Some((done, discard)) = apply_guarded(core, cmd) {
                core.close(discard);
                self.live.store(false, Ordering::SeqCst);
                *state = State {
                    core: None,
                    rx: None,
                };
                let _ = done.send(());
                return None;
            }
        }
        core.flush();
        let wait = core.on_timer();
        // Timers may have removed messages or synced: publish the new state.
        core.flush();
        wait.map(|ns| Instant::now() + Duration::from_nanos(u64::try_from(ns).unwrap_or(1)))
    }

    fn pending(&self) -> bool {
        self.live.load(Ordering::SeqCst) && self.depth.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Actor {
    /// Every sender is gone without a `Close`: close the store as a stopping stream does.
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut core) = state.core.take() {
            core.close(false);
        }
    }
}

/// [`apply`], surviving a panic: the failed command's caller sees its reply dropped
/// (an error), the stream carries on with the next command.
fn apply_guarded(core: &mut StreamCore, cmd: Command) -> Option<(oneshot::Sender<()>, bool)> {
    let run = std::panic::AssertUnwindSafe(|| apply(core, cmd));
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        error!(stream = %core.name, "stream command failed (panicked); the stream carries on");
        None
    })
}

/// Applies one command; returns the close acknowledgement when asked to stop.
fn apply(core: &mut StreamCore, cmd: Command) -> Option<(oneshot::Sender<()>, bool)> {
    match cmd {
        Command::Publish {
            subject,
            reply,
            headers,
            payload,
            trace: None,
        } => {
            core.publish(&subject, reply, headers.as_ref(), &payload);
        }
        Command::Publish {
            subject,
            reply,
            headers,
            payload,
            trace: Some(trace),
        } => core.publish_traced(&trace, &subject, reply, headers.as_ref(), &payload),
        Command::Direct {
            subject,
            reply,
            payload,
        } => {
            core.flush();
            core.direct_get(&subject, reply.as_ref(), &payload);
        }
        Command::Call(job) => {
            core.flush();
            job(core);
        }
        Command::Close { done, discard } => return Some((done, discard)),
    }
    None
}
