//! Reloading users, permissions and accounts (config file rewritten + SIGHUP) while clients
//! are connected. Every scenario runs against rill and nats-server alike.
//!
//! Observed on nats-server 2.15.1, and required of rill:
//! - a subscription the new rules refuse is removed, with
//!   `-ERR 'Permissions Violation for Subscription to "bar.x" (sid "1")'`; the next PUB is
//!   checked against the new publish rules; the connection stays open;
//! - a removed user, or one moved to another account, is disconnected without a word;
//! - a user whose password changed gets `-ERR 'Authorization Violation'` and is disconnected;
//! - an import added or removed starts or stops carrying messages to running subscribers.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::raw::Conn;
use rill_tests::{ServerKind, TestServer, check_for, sync};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

async fn server(kind: ServerKind, config: &str) -> TestServer {
    TestServer::with_config(kind, config).await
}

/// Rewrites the config file, sends SIGHUP and waits for the reload to be logged.
pub(crate) async fn reload(server: &TestServer, config: &str) {
    const DONE: &str = "Reloaded server configuration";
    let before = server.logs().matches(DONE).count();
    let conf = server.store_dir().join("server.conf");
    std::fs::write(&conf, config).expect("rewrite config");
    let pid = server.pid().expect("server pid").to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status();
    assert!(status.is_ok_and(|s| s.success()), "send SIGHUP");
    check_for(WAIT, || async {
        server.logs().matches(DONE).count() > before
    })
    .await;
}

/// A raw connection logged in as `user`, past its first PONG.
async fn login(server: &TestServer, user: &str, pass: &str) -> Conn {
    let mut conn = Conn::connect(server.port()).await;
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
    );
    conn.send(connect.as_bytes()).await;
    conn.read_until_contains(b"PONG\r\n", WAIT).await;
    conn
}

/// What arrives within [`QUIET`] (server PINGs and PONGs dropped, lines sorted) and whether
/// the server then closed the connection.
async fn lines(conn: &mut Conn) -> (Vec<String>, bool) {
    let got = conn.read_until(QUIET).await;
    let closed = conn.is_closed_within(Duration::from_millis(100)).await;
    let mut lines: Vec<String> = String::from_utf8_lossy(&got)
        .split("\r\n")
        .filter(|l| !l.is_empty() && *l != "PING" && *l != "PONG")
        .map(str::to_string)
        .collect();
    lines.sort();
    (lines, closed)
}

const PERMS_BEFORE: &str = r#"
authorization { users: [
  { user: u, password: p, permissions: {
      publish: { allow: ["foo.>", "bar.>"] }
      subscribe: { allow: ["foo.>", "bar.>", "jobs.> workers"] } } }
  { user: admin, password: p }
]}
"#;

const PERMS_AFTER: &str = r#"
authorization { users: [
  { user: u, password: p, permissions: {
      publish: { allow: ["foo.>"] }
      subscribe: { allow: ["foo.>"], deny: ["foo.secret"] } } }
  { user: admin, password: p }
]}
"#;

