//! The cluster in `/jsz` (issue 20), as nats-server 2.15.1 shows it: `meta_cluster`,
//! `ha_assets`, and the `cluster` block of each stream and consumer listed, as this
//! server's member of its group sees it.
//!
//! Facts recorded from three nats-server 2.15.1 (an R3 stream with an R3 and an R1
//! consumer, an R1 stream with a consumer):
//! - `meta_cluster` = `name`, `leader`, `peer` (the leader's peer id, on every
//!   server), `replicas` (the other members: on the
//!   leader each with `current` and `active`, `lag` only when behind; on a follower the
//!   leader current with `active`, the others `current: false, active: 0`),
//!   `cluster_size`, `quorum_needed`, `pending`, `pending_requests`, `pending_infos`,
//!   `snapshot` {`pending_entries`, `pending_size`, `last_time`: Go's zero time before
//!   the first snapshot};
//! - `ha_assets`: the Raft groups this server is a member of, the meta group included
//!   (3 on each server: meta, the R3 stream, the R3 consumer);
//! - a replicated group's block carries `system_account: true` and
//!   `traffic_account: "$SYS"` after `leader_since`; a stream or consumer of one replica
//!   shows only `name` and `leader` (this server's name).
//!
//! rill's meta group has no queue of API requests or stream infos waiting for the
//! leader (requests are answered as they come), so `pending_requests` and
//! `pending_infos` are 0; `pending` counts the committed entries not yet applied here.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::group::{Place, group_info};
use super::{GROUP, MetaGroup, consumer, meta, peer_id, replica};
use crate::raft::Command;

/// Completes a `/jsz` document with the cluster's parts (see the module doc).
pub async fn jsz(meta: &MetaGroup, doc: &mut Value) {
    doc["meta_cluster"] = meta_cluster(meta);
    doc["ha_assets"] = json!(ha_assets(meta).await);
    stream_blocks(meta, doc).await;
    consumer::report::jsz(meta, doc).await;
}

/// nats-server's `meta_cluster` object, as this member sees the group.
fn meta_cluster(meta: &MetaGroup) -> Value {
    let m = meta.raft.metrics().borrow().clone();
    let me = meta.me();
    let info = group_info(
        &meta.raft,
        Some(&meta.net),
        Place::of(meta),
        me,
        GROUP,
        None,
    );
    let size = m.membership_config.membership().voter_ids().count();
    let last = m.last_log_index.unwrap_or_default();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let snapshot = m.snapshot.map_or(0, |l| l.index);
    let mut doc = json!({ "name": meta.cluster_name() });
    if !info.leader.is_empty() {
        doc["leader"] = json!(info.leader);
        doc["peer"] = json!(peer_id(&info.leader));
    }
    if !info.replicas.is_empty() {
        doc["replicas"] = json!(info.replicas);
    }
    doc["cluster_size"] = json!(size);
    doc["quorum_needed"] = json!(size / 2 + 1);
    doc["pending"] = json!(last.saturating_sub(applied));
    doc["pending_requests"] = json!(0);
    doc["pending_infos"] = json!(0);
    doc["snapshot"] = json!({
        "pending_entries": last.saturating_sub(snapshot),
        "pending_size": pending_size(meta, snapshot),
        "last_time": last_snapshot_time(meta),
    });
    doc
}

/// The bytes of the meta log's commands after the snapshot at `snapshot`.
fn pending_size(meta: &MetaGroup, snapshot: u64) -> usize {
    let entries = meta.log.entries(snapshot + 1..).unwrap_or_default();
    entries
        .iter()
        .map(|e| match &e.payload {
            openraft::EntryPayload::Normal(Command(cmd)) => cmd.len(),
            _ => 0,
        })
        .sum()
}

/// When the meta group's snapshot file was last written (Go's zero time: never).
fn last_snapshot_time(meta: &MetaGroup) -> String {
    let file = meta.raft_root.join(GROUP).join("sm").join("snapshot");
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .map_or_else(
            |_| "0001-01-01T00:00:00Z".to_string(),
            |t: SystemTime| crate::monitoring::format::rfc3339(t),
        )
}

/// The Raft groups of more than one member this server belongs to: the meta group,
/// its replicas of replicated streams, its members of replicated consumers.
async fn ha_assets(meta: &MetaGroup) -> usize {
    let replicated = |l: &super::group::Local| super::group::member_count(&l.raft) > 1;
    let streams = replica::locals(meta).await;
    let consumers = consumer::locals(meta).await;
    1 + streams.iter().filter(|l| replicated(l)).count()
        + consumers.iter().filter(|l| replicated(l)).count()
}

/// The `cluster` block of every stream detail in `doc`, as this server's replica sees
/// its group.
async fn stream_blocks(meta: &MetaGroup, doc: &mut Value) {
    let Some(accounts) = doc["account_details"].as_array_mut() else {
        return;
    };
    for account in accounts {
        let name = account["name"].as_str().unwrap_or_default().to_string();
        let Some(streams) = account["stream_detail"].as_array_mut() else {
            continue;
        };
        for stream in streams {
            let sname = stream["name"].as_str().unwrap_or_default();
            let key = meta::key(&name, sname);
            if let Some(info) = replica::member_info(meta, &key).await {
                stream["cluster"] = json!(info);
            }
        }
    }
}
