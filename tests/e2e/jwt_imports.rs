//! Exports and imports from account JWTs, run against rill and nats-server 2.15.1 side by
//! side (`resolver: MEMORY`, creds and activation tokens made in the test):
//! - a public stream export reaches an importer, under its `local_subject`;
//! - a private (`token_req`) export reaches only an importer whose activation token is
//!   signed by the exporter for it, and not expired; an expired, missing or misaddressed
//!   token imports nothing;
//! - service imports carry requests to the exporter and responses back: one response for
//!   the default `Singleton` response type, every response for `Stream`;
//! - imports follow claim updates: an exporter revoking an activation stops that import,
//!   an importer's new JWT drops and adds imports, without a restart;
//! - an activation that expires while the server runs stops its import.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::jwt::{Account, Operator, User, now};
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];
const WAIT: Duration = Duration::from_secs(5);

type Streams = futures::stream::SelectAll<async_nats::Subscriber>;

/// The operator and its accounts: SYS, the exporter EXP, the importers IMP and OTHER.
struct World {
    operator: Operator,
    sys: Account,
    exp: Account,
    imp: Account,
    other: Account,
}

impl World {
    fn new() -> Self {
        Self {
            operator: Operator::new(),
            sys: Account::new("SYS"),
            exp: Account::new("EXP"),
            imp: Account::new("IMP"),
            other: Account::new("OTHER"),
        }
    }

    fn exports(&self, revocations: Value) -> Value {
        json!({"exports": [
            {"subject": "pub.>", "type": "stream"},
            {"subject": "priv.>", "type": "stream", "token_req": true, "revocations": revocations},
            {"subject": "soon.>", "type": "stream", "token_req": true},
            {"subject": "late.>", "type": "stream"},
            {"subject": "svc.>", "type": "service"},
            {"subject": "multi", "type": "service", "response_type": "Stream"},
            {"subject": "psvc", "type": "service", "token_req": true},
        ]})
    }

    fn config(&self, accounts: &[(&Account, String)]) -> String {
        let op = self
            .operator
            .jwt(json!({"system_account": self.sys.public()}));
        let mut preload = format!(
            "  {}: {}\n",
            self.sys.public(),
            self.operator.account_jwt(&self.sys, json!({}))
        );
        for (account, jwt) in accounts {
            preload.push_str(&format!("  {}: {jwt}\n", account.public()));
        }
        format!(
            "operator: {op}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n{preload}}}\n",
            self.sys.public()
        )
    }
}

async fn client(server: &TestServer, user: &User) -> async_nats::Client {
    async_nats::ConnectOptions::with_credentials(&user.creds())
        .expect("creds")
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.logs()))
}

/// Answers every request the exporter gets: three responses on `svc.three` and `multi`,
/// one elsewhere, each `<subject>:<n>`.
async fn responder(nc: async_nats::Client) -> tokio::task::JoinHandle<()> {
    let mut subs = Vec::new();
    for subject in ["svc.>", "multi", "psvc"] {
        subs.push(nc.subscribe(subject).await.expect("subscribe"));
    }
    let mut sub = futures::stream::select_all(subs);
    rill_tests::sync(&nc).await;
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let Some(reply) = msg.reply else { continue };
            let n = if msg.subject.as_str() == "svc.three" || msg.subject.as_str() == "multi" {
                3
            } else {
                1
            };
            for i in 1..=n {
                let body = format!("{}:{i}", msg.subject);
                let _ = nc.publish(reply.clone(), body.into()).await;
            }
            let _ = nc.flush().await;
        }
    })
}

/// Subscribes to every subject EXP's streams reach an importer under.
async fn streams(nc: &async_nats::Client) -> Streams {
    let mut subs = Vec::new();
    for subject in ["pub.>", "exp.pub.>", "priv.>", "soon.>", "late.>"] {
        subs.push(nc.subscribe(subject).await.expect("subscribe"));
    }
    rill_tests::sync(nc).await;
    futures::stream::select_all(subs)
}

/// The next message's subject on `sub`.
async fn next_subject(sub: &mut Streams) -> String {
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open");
    msg.subject.to_string()
}

/// Publishes `first` then the sentinel `pub.<n>` in EXP and returns the subjects an
/// importer's `sub` sees up to the sentinel: `first`'s import, when it is wired, then
/// the sentinel's.
async fn probe(exp: &async_nats::Client, sub: &mut Streams, first: &str, n: u32) -> Vec<String> {
    exp.publish(first.to_string(), "x".into())
        .await
        .expect("publish");
    exp.publish(format!("pub.{n}"), "x".into())
        .await
        .expect("publish");
    exp.flush().await.expect("flush");
    until_sentinel(sub).await
}

