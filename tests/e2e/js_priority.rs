//! Priority groups on pull consumers (ADR-42: `overflow`, `pinned_client`, `prioritized`,
//! `$JS.API.CONSUMER.UNPIN`, the pin advisories), driven by nats-py over the raw `$JS` API
//! (`tests/e2e/py/priority_groups.py`) against rill and nats-server 2.15.1: both must answer
//! every step alike (pin ids are named by order of appearance).

use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

use crate::js_nats_py::nats_py_available;

const SCRIPT: &str = include_str!("py/priority_groups.py");

async fn run(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let run = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &server.port().to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the scenario finished within 60 s")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{kind:?}: {e}: {stdout}"))
}

#[tokio::test]
async fn priority_groups_behave_as_on_nats_server() {
    if !nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let rill = run(ServerKind::Rill).await;
    let nats = run(ServerKind::Nats).await;
    for (r, n) in rill["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .zip(nats["steps"].as_array().expect("steps"))
    {
        assert_eq!(r, n, "rill and nats-server differ at {}", n[0]);
    }
    assert_eq!(rill, nats);
    insta::assert_json_snapshot!("priority_groups", rill);
}
