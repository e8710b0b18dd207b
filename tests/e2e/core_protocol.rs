//! Byte-level protocol behaviour over raw TCP: exact `-ERR` lines, which errors
//! close the connection, verbose `+OK`, pedantic subjects, the 503 frame, INFO,
//! slow consumers and stale connections.

use std::fmt::Write as _;
use std::time::Duration;

use rill_tests::raw::Conn;
use rill_tests::{ServerOpts, TestServer};
use tokio::io::AsyncWriteExt;

const QUIET: Duration = Duration::from_millis(300);
const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":true,\"headers\":true,\"protocol\":1}\r\n";

/// Sends `input` after CONNECT, then PING; reports what came back and whether the server closed.
async fn exchange(server: &TestServer, connect: &[u8], input: &[u8]) -> String {
    let mut conn = Conn::connect(server.port()).await;
    conn.send(connect).await;
    conn.send(input).await;
    conn.send(b"PING\r\n").await;
    let got = conn.read_until(QUIET).await;
    let closed = conn.is_closed_within(QUIET).await;
    let text = String::from_utf8_lossy(&got).replace("\r\n", "\\r\\n ");
    format!("{} | closed={closed}", text.trim_end())
}

#[tokio::test]
async fn error_lines_and_close_policy_match_nats_server() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let cases: &[(&str, &[u8])] = &[
        ("unknown op", b"FOO bar\r\n"),
        ("PUB without arguments", b"PUB\r\n"),
        ("PUB with a bad size", b"PUB foo abc\r\n"),
        ("PUB with too many arguments", b"PUB foo a b 3\r\nabc\r\n"),
        ("payload not followed by CRLF", b"PUB foo 3\r\nabcXY\r\n"),
        ("payload above max_payload", b"PUB foo 2000000\r\n"),
        ("wildcard publish subject", b"PUB foo.* 3\r\nabc\r\n"),
        (
            "empty token in pedantic publish",
            b"PUB foo..bar 3\r\nabc\r\n",
        ),
        ("invalid subscription subject", b"SUB foo..bar 1\r\n"),
        ("misplaced full wildcard", b"SUB foo.>.bar 1\r\n"),
        (
            "HPUB header larger than total",
            b"HPUB foo 12 3\r\nNATS/1.0\r\n\r\nabc\r\n",
        ),
        ("client sends -ERR", b"-ERR 'x'\r\n"),
        ("UNSUB of an unknown sid", b"UNSUB 99\r\n"),
        ("PING with trailing junk", b"PINGXYZ\r\n"),
        (
            "lower-case ops and tabs",
            b"sub\tfoo  1\r\npub foo 1\r\nx\r\n",
        ),
    ];
    let mut out = String::new();
    for (name, input) in cases {
        let _ = writeln!(out, "{name}: {}", exchange(&server, CONNECT, input).await);
    }
    let long = [b"PUB ".as_slice(), &[b'a'; 5000], b" 1\r\nx\r\n"].concat();
    let _ = writeln!(
        out,
        "control line above 4096: {}",
        exchange(&server, CONNECT, &long).await
    );
    let connects: &[(&str, &[u8])] = &[
        ("protocol 2", b"CONNECT {\"protocol\":2}\r\n"),
        (
            "no_responders without headers",
            b"CONNECT {\"no_responders\":true,\"verbose\":false}\r\n",
        ),
        ("malformed CONNECT", b"CONNECT {bad\r\n"),
        (
            "HPUB without headers support",
            b"CONNECT {\"verbose\":false}\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n",
        ),
    ];
    for (name, connect) in connects {
        let _ = writeln!(out, "{name}: {}", exchange(&server, connect, b"").await);
    }
    insta::assert_snapshot!(out);
}

#[tokio::test]
async fn verbose_acknowledges_every_op() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let verbose = b"CONNECT {\"verbose\":true}\r\n";
    let ok = exchange(
        &server,
        verbose,
        b"SUB foo 1\r\nPUB foo 1\r\nx\r\nUNSUB 1\r\n",
    )
    .await;
    let refused = exchange(&server, verbose, b"SUB foo..x 1\r\nPUB foo.* 1\r\nx\r\n").await;
    insta::assert_snapshot!(format!("accepted: {ok}\nrefused: {refused}"));
}

#[tokio::test]
async fn info_carries_what_clients_read() {
    let server = TestServer::start().await;
    let conn = Conn::connect(server.port()).await;
    let info = conn.info().clone();
    insta::assert_json_snapshot!(info, {
        ".server_id" => "[id]",
        ".server_name" => "[name]",
        ".port" => "[port]",
        ".client_id" => "[cid]",
        ".version" => "[version]",
        ".go" => "[go]",
    });
}

#[tokio::test]
async fn no_responders_frame_is_a_503_to_the_requester() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let mut conn = Conn::connect(server.port()).await;
    conn.send(b"CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\n")
        .await;
    conn.send(b"SUB _INBOX.me 7\r\nPUB svc.none _INBOX.me 2\r\nhi\r\nPING\r\n")
        .await;
    let got = conn.read_until_contains(b"PONG\r\n", QUIET).await;
    insta::assert_snapshot!(String::from_utf8_lossy(&got).replace("\r\n", "\\r\\n\n"));
}

#[tokio::test]
async fn duplicate_sid_keeps_the_first_subscription() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let got = exchange(
        &server,
        CONNECT,
        b"SUB foo 1\r\nSUB bar 1\r\nPUB foo 1\r\na\r\nPUB bar 1\r\nb\r\n",
    )
    .await;
    assert_eq!(got, "MSG foo 1 1\\r\\n a\\r\\n PONG\\r\\n | closed=false");
}

