//! JetStream at the edge across a leaf link: the edge server runs JetStream in domain
//! `edge`, the hub in domain `hub`, and a hub stream sources (or mirrors) the edge's
//! stream through the leaf connection with the external API prefix `$JS.edge.API`. The
//! link runs through the fault-injecting proxy, which cuts it and refuses it for a while
//! as the edge publishes; each server of the pair is restarted in turn. Every message
//! published at the edge must reach the hub once: none lost, none twice, in order (the
//! origin sequences in `Nats-Stream-Source`, a mirror's own sequences, are compared).
//!
//! Each scenario runs for every pairing with nats-server 2.15.1: both nats-server (the
//! reference the scenario is checked against), both rill, a rill leaf under a
//! nats-server hub and a nats-server leaf under a rill hub.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::proxy::FaultProxy;
use rill_tests::{ServerOpts, TestServer, check_for, free_port};

use crate::leaf::wait_linked;

/// How long a copy may take to catch up after a cut or a restart.
const CATCH_UP: Duration = Duration::from_secs(45);

/// A hub in JetStream domain `hub` whose leaf port is `leaf_port` (fixed, so that the
/// proxy in front of it still reaches it after a restart).
pub(crate) async fn hub(kind: ServerKind, leaf_port: u16) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        monitoring: true,
        config: Some(format!(
            "server_name: hub\njetstream {{ domain: hub }}\n\
             leafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n"
        )),
        ..ServerOpts::default()
    })
    .await
}

/// An edge server in JetStream domain `edge`, a leaf of whatever listens at `url`.
pub(crate) async fn edge(kind: ServerKind, url: &str) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        monitoring: true,
        config: Some(format!(
            "server_name: edge\njetstream {{ domain: edge }}\n\
             leafnodes {{ reconnect: \"200ms\", remotes: [ {{ url: \"{url}\" }} ] }}\n"
        )),
        ..ServerOpts::default()
    })
    .await
}

/// The edge's stream as a hub stream's origin, through the leaf link.
fn from_edge() -> stream::Source {
    stream::Source {
        name: "EDGE".into(),
        external: Some(stream::External {
            api_prefix: "$JS.edge.API".into(),
            delivery_prefix: None,
        }),
        ..Default::default()
    }
}

/// Everything the scenario needs: the two servers, the proxy between them and a
/// JetStream context on each.
struct Edge {
    hub: TestServer,
    edge: TestServer,
    proxy: FaultProxy,
    published: u32,
}

impl Edge {
    /// Hub and edge linked through a proxy, the edge stream `EDGE` (`sensor.>`) created
    /// on the edge, and on the hub `CENTRAL` sourcing it and `REPLICA` mirroring it.
    async fn start(hub_kind: ServerKind, leaf_kind: ServerKind) -> Edge {
        let port = free_port();
        let hub = hub(hub_kind, port).await;
        let proxy = FaultProxy::start(([127, 0, 0, 1], port).into()).await;
        let edge = edge(leaf_kind, &proxy.url("nats-leaf")).await;
        wait_linked(&hub, 1).await;
        let e = Edge {
            hub,
            edge,
            proxy,
            published: 0,
        };
        e.edge_js()
            .await
            .create_stream(stream::Config {
                name: "EDGE".into(),
                subjects: vec!["sensor.>".into()],
                ..Default::default()
            })
            .await
            .expect("edge stream");
        let js = e.hub_js().await;
        js.create_stream(stream::Config {
            name: "CENTRAL".into(),
            sources: Some(vec![from_edge()]),
            ..Default::default()
        })
        .await
        .expect("hub stream sourcing the edge");
        js.create_stream(stream::Config {
            name: "REPLICA".into(),
            mirror: Some(from_edge()),
            ..Default::default()
        })
        .await
        .expect("hub mirror of the edge");
        e
    }

    async fn edge_js(&self) -> jetstream::Context {
        self.edge.jetstream().await
    }

    async fn hub_js(&self) -> jetstream::Context {
        self.hub.jetstream().await
    }

    /// Publishes `n` more readings at the edge (each acked by the edge's own stream),
    /// `gap` apart, running `during` halfway through.
    async fn publish(&mut self, n: u32, gap: Duration, during: impl AsyncFnOnce(&Self)) {
        let js = self.edge_js().await;
        let mut during = Some(during);
        for i in 0..n {
            if i == n / 2
                && let Some(f) = during.take()
            {
                f(self).await;
            }
            let k = self.published;
            js.publish(format!("sensor.{}", k % 7), Bytes::from(k.to_string()))
                .await
                .expect("publish")
                .await
                .expect("ack from the edge stream");
            self.published += 1;
            tokio::time::sleep(gap).await;
        }
    }

