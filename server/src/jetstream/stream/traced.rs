//! A traced message reaching the stream (message tracing, see [`crate::trace`]): the
//! `js` event names the stream, the subject, and whether the message was not kept
//! (an interest stream without interest in it; the error of a refused publish). With
//! `Nats-Trace-Only` it is reported and not stored. The record is reported when the
//! stream lets go of it, after the message was handled.

use bytes::Bytes;
use rill_protocol::jsapi::RetentionPolicy;

use super::core::StreamCore;
use crate::trace::record::Trace;

impl StreamCore {
    /// [`StreamCore::publish`] for a traced message, recording its `js` event.
    pub(super) fn publish_traced(
        &mut self,
        trace: &Trace,
        subject: &Bytes,
        reply: Option<Bytes>,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) {
        let text = std::str::from_utf8(subject).unwrap_or_default();
        let nointerest =
            self.cfg.retention == RetentionPolicy::Interest && !self.has_interest_in(text);
        let refused = if trace.only() {
            None
        } else {
            self.publish(subject, reply, headers, payload)
        };
        trace.jetstream(&self.name, subject, nointerest, refused);
    }
}
