//! Consumer create requests (the three subject forms) and consumer config defaults/checks.

use rill_protocol::jsapi::{
    AckPolicy, ApiError, ApiSubject, ConsumerConfig, CreateConsumerRequest, DeliverPolicy,
    ErrorCode, Nanos, PriorityPolicy, RetentionPolicy, StreamConfig,
};
use rill_protocol::subject::{has_wildcard, is_subset, validate_publish};

use super::*;

/// Which of the three `CONSUMER.CREATE` subject forms a request used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateKind {
    /// `$JS.API.CONSUMER.CREATE.<stream>`: ephemeral (or `name` from the body).
    LegacyEphemeral,
    /// `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
    LegacyDurable,
    /// `$JS.API.CONSUMER.CREATE.<stream>.<name>[.<filter>]`.
    Named,
}

/// A parsed `CONSUMER.CREATE` / `CONSUMER.DURABLE.CREATE` subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTarget {
    /// Subject form.
    pub kind: CreateKind,
    /// Stream name from the subject.
    pub stream: String,
    /// Consumer name from the subject (empty for the legacy ephemeral form).
    pub consumer: String,
    /// Filter from the subject (named form only; may contain dots).
    pub filter: String,
}

impl CreateTarget {
    /// Parses the request subject. `None` when it is not a consumer-create subject, including
    /// `DURABLE.CREATE` without exactly stream and durable tokens (nats-server does not answer
    /// those at all).
    pub fn parse(subject: &str) -> Option<CreateTarget> {
        CreateTarget::from_api(&ApiSubject::parse(subject).ok()?)
    }

    /// The target of a consumer-create [`ApiSubject`]; `None` for any other.
    pub fn from_api(api: &ApiSubject<'_>) -> Option<CreateTarget> {
        Some(match *api {
            ApiSubject::ConsumerDurableCreate { stream, durable } => {
                CreateTarget::new(CreateKind::LegacyDurable, stream, durable, "")
            }
            ApiSubject::ConsumerCreate {
                stream,
                consumer: None,
                ..
            } => CreateTarget::new(CreateKind::LegacyEphemeral, stream, "", ""),
            ApiSubject::ConsumerCreate {
                stream,
                consumer: Some(consumer),
                filter,
            } => CreateTarget::new(CreateKind::Named, stream, consumer, filter.unwrap_or("")),
            _ => return None,
        })
    }

    fn new(kind: CreateKind, stream: &str, consumer: &str, filter: &str) -> CreateTarget {
        CreateTarget {
            kind,
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
            filter: filter.to_owned(),
        }
    }
}

/// The request-level checks of `CONSUMER.CREATE` (before the stream is looked up). Sets
/// `config.name` from the subject for the durable and named forms, as nats-server does.
///
/// # Errors
/// The first rule broken.
pub fn consumer_create_request(target: &CreateTarget, req: &mut CreateConsumerRequest) -> Check {
    if target.stream != req.stream_name {
        return Err(ErrorCode::STREAM_MISMATCH.error());
    }
    if target.consumer.contains(['\\', '/']) {
        return Err(ErrorCode::CONSUMER_NAME_CONTAINS_PATH_SEPARATORS.error());
    }
    let cfg = &mut req.config;
    match target.kind {
        CreateKind::LegacyDurable => {
            if cfg.durable_name.is_empty() {
                return Err(ErrorCode::CONSUMER_DURABLE_NAME_NOT_SET.error());
            }
            if cfg.durable_name != target.consumer {
                return Err(ErrorCode::CONSUMER_DURABLE_NAME_NOT_MATCH_SUBJECT.error());
            }
            cfg.name.clone_from(&target.consumer);
        }
        CreateKind::Named => {
            if !cfg.durable_name.is_empty() && cfg.durable_name != target.consumer {
                return Err(ErrorCode::CONSUMER_DURABLE_NAME_NOT_MATCH_SUBJECT.error());
            }
            cfg.name.clone_from(&target.consumer);
        }
        CreateKind::LegacyEphemeral if !cfg.durable_name.is_empty() => {
            return Err(ErrorCode::CONSUMER_EPHEMERAL_WITH_DURABLE_NAME.error());
        }
        CreateKind::LegacyEphemeral => {}
    }
    if !target.filter.is_empty() && !cfg.filter_subjects.is_empty() {
        return Err(ErrorCode::CONSUMER_MULTIPLE_FILTERS_NOT_ALLOWED.error());
    }
    if !target.filter.is_empty() && cfg.filter_subject != target.filter {
        return Err(ErrorCode::CONSUMER_CREATE_FILTER_SUBJECT_MISMATCH.error());
    }
    Ok(())
}

