//! A stream's assignment from the API's side: `STREAM.CREATE`, `UPDATE`, `DELETE` and
//! `INFO` of a stream in a JetStream cluster, through the meta group (placement, the
//! committed assignment, waiting for the group's first leader), and the view a server
//! answers with.

use std::sync::Arc;
use std::time::Duration;

use rill_protocol::jsapi::{
    ApiError, ClusterInfo, ErrorCode, Paged, StorageType, StreamConfig, StreamInfo,
    StreamInfoRequest,
};

use super::super::MetaGroup;
use super::super::meta::{MetaAnswer, MetaOp, StreamAssignment};
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
    // One replica stays where it was asked for, next to the client that made it.
    let peers = match replicas {
        1 => Some(vec![meta.me().to_string()]),
        n => meta.place(n),
    };
    let peers =
        peers.ok_or_else(|| ErrorCode::CLUSTER_NO_PEERS.err("no suitable peers for placement"))?;
    let a = StreamAssignment {
        account: account.clone(),
        group: group_name(&cfg),
        peers,
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

/// Updates a replicated stream (the new config checked against the old one).
///
/// # Errors
/// A changed replica count (10061), no meta leader (503/10008).
pub async fn update(
    js: &JetStream,
    meta: &Arc<MetaGroup>,
    old: &StreamAssignment,
    cfg: StreamConfig,
) -> Result<StreamInfo, ApiError> {
    if cfg.num_replicas != old.config.num_replicas {
        return Err(ErrorCode::STREAM_REPLICAS_NOT_UPDATABLE.error());
    }
    let mut a = old.clone();
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
    Ok(info(js, meta, &want.name, &StreamInfoRequest::default())
        .await?
        .0)
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
                info.cluster = Some(r.cluster_info(meta.cluster_name(), meta.me()));
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
