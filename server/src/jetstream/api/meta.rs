//! `$JS.API.META.LEADER.STEPDOWN`: the meta group's leader hands its leadership to
//! another server (`placement.preferred`, or the member furthest along).
//!
//! As on nats-server 2.15.1 (checked with three servers): only the system account may
//! ask (other accounts get no reply); with no leader known (an election is running)
//! the request goes unanswered; a body that does not parse is `400 / 10025`; a
//! preferred server that is not a member is `400 / 10005 preferred server "<name>"
//! not known`. A server outside a JetStream cluster does not answer.

use std::sync::Arc;

use rill_protocol::jsapi::{
    ApiError, ErrorCode, MetaLeaderStepdownRequest, MetaLeaderStepdownResponse,
};

use super::{Reply, Request};
use crate::jetstream::JetStream;
use crate::jetstream::cluster::Stepdown;

/// The reply to a stepdown request, `None` for no reply.
pub(super) async fn stepdown(js: &Arc<JetStream>, req: &Request) -> Option<Reply> {
    let meta = js.share.meta()?;
    if js.account.name != meta.system_account() {
        return None;
    }
    let body: MetaLeaderStepdownRequest = match req.parse() {
        Ok(body) => body,
        Err(e) => return Some(Reply::from(Err::<MetaLeaderStepdownResponse, _>(e))),
    };
    let preferred = body
        .placement
        .map(|p| p.preferred)
        .filter(|p| !p.is_empty());
    let result = match meta.step_down(preferred.as_deref()).await {
        Ok(_) => Ok(MetaLeaderStepdownResponse { success: true }),
        Err(Stepdown::NoLeader) => return None,
        Err(Stepdown::Unknown(name)) => {
            Err(ErrorCode::CLUSTER_NO_PEERS.err(format!("preferred server {name:?} not known")))
        }
        Err(Stepdown::Failed) => Err(unavailable()),
    };
    Some(Reply::from(result))
}

fn unavailable() -> ApiError {
    ErrorCode::CLUSTER_NOT_AVAIL.error()
}
