//! Counter streams (`allow_msg_counter`, ADR-49): a publish carries `Nats-Incr: <n>`
//! and an empty body; the stream stores `{"val":"<sum>"}` on the subject, where the sum
//! adds `n` to the value of the subject's last stored message, and the PubAck carries
//! the sum in `val`. Values are arbitrary-size integers, as nats-server's.
//!
//! As nats-server 2.15 answers: no `Nats-Incr` (or an empty one) is `10169`, a body is
//! `10170`, anything but an optionally signed decimal integer (or any `Nats-Expected-*`
//! or `Nats-Rollup` header beside it) is `10171`, a last value that is not a counter
//! is `10172`; `Nats-Incr` on a stream without counters is `10168`. Not implemented:
//! aggregating sourced counters (`Nats-Counter-Sources`).

use num_bigint::BigInt;
use rill_protocol::headers::find;
use rill_protocol::jsapi::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use super::core::StreamCore;

/// The publish header carrying the increment.
pub(crate) const INCR: &str = "Nats-Incr";

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

impl StreamCore {
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
    ) -> Result<Option<BigInt>, ApiError> {
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
        let current = match self.store.load_last(subject) {
            Ok(m) => serde_json::from_slice::<Value>(&m.payload)
                .ok()
                .and_then(|v| v.val.parse::<BigInt>().ok())
                .ok_or_else(|| ErrorCode::MESSAGE_COUNTER_BROKEN.error())?,
            Err(_) => BigInt::default(),
        };
        Ok(Some(current + incr))
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
