//! Server administration over the system account, as nats-server 2.15.1 answers it:
//! - `$SYS.REQ.SERVER.<id>.KICK` `{"cid": N}`: closes that client (reason `Kicked`);
//! - `$SYS.REQ.SERVER.<id>.LDM` `{"cid": N}`: tells that client the server is entering
//!   lame-duck mode (an INFO with `"ldm": true`), so it moves elsewhere; a client that did
//!   not CONNECT with `"protocol": 1` cannot take it and the request fails;
//! - `$SYS.REQ.SERVER.<id>.RELOAD`: reloads the configuration file, as SIGHUP does.
//!
//! A success is answered with the `server` object alone; an unknown client id with
//! `{"error": {"code": 500, "description": "no such client id"}}` (KICK says "no such
//! client or leafnode id", as nats-server).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Request, System, respond};
use crate::client::{ClientLink, CloseReason};
use crate::server::ServerState;

/// LDM for a client that did not CONNECT with `"protocol": 1` (it cannot take INFO).
const NO_LDM: &str =
    "client does not support Lame Duck Mode or is not ready to receive the notification";

/// `$SYS.REQ.SERVER.<id>.<kind>` for the administrative kinds; false for other kinds.
pub(super) fn server(state: &ServerState, system: &System, kind: &str, req: &Request) -> bool {
    match kind {
        "KICK" => {
            let client = client(state, req);
            if let Some(c) = &client {
                c.outbound.close_with(CloseReason::Kicked);
            }
            answer(
                state,
                system,
                req,
                client.is_some(),
                "no such client or leafnode id",
            );
        }
        "LDM" => {
            let client = client(state, req);
            let takes_info = client
                .as_ref()
                .is_some_and(|c| c.info.read().is_ok_and(|i| i.protocol >= 1));
            if let Some(c) = client.as_ref().filter(|_| takes_info) {
                let mut info = state.info_template();
                info.ldm = true;
                let mut buf = bytes::BytesMut::new();
                rill_protocol::encode::info(&mut buf, &info);
                c.outbound.push_raw(&buf);
            }
            let why = if client.is_none() {
                "no such client id"
            } else {
                NO_LDM
            };
            answer(state, system, req, takes_info, why);
        }
        "RELOAD" => {
            state.request_reload();
            respond(state, system, req, Map::new());
        }
        _ => return false,
    }
    true
}

/// The client the request's `{"cid": N}` names (MQTT connections have no INFO to hear).
fn client(state: &ServerState, req: &Request) -> Option<Arc<ClientLink>> {
    let body: Value = serde_json::from_slice(&req.payload).ok()?;
    let cid = body.get("cid")?.as_u64()?;
    state
        .clients
        .all()
        .into_iter()
        .find(|c| c.cid == cid && !c.is_mqtt())
}

fn answer(state: &ServerState, system: &System, req: &Request, found: bool, missing: &str) {
    let mut body = Map::new();
    if !found {
        body.insert("error".into(), json!({"code": 500, "description": missing}));
    }
    respond(state, system, req, body);
}
