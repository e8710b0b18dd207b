//! `/varz`, `/routez`, `/accountz` and `/jsz`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::format::{rfc3339, uptime};
use super::process::{cpu_percent, rss_bytes};
use crate::config::SyncInterval;
use rill_protocol::compat::NATS_VERSION;

use crate::server::ServerState;
use crate::shared::VERSION;
use crate::stats::Stats;

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Total subscriptions over every account.
pub(super) fn num_subscriptions(state: &ServerState) -> usize {
    state
        .accounts
        .all()
        .iter()
        .map(|a| a.router.sublist().count())
        .sum()
}

/// The `/varz` document.
pub(super) async fn varz(state: &Arc<ServerState>) -> Value {
    let config = state.config();
    let routes = state.cluster().map(|c| c.totals()).unwrap_or_default();
    let s = &state.stats;
    let now = SystemTime::now();
    let http = state.monitor_addr();
    let mut doc = json!({
        "server_id": state.server_id,
        "server_name": state.server_name,
        "version": NATS_VERSION,
        "rill_version": VERSION,
        "proto": 1,
        "go": format!("rill {VERSION}"),
        "host": config.host,
        "port": state.info_template().port,
        "max_connections": config.max_connections,
        "ping_interval": nanos(config.ping_interval),
        "ping_max": config.ping_max,
        "http_host": http.map(|a| a.ip().to_string()).unwrap_or_default(),
        "http_port": http.filter(|_| config.https.is_none()).map(|a| a.port()).unwrap_or_default(),
        "http_base_path": "",
        "https_port": http.filter(|_| config.https.is_some()).map(|a| a.port()).unwrap_or_default(),
        "auth_timeout": config.auth_timeout.as_secs_f64(),
        "max_control_line": config.max_control_line,
        "max_payload": config.max_payload,
        "max_pending": config.max_pending,
        "cluster": state.cluster().map_or_else(|| json!({}), |c| c.varz()),
        "gateway": {},
        "leaf": state.leafs().map_or_else(|| json!({}), |l| l.varz()),
        "mqtt": mqtt(state, &config),
        "websocket": websocket(state, &config),
        "tls_timeout": config.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64()),
        "write_deadline": nanos(config.write_deadline),
    });
    let counters = json!({
        "start": rfc3339(state.started),
        "now": rfc3339(now),
        "uptime": uptime(now.duration_since(state.started).unwrap_or_default()),
        "mem": rss_bytes(),
        "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        "cpu": cpu_percent(),
        "connections": state.clients.len(),
        "total_connections": Stats::get(&s.total_connections),
        "routes": state.cluster().map_or(0, |c| c.num_routes()),
        "remotes": state.cluster().map_or(0, |c| c.num_routes()),
        "leafnodes": state.leafs().map_or(0, |l| l.num_leafs()),
        "in_msgs": Stats::get(&s.in_msgs),
        "in_bytes": Stats::get(&s.in_bytes),
        "out_msgs": Stats::get(&s.out_msgs),
        "out_bytes": Stats::get(&s.out_bytes),
        "slow_consumers": Stats::get(&s.slow_consumers),
        "stale_connections": Stats::get(&s.stale_connections),
        "subscriptions": num_subscriptions(state),
        "config_load_time": rfc3339(state.started),
        "slow_consumer_stats": { "clients": Stats::get(&s.slow_consumers).saturating_sub(routes.slow_consumers), "routes": routes.slow_consumers, "gateways": 0, "leafs": 0 },
        "stale_connection_stats": { "clients": Stats::get(&s.stale_connections), "routes": routes.stale, "gateways": 0, "leafs": 0 },
        "http_req_stats": s.http_requests.snapshot(),
    });
    if let (Some(doc), Value::Object(rest)) = (doc.as_object_mut(), counters) {
        doc.extend(rest);
    }
    // Where clients reach the cluster (omitted when empty, as nats-server): test
    // harnesses such as nats.js's read them to see a cluster formed.
    if let Some(cluster) = state.cluster() {
        for (key, urls) in [
            ("connect_urls", cluster.connect_urls()),
            ("ws_connect_urls", cluster.ws_connect_urls()),
        ] {
            if !urls.is_empty() {
                doc[key] = json!(urls);
            }
        }
    }
    if let Some(js) = &config.jetstream {
        doc["jetstream"] = json!({
            "config": js_config(state),
            "stats": jsz_stats(state).await,
            "limits": {},
        });
        if let Some(domain) = &js.domain {
            doc["jetstream"]["config"]["domain"] = json!(domain);
        }
    }
    if let Some(name) = &config.server_name {
        doc["server_name"] = json!(name);
    }
    if !config.server_tags.is_empty() {
        doc["tags"] = json!(config.server_tags);
    }
    doc
}

