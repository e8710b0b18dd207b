//! Status messages a consumer sends (header-only, `NATS/1.0 <code> <text>`), with
//! nats-server 2.15.1's exact texts and headers (captured over raw TCP).
//!
//! Owns the wording only; who gets which status is decided by `pull` and `push`.

use bytes::Bytes;
use rill_protocol::HeaderMap;

/// `100 Idle Heartbeat` with the last delivered pair (and the flow-control
/// subject when delivery is stalled on it).
pub(crate) fn idle_heartbeat(last_dseq: u64, last_sseq: u64, stalled: Option<&str>) -> Bytes {
    let mut h = HeaderMap::with_status(100, Some("Idle Heartbeat"));
    h.append("Nats-Last-Consumer", last_dseq.to_string());
    h.append("Nats-Last-Stream", last_sseq.to_string());
    if let Some(fc) = stalled {
        h.append("Nats-Consumer-Stalled", fc);
    }
    h.to_bytes()
}

/// `100 FlowControl Request` (sent with the flow-control reply subject).
pub(crate) fn flow_control() -> Bytes {
    HeaderMap::with_status(100, Some("FlowControl Request")).to_bytes()
}

/// `404 No Messages` (a `no_wait` pull found nothing).
pub(crate) fn no_messages() -> Bytes {
    HeaderMap::with_status(404, Some("No Messages")).to_bytes()
}

/// `408 Request Timeout` with what the request still wanted.
pub(crate) fn request_timeout(batch_left: i64, bytes_left: i64) -> Bytes {
    with_pending(408, "Request Timeout", batch_left, bytes_left)
}

/// `409 Message Size Exceeds MaxBytes` with what the request still wanted.
pub(crate) fn size_exceeds_max_bytes(batch_left: i64, bytes_left: i64) -> Bytes {
    with_pending(409, "Message Size Exceeds MaxBytes", batch_left, bytes_left)
}

/// `409 Server Shutdown` with what the request still wanted: nats-server sends it to
/// waiting pulls when it stops, and clients then pull again once reconnected.
pub(crate) fn server_shutdown(batch_left: i64, bytes_left: i64) -> Bytes {
    with_pending(409, "Server Shutdown", batch_left, bytes_left)
}

fn with_pending(code: u16, text: &str, batch_left: i64, bytes_left: i64) -> Bytes {
    let mut h = HeaderMap::with_status(code, Some(text));
    h.append("Nats-Pending-Messages", batch_left.to_string());
    h.append("Nats-Pending-Bytes", bytes_left.to_string());
    h.to_bytes()
}

/// `423 Nats-Pin-Id mismatch`: a pull with another pin id than the group's pinned client.
pub(crate) fn pin_id_mismatch() -> Bytes {
    HeaderMap::with_status(423, Some("Nats-Pin-Id mismatch")).to_bytes()
}

/// `423 Nats-Wrong-Pin-Id` with what the request still wanted: a pull carrying a pin id
/// that is no longer pinned (unpinned, timed out).
pub(crate) fn wrong_pin_id(batch_left: i64, bytes_left: i64) -> Bytes {
    with_pending(423, "Nats-Wrong-Pin-Id", batch_left, bytes_left)
}

/// A `409` with a bare description (`Consumer Deleted`, `Exceeded MaxWaiting`, ...).
pub(crate) fn conflict(text: &str) -> Bytes {
    HeaderMap::with_status(409, Some(text)).to_bytes()
}

/// `400 Bad Request - <detail>` (a pull request nats-server refuses: malformed JSON, a
/// heartbeat too large for its expiry, priority fields the consumer has no use for).
pub(crate) fn bad_request(detail: &str) -> Bytes {
    HeaderMap::with_status(400, Some(&format!("Bad Request - {detail}"))).to_bytes()
}

/// `503` no responders, as nats-server answers a pull to a missing consumer.
pub fn no_responders(subject: &str) -> Bytes {
    let mut h = HeaderMap::with_status(503, None);
    h.append("Nats-Subject", subject);
    h.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_nats_server() {
        assert_eq!(&no_messages()[..], b"NATS/1.0 404 No Messages\r\n\r\n");
        assert_eq!(
            &request_timeout(5, 0)[..],
            &b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 0\r\n\r\n"[..]
        );
        assert_eq!(
            &idle_heartbeat(0, 3, None)[..],
            &b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 3\r\n\r\n"
                [..]
        );
        assert_eq!(
            &conflict("Exceeded MaxWaiting")[..],
            b"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n"
        );
    }
}
