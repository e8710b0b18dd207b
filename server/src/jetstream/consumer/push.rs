//! Push consumers: the deliver subject, idle heartbeats, flow control and the
//! `rate_limit_bps` pacing.
//!
//! Owns the push-side timers and the outstanding flow-control request.
//!
//! Flow control: after every window of deliveries (messages or bytes) the consumer
//! sends `100 FlowControl Request` with a reply subject `$JS.FC.<stream>.<consumer>.<n>`;
//! the client answers with an empty message there. If another whole window was
//! delivered and the request is still unanswered, delivery stalls until it is.

use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::ConsumerConfig;
use tokio::time::Instant;

/// Messages per flow-control window.
const FC_WINDOW_MSGS: u64 = 512;
/// Bytes per flow-control window.
const FC_WINDOW_BYTES: u64 = 2 * 1024 * 1024;

/// Push delivery state.
#[derive(Debug)]
pub(crate) struct Push {
    /// Deliver subject (the route of every delivery).
    pub subject: Bytes,
    heartbeat: Option<Duration>,
    next_hb: Option<Instant>,
    flow_control: bool,
    fc_prefix: String,
    fc_seq: u64,
    fc_outstanding: Option<String>,
    since_fc_msgs: u64,
    since_fc_bytes: u64,
    rate_bps: u64,
    next_send: Option<Instant>,
}

impl Push {
    /// Push state for `cfg` (which must have a deliver subject).
    pub(crate) fn new(cfg: &ConsumerConfig, stream: &str, consumer: &str, now: Instant) -> Self {
        let heartbeat = cfg.idle_heartbeat.to_duration().filter(|d| !d.is_zero());
        Self {
            subject: Bytes::copy_from_slice(cfg.deliver_subject.as_bytes()),
            heartbeat,
            next_hb: heartbeat.map(|h| now + h),
            flow_control: cfg.flow_control,
            fc_prefix: format!("$JS.FC.{stream}.{consumer}"),
            fc_seq: 0,
            fc_outstanding: None,
            since_fc_msgs: 0,
            since_fc_bytes: 0,
            rate_bps: cfg.rate_limit_bps,
            next_send: None,
        }
    }

    /// The subject the flow-control answers arrive on (`<prefix>.>`).
    pub(crate) fn fc_filter(&self) -> String {
        format!("{}.>", self.fc_prefix)
    }

    /// True when flow control is on.
    pub(crate) fn flow_control(&self) -> bool {
        self.flow_control
    }

    /// The unanswered flow-control subject, when delivery is stalled on it.
    pub(crate) fn stalled_on(&self) -> Option<&str> {
        let stalled =
            self.since_fc_msgs >= FC_WINDOW_MSGS || self.since_fc_bytes >= FC_WINDOW_BYTES;
        self.fc_outstanding.as_deref().filter(|_| stalled)
    }

    /// True when rate limit and flow control allow a delivery at `now`.
    pub(crate) fn may_send(&self, now: Instant) -> bool {
        self.stalled_on().is_none() && self.next_send.is_none_or(|t| t <= now)
    }

    /// Records a delivery of `size` bytes; returns a flow-control subject when a
    /// request must be sent now.
    pub(crate) fn delivered(&mut self, size: usize, now: Instant) -> Option<String> {
        if let Some(h) = self.heartbeat {
            self.next_hb = Some(now + h);
        }
        if self.rate_bps > 0 {
            let secs = (size as f64 * 8.0) / self.rate_bps as f64;
            let base = self.next_send.filter(|t| *t > now).unwrap_or(now);
            self.next_send = Some(base + Duration::from_secs_f64(secs));
        }
        if !self.flow_control {
            return None;
        }
        self.since_fc_msgs += 1;
        self.since_fc_bytes += size as u64;
        let window = self.since_fc_msgs >= FC_WINDOW_MSGS || self.since_fc_bytes >= FC_WINDOW_BYTES;
        if window && self.fc_outstanding.is_none() {
            self.fc_seq += 1;
            let subj = format!("{}.{}", self.fc_prefix, self.fc_seq);
            self.fc_outstanding = Some(subj.clone());
            self.since_fc_msgs = 0;
            self.since_fc_bytes = 0;
            return Some(subj);
        }
        None
    }

    /// The client answered the flow-control request on `subject`.
    pub(crate) fn fc_answered(&mut self, subject: &[u8]) {
        if self.fc_outstanding.as_deref().map(str::as_bytes) == Some(subject) {
            self.fc_outstanding = None;
        }
    }

    /// True when an idle heartbeat is due; schedules the next one.
    pub(crate) fn heartbeat_due(&mut self, now: Instant) -> bool {
        match (self.heartbeat, self.next_hb) {
            (Some(h), Some(due)) if due <= now => {
                self.next_hb = Some(now + h);
                true
            }
            _ => false,
        }
    }

    /// The next heartbeat or rate-limit wake-up.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.next_hb, self.next_send].into_iter().flatten().min()
    }
}
