//! Item 1 of issue 14 (nats.py `test_kv_simple`): a stream stores a message published to
//! a subject with wildcard tokens, as nats-server does; with `Nats-Rollup: sub` it then
//! purges every subject that subject matches (nats.py's `kv.purge("hello.*")`).

use async_nats::HeaderMap;
use async_nats::jetstream::stream;

use super::BOTH;
use rill_tests::{ServerOpts, TestServer};

#[tokio::test]
async fn a_wildcard_rollup_marker_is_stored_and_purges_what_it_matches() {
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let js = server.jetstream().await;
        let mut s = js
            .create_stream(stream::Config {
                name: "W".into(),
                subjects: vec!["w.>".into()],
                allow_rollup: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .expect("stream");
        for subject in ["w.a.0", "w.a.1", "w.b"] {
            js.publish(subject, "x".into())
                .await
                .expect("publish")
                .await
                .expect("ack");
        }
        let mut rollup = HeaderMap::new();
        rollup.insert("Nats-Rollup", "sub");
        let marker = js
            .publish_with_headers("w.a.*", rollup, "".into())
            .await
            .expect("publish")
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: the wildcard marker is stored: {e}"));
        let plain = js
            .publish("w.>", "".into())
            .await
            .expect("publish")
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: a plain wildcard subject is stored: {e}"));
        let state = s.info().await.expect("info").state.clone();
        let mut subjects = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            let m = s.direct_get(seq).await.expect("direct get");
            subjects.push((seq, m.subject.to_string()));
        }
        seen.push((marker.sequence, plain.sequence, state.messages, subjects));
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    assert_eq!(
        seen[0].3,
        vec![(3, "w.b".into()), (4, "w.a.*".into()), (5, "w.>".into())]
    );
}
