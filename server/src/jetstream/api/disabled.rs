//! The `$JS.API` of an account without JetStream, when the server runs JetStream for
//! other accounts.
//!
//! nats-server 2.15.1 answers each API request it knows with its reply `type` and
//! `{"code":503,"err_code":10039,"description":"JetStream not enabled for account"}`,
//! plus the zero fields its reply structs always carry (`total/offset/limit` and an empty
//! list for the paged replies, `purged` for purge, `paused` for pause). Pull requests
//! (`CONSUMER.MSG.NEXT`) and unknown operations get no reply, and direct gets
//! no-responders, as there. This answers the operations the enabled API serves, and
//! stays quiet on subjects the account imports as a service (another account's
//! JetStream API), which then answer alone, as on nats-server.
//!
//! The same table gives the error form of any API reply of an enabled account
//! ([`error_reply`]: malformed subjects, failed handlers).

use rill_protocol::jsapi::{ApiError, ApiSubject, ErrorCode};

use super::Reply;

/// Zero paging fields of a paged reply's error form.
const PAGED: &str = r#","total":0,"offset":0,"limit":0"#;
/// The error form of `STREAM.NAMES`.
const PAGED_NAMES: &str = r#","total":0,"offset":0,"limit":0,"streams":null"#;
/// The error form of `STREAM.LIST`.
const PAGED_STREAMS: &str = r#","total":0,"offset":0,"limit":0,"streams":[]"#;
/// The error form of `CONSUMER.NAMES` and `CONSUMER.LIST`.
const PAGED_CONSUMERS: &str = r#","total":0,"offset":0,"limit":0,"consumers":[]"#;

/// The "not enabled" reply to `api`, or `None` for no reply.
pub(super) fn reply(api: &ApiSubject<'_>) -> Option<Reply> {
    let (kind, extra) = kind(api)?;
    Some(encode(
        kind,
        &ErrorCode::NOT_ENABLED_FOR_ACCOUNT.error(),
        extra,
    ))
}

/// An error reply to `api` of an enabled account: typed as the operation's reply (with
/// the zero fields nats-server's error form of it carries), or as a plain
/// `error_response` for `None` (a subject that is no operation) and operations without
/// a typed error form.
pub(super) fn error_reply(api: Option<&ApiSubject<'_>>, e: &ApiError) -> Reply {
    let (kind, extra) = api.and_then(kind).unwrap_or(("error_response", ""));
    encode(kind, e, extra)
}

fn encode(kind: &str, e: &ApiError, extra: &str) -> Reply {
    let error = serde_json::to_string(e).unwrap_or_default();
    let body = format!(r#"{{"type":"io.nats.jetstream.api.v1.{kind}","error":{error}{extra}}}"#);
    Reply {
        body: body.into_bytes(),
        is_error: true,
        headers: None,
    }
}

/// The reply type of `api` and the fields its error form adds.
fn kind(api: &ApiSubject<'_>) -> Option<(&'static str, &'static str)> {
    use ApiSubject as A;
    Some(match api {
        A::Info => ("account_info_response", ""),
        A::StreamMsgGet(_) => ("stream_msg_get_response", ""),
        A::StreamMsgDelete(_) => ("stream_msg_delete_response", ""),
        A::StreamNames => ("stream_names_response", PAGED_NAMES),
        A::StreamList => ("stream_list_response", PAGED_STREAMS),
        A::StreamCreate(_) => ("stream_create_response", ""),
        A::StreamUpdate(_) => ("stream_update_response", ""),
        A::StreamInfo(_) => ("stream_info_response", PAGED),
        A::StreamDelete(_) => ("stream_delete_response", ""),
        A::StreamPurge(_) => ("stream_purge_response", r#","purged":0"#),
        A::ConsumerCreate { .. } | A::ConsumerDurableCreate { .. } => {
            ("consumer_create_response", "")
        }
        A::ConsumerNames(_) => ("consumer_names_response", PAGED_CONSUMERS),
        A::ConsumerList(_) => ("consumer_list_response", PAGED_CONSUMERS),
        A::ConsumerInfo { .. } => ("consumer_info_response", ""),
        A::ConsumerDelete { .. } => ("consumer_delete_response", ""),
        A::ConsumerPause { .. } => (
            "consumer_pause_response",
            r#","paused":false,"pause_until":"0001-01-01T00:00:00Z""#,
        ),
        A::ConsumerNext { .. }
        | A::DirectGet { .. }
        | A::ConsumerReset { .. }
        | A::ConsumerUnpin { .. }
        | A::ConsumerLeaderStepdown { .. }
        | A::StreamSnapshot(_)
        | A::StreamRestore(_)
        | A::StreamLeaderStepdown(_)
        | A::StreamPeerRemove(_)
        | A::AccountPurge(_)
        | A::ServerRemove
        | A::MetaLeaderStepdown => return None,
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
    fn replies_carry_the_type_and_the_zero_fields_of_nats_server() {
        let err = r#""error":{"code":503,"err_code":10039,"description":"JetStream not enabled for account"}"#;
        assert_eq!(
            text("INFO").as_deref(),
            Some(
                format!(r#"{{"type":"io.nats.jetstream.api.v1.account_info_response",{err}}}"#)
                    .as_str()
            )
        );
        assert_eq!(
            text("STREAM.NAMES").as_deref(),
            Some(
                format!(r#"{{"type":"io.nats.jetstream.api.v1.stream_names_response",{err},"total":0,"offset":0,"limit":0,"streams":null}}"#)
                    .as_str()
            )
        );
        assert!(text("STREAM.PURGE.S").is_some_and(|t| t.ends_with(r#""purged":0}"#)));
        assert!(
            text("CONSUMER.DURABLE.CREATE.S.C")
                .is_some_and(|t| t.contains("consumer_create_response"))
        );
        assert!(text("STREAM.MSG.GET.S").is_some_and(|t| t.contains("stream_msg_get_response")));
        assert_eq!(text("CONSUMER.MSG.NEXT.S.C"), None);
        assert_eq!(text("STREAM.SNAPSHOT.S"), None);
        assert_eq!(text("FOO"), None);
    }
}
