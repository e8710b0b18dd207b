//! What JetStream shows to monitoring: the `/jsz` document and per-stream and
//! per-consumer Prometheus gauges. Reads state through the stream and consumer
//! handles (one hop to each actor), so it never blocks the message path.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use rill_protocol::jsapi::{API_LEVEL, StorageType};
use serde_json::{Value, json};

use super::JetStream;
use crate::shared::{BrowsePage, BrowseRequest, BrowsedMsg};

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1")
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl JetStream {
    /// This account's `/jsz` document (as a single-account server shows it).
    pub(super) async fn jsz_doc(&self, q: &HashMap<String, String>) -> Value {
        let (mut memory, mut storage, mut messages, mut bytes, mut consumers) =
            (0u64, 0u64, 0u64, 0u64, 0usize);
        let mut details = Vec::new();
        let want_streams = flag(q, "streams") || flag(q, "consumers") || flag(q, "config");
        for cfg in self.stream_configs() {
            let name = &cfg.name;
            let Some(handle) = self.stream(name) else {
                continue;
            };
            let Ok(info) = handle.info().await else {
                continue;
            };
            let used = info.state.bytes;
            match cfg.storage {
                StorageType::Memory => memory += used,
                StorageType::File => storage += used,
            }
            messages += info.state.messages;
            bytes += used;
            consumers += handle.consumer_count();
            if want_streams {
                let mut detail = json!({ "name": name, "created": info.created,
                    "state": info.state, "ingest_dropped": handle.dropped() });
                if flag(q, "config") {
                    detail["config"] = json!(cfg);
                }
                // As nats-server's stream detail: placement, mirror and source lag.
                if let Some(cluster) = &info.cluster {
                    detail["cluster"] = json!(cluster);
                }
                if let Some(mirror) = &info.mirror {
                    detail["mirror"] = json!(mirror);
                }
                if !info.sources.is_empty() {
                    detail["sources"] = json!(info.sources);
                }
                if flag(q, "consumers") {
                    let mut list = Vec::new();
                    for (_, consumer) in self.consumers.list(name) {
                        if let Ok(ci) = consumer.info().await {
                            list.push(json!(ci));
                        }
                    }
                    detail["consumer_detail"] = json!(list);
                }
                details.push(detail);
            }
        }
        let api = json!({
            "level": API_LEVEL,
            "total": self.api_total.load(Ordering::Relaxed),
            "errors": self.api_errors.load(Ordering::Relaxed),
        });
        let mut doc = json!({
            "memory": memory,
            "storage": storage,
            "reserved_memory": 0,
            "reserved_storage": 0,
            "accounts": 1,
            "ha_assets": 0,
            "api": api,
            "streams": self.stream_configs().len(),
            "consumers": consumers,
            "messages": messages,
            "bytes": bytes,
            "total": 1,
        });
        if want_streams || flag(q, "accounts") {
            doc["account_details"] = json!([{
                "name": self.account.name,
                "id": self.account.name,
                "memory": memory,
                "storage": storage,
                "api": api,
                "stream_detail": details,
            }]);
        }
        doc
    }

    /// A page of one stream's messages for the console's message browser: one bounded
    /// batch read through the stream's handle, as `DIRECT.GET` and consumers read.
    pub(super) async fn browse(&self, req: BrowseRequest) -> Result<BrowsePage, String> {
        let handle = self
            .stream(&req.stream)
            .ok_or_else(|| format!("stream {:?} not found", req.stream))?;
        let state = handle.state().await.map_err(|e| e.description)?;
        let filters = match req.subject.is_empty() {
            true => Vec::new(),
            false => vec![req.subject],
        };
        let start = req.start.max(1);
        let batch = handle
            .load_batch(start, filters, req.limit, req.max_bytes)
            .await
            .map_err(|e| e.description)?;
        let msgs = batch
            .msgs
            .into_iter()
            .map(|m| BrowsedMsg {
                seq: m.seq,
                ts: m.ts,
                subject: m.subject_str().to_owned(),
                headers: m.headers,
                payload: m.payload,
            })
            .collect();
        Ok(BrowsePage {
            first_seq: state.first_seq,
            last_seq: state.last_seq,
            messages: state.msgs,
            msgs,
        })
    }

    /// This account's per-stream and per-consumer gauge rows.
    pub(super) async fn metric_rows(&self) -> MetricRows {
        let account = self.account.name.clone();
        let mut rows = MetricRows::default();
        for cfg in self.stream_configs() {
            let name = &cfg.name;
            let Some(handle) = self.stream(name) else {
                continue;
            };
            let Ok(info) = handle.info().await else {
                continue;
            };
            let s = info.state;
            let values = [
                s.messages,
                s.bytes,
                s.first_seq,
                s.last_seq,
                handle.consumer_count() as u64,
                s.lost.as_ref().map_or(0, |l| l.msgs.len() as u64),
                handle.dropped(),
            ];
            rows.streams.push((account.clone(), name.clone(), values));
        }
        for handle in self.consumers.all() {
            let Ok(ci) = handle.info().await else {
                continue;
            };
            let values = [
                ci.num_pending,
                ci.num_ack_pending,
                ci.num_redelivered,
                ci.num_waiting,
                ci.delivered.stream_seq,
                ci.ack_floor.stream_seq,
            ];
            rows.consumers.push((
                account.clone(),
                ci.stream_name.clone(),
                ci.name.clone(),
                values,
            ));
        }
        rows
    }
}

