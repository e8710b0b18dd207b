//! The `$JS.API` front door: internal subscriptions feeding two bounded queues, one for
//! requests that change something and one for reads, each served by a dispatcher that
//! runs every request as its own task. A task parses the subject into an
//! [`ApiSubject`] and dispatches it, in one exhaustive `match` ([`handle`]), to a
//! handler in the file of its API family (`account.rs`, `stream.rs`, `msg.rs`,
//! `consumer.rs`; `disabled.rs` answers for an account without JetStream).
//!
//! Subscribed subjects: `$JS.API.INFO`, `$JS.API.STREAM.>`, `$JS.API.CONSUMER.>`,
//! `$JS.API.META.LEADER.STEPDOWN` (answered for the system account only, `meta.rs`) and
//! with a JetStream domain `$JS.<domain>.API.>`, mapped onto those (`domain.rs`).
//! Direct gets are subscribed per stream (only with `allow_direct`), so a direct
//! get on any other stream gets no-responders, as from nats-server. Requests
//! without a reply subject get no answer; an API subject that names no operation, or
//! a known one with missing or extra name tokens, gets `400 bad request` (nats-server
//! stays silent and the client times out).
//!
//! No single request can take the API down or hold up the others:
//! * requests run concurrently (up to [`IN_FLIGHT`] per queue), so a slow request on
//!   one stream delays neither requests on other streams nor reads; changes that must
//!   not interleave take the locks in `locks` (stream create/update/delete one at a
//!   time; consumer changes one at a time per stream);
//! * a handler that panics is answered with `500` (`STREAM_GENERAL`), logged, and the
//!   dispatcher carries on.
//!
//! The dispatcher publishes a handler's [`Reply`] (`None` = send nothing) and counts
//! `api.total` / `api.errors`.

mod account;
mod consumer;
mod disabled;
mod domain;
pub(crate) mod forward;
mod locks;
mod meta;
mod msg;
mod stream;
mod unsupported;

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use rill_protocol::headers::find;
use rill_protocol::jsapi::{
    ApiBody, ApiError, ApiSubject, ApiSubjectError, ErrorCode, Response, parse_request,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tracing::{debug, error};

pub(crate) use self::locks::ApiLocks;
use super::{JetStream, validate};
use crate::fault;
use crate::router::{ByteString, Delivery, Msg, Subscriber, Subscription};

/// Queue depth of API requests waiting for a dispatcher (per queue).
const QUEUE: usize = 4096;
/// Requests one dispatcher runs at once.
pub const IN_FLIGHT: usize = 64;

/// One API request, copied out of the router.
#[derive(Debug)]
pub struct Request {
    /// Full subject (`$JS.API.STREAM.INFO.S`).
    pub subject: ByteString,
    /// Reply subject (empty for a request forwarded from another server).
    pub reply: ByteString,
    /// Header block, if any.
    pub headers: Option<Bytes>,
    /// Body.
    pub payload: Bytes,
}

impl Request {
    /// Parses the body like nats-server (empty or `null` = `{}`).
    ///
    /// # Errors
    /// `INVALID_JSON`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_request(&self.payload).map_err(|e| ErrorCode::INVALID_JSON.err(e))
    }

    /// Parses a body that must be there: an empty one is `invalid JSON: unexpected end of
    /// JSON input`, as nats-server answers `CONSUMER.UNPIN` without one.
    ///
    /// # Errors
    /// `INVALID_JSON`.
    pub fn parse_required<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.payload.trim_ascii().is_empty() {
            return Err(ErrorCode::INVALID_JSON.err("unexpected end of JSON input"));
        }
        self.parse()
    }

    /// `Nats-Required-Api-Level`: the client needs at least this API level.
    ///
    /// # Errors
    /// `REQUIRED_API_LEVEL` when the header asks for more than [`rill_protocol::compat::API_LEVEL`].
    pub fn check_level(&self) -> Result<(), ApiError> {
        let Some(value) = self
            .headers
            .as_deref()
            .and_then(|h| find(h, "Nats-Required-Api-Level"))
        else {
            return Ok(());
        };
        match std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            Some(level) if rill_protocol::compat::serves_level(level) => Ok(()),
            _ => Err(ErrorCode::REQUIRED_API_LEVEL.error()),
        }
    }

    /// nats-server's check for requests that take no body.
    ///
    /// # Errors
    /// `NOT_EMPTY_REQUEST`.
    pub fn expect_empty(&self) -> Result<(), ApiError> {
        let body = self.payload.trim_ascii();
        if body.is_empty() || body == b"{}" || body == b"null" {
            Ok(())
        } else {
            Err(ErrorCode::NOT_EMPTY_REQUEST.error())
        }
    }
}

/// An encoded reply and whether it is an error.
#[derive(Debug)]
pub struct Reply {
    /// JSON body.
    pub body: Vec<u8>,
    /// Counts towards `api.errors`.
    pub is_error: bool,
    /// Header block, for the few replies that carry one (a sourcing consumer's
    /// `Nats-Stream-Identity`).
    pub headers: Option<Bytes>,
}

