//! Raft traffic between servers over the route connections, as nats-server's `$NRG.>`:
//! internal subscriptions in the system account (routes carry every account, so route
//! TLS and authorization apply, and a test's fault proxy cuts Raft traffic with the rest).
//!
//! Subjects (server names are single tokens):
//! - `$NRG.<to>.<group>.<RPC>` with reply `$NRG.<from>.R.<n>`: one RPC of one group
//!   ([`Rpc::as_str`]); the answer is published to the reply subject;
//! - `$NRG.HELLO`: every server's [`Hello`], every half second (peer discovery);
//! - `$NRG.<to>.<group>.API` with the same reply form: a `$JS.API` request about a
//!   replicated stream, forwarded to its group's leader ([`super::forward`]); served by
//!   the hook set with [`RouteTransport::serve_api`];
//! - `$NRG.<to>.<group>.CATCHUP` with the same reply form: a chunk of a stream's
//!   messages for a replica installing a snapshot (`super::replica::catchup`), served
//!   by the hook set with [`RouteTransport::serve_catchup`].
//!
//! One task reads the bounded inbound queue; each RPC is served on a task of its own
//! (held in a `JoinSet`), so a slow append never delays a vote.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::account::Account;
use crate::raft::{Network, Raft, Rpc, Transport, serve};
use crate::router::{ByteString, Delivery, Msg, Subscriber, Subscription};

/// Inbound messages waiting for the transport task.
const QUEUE: usize = 4096;
/// The discovery subject.
pub(super) const HELLO: &str = "$NRG.HELLO";

/// What a server announces about itself on [`HELLO`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Hello {
    /// Its `server_name`.
    pub(super) name: String,
    /// Whether it is a member of an initialized meta group.
    pub(super) member: bool,
    /// Its `server_tags` (stream placement); absent from servers that have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tags: Vec<String>,
    /// Its share of each JetStream account's usage (`super::usage`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) usage: BTreeMap<String, super::usage::Usage>,
}

#[derive(Debug)]
struct Inbound {
    subject: String,
    reply: Option<ByteString>,
    payload: Bytes,
}

#[derive(Debug)]
struct NrgSubscriber {
    tx: mpsc::Sender<Inbound>,
}

impl Subscriber for NrgSubscriber {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let inbound = Inbound {
            subject: msg.subject.to_owned(),
            reply: msg.reply_text(),
            payload: Bytes::copy_from_slice(msg.payload),
        };
        match self.tx.try_send(inbound) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// Serves a forwarded API request for a group: `(group, body)` → the answer (empty:
/// none).
pub(super) type ApiHook = Arc<dyn Fn(String, Bytes) -> BoxFuture<'static, Bytes> + Send + Sync>;

/// The RPC token of a forwarded API request.
pub(super) const API: &str = "API";
/// The RPC token of a catch-up read.
pub(super) const CATCHUP: &str = "CATCHUP";

/// Calls waiting for their answer, by number.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>;

/// The route transport of one server, shared by all its groups.
pub(super) struct RouteTransport {
    account: Arc<Account>,
    me: String,
    next: AtomicU64,
    pending: Pending,
    groups: Mutex<HashMap<String, (Raft, Network)>>,
    hellos: mpsc::Sender<Hello>,
    api: std::sync::OnceLock<ApiHook>,
    catchup: std::sync::OnceLock<ApiHook>,
}

impl std::fmt::Debug for RouteTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTransport")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RouteTransport {
    /// Subscribes this server's `$NRG` subjects in `account` and starts the task that
    /// serves them until `stop`. Hellos from other servers go to the returned receiver.
    pub(super) fn start(
        account: Arc<Account>,
        me: &str,
        stop: watch::Receiver<bool>,
    ) -> (
        Arc<RouteTransport>,
        mpsc::Receiver<Hello>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (hellos, hello_rx) = mpsc::channel(64);
        let owner: Arc<dyn Subscriber> = Arc::new(NrgSubscriber { tx });
        for (i, subject) in [format!("$NRG.{me}.>"), HELLO.to_string()]
            .into_iter()
            .enumerate()
        {
            let sid = Bytes::from(format!("nrg{i}"));
            let sub = Subscription::new(sid, Bytes::from(subject), None, Arc::clone(&owner));
            account.router.subscribe(&sub);
        }
        let transport = Arc::new(RouteTransport {
            account,
            me: me.to_string(),
            next: AtomicU64::new(1),
            pending: Pending::default(),
            groups: Mutex::new(HashMap::new()),
            hellos,
            api: std::sync::OnceLock::new(),
            catchup: std::sync::OnceLock::new(),
        });
        let task = tokio::spawn(run(Arc::clone(&transport), rx, stop));
        (transport, hello_rx, task)
    }

    /// Serves `group`'s RPCs addressed to this server with `raft`; `net` (the group's
    /// network here) hears of the leader's AppendEntries, by sender.
    pub(super) fn serve_group(&self, group: &str, raft: Raft, net: Network) {
        lock(&self.groups).insert(group.to_string(), (raft, net));
    }

    /// Serves forwarded API requests with `hook` (set once).
    pub(super) fn serve_api(&self, hook: ApiHook) {
        let _ = self.api.set(hook);
    }

    /// Serves catch-up reads with `hook` (set once).
    pub(super) fn serve_catchup(&self, hook: ApiHook) {
        let _ = self.catchup.set(hook);
    }

