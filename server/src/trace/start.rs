//! Where a record starts: a message entering this server from a client, a route or a
//! leaf node, with trace headers ([`begin`]); and where its report goes when done: the
//! trace subject in the account it entered, from this server (as nats-server, each
//! server a message passes sends its own report there).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rill_protocol::compat::NATS_VERSION;

use super::record::{Activation, Conn, Origin, Trace};
use crate::account::Account;
use crate::router::Msg;
use crate::server::ServerState;
use crate::shared::ServerInfo;

/// What to do with a message that entered this server.
#[derive(Debug)]
pub enum Begun {
    /// Not traced: deliver it as it is.
    Plain,
    /// Trace-only with a trace subject that cannot take reports: deliver nothing.
    Dropped,
    /// Traced: route it with the record ([`Msg::with_trace`]).
    Traced(Arc<Trace>),
}

impl Begun {
    /// The record, when traced.
    pub fn trace(&self) -> Option<&Arc<Trace>> {
        match self {
            Self::Traced(trace) => Some(trace),
            _ => None,
        }
    }
}

/// Starts the record of `msg`, which entered `account` over the connection `conn`
/// describes, when its headers ask for a trace (`Nats-Trace-Dest`, or a sampled
/// `traceparent` in an account with `msg_trace`), with its ingress event. Messages
/// without headers cost nothing.
pub fn begin(
    state: &Arc<ServerState>,
    account: &Arc<Account>,
    conn: impl FnOnce() -> Conn,
    msg: &Msg<'_>,
) -> Begun {
    let Some(headers) = msg.headers else {
        return Begun::Plain;
    };
    let (dest, only) = match Activation::of(headers) {
        Activation::None => return Begun::Plain,
        Activation::Invalid { only: true } => return Begun::Dropped,
        Activation::Invalid { only: false } => return Begun::Plain,
        Activation::Dest { dest, only } => (dest, only),
        Activation::Parent => match account.msg_trace().filter(|t| t.samples()) {
            Some(config) => (config.dest, false),
            None => return Begun::Plain,
        },
    };
    let origin = Origin {
        dest,
        only,
        account: account.name.clone(),
        headers: Bytes::copy_from_slice(headers),
        size: msg.size(),
    };
    let trace = Trace::new(origin, sender(state, account));
    trace.ingress(conn(), msg.subject, None);
    Begun::Traced(trace)
}

/// Publishes the finished record into `account` on its trace subject.
fn sender(state: &Arc<ServerState>, account: &Arc<Account>) -> super::record::Sender {
    let (state, account) = (Arc::clone(state), Arc::clone(account));
    Box::new(move |trace: &Trace| {
        let body = Bytes::from(trace.report(server_info(&state)));
        let msg = Msg::new(trace.dest(), None, None, &body);
        account.router.publish(0, true, &msg);
    })
}

/// Reports sent by this server, numbered as nats-server numbers its events.
static SEQ: AtomicU64 = AtomicU64::new(1);

/// The `server` object of a report.
fn server_info(state: &ServerState) -> ServerInfo {
    let config = state.config();
    let jetstream = config.jetstream.is_some();
    ServerInfo {
        name: state.server_name.clone(),
        host: config.host.clone(),
        id: state.server_id.clone(),
        cluster: state.cluster().map(|c| c.name()),
        ver: NATS_VERSION.to_string(),
        jetstream,
        flags: u64::from(jetstream),
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        time: super::record::now(),
    }
}
