//! MQTT devices on rill, driven by real MQTT clients no one here wrote: paho-mqtt
//! (Python, 3.1.1 and 5, through `py/mqtt_scenario.py`) and mosquitto's
//! `mosquitto_pub`/`mosquitto_sub`. The MQTT 3.1.1 scenarios run against nats-server
//! 2.15.1 with the same `mqtt {}` block and must see the same thing. Each test skips
//! with one line when its client is not installed (CI installs both).

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer, check_for};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SCRIPT: &str = include_str!("py/mqtt_scenario.py");

/// True when paho-mqtt can be imported; prints the skip line otherwise.
pub(crate) fn paho() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import paho.mqtt"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: paho-mqtt not installed (pip install paho-mqtt)");
    }
    ok
}

/// True when mosquitto_pub/mosquitto_sub are on PATH; prints the skip line otherwise.
fn mosquitto() -> bool {
    let ok = std::process::Command::new("mosquitto_pub")
        .arg("--help")
        .output()
        .is_ok();
    if !ok {
        eprintln!("skipping: mosquitto clients not installed (apt-get install mosquitto-clients)");
    }
    ok
}

/// Starts `kind` with JetStream and `mqtt { host: 127.0.0.1, port: -1 <extra> }` plus
/// `top` at the top level; returns it with its MQTT port.
pub(crate) async fn start(kind: ServerKind, extra: &str, top: &str) -> (TestServer, u16) {
    let config = format!("{top}\nmqtt {{\n host: 127.0.0.1\n port: -1\n {extra}\n}}\n");
    let server = TestServer::start_with(ServerOpts {
        config: Some(config),
        ..ServerOpts::kind(kind)
    })
    .await;
    let port = mqtt_port(&server).await;
    (server, port)
}

/// Runs one scenario against rill and then nats-server 2.15.1, each started by
/// [`start`] with the same `extra` and `top`; asserts both saw the same and returns
/// what they saw (for the snapshot).
pub(crate) async fn on_both<F>(extra: &str, top: &str, mut run: F) -> Value
where
    F: AsyncFnMut(ServerKind, TestServer, u16) -> Value,
{
    let mut seen = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let (server, port) = start(kind, extra, top).await;
        seen.push(run(kind, server, port).await);
    }
    assert_eq!(seen[0], seen[1], "rill and nats-server differ");
    seen.swap_remove(0)
}

/// The MQTT port from the `Listening for MQTT clients on mqtt://host:port` log line
/// (`tls://` with TLS).
pub(crate) async fn mqtt_port(server: &TestServer) -> u16 {
    const LINE: &str = "Listening for MQTT clients on ";
    let find = || {
        let logs = server.logs();
        let at = logs.rfind(LINE)? + LINE.len();
        let addr = logs[at..].lines().next()?;
        addr.rsplit(':').next()?.trim().parse().ok()
    };
    check_for(Duration::from_secs(5), || async { find().is_some() }).await;
    find().unwrap_or_default()
}

