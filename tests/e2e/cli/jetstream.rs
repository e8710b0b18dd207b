//! The `rill` CLI's JetStream commands: streams, consumers, replay, KV, object store, contexts, events.

use super::*;

#[tokio::test]
async fn cli_stream_lifecycle() {
    stream_lifecycle(KIND).await;
}

async fn stream_lifecycle(kind: ServerKind) {
    let _g = snapshots();
    let (srv, cli) = setup(kind).await;
    let port = srv.port();
    let add = cli
        .ok(&[
            "stream",
            "add",
            "ORDERS",
            "--subjects",
            "orders.*,returns.>",
            "--storage",
            "memory",
            "--max-msgs",
            "1000",
            "--max-age",
            "1h",
            "--retention",
            "limits",
            "--defaults",
        ])
        .await;
    snap!("stream_add", redact(&add, port));

    let info = json(&cli.ok(&["stream", "info", "ORDERS", "--json"]).await);
    assert_eq!(info["config"]["name"], "ORDERS");
    assert_eq!(
        info["config"]["subjects"],
        serde_json::json!(["orders.*", "returns.>"])
    );
    assert_eq!(info["config"]["storage"], "memory");
    assert_eq!(info["config"]["max_msgs"], 1000);
    assert_eq!(info["config"]["max_age"], 3_600_000_000_000u64);
    assert_eq!(
        info["type"],
        "io.nats.jetstream.api.v1.stream_info_response"
    );

    for n in 1..=3 {
        cli.ok(&["pub", &format!("orders.{n}"), &format!("order {n}")])
            .await;
    }
    cli.ok(&["pub", "returns.x.y", "r1", "-H", "Why:broken"])
        .await;
    cli.ok(&[
        "stream",
        "add",
        "AUDIT",
        "--subjects",
        "audit",
        "--defaults",
    ])
    .await;

    let ls = json(&cli.ok(&["stream", "ls", "--json"]).await);
    assert_eq!(ls["total"], 2);
    assert_eq!(ls["streams"][0]["config"]["name"], "AUDIT");
    assert_eq!(ls["streams"][1]["state"]["messages"], 4);
    snap!("stream_ls", cli.ok(&["stream", "ls"]).await);
    snap!(
        "stream_ls_names",
        cli.ok(&["stream", "ls", "--names"]).await
    );
    snap!("stream_report", cli.ok(&["stream", "report"]).await);
    let info = cli.ok(&["stream", "info", "ORDERS"]).await;
    snap!("stream_info", redact(&info, port));

    let get = cli.ok(&["stream", "get", "ORDERS", "4"]).await;
    snap!("stream_get", redact(&get, port));
    let last = cli
        .ok(&["stream", "get", "ORDERS", "--last-for", "orders.2", "--raw"])
        .await;
    assert_eq!(last, "order 2\n");
    let got = json(&cli.ok(&["stream", "get", "ORDERS", "1", "--json"]).await);
    assert_eq!(got["message"]["subject"], "orders.1");
    let view = cli.ok(&["stream", "view", "ORDERS", "--count", "1"]).await;
    snap!("stream_view", redact(&view, port));
    let view = cli.ok(&["stream", "view", "ORDERS", "--raw"]).await;
    assert_eq!(view, "order 1\norder 2\norder 3\nr1\n");
    let view = cli
        .ok(&[
            "stream",
            "view",
            "ORDERS",
            "--subject",
            "orders.*",
            "--start-seq",
            "2",
            "--count",
            "1",
            "--raw",
        ])
        .await;
    assert_eq!(view, "order 2\n");

    let edited = json(
        &cli.ok(&[
            "stream",
            "edit",
            "ORDERS",
            "--max-msgs",
            "50",
            "--description",
            "all orders",
            "--json",
        ])
        .await,
    );
    assert_eq!(edited["config"]["max_msgs"], 50);
    assert_eq!(edited["config"]["description"], "all orders");
    assert_eq!(
        edited["config"]["max_age"], 3_600_000_000_000u64,
        "edit keeps other fields"
    );

    let purged = cli
        .ok(&["stream", "purge", "ORDERS", "--subject", "orders.1"])
        .await;
    assert_eq!(purged, "Purged 1 messages from ORDERS\n");
    let purged = cli
        .ok(&["stream", "purge", "ORDERS", "--keep", "1", "-f"])
        .await;
    assert_eq!(purged, "Purged 2 messages from ORDERS\n");
    assert_eq!(
        cli.ok(&["stream", "rm", "AUDIT", "-f"]).await,
        "Deleted stream AUDIT\n"
    );
    assert_eq!(cli.ok(&["stream", "ls", "--names"]).await, "ORDERS\n");
}

