//! The stream pool: a fixed set of OS threads that run every stream's work.
//!
//! A stream is a [`Job`]: it has work when its command queue is not empty or one of its
//! timers (message expiry, TTLs, lazy sync) is due. Sending a command [`wake`]s the job;
//! a woken job waits in one FIFO ready queue until a pool thread takes it, drains a batch
//! of its commands, makes the batch durable (group commit, one `fsync` per batch per
//! stream) and hands it back. So:
//!
//! * the thread count does not grow with streams: an idle stream costs no thread, no
//!   stack and no wake-up, only its state;
//! * one stream's commands still run one at a time and in order (a job is never run by
//!   two threads at once: its `scheduled` flag is set from the wake until the run ends);
//! * streams share the threads fairly: a busy stream runs one batch and goes to the back
//!   of the queue.
//!
//! The pool has `2 × cores` threads (at least 4, at most 16) so that a stream blocked in
//! `fsync` leaves others running. Threads are started on first use and live as long as
//! the process.
//!
//! # Waking without losing a wake-up
//! A sender queues its command, then sets `scheduled` (pushing the job only if it was
//! clear). A pool thread that finishes a run clears `scheduled` and then asks the job
//! whether commands are pending, taking it again if so. Both sides use sequentially
//! consistent atomics, so either the sender sees the flag clear or the thread sees the
//! command. A timer that falls due is the same: the thread that takes it queues the job
//! only when `scheduled` is clear (else the job is queued or running and re-arms its own
//! timers at the end of the run), so a finished run clears `scheduled` before it arms
//! the job's next timer: armed first, a timer due at once could be taken by another
//! thread in between and dropped, and the job would sleep until something woke it.
//!
//! # Waking no more threads than needed
//! Every wake-up of a sleeping thread is a system call and, on a busy host, a wait for
//! a CPU; before the pool, a busy stream's thread simply went on with the next batch.
//! So a thread whose job still has work runs it again itself, unless other jobs wait
//! (then the job goes to the back of the ready queue and the thread takes the first);
//! a sender wakes a thread only when one is idle; and arming a timer wakes one only
//! when it is the new earliest (idle threads already wait for the earliest).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tracing::error;

use crate::locks;

/// Work the pool runs; implemented by a stream.
pub(crate) trait Job: Send + Sync + 'static {
    /// The job's scheduling state.
    fn slot(&self) -> &Slot;
    /// Runs one batch of work; returns when the job next wants to run without being
    /// woken (its earliest timer).
    fn run(&self) -> Option<Instant>;
    /// True when work is waiting (checked after each run, see the module doc).
    fn pending(&self) -> bool;
}

/// Per-job scheduling state.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Set from a wake until the end of the run it causes.
    scheduled: AtomicBool,
    /// The earliest armed timer, in nanoseconds since the pool's epoch; `u64::MAX` when
    /// none is armed.
    timer: AtomicU64,
}

impl Slot {
    /// A job that is neither scheduled nor has a timer.
    pub(crate) fn new() -> Self {
        Self {
            scheduled: AtomicBool::new(false),
            timer: AtomicU64::new(u64::MAX),
        }
    }
}

/// A timer entry: run `job` at `at`.
struct Timer {
    at: u64,
    job: Weak<dyn Job>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

#[derive(Default)]
struct Sched {
    ready: VecDeque<Arc<dyn Job>>,
    timers: BinaryHeap<Reverse<Timer>>,
    /// Threads waiting in [`Pool::next`].
    idle: usize,
}

struct Pool {
    sched: Mutex<Sched>,
    more: Condvar,
    epoch: Instant,
}

static POOL: OnceLock<Arc<Pool>> = OnceLock::new();

/// Pool threads: twice the cores, at least 4, at most 16.
fn threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    (cores * 2).clamp(4, 16)
}

fn pool() -> &'static Arc<Pool> {
    POOL.get_or_init(|| {
        let pool = Arc::new(Pool {
            sched: Mutex::new(Sched::default()),
            more: Condvar::new(),
            epoch: Instant::now(),
        });
        for _ in 0..threads() {
            let p = Arc::clone(&pool);
            let started = std::thread::Builder::new()
                .name("stream-pool".to_owned())
                .spawn(move || p.work());
            if let Err(e) = started {
                error!(error = %e, "could not start a stream pool thread");
            }
        }
        pool
    })
}

