//! What the cluster tells clients (`connect_urls`) and monitoring (`/routez`, the
//! `cluster` block of `/varz`), with nats-server's field names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{Value, json};

use super::link::RouteLink;
use super::{Cluster, UrlKind};
use crate::client::CloseReason;
use crate::locks;
use crate::monitoring::format::{go_duration, rfc3339, uptime};
use crate::shared::{ClusterReport, RouteTotals};

/// The counters of routes that closed, so totals outlive them.
#[derive(Debug, Default)]
pub(super) struct Closed {
    in_msgs: AtomicU64,
    in_bytes: AtomicU64,
    out_msgs: AtomicU64,
    out_bytes: AtomicU64,
    slow_consumers: AtomicU64,
    stale: AtomicU64,
}

impl Closed {
    /// Adds a route that closed for `reason`.
    pub(super) fn add(&self, link: &RouteLink, reason: CloseReason) {
        let add = |to: &AtomicU64, from: &AtomicU64| {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        };
        add(&self.in_msgs, &link.counters.in_msgs);
        add(&self.in_bytes, &link.counters.in_bytes);
        add(&self.out_msgs, &link.counters.out_msgs);
        add(&self.out_bytes, &link.counters.out_bytes);
        if link.counters.was_slow(reason) {
            self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        }
        if reason == CloseReason::StaleConnection {
            self.stale.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Cluster {
    /// The cluster's name.
    pub(crate) fn name(&self) -> String {
        locks::read(&self.name).clone()
    }

    /// Where clients of `kind` reach the cluster: ours first, then each peer's (by
    /// name, lame-duck peers left out); empty while no route is up, as nats-server.
    fn cluster_urls(&self, kind: UrlKind) -> Vec<String> {
        let links = self.peers.all();
        if links.is_empty() {
            return Vec::new();
        }
        let mut urls = self.own_urls(kind, links.first().map(|l| l.local));
        let mut others: Vec<(String, Vec<String>)> = links
            .iter()
            .map(|l| l.peer())
            .filter(|p| !p.ldm)
            .map(|p| match kind {
                UrlKind::Client => (p.server_name, p.connect_urls),
                UrlKind::Websocket => (p.server_name, p.ws_connect_urls),
            })
            .collect();
        others.sort();
        for (_, peer_urls) in others {
            for url in peer_urls {
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
        urls
    }
}

impl ClusterReport for Cluster {
    fn name(&self) -> String {
        Cluster::name(self)
    }

    fn connect_urls(&self) -> Vec<String> {
        self.cluster_urls(UrlKind::Client)
    }

    fn ws_connect_urls(&self) -> Vec<String> {
        self.cluster_urls(UrlKind::Websocket)
    }

    fn num_routes(&self) -> usize {
        self.peers.len()
    }

    fn routez(&self, subs: &str) -> Value {
        let detail = match subs {
            "1" | "true" => SubsDetail::List,
            "detail" => SubsDetail::Detail,
            _ => SubsDetail::None,
        };
        let mut links = self.peers.all();
        links.sort_by_key(|l| l.rid);
        Value::Array(links.iter().map(|l| route_entry(l, detail)).collect())
    }

    fn totals(&self) -> RouteTotals {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = &self.closed;
        let mut t = RouteTotals {
            in_msgs: get(&c.in_msgs),
            in_bytes: get(&c.in_bytes),
            out_msgs: get(&c.out_msgs),
            out_bytes: get(&c.out_bytes),
            slow_consumers: get(&c.slow_consumers),
            stale: get(&c.stale),
        };
        for link in self.peers.all() {
            t.in_msgs += get(&link.counters.in_msgs);
            t.in_bytes += get(&link.counters.in_bytes);
            t.out_msgs += get(&link.counters.out_msgs);
            t.out_bytes += get(&link.counters.out_bytes);
            t.slow_consumers += u64::from(link.counters.was_slow(CloseReason::Open));
        }
        t
    }

    fn varz(&self) -> Value {
        let urls: Vec<String> = self.config.routes.iter().map(|r| r.addr()).collect();
        json!({
            "name": self.name(),
            "addr": self.listen.ip().to_string(),
            "cluster_port": self.listen.port(),
            "auth_timeout": self.config.authorization.as_ref().map_or(2.0, |a| a.timeout.as_secs_f64()),
            "urls": urls,
            "tls_timeout": self.config.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64()),
            "pool_size": self.config.pool_size,
        })
    }
}

/// How much of each route's interest `/routez` lists (`subs=1`, `subs=detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubsDetail {
    /// Counts only.
    None,
    /// `subscriptions_list`: the subjects.
    List,
    /// `subscriptions_list_detail`: subject, queue group and account.
    Detail,
}

/// One route in `/routez`.
fn route_entry(link: &RouteLink, subs: SubsDetail) -> Value {
    let peer = link.peer();
    let now = SystemTime::now();
    let up = now.duration_since(link.started).unwrap_or_default();
    let mut interest: Vec<(String, String, Option<String>)> = locks::lock(&link.subs)
        .keys()
        .map(|(account, subject, queue)| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(subject), text(account), queue.as_deref().map(text))
        })
        .collect();
    interest.sort();
    let mut entry = json!({
        "rid": link.rid,
        "remote_id": peer.server_id,
        "remote_name": peer.server_name,
        "did_solicit": link.solicited,
        "is_configured": link.configured,
        "ip": link.addr.ip().to_string(),
        "port": link.addr.port(),
        "start": rfc3339(link.started),
        "last_activity": rfc3339(now),
        "rtt": go_duration(link.counters.rtt()),
        "uptime": uptime(up),
        "idle": "0s",
        "pending_size": link.outbound.pending_bytes(),
        "in_msgs": link.counters.in_msgs.load(Ordering::Relaxed),
        "out_msgs": link.counters.out_msgs.load(Ordering::Relaxed),
        "in_bytes": link.counters.in_bytes.load(Ordering::Relaxed),
        "out_bytes": link.counters.out_bytes.load(Ordering::Relaxed),
        "subscriptions": interest.len(),
        "compression": "off",
    });
    match subs {
        SubsDetail::None => {}
        SubsDetail::List => {
            let list: Vec<&str> = interest.iter().map(|(s, _, _)| s.as_str()).collect();
            entry["subscriptions_list"] = json!(list);
        }
        SubsDetail::Detail => {
            let detail: Vec<Value> = interest
                .iter()
                .map(|(subject, account, queue)| {
                    let mut d = json!({ "account": account, "subject": subject, "msgs": 0, "cid": link.rid });
                    if let Some(q) = queue {
                        d["qgroup"] = json!(q);
                    }
                    d
                })
                .collect();
            entry["subscriptions_list_detail"] = json!(detail);
        }
    }
    entry
}
