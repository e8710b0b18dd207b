//! `$JS.API.INFO`: the account's usage, limits and API counters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rill_protocol::jsapi::{API_LEVEL, AccountInfo, AccountLimits, AccountTier, ApiStats};

use super::{Reply, Request};
use crate::jetstream::JetStream;

/// Builds the `$JS.API.INFO` reply from the registry's cached configs and the
/// streams' byte counts (read without a hop: see `StreamHandle::usage`), in one pass
/// that copies nothing (clients such as async-nats ask for it before every KV bucket
/// create).
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
    js.add_usage(&mut usage);
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
