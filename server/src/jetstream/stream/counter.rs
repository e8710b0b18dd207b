//! Counter streams (`allow_msg_counter`, ADR-49): a publish carries `Nats-Incr: <n>`
//! and an empty body; the stream stores `{"val":"<sum>"}` on the subject, where the sum
//! adds `n` to the value of the subject's last stored message, and the PubAck carries
//! the sum in `val`. Values are arbitrary-size integers, as nats-server's.
//!
//! As nats-server 2.15 answers: no `Nats-Incr` (or an empty one) is `10169`, a body is
//! `10170`, anything but an optionally signed decimal integer (or any `Nats-Expected-*`
//! or `Nats-Rollup` header beside it) is `10171`, a last value that is not a counter
//! is `10172`; `Nats-Incr` on a stream without counters is `10168`.
//!
//! Counters aggregate through sources, as nats-server 2.15.1 does (recorded by running
//! it): a counter stream that sources counter streams adds to a subject the change of
//! each origin's counter since the last copy, and keeps the origins' values in the
//! header `Nats-Counter-Sources: {"<source>":{"<origin subject>":"<value>"}}` (JSON, keys
//! sorted), which every later message of the subject carries on, increments published
//! to the aggregate itself included. A copy stores the origin's headers with
//! `Nats-Incr` set to the change it applied (the origin's own increment, unless the
//! origin's subject was purged and counts again: 4 after 7 stores `Nats-Incr: -3`), its
//! `Nats-Stream-Source`, the new `Nats-Counter-Sources` and `{"val":"<sum>"}`. So with
//! C1's `c1.x` at 7 and C2's `c2.x` at 10 sourced into `agg.x`, the aggregate holds 17
//! with `{"C1":{"c1.x":"7"},"C2":{"c2.x":"10"}}`, and C2 going to 7 takes it to 14. A
//! copy without `Nats-Incr` (an origin that is not a counter) is refused with `10169`,
//! and the source retries it.

use std::collections::BTreeMap;

use num_bigint::BigInt;
use rill_protocol::HeaderMap;
use rill_protocol::headers::find;
use rill_protocol::jsapi::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use super::core::StreamCore;

/// The publish header carrying the increment.
pub(crate) const INCR: &str = "Nats-Incr";

/// The header with the sourced counters' values a subject's value holds.
pub(crate) const COUNTER_SOURCES: &str = "Nats-Counter-Sources";

/// `Nats-Counter-Sources`: per source, per origin subject, the origin's value.
type Sources = BTreeMap<String, BTreeMap<String, String>>;

/// Headers a counter increment cannot be combined with.
const REFUSED_BESIDE: [&str; 6] = [
    "Nats-Expected-Stream",
    "Nats-Expected-Last-Sequence",
    "Nats-Expected-Last-Msg-Id",
    "Nats-Expected-Last-Subject-Sequence",
    "Nats-Expected-Last-Subject-Sequence-Subject",
    "Nats-Rollup",
];

#[derive(Serialize, Deserialize)]
struct Value {
    val: String,
}

/// An increment: an optionally signed run of decimal digits.
fn parse_incr(v: &str) -> Option<BigInt> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.strip_prefix('+').unwrap_or(v).parse().ok()
}

/// The stored body for a counter `value`.
pub(crate) fn body(value: &BigInt) -> Vec<u8> {
    serde_json::to_vec(&Value {
        val: value.to_string(),
    })
    .unwrap_or_default()
}

/// A counter publish's outcome: the subject's new value, and the
/// `Nats-Counter-Sources` it carries on from the subject's last message.
#[derive(Debug)]
pub(crate) struct Counted {
    pub(crate) value: BigInt,
    pub(crate) sources: Option<String>,
}

impl Counted {
    /// `hdrs` with the carried `Nats-Counter-Sources` added (`None`: unchanged).
    pub(crate) fn headers(&self, hdrs: Option<&[u8]>) -> Option<Vec<u8>> {
        let sources = self.sources.as_ref()?;
        let mut h = hdrs
            .and_then(|b| HeaderMap::parse(b).ok())
            .unwrap_or_default();
        h.insert(COUNTER_SOURCES, sources.clone());
        Some(h.to_bytes().to_vec())
    }
}

/// What a copy from a source stores on a counter stream (see the module doc).
#[derive(Debug)]
pub(crate) struct SourcedCount {
    /// The body, `{"val":"<sum>"}`.
    pub(crate) body: Vec<u8>,
    /// The change applied, for `Nats-Incr`.
    pub(crate) incr: String,
    /// The new `Nats-Counter-Sources`.
    pub(crate) sources: String,
}