/// A server outside a JetStream cluster keeps one copy of a consumer: more replicas are
/// refused with nats-server's 10074, before the stream is looked up.
///
/// # Errors
/// `STREAM_REPLICAS_NOT_SUPPORTED`.
pub fn standalone_consumer_replicas(cfg: &ConsumerConfig) -> Check {
    if cfg.num_replicas > 1 {
        return Err(ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED.error());
    }
    Ok(())
}

fn not_negative<T: Default + PartialOrd>(v: &mut T, field: &str, pedantic: bool) -> Check {
    if *v < T::default() {
        if pedantic {
            return Err(pedantic_err(&format!("{field} must not be negative")));
        }
        *v = T::default();
    }
    Ok(())
}

/// Fills nats-server's consumer defaults (its `setConsumerConfigDefaults`) and checks the
/// config against the stream (its `checkConsumerCfg`). The non-durable `inactive_threshold`
/// default is applied later, by [`consumer_new`].
///
/// # Errors
/// The first rule broken, with nats-server's exact description.
pub fn consumer_config(
    mut cfg: ConsumerConfig,
    stream: &StreamConfig,
    account_max_ack_pending: i64,
    pedantic: bool,
) -> Result<ConsumerConfig, ApiError> {
    if cfg.max_ack_pending == 0
        && cfg.ack_policy != AckPolicy::None
        && stream.consumer_limits.max_ack_pending <= 0
        && (1..DEFAULT_MAX_ACK_PENDING).contains(&account_max_ack_pending)
    {
        // nats-server's default is the account's limit when that is lower.
        cfg.max_ack_pending = account_max_ack_pending;
    }
    consumer_defaults(&mut cfg, stream, pedantic)?;
    check_consumer_identity(&cfg, stream.num_replicas.max(1))?;
    check_consumer_acks(&cfg)?;
    if cfg.is_push() {
        check_push(&cfg, stream)?;
    } else {
        check_pull(&cfg, stream)?;
    }
    check_consumer_limits(&cfg, stream)?;
    if account_max_ack_pending > 0 && cfg.max_ack_pending > account_max_ack_pending {
        let limit = account_max_ack_pending;
        return Err(ErrorCode::CONSUMER_MAX_PENDING_ACK_EXCESS.with(&[("limit", &limit)]));
    }
    check_filters(&cfg)?;
    check_deliver_policy(&cfg)?;
    check_consumer_misc(&cfg)?;
    check_priority(&cfg)?;
    Ok(cfg)
}

fn consumer_defaults(cfg: &mut ConsumerConfig, stream: &StreamConfig, pedantic: bool) -> Check {
    if cfg.max_deliver == 0 || cfg.max_deliver < -1 {
        if pedantic && cfg.max_deliver < -1 {
            return Err(pedantic_err("max_deliver must be set to -1"));
        }
        cfg.max_deliver = -1;
    }
    not_negative(&mut cfg.max_waiting, "max_waiting", pedantic)?;
    if cfg.max_ack_pending < -1 {
        if pedantic {
            return Err(pedantic_err("max_ack_pending must be set to -1"));
        }
        cfg.max_ack_pending = -1;
    }
    not_negative(&mut cfg.max_batch, "max_batch", pedantic)?;
    not_negative(&mut cfg.max_expires, "max_expires", pedantic)?;
    not_negative(&mut cfg.max_bytes, "max_bytes", pedantic)?;
    not_negative(&mut cfg.idle_heartbeat, "idle_heartbeat", pedantic)?;
    not_negative(&mut cfg.inactive_threshold, "inactive_threshold", pedantic)?;
    not_negative(&mut cfg.priority_timeout, "priority_timeout", pedantic)?;
    if !cfg.is_push() && cfg.max_waiting == 0 {
        cfg.max_waiting = DEFAULT_MAX_WAITING;
    }
    if cfg.ack_wait.is_zero() && matches!(cfg.ack_policy, AckPolicy::Explicit | AckPolicy::All) {
        cfg.ack_wait = DEFAULT_ACK_WAIT;
    }
    if let Some(&first) = cfg.backoff.first() {
        if pedantic && cfg.ack_wait != first {
            return Err(pedantic_err(
                "first backoff value has to equal batch AckWait",
            ));
        }
        cfg.ack_wait = first;
    }
    stream_limit_defaults(cfg, stream, pedantic)?;
    if cfg.priority_policy == PriorityPolicy::PinnedClient && cfg.priority_timeout.is_zero() {
        cfg.priority_timeout = DEFAULT_PINNED_TTL;
    }
    if cfg.ack_policy == AckPolicy::FlowControl && !pedantic {
        cfg.flow_control = true;
        cfg.idle_heartbeat = FLOW_CONTROL_ACK_HEARTBEAT;
    }
    Ok(())
}