#[tokio::test]
async fn slow_consumer_is_disconnected_and_others_keep_flowing() {
    let config = "max_pending: 1MB\nwrite_deadline: \"2s\"\n";
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        config: Some(config.into()),
        ..ServerOpts::default()
    })
    .await;
    // A raw client that subscribes and then never reads.
    let mut stuck = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    stuck
        .write_all(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n")
        .await
        .expect("write");
    let healthy = server.client().await;
    let mut sub = healthy.subscribe("flood").await.expect("sub");
    rill_tests::sync(&healthy).await;
    let publisher = server.client().await;
    let payload = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    let received = tokio::spawn(async move {
        let mut n = 0usize;
        while n < 200 {
            match tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut sub))
                .await
            {
                Ok(Some(_)) => n += 1,
                _ => break,
            }
        }
        n
    });
    for _ in 0..200 {
        publisher
            .publish("flood", payload.clone())
            .await
            .expect("pub");
    }
    publisher.flush().await.expect("flush");
    assert_eq!(
        received.await.expect("task"),
        200,
        "the healthy subscriber got everything"
    );
    rill_tests::check_for(Duration::from_secs(10), || {
        let logs = server.logs();
        async move { logs.contains("Slow Consumer") }
    })
    .await;
}

#[tokio::test]
async fn stale_connection_is_closed_after_ping_max() {
    let config = "ping_interval: \"200ms\"\nping_max: 2\n";
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        config: Some(config.into()),
        ..ServerOpts::default()
    })
    .await;
    let mut conn = Conn::connect(server.port()).await;
    conn.send(b"CONNECT {\"verbose\":false}\r\n").await;
    let got = conn
        .read_until_contains(b"Stale Connection", Duration::from_secs(5))
        .await;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text, "PING\r\nPING\r\n-ERR 'Stale Connection'\r\n");
    assert!(conn.is_closed_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn answered_pings_keep_the_connection() {
    let config = "ping_interval: \"100ms\"\nping_max: 1\n";
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        config: Some(config.into()),
        ..ServerOpts::default()
    })
    .await;
    let client = server.client().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    client
        .flush()
        .await
        .expect("still connected after several server PINGs");
}

#[tokio::test]
async fn lame_duck_announces_ldm_then_closes_clients() {
    let config = "lame_duck_duration: \"1s\"\nlame_duck_grace_period: \"200ms\"\n";
    let mut server = TestServer::start_with(ServerOpts {
        jetstream: false,
        config: Some(config.into()),
        ..ServerOpts::default()
    })
    .await;
    let mut conn = Conn::connect(server.port()).await;
    conn.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n")
        .await;
    assert_eq!(conn.read_line().await, "PONG\r\n");
    let pid = server.pid().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-USR2", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let line = conn.read_line().await;
    let info: serde_json::Value =
        serde_json::from_str(line.strip_prefix("INFO ").expect("async INFO").trim_end())
            .expect("json");
    assert_eq!(info["ldm"], true);
    assert!(
        conn.is_closed_within(Duration::from_secs(5)).await,
        "client closed during lame duck"
    );
    // New clients are refused while the server winds down, then the process exits.
    rill_tests::check_for(Duration::from_secs(10), || {
        let logs = server.logs();
        async move { logs.contains("Server Exiting") }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_flushes_queued_messages() {
    let mut server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let mut conn = Conn::connect(server.port()).await;
    conn.send(
        b"CONNECT {\"verbose\":false}\r\nSUB last.words 1\r\nPUB last.words 3\r\nbye\r\nPING\r\n",
    )
    .await;
    let got = conn
        .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
        .await;
    assert!(String::from_utf8_lossy(&got).contains("MSG last.words 1 3\r\nbye\r\n"));
    server.stop().await;
    assert!(conn.is_closed_within(Duration::from_secs(5)).await);
    assert!(
        server.logs().contains("Server Exiting"),
        "{}",
        server.logs()
    );
}

#[tokio::test]
async fn wildcard_publish_subjects_are_routed_literally_as_nats_server() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let input = b"SUB a.> 1\r\nPUB a.* 1\r\ny\r\nPUB a..b 1\r\nz\r\n";
    let lax = exchange(
        &server,
        b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
        input,
    )
    .await;
    let strict = exchange(
        &server,
        b"CONNECT {\"verbose\":false,\"pedantic\":true}\r\n",
        input,
    )
    .await;
    let default = exchange(&server, b"CONNECT {\"verbose\":false}\r\n", input).await;
    insta::assert_snapshot!(format!(
        "pedantic false: {lax}\npedantic true: {strict}\npedantic omitted: {default}"
    ));
}

/// A publish subject (or reply) that is not UTF-8. nats-server 2.15.1 routes it byte by byte:
/// a `SUB a.>` subscriber gets `MSG a.\xff 1 2` (recorded by hand, 2026-12-05). rill's subjects
/// are text from the wire inward, so it refuses such a publish with `-ERR 'Invalid Publish
/// Subject'` (nats-server's text for a subject it will not route) instead of dropping it
/// silently, keeps the connection, and goes on with the next op; a verbose client gets no
/// `+OK` for it.
#[tokio::test]
async fn a_publish_subject_that_is_not_text_is_refused_and_the_connection_goes_on() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let input = b"SUB a.> 1\r\nPUB a.\xff 2\r\nhi\r\nPUB a.b _INBOX.\xc3 2\r\nhi\r\nPUB a.\xc3\xa9 2\r\nok\r\n";
    let quiet = exchange(&server, b"CONNECT {\"verbose\":false}\r\n", input).await;
    let verbose = exchange(&server, b"CONNECT {\"verbose\":true}\r\n", input).await;
    insta::assert_snapshot!(format!("verbose false: {quiet}\nverbose true: {verbose}"));
}