/// Marks `job` as having work; it runs on a pool thread soon.
pub(crate) fn wake(job: &Arc<dyn Job>) {
    if job.slot().scheduled.swap(true, Ordering::SeqCst) {
        return;
    }
    let p = pool();
    let mut s = locks::lock(&p.sched);
    s.ready.push_back(Arc::clone(job));
    let idle = s.idle > 0;
    drop(s);
    // A busy thread takes the job when its run ends (`next`): no system call.
    if idle {
        p.more.notify_one();
    }
}

impl Pool {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Arms `job`'s timer for `at` unless an earlier one is armed already.
    fn arm(&self, job: &Arc<dyn Job>, at: Instant) {
        let at = self.nanos(at);
        if job.slot().timer.fetch_min(at, Ordering::SeqCst) <= at {
            return;
        }
        let timer = Timer {
            at,
            job: Arc::downgrade(job),
        };
        let mut s = locks::lock(&self.sched);
        let earliest = s.timers.peek().is_none_or(|t| at < t.0.at);
        s.timers.push(Reverse(timer));
        let idle = s.idle > 0;
        drop(s);
        // Idle threads wait for the earliest timer already; a later one changes nothing.
        if earliest && idle {
            self.more.notify_one();
        }
    }

    /// A pool thread's loop.
    fn work(&self) {
        let mut job = self.next();
        loop {
            let run = std::panic::AssertUnwindSafe(|| job.run());
            let timer = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                error!("a stream's batch failed (panicked); the stream carries on");
                None
            });
            // Cleared before arming: a thread that takes the new timer while `scheduled`
            // is still set would drop it, taking the job for queued or running.
            job.slot().scheduled.store(false, Ordering::SeqCst);
            if let Some(at) = timer {
                self.arm(&job, at);
            }
            // Work that came in during the run: this thread takes the job again, unless
            // a sender set `scheduled` first (then the job is queued and a thread woken).
            job = if job.pending() && !job.slot().scheduled.swap(true, Ordering::SeqCst) {
                self.again(job)
            } else {
                self.next()
            };
        }
    }

    /// The job to run after `job`, which has more work: `job` itself unless others are
    /// ready (then it queues behind them, so busy streams share the threads fairly).
    fn again(&self, job: Arc<dyn Job>) -> Arc<dyn Job> {
        let mut s = locks::lock(&self.sched);
        self.take_due(&mut s);
        let Some(first) = s.ready.pop_front() else {
            return job;
        };
        s.ready.push_back(job);
        let idle = s.idle > 0;
        drop(s);
        if idle {
            self.more.notify_one();
        }
        first
    }

    /// Moves the jobs whose timer is due to the ready queue.
    fn take_due(&self, s: &mut Sched) {
        let now = self.nanos(Instant::now());
        while s.timers.peek().is_some_and(|t| t.0.at <= now) {
            let Some(Reverse(t)) = s.timers.pop() else {
                break;
            };
            let Some(job) = t.job.upgrade() else {
                continue;
            };
            let slot = job.slot();
            let _ = slot
                .timer
                .compare_exchange(t.at, u64::MAX, Ordering::SeqCst, Ordering::SeqCst);
            if !slot.scheduled.swap(true, Ordering::SeqCst) {
                s.ready.push_back(job);
            }
        }
    }

    /// Waits for the next job to run: a woken one, or one whose timer is due.
    fn next(&self) -> Arc<dyn Job> {
        let mut s = locks::lock(&self.sched);
        loop {
            self.take_due(&mut s);
            if let Some(job) = s.ready.pop_front() {
                return job;
            }
            let wait = s
                .timers
                .peek()
                .map(|t| Duration::from_nanos(t.0.at.saturating_sub(self.nanos(Instant::now()))));
            s.idle += 1;
            s = match wait {
                Some(wait) => {
                    self.more
                        .wait_timeout(s, wait)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
                None => self
                    .more
                    .wait(s)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            };
            s.idle -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts its runs; wants to run again `again` after each run while `timers` > 0.
    struct Counter {
        slot: Slot,
        runs: AtomicUsize,
        queued: AtomicUsize,
        timers: AtomicUsize,
        again: Duration,
    }

    impl Job for Counter {
        fn slot(&self) -> &Slot {
            &self.slot
        }
        fn run(&self) -> Option<Instant> {
            self.queued.store(0, Ordering::SeqCst);
            self.runs.fetch_add(1, Ordering::SeqCst);
            let left = self.timers.load(Ordering::SeqCst);
            if left == 0 {
                return None;
            }
            self.timers.store(left - 1, Ordering::SeqCst);
            Some(Instant::now() + self.again)
        }
        fn pending(&self) -> bool {
            self.queued.load(Ordering::SeqCst) > 0
        }
    }

    fn counter(timers: usize) -> Arc<Counter> {
        Arc::new(Counter {
            slot: Slot::new(),
            runs: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            timers: AtomicUsize::new(timers),
            again: Duration::from_millis(5),
        })
    }

    /// A [`Counter`] whose timer is due as soon as a run ends.
    fn backlog(timers: usize) -> Arc<Counter> {
        Arc::new(Counter {
            again: Duration::ZERO,
            ..Arc::into_inner(counter(timers)).expect("fresh")
        })
    }

    fn wait_for(what: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !what() {
            assert!(Instant::now() < until, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_woken_job_runs_and_timers_fire() {
        let c = counter(3);
        let job: Arc<dyn Job> = c.clone();
        c.queued.store(1, Ordering::SeqCst);
        wake(&job);
        // One run for the wake, then one per timer.
        wait_for(|| c.runs.load(Ordering::SeqCst) == 4);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.runs.load(Ordering::SeqCst), 4);
    }

    /// A job whose timer is due at once after every run (a backlog worked through one
    /// batch per run, as due message schedules are) runs again every time: a thread
    /// that wakes for the new timer while the run is still ending must not swallow it.
    #[test]
    fn a_timer_due_at_once_after_a_run_is_never_lost() {
        let jobs: Vec<Arc<Counter>> = (0..threads())
            .map(|_| {
                let c = backlog(2000);
                c.queued.store(1, Ordering::SeqCst);
                c
            })
            .collect();
        for c in &jobs {
            let job: Arc<dyn Job> = c.clone();
            wake(&job);
        }
        wait_for(|| jobs.iter().all(|c| c.runs.load(Ordering::SeqCst) == 2001));
    }

    /// Always has more work, for `left` runs.
    struct Busy {
        slot: Slot,
        left: AtomicUsize,
    }

    impl Job for Busy {
        fn slot(&self) -> &Slot {
            &self.slot
        }
        fn run(&self) -> Option<Instant> {
            std::thread::sleep(Duration::from_micros(200));
            let _ = self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            None
        }
        fn pending(&self) -> bool {
            self.left.load(Ordering::SeqCst) > 0
        }
    }

    /// A thread runs a job with more work again itself, but not ahead of a job that
    /// was woken meanwhile, even when every thread is busy.
    #[test]
    fn a_busy_job_runs_again_but_not_ahead_of_others() {
        let busy: Vec<Arc<Busy>> = (0..threads())
            .map(|_| {
                Arc::new(Busy {
                    slot: Slot::new(),
                    left: AtomicUsize::new(20_000),
                })
            })
            .collect();
        for b in &busy {
            let job: Arc<dyn Job> = b.clone();
            wake(&job);
        }
        let c = counter(0);
        c.queued.store(1, Ordering::SeqCst);
        let job: Arc<dyn Job> = c.clone();
        wake(&job);
        wait_for(|| c.runs.load(Ordering::SeqCst) == 1);
        let left: usize = busy.iter().map(|b| b.left.load(Ordering::SeqCst)).sum();
        assert!(
            left > 0,
            "the woken job waited for every busy one to finish"
        );
        for b in &busy {
            b.left.store(0, Ordering::SeqCst);
        }
        wait_for(|| {
            busy.iter()
                .all(|b| !b.slot.scheduled.load(Ordering::SeqCst))
        });
    }

    #[test]
    fn many_wakes_while_scheduled_run_it_again_not_once_each() {
        let jobs: Vec<Arc<Counter>> = (0..1000).map(|_| counter(0)).collect();
        for _ in 0..5 {
            for c in &jobs {
                c.queued.fetch_add(1, Ordering::SeqCst);
                let job: Arc<dyn Job> = c.clone();
                wake(&job);
            }
        }
        wait_for(|| {
            jobs.iter().all(|c| {
                c.queued.load(Ordering::SeqCst) == 0 && !c.slot.scheduled.load(Ordering::SeqCst)
            })
        });
        for c in &jobs {
            let runs = c.runs.load(Ordering::SeqCst);
            assert!((1..=5).contains(&runs), "{runs} runs");
        }
    }
}