#[tokio::test]
async fn cli_stream_errors_name_the_server_code() {
    stream_errors_name_the_server_code(KIND).await;
}

async fn stream_errors_name_the_server_code(kind: ServerKind) {
    let _g = snapshots();
    let (_srv, cli) = setup(kind).await;
    let err = cli.fail(&["stream", "info", "NOPE"]).await;
    snap!("stream_info_missing", err);
    cli.ok(&["stream", "add", "S1", "--subjects", "same.>"])
        .await;
    let err = cli
        .fail(&["stream", "add", "S2", "--subjects", "same.>"])
        .await;
    snap!("stream_add_overlap", err);
    let err = cli.fail(&["stream", "get", "S1", "9"]).await;
    snap!("stream_get_missing", err);
}

#[tokio::test]
async fn cli_consumer_lifecycle() {
    consumer_lifecycle(KIND).await;
}

async fn consumer_lifecycle(kind: ServerKind) {
    let _g = snapshots();
    let (srv, cli) = setup(kind).await;
    let port = srv.port();
    cli.ok(&["stream", "add", "JOBS", "--subjects", "jobs.>"])
        .await;
    for n in 1..=4 {
        cli.ok(&[
            "pub",
            &format!("jobs.{}", if n % 2 == 0 { "even" } else { "odd" }),
            &format!("job {n}"),
        ])
        .await;
    }
    let add = cli
        .ok(&[
            "consumer",
            "add",
            "JOBS",
            "worker",
            "--pull",
            "--ack",
            "explicit",
            "--deliver",
            "all",
        ])
        .await;
    snap!("consumer_add", redact(&add, port));
    cli.ok(&[
        "consumer",
        "add",
        "JOBS",
        "evens",
        "--pull",
        "--ack",
        "explicit",
        "--deliver",
        "all",
        "--filter",
        "jobs.even",
    ])
    .await;

    let got = cli
        .ok(&[
            "consumer", "next", "JOBS", "worker", "--count", "3", "--raw",
        ])
        .await;
    assert_eq!(got, "job 1\njob 2\njob 3\n");
    let got = cli
        .ok(&["consumer", "next", "JOBS", "evens", "--count", "2", "--raw"])
        .await;
    assert_eq!(got, "job 2\njob 4\n");
    let human = cli.ok(&["consumer", "next", "JOBS", "worker"]).await;
    snap!("consumer_next", human);
    let err = cli
        .fail(&["consumer", "next", "JOBS", "worker", "--timeout", "500ms"])
        .await;
    assert!(
        err.contains("only 0 of 1 messages from JOBS > worker"),
        "{err}"
    );

    let info = json(
        &cli.ok(&["consumer", "info", "JOBS", "worker", "--json"])
            .await,
    );
    assert_eq!(info["num_pending"], 0);
    check_for(Duration::from_secs(5), || {
        let cli = &cli;
        async move {
            let info = json(
                &cli.ok(&["consumer", "info", "JOBS", "worker", "--json"])
                    .await,
            );
            info["ack_floor"]["stream_seq"] == 4
        }
    })
    .await;
    snap!(
        "consumer_info",
        redact(&cli.ok(&["consumer", "info", "JOBS", "evens"]).await, port)
    );
    let ls = json(&cli.ok(&["consumer", "ls", "JOBS", "--json"]).await);
    assert_eq!(ls["total"], 2);
    assert_eq!(ls["consumers"][0]["name"], "evens");
    snap!("consumer_ls", cli.ok(&["consumer", "ls", "JOBS"]).await);

    let edited = json(
        &cli.ok(&[
            "consumer",
            "edit",
            "JOBS",
            "worker",
            "--max-deliver",
            "5",
            "--description",
            "w",
            "--json",
        ])
        .await,
    );
    assert_eq!(edited["config"]["max_deliver"], 5);

    let paused = json(
        &cli.ok(&[
            "consumer", "pause", "JOBS", "worker", "--until", "10m", "--json",
        ])
        .await,
    );
    assert_eq!(paused["paused"], true);
    let resumed = cli
        .ok(&["consumer", "pause", "JOBS", "worker", "--resume"])
        .await;
    assert_eq!(resumed, "Resumed JOBS > worker\n");
    let reset = cli
        .ok(&["consumer", "reset", "JOBS", "worker", "--seq", "2"])
        .await;
    assert_eq!(reset, "Reset JOBS > worker: next stream sequence 2\n");
    let again = cli
        .ok(&["consumer", "next", "JOBS", "worker", "--raw"])
        .await;
    assert_eq!(again, "job 2\n");

    assert_eq!(
        cli.ok(&["consumer", "rm", "JOBS", "evens", "-f"]).await,
        "Deleted consumer JOBS > evens\n"
    );
    let err = cli.fail(&["consumer", "info", "JOBS", "evens"]).await;
    snap!("consumer_info_missing", err);
}

