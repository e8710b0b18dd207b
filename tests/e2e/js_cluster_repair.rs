//! A replica whose store was damaged while its server was down rejoins and is repaired
//! from its group (issue 20): one follower's block file gets bits flipped in a record,
//! another's is cut short in the middle, each while messages are acked without it; once
//! restarted, every replica holds every acked message, byte for byte the same (each
//! server in turn made the stream's leader and read whole).
//!
//! rill empties a replica whose store found damage at open and refills it from the
//! other members before it applies any entry (`cluster::replica::machine`). nats-server
//! 2.15.1 is run through the same steps first (its block files are found and damaged
//! the same way: by the unique payloads) and ends the same: every message on every
//! replica, the same stream state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, api, create_replicated};
use serde_json::{Value, json};

use crate::js_cluster::stream_leader;
use crate::js_cluster_leader::each_replica;

/// Messages stored before the damage: more than a stream group's snapshot interval
/// (1024 entries on rill), so the damaged records are behind every member's snapshot
/// and gone from the group's log.
const BEFORE: u64 = 1100;
/// Messages acked while a damaged follower is down.
const WHILE_DOWN: u64 = 40;

/// The payload of the message at `seq`: unique, so the test finds its record in a
/// block file.
fn payload(seq: u64) -> String {
    format!("repair-{seq:06}-{}", "x".repeat(40))
}

/// Publishes the messages `range` (payload [`payload`] of the sequence each is meant
/// to get), 64 acks in flight; asserts every ack names that sequence.
async fn publish(js: &jetstream::Context, range: std::ops::RangeInclusive<u64>) {
    let mut acks = FuturesOrdered::new();
    let mut expect = range.clone();
    let mut check = |ack: Result<jetstream::publish::PublishAck, _>| {
        let want = expect.next().expect("one ack per message");
        assert_eq!(ack.expect("acked").sequence, want);
    };
    for seq in range {
        let sent = js.publish("r.msg", payload(seq).into()).await.expect("pub");
        acks.push_back(sent.into_future());
        if acks.len() >= 64 {
            check(acks.next().await.expect("ack"));
        }
    }
    while let Some(ack) = acks.next().await {
        check(ack);
    }
}

/// The stream's block files on `dir`'s server (rill `0000000001.blk`, nats-server
/// `1.blk`), in name order.
fn block_files(dir: &Path) -> Vec<PathBuf> {
    let msgs = dir.join("store/jetstream/$G/streams/R/msgs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&msgs)
        .unwrap_or_else(|e| panic!("{}: {e}", msgs.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "blk"))
        .collect();
    files.sort();
    files
}

/// The block file holding `seq`'s payload, and where in it the payload starts.
fn find(dir: &Path, seq: u64) -> (PathBuf, usize) {
    let want = payload(seq);
    for file in block_files(dir) {
        let data = std::fs::read(&file).expect("read block");
        if let Some(at) = data.windows(want.len()).position(|w| w == want.as_bytes()) {
            return (file, at);
        }
    }
    panic!("no block of {} holds message {seq}", dir.display());
}

/// Flips bits in the payload of `seq`'s record.
fn flip(dir: &Path, seq: u64) {
    let (file, at) = find(dir, seq);
    let mut data = std::fs::read(&file).expect("read block");
    for b in &mut data[at + 10..at + 14] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, data).expect("write block");
}

/// Cuts the block file holding `seq` short in the middle of its payload.
fn cut(dir: &Path, seq: u64) {
    let (file, at) = find(dir, seq);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open block");
    f.set_len(u64::try_from(at + 5).expect("small"))
        .expect("truncate");
}

