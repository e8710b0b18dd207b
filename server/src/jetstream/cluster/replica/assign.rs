//! A stream's assignment from the API's side: `STREAM.CREATE`, `UPDATE`, `DELETE`,
//! `PEER.REMOVE` and `INFO` of a stream in a JetStream cluster, through the meta group
//! (placement, the committed assignment, waiting for the group's first leader), and the
//! view a server answers with.
//!
//! Scaling (`num_replicas` changed by an update), moving (a `placement` the stream's
//! servers do not fit) and removing a peer only change the assignment's `peers` (the
//! servers dropped go to `retiring`); the group's leader then changes the group's
//! membership to match (`super::members_while_leader`), and the answer does not wait
//! for that, as nats-server's does not.

use std::sync::Arc;
use std::time::Duration;

use rill_protocol::jsapi::{
    ApiError, ClusterInfo, ErrorCode, Paged, StorageType, StreamConfig, StreamInfo,
    StreamInfoRequest,
};

use super::super::MetaGroup;
use super::super::group::leader_name;
use super::super::meta::{MetaAnswer, MetaOp, StreamAssignment};
use super::super::moving;
use super::{APPLY_WAIT, Standing, standing, unavailable};
use crate::jetstream::JetStream;
use crate::jetstream::store::now_ns;
use crate::jetstream::stream::timestamp;

/// The name of a new stream group: nats-server's `S-R<n><F|M>-<8 characters>`.
pub(super) fn group_name(cfg: &StreamConfig) -> String {
    use rand::RngExt as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let kind = match cfg.storage {
        StorageType::File => 'F',
        StorageType::Memory => 'M',
    };
    format!("S-R{}{kind}-{tail}", cfg.num_replicas)
}

/// Creates a replicated stream (the config checked and stamped): places it, commits
/// the assignment and answers with this server's view once it applied it.
///
/// # Errors
/// Not enough servers (400/10005 `no suitable peers for placement`), a different
/// stream of that name (10058), no meta leader (503/10008).
pub async fn create(
    js: &JetStream,
    meta: &Arc<MetaGroup>,
    cfg: StreamConfig,
) -> Result<StreamInfo, ApiError> {
    let account = js.account_name().to_string();
    if let Some(existing) = meta.assignment(&account, &cfg.name).await {
        crate::jetstream::validate::stream_exists_same(&existing.config, &cfg)?;
        wait_leader(meta, &existing.key()).await;
        return Ok(info(js, meta, &cfg.name, &StreamInfoRequest::default())
            .await?
            .0);
    }
    if !meta.has_leader() {
        return Err(unavailable());
    }
    let subjects = cfg.subjects.clone();
    let replicas = usize::try_from(cfg.num_replicas).unwrap_or(0);
    // One replica without tags stays where it was asked for, next to the client.
    let peers = meta.place(replicas, cfg.placement.as_ref())?;
    let a = StreamAssignment {
        account: account.clone(),
        group: group_name(&cfg),
        peers,
        retiring: Vec::new(),
        created: timestamp(now_ns()),
        config: cfg,
    };
    let (name, group) = (a.config.name.clone(), a.group.clone());
    match meta.propose(&MetaOp::Stream(Box::new(a))).await {
        Ok(MetaAnswer::Done) => {}
        Ok(MetaAnswer::Exists(_)) => return Err(ErrorCode::STREAM_NAME_EXIST.error()),
        _ => return Err(unavailable()),
    }
    let key = super::super::meta::key(&account, &name);
    let applied = meta
        .wait_applied(APPLY_WAIT, |all| {
            all.get(&key).is_some_and(|a| a.group == group)
        })
        .await;
    if !applied {
        return Err(unavailable());
    }
    wait_leader(meta, &key).await;
    wait_publishable(js, &subjects).await;
    Ok(info(js, meta, &name, &StreamInfoRequest::default())
        .await?
        .0)
}

