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

use rill_tests::{ServerOpts, TestServer, target_dir};
use serde_json::{Value, json};

use crate::monitoring::get_json;
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
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=3000")
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
