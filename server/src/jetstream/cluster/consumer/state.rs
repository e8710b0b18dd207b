//! A replicated consumer's state in its group: the entries ([`StateOp`] batches), the
//! group's machine ([`ConsumerMachine`], which every member applies them to) and the
//! store the leader's consumer actor writes through ([`ReplicatedStore`]).
//!
//! The actor records deliveries and acks in its store as it does on a single server;
//! where a file store appends them to `state.log` and fsyncs, the replicated store
//! queues them and, at each sync, hands the batch to the group's proposer, which
//! commits it as one entry (batches queued meanwhile are merged). An ack sent as a
//! request is answered once its entry is committed ([`ReplicatedStore::commit_wait`]),
//! so an answered ack is on disk on a quorum. A delivery or a plain ack that was not
//! committed when the leader died is at worst a redelivery on the next leader, as on
//! nats-server.
//!
//! Every member applies the committed state to a [`Committed`] view its stream replica
//! reads (interest retention asks it whether a message is still needed), and hands the
//! acked stream sequences to its replica, so interest and work-queue streams remove
//! acked messages on every replica, as nats-server's consumer followers do.

use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::jetstream::store::{ConsumerState, ConsumerStore, PendingAck, SequencePair, StoreError};
use crate::locks;
use crate::raft::{Command, Machine, Raft};

/// How long the proposer waits for an entry to be committed before giving up on it
/// (an ack request then gets no answer, as when nats-server's leader is lost).
const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// One change of a consumer's state, as the store trait records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateOp {
    /// A delivery: `(consumer seq, stream seq, delivery count, ns)`.
    #[serde(rename = "d")]
    Delivered(u64, u64, u64, i64),
    /// An ack: `(consumer seq, stream seq)`.
    #[serde(rename = "a")]
    Ack(u64, u64),
    /// The whole state (creation, reset).
    #[serde(rename = "s")]
    Full(StateDoc),
}

/// A [`ConsumerState`] as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDoc {
    /// `(consumer, stream)` delivered.
    delivered: (u64, u64),
    /// `(consumer, stream)` ack floor.
    ack_floor: (u64, u64),
    /// `(stream seq, consumer seq, ns)` of each pending message.
    pending: Vec<(u64, u64, i64)>,
    /// `(stream seq, redeliveries)`.
    redelivered: Vec<(u64, u64)>,
}

impl From<&ConsumerState> for StateDoc {
    fn from(st: &ConsumerState) -> Self {
        StateDoc {
            delivered: (st.delivered.consumer, st.delivered.stream),
            ack_floor: (st.ack_floor.consumer, st.ack_floor.stream),
            pending: st
                .pending
                .iter()
                .map(|(s, p)| (*s, p.consumer_seq, p.ts))
                .collect(),
            redelivered: st.redelivered.iter().map(|(s, n)| (*s, *n)).collect(),
        }
    }
}

impl From<&StateDoc> for ConsumerState {
    fn from(d: &StateDoc) -> Self {
        let pair = |(consumer, stream)| SequencePair { consumer, stream };
        ConsumerState {
            delivered: pair(d.delivered),
            ack_floor: pair(d.ack_floor),
            pending: d
                .pending
                .iter()
                .map(|(s, c, ts)| {
                    let p = PendingAck {
                        consumer_seq: *c,
                        ts: *ts,
                    };
                    (*s, p)
                })
                .collect(),
            redelivered: d.redelivered.iter().copied().collect(),
        }
    }
}

fn apply_op(st: &mut ConsumerState, op: &StateOp) {
    match op {
        StateOp::Delivered(d, s, dc, ts) => st.apply_delivered(*d, *s, *dc, *ts),
        StateOp::Ack(d, s) => st.apply_ack(*d, *s),
        StateOp::Full(doc) => *st = ConsumerState::from(doc),
    }
}

/// A member's committed state, shared with the stream replica's link
/// (`super::link`).
pub type Committed = Arc<RwLock<ConsumerState>>;

/// Whether a consumer in `state` still needs stream sequence `seq` (not yet delivered,
/// or delivered and not acked): what interest retention asks.
pub fn needs(state: &ConsumerState, seq: u64) -> bool {
    seq > state.ack_floor.stream
        && (seq > state.delivered.stream || state.pending.contains_key(&seq))
}