/// The subjects `sub` sees up to one of `pub.>` (the sentinel's import).
async fn until_sentinel(sub: &mut Streams) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let got = next_subject(sub).await;
        let done = got.contains("pub.");
        seen.push(got);
        if done {
            return seen;
        }
    }
}

/// A request's reply body, or `None` when no one answers (no responders).
async fn ask(nc: &async_nats::Client, subject: &str) -> Option<String> {
    match tokio::time::timeout(WAIT, nc.request(subject.to_string(), "q".into()))
        .await
        .expect("answer in time")
    {
        Ok(msg) => Some(String::from_utf8_lossy(&msg.payload).into_owned()),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => None,
        Err(e) => panic!("request {subject}: {e}"),
    }
}

/// Pushes an account JWT as a claim update; returns the reply's code.
async fn push(sys: &async_nats::Client, account: &Account, jwt: String) -> Value {
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", account.public());
    let msg = tokio::time::timeout(WAIT, sys.request(subject, jwt.into()))
        .await
        .expect("reply in time")
        .expect("reply");
    let v: Value = serde_json::from_slice(&msg.payload).expect("JSON");
    v["data"]["code"].clone()
}

#[tokio::test]
async fn account_jwt_exports_and_imports() {
    for kind in KINDS {
        let w = World::new();
        let act_iat = now() - 5;
        let priv_token = w
            .exp
            .activation(&w.imp, "priv.>", "stream", json!({"iat": act_iat}));
        let psvc_token = w.exp.activation(&w.imp, "psvc", "service", json!({}));
        let imp_imports = |late: bool| {
            let mut v = vec![
                json!({"subject": "pub.>", "account": w.exp.public(), "type": "stream", "local_subject": "exp.pub.>"}),
                json!({"subject": "priv.>", "account": w.exp.public(), "type": "stream", "token": priv_token}),
                json!({"subject": "multi", "account": w.exp.public(), "type": "service"}),
                json!({"subject": "psvc", "account": w.exp.public(), "type": "service", "token": psvc_token}),
            ];
            if late {
                v.push(json!({"subject": "late.>", "account": w.exp.public(), "type": "stream"}));
            } else {
                v.push(json!({"subject": "svc.>", "account": w.exp.public(), "type": "service"}));
            }
            json!({"imports": v})
        };
        let stale_account = Account::new("STALE");
        let stale = w
            .exp
            .activation(&w.other, "priv.>", "stream", json!({"exp": now() - 10}));
        let misaddressed = w.exp.activation(&w.imp, "psvc", "service", json!({}));
        let other_imports = json!({"imports": [
            {"subject": "pub.>", "account": w.exp.public(), "type": "stream"},
            {"subject": "priv.>", "account": w.exp.public(), "type": "stream"},
            {"subject": "psvc", "account": w.exp.public(), "type": "service"},
            {"subject": "svc.>", "account": w.exp.public(), "type": "service"},
        ]});
        // An account JWT carrying an expired activation, or one made out to another
        // account, does not validate: its users are refused.
        let stale_imports = json!({"imports": [
            {"subject": "priv.>", "account": w.exp.public(), "type": "stream", "token": stale},
        ]});
        let misaddressed_account = Account::new("MISADDRESSED");
        let misaddressed_imports = json!({"imports": [
            {"subject": "psvc", "account": w.exp.public(), "type": "service", "token": misaddressed},
        ]});
        let accounts = [
            (&w.exp, w.operator.account_jwt(&w.exp, w.exports(json!({})))),
            (&w.imp, w.operator.account_jwt(&w.imp, imp_imports(false))),
            (&w.other, w.operator.account_jwt(&w.other, other_imports)),
            (
                &stale_account,
                w.operator.account_jwt(&stale_account, stale_imports),
            ),
            (
                &misaddressed_account,
                w.operator
                    .account_jwt(&misaddressed_account, misaddressed_imports),
            ),
        ];
        let server = TestServer::with_config(kind, &w.config(&accounts)).await;
        let exp = client(&server, &w.exp.user("e", json!({}))).await;
        let _responder = responder(exp.clone()).await;
        let imp = client(&server, &w.imp.user("i", json!({}))).await;
        let other = client(&server, &w.other.user("o", json!({}))).await;
        for account in [&stale_account, &misaddressed_account] {
            let refused =
                async_nats::ConnectOptions::with_credentials(&account.user("s", json!({})).creds())
                    .expect("creds")
                    .connect(server.url())
                    .await;
            assert!(
                refused.is_err(),
                "{kind:?}: {} has a bad activation",
                account.name
            );
        }
        let mut imp_sub = streams(&imp).await;
        let mut other_sub = streams(&other).await;

        // Streams: the public one under its local subject, the private one with a token.
        let seen = probe(&exp, &mut imp_sub, "priv.1", 1).await;
        assert_eq!(seen, ["priv.1", "exp.pub.1"], "{kind:?}");
        let seen = until_sentinel(&mut other_sub).await;
        assert_eq!(seen, ["pub.1"], "{kind:?}: expired token");

        // Services: public, private with a token, and refused without a good one.
        assert_eq!(
            ask(&imp, "svc.a").await.as_deref(),
            Some("svc.a:1"),
            "{kind:?}"
        );
        assert_eq!(
            ask(&imp, "psvc").await.as_deref(),
            Some("psvc:1"),
            "{kind:?}"
        );
        assert_eq!(ask(&other, "psvc").await, None, "{kind:?}: token for IMP");
        assert_eq!(
            ask(&other, "svc.b").await.as_deref(),
            Some("svc.b:1"),
            "{kind:?}"
        );

        // Response types: a Singleton service's extra responses are dropped, a Stream
        // service's all arrive.
        let mut inbox = imp.subscribe("answers.>").await.expect("subscribe");
        rill_tests::sync(&imp).await;
        imp.publish_with_reply("svc.three", "answers.1", "q".into())
            .await
            .expect("pub");
        assert_eq!(next_body(&mut inbox).await, "svc.three:1", "{kind:?}");
        imp.publish_with_reply("multi", "answers.2", "q".into())
            .await
            .expect("pub");
        for i in 1..=3 {
            assert_eq!(
                next_body(&mut inbox).await,
                format!("multi:{i}"),
                "{kind:?}"
            );
        }

        // The exporter revokes IMP's activation: the private stream stops.
        let sys = client(&server, &w.sys.user("admin", json!({}))).await;
        let revoked = w.exports(json!({ w.imp.public(): act_iat }));
        let code = push(&sys, &w.exp, w.operator.account_jwt(&w.exp, revoked)).await;
        assert_eq!(code, json!(200), "{kind:?}");
        let n = 2;
        let seen = probe(&exp, &mut imp_sub, "priv.2", n).await;
        assert_eq!(seen, ["exp.pub.2"], "{kind:?}: revoked");

        // IMP's new JWT drops the svc.> import and adds late.>.
        let code = push(
            &sys,
            &w.imp,
            w.operator.account_jwt(&w.imp, imp_imports(true)),
        )
        .await;
        assert_eq!(code, json!(200), "{kind:?}");
        assert_eq!(ask(&imp, "svc.a").await, None, "{kind:?}: dropped import");
        let n = n + 1;
        let seen = probe(&exp, &mut imp_sub, "late.1", n).await;
        assert_eq!(seen, ["late.1", "exp.pub.3"], "{kind:?}: added import");
        drop(server);
    }
}

