//! Account JWT requests on the system account (operator mode):
//! - `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE` and `$SYS.REQ.CLAIMS.UPDATE` (what `nsc push`
//!   sends), and the older `$SYS.ACCOUNT.<acc>.CLAIMS.UPDATE` event: the JWT in the body
//!   replaces the account's claims without a restart; the account's connections (clients
//!   and accepted leafs) then re-check themselves (revocations take effect at once), those
//!   past its `conn` limit close, and JetStream takes the account's new limits;
//! - `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP`: the account JWT, as the body (full resolver);
//! - `$SYS.REQ.CLAIMS.LIST`: the known account keys;
//! - `$SYS.REQ.CLAIMS.DELETE` (directory resolvers): an operator-signed list of accounts
//!   to delete;
//! - `$SYS.REQ.CLAIMS.PACK` (full resolvers): the catch-up between servers. Every
//!   `interval` a full resolver asks the others, sending the hash of what it holds, and
//!   one whose hash differs answers with every JWT it holds, a `<account>|<jwt>` line a
//!   message, then an empty message; the asker keeps the newer ones as updates (see
//!   [`crate::auth::jwt::resolver`]). So a server that was down while an update was
//!   pushed has it within one interval of coming back, as with nats-server.
//!
//! Replies use nats-server's words: `{"data": {"account", "code": 200, "message": "jwt
//! updated"}}`, or `{"error": {"account", "code": 500, "description": "jwt update resulted
//! in error - …"}}`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, json};
use tracing::{debug, error};

use super::{Request, System, respond};
use crate::auth::jwt::{JwtAuth, UpdateError};
use crate::router::{ByteString, Msg};
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
        "DELETE" => delete(state, system, req).await,
        "PACK" => pack(state, req),
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
            changed(state, jwt, std::slice::from_ref(&key)).await;
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

/// `$SYS.REQ.CLAIMS.DELETE`: an operator's signed list of accounts to delete. Each is
/// forgotten (its file removed or renamed), its clients get `Account Authentication
/// Expired` and its JetStream stops, as nats-server.
async fn delete(state: &Arc<ServerState>, system: &System, req: &Request) {
    let Some(jwt) = state.jwt() else {
        return;
    };
    let token = String::from_utf8_lossy(&req.payload);
    let verified = jwt.trust.verify_delete(&token, jwt.resolver.deletes());
    let (by, accounts) = match verified {
        Ok(v) => v,
        Err((by, why)) => {
            let what = format!("delete accounts request by {by} failed");
            error!("{what} - {why}");
            return respond_status(state, system, req, &what, Some(&why));
        }
    };
    let errors: Vec<String> = accounts
        .iter()
        .filter_map(|key| jwt.resolver.delete(key).err().map(|e| e.to_string()))
        .collect();
    let deleted = accounts.len() - errors.len();
    debug!("{by} deleted {deleted} accounts");
    changed(state, jwt, &[]).await;
    if errors.is_empty() {
        respond_status(
            state,
            system,
            req,
            &format!("deleted {deleted} accounts"),
            None,
        );
    } else {
        let what = format!("deleted {deleted} accounts, failed for {}", errors.len());
        respond_status(state, system, req, &what, Some(&errors.join("\n")));
    }
}

/// A reply without an account: `{"data": {"code": 200, "message"}}` or `{"error": {"code":
/// 500, "description": "<message> - <error>"}}`.
fn respond_status(
    state: &Arc<ServerState>,
    system: &System,
    req: &Request,
    message: &str,
    error: Option<&str>,
) {
    let mut body = Map::new();
    match error {
        None => body.insert("data".into(), json!({"code": 200, "message": message})),
        Some(e) => body.insert(
            "error".into(),
            json!({"code": 500, "description": format!("{message} - {e}")}),
        ),
    };
    respond(state, system, req, body);
}