    /// Waits until `name` on the hub holds every message published so far.
    async fn caught_up(&self, name: &str) {
        let js = self.hub_js().await;
        let want = u64::from(self.published);
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let held = match js.get_stream(name).await {
                Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
                Err(_) => 0,
            };
            if held >= want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} holds {held} of the {want} messages published at the edge"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads `name` on the hub whole and checks it holds message k at sequence k + 1 for
    /// every k published, once, with the origin sequence k + 1 (sources: from the
    /// `Nats-Stream-Source` header; a mirror keeps the origin's sequences).
    async fn check(&self, name: &str, mirror: bool) {
        let js = self.hub_js().await;
        let stream = js.get_stream(name).await.expect("stream");
        let info = stream.get_info().await.expect("info");
        assert_eq!(
            info.state.messages,
            u64::from(self.published),
            "{name}: no duplicates"
        );
        for k in 0..self.published {
            let seq = u64::from(k) + 1;
            let m = stream
                .get_raw_message(seq)
                .await
                .unwrap_or_else(|e| panic!("{name} seq {seq}: {e}"));
            assert_eq!(m.payload, Bytes::from(k.to_string()), "{name} seq {seq}");
            assert_eq!(m.subject.as_str(), format!("sensor.{}", k % 7));
            if !mirror {
                let source = m
                    .headers
                    .get("Nats-Stream-Source")
                    .map(|v| v.as_str().to_owned())
                    .expect("Nats-Stream-Source");
                let origin_seq = source.split(' ').nth(1).and_then(|s| s.parse::<u64>().ok());
                assert_eq!(origin_seq, Some(seq), "{name} seq {seq}: {source}");
            }
        }
    }

    /// Both hub streams hold everything, once and in order.
    async fn verify(&self) {
        for (name, mirror) in [("CENTRAL", false), ("REPLICA", true)] {
            self.caught_up(name).await;
            self.check(name, mirror).await;
        }
    }
}

/// The link is cut while the edge publishes and refused for two seconds; the edge's
/// stream goes on taking messages, and once the link is back the hub's source and
/// mirror catch up: every message once.
async fn cut_link(hub_kind: ServerKind, leaf_kind: ServerKind) {
    let mut e = Edge::start(hub_kind, leaf_kind).await;
    e.publish(120, Duration::from_millis(5), async |e: &Edge| {
        e.proxy.set_refuse(true);
        e.proxy.cut();
        check_for(CATCH_UP, || async {
            crate::leaf::leafnodes(&e.hub).await == 0
        })
        .await;
    })
    .await;
    // Still cut: messages published now wait at the edge.
    e.publish(40, Duration::from_millis(5), async |_: &Edge| {})
        .await;
    e.proxy.heal();
    wait_linked(&e.hub, 1).await;
    e.publish(40, Duration::from_millis(5), async |_: &Edge| {})
        .await;
    e.verify().await;
}

#[tokio::test]
async fn hub_sources_the_edge_across_a_cut_link_nats_server_pair() {
    cut_link(Nats, Nats).await;
}

#[tokio::test]
async fn hub_sources_the_edge_across_a_cut_link_rill_pair() {
    cut_link(Rill, Rill).await;
}

#[tokio::test]
async fn hub_sources_the_edge_across_a_cut_link_rill_leaf_under_nats_server_hub() {
    cut_link(Nats, Rill).await;
}

#[tokio::test]
async fn hub_sources_the_edge_across_a_cut_link_nats_server_leaf_under_rill_hub() {
    cut_link(Rill, Nats).await;
}

/// Origin and copy on separate servers, each restarted in turn while messages are
/// published at the edge: the edge (the origin) goes down and comes back with its
/// stream, then the hub (the copy) does; the copies resume where they stopped.
async fn restarts(hub_kind: ServerKind, leaf_kind: ServerKind) {
    let mut e = Edge::start(hub_kind, leaf_kind).await;
    e.publish(50, Duration::from_millis(2), async |_: &Edge| {})
        .await;
    e.verify().await;
    e.edge.restart().await;
    wait_linked(&e.hub, 1).await;
    e.publish(50, Duration::from_millis(2), async |_: &Edge| {})
        .await;
    e.hub.stop().await;
    // The hub is down: the edge keeps storing.
    e.publish(50, Duration::from_millis(2), async |_: &Edge| {})
        .await;
    e.hub.restart().await;
    wait_linked(&e.hub, 1).await;
    e.publish(50, Duration::from_millis(2), async |_: &Edge| {})
        .await;
    e.verify().await;
}