fn stream_limit_defaults(cfg: &mut ConsumerConfig, stream: &StreamConfig, pedantic: bool) -> Check {
    let limits = stream.consumer_limits;
    if cfg.max_ack_pending == 0 {
        if pedantic && limits.max_ack_pending > 0 {
            return Err(pedantic_err(
                "max_ack_pending must be set if it's configured in stream limits",
            ));
        }
        cfg.max_ack_pending = limits.max_ack_pending;
    }
    if cfg.inactive_threshold.is_zero() {
        if pedantic && !limits.inactive_threshold.is_zero() {
            return Err(pedantic_err(
                "inactive_threshold must be set if it's configured in stream limits",
            ));
        }
        cfg.inactive_threshold = limits.inactive_threshold;
    }
    if cfg.max_ack_pending == 0 && cfg.ack_policy != AckPolicy::None {
        cfg.max_ack_pending = DEFAULT_MAX_ACK_PENDING;
    }
    Ok(())
}

fn check_consumer_identity(cfg: &ConsumerConfig, stream_replicas: i64) -> Check {
    if !cfg.name.is_empty() {
        let text = "consumer name can not contain '.', '*', '>', '\\', '/'";
        check_name(&cfg.name, "consumer", text)?;
    }
    if !cfg.durable_name.is_empty() {
        let text = "consumer durable name can not contain '.', '*', '>', '\\', '/'";
        check_name(&cfg.durable_name, "consumer durable", text)?;
    }
    if cfg.num_replicas > stream_replicas {
        return Err(ErrorCode::CONSUMER_REPLICAS_EXCEEDS_STREAM.error());
    }
    if cfg.num_replicas < 0 {
        return Err(ErrorCode::REPLICAS_COUNT_CANNOT_BE_NEGATIVE.error());
    }
    Ok(())
}

fn check_consumer_acks(cfg: &ConsumerConfig) -> Check {
    if cfg.backoff.iter().any(|b| b.0 < 0) {
        return Err(ErrorCode::CONSUMER_BACK_OFF_NEGATIVE.error());
    }
    if cfg.ack_wait.0 < 0 {
        return Err(ErrorCode::CONSUMER_ACK_WAIT_NEGATIVE.error());
    }
    if cfg.ack_policy == AckPolicy::FlowControl {
        check_ack_flow_control(cfg)?;
    }
    let backoffs = i64::try_from(cfg.backoff.len()).unwrap_or(i64::MAX);
    if backoffs > 0 && cfg.max_deliver != -1 && backoffs > cfg.max_deliver {
        return Err(ErrorCode::CONSUMER_MAX_DELIVER_BACKOFF.error());
    }
    if cfg.description.len() > MAX_DESCRIPTION_LEN {
        return Err(ErrorCode::CONSUMER_DESCRIPTION_TOO_LONG.with(&[("max", &MAX_DESCRIPTION_LEN)]));
    }
    Ok(())
}

fn check_ack_flow_control(cfg: &ConsumerConfig) -> Check {
    if !cfg.is_push() {
        return Err(ErrorCode::CONSUMER_ACK_FC_REQUIRES_PUSH.error());
    }
    if !cfg.flow_control {
        return Err(ErrorCode::CONSUMER_ACK_FC_REQUIRES_FC.error());
    }
    if cfg.idle_heartbeat != FLOW_CONTROL_ACK_HEARTBEAT {
        return Err(invalid("flow control ack policy heartbeat needs to be 1s"));
    }
    if cfg.max_ack_pending <= 0 {
        return Err(ErrorCode::CONSUMER_ACK_FC_REQUIRES_MAX_ACK_PENDING.error());
    }
    if !cfg.ack_wait.is_zero() || !cfg.backoff.is_empty() {
        return Err(ErrorCode::CONSUMER_ACK_FC_REQUIRES_NO_ACK_WAIT.error());
    }
    if cfg.max_deliver > 0 {
        return Err(ErrorCode::CONSUMER_ACK_FC_REQUIRES_NO_MAX_DELIVER.error());
    }
    Ok(())
}

