//! Consumer create-vs-existing rules: `action`, allowed updates, work-queue uniqueness,
//! limits and the defaults stamped on a new consumer.

use rill_protocol::jsapi::{
    AckPolicy, ApiError, ConsumerAction, ConsumerConfig, DeliverPolicy, ErrorCode, RetentionPolicy,
    StreamConfig,
};
use rill_protocol::subject::filters_overlap;

use super::*;

/// `action: "create"` on an existing consumer: fine only when the checked config equals the
/// stored one (ignoring `_nats.*` metadata). nats-server 2.15.1 compares *before* it stamps
/// the non-durable `inactive_threshold` default, so repeating a create of a named
/// non-durable consumer fails; this function reproduces that.
///
/// # Errors
/// `CONSUMER_ALREADY_EXISTS`.
pub fn consumer_action_create_same(
    action: ConsumerAction,
    existing: &ConsumerConfig,
    new: &ConsumerConfig,
) -> Check {
    if action != ConsumerAction::Create {
        return Ok(());
    }
    let strip = |c: &ConsumerConfig| {
        let mut c = c.clone();
        c.metadata.retain(|k, _| !k.starts_with("_nats."));
        c
    };
    if strip(existing) == strip(new) {
        Ok(())
    } else {
        Err(ErrorCode::CONSUMER_ALREADY_EXISTS.error())
    }
}

/// Updating an existing consumer (nats-server's `checkNewConsumerConfig`): what may not
/// change. Errors other than table rows come back as `CONSUMER_CREATE` (500, 10012).
/// Returns the config to store (a non-durable consumer keeps the 5 s inactivity default).
///
/// # Errors
/// The first field that may not change.
pub fn consumer_update(
    old: &ConsumerConfig,
    mut new: ConsumerConfig,
) -> Result<ConsumerConfig, ApiError> {
    let fail = |text: &str| Err(ErrorCode::CONSUMER_CREATE.err(text));
    let rules = [
        (
            old.deliver_policy != new.deliver_policy,
            "deliver policy can not be updated",
        ),
        (
            old.mem_storage != new.mem_storage,
            "storage type can not be updated",
        ),
        (old.direct != new.direct, "direct can not be updated"),
        (old.sourcing != new.sourcing, "sourcing can not be updated"),
        (
            old.opt_start_seq != new.opt_start_seq,
            "start sequence can not be updated",
        ),
        (
            old.opt_start_time != new.opt_start_time,
            "start time can not be updated",
        ),
        (
            old.ack_policy != new.ack_policy,
            "ack policy can not be updated",
        ),
        (
            old.replay_policy != new.replay_policy,
            "replay policy can not be updated",
        ),
        (
            old.idle_heartbeat != new.idle_heartbeat,
            "heart beats can not be updated",
        ),
        (
            old.flow_control != new.flow_control,
            "flow control can not be updated",
        ),
        (
            !old.is_push() && new.is_push(),
            "can not update pull consumer to push based",
        ),
        (
            old.is_push() && !new.is_push(),
            "can not update push consumer to pull based",
        ),
        (
            old.max_waiting != new.max_waiting,
            "max waiting can not be updated",
        ),
    ];
    if let Some((_, text)) = rules.iter().find(|(broken, _)| *broken) {
        return fail(text);
    }
    let backoffs = i64::try_from(new.backoff.len()).unwrap_or(i64::MAX);
    if backoffs > 0 && new.max_deliver != -1 && backoffs > new.max_deliver {
        return Err(ErrorCode::CONSUMER_MAX_DELIVER_BACKOFF.error());
    }
    if !new.is_durable() && new.inactive_threshold.is_zero() {
        new.inactive_threshold = DEFAULT_INACTIVE_THRESHOLD;
    }
    Ok(new)
}

/// A work-queue stream allows one consumer per (non-overlapping) filter: `others` are the
/// configs of the stream's *other* consumers.
///
/// # Errors
/// `CONSUMER_WQ_MULTIPLE_UNFILTERED` or `CONSUMER_WQ_CONSUMER_NOT_UNIQUE`.
pub fn workqueue_unique<'a>(
    cfg: &ConsumerConfig,
    others: impl IntoIterator<Item = &'a ConsumerConfig>,
) -> Check {
    let mine = cfg.filters();
    let others: Vec<&ConsumerConfig> = others
        .into_iter()
        .filter(|o| !o.direct && !o.sourcing)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    if mine.is_empty() {
        return Err(ErrorCode::CONSUMER_WQ_MULTIPLE_UNFILTERED.error());
    }
    let clash = others.iter().any(|o| {
        let theirs = o.filters();
        theirs.is_empty()
            || mine
                .iter()
                .any(|m| theirs.iter().any(|t| filters_overlap(m, t)))
    });
    if clash {
        Err(ErrorCode::CONSUMER_WQ_CONSUMER_NOT_UNIQUE.error())
    } else {
        Ok(())
    }
}

/// Creating a consumer that does not exist yet: `action: update` fails, the stream's
/// `max_consumers`, work-queue rules and the name length apply, and a non-durable consumer
/// gets `inactive_threshold` 5 s. `others` are the stream's existing consumers. Returns the
/// config to store; the caller assigns a random name when `name` is empty.
///
/// # Errors
/// The first rule broken.
pub fn consumer_new<'a>(
    action: ConsumerAction,
    mut cfg: ConsumerConfig,
    stream: &StreamConfig,
    others: impl IntoIterator<Item = &'a ConsumerConfig>,
) -> Result<ConsumerConfig, ApiError> {
    if action == ConsumerAction::Update {
        return Err(ErrorCode::CONSUMER_DOES_NOT_EXIST.error());
    }
    let others: Vec<&ConsumerConfig> = others.into_iter().collect();
    let count = i64::try_from(others.len()).unwrap_or(i64::MAX);
    if stream.max_consumers > 0 && count >= stream.max_consumers {
        return Err(ErrorCode::MAXIMUM_CONSUMERS_LIMIT.error());
    }
    if stream.retention == RetentionPolicy::WorkQueue && !cfg.direct && !cfg.sourcing {
        if !matches!(cfg.ack_policy, AckPolicy::Explicit | AckPolicy::FlowControl) {
            return Err(ErrorCode::CONSUMER_WQ_REQUIRES_EXPLICIT_ACK.error());
        }
        if cfg.deliver_policy != DeliverPolicy::All {
            return Err(ErrorCode::CONSUMER_WQ_CONSUMER_NOT_DELIVER_ALL.error());
        }
        workqueue_unique(&cfg, others.iter().copied())?;
    }
    // nats-server checks only the durable name here; a longer `name` fails there later,
    // when the store cannot create its directory (500 "error creating store for consumer").
    if cfg.durable_name.len() > MAX_NAME_LEN || cfg.name.len() > MAX_NAME_LEN {
        return Err(ErrorCode::CONSUMER_NAME_TOO_LONG.with(&[("max", &MAX_NAME_LEN)]));
    }
    if !cfg.is_durable() && cfg.inactive_threshold.is_zero() {
        cfg.inactive_threshold = DEFAULT_INACTIVE_THRESHOLD;
    }
    Ok(cfg)
}
