//! Authentication, permissions and accounts: real async-nats clients against a configured
//! server, and byte-level `-ERR` checks run against rill and nats-server side by side.

use std::time::Duration;

use async_nats::ConnectOptions;
use futures::StreamExt;
use rill_tests::raw::Conn;
use rill_tests::{ServerKind, ServerOpts, TestServer, sync};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

async fn server(kind: ServerKind, config: &str) -> TestServer {
    TestServer::with_config(kind, config).await
}

async fn connect(server: &TestServer, opts: ConnectOptions) -> async_nats::Client {
    opts.connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.logs()))
}

async fn refused(server: &TestServer, opts: ConnectOptions) -> bool {
    let opts = opts
        .max_reconnects(Some(0))
        .connection_timeout(Duration::from_secs(2));
    match tokio::time::timeout(WAIT, opts.connect(server.url())).await {
        Ok(Ok(client)) => tokio::time::timeout(WAIT, client.flush())
            .await
            .is_ok_and(|r| r.is_err()),
        Ok(Err(_)) | Err(_) => true,
    }
}

/// Sends `lines` on a raw connection; returns what came back (PONG and PING dropped) and
/// whether the server closed the connection.
async fn raw(server: &TestServer, lines: &str) -> String {
    let mut conn = Conn::connect(server.port()).await;
    conn.send(lines.as_bytes()).await;
    let got = conn.read_until(QUIET).await;
    let closed = conn.is_closed_within(QUIET).await;
    let text = String::from_utf8_lossy(&got)
        .split("\r\n")
        .filter(|l| !l.is_empty() && *l != "PONG" && *l != "PING")
        .collect::<Vec<_>>()
        .join(" | ");
    match text.is_empty() {
        true => format!("closed={closed}"),
        false => format!("{text} | closed={closed}"),
    }
}

/// Runs the same raw exchanges against rill and nats-server and asserts equal answers.
async fn same_as_nats(config: &str, cases: &[&str]) -> Vec<String> {
    let rill = server(ServerKind::Rill, config).await;
    let nats = server(ServerKind::Nats, config).await;
    let mut out = Vec::new();
    for case in cases {
        let ours = raw(&rill, case).await;
        let theirs = raw(&nats, case).await;
        assert_eq!(ours, theirs, "case {case:?}\n{}", rill.logs());
        out.push(ours);
    }
    out
}

const USERS: &str = r#"
authorization {
  users: [
    { user: alice, password: secret }
    { user: bob, password: "$2a$04$cnNcQpCGi7POonE6HrpH7u8Pieu3CglLEyvbyRPJhKKBqQ3B0q.X." }
    { user: limited, password: pw, permissions: {
        publish: { allow: ["orders.>", "_INBOX.>", "_rill_sync.>"], deny: ["orders.secret"] }
        subscribe: { allow: ["orders.>", "jobs.> workers", "_INBOX.>"], deny: ["orders.secret"] }
    } }
    { user: responder, password: pw, permissions: {
        publish: "_rill_sync.>", subscribe: ["svc.>", "_INBOX.>"], allow_responses: true
    } }
  ]
}
"#;

#[tokio::test]
async fn user_password_and_bcrypt_users_connect_and_bad_ones_are_refused() {
    let server = server(ServerKind::Rill, USERS).await;
    let alice = connect(
        &server,
        ConnectOptions::with_user_and_password("alice".into(), "secret".into()),
    )
    .await;
    sync(&alice).await;
    // bcrypt hash of "bob-pass" at cost 4.
    let bob = connect(
        &server,
        ConnectOptions::with_user_and_password("bob".into(), "bob-pass".into()),
    )
    .await;
    sync(&bob).await;
    assert!(
        refused(
            &server,
            ConnectOptions::with_user_and_password("alice".into(), "wrong".into())
        )
        .await
    );
    assert!(
        refused(
            &server,
            ConnectOptions::with_user_and_password("mallory".into(), "secret".into())
        )
        .await
    );
    assert!(refused(&server, ConnectOptions::new()).await);
}

#[tokio::test]
async fn bad_credentials_and_auth_timeout_match_nats_server() {
    let config = USERS.replacen("authorization {", "authorization {\n  timeout: 1", 1);
    let got = same_as_nats(
        &config,
        &[
            "CONNECT {\"user\":\"alice\",\"pass\":\"nope\"}\r\nPING\r\n",
            "CONNECT {\"user\":\"nobody\",\"pass\":\"secret\"}\r\nPING\r\n",
            "CONNECT {}\r\nPING\r\n",
            "PING\r\n",
            "CONNECT {\"user\":\"alice\",\"pass\":\"secret\"}\r\nPING\r\n",
        ],
    )
    .await;
    for refused in &got[..4] {
        assert_eq!(refused, "-ERR 'Authorization Violation' | closed=true");
    }
    assert_eq!(got[4], "+OK | closed=false");

    // A client that never sends CONNECT.
    let rill = server(ServerKind::Rill, &config).await;
    let mut conn = Conn::connect(rill.port()).await;
    let got = conn
        .read_until_contains(b"Authentication Timeout", WAIT)
        .await;
    assert!(
        String::from_utf8_lossy(&got).contains("-ERR 'Authentication Timeout'"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(conn.is_closed_within(WAIT).await);
}

#[tokio::test]
async fn token_authentication() {
    let server = server(ServerKind::Rill, "authorization { token: s3cr3t }").await;
    let client = connect(&server, ConnectOptions::with_token("s3cr3t".into())).await;
    sync(&client).await;
    assert!(refused(&server, ConnectOptions::with_token("other".into())).await);
    assert!(refused(&server, ConnectOptions::new()).await);
}

#[tokio::test]
async fn single_user_from_flags() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        args: vec!["--user".into(), "u".into(), "--pass".into(), "p".into()],
        ..ServerOpts::default()
    })
    .await;
    let client = connect(
        &server,
        ConnectOptions::with_user_and_password("u".into(), "p".into()),
    )
    .await;
    sync(&client).await;
    assert!(
        refused(
            &server,
            ConnectOptions::with_user_and_password("u".into(), "x".into())
        )
        .await
    );
}

