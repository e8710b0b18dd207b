//! MQTT QoS 2 as nats-server 2.15.1 does it: a QoS 2 publish is held (PUBREC) until its
//! PUBREL delivers it (PUBCOMP), a PUBLISH sent again before PUBREL is not delivered
//! twice, QoS 2 subscriptions are granted QoS 2 and get each message at the QoS it was
//! published with, at most the granted one. Checked with paho-mqtt and with raw packets
//! against both servers side by side.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::mqtt::{msgs, on_both, paho, scenario};

/// Session settings of the test servers.
const MQTT: &str = "ack_wait: \"2s\"";

#[tokio::test]
async fn qos2_with_paho_matches_nats_server() {
    if !paho() {
        return;
    }
    let seen = on_both(MQTT, "", async |kind, _server, port| {
        let steps = json!([
            {"op": "connect", "name": "s", "v": 4},
            {"op": "sub", "name": "s", "filter": "q2/#", "qos": 2},
            {"op": "sub", "name": "s", "filter": "q1/#", "qos": 1},
            {"op": "sub", "name": "s", "filter": "q0/#", "qos": 0},
            {"op": "connect", "name": "away", "id": "away-1", "v": 4, "clean": false},
            {"op": "sub", "name": "away", "filter": "q2/#", "qos": 2},
            {"op": "disconnect", "name": "away"},
            {"op": "connect", "name": "p", "v": 4},
            {"op": "pub", "name": "p", "topic": "q2/a", "payload": "2 to 2", "qos": 2},
            {"op": "pub", "name": "p", "topic": "q1/a", "payload": "2 to 1", "qos": 2},
            {"op": "pub", "name": "p", "topic": "q0/a", "payload": "2 to 0", "qos": 2},
            {"op": "pub", "name": "p", "topic": "q2/b", "payload": "1 to 2", "qos": 1},
            {"op": "pub", "name": "p", "topic": "q2/c", "payload": "0 to 2", "qos": 0},
            {"op": "pub", "name": "p", "topic": "q2/r", "payload": "kept", "qos": 2, "retain": true},
            {"op": "wait_msgs", "name": "s", "count": 6},
            {"op": "connect", "name": "away", "id": "away-1", "v": 4, "clean": false},
            {"op": "wait_msgs", "name": "away", "count": 3},
            {"op": "connect", "name": "late", "v": 4},
            {"op": "sub", "name": "late", "filter": "q2/r", "qos": 2},
            {"op": "wait_msgs", "name": "late", "count": 1},
            {"op": "sleep", "secs": 0.3},
        ]);
        let out = scenario(port, &steps).await;
        assert_eq!(out["p"]["pubacks"].as_array().map(Vec::len), Some(6), "{kind:?}: {out}");
        json!({
            "subacks": out["s"]["subacks"],
            "s_got": plain(msgs(&out, "s")),
            "away_present": out["away"]["session_present"],
            "away_got": plain(msgs(&out, "away")),
            "late_got": plain(msgs(&out, "late")),
        })
    })
    .await;
    insta::assert_json_snapshot!("mqtt_qos2_paho", seen);
}

/// `msgs` without `dup` (set on a redelivery, which depends on timing).
fn plain(list: Vec<Value>) -> Vec<Value> {
    list.into_iter()
        .map(|mut m| {
            if let Some(o) = m.as_object_mut() {
                o.remove("dup");
            }
            m
        })
        .collect()
}

