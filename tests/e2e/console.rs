//! The web console on the monitoring port, in a real browser: headless Chromium
//! (the same binary the WebSocket browser test finds) loads each view of the console
//! against a rill with streams, a consumer and traffic, and the test reads the
//! rendered document (`--dump-dom`, after the page's own polling has run) to check the
//! numbers shown against `/varz` and `/jsz`, and that names and payloads carrying
//! markup are shown as text, never run. Screenshots go to
//! `<target>/console-screenshots/`. Skipped, with one line, without Chromium.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer, rill_server_bin, target_dir};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::monitoring::{get, get_at, get_json};
use crate::tls::Certs;
use crate::websocket_browser::{HEADLESS, chromium};

const WAIT: Duration = Duration::from_secs(60);
/// A connection name and a payload that would add an element if put in as markup.
const EVIL_NAME: &str = "<img id=pwned-conn src=x>";
const EVIL_PAYLOAD: &str = "<script>document.title='pwned'</script><img id=pwned-msg src=x>";
/// A stream name with markup in it (`>` is not allowed in stream names).
const EVIL_STREAM: &str = "<script";

/// One headless Chromium run against `url`: the document after `budget_ms` of the page's
/// (virtual) time, and a screenshot when `shot` is given.
async fn browse(chromium: &str, url: &str, shot: Option<&Path>) -> String {
    browse_for(chromium, url, shot, 3000).await
}