#[tokio::test]
async fn nkey_users_sign_the_nonce() {
    let kp = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let config = format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}",
        kp.public_key()
    );
    let server = server(ServerKind::Rill, &config).await;
    let mut conn = Conn::connect(server.port()).await;
    assert!(conn.info()["nonce"].is_string(), "{}", conn.info());
    conn.send(b"PING\r\n").await;

    let seed = kp.seed().expect("seed");
    let client = connect(&server, ConnectOptions::with_nkey(seed)).await;
    sync(&client).await;
    let wrong = other.seed().expect("seed");
    assert!(refused(&server, ConnectOptions::with_nkey(wrong)).await);
}

#[tokio::test]
async fn permission_violations_match_nats_server_and_keep_the_connection() {
    let login = "CONNECT {\"user\":\"limited\",\"pass\":\"pw\",\"verbose\":false}\r\n";
    let cases = [
        format!("{login}PUB billing.x 1\r\na\r\nPING\r\n"),
        format!("{login}PUB orders.secret 1\r\na\r\nPING\r\n"),
        format!("{login}SUB billing.> 1\r\nPING\r\n"),
        format!("{login}SUB jobs.a 2\r\nPING\r\n"),
        format!("{login}SUB jobs.a others 3\r\nPING\r\n"),
        format!("{login}SUB jobs.a workers 4\r\nPUB orders.new 1\r\na\r\nPING\r\n"),
    ];
    let cases: Vec<&str> = cases.iter().map(String::as_str).collect();
    let got = same_as_nats(USERS, &cases).await;
    assert_eq!(
        got[0],
        "-ERR 'Permissions Violation for Publish to \"billing.x\"' | closed=false"
    );
    assert_eq!(
        got[4],
        "-ERR 'Permissions Violation for Subscription to \"jobs.a\" using queue \"others\"' | closed=false"
    );
    assert_eq!(got[5], "closed=false");
}

#[tokio::test]
async fn subscribe_deny_filters_wildcard_deliveries() {
    let server = server(ServerKind::Rill, USERS).await;
    let admin = connect(
        &server,
        ConnectOptions::with_user_and_password("alice".into(), "secret".into()),
    )
    .await;
    let limited = connect(
        &server,
        ConnectOptions::with_user_and_password("limited".into(), "pw".into()),
    )
    .await;
    let mut sub = limited.subscribe("orders.*").await.expect("sub");
    sync(&limited).await;
    admin
        .publish("orders.secret", "hidden".into())
        .await
        .expect("pub");
    admin
        .publish("orders.new", "seen".into())
        .await
        .expect("pub");
    admin.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(&msg.payload[..], b"seen");
}

#[tokio::test]
async fn allow_responses_lets_a_responder_answer_only_requests() {
    let server = server(ServerKind::Rill, USERS).await;
    let responder = connect(
        &server,
        ConnectOptions::with_user_and_password("responder".into(), "pw".into()),
    )
    .await;
    let mut requests = responder.subscribe("svc.echo").await.expect("sub");
    sync(&responder).await;
    let task = tokio::spawn(async move {
        let req = requests.next().await.expect("request");
        let reply = req.reply.expect("reply subject");
        responder
            .publish(reply.clone(), req.payload)
            .await
            .expect("respond");
        // A second reply to the same request is beyond `max: 1`, and other subjects are denied.
        responder.publish(reply, "again".into()).await.expect("pub");
        responder
            .publish("svc.other", "x".into())
            .await
            .expect("pub");
        responder.flush().await.expect("flush");
    });
    let client = connect(
        &server,
        ConnectOptions::with_user_and_password("alice".into(), "secret".into()),
    )
    .await;
    let mut spy = client.subscribe("svc.other").await.expect("sub");
    sync(&client).await;
    let answer = tokio::time::timeout(WAIT, client.request("svc.echo", "ping".into()))
        .await
        .expect("in time")
        .expect("answer");
    assert_eq!(&answer.payload[..], b"ping");
    task.await.expect("responder");
    let leaked = tokio::time::timeout(QUIET, spy.next()).await;
    assert!(leaked.is_err(), "denied publish was delivered");
}

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [ { user: a, password: a } ]
    exports: [ { stream: "telemetry.>" }, { stream: "alerts.fire" }, { service: "time.now" } ]
  }
  B: {
    users: [ { user: b, password: b } ]
    imports: [
      { stream: { account: A, subject: "telemetry.>" }, prefix: "fromA" }
      { stream: { account: A, subject: "alerts.fire" }, prefix: "fromA" }
      { service: { account: A, subject: "time.now" }, to: "a.time" }
    ]
  }
  C: { users: [ { user: c, password: c } ] }
}
"#;

