//! The ack protocol: the `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
//! reply subject of every delivered message, and the ack payloads clients send to it.
//!
//! Owns parsing and formatting only; what an ack does is the tracker's business.

use std::time::Duration;

use rill_protocol::jsapi::NakOptions;

use crate::config::units::parse_duration;

/// Prefix of every ack subject.
pub const ACK_PREFIX: &str = "$JS.ACK";

/// The metadata carried by an ack subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckMeta {
    /// Delivery count of this delivery (1 for the first).
    pub deliveries: u64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// Consumer sequence of this delivery.
    pub consumer_seq: u64,
}

/// `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>` (the v1 form clients parse).
pub fn ack_subject(stream: &str, consumer: &str, m: AckMeta, ts: i64, pending: u64) -> String {
    format!(
        "{ACK_PREFIX}.{stream}.{consumer}.{}.{}.{}.{ts}.{pending}",
        m.deliveries, m.stream_seq, m.consumer_seq
    )
}

/// Reads the metadata back from an ack subject (v1, 9 tokens).
pub fn parse_ack_subject(subject: &[u8]) -> Option<AckMeta> {
    let s = std::str::from_utf8(subject).ok()?;
    let toks: Vec<&str> = s.split('.').collect();
    if toks.len() != 9 || toks[0] != "$JS" || toks[1] != "ACK" {
        return None;
    }
    Some(AckMeta {
        deliveries: toks[4].parse().ok()?,
        stream_seq: toks[5].parse().ok()?,
        consumer_seq: toks[6].parse().ok()?,
    })
}

/// What an ack payload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckKind {
    /// Empty, `+ACK` or `+OK`.
    Ack,
    /// `-NAK`, optionally with a redelivery delay.
    Nak(Option<Duration>),
    /// `+WPI`: still working, restart the ack timer.
    Progress,
    /// `+NXT [request]`: ack, then treat the rest as a pull request.
    Next(Vec<u8>),
    /// `+TERM [reason]`: never redeliver.
    Term(String),
}

impl AckKind {
    /// Parses a payload the way nats-server does; unknown payloads are plain acks.
    pub fn parse(payload: &[u8]) -> AckKind {
        let p = payload.trim_ascii();
        if let Some(rest) = p.strip_prefix(b"-NAK") {
            return AckKind::Nak(nak_delay(rest.trim_ascii()));
        }
        if p.starts_with(b"+WPI") {
            return AckKind::Progress;
        }
        if let Some(rest) = p.strip_prefix(b"+NXT") {
            return AckKind::Next(rest.trim_ascii().to_vec());
        }
        if let Some(rest) = p.strip_prefix(b"+TERM") {
            return AckKind::Term(String::from_utf8_lossy(rest.trim_ascii()).into_owned());
        }
        AckKind::Ack
    }
}

/// `{"delay": ns}` or a Go duration (`5s`); anything else means no delay.
fn nak_delay(rest: &[u8]) -> Option<Duration> {
    if rest.is_empty() {
        return None;
    }
    if rest.first() == Some(&b'{') {
        let opts: NakOptions = serde_json::from_slice(rest).ok()?;
        return opts.delay.to_duration().filter(|d| !d.is_zero());
    }
    let text = std::str::from_utf8(rest).ok()?;
    parse_duration(text).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(AckKind::parse(b""), AckKind::Ack);
        assert_eq!(AckKind::parse(b"+ACK"), AckKind::Ack);
        assert_eq!(AckKind::parse(b"-NAK"), AckKind::Nak(None));
        assert_eq!(
            AckKind::parse(br#"-NAK {"delay": 2000000000}"#),
            AckKind::Nak(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            AckKind::parse(b"-NAK 1.5s"),
            AckKind::Nak(Some(Duration::from_millis(1500)))
        );
        assert_eq!(AckKind::parse(b"+WPI"), AckKind::Progress);
        assert_eq!(AckKind::parse(b"+NXT 5"), AckKind::Next(b"5".to_vec()));
        assert_eq!(AckKind::parse(b"+TERM bad"), AckKind::Term("bad".into()));
    }

    #[test]
    fn subject_round_trip() {
        let m = AckMeta {
            deliveries: 2,
            stream_seq: 3,
            consumer_seq: 4,
        };
        let s = ack_subject("S", "C", m, 17, 0);
        assert_eq!(s, "$JS.ACK.S.C.2.3.4.17.0");
        assert_eq!(parse_ack_subject(s.as_bytes()), Some(m));
        assert_eq!(parse_ack_subject(b"$JS.ACK.S.C.1.2"), None);
    }
}
