//! A replicated consumer from the API's side: create (and update by create), delete,
//! the leader's info, and `CONSUMER.LEADER.STEPDOWN`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{
    ActionKind, ApiError, ConsumerAction, ConsumerConfig, ConsumerInfo, ErrorCode, Placement,
    StorageType, StreamConfig,
};
use serde_json::Value;
use tracing::{info, warn};

use super::super::forward::{Forwarded, Route};
use super::super::meta::{MetaAnswer, MetaOp};
use super::super::replica::Standing;
use super::super::{MetaGroup, lock};
use super::{ConsumerAssignment, replicas, standing, unavailable};
use crate::jetstream::consumer::{Outbox, events};
use crate::jetstream::store::now_ns;
use crate::jetstream::stream::timestamp;
use crate::jetstream::{JetStream, validate};
use crate::raft::{self, Command, Network};

/// How long a request waits for the meta group to apply a change here and for the
/// consumer's leader to answer.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// The name of a new consumer group: nats-server's `C-R<n><F|M>-<8 characters>`.
fn group_name(replicas: usize, storage: StorageType, mem: bool) -> String {
    use rand::RngExt as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let kind = if mem || storage == StorageType::Memory {
        'M'
    } else {
        'F'
    };
    format!("C-R{replicas}{kind}-{tail}")
}

/// Creates a replicated consumer of `scfg` (its config `cfg` checked by
/// `validate::consumer_config`, named), or updates it when it exists, and answers with
/// its leader's info.
///
/// # Errors
/// The create and update checks (as for any consumer), no meta leader or no answer
/// from the consumer's leader in time (503/10008).
pub async fn create(
    js: &JetStream,
    meta: &Arc<MetaGroup>,
    scfg: &StreamConfig,
    cfg: ConsumerConfig,
    action: ConsumerAction,
    others: &[ConsumerConfig],
) -> Result<ConsumerInfo, ApiError> {
    let account = js.account_name().to_string();
    if let Some(old) = super::assignment(meta, &account, &scfg.name, &cfg.name).await {
        validate::consumer_action_create_same(action, &old.config, &cfg)?;
        let mut new = validate::consumer_update(&old.config, cfg)?;
        validate::stamp_consumer_metadata(&mut new);
        if new != old.config {
            let mut a = old.clone();
            a.config = new;
            commit(meta, a).await?;
        }
        return leader_info(js, meta, &old).await;
    }
    let mut cfg = validate::consumer_new(action, cfg, scfg, others.iter())?;
    js.check_consumer_limit()?;
    validate::stamp_consumer_metadata(&mut cfg);
    let stream = meta
        .assignment(&account, &scfg.name)
        .await
        .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
    let n = replicas(&cfg, scfg);
    let peers = place(&stream.peers, n);
    let a = ConsumerAssignment {
        account,
        stream: scfg.name.clone(),
        group: group_name(n, scfg.storage, cfg.mem_storage),
        peers,
        created: timestamp(now_ns()),
        config: cfg,
    };
    commit(meta, a.clone()).await?;
    let out = Outbox::new(Arc::clone(&js.account));
    events::consumer_action(&out, &a.stream, &a.config.name, ActionKind::Create);
    leader_info(js, meta, &a).await
}

/// `n` of the stream's servers, in random order (all of them when `n` is their count).
fn place(stream_peers: &[String], n: usize) -> Vec<String> {
    use rand::seq::SliceRandom as _;
    let mut peers = stream_peers.to_vec();
    peers.shuffle(&mut rand::rng());
    peers.truncate(n);
    peers
}

/// Commits `a` through the meta group and waits until this server applied it.
async fn commit(meta: &MetaGroup, a: ConsumerAssignment) -> Result<(), ApiError> {
    let (key, want) = (a.key(), a.clone());
    match meta.propose(&MetaOp::Consumer(Box::new(a))).await {
        Ok(MetaAnswer::Done) => {}
        Ok(MetaAnswer::ConsumerExists(_)) => return Err(ErrorCode::CONSUMER_NAME_EXIST.error()),
        Ok(MetaAnswer::NotFound) => return Err(ErrorCode::STREAM_NOT_FOUND.error()),
        _ => return Err(unavailable()),
    }
    let applied = meta
        .wait_consumers(APPLY_WAIT, |all| all.get(&key) == Some(&want))
        .await;
    applied.then_some(()).ok_or_else(unavailable)
}

/// Deletes a replicated consumer everywhere (its leader answers waiting pulls that it
/// is gone).
///
/// # Errors
/// No meta leader (503/10008).
pub async fn delete(
    js: &JetStream,
    meta: &MetaGroup,
    a: &ConsumerAssignment,
) -> Result<(), ApiError> {
    let key = a.key();
    match meta
        .propose(&MetaOp::RemoveConsumer { key: key.clone() })
        .await
    {
        Ok(MetaAnswer::Done | MetaAnswer::NotFound) => {}
        _ => return Err(unavailable()),
    }
    meta.wait_consumers(APPLY_WAIT, |all| !all.contains_key(&key))
        .await;
    let out = Outbox::new(Arc::clone(&js.account));
    events::consumer_action(&out, &a.stream, &a.config.name, ActionKind::Delete);
    Ok(())
}