impl Reply {
    /// Encodes a handler result with its `type`.
    pub fn from<T: ApiBody + Serialize>(r: Result<T, ApiError>) -> Reply {
        let is_error = r.is_err();
        let body = Response::from(r).to_json().unwrap_or_default();
        Reply {
            body,
            is_error,
            headers: None,
        }
    }

    /// An error reply to `api`, typed as that operation's reply (a plain
    /// `error_response` for `None`, a subject that is no operation).
    pub fn error(api: Option<&ApiSubject<'_>>, e: &ApiError) -> Reply {
        disabled::error_reply(api, e)
    }

    /// `400 bad request` for an API subject that names no operation.
    pub fn malformed() -> Reply {
        Reply::error(None, &ErrorCode::BAD_REQUEST.error())
    }
}

/// The two queues: reads never wait behind changes.
#[derive(Debug)]
struct ApiSubscriber {
    writes: mpsc::Sender<Request>,
    reads: mpsc::Sender<Request>,
}

/// True for requests that change streams or consumers (they queue apart from reads).
fn is_write(subject: &str) -> bool {
    use ApiSubject as A;
    let api = ApiSubject::parse(subject);
    matches!(
        api,
        Ok(A::StreamCreate(_)
            | A::StreamUpdate(_)
            | A::StreamDelete(_)
            | A::StreamPurge(_)
            | A::StreamMsgDelete(_)
            | A::ConsumerCreate { .. }
            | A::ConsumerDurableCreate { .. }
            | A::ConsumerDelete { .. }
            | A::ConsumerPause { .. }
            | A::ConsumerReset { .. })
    )
}

