//! The comparison's scenarios: what each runs (built from the same argument structs as the `rill bench`
//! subcommands, so a scenario is exactly a bench command line) and which numbers of its [`Report`] go
//! into the table. The idle-connection memory scenario is special: it needs the server's process, so
//! its measurement lives in `server.rs`.

use std::time::Duration;

use super::super::core::{PubArgs, PubSubArgs};
use super::super::js::{JsFetchArgs, JsOrderedArgs, JsPubArgs, Storage, StreamOpts};
use super::super::kv::KvArgs;
use super::super::report::Report;
use super::super::request::RequestArgs;
use super::super::run::{Common, Target};
use super::super::{core, js, kv, request};

/// Which way a number is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    /// Throughput: more is better.
    Higher,
    /// Latency and memory: less is better.
    Lower,
}

/// Which number of a report a table row shows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    /// Messages (or operations) per second of a phase.
    Rate,
    /// Median latency of a phase, µs.
    P50,
    /// 99th percentile latency, µs.
    P99,
    /// 99.9th percentile latency, µs.
    P999,
}

/// One table row of a scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    /// Row label, e.g. `msgs/s` or `p99 µs`.
    pub(crate) label: &'static str,
    /// The report phase the number comes from.
    pub(crate) phase: &'static str,
    /// Which number.
    pub(crate) field: Field,
}

impl Metric {
    /// Which way this number is better.
    pub(crate) fn better(&self) -> Better {
        match self.field {
            Field::Rate => Better::Higher,
            _ => Better::Lower,
        }
    }

    /// The number in `report`, if the phase exists and measured it.
    pub(crate) fn value(&self, report: &Report) -> Option<f64> {
        let phase = report.phase(self.phase)?;
        match self.field {
            Field::Rate => Some(phase.msgs_per_sec),
            Field::P50 => phase.latency_us.map(|l| l.p50),
            Field::P99 => phase.latency_us.map(|l| l.p99),
            Field::P999 => phase.latency_us.map(|l| l.p999),
        }
    }
}

/// What a scenario runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// `rill bench pub`.
    Pub,
    /// `rill bench pubsub` with this many subscribers, optionally in one queue group.
    PubSub { subs: usize, queue: bool },
    /// `rill bench request`.
    Request,
    /// Memory per idle connection.
    IdleConns,
    /// `rill bench js pub --sync`.
    JsPubSync,
    /// `rill bench js pub --window 256`.
    JsPubAsync,
    /// `rill bench js fetch --batch 100`.
    JsFetch,
    /// `rill bench js ordered`.
    JsOrdered,
    /// `rill bench kv`.
    Kv,
    /// `rill bench mqtt` at this QoS, on a fresh server with an MQTT listener.
    Mqtt { qos: u8 },
    /// Memory per idle MQTT connection, on a fresh server with an MQTT listener.
    MqttIdle,
    /// `rill bench streams` creating this many memory streams (KV buckets with `kv`) on a fresh
    /// server: create rate, memory per stream and threads added.
    Streams { kv: bool },
    /// `rill bench pubsub` on a fresh three-server cluster: the publisher on n1, this many
    /// subscribers on n2 and n3 (in one queue group with `queue`).
    Cluster { subs: usize, queue: bool },
    /// `rill bench js pub` on a fresh three-server JetStream cluster: publishes on n1 to a file
    /// stream of this many replicas (each ack once a quorum has the message on disk).
    ClusterJs { replicas: u32, sync: bool },
    /// A file stream of N messages spread over this many subjects on a fresh server: restart time
    /// after SIGKILL and after a clean stop, clean stop time, and memory after each restart.
    Restart { subjects: u32 },
}

impl Kind {
    /// True for the scenarios that run on a fresh server of their own rather than the shared one.
    pub(crate) fn fresh_server(self) -> bool {
        matches!(
            self,
            Kind::IdleConns
                | Kind::Mqtt { .. }
                | Kind::MqttIdle
                | Kind::Streams { .. }
                | Kind::Cluster { .. }
                | Kind::ClusterJs { .. }
                | Kind::Restart { .. }
        )
    }
}

/// One named scenario with its full-run message count and payload size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    /// Name used by `--scenarios` and in the table.
    pub(crate) name: &'static str,
    /// One-line description for `--list`.
    pub(crate) about: &'static str,
    /// What it runs.
    pub(crate) kind: Kind,
    /// Messages in a full run (connections for `idle-conns`).
    pub(crate) msgs: u64,
    /// Payload size.
    pub(crate) size: usize,
}

const fn sc(
    name: &'static str,
    about: &'static str,
    kind: Kind,
    msgs: u64,
    size: usize,
) -> Scenario {
    Scenario {
        name,
        about,
        kind,
        msgs,
        size,
    }
}

