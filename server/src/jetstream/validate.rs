//! Stream and consumer config defaulting and validation, as nats-server 2.15.1 does it on
//! `STREAM.CREATE/UPDATE` and `CONSUMER.CREATE` (pure functions: no I/O, no clock, no locks).
//!
//! Each failure is a row of the single error table ([`ErrorCode`]) with nats-server's exact
//! description; the checks run in nats-server's order, so the *first* error matches too.
//! Every rule was checked against a real nats-server 2.15.1 (standalone, `-js`) with nats-py;
//! the raw replies are `protocol/tests/fixtures/validation_probes.json`, and the tests below
//! replay every probe through these functions.
//!
//! Call order for the API handlers (each step returns the first error):
//! * stream create: [`stream_create`] → (exists?) [`stream_exists_same`] → [`subjects_overlap`];
//! * stream update: [`stream_update_request`] → lookup (else `STREAM_NOT_FOUND`) →
//!   [`stream_update`] → [`subjects_overlap`];
//! * consumer create: [`CreateTarget::parse`] → [`consumer_create_request`] → lookup stream →
//!   [`consumer_config`] → existing? ([`consumer_action_create_same`], [`workqueue_unique`],
//!   [`consumer_update`]) : ([`consumer_new`]).
//!
//! Deliberately not modelled (rill is single-node): clustered checks, account limits and
//! tiers, `external` mirror/source prefixes, the full subject-mapping function language (only
//! wildcard references are checked), `direct`/`sourcing` internal consumers.

use rill_protocol::jsapi::{
    AckPolicy, ApiError, ConsumerAction, ConsumerConfig, CreateConsumerRequest, DeliverPolicy,
    DiscardPolicy, ErrorCode, Metadata, Nanos, PersistMode, PriorityPolicy, RetentionPolicy,
    StorageType, StreamConfig, StreamSource,
};
use rill_protocol::subject::{
    filters_overlap, has_wildcard, is_subset, validate_filter, validate_publish,
};

/// Longest stream/consumer name.
pub const MAX_NAME_LEN: usize = 255;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Largest metadata (sum of key and value lengths).
pub const MAX_METADATA_LEN: usize = 128 * 1024;
/// nats-server's maximum replica count (rill itself supports only 1).
pub const MAX_REPLICAS: i64 = 5;
/// Default `duplicate_window`.
pub const DEFAULT_DUPLICATE_WINDOW: Nanos = Nanos::from_secs(120);
/// Default `ack_wait` for `explicit`/`all`.
pub const DEFAULT_ACK_WAIT: Nanos = Nanos::from_secs(30);
/// Default `max_waiting` of pull consumers.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// Default `max_ack_pending` when acks are required.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Default `inactive_threshold` of non-durable consumers.
pub const DEFAULT_INACTIVE_THRESHOLD: Nanos = Nanos::from_secs(5);
/// Default `priority_timeout` for `pinned_client`.
pub const DEFAULT_PINNED_TTL: Nanos = Nanos::from_secs(120);
/// Heartbeat forced by `ack_policy: flow_control`.
pub const FLOW_CONTROL_ACK_HEARTBEAT: Nanos = Nanos::from_secs(1);

type Check = Result<(), ApiError>;

fn invalid(text: impl std::fmt::Display) -> ApiError {
    ErrorCode::STREAM_INVALID_CONFIG.err(text)
}

fn pedantic_err(text: &str) -> ApiError {
    ErrorCode::PEDANTIC.err(text)
}

/// nats-server's "asset name" rule: non-empty, none of ` \t\r\n\f.*>\/`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains([' ', '\t', '\r', '\n', '\u{c}', '.', '*', '>', '\\', '/'])
}

fn is_valid_subject(s: &str) -> bool {
    validate_filter(s).is_ok()
}

fn metadata_len(m: &Metadata) -> usize {
    m.iter().map(|(k, v)| k.len() + v.len()).sum()
}

// ---------------------------------------------------------------- streams

/// `STREAM.CREATE.<name>`: the API-level checks, then [`check_stream_config`], then the
/// standalone replica rule. Returns the effective config.
///
/// # Errors
/// The first rule broken, in nats-server's order.
pub fn stream_create(
    subject_name: &str,
    cfg: StreamConfig,
    pedantic: bool,
) -> Result<StreamConfig, ApiError> {
    if subject_name != cfg.name {
        return Err(ErrorCode::STREAM_MISMATCH.error());
    }
    if subject_name.contains(['\\', '/']) {
        return Err(ErrorCode::STREAM_NAME_CONTAINS_PATH_SEPARATORS.error());
    }
    if cfg.sealed {
        return Err(invalid("stream configuration for create can not be sealed"));
    }
    if cfg.mirror_direct && cfg.mirror.is_none() {
        return Err(invalid("stream has no mirror but does have mirror direct"));
    }
    let cfg = check_stream_config(cfg, pedantic)?;
    if cfg.num_replicas > 1 {
        return Err(ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED.error());
    }
    Ok(cfg)
}

