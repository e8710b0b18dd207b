//! A stream's subject rewrites: `subject_transform` (the subject a message is stored
//! under) and `republish` (core NATS copies of stored messages).
//!
//! Behaviour recorded from nats-server 2.15.1:
//! * `subject_transform` rewrites the subjects its `src` matches before the message is
//!   checked and stored; other subjects are stored as published (it is not a filter);
//! * `republish` sends every stored message whose (stored) subject `src` matches to
//!   `dest` (a transform of that subject), with no reply subject, with the message's own
//!   headers followed by `Nats-Stream`, `Nats-Subject` (the stored subject),
//!   `Nats-Sequence`, `Nats-Time-Stamp` (RFC 3339, UTC, nanoseconds) and
//!   `Nats-Last-Sequence` (the previous message on the same subject, 0 for none);
//!   `headers_only` sends an empty payload and adds `Nats-Msg-Size` (payload bytes);
//! * republished messages are published by the server itself: account `mappings {}`
//!   do not apply to them.
//!
//! rill sends republished messages once the message is durable (after the batch's
//! sync, just before the PubAcks), so a subscriber never sees a message a crash could
//! lose.
//!
//! The stream actor owns a [`Rewrites`]; the ingest path calls
//! [`Rewrites::stored_subject`] and [`Rewrites::stored`], and the flush sends
//! [`Rewrites::take`].

use std::borrow::Cow;

use bytes::Bytes;
use rill_protocol::HeaderMap;
use rill_protocol::jsapi::StreamConfig;
use rill_protocol::mapping::SubjectTransform;
use tracing::warn;

use crate::jetstream::store::timestamp;

/// A message to publish on core NATS once the batch is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) subject: Bytes,
    pub(crate) headers: Bytes,
    pub(crate) payload: Bytes,
}

/// A stored message, as `republish` needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored<'a> {
    pub(crate) stream: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) seq: u64,
    /// Store timestamp, ns since the epoch.
    pub(crate) ts: i64,
    /// The previous sequence on the same subject (0: none).
    pub(crate) last_seq: u64,
    pub(crate) headers: Option<&'a [u8]>,
    pub(crate) payload: &'a [u8],
}

#[derive(Debug)]
struct Republish {
    transform: SubjectTransform,
    headers_only: bool,
}

/// The compiled `subject_transform` and `republish` of one stream, plus the republished
/// messages waiting for the batch's sync.
#[derive(Debug, Default)]
pub(crate) struct Rewrites {
    ingest: Option<SubjectTransform>,
    republish: Option<Republish>,
    pending: Vec<Outgoing>,
}

impl Rewrites {
    /// Compiles a validated config's rewrites (an invalid one, from an old store, is
    /// logged and left out).
    pub(crate) fn new(cfg: &StreamConfig) -> Self {
        let compile = |what: &str, src: &str, dest: &str| match SubjectTransform::new(src, dest) {
            Ok(t) => Some(t),
            Err(e) => {
                warn!(stream = %cfg.name, "{what} {src} -> {dest} left out: {e}");
                None
            }
        };
        Self {
            ingest: cfg
                .subject_transform
                .as_ref()
                .and_then(|t| compile("subject transform", &t.src, &t.dest)),
            republish: cfg.republish.as_ref().and_then(|r| {
                compile("republish", &r.src, &r.dest).map(|transform| Republish {
                    transform,
                    headers_only: r.headers_only,
                })
            }),
            pending: Vec::new(),
        }
    }

