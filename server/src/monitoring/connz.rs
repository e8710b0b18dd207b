//! `/connz` (open connections, with nats-server's limit/offset/sort/cid/subs
//! parameters, `subs=detail` included) and `/subsz` (subscription totals and, with `subs=1`, the list).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::format::{go_duration, rfc3339, uptime};
use crate::client::ClientLink;
use crate::locks;
use crate::server::ServerState;

/// nats-server's default page size.
const DEFAULT_LIMIT: usize = 1024;

fn paging(q: &HashMap<String, String>) -> (usize, usize) {
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(DEFAULT_LIMIT);
    (offset, limit)
}

fn counter(v: &std::sync::atomic::AtomicU64) -> u64 {
    v.load(Ordering::Relaxed)
}

/// Orders connections by the `sort` parameter (descending for counters, as nats-server).
fn sort_clients(clients: &mut [Arc<ClientLink>], sort: &str) {
    let key = |c: &Arc<ClientLink>| -> u64 {
        match sort {
            "subs" => c.num_subs() as u64,
            "pending" => c.outbound.pending_bytes() as u64,
            "msgs_to" => counter(&c.out_msgs),
            "msgs_from" => counter(&c.in_msgs),
            "bytes_to" => counter(&c.out_bytes),
            "bytes_from" => counter(&c.in_bytes),
            _ => 0,
        }
    };
    match sort {
        "subs" | "pending" | "msgs_to" | "msgs_from" | "bytes_to" | "bytes_from" => {
            clients.sort_by_key(|c| std::cmp::Reverse(key(c)));
        }
        "start" => clients.sort_by_key(|c| c.started),
        "uptime" => clients.sort_by_key(|c| c.started),
        // nats-server: the most recently active first, the longest idle first, the
        // slowest round trip first.
        "last" => clients.sort_by_key(|c| std::cmp::Reverse(c.last_activity())),
        "idle" => clients.sort_by_key(|c| c.last_activity()),
        "rtt" => clients.sort_by_key(|c| std::cmp::Reverse(c.rtt())),
        _ => clients.sort_by_key(|c| c.cid),
    }
}

/// What `subs=` asks for: nothing, the subjects (`1`/`true`), or one object per
/// subscription (`detail`), as nats-server's `subscriptions_list_detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subs {
    None,
    List,
    Detail,
}

impl Subs {
    fn from_query(q: &HashMap<String, String>) -> Self {
        match q.get("subs").map(String::as_str) {
            Some("detail") => Subs::Detail,
            Some("1" | "true") => Subs::List,
            _ => Subs::None,
        }
    }
}

/// `subscriptions_list_detail` entries: subject, queue group, sid, delivered count, cid.
fn subs_detail(c: &ClientLink) -> Value {
    let mut list: Vec<Value> = locks::lock(&c.subs)
        .values()
        .map(|sub| {
            let mut entry = json!({
                "subject": String::from_utf8_lossy(&sub.subject),
                "sid": String::from_utf8_lossy(&sub.sid),
                "msgs": sub.delivered(),
                "cid": c.cid,
            });
            if let Some(queue) = &sub.queue {
                entry["qgroup"] = json!(String::from_utf8_lossy(queue));
            }
            if sub.max() > 0 {
                entry["max"] = json!(sub.max());
            }
            entry
        })
        .collect();
    list.sort_by(|a, b| a["sid"].as_str().cmp(&b["sid"].as_str()));
    json!(list)
}