/// `STREAM.UPDATE.<name>` before the stream is looked up: config checks, then the name in
/// the subject (nats-server checks the config first here, unlike create).
///
/// # Errors
/// The first rule broken.
pub fn stream_update_request(
    subject_name: &str,
    cfg: StreamConfig,
    pedantic: bool,
) -> Result<StreamConfig, ApiError> {
    let cfg = check_stream_config(cfg, pedantic)?;
    if subject_name != cfg.name {
        return Err(ErrorCode::STREAM_MISMATCH.error());
    }
    Ok(cfg)
}

/// Create on an existing name: fine when the effective configs are equal (ignoring the
/// server's `_nats.*` metadata), else `STREAM_NAME_EXIST`.
///
/// # Errors
/// `STREAM_NAME_EXIST`.
pub fn stream_exists_same(existing: &StreamConfig, requested: &StreamConfig) -> Check {
    if without_server_metadata(existing) == without_server_metadata(requested) {
        Ok(())
    } else {
        Err(ErrorCode::STREAM_NAME_EXIST.error())
    }
}

fn without_server_metadata(cfg: &StreamConfig) -> StreamConfig {
    let mut c = cfg.clone();
    c.metadata.retain(|k, _| !k.starts_with("_nats."));
    c
}

/// `subjects overlap with an existing stream`: `others` are the other streams' configs.
///
/// # Errors
/// `STREAM_SUBJECT_OVERLAP`.
pub fn subjects_overlap<'a>(
    cfg: &StreamConfig,
    others: impl IntoIterator<Item = &'a StreamConfig>,
) -> Check {
    for other in others {
        if other.name == cfg.name {
            continue;
        }
        if cfg
            .subjects
            .iter()
            .any(|s| other.subjects.iter().any(|o| filters_overlap(s, o)))
        {
            return Err(ErrorCode::STREAM_SUBJECT_OVERLAP.error());
        }
    }
    Ok(())
}

/// Fills nats-server's defaults and checks a stream config (its `checkStreamCfg`).
///
/// Defaults: `storage` file, `num_replicas` 1, `max_msgs`/`max_bytes`/`max_msg_size`/
/// `max_consumers`/`max_msgs_per_subject` -1 when 0 or below -1, `duplicate_window` 2 min
/// capped by `max_age`, `subjects` = `[name]`, `republish.src` = `>`.
///
/// # Errors
/// The first rule broken, with nats-server's exact description.
pub fn check_stream_config(
    mut cfg: StreamConfig,
    pedantic: bool,
) -> Result<StreamConfig, ApiError> {
    check_stream_identity(&cfg)?;
    stream_numeric_defaults(&mut cfg, pedantic)?;
    stream_duplicates(&mut cfg, pedantic)?;
    stream_feature_rules(&mut cfg, pedantic)?;
    if let Some(mirror) = &cfg.mirror {
        check_mirror(&cfg, mirror)?;
    }
    check_sources(&cfg)?;
    stream_subjects(&mut cfg)?;
    check_transform_and_republish(&mut cfg, pedantic)?;
    if cfg
        .placement
        .as_ref()
        .is_some_and(|p| *p == Default::default())
    {
        cfg.placement = None;
    }
    if cfg
        .placement
        .as_ref()
        .is_some_and(|p| !p.preferred.is_empty())
    {
        return Err(invalid("preferred server not permitted in placement"));
    }
    Ok(cfg)
}

fn check_stream_identity(cfg: &StreamConfig) -> Check {
    if !is_valid_name(&cfg.name) {
        return Err(invalid(
            "stream name is required and can not contain '.', '*', '>', '\\', '/'",
        ));
    }
    if cfg.name.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "stream name is too long, maximum allowed is {MAX_NAME_LEN}"
        )));
    }
    if cfg.description.len() > MAX_DESCRIPTION_LEN {
        return Err(invalid(format!(
            "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
        )));
    }
    if metadata_len(&cfg.metadata) > MAX_METADATA_LEN {
        return Err(invalid(format!(
            "stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes"
        )));
    }
    Ok(())
}

