//! The ack side of a consumer: pending acks with delivery counts and ack deadlines,
//! the redelivery queue, ack/nak/progress/term handling, `max_deliver`, backoff and
//! `max_ack_pending`, mirrored into the [`ConsumerStore`] so a restart resumes exactly.
//!
//! Owns the consumer's [`ConsumerStore`] and its in-memory view. Pure and synchronous:
//! the caller passes the time in (a `tokio::time::Instant`, so paused-clock tests drive
//! it) and does every publish itself.
//!
//! # Invariants
//! - every sequence in `rdq` is in `pending`; a pending sequence has a deadline in
//!   `timers` unless it is in `rdq`;
//! - `pending` equals the store's pending set (same keys) when acks are required.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rill_protocol::jsapi::{AckPolicy, ConsumerConfig};
use tokio::time::Instant;

use super::ack::{AckKind, AckMeta};
use crate::jetstream::store::{
    ConsumerState, ConsumerStore, SequencePair, StoreError, VFile, now_ns,
};

#[derive(Debug, Clone, Copy)]
struct Pend {
    dseq: u64,
    deliveries: u64,
    deadline: Option<Instant>,
}

/// A message that will not be delivered again (`max_deliver` reached or `+TERM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Stream sequence.
    pub sseq: u64,
    /// Consumer sequence of its last delivery.
    pub dseq: u64,
    /// Deliveries so far.
    pub deliveries: u64,
    /// `Some(reason)` for `+TERM`, `None` for max deliveries.
    pub term: Option<String>,
}

/// What one ack did.
#[derive(Debug, Default)]
pub(crate) struct AckEffect {
    /// Sequences no longer pending because they were acked (for interest retention).
    pub acked: Vec<u64>,
    /// A message given up on.
    pub dropped: Option<Dropped>,
    /// A `-NAK` was recorded for this (dseq, sseq, deliveries).
    pub naked: Option<AckMeta>,
    /// A `+NXT` pull request body.
    pub next: Option<Vec<u8>>,
}

/// Pending acks, redeliveries and the persisted state of one consumer.
#[derive(Debug)]
pub(crate) struct Tracker {
    policy: AckPolicy,
    ack_wait: Duration,
    backoff: Vec<Duration>,
    max_deliver: i64,
    max_ack_pending: i64,
    store: Box<dyn ConsumerStore>,
    pending: BTreeMap<u64, Pend>,
    timers: BTreeSet<(Instant, u64)>,
    rdq: BTreeSet<u64>,
    /// Last time something was delivered / acked (ns since the epoch), for info.
    pub last_delivered_ns: i64,
    /// Last ack time (ns since the epoch).
    pub last_ack_ns: i64,
    /// The store writes files (its sync blocks).
    file_backed: bool,
    /// Something changed since the last sync.
    dirty: bool,
}

fn nanos(n: rill_protocol::jsapi::Nanos) -> Duration {
    n.to_duration().unwrap_or_default()
}

impl Tracker {
    /// Wraps `store`, rebuilding pending acks from its state (deadlines restart from `now`
    /// minus the time already waited).
    pub(crate) fn new(
        cfg: &ConsumerConfig,
        store: Box<dyn ConsumerStore>,
        file_backed: bool,
        now: Instant,
    ) -> Self {
        let mut t = Self {
            policy: cfg.ack_policy,
            ack_wait: nanos(cfg.ack_wait),
            backoff: cfg.backoff.iter().map(|b| nanos(*b)).collect(),
            max_deliver: cfg.max_deliver,
            max_ack_pending: cfg.max_ack_pending,
            store,
            pending: BTreeMap::new(),
            timers: BTreeSet::new(),
            rdq: BTreeSet::new(),
            last_delivered_ns: 0,
            last_ack_ns: 0,
            file_backed,
            dirty: false,
        };
        t.rebuild(now);
        t
    }

    /// Applies a changed config (update keeps state).
    pub(crate) fn reconfigure(&mut self, cfg: &ConsumerConfig) {
        self.ack_wait = nanos(cfg.ack_wait);
        self.backoff = cfg.backoff.iter().map(|b| nanos(*b)).collect();
        self.max_deliver = cfg.max_deliver;
        self.max_ack_pending = cfg.max_ack_pending;
    }

    fn rebuild(&mut self, now: Instant) {
        self.pending.clear();
        self.timers.clear();
        self.rdq.clear();
        let wall = now_ns();
        let st = self.store.state().clone();
        for (&sseq, p) in &st.pending {
            let deliveries = st.redelivered.get(&sseq).map_or(1, |c| c + 1);
            let waited = Duration::from_nanos(u64::try_from(wall - p.ts).unwrap_or(0));
            let deadline = now + self.wait_for(deliveries).saturating_sub(waited);
            self.pending.insert(
                sseq,
                Pend {
                    dseq: p.consumer_seq,
                    deliveries,
                    deadline: Some(deadline),
                },
            );
            self.timers.insert((deadline, sseq));
        }
    }

    /// The persisted state (delivered, ack floor, pending).
    pub(crate) fn state(&self) -> &ConsumerState {
        self.store.state()
    }

