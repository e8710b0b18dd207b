//! `rill bench`: throughput and latency benchmarks against any NATS server (modelled on `nats bench`,
//! with latency percentiles from HDR histograms first-class), and `rill bench compare`, which starts
//! two servers and runs the same scenarios against both in alternation.
//!
//! Layout: `run.rs` shared flags, bounds and helpers; `report.rs` results and their output; one file
//! per benchmark family (`core.rs`, `request.rs`, `js.rs`, `kv.rs`, `streams.rs`, `schedules.rs`,
//! `mqtt.rs`); `compare/` the
//! side-by-side run.

mod compare;
mod core;
mod js;
mod kv;
mod mqtt;
mod report;
mod request;
mod run;
mod schedules;
mod streams;

use crate::connect::ConnOpts;

/// `rill bench` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Publish only (messages/s the server accepts)
    #[command(name = "pub")]
    Pub(core::PubArgs),
    /// Publishers and subscribers (counts only messages subscribers received)
    Pubsub(core::PubSubArgs),
    /// Request/reply round trips against a built-in responder (latency percentiles)
    Request(request::RequestArgs),
    /// JetStream publish, pull fetch and ordered-consumer replay
    #[command(subcommand)]
    Js(js::JsCmd),
    /// Key-value put and get
    Kv(kv::KvArgs),
    /// Create many streams or KV buckets (create rate; memory and threads in `compare`)
    Streams(streams::StreamsArgs),
    /// Message schedules at scale: N one-shot @at schedules firing (lateness p50/p99, server RSS)
    Schedules(schedules::SchedulesArgs),
    /// MQTT publish to subscribe, QoS 0 or 1, on any MQTT server (--mqtt HOST:PORT)
    Mqtt(mqtt::MqttArgs),
    /// Start two servers and compare them side by side on the same scenarios
    Compare(compare::CompareArgs),
}

/// Runs one `rill bench` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let target = run::Target::from_cli(conn);
    let (report, json) = match &cmd {
        Cmd::Pub(args) => (core::publish(&target, args).await?, args.common.json),
        Cmd::Pubsub(args) => (core::pubsub(&target, args).await?, args.common.json),
        Cmd::Request(args) => (request::request(&target, args).await?, args.common.json),
        Cmd::Js(js_cmd) => (js::run(&target, js_cmd).await?, js_cmd.common().json),
        Cmd::Kv(args) => (kv::run(&target, args).await?, args.common.json),
        Cmd::Streams(args) => (streams::run(&target, args).await?, args.common.json),
        Cmd::Schedules(args) => (schedules::run(&target, args).await?, args.common.json),
        Cmd::Mqtt(args) => (mqtt::run(args).await?, args.common.json),
        Cmd::Compare(args) => return compare::run(args, conn).await,
    };
    report.print(json);
    Ok(())
}
