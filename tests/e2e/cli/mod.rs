//! End-to-end tests of the harness and of the `rill` CLI binary run against a server process.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer, check_for, raw};

/// The server kind the JetStream CLI tests run against (rill; the core and auth tests also run on
/// nats-server to prove the CLI speaks plain NATS). Each
/// test body is a `fn(kind)`, so a test can run on either server.
const KIND: ServerKind = ServerKind::Rill;

async fn server(kind: ServerKind) -> TestServer {
    TestServer::start_with(ServerOpts::kind(kind)).await
}

#[tokio::test]
async fn harness_pub_sub_and_raw_frames() {
    harness_pub_sub(ServerKind::Nats).await;
}

#[tokio::test]
async fn harness_pub_sub_and_raw_frames_rill() {
    harness_pub_sub(ServerKind::Rill).await;
}

async fn harness_pub_sub(kind: ServerKind) {
    let srv = server(kind).await;
    assert!(srv.url().ends_with(&srv.port().to_string()));
    let client = srv.client().await;
    let mut sub = client.subscribe("smoke.>").await.unwrap();
    client.publish("smoke.a", "hi".into()).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"hi");

    let mut conn = raw::Conn::connect(srv.port()).await;
    assert_eq!(conn.info()["port"], srv.port());
    conn.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await;
    assert_eq!(conn.read_line().await, "PONG\r\n");
    conn.send(b"SUB raw.x 1\r\nPUB raw.x 3\r\nabc\r\n").await;
    assert_eq!(conn.read_line().await, "MSG raw.x 1 3\r\n");
    assert_eq!(conn.read_exact(5).await, b"abc\r\n");
}

