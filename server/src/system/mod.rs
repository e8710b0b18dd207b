//! The system account: the `$SYS` subjects that tools (natscli's `server ls/ping/report`,
//! monitoring collectors, `nsc push`) use to reach servers over NATS itself.
//!
//! [`System`] subscribes internally in the system account and feeds one bounded channel
//! read by one task ([`System::start`]), which answers:
//! - `$SYS.REQ.SERVER.PING` (statsz) and `$SYS.REQ.SERVER.PING.<KIND>`, and
//!   `$SYS.REQ.SERVER.<id>.<KIND>` for this server's id (`VARZ`, `CONNZ`, `SUBSZ`, `JSZ`,
//!   `HEALTHZ`, `ACCOUNTZ`, `ROUTEZ`, `STATSZ`), see [`requests`], and the
//!   administrative `KICK`, `LDM` and `RELOAD`, see [`admin`];
//! - `$SYS.REQ.ACCOUNT.<account>.<KIND>` (`CONNZ`, `SUBSZ`, `LEAFZ`, `JSZ`, `INFO`,
//!   `STATZ`, `CONNS`) and
//!   the account JWT requests `CLAIMS.UPDATE`, `CLAIMS.LOOKUP`, `$SYS.REQ.CLAIMS.*`, and
//!   with a full resolver the catch-up with the other servers (`CLAIMS.PACK` every
//!   `interval`), see [`claims`].
//!
//! Every account also gets the requests nats-server imports into each account from the
//! system account, answered in that account ([`imported`]): `$SYS.REQ.USER.INFO` (the
//! requester's own user, account, permissions and expiry), `$SYS.REQ.SERVER.PING.CONNZ`
//! and `$SYS.REQ.ACCOUNT.PING.CONNZ` (the account's connections) and
//! `$SYS.REQ.ACCOUNT.PING.STATZ` (its connection counts).
//!
//! It also publishes events ([`events`]): client connect/disconnect and auth errors (it is
//! the server's [`crate::client::events::EventSink`]), and the `$SYS.SERVER.<id>.STATSZ`
//! heartbeat every 10 s.
//!
//! Each server answers for itself, from its own state, and only to subjects it was asked
//! on: with routes, a ping that reaches every server is answered by every server, and a
//! request for one server id only by that server. Replies and events use nats-server's
//! JSON layout (`{"server": {...}, "data": {...}}`).

pub mod admin;
pub mod claims;
pub mod events;
pub mod expiry;
pub mod imported;
pub mod requests;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::debug;

use crate::account::{Account, AccountHook};
use crate::monitoring::rfc3339;
use crate::router::{ByteString, Delivery, Msg, Subscriber, Subscription};
use crate::server::{ServerState, VERSION};

/// Requests waiting for the system task.
const QUEUE: usize = 1024;

/// How often the statsz heartbeat goes out (nats-server's `statsHBInterval`).
const STATSZ_INTERVAL: Duration = Duration::from_secs(10);

/// A message copied out of the router for the system task.
#[derive(Debug)]
pub struct Request {
    /// Subject.
    pub subject: String,
    /// Reply subject, if any.
    pub reply: Option<ByteString>,
    /// Body.
    pub payload: Bytes,
    /// The account it was asked in, where the reply goes: the system account, or an
    /// account asking one of the [`imported`] requests.
    pub account: Arc<Account>,
    /// The local connection that asked (0 when internal or from another server).
    pub publisher: u64,
}

pub use crate::shared::ServerInfo;

/// The system account service.
#[derive(Debug)]
pub struct System {
    /// The system account.
    pub account: Arc<Account>,
    /// The server, for the events connections report through [`crate::client::events`]
    /// (weak: the state holds this service as its event sink).
    state: Weak<ServerState>,
    seq: AtomicU64,
    tx: mpsc::Sender<Request>,
}

#[derive(Debug)]
struct SysSubscriber {
    tx: mpsc::Sender<Request>,
    /// The account subscribed in (weak: the account's router holds this subscriber).
    account: Weak<Account>,
}

