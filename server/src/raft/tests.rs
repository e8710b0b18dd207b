//! The log store under power loss (SimDisk drops unsynced writes) and a three-node
//! group in one process, its RPCs carried by direct calls that a test can cut.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, ServerState};
use proptest::prelude::*;

use super::*;
use crate::jetstream::store::{SharedVfs, SimDisk};

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Command(Bytes::from(format!("cmd {index}")))),
    }
}

fn indexes(store: &LogStore) -> Vec<u64> {
    store.log_ids().iter().map(|l| l.index).collect()
}

#[tokio::test]
async fn only_flushed_entries_survive_power_loss() {
    let disk = SimDisk::new();
    let dir = Path::new("/g");
    let store = LogStore::open(disk.shared(), dir).unwrap();
    store
        .append_durable((1..=3).map(|i| entry(1, i)).collect())
        .await
        .unwrap();
    store
        .append_unsynced((4..=5).map(|i| entry(1, i)).collect())
        .unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3, 4, 5]);
    drop(store);
    disk.crash();
    let store = LogStore::open(disk.shared(), dir).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3]);
    let got = store.entries(2..=3).unwrap();
    assert_eq!(got, vec![entry(1, 2), entry(1, 3)]);
}

#[tokio::test]
async fn vote_truncate_and_purge_are_durable() {
    let disk = SimDisk::new();
    let dir = Path::new("/g");
    let mut store = LogStore::open(disk.shared(), dir).unwrap();
    let vote = Vote::new(7, 3);
    store.save_vote(&vote).await.unwrap();
    store
        .append_durable((1..=6).map(|i| entry(1, i)).collect())
        .await
        .unwrap();
    store
        .truncate(LogId::new(CommittedLeaderId::new(1, 1), 5))
        .await
        .unwrap();
    store
        .purge(LogId::new(CommittedLeaderId::new(1, 1), 2))
        .await
        .unwrap();
    store.append_durable(vec![entry(2, 5)]).await.unwrap();
    drop(store);
    disk.crash();
    let mut store = LogStore::open(disk.shared(), dir).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(indexes(&store), vec![3, 4, 5]);
    assert_eq!(store.entries(5..).unwrap(), vec![entry(2, 5)]);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
    assert_eq!(state.last_log_id, Some(entry(2, 5).log_id));
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_log_goes_on() {
    let disk = SimDisk::new();
    let dir = Path::new("/g");
    let store = LogStore::open(disk.shared(), dir).unwrap();
    store
        .append_durable((1..=4).map(|i| entry(1, i)).collect())
        .await
        .unwrap();
    store
        .append_unsynced((5..=40).map(|i| entry(1, i)).collect())
        .unwrap();
    drop(store);
    disk.crash_torn(9);
    let store = LogStore::open(disk.shared(), dir).unwrap();
    let got = indexes(&store);
    assert!(got.len() >= 4, "synced entries lost: {got:?}");
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    let next = got.len() as u64 + 1;
    store.append_durable(vec![entry(2, next)]).await.unwrap();
    drop(store);
    disk.crash();
    let store = LogStore::open(disk.shared(), dir).unwrap();
    assert_eq!(indexes(&store).last(), Some(&next));
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Truncate(u8),
    Purge(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..20).prop_map(Op::Append),
        1 => (0u8..30).prop_map(Op::Truncate),
        1 => (0u8..30).prop_map(Op::Purge),
    ]
}

/// Applies `op` to the store and to a model (index → term); both must agree after a
/// power loss.
async fn run(store: &mut LogStore, model: &mut BTreeMap<u64, u64>, purged: &mut u64, op: Op) {
    let last = model.keys().next_back().copied().unwrap_or(*purged);
    match op {
        Op::Append(n) => {
            let term = 1 + last / 7;
            let es: Vec<Entry> = (last + 1..=last + u64::from(n))
                .map(|i| entry(term, i))
                .collect();
            for e in &es {
                model.insert(e.log_id.index, e.log_id.leader_id.term);
            }
            store.append_durable(es).await.unwrap();
        }
        Op::Truncate(k) => {
            let at = *purged + 1 + u64::from(k);
            if at <= last {
                store
                    .truncate(LogId::new(CommittedLeaderId::new(1, 1), at))
                    .await
                    .unwrap();
                model.split_off(&at);
            }
        }
        Op::Purge(k) => {
            let upto = *purged + u64::from(k);
            if upto > *purged && upto <= last {
                let term = model[&upto];
                store
                    .purge(LogId::new(CommittedLeaderId::new(term, 1), upto))
                    .await
                    .unwrap();
                *model = model.split_off(&(upto + 1));
                *purged = upto;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn the_log_after_power_loss_is_the_model(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let disk = SimDisk::new();
            let dir = Path::new("/g");
            let mut store = LogStore::open(disk.shared(), dir).unwrap();
            let (mut model, mut purged) = (BTreeMap::new(), 0);
            for op in ops {
                run(&mut store, &mut model, &mut purged, op).await;
            }
            drop(store);
            disk.crash();
            let store = LogStore::open(disk.shared(), dir).unwrap();
            let got: Vec<(u64, u64)> = store.log_ids().iter().map(|l| (l.index, l.leader_id.term)).collect();
            let want: Vec<(u64, u64)> = model.into_iter().collect();
            assert_eq!(got, want);
        });
    }
}

/// A machine that adds the numbers it is given.
#[derive(Debug, Default)]
struct Sum {
    total: u64,
}

impl Machine for Sum {
    fn apply(&mut self, batch: Vec<(u64, Bytes)>) -> BoxFuture<'_, io::Result<Vec<Bytes>>> {
        let mut out = Vec::new();
        for (_, cmd) in batch {
            let n: u64 = std::str::from_utf8(&cmd)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            self.total += n;
            out.push(Bytes::from(self.total.to_string()));
        }
        Box::pin(async move { Ok(out) })
    }

    fn snapshot(&mut self) -> BoxFuture<'_, io::Result<Bytes>> {
        let data = Bytes::from(self.total.to_string());
        Box::pin(async move { Ok(data) })
    }

    fn restore(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        self.total = std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Box::pin(async { Ok(()) })
    }
}

