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

use rill_protocol::jsapi::{ApiError, ApiSubject, ErrorCode};

use super::Reply;

/// The reply to `api` when it is one of the above; `None` otherwise.
pub(super) fn reply(api: &ApiSubject<'_>) -> Option<Reply> {
    let (kind, error, extra) = classify(api)?;
    let error = serde_json::to_string(&error).ok()?;
    let body = format!(r#"{{"type":"io.nats.jetstream.api.v1.{kind}","error":{error}{extra}}}"#);
    Some(Reply {
        body: body.into_bytes(),
        is_error: true,
        headers: None,
    })
}

/// The reply type, the error and the fields its error form adds.
fn classify(api: &ApiSubject<'_>) -> Option<(&'static str, ApiError, &'static str)> {
    let clustering = || ErrorCode::CLUSTER_REQUIRED.error();
    Some(match api {
        ApiSubject::StreamLeaderStepdown(_) => {
            ("stream_leader_stepdown_response", clustering(), "")
        }
        ApiSubject::StreamPeerRemove(_) => ("stream_remove_peer_response", clustering(), ""),
        ApiSubject::ConsumerLeaderStepdown { .. } => {
            ("consumer_leader_stepdown_response", clustering(), "")
        }
        ApiSubject::StreamSnapshot(_) => (
            "stream_snapshot_response",
            ErrorCode::STREAM_SNAPSHOT.err("snapshots are not supported by rill yet"),
            "",
        ),
        ApiSubject::StreamRestore(_) => (
            "stream_restore_response",
            ErrorCode::STREAM_RESTORE.err("restores are not supported by rill yet"),
            r#","deliver_subject":"""#,
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(op: &str) -> Option<String> {
        let api = ApiSubject::parse_op(op).ok()?;
        reply(&api).map(|r| String::from_utf8(r.body).expect("utf-8"))
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