/// [`browse`] with `budget_ms` of the page's virtual time.
async fn browse_for(chromium: &str, url: &str, shot: Option<&Path>, budget_ms: u32) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--window-size=1280,720");
    match shot {
        Some(path) => cmd.arg(format!("--screenshot={}", path.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish with {url}"))
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id`, unescaped.
fn text_by_id(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[start..];
    let open = rest.find('>').expect("tag end") + 1;
    let close = rest[open..].find('<').expect("text end");
    unescape(&rest[open..open + close])
}

/// The body rows (`<tr>…</tr>` with cells) of the table with `id`.
fn rows<'a>(dom: &'a str, id: &str) -> Vec<&'a str> {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let table = &dom[start..start + dom[start..].find("</table>").expect("table end")];
    table
        .split("<tr")
        .filter(|row| row.contains("data-k="))
        .collect()
}

/// The text of the cell `data-k="key"` in `row`.
fn cell(row: &str, key: &str) -> String {
    let marker = format!("data-k=\"{key}\">");
    let start = row
        .find(&marker)
        .unwrap_or_else(|| panic!("no {key} cell in {row}"))
        + marker.len();
    unescape(&row[start..start + row[start..].find("</td>").expect("cell end")])
}

/// The markup inside the cell `data-k="key"` in `row` (for cells holding elements).
fn cell_html<'a>(row: &'a str, key: &str) -> &'a str {
    let marker = format!("data-k=\"{key}\">");
    let start = row.find(&marker).unwrap_or_else(|| panic!("no {key} cell")) + marker.len();
    &row[start..start + row[start..].find("</td>").expect("cell end")]
}

/// `text` as the browser writes a text node.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `/jsz` stream detail of `name`.
fn details_of<'a>(jsz: &'a Value, name: &str) -> &'a Value {
    jsz["account_details"][0]["stream_detail"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in /jsz"))
}

/// The row whose `key` cell reads `value`.
fn row_with<'a>(rows: &[&'a str], key: &str, value: &str) -> &'a str {
    rows.iter()
        .find(|r| cell(r, key) == value)
        .unwrap_or_else(|| panic!("no row with {key} = {value} in {rows:?}"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// A count as the page shows it (`1,234`).
fn shown(n: &Value) -> String {
    let digits = n.as_u64().expect("a count").to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rill with two streams (one named with markup), a consumer part-way through, and a
/// client whose name carries markup.
async fn busy_server() -> (TestServer, async_nats::Client) {
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        ..ServerOpts::default()
    })
    .await;
    let client = async_nats::ConnectOptions::new()
        .name(EVIL_NAME)
        .connect(server.url())
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    })
    .await
    .expect("create ORDERS");
    let create = json!({ "name": EVIL_STREAM, "subjects": ["evil.>"] }).to_string();
    let reply = client
        .request(
            format!("$JS.API.STREAM.CREATE.{EVIL_STREAM}"),
            create.into(),
        )
        .await
        .expect("create the markup stream");
    let reply: Value = serde_json::from_slice(&reply.payload).expect("json");
    assert!(reply.get("error").is_none(), "{reply}");
    for i in 0..1200 {
        let ack = js
            .publish(format!("orders.{}", i % 4), format!("order {i}").into())
            .await
            .expect("publish");
        if i % 100 == 0 {
            ack.await.expect("stored");
        }
    }
    js.publish("evil.msg", EVIL_PAYLOAD.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BIN".into(),
        subjects: vec!["bin.>".into()],
        ..Default::default()
    })
    .await
    .expect("create BIN");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Evil", "<b id=pwned-hdr>bold</b>");
    let raw = js
        .publish_with_headers("bin.raw", headers, vec![0u8, 1, 2, 0xff].into())
        .await
        .expect("publish");
    raw.await.expect("stored");
    let big = js.publish("bin.big", "y".repeat(5000).into()).await;
    big.expect("publish").await.expect("stored");
    let orders = js.get_stream("ORDERS").await.expect("ORDERS");
    // `worker` took 10 and acked 4; `slow` holds as many as it may (falling behind).
    for (name, max_ack_pending, take, ack) in [("worker", 1000, 10, 4), ("slow", 5, 5, 0)] {
        let consumer = orders
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(name.into()),
                max_ack_pending,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut batch = consumer
            .fetch()
            .max_messages(take)
            .messages()
            .await
            .expect("fetch");
        for i in 0..take {
            let msg = batch.next().await.expect("a message").expect("message");
            if i < ack {
                msg.double_ack().await.expect("ack");
            }
        }
    }
    (server, client)
}

fn screenshot_dir() -> PathBuf {
    let dir = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

#[tokio::test]
async fn the_console_shows_what_varz_and_jsz_report_and_markup_as_text() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "chromium not installed (apt-get install --no-install-recommends \
             chromium-headless-shell); skipping the console browser test"
        );
        return;
    };
    let (server, _client) = busy_server().await;
    let http = server.monitoring_port();
    let base = format!("http://127.0.0.1:{http}/");

    // Overview: the counters /varz and /jsz report (no traffic from here on).
    let page = browse(chromium, &format!("{base}#overview"), None).await;
    let varz = get_json(http, "/varz").await;
    let jsz = get_json(http, "/jsz").await;
    for key in [
        "connections",
        "subscriptions",
        "slow_consumers",
        "in_msgs",
        "out_msgs",
    ] {
        assert_eq!(
            text_by_id(&page, &format!("v-{key}")),
            shown(&varz[key]),
            "{key}"
        );
    }
    assert_eq!(text_by_id(&page, "v-js-streams"), shown(&jsz["streams"]));
    assert_eq!(
        text_by_id(&page, "v-js-consumers"),
        shown(&jsz["consumers"])
    );
    assert_eq!(text_by_id(&page, "v-js-messages"), shown(&jsz["messages"]));

    // Streams: each row against /jsz's stream detail; the markup name is text.
    let page = browse(chromium, &format!("{base}#streams"), None).await;
    let jsz = get_json(http, "/jsz?streams=1").await;
    let table = rows(&page, "t-streams");
    let details = jsz["account_details"][0]["stream_detail"]
        .as_array()
        .expect("stream detail");
    assert_eq!(details.len(), 3);
    for detail in details {
        let name = detail["name"].as_str().expect("name");
        let row = row_with(&table, "name", name);
        for key in ["messages", "first_seq", "last_seq"] {
            assert_eq!(cell(row, key), shown(&detail["state"][key]), "{name} {key}");
        }
        let consumers = &detail["state"]["consumer_count"];
        assert_eq!(cell(row, "consumers"), shown(consumers), "{name}");
    }
    assert!(page.contains("&lt;script</td>"), "the stream name is text");

    // Connections: the client, its name shown as text.
    let page = browse(chromium, &format!("{base}#connections"), None).await;
    let connz = get_json(http, "/connz").await;
    let conn = &connz["connections"][0];
    let row = row_with(&rows(&page, "t-conns"), "name", EVIL_NAME);
    assert_eq!(cell(row, "cid"), shown(&conn["cid"]));
    assert_eq!(
        cell(row, "lib"),
        "rust ".to_string() + conn["version"].as_str().unwrap_or("")
    );
    assert!(
        !page.contains("id=\"pwned-conn\""),
        "markup in a name became an element"
    );

    // Consumers: pending and ack pending as /jsz has them; `slow` is flagged.
    let page = browse(chromium, &format!("{base}#consumers"), None).await;
    let jsz = get_json(http, "/jsz?consumers=1").await;
    let table = rows(&page, "t-consumers");
    let orders = details_of(&jsz, "ORDERS");
    let consumers = orders["consumer_detail"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 2);
    for consumer in consumers {
        let name = consumer["name"].as_str().expect("name");
        let row = row_with(&table, "name", name);
        for key in ["num_pending", "num_ack_pending", "num_redelivered"] {
            assert_eq!(cell(row, key), shown(&consumer[key]), "{name} {key}");
        }
        let state = if name == "slow" { "falling behind" } else { "" };
        assert_eq!(cell(row, "behind"), state, "{name}");
    }
    assert_eq!(
        cell(row_with(&table, "name", "worker"), "num_ack_pending"),
        "6"
    );

    // The message browser: markup in a payload is text, binary is hex, headers shown.
    let page = browse(
        chromium,
        &format!("{base}#messages?stream=%3Cscript&seq=1"),
        None,
    )
    .await;
    let table = rows(&page, "t-msgs");
    let row = row_with(&table, "subject", "evil.msg");
    assert!(
        cell_html(row, "payload").contains(&escape(EVIL_PAYLOAD)),
        "{row}"
    );
    assert!(
        !page.contains("id=\"pwned-msg\""),
        "markup in a payload became an element"
    );
    assert_eq!(
        text_by_id(&page, "msg-info").split(';').next(),
        Some("Stream <script: 1 messages, sequences 1 to 1")
    );
    assert!(
        page.contains("<title>rill console</title>"),
        "a script in the payload ran"
    );
    let page = browse(chromium, &format!("{base}#messages?stream=BIN"), None).await;
    let table = rows(&page, "t-msgs");
    let raw = cell_html(row_with(&table, "subject", "bin.raw"), "payload");
    assert!(
        raw.contains("<pre>00 01 02 ff</pre>") && raw.contains(">hex<"),
        "{raw}"
    );
    let headers = cell_html(row_with(&table, "subject", "bin.raw"), "headers");
    assert!(
        headers.contains(&escape("X-Evil: <b id=pwned-hdr>bold</b>")),
        "{headers}"
    );
    assert!(
        !page.contains("id=\"pwned-hdr\""),
        "markup in a header became an element"
    );
    let big = cell_html(row_with(&table, "subject", "bin.big"), "payload");
    assert!(
        big.contains(&format!("<pre>{}</pre>", "y".repeat(2048))) && big.contains(">truncated<")
    );
    // By subject, from a sequence: only that subject's messages.
    let page = browse(
        chromium,
        &format!("{base}#messages?stream=ORDERS&subject=orders.2&seq=100"),
        None,
    )
    .await;
    let table = rows(&page, "t-msgs");
    assert_eq!(table.len(), 25, "one page");
    assert!(table.iter().all(|r| cell(r, "subject") == "orders.2"));
    assert_eq!(cell(table[0], "seq"), "103");

    let dir = screenshot_dir();
    for view in [
        "overview",
        "streams",
        "consumers",
        "connections",
        "messages?stream=BIN",
    ] {
        let path = dir.join(format!("{}.png", view.split('?').next().unwrap_or(view)));
        let _ = std::fs::remove_file(&path);
        browse(chromium, &format!("{base}#{view}"), Some(&path)).await;
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("{view} screenshot: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "{view} screenshot is a PNG");
    }
}

/// Makes the README's picture of the overview (`docs/console-overview.png`): an edge gateway with
/// JetStream limits, sensors publishing into a stream and a worker consuming it, seen by the page
/// for a minute while the traffic runs. Run it with
/// `cargo test -p rill-tests --test e2e console::readme_screenshot -- --ignored` (about a minute).
#[tokio::test]
#[ignore = "regenerates docs/console-overview.png"]
async fn readme_screenshot() {
    let chromium = chromium().expect("the screenshot needs chromium-headless-shell");
    let config = "server_name: edge-gateway-1\nmax_connections: 1000\n\
                  jetstream { max_memory_store: 256MB, max_file_store: 2GB }\n";
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        config: Some(config.into()),
        ..ServerOpts::default()
    })
    .await;
    let client = server.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let sensors = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "SENSORS".into(),
            subjects: vec!["sensors.>".into()],
            ..Default::default()
        })
        .await
        .expect("SENSORS");
    let worker = sensors
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("worker".into()),
            ..Default::default()
        })
        .await
        .expect("worker");
    let traffic = tokio::spawn(async move {
        let mut work = worker.messages().await.expect("worker messages");
        for i in 0u64.. {
            let burst = 5 + (i * 7919 % 13);
            for n in 0..burst {
                let subject = format!("sensors.line{}.temp", n % 4);
                let ack = js.publish(subject, format!("{}", 20 + n).into()).await;
                ack.expect("publish").await.expect("stored");
            }
            for _ in 0..burst / 2 {
                if let Ok(Some(Ok(msg))) =
                    tokio::time::timeout(Duration::from_millis(50), work.next()).await
                {
                    msg.ack().await.expect("ack");
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // The page's clock is virtual (it runs ahead whenever the page waits for nothing): a slow
    // path to the monitoring port makes each poll take real time, so the charts show real rates.
    let http =
        rill_tests::proxy::FaultProxy::start(([127, 0, 0, 1], server.monitoring_port()).into())
            .await;
    http.set_delay(Duration::from_millis(500));
    let shot = screenshot_dir().join("readme-overview.png");
    let url = format!("http://127.0.0.1:{}/#overview", http.port());
    let page = browse_for(chromium, &url, Some(&shot), 60_000).await;
    traffic.abort();
    drop(page);
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let readme_png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console-overview.png");
    std::fs::write(&readme_png, png).expect("write docs/console-overview.png");
}

#[tokio::test]
async fn http_console_false_leaves_the_plain_index_and_no_console() {
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        config: Some("http_console: false\n".into()),
        ..ServerOpts::default()
    })
    .await;
    let http = server.monitoring_port();
    let (status, index) = get(http, "/").await;
    assert_eq!(status, 200);
    assert!(index.contains("<a href=\"/varz\">"), "{index}");
    assert!(!index.contains("console.js"), "{index}");
    for path in ["/console/console.js", "/console/api/msgs?stream=S"] {
        assert_eq!(get(http, path).await.0, 404, "{path}");
    }
    // The JSON endpoints are still there.
    assert_eq!(get_json(http, "/varz").await["connections"], 0);
    // And on by default: the console page.
    let on = TestServer::start_with(ServerOpts {
        monitoring: true,
        ..ServerOpts::default()
    })
    .await;
    let (status, page) = get(on.monitoring_port(), "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/console/console.js\" defer></script>"));
}

/// The console is served where the monitoring listener is bound and nowhere else: with
/// `http: "127.0.0.2:-1"` it answers on 127.0.0.2 and 127.0.0.1 has no listener on that port.
#[tokio::test]
async fn the_console_follows_the_monitoring_host_binding() {
    let server = TestServer::start_with(ServerOpts {
        config: Some("http: \"127.0.0.2:-1\"\n".into()),
        ..ServerOpts::default()
    })
    .await;
    let http = server.monitoring_port();
    let (status, page) = get_at("127.0.0.2", http, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("console.js"), "{page}");
    let (status, script) = get_at("127.0.0.2", http, "/console/console.js").await;
    assert_eq!(status, 200, "{script}");
    assert_eq!(
        serde_json::from_str::<Value>(&get_at("127.0.0.2", http, "/varz").await.1).expect("varz")["http_host"],
        "127.0.0.2"
    );
    let other = tokio::net::TcpStream::connect(("127.0.0.1", http)).await;
    assert!(
        other.is_err(),
        "the console must not answer on 127.0.0.1:{http}"
    );
}

#[tokio::test]
async fn the_console_follows_https_port_and_its_tls() {
    let Some(chromium) = chromium() else {
        eprintln!("chromium not installed; skipping the console HTTPS test");
        return;
    };
    let certs = Certs::generate();
    let server = TestServer::start_with(ServerOpts {
        config: Some(format!("{}https_port: -1\n", certs.tls_block(""))),
        ..ServerOpts::default()
    })
    .await;
    let port = server.monitoring_port();
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    plain
        .write_all(b"GET /varz HTTP/1.0\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered");
    // Over TLS the console loads and reads the server's figures.
    let client = certs
        .client_opts()
        .connect(server.url())
        .await
        .expect("connect over TLS");
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "TLS".into(),
        subjects: vec!["tls.>".into()],
        ..Default::default()
    })
    .await
    .expect("stream");
    let url = format!("https://127.0.0.1:{port}/#overview");
    let profile = tempfile::tempdir().expect("profile dir");
    let out = tokio::process::Command::new(chromium)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([
            "--ignore-certificate-errors",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(&url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("chromium finished")
        .expect("run chromium");
    let page = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text_by_id(&page, "v-connections"), "1", "{page}");
    assert_eq!(text_by_id(&page, "v-js-streams"), "1");
}

#[tokio::test]
async fn http_and_https_ports_together_are_refused_as_by_nats_server() {
    let certs = Certs::generate();
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("both.conf");
    let text = format!(
        "{}port: -1\nhttp_port: -1\nhttps_port: -1\n",
        certs.tls_block("")
    );
    std::fs::write(&conf, text).expect("write config");
    for bin in [rill_server_bin(), rill_tests::nats_server_bin()] {
        let run = tokio::process::Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, run)
            .await
            .expect("exits")
            .expect("run");
        assert!(!out.status.success());
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("Can't start monitoring: can't specify both HTTP (")
                && log.contains(") and HTTPs ("),
            "{}: {log}",
            bin.display()
        );
    }
}

/// The attribute `name` of the element with `id`.
fn attr(dom: &str, id: &str, name: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let tag_start = dom[..start].rfind('<').expect("tag start");
    let tag = &dom[tag_start..start + dom[start..].find('>').expect("tag end")];
    let marker = format!(" {name}=\"");
    let at = tag
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} on #{id}: {tag}"))
        + marker.len();
    tag[at..at + tag[at..].find('"').expect("attribute end")].to_string()
}

/// Makes one slow consumer: a raw client subscribes to `flood` and never reads while
/// 12 MiB are published to it (past `max_pending`); returns when `/varz` counts it.
async fn make_slow_consumer(server: &TestServer) {
    let mut stuck = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    stuck
        .write_all(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n")
        .await
        .expect("write");
    let publisher = server.client().await;
    rill_tests::sync(&publisher).await;
    let payload = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..200 {
        publisher
            .publish("flood", payload.clone())
            .await
            .expect("pub");
    }
    publisher.flush().await.expect("flush");
    let http = server.monitoring_port();
    rill_tests::check_for(WAIT, || async move {
        get_json(http, "/varz").await["slow_consumers"]
            .as_u64()
            .is_some_and(|n| n > 0)
    })
    .await;
    drop(stuck);
}

/// Waits until `/jsz` shows stream `name` holding `messages` with every origin's lag at 0.
async fn copied(http: u16, name: &str, messages: u64) {
    rill_tests::check_for(WAIT, || async move {
        let jsz = get_json(http, "/jsz?streams=1").await;
        let d = details_of(&jsz, name);
        let origins: Vec<&Value> = d["mirror"]
            .as_object()
            .map(|_| &d["mirror"])
            .into_iter()
            .chain(d["sources"].as_array().into_iter().flatten())
            .collect();
        d["state"]["messages"] == messages
            && !origins.is_empty()
            && origins.iter().all(|o| o["lag"] == 0)
    })
    .await;
}

#[tokio::test]
async fn the_overview_shows_usage_against_limits_and_slow_consumers_and_streams_their_lag() {
    let Some(chromium) = chromium() else {
        eprintln!("chromium not installed; skipping the console limits test");
        return;
    };
    let config = "max_connections: 50\nmax_pending: 1MB\nwrite_deadline: \"2s\"\n\
                  jetstream { max_memory_store: 64MB, max_file_store: 1GB }\n";
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        config: Some(config.into()),
        ..ServerOpts::default()
    })
    .await;
    let http = server.monitoring_port();
    make_slow_consumer(&server).await;
    let client = server.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let stream = |name: &str| async_nats::jetstream::stream::Config {
        name: name.into(),
        ..Default::default()
    };
    js.create_stream(async_nats::jetstream::stream::Config {
        subjects: vec!["src.>".into()],
        ..stream("SRC")
    })
    .await
    .expect("SRC");
    for i in 0..50 {
        js.publish(format!("src.{i}"), "reading".into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    js.create_stream(async_nats::jetstream::stream::Config {
        mirror: Some(async_nats::jetstream::stream::Source {
            name: "SRC".into(),
            ..Default::default()
        }),
        ..stream("COPY")
    })
    .await
    .expect("COPY mirrors SRC");
    js.create_stream(async_nats::jetstream::stream::Config {
        storage: async_nats::jetstream::stream::StorageType::Memory,
        sources: Some(vec![async_nats::jetstream::stream::Source {
            name: "SRC".into(),
            ..Default::default()
        }]),
        ..stream("MEM")
    })
    .await
    .expect("MEM sources SRC");
    copied(http, "COPY", 50).await;
    copied(http, "MEM", 50).await;

    // Overview: connections against max_connections, the slow consumer, store use
    // against the JetStream limits.
    let page = browse(
        chromium,
        &format!("http://127.0.0.1:{http}/#overview"),
        None,
    )
    .await;
    let varz = get_json(http, "/varz").await;
    let jsz = get_json(http, "/jsz").await;
    assert_eq!(
        text_by_id(&page, "v-slow_consumers"),
        shown(&varz["slow_consumers"])
    );
    let slow = &varz["slow_consumer_stats"];
    assert_eq!(
        text_by_id(&page, "v-slow-detail"),
        format!(
            "clients {}, routes {}, leafs {}",
            slow["clients"], slow["routes"], slow["leafs"]
        )
    );
    assert!(
        page.contains("<div class=\"card warn\" id=\"card-slow\">"),
        "slow consumers are highlighted"
    );
    assert_eq!(
        attr(&page, "m-connections", "value"),
        varz["connections"].to_string()
    );
    assert_eq!(attr(&page, "m-connections", "max"), "50");
    assert_eq!(text_by_id(&page, "v-connections-max"), "of 50 allowed");
    assert!(jsz["memory"].as_u64().is_some_and(|n| n > 0), "{jsz}");
    for (key, max) in [("memory", 64u64 << 20), ("storage", 1 << 30)] {
        let meter = format!("m-js-{key}");
        assert_eq!(attr(&page, &meter, "value"), jsz[key].to_string(), "{key}");
        assert_eq!(attr(&page, &meter, "max"), max.to_string(), "{key}");
        assert_eq!(jsz["config"][format!("max_{key}")], max, "{key}");
    }

    // Streams: the mirror's and the source's lag as /jsz has them, replicas.
    let page = browse(chromium, &format!("http://127.0.0.1:{http}/#streams"), None).await;
    let jsz = get_json(http, "/jsz?streams=1").await;
    let table = rows(&page, "t-streams");
    let copy = details_of(&jsz, "COPY");
    assert_eq!(
        cell(row_with(&table, "name", "COPY"), "lag"),
        format!("mirror SRC: {}", copy["mirror"]["lag"])
    );
    let mem = details_of(&jsz, "MEM");
    assert_eq!(
        cell(row_with(&table, "name", "MEM"), "lag"),
        format!("SRC: {}", mem["sources"][0]["lag"])
    );
    assert_eq!(cell(row_with(&table, "name", "SRC"), "lag"), "");
    for name in ["SRC", "COPY", "MEM"] {
        assert_eq!(cell(row_with(&table, "name", name), "replicas"), "R1");
    }
    assert_eq!(cell(row_with(&table, "name", "MEM"), "storage"), "memory");
}

/// `http_req_stats` in `/varz` as nats-server keeps it: a count per path asked for,
/// the `/varz` request that reads it included.
#[tokio::test]
async fn http_req_stats_count_requests_as_nats_server_does() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = TestServer::start_with(ServerOpts {
            kind,
            monitoring: true,
            ..ServerOpts::default()
        })
        .await;
        let http = server.monitoring_port();
        assert_eq!(get(http, "/").await.0, 200);
        assert_eq!(get(http, "/connz").await.0, 200);
        assert_eq!(get(http, "/nothing-here").await.0, 404);
        let stats = &get_json(http, "/varz").await["http_req_stats"];
        assert_eq!(
            stats,
            &json!({ "/": 1, "/connz": 1, "/varz": 1 }),
            "{kind:?}"
        );
    }
}

/// The console costs nothing while no page is open: the page polls (one round of
/// `/varz` and `/jsz` per two seconds of page time), the server never does, so once the
/// browser is gone the request counts stand still.
#[tokio::test]
async fn the_console_polls_only_while_a_page_is_open() {
    let Some(chromium) = chromium() else {
        eprintln!("chromium not installed; skipping the console polling test");
        return;
    };
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        ..ServerOpts::default()
    })
    .await;
    let http = server.monitoring_port();
    // 3 s of page time (--virtual-time-budget): the first round, and one after 2 s.
    browse(
        chromium,
        &format!("http://127.0.0.1:{http}/#overview"),
        None,
    )
    .await;
    let count = |stats: &Value, path: &str| stats[path].as_u64().unwrap_or(0);
    let open = get_json(http, "/varz").await["http_req_stats"].clone();
    assert_eq!(count(&open, "/"), 1, "{open}");
    assert_eq!(count(&open, "/console/console.js"), 1, "{open}");
    let rounds = count(&open, "/jsz");
    assert!((1..=3).contains(&rounds), "{rounds} rounds in 3 s: {open}");
    assert_eq!(
        count(&open, "/varz"),
        rounds + 1,
        "the page's and ours: {open}"
    );
    assert_eq!(
        count(&open, "/connz"),
        0,
        "only the connections view reads /connz"
    );
    // No page open: nothing to wait for, so wait two polling periods and see that
    // nothing came.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let closed = get_json(http, "/varz").await["http_req_stats"].clone();
    assert_eq!(count(&closed, "/jsz"), rounds, "{closed}");
    assert_eq!(count(&closed, "/varz"), rounds + 2, "only ours: {closed}");
}
