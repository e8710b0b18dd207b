//! The system requests every account imports (as nats-server adds to each account when
//! it has a system account), answered in the account that asks:
//! - `$SYS.REQ.USER.INFO`: the asking connection's user, account (and its name), the
//!   permissions in force and, for a JWT user, the time left before it expires
//!   (nanoseconds). Only the server the requester is connected to answers;
//! - `$SYS.REQ.SERVER.PING.CONNZ` and `$SYS.REQ.ACCOUNT.PING.CONNZ`: the account's
//!   connections on every server that hears it;
//! - `$SYS.REQ.ACCOUNT.PING.STATZ`: the account's connection counts.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Request, System, requests, respond_data};
use crate::locks;
use crate::server::ServerState;

/// `$SYS.REQ.USER.INFO`.
pub const USER_INFO: &str = "$SYS.REQ.USER.INFO";

/// What each account subscribes, `USER.INFO` first (the system account takes it alone).
pub const SUBJECTS: [&str; 4] = [
    USER_INFO,
    "$SYS.REQ.SERVER.PING.CONNZ",
    "$SYS.REQ.ACCOUNT.PING.CONNZ",
    "$SYS.REQ.ACCOUNT.PING.STATZ",
];

/// Answers one of [`SUBJECTS`] asked in `req.account`.
pub(super) async fn handle(state: &Arc<ServerState>, system: &System, req: &Request) {
    let account = req.account.name.clone();
    match req.subject.as_str() {
        USER_INFO => {
            if let Some(info) = user_info(state, req) {
                respond_data(state, system, req, info);
            }
        }
        "$SYS.REQ.SERVER.PING.CONNZ" | "$SYS.REQ.ACCOUNT.PING.CONNZ" => {
            requests::account(state, system, &account, "CONNZ", req).await;
        }
        "$SYS.REQ.ACCOUNT.PING.STATZ" => {
            requests::account(state, system, &account, "STATZ", req).await;
        }
        _ => {}
    }
}

/// The requester's `user`, `account`, `account_name`, `permissions`, and for a JWT user
/// `user_name` and `expires`;
/// `None` when it is not a client of this server (nats-server: only the server it is
/// bound to answers).
fn user_info(state: &ServerState, req: &Request) -> Option<Value> {
    let client = state.clients.get(req.publisher)?;
    let info = locks::read(&client.info).clone();
    let mut data = json!({
        "user": info.user.unwrap_or_default(),
        "account": info.account,
        "account_name": requests::account_name(state, &info.account),
    });
    if let Some(name) = info.user_name {
        data["user_name"] = json!(name);
    }
    if let Some(perms) = client.permissions() {
        data["permissions"] = perms.to_json();
    }
    if let Some(at) = info.expires {
        let left = (at - crate::auth::jwt::token::now()).max(0);
        data["expires"] = json!(left.saturating_mul(1_000_000_000));
    }
    Some(data)
}
