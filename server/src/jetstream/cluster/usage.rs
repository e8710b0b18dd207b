//! `$JS.API.INFO` in a cluster counts the account cluster-wide, as nats-server 2.15.1
//! does (every server reports the same totals): its streams and replicated consumers
//! from the meta group's assignments; its storage, memory and the consumers only one
//! server holds (those of one replica) summed over the servers. Each server sends its
//! own share ([`Usage`], per account) with its `$NRG.HELLO` every half second, so a
//! server's totals are at most about a second behind its peers' stores.

use std::collections::BTreeMap;

use rill_protocol::jsapi::AccountTier;
use serde::{Deserialize, Serialize};

use super::{MetaGroup, PEER_GONE, lock};

/// One server's share of an account's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Usage {
    /// Bytes of its memory streams' replicas.
    memory: u64,
    /// Bytes of its file streams' replicas.
    storage: u64,
    /// Consumers no other server counts (not replicated through a group of their own).
    consumers: u64,
}

/// This server's share of each JetStream account's usage.
pub(super) async fn local(meta: &MetaGroup) -> BTreeMap<String, Usage> {
    let Some(jetstreams) = lock(&meta.replicas.jetstreams).upgrade() else {
        return BTreeMap::new();
    };
    // Every replica of a stream counts each of its replicated consumers.
    let replicated: BTreeMap<(String, String), u64> = meta
        .sm
        .with(|m| {
            let mut n = BTreeMap::new();
            for a in m.consumers.values() {
                *n.entry((a.account.clone(), a.stream.clone())).or_default() += 1;
            }
            n
        })
        .await;
    let mut out = BTreeMap::new();
    for js in jetstreams.enabled() {
        let account = js.account_name().to_string();
        let mut here = AccountTier::default();
        js.add_usage(&mut here);
        let linked: u64 = js
            .streams()
            .iter()
            .filter_map(|h| replicated.get(&(account.clone(), h.name().to_string())))
            .sum();
        let usage = Usage {
            memory: here.memory,
            storage: here.storage,
            consumers: here.consumers.saturating_sub(linked),
        };
        out.insert(account, usage);
    }
    out
}

/// Makes `usage` (this server's share of `account`) the account's cluster-wide
/// totals: its streams and replicated consumers as assigned, plus every live server's
/// share (this one's and the last each peer sent).
pub async fn totals(meta: &MetaGroup, account: &str, usage: &mut AccountTier) {
    let mine = local(meta).await.remove(account).unwrap_or_default();
    let (streams, replicated) = meta
        .sm
        .with(|m| {
            (
                m.streams.values().filter(|a| a.account == account).count() as u64,
                m.consumers
                    .values()
                    .filter(|a| a.account == account)
                    .count() as u64,
            )
        })
        .await;
    let peers: Vec<Usage> = lock(&meta.peers)
        .values()
        .filter(|h| h.at.elapsed() < PEER_GONE)
        .filter_map(|h| h.usage.get(account).copied())
        .collect();
    let all = peers.iter().chain(std::iter::once(&mine));
    usage.streams = streams;
    usage.memory = all.clone().map(|u| u.memory).sum();
    usage.storage = all.clone().map(|u| u.storage).sum();
    usage.consumers = replicated + all.map(|u| u.consumers).sum::<u64>();
}
