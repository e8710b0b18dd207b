//! The consumer actor's commands: info, update, pause, reset, unpin and stop.
//!
//! Owns nothing; these are methods on the actor, split out of `actor` for size.

use rill_protocol::jsapi::{
    ApiError, ConsumerConfig, ConsumerInfo, ConsumerPauseResponse, ConsumerResetResponse,
    ConsumerUnpinResponse, DeliverPolicy, ErrorCode, Nanos, SequenceInfo, Timestamp,
};
use tokio::time::Instant;
use tracing::warn;

use super::Command;
use super::actor::{Actor, Flow, status_msg, tracker_pending, ts};
use super::push::Push;
use super::source::{Source, full_count};
use super::start::{StoredConsumer, store_err};
use super::status;
use crate::jetstream::store::{meta, now_ns};

impl<S: Source> Actor<S> {
    pub(super) async fn command(&mut self, c: Command) -> Flow {
        match c {
            Command::Info(tx) => {
                let info = self.info().await;
                let _ = tx.send(info);
            }
            Command::Update(cfg, tx) => {
                let _ = tx.send(self.update(*cfg).await);
            }
            Command::Pause(until, tx) => {
                let _ = tx.send(self.pause(until));
            }
            Command::Reset(seq, tx) => {
                let _ = tx.send(self.reset(seq).await);
            }
            Command::Unpin(group, tx) => {
                let _ = tx.send(self.unpin(&group));
            }
            Command::Release(tx) => {
                for (reply, st) in self.waiting.drain_pending(status::server_shutdown) {
                    self.out.deliver(&reply, &status_msg(&reply, st, None));
                }
                let _ = tx.send(());
            }
            Command::Stop(delete, tx) => {
                self.stop(delete);
                let _ = tx.send(());
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    pub(super) fn stop(&mut self, delete: bool) {
        if delete {
            let st = status::conflict("Consumer Deleted");
            for (reply, st) in self.waiting.drain(&st) {
                self.out.deliver(&reply, &status_msg(&reply, st, None));
            }
            self.registry
                .remove_if(&self.stream, &self.name, self.shared.id);
            self.remove_files();
        } else if let Err(e) = self.tracker.sync() {
            warn!(error = %e, "consumer state sync failed");
        }
    }

    /// Recounts the pending messages (one read).
    pub(super) async fn refresh_pending(&mut self) {
        let (start, filters) = (self.read_pos, self.filters.clone());
        if let Ok(n) = self.src.read(move |s| full_count(s, start, &filters)).await {
            self.count = Some(n);
        }
    }

    pub(super) fn num_pending(&self) -> u64 {
        self.buf.len() as u64 + self.count.map_or(0, |c| c.pending) + self.lps.len() as u64
    }

    pub(super) async fn info(&mut self) -> ConsumerInfo {
        self.refresh_pending().await;
        let st = self.tracker.state();
        let now = now_ns();
        let remaining = self.paused_until.map_or(0, |u| {
            i64::try_from(u.unix_nanos() - i128::from(now)).unwrap_or(0)
        });
        let mut cfg = self.cfg.clone();
        cfg.pause_until = self.paused_until;
        ConsumerInfo {
            stream_name: self.stream.as_str().to_owned(),
            name: self.name.as_str().to_owned(),
            created: self.created,
            config: cfg,
            delivered: SequenceInfo {
                consumer_seq: st.delivered.consumer,
                stream_seq: st.delivered.stream,
                last_active: ts(self.tracker.last_delivered_ns),
            },
            ack_floor: SequenceInfo {
                consumer_seq: st.ack_floor.consumer,
                stream_seq: st.ack_floor.stream,
                last_active: ts(self.tracker.last_ack_ns),
            },
            num_ack_pending: self.tracker.num_ack_pending() as u64,
            num_redelivered: self.tracker.num_redelivered() as u64,
            num_waiting: self.waiting.len() as u64,
            num_pending: self.num_pending(),
            push_bound: self
                .push
                .as_ref()
                .is_some_and(|p| self.out.has_interest(&p.subject)),
            paused: remaining > 0,
            pause_remaining: Nanos(remaining.max(0)),
            priority_groups: self.priority.state(),
            ts: ts(now).unwrap_or_default(),
            ..ConsumerInfo::default()
        }
    }

    pub(super) fn write_config(&self) {
        let Some(p) = self.persist.as_ref().filter(|_| !self.cfg.mem_storage) else {
            return;
        };
        let mut cfg = self.cfg.clone();
        cfg.pause_until = self.paused_until;
        let stored = StoredConsumer {
            config: cfg,
            created: self.created,
        };
        let Ok(json) = serde_json::to_vec(&stored) else {
            return;
        };
        if let Err(e) =
            meta::update_consumer_config(p.vfs.as_ref(), &p.root, &self.stream, &self.name, &json)
        {
            warn!(error = %e, "consumer config not saved");
        }
    }

    pub(super) async fn update(&mut self, cfg: ConsumerConfig) -> Result<ConsumerInfo, ApiError> {
        self.tracker.reconfigure(&cfg);
        self.waiting.set_max_waiting(cfg.max_waiting);
        self.priority.update(&cfg);
        let now = Instant::now();
        if cfg.deliver_subject != self.cfg.deliver_subject
            || cfg.flow_control != self.cfg.flow_control
        {
            self.push = cfg
                .is_push()
                .then(|| Push::new(&cfg, &self.stream, &self.name, now));
        }
        let filters: Vec<String> = cfg.filters().into_iter().map(str::to_owned).collect();
        if filters != self.filters {
            // New filters: forget what was read ahead under the old ones.
            if let Some(first) = self.buf.front() {
                self.read_pos = first.seq;
            }
            self.buf.clear();
            self.count = None;
            self.shared.set_filters(filters.clone());
            self.filters = filters;
        }
        self.paused_until = cfg.pause_until;
        self.cfg = cfg;
        self.write_config();
        Ok(self.info().await)
    }

    pub(super) fn pause(&mut self, until: Option<Timestamp>) -> ConsumerPauseResponse {
        let now = i128::from(now_ns());
        self.paused_until = until.filter(|u| u.unix_nanos() > now);
        self.write_config();
        let remaining = self
            .paused_until
            .map_or(0, |u| i64::try_from(u.unix_nanos() - now).unwrap_or(0));
        ConsumerPauseResponse {
            paused: self.paused_until.is_some(),
            pause_until: self.paused_until.unwrap_or_default(),
            pause_remaining: Nanos(remaining),
        }
    }

    /// `CONSUMER.UNPIN` for `group`: `400 10160` when the consumer has no such group.
    pub(super) fn unpin(&mut self, group: &str) -> Result<ConsumerUnpinResponse, ApiError> {
        let (old, event) = self
            .priority
            .unpin(group)
            .ok_or_else(|| ErrorCode::CONSUMER_INVALID_PRIORITY_GROUP.error())?;
        self.unpinned(old.as_deref().unwrap_or_default(), &event);
        Ok(ConsumerUnpinResponse {})
    }

    pub(super) async fn reset(&mut self, seq: u64) -> Result<ConsumerResetResponse, ApiError> {
        let stored_ts = if seq > 0 && self.cfg.deliver_policy == DeliverPolicy::ByStartTime {
            let ts = self.src.read(move |s| s.load_next(seq, ">").map(|m| m.ts));
            ts.await?.ok()
        } else {
            None
        };
        check_reset(&self.cfg, seq, stored_ts)?;
        let next = if seq == 0 {
            self.tracker.state().ack_floor.stream + 1
        } else {
            seq
        };
        let now = Instant::now();
        self.tracker.reset_to(next - 1, now).map_err(store_err)?;
        self.tracker.sync().map_err(store_err)?;
        self.buf.clear();
        self.count = None;
        self.lps.clear();
        self.read_pos = next;
        self.replay_anchor = None;
        self.sync_shared();
        Ok(ConsumerResetResponse {
            info: self.info().await,
            reset_seq: next,
        })
    }

    /// Publishes the interest view (next unread sequence, pending set).
    pub(super) fn sync_shared(&self) {
        let next = self
            .lps
            .front()
            .copied()
            .or_else(|| self.buf.front().map(|m| m.seq))
            .unwrap_or(self.read_pos);
        self.shared
            .next_unread
            .store(next, std::sync::atomic::Ordering::Release);
        if self.interest {
            *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                tracker_pending(&self.tracker);
        }
    }
}

/// Whether a reset to stream sequence `seq` (0: the ack floor) is allowed, as
/// nats-server 2.14 decides (ADR-60): only `all`, `by_start_sequence` (not below
/// `opt_start_seq`) and `by_start_time` (not to a message stored before
/// `opt_start_time`; `stored_ts` is the time of the first message at or after `seq`)
/// consumers may be reset to a sequence.
///
/// # Errors
/// `CONSUMER_INVALID_RESET` ("below start seq", "below start time", "not allowed").
fn check_reset(cfg: &ConsumerConfig, seq: u64, stored_ts: Option<i64>) -> Result<(), ApiError> {
    if seq == 0 {
        return Ok(());
    }
    let why = match cfg.deliver_policy {
        DeliverPolicy::All => return Ok(()),
        DeliverPolicy::ByStartSequence if seq >= cfg.opt_start_seq => return Ok(()),
        DeliverPolicy::ByStartSequence => "below start seq",
        DeliverPolicy::ByStartTime => {
            let start = cfg.opt_start_time.map_or(0, |t| t.unix_nanos());
            match stored_ts {
                Some(ts) if i128::from(ts) < start => "below start time",
                _ => return Ok(()),
            }
        }
        DeliverPolicy::Last | DeliverPolicy::New | DeliverPolicy::LastPerSubject => "not allowed",
    };
    Err(ErrorCode::CONSUMER_INVALID_RESET.with(&[("err", &why)]))
}

#[cfg(test)]
mod reset_tests {
    use super::*;

    fn cfg(policy: DeliverPolicy) -> ConsumerConfig {
        ConsumerConfig {
            deliver_policy: policy,
            opt_start_seq: 3,
            ..ConsumerConfig::default()
        }
    }

    fn text(r: Result<(), ApiError>) -> String {
        r.err().map(|e| e.description).unwrap_or_default()
    }

    #[test]
    fn resets_follow_the_deliver_policy() {
        assert_eq!(text(check_reset(&cfg(DeliverPolicy::All), 1, None)), "");
        let by_seq = cfg(DeliverPolicy::ByStartSequence);
        assert_eq!(
            text(check_reset(&by_seq, 2, None)),
            "invalid reset: below start seq"
        );
        assert_eq!(text(check_reset(&by_seq, 3, None)), "");
        assert_eq!(text(check_reset(&by_seq, 0, None)), "");
        let new = cfg(DeliverPolicy::New);
        assert_eq!(
            text(check_reset(&new, 5, None)),
            "invalid reset: not allowed"
        );
        let mut by_time = cfg(DeliverPolicy::ByStartTime);
        by_time.opt_start_time = Timestamp::from_unix_nanos(100).ok();
        assert_eq!(
            text(check_reset(&by_time, 1, Some(50))),
            "invalid reset: below start time"
        );
        assert_eq!(text(check_reset(&by_time, 1, Some(150))), "");
        assert_eq!(text(check_reset(&by_time, 1, None)), "");
    }
}
