//! `$JS.API.INFO`: the account's usage, limits and API counters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rill_protocol::jsapi::{
    API_LEVEL, AccountInfo, AccountLimits, AccountTier, ApiStats, StorageType,
};

use super::{Reply, Request};
use crate::jetstream::JetStream;

/// Builds the `$JS.API.INFO` reply from the registry's cached configs and the
/// streams' byte counts (read without a hop: see `StreamHandle::usage`).
pub(super) fn info(js: &Arc<JetStream>, req: &Request) -> Reply {
    if let Err(e) = req.check_level() {
        return Reply::from(Err::<AccountInfo, _>(e));
    }
    let l = js.limits();
    let mut usage = AccountTier {
        limits: AccountLimits {
            max_memory: l.max_memory,
            max_storage: l.max_store,
            max_streams: l.max_streams,
            max_consumers: l.max_consumers,
            max_ack_pending: l.max_ack_pending,
            max_bytes_required: l.max_bytes_required,
            memory_max_stream_bytes: l.memory_max_stream_bytes,
            storage_max_stream_bytes: l.store_max_stream_bytes,
        },
        ..AccountTier::default()
    };
    for (_, cfg) in js.stream_configs() {
        usage.streams += 1;
        let reserved = u64::try_from(cfg.max_bytes).unwrap_or(0);
        let used = js.stream(&cfg.name).map_or(0, |h| h.usage_bytes());
        if cfg.storage == StorageType::Memory {
            usage.memory += used;
            usage.reserved_memory += reserved;
        } else {
            usage.storage += used;
            usage.reserved_storage += reserved;
        }
    }
    usage.consumers = js.streams().iter().map(|h| h.consumer_count() as u64).sum();
    let body = AccountInfo {
        usage,
        domain: js.domain().to_owned(),
        api: ApiStats {
            level: API_LEVEL,
            total: js.api_total.load(Ordering::Relaxed),
            errors: js.api_errors.load(Ordering::Relaxed),
            inflight: 0,
        },
        ..AccountInfo::default()
    };
    Reply::from(Ok(body))
}
