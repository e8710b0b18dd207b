//! Item 9 of issue 14: after a subscription is replaced (UNSUB then SUB under a new
//! sid, as nats.js's resubscribe does), `/connz?cid=N&subs=detail` shows only the new
//! one, as nats-server does.

use std::time::Duration;

use rill_tests::raw::Conn;
use rill_tests::{ServerOpts, TestServer};

use super::BOTH;
use crate::monitoring::get_json;

#[tokio::test]
async fn connz_detail_for_one_client_shows_the_replaced_subscription_only() {
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            monitoring: true,
            ..ServerOpts::default()
        })
        .await;
        let mut conn = Conn::connect(server.port()).await;
        let cid = conn.info()["client_id"].as_u64().expect("client_id");
        let _other = Conn::connect(server.port()).await;
        conn.send(b"CONNECT {\"verbose\":false}\r\nSUB a 1\r\nUNSUB 1\r\nSUB b q 2\r\nPING\r\n")
            .await;
        let pong = conn.try_read_line(Duration::from_secs(5)).await;
        assert_eq!(pong.as_deref().map(str::trim), Some("PONG"), "{kind:?}");
        let connz = get_json(
            server.monitoring_port(),
            &format!("/connz?cid={cid}&subs=detail"),
        )
        .await;
        let conns = connz["connections"].as_array().expect("connections");
        assert_eq!(conns.len(), 1, "{kind:?}: {connz}");
        assert_eq!(conns[0]["cid"].as_u64(), Some(cid));
        let mut detail = conns[0]["subscriptions_list_detail"].clone();
        for sub in detail.as_array_mut().expect("detail list") {
            assert_eq!(sub["cid"].as_u64(), Some(cid), "{kind:?}");
            sub["cid"] = 0.into();
        }
        seen.push(detail);
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    assert_eq!(seen[0][0]["subject"], "b");
    assert_eq!(seen[0][0]["sid"], "2");
    assert_eq!(seen[0][0]["qgroup"], "q");
    assert_eq!(seen[0].as_array().map(Vec::len), Some(1));
}
