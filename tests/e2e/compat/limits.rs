//! Item 5 of issue 14 (nats.py `test_account_limits`): an account's per-stream byte rules
//! (`max_stream_bytes: true`, `memory_max_stream_bytes`, `store_max_stream_bytes`) refuse
//! a stream create or update with nats-server's 400 errors, and account info reports them;
//! a stream update whose `consumer_limits` an existing consumer is over is refused (500 / 10069).

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

/// Item 5 (async-nats `limits`): a stream update whose `consumer_limits` an existing
/// consumer is over is refused as nats-server refuses it (500 / 10069 naming the
/// consumer); a consumer within the new limits, or a limit left unset, lets it through.
#[tokio::test]
async fn stream_update_refuses_consumer_limits_existing_consumers_are_over() {
    let secs = |s: i64| s * 1_000_000_000;
    let cases = [
        (
            json!({"durable_name":"c","ack_policy":"explicit"}),
            json!({"inactive_threshold":secs(2)}),
        ),
        (
            json!({"durable_name":"c","ack_policy":"explicit"}),
            json!({"inactive_threshold":secs(2),"max_ack_pending":10}),
        ),
        (
            json!({"durable_name":"c","ack_policy":"explicit","max_ack_pending":5}),
            json!({"max_ack_pending":10}),
        ),
        (
            json!({"durable_name":"c","ack_policy":"explicit","max_ack_pending":5,"inactive_threshold":secs(3)}),
            json!({"inactive_threshold":secs(2),"max_ack_pending":10}),
        ),
        (
            json!({"durable_name":"c","ack_policy":"explicit","max_ack_pending":5,"inactive_threshold":secs(1)}),
            json!({"inactive_threshold":secs(2),"max_ack_pending":10}),
        ),
        (
            json!({"ack_policy":"explicit","max_ack_pending":5}),
            json!({"max_ack_pending":10}),
        ),
    ];
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let client = server.client().await;
        let mut replies = Vec::new();
        for (i, (consumer, limits)) in cases.iter().enumerate() {
            let name = format!("S{i}");
            let create = json!({"name": name, "subjects": [name]});
            request(&client, &format!("$JS.API.STREAM.CREATE.{name}"), create).await;
            let durable = consumer["durable_name"].as_str().map(|d| format!(".{d}"));
            let subject = format!(
                "$JS.API.CONSUMER.CREATE.{name}{}",
                durable.unwrap_or_default()
            );
            request(
                &client,
                &subject,
                json!({"stream_name": name, "config": consumer}),
            )
            .await;
            let update = json!({"name": name, "subjects": [name], "consumer_limits": limits});
            replies.push(request(&client, &format!("$JS.API.STREAM.UPDATE.{name}"), update).await);
        }
        seen.push(replies);
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    let refused: Vec<bool> = seen[0].iter().map(|r| r["err_code"] == 10069).collect();
    assert_eq!(
        refused,
        [false, true, false, true, false, false],
        "{seen:?}"
    );
    assert_eq!(
        seen[0][1]["description"],
        "change to limits violates consumers: c"
    );
}