async fn next_body(sub: &mut async_nats::Subscriber) -> String {
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open");
    String::from_utf8_lossy(&msg.payload).into_owned()
}

/// An activation that expires while the server runs stops its import.
#[tokio::test]
async fn expiring_activation_stops_its_import() {
    for kind in KINDS {
        let w = World::new();
        let token = w
            .exp
            .activation(&w.imp, "soon.>", "stream", json!({"exp": now() + 2}));
        let imports = json!({"imports": [
            {"subject": "pub.>", "account": w.exp.public(), "type": "stream"},
            {"subject": "soon.>", "account": w.exp.public(), "type": "stream", "token": token},
        ]});
        let accounts = [
            (&w.exp, w.operator.account_jwt(&w.exp, w.exports(json!({})))),
            (&w.imp, w.operator.account_jwt(&w.imp, imports)),
        ];
        let server = TestServer::with_config(kind, &w.config(&accounts)).await;
        let exp = client(&server, &w.exp.user("e", json!({}))).await;
        let imp = client(&server, &w.imp.user("i", json!({}))).await;
        let mut sub = streams(&imp).await;
        let seen = probe(&exp, &mut sub, "soon.1", 1).await;
        assert_eq!(seen, ["soon.1", "pub.1"], "{kind:?}");
        let mut stopped = false;
        for n in 2..200 {
            let seen = probe(&exp, &mut sub, &format!("soon.{n}"), n).await;
            if seen == [format!("pub.{n}")] {
                stopped = true;
                break;
            }
            assert_eq!(seen, [format!("soon.{n}"), format!("pub.{n}")], "{kind:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(stopped, "{kind:?}: the import outlived its activation");
    }
}
