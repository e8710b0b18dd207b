//! Drop-in surfaces: monitoring endpoints, the ports file with `-p -1`, and
//! `--signal reload`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rill_tests::raw::Conn;
use rill_tests::{Ports, ServerKind, ServerOpts, TestServer, check_for, rill_server_bin, sync};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP/1.0 GET: status code and body.
pub(crate) async fn get(port: u16, path: &str) -> (u16, String) {
    get_at("127.0.0.1", port, path).await
}

/// [`get`] from the monitoring listener at `host`.
pub(crate) async fn get_at(host: &str, port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .expect("connect monitor");
    // HTTP/1.0, so nats-server answers with a plain body rather than chunks.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

pub(crate) async fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
}

async fn monitored() -> (TestServer, u16) {
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        ..Default::default()
    })
    .await;
    let http = server.monitoring_port();
    (server, http)
}

#[tokio::test]
async fn varz_reports_config_and_counters() {
    let (server, http) = monitored().await;
    let client = server.client().await;
    let mut sub = client.subscribe("mon.test").await.expect("sub");
    sync(&client).await;
    client
        .publish("mon.test", "12345".into())
        .await
        .expect("pub");
    futures::StreamExt::next(&mut sub).await.expect("msg");
    let varz = get_json(http, "/varz").await;
    assert_eq!(varz["in_msgs"], 2, "the sync request and the publish");
    assert_eq!(varz["in_bytes"], 5);
    assert_eq!(varz["out_msgs"], 1);
    assert_eq!(varz["connections"], 1);
    assert_eq!(varz["port"], server.port());
    assert_eq!(varz["http_port"], http);
    assert_eq!(varz["max_payload"], 1_048_576);
    assert_eq!(varz["ping_interval"], 120_000_000_000u64);
    assert!(varz["mem"].as_u64().is_some_and(|m| m > 0));
    let keys: Vec<&String> = varz.as_object().expect("object").keys().collect();
    insta::assert_json_snapshot!(keys);
}

#[tokio::test]
async fn connz_and_subsz_list_clients_and_subscriptions() {
    let (server, http) = monitored().await;
    let client = async_nats::ConnectOptions::new()
        .name("monitor-me")
        .connect(server.url())
        .await
        .expect("connect");
    let _a = client.subscribe("orders.>").await.expect("sub");
    let _b = client
        .queue_subscribe("jobs", "workers".into())
        .await
        .expect("qsub");
    sync(&client).await;
    let connz = get_json(http, "/connz?subs=1").await;
    let conn = connz["connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "monitor-me"))
        .expect("our connection listed");
    insta::assert_json_snapshot!(conn, {
        ".cid" => "[cid]", ".port" => "[port]", ".start" => "[time]", ".uptime" => "[uptime]",
        ".version" => "[version]", ".in_msgs" => "[n]", ".in_bytes" => "[n]", ".out_msgs" => "[n]",
        ".out_bytes" => "[n]", ".subscriptions" => "[n]", ".subscriptions_list" => "[list]",
        ".last_activity" => "[time]", ".idle" => "[idle]", ".rtt" => "[rtt]",
    });
    let list: Vec<&str> = conn["subscriptions_list"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        list.contains(&"orders.>") && list.contains(&"jobs"),
        "{list:?}"
    );
    let page = get_json(http, "/connz?limit=1&offset=0&sort=subs").await;
    assert_eq!(page["limit"], 1);
    assert_eq!(page["connections"].as_array().map(Vec::len), Some(1));
    let subsz = get_json(http, "/subsz?subs=1").await;
    let subs = subsz["subscriptions_list"].as_array().expect("subs list");
    assert!(
        subs.iter()
            .any(|s| s["subject"] == "jobs" && s["qgroup"] == "workers"),
        "{subs:?}"
    );
    assert!(subsz["num_subscriptions"].as_u64().is_some_and(|n| n >= 2));
}

#[tokio::test]
async fn health_routes_accounts_and_unknown_paths() {
    let (_server, http) = monitored().await;
    assert_eq!(get_json(http, "/healthz").await["status"], "ok");
    assert_eq!(
        get_json(http, "/healthz?js-enabled-only=true").await["status"],
        "ok"
    );
    assert_eq!(get_json(http, "/routez").await["num_routes"], 0);
    assert!(
        get_json(http, "/accountz").await["accounts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(
        get_json(http, "/jsz").await["config"]["store_dir"]
            .as_str()
            .is_some()
    );
    assert_eq!(get(http, "/nope").await.0, 404);

    let no_js = TestServer::start_with(ServerOpts {
        jetstream: false,
        monitoring: true,
        ..Default::default()
    })
    .await;
    let plain_http = no_js.monitoring_port();
    let (status, body) = get(plain_http, "/healthz?js-enabled-only=true").await;
    assert_eq!(status, 503, "{body}");
    drop(no_js);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (server, http) = monitored().await;
    let client = server.client().await;
    client.publish("m", "abc".into()).await.expect("pub");
    sync(&client).await;
    let (status, body) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    let mut values = std::collections::HashMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad sample {line}"));
        values.insert(name.to_string(), value);
    }
    assert!(
        values["rill_in_msgs_total"] >= 2.0,
        "publish + sync request counted"
    );
    assert_eq!(values["rill_connections"], 1.0);
    assert!(values.contains_key("rill_slow_consumers_total"));
}

fn has_ports_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".ports"))
    })
}