#[tokio::test]
async fn origin_and_copy_restart_without_gap_or_duplicate_nats_server_pair() {
    restarts(Nats, Nats).await;
}

#[tokio::test]
async fn origin_and_copy_restart_without_gap_or_duplicate_rill_pair() {
    restarts(Rill, Rill).await;
}

#[tokio::test]
async fn origin_and_copy_restart_without_gap_or_duplicate_mixed_pairs() {
    restarts(Nats, Rill).await;
    restarts(Rill, Nats).await;
}

/// `examples/edge_gateway.rs` starts a hub and an edge itself, cuts its own uplink relay
/// while the edge publishes and counts what reached the hub: a rill pair, and a rill
/// edge under a nats-server hub.
#[tokio::test]
async fn edge_gateway_example() {
    let bin = crate::js_consumers_examples::example_bin("edge_gateway");
    let rill = rill_tests::rill_server_bin();
    for hub in [rill.clone(), Nats.bin()] {
        let out = tokio::process::Command::new(&bin)
            .env("HUB_SERVER", &hub)
            .env("EDGE_SERVER", &rill)
            .kill_on_drop(true)
            .output()
            .await
            .expect("run the example");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "hub {}: {stdout}\n{}",
            hub.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(
                "300 readings published at the edge, 300 arrived at the hub: 0 lost, 0 twice"
            ),
            "{stdout}"
        );
    }
}

/// What a leaf client sees of a KV read replica of the hub's bucket (nats.js
/// `kv - mirror cross domain`, issue 21).
#[derive(Debug, PartialEq)]
struct KvReplica {
    /// Answers to publishes from the leaf under the hub's API prefix: a KV key
    /// (stored at the origin: (stream, domain, seq)), an object-store subject and a
    /// plain one (neither stored: no responders).
    writes: Vec<String>,
    /// The mirror's messages once it caught up.
    mirrored: u64,
    /// The value a direct get of the mirror returns for the key.
    value: String,
}

/// A hub (domain `hub`) holding bucket `TEST` (`name` = `derek`) and a leaf (domain
/// `leaf`) whose `KV_MIRROR` mirrors it through `$JS.hub.API`, with a client of each.
struct KvPair {
    _hub: TestServer,
    leaf: TestServer,
    /// A client of the leaf, once the hub sees its interest.
    client: async_nats::Client,
}

async fn kv_pair(kind: ServerKind) -> KvPair {
    let hub = TestServer::start_with(ServerOpts {
        kind,
        config: Some(
            "server_name: HUB\njetstream { domain: hub }\nleafnodes { listen: \"127.0.0.1:-1\" }\n"
                .into(),
        ),
        monitoring: true,
        ..ServerOpts::default()
    })
    .await;
    // nats-server's ports file does not list the leaf port; /varz does.
    let varz = rill_tests::cluster::http_get(hub.monitoring_port(), "/varz").await;
    let varz: serde_json::Value = serde_json::from_str(&varz.expect("/varz")).expect("JSON");
    let url = format!("nats-leaf://127.0.0.1:{}", varz["leaf"]["port"]);
    let leaf = edge(kind, &url).await;
    wait_linked(&hub, 1).await;
    let bucket = hub
        .jetstream()
        .await
        .create_key_value(jetstream::kv::Config {
            bucket: "TEST".into(),
            ..Default::default()
        })
        .await
        .expect("bucket");
    bucket.put("name", "derek".into()).await.expect("put");
    leaf.jetstream()
        .await
        .create_stream(stream::Config {
            name: "KV_MIRROR".into(),
            mirror: Some(stream::Source {
                name: "KV_TEST".into(),
                external: Some(stream::External {
                    api_prefix: "$JS.hub.API".into(),
                    delivery_prefix: None,
                }),
                ..Default::default()
            }),
            mirror_direct: true,
            allow_direct: true,
            max_messages_per_subject: 1,
            ..Default::default()
        })
        .await
        .expect("mirror");
    let client = leaf.client().await;
    crate::leaf::wait_interest(&hub.client().await, &client).await;
    KvPair {
        _hub: hub,
        leaf,
        client,
    }
}