/// The group's machine: the consumer's state as committed.
#[derive(Debug, Default)]
pub struct ConsumerMachine {
    /// The state.
    pub state: Committed,
    /// Whether any state was committed yet: the first leader of a new consumer
    /// computes its start position and commits it.
    pub started: bool,
    /// Where the stream sequences acked by each applied entry go (to be removed from
    /// the member's replica of an interest or work-queue stream).
    pub acked: Option<mpsc::UnboundedSender<Vec<u64>>>,
}

impl ConsumerMachine {
    /// A machine telling `acked` what each entry acked.
    pub fn new(acked: mpsc::UnboundedSender<Vec<u64>>) -> Self {
        ConsumerMachine {
            acked: Some(acked),
            ..ConsumerMachine::default()
        }
    }

    /// The committed state now.
    pub fn state(&self) -> ConsumerState {
        locks::read(&self.state).clone()
    }
}

/// A [`ConsumerMachine`]'s snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    started: bool,
    state: StateDoc,
}

impl Machine for ConsumerMachine {
    fn apply(&mut self, batch: Vec<(u64, Bytes)>) -> BoxFuture<'_, io::Result<Vec<Bytes>>> {
        let mut out = Vec::with_capacity(batch.len());
        let mut acked = Vec::new();
        {
            let mut state = locks::write(&self.state);
            for (_, raw) in batch {
                // An entry that does not parse (a newer format) changes nothing here.
                let ops: Vec<StateOp> = serde_json::from_slice(&raw).unwrap_or_default();
                for op in &ops {
                    apply_op(&mut state, op);
                    if let StateOp::Ack(_, sseq) = op {
                        acked.push(*sseq);
                    }
                    self.started = true;
                }
                out.push(Bytes::new());
            }
        }
        if let Some(tx) = self.acked.as_ref().filter(|_| !acked.is_empty()) {
            let _ = tx.send(acked);
        }
        Box::pin(async move { Ok(out) })
    }

    fn snapshot(&mut self) -> BoxFuture<'_, io::Result<Bytes>> {
        let snap = Snapshot {
            started: self.started,
            state: StateDoc::from(&*locks::read(&self.state)),
        };
        let data = serde_json::to_vec(&snap).map_err(io::Error::other);
        Box::pin(async move { data.map(Bytes::from) })
    }

    fn restore(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        let parsed = serde_json::from_slice::<Snapshot>(&data).map_err(io::Error::other);
        Box::pin(async move {
            let snap = parsed?;
            *locks::write(&self.state) = ConsumerState::from(&snap.state);
            self.started = snap.started;
            Ok(())
        })
    }
}

/// A batch for the proposer: the ops, and who waits for their commit.
#[derive(Debug)]
pub struct Batch {
    ops: Vec<StateOp>,
    waiters: Vec<oneshot::Sender<()>>,
}

/// The leader's consumer store: the state in memory, every change proposed to the
/// group at the actor's sync.
#[derive(Debug)]
pub struct ReplicatedStore {
    state: ConsumerState,
    ops: Vec<StateOp>,
    waiters: Vec<oneshot::Sender<()>>,
    proposer: mpsc::UnboundedSender<Batch>,
}

impl ReplicatedStore {
    /// A store starting from the committed `state`, proposing through `proposer`.
    pub fn new(state: ConsumerState, proposer: mpsc::UnboundedSender<Batch>) -> Self {
        ReplicatedStore {
            state,
            ops: Vec::new(),
            waiters: Vec::new(),
            proposer,
        }
    }
}

impl ConsumerStore for ReplicatedStore {
    fn update_delivered(
        &mut self,
        dseq: u64,
        sseq: u64,
        dc: u64,
        ts: i64,
    ) -> Result<(), StoreError> {
        self.state.apply_delivered(dseq, sseq, dc, ts);
        self.ops.push(StateOp::Delivered(dseq, sseq, dc, ts));
        Ok(())
    }

