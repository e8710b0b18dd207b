//! Flags for every consumer config field, applied onto the server's `ConsumerConfig` JSON (shared by
//! `consumer add` and `consumer edit`).

use std::time::Duration;

use anyhow::bail;
use clap::ValueEnum;
use serde_json::{Value, json};

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

fn nanos(d: Duration) -> Value {
    json!(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn lower<T: ValueEnum>(v: &T) -> Value {
    json!(v.to_possible_value().map(|p| p.get_name().to_string()))
}

/// Writes a `--deliver` value into `cfg`.
fn apply_deliver(cfg: &mut Value, text: &str) -> anyhow::Result<()> {
    let obj = cfg
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("consumer config is not an object"))?;
    obj.remove("opt_start_seq");
    obj.remove("opt_start_time");
    let policy = match text.to_ascii_lowercase().replace('-', "_").as_str() {
        "all" => "all",
        "new" => "new",
        "last" => "last",
        "last_per_subject" | "subject" => "last_per_subject",
        other => {
            if let Ok(seq) = other.parse::<u64>() {
                obj.insert("opt_start_seq".into(), json!(seq));
                "by_start_sequence"
            } else if let Ok(t) = parse::time_or_duration(text, false) {
                obj.insert("opt_start_time".into(), json!(parse::rfc3339(t)));
                "by_start_time"
            } else {
                bail!(
                    "--deliver {text:?}: use all, new, last, last-per-subject, a sequence, a duration or a time"
                )
            }
        }
    };
    obj.insert("deliver_policy".into(), json!(policy));
    Ok(())
}

impl ConsumerFlags {
    /// Writes every given flag into `cfg` (a `ConsumerConfig` JSON object).
    pub(crate) fn apply(&self, cfg: &mut Value) -> anyhow::Result<()> {
        if let Some(deliver) = &self.deliver {
            apply_deliver(cfg, deliver)?;
        }
        match self.filter.as_slice() {
            [] => {}
            [one] => cfg["filter_subject"] = json!(one),
            many => cfg["filter_subjects"] = json!(many),
        }
        if !self.backoff.is_empty() {
            cfg["backoff"] = json!(self.backoff.iter().map(|d| nanos(*d)).collect::<Vec<_>>());
        }
        for (k, v) in &self.metadata {
            if !cfg["metadata"].is_object() {
                cfg["metadata"] = json!({});
            }
            cfg["metadata"][k] = json!(v);
        }
        self.apply_scalars(cfg);
        Ok(())
    }

    fn apply_scalars(&self, cfg: &mut Value) {
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                cfg[key] = v;
            }
        };
        set("deliver_subject", self.target.as_ref().map(|t| json!(t)));
        set(
            "deliver_group",
            self.deliver_group.as_ref().map(|g| json!(g)),
        );
        set("ack_policy", self.ack.as_ref().map(lower));
        set("ack_wait", self.ack_wait.map(nanos));
        set("max_deliver", self.max_deliver.map(|n| json!(n)));
        set("max_ack_pending", self.max_pending.map(|n| json!(n)));
        set("max_waiting", self.max_waiting.map(|n| json!(n)));
        set("max_batch", self.max_batch.map(|n| json!(n)));
        set("max_expires", self.max_expires.map(nanos));
        set("replay_policy", self.replay.as_ref().map(lower));
        set("idle_heartbeat", self.heartbeat.map(nanos));
        set("flow_control", self.flow_control.map(|b| json!(b)));
        set("inactive_threshold", self.inactive_threshold.map(nanos));
        set("headers_only", self.headers_only.map(|b| json!(b)));
        set("description", self.description.as_ref().map(|d| json!(d)));
        set("num_replicas", self.replicas.map(|n| json!(n)));
        set("mem_storage", self.memory.map(|b| json!(b)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_forms() {
        let mut cfg = json!({});
        apply_deliver(&mut cfg, "last-per-subject").unwrap();
        assert_eq!(cfg["deliver_policy"], "last_per_subject");
        apply_deliver(&mut cfg, "42").unwrap();
        assert_eq!(cfg["deliver_policy"], "by_start_sequence");
        assert_eq!(cfg["opt_start_seq"], 42);
        apply_deliver(&mut cfg, "1h").unwrap();
        assert_eq!(cfg["deliver_policy"], "by_start_time");
        assert!(cfg.get("opt_start_seq").is_none());
        assert!(apply_deliver(&mut cfg, "sometimes").is_err());
    }

    #[test]
    fn filters_and_ack() {
        let flags = ConsumerFlags {
            ack: Some(Ack::Explicit),
            filter: vec!["a".into(), "b".into()],
            ..ConsumerFlags::default()
        };
        let mut cfg = json!({});
        flags.apply(&mut cfg).unwrap();
        assert_eq!(cfg["ack_policy"], "explicit");
        assert_eq!(cfg["filter_subjects"], json!(["a", "b"]));
    }
}