    /// Sends a catch-up read for `group` to the server `to`; its answer.
    pub(super) fn call_catchup(
        &self,
        to: &str,
        group: &str,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, io::Result<Bytes>> {
        self.call_token(to, group, CATCHUP, body, timeout)
    }

    /// Sends a forwarded API request for `group` to the server `to`; its answer.
    pub(super) fn call_api(
        &self,
        to: &str,
        group: &str,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, io::Result<Bytes>> {
        self.call_token(to, group, API, body, timeout)
    }

    /// Stops serving `group` here.
    pub(super) fn unserve_group(&self, group: &str) {
        lock(&self.groups).remove(group);
    }

    /// Publishes on `subject` in the transport's account.
    pub(super) fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes) {
        let subject = ByteString::from(subject);
        let reply = reply.map(ByteString::from);
        let msg = Msg::new(&subject, reply.as_ref(), None, &payload);
        self.account.router.publish(0, true, &msg);
    }

    fn inbound(self: &Arc<Self>, msg: Inbound, tasks: &mut JoinSet<()>) {
        let tokens: Vec<&str> = msg.subject.split('.').collect();
        match tokens.as_slice() {
            ["$NRG", "HELLO"] => {
                if let Ok(hello) = serde_json::from_slice::<Hello>(&msg.payload)
                    && hello.name != self.me
                {
                    let _ = self.hellos.try_send(hello);
                }
            }
            ["$NRG", _, "R", n] => {
                let waiter = n.parse().ok().and_then(|n| lock(&self.pending).remove(&n));
                if let Some(tx) = waiter {
                    let _ = tx.send(msg.payload);
                }
            }
            ["$NRG", _, group, token @ (API | CATCHUP)] => {
                let hook = if *token == API {
                    self.api.get()
                } else {
                    self.catchup.get()
                };
                let (Some(hook), Some(reply)) = (hook.cloned(), msg.reply) else {
                    return;
                };
                let (me, group) = (Arc::clone(self), (*group).to_string());
                tasks.spawn(async move {
                    let answer = hook(group, msg.payload).await;
                    me.publish(&reply, None, answer);
                });
            }
            ["$NRG", _, group, rpc] => {
                let served = lock(&self.groups).get(*group).cloned();
                let rpc_kind = Rpc::parse(rpc);
                let raft = served.map(|(raft, net)| {
                    if rpc_kind == Some(Rpc::Append)
                        && let Some(from) = msg.reply.as_deref().and_then(sender)
                    {
                        net.heard_from(from);
                    }
                    raft
                });
                if raft.is_none()
                    && let Some(reply) = &msg.reply
                {
                    // Not (yet) a member here: say so at once (a probe gets `false`,
                    // anything else an empty answer the caller retries after its
                    // backoff), rather than letting the caller wait out its timeout.
                    let answer = if rpc_kind == Some(Rpc::Probe) {
                        crate::raft::net::not_initialized()
                    } else {
                        Bytes::new()
                    };
                    self.publish(reply, None, answer);
                    return;
                }
                let (Some(raft), Some(rpc), Some(reply)) = (raft, rpc_kind, msg.reply) else {
                    return;
                };
                let me = Arc::clone(self);
                tasks.spawn(async move {
                    let answer = serve(&raft, rpc, &msg.payload).await;
                    me.publish(&reply, None, answer);
                });
            }
            _ => {}
        }
    }
}

/// The server that sent a call, from its reply subject (`$NRG.<sender>.R.<n>`).
fn sender(reply: &str) -> Option<&str> {
    let mut tokens = reply.split('.');
    match (tokens.next(), tokens.next(), tokens.next()) {
        (Some("$NRG"), Some(from), Some("R")) => Some(from),
        _ => None,
    }
}

async fn run(
    transport: Arc<RouteTransport>,
    mut rx: mpsc::Receiver<Inbound>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => transport.inbound(msg, &mut tasks),
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    tasks.shutdown().await;
}

impl Transport for RouteTransport {
    fn call(
        &self,
        to: &str,
        group: &str,
        rpc: Rpc,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, io::Result<Bytes>> {
        self.call_token(to, group, rpc.as_str(), body, timeout)
    }
}

impl RouteTransport {
    /// One call: `body` to `$NRG.<to>.<group>.<token>`, its answer within `timeout`.
    fn call_token(
        &self,
        to: &str,
        group: &str,
        token: &str,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, io::Result<Bytes>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(n, tx);
        let subject = format!("$NRG.{to}.{group}.{token}");
        let reply = format!("$NRG.{}.R.{n}", self.me);
        self.publish(&subject, Some(&reply), body);
        let waiter = Waiter {
            n,
            rx,
            pending: Arc::clone(&self.pending),
        };
        Box::pin(waiter.wait(timeout))
    }
}

/// One outstanding call's answer.
struct Waiter {
    n: u64,
    rx: oneshot::Receiver<Bytes>,
    pending: Pending,
}

impl Waiter {
    async fn wait(self, timeout: Duration) -> io::Result<Bytes> {
        let answer = tokio::time::timeout(timeout, self.rx).await;
        lock(&self.pending).remove(&self.n);
        match answer {
            Ok(Ok(answer)) if !answer.is_empty() => Ok(answer),
            Ok(_) => Err(io::Error::other("raft peer gave no answer")),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("raft call {} timed out", self.n),
            )),
        }
    }
}