#[tokio::test]
async fn harness_restart_keeps_store_and_kill_is_abrupt() {
    let mut srv = server(KIND).await;
    let js = async_nats::jetstream::new(srv.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "SMOKE".into(),
        subjects: vec!["smoke.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("smoke.1", "one".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let port = srv.port();
    srv.restart().await;
    assert_eq!(srv.port(), port);
    let js = async_nats::jetstream::new(srv.client().await);
    let mut stream = js.get_stream("SMOKE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);

    srv.kill();
    assert!(srv.pid().is_none());
    srv.restart().await;
    let client = srv.client().await;
    let js = async_nats::jetstream::new(client);
    check_for(Duration::from_secs(5), || {
        let js = js.clone();
        async move { js.get_stream("SMOKE").await.is_ok() }
    })
    .await;
    assert!(srv.logs().contains("restarting server"));
}

#[tokio::test]
async fn harness_config_file_is_passed() {
    let srv = TestServer::start_with(ServerOpts {
        kind: KIND,
        jetstream: false,
        config: Some("max_payload: 2048\n".into()),
        ..ServerOpts::default()
    })
    .await;
    let conn = raw::Conn::connect(srv.port()).await;
    assert_eq!(conn.info()["max_payload"], 2048);
}

// ---------------------------------------------------------------------------------------------------
// The `rill` CLI against a live server.
// ---------------------------------------------------------------------------------------------------

use rill_tests::cli::{Cli, redact};

/// Binds insta to `tests/snapshots/` for the rest of the test (names get a `cli__` prefix via [`snap!`]).
fn snapshots() -> insta::internals::SettingsBindDropGuard {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind_to_scope()
}

/// `assert_snapshot!` with the file named `tests/snapshots/cli__<name>.snap`.
macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::assert_snapshot!(format!("cli__{}", $name), $value)
    };
}

/// A server of `kind` and a CLI runner pointed at it.
async fn setup(kind: ServerKind) -> (TestServer, Cli) {
    let srv = server(kind).await;
    let cli = Cli::new(srv.url());
    (srv, cli)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[tokio::test]
async fn cli_help() {
    let _g = snapshots();
    let cli = Cli::bare();
    snap!("help", cli.ok(&["--help"]).await);
    snap!("help_stream", cli.ok(&["stream", "--help"]).await);
    snap!(
        "help_stream_add",
        cli.ok(&["stream", "add", "--help"]).await
    );
    snap!(
        "help_consumer_add",
        cli.ok(&["consumer", "add", "--help"]).await
    );
    snap!("help_sub", cli.ok(&["sub", "--help"]).await);
    snap!("help_pub", cli.ok(&["pub", "--help"]).await);
    snap!("help_server", cli.ok(&["help", "server"]).await);
}

#[tokio::test]
async fn cli_bad_arguments_exit_2_with_clap_errors() {
    let _g = snapshots();
    let cli = Cli::bare();
    for (name, args) in [
        ("bad_unknown_command", vec!["frobnicate"]),
        ("bad_missing_arg", vec!["stream", "add"]),
        (
            "bad_enum_value",
            vec!["stream", "add", "S", "--storage", "tape"],
        ),
        (
            "bad_duration",
            vec!["stream", "add", "S", "--max-age", "5 fortnights"],
        ),
        ("bad_header", vec!["pub", "a", "b", "-H", "novalue"]),
        (
            "bad_deliver_conflict",
            vec!["sub", "x", "--stream", "S", "--all", "--new"],
        ),
    ] {
        let out = cli.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        snap!(name, out.stderr);
    }
}

#[tokio::test]
async fn cli_connection_refused_is_a_clear_error() {
    let port = rill_tests::free_port();
    let cli = Cli::new(format!("nats://127.0.0.1:{port}"));
    let err = cli.fail(&["pub", "a", "b"]).await;
    assert!(
        err.starts_with(&format!(
            "rill: error: cannot connect to nats://127.0.0.1:{port}"
        )),
        "{err}"
    );
}

/// `sub --raw --count` prints exactly the payloads and exits; works on any server kind.
async fn pub_sub_raw(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    let sub = cli
        .spawn(
            &["sub", "greet.>", "--count", "3", "--raw"],
            "Subscribing on",
        )
        .await;
    cli.ok(&["pub", "greet.a", "hello"]).await;
    cli.ok(&["pub", "greet.b", "n={{Count}}", "--count", "2"])
        .await;
    let out = sub.finish().await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "hello\nn=1\nn=2\n");

    let _g = snapshots();
    let sub = cli
        .spawn(&["sub", "human.*", "--count", "2"], "Subscribing on")
        .await;
    cli.ok(&["pub", "human.a", "plain"]).await;
    cli.ok(&[
        "pub",
        "human.b",
        "with headers",
        "-H",
        "B:2",
        "-H",
        "A:1",
        "--reply",
        "r.1",
    ])
    .await;
    snap!("sub_human", sub.finish().await.stdout);
}

#[tokio::test]
async fn cli_pub_sub_raw() {
    pub_sub_raw(ServerKind::Nats).await;
}

#[tokio::test]
async fn cli_pub_sub_raw_rill() {
    pub_sub_raw(ServerKind::Rill).await;
}

/// Queue subscribers share messages; headers print with `--headers`; body comes from stdin.
async fn queue_headers_stdin(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    let sub = cli
        .spawn(
            &[
                "sub",
                "q.x",
                "--queue",
                "workers",
                "--count",
                "1",
                "--raw",
                "--headers",
            ],
            "Subscribing on",
        )
        .await;
    let out = cli
        .run_with_stdin(
            &["pub", "q.x", "-H", "Trace:abc", "-H", "a:1"],
            b"from stdin",
        )
        .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stderr, "Published 10 bytes to \"q.x\"\n");
    let out = sub.finish().await;
    assert_eq!(out.stdout, "Trace: abc\na: 1\nfrom stdin\n");
}

#[tokio::test]
async fn cli_queue_headers_and_stdin_body() {
    queue_headers_stdin(ServerKind::Nats).await;
}

#[tokio::test]
async fn cli_queue_headers_and_stdin_body_rill() {
    queue_headers_stdin(ServerKind::Rill).await;
}

/// `reply` answers with a template; `request --raw` prints only the reply; no responders fail.
async fn request_reply(kind: ServerKind) {
    let _g = snapshots();
    let (srv, cli) = setup(kind).await;
    let replier = cli
        .spawn(
            &[
                "reply",
                "svc.echo",
                "echo:{{Request}}:{{Count}}",
                "--count",
                "2",
            ],
            "Listening on",
        )
        .await;
    let raw = cli
        .ok(&["request", "svc.echo", "ping", "--timeout", "2s", "--raw"])
        .await;
    assert_eq!(raw, "echo:ping:1\n");
    let human = cli.ok(&["request", "svc.echo", "pong"]).await;
    snap!("request_human", redact(&human, srv.port()));
    assert!(replier.finish().await.status.success());

    let err = cli
        .fail(&["request", "svc.nobody", "x", "--timeout", "1s"])
        .await;
    assert_eq!(err, "rill: error: no responders on \"svc.nobody\"\n");
}

#[tokio::test]
async fn cli_request_reply() {
    request_reply(ServerKind::Nats).await;
}

#[tokio::test]
async fn cli_request_reply_rill() {
    request_reply(ServerKind::Rill).await;
}

mod auth;
mod jetstream;
