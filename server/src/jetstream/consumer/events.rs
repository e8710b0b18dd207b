//! Advisories a consumer publishes (`MAX_DELIVERIES`, `MSG_TERMINATED`, `MSG_NAKED`, as
//! nats-server 2.15.1 words them) and rill's dead-letter republish (see `DEAD_LETTERS.md`).
//!
//! Owns the event JSON and the dead-letter message layout; the tracker decides when.

use bytes::Bytes;
use rand::RngExt;
use rill_protocol::HeaderMap;
use rill_protocol::jsapi::{
    ActionKind, CONSUMER_ACTION_TYPE, CONSUMER_CREATED_PRE, CONSUMER_DELETED_PRE,
    CONSUMER_MAX_DELIVERIES_PRE, CONSUMER_MSG_TERMINATED_PRE, CONSUMER_PAUSE_PRE,
    CONSUMER_PAUSE_TYPE, ConsumerActionAdvisory, ConsumerPauseAdvisory, EventHeader,
    MAX_DELIVER_TYPE, MaxDeliveriesAdvisory, STREAM_ACTION_TYPE, STREAM_CREATED_PRE,
    STREAM_DELETED_PRE, STREAM_UPDATED_PRE, StreamActionAdvisory, TERMINATED_TYPE,
    TerminatedAdvisory, Timestamp, consumer_subject, stream_subject,
};
use serde::Serialize;

use std::sync::Arc;

use super::ack::AckMeta;
use super::outbox::Outbox;
use super::tracker::Dropped;
use crate::account::Account;
use crate::jetstream::store::{StoredMsg, now_ns};

/// Consumer `metadata` key naming the dead-letter subject.
pub const DEAD_LETTER_KEY: &str = "rill.dead_letter_subject";
const NAKED_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED";
const NAK_TYPE: &str = "io.nats.jetstream.advisory.v1.nak";

/// A 22-character random id, as nats-server's (events, pin ids).
pub(super) fn event_id() -> String {
    const ALPHA: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| char::from(ALPHA[rng.random_range(0..ALPHA.len())]))
        .collect()
}

fn header(kind: &str) -> EventHeader {
    EventHeader {
        kind: kind.to_owned(),
        id: event_id(),
        timestamp: Timestamp::from_unix_nanos(i128::from(now_ns())).unwrap_or_default(),
    }
}

fn publish_json(out: &Outbox, subject: &str, body: &impl Serialize) {
    if let Ok(json) = serde_json::to_vec(body) {
        out.publish(subject, None, Bytes::from(json));
    }
}

#[derive(Serialize)]
struct NakAdvisory<'a> {
    #[serde(flatten)]
    header: EventHeader,
    stream: &'a str,
    consumer: &'a str,
    consumer_seq: u64,
    stream_seq: u64,
    deliveries: u64,
}

/// A change of pin, for the advisories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PinEvent {
    /// `$JS.EVENT.ADVISORY.CONSUMER.PINNED`: a client of `group` was pinned as `id`.
    Pinned { group: String, id: String },
    /// `$JS.EVENT.ADVISORY.CONSUMER.UNPINNED`: `admin` or `timeout`.
    Unpinned { group: String, reason: &'static str },
}

const PINNED_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.PINNED";
const UNPINNED_PRE: &str = "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED";
const PINNED_TYPE: &str = "io.nats.jetstream.advisory.v1.consumer_group_pinned";
const UNPINNED_TYPE: &str = "io.nats.jetstream.advisory.v1.consumer_group_unpinned";

#[derive(Serialize)]
struct PinAdvisory<'a> {
    #[serde(flatten)]
    header: EventHeader,
    account: &'a str,
    stream: &'a str,
    consumer: &'a str,
    group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Publishes the `PINNED` or `UNPINNED` advisory of a priority group, as nats-server
/// 2.15.1 words them (subjects `$JS.EVENT.ADVISORY.CONSUMER.PINNED|UNPINNED.<s>.<c>`).
pub(super) fn pin(out: &Outbox, stream: &str, consumer: &str, event: &PinEvent) {
    let (pre, kind, group, pinned_id, reason) = match event {
        PinEvent::Pinned { group, id } => (PINNED_PRE, PINNED_TYPE, group, Some(id.as_str()), None),
        PinEvent::Unpinned { group, reason } => {
            (UNPINNED_PRE, UNPINNED_TYPE, group, None, Some(*reason))
        }
    };
    let body = PinAdvisory {
        header: header(kind),
        account: &out.account().name,
        stream,
        consumer,
        group,
        pinned_id,
        reason,
    };
    publish_json(out, &consumer_subject(pre, stream, consumer), &body);
}

/// Publishes the `MSG_NAKED` advisory.
pub(crate) fn naked(out: &Outbox, stream: &str, consumer: &str, m: AckMeta) {
    let body = NakAdvisory {
        header: header(NAK_TYPE),
        stream,
        consumer,
        consumer_seq: m.consumer_seq,
        stream_seq: m.stream_seq,
        deliveries: m.deliveries,
    };
    publish_json(out, &consumer_subject(NAKED_PRE, stream, consumer), &body);
}