fn check_push(cfg: &ConsumerConfig, stream: &StreamConfig) -> Check {
    let ds = cfg.deliver_subject.as_str();
    if has_wildcard(ds) {
        return Err(ErrorCode::CONSUMER_DELIVER_TO_WILDCARDS.error());
    }
    if validate_publish(ds).is_err() {
        return Err(ErrorCode::CONSUMER_INVALID_DELIVER_SUBJECT.error());
    }
    if stream.subjects.iter().any(|s| is_subset(ds, s)) {
        return Err(ErrorCode::CONSUMER_DELIVER_CYCLE.error());
    }
    if cfg.max_waiting != 0 {
        return Err(ErrorCode::CONSUMER_PUSH_MAX_WAITING.error());
    }
    if cfg.max_ack_pending > 0 && cfg.ack_policy == AckPolicy::None {
        return Err(ErrorCode::CONSUMER_MAX_PENDING_ACK_POLICY_REQUIRED.error());
    }
    if cfg.idle_heartbeat.0 > 0 && cfg.idle_heartbeat < Nanos::from_millis(100) {
        return Err(ErrorCode::CONSUMER_SMALL_HEARTBEAT.error());
    }
    Ok(())
}

fn check_pull(cfg: &ConsumerConfig, stream: &StreamConfig) -> Check {
    let rules = [
        (
            cfg.ack_policy == AckPolicy::None && stream.retention == RetentionPolicy::WorkQueue,
            ErrorCode::CONSUMER_PULL_REQUIRES_ACK,
        ),
        (
            cfg.rate_limit_bps > 0,
            ErrorCode::CONSUMER_PULL_WITH_RATE_LIMIT,
        ),
        (
            cfg.max_waiting < 0,
            ErrorCode::CONSUMER_MAX_WAITING_NEGATIVE,
        ),
        (
            cfg.idle_heartbeat.0 > 0,
            ErrorCode::CONSUMER_HB_REQUIRES_PUSH,
        ),
        (cfg.flow_control, ErrorCode::CONSUMER_FC_REQUIRES_PUSH),
        (
            cfg.max_batch < 0,
            ErrorCode::CONSUMER_MAX_REQUEST_BATCH_NEGATIVE,
        ),
        (
            !cfg.max_expires.is_zero() && cfg.max_expires < Nanos::from_millis(1),
            ErrorCode::CONSUMER_MAX_REQUEST_EXPIRES_TOO_SMALL,
        ),
    ];
    match rules.iter().find(|(broken, _)| *broken) {
        Some((_, code)) => Err(code.error()),
        None => Ok(()),
    }
}

fn check_consumer_limits(cfg: &ConsumerConfig, stream: &StreamConfig) -> Check {
    let limits = stream.consumer_limits;
    if limits.max_ack_pending > 0 && cfg.max_ack_pending > limits.max_ack_pending {
        return Err(
            ErrorCode::CONSUMER_MAX_PENDING_ACK_EXCESS.with(&[("limit", &limits.max_ack_pending)])
        );
    }
    let limit = limits.inactive_threshold;
    if !limit.is_zero() && cfg.inactive_threshold > limit {
        return Err(ErrorCode::CONSUMER_INACTIVE_THRESHOLD_EXCESS.with(&[("limit", &limit)]));
    }
    Ok(())
}

fn check_filters(cfg: &ConsumerConfig) -> Check {
    if !cfg.filter_subject.is_empty() && !cfg.filter_subjects.is_empty() {
        return Err(ErrorCode::CONSUMER_DUPLICATE_FILTER_SUBJECTS.error());
    }
    if !cfg.filter_subject.is_empty() && !is_valid_subject(&cfg.filter_subject) {
        return Err(invalid("invalid subject"));
    }
    if cfg.filter_subjects.iter().any(String::is_empty) {
        return Err(ErrorCode::CONSUMER_EMPTY_FILTER.error());
    }
    let filters = cfg.filters();
    for (i, f) in filters.iter().enumerate() {
        if !is_valid_subject(f) {
            return Err(invalid("invalid subject"));
        }
        if filters
            .iter()
            .enumerate()
            .any(|(j, g)| i != j && is_subset(f, g))
        {
            return Err(ErrorCode::CONSUMER_OVERLAPPING_SUBJECT_FILTERS.error());
        }
    }
    Ok(())
}