/// The stream's state (without times) and every message with its headers and time,
/// as the server `client` reaches answers (the stream's leader).
async fn whole(client: async_nats::Client) -> (Value, Vec<Value>) {
    let info = api(&client, "$JS.API.STREAM.INFO.R", "").await;
    let mut state = info["state"].clone();
    for time in ["first_ts", "last_ts"] {
        state.as_object_mut().expect("state").remove(time);
    }
    let last = state["last_seq"].as_u64().unwrap_or_default();
    let mut msgs = Vec::new();
    for seq in 1..=last {
        let body = format!(r#"{{"seq":{seq}}}"#);
        let got = api(&client, "$JS.API.STREAM.MSG.GET.R", &body).await;
        let m = &got["message"];
        msgs.push(json!([
            m["seq"],
            m["subject"],
            m["hdrs"],
            m["data"],
            m["time"]
        ]));
    }
    (state, msgs)
}

/// Kills `node`, damages its store with `damage`, acks [`WHILE_DOWN`] messages from
/// `next` on without it, and restarts it; the sequence after the last acked.
async fn down_and_damaged(
    cluster: &mut Cluster,
    node: usize,
    js: &jetstream::Context,
    next: u64,
    damage: impl FnOnce(&Path),
) -> u64 {
    cluster.nodes[node].kill();
    damage(cluster.nodes[node].dir());
    let last = next + WHILE_DOWN - 1;
    publish(js, next..=last).await;
    cluster.nodes[node].restart().await;
    cluster.wait_mesh().await;
    last + 1
}

/// Waits until every replica reports `total` messages (each asked in turn as the
/// leader, [`each_replica`]), then returns each one's whole view.
async fn views(cluster: &Cluster, total: u64) -> Vec<(Value, Vec<Value>)> {
    let deadline = Instant::now() + ELECTION;
    loop {
        let counts = each_replica(cluster, "R", |c| async move {
            api(&c, "$JS.API.STREAM.INFO.R", "").await["state"]["messages"].clone()
        })
        .await;
        if counts.iter().all(|c| *c == total) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas hold {counts:?}, not {total}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    each_replica(cluster, "R", whole).await
}

async fn repair_on(kind: ServerKind) -> Vec<(Value, Vec<Value>)> {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    create_replicated(
        &client,
        "R",
        r#"{"name":"R","subjects":["r.>"],"num_replicas":3}"#,
    )
    .await;
    let leader = stream_leader(&cluster, "R").await;
    let followers: Vec<usize> = (0..3)
        .filter(|i| cluster.nodes[*i].name() != leader)
        .collect();
    // Through the leader's server, which stays up.
    let at = cluster.nodes.iter().find(|n| n.name() == leader);
    let js = jetstream::new(at.expect("the leader's node").client().await);
    publish(&js, 1..=BEFORE).await;

    let next = down_and_damaged(&mut cluster, followers[0], &js, BEFORE + 1, |dir| {
        flip(dir, 300);
    })
    .await;
    let next = down_and_damaged(&mut cluster, followers[1], &js, next, |dir| cut(dir, 700)).await;
    let total = next + 9;
    publish(&js, next..=total).await;

    let views = views(&cluster, total).await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(view, &views[0], "{kind:?}: {} differs", node.name());
    }
    let (state, msgs) = &views[0];
    assert_eq!(state["messages"], total, "{kind:?}: {state}");
    for (seq, m) in (1..=total).zip(msgs) {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(payload(seq));
        assert_eq!(m[3], data.as_str(), "{kind:?}: message {seq}");
    }
    if kind == Rill {
        let flipped = &cluster.nodes[followers[0]];
        assert!(
            flipped.logs().contains("store is damaged: emptied"),
            "{}:\n{}",
            flipped.name(),
            flipped.logs()
        );
        let cut = &cluster.nodes[followers[1]];
        assert!(
            cut.logs().contains("store is behind its snapshot"),
            "{}:\n{}",
            cut.name(),
            cut.logs()
        );
    }
    views
}

#[tokio::test]
async fn a_damaged_replica_is_repaired_from_its_group() {
    let nats = repair_on(Nats).await;
    let rill = repair_on(Rill).await;
    // Times differ between the runs; the rest is the same.
    let untimed = |(state, msgs): &(Value, Vec<Value>)| {
        let msgs: Vec<Value> = msgs
            .iter()
            .map(|m| json!([m[0], m[1], m[2], m[3]]))
            .collect();
        (state.clone(), msgs)
    };
    assert_eq!(untimed(&rill[0]), untimed(&nats[0]));
}
