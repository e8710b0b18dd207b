//! Sources added to a running stream by `STREAM.UPDATE`, against rill and nats-server
//! 2.15.1 side by side (issue 21): a hub stream that held only its own messages gains a
//! source at the edge (another server, through the leaf link and the edge's JetStream
//! domain) from `opt_start_seq` and a local source from its start; each starts copying
//! where its configuration says, and both go on, with no gap and no duplicate, after
//! the edge (the origin's side) and then the hub (the copy's side) restart.

use std::time::Duration;

use rill_tests::{ServerKind, TestServer, check_for, free_port};
use serde_json::{Value, json};

use crate::js_dedupe::publish;
use crate::js_sources::{create, info, messages};
use crate::js_streams::api;
use crate::leaf::wait_linked;
use crate::leaf_sources::{edge, hub};

/// How long a copy may take after an update or a restart (nats-server retries a
/// source about every 10 s, more under load).
const CATCH_UP: Duration = Duration::from_secs(60);

/// A hub and an edge of `kind`, the edge a leaf of the hub.
struct Pair {
    hub: TestServer,
    edge: TestServer,
}

impl Pair {
    async fn start(kind: ServerKind) -> Pair {
        let port = free_port();
        let hub = hub(kind, port).await;
        let edge = edge(kind, &format!("nats-leaf://127.0.0.1:{port}")).await;
        wait_linked(&hub, 1).await;
        Pair { hub, edge }
    }

    /// Waits until the hub's `CENTRAL` holds `n` messages.
    async fn central_holds(&self, n: u64) {
        let c = self.hub.client().await;
        check_for(CATCH_UP, || async {
            info(&c, "CENTRAL").await["state"]["messages"] == json!(n)
        })
        .await;
    }

    /// Publishes `subjects` at the edge, each acked by its stream there.
    async fn at_edge(&self, subjects: &[&str]) {
        let c = self.edge.client().await;
        for s in subjects {
            publish(&c, s, &[], s).await;
        }
    }

    /// Publishes `subjects` at the hub, each acked by its stream.
    async fn at_hub(&self, subjects: &[&str]) {
        let c = self.hub.client().await;
        for s in subjects {
            publish(&c, s, &[], s).await;
        }
    }
}

/// The origin sequences copied from `origin`, in the order `CENTRAL` stored them.
fn copied(stored: &[(u64, String, String, String)], origin: &str) -> Vec<u64> {
    stored
        .iter()
        .filter(|m| m.3.split(' ').next().is_some_and(|o| o.starts_with(origin)))
        .filter_map(|m| m.3.split(' ').nth(1).and_then(|s| s.parse().ok()))
        .collect()
}

/// The scenario on a pair of `kind`: what `CENTRAL` holds and says of its sources.
async fn add_sources_and_restart(kind: ServerKind) -> Value {
    let mut p = Pair::start(kind).await;
    create(
        &p.edge.client().await,
        json!({"name": "EDGE", "subjects": ["sensor.>"]}),
    )
    .await;
    p.at_edge(&["sensor.1", "sensor.2", "sensor.3", "sensor.4", "sensor.5"])
        .await;
    let hub = p.hub.client().await;
    create(&hub, json!({"name": "LOCAL", "subjects": ["local.>"]})).await;
    p.at_hub(&["local.1", "local.2"]).await;
    let r = create(&hub, json!({"name": "CENTRAL", "subjects": ["central.>"]})).await;
    p.at_hub(&["central.own"]).await;
    let mut cfg = r["config"].clone();
    cfg["sources"] = json!([
        {"name": "EDGE", "opt_start_seq": 3, "external": {"api": "$JS.edge.API"}},
        {"name": "LOCAL"},
    ]);
    let u = api(&hub, "$JS.API.STREAM.UPDATE.CENTRAL", &cfg.to_string()).await;
    assert!(u.get("error").is_none(), "{kind:?}: {u}");
    // Own 1, EDGE 3..=5, LOCAL 1..=2.
    p.central_holds(6).await;
    p.at_hub(&["local.3"]).await;
    p.at_edge(&["sensor.6"]).await;
    p.central_holds(8).await;

    p.edge.restart().await;
    wait_linked(&p.hub, 1).await;
    p.at_edge(&["sensor.7", "sensor.8"]).await;
    p.central_holds(10).await;

    p.hub.stop().await;
    // The hub is down: the edge keeps storing.
    p.at_edge(&["sensor.9"]).await;
    p.hub.restart().await;
    wait_linked(&p.hub, 1).await;
    p.at_hub(&["local.4"]).await;
    p.at_edge(&["sensor.10"]).await;
    p.central_holds(13).await;

    let hub = p.hub.client().await;
    let stored = messages(&hub, "CENTRAL").await;
    let (from_edge, from_local) = (copied(&stored, "EDGE"), copied(&stored, "LOCAL"));
    assert_eq!(
        from_edge,
        (3..=10).collect::<Vec<u64>>(),
        "{kind:?}: {stored:?}"
    );
    assert_eq!(
        from_local,
        (1..=4).collect::<Vec<u64>>(),
        "{kind:?}: {stored:?}"
    );
    let mut copies: Vec<(String, String)> =
        stored.iter().map(|m| (m.1.clone(), m.3.clone())).collect();
    copies.sort();
    let i = info(&hub, "CENTRAL").await;
    let mut sources: Vec<Value> = i["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| json!([s["name"], s["seq"], s["lag"], s["external"], s.get("error")]))
        .collect();
    sources.sort_by_key(Value::to_string);
    json!({"copies": copies, "sources": sources})
}

#[tokio::test]
async fn sources_added_by_update_start_where_configured_and_survive_restarts_as_nats_server() {
    let rill = add_sources_and_restart(ServerKind::Rill).await;
    let nats = add_sources_and_restart(ServerKind::Nats).await;
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
    insta::assert_json_snapshot!(rill);
}