fn check_deliver_policy(cfg: &ConsumerConfig) -> Check {
    let policy_err = |text: String| Err(ErrorCode::CONSUMER_INVALID_POLICY.err(text));
    let also = |dp: &str, start: &str| {
        format!("consumer delivery policy is deliver {dp}, but optional start {start} is also set")
    };
    let unset = |dp: &str, what: &str| {
        format!("consumer delivery policy is deliver {dp}, but optional {what} is not set")
    };
    let (seq, time) = (cfg.opt_start_seq > 0, cfg.opt_start_time.is_some());
    let name = match cfg.deliver_policy {
        DeliverPolicy::All => "all",
        DeliverPolicy::Last => "last",
        DeliverPolicy::New => "new",
        DeliverPolicy::LastPerSubject => "last per subject",
        DeliverPolicy::ByStartSequence if !seq => {
            return policy_err(unset("by start sequence", "start sequence"));
        }
        DeliverPolicy::ByStartSequence if time => {
            return policy_err(also("by start sequence", "time"));
        }
        DeliverPolicy::ByStartTime if !time => {
            return policy_err(unset("by start time", "start time"));
        }
        // nats-server really says "start start sequence" here.
        DeliverPolicy::ByStartTime if cfg.opt_start_seq != 0 => {
            return policy_err(also("by start time", "start sequence"));
        }
        DeliverPolicy::ByStartSequence | DeliverPolicy::ByStartTime => return Ok(()),
    };
    if seq {
        return policy_err(also(name, "sequence"));
    }
    if time {
        return policy_err(also(name, "time"));
    }
    if cfg.deliver_policy == DeliverPolicy::LastPerSubject && cfg.filters().is_empty() {
        return policy_err(unset(name, "filter subject"));
    }
    Ok(())
}

/// Go's `strconv.Atoi` error text for the sampling error.
fn parse_sample_freq(s: &str) -> Result<i64, String> {
    let digits = s.strip_suffix('%').unwrap_or(s);
    match digits.parse::<i64>() {
        Ok(n) if n < 0 => Err("<nil>".to_owned()),
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
            ) =>
        {
            Err(format!(
                "strconv.Atoi: parsing {digits:?}: value out of range"
            ))
        }
        Err(_) => Err(format!("strconv.Atoi: parsing {digits:?}: invalid syntax")),
    }
}

fn check_consumer_misc(cfg: &ConsumerConfig) -> Check {
    if !cfg.sample_freq.is_empty() {
        parse_sample_freq(&cfg.sample_freq)
            .map_err(|e| ErrorCode::CONSUMER_INVALID_SAMPLING.err(e))?;
    }
    if cfg.flow_control && cfg.idle_heartbeat.is_zero() {
        return Err(ErrorCode::CONSUMER_WITH_FLOW_CONTROL_NEEDS_HEARTBEATS.error());
    }
    if !cfg.durable_name.is_empty() && !cfg.name.is_empty() && cfg.name != cfg.durable_name {
        return Err(ErrorCode::CONSUMER_CREATE_DURABLE_AND_NAME_MISMATCH.error());
    }
    if metadata_len(&cfg.metadata) > MAX_METADATA_LEN {
        let limit = format!("{}KB", MAX_METADATA_LEN / 1024);
        return Err(ErrorCode::CONSUMER_METADATA_LENGTH.with(&[("limit", &limit)]));
    }
    Ok(())
}

fn is_valid_group(g: &str) -> bool {
    (1..=16).contains(&g.len())
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_=-".contains(&b))
}

fn check_priority(cfg: &ConsumerConfig) -> Check {
    if cfg.priority_policy == PriorityPolicy::None {
        if !cfg.priority_groups.is_empty() {
            return Err(ErrorCode::CONSUMER_PRIORITY_GROUP_WITH_POLICY_NONE.error());
        }
        if cfg.priority_timeout.0 > 0 {
            return Err(ErrorCode::CONSUMER_PINNED_TTL_WITHOUT_PRIORITY_POLICY_NONE.error());
        }
        return Ok(());
    }
    if cfg.is_push() {
        return Err(ErrorCode::CONSUMER_PUSH_WITH_PRIORITY_GROUP.error());
    }
    if cfg.priority_groups.is_empty() {
        return Err(ErrorCode::CONSUMER_PRIORITY_POLICY_WITHOUT_GROUP.error());
    }
    for g in &cfg.priority_groups {
        if g.is_empty() {
            return Err(ErrorCode::CONSUMER_EMPTY_GROUP_NAME.error());
        }
        if !is_valid_group(g) {
            return Err(ErrorCode::CONSUMER_INVALID_GROUP_NAME.error());
        }
    }
    Ok(())
}