fn unlimited(v: &mut i64, field: &str, pedantic: bool) -> Check {
    if *v == 0 || *v < -1 {
        if pedantic && *v < -1 {
            return Err(pedantic_err(&format!("{field} must be set to -1")));
        }
        *v = -1;
    }
    Ok(())
}

fn stream_numeric_defaults(cfg: &mut StreamConfig, pedantic: bool) -> Check {
    if cfg.num_replicas == 0 {
        cfg.num_replicas = 1;
    }
    if cfg.num_replicas > MAX_REPLICAS {
        return Err(invalid(format!("maximum replicas is {MAX_REPLICAS}")));
    }
    if cfg.num_replicas < 0 {
        return Err(ErrorCode::REPLICAS_COUNT_CANNOT_BE_NEGATIVE.error());
    }
    unlimited(&mut cfg.max_msgs, "max_msgs", pedantic)?;
    unlimited(
        &mut cfg.max_msgs_per_subject,
        "max_msgs_per_subject",
        pedantic,
    )?;
    unlimited(&mut cfg.max_bytes, "max_bytes", pedantic)?;
    let mut size = i64::from(cfg.max_msg_size);
    unlimited(&mut size, "max_msg_size", pedantic)?;
    cfg.max_msg_size = i32::try_from(size).unwrap_or(-1);
    unlimited(&mut cfg.max_consumers, "max_consumers", pedantic)?;
    if cfg.max_age.0 < 0 {
        return Err(invalid("max age can not be negative"));
    }
    if cfg.max_age.0 != 0 && cfg.max_age < Nanos::from_millis(100) {
        return Err(invalid("max age needs to be >= 100ms"));
    }
    Ok(())
}

fn stream_duplicates(cfg: &mut StreamConfig, pedantic: bool) -> Check {
    if cfg.duplicate_window.is_zero() && cfg.mirror.is_none() && cfg.sources.is_empty() {
        if !cfg.max_age.is_zero() && cfg.max_age < DEFAULT_DUPLICATE_WINDOW {
            if pedantic {
                return Err(pedantic_err(
                    "duplicate window cannot be bigger than max age",
                ));
            }
            cfg.duplicate_window = cfg.max_age;
        } else {
            cfg.duplicate_window = DEFAULT_DUPLICATE_WINDOW;
        }
    }
    if cfg.duplicate_window.0 < 0 {
        return Err(invalid("duplicates window can not be negative"));
    }
    if !cfg.max_age.is_zero() && cfg.duplicate_window > cfg.max_age {
        return Err(invalid("duplicates window can not be larger then max age"));
    }
    if cfg.duplicate_window.0 > 0 && cfg.duplicate_window < Nanos::from_millis(100) {
        return Err(invalid("duplicates window needs to be >= 100ms"));
    }
    Ok(())
}

fn stream_feature_rules(cfg: &mut StreamConfig, pedantic: bool) -> Check {
    if cfg.deny_purge && cfg.allow_rollup_hdrs {
        return Err(invalid("roll-ups require the purge permission"));
    }
    if cfg.allow_msg_counter {
        counter_rules(cfg)?;
    }
    if cfg.discard_new_per_subject {
        discard_new_per_subject_rules(cfg)?;
    }
    marker_ttl_rules(cfg, pedantic)?;
    if cfg.allow_msg_schedules {
        if cfg.discard == DiscardPolicy::New {
            return Err(invalid("message scheduling cannot use discard new"));
        }
        if !cfg.allow_rollup_hdrs {
            if pedantic {
                return Err(invalid(
                    "message scheduling cannot be set if roll-ups are disabled",
                ));
            }
            (cfg.allow_rollup_hdrs, cfg.deny_purge) = (true, false);
        }
    }
    if cfg.persist_mode == PersistMode::Async {
        if cfg.storage != StorageType::File {
            return Err(invalid(
                "async persist mode is only supported on file storage",
            ));
        }
        if cfg.num_replicas > 1 {
            return Err(invalid(
                "async persist mode is not supported on replicated streams",
            ));
        }
        if cfg.allow_atomic {
            return Err(invalid(
                "async persist mode is not supported with atomic batch publish",
            ));
        }
    }
    Ok(())
}

fn counter_rules(cfg: &StreamConfig) -> Check {
    if cfg.discard == DiscardPolicy::New {
        return Err(invalid("counter stream cannot use discard new"));
    }
    if cfg.allow_msg_ttl {
        return Err(invalid("counter stream cannot use message TTLs"));
    }
    if cfg.allow_msg_schedules {
        return Err(invalid("counter stream cannot use message schedules"));
    }
    if cfg.retention != RetentionPolicy::Limits {
        return Err(invalid("counter stream can only use limits retention"));
    }
    Ok(())
}

