//! Item 3 of issue 14: message tracing (nats-server 2.11, ADR-41), driven by nats-py with
//! raw headers (`tests/e2e/py/msg_trace.py`): `Nats-Trace-Dest` and `Nats-Trace-Only` on
//! core subjects, a subject mapping, JetStream (limits and interest streams), a stream
//! export with and without `allow_trace`, a service import, sampled `traceparent` with the
//! account's `msg_trace`, invalid trace subjects, a refused publish, and a route between
//! two servers (a report from each, `Nats-Trace-Hop`). The reports of rill and nats-server
//! 2.15.1 must be equal once the fields that differ by run or by implementation are
//! redacted (times, ids, sequence numbers, connection ids, the version and nats-server's
//! `flags`/`feature_flags`); the snapshot holds rill's.

use std::time::Duration;

use rill_tests::cluster::{Node, NodeSpec};
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

use crate::js_nats_py::nats_py_available;

const SCRIPT: &str = include_str!("../py/msg_trace.py");

const CONFIG: &str = r#"
server_name: S1
accounts {
  A {
    jetstream: enabled
    users: [{user: a, password: a}, {user: deny, password: deny, permissions: {publish: {deny: "deny.>"}}}]
    mappings { "amap.x": "amap.y" }
    exports: [ {stream: "tick.>"}, {stream: "tock.>"} ]
    imports: [ {service: {account: B, subject: "bsvc"}, to: "bsvc"} ]
    msg_trace: { dest: "tp.dest", sampling: 100 }
  }
  B {
    users: [{user: b, password: b}]
    exports: [ {service: "bsvc"} ]
    imports: [
      {stream: {account: A, subject: "tick.>"}, allow_trace: true}
      {stream: {account: A, subject: "tock.>"}}
    ]
  }
}
"#;

/// Runs the scenario with `args`; its JSON output.
async fn scenario(args: &[String]) -> Value {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).args(args).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("the scenario finished within 90 s")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `v` with the fields that differ by run or implementation replaced.
fn redact(mut v: Value) -> Value {
    redact_in(&mut v);
    v
}

fn redact_in(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("feature_flags");
            for (key, value) in map.iter_mut() {
                match key.as_str() {
                    "ts" | "time" | "id" | "seq" | "cid" | "ver" | "flags" => {
                        *value = Value::from("[redacted]")
                    }
                    _ => redact_in(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in),
        _ => {}
    }
}

async fn single(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts {
        kind,
        config: Some(CONFIG.to_string()),
        ..ServerOpts::default()
    })
    .await;
    redact(scenario(&["single".into(), server.url()]).await)
}

#[tokio::test]
async fn traces_report_every_hop_on_one_server_as_nats_server() {
    if !nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let rill = single(ServerKind::Rill).await;
    let nats = single(ServerKind::Nats).await;
    for (r, n) in rill
        .as_array()
        .expect("cases")
        .iter()
        .zip(nats.as_array().expect("cases"))
    {
        assert_eq!(r, n, "rill (left) and nats-server (right) differ");
    }
    assert_eq!(rill, nats);
    insta::assert_json_snapshot!("msg_trace_single", rill);
}

async fn route(kind: ServerKind) -> Value {
    let first = Node::start(NodeSpec::new(kind, "S1")).await;
    let second = Node::start(NodeSpec::new(kind, "S2").routes([first.route_url()])).await;
    redact(scenario(&["route".into(), first.url(), second.url()]).await)
}

#[tokio::test]
async fn a_route_hop_reports_from_both_servers_as_nats_server() {
    if !nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let rill = route(ServerKind::Rill).await;
    let nats = route(ServerKind::Nats).await;
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
    insta::assert_json_snapshot!("msg_trace_route", rill);
}