#[tokio::test]
async fn ports_file_with_random_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(rill_server_bin())
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-m",
            "-1",
            "--ports_file_dir",
        ])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let ports = Ports::wait_file(dir.path(), child.id(), Duration::from_secs(10)).await;
    let port = ports.client;
    let conn = Conn::connect(port).await;
    assert_eq!(conn.info()["port"], port);
    let http = ports.monitoring.expect("monitoring url in the ports file");
    assert_eq!(get_json(http, "/varz").await["port"], port);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        !has_ports_file(dir.path()),
        "ports file removed on shutdown"
    );
}

#[tokio::test]
async fn signal_reload_applies_new_values() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        config: Some("max_payload: 1024\n".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        Conn::connect(server.port()).await.info()["max_payload"],
        1024
    );
    let conf = server.store_dir().join("server.conf");
    std::fs::write(&conf, "max_payload: 2048\n").expect("rewrite config");
    let pid = server.pid().expect("pid");
    let status = Command::new(rill_server_bin())
        .arg("--signal")
        .arg(format!("reload={pid}"))
        .status()
        .expect("signal");
    assert!(status.success());
    let port = server.port();
    check_for(Duration::from_secs(5), || async move {
        Conn::connect(port).await.info()["max_payload"] == 2048
    })
    .await;
}

