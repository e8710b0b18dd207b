//! A real browser as a WebSocket client: headless Chromium (Debian's
//! `chromium-headless-shell`, or the full `chromium`) loads a
//! small dashboard page served here (`browser/dashboard.html`), which connects to rill's
//! WebSocket listener with compression on and an origin allow-list, subscribes to sensor
//! readings, renders them, answers a request, and reports back over NATS. Skipped, with
//! one line, when neither is installed.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, sync};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::websocket::{ws_server, ws_url};

const PAGE: &str = include_str!("browser/dashboard.html");
const WAIT: Duration = Duration::from_secs(30);

/// Flags for a quiet, throwaway headless Chromium (add a fresh `--user-data-dir`).
pub(crate) const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
];

/// The installed headless Chromium binary, if any (shared with the console test).
pub(crate) fn chromium() -> Option<&'static str> {
    // The headless shell first: it is all the test needs, and far lighter to install.
    ["chromium-headless-shell", "chromium", "chromium-browser"]
        .into_iter()
        .find(|bin| {
            std::process::Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Serves the page at `/` to every request until the task is dropped.
async fn serve_page(listener: TcpListener) {
    while let Ok((mut conn, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut req = vec![0u8; 4096];
            let _ = conn.read(&mut req).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                PAGE.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(PAGE.as_bytes()).await;
        });
    }
}

#[tokio::test]
async fn a_browser_dashboard_subscribes_renders_and_answers_over_websocket() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "chromium not installed (apt-get install --no-install-recommends \
             chromium-headless-shell); skipping the browser test"
        );
        return;
    };
    let web = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind page server");
    let origin = format!(
        "http://127.0.0.1:{}",
        web.local_addr().expect("addr").port()
    );
    let page_server = tokio::spawn(serve_page(web));
    let block =
        format!("port: -1\nno_tls: true\ncompression: true\nallowed_origins: [\"{origin}\"]");
    let server = ws_server(ServerKind::Rill, &block, "").await;
    let client = server.client().await;
    let mut events = client.subscribe("dashboard.>").await.expect("subscribe");
    sync(&client).await;

    let profile = tempfile::tempdir().expect("profile dir");
    let page = format!("{origin}/?ws={}", ws_url(&server));
    let mut browser = tokio::process::Command::new(chromium)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&page)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Debian's chromium-headless-shell is a script that runs the browser as its child: the
        // browser gets a process group of its own, so that the whole of it can be stopped.
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let _stop = StopGroup(browser.id());

    let mut next = async || {
        let msg = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap_or_else(|_| panic!("no word from the page\n{}", server.logs()))
            .expect("subscription open");
        (
            msg.subject.to_string(),
            String::from_utf8_lossy(&msg.payload).into_owned(),
        )
    };
    assert_eq!(next().await, ("dashboard.ready".into(), "ok".into()));
    for (sensor, value) in [("temp", "21.5"), ("humidity", "40"), ("temp", "22.0")] {
        client
            .publish(format!("sensors.{sensor}"), value.into())
            .await
            .expect("publish reading");
    }
    let (subject, report) = next().await;
    assert_eq!(subject, "dashboard.result");
    let report: Value = serde_json::from_str(&report).expect("report json");
    assert_eq!(
        report["readings"],
        serde_json::json!(["21.5", "40", "22.0"])
    );
    assert_eq!(report["rendered"], 3, "the page rendered each reading");
    // Chromium always offers permessage-deflate; the listener accepted it.
    let extensions = report["extensions"].as_str().unwrap_or_default();
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");

    let answer = tokio::time::timeout(WAIT, client.request("dashboard.ask", "".into()))
        .await
        .expect("answered in time")
        .expect("the page answers requests");
    assert_eq!(answer.payload, "seen 3");

    let _ = browser.kill().await;
    page_server.abort();
}

/// Kills a process group when dropped (also when the test fails half-way).
struct StopGroup(Option<u32>);

impl Drop for StopGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
        }
    }
}