impl Subscriber for ApiSubscriber {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let Some(reply) = msg.reply_text().filter(|r| !r.is_empty()) else {
            return Delivery::Queued;
        };
        let req = Request {
            subject: msg.subject_text(),
            reply,
            headers: msg.headers_bytes(),
            payload: msg.payload_bytes(),
        };
        let queue = if is_write(&req.subject) {
            &self.writes
        } else {
            &self.reads
        };
        match queue.try_send(req) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// Subscribes the API subjects and starts the dispatchers. Returns the subscriptions.
pub(super) fn start(js: &Arc<JetStream>) -> Vec<Arc<Subscription>> {
    let (writes, writes_rx) = mpsc::channel(QUEUE);
    let (reads, reads_rx) = mpsc::channel(QUEUE);
    let owner: Arc<dyn Subscriber> = Arc::new(ApiSubscriber { writes, reads });
    let mut subs: Vec<_> = [
        "$JS.API.INFO",
        "$JS.API.STREAM.>",
        "$JS.API.CONSUMER.>",
        "$JS.API.META.LEADER.STEPDOWN",
    ]
    .into_iter()
    .map(|s| {
        // Local: each server's JetStream answers its own clients until JetStream is
        // clustered (issue 20), instead of every server in a cluster answering.
        Subscription::new_local(
            Bytes::from_static(b"jsapi"),
            Bytes::from_static(s.as_bytes()),
            None,
            Arc::clone(&owner),
        )
    })
    .collect();
    for s in &subs {
        js.account.router.subscribe(s);
    }
    subs.extend(domain::subscribe(&js.account, js.domain()));
    // Each dispatcher ends when the subscriptions (and so the senders) are dropped.
    tokio::spawn(serve(Arc::downgrade(js), writes_rx));
    tokio::spawn(serve(Arc::downgrade(js), reads_rx));
    subs
}

/// One dispatcher: runs up to [`IN_FLIGHT`] requests as tasks it owns; answers a task
/// that panicked with `500`. Aborts what is still running when the queue closes.
async fn serve(js: Weak<JetStream>, mut rx: mpsc::Receiver<Request>) {
    let mut tasks = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, (ByteString, ByteString)> = HashMap::new();
    loop {
        tokio::select! {
            req = rx.recv(), if tasks.len() < IN_FLIGHT => {
                let (Some(req), Some(js)) = (req, js.upgrade()) else { break };
                let ids = (req.subject.clone(), req.reply.clone());
                let id = tasks.spawn(async move { dispatch(&js, &req).await }).id();
                running.insert(id, ids);
            }
            Some(done) = tasks.join_next_with_id() => match done {
                Ok((id, ())) => {
                    running.remove(&id);
                }
                Err(e) => {
                    if let (Some(ids), Some(js)) = (running.remove(&e.id()), js.upgrade()) {
                        failed(&js, ids, &e);
                    }
                }
            },
        }
    }
}

/// Answers a request whose handler panicked (or was cancelled) with `500`.
fn failed(js: &JetStream, (subject, reply): (ByteString, ByteString), e: &JoinError) {
    error!(%subject, error = %e, "JetStream API request failed");
    let err = ErrorCode::STREAM_GENERAL.err("internal error handling the request");
    send(
        js,
        &reply,
        Reply::error(ApiSubject::parse(&subject).ok().as_ref(), &err),
    );
}

#[tracing::instrument(skip_all, fields(subject = %req.subject))]
async fn dispatch(js: &Arc<JetStream>, req: &Request) {
    let subject = &req.subject[..];
    fault::panic_if_armed("api.panic", subject);
    let api = match ApiSubject::parse(subject) {
        Ok(api) => api,
        Err(ApiSubjectError::NotApi) => return,
        Err(e) => {
            debug!("malformed: {e}");
            if js.is_enabled() {
                send(js, &req.reply, Reply::malformed());
            }
            return;
        }
    };
    let reply = if matches!(api, ApiSubject::MetaLeaderStepdown) {
        // The system account's, enabled or not (see `meta`).
        meta::stepdown(js, req).await
    } else if !js.is_enabled() {
        // An account may import another account's JetStream API instead.
        if js.account.imports_service(subject) {
            return;
        }
        disabled::reply(&api)
    } else {
        match forward::to_leader(js, &api, req).await {
            forward::Forwarding::Here => handle(js, api, req).await,
            forward::Forwarding::Answered(reply) => Some(reply),
            forward::Forwarding::Silent => return,
        }
    };
    let Some(reply) = reply else {
        debug!("no reply");
        return;
    };
    send(js, &req.reply, reply);
}

/// Publishes a reply and counts it.
fn send(js: &JetStream, to: &ByteString, reply: Reply) {
    js.count(reply.is_error);
    let payload = Bytes::from(reply.body);
    let msg = Msg::new(to, None, reply.headers.as_ref(), &payload);
    js.account.router.publish(0, true, &msg);
}

/// Runs the handler of `api`; `None` sends no reply.
async fn handle(js: &Arc<JetStream>, api: ApiSubject<'_>, req: &Request) -> Option<Reply> {
    use ApiSubject as A;
    Some(match api {
        A::Info => account::info(js, req).await,
        A::StreamCreate(name) => Reply::from(stream::create(js, name, req).await),
        A::StreamUpdate(name) => Reply::from(stream::update(js, name, req).await),
        A::StreamInfo(name) => Reply::from(stream::info(js, name, req).await),
        A::StreamDelete(name) => Reply::from(stream::delete(js, name, req).await),
        A::StreamPurge(name) => Reply::from(stream::purge(js, name, req).await),
        A::StreamNames => Reply::from(stream::names(js, req).await),
        A::StreamList => Reply::from(stream::list(js, req).await),
        A::StreamMsgGet(name) => Reply::from(msg::get(js, name, req).await),
        A::StreamMsgDelete(name) => Reply::from(msg::delete(js, name, req).await),
        A::ConsumerCreate { .. } | A::ConsumerDurableCreate { .. } => {
            let target = validate::CreateTarget::from_api(&api)?;
            consumer::create_reply(js, target, req).await
        }
        A::ConsumerNames(stream) => Reply::from(consumer::names(js, stream, req).await),
        A::ConsumerList(stream) => Reply::from(consumer::list(js, stream, req).await),
        A::ConsumerInfo { stream, consumer } => {
            Reply::from(consumer::info(js, (stream, consumer)).await)
        }
        A::ConsumerDelete { stream, consumer } => {
            Reply::from(consumer::delete(js, (stream, consumer)).await)
        }
        A::ConsumerPause { stream, consumer } => {
            Reply::from(consumer::pause(js, (stream, consumer), req).await)
        }
        A::ConsumerReset { stream, consumer } => {
            Reply::from(consumer::reset(js, (stream, consumer), req).await)
        }
        A::ConsumerNext { stream, consumer } => {
            // An existing consumer takes its pulls on its own subscription.
            consumer::next_missing(js, (stream, consumer), req);
            return None;
        }
        // Served by each stream's own subscription (`allow_direct`), never sent here.
        A::DirectGet { .. } => return None,
        // Known requests rill does not serve get nats-server's refusal at once.
        A::StreamLeaderStepdown(name) => return stream::leader_stepdown(js, name, req, &api).await,
        A::ConsumerLeaderStepdown { stream, consumer } => {
            return consumer::leader_stepdown(js, (stream, consumer), req, &api).await;
        }
        A::StreamPeerRemove(name) => return stream::remove_peer(js, name, req, &api).await,
        A::StreamSnapshot(_) | A::StreamRestore(_) => return unsupported::reply(&api),
        // Not implemented by rill: no reply.
        A::ConsumerUnpin { stream, consumer } => {
            Reply::from(consumer::unpin(js, (stream, consumer), req).await)
        }
        A::AccountPurge(_) | A::ServerRemove => return None,
        // Answered before the account's own API (see `dispatch`).
        A::MetaLeaderStepdown => return None,
    })
}
