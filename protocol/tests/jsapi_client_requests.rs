//! Requests captured from real clients (nats-py 2.x and async-nats 0.51, recorded by a
//! subscriber on `$JS.API.>` of a nats-server without JetStream): each body parses with
//! [`parse_request`] into rill's request type, and every non-zero value the client sent
//! survives a re-serialisation (Go treats `null`, `0`, `false`, `""`, `[]` and `{}` as
//! "not set", so those may be dropped; timestamps compare as instants).

use rill_protocol::jsapi::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn records(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Go's notion of "set": drops zero values, recursively.
fn normalise(v: &Value) -> Option<Value> {
    match v {
        Value::Null | Value::Bool(false) => None,
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(match Timestamp::parse(s) {
            Ok(t) => Value::String(t.to_string()),
            Err(_) => v.clone(),
        }),
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|x| normalise(x).unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| normalise(x).map(|x| (k.clone(), x)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        _ => Some(v.clone()),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(subject: &str, body: &str) {
    let parsed: T =
        parse_request(body.as_bytes()).unwrap_or_else(|e| panic!("{subject}: {e}\n{body}"));
    let sent = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| normalise(&v));
    let kept = normalise(&serde_json::to_value(&parsed).expect("serialise"));
    if let Some(sent) = sent {
        let kept = kept.unwrap_or(Value::Null);
        assert!(
            contains(&kept, &sent),
            "{subject}: a value the client set was lost\n sent {sent}\n kept {kept}"
        );
    }
}

/// Every member of `sent` is in `kept` with an equal value (objects recursively).
fn contains(kept: &Value, sent: &Value) -> bool {
    match (kept, sent) {
        (Value::Object(k), Value::Object(s)) => s
            .iter()
            .all(|(key, v)| k.get(key).is_some_and(|kv| contains(kv, v))),
        _ => kept == sent,
    }
}

fn check(name: &str) -> usize {
    let mut checked = 0;
    for r in records(name) {
        let subject = r["subject"].as_str().expect("subject");
        let body = r["body"].as_str().expect("body");
        let api = subject.strip_prefix("$JS.API.").unwrap_or(subject);
        let family: Vec<&str> = api.split('.').take(2).collect();
        match family[..] {
            ["STREAM", "CREATE" | "UPDATE"] => round_trip::<StreamConfigRequest>(subject, body),
            ["STREAM", "INFO"] => round_trip::<StreamInfoRequest>(subject, body),
            ["STREAM", "NAMES" | "LIST"] => round_trip::<StreamNamesRequest>(subject, body),
            ["STREAM", "PURGE"] => round_trip::<StreamPurgeRequest>(subject, body),
            ["STREAM", "MSG"] if api.starts_with("STREAM.MSG.GET") => {
                round_trip::<MsgGetRequest>(subject, body)
            }
            ["STREAM", "MSG"] => round_trip::<MsgDeleteRequest>(subject, body),
            ["DIRECT", "GET"] => round_trip::<MsgGetRequest>(subject, body),
            ["CONSUMER", "CREATE" | "DURABLE"] => {
                round_trip::<CreateConsumerRequest>(subject, body)
            }
            ["CONSUMER", "MSG"] => {
                let req = NextRequest::parse(body.as_bytes()).expect("pull request");
                assert!(req.batch > 0, "{subject}: {body}");
                round_trip::<NextRequest>(subject, body);
            }
            // Bodies nats-server ignores (INFO, DELETE, CONSUMER.INFO/LIST without paging).
            _ => continue,
        }
        checked += 1;
    }
    checked
}

#[test]
fn nats_py_requests_parse_without_loss() {
    assert_eq!(check("client_requests_nats_py"), 18);
}

#[test]
fn async_nats_requests_parse_without_loss() {
    assert_eq!(check("client_requests_async_nats"), 14);
}