/// `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP`: the JWT as the body; a directory resolver that
/// does not hold the account answers with an empty body (so that a server asking its
/// peers learns of the absence at once), as nats-server.
fn lookup(state: &Arc<ServerState>, system: &System, acc: &str, req: &Request) {
    let (Some(jwt), Some(reply)) = (state.jwt(), &req.reply) else {
        return;
    };
    let found = jwt.resolver.lookup(acc);
    if found.is_none() && !jwt.resolver.has_dir() {
        return;
    }
    let payload = found.map_or_else(Bytes::new, |r| Bytes::from(r.jwt.clone()));
    let msg = Msg::new(reply, None, None, &payload);
    system.account.router.publish(0, true, &msg);
}

/// Where the answers to this server's pack requests come.
pub(super) fn pack_inbox(state: &ServerState) -> String {
    format!("$SYS._INBOX.{}.CLAIMS.PACK", state.server_id)
}

/// Publishes `payload` on `subject` (with `reply`) in the system account, as is.
fn publish_raw(system: &System, subject: &str, reply: Option<&ByteString>, payload: Bytes) {
    let subject = ByteString::from(subject);
    let msg = Msg::new(&subject, reply, None, &payload);
    system.account.router.publish(0, true, &msg);
}

/// Asks the other full resolvers for what this one lacks (every `interval`).
pub(super) fn ask_pack(state: &ServerState, system: &System) {
    let Some(jwt) = state.jwt() else {
        return;
    };
    let hash = jwt.resolver.hash();
    debug!("Checking store state: {}", hex(&hash));
    let inbox = ByteString::from(pack_inbox(state));
    let hash = Bytes::copy_from_slice(&hash);
    publish_raw(system, "$SYS.REQ.CLAIMS.PACK", Some(&inbox), hash);
}

/// `$SYS.REQ.CLAIMS.PACK`: nothing but the end message when the asker's hash is ours,
/// else every JWT held, one a message, then the end message.
fn pack(state: &ServerState, req: &Request) {
    let (Some(jwt), Some(reply)) = (state.jwt(), &req.reply) else {
        return;
    };
    if jwt.resolver.sync_interval().is_none() {
        return;
    }
    let answer = |payload: Bytes| {
        let msg = Msg::new(reply, None, None, &payload);
        req.account.router.publish(0, true, &msg);
    };
    if req.payload[..] != jwt.resolver.hash() {
        for line in jwt.resolver.pack() {
            answer(Bytes::from(line));
        }
    }
    answer(Bytes::new());
}

/// One message of an answer to our pack request: its newer JWTs are kept, and the
/// accounts they change updated as a pushed update would (connections re-check,
/// imports rewired, JetStream limits).
pub(super) async fn packed(state: &Arc<ServerState>, req: &Request) {
    let Some(jwt) = state.jwt() else {
        return;
    };
    if req.payload.is_empty() {
        return;
    }
    let changed = jwt
        .resolver
        .merge(&jwt.trust, &String::from_utf8_lossy(&req.payload));
    if changed.is_empty() {
        return;
    }
    debug!("Merging succeeded: {changed:?} updated");
    self::changed(state, jwt, &changed).await;
}

/// What follows a change of account JWTs (`accounts` updated; every account may have
/// been deleted): every connection re-checks itself (those of other accounts find
/// nothing changed), accepted leafs too; the updated accounts' `conn` limits close the
/// connections past them; imports are rewired (the importer's own, and those of
/// accounts importing from it); JetStream takes the new limits.
pub(super) async fn changed(state: &Arc<ServerState>, jwt: &JwtAuth, accounts: &[String]) {
    state.clients.notify_auth_reload();
    if let Some(leafs) = state.leafs() {
        leafs.recheck_jwt();
    }
    for account in accounts {
        crate::client::jwt::close_over_limit(state, jwt, account);
    }
    jwt.rewire_all(&state.accounts);
    if let Some(js) = state.js_report() {
        js.accounts_changed().await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
