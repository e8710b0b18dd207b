//! An account's MQTT state in its JetStream ([`MqttStore`]), made on the first CONNECT
//! in the account, as nats-server does, in the same three streams:
//!
//! | stream | subjects | holds |
//! |---|---|---|
//! | `$MQTT_sess` | `$MQTT.sess.<client id hash>` | one session record per client (JSON; `max_msgs_per_subject: 1`) |
//! | `$MQTT_msgs` | `$MQTT.msgs.<subject>` | QoS 1 messages, kept while a QoS 1 subscription's consumer has not acknowledged them (interest retention) |
//! | `$MQTT_rmsgs` | `$MQTT.rmsgs.<subject>` | the retained message of each topic (`max_msgs_per_subject: 1`; an empty payload clears it) |
//! | `$MQTT_qos2in` | `$MQTT.qos2.in.<client id hash>.<packet id>` | QoS 2 publishes received (PUBREC sent) and not yet released by PUBREL |
//! | `$MQTT_out` | `$MQTT.out.pubrel.<client id hash>.<packet id>` | QoS 2 deliveries the client received (PUBREC) and has not completed (PUBCOMP): their PUBREL is sent again when the session resumes |
//!
//! Each QoS 1 subscription of a session is a durable push consumer on `$MQTT_msgs`
//! (explicit acks, `ack_wait`, `max_ack_pending`) delivering to `$MQTT.sub.<id>`; the
//! consumer outlives the connection (and the server), so a device that reconnects gets
//! what was published while it was away. The retained messages are also kept in memory
//! (loaded from the stream on start) to answer new subscriptions at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use rill_protocol::headers::HeaderMap;
use rill_protocol::subject;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::jsa::{AckKind, Jsa, JsaError};
use super::outlet::Outlet;
use super::relay::Relay;
use crate::account::Account;
use crate::config::MqttConfig;
use crate::locks;

/// Subject prefix of the QoS 1 messages stored in `$MQTT_msgs`.
pub(crate) const MSGS_PREFIX: &str = "$MQTT.msgs.";
const RMSGS_PREFIX: &str = "$MQTT.rmsgs.";
const SESS_PREFIX: &str = "$MQTT.sess.";
const SESS_STREAM: &str = "$MQTT_sess";
const MSGS_STREAM: &str = "$MQTT_msgs";
const RMSGS_STREAM: &str = "$MQTT_rmsgs";
const QOS2_PREFIX: &str = "$MQTT.qos2.in.";
const QOS2_STREAM: &str = "$MQTT_qos2in";
const PUBREL_PREFIX: &str = "$MQTT.out.pubrel.";
const OUT_STREAM: &str = "$MQTT_out";
const RETAINED_TOPIC: &str = "Nmqtt-RTopic";
const RETAINED_FLAGS: &str = "Nmqtt-RFlags";

/// A retained message.
#[derive(Debug, Clone)]
pub(crate) struct Retained {
    /// The MQTT topic it was published on.
    pub topic: String,
    /// Its QoS.
    pub qos: u8,
    /// Its payload.
    pub payload: Bytes,
    /// Its header block (MQTT 5 properties).
    pub headers: Option<Bytes>,
}

/// One subscription as a session record keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSub {
    /// Granted QoS.
    pub qos: u8,
    /// The durable consumer of a QoS 1 subscription.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consumer: String,
    /// Its deliver subject.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deliver: String,
    /// MQTT 5 subscription identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<usize>,
}

/// A session record in `$MQTT_sess`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    /// The client id (the subject holds only its hash).
    pub id: String,
    /// Subscriptions by MQTT filter.
    #[serde(default)]
    pub subs: BTreeMap<String, StoredSub>,
    /// Seconds the session outlives its connection (`u32::MAX`: for ever).
    #[serde(default)]
    pub expiry: u32,
    /// When its connection ended (Unix seconds; 0 while connected).
    #[serde(default)]
    pub gone_at: u64,
}

/// An account's MQTT state.
#[derive(Debug)]
pub(crate) struct MqttStore {
    pub(crate) jsa: Jsa,
    /// Passes NATS replies to MQTT 5 requests on with their correlation data.
    _relay: Relay,
    config: MqttConfig,
    retained: Mutex<BTreeMap<String, Retained>>,
}

