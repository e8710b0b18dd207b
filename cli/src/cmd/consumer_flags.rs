//! Flags for every consumer config field, applied onto the protocol crate's typed `ConsumerConfig`
//! (shared by `consumer add` and `consumer edit`).

use std::time::Duration;

use anyhow::bail;
use clap::ValueEnum;
use rill_protocol::jsapi::{AckPolicy, ConsumerConfig, DeliverPolicy, Nanos, ReplayPolicy};

use crate::parse;

/// Acknowledgement policy.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Ack {
    /// No acks; delivered means done
    None,
    /// Acking one message acks all before it
    All,
    /// Every message is acked on its own
    Explicit,
}

/// Replay speed.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Replay {
    /// As fast as possible
    Instant,
    /// At the rate the messages were published
    Original,
}

impl From<Ack> for AckPolicy {
    fn from(a: Ack) -> Self {
        match a {
            Ack::None => AckPolicy::None,
            Ack::All => AckPolicy::All,
            Ack::Explicit => AckPolicy::Explicit,
        }
    }
}

impl From<Replay> for ReplayPolicy {
    fn from(r: Replay) -> Self {
        match r {
            Replay::Instant => ReplayPolicy::Instant,
            Replay::Original => ReplayPolicy::Original,
        }
    }
}

/// Every settable consumer config field. Unset flags leave the field as it was.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ConsumerFlags {
    /// A pull consumer (the default when --target is not given)
    #[arg(long, conflicts_with = "target")]
    pull: bool,
    /// A push consumer delivering to this subject
    #[arg(long, value_name = "SUBJECT")]
    target: Option<String>,
    /// Queue group for push delivery
    #[arg(long, requires = "target")]
    deliver_group: Option<String>,
    /// Acknowledgement policy
    #[arg(long)]
    ack: Option<Ack>,
    /// Where to start: all, new, last, last-per-subject, a stream sequence, a duration ago (1h) or an
    /// RFC 3339 time
    #[arg(long, value_name = "POLICY")]
    deliver: Option<String>,
    /// Only messages on this subject (repeatable)
    #[arg(long)]
    filter: Vec<String>,
    /// How long to wait for an ack before redelivering
    #[arg(long, value_parser = parse::duration)]
    ack_wait: Option<Duration>,
    /// Give up after this many deliveries (-1 = unlimited)
    #[arg(long, allow_negative_numbers = true)]
    max_deliver: Option<i64>,
    /// Maximum unacknowledged messages outstanding
    #[arg(long, allow_negative_numbers = true)]
    max_pending: Option<i64>,
    /// Maximum waiting pull requests
    #[arg(long)]
    max_waiting: Option<i64>,
    /// Largest batch a pull request may ask for
    #[arg(long)]
    max_batch: Option<i64>,
    /// Longest expiry a pull request may ask for
    #[arg(long, value_parser = parse::duration)]
    max_expires: Option<Duration>,
    /// Replay policy
    #[arg(long)]
    replay: Option<Replay>,
    /// Idle heartbeat interval (push)
    #[arg(long, value_parser = parse::duration)]
    heartbeat: Option<Duration>,
    /// Enable flow control (push)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    flow_control: Option<bool>,
    /// Redelivery backoff, comma separated durations (e.g. 1s,5s,30s)
    #[arg(long, value_delimiter = ',', value_parser = parse::duration)]
    backoff: Vec<Duration>,
    /// Remove the consumer after this long without activity
    #[arg(long, value_parser = parse::duration)]
    inactive_threshold: Option<Duration>,
    /// Deliver only headers (adds Nats-Msg-Size)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    headers_only: Option<bool>,
    /// Description
    #[arg(long)]
    description: Option<String>,
    /// Number of replicas (0 = as the stream)
    #[arg(long)]
    replicas: Option<u32>,
    /// Keep consumer state in memory
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    memory: Option<bool>,
    /// Metadata as key=value (repeatable)
    #[arg(long, value_parser = parse::key_value)]
    metadata: Vec<(String, String)>,
}

/// Overwrites `field` when the flag was given.
fn set<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

fn nanos(d: Option<Duration>) -> Option<Nanos> {
    d.map(Nanos::from_duration)
}

