//! Stream placement in a JetStream cluster by cluster name and server tags (issue 21),
//! three servers of cluster `C1` tagged `[az:1, ssd]`, `[az:2, SSD]` and `az:3`, nats-server
//! 2.15.1 first, then rill; the answers must be equal. Recorded from 2.15.1 (and in
//! `server/src/jetstream/cluster/placement.rs`): tags are lower-cased, a server fits when
//! it has every tag asked for, a stream of one replica goes to a fitting server, too few
//! fitting servers answer 400/10005 `no suitable peers for placement, tags not matched
//! [...]` listing the tags as asked (in varying order on 2.15.1: compared sorted), another
//! cluster's name 400/10005 without the tags. A server outside a cluster ignores
//! `placement` (`standalone_servers_ignore_placement_as_nats_server`).

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, api, create_replicated};
use serde_json::{Value, json};

/// Each node's `server_tags`.
fn tags_of(name: &str) -> &'static str {
    match name {
        "n1" => r#"["az:1", "ssd"]"#,
        "n2" => r#"["az:2", "SSD"]"#,
        _ => r#""az:3""#,
    }
}

/// The servers holding a created stream (its leader and replicas), sorted.
fn holders(created: &Value) -> Vec<String> {
    let cluster = &created["cluster"];
    let mut names: Vec<String> = std::iter::once(&cluster["leader"])
        .chain(
            cluster["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| &r["name"]),
        )
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// An error answer as `code err_code description`, the tag list sorted.
fn refusal(answer: &Value) -> String {
    let e = &answer["error"];
    let text = e["description"].as_str().unwrap_or_default();
    let text = match text.split_once('[') {
        Some((head, list)) => {
            let mut tags: Vec<&str> = list.trim_end_matches(']').split(", ").collect();
            tags.sort_unstable();
            format!("{head}[{}]", tags.join(", "))
        }
        None => text.to_owned(),
    };
    format!("{} {} {text}", e["code"], e["err_code"])
}

fn stream(name: &str, replicas: u32, placement: &Value) -> String {
    json!({"name": name, "subjects": [name.to_lowercase()], "num_replicas": replicas,
           "placement": placement})
    .to_string()
}

/// What one kind of server answers for the placements of the module doc.
async fn placements(kind: ServerKind) -> Vec<String> {
    let cluster = Cluster::jetstream_with(kind, 3, |mut spec| {
        spec.config = Some(format!("server_tags: {}\n", tags_of(&spec.name)));
        spec
    })
    .await;
    let client = cluster.node(0).client().await;
    let mut seen = Vec::new();
    for node in &cluster.nodes {
        let varz = node.monitor("/varz").await;
        seen.push(format!("{} tags {}", node.name(), varz["tags"]));
    }
    let placed = [
        ("AZ3", 1, json!({"tags": ["az:3"]})),
        ("SSD2", 2, json!({"tags": ["ssd"]})),
        ("AZ2", 1, json!({"cluster": "C1", "tags": ["az:2"]})),
    ];
    for (name, replicas, placement) in placed {
        let created = create_replicated(&client, name, &stream(name, replicas, &placement)).await;
        seen.push(format!("{name} on {:?}", holders(&created)));
    }
    // One replica on either `ssd` server (upper case asked, lower case configured).
    let one = create_replicated(&client, "ONE", &stream("ONE", 1, &json!({"tags": ["SSD"]}))).await;
    let on = holders(&one);
    assert!(
        on == ["n1"] || on == ["n2"],
        "{kind:?}: SSD placed on {on:?}"
    );
    let refused = [
        ("R3SSD", 3, json!({"tags": ["ssd"]})),
        ("NOPE", 1, json!({"tags": ["NOPE"]})),
        ("BOTH", 1, json!({"tags": ["az:1", "az:2"]})),
        ("HALF", 1, json!({"tags": ["ssd", "nope"]})),
        ("OTHER", 1, json!({"cluster": "X"})),
        ("OTHER3", 3, json!({"cluster": "X"})),
    ];
    for (name, replicas, placement) in refused {
        let body = stream(name, replicas, &placement);
        let answer = api(&client, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
        seen.push(format!("{name}: {}", refusal(&answer)));
    }
    let update = stream("AZ3", 1, &json!({"tags": ["nope"]}));
    let answer = api(&client, "$JS.API.STREAM.UPDATE.AZ3", &update).await;
    seen.push(format!("update AZ3 to nope: {}", refusal(&answer)));
    let same = stream("SSD2", 2, &json!({"tags": ["SSD"]}));
    let answer = api(&client, "$JS.API.STREAM.UPDATE.SSD2", &same).await;
    seen.push(format!("update SSD2 to SSD: {:?}", answer["error"]));
    seen
}

#[tokio::test]
async fn streams_are_placed_by_cluster_and_tags_as_nats_server() {
    let nats = placements(Nats).await;
    insta::assert_debug_snapshot!(nats);
    let rill = placements(Rill).await;
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
}

/// A standalone server keeps any placement in the config and creates the stream.
async fn standalone(kind: ServerKind) -> Vec<Value> {
    let server = rill_tests::TestServer::start_with(rill_tests::ServerOpts {
        kind,
        jetstream: true,
        config: Some("server_tags: [\"x\"]\n".into()),
        ..rill_tests::ServerOpts::default()
    })
    .await;
    let client = server.client().await;
    let mut seen = Vec::new();
    for (i, placement) in [
        json!({"tags": ["nope"]}),
        json!({"cluster": "X", "tags": ["x"]}),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("S{i}");
        let body = stream(&name, 1, &placement);
        let answer = api(&client, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
        seen.push(json!({"error": answer["error"], "placement": answer["config"]["placement"]}));
    }
    seen
}

#[tokio::test]
async fn standalone_servers_ignore_placement_as_nats_server() {
    let nats = standalone(Nats).await;
    assert!(nats.iter().all(|v| v["error"].is_null()), "{nats:?}");
    assert_eq!(standalone(Rill).await, nats);
}
