//! nats-py (when installed) runs its stream, KV and object-store APIs against rill
//! unchanged (`tests/e2e/py/js_kv_obj.py`); the snapshot is what the same script prints
//! against nats-server 2.15.1. Skipped when `python3 -c "import nats"` fails.

use std::process::Command;

use rill_tests::TestServer;

const SCRIPT: &str = include_str!("py/js_kv_obj.py");

/// True when python3 can import nats-py (tests that need it skip without it).
pub(crate) fn nats_py_available() -> bool {
    Command::new("python3")
        .args(["-c", "import nats"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn nats_py_streams_kv_and_object_store() {
    if !nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let server = TestServer::start().await;
    let out = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &server.port().to_string()])
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("nats_py_output", stdout);
}
