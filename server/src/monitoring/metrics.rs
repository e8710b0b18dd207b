//! `/metrics`: the server's counters in the Prometheus text exposition format
//! (nats-server has none built in; this saves running an exporter).

use std::fmt::Write as _;
use std::sync::Arc;

use super::format::rss_bytes;
use super::varz::num_subscriptions;
use crate::server::ServerState;
use crate::stats::Stats;

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Renders every server metric, then JetStream's when it is enabled.
pub(super) async fn render(state: &Arc<ServerState>) -> String {
    let s = &state.stats;
    let mut out = String::with_capacity(2048);
    metric(
        &mut out,
        "rill_connections",
        "gauge",
        "Open client connections.",
        state.clients.len() as u64,
    );
    metric(
        &mut out,
        "rill_connections_total",
        "counter",
        "Client connections accepted since start.",
        Stats::get(&s.total_connections),
    );
    metric(
        &mut out,
        "rill_subscriptions",
        "gauge",
        "Active subscriptions.",
        num_subscriptions(state) as u64,
    );
    metric(
        &mut out,
        "rill_in_msgs_total",
        "counter",
        "Messages received from clients.",
        Stats::get(&s.in_msgs),
    );
    metric(
        &mut out,
        "rill_in_bytes_total",
        "counter",
        "Payload bytes received from clients.",
        Stats::get(&s.in_bytes),
    );
    metric(
        &mut out,
        "rill_out_msgs_total",
        "counter",
        "Messages delivered to subscribers.",
        Stats::get(&s.out_msgs),
    );
    metric(
        &mut out,
        "rill_out_bytes_total",
        "counter",
        "Payload bytes delivered to subscribers.",
        Stats::get(&s.out_bytes),
    );
    metric(
        &mut out,
        "rill_slow_consumers_total",
        "counter",
        "Clients disconnected as slow consumers.",
        Stats::get(&s.slow_consumers),
    );
    metric(
        &mut out,
        "rill_stale_connections_total",
        "counter",
        "Connections closed as stale.",
        Stats::get(&s.stale_connections),
    );
    metric(
        &mut out,
        "rill_memory_bytes",
        "gauge",
        "Resident memory of the server process.",
        rss_bytes(),
    );
    if let Some(js) = state.js_report() {
        out.push_str(&js.metrics().await);
    }
    out
}
