//! Administrative system requests, against rill and nats-server 2.15.1 side by side:
//! `$SYS.REQ.SERVER.<id>.KICK|LDM|RELOAD`, `$SYS.REQ.SERVER.PING.IDZ` and
//! `$SYS.REQ.ACCOUNT.PING.STATZ`, answered as nats-server answers them.

use std::collections::BTreeSet;
use std::time::Duration;

use rill_tests::raw::Conn;
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];
const CONFIG: &str = "accounts {\n  SYS { users [{user: sys, password: sys}] }\n  APP { users [{user: app, password: app}] }\n}\nsystem_account: SYS\n";

async fn request(nc: &async_nats::Client, subject: String, body: Value) -> Value {
    let payload = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let msg = tokio::time::timeout(WAIT, nc.request(subject, payload.into()))
        .await
        .expect("reply in time")
        .expect("reply");
    serde_json::from_slice(&msg.payload).expect("JSON reply")
}

/// A raw APP client speaking `protocol`, CONNECT answered; its INFO carries its
/// `client_id`.
async fn app_conn(server: &TestServer, protocol: u8) -> (Conn, u64) {
    let mut conn = Conn::connect(server.port()).await;
    let cid = conn.info()["client_id"].as_u64().expect("client_id");
    let connect = json!({"user": "app", "pass": "app", "verbose": false, "protocol": protocol});
    conn.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
        .await;
    conn.read_until_contains(b"PONG\r\n", WAIT).await;
    (conn, cid)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn kick_ldm_reload_idz_and_account_statz() {
    for kind in KINDS {
        let server = TestServer::with_config(kind, CONFIG).await;
        let sys = async_nats::ConnectOptions::with_user_and_password("sys".into(), "sys".into())
            .connect(server.url())
            .await
            .expect("sys connects");
        let idz = request(&sys, "$SYS.REQ.SERVER.PING.IDZ".into(), Value::Null).await;
        assert_eq!(
            keys(&idz),
            ["host", "id", "name"].map(String::from).into(),
            "{kind:?}: {idz}"
        );
        let id = idz["id"].as_str().expect("id").to_string();
        let (mut kicked, kicked_cid) = app_conn(&server, 1).await;
        let (mut warned, warned_cid) = app_conn(&server, 1).await;
        let (_old, old_cid) = app_conn(&server, 0).await;

        let statz = request(
            &sys,
            "$SYS.REQ.ACCOUNT.PING.STATZ".into(),
            json!({"accounts": ["APP"]}),
        )
        .await;
        let data = &statz["data"];
        assert_eq!(
            keys(data),
            ["account_statz", "now", "server_id"]
                .map(String::from)
                .into(),
            "{kind:?}: {statz}"
        );
        let app = &data["account_statz"][0];
        assert_eq!(
            (&app["acc"], &app["conns"]),
            (&json!("APP"), &json!(3)),
            "{kind:?}"
        );
        let want: BTreeSet<String> = [
            "acc",
            "name",
            "conns",
            "leafnodes",
            "total_conns",
            "num_subscriptions",
            "sent",
            "received",
            "slow_consumers",
        ]
        .map(String::from)
        .into();
        assert_eq!(keys(app), want, "{kind:?}: {statz}");

        let kick = format!("$SYS.REQ.SERVER.{id}.KICK");
        let missing = request(&sys, kick.clone(), json!({"cid": 999_999})).await;
        assert_eq!(
            missing["error"],
            json!({"code": 500, "description": "no such client or leafnode id"}),
            "{kind:?}"
        );
        let reply = request(&sys, kick, json!({"cid": kicked_cid})).await;
        assert_eq!(
            keys(&reply),
            ["server"].map(String::from).into(),
            "{kind:?}: {reply}"
        );
        assert!(
            kicked.is_closed_within(WAIT).await,
            "{kind:?}: kicked client still open"
        );

        let ldm = format!("$SYS.REQ.SERVER.{id}.LDM");
        let missing = request(&sys, ldm.clone(), json!({"cid": 999_999})).await;
        assert_eq!(
            missing["error"]["description"],
            json!("no such client id"),
            "{kind:?}"
        );
        // A client that did not CONNECT with `"protocol": 1` cannot take the INFO.
        let old = request(&sys, ldm.clone(), json!({"cid": old_cid})).await;
        assert_eq!(
            old["error"]["description"],
            json!(
                "client does not support Lame Duck Mode or is not ready to receive the notification"
            ),
            "{kind:?}"
        );
        let reply = request(&sys, ldm, json!({"cid": warned_cid})).await;
        assert_eq!(
            keys(&reply),
            ["server"].map(String::from).into(),
            "{kind:?}: {reply}"
        );
        let got = warned.read_until_contains(b"\"ldm\":true", WAIT).await;
        assert!(
            String::from_utf8_lossy(&got).contains("\"ldm\":true"),
            "{kind:?}: {}",
            String::from_utf8_lossy(&got)
        );

        let reply = request(&sys, format!("$SYS.REQ.SERVER.{id}.RELOAD"), Value::Null).await;
        assert_eq!(
            keys(&reply),
            ["server"].map(String::from).into(),
            "{kind:?}: {reply}"
        );
        rill_tests::check_for(WAIT, || {
            let logs = server.logs();
            async move { logs.contains("Reloaded server configuration") }
        })
        .await;
    }
}