#[tokio::test]
async fn reload_removes_subscriptions_the_new_permissions_refuse() {
    for kind in KINDS {
        let server = server(kind, PERMS_BEFORE).await;
        let mut u = login(&server, "u", "p").await;
        let mut admin = login(&server, "admin", "p").await;
        u.send(b"SUB bar.x 1\r\nSUB foo.> 2\r\nSUB jobs.1 workers 3\r\nPING\r\n")
            .await;
        u.read_until_contains(b"PONG\r\n", WAIT).await;
        reload(&server, PERMS_AFTER).await;
        let want = vec![
            r#"-ERR 'Permissions Violation for Subscription to "bar.x" (sid "1")'"#.to_string(),
            r#"-ERR 'Permissions Violation for Subscription to "jobs.1" using queue "workers" (sid "3")'"#
                .to_string(),
        ];
        assert_eq!(
            lines(&mut u).await,
            (want, false),
            "{kind:?}\n{}",
            server.logs()
        );
        u.send(b"PUB bar.x 2\r\nhi\r\nPUB foo.ok 2\r\nhi\r\n").await;
        admin
            .send(b"PUB bar.x 1\r\n1\r\nPUB jobs.1 1\r\n2\r\nPUB foo.secret 1\r\n3\r\nPUB foo.x 1\r\n4\r\n")
            .await;
        let want = vec![
            r#"-ERR 'Permissions Violation for Publish to "bar.x"'"#.to_string(),
            "4".to_string(),
            "MSG foo.ok 2 2".to_string(),
            "MSG foo.x 2 1".to_string(),
            "hi".to_string(),
        ];
        assert_eq!(
            lines(&mut u).await,
            (want, false),
            "{kind:?}\n{}",
            server.logs()
        );
        assert!(
            server
                .logs()
                .contains(r#"Removed sub "bar.x" (sid "1") for User "u" - not authorized"#),
            "{kind:?}\n{}",
            server.logs()
        );
    }
}

const USERS_BEFORE: &str = r#"
accounts {
  A: { users: [
    { user: stays, password: p }
    { user: gone, password: p }
    { user: mover, password: p }
    { user: rekeyed, password: old }
  ] }
  B: { users: [{ user: b, password: p }] }
}
"#;

const USERS_AFTER: &str = r#"
accounts {
  A: { users: [
    { user: stays, password: p }
    { user: rekeyed, password: new }
  ] }
  B: { users: [{ user: b, password: p }, { user: mover, password: p }] }
}
"#;

#[tokio::test]
async fn reload_disconnects_removed_moved_and_rekeyed_users() {
    for kind in KINDS {
        let server = server(kind, USERS_BEFORE).await;
        let mut stays = login(&server, "stays", "p").await;
        let mut gone = login(&server, "gone", "p").await;
        let mut mover = login(&server, "mover", "p").await;
        let mut rekeyed = login(&server, "rekeyed", "old").await;
        reload(&server, USERS_AFTER).await;
        let logs = || format!("{kind:?}\n{}", server.logs());
        assert_eq!(lines(&mut gone).await, (vec![], true), "{}", logs());
        assert_eq!(lines(&mut mover).await, (vec![], true), "{}", logs());
        let violation = vec!["-ERR 'Authorization Violation'".to_string()];
        assert_eq!(lines(&mut rekeyed).await, (violation, true), "{}", logs());
        assert_eq!(lines(&mut stays).await, (vec![], false), "{}", logs());
        stays.send(b"PING\r\n").await;
        stays.read_until_contains(b"PONG\r\n", WAIT).await;
        assert!(
            server
                .logs()
                .contains(r#""A/user:rekeyed" - authentication error - User "rekeyed""#),
            "{}",
            logs()
        );
        // The moved user now logs in to its new account.
        login(&server, "mover", "p").await;
    }
}

const IMPORTS_BEFORE: &str = r#"
accounts {
  A: { users: [{ user: a, password: p }], exports: [{ stream: "ev.>" }, { service: "svc.a" }] }
  B: { users: [{ user: b, password: p }], imports: [{ stream: { account: A, subject: "ev.>" } }] }
  C: { users: [{ user: c, password: p }] }
}
"#;

const IMPORTS_AFTER: &str = r#"
accounts {
  A: { users: [{ user: a, password: p }], exports: [{ stream: "ev.>" }, { service: "svc.a" }] }
  B: { users: [{ user: b, password: p }] }
  C: { users: [{ user: c, password: p }], imports: [
    { stream: { account: A, subject: "ev.>" } }
    { service: { account: A, subject: "svc.a" } }
  ] }
}
"#;

async fn client(server: &TestServer, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), "p".into())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect {user}: {e}\n{}", server.logs()))
}

/// The next message on `sub` within `timeout`, if any.
async fn next(sub: &mut async_nats::Subscriber, timeout: Duration) -> Option<String> {
    let msg = tokio::time::timeout(timeout, sub.next()).await.ok()??;
    Some(String::from_utf8_lossy(&msg.payload).into_owned())
}

#[tokio::test]
async fn reload_rewires_imports_for_running_subscribers() {
    for kind in KINDS {
        let server = server(kind, IMPORTS_BEFORE).await;
        let (a, b, c) = (
            client(&server, "a").await,
            client(&server, "b").await,
            client(&server, "c").await,
        );
        let mut in_b = b.subscribe("ev.>").await.expect("sub b");
        let mut in_c = c.subscribe("ev.>").await.expect("sub c");
        let mut service = a.subscribe("svc.a").await.expect("sub svc");
        for client in [&a, &b, &c] {
            sync(client).await;
        }
        a.publish("ev.1", "one".into()).await.expect("pub");
        assert_eq!(
            next(&mut in_b, WAIT).await.as_deref(),
            Some("one"),
            "{kind:?}"
        );
        assert_eq!(next(&mut in_c, QUIET).await, None, "{kind:?}");
        assert!(c.request("svc.a", "q".into()).await.is_err(), "{kind:?}");

        reload(&server, IMPORTS_AFTER).await;
        a.publish("ev.2", "two".into()).await.expect("pub");
        assert_eq!(
            next(&mut in_c, WAIT).await.as_deref(),
            Some("two"),
            "{kind:?}"
        );
        assert_eq!(next(&mut in_b, QUIET).await, None, "{kind:?}");
        let responder = tokio::spawn(async move {
            if let Some(req) = service.next().await
                && let Some(reply) = req.reply
            {
                let _ = a.publish(reply, "answer".into()).await;
                let _ = a.flush().await;
            }
        });
        let reply = c.request("svc.a", "q".into()).await;
        let reply = reply.unwrap_or_else(|e| panic!("{kind:?}: request: {e}\n{}", server.logs()));
        assert_eq!(&reply.payload[..], b"answer", "{kind:?}");
        responder.await.expect("responder");
    }
}