impl MqttStore {
    /// Makes sure the streams exist and loads the retained messages.
    ///
    /// # Errors
    /// [`JsaError`] when the account's JetStream refuses (JetStream not enabled, limits).
    pub(crate) async fn open(account: Arc<Account>, config: MqttConfig) -> Result<Self, JsaError> {
        let jsa = Jsa::new(
            Arc::clone(&account),
            config.js_domain.as_deref(),
            config.js_api_timeout,
        );
        let store = Self {
            _relay: Relay::start(Arc::clone(&account)),
            jsa,
            config,
            retained: Mutex::new(BTreeMap::new()),
        };
        store.ensure_streams().await?;
        store.load_retained().await?;
        Ok(store)
    }

    async fn ensure_streams(&self) -> Result<(), JsaError> {
        let replicas = self.config.stream_replicas.max(1);
        for (name, subjects, retention, per_subject) in [
            (SESS_STREAM, "$MQTT.sess.>", "limits", 1),
            (MSGS_STREAM, "$MQTT.msgs.>", "interest", -1),
            (RMSGS_STREAM, "$MQTT.rmsgs.>", "limits", 1),
            (QOS2_STREAM, "$MQTT.qos2.in.>", "limits", 1),
            (OUT_STREAM, "$MQTT.out.>", "limits", 1),
        ] {
            let cfg = json!({
                "name": name, "subjects": [subjects], "retention": retention,
                "max_msgs_per_subject": per_subject, "storage": "file",
                "num_replicas": replicas,
            });
            match self.jsa.api(&format!("STREAM.CREATE.{name}"), &cfg).await {
                Ok(_) => {}
                // Already there (made by an earlier run, maybe with other settings).
                Err(JsaError::Api { code: 10058, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads every retained message from `$MQTT_rmsgs` into memory.
    async fn load_retained(&self) -> Result<(), JsaError> {
        for m in self.scan(RMSGS_STREAM, &format!("{RMSGS_PREFIX}>")).await? {
            if let Some(subj) = m.subject.strip_prefix(RMSGS_PREFIX) {
                self.remember(subj, m.headers, m.payload);
            }
        }
        Ok(())
    }

    /// Every message of `stream` on subjects matching `filter`, in stream order.
    async fn scan(&self, stream: &str, filter: &str) -> Result<Vec<StoredMsg>, JsaError> {
        let mut seq = 1u64;
        let mut out = Vec::new();
        loop {
            let body = json!({"seq": seq, "next_by_subj": filter});
            let op = format!("STREAM.MSG.GET.{stream}");
            let reply = match self.jsa.api(&op, &body).await {
                Ok(r) => r,
                Err(JsaError::Api { code: 10037, .. }) => return Ok(out),
                Err(e) => return Err(e),
            };
            let m = StoredMsg::from_reply(&reply);
            seq = m.seq + 1;
            out.push(m);
        }
    }

    /// The last message on `subject` in `stream`, if any.
    async fn last(&self, stream: &str, subject: &str) -> Result<Option<StoredMsg>, JsaError> {
        let body = json!({"last_by_subj": subject});
        match self
            .jsa
            .api(&format!("STREAM.MSG.GET.{stream}"), &body)
            .await
        {
            Ok(r) => Ok(Some(StoredMsg::from_reply(&r))),
            Err(JsaError::Api { code: 10037, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records a retained message (an empty payload clears the topic).
    fn remember(&self, subject: &str, headers: Option<Bytes>, payload: Bytes) {
        let mut map = locks::lock(&self.retained);
        if payload.is_empty() {
            map.remove(subject);
            return;
        }
        let h = headers.as_deref().and_then(|h| HeaderMap::parse(h).ok());
        let topic = h
            .as_ref()
            .and_then(|h| h.get(RETAINED_TOPIC))
            .map_or_else(|| super::topic::subject_to_topic(subject), str::to_string);
        let qos = h
            .as_ref()
            .and_then(|h| h.get(RETAINED_FLAGS))
            .and_then(|f| f.parse::<u8>().ok())
            .map_or(0, |f| (f >> 1) & 3);
        map.insert(
            subject.to_string(),
            Retained {
                topic,
                qos,
                payload,
                headers,
            },
        );
    }

    /// Keeps (or clears) the retained message of `topic` on `subject`, in memory at once
    /// and in `$MQTT_rmsgs`.
    pub(crate) fn retain(
        &self,
        subject: &str,
        topic: &str,
        qos: u8,
        headers: &Bytes,
        payload: &Bytes,
    ) {
        let mut h = HeaderMap::parse(headers).unwrap_or_default();
        h.insert(RETAINED_TOPIC, topic);
        h.insert(RETAINED_FLAGS, ((qos << 1) | 1).to_string());
        let block = h.to_bytes();
        self.remember(subject, Some(block.clone()), payload.clone());
        self.jsa.publish(
            &format!("{RMSGS_PREFIX}{subject}"),
            None,
            Some(&block),
            payload,
        );
    }

    /// The retained messages a new subscription on the NATS filters `filters` gets.
    pub(crate) fn retained_for(&self, filters: &[String], reserved_ok: bool) -> Vec<Retained> {
        let map = locks::lock(&self.retained);
        map.iter()
            .filter(|(subj, r)| {
                filters.iter().any(|f| subject::matches(f, subj))
                    && (reserved_ok || !super::topic::is_reserved(&r.topic))
            })
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The session subject of `client_id`.
    fn session_subject(client_id: &str) -> String {
        format!("{SESS_PREFIX}{}", hash(client_id))
    }

    /// The stored session of `client_id`, if any.
    ///
    /// # Errors
    /// [`JsaError`] when the stream cannot be read.
    pub(crate) async fn load_session(
        &self,
        client_id: &str,
    ) -> Result<Option<SessionRecord>, JsaError> {
        let subject = Self::session_subject(client_id);
        let Some(m) = self.last(SESS_STREAM, &subject).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<SessionRecord>(&m.payload)
            .ok()
            .filter(|r| r.id == client_id))
    }

    /// Writes `record` (replacing the client's previous one).
    ///
    /// # Errors
    /// [`JsaError`] when the stream does not store it.
    pub(crate) async fn save_session(&self, record: &SessionRecord) -> Result<(), JsaError> {
        let subject = Self::session_subject(&record.id);
        let body = Bytes::from(serde_json::to_vec(record).unwrap_or_default());
        self.jsa.request(&subject, None, &body).await.map(drop)
    }

    /// Forgets the client's session: its consumers, its record, and its QoS 2 state.
    pub(crate) async fn drop_session(&self, record: &SessionRecord) {
        for sub in record.subs.values() {
            self.delete_consumer(&sub.consumer).await;
        }
        let id = hash(&record.id);
        for (stream, filter) in [
            (SESS_STREAM, Self::session_subject(&record.id)),
            (QOS2_STREAM, format!("{QOS2_PREFIX}{id}.>")),
            (OUT_STREAM, format!("{PUBREL_PREFIX}{id}.>")),
        ] {
            let body = json!({"filter": filter});
            let _ = self.jsa.api(&format!("STREAM.PURGE.{stream}"), &body).await;
        }
    }

    /// Holds a QoS 2 publish of `client_id` until its PUBREL; the PUBREC goes out once
    /// it is stored.
    pub(crate) fn hold_qos2(&self, client_id: &str, held: &Held2, outlet: &Arc<Outlet>) {
        let subject = format!("{QOS2_PREFIX}{}.{}", hash(client_id), held.pkid);
        let body = Bytes::from(serde_json::to_vec(held).unwrap_or_default());
        let ack = (outlet, AckKind::Rec, held.pkid);
        self.jsa.store_then_ack(&subject, None, &body, ack);
    }

    /// The QoS 2 publish `pkid` of `client_id` held before its connection ended.
    pub(crate) async fn held_qos2(&self, client_id: &str, pkid: u16) -> Option<Held2> {
        let subject = format!("{QOS2_PREFIX}{}.{pkid}", hash(client_id));
        let m = self.last(QOS2_STREAM, &subject).await.ok()??;
        serde_json::from_slice(&m.payload).ok()
    }

    /// Forgets a released QoS 2 publish.
    pub(crate) fn release_qos2(&self, client_id: &str, pkid: u16) {
        let filter = format!("{QOS2_PREFIX}{}.{pkid}", hash(client_id));
        let op = format!("STREAM.PURGE.{QOS2_STREAM}");
        self.jsa.api_nowait(&op, &json!({ "filter": filter }));
    }

    /// Records that the client received QoS 2 delivery `pkid` (PUBREC): its PUBREL is
    /// owed until PUBCOMP.
    pub(crate) fn owe_pubrel(&self, client_id: &str, pkid: u16) {
        let subject = format!("{PUBREL_PREFIX}{}.{pkid}", hash(client_id));
        self.jsa.publish(&subject, None, None, &Bytes::new());
    }

    /// The client completed QoS 2 delivery `pkid` (PUBCOMP).
    pub(crate) fn settle_pubrel(&self, client_id: &str, pkid: u16) {
        let filter = format!("{PUBREL_PREFIX}{}.{pkid}", hash(client_id));
        let op = format!("STREAM.PURGE.{OUT_STREAM}");
        self.jsa.api_nowait(&op, &json!({ "filter": filter }));
    }

    /// The packet ids whose PUBREL `client_id` is owed (sent again on resume).
    pub(crate) async fn owed_pubrels(&self, client_id: &str) -> Vec<u16> {
        let prefix = format!("{PUBREL_PREFIX}{}.", hash(client_id));
        let found = self.scan(OUT_STREAM, &format!("{prefix}>")).await;
        let found = found.unwrap_or_default();
        let ids = found.iter().filter_map(|m| m.subject.strip_prefix(&prefix));
        ids.filter_map(|p| p.parse().ok()).collect()
    }

    /// Creates the durable consumer of a QoS 1 subscription on the NATS `filters`.
    ///
    /// # Errors
    /// [`JsaError`] when JetStream refuses it.
    pub(crate) async fn create_consumer(
        &self,
        durable: &str,
        deliver: &str,
        filters: &[String],
        max_ack_pending: u16,
    ) -> Result<(), JsaError> {
        let stored: Vec<String> = filters
            .iter()
            .map(|f| format!("{MSGS_PREFIX}{f}"))
            .collect();
        let mut cfg = json!({
            "durable_name": durable,
            "deliver_subject": deliver,
            "deliver_policy": "new",
            "ack_policy": "explicit",
            "ack_wait": self.config.ack_wait().as_nanos() as u64,
            "max_ack_pending": max_ack_pending,
            "max_deliver": -1,
            "replay_policy": "instant",
        });
        if stored.len() == 1 {
            cfg["filter_subject"] = json!(stored[0]);
        } else {
            cfg["filter_subjects"] = json!(stored);
        }
        if self.config.consumer_memory_storage {
            cfg["mem_storage"] = json!(true);
        }
        let body = json!({"stream_name": MSGS_STREAM, "config": cfg});
        self.jsa
            .api(&format!("CONSUMER.CREATE.{MSGS_STREAM}.{durable}"), &body)
            .await
            .map(drop)
    }

    /// Deletes a QoS 1 subscription's consumer (nothing for an empty name).
    pub(crate) async fn delete_consumer(&self, durable: &str) {
        if durable.is_empty() {
            return;
        }
        let _ = self
            .jsa
            .api(
                &format!("CONSUMER.DELETE.{MSGS_STREAM}.{durable}"),
                &Value::Null,
            )
            .await;
    }

    /// Stores a QoS 1 message so QoS 1 subscriptions' consumers deliver it.
    pub(crate) fn msgs_subject(subject: &str) -> String {
        format!("{MSGS_PREFIX}{subject}")
    }
}

/// A QoS 2 publish held between PUBLISH and PUBREL (in memory, and in `$MQTT_qos2in`
/// as JSON so that it survives the connection).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Held2 {
    /// Its packet id.
    pub pkid: u16,
    /// The NATS subject it goes to.
    pub subject: String,
    /// The MQTT topic it was published on.
    pub topic: String,
    /// Its reply subject (MQTT 5 response topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Its header block, base64.
    pub headers: String,
    /// Its payload, base64.
    pub payload: String,
    /// The retain flag.
    #[serde(default)]
    pub retain: bool,
}

/// A message read back from a stream.
#[derive(Debug, Default)]
struct StoredMsg {
    seq: u64,
    subject: String,
    headers: Option<Bytes>,
    payload: Bytes,
}

impl StoredMsg {
    /// From a `STREAM.MSG.GET` reply.
    fn from_reply(reply: &Value) -> Self {
        let m = &reply["message"];
        let decode = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .and_then(|s| STANDARD.decode(s).ok())
        };
        Self {
            seq: m["seq"].as_u64().unwrap_or(u64::MAX - 1),
            subject: m["subject"].as_str().unwrap_or_default().to_string(),
            headers: decode("hdrs").map(Bytes::from),
            payload: Bytes::from(decode("data").unwrap_or_default()),
        }
    }
}

/// A stable, subject-safe hash of a client id (FNV-1a 64 and CRC-32, hex): the id itself
/// may hold characters a subject cannot, and the record repeats the id to rule out clashes.
pub(crate) fn hash(id: &str) -> String {
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        fnv ^= u64::from(b);
        fnv = fnv.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{fnv:016x}{:08x}", crc32fast::hash(id.as_bytes()))
}
