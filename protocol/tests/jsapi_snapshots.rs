//! insta snapshots of serialised `$JS.API` values: Go-zero defaults, typical replies, the
//! error form, pub acks, pull-request parsing, and the whole JetStream error table.

use rill_protocol::jsapi::*;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).expect("rfc3339")
}

#[test]
fn default_stream_config() {
    // Go's zero value: what nats-server sees when a client omits every field.
    insta::assert_json_snapshot!(StreamConfig::default());
}

#[test]
fn default_consumer_config() {
    insta::assert_json_snapshot!(ConsumerConfig::default());
}

#[test]
fn typical_stream_info_reply() {
    let mut config = StreamConfig::named("ORDERS");
    config.subjects = vec!["orders.>".into()];
    (config.max_msgs, config.max_bytes, config.max_consumers) = (-1, -1, -1);
    (
        config.max_msgs_per_subject,
        config.max_msg_size,
        config.num_replicas,
    ) = (-1, -1, 1);
    config.duplicate_window = Nanos::from_secs(120);
    config.metadata.insert("_nats.req.level".into(), "0".into());
    let info = StreamInfo {
        config,
        created: ts("2026-01-02T03:04:05.123456789Z"),
        state: StreamState {
            messages: 3,
            bytes: 120,
            first_seq: 1,
            first_ts: ts("2026-01-02T03:04:06Z"),
            last_seq: 4,
            last_ts: ts("2026-01-02T03:04:07.5Z"),
            num_subjects: 2,
            num_deleted: 1,
            ..StreamState::default()
        },
        cluster: Some(ClusterInfo {
            leader: "rill".into(),
            ..ClusterInfo::default()
        }),
        ts: ts("2026-01-02T03:04:08Z"),
        ..StreamInfo::default()
    };
    let reply = Response::Ok(StreamInfoResponse {
        paged: Paged::default(),
        info,
    });
    insta::assert_json_snapshot!(reply);
}

#[test]
fn typical_consumer_create_reply() {
    let config = ConsumerConfig {
        durable_name: "proc".into(),
        name: "proc".into(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Nanos::from_secs(30),
        max_deliver: -1,
        max_waiting: 512,
        max_ack_pending: 1000,
        ..ConsumerConfig::default()
    };
    let info = ConsumerInfo {
        stream_name: "ORDERS".into(),
        name: "proc".into(),
        created: ts("2026-01-02T03:04:05Z"),
        config,
        num_pending: 4,
        ts: ts("2026-01-02T03:04:05.000000001Z"),
        ..ConsumerInfo::default()
    };
    insta::assert_json_snapshot!(Response::Ok(ConsumerCreateResponse { info }));
}

#[test]
fn error_reply_and_names() {
    let err: Response<StreamInfoResponse> = Response::Err(ErrorCode::STREAM_NOT_FOUND.error());
    insta::assert_json_snapshot!("error_reply", err);
    let names = Response::Ok(StreamNamesResponse {
        paged: Paged {
            total: 0,
            offset: 0,
            limit: NAMES_PAGE_LIMIT,
        },
        streams: vec![],
    });
    insta::assert_json_snapshot!("empty_names_reply", names);
}

#[test]
fn pub_acks() {
    let mut dup = PubAckResponse::ok("ORDERS", 6);
    dup.ack.duplicate = true;
    let err = PubAckResponse::err(
        "ORDERS",
        ErrorCode::STREAM_WRONG_LAST_SEQUENCE.with(&[("seq", &6)]),
    );
    insta::assert_json_snapshot!([PubAckResponse::ok("ORDERS", 1), dup, err]);
}

#[test]
fn next_request_forms() {
    let forms: Vec<(String, NextRequest)> = [
        "",
        "  ",
        "10",
        "abc",
        r#"{"batch":5,"expires":1000000000,"no_wait":true}"#,
        r#"{"batch":1,"idle_heartbeat":500000000,"expires":2000000000,"max_bytes":1024,"group":"g","min_pending":2,"priority":3}"#,
        r#"{"batch":null,"expires":null}"#,
    ]
    .into_iter()
    .map(|b| (b.to_owned(), NextRequest::parse(b.as_bytes()).expect("parses")))
    .collect();
    insta::assert_json_snapshot!(forms);
    assert!(NextRequest::parse(b"{bad").is_err());
}

#[test]
fn requests_accept_nulls_and_empty_bodies() {
    let cfg: StreamConfig =
        parse_request(br#"{"name":"S","subjects":null,"max_age":null,"mirror":null}"#)
            .expect("nulls");
    assert_eq!(cfg, StreamConfig::named("S"));
    let req: CreateConsumerRequest = parse_request(b"").expect("empty");
    assert_eq!(req, CreateConsumerRequest::default());
    let req: StreamConfigRequest =
        parse_request(br#"{"name":"S","pedantic":true}"#).expect("pedantic");
    assert!(req.pedantic && req.config.name == "S");
    let dp: ConsumerConfig =
        parse_request(br#"{"deliver_policy":"undefined","action":""}"#).expect("undefined");
    assert_eq!(dp.deliver_policy, DeliverPolicy::All);
    assert!(parse_request::<StreamConfig>(br#"{"retention":"bogus"}"#).is_err());
}

#[test]
fn error_table() {
    let rows: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|e| format!("{} {} {} {:?}", e.err_code, e.code, e.name, e.description))
        .collect();
    insta::assert_snapshot!(rows.join("\n"));
}
