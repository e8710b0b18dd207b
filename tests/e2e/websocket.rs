//! WebSocket clients (`websocket {}`): nats-py over `ws://` and `wss://`, a
//! permessage-deflate client, async-nats over WebSocket (reconnect, accounts and
//! permissions), raw frames (fragments, control frames, compression bits), handshake
//! refusals and monitoring, side by side with nats-server where behaviour should match.
//! The browser test lives in `websocket_browser.rs`.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer, free_port, sync};
use serde_json::Value;

use crate::tls::Certs;

const WAIT: Duration = Duration::from_secs(10);
const SCRIPT: &str = include_str!("py/websocket.py");
const COMPRESS_SCRIPT: &str = include_str!("py/websocket_compress.py");

/// True when nats-py and aiohttp (its WebSocket transport) are installed.
pub(crate) fn nats_py_ws_available() -> bool {
    Command::new("python3")
        .args(["-c", "import nats, aiohttp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts a server of `kind` with `websocket { <block> }` and `extra` top-level config.
pub(crate) async fn ws_server(kind: ServerKind, block: &str, extra: &str) -> TestServer {
    let config = format!("{extra}\nwebsocket {{\n{block}\n}}\n");
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        config: Some(config),
        ..ServerOpts::default()
    })
    .await
}

/// `ws://127.0.0.1:<port>` of the WebSocket port the server wrote to its ports file.
pub(crate) fn ws_url(server: &TestServer) -> String {
    let port = server
        .ports()
        .websocket
        .unwrap_or_else(|| panic!("no websocket port\n{}", server.logs()));
    format!("ws://127.0.0.1:{port}")
}

async fn python(script: &str, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 finished in time")
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn nats_py_over_ws_and_wss_matches_nats_server() {
    if !nats_py_ws_available() {
        eprintln!("nats-py or aiohttp not installed; skipping");
        return;
    }
    let certs = Certs::generate();
    let wss = format!("port: -1\n{}", certs.tls_block(""));
    let mut outputs = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let plain = ws_server(kind, "port: -1\nno_tls: true", "").await;
        let ws = python(SCRIPT, &[&ws_url(&plain)]).await;
        let secure = ws_server(kind, &wss, "").await;
        let url = ws_url(&secure).replace("ws://127.0.0.1", "wss://localhost");
        let ca = certs.path("ca.pem");
        let wss_out = python(SCRIPT, &[&url, &ca.display().to_string()]).await;
        outputs.push(format!("{ws}---\n{wss_out}"));
    }
    assert_eq!(outputs[0], outputs[1], "rill vs nats-server");
    insta::assert_snapshot!("nats_py_over_websocket", outputs[0]);
}

#[tokio::test]
async fn permessage_deflate_is_negotiated_and_carries_messages_like_nats_server() {
    if !nats_py_ws_available() {
        eprintln!("aiohttp not installed; skipping");
        return;
    }
    let mut outputs = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = ws_server(kind, "port: -1\nno_tls: true\ncompression: true", "").await;
        outputs.push(python(COMPRESS_SCRIPT, &[&ws_url(&server)]).await);
    }
    assert_eq!(outputs[0], outputs[1], "rill vs nats-server");
    insta::assert_snapshot!("permessage_deflate", outputs[0]);
}

