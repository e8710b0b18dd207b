//! One-line renderings of client ops for `-V` protocol traces.

use bytes::Bytes;
use rill_protocol::ClientOp;

/// A one-line rendering of an op for `-V` protocol traces.
pub(super) fn describe(op: &ClientOp) -> String {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let opt = |b: &Option<Bytes>| {
        b.as_ref()
            .map(|r| format!(" {}", text(r)))
            .unwrap_or_default()
    };
    match op {
        ClientOp::Connect(c) => format!("CONNECT {}", serde_json::to_string(c).unwrap_or_default()),
        ClientOp::Pub(p) => {
            let subject = p.subject();
            let reply = p.reply().map(|r| format!(" {r}")).unwrap_or_default();
            match p.headers() {
                None => format!("PUB {subject}{reply} {}", p.payload().len()),
                Some(h) => format!(
                    "HPUB {subject}{reply} {} {}",
                    h.len(),
                    h.len() + p.payload().len()
                ),
            }
        }
        ClientOp::Sub {
            subject,
            queue,
            sid,
        } => format!("SUB {}{} {}", text(subject), opt(queue), text(sid)),
        ClientOp::Unsub { sid, max } => format!(
            "UNSUB {}{}",
            text(sid),
            max.map(|m| format!(" {m}")).unwrap_or_default()
        ),
        ClientOp::Ping => "PING".into(),
        ClientOp::Pong => "PONG".into(),
        ClientOp::Info => "INFO".into(),
        ClientOp::Ok => "+OK".into(),
    }
}
