//! Server and account requests on the system account: `$SYS.REQ.SERVER.PING[.KIND]`,
//! `$SYS.REQ.SERVER.<id>.<KIND>` and `$SYS.REQ.ACCOUNT.<account>.<KIND>`.
//!
//! The `data` of a monitoring kind is the same document the HTTP endpoint serves
//! (`VARZ` is `/varz`); request options come as a JSON body (`{"subscriptions": true}`)
//! and map onto the endpoint's query options. A ping carrying a filter (`name`, `host`,
//! `cluster`, with `exact_match`) is answered only by servers that match it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::{Request, System, respond, respond_data};
use crate::locks;
use crate::monitoring::{self, cpu_percent, rfc3339, rss_bytes};
use crate::server::ServerState;
use crate::stats::Stats;

/// `$SYS.REQ.SERVER.…`: `rest` is what follows `SERVER` (`["PING"]`, `["PING", kind]` or
/// `[id, kind]`).
pub(super) async fn server(
    state: &Arc<ServerState>,
    system: &System,
    rest: &[&str],
    req: &Request,
) {
    let body = body_of(req);
    if filtered_out(state, &body) {
        return;
    }
    let kind = match rest {
        ["PING"] => "STATSZ",
        [_, kind] => kind,
        _ => return,
    };
    if rest.len() == 2 && super::admin::server(state, system, kind, req) {
        return;
    }
    match kind {
        "STATSZ" => {
            let mut reply = Map::new();
            reply.insert("statsz".into(), statsz(state));
            respond(state, system, req, reply);
        }
        "HEALTHZ" => respond_data(
            state,
            system,
            req,
            json!({"status": "ok", "status_code": 200}),
        ),
        // As nats-server: the bare `server` identity, no wrapper.
        "IDZ" => {
            let config = state.config();
            let id = json!({"name": state.server_name, "host": config.host, "id": state.server_id});
            system.reply(req, &id);
        }
        kind => {
            if let Some(doc) = monitoring::document(state, kind, &query(&body)).await {
                respond_data(state, system, req, doc);
            }
        }
    }
}

/// `$SYS.REQ.ACCOUNT.<account>.<KIND>`.
pub(super) async fn account(
    state: &Arc<ServerState>,
    system: &System,
    account: &str,
    kind: &str,
    req: &Request,
) {
    let mut q = query(&body_of(req));
    q.insert("acc".into(), account.to_string());
    let data = match kind {
        "CONNZ" | "SUBSZ" | "JSZ" | "LEAFZ" => monitoring::document(state, kind, &q).await,
        "INFO" => Some(account_info(state, account)),
        "STATZ" => account_statz(state, account, &body_of(req)),
        "CONNS" => Some(account_conns(state, account)),
        _ => None,
    };
    if let Some(data) = data {
        respond_data(state, system, req, data);
    }
}