/// nats-py stays subscribed across a server restart (same WebSocket port).
#[tokio::test]
async fn nats_py_reconnects_over_websocket_after_a_restart() {
    if !nats_py_ws_available() {
        eprintln!("nats-py or aiohttp not installed; skipping");
        return;
    }
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let port = free_port();
    let mut server = ws_server(ServerKind::Rill, &format!("port: {port}\nno_tls: true"), "").await;
    let mut child = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(RECONNECT_SCRIPT)
        .arg(format!("ws://127.0.0.1:{port}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || {
        tokio::time::timeout(WAIT * 3, lines.next_line())
            .await
            .expect("script answered in time")
            .expect("read script output")
            .unwrap_or_default()
    };
    assert_eq!(next().await, "before 1");
    server.restart().await;
    stdin
        .write_all(b"restarted\n")
        .await
        .expect("tell the script");
    assert_eq!(next().await, "reconnected");
    assert_eq!(next().await, "after 1");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("script ended");
    assert!(status.expect("wait").success(), "{}", server.logs());
}

const RECONNECT_SCRIPT: &str = r#"
import asyncio, sys
import nats

async def main(url):
    reconnected = asyncio.Event()
    async def on_reconnect():
        reconnected.set()
    nc = await nats.connect(url, reconnected_cb=on_reconnect, reconnect_time_wait=0.1,
                            max_reconnect_attempts=100)
    sub = await nc.subscribe("ws.alive")
    await nc.publish("ws.alive", b"1")
    print("before", (await sub.next_msg(timeout=5)).data.decode(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.wait_for(reconnected.wait(), 20)
    print("reconnected", flush=True)
    await nc.flush()
    await nc.publish("ws.alive", b"1")
    print("after", (await sub.next_msg(timeout=5)).data.decode(), flush=True)
    await nc.close()

asyncio.run(main(sys.argv[1]))
"#;

/// The same accounts, users and permissions as TCP: a WebSocket user is in its account,
/// publishes where allowed, and gets the permission error elsewhere.
#[tokio::test]
async fn websocket_clients_get_the_accounts_and_permissions_of_tcp_clients() {
    let accounts = r#"
accounts {
  A { users: [
    { user: web, password: pw, permissions: { publish: { allow: ["ui.>"] }, subscribe: { allow: ["ui.>", "_INBOX.>"] } } }
    { user: watcher, password: pw }
  ] }
  B { users: [ { user: other, password: pw } ] }
}
"#;
    let server = ws_server(ServerKind::Rill, "port: -1\nno_tls: true", accounts).await;
    let url = ws_url(&server);
    let web = async_nats::ConnectOptions::with_user_and_password("web".into(), "pw".into())
        .connect(&url)
        .await
        .expect("web user connects over websocket");
    let tcp = async_nats::ConnectOptions::with_user_and_password("watcher".into(), "pw".into())
        .connect(server.url())
        .await
        .expect("a user of the same account connects over tcp");
    let other = async_nats::ConnectOptions::with_user_and_password("other".into(), "pw".into())
        .connect(&url)
        .await
        .expect("other user connects");
    let mut from_tcp = tcp.subscribe("ui.>").await.expect("sub");
    let mut other_sub = other.subscribe("ui.>").await.expect("sub");
    sync(&tcp).await;
    sync(&other).await;
    web.publish("ui.click", "x".into()).await.expect("publish");
    web.publish("admin.reset", "x".into())
        .await
        .expect("publish");
    web.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, from_tcp.next())
        .await
        .expect("delivered");
    assert_eq!(msg.expect("message").subject.as_str(), "ui.click");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other_sub.next())
            .await
            .is_err(),
        "account B must not see account A's messages"
    );
    rill_tests::check_for(WAIT, || async {
        server
            .logs()
            .contains("Publish Violation - Subject \"admin.reset\"")
    })
    .await;
}

/// `websocket { authorization { username, password } }` replaces the server's credentials
/// for WebSocket clients only, and `no_auth_user` there names who credential-less
/// WebSocket clients become; both as nats-server.
#[tokio::test]
async fn websocket_authorization_overrides_the_servers_for_websocket_clients() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let block = "port: -1\nno_tls: true\nauthorization { username: wsu, password: wsp }";
        let server = ws_server(kind, block, "authorization { user: tcpu, password: tcpp }").await;
        let url = ws_url(&server);
        let try_connect = async |url: &str, user: &str, pass: &str| {
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
                .max_reconnects(0)
                .connect(url)
                .await
                .is_ok()
        };
        assert!(
            try_connect(&url, "wsu", "wsp").await,
            "{kind:?}: ws user over ws"
        );
        assert!(
            !try_connect(&url, "tcpu", "tcpp").await,
            "{kind:?}: tcp user over ws"
        );
        assert!(
            try_connect(&server.url(), "tcpu", "tcpp").await,
            "{kind:?}: tcp user over tcp"
        );
        assert!(
            !try_connect(&server.url(), "wsu", "wsp").await,
            "{kind:?}: ws user over tcp"
        );

        let users =
            "authorization { users: [ {user: bob, password: x}, {user: carol, password: y} ] }";
        let server = ws_server(kind, "port: -1\nno_tls: true\nno_auth_user: carol", users).await;
        let anonymous = async_nats::connect(ws_url(&server)).await;
        assert!(anonymous.is_ok(), "{kind:?}: no_auth_user over ws");
        let tcp = async_nats::ConnectOptions::new()
            .max_reconnects(0)
            .connect(server.url())
            .await;
        assert!(
            tcp.is_err(),
            "{kind:?}: no_auth_user of the websocket block is not the server's"
        );
    }
}

#[tokio::test]
async fn a_restarted_server_gets_async_nats_back_over_websocket() {
    let port = free_port();
    let mut server = ws_server(ServerKind::Rill, &format!("port: {port}\nno_tls: true"), "").await;
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(format!("ws://127.0.0.1:{port}"))
        .await
        .expect("connect over websocket");
    let mut sub = client.subscribe("ws.after").await.expect("sub");
    sync(&client).await;
    server.restart().await;
    rill_tests::check_for(WAIT, || async {
        client.connection_state() == async_nats::connection::State::Connected
    })
    .await;
    client.flush().await.expect("flush after reconnect");
    client
        .publish("ws.after", "back".into())
        .await
        .expect("publish");
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("delivered after reconnect");
    assert_eq!(msg.expect("message").payload, "back");
}