/// Every scenario, in table order.
pub(crate) const ALL: &[Scenario] = &[
    sc(
        "pub-16",
        "1 publisher, 16 B, no subscribers",
        Kind::Pub,
        2_000_000,
        16,
    ),
    sc(
        "pubsub-16",
        "1 publisher : 1 subscriber, 16 B",
        Kind::PubSub {
            subs: 1,
            queue: false,
        },
        1_000_000,
        16,
    ),
    sc(
        "pubsub-1k",
        "1 publisher : 1 subscriber, 1 KiB",
        Kind::PubSub {
            subs: 1,
            queue: false,
        },
        300_000,
        1024,
    ),
    sc(
        "fanout-16",
        "1 publisher : 4 subscribers, 16 B",
        Kind::PubSub {
            subs: 4,
            queue: false,
        },
        250_000,
        16,
    ),
    sc(
        "queue-16",
        "1 publisher : 4 queue subscribers, 16 B",
        Kind::PubSub {
            subs: 4,
            queue: true,
        },
        1_000_000,
        16,
    ),
    sc(
        "request-16",
        "request/reply, 1 requester, 16 B",
        Kind::Request,
        20_000,
        16,
    ),
    sc(
        "idle-conns",
        "memory per idle connection",
        Kind::IdleConns,
        1000,
        0,
    ),
    sc(
        "js-pub-sync",
        "JetStream sync publish, file store, 16 B",
        Kind::JsPubSync,
        5_000,
        16,
    ),
    sc(
        "js-pub-async",
        "JetStream async publish, window 256, file, 16 B",
        Kind::JsPubAsync,
        200_000,
        16,
    ),
    sc(
        "js-fetch",
        "pull consumer fetch, batch 100, file, 16 B",
        Kind::JsFetch,
        200_000,
        16,
    ),
    sc(
        "js-ordered",
        "ordered consumer replay, file, 16 B",
        Kind::JsOrdered,
        200_000,
        16,
    ),
    sc("kv", "KV put then get, file, 16 B", Kind::Kv, 5_000, 16),
    sc(
        "restart-1m",
        "1M stored 16 B messages: restart after SIGKILL / clean stop, stop time, RSS",
        Kind::Restart { subjects: 1 },
        1_000_000,
        16,
    ),
    sc(
        "restart-1m-100k",
        "1M stored 16 B messages on 100,000 subjects (10 each): restart, stop time, RSS",
        Kind::Restart { subjects: 100_000 },
        1_000_000,
        16,
    ),
    sc(
        "cluster-pubsub-16",
        "3-server cluster: 1 publisher on n1 : 1 subscriber on n2, 16 B",
        Kind::Cluster {
            subs: 1,
            queue: false,
        },
        1_000_000,
        16,
    ),
    sc(
        "cluster-queue-16",
        "3-server cluster: 1 publisher on n1 : 4 queue subscribers on n2 and n3, 16 B",
        Kind::Cluster {
            subs: 4,
            queue: true,
        },
        1_000_000,
        16,
    ),
    sc(
        "cluster-js-r3-sync",
        "3-server JetStream cluster: sync publish on n1 to an R3 file stream, 16 B",
        Kind::ClusterJs {
            replicas: 3,
            sync: true,
        },
        5_000,
        16,
    ),
    sc(
        "cluster-js-r3-async",
        "3-server JetStream cluster: async publish (window 256) on n1 to an R3 file stream, 16 B",
        Kind::ClusterJs {
            replicas: 3,
            sync: false,
        },
        200_000,
        16,
    ),
    sc(
        "mqtt-q0-16",
        "MQTT 1 publisher : 1 subscriber, QoS 0, 16 B",
        Kind::Mqtt { qos: 0 },
        200_000,
        16,
    ),
    sc(
        "mqtt-q1-16",
        "MQTT 1 publisher : 1 subscriber, QoS 1, 16 B",
        Kind::Mqtt { qos: 1 },
        50_000,
        16,
    ),
    sc(
        "mqtt-idle-conns",
        "memory per idle MQTT connection",
        Kind::MqttIdle,
        1000,
        0,
    ),
    sc(
        "streams-10k",
        "create 10,000 memory streams: rate, memory per stream, threads",
        Kind::Streams { kv: false },
        10_000,
        0,
    ),
    sc(
        "kv-buckets-10k",
        "create 10,000 memory KV buckets: rate, memory per bucket, threads",
        Kind::Streams { kv: true },
        10_000,
        0,
    ),
];

/// The scenarios named in `names` (all when empty), in table order.
pub(crate) fn select(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    for name in names {
        if !ALL.iter().any(|s| s.name == name) {
            let known: Vec<&str> = ALL.iter().map(|s| s.name).collect();
            anyhow::bail!("unknown scenario {name:?}; known: {}", known.join(", "));
        }
    }
    Ok(ALL
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .copied()
        .collect())
}

