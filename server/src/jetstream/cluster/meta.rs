//! The meta group's state machine: the cluster's replicated-stream assignments, keyed
//! `<account>/<stream>`, and replicated-consumer assignments, keyed
//! `<account>/<stream>/<consumer>` ([`super::consumer`]), which the group's leader
//! commits and every server applies in the same order. Removing a stream removes its
//! consumers' assignments with it.
//!
//! The state is small and rebuilt from the log (or the last snapshot) at every start,
//! so applying an entry twice after a restart is harmless: an assignment is replaced by
//! the same one. Each applied batch bumps [`MetaMachine::changes`], which the
//! assignment reconciler (`assign`) watches.

use std::collections::BTreeMap;
use std::io;

use bytes::Bytes;
use futures::future::BoxFuture;
use rill_protocol::jsapi::{ConsumerConfig, StreamConfig, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::raft::Machine;

/// Where a replicated stream lives: its config, its Raft group and the servers that
/// hold a replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamAssignment {
    /// The account's name.
    pub account: String,
    /// The stream's config (validated and stamped by the server that took the request).
    pub config: StreamConfig,
    /// The stream's Raft group (`S-R<n><F|M>-<8 random characters>`, as nats-server
    /// names them); a new group for every create, so a re-created stream never meets
    /// an old log.
    pub group: String,
    /// The servers holding a replica (`server_name`s), `config.num_replicas` of them:
    /// the group's voters once a membership change is done.
    pub peers: Vec<String>,
    /// Servers dropped from `peers` (scaled down, or `STREAM.PEER.REMOVE`) that keep
    /// their replica running until the group's leader has committed the membership
    /// without them, so the group keeps its quorum meanwhile; the leader then clears
    /// this list, and they delete their replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<String>,
    /// When the stream was created.
    pub created: Timestamp,
}

impl StreamAssignment {
    /// The assignment's key.
    pub fn key(&self) -> String {
        key(&self.account, &self.config.name)
    }
}

/// The key of `stream` in `account`.
pub fn key(account: &str, stream: &str) -> String {
    format!("{account}/{stream}")
}

/// One change to the assignments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MetaOp {
    /// Creates a stream, or replaces its assignment when `group` is the same (an
    /// update). A create for a name already assigned to another group is refused: the
    /// answer carries the existing assignment.
    Stream(Box<StreamAssignment>),
    /// Removes the stream `key`.
    Remove {
        /// `<account>/<stream>`.
        key: String,
    },
    /// The stream group's membership is its `peers`: the retiring servers may delete
    /// their replicas. Ignored when the assignment's peers changed meanwhile.
    Retired {
        /// `<account>/<stream>`.
        key: String,
        /// The peers the group's voters now are.
        peers: Vec<String>,
    },
    /// Creates a replicated consumer, or replaces its assignment when `group` is the
    /// same (an update); refused like [`MetaOp::Stream`] for another group, and when
    /// its stream is not assigned.
    Consumer(Box<ConsumerAssignment>),
    /// Removes the consumer `key`.
    RemoveConsumer {
        /// `<account>/<stream>/<consumer>`.
        key: String,
    },
}

/// The answer to one [`MetaOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaAnswer {
    /// Applied.
    Done,
    /// A different stream of that name is assigned.
    Exists(Box<StreamAssignment>),
    /// A different consumer of that name is assigned.
    ConsumerExists(Box<ConsumerAssignment>),
    /// Nothing of that name to remove.
    NotFound,
    /// The entry did not parse.
    Bad,
}

/// The assignments, as the meta group has committed them.
#[derive(Debug)]
pub struct MetaMachine {
    /// By key.
    pub streams: BTreeMap<String, StreamAssignment>,
    /// Replicated consumers, by key.
    pub consumers: BTreeMap<String, ConsumerAssignment>,
    /// Bumped after every applied batch and restore.
    changes: watch::Sender<u64>,
}

impl Default for MetaMachine {
    fn default() -> Self {
        MetaMachine {
            streams: BTreeMap::new(),
            consumers: BTreeMap::new(),
            changes: watch::channel(0).0,
        }
    }
}

impl MetaMachine {
    /// A receiver that sees every change of the assignments.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn apply_one(&mut self, cmd: &[u8]) -> MetaAnswer {
        match serde_json::from_slice::<MetaOp>(cmd) {
            Ok(MetaOp::Stream(a)) => match self.streams.get(&a.key()) {
                Some(old) if old.group != a.group => MetaAnswer::Exists(Box::new(old.clone())),
                _ => {
                    self.streams.insert(a.key(), *a);
                    MetaAnswer::Done
                }
            },
            Ok(MetaOp::Remove { key }) => match self.streams.remove(&key) {
                Some(_) => {
                    let prefix = format!("{key}/");
                    self.consumers.retain(|k, _| !k.starts_with(&prefix));
                    MetaAnswer::Done
                }
                None => MetaAnswer::NotFound,
            },
            Ok(MetaOp::Retired { key, peers }) => match self.streams.get_mut(&key) {
                Some(a) if a.peers == peers => {
                    a.retiring.clear();
                    MetaAnswer::Done
                }
                _ => MetaAnswer::NotFound,
            },
            Ok(MetaOp::Consumer(c)) => match self.consumers.get(&c.key()) {
                _ if !self.streams.contains_key(&c.stream_key()) => MetaAnswer::NotFound,
                Some(old) if old.group != c.group => {
                    MetaAnswer::ConsumerExists(Box::new(old.clone()))
                }
                _ => {
                    self.consumers.insert(c.key(), *c);
                    MetaAnswer::Done
                }
            },
            Ok(MetaOp::RemoveConsumer { key }) => match self.consumers.remove(&key) {
                Some(_) => MetaAnswer::Done,
                None => MetaAnswer::NotFound,
            },
            Err(_) => MetaAnswer::Bad,
        }
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

impl Machine for MetaMachine {
    fn apply(&mut self, batch: Vec<(u64, Bytes)>) -> BoxFuture<'_, io::Result<Vec<Bytes>>> {
        let out = batch
            .iter()
            .map(|(_, cmd)| {
                let answer = self.apply_one(cmd);
                Bytes::from(serde_json::to_vec(&answer).unwrap_or_default())
            })
            .collect();
        self.changed();
        Box::pin(async move { Ok(out) })
    }