/// Writes a `--deliver` value into `cfg`.
fn apply_deliver(cfg: &mut ConsumerConfig, text: &str) -> anyhow::Result<()> {
    cfg.opt_start_seq = 0;
    cfg.opt_start_time = None;
    cfg.deliver_policy = match text.to_ascii_lowercase().replace('-', "_").as_str() {
        "all" => DeliverPolicy::All,
        "new" => DeliverPolicy::New,
        "last" => DeliverPolicy::Last,
        "last_per_subject" | "subject" => DeliverPolicy::LastPerSubject,
        other => {
            if let Ok(seq) = other.parse::<u64>() {
                cfg.opt_start_seq = seq;
                DeliverPolicy::ByStartSequence
            } else if let Ok(t) = parse::time_or_duration(text, false) {
                cfg.opt_start_time = Some(t.into());
                DeliverPolicy::ByStartTime
            } else {
                bail!(
                    "--deliver {text:?}: use all, new, last, last-per-subject, a sequence, a duration or a time"
                )
            }
        }
    };
    Ok(())
}

impl ConsumerFlags {
    /// Writes every given flag into `cfg`.
    pub(crate) fn apply(&self, cfg: &mut ConsumerConfig) -> anyhow::Result<()> {
        if let Some(deliver) = &self.deliver {
            apply_deliver(cfg, deliver)?;
        }
        match self.filter.as_slice() {
            [] => {}
            [one] => {
                cfg.filter_subject.clone_from(one);
                cfg.filter_subjects.clear();
            }
            many => {
                cfg.filter_subject.clear();
                cfg.filter_subjects = many.to_vec();
            }
        }
        if !self.backoff.is_empty() {
            cfg.backoff = self
                .backoff
                .iter()
                .map(|d| Nanos::from_duration(*d))
                .collect();
        }
        cfg.metadata.extend(self.metadata.iter().cloned());
        self.apply_scalars(cfg);
        Ok(())
    }

    fn apply_scalars(&self, cfg: &mut ConsumerConfig) {
        set(&mut cfg.deliver_subject, self.target.clone());
        set(&mut cfg.deliver_group, self.deliver_group.clone());
        set(&mut cfg.ack_policy, self.ack.map(Into::into));
        set(&mut cfg.ack_wait, nanos(self.ack_wait));
        set(&mut cfg.max_deliver, self.max_deliver);
        set(&mut cfg.max_ack_pending, self.max_pending);
        set(&mut cfg.max_waiting, self.max_waiting);
        set(&mut cfg.max_batch, self.max_batch);
        set(&mut cfg.max_expires, nanos(self.max_expires));
        set(&mut cfg.replay_policy, self.replay.map(Into::into));
        set(&mut cfg.idle_heartbeat, nanos(self.heartbeat));
        set(&mut cfg.flow_control, self.flow_control);
        set(&mut cfg.inactive_threshold, nanos(self.inactive_threshold));
        set(&mut cfg.headers_only, self.headers_only);
        set(&mut cfg.description, self.description.clone());
        set(&mut cfg.num_replicas, self.replicas.map(i64::from));
        set(&mut cfg.mem_storage, self.memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_forms() {
        let mut cfg = ConsumerConfig::default();
        apply_deliver(&mut cfg, "last-per-subject").unwrap();
        assert_eq!(cfg.deliver_policy, DeliverPolicy::LastPerSubject);
        apply_deliver(&mut cfg, "42").unwrap();
        assert_eq!(cfg.deliver_policy, DeliverPolicy::ByStartSequence);
        assert_eq!(cfg.opt_start_seq, 42);
        apply_deliver(&mut cfg, "1h").unwrap();
        assert_eq!(cfg.deliver_policy, DeliverPolicy::ByStartTime);
        assert_eq!(cfg.opt_start_seq, 0);
        assert!(cfg.opt_start_time.is_some());
        assert!(apply_deliver(&mut cfg, "sometimes").is_err());
    }

    #[test]
    fn filters_and_ack() {
        let flags = ConsumerFlags {
            ack: Some(Ack::Explicit),
            filter: vec!["a".into(), "b".into()],
            ..ConsumerFlags::default()
        };
        let mut cfg = ConsumerConfig {
            filter_subject: "old".into(),
            ..ConsumerConfig::default()
        };
        flags.apply(&mut cfg).unwrap();
        let sent = serde_json::to_value(&cfg).unwrap();
        assert_eq!(sent["ack_policy"], "explicit");
        assert_eq!(sent["filter_subjects"], serde_json::json!(["a", "b"]));
        assert!(sent.get("filter_subject").is_none(), "{sent}");
    }
}