fn connection(c: &ClientLink, now: SystemTime, subs: Subs) -> Value {
    let info = locks::read(&c.info).clone();
    let mut doc = json!({
        "cid": c.cid,
        "kind": "Client",
        "type": if c.websocket { "websocket" } else { "nats" },
        "ip": c.addr.ip().to_string(),
        "port": c.addr.port(),
        "start": rfc3339(c.started),
        "uptime": uptime(now.duration_since(c.started).unwrap_or_default()),
        "pending_bytes": c.outbound.pending_bytes(),
        "in_msgs": counter(&c.in_msgs),
        "out_msgs": counter(&c.out_msgs),
        "in_bytes": counter(&c.in_bytes),
        "out_bytes": counter(&c.out_bytes),
        "subscriptions": c.num_subs(),
        "last_activity": rfc3339(c.last_activity()),
        "idle": uptime(now.duration_since(c.last_activity()).unwrap_or_default()),
    });
    if let Some(rtt) = c.rtt() {
        doc["rtt"] = json!(go_duration(rtt));
    }
    if let Some(id) = &info.mqtt_client {
        doc["type"] = json!("mqtt");
        doc["mqtt_client"] = json!(id);
    }
    for (key, value) in [
        ("name", info.name),
        ("lang", info.lang),
        ("version", info.version),
    ] {
        if !value.is_empty() {
            doc[key] = json!(value);
        }
    }
    if let Some(user) = info.user.clone() {
        doc["authorized_user"] = json!(user);
    }
    if subs == Subs::Detail {
        doc["subscriptions_list_detail"] = subs_detail(c);
    } else if subs == Subs::List {
        let mut list: Vec<String> = locks::lock(&c.subs)
            .values()
            .map(|sub| String::from_utf8_lossy(&sub.subject).into_owned())
            .collect();
        list.sort();
        doc["subscriptions_list"] = json!(list);
    }
    doc
}

/// The `/connz` document.
pub(super) fn connz(state: &Arc<ServerState>, q: &HashMap<String, String>) -> Value {
    let (offset, limit) = paging(q);
    let subs = Subs::from_query(q);
    let mut clients = state.clients.all();
    // `cid=N`: that connection alone (nats.js and the nats CLI ask for one client).
    if let Some(cid) = q.get("cid").and_then(|v| v.parse::<u64>().ok()) {
        clients.retain(|c| c.cid == cid);
    }
    if let Some(acc) = q.get("acc") {
        clients.retain(|c| locks::read(&c.info).account == *acc);
    }
    sort_clients(&mut clients, q.get("sort").map_or("cid", String::as_str));
    let now = SystemTime::now();
    let page: Vec<Value> = clients
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| connection(c, now, subs))
        .collect();
    json!({
        "server_id": state.server_id,
        "now": rfc3339(now),
        "num_connections": page.len(),
        "total": clients.len(),
        "offset": offset,
        "limit": limit,
        "connections": page,
    })
}

/// The `/subsz` document.
pub(super) fn subsz(state: &Arc<ServerState>, q: &HashMap<String, String>) -> Value {
    let (offset, limit) = paging(q);
    let mut accounts = state.accounts.all();
    if let Some(acc) = q.get("acc") {
        accounts.retain(|a| &a.name == acc);
    }
    let total: usize = accounts.iter().map(|a| a.router.sublist().count()).sum();
    let cache: usize = accounts
        .iter()
        .map(|a| a.router.sublist().cache_len())
        .sum();
    let mut doc = json!({
        "server_id": state.server_id,
        "now": rfc3339(SystemTime::now()),
        "num_subscriptions": total,
        "num_cache": cache,
        "total": total,
        "offset": offset,
        "limit": limit,
    });
    if q.get("subs")
        .is_some_and(|v| v == "1" || v == "true" || v == "detail")
    {
        let mut list = Vec::new();
        for account in &accounts {
            account.router.sublist().for_each(|sub| {
                let sub = &sub.0;
                let mut entry = json!({
                    "account": account.name,
                    "subject": String::from_utf8_lossy(&sub.subject),
                    "sid": String::from_utf8_lossy(&sub.sid),
                    "msgs": sub.delivered(),
                    "cid": sub.owner.owner_id(),
                });
                if let Some(queue) = &sub.queue {
                    entry["qgroup"] = json!(String::from_utf8_lossy(queue));
                }
                if sub.max() > 0 {
                    entry["max"] = json!(sub.max());
                }
                list.push(entry);
            });
        }
        let page: Vec<Value> = list.into_iter().skip(offset).take(limit).collect();
        doc["subscriptions_list"] = json!(page);
    }
    doc
}