    /// Replaces the whole state (creation start position, reset).
    ///
    /// # Errors
    /// Store I/O errors.
    pub(crate) fn set_state(&mut self, st: ConsumerState, now: Instant) -> Result<(), StoreError> {
        self.dirty = true;
        self.store.set_state(st)?;
        self.rebuild(now);
        Ok(())
    }

    /// Makes everything recorded so far durable.
    ///
    /// # Errors
    /// Store I/O errors.
    pub(crate) fn sync(&mut self) -> Result<(), StoreError> {
        // An fsync blocks: on the multi-threaded runtime, tell tokio so other tasks
        // move off this worker meanwhile (the actor waits for it either way).
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let multi = self.file_backed
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(|| self.store.sync())
        } else {
            self.store.sync()
        }
    }

    /// Writes what changed since the last sync and hands back the file to fsync, so
    /// the caller can make it durable off its own task (see
    /// [`ConsumerStore::write_out`]).
    pub(crate) fn write_out(&mut self) -> Result<Option<Arc<dyn VFile>>, StoreError> {
        if !self.dirty {
            return Ok(None);
        }
        self.dirty = false;
        self.store.write_out()
    }

    /// Asks the store for a receiver that fires when the next sync is durable
    /// ([`ConsumerStore::commit_wait`]); the next sync then happens even when
    /// nothing changed.
    pub(crate) fn commit_wait(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let rx = self.store.commit_wait()?;
        self.dirty = true;
        Some(rx)
    }

    /// A background fsync failed: the next sync must cover its writes again.
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// True when something changed since the last sync.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// How long to wait for an ack after delivery number `deliveries`.
    fn wait_for(&self, deliveries: u64) -> Duration {
        if self.backoff.is_empty() {
            return self.ack_wait;
        }
        let i = usize::try_from(deliveries.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff[i.min(self.backoff.len() - 1)]
    }

    fn acks_required(&self) -> bool {
        self.policy != AckPolicy::None
    }

    /// Unacked messages.
    pub(crate) fn num_ack_pending(&self) -> usize {
        self.pending.len()
    }

    /// Pending messages delivered more than once.
    pub(crate) fn num_redelivered(&self) -> usize {
        self.pending.values().filter(|p| p.deliveries > 1).count()
    }

    /// True while `max_ack_pending` allows another delivery.
    pub(crate) fn can_deliver(&self) -> bool {
        !self.acks_required()
            || self.max_ack_pending <= 0
            || (self.pending.len() as i64) < self.max_ack_pending
    }

    /// Takes the lowest sequence due for redelivery.
    pub(crate) fn pop_redelivery(&mut self) -> Option<u64> {
        self.rdq.pop_first()
    }

    /// Puts back a redelivery that could not be sent (message gone: drop it instead).
    pub(crate) fn forget(&mut self, sseq: u64) -> Result<(), StoreError> {
        if let Some(p) = self.pending.remove(&sseq) {
            self.clear_timer(sseq, p);
            self.rdq.remove(&sseq);
            self.dirty = true;
            self.store.update_ack(p.dseq, sseq)?;
        }
        Ok(())
    }

    /// The ack metadata the next delivery of `sseq` will get.
    pub(crate) fn peek(&self, sseq: u64) -> AckMeta {
        AckMeta {
            deliveries: self.pending.get(&sseq).map_or(1, |p| p.deliveries + 1),
            stream_seq: sseq,
            consumer_seq: self.store.state().delivered.consumer + 1,
        }
    }

    /// Puts a popped redelivery back (it could not be sent now).
    pub(crate) fn requeue(&mut self, sseq: u64) {
        if self.pending.contains_key(&sseq) {
            self.rdq.insert(sseq);
        }
    }

    /// Records a delivery of `sseq` now; returns its ack metadata.
    ///
    /// # Errors
    /// Store I/O errors.
    pub(crate) fn on_deliver(&mut self, sseq: u64, now: Instant) -> Result<AckMeta, StoreError> {
        let dseq = self.store.state().delivered.consumer + 1;
        let deliveries = self.pending.get(&sseq).map_or(1, |p| p.deliveries + 1);
        let ts = now_ns();
        self.last_delivered_ns = ts;
        self.dirty = true;
        self.store.update_delivered(dseq, sseq, deliveries, ts)?;
        if let Some(old) = self.pending.remove(&sseq) {
            self.clear_timer(sseq, old);
        }
        if self.acks_required() {
            let deadline = now + self.wait_for(deliveries);
            self.pending.insert(
                sseq,
                Pend {
                    dseq,
                    deliveries,
                    deadline: Some(deadline),
                },
            );
            self.timers.insert((deadline, sseq));
        } else {
            self.store.update_ack(dseq, sseq)?;
        }
        Ok(AckMeta {
            deliveries,
            stream_seq: sseq,
            consumer_seq: dseq,
        })
    }

    fn clear_timer(&mut self, sseq: u64, p: Pend) {
        if let Some(d) = p.deadline {
            self.timers.remove(&(d, sseq));
        }
    }

    /// Applies an ack payload for the delivery described by `meta`.
    ///
    /// # Errors
    /// Store I/O errors.
    pub(crate) fn on_ack(
        &mut self,
        kind: AckKind,
        meta: AckMeta,
        now: Instant,
    ) -> Result<AckEffect, StoreError> {
        let mut fx = AckEffect::default();
        let sseq = meta.stream_seq;
        match kind {
            AckKind::Ack => fx.acked = self.ack(sseq)?,
            AckKind::Next(body) => {
                fx.acked = self.ack(sseq)?;
                fx.next = Some(body);
            }
            AckKind::Progress => self.progress(sseq, now),
            AckKind::Nak(delay) => {
                if let Some(p) = self.pending.get(&sseq).copied() {
                    fx.naked = Some(AckMeta {
                        deliveries: p.deliveries,
                        stream_seq: sseq,
                        consumer_seq: p.dseq,
                    });
                    fx.dropped = self.nak(sseq, p, delay, now)?;
                }
            }
            AckKind::Term(reason) => {
                if let Some(p) = self.pending.get(&sseq).copied() {
                    self.forget(sseq)?;
                    fx.acked.push(sseq);
                    fx.dropped = Some(Dropped {
                        sseq,
                        dseq: p.dseq,
                        deliveries: p.deliveries,
                        term: Some(reason),
                    });
                }
            }
        }
        if !fx.acked.is_empty() {
            self.last_ack_ns = now_ns();
        }
        Ok(fx)
    }

    fn ack(&mut self, sseq: u64) -> Result<Vec<u64>, StoreError> {
        let seqs: Vec<u64> = match self.policy {
            AckPolicy::All => self.pending.range(..=sseq).map(|(s, _)| *s).collect(),
            _ => self
                .pending
                .contains_key(&sseq)
                .then_some(sseq)
                .into_iter()
                .collect(),
        };
        for &s in &seqs {
            self.forget(s)?;
        }
        Ok(seqs)
    }

    fn progress(&mut self, sseq: u64, now: Instant) {
        let Some(mut p) = self.pending.get(&sseq).copied() else {
            return;
        };
        if self.rdq.contains(&sseq) {
            return;
        }
        self.clear_timer(sseq, p);
        let deadline = now + self.wait_for(p.deliveries);
        p.deadline = Some(deadline);
        self.timers.insert((deadline, sseq));
        self.pending.insert(sseq, p);
    }

    fn nak(
        &mut self,
        sseq: u64,
        mut p: Pend,
        delay: Option<Duration>,
        now: Instant,
    ) -> Result<Option<Dropped>, StoreError> {
        if self.exhausted(p.deliveries) {
            return self.give_up(sseq).map(Some);
        }
        self.clear_timer(sseq, p);
        let delay =
            delay.or_else(|| (!self.backoff.is_empty()).then(|| self.wait_for(p.deliveries)));
        match delay {
            Some(d) if !d.is_zero() => {
                p.deadline = Some(now + d);
                self.timers.insert((now + d, sseq));
            }
            _ => {
                p.deadline = None;
                self.rdq.insert(sseq);
            }
        }
        self.pending.insert(sseq, p);
        Ok(None)
    }

    fn exhausted(&self, deliveries: u64) -> bool {
        self.max_deliver > 0 && deliveries >= self.max_deliver.unsigned_abs()
    }

    fn give_up(&mut self, sseq: u64) -> Result<Dropped, StoreError> {
        let p = self.pending.get(&sseq).copied();
        self.forget(sseq)?;
        let p = p.unwrap_or(Pend {
            dseq: 0,
            deliveries: 0,
            deadline: None,
        });
        Ok(Dropped {
            sseq,
            dseq: p.dseq,
            deliveries: p.deliveries,
            term: None,
        })
    }

    /// The earliest ack deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(d, _)| *d)
    }

    /// Moves every message whose ack deadline passed into the redelivery queue, or
    /// gives up on it at `max_deliver`. Returns the ones given up on.
    ///
    /// # Errors
    /// Store I/O errors.
    pub(crate) fn expire(&mut self, now: Instant) -> Result<Vec<Dropped>, StoreError> {
        let mut dropped = Vec::new();
        while let Some(&(d, sseq)) = self.timers.first() {
            if d > now {
                break;
            }
            self.timers.pop_first();
            let Some(mut p) = self.pending.get(&sseq).copied() else {
                continue;
            };
            if self.exhausted(p.deliveries) {
                dropped.push(self.give_up(sseq)?);
                continue;
            }
            p.deadline = None;
            self.pending.insert(sseq, p);
            self.rdq.insert(sseq);
        }
        Ok(dropped)
    }

    /// Forgets every pending ack and sets delivered and ack floor to `(0, sseq_floor)`,
    /// as nats-server's reset does.
    ///
    /// # Errors
    /// Store I/O errors.
    pub(crate) fn reset_to(&mut self, sseq_floor: u64, now: Instant) -> Result<(), StoreError> {
        let pair = SequencePair {
            consumer: 0,
            stream: sseq_floor,
        };
        self.set_state(
            ConsumerState {
                delivered: pair,
                ack_floor: pair,
                ..ConsumerState::default()
            },
            now,
        )
    }
}
