//! `$JS.API` requests about a replicated stream are answered by the stream's leader,
//! wherever they arrive, as in a nats-server cluster (where every server receives
//! them and only the leader answers).
//!
//! The server that took the request looks the stream up ([`MetaGroup::route`]):
//! - not replicated, or this server's replica leads: it answers itself;
//! - another member leads: the request travels to it over the route transport
//!   (`$NRG.<leader>.<group>.API`, [`Forwarded`]), the leader answers as if the
//!   request had arrived there, and the answer comes back to the client's reply
//!   subject from the server it is connected to;
//! - this server holds no replica: the request goes to the group's members in turn,
//!   and only the leader answers (the others send an empty answer at once);
//! - no leader is known (an election runs, or the leader is handing over after a
//!   stepdown): no answer, as nats-server gives none then;
//! - this server has no assignment for the stream: the meta leader answers (it has
//!   applied every committed create, which this server may not have yet), or this
//!   server when it leads the meta group, knows no leader, or the leader is silent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::MetaGroup;
use super::replica::{self, Standing};
use crate::raft::Command;

/// How long a forwarded request may take at the leader.
const FORWARD_WAIT: Duration = Duration::from_secs(10);

/// A `$JS.API` request on its way to the stream's leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forwarded {
    /// The account the request was made in.
    pub account: String,
    /// Its subject.
    pub subject: Command,
    /// Its header block.
    pub headers: Option<Command>,
    /// Its body.
    pub payload: Command,
}

/// The leader's answer to a [`Forwarded`] request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// The reply's JSON.
    pub body: Command,
    /// Whether it is an error (for the API counters).
    pub is_error: bool,
    /// The reply's header block, when it has one (a sourcing consumer create's
    /// `Nats-Stream-Identity`); absent in answers from servers without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Command>,
}

/// Answers forwarded requests on the leader's server (set by JetStream at start).
pub type ApiServer = Arc<dyn Fn(Forwarded) -> BoxFuture<'static, Option<Answer>> + Send + Sync>;

/// Who answers a request about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This server.
    Here,
    /// The leader among these servers (the known leader alone, or every member) of
    /// this group.
    There {
        /// The stream's group.
        group: String,
        /// The servers to ask, in order.
        to: Vec<String>,
    },
    /// Nobody now: send no answer.
    Silent,
}

impl MetaGroup {
    /// Who answers requests about `stream` of `account` (see the module doc).
    pub async fn route(&self, account: &str, stream: &str) -> Route {
        let Some(a) = self.assignment(account, stream).await else {
            return self.route_unassigned();
        };
        match replica::standing(self, &a.key()).await {
            Standing::Leader => Route::Here,
            Standing::Stepping | Standing::Follower(None) => Route::Silent,
            Standing::Follower(Some(leader)) => Route::There {
                group: a.group,
                to: vec![leader],
            },
            Standing::Absent if a.peers.iter().any(|p| p == self.me()) => Route::Here,
            Standing::Absent => Route::There {
                group: a.group,
                to: a.peers,
            },
        }
    }

    /// Who answers about a stream this server holds no assignment for. That need not be
    /// an unknown stream: a create acknowledged through another server a moment ago may
    /// not be applied here yet (a quorum of two had it, this server was the third), so a
    /// `STREAM.INFO` or consumer create that follows it at once got 10059 here. The meta
    /// leader has applied every committed create: it answers (forwarded in the meta
    /// group, [`MetaGroup::is_meta_group`]); this server answers when it leads the meta
    /// group itself or knows no leader.
    fn route_unassigned(&self) -> Route {
        match super::group::leader_name(&self.raft) {
            Some(leader) if leader != self.me() => Route::There {
                group: super::GROUP.to_string(),
                to: vec![leader],
            },
            _ => Route::Here,
        }
    }

    /// Whether `group` names the meta group (a request forwarded for a stream the
    /// server that took it had no assignment for; see [`MetaGroup::route`]).
    pub fn is_meta_group(group: &str) -> bool {
        group == super::GROUP
    }

    /// Sends `req` to the leader among `to`; its answer, `None` when none answered.
    pub async fn forward(&self, group: &str, to: &[String], req: &Forwarded) -> Option<Answer> {
        let body = Bytes::from(serde_json::to_vec(req).ok()?);
        for server in to {
            let call = self
                .transport
                .call_api(server, group, body.clone(), FORWARD_WAIT);
            if let Ok(raw) = call.await
                && let Ok(answer) = serde_json::from_slice(&raw)
            {
                return Some(answer);
            }
        }
        None
    }

    /// Serves forwarded requests with `server` (JetStream sets it once at start).
    pub fn serve_api(&self, server: ApiServer) {
        let _ = self.api.set(server);
    }
}

/// The transport's hook: a forwarded request for `group` answered here when this
/// server's replica leads it (or its member of a replicated consumer's group, which
/// runs the consumer); an empty answer otherwise.
pub(super) async fn serve(meta: Arc<MetaGroup>, group: String, body: Bytes) -> Bytes {
    let Some(server) = meta.api.get().cloned() else {
        return Bytes::new();
    };
    let leads = if MetaGroup::is_meta_group(&group) {
        super::group::leader_name(&meta.raft).as_deref() == Some(meta.me())
    } else {
        replica::standing_in_group(&meta, &group).await == Standing::Leader
            || super::consumer::leads_group(&meta, &group).await
    };
    if !leads {
        return Bytes::new();
    }
    let Ok(req) = serde_json::from_slice::<Forwarded>(&body) else {
        return Bytes::new();
    };
    match server(req).await {
        Some(answer) => serde_json::to_vec(&answer).map_or_else(|_| Bytes::new(), Bytes::from),
        None => Bytes::new(),
    }
}
