//! A stream group's membership follows its assignment: when `STREAM.UPDATE` changes
//! `num_replicas` or `STREAM.PEER.REMOVE` replaces a peer, the meta group commits new
//! `peers` (the servers dropped become `retiring`, and keep their replica running), and
//! the group's leader makes the Raft membership match ([`members_while_leader`]):
//!
//! 1. every new peer (which opened its replica when it applied the assignment) is added
//!    as a learner, and the leader waits until it has caught up (log entries, or the
//!    leader's snapshot when the log was purged: `super::catchup` copies the messages);
//! 2. one membership change makes `peers` the voters (openraft's joint consensus: the
//!    old and the new voters both agree, so no acknowledged message depends on a member
//!    that leaves); a leader that is not among them steps down once it is committed;
//! 3. the leader proposes [`MetaOp::Retired`]: the retiring servers then delete their
//!    replica and its log.
//!
//! A new leader finds the same difference and finishes the change; a change interrupted
//! between the joint and the final configuration is finished the same way.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use openraft::{BasicNode, ServerState as RaftState};
use tracing::{info, warn};

use super::super::MetaGroup;
use super::super::meta::{MetaOp, StreamAssignment};
use super::{Lead, lock};
use crate::raft::{Raft, node_id};

/// How often the leader compares the group's voters with the assignment.
const MEMBERS_CHECK: Duration = Duration::from_secs(1);
/// How long a new peer may take to catch up as a learner.
const LEARNER_WAIT: Duration = Duration::from_secs(60);
/// How long the membership change may take to commit.
const CHANGE_WAIT: Duration = Duration::from_secs(10);

/// While this member leads (and is not handing over): makes the group's voters the
/// assignment's peers, then retires the servers dropped.
pub(super) async fn members_while_leader(
    raft: Raft,
    lead: Arc<Lead>,
    assignment: Arc<Mutex<StreamAssignment>>,
    meta: Weak<MetaGroup>,
) {
    let mut tick = tokio::time::interval(MEMBERS_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let leading = raft.metrics().borrow().state == RaftState::Leader;
        if !leading || lead.stepping.load(Ordering::SeqCst) {
            continue;
        }
        let Some(meta) = meta.upgrade() else {
            return;
        };
        let a = lock(&assignment).clone();
        if let Err(e) = follow(&raft, &meta, &a).await {
            warn!(group = %a.group, error = %e, "stream group membership change not done yet");
        }
    }
}

/// The group's voters, by server name.
fn voters(raft: &Raft) -> BTreeSet<String> {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    membership
        .voter_ids()
        .filter_map(|id| membership.get_node(&id).map(|n| n.addr.clone()))
        .collect()
}

/// One step towards the assignment: the membership change when the voters differ from
/// the peers, then the retirement of the servers dropped.
async fn follow(raft: &Raft, meta: &MetaGroup, a: &StreamAssignment) -> Result<(), String> {
    let want: BTreeSet<String> = a.peers.iter().cloned().collect();
    let have = voters(raft);
    if have != want {
        for peer in want.difference(&have) {
            let node = BasicNode { addr: peer.clone() };
            let added = raft.add_learner(node_id(peer), node, true);
            tokio::time::timeout(LEARNER_WAIT, added)
                .await
                .map_err(|_| format!("{peer} did not catch up"))?
                .map_err(|e| e.to_string())?;
        }
        let ids: BTreeSet<u64> = want.iter().map(|p| node_id(p)).collect();
        tokio::time::timeout(CHANGE_WAIT, raft.change_membership(ids, false))
            .await
            .map_err(|_| "the membership change was not committed".to_string())?
            .map_err(|e| e.to_string())?;
        info!(group = %a.group, peers = ?a.peers, "stream group membership changed");
    }
    if !a.retiring.is_empty() {
        let op = MetaOp::Retired {
            key: a.key(),
            peers: a.peers.clone(),
        };
        meta.propose(&op).await.map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}