/// Runs a scenario; at each `pause` step, runs `on_pause(n)` before resuming.
pub(crate) async fn scenario_with<F, Fut>(port: u16, steps: &Value, mut on_pause: F) -> Value
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), &steps.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let run = async {
        let mut pauses = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "PAUSE" {
                on_pause(pauses).await;
                pauses += 1;
                let _ = stdin.write_all(b"go\n").await;
                continue;
            }
            return serde_json::from_str::<Value>(&line).ok();
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(Some(v)) => v,
        other => {
            let _ = child.kill().await;
            let out = child.wait_with_output().await.expect("scenario output");
            panic!(
                "scenario failed ({other:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Runs a scenario without pauses.
pub(crate) async fn scenario(port: u16, steps: &Value) -> Value {
    scenario_with(port, steps, |_| async {}).await
}

/// The messages client `name` received, sorted by topic then payload.
pub(crate) fn msgs(out: &Value, name: &str) -> Vec<Value> {
    let mut m = out[name]["msgs"].as_array().cloned().unwrap_or_default();
    m.sort_by_key(|v| (v["topic"].to_string(), v["payload"].to_string()));
    m
}

fn topic_mapping_steps() -> Value {
    json!([
        {"op": "connect", "name": "s", "v": 4},
        {"op": "sub", "name": "s", "filter": "a/#"},
        {"op": "sub", "name": "s", "filter": "x/+/y"},
        {"op": "sub", "name": "s", "filter": "dot.ted/#"},
        {"op": "sub", "name": "s", "filter": "/lead/+"},
        {"op": "connect", "name": "p", "v": 4},
        {"op": "pub", "name": "p", "topic": "a/b", "payload": "1"},
        {"op": "pub", "name": "p", "topic": "a", "payload": "2"},
        {"op": "pub", "name": "p", "topic": "x/1/y", "payload": "3"},
        {"op": "pub", "name": "p", "topic": "x/1/2/y", "payload": "not matched"},
        {"op": "pub", "name": "p", "topic": "dot.ted/v", "payload": "4"},
        {"op": "pub", "name": "p", "topic": "/lead/z", "payload": "5"},
        {"op": "pub", "name": "p", "topic": "a/b/", "payload": "6"},
        {"op": "wait_msgs", "name": "s", "count": 6},
        {"op": "sleep", "secs": 0.2},
    ])
}

#[tokio::test]
async fn mqtt_qos0_pubsub_and_topic_mapping_match_nats_server() {
    if !paho() {
        return;
    }
    let seen = on_both("", "", async |kind, _server, port| {
        let out = scenario(port, &topic_mapping_steps()).await;
        assert_eq!(out["s"]["connack"], 0, "{kind:?}: {out}");
        assert_eq!(out["s"]["subacks"], json!([[0], [0], [0], [0]]), "{kind:?}");
        json!(msgs(&out, "s"))
    })
    .await;
    insta::assert_json_snapshot!("mqtt_qos0_topic_mapping", seen);
}

#[tokio::test]
async fn mqtt_and_nats_clients_meet_on_the_same_subjects() {
    if !paho() {
        return;
    }
    let seen = on_both("", "", async |_kind, server, port| {
        let nats = server.client().await;
        let mut from_mqtt = nats.subscribe("sensors.>").await.expect("subscribe");
        rill_tests::sync(&nats).await;
        let steps = json!([
            {"op": "connect", "name": "dev", "v": 4},
            {"op": "sub", "name": "dev", "filter": "cmd/#"},
            {"op": "sub", "name": "dev", "filter": "spBv1.0/+"},
            {"op": "pub", "name": "dev", "topic": "sensors/t1", "payload": "21.5"},
            {"op": "pub", "name": "dev", "topic": "sensors/dot.ted", "payload": "x"},
            {"op": "pause"},
            {"op": "wait_msgs", "name": "dev", "count": 3},
        ]);
        let out = scenario_with(port, &steps, |_| {
            let nats = nats.clone();
            async move {
                for (subject, payload) in [
                    ("cmd.dev", "reboot"),
                    ("cmd", "parent"),
                    ("spBv1//0.plant1", "sparkplug"),
                ] {
                    nats.publish(subject, payload.into())
                        .await
                        .expect("publish");
                }
                nats.flush().await.expect("flush");
            }
        })
        .await;
        let mut got = Vec::new();
        for _ in 0..2 {
            let m = tokio::time::timeout(Duration::from_secs(5), from_mqtt.next())
                .await
                .expect("NATS subscriber got the MQTT publish")
                .expect("message");
            let qos = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nmqtt-Pub"))
                .map(|v| v.to_string());
            got.push(json!({"subject": m.subject.as_str(), "payload": String::from_utf8_lossy(&m.payload), "Nmqtt-Pub": qos}));
        }
        json!({"nats_got": got, "mqtt_got": msgs(&out, "dev")})
    })
    .await;
    insta::assert_json_snapshot!("mqtt_nats_cross_protocol", seen);
}

/// mosquitto_sub's output lines for a subscription on `filter` that gets `count`
/// messages while mosquitto_pub runs with each of `pubs`. mosquitto_sub prints nothing
/// once subscribed, so NATS publishes to `<filter root>/probe` go first until one comes
/// out (its lines are left out of the result).
async fn mosquitto_round(
    server: &TestServer,
    port: u16,
    filter: &str,
    count: usize,
    pubs: &[&[&str]],
) -> String {
    let p = port.to_string();
    let mut sub = tokio::process::Command::new("mosquitto_sub")
        .args(["-p", &p, "-h", "127.0.0.1", "-t", filter, "-v"])
        .args(["-W", "30", "-i", "msub"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run mosquitto_sub");
    let mut lines = BufReader::new(sub.stdout.take().expect("stdout")).lines();
    let root = filter.split('/').next().unwrap_or_default();
    let probe = format!("{root}/probe");
    let nats = server.client().await;
    let subscribed = async {
        loop {
            let subject = format!("{root}.probe");
            nats.publish(subject, "probe".into()).await.expect("probe");
            nats.flush().await.expect("flush");
            let next = tokio::time::timeout(Duration::from_millis(200), lines.next_line());
            if let Ok(line) = next.await {
                return line;
            }
        }
    };
    let first = tokio::time::timeout(Duration::from_secs(20), subscribed).await;
    assert!(matches!(first, Ok(Ok(Some(_)))), "mosquitto_sub subscribed");
    for args in pubs {
        let status = tokio::process::Command::new("mosquitto_pub")
            .args(["-p", &p, "-h", "127.0.0.1"])
            .args(*args)
            .status()
            .await
            .expect("run mosquitto_pub");
        assert!(status.success(), "mosquitto_pub {args:?}");
    }
    let mut out = String::new();
    let mut got = 0;
    while got < count {
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await;
        let Ok(Ok(Some(line))) = line else {
            panic!("mosquitto_sub got {got} of {count} messages: {out}");
        };
        if !line.starts_with(&probe) {
            out.push_str(&line);
            out.push('\n');
            got += 1;
        }
    }
    out
}

#[tokio::test]
async fn mosquitto_pub_and_sub_work_as_with_nats_server() {
    if !mosquitto() {
        return;
    }
    let seen = on_both("", "", async |_kind, server, port| {
        let pubs: &[&[&str]] = &[
            &["-t", "home/kitchen/temp", "-m", "20"],
            &["-t", "home/hall/temp", "-m", "19", "-q", "1"],
            &["-t", "home", "-m", "root", "-r"],
        ];
        json!(mosquitto_round(&server, port, "home/#", 3, pubs).await)
    })
    .await;
    insta::assert_snapshot!("mosquitto_pub_sub", seen.as_str().unwrap_or_default());
}

#[tokio::test]
async fn connz_and_metrics_list_mqtt_clients() {
    if !paho() {
        return;
    }
    on_both("", "http: 127.0.0.1:-1", async |kind, server, port| {
        let http = server.monitoring_port();
        let steps = json!([
            {"op": "connect", "name": "d", "id": "boiler-7", "v": 4},
            {"op": "sub", "name": "d", "filter": "heat/#"},
            {"op": "pause"},
        ]);
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
        scenario_with(port, &steps, |_| {
            let url = format!("http://127.0.0.1:{http}/connz?subs=1");
            let slot = std::sync::Arc::clone(&slot);
            async move {
                let got = http_get_json(&url).await;
                *slot.lock().expect("slot") = got;
                if kind == ServerKind::Rill {
                    // nats-server has no /metrics; rill counts MQTT clients apart.
                    let url = format!("http://127.0.0.1:{http}/metrics");
                    let text = http_get_text(&url).await;
                    assert!(text.contains("\nrill_mqtt_connections 1\n"), "{text}");
                    assert!(text.contains("\nrill_connections 1\n"), "{text}");
                }
            }
        })
        .await;
        let connz = slot.lock().expect("slot").clone();
        let conn = &connz["connections"][0];
        assert_eq!(conn["type"], "mqtt", "{kind:?}: {connz}");
        assert_eq!(conn["mqtt_client"], "boiler-7", "{kind:?}");
        let mut subs: Vec<String> =
            serde_json::from_value(conn["subscriptions_list"].clone()).unwrap_or_default();
        subs.sort();
        assert_eq!(subs, ["heat", "heat.>"], "{kind:?}");
        json!(subs)
    })
    .await;
}

/// GET `url` and parse the body as JSON (a bare HTTP/1.0 request; no client needed).
pub(crate) async fn http_get_json(url: &str) -> Value {
    serde_json::from_str(&http_get_text(url).await).unwrap_or(Value::Null)
}

/// GET `url` and return the body (a bare HTTP/1.0 request; no client needed).
pub(crate) async fn http_get_text(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut body = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut body)
        .await
        .expect("read");
    let text = String::from_utf8_lossy(&body);
    text.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn mqtt_users_and_permissions_are_those_of_nats_clients() {
    if !paho() {
        return;
    }
    let top = r#"authorization { users: [
        { user: alice, password: wonder, permissions: { publish: "a.>", subscribe: ["a", "a.>"] } },
        { user: bob, password: builder }
    ] }"#;
    let seen = on_both("", top, async |_kind, _server, port| {
        let steps = json!([
            {"op": "connect", "name": "bad", "v": 4, "user": "alice", "password": "nope"},
            {"op": "connect", "name": "alice", "v": 4, "user": "alice", "password": "wonder"},
            {"op": "sub", "name": "alice", "filter": "a/#"},
            {"op": "sub", "name": "alice", "filter": "b/#"},
            {"op": "connect", "name": "bob", "v": 4, "user": "bob", "password": "builder"},
            {"op": "sub", "name": "bob", "filter": "#"},
            {"op": "pub", "name": "alice", "topic": "b/denied", "payload": "x"},
            {"op": "pub", "name": "alice", "topic": "a/ok", "payload": "y"},
            {"op": "wait_msgs", "name": "bob", "count": 1},
            {"op": "wait_msgs", "name": "alice", "count": 1},
            {"op": "sleep", "secs": 0.3},
        ]);
        let out = scenario(port, &steps).await;
        json!({
            "bad_connack": out["bad"]["connack"],
            "alice_subacks": out["alice"]["subacks"],
            "alice_got": msgs(&out, "alice"),
            "bob_got": msgs(&out, "bob"),
        })
    })
    .await;
    insta::assert_json_snapshot!("mqtt_users_permissions", seen);
}

/// Invalid topic filters (`#` not last or not a whole level) are refused one by one in the
/// SUBACK (0x80 in MQTT 3.1.1) while the valid ones beside them are granted and work, as on
/// nats-server. A `+` or `#` inside a level (`sport+`) is granted by nats-server 2.15.1 but never
/// delivers anything (not even a NATS publish on the literal subject `sport+`); rill refuses it
/// with 0x80 as the MQTT specification has it, so the device learns at once.
#[tokio::test]
async fn invalid_topic_filters_are_refused_in_the_suback_like_nats_server() {
    if !paho() {
        return;
    }
    let steps = |extra: &str| {
        json!([
            {"op": "connect", "name": "s"},
            {"op": "sub", "name": "s", "filter": "a/#/b", "unchecked": true},
            {"op": "sub", "name": "s", "filter": "#/a", "unchecked": true},
            {"op": "sub", "name": "s", "filter": extra, "unchecked": true},
            {"op": "sub", "name": "s", "filter": "ok/+", "qos": 1},
            {"op": "connect", "name": "p"},
            {"op": "pub", "name": "p", "topic": "ok/1", "payload": "still here"},
            {"op": "wait_msgs", "name": "s", "count": 1},
        ])
    };
    let seen = on_both("", "", async |_kind, _server, port| {
        let out = scenario(port, &steps("a/#")).await;
        json!({"subacks": out["s"]["subacks"], "msgs": msgs(&out, "s").len()})
    })
    .await;
    assert_eq!(
        seen,
        json!({"subacks": [[128], [128], [0], [1]], "msgs": 1})
    );
    let (_server, port) = start(ServerKind::Rill, "", "").await;
    let out = scenario(port, &steps("sport+")).await;
    assert_eq!(out["s"]["subacks"], json!([[128], [128], [128], [1]]));
}
