//! Item 5 of issue 14 (nats.py `test_account_limits`): an account's per-stream byte rules
//! (`max_stream_bytes: true`, `memory_max_stream_bytes`, `store_max_stream_bytes`) refuse
//! a stream create or update with nats-server's 400 errors, and account info reports them.

use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use super::BOTH;

fn config(required: bool) -> String {
    format!(
        "no_auth_user: foo\naccounts: {{ A {{ users: [{{ user: foo }}]\n  jetstream: {{ max_mem: 64MB, \
         max_file: 32MB, memory_max_stream_bytes: 2048, store_max_stream_bytes: 4096, \
         max_stream_bytes: {required} }} }} }}\n"
    )
}

async fn start(kind: ServerKind, required: bool) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        config: Some(config(required)),
        ..ServerOpts::default()
    })
    .await
}

async fn request(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    let reply = client
        .request(subject.to_owned(), body.to_string().into())
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let reply: Value = serde_json::from_slice(&reply.payload).expect("json");
    // What the checks decide: the error, or the max_bytes the stream got.
    match reply.get("error") {
        Some(e) => e.clone(),
        None => json!({ "max_bytes": reply["config"]["max_bytes"] }),
    }
}

#[tokio::test]
async fn per_stream_byte_limits_refuse_creates_and_updates_like_nats_server() {
    let steps: [(&str, Value); 7] = [
        ("CREATE.A", json!({"name":"A","subjects":["a"]})),
        (
            "CREATE.B",
            json!({"name":"B","subjects":["b"],"storage":"memory"}),
        ),
        (
            "CREATE.C",
            json!({"name":"C","subjects":["c"],"max_bytes":5000}),
        ),
        (
            "CREATE.D",
            json!({"name":"D","subjects":["d"],"storage":"memory","max_bytes":3000}),
        ),
        (
            "CREATE.E",
            json!({"name":"E","subjects":["e"],"max_bytes":4096}),
        ),
        (
            "UPDATE.E",
            json!({"name":"E","subjects":["e"],"max_bytes":5000}),
        ),
        ("UPDATE.E", json!({"name":"E","subjects":["e"]})),
    ];
    for required in [true, false] {
        let mut seen = Vec::new();
        for kind in BOTH {
            let server = start(kind, required).await;
            let client = server.client().await;
            let mut replies = Vec::new();
            for (op, body) in &steps {
                replies.push(request(&client, &format!("$JS.API.STREAM.{op}"), body.clone()).await);
            }
            let info = client
                .request("$JS.API.INFO", "".into())
                .await
                .expect("account info");
            let info: Value = serde_json::from_slice(&info.payload).expect("json");
            replies.push(info["limits"].clone());
            seen.push(replies);
        }
        assert_eq!(
            seen[0], seen[1],
            "rill vs nats-server, max_stream_bytes: {required}"
        );
        let codes: Vec<&Value> = seen[0].iter().map(|r| &r["err_code"]).collect();
        let want = match required {
            true => [10113, 10113, 10122, 10122, 0, 10122, 10113],
            false => [0, 0, 10122, 10122, 0, 10122, 0],
        };
        for (got, want) in codes.iter().zip(want) {
            match want {
                0 => assert!(got.is_null(), "{seen:?}"),
                code => assert_eq!(**got, json!(code), "{seen:?}"),
            }
        }
        assert_eq!(seen[0][7]["storage_max_stream_bytes"], 4096);
        assert_eq!(seen[0][7]["memory_max_stream_bytes"], 2048);
    }
}