    fn update_ack(&mut self, dseq: u64, sseq: u64) -> Result<(), StoreError> {
        self.state.apply_ack(dseq, sseq);
        self.ops.push(StateOp::Ack(dseq, sseq));
        Ok(())
    }

    fn set_state(&mut self, state: ConsumerState) -> Result<(), StoreError> {
        self.ops.clear();
        self.ops.push(StateOp::Full(StateDoc::from(&state)));
        self.state = state;
        Ok(())
    }

    fn state(&self) -> &ConsumerState {
        &self.state
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        if self.ops.is_empty() && self.waiters.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            ops: std::mem::take(&mut self.ops),
            waiters: std::mem::take(&mut self.waiters),
        };
        // A closed proposer (the group stopped) loses the batch: the next leader
        // redelivers what it did not hear of.
        let _ = self.proposer.send(batch);
        Ok(())
    }

    fn commit_wait(&mut self) -> Option<oneshot::Receiver<()>> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        Some(rx)
    }
}

/// Commits the leader's batches in order, one entry for whatever is queued, and
/// tells the waiters of each once it is committed.
pub async fn propose(raft: Raft, mut rx: mpsc::UnboundedReceiver<Batch>) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while let Ok(more) = rx.try_recv() {
            batch.ops.extend(more.ops);
            batch.waiters.extend(more.waiters);
        }
        let entry = serde_json::to_vec(&batch.ops).unwrap_or_default();
        let Ok(answer) = raft.client_write_ff(Command(Bytes::from(entry))).await else {
            break;
        };
        let waiters = batch.waiters;
        tokio::spawn(async move {
            if let Ok(Ok(Ok(_))) = tokio::time::timeout(COMMIT_WAIT, answer).await {
                for w in waiters {
                    let _ = w.send(());
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn members_apply_the_leaders_changes_and_snapshots_keep_them() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut store = ReplicatedStore::new(ConsumerState::default(), tx);
        let start = ConsumerState {
            delivered: SequencePair {
                consumer: 0,
                stream: 4,
            },
            ack_floor: SequencePair {
                consumer: 0,
                stream: 4,
            },
            ..ConsumerState::default()
        };
        store.set_state(start).unwrap();
        for (d, s) in [(1, 5), (2, 6), (3, 7)] {
            store.update_delivered(d, s, 1, 100).unwrap();
        }
        store.update_delivered(4, 6, 2, 200).unwrap();
        store.update_ack(1, 5).unwrap();
        let waiting = store.commit_wait();
        assert!(waiting.is_some());
        store.sync().unwrap();
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.waiters.len(), 1);
        assert_eq!(batch.ops.len(), 6);

        let (acked_tx, mut acked) = mpsc::unbounded_channel();
        let mut m = ConsumerMachine::new(acked_tx);
        assert!(!m.started);
        let entry = Bytes::from(serde_json::to_vec(&batch.ops).unwrap());
        let empty = Bytes::from_static(b"[]");
        m.apply(vec![(1, entry), (2, empty), (3, Bytes::from_static(b"x"))])
            .await
            .unwrap();
        assert!(m.started);
        let state = m.state();
        assert_eq!(state, *store.state());
        assert_eq!(state.ack_floor.stream, 5);
        assert_eq!(state.pending.len(), 2);
        assert_eq!(state.redelivered.get(&6), Some(&1));
        assert_eq!(
            acked.try_recv().unwrap(),
            vec![5],
            "the acked stream sequences"
        );
        assert!(
            acked.try_recv().is_err(),
            "entries without acks tell nothing"
        );
        assert!(!needs(&state, 5), "acked");
        assert!(needs(&state, 6) && needs(&state, 7), "pending");
        assert!(needs(&state, 8), "not delivered yet");
        assert!(!needs(&state, 4), "below the start");

        let snap = m.snapshot().await.unwrap();
        let mut back = ConsumerMachine::default();
        back.restore(snap).await.unwrap();
        assert!(back.started);
        assert_eq!(back.state(), m.state());
    }

    #[test]
    fn nothing_to_sync_sends_nothing() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut store = ReplicatedStore::new(ConsumerState::default(), tx);
        store.sync().unwrap();
        assert!(rx.try_recv().is_err());
    }
}
