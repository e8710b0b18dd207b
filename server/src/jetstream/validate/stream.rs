//! Stream config: defaults, the config checks, create/update rules and the required API level.

use super::overlap::OwnedFilters;
use rill_protocol::jsapi::{
    AckPolicy, ApiError, ConsumerConfig, DiscardPolicy, ErrorCode, Metadata, Nanos, PersistMode,
    PriorityPolicy, RetentionPolicy, StorageType, StreamConfig,
};

use super::stream_subjects::{
    check_mirror, check_sources, check_transform_and_republish, stream_subjects,
};
use super::*;

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
    let cfg = stream_create_config(subject_name, cfg, pedantic)?;
    standalone_replicas(&cfg)?;
    Ok(cfg)
}

/// [`stream_create`] without the standalone replica rule: a JetStream cluster places
/// replicas (`jetstream::cluster`).
///
/// # Errors
/// The first rule broken, in nats-server's order.
pub fn stream_create_config(
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
    check_stream_config(cfg, pedantic)
}

/// A server outside a JetStream cluster keeps one copy: more replicas are refused with
/// nats-server's 10074.
///
/// # Errors
/// `STREAM_REPLICAS_NOT_SUPPORTED`.
pub fn standalone_replicas(cfg: &StreamConfig) -> Check {
    if cfg.num_replicas > 1 {
        return Err(ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED.error());
    }
    Ok(())
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

/// `subjects overlap with an existing stream`: `others` holds the subjects of every
/// stream of the account, by stream name (`cfg`'s own are not counted).
///
/// # Errors
/// `STREAM_SUBJECT_OVERLAP`.
pub fn subjects_overlap(cfg: &StreamConfig, others: &OwnedFilters) -> Check {
    match cfg
        .subjects
        .iter()
        .any(|s| others.overlaps_other(s, &cfg.name))
    {
        true => Err(ErrorCode::STREAM_SUBJECT_OVERLAP.error()),
        false => Ok(()),
    }
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
    check_name(
        &cfg.name,
        "stream",
        "stream name is required and can not contain '.', '*', '>', '\\', '/'",
    )?;
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

/// `STREAM.UPDATE` rules (nats-server's `configUpdateCheck`): what may not change.
/// `new` is the output of [`stream_update_request`]. Returns the config to store (a newly
/// sealed stream gets `max_age` 0, `discard` new, deny delete/purge and no roll-ups).
///
/// # Errors
/// The first rule broken (mostly `STREAM_INVALID_CONFIG` with the reason).
pub fn stream_update(old: &StreamConfig, new: StreamConfig) -> Result<StreamConfig, ApiError> {
    if new.name != old.name {
        return Err(invalid("stream configuration name must match original"));
    }
    standalone_replicas(&new)?;
    stream_update_rules(old, new)
}

/// [`stream_update`] in a JetStream cluster: any number of replicas it can place.
///
/// # Errors
/// The first rule broken.
pub fn stream_update_rules(
    old: &StreamConfig,
    mut new: StreamConfig,
) -> Result<StreamConfig, ApiError> {
    if new.name != old.name {
        return Err(invalid("stream configuration name must match original"));
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
    if cfg.ack_policy == AckPolicy::FlowControl {
        return 4;
    }
    let paused = cfg.pause_until.is_some_and(|t| !t.is_zero());
    let uses_priority = cfg.priority_policy != PriorityPolicy::None
        || !cfg.priority_timeout.is_zero()
        || !cfg.priority_groups.is_empty();
    u32::from(paused || uses_priority)
}

/// Metadata key of the API level a stream/consumer needs (stored with the config).
pub const REQUIRED_LEVEL_KEY: &str = "_nats.req.level";
/// Metadata key of the server version (added to replies only).
pub const SERVER_VERSION_KEY: &str = "_nats.ver";
/// Metadata key of the server's API level (added to replies only).
pub const SERVER_LEVEL_KEY: &str = "_nats.level";

/// What nats-server stores on create/update: the dynamic keys removed and
/// `_nats.req.level` set from the config's features.
pub fn stamp_stream_metadata(cfg: &mut StreamConfig) {
    let level = stream_required_level(cfg);
    stamp(&mut cfg.metadata, level);
}

/// Consumer counterpart of [`stamp_stream_metadata`] (also applied on pause).
pub fn stamp_consumer_metadata(cfg: &mut ConsumerConfig) {
    let level = consumer_required_level(cfg);
    stamp(&mut cfg.metadata, level);
}

fn stamp(metadata: &mut Metadata, level: u32) {
    metadata.remove(SERVER_VERSION_KEY);
    metadata.remove(SERVER_LEVEL_KEY);
    metadata.insert(REQUIRED_LEVEL_KEY.to_owned(), level.to_string());
}

/// The metadata nats-server puts in CREATE/UPDATE/INFO replies (not in LIST): the stored
/// metadata plus `_nats.ver` and `_nats.level`.
pub fn reply_metadata(stored: &Metadata, server_version: &str, api_level: u32) -> Metadata {
    let mut m = stored.clone();
    m.insert(SERVER_VERSION_KEY.to_owned(), server_version.to_owned());
    m.insert(SERVER_LEVEL_KEY.to_owned(), api_level.to_string());
    m
}

/// The checks nats-server makes against *existing* origin streams of a mirror/sources
/// (`origin` looks a stream up by name): a mirror inherits `mirror_direct` from its origin's
/// `allow_direct`, and `max_msg_size` may not be smaller than an origin's. Run it right after
/// [`stream_create`] / [`stream_update_request`]; origins that do not exist are fine.
///
/// # Errors
/// `MIRROR_MAX_MESSAGE_SIZE_TOO_BIG`, `SOURCE_MAX_MESSAGE_SIZE_TOO_BIG`.
pub fn check_origins<'a>(
    mut cfg: StreamConfig,
    origin: impl Fn(&str) -> Option<&'a StreamConfig>,
) -> Result<StreamConfig, ApiError> {
    let too_small = |o: &StreamConfig| {
        cfg.max_msg_size > 0 && o.max_msg_size > 0 && cfg.max_msg_size < o.max_msg_size
    };
    let local = |s: &&rill_protocol::jsapi::StreamSource| s.external.is_none();
    if let Some(o) = cfg
        .mirror
        .as_ref()
        .filter(local)
        .and_then(|m| origin(&m.name))
    {
        if too_small(o) {
            return Err(ErrorCode::MIRROR_MAX_MESSAGE_SIZE_TOO_BIG.error());
        }
        cfg.mirror_direct = o.allow_direct;
    }
    let sources = cfg.sources.iter().filter(local);
    if sources.filter_map(|s| origin(&s.name)).any(too_small) {
        return Err(ErrorCode::SOURCE_MAX_MESSAGE_SIZE_TOO_BIG.error());
    }
    Ok(cfg)
}