impl Subscriber for SysSubscriber {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let Some(account) = self.account.upgrade() else {
            return Delivery::Dropped;
        };
        let req = Request {
            subject: msg.subject.to_owned(),
            reply: msg.reply_text(),
            payload: Bytes::copy_from_slice(msg.payload),
            account,
            publisher: msg.publisher,
        };
        match self.tx.try_send(req) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// The subjects the system task listens on. `$SYS.REQ.CLAIMS.*` only with a directory
/// resolver: nats-server's MEMORY resolver takes updates per account only.
fn subjects(state: &ServerState) -> Vec<String> {
    let mut v = vec![
        "$SYS.REQ.SERVER.PING".into(),
        "$SYS.REQ.SERVER.PING.*".into(),
        format!("$SYS.REQ.SERVER.{}.*", state.server_id),
        "$SYS.REQ.ACCOUNT.*.*".into(),
        "$SYS.REQ.ACCOUNT.*.CLAIMS.*".into(),
        "$SYS.ACCOUNT.*.CLAIMS.UPDATE".into(),
    ];
    if state.jwt().is_some_and(|j| j.resolver.has_dir()) {
        v.push("$SYS.REQ.CLAIMS.*".into());
    }
    if state
        .jwt()
        .is_some_and(|j| j.resolver.sync_interval().is_some())
    {
        v.push(claims::pack_inbox(state));
    }
    v
}

/// Subscribes `subjects` in `account` for the system task.
fn subscribe(account: &Arc<Account>, tx: &mpsc::Sender<Request>, subjects: &[impl AsRef<str>]) {
    let owner: Arc<dyn Subscriber> = Arc::new(SysSubscriber {
        tx: tx.clone(),
        account: Arc::downgrade(account),
    });
    for (i, subject) in subjects.iter().enumerate() {
        let sub = Subscription::new(
            Bytes::from(format!("sys{i}")),
            Bytes::copy_from_slice(subject.as_ref().as_bytes()),
            None,
            Arc::clone(&owner),
        );
        account.router.subscribe(&sub);
    }
}

/// Subscribes the [`imported`] requests in every account, once each (the system account
/// itself takes only `USER.INFO`: it answers the others as system requests).
fn imports_hook(system: &str, tx: &mpsc::Sender<Request>) -> AccountHook {
    let system = system.to_string();
    let tx = tx.clone();
    let done = Mutex::new(HashSet::new());
    AccountHook::new(move |account: &Arc<Account>| {
        if !crate::locks::lock(&done).insert(account.name.clone()) {
            return;
        }
        let subjects = if account.name == system {
            &imported::SUBJECTS[..1]
        } else {
            &imported::SUBJECTS[..]
        };
        subscribe(account, &tx, subjects);
    })
}

impl System {
    /// Subscribes the system subjects and starts the task that answers them and sends the
    /// statsz heartbeat, until `stop` turns true. `None` without a system account.
    pub fn start(
        state: &Arc<ServerState>,
        stop: watch::Receiver<bool>,
    ) -> Option<(Arc<Self>, tokio::task::JoinHandle<()>)> {
        let name = state.system_account()?;
        let account = state.accounts.get(&name);
        let (tx, rx) = mpsc::channel(QUEUE);
        subscribe(&account, &tx, &subjects(state));
        state.accounts.each_account(imports_hook(&name, &tx));
        let system = Arc::new(Self {
            account,
            state: Arc::downgrade(state),
            seq: AtomicU64::new(1),
            tx,
        });
        let task = tokio::spawn(run(Arc::clone(state), Arc::clone(&system), rx, stop));
        Some((system, task))
    }

    /// The `server` object for the next message.
    pub fn server_info(&self, state: &ServerState) -> ServerInfo {
        let config = state.config();
        let jetstream = config.jetstream.is_some();
        ServerInfo {
            name: state.server_name.clone(),
            host: config.host.clone(),
            id: state.server_id.clone(),
            cluster: None,
            ver: VERSION.to_string(),
            jetstream,
            flags: u64::from(jetstream),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            time: rfc3339(SystemTime::now()),
        }
    }

