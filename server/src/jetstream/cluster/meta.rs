//! The meta group's state machine: the cluster's JetStream assignments, keyed
//! `<account>/<stream>`, each an opaque JSON document (config, peers) that the
//! group's leader commits and every server applies in the same order.
//!
//! The state is small and rebuilt from the log (or the last snapshot) at every start,
//! so applying an entry twice after a restart is harmless: an assignment is replaced by
//! the same one.

use std::collections::BTreeMap;
use std::io;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::raft::Machine;

/// One change to the assignments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MetaOp {
    /// Sets `key` to `value`.
    Assign {
        /// `<account>/<stream>`.
        key: String,
        /// The assignment document.
        value: serde_json::Value,
    },
    /// Removes `key`.
    Remove {
        /// `<account>/<stream>`.
        key: String,
    },
}

/// The assignments, as the meta group has committed them.
#[derive(Debug, Default)]
pub struct MetaMachine {
    /// By key.
    pub assignments: BTreeMap<String, serde_json::Value>,
}

impl MetaMachine {
    fn apply_one(&mut self, cmd: &[u8]) -> Bytes {
        match serde_json::from_slice::<MetaOp>(cmd) {
            Ok(MetaOp::Assign { key, value }) => {
                self.assignments.insert(key, value);
                Bytes::from_static(b"ok")
            }
            Ok(MetaOp::Remove { key }) => match self.assignments.remove(&key) {
                Some(_) => Bytes::from_static(b"ok"),
                None => Bytes::from_static(b"not found"),
            },
            Err(_) => Bytes::from_static(b"bad op"),
        }
    }
}

impl Machine for MetaMachine {
    fn apply(&mut self, batch: Vec<(u64, Bytes)>) -> BoxFuture<'_, io::Result<Vec<Bytes>>> {
        let out = batch.iter().map(|(_, cmd)| self.apply_one(cmd)).collect();
        Box::pin(async move { Ok(out) })
    }

    fn snapshot(&mut self) -> BoxFuture<'_, io::Result<Bytes>> {
        let data = serde_json::to_vec(&self.assignments).map_err(io::Error::other);
        Box::pin(async move { data.map(Bytes::from) })
    }

    fn restore(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        let parsed = serde_json::from_slice(&data).map_err(io::Error::other);
        Box::pin(async move {
            self.assignments = parsed?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: &MetaOp) -> Bytes {
        Bytes::from(serde_json::to_vec(op).unwrap())
    }

    #[tokio::test]
    async fn assignments_apply_in_order_and_survive_a_snapshot() {
        let mut m = MetaMachine::default();
        let a = MetaOp::Assign {
            key: "$G/ORDERS".into(),
            value: serde_json::json!({"peers": ["n1", "n2", "n3"]}),
        };
        let b = MetaOp::Remove {
            key: "$G/ORDERS".into(),
        };
        let out = m
            .apply(vec![
                (1, op(&a)),
                (2, op(&b)),
                (3, op(&b)),
                (4, Bytes::from_static(b"x")),
            ])
            .await
            .unwrap();
        assert_eq!(out, vec!["ok", "ok", "not found", "bad op"]);
        m.apply(vec![(5, op(&a))]).await.unwrap();
        let snap = m.snapshot().await.unwrap();
        let mut back = MetaMachine::default();
        back.restore(snap).await.unwrap();
        assert_eq!(back.assignments, m.assignments);
        assert_eq!(back.assignments.len(), 1);
    }
}
