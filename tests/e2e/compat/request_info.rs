//! `Nats-Request-Info` (issue 14): a message crossing a service import into another
//! account tells the exporter who sent it, as nats-server 2.15.1 does: the requester's
//! account and round trip, or with `share: true` on the import its whole client info
//! (start, host, id, acc, user, name, lang, ver, rtt, server, kind, client_type); a
//! header of that name the requester set itself is replaced, and other headers keep their
//! place before it.

use rill_tests::raw::Conn;
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

use super::BOTH;

const CONFIG: &str = r#"
listen: 127.0.0.1:-1
accounts {
  A { users: [{user: a, password: a}], exports: [{service: "svc.>"}, {service: "sh.>"}] }
  B {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "svc.>"}}
      {service: {account: A, subject: "sh.>"}, share: true}
    ]
  }
}
"#;

/// `HPUB <subject> [reply]` with one header block.
fn hpub(subject: &str, reply: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut block = String::from("NATS/1.0\r\n");
    for (name, value) in headers {
        block.push_str(&format!("{name}: {value}\r\n"));
    }
    block.push_str("\r\n");
    let total = block.len() + body.len();
    format!(
        "HPUB {subject} {reply} {} {total}\r\n{block}{body}\r\n",
        block.len()
    )
    .into_bytes()
}

/// The next message `conn` gets: subject, whether it carries a reply subject, and its
/// header block (empty for a MSG).
async fn next_msg(conn: &mut Conn) -> (String, Option<String>, String) {
    let line = conn.read_line().await;
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (reply, hdr_len, total) = match parts.as_slice() {
        ["HMSG", _, _, reply, h, t] => (Some(*reply), h.parse().ok(), t.parse().ok()),
        ["HMSG", _, _, h, t] => (None, h.parse().ok(), t.parse().ok()),
        ["MSG", _, _, reply, t] => (Some(*reply), Some(0), t.parse().ok()),
        ["MSG", _, _, t] => (None, Some(0), t.parse().ok()),
        _ => panic!("not a message: {line:?}"),
    };
    let (hdr_len, total): (usize, usize) = (hdr_len.expect("len"), total.expect("len"));
    let frame = conn.read_exact(total + 2).await;
    let block = String::from_utf8_lossy(&frame[..hdr_len]).into_owned();
    (parts[1].to_owned(), reply.map(str::to_owned), block)
}

/// The header block with the request info's volatile values named instead, after
/// checking them against what the requester's INFO said.
fn redacted(block: &str, requester: &Value) -> String {
    let line = block
        .lines()
        .find_map(|l| l.strip_prefix("Nats-Request-Info: "))
        .unwrap_or_else(|| panic!("no Nats-Request-Info in {block:?}"));
    let info: Value = serde_json::from_str(line).expect("request info is JSON");
    assert!(info["rtt"].as_u64().is_some_and(|ns| ns > 0), "{info}");
    let mut out = block.to_owned();
    for (key, expected) in [
        ("rtt", None),
        ("start", None),
        ("id", Some(requester["client_id"].clone())),
        ("host", Some(requester["client_ip"].clone())),
        ("server", Some(requester["server_name"].clone())),
    ] {
        let Some(value) = info.get(key) else { continue };
        if let Some(expected) = expected {
            assert_eq!(*value, expected, "{key}: {info}");
        }
        let text = value.to_string();
        out = out.replace(
            &format!("\"{key}\":{text}"),
            &format!("\"{key}\":\"<{key}>\""),
        );
    }
    out
}

async fn story(kind: ServerKind) -> Value {
    let server = TestServer::with_config(kind, CONFIG).await;
    let mut service = Conn::connect(server.port()).await;
    service
        .send(b"CONNECT {\"verbose\":false,\"headers\":true,\"user\":\"a\",\"pass\":\"a\"}\r\nSUB svc.> 1\r\nSUB sh.> 2\r\nPING\r\n")
        .await;
    assert_eq!(service.read_line().await.trim(), "PONG");
    let mut requester = Conn::connect(server.port()).await;
    let info = requester.info().clone();
    requester
        .send(b"CONNECT {\"verbose\":false,\"protocol\":1,\"headers\":true,\"user\":\"b\",\"pass\":\"b\",\"name\":\"requester\",\"lang\":\"raw\",\"version\":\"9.9\"}\r\nPING\r\n")
        .await;
    assert_eq!(requester.read_line().await.trim(), "PONG");
    let fake = ("Nats-Request-Info", "{\"acc\":\"fake\"}");
    requester.send(b"PUB svc.plain _INBOX.r1 1\r\nq\r\n").await;
    requester
        .send(&hpub("svc.hdrs", "_INBOX.r2", &[("Z", "1"), fake], "q"))
        .await;
    requester
        .send(&hpub("sh.full", "_INBOX.r3", &[("X-Mine", "v"), fake], "q"))
        .await;
    requester.send(b"PUB sh.noreply 1\r\nn\r\n").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (subject, reply, block) = next_msg(&mut service).await;
        let routed = reply.as_deref().map(|r| r.starts_with("_R_."));
        seen.push(json!({
            "subject": subject,
            "reply_is_a_response_route": routed,
            "headers": redacted(&block, &info),
        }));
    }
    json!(seen)
}

#[tokio::test]
async fn requests_crossing_a_service_import_say_who_sent_them_as_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(story(kind).await);
    }
    insta::assert_json_snapshot!(seen[1]);
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
}