/// The table rows of a scenario.
pub(crate) fn metrics(kind: Kind) -> &'static [Metric] {
    macro_rules! m {
        ($label:expr, $phase:expr, $field:expr) => {
            Metric {
                label: $label,
                phase: $phase,
                field: $field,
            }
        };
    }
    match kind {
        Kind::Pub => &[m!("msgs/s", "pub", Field::Rate)],
        Kind::PubSub { .. } | Kind::Cluster { .. } => &[m!("msgs/s received", "sub", Field::Rate)],
        Kind::Request => &[
            m!("requests/s", "request", Field::Rate),
            m!("p50 µs", "request", Field::P50),
            m!("p99 µs", "request", Field::P99),
            m!("p99.9 µs", "request", Field::P999),
        ],
        Kind::IdleConns | Kind::MqttIdle | Kind::Restart { .. } => &[],
        Kind::Streams { .. } => &[
            m!("creates/s", "create", Field::Rate),
            m!("create p50 µs", "create", Field::P50),
        ],
        Kind::Mqtt { .. } => &[m!("msgs/s received", "sub", Field::Rate)],
        Kind::JsPubSync | Kind::ClusterJs { sync: true, .. } => &[
            m!("p50 µs", "pub", Field::P50),
            m!("p99 µs", "pub", Field::P99),
        ],
        Kind::JsPubAsync | Kind::ClusterJs { sync: false, .. } => {
            &[m!("msgs/s", "pub", Field::Rate)]
        }
        Kind::JsFetch => &[m!("msgs/s", "fetch", Field::Rate)],
        Kind::JsOrdered => &[m!("msgs/s", "ordered", Field::Rate)],
        Kind::Kv => &[
            m!("put p50 µs", "put", Field::P50),
            m!("get p50 µs", "get", Field::P50),
        ],
    }
}

/// Runs one scenario (other than `idle-conns`) with `msgs` messages and a time cap.
pub(crate) async fn run(
    s: &Scenario,
    target: &Target,
    msgs: u64,
    duration: Duration,
) -> anyhow::Result<Report> {
    let common = Common::quiet(msgs, s.size, duration);
    let stream = StreamOpts {
        stream: "benchcompare".into(),
        subject: "rill.bench.compare".into(),
        storage: Storage::File,
        replace: true,
        keep: false,
        subjects: 1,
        replicas: 1,
    };
    match s.kind {
        Kind::Pub => {
            let args = PubArgs {
                subject: "rill.bench".into(),
                pubs: 1,
                common,
            };
            core::publish(target, &args).await
        }
        Kind::PubSub { subs, queue } => {
            let args = PubSubArgs {
                subject: "rill.bench".into(),
                pubs: 1,
                subs,
                queue: queue.then(|| "rill-bench".to_string()),
                sub_servers: Vec::new(),
                common,
            };
            core::pubsub(target, &args).await
        }
        Kind::Request => {
            let args = RequestArgs {
                subject: "rill.bench.request".into(),
                clients: 1,
                responders: 1,
                common,
            };
            request::request(target, &args).await
        }
        Kind::IdleConns
        | Kind::Mqtt { .. }
        | Kind::MqttIdle
        | Kind::Streams { .. }
        | Kind::Cluster { .. }
        | Kind::ClusterJs { .. }
        | Kind::Restart { .. } => {
            anyhow::bail!("{} is run by the comparison itself", s.name)
        }
        Kind::JsPubSync | Kind::JsPubAsync => {
            let sync = matches!(s.kind, Kind::JsPubSync);
            let args = JsPubArgs {
                stream,
                sync,
                window: 256,
                pubs: 1,
                common,
            };
            js::run(target, &js::JsCmd::Pub(args)).await
        }
        Kind::JsFetch => {
            let args = JsFetchArgs {
                stream,
                batch: 100,
                ack: false,
                common,
            };
            js::run(target, &js::JsCmd::Fetch(args)).await
        }
        Kind::JsOrdered => {
            let args = JsOrderedArgs { stream, common };
            js::run(target, &js::JsCmd::Ordered(args)).await
        }
        Kind::Kv => {
            let args = KvArgs {
                bucket: "benchcompare".into(),
                storage: Storage::File,
                keys: 1000,
                clients: 1,
                replace: true,
                keep: false,
                common,
            };
            kv::run(target, &args).await
        }
    }
}

/// The phase whose count says whether a run delivered everything (for the notes).
pub(crate) fn headline_phase(kind: Kind) -> &'static str {
    match kind {
        Kind::Pub => "pub",
        Kind::PubSub { .. } | Kind::Cluster { .. } => "sub",
        Kind::Request => "request",
        Kind::IdleConns | Kind::MqttIdle => "",
        Kind::Mqtt { .. } => "sub",
        Kind::JsPubSync | Kind::JsPubAsync | Kind::ClusterJs { .. } | Kind::Restart { .. } => "pub",
        Kind::JsFetch => "fetch",
        Kind::JsOrdered => "ordered",
        Kind::Kv => "get",
        Kind::Streams { .. } => "create",
    }
}