/// One MQTT 3.1.1 packet: fixed header byte, remaining length, body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed MQTT string.
fn text(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// A raw MQTT 3.1.1 connection.
struct Raw(TcpStream);

impl Raw {
    async fn connect(port: u16, id: &str, clean: bool) -> (Self, String) {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut raw = Raw(stream);
        let mut body = text("MQTT");
        body.extend([4, if clean { 2 } else { 0 }, 0, 60]);
        body.extend(text(id));
        raw.send(&packet(0x10, &body)).await;
        let connack = raw.read().await;
        (raw, connack)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.expect("write");
    }

    /// What arrives within 5 s, and whatever follows it at once, as hex.
    async fn read(&mut self) -> String {
        self.read_within(Duration::from_secs(5)).await
    }

    /// What arrives within 400 ms, as hex ("" for nothing).
    async fn quiet(&mut self) -> String {
        self.read_within(Duration::from_millis(400)).await
    }

    async fn read_within(&mut self, first: Duration) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut wait = first;
        while let Ok(Ok(n)) = tokio::time::timeout(wait, self.0.read(&mut buf)).await {
            wait = Duration::from_millis(300);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A QoS 2 PUBLISH (with `dup`) on `topic` with packet id `pkid`.
fn publish2(topic: &str, pkid: u16, payload: &str, dup: bool) -> Vec<u8> {
    let mut body = text(topic);
    body.extend(pkid.to_be_bytes());
    body.extend(payload.as_bytes());
    packet(if dup { 0x3c } else { 0x34 }, &body)
}

#[tokio::test]
async fn a_qos2_publish_is_held_until_pubrel_as_in_nats_server() {
    let seen = on_both("", "", async |_kind, _server, port| {
        let (mut sub, _) = Raw::connect(port, "raw-s", true).await;
        let mut body = 1u16.to_be_bytes().to_vec();
        body.extend(text("t/#"));
        body.push(2);
        sub.send(&packet(0x82, &body)).await;
        let suback = sub.read().await;
        let (mut p, connack) = Raw::connect(port, "raw-p", true).await;
        p.send(&publish2("t/a", 5, "first", false)).await;
        let pubrec = p.read().await;
        let before_pubrel = sub.quiet().await;
        p.send(&publish2("t/a", 5, "again", true)).await;
        let pubrec_again = p.read().await;
        p.send(&packet(0x62, &5u16.to_be_bytes())).await;
        let pubcomp = p.read().await;
        let delivered = sub.read().await;
        p.send(&packet(0x62, &9u16.to_be_bytes())).await;
        let unknown = p.read().await;
        drop((sub, p));
        json!({
            "connack": connack, "suback": suback, "pubrec": pubrec,
            "before_pubrel": before_pubrel, "pubrec_again": pubrec_again,
            "pubcomp": pubcomp, "delivered": delivered, "pubrel_unknown": unknown,
        })
    })
    .await;
    insta::assert_json_snapshot!("mqtt_qos2_raw", seen);
}

#[tokio::test]
async fn a_pubrel_owed_is_sent_again_when_the_session_resumes() {
    // MQTT 3.1.1 4.4: on resume the server sends again the PUBRELs not completed.
    // nats-server sends them only after ack_wait; rill sends them at once.
    let (_server, port) = crate::mqtt::start(rill_tests::ServerKind::Rill, "", "").await;
    let (mut sub, _) = Raw::connect(port, "raw-owed", false).await;
    let mut body = 1u16.to_be_bytes().to_vec();
    body.extend(text("u/#"));
    body.push(2);
    sub.send(&packet(0x82, &body)).await;
    assert_eq!(sub.read().await, "9003000102");
    let (mut p, _) = Raw::connect(port, "raw-p2", true).await;
    p.send(&publish2("u/a", 7, "one", false)).await;
    assert_eq!(p.read().await, "50020007");
    p.send(&packet(0x62, &7u16.to_be_bytes())).await;
    assert_eq!(p.read().await, "70020007");
    // QoS 2 delivery with packet id 1.
    assert_eq!(
        sub.read().await,
        "340a0003752f610001 6f6e65".replace(' ', "")
    );
    sub.send(&packet(0x50, &1u16.to_be_bytes())).await;
    assert_eq!(sub.read().await, "62020001", "PUBREL after PUBREC");
    drop(sub);
    let (mut back, connack) = Raw::connect(port, "raw-owed", false).await;
    assert_eq!(
        connack,
        "200201006202000 1".replace(' ', ""),
        "session present, PUBREL again"
    );
    back.send(&packet(0x70, &1u16.to_be_bytes())).await;
    assert_eq!(back.quiet().await, "", "nothing after PUBCOMP");
    drop(back);
    let (_again, connack) = Raw::connect(port, "raw-owed", false).await;
    assert_eq!(connack, "20020100", "no PUBREL owed after PUBCOMP");
}
