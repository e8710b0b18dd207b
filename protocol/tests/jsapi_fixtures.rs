//! Round trips of real nats-server 2.15.1 replies (captured with nats-py into
//! `tests/fixtures/*.json`): each fixture deserialises into its rill type and serialises
//! back to the same JSON value, so rill keeps every field nats-server sends.
//!
//! The only deliberate difference: nats-server adds `total/offset/limit` (all zero) to a
//! *failed* `STREAM.INFO` reply; rill's error form has just `type` and `error`.

use rill_protocol::jsapi::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// API reply: through `Response<T>`.
fn api<T: ApiBody + Serialize + DeserializeOwned>(name: &str) -> Response<T> {
    let mut want = fixture(name);
    let parsed: Response<T> =
        serde_json::from_value(want.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(want["type"], T::TYPE, "{name}: type string");
    if let (true, Value::Object(m)) = (want.get("error").is_some(), &mut want) {
        for k in ["total", "offset", "limit"] {
            m.remove(k);
        }
    }
    let got = serde_json::to_value(&parsed).expect("serialise");
    assert_eq!(got, want, "{name}: round trip");
    parsed
}

/// Any other JSON (pub acks, advisories): through `T` directly.
fn plain<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let want = fixture(name);
    let parsed: T = serde_json::from_value(want.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        serde_json::to_value(&parsed).expect("serialise"),
        want,
        "{name}: round trip"
    );
    parsed
}

#[test]
fn account_info_round_trips() {
    let Response::Ok(info) = api::<AccountInfo>("account_info") else {
        panic!("error")
    };
    assert_eq!(info.api.level, 5);
    assert_eq!(info.usage.limits, AccountLimits::default());
    api::<AccountInfo>("account_info_empty");
}

#[test]
fn stream_create_replies_round_trip() {
    for name in [
        "stream_create_minimal",
        "stream_create_full",
        "stream_create_kv",
        "stream_create_workqueue",
        "stream_create_mirror",
        "stream_create_sources",
        "stream_create_exists_same",
        "stream_create_exists_diff",
    ] {
        api::<StreamCreateResponse>(name);
    }
    let Response::Ok(full) = api::<StreamCreateResponse>("stream_create_full") else {
        panic!("error")
    };
    let c = &full.info.config;
    assert_eq!(
        (c.storage, c.discard, c.first_seq),
        (StorageType::Memory, DiscardPolicy::New, 10)
    );
    assert_eq!(c.duplicate_window, Nanos::from_secs(60));
    assert_eq!(full.info.state.first_ts, Timestamp::ZERO);
    let Response::Err(e) = api::<StreamCreateResponse>("stream_create_exists_diff") else {
        panic!("ok")
    };
    assert!(e.is(ErrorCode::STREAM_NAME_EXIST));
}

#[test]
fn stream_info_names_list_round_trip() {
    for name in [
        "stream_info",
        "stream_info_details",
        "stream_info_full",
        "stream_info_mirror",
        "stream_info_sources",
        "stream_info_not_found",
    ] {
        api::<StreamInfoResponse>(name);
    }
    for name in ["stream_names", "stream_names_subject", "stream_names_empty"] {
        api::<StreamNamesResponse>(name);
    }
    for name in ["stream_list", "stream_list_empty"] {
        api::<StreamListResponse>(name);
    }
    api::<StreamUpdateResponse>("stream_update");
    api::<StreamDeleteResponse>("stream_delete");
    api::<StreamPurgeResponse>("stream_purge");
    api::<StreamPurgeResponse>("stream_purge_all");
    let Response::Ok(d) = api::<StreamInfoResponse>("stream_info_details") else {
        panic!("error")
    };
    assert_eq!(d.info.state.deleted, [2, 3]);
}

