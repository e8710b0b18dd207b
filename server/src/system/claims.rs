//! Account JWT requests on the system account (operator mode):
//! - `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE` and `$SYS.REQ.CLAIMS.UPDATE` (what `nsc push`
//!   sends), and the older `$SYS.ACCOUNT.<acc>.CLAIMS.UPDATE` event: the JWT in the body
//!   replaces the account's claims without a restart; the account's connections then
//!   re-check themselves (revocations take effect at once) and JetStream takes the
//!   account's new limits;
//! - `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP`: the account JWT, as the body (full resolver);
//! - `$SYS.REQ.CLAIMS.LIST`: the known account keys.
//!
//! Replies use nats-server's words: `{"data": {"account", "code": 200, "message": "jwt
//! updated"}}`, or `{"error": {"account", "code": 500, "description": "jwt update resulted
//! in error - …"}}`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, json};
use tracing::{debug, error};

use super::{Request, System, respond};
use crate::auth::jwt::UpdateError;
use crate::router::Msg;
use crate::server::ServerState;

/// `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.<op>` (and the older update event).
pub(super) async fn account_op(
    state: &Arc<ServerState>,
    system: &System,
    acc: &str,
    op: &str,
    req: &Request,
) {
    match op {
        "UPDATE" => update(state, system, Some(acc), req).await,
        "LOOKUP" => lookup(state, system, acc, req),
        _ => {}
    }
}

/// `$SYS.REQ.CLAIMS.<op>`.
pub(super) async fn claims_op(state: &Arc<ServerState>, system: &System, op: &str, req: &Request) {
    match op {
        "UPDATE" => update(state, system, None, req).await,
        "LIST" => {
            let Some(jwt) = state.jwt() else {
                return;
            };
            let mut body = Map::new();
            body.insert("data".into(), json!(jwt.resolver.keys()));
            respond(state, system, req, body);
        }
        _ => {}
    }
}

async fn update(state: &Arc<ServerState>, system: &System, acc: Option<&str>, req: &Request) {
    let Some(jwt) = state.jwt() else {
        return;
    };
    let token = String::from_utf8_lossy(&req.payload);
    let mut body = Map::new();
    if let Some(acc) = acc
        && jwt.resolver.skips(acc)
    {
        body.insert(
            "data".into(),
            json!({"account": acc, "code": 200, "message": "jwt update skipped"}),
        );
        respond(state, system, req, body);
        return;
    }
    let result = jwt.resolver.update(&jwt.trust, acc, &token);
    match result {
        Ok(resolved) => {
            let key = resolved.claims.data.sub.clone();
            debug!("jwt updated - {key}");
            // Every connection re-checks itself; those of other accounts find nothing
            // changed.
            state.clients.notify_auth_reload();
            // Imports follow: the importer's own, and those of accounts importing from it.
            jwt.rewire_all(&state.accounts);
            if let Some(js) = state.js_report() {
                js.accounts_changed().await;
            }
            body.insert(
                "data".into(),
                json!({"account": key, "code": 200, "message": "jwt updated"}),
            );
        }
        Err(e) => {
            let account = acc.unwrap_or("n/a");
            let what = match e {
                UpdateError::Invalid(_) => "jwt validation failed",
                _ => "jwt update resulted in error",
            };
            error!("{what} - {account} - {e}");
            body.insert(
                "error".into(),
                json!({"account": account, "code": 500, "description": format!("{what} - {e}")}),
            );
        }
    }
    respond(state, system, req, body);
}

fn lookup(state: &Arc<ServerState>, system: &System, acc: &str, req: &Request) {
    let (Some(jwt), Some(reply)) = (state.jwt(), &req.reply) else {
        return;
    };
    let Some(resolved) = jwt.resolver.lookup(acc) else {
        return;
    };
    let payload = Bytes::from(resolved.jwt.clone());
    let msg = Msg::new(reply, None, None, &payload);
    system.account.router.publish(0, true, &msg);
}
