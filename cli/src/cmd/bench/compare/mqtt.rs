//! The MQTT scenarios of `rill bench compare`. Each run starts a fresh server from the side's own
//! command with an `mqtt {}` block (and, when the command does not turn JetStream on, a JetStream
//! store, which MQTT needs) added through `-c`, so the commands need no MQTT settings, then runs
//! `rill bench mqtt` against it or opens idle MQTT connections on it.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::super::mqtt::{self as bench_mqtt, MqttArgs};
use super::super::report::Report;
use super::super::run::Common;
use super::scenario::Scenario;
use super::server::{Server, free_port};

/// A fresh server of `template` with an MQTT listener; returns it and the MQTT port.
async fn start(template: &str) -> anyhow::Result<(Server, u16)> {
    let port = free_port()?;
    let conf = bench_mqtt::server_conf(port, bench_mqtt::enables_jetstream(template));
    let server = Server::start_with_conf(template, Some(&conf)).await?;
    bench_mqtt::wait_listening(port).await?;
    Ok((server, port))
}

/// One publisher and one subscriber at `qos` on a fresh server: the report and the server's CPU
/// time for the run.
pub(super) async fn throughput(
    template: &str,
    s: &Scenario,
    qos: u8,
    msgs: u64,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<(Report, Option<Duration>)> {
    let (server, port) = start(template).await?;
    let args = MqttArgs {
        mqtt: format!("127.0.0.1:{port}"),
        topic: "rill/bench".into(),
        qos,
        common: Common::quiet(msgs, s.size, duration),
    };
    let before = server.cpu_time().ok();
    let report = tokio::time::timeout(timeout, bench_mqtt::run(&args))
        .await
        .with_context(|| format!("no result within {timeout:?}"))??;
    let cpu = before.zip(server.cpu_time().ok()).map(|(b, a)| a - b);
    Ok((report, cpu))
}

/// Memory per idle MQTT connection on a fresh server, and its RSS with them open.
pub(super) async fn idle(template: &str, n: u64, deadline: Instant) -> anyhow::Result<(f64, u64)> {
    let (server, port) = start(template).await?;
    server
        .idle_kib_with(n, deadline, |i| {
            bench_mqtt::idle_connection(port, format!("rill-bench-idle-{i}"))
        })
        .await
}