#[test]
fn msg_get_and_delete_round_trip() {
    let Response::Ok(m) = api::<MsgGetResponse>("stream_msg_get_hdrs") else {
        panic!("error")
    };
    assert_eq!(
        m.message.hdrs.as_deref(),
        Some(&b"NATS/1.0\r\nH1: v\r\n\r\n"[..])
    );
    assert_eq!(m.message.data.as_deref(), Some(&b"hello"[..]));
    api::<MsgGetResponse>("stream_msg_get");
    api::<MsgGetResponse>("stream_msg_get_not_found");
    api::<MsgDeleteResponse>("stream_msg_delete");
    api::<MsgDeleteResponse>("stream_msg_delete_noerase");
}

#[test]
fn consumer_replies_round_trip() {
    for name in [
        "consumer_create_durable_pull",
        "consumer_create_push",
        "consumer_create_ephemeral",
        "consumer_create_full",
        "consumer_create_filters",
        "consumer_create_durable_legacy",
    ] {
        api::<ConsumerCreateResponse>(name);
    }
    for name in [
        "consumer_info",
        "consumer_info_not_found",
        "consumer_info_pending",
        "consumer_info_push",
        "consumer_info_paused",
    ] {
        api::<ConsumerInfoResponse>(name);
    }
    api::<ConsumerNamesResponse>("consumer_names");
    api::<ConsumerNamesResponse>("consumer_names_empty");
    api::<ConsumerListResponse>("consumer_list");
    api::<ConsumerListResponse>("consumer_list_empty");
    api::<ConsumerPauseResponse>("consumer_pause");
    api::<ConsumerPauseResponse>("consumer_unpause");
    api::<ConsumerResetResponse>("consumer_reset");
    api::<ConsumerDeleteResponse>("consumer_delete");
    let Response::Ok(c) = api::<ConsumerCreateResponse>("consumer_create_full") else {
        panic!("error")
    };
    assert_eq!(c.info.config.priority_policy, PriorityPolicy::PinnedClient);
    assert_eq!(
        c.info.config.backoff,
        [Nanos::from_secs(1), Nanos::from_secs(2)]
    );
}

#[test]
fn pub_acks_round_trip() {
    let ack: PubAckResponse = plain("pub_ack_duplicate");
    assert!(ack.ack.duplicate && ack.error.is_none());
    plain::<PubAckResponse>("pub_ack");
    plain::<PubAckResponse>("pub_ack_msgid");
    for name in [
        "pub_err_wrong_last_seq",
        "pub_err_wrong_msgid",
        "pub_err_wrong_stream",
    ] {
        let r: PubAckResponse = plain(name);
        assert!(r.error.is_some(), "{name}");
    }
    let r: PubAckResponse = plain("pub_err_wrong_last_seq");
    assert_eq!(
        r,
        PubAckResponse::err(
            "ORDERS",
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE.with(&[("seq", &6)])
        )
    );
}

#[test]
fn advisories_round_trip() {
    plain::<StreamActionAdvisory>("advisory_stream_created");
    plain::<StreamActionAdvisory>("advisory_stream_updated");
    plain::<StreamActionAdvisory>("advisory_stream_deleted");
    plain::<ConsumerActionAdvisory>("advisory_consumer_created");
    plain::<ConsumerActionAdvisory>("advisory_consumer_deleted");
    plain::<ConsumerPauseAdvisory>("advisory_consumer_pause");
    let md: MaxDeliveriesAdvisory = plain("advisory_consumer_max_deliveries");
    assert_eq!(md.header.kind, MAX_DELIVER_TYPE);
    let t: TerminatedAdvisory = plain("advisory_consumer_msg_terminated");
    assert_eq!(t.reason, "because");
}

#[test]
fn error_replies_use_the_table() {
    for (name, code) in [
        ("stream_info_not_found", ErrorCode::STREAM_NOT_FOUND),
        ("consumer_info_not_found", ErrorCode::CONSUMER_NOT_FOUND),
        ("stream_msg_get_not_found", ErrorCode::NO_MESSAGE_FOUND),
    ] {
        let want = fixture(name)["error"].clone();
        assert_eq!(
            serde_json::to_value(code.error()).expect("ser"),
            want,
            "{name}"
        );
    }
}