/// Direct calls between in-process nodes; a node in `cut` neither sends nor receives.
#[derive(Default)]
struct Mesh {
    nodes: Mutex<HashMap<String, Raft>>,
    cut: Mutex<HashSet<String>>,
}

struct Link {
    from: String,
    mesh: Arc<Mesh>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.from)
    }
}

impl Transport for Link {
    fn call(
        &self,
        to: &str,
        _: &str,
        rpc: Rpc,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, io::Result<Bytes>> {
        let cut = self.mesh.cut.lock().unwrap();
        let raft = if cut.contains(&self.from) || cut.contains(to) {
            None
        } else {
            self.mesh.nodes.lock().unwrap().get(to).cloned()
        };
        Box::pin(async move {
            let raft = raft.ok_or_else(|| io::Error::other("unreachable"))?;
            tokio::time::timeout(timeout, serve(&raft, rpc, &body))
                .await
                .map_err(|_| io::Error::other("timeout"))
        })
    }
}

struct Node {
    raft: Raft,
    sm: MachineStore<Sum>,
}

async fn start(mesh: &Arc<Mesh>, vfs: &SharedVfs, name: &str) -> Node {
    let dir = Path::new("/n").join(name);
    let log = LogStore::open(vfs.clone(), &dir.join("log")).unwrap();
    let sm = MachineStore::open(vfs.clone(), &dir.join("sm"), Sum::default())
        .await
        .unwrap();
    let link = Arc::new(Link {
        from: name.to_string(),
        mesh: mesh.clone(),
    });
    let cfg = Arc::new(config("test", 20).unwrap());
    let raft = Raft::new(node_id(name), cfg, Network::new("G", link), log, sm.clone())
        .await
        .unwrap();
    mesh.nodes
        .lock()
        .unwrap()
        .insert(name.to_string(), raft.clone());
    Node { raft, sm }
}

async fn leader(nodes: &HashMap<&str, Node>, not: Option<&str>) -> String {
    for _ in 0..200 {
        for (name, n) in nodes {
            if Some(*name) != not && n.raft.metrics().borrow().state == ServerState::Leader {
                return (*name).to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader elected");
}

async fn write(raft: &Raft, n: u64) -> Result<String, String> {
    let cmd = Command(Bytes::from(n.to_string()));
    match tokio::time::timeout(Duration::from_secs(3), raft.client_write(cmd)).await {
        Ok(Ok(resp)) => Ok(String::from_utf8_lossy(&resp.data.0).into_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn totals_reach(nodes: &HashMap<&str, Node>, want: u64) {
    for _ in 0..200 {
        let mut all = true;
        for n in nodes.values() {
            all &= n.sm.with(|m| m.total).await == want;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("replicas did not converge on {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_fail_over_and_refuse_in_a_minority() {
    let disk = SimDisk::new();
    let vfs = disk.shared();
    let mesh = Arc::new(Mesh::default());
    let names = ["a", "b", "c"];
    let mut nodes = HashMap::new();
    for name in names {
        nodes.insert(name, start(&mesh, &vfs, name).await);
    }
    let members: BTreeMap<u64, BasicNode> = names
        .iter()
        .map(|n| {
            (
                node_id(n),
                BasicNode {
                    addr: (*n).to_string(),
                },
            )
        })
        .collect();
    nodes["a"].raft.initialize(members).await.unwrap();
    let first = leader(&nodes, None).await;
    for i in 1..=30 {
        assert_eq!(
            write(&nodes[first.as_str()].raft, i).await,
            Ok((i * (i + 1) / 2).to_string())
        );
    }
    totals_reach(&nodes, 465).await;

    // The leader is cut off: the two others elect a new one and go on; the old leader
    // cannot commit alone.
    mesh.cut.lock().unwrap().insert(first.clone());
    let second = leader(&nodes, Some(&first)).await;
    assert_eq!(
        write(&nodes[second.as_str()].raft, 35).await,
        Ok("500".to_string())
    );
    assert!(write(&nodes[first.as_str()].raft, 1000).await.is_err());

    // Healed: the old leader follows and converges (its lone entry is discarded).
    mesh.cut.lock().unwrap().clear();
    totals_reach(&nodes, 500).await;

    // A proposal made on a follower is forwarded to the leader and answered with the
    // leader's result; a member cut off from everyone gets an error, not a hang.
    let follower = names.iter().find(|n| **n != second).unwrap();
    let net = |from: &str| {
        let link = Arc::new(Link {
            from: from.to_string(),
            mesh: mesh.clone(),
        });
        Network::new("G", link)
    };
    let ttl = Duration::from_secs(3);
    let cmd = || Bytes::from_static(b"5");
    let answer = propose(&nodes[follower].raft, &net(follower), cmd(), ttl).await;
    assert_eq!(answer, Ok(Bytes::from_static(b"505")));
    totals_reach(&nodes, 505).await;
    mesh.cut.lock().unwrap().insert((*follower).to_string());
    let answer = propose(&nodes[follower].raft, &net(follower), cmd(), ttl).await;
    assert!(answer.is_err(), "{answer:?}");
    mesh.cut.lock().unwrap().clear();
    for n in nodes.values() {
        n.raft.shutdown().await.unwrap();
    }
}
