//! Stream and consumer config defaulting and validation, as nats-server 2.15.1 does it on
//! `STREAM.CREATE/UPDATE` and `CONSUMER.CREATE` (pure functions: no I/O, no clock, no locks).
//!
//! Each failure is a row of the single error table ([`ErrorCode`]) with nats-server's exact
//! description; the checks run in nats-server's order, so the *first* error matches too.
//! Every rule was checked against a real nats-server 2.15.1 (standalone, `-js`) with nats-py;
//! the raw replies are `protocol/tests/fixtures/validation_probes.json`, and the tests below
//! replay every probe through these functions.
//!
//! Call order for the API handlers (each step returns the first error; bodies are read with
//! `rill_protocol::jsapi::parse_request`, a parse failure is `ErrorCode::INVALID_JSON.err(e)`):
//! * stream create (`StreamConfigRequest` body): [`stream_create`] → [`check_origins`] →
//!   if the name exists,
//!   [`stream_exists_same`] and reply with the existing stream (nats-server still says
//!   `did_create: true`) → [`subjects_overlap`] against the other streams →
//!   [`stamp_stream_metadata`] → store;
//! * stream update: [`stream_update_request`] → [`check_origins`] → lookup (else
//!   `STREAM_NOT_FOUND`) →
//!   [`stream_update`] → [`subjects_overlap`] → [`stamp_stream_metadata`] → store;
//! * consumer create: [`CreateTarget::parse`] (`None`: send no reply at all) →
//!   [`consumer_create_request`] → (outside a cluster) [`standalone_consumer_replicas`] →
//!   lookup stream (else `STREAM_NOT_FOUND`) →
//!   [`consumer_config`] → if the name exists: [`consumer_action_create_same`], on work-queue
//!   streams [`workqueue_unique`], then [`consumer_update`]; else [`consumer_new`] (assign a
//!   random name when `name` is empty) → [`stamp_consumer_metadata`] → store.
//! * replies carry [`reply_metadata`] (stored metadata + `_nats.ver` + `_nats.level`) in
//!   CREATE/UPDATE/INFO, the stored metadata in LIST.
//!
//! Not modelled (rill is single-node): clustered checks, account/server limits and tiers,
//! `external` mirror/source prefixes, the argument syntax of subject mapping functions (names
//! and wildcard indexes are checked), `direct`/`sourcing` internal consumers, "consumer
//! already exists and is still active" for bound push durables, and stream-limit updates that
//! would violate existing consumers. [`check_origins`] runs after the pure config checks,
//! where nats-server interleaves them; only a config with two faults can tell the difference.

use rill_protocol::jsapi::{ApiError, ErrorCode, Metadata, Nanos};
use rill_protocol::subject::validate_filter;

pub use rill_protocol::jsapi::MAX_NAME_LEN;
use rill_protocol::jsapi::{NameError, check_name_chars};
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Largest metadata (sum of key and value lengths).
pub const MAX_METADATA_LEN: usize = 128 * 1024;
/// nats-server's maximum replica count (rill itself supports only 1).
pub const MAX_REPLICAS: i64 = 5;
/// Default `duplicate_window`.
pub const DEFAULT_DUPLICATE_WINDOW: Nanos = Nanos::from_secs(120);
/// Default `ack_wait` for `explicit`/`all`.
pub const DEFAULT_ACK_WAIT: Nanos = Nanos::from_secs(30);
/// Default `max_waiting` of pull consumers.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// Default `max_ack_pending` when acks are required.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Default `inactive_threshold` of non-durable consumers.
pub const DEFAULT_INACTIVE_THRESHOLD: Nanos = Nanos::from_secs(5);
/// Default `priority_timeout` for `pinned_client`.
pub const DEFAULT_PINNED_TTL: Nanos = Nanos::from_secs(120);
/// Heartbeat forced by `ack_policy: flow_control`.
pub const FLOW_CONTROL_ACK_HEARTBEAT: Nanos = Nanos::from_secs(1);

type Check = Result<(), ApiError>;

fn invalid(text: impl std::fmt::Display) -> ApiError {
    ErrorCode::STREAM_INVALID_CONFIG.err(text)
}

fn pedantic_err(text: &str) -> ApiError {
    ErrorCode::PEDANTIC.err(text)
}

/// Checks a stream or consumer name's characters: nats-server's message (`nats_text`) for
/// what nats-server refuses too, rill's own for the control characters and whitespace only
/// rill refuses (see `rill_protocol::jsapi::StreamName`).
fn check_name(name: &str, what: &str, nats_text: &str) -> Check {
    match check_name_chars(name) {
        Ok(()) | Err(NameError::TooLong) => Ok(()),
        Err(NameError::Refused) => Err(invalid(nats_text)),
        Err(NameError::ControlOrSpace) => Err(invalid(format!(
            "{what} name can not contain whitespace or control characters"
        ))),
    }
}

