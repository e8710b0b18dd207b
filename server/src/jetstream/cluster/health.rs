//! `/healthz` of a clustered JetStream server (issue 20): whether this server is
//! current in the meta group and in each stream and consumer group it holds a member
//! of, with nats-server 2.15.1's messages (503, `{"status":"unavailable","error":…}`).
//!
//! Facts recorded by running three nats-server 2.15.1 (a server killed, 100,000
//! messages published to an R3 stream, the server restarted, `/healthz` polled every
//! 5 ms), in the order a restarted server shows them:
//! - `JetStream is still recovering meta layer`;
//! - `JetStream has not established contact with a meta leader`;
//! - `JetStream is not current with the meta leader`;
//! - `JetStream stream '$G > S' is not current: group node unhealthy`;
//! - `JetStream stream '$G > S' is not current: stream catching up`;
//! - then `{"status":"ok"}`. `?js-enabled-only` and `?js-server-only` stay 200 all along.
//!
//! rill asks the same questions of its groups ([`super::group::health`]): the meta layer
//! is recovering while an assignment naming this server has no member open here yet
//! (the replicas and consumer members a restart reopens); a group is unhealthy while
//! its member knows no leader or has not heard it for a while, and catching up while it
//! has not applied every committed entry or installs the leader's snapshot. A consumer
//! group's messages follow the stream's (`JetStream consumer '$G > S > C' is not
//! current: …`, `consumer catching up`): not observed on nats-server, whose consumer
//! groups caught up before its streams in every run.

use std::collections::BTreeSet;

use super::group::{Health, Local, health};
use super::{MetaGroup, consumer, replica};

/// What a clustered server says before its meta group runs, or while it reopens the
/// replicas and consumer members assigned to it.
pub const RECOVERING: &str = "JetStream is still recovering meta layer";

/// Whether `config` makes this server a member of a JetStream cluster's meta group
/// (a `cluster` block, JetStream and a `server_name`, see [`MetaGroup::start`]).
pub fn clustered(config: &crate::config::Config) -> bool {
    config.cluster.is_some() && config.jetstream.is_some() && config.server_name.is_some()
}

/// Why this server is not current, as nats-server's `/healthz` says it; `Ok` when it is.
///
/// # Errors
/// The first group found not current, in nats-server's order: the meta layer, then
/// the streams, then the consumers.
pub async fn check(meta: &MetaGroup) -> Result<(), String> {
    let streams = replica::locals(meta).await;
    let consumers = consumer::locals(meta).await;
    if recovering(meta, &streams, &consumers).await {
        return Err(RECOVERING.into());
    }
    match health(meta.raft(), false, meta.opened).await {
        Health::Current => {}
        Health::NoLeader => {
            return Err("JetStream has not established contact with a meta leader".into());
        }
        Health::Behind => return Err("JetStream is not current with the meta leader".into()),
    }
    for (locals, what) in [(streams, "stream"), (consumers, "consumer")] {
        for local in locals {
            let why = match health(&local.raft, local.installing, local.opened).await {
                Health::Current => continue,
                Health::NoLeader => "group node unhealthy".to_string(),
                Health::Behind => format!("{what} catching up"),
            };
            return Err(format!("JetStream {} is not current: {why}", local.name));
        }
    }
    Ok(())
}

/// Whether an applied assignment names this server but its member is not open here
/// yet.
async fn recovering(meta: &MetaGroup, streams: &[Local], consumers: &[Local]) -> bool {
    let me = meta.me().to_string();
    let open =
        |locals: &[Local]| -> BTreeSet<String> { locals.iter().map(|l| l.key.clone()).collect() };
    let (open_streams, open_consumers) = (open(streams), open(consumers));
    meta.sm
        .with(|m| {
            let stream_missing = m
                .streams
                .iter()
                .any(|(k, a)| a.peers.contains(&me) && !open_streams.contains(k));
            let consumer_missing = m
                .consumers
                .iter()
                .any(|(k, a)| a.peers.contains(&me) && !open_consumers.contains(k));
            stream_missing || consumer_missing
        })
        .await
}