    fn snapshot(&mut self) -> BoxFuture<'_, io::Result<Bytes>> {
        let snap = Snapshot {
            streams: self.streams.clone(),
            consumers: self.consumers.clone(),
        };
        let data = serde_json::to_vec(&snap).map_err(io::Error::other);
        Box::pin(async move { data.map(Bytes::from) })
    }

    fn restore(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        let parsed = Snapshot::parse(&data);
        Box::pin(async move {
            let snap = parsed?;
            self.streams = snap.streams;
            self.consumers = snap.consumers;
            self.changed();
            Ok(())
        })
    }
}

/// The machine's snapshot: `{"streams": .., "consumers": ..}`; a snapshot taken
/// before consumers were replicated is the bare stream map.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    streams: BTreeMap<String, StreamAssignment>,
    #[serde(default)]
    consumers: BTreeMap<String, ConsumerAssignment>,
}

impl Snapshot {
    fn parse(data: &[u8]) -> io::Result<Snapshot> {
        if let Ok(snap) = serde_json::from_slice::<Snapshot>(data) {
            return Ok(snap);
        }
        let streams = serde_json::from_slice(data).map_err(io::Error::other)?;
        Ok(Snapshot {
            streams,
            consumers: BTreeMap::new(),
        })
    }
}

/// Where a replicated consumer lives: its config, its Raft group and the servers that
/// hold a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerAssignment {
    /// The account's name.
    pub account: String,
    /// The stream's name.
    pub stream: String,
    /// The consumer's config (checked and stamped by the stream's leader).
    pub config: ConsumerConfig,
    /// The consumer's Raft group (`C-R<n><F|M>-<8 characters>`, as nats-server).
    pub group: String,
    /// The servers holding a member (a subset of the stream's replicas' servers).
    pub peers: Vec<String>,
    /// When the consumer was created.
    pub created: Timestamp,
}

impl ConsumerAssignment {
    /// The assignment's key.
    pub fn key(&self) -> String {
        consumer_key(&self.account, &self.stream, &self.config.name)
    }

    /// The key of its stream's assignment.
    pub fn stream_key(&self) -> String {
        key(&self.account, &self.stream)
    }
}

/// The key of consumer `consumer` of `stream` in `account`.
pub fn consumer_key(account: &str, stream: &str, consumer: &str) -> String {
    format!("{account}/{stream}/{consumer}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: &MetaOp) -> Bytes {
        Bytes::from(serde_json::to_vec(op).unwrap())
    }

    fn assignment(group: &str) -> StreamAssignment {
        StreamAssignment {
            account: "$G".into(),
            config: StreamConfig {
                name: "ORDERS".into(),
                num_replicas: 3,
                ..StreamConfig::default()
            },
            group: group.into(),
            peers: vec!["n1".into(), "n2".into(), "n3".into()],
            retiring: Vec::new(),
            created: Timestamp::default(),
        }
    }

    fn answer(b: &Bytes) -> MetaAnswer {
        serde_json::from_slice(b).unwrap()
    }

    #[tokio::test]
    async fn assignments_apply_in_order_and_survive_a_snapshot() {
        let mut m = MetaMachine::default();
        let mut changes = m.changes();
        let a = MetaOp::Stream(Box::new(assignment("S-R3F-aaaaaaaa")));
        let other = MetaOp::Stream(Box::new(assignment("S-R3F-bbbbbbbb")));
        let b = MetaOp::Remove {
            key: "$G/ORDERS".into(),
        };
        let out = m
            .apply(vec![
                (1, op(&a)),
                (2, op(&a)),
                (3, op(&other)),
                (4, op(&b)),
                (5, op(&b)),
                (6, Bytes::from_static(b"x")),
            ])
            .await
            .unwrap();
        let out: Vec<MetaAnswer> = out.iter().map(answer).collect();
        assert_eq!(out[0], MetaAnswer::Done);
        assert_eq!(out[1], MetaAnswer::Done, "same group: an update");
        assert!(matches!(&out[2], MetaAnswer::Exists(e) if e.group == "S-R3F-aaaaaaaa"));
        assert_eq!(
            out[3..],
            [MetaAnswer::Done, MetaAnswer::NotFound, MetaAnswer::Bad]
        );
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        m.apply(vec![(7, op(&other))]).await.unwrap();
        let snap = m.snapshot().await.unwrap();
        let mut back = MetaMachine::default();
        back.restore(snap).await.unwrap();
        assert_eq!(back.streams, m.streams);
        assert_eq!(back.streams["$G/ORDERS"].group, "S-R3F-bbbbbbbb");
    }
}
