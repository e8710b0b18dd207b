//! `$JS.API` requests nats-server knows and rill does not serve, answered at once with
//! the error nats-server gives where it cannot serve them either, so no client waits
//! for a reply that never comes.
//!
//! Checked against a standalone nats-server 2.15.1: `STREAM.LEADER.STEPDOWN.<s>`,
//! `STREAM.PEER.REMOVE.<s>` and `CONSUMER.LEADER.STEPDOWN.<s>.<c>` get
//! `503 / 10010 "JetStream clustering support required"` with their reply `type`.
//! Snapshots and restores, which nats-server serves and rill does not have yet, get
//! its `snapshot failed` / `restore failed` errors (500 / 10064, 10062) saying so.
//! Subjects nobody knows stay unanswered, as on nats-server.

use rill_protocol::jsapi::{ApiError, ErrorCode};

use super::Reply;

/// The reply to `$JS.API.<op>` when `op` is one of the above; `None` otherwise.
pub(super) fn reply(op: &str) -> Option<Reply> {
    let (kind, error, extra) = classify(op)?;
    let error = serde_json::to_string(&error).ok()?;
    let body = format!(r#"{{"type":"io.nats.jetstream.api.v1.{kind}","error":{error}{extra}}}"#);
    Some(Reply {
        body: body.into_bytes(),
        is_error: true,
    })
}

/// The reply type, the error and the fields its error form adds.
fn classify(op: &str) -> Option<(&'static str, ApiError, &'static str)> {
    let one_name = |rest: &str| !rest.is_empty() && !rest.contains('.');
    let two_names = |rest: &str| {
        rest.split_once('.')
            .is_some_and(|(s, c)| !s.is_empty() && one_name(c))
    };
    let clustering = || ErrorCode::CLUSTER_REQUIRED.error();
    if let Some(rest) = op.strip_prefix("STREAM.LEADER.STEPDOWN.") {
        return one_name(rest).then(|| ("stream_leader_stepdown_response", clustering(), ""));
    }
    if let Some(rest) = op.strip_prefix("STREAM.PEER.REMOVE.") {
        return one_name(rest).then(|| ("stream_remove_peer_response", clustering(), ""));
    }
    if let Some(rest) = op.strip_prefix("CONSUMER.LEADER.STEPDOWN.") {
        return two_names(rest).then(|| ("consumer_leader_stepdown_response", clustering(), ""));
    }
    if let Some(rest) = op.strip_prefix("STREAM.SNAPSHOT.") {
        let error = ErrorCode::STREAM_SNAPSHOT.err("snapshots are not supported by rill yet");
        return one_name(rest).then_some(("stream_snapshot_response", error, ""));
    }
    if let Some(rest) = op.strip_prefix("STREAM.RESTORE.") {
        let error = ErrorCode::STREAM_RESTORE.err("restores are not supported by rill yet");
        let extra = r#","deliver_subject":"""#;
        return one_name(rest).then_some(("stream_restore_response", error, extra));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(op: &str) -> Option<String> {
        reply(op).map(|r| String::from_utf8(r.body).expect("utf-8"))
    }

    #[test]
    fn clustering_requests_get_nats_servers_standalone_error() {
        assert_eq!(
            text("STREAM.LEADER.STEPDOWN.S").as_deref(),
            Some(
                r#"{"type":"io.nats.jetstream.api.v1.stream_leader_stepdown_response","error":{"code":503,"err_code":10010,"description":"JetStream clustering support required"}}"#
            )
        );
        assert!(
            text("CONSUMER.LEADER.STEPDOWN.S.C")
                .is_some_and(|t| t.contains("consumer_leader_stepdown_response"))
        );
        assert!(text("STREAM.PEER.REMOVE.S").is_some_and(|t| t.contains("10010")));
        assert!(text("STREAM.SNAPSHOT.S").is_some_and(|t| t.contains("10064")));
        assert!(text("STREAM.RESTORE.S").is_some_and(|t| t.ends_with(r#""deliver_subject":""}"#)));
        assert_eq!(text("STREAM.LEADER.STEPDOWN."), None);
        assert_eq!(text("FOO.BAR"), None);
    }
}