/// The `mqtt` block as nats-server 2.15 shows it: empty without a listener; settings left
/// at zero (or unset) are left out, `tls_timeout` is there with or without TLS.
fn mqtt(state: &ServerState, config: &crate::config::Config) -> Value {
    let (Some(m), Some(addr)) = (&config.mqtt, state.mqtt_addr()) else {
        return json!({});
    };
    let tls = m.tls.as_ref();
    let mut doc = json!({ "host": m.host, "port": addr.port() });
    let optional = [
        ("no_auth_user", m.no_auth_user.as_ref().map(|u| json!(u))),
        ("auth_timeout", (m.authorization.timeout).map(seconds)),
        (
            "tls_map",
            tls.filter(|t| t.verify_and_map).map(|_| json!(true)),
        ),
        (
            "tls_timeout",
            Some(seconds(tls.map_or(Duration::from_secs(2), |t| t.timeout))),
        ),
        (
            "tls_pinned_certs",
            tls.filter(|t| !t.pinned_certs.is_empty())
                .map(|t| json!(t.pinned_certs)),
        ),
        (
            "js_domain",
            m.js_domain
                .as_ref()
                .filter(|d| !d.is_empty())
                .map(|d| json!(d)),
        ),
        ("ack_wait", m.ack_wait.map(|d| json!(nanos(d)))),
        ("max_ack_pending", m.max_ack_pending.map(|n| json!(n))),
        (
            "tls_cert_not_after",
            tls.and_then(|t| crate::tls::cert_not_after(&t.cert_file))
                .map(|t| json!(rfc3339(t))),
        ),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            doc[key] = v;
        }
    }
    doc
}

/// Seconds as Go writes a float64: `3` when whole, `1.5` otherwise.
fn seconds(d: Duration) -> Value {
    match d.subsec_nanos() {
        0 => json!(d.as_secs()),
        _ => json!(d.as_secs_f64()),
    }
}

/// The `websocket` block: empty without a listener, as nats-server shows it.
fn websocket(state: &ServerState, config: &crate::config::Config) -> Value {
    let (Some(ws), Some(addr)) = (&config.websocket, state.websocket_addr()) else {
        return json!({});
    };
    let mut doc = json!({ "host": ws.host, "port": addr.port() });
    let flags = [
        ("no_tls", ws.no_tls),
        ("same_origin", ws.same_origin),
        ("compression", ws.compression),
    ];
    for (key, on) in flags {
        if on {
            doc[key] = json!(true);
        }
    }
    if let Some(advertise) = &ws.advertise {
        doc["advertise"] = json!(advertise);
    }
    if !ws.allowed_origins.is_empty() {
        doc["allowed_origins"] = json!(ws.allowed_origins);
    }
    if ws.tls.as_ref().is_some_and(|t| t.verify_and_map) {
        doc["tls_map"] = json!(true);
    }
    if let Some(cookie) = &ws.jwt_cookie {
        doc["jwt_cookie"] = json!(cookie);
    }
    if ws.handshake_timeout != crate::config::WEBSOCKET_HANDSHAKE_TIMEOUT {
        doc["handshake_timeout"] = json!(nanos(ws.handshake_timeout));
    }
    doc
}

