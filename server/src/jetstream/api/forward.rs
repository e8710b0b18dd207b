//! Requests about a replicated stream go to its leader (`cluster::forward` has the
//! rules): [`to_leader`] on the server that took the request, [`answer`] on the
//! leader's server, which runs the request as if it had arrived there.
//!
//! Forwarded: `STREAM.INFO`, `STREAM.MSG.GET`, `STREAM.LEADER.STEPDOWN`;
//! `STREAM.PURGE` and `STREAM.MSG.DELETE`, which the leader proposes through the
//! stream's group so every replica applies them in log order; and the consumer
//! requests (create, info, names, list, delete, pause, reset, unpin, leader stepdown:
//! a consumer lives on its stream leader's server), except that requests about a
//! replicated consumer (`cluster::consumer`) other than its create go to the
//! consumer's own leader. Creates, updates and deletes of streams go through
//! the meta group instead. A pull request (`CONSUMER.MSG.NEXT`) reaches the consumer
//! on its own subscription, which routes carry; the other servers stay silent about it.

use std::sync::Arc;

use std::time::Duration;

use rill_protocol::jsapi::ApiSubject;

use super::{Reply, Request, handle};
use crate::jetstream::JetStream;
use crate::jetstream::cluster::forward::{Answer, Forwarded, Route};
use crate::jetstream::cluster::{MetaGroup, consumer};
use crate::raft::Command;
use crate::router::ByteString;

/// How long a request about a new stream of one replica waits for its group's leader.
const FIRST_LEADER: Duration = Duration::from_secs(2);

/// What the server that took a request does with it.
pub(super) enum Forwarding {
    /// Answer it here.
    Here,
    /// The leader's answer.
    Answered(Reply),
    /// Send no answer.
    Silent,
}

/// The stream a request about which the leader answers.
fn leader_stream<'a>(api: &ApiSubject<'a>) -> Option<&'a str> {
    use ApiSubject as A;
    match *api {
        A::StreamInfo(s)
        | A::StreamMsgGet(s)
        | A::StreamLeaderStepdown(s)
        | A::StreamPurge(s)
        | A::StreamMsgDelete(s) => Some(s),
        A::ConsumerCreate { stream, .. }
        | A::ConsumerDurableCreate { stream, .. }
        | A::ConsumerNames(stream)
        | A::ConsumerList(stream)
        | A::ConsumerInfo { stream, .. }
        | A::ConsumerDelete { stream, .. }
        | A::ConsumerPause { stream, .. }
        | A::ConsumerReset { stream, .. }
        | A::ConsumerUnpin { stream, .. }
        | A::ConsumerLeaderStepdown { stream, .. }
        | A::ConsumerNext { stream, .. } => Some(stream),
        _ => None,
    }
}

/// The consumer a request is about, which a replicated consumer's leader answers.
fn leader_consumer<'a>(api: &ApiSubject<'a>) -> Option<(&'a str, &'a str)> {
    use ApiSubject as A;
    match *api {
        A::ConsumerInfo { stream, consumer }
        | A::ConsumerDelete { stream, consumer }
        | A::ConsumerPause { stream, consumer }
        | A::ConsumerReset { stream, consumer }
        | A::ConsumerUnpin { stream, consumer }
        | A::ConsumerLeaderStepdown { stream, consumer }
        | A::ConsumerNext { stream, consumer } => Some((stream, consumer)),
        _ => None,
    }
}

/// Sends `req` to the stream's leader when another server leads it.
pub(super) async fn to_leader(js: &JetStream, api: &ApiSubject<'_>, req: &Request) -> Forwarding {
    let (Some(meta), Some(stream)) = (js.share.meta(), leader_stream(api)) else {
        return Forwarding::Here;
    };
    let replicated = match leader_consumer(api) {
        Some((s, c)) => consumer::assignment(meta, js.account_name(), s, c).await,
        None => None,
    };
    let route = match &replicated {
        Some(a) => meta.route_consumer(a).await,
        None => route(meta, js.account_name(), stream).await,
    };
    let (group, to) = match route {
        Route::Here => return Forwarding::Here,
        Route::Silent => return Forwarding::Silent,
        Route::There { group, to } => (group, to),
    };
    // A pull reaches the consumer on its own subscription.
    if matches!(api, ApiSubject::ConsumerNext { .. }) {
        return Forwarding::Silent;
    }
    let forwarded = Forwarded {
        account: js.account_name().to_string(),
        subject: Command(req.subject.clone().into_bytes()),
        headers: req.headers.clone().map(Command),
        payload: Command(req.payload.clone()),
    };
    match meta.forward(&group, &to, &forwarded).await {
        Some(answer) => Forwarding::Answered(Reply {
            body: answer.body.0.to_vec(),
            is_error: answer.is_error,
            headers: answer.headers.map(|h| h.0),
        }),
        // The meta leader did not answer about a stream unassigned here (it stepped
        // down meanwhile): answer from this server's own state.
        None if MetaGroup::is_meta_group(&group) => Forwarding::Here,
        None => Forwarding::Silent,
    }
}

/// Who answers about `stream`. A stream of one replica has no election to wait out
/// but its first: while its group forms (right after its create), the request waits
/// for it (at most [`FIRST_LEADER`]) instead of going unanswered.
async fn route(meta: &MetaGroup, account: &str, stream: &str) -> Route {
    let deadline = tokio::time::Instant::now() + FIRST_LEADER;
    loop {
        let route = meta.route(account, stream).await;
        let single = || async {
            let a = meta.assignment(account, stream).await;
            a.is_some_and(|a| a.peers.len() == 1)
        };
        if route != Route::Silent || tokio::time::Instant::now() > deadline || !single().await {
            return route;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs a request forwarded to this server (its stream's leader); `None` for no
/// answer.
pub(crate) async fn answer(js: Arc<JetStream>, req: Forwarded) -> Option<Answer> {
    let req = Request {
        subject: ByteString::try_from(req.subject.0).ok()?,
        reply: ByteString::new(),
        headers: req.headers.map(|h| h.0),
        payload: req.payload.0,
    };
    let api = ApiSubject::parse(&req.subject).ok()?;
    let reply = handle(&js, api, &req).await?;
    Some(Answer {
        body: Command(reply.body.into()),
        is_error: reply.is_error,
        headers: reply.headers.map(Command),
    })
}