fn body_of(req: &Request) -> Map<String, Value> {
    serde_json::from_slice::<Value>(&req.payload)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// True when a ping's filter names other servers.
fn filtered_out(state: &ServerState, body: &Map<String, Value>) -> bool {
    let exact = body
        .get("exact_match")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let config = state.config();
    let fields = [
        ("name", state.server_name.as_str()),
        ("host", config.host.as_str()),
    ];
    fields.iter().any(|(key, mine)| {
        body.get(*key)
            .and_then(Value::as_str)
            .filter(|want| !want.is_empty())
            .is_some_and(|want| {
                if exact {
                    *mine != want
                } else {
                    !mine.contains(want)
                }
            })
    })
}

/// Request options as the HTTP endpoints' query options.
fn query(body: &Map<String, Value>) -> HashMap<String, String> {
    let mut q = HashMap::new();
    for (k, v) in body {
        let key = match k.as_str() {
            "subscriptions" => "subs",
            "subscriptions_detail" => {
                if v.as_bool() == Some(true) {
                    q.insert("subs".into(), "detail".into());
                }
                continue;
            }
            "account" => "acc",
            other => other,
        };
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => {
                if *b {
                    "1".into()
                } else {
                    continue;
                }
            }
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        q.insert(key.to_string(), value);
    }
    q
}

/// The `statsz` object (`$SYS.REQ.SERVER.PING`, the STATSZ heartbeat).
pub(super) fn statsz(state: &ServerState) -> Value {
    let s = &state.stats;
    let subscriptions: usize = state
        .accounts
        .all()
        .iter()
        .map(|a| a.router.sublist().count())
        .sum();
    let active_accounts = state
        .clients
        .all()
        .iter()
        .map(|c| locks::read(&c.info).account.clone())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    json!({
        "start": rfc3339(state.started),
        "mem": rss_bytes(),
        "cores": cores,
        "cpu": cpu_percent(),
        "connections": state.clients.len(),
        "total_connections": Stats::get(&s.total_connections),
        "active_accounts": active_accounts,
        "subscriptions": subscriptions,
        "sent": {"msgs": Stats::get(&s.out_msgs), "bytes": Stats::get(&s.out_bytes)},
        "received": {"msgs": Stats::get(&s.in_msgs), "bytes": Stats::get(&s.in_bytes)},
        "slow_consumers": Stats::get(&s.slow_consumers),
        "active_servers": 1 + state.cluster().map_or(0, |c| c.num_routes()),
    })
}

/// The account's connection counts (the `CONNS` request and event).
pub(super) fn account_conns(state: &ServerState, account: &str) -> Value {
    let conns = state
        .clients
        .all()
        .iter()
        .filter(|c| locks::read(&c.info).account == account)
        .count();
    let subs = state.accounts.get(account).router.sublist().count();
    let zero = json!({"msgs": 0, "bytes": 0});
    json!({
        "acc": account,
        "name": account_name(state, account),
        "conns": conns,
        "leafnodes": 0,
        "total_conns": conns,
        "num_subscriptions": subs,
        "sent": zero,
        "received": zero,
        "slow_consumers": 0,
    })
}

/// `$SYS.REQ.ACCOUNT.<acc>.STATZ` and `$SYS.REQ.ACCOUNT.PING.STATZ` (`{"accounts": [..],
/// "include_unused": bool}`): the connection counts of the named accounts, or of every
/// account with clients here. A ping none of whose accounts has clients here is not
/// answered (unless `include_unused`), as nats-server.
fn account_statz(state: &ServerState, account: &str, body: &Map<String, Value>) -> Option<Value> {
    let unused = body.get("include_unused").and_then(Value::as_bool) == Some(true);
    let named: Vec<String> = match body.get("accounts").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        None if account == "PING" => {
            let mut all: Vec<String> = state
                .accounts
                .all()
                .iter()
                .map(|a| a.name.clone())
                .collect();
            all.sort();
            all
        }
        None => vec![account.to_string()],
    };
    let statz: Vec<Value> = named
        .iter()
        .map(|a| account_conns(state, a))
        .filter(|c| unused || c["conns"].as_u64().unwrap_or(0) > 0)
        .collect();
    if statz.is_empty() && account == "PING" && !unused {
        return None;
    }
    Some(json!({
        "server_id": state.server_id,
        "now": rfc3339(SystemTime::now()),
        "account_statz": statz,
    }))
}

/// The account's display name: the JWT's `name` in operator mode, else the account name.
pub(super) fn account_name(state: &ServerState, account: &str) -> String {
    state
        .jwt()
        .and_then(|j| j.resolver.lookup(account))
        .map(|r| r.claims.data.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| account.to_string())
}

/// `$SYS.REQ.ACCOUNT.<account>.INFO`.
fn account_info(state: &ServerState, account: &str) -> Value {
    let resolved = state.jwt().and_then(|j| j.resolver.lookup(account));
    let conns = account_conns(state, account);
    let is_system = state.system_account().as_deref() == Some(account);
    let mut info = json!({
        "account_name": account,
        "update_time": rfc3339(SystemTime::now()),
        "is_system": is_system,
        "expired": false,
        "complete": true,
        "jetstream_enabled": state.config().jetstream.is_some(),
        "leafnode_connections": 0,
        "client_connections": conns["conns"],
        "subscriptions": conns["num_subscriptions"],
        "name_tag": account_name(state, account),
    });
    if let Some(r) = resolved {
        let now = crate::auth::jwt::token::now();
        info["expired"] = json!(r.claims.data.expired(now));
        info["jwt"] = json!(r.jwt);
        info["issuer_key"] = json!(r.claims.data.iss);
        info["decoded_jwt"] = serde_json::to_value(&r.claims).unwrap_or_default();
    }
    info
}