fn is_valid_subject(s: &str) -> bool {
    validate_filter(s).is_ok()
}

fn metadata_len(m: &Metadata) -> usize {
    m.iter().map(|(k, v)| k.len() + v.len()).sum()
}

mod consumer;
mod consumer_lifecycle;
mod overlap;
mod stream;
mod stream_subjects;

pub use consumer::{
    CreateKind, CreateTarget, consumer_config, consumer_create_request,
    standalone_consumer_replicas,
};
pub use consumer_lifecycle::{
    consumer_action_create_same, consumer_new, consumer_update, workqueue_unique,
};
pub use overlap::OwnedFilters;
pub use stream::{
    REQUIRED_LEVEL_KEY, SERVER_LEVEL_KEY, SERVER_VERSION_KEY, check_origins, check_stream_config,
    consumer_required_level, reply_metadata, stamp_consumer_metadata, stamp_stream_metadata,
    standalone_replicas, stream_create, stream_create_config, stream_exists_same,
    stream_required_level, stream_update, stream_update_request, stream_update_rules,
    subjects_overlap,
};

#[cfg(test)]
mod tests {
    //! Two kinds of tests:
    //! * `replays_every_nats_server_probe`: every request in
    //!   `validation_probes.json` (sent to nats-server 2.15.1 with nats-py) is replayed, in
    //!   order, through these functions over a tiny in-memory stream/consumer model; errors
    //!   must equal nats-server's `{code, err_code, description}` exactly (INVALID_JSON: the
    //!   code only, the text is Go's JSON parser) and accepted configs must equal the config
    //!   nats-server returned (ignoring its `_nats.*` metadata).
    //! * table-driven unit tests per rule, with insta snapshots of the error JSON.

    use std::collections::BTreeMap;

    use rill_protocol::jsapi::{
        ApiSubject, ConsumerConfig, CreateConsumerRequest, RetentionPolicy, StreamConfig,
        StreamConfigRequest, parse_request,
    };
    use serde_json::Value;

    use super::*;

    const PROBES: &str = include_str!("../../../protocol/tests/fixtures/validation_probes.json");

    #[derive(Default)]
    struct Model {
        streams: BTreeMap<String, (StreamConfig, Vec<ConsumerConfig>)>,
        subjects: OwnedFilters,
    }

    fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
        parse_request(body).map_err(|e| ErrorCode::INVALID_JSON.err(e))
    }

    fn json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).expect("serialisable")
    }

    impl Model {
        fn request(&mut self, subject: &str, body: &[u8]) -> Result<Value, ApiError> {
            match ApiSubject::parse(subject) {
                Ok(ApiSubject::StreamCreate(name)) => self.stream_create(name, body),
                Ok(ApiSubject::StreamUpdate(name)) => self.stream_update(name, body),
                _ => self.consumer_create(subject, body),
            }
        }

        fn stream_create(&mut self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
            let req: StreamConfigRequest = parse(body)?;
            let cfg = stream_create(name, req.config, req.pedantic)?;
            let cfg = check_origins(cfg, |n| self.streams.get(n).map(|(c, _)| c))?;
            if let Some((existing, _)) = self.streams.get(name) {
                stream_exists_same(existing, &cfg)?;
                return Ok(json(existing));
            }
            subjects_overlap(&cfg, &self.subjects)?;
            let mut cfg = cfg;
            stamp_stream_metadata(&mut cfg);
            self.own_subjects(&cfg, OwnedFilters::insert);
            self.streams
                .insert(name.to_owned(), (cfg.clone(), Vec::new()));
            Ok(json(&cfg))
        }

        fn stream_update(&mut self, name: &str, body: &[u8]) -> Result<Value, ApiError> {
            let req: StreamConfigRequest = parse(body)?;
            let cfg = stream_update_request(name, req.config, req.pedantic)?;
            let cfg = check_origins(cfg, |n| self.streams.get(n).map(|(c, _)| c))?;
            let (old, _) = self
                .streams
                .get(name)
                .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
            let mut cfg = stream_update(old, cfg)?;
            subjects_overlap(&cfg, &self.subjects)?;
            stamp_stream_metadata(&mut cfg);
            if let Some(entry) = self.streams.get_mut(name) {
                let old = std::mem::replace(&mut entry.0, cfg.clone());
                self.own_subjects(&old, |f, o, s| f.remove(o, s));
                self.own_subjects(&cfg, OwnedFilters::insert);
            }
            Ok(json(&cfg))
        }

        /// Adds (or removes) `cfg`'s subjects to the overlap index.
        fn own_subjects(
            &mut self,
            cfg: &StreamConfig,
            f: impl Fn(&mut OwnedFilters, &std::sync::Arc<str>, &str),
        ) {
            let owner = std::sync::Arc::from(cfg.name.as_str());
            for s in &cfg.subjects {
                f(&mut self.subjects, &owner, s);
            }
        }

        fn consumer_create(&mut self, subject: &str, body: &[u8]) -> Result<Value, ApiError> {
            let target = CreateTarget::parse(subject).expect("consumer subject");
            let mut req: CreateConsumerRequest = parse(body)?;
            consumer_create_request(&target, &mut req)?;
            standalone_consumer_replicas(&req.config)?;
            let (stream, consumers) = self
                .streams
                .get_mut(&req.stream_name)
                .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
            let cfg = consumer_config(req.config, stream, 0, req.pedantic)?;
            let name = if cfg.is_durable() {
                &cfg.durable_name
            } else {
                &cfg.name
            };
            let existing = consumers
                .iter()
                .position(|c| !name.is_empty() && c.name == *name);
            let Some(i) = existing else {
                let mut cfg = consumer_new(req.action, cfg, stream, consumers.iter())?;
                stamp_consumer_metadata(&mut cfg);
                consumers.push(cfg.clone());
                return Ok(json(&cfg));
            };
            consumer_action_create_same(req.action, &consumers[i], &cfg)?;
            if stream.retention == RetentionPolicy::WorkQueue {
                let others = consumers
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, c)| c);
                workqueue_unique(&cfg, others)?;
            }
            let mut cfg = consumer_update(&consumers[i], cfg)?;
            stamp_consumer_metadata(&mut cfg);
            consumers[i] = cfg.clone();
            Ok(json(&cfg))
        }
    }

    fn body_bytes(body: &Value) -> Vec<u8> {
        match body {
            Value::Null => Vec::new(),
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).expect("json"),
        }
    }

    /// The config as stored: the reply minus the reply-only `_nats.ver` / `_nats.level`.
    fn stored_form(mut v: Value) -> Value {
        if let Some(Value::Object(m)) = v.get_mut("metadata") {
            m.remove(SERVER_VERSION_KEY);
            m.remove(SERVER_LEVEL_KEY);
        }
        v
    }

    /// Every error the probes produce, keyed by probe label, as the JSON rill sends.
    #[test]
    fn probe_errors_snapshot() {
        let probes: Vec<Value> = serde_json::from_str(PROBES).expect("probes");
        let mut model = Model::default();
        let mut errors = BTreeMap::new();
        for p in &probes {
            let subject = p["subject"].as_str().expect("subject");
            if p["reply"].get("exception").is_some() {
                continue;
            }
            if let Err(e) = model.request(subject, &body_bytes(&p["body"])) {
                let label = p["label"].as_str().expect("label").to_owned();
                errors.insert(label, e);
            }
        }
        insta::assert_json_snapshot!(errors, {
            ".*.description" => insta::dynamic_redaction(|value, _| {
                // Go's JSON parser texts and 4 KiB inputs are not worth pinning.
                let text = value.as_str().unwrap_or_default().to_owned();
                if text.starts_with("invalid JSON") {
                    "[invalid JSON: ...]".to_owned()
                } else {
                    text
                }
            }),
        });
    }

    #[test]
    fn create_subjects_parse() {
        let t = CreateTarget::parse("$JS.API.CONSUMER.CREATE.S.c.orders.>").expect("named");
        assert_eq!(
            (
                t.kind,
                t.stream.as_str(),
                t.consumer.as_str(),
                t.filter.as_str()
            ),
            (CreateKind::Named, "S", "c", "orders.>")
        );
        let t = CreateTarget::parse("$JS.API.CONSUMER.CREATE.S").expect("legacy");
        assert_eq!(t.kind, CreateKind::LegacyEphemeral);
        let t = CreateTarget::parse("$JS.API.CONSUMER.DURABLE.CREATE.S.d").expect("durable");
        assert_eq!(
            (t.kind, t.consumer.as_str()),
            (CreateKind::LegacyDurable, "d")
        );
        for no_reply in [
            "$JS.API.CONSUMER.DURABLE.CREATE.S",
            "$JS.API.CONSUMER.DURABLE.CREATE.S.d.x",
            "$JS.API.CONSUMER.INFO.S.c",
        ] {
            assert_eq!(CreateTarget::parse(no_reply), None, "{no_reply}");
        }
    }

    #[test]
    fn mapping_destinations() {
        use super::stream_subjects::check_mapping;
        let cases = [
            ("a.*", "b.$1", Ok(())),
            ("a.*.*", "b.{{wildcard(2)}}.{{Wildcard(1)}}", Ok(())),
            ("a.>", "b.>", Ok(())),
            ("", "", Ok(())),
            (
                "a.*",
                "b.$2",
                Err("invalid mapping destination: wildcard index out of range in $2: [2]"),
            ),
            (
                "a",
                "b.$1",
                Err("invalid mapping destination: wildcard index out of range in $1"),
            ),
            ("a.*", "b.>", Err("invalid subject")),
            ("a.*", "b.*", Err("invalid subject")),
            (
                "a.*",
                "b..c",
                Err("invalid mapping destination: invalid transform in "),
            ),
            (
                "a.*",
                "b.{{nope(1)}}",
                Err("invalid mapping destination: unknown function in {{nope(1)}}"),
            ),
            ("a.*", "b.{{random(5)}}", Ok(())),
        ];
        for (src, dest, want) in cases {
            assert_eq!(
                check_mapping(src, dest),
                want.map_err(str::to_owned),
                "{src} -> {dest}"
            );
        }
    }

    #[test]
    fn required_api_levels() {
        let s = |f: fn(&mut StreamConfig)| {
            let mut c = StreamConfig::named("S");
            f(&mut c);
            stream_required_level(&c)
        };
        assert_eq!(s(|_| {}), 0);
        assert_eq!(s(|c| c.allow_msg_ttl = true), 1);
        assert_eq!(s(|c| c.allow_msg_counter = true), 2);
        assert_eq!(s(|c| c.allow_batched = true), 4);
        let mut c = ConsumerConfig::default();
        assert_eq!(consumer_required_level(&c), 0);
        c.priority_policy = rill_protocol::jsapi::PriorityPolicy::Overflow;
        assert_eq!(consumer_required_level(&c), 1);
    }

    #[test]
    fn origins_set_mirror_direct_and_bound_msg_size() {
        let mut origin = StreamConfig::named("O");
        (origin.allow_direct, origin.max_msg_size) = (true, 1024);
        let lookup = |n: &str| (n == "O").then_some(&origin);
        let mut mirror = StreamConfig::named("M");
        mirror.mirror = Some(rill_protocol::jsapi::StreamSource {
            name: "O".into(),
            ..Default::default()
        });
        let got = check_origins(mirror.clone(), lookup).expect("mirror ok");
        assert!(got.mirror_direct);
        mirror.max_msg_size = 10;
        let err = check_origins(mirror, lookup).expect_err("too small");
        assert!(err.is(ErrorCode::MIRROR_MAX_MESSAGE_SIZE_TOO_BIG));
        let mut src = StreamConfig::named("S");
        src.max_msg_size = 10;
        src.sources = vec![rill_protocol::jsapi::StreamSource {
            name: "O".into(),
            ..Default::default()
        }];
        let err = check_origins(src, lookup).expect_err("too small");
        assert!(err.is(ErrorCode::SOURCE_MAX_MESSAGE_SIZE_TOO_BIG));
        assert!(check_origins(StreamConfig::named("X"), lookup).is_ok());
    }

    #[test]
    fn names() {
        for bad in ["", "a.b", "a*", "a>", "a/b", "a\\b", "a b", "a\tb"] {
            let err = check_name(bad, "stream", "nats text").expect_err("refused");
            assert_eq!(err.description, "nats text");
        }
        for bad in ["a\0b", "a\u{1}b", "a\u{a0}b"] {
            let err = check_name(bad, "stream", "nats text").expect_err("refused");
            assert_eq!(
                err.description,
                "stream name can not contain whitespace or control characters"
            );
        }
        assert!(check_name("ORDERS-1_x", "stream", "nats text").is_ok());
    }

    #[test]
    fn replays_every_nats_server_probe() {
        let probes: Vec<Value> = serde_json::from_str(PROBES).expect("probes");
        let mut model = Model::default();
        let mut failures = Vec::new();
        for p in &probes {
            let label = p["label"].as_str().expect("label");
            let subject = p["subject"].as_str().expect("subject");
            if p["reply"].get("exception").is_some() {
                if CreateTarget::parse(subject).is_some() {
                    failures.push(format!("{label}: nats-server did not answer, rill would"));
                }
                continue;
            }
            let got = model.request(subject, &body_bytes(&p["body"]));
            let want = &p["reply"];
            let ok = match (&got, want.get("error")) {
                (Err(e), Some(w)) if e.is(ErrorCode::INVALID_JSON) => w["err_code"] == 10025,
                (Err(e), Some(w)) => json(e) == *w,
                (Ok(cfg), None) => stored_form(cfg.clone()) == stored_form(want["config"].clone()),
                _ => false,
            };
            if !ok {
                failures.push(format!("{label}: got {got:?}\n   want {want}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} probes differ:\n{}",
            failures.len(),
            probes.len(),
            failures.join("\n")
        );
        assert!(probes.len() >= 253, "probe file shrank");
    }
}