/// Gauge rows of one or more accounts: (account, stream, values) and
/// (account, stream, consumer, values).
#[derive(Debug, Default)]
pub(super) struct MetricRows {
    streams: Vec<(String, String, [u64; 7])>,
    consumers: Vec<(String, String, String, [u64; 6])>,
}

impl MetricRows {
    /// Adds another account's rows.
    pub(super) fn extend(&mut self, other: MetricRows) {
        self.streams.extend(other.streams);
        self.consumers.extend(other.consumers);
    }

    /// The Prometheus text, one family per gauge. The `account` label is added only when
    /// `by_account` (several accounts have JetStream), so a `$G`-only server's output is
    /// as before.
    pub(super) fn text(&self, by_account: bool) -> String {
        let mut out = String::new();
        let gauges = [
            ("rill_stream_messages", "Messages stored in the stream."),
            ("rill_stream_bytes", "Bytes stored in the stream."),
            ("rill_stream_first_seq", "First sequence in the stream."),
            ("rill_stream_last_seq", "Last sequence in the stream."),
            ("rill_stream_consumers", "Consumers of the stream."),
            (
                "rill_stream_lost_messages",
                "Messages lost to damaged storage since the stream was opened.",
            ),
            (
                "rill_stream_dropped_messages",
                "Messages dropped on the way into the stream (its ingest queue was full) since it was opened.",
            ),
        ];
        let acc = |a: &str| match by_account {
            true => format!("account=\"{}\",", label(a)),
            false => String::new(),
        };
        for (i, (metric, help)) in gauges.iter().enumerate() {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            for (account, name, row) in &self.streams {
                let _ = writeln!(
                    out,
                    "{metric}{{{}stream=\"{}\"}} {}",
                    acc(account),
                    label(name),
                    row[i]
                );
            }
        }
        for (i, (metric, help)) in CONSUMER_GAUGES.iter().enumerate() {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            for (account, stream, consumer, values) in &self.consumers {
                let _ = writeln!(
                    out,
                    "{metric}{{{}stream=\"{}\",consumer=\"{}\"}} {}",
                    acc(account),
                    label(stream),
                    label(consumer),
                    values[i]
                );
            }
        }
        out
    }
}

const CONSUMER_GAUGES: [(&str, &str); 6] = [
    (
        "rill_consumer_num_pending",
        "Messages not yet delivered to the consumer.",
    ),
    (
        "rill_consumer_num_ack_pending",
        "Delivered messages awaiting acknowledgement.",
    ),
    (
        "rill_consumer_num_redelivered",
        "Messages delivered more than once.",
    ),
    ("rill_consumer_num_waiting", "Waiting pull requests."),
    (
        "rill_consumer_delivered_stream_seq",
        "Last stream sequence delivered.",
    ),
    (
        "rill_consumer_ack_floor_stream_seq",
        "Stream sequence up to which all is acknowledged.",
    ),
];