#[tokio::test]
async fn accounts_are_isolated_and_imports_connect_them() {
    let server = server(ServerKind::Rill, ACCOUNTS).await;
    let login = |u: &str| ConnectOptions::with_user_and_password(u.into(), u.into());
    let a = connect(&server, login("a")).await;
    let b = connect(&server, login("b")).await;
    let c = connect(&server, login("c")).await;

    let mut b_plain = b.subscribe("telemetry.>").await.expect("sub");
    let mut b_imported = b.subscribe("fromA.telemetry.>").await.expect("sub");
    let mut b_alerts = b.subscribe("fromA.alerts.fire").await.expect("sub");
    let mut c_all = c.subscribe("telemetry.>").await.expect("sub");
    let mut a_service = a.subscribe("time.now").await.expect("sub");
    sync(&b).await;
    sync(&c).await;
    sync(&a).await;

    a.publish("telemetry.dev1", "21.5".into())
        .await
        .expect("pub");
    a.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, b_imported.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(msg.subject.as_str(), "fromA.telemetry.dev1");
    assert_eq!(&msg.payload[..], b"21.5");
    // A literal import with a prefix keeps its subject under the prefix.
    a.publish("alerts.fire", "hot".into()).await.expect("pub");
    a.flush().await.expect("flush");
    let alert = tokio::time::timeout(WAIT, b_alerts.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(alert.subject.as_str(), "fromA.alerts.fire");

    tokio::spawn(async move {
        if let Some(req) = a_service.next().await
            && let Some(reply) = req.reply
        {
            let _ = a.publish(reply, "noon".into()).await;
            let _ = a.flush().await;
        }
    });
    let answer = tokio::time::timeout(WAIT, b.request("a.time", "".into()))
        .await
        .expect("in time")
        .expect("service answer");
    assert_eq!(&answer.payload[..], b"noon");

    // Same subject published in B does not reach A's subscribers, and C sees nothing at all.
    assert!(tokio::time::timeout(QUIET, b_plain.next()).await.is_err());
    assert!(tokio::time::timeout(QUIET, c_all.next()).await.is_err());
}

#[tokio::test]
async fn no_auth_user_places_anonymous_clients_in_its_account() {
    let config = format!("{ACCOUNTS}\nno_auth_user: c\n");
    let server = server(ServerKind::Rill, &config).await;
    let c = connect(
        &server,
        ConnectOptions::with_user_and_password("c".into(), "c".into()),
    )
    .await;
    let a = connect(
        &server,
        ConnectOptions::with_user_and_password("a".into(), "a".into()),
    )
    .await;
    let mut in_c = c.subscribe("hello").await.expect("sub");
    let mut in_a = a.subscribe("hello").await.expect("sub");
    sync(&c).await;
    sync(&a).await;
    let anonymous = connect(&server, ConnectOptions::new()).await;
    anonymous
        .publish("hello", "anon".into())
        .await
        .expect("pub");
    anonymous.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, in_c.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(&msg.payload[..], b"anon");
    assert!(tokio::time::timeout(QUIET, in_a.next()).await.is_err());
}

/// Clients sending wrong passwords for a bcrypt user, many at once, are each refused as
/// by nats-server, while another client keeps its round trips and the right password
/// still logs in (rill checks bcrypt on the blocking pool, a few at a time, so the
/// attack does not hold the async workers).
#[tokio::test]
async fn bcrypt_attack_is_refused_while_others_are_served() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = server(kind, USERS).await;
        let alice = connect(
            &server,
            ConnectOptions::with_user_and_password("alice".into(), "secret".into()),
        )
        .await;
        let attack = (0..8).map(|_| {
            let port = server.port();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..3 {
                    let mut conn = Conn::connect(port).await;
                    conn.send(b"CONNECT {\"user\":\"bob\",\"pass\":\"wrong\"}\r\nPING\r\n")
                        .await;
                    let got = conn.read_until(QUIET).await;
                    answers.push(String::from_utf8_lossy(&got).contains("Authorization Violation"));
                }
                answers
            })
        });
        let attackers: Vec<_> = attack.collect();
        for _ in 0..20 {
            sync(&alice).await;
        }
        for a in attackers {
            let answers = a.await.expect("attacker");
            assert_eq!(answers, [true; 3], "{kind:?}: every wrong password refused");
        }
        let bob = connect(
            &server,
            ConnectOptions::with_user_and_password("bob".into(), "bob-pass".into()),
        )
        .await;
        sync(&bob).await;
    }
}
