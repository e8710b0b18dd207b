//! What a Raft group shows of itself, for the meta, stream and consumer groups alike:
//! nats-server's `cluster` block as a member sees it, the members its
//! `*_leader_elected` advisories list, and whether a member is current (`/healthz`).

use std::time::Duration;

use openraft::ServerState as RaftState;
use rill_protocol::jsapi::{ClusterInfo, Nanos, PeerInfo, Timestamp};
use tokio::time::Instant;

use super::peer_id;
use crate::raft::{Network, Raft};

/// Where a group's block is shown: the cluster's name and the account carrying the
/// group's Raft traffic (the system account; empty: none shown).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Place<'a> {
    /// The cluster's name.
    pub(super) cluster: &'a str,
    /// The system account's name.
    pub(super) traffic: &'a str,
}

impl<'a> Place<'a> {
    /// `meta`'s cluster and system account.
    pub(super) fn of(meta: &'a super::MetaGroup) -> Place<'a> {
        Place {
            cluster: meta.cluster_name(),
            traffic: meta.system_account(),
        }
    }
}

/// nats-server's `cluster` block for a group as `raft`'s member sees it: name, group,
/// leader, since when (on the leader), the traffic account, and the other members with
/// `current`, `lag` and (given the group's `net`) `active`, known on the leader. A
/// follower knows only its leader, as nats-server 2.15.1's: current while it hears it
/// (within [`LEADER_SILENT`]), `active` the time since; the other followers are
/// `current: false`, `active: 0`.
pub(super) fn group_info(
    raft: &Raft,
    net: Option<&Network>,
    place: Place<'_>,
    me: &str,
    group: &str,
    since: Option<Timestamp>,
) -> ClusterInfo {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let name_of = |id: &u64| membership.get_node(id).map(|n| n.addr.clone());
    let leader = m.current_leader.as_ref().and_then(name_of);
    let last = m.last_log_index.unwrap_or_default();
    let leading = m.state == RaftState::Leader;
    // The other members (the leader answers INFO requests; a follower's view in
    // /jsz lists the leader among them, as nats-server's).
    let replicas = membership
        .nodes()
        .filter(|(_, n)| n.addr != me)
        .map(|(id, n)| {
            let matched = m.replication.as_ref().and_then(|r| r.get(id).copied());
            let index = matched.flatten().map_or(0, |l| l.index);
            let my_leader = !leading && m.current_leader == Some(*id);
            let heard = net
                .filter(|_| leading || my_leader)
                .and_then(|net| net.last_heard(&n.addr));
            PeerInfo {
                name: n.addr.clone(),
                current: (leading && index >= last)
                    || (my_leader && heard.is_some_and(|d| d < LEADER_SILENT)),
                offline: leading && matched.is_none(),
                active: Nanos(heard.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))),
                lag: if leading {
                    last.saturating_sub(index)
                } else {
                    0
                },
                peer: peer_id(&n.addr),
            }
        })
        .collect();
    ClusterInfo {
        name: place.cluster.to_string(),
        raft_group: group.to_string(),
        leader: leader.unwrap_or_default(),
        leader_since: if leading { since } else { None },
        system_account: !place.traffic.is_empty(),
        traffic_account: place.traffic.to_string(),
        replicas,
    }
}

/// How many members `raft`'s group has (voters and learners).
pub(super) fn member_count(raft: &Raft) -> usize {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .count()
}

/// The name of `raft`'s group leader, when one is known.
pub(super) fn leader_name(raft: &Raft) -> Option<String> {
    let m = raft.metrics().borrow().clone();
    let leader = m.current_leader?;
    let node = m.membership_config.membership().get_node(&leader)?;
    Some(node.addr.clone())
}

/// The leader of `raft`'s group and every member as nats-server's `*_leader_elected`
/// advisories list them (the leader too, current), as the leader sees them.
pub(crate) fn elected(raft: &Raft, me: &str) -> (String, Vec<PeerInfo>) {
    let seen_by = leader_name(raft).unwrap_or_else(|| me.to_string());
    let info = group_info(raft, None, Place::default(), &seen_by, "", None);
    let mut members = vec![PeerInfo {
        name: info.leader.clone(),
        current: true,
        offline: false,
        active: Nanos(0),
        lag: 0,
        peer: peer_id(&info.leader),
    }];
    members.extend(info.replicas);
    (info.leader, members)
}

/// A follower that has not heard its leader for this long does not count it as its
/// leader (openraft's followers start an election after 1 to 2 s without one).
const LEADER_SILENT: Duration = Duration::from_secs(3);

/// This server's member of a stream's or consumer's group, as `/healthz` looks at it.
pub(super) struct Local {
    /// The assignment's key.
    pub(super) key: String,
    /// What nats-server's messages call it: `stream '<account> > <stream>'` or
    /// `consumer '<account> > <stream> > <consumer>'`.
    pub(super) name: String,
    /// The member's Raft.
    pub(super) raft: Raft,
    /// Its machine is installing the leader's snapshot.
    pub(super) installing: bool,
    /// When its Raft was opened here.
    pub(super) opened: Instant,
}

/// Whether a member of a Raft group is current, as `/healthz` asks it of each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// It leads, or follows a leader it hears and has applied all that is committed.
    Current,
    /// It knows no leader (an election, a lost quorum), has not heard its leader since
    /// it opened (a restarted member remembers the leader it voted for) or for
    /// [`LEADER_SILENT`], or its Raft stopped.
    NoLeader,
    /// It follows a leader but has not applied every committed entry yet, or is
    /// installing the leader's snapshot (a catch-up).
    Behind,
}

/// How `raft`'s member stands: see [`Health`]. `installing`: its machine is installing
/// a snapshot; `opened`: when the member's Raft was opened (after `Raft::new`).
pub(super) async fn health(raft: &Raft, installing: bool, opened: Instant) -> Health {
    let m = raft.metrics().borrow().clone();
    if m.running_state.is_err() || m.current_leader.is_none() {
        return Health::NoLeader;
    }
    if m.state == RaftState::Leader {
        return Health::Current;
    }
    if installing {
        return Health::Behind;
    }
    let state = raft
        .with_raft_state(|st| (st.committed, st.vote_last_modified()))
        .await;
    let Ok((committed, heard)) = state else {
        return Health::NoLeader;
    };
    if heard.is_none_or(|t| t <= opened || t.elapsed() > LEADER_SILENT) {
        return Health::NoLeader;
    }
    let applied = m.last_applied.map_or(0, |l| l.index);
    if committed.map_or(0, |l| l.index) > applied {
        return Health::Behind;
    }
    Health::Current
}
