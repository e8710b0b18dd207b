//! The message browser's JSON: `/console/api/msgs?stream=…[&account=…][&seq=N]
//! [&subject=filter][&limit=N]`, one bounded page of a stream's stored messages.
//!
//! Read-only and bounded: at most [`MAX_LIMIT`] messages and about [`MAX_BYTES`] of
//! headers and payload are read per request, in one batch through the stream's handle;
//! each payload is cut to [`PAYLOAD_SHOWN`] bytes (text when it is printable UTF-8, hex
//! otherwise) and each header value to [`HEADER_SHOWN`]. The page escapes what it shows;
//! this JSON carries the data as it is.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use rill_protocol::headers::HeaderMap;
use serde_json::{Value, json};

use crate::monitoring::format::rfc3339;
use crate::shared::{BrowsePage, BrowseRequest, BrowsedMsg};

/// Messages per page unless `limit` says otherwise.
pub(super) const DEFAULT_LIMIT: usize = 25;
/// The most messages one request reads.
pub(super) const MAX_LIMIT: usize = 100;
/// About the most header and payload bytes one request reads (at least one message).
pub(super) const MAX_BYTES: usize = 256 * 1024;
/// Payload bytes shown per message.
pub(super) const PAYLOAD_SHOWN: usize = 2048;
/// Bytes shown per header value.
pub(super) const HEADER_SHOWN: usize = 512;

/// The request from the query string (raw, percent-encoded values); `Err` without a stream.
pub(super) fn request(q: &HashMap<String, String>) -> Result<BrowseRequest, String> {
    let get = |k: &str| q.get(k).map(|v| percent_decode(v)).unwrap_or_default();
    let stream = get("stream");
    if stream.is_empty() {
        return Err("stream is required".into());
    }
    let number = |k: &str| get(k).trim().parse::<u64>().ok();
    let limit = number("limit").map_or(DEFAULT_LIMIT, |n| {
        usize::try_from(n).unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT)
    });
    Ok(BrowseRequest {
        account: get("account"),
        stream,
        start: number("seq").unwrap_or(0),
        subject: get("subject").trim().to_owned(),
        limit,
        max_bytes: MAX_BYTES,
    })
}

/// `application/x-www-form-urlencoded` decoding: `%XX` and `+` for a space; invalid
/// escapes are kept as written and invalid UTF-8 is replaced.
pub(super) fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The page as JSON: the stream's bounds and each message, cut to size.
pub(super) fn page_json(req: &BrowseRequest, page: &BrowsePage) -> Value {
    json!({
        "account": req.account,
        "stream": req.stream,
        "subject": req.subject,
        "first_seq": page.first_seq,
        "last_seq": page.last_seq,
        "messages": page.messages,
        "msgs": page.msgs.iter().map(message).collect::<Vec<_>>(),
    })
}

fn message(m: &BrowsedMsg) -> Value {
    let time = SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(m.ts).unwrap_or(0));
    let mut doc = json!({
        "seq": m.seq,
        "time": rfc3339(time),
        "subject": m.subject,
        "size": m.payload.len(),
        "payload": shown(&m.payload, PAYLOAD_SHOWN),
    });
    if let Some(block) = &m.headers {
        doc["headers"] = headers(block);
    }
    doc
}

/// Header lines as `[name, value]` pairs (values cut to size), and the status line's
/// code and description when there is one; an unreadable block is shown as bytes.
fn headers(block: &[u8]) -> Value {
    let Ok(map) = HeaderMap::parse(block) else {
        return json!({ "raw": shown(block, HEADER_SHOWN) });
    };
    let pairs: Vec<Value> = map
        .iter()
        .map(|(k, v)| json!([cut_text(k, HEADER_SHOWN), cut_text(v, HEADER_SHOWN)]))
        .collect();
    let mut doc = json!({ "pairs": pairs });
    if let Some(status) = map.status {
        doc["status"] = json!(status);
    }
    doc
}

fn cut_text(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// `{encoding: "text"|"hex", data, truncated}`: printable UTF-8 as text (cut at a
/// character boundary), anything else as hex bytes.
fn shown(data: &[u8], max: usize) -> Value {
    let head = &data[..data.len().min(max)];
    let truncated = data.len() > head.len();
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        // A character cut in two at the end is still text.
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    let printable = |t: &str| {
        t.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
    };
    match text.filter(|t| printable(t)) {
        Some(t) => json!({ "encoding": "text", "data": t, "truncated": truncated }),
        None => {
            let mut hex = String::with_capacity(head.len() * 3);
            for (i, b) in head.iter().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                let _ = write!(hex, "{sep}{b:02x}");
            }
            json!({ "encoding": "hex", "data": hex, "truncated": truncated })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_query_with_bounds() {
        let req = request(&q(&[
            ("stream", "%3Cscript"),
            ("seq", "7"),
            ("subject", "a.%3E"),
            ("limit", "5000"),
        ]))
        .expect("request");
        assert_eq!(req.stream, "<script");
        assert_eq!(req.subject, "a.>");
        assert_eq!(
            (req.start, req.limit, req.max_bytes),
            (7, MAX_LIMIT, MAX_BYTES)
        );
        let req = request(&q(&[("stream", "S"), ("limit", "0"), ("seq", "x")])).expect("request");
        assert_eq!((req.start, req.limit), (0, 1));
        assert_eq!(
            request(&q(&[("seq", "1")])),
            Err("stream is required".into())
        );
        assert_eq!(
            request(&q(&[("stream", "S")])).map(|r| r.limit),
            Ok(DEFAULT_LIMIT)
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn payloads_as_text_or_hex_cut_to_size() {
        assert_eq!(
            shown(b"<script>x</script>", 100),
            json!({ "encoding": "text", "data": "<script>x</script>", "truncated": false })
        );
        assert_eq!(
            shown(&[0, 1, 0xfe, 0xff], 100),
            json!({ "encoding": "hex", "data": "00 01 fe ff", "truncated": false })
        );
        assert_eq!(shown(&[7; 10], 3)["data"], "07 07 07");
        assert_eq!(
            shown("ab✓".as_bytes(), 3),
            json!({ "encoding": "text", "data": "ab", "truncated": true })
        );
        assert_eq!(
            shown("x".repeat(5000).as_bytes(), PAYLOAD_SHOWN)["data"]
                .as_str()
                .map(str::len),
            Some(PAYLOAD_SHOWN)
        );
    }

    #[test]
    fn messages_with_headers() {
        let msg = BrowsedMsg {
            seq: 3,
            ts: 1_000_000_000,
            subject: "a.b".into(),
            headers: Some(Bytes::from_static(b"NATS/1.0\r\nX-Evil: <b>x</b>\r\n\r\n")),
            payload: Bytes::from_static(b"hi"),
        };
        let doc = message(&msg);
        assert_eq!(doc["headers"]["pairs"], json!([["X-Evil", "<b>x</b>"]]));
        assert_eq!(doc["time"], "1970-01-01T00:00:01Z");
        assert_eq!(doc["size"], 2);
        let broken = BrowsedMsg {
            headers: Some(Bytes::from_static(b"junk")),
            ..msg
        };
        assert_eq!(message(&broken)["headers"]["raw"]["data"], "junk");
    }
}