/// A leaf client writes to the bucket as nats.js does for a mirrored bucket
/// (`$JS.hub.API.$KV.TEST.<key>`).
async fn kv_replica_on(kind: ServerKind) -> KvReplica {
    let pair = kv_pair(kind).await;
    let (ljs, client) = (pair.leaf.jetstream().await, &pair.client);
    let mut writes = Vec::new();
    for subject in [
        "$JS.hub.API.$KV.TEST.name",
        "$JS.hub.API.$O.X.C.a",
        "$JS.hub.API.plain",
    ] {
        let answer = client.request(subject, "rip".into()).await;
        writes.push(match answer {
            Ok(m) => {
                let ack: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
                format!("{} {} {}", ack["stream"], ack["domain"], ack["seq"])
            }
            Err(e) => format!("{:?}", e.kind()),
        });
    }
    check_for(CATCH_UP, || async {
        let info = ljs
            .get_stream("KV_MIRROR")
            .await
            .expect("mirror")
            .get_info()
            .await;
        info.is_ok_and(|i| i.state.last_sequence == 2)
    })
    .await;
    let mirror = ljs.get_stream("KV_MIRROR").await.expect("mirror stream");
    let mirrored = mirror.get_info().await.expect("info").state.messages;
    let got = mirror
        .direct_get_last_for_subject("$KV.TEST.name")
        .await
        .expect("direct get");
    KvReplica {
        writes,
        mirrored,
        value: String::from_utf8_lossy(&got.payload).into_owned(),
    }
}

#[tokio::test]
async fn a_kv_read_replica_across_domains_takes_writes_for_its_origin_as_nats_server() {
    let nats = kv_replica_on(Nats).await;
    let rill = kv_replica_on(Rill).await;
    assert_eq!(nats.value, "rip", "{nats:?}");
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
}

/// Writes through the leaf to the hub's bucket, reading the leaf's mirror as soon as
/// each PubAck arrives (nats.js `kv - mirror cross domain` reads its mirror right after
/// a write). Returns, per write, how many reads found the old value before the new one.
async fn mirror_reads_after_writes(kind: ServerKind, writes: usize) -> Vec<usize> {
    let pair = kv_pair(kind).await;
    let mirror = pair
        .leaf
        .jetstream()
        .await
        .get_stream("KV_MIRROR")
        .await
        .expect("mirror");
    check_for(CATCH_UP, || async {
        let got = mirror.direct_get_last_for_subject("$KV.TEST.name").await;
        got.is_ok_and(|m| m.payload == "derek")
    })
    .await;
    let mut stale = Vec::new();
    for i in 0..writes {
        let value = Bytes::from(format!("v{i}"));
        let ack = pair
            .client
            .request("$JS.hub.API.$KV.TEST.name", value.clone());
        ack.await.expect("PubAck");
        let mut old = 0;
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let got = mirror.direct_get_last_for_subject("$KV.TEST.name").await;
            if got.is_ok_and(|m| m.payload == value) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind:?}: v{i} never mirrored"
            );
            old += 1;
        }
        stale.push(old);
    }
    stale
}

/// Read-after-write through a mirror (issue 21, nats.js `kv - mirror cross domain`): on
/// nats-server 2.15.1 the mirror almost always has a write by the time its PubAck reaches
/// the writer, because the origin's consumers get the message as its ack leaves. rill's
/// mirror got it 2-10 ms after the ack (stale after nearly every write) until the origin
/// ran its consumers' reads in the flush, before the acks (c174550); under load those
/// reads were parked behind a late watch and missed every other write (CI: stale after 6
/// of 20 writes, 1,0,1,0; see `consumer::parked`).
///
/// Recorded on a loaded 2-core host (debug build): nats-server 0-2 of 20 writes read
/// stale at least once, rill 0-3. That is timing on a shared host, so each server gets
/// up to `ROUNDS` rounds of `WRITES` writes and must have one where at most a quarter of
/// the writes read stale: a copy that follows its ack as a rule fails every round.
#[tokio::test]
async fn a_mirror_has_a_write_when_its_puback_arrives_as_nats_server() {
    const WRITES: usize = 20;
    const ROUNDS: usize = 3;
    for kind in [Nats, Rill] {
        let mut rounds = Vec::new();
        let mut best = usize::MAX;
        while rounds.len() < ROUNDS && best > WRITES / 4 {
            let stale = mirror_reads_after_writes(kind, WRITES).await;
            best = best.min(stale.iter().filter(|&&n| n > 0).count());
            rounds.push(stale);
        }
        eprintln!("{kind:?}: stale reads per write, per round: {rounds:?}");
        assert!(
            best <= WRITES / 4,
            "{kind:?}: over a quarter of the writes read stale in every round: {rounds:?}"
        );
    }
}
