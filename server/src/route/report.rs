//! What the cluster tells clients (`connect_urls`) and monitoring (`/routez`, the
//! `cluster` block of `/varz`), with nats-server's field names.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::Cluster;
use super::link::RouteLink;
use crate::locks;
use crate::monitoring::format::{go_duration, rfc3339, uptime};
use crate::shared::ClusterReport;

impl Cluster {
    /// The cluster's name.
    pub(crate) fn name(&self) -> String {
        locks::read(&self.name).clone()
    }
}

impl ClusterReport for Cluster {
    fn name(&self) -> String {
        Cluster::name(self)
    }

    fn connect_urls(&self) -> Vec<String> {
        let links = self.peers.all();
        if links.is_empty() {
            return Vec::new();
        }
        let mut urls = if self.config.no_advertise {
            Vec::new()
        } else {
            self.own_client_urls(links.first().map(|l| l.local))
        };
        let mut others: Vec<(String, Vec<String>)> = links
            .iter()
            .map(|l| l.peer())
            .filter(|p| !p.ldm)
            .map(|p| (p.server_name, p.connect_urls))
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

    fn num_routes(&self) -> usize {
        self.peers.len()
    }

    fn routez(&self, subs: bool) -> Value {
        let mut links = self.peers.all();
        links.sort_by_key(|l| l.rid);
        Value::Array(links.iter().map(|l| route_entry(l, subs)).collect())
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

/// One route in `/routez`.
fn route_entry(link: &RouteLink, subs: bool) -> Value {
    let peer = link.peer();
    let now = SystemTime::now();
    let up = now.duration_since(link.started).unwrap_or_default();
    let sub_list: Vec<String> = locks::lock(&link.subs)
        .keys()
        .map(|(_, subject, queue)| match queue {
            Some(q) => format!(
                "{} {}",
                String::from_utf8_lossy(subject),
                String::from_utf8_lossy(q)
            ),
            None => String::from_utf8_lossy(subject).into_owned(),
        })
        .collect();
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
        "rtt": go_duration(link.rtt()),
        "uptime": uptime(up),
        "idle": "0s",
        "pending_size": link.outbound.pending_bytes(),
        "in_msgs": link.in_msgs.load(Ordering::Relaxed),
        "out_msgs": link.out_msgs.load(Ordering::Relaxed),
        "in_bytes": link.in_bytes.load(Ordering::Relaxed),
        "out_bytes": link.out_bytes.load(Ordering::Relaxed),
        "subscriptions": sub_list.len(),
        "compression": "off",
    });
    if subs {
        let mut sorted = sub_list;
        sorted.sort();
        entry["subscriptions_list"] = json!(sorted);
    }
    entry
}