    /// The subject a message published on `subject` is stored under.
    pub(crate) fn stored_subject<'a>(&self, subject: &'a str) -> Cow<'a, str> {
        match self.ingest.as_ref().and_then(|t| t.apply_det(subject)) {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(subject),
        }
    }

    /// True when a message stored on `subject` is republished (the caller then looks
    /// up the subject's previous sequence for [`Stored::last_seq`]).
    pub(crate) fn republishes(&self, subject: &str) -> bool {
        self.republish
            .as_ref()
            .is_some_and(|r| r.transform.matches(subject))
    }

    /// Queues the republished copy of a stored message, if `republish` matches it.
    pub(crate) fn stored(&mut self, m: &Stored<'_>) {
        let Some(r) = &self.republish else {
            return;
        };
        let Some(dest) = r.transform.apply_det(m.subject) else {
            return;
        };
        let mut h = m
            .headers
            .and_then(|b| HeaderMap::parse(b).ok())
            .unwrap_or_default();
        h.append("Nats-Stream", m.stream);
        h.append("Nats-Subject", m.subject);
        h.append("Nats-Sequence", m.seq.to_string());
        h.append("Nats-Time-Stamp", timestamp(m.ts).to_string());
        h.append("Nats-Last-Sequence", m.last_seq.to_string());
        let payload = if r.headers_only {
            h.append("Nats-Msg-Size", m.payload.len().to_string());
            Bytes::new()
        } else {
            Bytes::copy_from_slice(m.payload)
        };
        self.pending.push(Outgoing {
            subject: Bytes::from(dest),
            headers: h.to_bytes(),
            payload,
        });
    }

    /// The republished messages of the batch, to send now that it is durable.
    pub(crate) fn take(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use rill_protocol::jsapi::{RePublish, SubjectTransform as Transform};

    use super::*;

    fn cfg(transform: Option<(&str, &str)>, republish: Option<(&str, &str, bool)>) -> StreamConfig {
        StreamConfig {
            subject_transform: transform.map(|(src, dest)| Transform {
                src: src.into(),
                dest: dest.into(),
            }),
            republish: republish.map(|(src, dest, headers_only)| RePublish {
                src: src.into(),
                dest: dest.into(),
                headers_only,
            }),
            ..StreamConfig::named("S")
        }
    }

    #[test]
    fn the_transform_rewrites_only_what_it_matches() {
        let r = Rewrites::new(&cfg(Some(("in.*", "st.{{wildcard(1)}}")), None));
        assert_eq!(r.stored_subject("in.k1"), "st.k1");
        assert_eq!(r.stored_subject("other.k1"), "other.k1");
    }

    #[test]
    fn republished_copies_carry_nats_servers_headers() {
        let mut r = Rewrites::new(&cfg(None, Some(("st.*", "out.$1", false))));
        let payload = Bytes::from_static(b"hello");
        let stored = Stored {
            stream: "S",
            subject: "st.k1",
            seq: 3,
            ts: 1_000_000_001,
            last_seq: 1,
            headers: Some(b"NATS/1.0\r\nX-A: 1\r\n\r\n"),
            payload: &payload,
        };
        assert!(r.republishes("st.k1") && !r.republishes("other"));
        r.stored(&stored);
        r.stored(&Stored {
            subject: "other",
            ..stored
        });
        let out = r.take();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "out.k1");
        assert_eq!(out[0].payload, "hello");
        let h = String::from_utf8_lossy(&out[0].headers);
        assert_eq!(
            h,
            "NATS/1.0\r\nX-A: 1\r\nNats-Stream: S\r\nNats-Subject: st.k1\r\nNats-Sequence: 3\r\n\
             Nats-Time-Stamp: 1970-01-01T00:00:01.000000001Z\r\nNats-Last-Sequence: 1\r\n\r\n"
        );
        assert!(r.take().is_empty());
    }

    #[test]
    fn headers_only_sends_the_size_instead_of_the_payload() {
        let mut r = Rewrites::new(&cfg(None, Some((">", "ho.>", true))));
        let payload = Bytes::from_static(b"12345");
        r.stored(&Stored {
            stream: "H",
            subject: "h.x",
            seq: 1,
            ts: 0,
            last_seq: 0,
            headers: None,
            payload: &payload,
        });
        let out = r.take();
        assert_eq!(out[0].subject, "ho.h.x");
        assert!(out[0].payload.is_empty());
        let h = HeaderMap::parse(&out[0].headers).expect("valid block");
        assert_eq!(h.get("Nats-Msg-Size"), Some("5"));
    }
}