#[tokio::test]
async fn cli_sub_replays_streams() {
    sub_replays_streams(KIND).await;
}

async fn sub_replays_streams(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    cli.ok(&["stream", "add", "EV", "--subjects", "ev.>"]).await;
    for (subject, body) in [
        ("ev.a", "a1"),
        ("ev.b", "b1"),
        ("ev.a", "a2"),
        ("ev.b", "b2"),
    ] {
        cli.ok(&["pub", subject, body]).await;
    }
    let replay = |args: &'static [&'static str]| {
        let cli = &cli;
        async move {
            let mut full = vec!["sub", "--stream", "EV", "--raw"];
            full.extend_from_slice(args);
            cli.ok(&full).await
        }
    };
    assert_eq!(replay(&["--all", "--count", "4"]).await, "a1\nb1\na2\nb2\n");
    assert_eq!(replay(&["--count", "2"]).await, "a1\nb1\n");
    assert_eq!(
        replay(&["--start-seq", "3", "--count", "2"]).await,
        "a2\nb2\n"
    );
    assert_eq!(replay(&["--last", "--count", "1"]).await, "b2\n");
    assert_eq!(
        replay(&["--last-per-subject", "--count", "2"]).await,
        "a2\nb2\n"
    );
    assert_eq!(replay(&["--since", "1h", "--count", "1"]).await, "a1\n");
    assert_eq!(
        cli.ok(&["sub", "ev.b", "--stream", "EV", "--raw", "--count", "2"])
            .await,
        "b1\nb2\n"
    );

    let live = cli
        .spawn(
            &["sub", "--stream", "EV", "--new", "--count", "1", "--raw"],
            "Replaying stream EV",
        )
        .await;
    // The ordered consumer is created before the ready line, so this message is "new".
    cli.ok(&["pub", "ev.c", "fresh"]).await;
    assert_eq!(live.finish().await.stdout, "fresh\n");

    let human = cli.ok(&["sub", "--stream", "EV", "--count", "1"]).await;
    assert!(
        human.starts_with(
            "[#1] Received JetStream message: stream: EV seq 1 / subject: ev.a / time: "
        ),
        "{human}"
    );
}

#[tokio::test]
async fn cli_kv() {
    kv(KIND).await;
}

