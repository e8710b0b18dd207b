//! Events published in the system account, in nats-server's JSON layout:
//! - `$SYS.ACCOUNT.<acc>.CONNECT` / `.DISCONNECT` (`io.nats.server.advisory.v1.client_connect`
//!   / `client_disconnect`), followed by the account's connection count on
//!   `$SYS.ACCOUNT.<acc>.SERVER.CONNS` and the older `$SYS.SERVER.ACCOUNT.<acc>.CONNS`;
//! - `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` and `$SYS.ACCOUNT.CLIENT.AUTH.ERR` for a refused
//!   CONNECT (a `client_disconnect` with reason `Authentication Failure`);
//! - `$SYS.SERVER.<id>.STATSZ`, the heartbeat, every 10 s.
//!
//! Events are sent from the task where they happen (the connection's own), straight into
//! the system account's router; nothing here blocks.

use std::time::SystemTime;

use rand::RngExt;
use serde_json::{Value, json};

use super::System;
use super::requests::{account_conns, account_name, statsz};
use crate::client::ClientLink;
use crate::client::events::EventSink;
use crate::locks;
use crate::monitoring::rfc3339;
use crate::server::ServerState;
use crate::stats::Stats;

const CONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_connect";
const DISCONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_disconnect";
const CONNS_TYPE: &str = "io.nats.server.advisory.v1.account_connections";

/// A unique event id (22 base62 characters, as nats-server's nuid).
fn event_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn header(state: &ServerState, system: &System, kind: &str) -> Value {
    json!({
        "type": kind,
        "id": event_id(),
        "timestamp": rfc3339(SystemTime::now()),
        "server": system.server_info(state),
    })
}

/// The `client` object of connect and disconnect events.
fn client_info(state: &ServerState, link: &ClientLink, account: &str, stop: bool) -> Value {
    let info = locks::read(&link.info).clone();
    let mut c = json!({
        "start": rfc3339(link.started),
        "host": link.addr.ip().to_string(),
        "id": link.cid,
        "acc": account,
        "lang": info.lang,
        "ver": info.version,
        "name_tag": account_name(state, account),
        "kind": "Client",
        "client_type": "nats",
    });
    if let Some(user) = info.user {
        c["user"] = json!(user);
    }
    if !info.name.is_empty() {
        c["name"] = json!(info.name);
    }
    if stop {
        c["stop"] = json!(rfc3339(SystemTime::now()));
    }
    c
}

impl EventSink for System {
    fn client_connected(&self, link: &ClientLink, account: &str) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let mut event = header(&state, self, CONNECT_TYPE);
        event["client"] = client_info(&state, link, account, false);
        self.send(&format!("$SYS.ACCOUNT.{account}.CONNECT"), &event);
        conns_changed(&state, self, account);
    }

    fn client_disconnected(&self, link: &ClientLink, account: &str, reason: &str) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let event = disconnect_event(&state, self, link, account, reason);
        self.send(&format!("$SYS.ACCOUNT.{account}.DISCONNECT"), &event);
        conns_changed(&state, self, account);
    }

    fn auth_error(&self, link: &ClientLink, account: &str) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let event = disconnect_event(&state, self, link, account, "Authentication Failure");
        self.send(
            &format!("$SYS.SERVER.{}.CLIENT.AUTH.ERR", state.server_id),
            &event,
        );
        self.send("$SYS.ACCOUNT.CLIENT.AUTH.ERR", &event);
    }
}

fn disconnect_event(
    state: &ServerState,
    system: &System,
    link: &ClientLink,
    account: &str,
    reason: &str,
) -> Value {
    let mut event = header(state, system, DISCONNECT_TYPE);
    event["client"] = client_info(state, link, account, true);
    event["sent"] = json!({
        "msgs": Stats::get(&link.out_msgs),
        "bytes": Stats::get(&link.out_bytes),
    });
    event["received"] = json!({
        "msgs": Stats::get(&link.in_msgs),
        "bytes": Stats::get(&link.in_bytes),
    });
    event["reason"] = json!(reason);
    event
}

fn conns_changed(state: &ServerState, system: &System, account: &str) {
    let mut event = header(state, system, CONNS_TYPE);
    if let (Some(e), Some(c)) = (
        event.as_object_mut(),
        account_conns(state, account).as_object(),
    ) {
        e.extend(c.clone());
    }
    system.send(&format!("$SYS.ACCOUNT.{account}.SERVER.CONNS"), &event);
    system.send(&format!("$SYS.SERVER.ACCOUNT.{account}.CONNS"), &event);
}

/// The periodic `$SYS.SERVER.<id>.STATSZ`.
pub(super) fn statsz_heartbeat(state: &ServerState, system: &System) {
    let body = json!({"server": system.server_info(state), "statsz": statsz(state)});
    system.send(&format!("$SYS.SERVER.{}.STATSZ", state.server_id), &body);
}
