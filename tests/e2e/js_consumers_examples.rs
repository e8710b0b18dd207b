//! Runs the consumer examples (`work_queue`, `event_replay`, `partitioned_workers`)
//! against a fresh server.
//! The example binaries are built with `cargo build -p rill-examples --examples` (CI
//! does); when missing, this test builds them.

use std::process::Command;

use rill_tests::{TestServer, target_dir};

pub(crate) fn example_bin(name: &str) -> std::path::PathBuf {
    let path = target_dir().join("examples").join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "rill-examples", "--example", name])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building example {name}");
    }
    path
}

async fn run_example(name: &str) -> String {
    let server = TestServer::start().await;
    let bin = example_bin(name);
    let out = tokio::process::Command::new(&bin)
        .env("NATS_URL", server.url())
        .output()
        .await
        .expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed\nstdout:\n{stdout}\nstderr:\n{}\nserver:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    stdout
}

#[tokio::test]
async fn work_queue_example() {
    let out = run_example("work_queue").await;
    assert!(out.contains("processed 20 jobs with 3 workers"), "{out}");
    assert!(
        out.contains("dead letter: corrupt-image (jobs.resize.poison), reason max_deliveries"),
        "{out}"
    );
    assert!(out.contains("jobs left in the work queue: 0"), "{out}");
}

#[tokio::test]
async fn event_replay_example() {
    let out = run_example("event_replay").await;
    assert!(
        out.contains("projections match the events published"),
        "{out}"
    );
}

#[tokio::test]
async fn partitioned_workers_example() {
    let out = run_example("partitioned_workers").await;
    assert!(
        out.contains("3 workers processed 120 events of 12 keys"),
        "{out}"
    );
    assert!(
        out.contains("every key stayed in one partition and its events arrived in order"),
        "{out}"
    );
}