fn discard_new_per_subject_rules(cfg: &StreamConfig) -> Check {
    if cfg.discard != DiscardPolicy::New {
        return Err(invalid(
            "discard new per subject requires discard new policy to be set",
        ));
    }
    if cfg.max_msgs_per_subject <= 0 {
        return Err(invalid(
            "discard new per subject requires max msgs per subject > 0",
        ));
    }
    Ok(())
}

fn marker_ttl_rules(cfg: &mut StreamConfig, pedantic: bool) -> Check {
    let ttl = cfg.subject_delete_marker_ttl;
    if ttl.0 < 0 {
        return Err(invalid("subject delete marker TTL must not be negative"));
    }
    if ttl.is_zero() {
        return Ok(());
    }
    if ttl < Nanos::from_secs(1) {
        return Err(invalid(
            "subject delete marker TTL must be at least 1 second",
        ));
    }
    if !cfg.allow_msg_ttl {
        if pedantic {
            return Err(invalid(
                "subject delete marker cannot be set if message TTLs are disabled",
            ));
        }
        cfg.allow_msg_ttl = true;
    }
    if !cfg.allow_rollup_hdrs {
        if pedantic {
            return Err(invalid(
                "subject delete marker cannot be set if roll-ups are disabled",
            ));
        }
        (cfg.allow_rollup_hdrs, cfg.deny_purge) = (true, false);
    }
    Ok(())
}

fn check_mirror(cfg: &StreamConfig, mirror: &StreamSource) -> Check {
    let rules = [
        (cfg.first_seq > 0, ErrorCode::MIRROR_WITH_FIRST_SEQ),
        (!cfg.subjects.is_empty(), ErrorCode::MIRROR_WITH_SUBJECTS),
        (!cfg.sources.is_empty(), ErrorCode::MIRROR_WITH_SOURCES),
        (cfg.allow_msg_counter, ErrorCode::MIRROR_WITH_COUNTERS),
        (cfg.allow_atomic, ErrorCode::MIRROR_WITH_ATOMIC_PUBLISH),
        (cfg.allow_batched, ErrorCode::MIRROR_WITH_BATCH_PUBLISH),
        (
            cfg.allow_msg_schedules,
            ErrorCode::MIRROR_WITH_MSG_SCHEDULES,
        ),
    ];
    if let Some((_, code)) = rules.iter().find(|(broken, _)| *broken) {
        return Err(code.error());
    }
    if let Some(c) = &mirror.consumer {
        let bad_deliver = has_wildcard(&c.deliver_subject) || !is_valid_subject(&c.deliver_subject);
        let has_start = mirror.opt_start_seq != 0 || mirror.opt_start_time.is_some();
        if !is_valid_name(&c.name) || bad_deliver || has_start || !mirror.filter_subject.is_empty()
        {
            return Err(ErrorCode::MIRROR_DURABLE_CONSUMER_CFG_INVALID.error());
        }
    }
    if !mirror.filter_subject.is_empty() && !mirror.subject_transforms.is_empty() {
        return Err(ErrorCode::MIRROR_MULTIPLE_FILTERS_NOT_ALLOWED.error());
    }
    if !cfg.subject_delete_marker_ttl.is_zero() {
        return Err(invalid("subject delete markers forbidden on mirrors"));
    }
    let srcs: Vec<&str> = mirror
        .subject_transforms
        .iter()
        .map(|t| t.src.as_str())
        .collect();
    for (i, t) in mirror.subject_transforms.iter().enumerate() {
        if !t.src.is_empty() && !is_valid_subject(&t.src) {
            return Err(
                ErrorCode::MIRROR_INVALID_SUBJECT_FILTER.err(format!("invalid subject {}", t.src))
            );
        }
        check_mapping(&t.src, &t.dest)
            .map_err(|e| ErrorCode::MIRROR_INVALID_TRANSFORM_DESTINATION.err(e))?;
        if srcs
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && filters_overlap(&t.src, s))
        {
            return Err(ErrorCode::MIRROR_OVERLAPPING_SUBJECT_FILTERS.error());
        }
    }
    if mirror.external.is_none() && !is_valid_name(&mirror.name) {
        return Err(ErrorCode::MIRROR_INVALID_STREAM_NAME.error());
    }
    Ok(())
}

