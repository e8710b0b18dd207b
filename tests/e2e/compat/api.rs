//! Item 1 of issue 14, "never leave a client waiting": `$JS.API` requests nats-server
//! knows and rill does not serve get nats-server's standalone refusal at once.

use rill_tests::{ServerOpts, TestServer};

use super::BOTH;

#[tokio::test]
async fn clustering_requests_are_refused_like_a_standalone_nats_server() {
    let subjects = [
        "$JS.API.STREAM.LEADER.STEPDOWN.S",
        "$JS.API.STREAM.PEER.REMOVE.S",
        "$JS.API.CONSUMER.LEADER.STEPDOWN.S.C",
    ];
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let client = server.client().await;
        client
            .request("$JS.API.STREAM.CREATE.S", r#"{"name":"S"}"#.into())
            .await
            .expect("stream");
        client
            .request(
                "$JS.API.CONSUMER.DURABLE.CREATE.S.C",
                r#"{"stream_name":"S","config":{"durable_name":"C"}}"#.into(),
            )
            .await
            .expect("consumer");
        let mut replies = Vec::new();
        for subject in subjects {
            let reply = client
                .request(subject, "{}".into())
                .await
                .unwrap_or_else(|e| panic!("{kind:?} {subject}: {e}"));
            replies.push(String::from_utf8_lossy(&reply.payload).into_owned());
        }
        seen.push(replies);
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    assert!(seen[0].iter().all(|r| r.contains(r#""err_code":10010"#)));
}