/// Publishes the advisory for a message given up on.
pub(crate) fn dropped(out: &Outbox, stream: &str, consumer: &str, d: &Dropped) {
    match &d.term {
        Some(reason) => {
            let body = TerminatedAdvisory {
                header: header(TERMINATED_TYPE),
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                consumer_seq: d.dseq,
                stream_seq: d.sseq,
                deliveries: d.deliveries,
                reason: reason.clone(),
                domain: String::new(),
            };
            let subj = consumer_subject(CONSUMER_MSG_TERMINATED_PRE, stream, consumer);
            publish_json(out, &subj, &body);
        }
        None => {
            let body = MaxDeliveriesAdvisory {
                header: header(MAX_DELIVER_TYPE),
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                stream_seq: d.sseq,
                deliveries: d.deliveries,
                domain: String::new(),
            };
            let subj = consumer_subject(CONSUMER_MAX_DELIVERIES_PRE, stream, consumer);
            publish_json(out, &subj, &body);
        }
    }
}

/// Republishes `msg` to the dead-letter subject with the original headers plus
/// `Rill-Dead-Letter-Reason`, `Nats-Stream`, `Nats-Consumer`, `Nats-Sequence`,
/// `Nats-Subject` and `Rill-Deliveries`.
pub(crate) fn dead_letter(
    out: &Outbox,
    subject: &str,
    stream: &str,
    consumer: &str,
    d: &Dropped,
    msg: &StoredMsg,
) {
    let mut h = msg
        .headers
        .as_ref()
        .and_then(|b| HeaderMap::parse(b).ok())
        .unwrap_or_default();
    let reason = match &d.term {
        Some(r) if r.is_empty() => "terminated".to_owned(),
        Some(r) => format!("terminated: {r}"),
        None => "max_deliveries".to_owned(),
    };
    h.status = None;
    h.description = None;
    h.insert("Rill-Dead-Letter-Reason", reason);
    h.insert("Nats-Stream", stream);
    h.insert("Nats-Consumer", consumer);
    h.insert("Nats-Sequence", d.sseq.to_string());
    h.insert("Nats-Subject", msg.subject_str());
    h.insert("Rill-Deliveries", d.deliveries.to_string());
    out.publish(subject, Some(h.to_bytes()), msg.payload.clone());
}

/// Publishes `STREAM.CREATED` / `STREAM.UPDATED` / `STREAM.DELETED` for the stream API.
pub(crate) fn stream_action(account: &Arc<Account>, stream: &str, action: ActionKind) {
    let pre = match action {
        ActionKind::Create => STREAM_CREATED_PRE,
        ActionKind::Modify => STREAM_UPDATED_PRE,
        ActionKind::Delete => STREAM_DELETED_PRE,
    };
    let body = StreamActionAdvisory {
        header: header(STREAM_ACTION_TYPE),
        stream: stream.to_owned(),
        action,
        domain: String::new(),
    };
    publish_json(
        &Outbox::new(Arc::clone(account)),
        &stream_subject(pre, stream),
        &body,
    );
}

/// Publishes `CONSUMER.CREATED` / `CONSUMER.DELETED`.
pub fn consumer_action(out: &Outbox, stream: &str, consumer: &str, action: ActionKind) {
    let pre = match action {
        ActionKind::Delete => CONSUMER_DELETED_PRE,
        _ => CONSUMER_CREATED_PRE,
    };
    let body = ConsumerActionAdvisory {
        header: header(CONSUMER_ACTION_TYPE),
        stream: stream.to_owned(),
        consumer: consumer.to_owned(),
        action,
        domain: String::new(),
    };
    publish_json(out, &consumer_subject(pre, stream, consumer), &body);
}

/// Publishes `CONSUMER.PAUSE` (paused or resumed).
pub fn paused(out: &Outbox, stream: &str, consumer: &str, paused: bool, until: Timestamp) {
    let body = ConsumerPauseAdvisory {
        header: header(CONSUMER_PAUSE_TYPE),
        stream: stream.to_owned(),
        consumer: consumer.to_owned(),
        paused,
        pause_until: until,
        domain: String::new(),
    };
    publish_json(
        out,
        &consumer_subject(CONSUMER_PAUSE_PRE, stream, consumer),
        &body,
    );
}

/// nats-server's `*_leader_elected` advisory: a replicated stream's or consumer's group
/// has a new leader; `replicas` lists every member, the leader too.
#[derive(Serialize)]
struct LeaderElectedAdvisory<'a> {
    #[serde(flatten)]
    header: EventHeader,
    stream: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer: Option<&'a str>,
    leader: &'a str,
    replicas: &'a [rill_protocol::jsapi::PeerInfo],
}

/// Publishes `STREAM.LEADER_ELECTED.<stream>`, or with a consumer
/// `CONSUMER.LEADER_ELECTED.<stream>.<consumer>`, in the stream's account.
pub(crate) fn leader_elected(
    account: &Arc<Account>,
    stream: &str,
    consumer: Option<&str>,
    leader: &str,
    replicas: &[rill_protocol::jsapi::PeerInfo],
) {
    let (kind, subject) = match consumer {
        None => (
            "io.nats.jetstream.advisory.v1.stream_leader_elected",
            format!("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{stream}"),
        ),
        Some(c) => (
            "io.nats.jetstream.advisory.v1.consumer_leader_elected",
            format!("$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.{stream}.{c}"),
        ),
    };
    let body = LeaderElectedAdvisory {
        header: header(kind),
        stream,
        consumer,
        leader,
        replicas,
    };
    publish_json(&Outbox::new(Arc::clone(account)), &subject, &body);
}