fn source_identity(s: &StreamSource) -> String {
    let api = s.external.as_ref().map_or("", |e| e.api.as_str());
    let transforms: Vec<String> = s
        .subject_transforms
        .iter()
        .map(|t| format!("{}>{}", t.src, t.dest))
        .collect();
    format!(
        "{}:{api}:{}:{}",
        s.name,
        s.filter_subject,
        transforms.join(",")
    )
}

fn check_sources(cfg: &StreamConfig) -> Check {
    if !cfg.sources.is_empty() && cfg.allow_msg_schedules {
        return Err(ErrorCode::SOURCE_WITH_MSG_SCHEDULES.error());
    }
    let mut seen = std::collections::HashSet::new();
    for src in &cfg.sources {
        if !is_valid_name(&src.name) {
            return Err(ErrorCode::SOURCE_INVALID_STREAM_NAME.error());
        }
        if !seen.insert(source_identity(src)) {
            return Err(ErrorCode::SOURCE_DUPLICATE_DETECTED.error());
        }
        if !src.filter_subject.is_empty() && !src.subject_transforms.is_empty() {
            return Err(ErrorCode::SOURCE_MULTIPLE_FILTERS_NOT_ALLOWED.error());
        }
        for t in &src.subject_transforms {
            if !t.src.is_empty() && !is_valid_subject(&t.src) {
                return Err(ErrorCode::SOURCE_INVALID_SUBJECT_FILTER
                    .err(format!("invalid subject {}", t.src)));
            }
            check_mapping(&t.src, &t.dest)
                .map_err(|e| ErrorCode::SOURCE_INVALID_TRANSFORM_DESTINATION.err(e))?;
        }
        let ts = &src.subject_transforms;
        let overlapping = ts.iter().enumerate().any(|(i, a)| {
            ts.iter()
                .enumerate()
                .any(|(j, b)| i != j && is_subset(&a.src, &b.src))
        });
        if overlapping {
            return Err(ErrorCode::SOURCE_OVERLAPPING_SUBJECT_FILTERS.error());
        }
    }
    Ok(())
}

const JS_NAMESPACES: [&str; 3] = ["$JS.>", "$JSC.>", "$NRG.>"];

fn stream_subjects(cfg: &mut StreamConfig) -> Check {
    if cfg.subjects.is_empty() {
        if cfg.mirror.is_none() && cfg.sources.is_empty() {
            cfg.subjects.push(cfg.name.clone());
        }
        return Ok(());
    }
    for (i, subj) in cfg.subjects.iter().enumerate() {
        check_stream_subject(cfg, i, subj)?;
    }
    Ok(())
}

fn check_stream_subject(cfg: &StreamConfig, i: usize, subj: &str) -> Check {
    if !is_valid_subject(subj) {
        return Err(invalid("invalid subject"));
    }
    if cfg.subjects[..i].iter().any(|s| s == subj) {
        return Err(invalid("duplicate subjects detected"));
    }
    if subj == ">" {
        if !cfg.no_ack {
            return Err(invalid("capturing all subjects requires no-ack to be true"));
        }
        if cfg.num_replicas != 1 {
            return Err(invalid("capturing all subjects requires replicas of 1"));
        }
    }
    if !cfg.no_ack {
        if JS_NAMESPACES.iter().any(|ns| filters_overlap(subj, ns))
            && !is_subset(subj, "$JS.EVENT.>")
        {
            return Err(invalid(
                "subjects that overlap with jetstream api require no-ack to be true",
            ));
        }
        if filters_overlap(subj, "$SYS.>") && !is_subset(subj, "$SYS.ACCOUNT.>") {
            return Err(invalid(
                "subjects that overlap with system api require no-ack to be true",
            ));
        }
    }
    if let Some(later) = cfg.subjects[i + 1..]
        .iter()
        .find(|t| filters_overlap(t, subj))
    {
        return Err(invalid(format!("subject {subj:?} overlaps with {later:?}")));
    }
    Ok(())
}

