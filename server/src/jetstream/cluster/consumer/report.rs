//! Replicated consumers in `/jsz?consumers=1`, as nats-server 2.15.1 shows them: each
//! server lists the consumers it holds a member of, the leader from the running
//! consumer and a follower from its committed state, each with its group's `cluster`
//! block as that member sees it (the other members, the leader among them).

use rill_protocol::jsapi::{ConsumerInfo, SequenceInfo};
use serde_json::{Value, json};

use super::super::MetaGroup;
use super::{ConsumerAssignment, Member, cluster_info};
use crate::jetstream::store::{SequencePair, now_ns};
use crate::jetstream::stream::timestamp;
use crate::locks::lock;

/// Completes the `consumer_detail` of every stream detail in `doc` (a `/jsz` document
/// with `account_details`): the cluster block of each consumer listed (running here),
/// and the replicated consumers this server follows.
pub async fn jsz(meta: &MetaGroup, doc: &mut Value) {
    let Some(accounts) = doc["account_details"].as_array_mut() else {
        return;
    };
    let members: Vec<(ConsumerAssignment, std::sync::Arc<Member>)> = meta
        .consumers
        .map
        .lock()
        .await
        .values()
        .map(|m| (lock(&m.assignment).clone(), std::sync::Arc::clone(m)))
        .collect();
    for account in accounts {
        let name = account["name"].as_str().unwrap_or_default().to_string();
        let Some(streams) = account["stream_detail"].as_array_mut() else {
            continue;
        };
        for stream in streams {
            let sname = stream["name"].as_str().unwrap_or_default().to_string();
            let Some(listed) = stream["consumer_detail"].as_array_mut() else {
                continue;
            };
            for detail in listed.iter_mut() {
                let cname = detail["name"].as_str().unwrap_or_default().to_string();
                detail["cluster"] = json!(cluster_info(meta, &name, &sname, &cname).await);
            }
            for (a, m) in members
                .iter()
                .filter(|(a, _)| a.account == name && a.stream == sname)
            {
                let shown = listed.iter().any(|d| d["name"] == a.config.name.as_str());
                if !shown {
                    listed.push(json!(follower_info(meta, a, m)));
                }
            }
        }
    }
}

/// A follower's view of consumer `a`: its committed state and the group's block.
/// `num_pending` stays 0, as on nats-server 2.15.1's followers (only the leader, which
/// reads the stream for the consumer, counts it).
fn follower_info(meta: &MetaGroup, a: &ConsumerAssignment, m: &Member) -> ConsumerInfo {
    let st = m.committed_state();
    let pair = |p: SequencePair| SequenceInfo {
        consumer_seq: p.consumer,
        stream_seq: p.stream,
        last_active: None,
    };
    ConsumerInfo {
        stream_name: a.stream.clone(),
        name: a.config.name.clone(),
        created: a.created,
        config: a.config.clone(),
        delivered: pair(st.delivered),
        ack_floor: pair(st.ack_floor),
        num_ack_pending: st.pending.len() as u64,
        num_redelivered: st.redelivered.len() as u64,
        cluster: Some(m.cluster_info(meta)),
        ts: timestamp(now_ns()),
        ..ConsumerInfo::default()
    }
}