fn js_config(state: &ServerState) -> Value {
    let config = state.config();
    let Some(js) = &config.jetstream else {
        return Value::Null;
    };
    let sync = match js.sync {
        SyncInterval::Always => json!("always"),
        SyncInterval::Every(d) => json!(nanos(d)),
    };
    json!({
        "max_memory": js.max_memory_store,
        "max_storage": js.max_file_store,
        "store_dir": js.store_dir.join("jetstream").display().to_string(),
        "sync_interval": sync,
        "strict": js.strict,
    })
}

async fn jsz_stats(state: &ServerState) -> Value {
    let empty = HashMap::new();
    let report = match state.js_report() {
        Some(r) => r.jsz(&empty).await,
        None => Value::Null,
    };
    let pick = |k: &str| report.get(k).cloned().unwrap_or(json!(0));
    json!({
        "memory": pick("memory"),
        "storage": pick("storage"),
        "reserved_memory": 0,
        "reserved_storage": 0,
        "accounts": report.get("accounts").cloned().unwrap_or(json!(1)),
        "ha_assets": 0,
        "api": report.get("api").cloned().unwrap_or(json!({"total": 0, "errors": 0})),
    })
}

/// The `/jsz` document.
pub(super) async fn jsz(state: &Arc<ServerState>, q: &HashMap<String, String>) -> Value {
    let now = rfc3339(SystemTime::now());
    let Some(_) = state.config().jetstream else {
        return json!({ "server_id": state.server_id, "now": now, "disabled": true, "config": {}, "memory": 0, "storage": 0 });
    };
    let mut doc = match state.js_report() {
        Some(r) => r.jsz(q).await,
        None => json!({}),
    };
    doc["server_id"] = json!(state.server_id);
    doc["now"] = json!(now);
    doc["config"] = js_config(state);
    doc
}

/// The `/routez` document (`subs`: the query's `subs`, `1` or `detail`).
pub(super) fn routez(state: &Arc<ServerState>, subs: &str) -> Value {
    let cluster = state.cluster();
    json!({
        "server_id": state.server_id,
        "server_name": state.server_name,
        "now": rfc3339(SystemTime::now()),
        "num_routes": cluster.map_or(0, |c| c.num_routes()),
        "routes": cluster.map_or_else(|| json!([]), |c| c.routez(subs)),
    })
}

/// The `/leafz` document (`subs`: each link's subscriptions too).
/// The `/leafz` document; with `acc`, only that account's leaf connections (as
/// `/leafz?acc=` and `$SYS.REQ.ACCOUNT.<acc>.LEAFZ`).
pub(super) fn leafz(state: &Arc<ServerState>, subs: bool, acc: Option<&str>) -> Value {
    let mut doc = state
        .leafs()
        .map_or_else(|| json!({ "leafnodes": 0, "leafs": [] }), |l| l.leafz(subs));
    if let (Some(acc), Some(leafs)) = (acc, doc["leafs"].as_array_mut()) {
        leafs.retain(|l| l["account"] == acc);
        doc["leafnodes"] = json!(leafs.len());
    }
    doc["server_id"] = json!(state.server_id);
    doc["now"] = json!(rfc3339(SystemTime::now()));
    doc
}

/// The `/accountz` document.
pub(super) fn accountz(state: &Arc<ServerState>) -> Value {
    let mut names: Vec<String> = state
        .accounts
        .all()
        .iter()
        .map(|a| a.name.clone())
        .collect();
    names.sort();
    json!({
        "server_id": state.server_id,
        "now": rfc3339(SystemTime::now()),
        "system_account": state.system_account().unwrap_or_default(),
        "accounts": names,
    })
}