fn check_transform_and_republish(cfg: &mut StreamConfig, pedantic: bool) -> Check {
    if let Some(t) = &cfg.subject_transform {
        if !t.src.is_empty() && !is_valid_subject(&t.src) {
            return Err(ErrorCode::STREAM_TRANSFORM_INVALID_SOURCE
                .err(format!("invalid subject {}", t.src)));
        }
        check_mapping(&t.src, &t.dest)
            .map_err(|e| ErrorCode::STREAM_TRANSFORM_INVALID_DESTINATION.err(e))?;
    }
    let Some(rp) = &mut cfg.republish else {
        return Ok(());
    };
    if rp.src.is_empty() {
        if pedantic {
            return Err(pedantic_err("republish source can not be empty"));
        }
        rp.src = ">".to_owned();
    }
    if let Some(t) = cfg.subject_transform.as_ref().filter(|t| {
        rp.src == ">" && rp.dest == ">" && cfg.subjects.len() == 1 && t.src == cfg.subjects[0]
    }) {
        if pedantic {
            return Err(pedantic_err(
                "implicit republish based on subject transform",
            ));
        }
        (rp.src, rp.dest) = (t.dest.clone(), t.dest.clone());
    }
    if cfg.subjects.iter().any(|s| filters_overlap(&rp.dest, s)) {
        return Err(invalid(
            "stream configuration for republish destination forms a cycle",
        ));
    }
    if check_mapping(&rp.src, &rp.dest).is_err() {
        let (src, dest) = (&rp.src, &rp.dest);
        return Err(invalid(format!(
            "stream configuration for republish with transform from '{src}' to '{dest}' not valid"
        )));
    }
    Ok(())
}

/// The part of nats-server's mapping check rill implements: the destination is a valid
/// subject and every `$N` / `{{wildcard(N)}}` refers to an existing `*` of the source.
fn check_mapping(src: &str, dest: &str) -> Result<(), String> {
    let wildcards = if src.is_empty() {
        0
    } else {
        src.split('.').filter(|t| *t == "*").count()
    };
    for token in dest.split('.') {
        let index = if let Some(n) = token.strip_prefix('$') {
            n.parse::<usize>().ok()
        } else if token.starts_with("{{") && token.ends_with("}}") {
            wildcard_arg(token)
        } else {
            None
        };
        if let Some(i) = index.filter(|i| *i == 0 || *i > wildcards) {
            return Err(format!(
                "invalid mapping destination: wildcard index out of range in {token}: [{i}]"
            ));
        }
    }
    if !dest.is_empty() && !is_valid_subject(dest) {
        return Err(format!(
            "invalid mapping destination: invalid subject {dest}"
        ));
    }
    Ok(())
}

fn wildcard_arg(token: &str) -> Option<usize> {
    let inner = token.trim_start_matches("{{").trim_end_matches("}}").trim();
    let lower = inner.to_ascii_lowercase();
    let arg = lower.strip_prefix("wildcard(")?.strip_suffix(')')?;
    arg.trim().parse().ok()
}

/// `STREAM.UPDATE` rules (nats-server's `configUpdateCheck`): what may not change.
/// `new` is the output of [`stream_update_request`]. Returns the config to store (a newly
/// sealed stream gets `max_age` 0, `discard` new, deny delete/purge and no roll-ups).
///
/// # Errors
/// The first rule broken (mostly `STREAM_INVALID_CONFIG` with the reason).
pub fn stream_update(old: &StreamConfig, mut new: StreamConfig) -> Result<StreamConfig, ApiError> {
    if new.name != old.name {
        return Err(invalid("stream configuration name must match original"));
    }
    if new.num_replicas > 1 {
        return Err(ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED.error());
    }
    let wq = RetentionPolicy::WorkQueue;
    let rules = [
        (
            new.storage != old.storage,
            "stream configuration update can not change storage type",
        ),
        (
            new.retention != old.retention && (old.retention == wq || new.retention == wq),
            "stream configuration update can not change retention policy to/from workqueue",
        ),
        (
            old.sealed && !new.sealed,
            "stream configuration update can not unseal a sealed stream",
        ),
        (
            old.deny_delete && !new.deny_delete,
            "stream configuration update can not cancel deny message deletes",
        ),
        (
            old.deny_purge && !new.deny_purge,
            "stream configuration update can not cancel deny purge",
        ),
    ];
    if let Some((_, text)) = rules.iter().find(|(broken, _)| *broken) {
        return Err(invalid(text));
    }
    if new.mirror.is_some() && new.mirror != old.mirror {
        return Err(ErrorCode::STREAM_MIRROR_NOT_UPDATABLE.error());
    }
    if new.discard_new_per_subject {
        discard_new_per_subject_rules(&new)?;
    }
    let rules = [
        (
            old.allow_msg_ttl && !new.allow_msg_ttl,
            "message TTL status can not be disabled",
        ),
        (
            old.allow_msg_counter != new.allow_msg_counter,
            "stream configuration update can not change message counter setting",
        ),
        (
            old.allow_msg_schedules && !new.allow_msg_schedules,
            "message schedules can not be disabled",
        ),
        (
            old.persist_mode != new.persist_mode,
            "stream configuration update can not change persist mode",
        ),
    ];
    if let Some((_, text)) = rules.iter().find(|(broken, _)| *broken) {
        return Err(invalid(text));
    }
    if new.sealed {
        new.max_age = Nanos::ZERO;
        new.discard = DiscardPolicy::New;
        (new.deny_delete, new.deny_purge, new.allow_rollup_hdrs) = (true, true, false);
    }
    Ok(new)
}