    /// Publishes `body` as JSON on `subject` in the system account.
    pub fn send(&self, subject: &str, body: &impl Serialize) {
        let Ok(json) = serde_json::to_vec(body) else {
            return;
        };
        let subject = ByteString::from(subject);
        let payload = Bytes::from(json);
        let msg = Msg::new(&subject, None, None, &payload);
        self.account.router.publish(0, true, &msg);
    }

    /// Answers `req` (when it has a reply subject) with `body` as JSON, as is, in the
    /// account it was asked in.
    pub fn reply(&self, req: &Request, body: &impl Serialize) {
        let (Some(reply), Ok(json)) = (&req.reply, serde_json::to_vec(body)) else {
            return;
        };
        let payload = Bytes::from(json);
        req.account
            .router
            .publish(0, true, &Msg::new(reply, None, None, &payload));
    }

    /// True when the system task still takes requests (for tests of shutdown).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

async fn run(
    state: Arc<ServerState>,
    system: Arc<System>,
    mut rx: mpsc::Receiver<Request>,
    mut stop: watch::Receiver<bool>,
) {
    let mut heartbeat = tokio::time::interval(STATSZ_INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let jwt = state.jwt().cloned();
    let mut catch_up = jwt
        .as_ref()
        .and_then(|j| j.resolver.sync_interval())
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    loop {
        tokio::select! {
            req = rx.recv() => match req {
                Some(req) => handle(&state, &system, req).await,
                None => return,
            },
            _ = heartbeat.tick() => events::statsz_heartbeat(&state, &system),
            () = tick(catch_up.as_mut()) => claims::ask_pack(&state, &system),
            _ = stop.changed() => return,
        }
    }
}

/// The next tick of an optional timer (forever without one).
async fn tick(timer: Option<&mut tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn handle(state: &Arc<ServerState>, system: &System, req: Request) {
    debug!("system request on {} in {}", req.subject, req.account.name);
    if !Arc::ptr_eq(&req.account, &system.account) || req.subject == imported::USER_INFO {
        return imported::handle(state, system, &req).await;
    }
    let tokens: Vec<&str> = req.subject.split('.').collect();
    match tokens.as_slice() {
        ["$SYS", "REQ", "SERVER", ..] => {
            requests::server(state, system, &tokens[3..], &req).await;
        }
        ["$SYS", "REQ", "ACCOUNT", acc, "CLAIMS", op] => {
            claims::account_op(state, system, acc, op, &req).await;
        }
        ["$SYS", "REQ", "ACCOUNT", acc, kind] => {
            requests::account(state, system, acc, kind, &req).await;
        }
        ["$SYS", "REQ", "CLAIMS", op] => claims::claims_op(state, system, op, &req).await,
        ["$SYS", "_INBOX", _, "CLAIMS", "PACK"] => claims::packed(state, &req).await,
        ["$SYS", "ACCOUNT", acc, "CLAIMS", "UPDATE"] => {
            claims::account_op(state, system, acc, "UPDATE", &req).await;
        }
        _ => {}
    }
}

/// Answers `req` (when it has a reply subject) with `body` plus the `server` object.
pub(crate) fn respond(
    state: &ServerState,
    system: &System,
    req: &Request,
    mut body: serde_json::Map<String, serde_json::Value>,
) {
    if req.reply.is_none() {
        return;
    }
    let server = serde_json::to_value(system.server_info(state)).unwrap_or_default();
    body.insert("server".into(), server);
    system.reply(req, &body);
}

/// Answers `req` with `{"server": ..., "data": data}`.
pub(crate) fn respond_data(
    state: &ServerState,
    system: &System,
    req: &Request,
    data: serde_json::Value,
) {
    let mut body = serde_json::Map::new();
    body.insert("data".into(), data);
    respond(state, system, req, body);
}
