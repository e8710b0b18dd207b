//! `/metrics`: the server's counters in the Prometheus text exposition format
//! (nats-server has none built in; this saves running an exporter).

use std::fmt::Write as _;
use std::sync::Arc;

use super::process::rss_bytes;
use super::varz::num_subscriptions;
use crate::server::ServerState;
use crate::shared::RouteTotals;
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
        "rill_mqtt_connections",
        "gauge",
        "Open MQTT client connections (also counted in rill_connections).",
        state.clients.all().iter().filter(|c| c.is_mqtt()).count() as u64,
    );
    metric(
        &mut out,
        "rill_leafnodes",
        "gauge",
        "Open leaf-node connections.",
        state.leafs().map_or(0, |l| l.num_leafs()) as u64,
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
    if let Some(cluster) = state.cluster() {
        route_metrics(&mut out, cluster.num_routes() as u64, cluster.totals());
    }
    if let Some(js) = state.js_report() {
        out.push_str(&js.metrics().await);
    }
    out
}

/// The cluster's routes: how many are up, and what all routes since start carried.
fn route_metrics(out: &mut String, routes: u64, t: RouteTotals) {
    metric(
        out,
        "rill_routes",
        "gauge",
        "Routes to other servers.",
        routes,
    );
    let counters = [
        (
            "rill_route_in_msgs_total",
            "Messages received from routes.",
            t.in_msgs,
        ),
        (
            "rill_route_in_bytes_total",
            "Payload bytes received from routes.",
            t.in_bytes,
        ),
        (
            "rill_route_out_msgs_total",
            "Messages sent to routes.",
            t.out_msgs,
        ),
        (
            "rill_route_out_bytes_total",
            "Payload bytes sent to routes.",
            t.out_bytes,
        ),
        (
            "rill_route_slow_consumers_total",
            "Routes closed as slow consumers.",
            t.slow_consumers,
        ),
        ("rill_route_stale_total", "Routes closed as stale.", t.stale),
    ];
    for (name, help, value) in counters {
        metric(out, name, "counter", help, value);
    }
}