/// The `_nats.req.level` nats-server stamps on a stream: the API level its features need.
pub fn stream_required_level(cfg: &StreamConfig) -> u32 {
    if cfg.allow_batched {
        4
    } else if cfg.allow_msg_counter
        || cfg.allow_atomic
        || cfg.allow_msg_schedules
        || cfg.persist_mode == PersistMode::Async
    {
        2
    } else {
        u32::from(cfg.allow_msg_ttl || !cfg.subject_delete_marker_ttl.is_zero())
    }
}

/// The `_nats.req.level` nats-server stamps on a consumer.
pub fn consumer_required_level(cfg: &ConsumerConfig) -> u32 {
    let uses_priority =
        cfg.priority_policy != PriorityPolicy::None || !cfg.priority_groups.is_empty();
    u32::from(cfg.pause_until.is_some() || uses_priority)
}

// ---------------------------------------------------------------- consumers

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
    /// Parses the request subject. `None` when it is not a consumer-create subject;
    /// `Some(Err)` for `DURABLE.CREATE` with a wrong token count.
    pub fn parse(subject: &str) -> Option<Result<CreateTarget, ApiError>> {
        let rest = subject.strip_prefix("$JS.API.CONSUMER.")?;
        if let Some(rest) = rest.strip_prefix("DURABLE.CREATE.") {
            let parts: Vec<&str> = rest.split('.').collect();
            let [stream, consumer] = parts[..] else {
                return Some(Err(ErrorCode::CONSUMER_DURABLE_NAME_NOT_IN_SUBJECT.error()));
            };
            return Some(Ok(CreateTarget::new(
                CreateKind::LegacyDurable,
                stream,
                consumer,
                "",
            )));
        }
        let rest = rest.strip_prefix("CREATE.")?;
        let mut parts = rest.splitn(3, '.');
        let stream = parts.next().filter(|s| !s.is_empty())?;
        Some(Ok(match (parts.next(), parts.next()) {
            (None, _) => CreateTarget::new(CreateKind::LegacyEphemeral, stream, "", ""),
            (Some(consumer), filter) => {
                CreateTarget::new(CreateKind::Named, stream, consumer, filter.unwrap_or(""))
            }
        }))
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
    pedantic: bool,
) -> Result<ConsumerConfig, ApiError> {
    consumer_defaults(&mut cfg, stream, pedantic)?;
    check_consumer_identity(&cfg)?;
    check_consumer_acks(&cfg)?;
    if cfg.is_push() {
        check_push(&cfg, stream)?;
    } else {
        check_pull(&cfg, stream)?;
    }
    check_consumer_limits(&cfg, stream)?;
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

fn check_consumer_identity(cfg: &ConsumerConfig) -> Check {
    if !cfg.name.is_empty() && !is_valid_name(&cfg.name) {
        return Err(invalid(
            "consumer name can not contain '.', '*', '>', '\\', '/'",
        ));
    }
    if !cfg.durable_name.is_empty() && !is_valid_name(&cfg.durable_name) {
        return Err(invalid(
            "consumer durable name can not contain '.', '*', '>', '\\', '/'",
        ));
    }
    // The stream is always R1 in rill, so "exceeds parent stream" equals "more than one".
    if cfg.num_replicas > 1 {
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
    if cfg.durable_name.len() > MAX_NAME_LEN {
        return Err(ErrorCode::CONSUMER_NAME_TOO_LONG.with(&[("max", &MAX_NAME_LEN)]));
    }
    if !cfg.is_durable() && cfg.inactive_threshold.is_zero() {
        cfg.inactive_threshold = DEFAULT_INACTIVE_THRESHOLD;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    //! Two kinds of tests:
    //! * `replays_every_nats_server_probe`: every request in
    //!   `validation_probes.json` (sent to nats-server 2.15.1 with nats-py) is replayed, in
    //!   order, through these functions over a tiny in-memory stream/consumer model; errors
    //!   must equal nats-server's `{code, err_code, description}` exactly (INVALID_JSON: the
    //!   code only, the text is Go's JSON parser) and accepted configs must equal the config
    //!   nats-server returned (ignoring its `_nats.*` metadata).
    //! * table-driven unit tests per rule, with insta snapshots of the error JSON.

    use std::collections::BTreeMap;

    use rill_protocol::jsapi::{
        ConsumerConfig, CreateConsumerRequest, StreamConfig, parse_request,
    };
    use serde_json::Value;

    use super::*;

    const PROBES: &str = include_str!("../../../protocol/tests/fixtures/validation_probes.json");

    #[derive(Default)]
    struct Model {
        streams: BTreeMap<String, (StreamConfig, Vec<ConsumerConfig>)>,
    }

    fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
        parse_request(body).map_err(|e| ErrorCode::INVALID_JSON.err(e))
    }

    fn json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).expect("serialisable")
    }

    impl Model {
        fn request(&mut self, subject: &str, body: &[u8]) -> Result<Value, ApiError> {
            if let Some(name) = subject.strip_prefix("$JS.API.STREAM.CREATE.") {
                self.stream_create(name, body)
            } else if let Some(name) = subject.strip_prefix("$JS.API.STREAM.UPDATE.") {
                self.stream_update(name, body)
            } else {
                self.consumer_create(subject, body)
            }
        }

        fn stream_create(&mut self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
            let cfg = stream_create(name, parse(body)?, false)?;
            if let Some((existing, _)) = self.streams.get(name) {
                stream_exists_same(existing, &cfg)?;
                return Ok(json(existing));
            }
            subjects_overlap(&cfg, self.streams.values().map(|(c, _)| c))?;
            self.streams
                .insert(name.to_owned(), (cfg.clone(), Vec::new()));
            Ok(json(&cfg))
        }

        fn stream_update(&mut self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
            let cfg = stream_update_request(name, parse(body)?, false)?;
            let (old, _) = self
                .streams
                .get(name)
                .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
            let cfg = stream_update(old, cfg)?;
            subjects_overlap(&cfg, self.streams.values().map(|(c, _)| c))?;
            if let Some(entry) = self.streams.get_mut(name) {
                entry.0 = cfg.clone();
            }
            Ok(json(&cfg))
        }

        fn consumer_create(&mut self, subject: &str, body: &[u8]) -> Result<Value, ApiError> {
            let target = CreateTarget::parse(subject).expect("consumer subject")?;
            let mut req: CreateConsumerRequest = parse(body)?;
            consumer_create_request(&target, &mut req)?;
            let (stream, consumers) = self
                .streams
                .get_mut(&req.stream_name)
                .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
            let cfg = consumer_config(req.config, stream, req.pedantic)?;
            let name = if cfg.is_durable() {
                &cfg.durable_name
            } else {
                &cfg.name
            };
            let existing = consumers
                .iter()
                .position(|c| !name.is_empty() && c.name == *name);
            let Some(i) = existing else {
                let cfg = consumer_new(req.action, cfg, stream, consumers.iter())?;
                consumers.push(cfg.clone());
                return Ok(json(&cfg));
            };
            consumer_action_create_same(req.action, &consumers[i], &cfg)?;
            if stream.retention == RetentionPolicy::WorkQueue {
                let others = consumers
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, c)| c);
                workqueue_unique(&cfg, others)?;
            }
            let cfg = consumer_update(&consumers[i], cfg)?;
            consumers[i] = cfg.clone();
            Ok(json(&cfg))
        }
    }

    fn body_bytes(body: &Value) -> Vec<u8> {
        match body {
            Value::Null => Vec::new(),
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).expect("json"),
        }
    }

    fn without_metadata(mut v: Value) -> Value {
        if let Value::Object(m) = &mut v {
            m.remove("metadata");
        }
        v
    }

    #[test]
    fn replays_every_nats_server_probe() {
        let probes: Vec<Value> = serde_json::from_str(PROBES).expect("probes");
        let mut model = Model::default();
        let mut failures = Vec::new();
        for p in &probes {
            let label = p["label"].as_str().expect("label");
            let subject = p["subject"].as_str().expect("subject");
            let got = model.request(subject, &body_bytes(&p["body"]));
            let want = &p["reply"];
            let ok = match (&got, want.get("error")) {
                (Err(e), Some(w)) if e.is(ErrorCode::INVALID_JSON) => w["err_code"] == 10025,
                (Err(e), Some(w)) => json(e) == *w,
                (Ok(cfg), None) => {
                    without_metadata(cfg.clone()) == without_metadata(want["config"].clone())
                }
                _ => false,
            };
            if !ok {
                failures.push(format!("{label}: got {got:?}\n   want {want}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} probes differ:\n{}",
            failures.len(),
            probes.len(),
            failures.join("\n")
        );
        assert!(probes.len() > 150, "probe file shrank");
    }
}
