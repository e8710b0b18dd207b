//! The `$JS.API` front door: internal subscriptions feeding one bounded channel
//! and one task that parses each subject into an [`ApiSubject`] and dispatches it, in
//! one exhaustive `match` ([`handle`]), to a handler in the file of its API family
//! (`account.rs`, `stream.rs`, `msg.rs`, `consumer.rs`; `disabled.rs` answers for an
//! account without JetStream).
//!
//! Subscribed subjects: `$JS.API.INFO`, `$JS.API.STREAM.>`, `$JS.API.CONSUMER.>`, and
//! with a JetStream domain `$JS.<domain>.API.>`, mapped onto those (`domain.rs`).
//! Direct gets are subscribed per stream (only with `allow_direct`), so a direct
//! get on any other stream gets no-responders, as from nats-server. Requests
//! without a reply subject, unknown operations and subjects with missing or extra
//! name tokens get no answer, as from nats-server.
//!
//! The dispatcher publishes a handler's [`Reply`] (`None` = send nothing) and counts
//! `api.total` / `api.errors`.

mod account;
mod consumer;
mod disabled;
mod domain;
mod msg;
mod stream;
mod unsupported;

use std::sync::Arc;

use bytes::Bytes;
use rill_protocol::headers::find;
use rill_protocol::jsapi::{ApiBody, ApiError, ApiSubject, ErrorCode, Response, parse_request};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::debug;

use super::{JetStream, validate};
use crate::router::{Delivery, Msg, Subscriber, Subscription};

/// Queue depth of API requests waiting for the dispatcher.
const QUEUE: usize = 4096;

/// One API request, copied out of the router.
#[derive(Debug)]
pub struct Request {
    /// Full subject (`$JS.API.STREAM.INFO.S`).
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Bytes,
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
}

impl Reply {
    /// Encodes a handler result with its `type`.
    pub fn from<T: ApiBody + Serialize>(r: Result<T, ApiError>) -> Reply {
        let is_error = r.is_err();
        let body = Response::from(r).to_json().unwrap_or_default();
        Reply { body, is_error }
    }
}

#[derive(Debug)]
struct ApiSubscriber {
    tx: mpsc::Sender<Request>,
}

impl Subscriber for ApiSubscriber {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let Some(reply) = msg.reply_bytes().filter(|r| !r.is_empty()) else {
            return Delivery::Queued;
        };
        let req = Request {
            subject: msg.subject_bytes(),
            reply,
            headers: msg.headers_bytes(),
            payload: msg.payload_bytes(),
        };
        match self.tx.try_send(req) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// Subscribes the API subjects and starts the dispatcher. Returns the subscriptions.
pub(super) fn start(js: &Arc<JetStream>) -> Vec<Arc<Subscription>> {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let owner: Arc<dyn Subscriber> = Arc::new(ApiSubscriber { tx });
    let mut subs: Vec<_> = ["$JS.API.INFO", "$JS.API.STREAM.>", "$JS.API.CONSUMER.>"]
        .into_iter()
        .map(|s| {
            Subscription::new(
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
    let weak = Arc::downgrade(js);
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let Some(js) = weak.upgrade() else { break };
            dispatch(&js, &req).await;
        }
    });
    subs
}

#[tracing::instrument(skip_all, fields(subject = %String::from_utf8_lossy(&req.subject)))]
async fn dispatch(js: &Arc<JetStream>, req: &Request) {
    let subject = std::str::from_utf8(&req.subject).unwrap_or_default();
    let api = match ApiSubject::parse(subject) {
        Ok(api) => api,
        Err(e) => {
            debug!("no reply: {e}");
            return;
        }
    };
    let reply = if !js.is_enabled() {
        // An account may import another account's JetStream API instead.
        if js.account.imports_service(subject) {
            return;
        }
        disabled::reply(&api)
    } else {
        handle(js, api, req).await
    };
    let Some(reply) = reply else {
        debug!("no reply");
        return;
    };
    js.count(reply.is_error);
    let payload = Bytes::from(reply.body);
    js.account
        .router
        .publish(0, true, &Msg::new(&req.reply, None, None, &payload));
}

/// Runs the handler of `api`; `None` sends no reply.
async fn handle(js: &Arc<JetStream>, api: ApiSubject<'_>, req: &Request) -> Option<Reply> {
    use ApiSubject as A;
    Some(match api {
        A::Info => account::info(js, req),
        A::StreamCreate(name) => Reply::from(stream::create(js, name, req).await),
        A::StreamUpdate(name) => Reply::from(stream::update(js, name, req).await),
        A::StreamInfo(name) => Reply::from(stream::info(js, name, req).await),
        A::StreamDelete(name) => Reply::from(stream::delete(js, name, req).await),
        A::StreamPurge(name) => Reply::from(stream::purge(js, name, req).await),
        A::StreamNames => Reply::from(stream::names(js, req)),
        A::StreamList => Reply::from(stream::list(js, req).await),
        A::StreamMsgGet(name) => Reply::from(msg::get(js, name, req).await),
        A::StreamMsgDelete(name) => Reply::from(msg::delete(js, name, req).await),
        A::ConsumerCreate { .. } | A::ConsumerDurableCreate { .. } => {
            let target = validate::CreateTarget::from_api(&api)?;
            Reply::from(consumer::create(js, target, req).await)
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
        A::StreamSnapshot(_)
        | A::StreamRestore(_)
        | A::StreamLeaderStepdown(_)
        | A::StreamPeerRemove(_)
        | A::ConsumerLeaderStepdown { .. } => return unsupported::reply(&api),
        // Not implemented by rill: no reply.
        A::ConsumerUnpin { .. } | A::AccountPurge(_) | A::ServerRemove | A::MetaLeaderStepdown => {
            return None;
        }
    })
}