async fn kv(kind: ServerKind) {
    let _g = snapshots();
    let (srv, cli) = setup(kind).await;
    let port = srv.port();
    let add = cli.ok(&["kv", "add", "CONFIG", "--history", "5"]).await;
    snap!("kv_add", add);
    assert_eq!(
        cli.ok(&["kv", "put", "CONFIG", "color", "blue"]).await,
        "blue\n"
    );
    cli.ok(&["kv", "put", "CONFIG", "color", "green"]).await;
    let out = cli
        .run_with_stdin(&["kv", "put", "CONFIG", "size"], b"XL")
        .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        cli.ok(&["kv", "get", "CONFIG", "color", "--raw"]).await,
        "green\n"
    );
    assert_eq!(
        cli.ok(&["kv", "get", "CONFIG", "color", "--revision", "1", "--raw"])
            .await,
        "blue\n"
    );
    snap!(
        "kv_get",
        redact(&cli.ok(&["kv", "get", "CONFIG", "color"]).await, port)
    );
    snap!(
        "kv_history",
        cli.ok(&["kv", "history", "CONFIG", "color"]).await
    );
    assert_eq!(cli.ok(&["kv", "ls", "CONFIG"]).await, "color\nsize\n");
    assert_eq!(
        json(&cli.ok(&["kv", "ls", "--json"]).await),
        serde_json::json!(["CONFIG"])
    );
    snap!("kv_ls", cli.ok(&["kv", "ls"]).await);

    let watch = cli.ok(&["kv", "watch", "CONFIG", "--count", "2"]).await;
    assert_eq!(
        watch,
        "[2] PUT CONFIG > color: green\n[3] PUT CONFIG > size: XL\n"
    );

    cli.ok(&["kv", "del", "CONFIG", "color"]).await;
    let err = cli.fail(&["kv", "get", "CONFIG", "color"]).await;
    assert_eq!(
        err,
        "rill: error: key \"color\" not found in bucket CONFIG\n"
    );
    let err = cli.fail(&["kv", "get", "NOBUCKET", "k"]).await;
    assert!(err.starts_with("rill: error: bucket NOBUCKET"), "{err}");
    assert_eq!(
        cli.ok(&["kv", "del", "CONFIG"]).await,
        "Deleted bucket CONFIG\n"
    );
    assert_eq!(
        json(&cli.ok(&["kv", "ls", "--json"]).await),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn cli_object_store() {
    object_store(KIND).await;
}

async fn object_store(kind: ServerKind) {
    let _g = snapshots();
    let (_srv, cli) = setup(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("blob.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();

    cli.ok(&["object", "add", "FILES"]).await;
    let put = cli
        .ok(&["object", "put", "FILES", src.to_str().unwrap()])
        .await;
    assert!(put.starts_with("Stored 293.0 KiB (SHA-256="), "{put}");
    let out = cli
        .run_with_stdin(
            &["object", "put", "FILES", "-", "--name", "small.txt"],
            b"tiny",
        )
        .await;
    assert!(out.status.success(), "{}", out.stderr);
    snap!("object_ls", cli.ok(&["object", "ls", "FILES"]).await);
    snap!("object_buckets", cli.ok(&["object", "ls"]).await);

    let dst = dir.path().join("copy.bin");
    cli.ok(&[
        "object",
        "get",
        "FILES",
        "blob.bin",
        "-O",
        dst.to_str().unwrap(),
    ])
    .await;
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    assert_eq!(
        cli.ok(&["object", "get", "FILES", "small.txt"]).await,
        "tiny"
    );

    assert_eq!(
        cli.ok(&["object", "rm", "FILES", "blob.bin"]).await,
        "Deleted FILES > blob.bin\n"
    );
    let err = cli.fail(&["object", "get", "FILES", "blob.bin"]).await;
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn cli_contexts() {
    contexts(KIND).await;
}

async fn contexts(kind: ServerKind) {
    let _g = snapshots();
    let (srv, _) = setup(kind).await;
    let port = srv.port();
    let cli = Cli::bare();
    assert_eq!(cli.ok(&["context", "ls"]).await, "No contexts defined\n");
    let url = srv.url();
    cli.ok(&[
        "context",
        "add",
        "dev",
        "-s",
        &url,
        "--description",
        "test server",
        "--select",
    ])
    .await;
    cli.ok(&[
        "context",
        "add",
        "nowhere",
        "-s",
        "nats://127.0.0.1:1",
        "--user",
        "u",
        "--password",
        "p",
    ])
    .await;
    snap!(
        "context_ls",
        redact(&cli.ok(&["context", "ls"]).await, port)
    );
    let shown = cli.ok(&["context", "show", "nowhere"]).await;
    let dir = cli.config_dir().display().to_string();
    snap!("context_show", shown.replace(&dir, "[DIR]"));
    let shown = json(&cli.ok(&["context", "show", "nowhere", "--json"]).await);
    assert_eq!(shown["password"], "*********");
    assert_eq!(shown["user"], "u");

    // The selected context supplies the server; --context and -s override it.
    cli.ok(&["stream", "add", "CTX", "--subjects", "ctx"]).await;
    assert_eq!(cli.ok(&["stream", "ls", "--names"]).await, "CTX\n");
    let err = cli.fail(&["--context", "nowhere", "stream", "ls"]).await;
    assert!(
        err.contains("cannot connect to nats://127.0.0.1:1"),
        "{err}"
    );
    cli.ok(&["context", "select", "nowhere"]).await;
    assert_eq!(
        cli.ok(&["-s", &url, "stream", "ls", "--names"]).await,
        "CTX\n"
    );

    cli.ok(&["context", "rm", "nowhere"]).await;
    let err = cli.fail(&["context", "select", "nowhere"]).await;
    assert!(
        err.starts_with("rill: error: unknown context \"nowhere\""),
        "{err}"
    );
    let ls = json(&cli.ok(&["context", "ls", "--json"]).await);
    assert_eq!(
        ls,
        serde_json::json!({"selected": null, "contexts": ["dev"]})
    );
    assert!(cli.config_dir().join("context/dev.json").exists());
}

#[tokio::test]
async fn cli_events_show_advisories() {
    events_show_advisories(KIND).await;
}

async fn events_show_advisories(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    let events = cli
        .spawn(
            &[
                "events",
                "--count",
                "1",
                "--json",
                "--subject",
                "$JS.EVENT.ADVISORY.STREAM.>",
            ],
            "Listening",
        )
        .await;
    cli.ok(&["stream", "add", "WATCHED", "--subjects", "w"])
        .await;
    let out = events.finish().await;
    let event = json(out.stdout.trim());
    assert_eq!(event["type"], "io.nats.jetstream.advisory.v1.stream_action");
    assert_eq!(event["stream"], "WATCHED");
    assert_eq!(event["action"], "create");
}

#[tokio::test]
async fn cli_pub_jetstream_acks() {
    pub_jetstream_acks(KIND).await;
}

async fn pub_jetstream_acks(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    cli.ok(&["stream", "add", "ACKS", "--subjects", "acks"])
        .await;
    let out = cli
        .ok(&["pub", "acks", "x", "--jetstream", "--count", "2"])
        .await;
    assert_eq!(
        out,
        "Stored in ACKS sequence 1\nStored in ACKS sequence 2\n"
    );
    let err = cli.fail(&["pub", "nostream", "x", "--jetstream"]).await;
    assert!(
        err.contains("no responders") || err.contains("no stream"),
        "{err}"
    );
}

#[tokio::test]
async fn cli_server_execs_rill_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports_dir = dir.path().display().to_string();
    let cli = Cli::bare();
    let args = ["server", "-a", "127.0.0.1", "-p", "-1"];
    let mut child = cli
        .command(&args)
        .args(["--ports_file_dir", &ports_dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().expect("pid");
    let port = rill_tests::Ports::wait_file(dir.path(), pid, Duration::from_secs(10))
        .await
        .client;
    let conn = raw::Conn::connect(port).await;
    assert_eq!(conn.info()["port"], port);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn harness_restart_and_kill_rill() {
    let mut srv = server(ServerKind::Rill).await;
    let port = srv.port();
    srv.restart().await;
    assert_eq!(srv.port(), port);
    assert!(
        srv.logs().contains("Trapped \"terminated\" signal"),
        "{}",
        srv.logs()
    );
    srv.kill();
    srv.restart().await;
    let client = srv.client().await;
    client.flush().await.unwrap();
}

/// `rill pub --delay` stores a one-shot schedule; the stream stores the message on its
/// subject once due (with the message's own headers) and drops the schedule.
#[tokio::test]
async fn cli_pub_delay_delivers_through_a_schedule() {
    let (srv, cli) = setup(KIND).await;
    cli.ok(&[
        "stream",
        "add",
        "ORDERS",
        "--subjects",
        "orders.>,sched.>",
        "--allow-schedules",
        "--defaults",
    ])
    .await;
    let out = cli
        .ok(&[
            "pub",
            "orders.remind",
            "later",
            "--delay",
            "1s",
            "-H",
            "X-Order:42",
        ])
        .await;
    assert!(
        out.starts_with("Scheduled in ORDERS sequence 1 for orders.remind at "),
        "{out}"
    );
    let bad = cli
        .fail(&["pub", "orders.remind", "x", "--at", "tomorrow"])
        .await;
    assert!(bad.contains("bad time"), "{bad}");
    let js = srv.jetstream().await;
    let stream = js.get_stream("ORDERS").await.expect("stream");
    check_for(Duration::from_secs(10), || {
        let stream = stream.clone();
        async move {
            stream
                .get_last_raw_message_by_subject("orders.remind")
                .await
                .is_ok()
        }
    })
    .await;
    let msg = stream
        .get_last_raw_message_by_subject("orders.remind")
        .await
        .expect("delivered");
    assert_eq!(&msg.payload[..], b"later");
    let headers = msg.headers;
    assert_eq!(headers.get("X-Order").map(|v| v.as_str()), Some("42"));
    assert_eq!(
        headers.get("Nats-Schedule-Next").map(|v| v.as_str()),
        Some("purge")
    );
    let mut stream = stream;
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 1, "the schedule is removed once fired");
}