/// Waits (at most [`APPLY_WAIT`]) until this server's replica of `key` knows its
/// group's leader, so that the create reply names it, as nats-server's does, and the
/// requests that follow it find a leader to answer them. A server without a replica
/// does not wait.
async fn wait_leader(meta: &MetaGroup, key: &str) {
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    while tokio::time::Instant::now() < deadline {
        match standing(meta, key).await {
            Standing::Leader | Standing::Follower(Some(_)) => return,
            Standing::Absent if !names_me(meta, key).await => return,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Waits (at most [`APPLY_WAIT`]) until the new stream's leader takes publishes on its
/// subjects as this server's clients see it (its subscription, here or announced over
/// a route), so that a publish right after the create reply is stored, as with
/// nats-server (a KV put right after the bucket's create got no responders before).
async fn wait_publishable(js: &JetStream, subjects: &[String]) {
    let Some(subject) = subjects.first() else {
        return;
    };
    // A literal subject the filter matches: every wildcard token made one token.
    let literal: Vec<&str> = subject
        .split('.')
        .map(|t| if t == "*" || t == ">" { "_" } else { t })
        .collect();
    let literal = literal.join(".");
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    while !js.account.router.has_interest(literal.as_bytes())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the assignment of `key` names this server.
async fn names_me(meta: &MetaGroup, key: &str) -> bool {
    let (key, me) = (key.to_string(), meta.me().to_string());
    meta.sm
        .with(move |m| m.streams.get(&key).is_some_and(|a| a.peers.contains(&me)))
        .await
}

/// Updates a replicated stream (the new config checked against the old one); a
/// changed `placement` is checked and may move the stream ([`placed`]); a changed
/// `num_replicas` scales it ([`scaled`]).
///
/// # Errors
/// More replicas than live servers (400/10005 `no suitable peers for placement`), no
/// meta leader (503/10008).
pub async fn update(
    js: &JetStream,
    meta: &Arc<MetaGroup>,
    old: &StreamAssignment,
    cfg: StreamConfig,
) -> Result<StreamInfo, ApiError> {
    let mut a = old.clone();
    if cfg.placement != old.config.placement {
        placed(js, meta, &mut a, &cfg).await?;
    }
    if cfg.num_replicas != old.config.num_replicas {
        let replicas = usize::try_from(cfg.num_replicas).unwrap_or(1).max(1);
        let leader = super::leader_of(meta, &old.key()).await;
        a.config.placement.clone_from(&cfg.placement);
        a = scaled(meta, a, replicas, leader.as_deref())
            .ok_or_else(|| ErrorCode::CLUSTER_NO_PEERS.err("no suitable peers for placement"))?;
    }
    a.config = cfg;
    let want = a.config.clone();
    let key = a.key();
    match meta.propose(&MetaOp::Stream(Box::new(a))).await {
        Ok(MetaAnswer::Done) => {}
        _ => return Err(unavailable()),
    }
    let applied = meta
        .wait_applied(APPLY_WAIT, |all| {
            all.get(&key).is_some_and(|a| a.config == want)
        })
        .await;
    if !applied {
        return Err(unavailable());
    }
    // The committed config: this server's replica may not have applied it yet.
    let mut info = info(js, meta, &want.name, &StreamInfoRequest::default())
        .await?
        .0;
    info.config = want;
    Ok(info)
}

/// A new `placement` for a stream: refused as nats-server 2.15.1 refuses it when no
/// servers fit (400/10005 `no suitable peers for placement[, tags not matched [...]]`);
/// kept when the stream's servers fit it already; else the stream moves to servers
/// that fit (`super::super::moving`), unless it has consumers (400/10011 `tags
/// placement not supported for operation`: they would not follow it).
async fn placed(
    js: &JetStream,
    meta: &Arc<MetaGroup>,
    a: &mut StreamAssignment,
    cfg: &StreamConfig,
) -> Result<(), ApiError> {
    let replicas = usize::try_from(cfg.num_replicas).unwrap_or(1).max(1);
    let placement = cfg.placement.as_ref();
    meta.place(replicas, placement)?;
    if meta.fits(&a.peers, placement) {
        return Ok(());
    }
    let req = StreamInfoRequest::default();
    let local = info(js, meta, &a.config.name, &req)
        .await?
        .0
        .state
        .consumer_count;
    if moving::has_consumers(meta, a, local).await {
        return Err(ErrorCode::CLUSTER_TAGS.error());
    }
    let leader = super::leader_of(meta, &a.key()).await;
    let moved = moving::peers(
        meta,
        &a.peers,
        &a.retiring,
        leader.as_deref(),
        a.peers.len(),
        placement,
    )
    .ok_or_else(|| ErrorCode::CLUSTER_NO_PEERS.err("no suitable peers for placement"))?;
    retire(a, moved);
    Ok(())
}

/// The assignment `a` with `replicas` peers: the current ones kept (the leader first
/// when scaling down, then in their order), spares added when growing; the servers
/// dropped are retiring. `None` when there are not enough live servers.
fn scaled(
    meta: &MetaGroup,
    mut a: StreamAssignment,
    replicas: usize,
    leader: Option<&str>,
) -> Option<StreamAssignment> {
    let placement = a.config.placement.clone();
    let placement = placement.as_ref();
    let mut peers = a.peers.clone();
    if let Some(i) = leader.and_then(|l| peers.iter().position(|p| p == l)) {
        let leader = peers.remove(i);
        peers.insert(0, leader);
    }
    peers.truncate(replicas);
    while peers.len() < replicas {
        let taken: Vec<String> = peers.iter().chain(&a.retiring).cloned().collect();
        peers.push(meta.spare(&taken, placement)?);
    }
    retire(&mut a, peers);
    Some(a)
}

/// Makes `peers` the assignment's peers; the servers it drops are retiring.
fn retire(a: &mut StreamAssignment, peers: Vec<String>) {
    let mut retiring: Vec<String> = a.peers.iter().chain(&a.retiring).cloned().collect();
    retiring.retain(|p| !peers.contains(p));
    retiring.dedup();
    a.peers = peers;
    a.retiring = retiring;
}

/// `STREAM.PEER.REMOVE`: the server `peer` leaves the stream's group and a spare server
/// (live, holding no replica of it) takes its place, as with nats-server 2.15.1; the
/// answer comes once the new assignment is committed, before the replica moved.
///
/// # Errors
/// `peer` not a member (400/10040), no spare server (503/10075 `peer remap failed`: with
/// three servers an R3 stream keeps its peers), no meta leader (503/10008).
pub async fn remove_peer(
    meta: &Arc<MetaGroup>,
    old: &StreamAssignment,
    peer: &str,
) -> Result<(), ApiError> {
    let Some(i) = old.peers.iter().position(|p| p == peer) else {
        return Err(ErrorCode::CLUSTER_PEER_NOT_MEMBER.error());
    };
    let taken: Vec<String> = old.peers.iter().chain(&old.retiring).cloned().collect();
    let spare = meta
        .spare(&taken, old.config.placement.as_ref())
        .ok_or_else(|| ErrorCode::PEER_REMAP.error())?;
    let mut a = old.clone();
    let mut peers = old.peers.clone();
    peers[i] = spare;
    retire(&mut a, peers);
    let (key, want) = (a.key(), a.peers.clone());
    match meta.propose(&MetaOp::Stream(Box::new(a))).await {
        Ok(MetaAnswer::Done) => {}
        _ => return Err(unavailable()),
    }
    let applied = meta
        .wait_applied(APPLY_WAIT, |all| {
            all.get(&key).is_some_and(|a| a.peers == want)
        })
        .await;
    if applied { Ok(()) } else { Err(unavailable()) }
}

/// Deletes a replicated stream everywhere.
///
/// # Errors
/// No meta leader (503/10008).
pub async fn delete(meta: &Arc<MetaGroup>, a: &StreamAssignment) -> Result<(), ApiError> {
    let key = a.key();
    match meta.propose(&MetaOp::Remove { key: key.clone() }).await {
        Ok(MetaAnswer::Done | MetaAnswer::NotFound) => {}
        _ => return Err(unavailable()),
    }
    meta.wait_applied(APPLY_WAIT, |all| !all.contains_key(&key))
        .await;
    let gone = async {
        while meta.replicas.map.lock().await.contains_key(&key) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(APPLY_WAIT, gone).await;
    Ok(())
}

/// STREAM.INFO of a replicated stream as this server sees it: its replica's state and
/// the group's `cluster` block (from the assignment alone when it holds no replica).
///
/// # Errors
/// No such stream (10059).
pub async fn info(
    js: &JetStream,
    meta: &Arc<MetaGroup>,
    name: &str,
    req: &StreamInfoRequest,
) -> Result<(StreamInfo, Paged), ApiError> {
    let key = super::super::meta::key(js.account_name(), name);
    // The reconciler may not have opened the replica yet: wait for it.
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    loop {
        let a = meta
            .assignment(js.account_name(), name)
            .await
            .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
        let local = meta.replicas.map.lock().await.get(&key).cloned();
        match local {
            Some(r) => {
                let req = req.clone();
                let (mut info, paged) = r
                    .handle
                    .call(move |core| {
                        let subjects = (!req.subjects_filter.is_empty())
                            .then_some((req.subjects_filter.as_str(), req.offset));
                        Ok(core.info(req.deleted_details, subjects))
                    })
                    .await?;
                let seen_by = leader_name(&r.raft).unwrap_or_else(|| meta.me().to_string());
                info.cluster = Some(r.cluster_info(meta, &seen_by));
                return Ok((info, paged));
            }
            None if !a.peers.iter().any(|p| p == meta.me()) => {
                let info = StreamInfo {
                    config: a.config.clone(),
                    created: a.created,
                    cluster: Some(ClusterInfo {
                        name: meta.cluster_name().to_string(),
                        raft_group: a.group.clone(),
                        ..ClusterInfo::default()
                    }),
                    ..StreamInfo::default()
                };
                return Ok((info, Paged::default()));
            }
            None if tokio::time::Instant::now() > deadline => return Err(unavailable()),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