/// `/varz` shows the websocket block as nats-server does, `/connz` marks WebSocket
/// clients, and the ports file lists the WebSocket URL.
#[tokio::test]
async fn monitoring_and_ports_file_show_the_websocket_listener_like_nats_server() {
    let mut docs = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let block = "port: -1\nno_tls: true\ncompression: true\nsame_origin: true";
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            monitoring: true,
            config: Some(format!("websocket {{\n{block}\n}}\n")),
            ..ServerOpts::default()
        })
        .await;
        let url = ws_url(&server);
        let client = async_nats::connect(&url)
            .await
            .expect("connect over websocket");
        let _tcp = server.client().await;
        sync(&client).await;
        let monitor = format!("http://127.0.0.1:{}", server.monitoring_port());
        let varz = get_json(&format!("{monitor}/varz")).await;
        let connz = get_json(&format!("{monitor}/connz")).await;
        let mut block = varz["websocket"].clone();
        assert_eq!(
            block["port"].as_u64(),
            url.rsplit(':').next().and_then(|p| p.parse().ok())
        );
        block["port"] = Value::from("[port]");
        let mut types: Vec<String> = connz["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .map(|c| c["type"].as_str().unwrap_or_default().to_string())
            .collect();
        types.sort();
        docs.push(serde_json::json!({ "varz.websocket": block, "connz types": types }));
    }
    assert_eq!(docs[0], docs[1], "rill vs nats-server");
    insta::assert_json_snapshot!("websocket_monitoring", docs[0]);
}

async fn get_json(url: &str) -> Value {
    let (host, path) = url
        .trim_start_matches("http://")
        .split_once('/')
        .expect("url with path");
    let mut conn = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect monitor");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut body = Vec::new();
    conn.read_to_end(&mut body).await.expect("read");
    let text = String::from_utf8_lossy(&body);
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Without `tls {}` and without `no_tls: true` the server refuses to start, as
/// nats-server does at start-up.
#[tokio::test]
async fn a_websocket_listener_without_tls_must_say_no_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("ws.conf");
    std::fs::write(&conf, "websocket { port: -1 }\n").expect("write config");
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let out = Command::new(kind.bin())
            .args(["-p", "-1", "-c"])
            .arg(&conf)
            .output()
            .expect("run server");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{kind:?} started: {text}");
        assert!(
            text.contains("websocket requires TLS configuration"),
            "{kind:?}: {text}"
        );
    }
}

/// What one server showed for the block keys of
/// [`host_handshake_timeout_and_token_keys_as_nats_server`].
#[derive(Debug, PartialEq, Eq)]
struct Keys {
    /// The `Listening for websocket clients on` line names `ws://<host>:<port>`.
    listening_line: bool,
    /// A TCP connection that never sends the upgrade is closed, after at least the
    /// timeout.
    silent_closed_in_time: bool,
    /// Token over WebSocket: the right one, none, a wrong one.
    token: [bool; 3],
}

/// The `websocket {}` keys no other test covers, side by side with nats-server 2.15.1:
/// `host` (the listener binds it and logs `Listening for websocket clients on
/// ws://127.0.0.1:<port>`), `handshake_timeout` (a connection that sends no upgrade
/// within it is closed) and `authorization { token }` (WebSocket clients need it).
#[tokio::test]
async fn host_handshake_timeout_and_token_keys_as_nats_server() {
    let timeout = Duration::from_secs(1);
    let mut seen = Vec::new();
    for kind in [ServerKind::Nats, ServerKind::Rill] {
        let block = "host: 127.0.0.1\nport: -1\nno_tls: true\nhandshake_timeout: \"1s\"\n\
                     authorization { token: s3cr3t }";
        let server = ws_server(kind, block, "").await;
        let port = server.ports().websocket.expect("websocket port");
        let line = format!("Listening for websocket clients on ws://127.0.0.1:{port}");
        let listening_line = server.logs().contains(&line);
        let opened = std::time::Instant::now();
        let closed = silent_connection_closed(port, timeout * 4).await;
        let took = opened.elapsed();
        eprintln!("{kind:?}: a silent connection closed {closed} after {took:?}");
        let url = ws_url(&server);
        let connects = async |token: Option<&str>| {
            let options = match token {
                Some(t) => async_nats::ConnectOptions::with_token(t.into()),
                None => async_nats::ConnectOptions::new(),
            };
            options.max_reconnects(0).connect(&url).await.is_ok()
        };
        let token = [
            connects(Some("s3cr3t")).await,
            connects(None).await,
            connects(Some("wrong")).await,
        ];
        seen.push(Keys {
            listening_line,
            silent_closed_in_time: closed && took >= timeout,
            token,
        });
    }
    let expected = Keys {
        listening_line: true,
        silent_closed_in_time: true,
        token: [true, false, false],
    };
    assert_eq!(seen[0], expected, "nats-server");
    assert_eq!(seen[1], expected, "rill");
}

/// Connects to `port`, sends nothing and says whether the server closed the connection
/// within `wait`.
async fn silent_connection_closed(port: u16, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut buf = [0u8; 512];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, read_to_end).await.is_ok()
}