/// A counter body's value.
fn value_of(payload: &[u8]) -> Option<BigInt> {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.val.parse::<BigInt>().ok())
}

impl StreamCore {
    /// The value of `subject`'s last message and its `Nats-Counter-Sources` (zero and
    /// none for a subject without messages).
    fn counter_now(&self, subject: &str) -> Result<(BigInt, Option<String>), ApiError> {
        let Ok(m) = self.store.load_last(subject) else {
            return Ok((BigInt::default(), None));
        };
        let value =
            value_of(&m.payload).ok_or_else(|| ErrorCode::MESSAGE_COUNTER_BROKEN.error())?;
        let sources = m
            .headers
            .as_deref()
            .and_then(|h| find(h, COUNTER_SOURCES))
            .map(|v| String::from_utf8_lossy(v).into_owned());
        Ok((value, sources))
    }

    /// A copy from source `source` of origin subject `origin_subject`, stored on
    /// `subject` of this counter stream: what to store (see the module doc).
    ///
    /// # Errors
    /// `MESSAGE_INCR_MISSING` for a copy that is not a counter, `MESSAGE_INCR_INVALID`
    /// for an unreadable value, `MESSAGE_COUNTER_BROKEN` when the subject's last value
    /// is not a counter.
    pub(crate) fn sourced_count(
        &self,
        source: &str,
        origin_subject: &str,
        subject: &str,
        hdrs: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<SourcedCount, ApiError> {
        if hdrs
            .and_then(|h| find(h, INCR))
            .is_none_or(<[u8]>::is_empty)
        {
            return Err(ErrorCode::MESSAGE_INCR_MISSING.error());
        }
        let theirs = value_of(payload).ok_or_else(|| ErrorCode::MESSAGE_INCR_INVALID.error())?;
        let (ours, sources) = self.counter_now(subject)?;
        let mut sources: Sources = sources
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let known = sources.entry(source.to_owned()).or_default();
        let before = known
            .get(origin_subject)
            .and_then(|v| v.parse::<BigInt>().ok())
            .unwrap_or_default();
        let change = &theirs - before;
        known.insert(origin_subject.to_owned(), theirs.to_string());
        Ok(SourcedCount {
            body: body(&(ours + &change)),
            incr: change.to_string(),
            sources: serde_json::to_string(&sources).unwrap_or_default(),
        })
    }

    /// For a counter stream, the subject's new value after this publish (`None`
    /// for other streams, which refuse `Nats-Incr`).
    ///
    /// # Errors
    /// `MESSAGE_INCR_*` and `MESSAGE_COUNTER_BROKEN`, see the module doc.
    pub(super) fn counter_value(
        &self,
        subject: &str,
        hdrs: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<Option<Counted>, ApiError> {
        let incr = hdrs
            .and_then(|h| find(h, INCR))
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .filter(|v| !v.is_empty());
        if !self.cfg.allow_msg_counter {
            return match incr {
                Some(_) => Err(ErrorCode::MESSAGE_INCR_DISABLED.error()),
                None => Ok(None),
            };
        }
        let incr = incr.ok_or_else(|| ErrorCode::MESSAGE_INCR_MISSING.error())?;
        if !payload.is_empty() {
            return Err(ErrorCode::MESSAGE_INCR_PAYLOAD.error());
        }
        let beside = hdrs.is_some_and(|h| {
            REFUSED_BESIDE
                .iter()
                .any(|n| find(h, n).is_some_and(|v| !v.trim_ascii().is_empty()))
        });
        let incr = parse_incr(&incr)
            .filter(|_| !beside)
            .ok_or_else(|| ErrorCode::MESSAGE_INCR_INVALID.error())?;
        let (current, sources) = self.counter_now(subject)?;
        Ok(Some(Counted {
            value: current + incr,
            sources,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_are_signed_decimal_integers_of_any_size() {
        let p = |v: &str| parse_incr(v).map(|n| n.to_string());
        assert_eq!(p("+5").as_deref(), Some("5"));
        assert_eq!(p("-10").as_deref(), Some("-10"));
        assert_eq!(p("007").as_deref(), Some("7"));
        assert_eq!(p("-0").as_deref(), Some("0"));
        let big = "100000000000000000000000000000";
        assert_eq!(p(big).as_deref(), Some(big));
        for bad in ["", "+", "+-1", "1_000", "0x10", "1.5", "abc", "1e3"] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(body(&BigInt::from(-4)), br#"{"val":"-4"}"#);
    }
}
