//! `$JS.API.INFO`: the account's usage, limits and API counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rill_protocol::jsapi::{API_LEVEL, AccountInfo, AccountLimits, AccountTier, ApiStats};

use super::{Reply, Request};
use crate::config::AccountJetStreamLimits;
use crate::jetstream::JetStream;

/// Builds the `$JS.API.INFO` reply from the registry's cached configs and the
/// streams' byte counts (read without a hop: see `StreamHandle::usage`), in one pass
/// that copies nothing (clients such as async-nats ask for it before every KV bucket
/// create).
pub(super) async fn info(js: &Arc<JetStream>, req: &Request) -> Reply {
    if let Err(e) = req.check_level() {
        return Reply::from(Err::<AccountInfo, _>(e));
    }
    let l = js.limits();
    let mut usage = AccountTier {
        // With tiers, nats-server leaves the account-wide limits at zero.
        limits: if l.tiers.is_empty() {
            account_limits(&l)
        } else {
            AccountLimits {
                max_memory: 0,
                max_storage: 0,
                max_streams: 0,
                max_consumers: 0,
                max_ack_pending: 0,
                memory_max_stream_bytes: 0,
                storage_max_stream_bytes: 0,
                max_bytes_required: false,
            }
        },
        ..AccountTier::default()
    };
    js.add_usage(&mut usage);
    // In a cluster, the account's totals over every server (as nats-server 2.15.1).
    if let Some(meta) = js.share.meta() {
        crate::jetstream::cluster::usage::totals(meta, js.account_name(), &mut usage).await;
    }
    let tiers = tiers(&l, &usage);
    let body = AccountInfo {
        usage,
        tiers,
        domain: js.domain().to_owned(),
        api: ApiStats {
            level: API_LEVEL,
            total: js.api_total.load(Ordering::Relaxed),
            errors: js.api_errors.load(Ordering::Relaxed),
            inflight: 0,
        },
    };
    Reply::from(Ok(body))
}

fn account_limits(l: &AccountJetStreamLimits) -> AccountLimits {
    AccountLimits {
        max_memory: l.max_memory,
        max_storage: l.max_store,
        max_streams: l.max_streams,
        max_consumers: l.max_consumers,
        max_ack_pending: l.max_ack_pending,
        max_bytes_required: l.max_bytes_required,
        memory_max_stream_bytes: l.memory_max_stream_bytes,
        storage_max_stream_bytes: l.store_max_stream_bytes,
    }
}

/// Each tier with its limits; the `R1` tier holds this server's streams, so it shows
/// the account's usage (an R3 stream's usage is not split out per tier yet).
fn tiers(l: &AccountJetStreamLimits, usage: &AccountTier) -> BTreeMap<String, AccountTier> {
    l.tiers
        .iter()
        .map(|(name, tier)| {
            let mut t = if name == "R1" {
                *usage
            } else {
                AccountTier::default()
            };
            t.limits = account_limits(tier);
            (name.clone(), t)
        })
        .collect()
}