#[tokio::test]
async fn jetstream_shows_in_jsz_and_metrics() {
    let (server, http) = monitored().await;
    let client = server.client().await;
    let js = async_nats::jetstream::new(client);
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "MON".into(),
            subjects: vec!["mon.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
    for i in 0..3 {
        js.publish("mon.x", i.to_string().into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("C".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let jsz = get_json(http, "/jsz?streams=true&consumers=true").await;
    assert_eq!(jsz["streams"], 1);
    assert_eq!(jsz["consumers"], 1);
    assert_eq!(jsz["messages"], 3);
    let detail = &jsz["account_details"][0]["stream_detail"][0];
    assert_eq!(detail["name"], "MON");
    assert_eq!(detail["state"]["messages"], 3);
    assert_eq!(detail["consumer_detail"][0]["name"], "C");
    let varz = get_json(http, "/varz").await;
    assert!(
        varz["jetstream"]["stats"]["storage"]
            .as_u64()
            .is_some_and(|b| b > 0)
    );
    let (_, metrics) = get(http, "/metrics").await;
    assert!(
        metrics.contains("rill_stream_messages{stream=\"MON\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rill_consumer_num_pending{stream=\"MON\",consumer=\"C\"} 3"),
        "{metrics}"
    );
}

/// `/varz` `cpu` is the process's CPU use in percent of one core over the last second or more, as
/// nats-server samples it: high while clients keep it busy, back near zero when they stop.
#[tokio::test]
async fn varz_cpu_follows_the_load_like_nats_server() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = TestServer::start_with(ServerOpts {
            kind,
            monitoring: true,
            ..Default::default()
        })
        .await;
        let http = server.monitoring_port();
        let cpu = |varz: &Value| varz["cpu"].as_f64().expect("cpu is a number");
        cpu(&get_json(http, "/varz").await);
        let client = server.client().await;
        let _sub = client.subscribe("load").await.expect("sub");
        let busy = tokio::time::Instant::now() + Duration::from_millis(1500);
        while tokio::time::Instant::now() < busy {
            for _ in 0..1000 {
                client.publish("load", "x".into()).await.expect("pub");
            }
            sync(&client).await;
        }
        let loaded = cpu(&get_json(http, "/varz").await);
        assert!(loaded > 0.0, "{kind:?}: cpu {loaded} under load");
        drop(client);
        check_for(Duration::from_secs(6), || async move {
            cpu(&get_json(http, "/varz").await) < loaded
        })
        .await;
    }
}

/// /connz shows each client's round trip (`rtt`, Go's duration text), its `last_activity`
/// (CONNECT, SUB, messages in and out; not PING/PONG) and `idle`, and sorts by them, as
/// nats-server 2.15.1 does. A protocol-1 client (async-nats) has an `rtt` at once: the
/// time from INFO to its CONNECT. Checked on both servers.
#[tokio::test]
async fn connz_shows_round_trips_and_last_activity_as_nats_server() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            monitoring: true,
            ..ServerOpts::default()
        })
        .await;
        let http = server.monitoring_port();
        let connect = |name: &'static str| {
            async_nats::ConnectOptions::new()
                .name(name)
                .connect(server.url())
        };
        let (sub, publisher) = (
            connect("sub").await.expect("connect"),
            connect("pub").await.expect("connect"),
        );
        let mut inbox = sub.subscribe("act").await.expect("subscribe");
        sync(&sub).await;
        let by_name = |connz: &Value| -> Vec<(String, Value)> {
            let list = connz["connections"].as_array().expect("connections");
            list.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c.clone(),
                    )
                })
                .collect()
        };
        let before = get_json(http, "/connz").await;
        for (name, c) in by_name(&before) {
            let rtt = c["rtt"]
                .as_str()
                .unwrap_or_else(|| panic!("{kind:?} {name}: {c}"));
            assert!(
                ["ns", "µs", "ms", "s"].iter().any(|u| rtt.ends_with(u)),
                "{kind:?} {name}: {rtt}"
            );
            assert!(
                c["last_activity"].is_string() && c["idle"].is_string(),
                "{c}"
            );
        }
        // The subscriber stays quiet for a while; then one message moves: the publisher's
        // and the subscriber's last_activity pass the quiet time, and the idle sort puts
        // the quietest first.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (first, _) = &by_name(&get_json(http, "/connz?sort=idle").await)[0];
        let quiet_first = first.clone();
        publisher.publish("act", "x".into()).await.expect("publish");
        publisher.flush().await.expect("flush");
        futures::StreamExt::next(&mut inbox)
            .await
            .expect("delivered");
        let after = get_json(http, "/connz?sort=last").await;
        for (name, c) in by_name(&after) {
            let then = by_name(&before)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c["last_activity"].as_str().unwrap_or_default().to_string())
                .expect("seen before");
            let now = c["last_activity"].as_str().unwrap_or_default();
            // RFC 3339 with the same offset: later sorts after.
            assert!(now > then.as_str(), "{kind:?} {name}: {then} -> {now}");
            assert_eq!(c["idle"], "0s", "{kind:?} {name}: {c}");
        }
        assert_eq!(
            quiet_first, "pub",
            "{kind:?}: the subscriber subscribed after the publisher connected"
        );
        drop(inbox);
    }
}
