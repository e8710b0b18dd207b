//! Mirrors and sources: a stream that copies another stream (a mirror, same sequences)
//! or aggregates several (sources, new sequences), each origin consumed through the
//! `$JS.API` like any client would, so the origin may be in another account (`external`
//! API and deliver prefixes) or, later, on another server.
//!
//! Behaviour recorded from nats-server 2.15.1:
//! * for each origin the copying stream creates an ephemeral push consumer on the origin
//!   (`$JS.API.CONSUMER.CREATE.<origin>`, or the external API prefix) delivering to
//!   `$JS.M.<id>` (mirror) / `$JS.S.<id>` (source) or `<deliver prefix>.S.<id>`, with
//!   `ack_policy: none`, `max_deliver: 1`, `flow_control`, a 1 s `idle_heartbeat`, and
//!   the start (`by_start_sequence` from the next origin sequence it needs, or the
//!   configured `opt_start_seq` / `opt_start_time`) and filters of the configuration;
//! * a mirror stores each message under the origin's sequence (skipping over gaps) and
//!   time stamp; a source appends it with the header
//!   `Nats-Stream-Source: <origin> <origin seq> <filter> <transform dest> <subject>`,
//!   through which the next origin sequence is found again after a restart;
//! * `STREAM.INFO` shows `mirror` (`name`, `lag`, `active`) and `sources` (the same
//!   plus `seq`, the last origin sequence copied, and the filter/transforms);
//! * when the origin goes quiet for three heartbeats or the consumer create fails, the
//!   copy retries with a fresh consumer from the next sequence it needs: no gap, no
//!   duplicate.
//!
//! The tasks ([`Origins`]) live with the stream's router subscriptions and end with
//! them (update, delete, shutdown). Everything that touches the store runs on the
//! stream actor (`store`).

mod link;
pub(super) mod status;
mod store;

use std::sync::Arc;

use rill_protocol::jsapi::{StreamConfig, StreamSource};
use tokio::task::JoinHandle;

use self::status::iname;
use super::queue::QueueTx;
use crate::account::Account;

/// The header a sourced message carries.
pub(crate) const SOURCE_HEADER: &str = "Nats-Stream-Source";

/// The header of a sourcing consumer's create reply that carries the origin's identity.
pub(crate) const STREAM_IDENTITY: &str = "Nats-Stream-Identity";

/// A stream's identity, as an origin gives it to its copies (`Nats-Stream-Identity` on
/// a sourcing consumer's create reply, the sixth field of `Nats-Stream-Source`): eight
/// characters that stay while the stream lives, across restarts, and change when it is
/// deleted and created again under the same name (from its account, name and creation
/// time).
pub(crate) fn stream_identity(account: &str, name: &str, created_ns: i128) -> String {
    status::short_hash(&format!("{account} {name} {created_ns}"))
}

/// One origin of a stream: its mirror or one of its sources.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The copying stream.
    pub(crate) stream: String,
    /// True for a mirror.
    pub(crate) mirror: bool,
    pub(crate) cfg: StreamSource,
    /// `<origin> <filter> <dest>`: the key that tells this source's messages apart.
    pub(crate) iname: String,
    /// The origin's identity, as its consumer create answered (this session's).
    pub(crate) identity: Option<String>,
}

impl Origin {
    fn new(stream: &str, mirror: bool, cfg: &StreamSource) -> Self {
        Self {
            stream: stream.to_owned(),
            mirror,
            iname: iname(cfg),
            cfg: cfg.clone(),
            identity: None,
        }
    }
}

/// The running copy tasks of one stream; dropping it stops them.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    tasks: Vec<JoinHandle<()>>,
}

impl Origins {
    /// Starts one task per origin of `cfg` (none for a plain stream).
    pub(crate) fn start(account: &Arc<Account>, cfg: &StreamConfig, tx: &QueueTx) -> Self {
        let mut origins = Vec::new();
        if let Some(m) = &cfg.mirror {
            origins.push(Origin::new(&cfg.name, true, m));
        }
        for s in &cfg.sources {
            origins.push(Origin::new(&cfg.name, false, s));
        }
        if origins.is_empty() || tokio::runtime::Handle::try_current().is_err() {
            return Self::default();
        }
        let tasks = origins
            .into_iter()
            .map(|o| tokio::spawn(link::run(o, Arc::clone(account), tx.clone())))
            .collect();
        Self { tasks }
    }
}

impl Drop for Origins {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    /// Recorded from nats-server 2.15.1: an external source with API prefix
    /// `JS.origin.API` writes `Nats-Stream-Source: O:5TZTJMNT ...`.
    #[test]
    fn short_hash_is_nats_servers() {
        assert_eq!(super::status::short_hash("JS.origin.API"), "5TZTJMNT");
    }
}
