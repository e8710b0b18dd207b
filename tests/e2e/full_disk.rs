//! A full file system, for real: the server's store is on a small tmpfs. When it
//! fills up, publishes get nats-server's `insufficient resources` error, nothing
//! already acknowledged is damaged, and publishing resumes by itself once space
//! is freed. A store directory that cannot be written at start is an error that
//! names the path.
//!
//! Mounting needs root (as the test machines and CI run); without it the test
//! says so and fails rather than pass without testing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use rill_tests::{ServerOpts, TestServer};

/// A size-limited tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a tmpfs needs root (the test machines run as root)"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn server_opts(store: &Path) -> ServerOpts {
    ServerOpts {
        jetstream: false,
        args: vec!["-js".into(), "-sd".into(), store.display().to_string()],
        ..ServerOpts::default()
    }
}

fn body(i: usize) -> bytes::Bytes {
    let mut b = format!("msg-{i:06}-").into_bytes();
    b.resize(4096, b'a' + (i % 26) as u8);
    b.into()
}

/// Publishes one message and waits for its ack: the sequence, or the error text.
async fn publish(js: &jetstream::Context, i: usize) -> Result<u64, String> {
    let ack = js
        .publish("full.x", body(i))
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(10), ack)
        .await
        .map_err(|_| "ack timed out".to_string())?
        .map(|a| a.sequence)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_full_disk_refuses_publishes_and_resumes_when_space_is_freed() {
    let fs = Tmpfs::mount("6m");
    let filler: PathBuf = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2 * 1024 * 1024]).expect("filler");
    let store = fs.path().join("store");
    let mut server = TestServer::start_with(server_opts(&store)).await;
    let js = server.jetstream().await;
    js.create_stream(stream::Config {
        name: "FULL".into(),
        subjects: vec!["full.>".into()],
        ..Default::default()
    })
    .await
    .expect("create");

    let mut acked = Vec::new();
    let err = loop {
        let i = acked.len();
        assert!(i < 5000, "the 6 MiB file system never filled up");
        match publish(&js, i).await {
            Ok(seq) => acked.push((seq, i)),
            Err(e) => break e,
        }
    };
    assert!(err.contains("insufficient resources"), "{err}");
    assert!(acked.len() > 100, "{} acked before full", acked.len());
    for i in 0..3 {
        let e = publish(&js, 10_000 + i).await.expect_err("still full");
        assert!(e.contains("insufficient resources"), "{e}");
    }

    std::fs::remove_file(&filler).expect("free space");
    let seq = publish(&js, 20_000).await.expect("resumes by itself");
    acked.push((seq, 20_000));

    server.restart().await;
    let s = server
        .jetstream()
        .await
        .get_stream("FULL")
        .await
        .expect("stream");
    for (seq, i) in &acked {
        let m = s
            .get_raw_message(*seq)
            .await
            .unwrap_or_else(|e| panic!("acked seq {seq} lost: {e}"));
        assert_eq!(m.payload, body(*i), "seq {seq} intact");
    }
}

#[tokio::test]
async fn a_read_only_store_directory_is_an_error_naming_the_path() {
    let fs = Tmpfs::mount("1m");
    let store = fs.path().join("store");
    std::fs::create_dir_all(&store).expect("dir");
    let ok = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(fs.path())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "remount read-only");
    let mut child = Command::new(rill_tests::rill_server_bin())
        .args(["-js", "-p", "-1", "-sd"])
        .arg(&store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rill-server");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("rill-server kept running on a read-only store");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().expect("output");
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "starts on a read-only store: {log}");
    assert!(
        log.contains(&store.display().to_string()),
        "names the path: {log}"
    );
}