/// The consumer's info from its leader (here, or asked over the route transport),
/// waiting (at most [`APPLY_WAIT`]) while its group elects a leader and starts it.
///
/// # Errors
/// No leader answered in time (503/10008).
pub async fn leader_info(
    js: &JetStream,
    meta: &MetaGroup,
    a: &ConsumerAssignment,
) -> Result<ConsumerInfo, ApiError> {
    let subject = format!("$JS.API.CONSUMER.INFO.{}.{}", a.stream, a.config.name);
    let req = Forwarded {
        account: a.account.clone(),
        subject: Command(Bytes::from(subject)),
        headers: None,
        payload: Command(Bytes::new()),
    };
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    while tokio::time::Instant::now() < deadline {
        let answer = match meta.route_consumer(a).await {
            Route::Here => match js.consumers.get(&a.stream, &a.config.name) {
                Some(h) => {
                    let mut info = h.info().await?;
                    let (s, c) = (&a.stream, &a.config.name);
                    info.cluster = Some(super::cluster_info(meta, &a.account, s, c).await);
                    return Ok(info);
                }
                None => None,
            },
            Route::There { group, to } => meta.forward(&group, &to, &req).await,
            Route::Silent => None,
        };
        if let Some(answer) = answer
            && let Ok(v) = serde_json::from_slice::<Value>(&answer.body.0)
            && v.get("error").is_none()
            && let Ok(info) = serde_json::from_value::<ConsumerInfo>(v)
        {
            return Ok(info);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(unavailable())
}

/// `CONSUMER.LEADER.STEPDOWN` on the consumer leader's server: hands the leadership
/// of the consumer's group to the placement's `preferred` (or the member furthest
/// along) and answers at once; this member stops running the consumer meanwhile.
/// `None`: no answer (this member does not lead, or is handing over already).
///
/// A placement naming another cluster, or tags (rill servers have none), leaves no
/// member to hand over to: 400/10005 `no replacement peer connected`, as nats-server.
pub async fn step_down(
    meta: &Arc<MetaGroup>,
    a: &ConsumerAssignment,
    placement: Option<&Placement>,
) -> Option<Result<(), ApiError>> {
    let member = meta.consumers.map.lock().await.get(&a.key()).cloned()?;
    if member.standing() != Standing::Leader {
        return None;
    }
    let preferred = placement
        .map(|p| p.preferred.as_str())
        .filter(|p| !p.is_empty());
    let elsewhere = placement.is_some_and(|p| {
        (!p.cluster.is_empty() && p.cluster != meta.cluster_name()) || !p.tags.is_empty()
    });
    if elsewhere && preferred.is_none() {
        return Some(Err(
            ErrorCode::CLUSTER_NO_PEERS.err("no replacement peer connected")
        ));
    }
    let (target, name) = match super::super::successor(&member.raft, preferred) {
        Ok(t) => t,
        Err(super::super::Stepdown::NoLeader) => return None,
        Err(super::super::Stepdown::Unknown(p)) => {
            return Some(Err(
                ErrorCode::CLUSTER_NO_PEERS.err(format!("preferred server {p:?} not known"))
            ));
        }
        Err(super::super::Stepdown::Failed) => return Some(Err(unavailable())),
    };
    if name == meta.me() {
        return Some(Err(
            ErrorCode::CLUSTER_NO_PEERS.err(format!("preferred server {name:?} is already leader"))
        ));
    }
    if member.stepping.swap(true, Ordering::SeqCst) {
        return None;
    }
    let jetstreams = lock(&meta.consumers.jetstreams).clone();
    member.hand_back(&jetstreams).await;
    let transport: Arc<dyn raft::Transport> = meta.transport.clone();
    let net = Network::new(&member.group(), transport);
    tokio::spawn(async move {
        match super::super::hand_over(&member.raft, &net, target, &name).await {
            Ok(()) => info!(group = %member.group(), to = %name, "consumer leader stepped down"),
            Err(_) => warn!(group = %member.group(), to = %name, "consumer leader stepdown failed"),
        }
        member.stepping.store(false, Ordering::SeqCst);
    });
    Some(Ok(()))
}

impl MetaGroup {
    /// Who answers requests about the replicated consumer `a`: its leader.
    pub async fn route_consumer(&self, a: &ConsumerAssignment) -> Route {
        match standing(self, &a.key()).await {
            Standing::Leader => Route::Here,
            Standing::Stepping | Standing::Follower(None) => Route::Silent,
            Standing::Follower(Some(leader)) => Route::There {
                group: a.group.clone(),
                to: vec![leader],
            },
            // Not opened here yet, or not a member: ask the members.
            Standing::Absent => Route::There {
                group: a.group.clone(),
                to: a
                    .peers
                    .iter()
                    .filter(|p| *p != self.me())
                    .cloned()
                    .collect(),
            },
        }
    }

    /// Waits (at most `timeout`) until this server applied consumer assignments for
    /// which `done` holds; whether it did.
    pub async fn wait_consumers(
        &self,
        timeout: Duration,
        done: impl Fn(&std::collections::BTreeMap<String, ConsumerAssignment>) -> bool,
    ) -> bool {
        let mut changes = self.changes().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.sm.with(|m| m.consumers.clone()).await) {
                return true;
            }
            let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_nats_server() {
        let name = group_name(3, StorageType::File, false);
        assert!(name.starts_with("C-R3F-"), "{name}");
        assert_eq!(name.len(), 14);
        assert!(group_name(2, StorageType::File, true).starts_with("C-R2M-"));
    }

    #[test]
    fn placement_keeps_to_the_streams_servers() {
        let peers: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let mut all = place(&peers, 3);
        all.sort();
        assert_eq!(all, peers);
        let two = place(&peers, 2);
        assert_eq!(two.len(), 2);
        assert!(two.iter().all(|p| peers.contains(p)));
    }
}
