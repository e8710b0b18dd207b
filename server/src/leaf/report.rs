//! What leaf nodes show in monitoring: `/leafz`, the `leaf` block and `leafnodes`
//! count of `/varz`, and the Prometheus gauge.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::LeafNodes;
use crate::locks;

pub use crate::shared::LeafReport;

impl LeafReport for LeafNodes {
    fn accept_websocket(
        self: std::sync::Arc<Self>,
        socket: crate::shared::WsSocket,
        addr: std::net::SocketAddr,
    ) -> crate::shared::BoxFuture<'static, ()> {
        super::ws::accept(self, socket, addr)
    }

    fn recheck_jwt(&self) {
        let Some(state) = self.state() else {
            return;
        };
        if let Some(auth) = state.jwt() {
            super::revoke::recheck(self, auth);
        }
    }

    fn account_links(&self, account: &str) -> Vec<u64> {
        super::revoke::account_links(self, account)
    }

    fn close_over_limit(&self, lid: u64) {
        super::revoke::close_over_limit(self, lid);
    }

    fn num_leafs(&self) -> usize {
        self.links().len()
    }

    fn leafz(&self, subs: bool) -> Value {
        let links = self.links();
        let leafs: Vec<Value> = links
            .iter()
            .map(|l| {
                let interest = locks::lock(&l.subs);
                let mut doc = json!({
                    "id": l.lid,
                    "name": l.peer.name,
                    "is_spoke": l.solicited,
                    "account": l.account,
                    "ip": l.addr.ip().to_string(),
                    "port": l.addr.port(),
                    "rtt": format!("{:?}", l.counters.rtt()),
                    "in_msgs": l.counters.in_msgs.load(Ordering::Relaxed),
                    "out_msgs": l.counters.out_msgs.load(Ordering::Relaxed),
                    "in_bytes": l.counters.in_bytes.load(Ordering::Relaxed),
                    "out_bytes": l.counters.out_bytes.load(Ordering::Relaxed),
                    "subscriptions": interest.len(),
                    "compression": "off",
                });
                if subs {
                    let mut list: Vec<String> = interest
                        .keys()
                        .map(|(s, q)| match q {
                            Some(q) => format!(
                                "{} {}",
                                String::from_utf8_lossy(s),
                                String::from_utf8_lossy(q)
                            ),
                            None => String::from_utf8_lossy(s).into_owned(),
                        })
                        .collect();
                    list.sort();
                    doc["subscriptions_list"] = json!(list);
                }
                doc
            })
            .collect();
        json!({ "leafnodes": leafs.len(), "leafs": leafs })
    }

    fn varz(&self) -> Value {
        let Some(listen) = self.listen else {
            return json!({});
        };
        let mut doc = json!({
            "host": self.config.host,
            "port": listen.port(),
            "auth_timeout": self.auth_timeout().as_secs(),
            "tls_timeout": self.config.tls.as_ref().map_or(2, |t| t.timeout.as_secs()),
        });
        if let Some(tls) = &self.tls {
            doc["tls_required"] = json!(true);
            doc["tls_verify"] = json!(tls.verify);
        }
        doc
    }
}
