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

use rill_protocol::jsapi::ErrorCode;

use super::Reply;

/// Zero paging fields of a paged reply's error form.
const PAGED: &str = r#","total":0,"offset":0,"limit":0"#;

/// The "not enabled" reply to `$JS.API.<op>`, or `None` for no reply.
pub(super) fn reply(op: &str) -> Option<Reply> {
    let (kind, extra) = kind(op)?;
    let error = serde_json::to_string(&ErrorCode::NOT_ENABLED_FOR_ACCOUNT.error()).ok()?;
    let body = format!(r#"{{"type":"io.nats.jetstream.api.v1.{kind}","error":{error}{extra}}}"#);
    Some(Reply {
        body: body.into_bytes(),
        is_error: true,
    })
}

/// The reply type of `op` and the fields its error form adds.
fn kind(op: &str) -> Option<(&'static str, String)> {
    let none = String::new;
    if op == "INFO" {
        return Some(("account_info_response", none()));
    }
    if let Some(rest) = op.strip_prefix("STREAM.MSG.") {
        return match verb(rest)? {
            "GET" => Some(("stream_msg_get_response", none())),
            "DELETE" => Some(("stream_msg_delete_response", none())),
            _ => None,
        };
    }
    if let Some(rest) = op.strip_prefix("STREAM.") {
        return stream(rest);
    }
    consumer(op.strip_prefix("CONSUMER.")?)
}

fn stream(op: &str) -> Option<(&'static str, String)> {
    let none = String::new;
    match op {
        "NAMES" => {
            return Some((
                "stream_names_response",
                format!(r#"{PAGED},"streams":null"#),
            ));
        }
        "LIST" => return Some(("stream_list_response", format!(r#"{PAGED},"streams":[]"#))),
        _ => {}
    }
    match verb(op)? {
        "CREATE" => Some(("stream_create_response", none())),
        "UPDATE" => Some(("stream_update_response", none())),
        "INFO" => Some(("stream_info_response", PAGED.to_string())),
        "DELETE" => Some(("stream_delete_response", none())),
        "PURGE" => Some(("stream_purge_response", r#","purged":0"#.to_string())),
        _ => None,
    }
}

fn consumer(op: &str) -> Option<(&'static str, String)> {
    let none = String::new;
    if op.starts_with("CREATE.") || op.starts_with("DURABLE.CREATE.") {
        return Some(("consumer_create_response", none()));
    }
    let (verb, _) = op.split_once('.')?;
    match verb {
        "NAMES" => Some((
            "consumer_names_response",
            format!(r#"{PAGED},"consumers":[]"#),
        )),
        "LIST" => Some((
            "consumer_list_response",
            format!(r#"{PAGED},"consumers":[]"#),
        )),
        "INFO" => Some(("consumer_info_response", none())),
        "DELETE" => Some(("consumer_delete_response", none())),
        "PAUSE" => Some((
            "consumer_pause_response",
            r#","paused":false,"pause_until":"0001-01-01T00:00:00Z""#.to_string(),
        )),
        _ => None,
    }
}

/// `"<VERB>.<name>"` → `VERB` (a name is required).
fn verb(op: &str) -> Option<&str> {
    let (verb, name) = op.split_once('.')?;
    (!name.is_empty()).then_some(verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(op: &str) -> Option<String> {
        reply(op).map(|r| String::from_utf8(r.body).expect("utf-8"))
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
