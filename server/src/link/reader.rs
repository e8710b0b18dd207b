//! The read loop of a link whose handshake is done, shared by routes and leaf nodes: it
//! reads and decodes ops, answers `PING`, measures the round trip with its own `PING`s
//! (closing a link that stops answering), waits a moment for a backlogged local
//! subscriber after a read pass, and keeps the counters. Every other op goes to the
//! link kind's [`Protocol`].

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rill_protocol::{RouteDecoder, RouteOp};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, warn};

use super::Link;
use super::handshake::READ_CHUNK;
use crate::client::CloseReason;
use crate::router::{Fanout, Subscriber};
use crate::server::ServerState;
use crate::stats::Stats;

/// The longest a read pass waits for a backlogged local subscriber to drain.
const STALL: Duration = Duration::from_millis(5);

/// What one kind of link does with the ops its read loop decodes.
pub(crate) trait Protocol {
    /// The link type.
    type Link: Link;
    /// The link being read.
    fn link(&self) -> &Arc<Self::Link>;
    /// Handles one op other than `PING` and `PONG`; a message handed to a router is
    /// recorded in `tally`.
    fn handle(&mut self, op: RouteOp, tally: &mut Tally);
}

/// What one read pass delivered.
#[derive(Default)]
pub(crate) struct Tally {
    msgs: u64,
    bytes: u64,
    delivered: u64,
    stall: Option<Arc<dyn Subscriber>>,
}

impl Tally {
    /// A message of `size` bytes went to a router, which did `fanout` with it.
    pub(crate) fn record(&mut self, size: usize, fanout: Fanout) {
        self.msgs += 1;
        self.bytes += size as u64;
        self.delivered += fanout.delivered as u64;
        if self.stall.is_none() {
            self.stall = fanout.backlogged;
        }
    }
}

/// How a link pings: every `interval`, closing it after `max` unanswered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pings {
    pub(crate) interval: Duration,
    pub(crate) max: u32,
}

/// A running link's read side.
pub(crate) struct ReadLoop<'a, P> {
    protocol: P,
    state: &'a ServerState,
    /// "Route", "Leafnode": names protocol errors in the log.
    kind: &'static str,
    decoder: RouteDecoder,
    pings_out: u32,
    ping_sent: Option<Instant>,
    tally: Tally,
}

impl<'a, P: Protocol> ReadLoop<'a, P> {
    /// A read loop for `protocol`'s link on `state`'s server.
    pub(crate) fn new(
        protocol: P,
        state: &'a ServerState,
        kind: &'static str,
        decoder: RouteDecoder,
    ) -> Self {
        Self {
            protocol,
            state,
            kind,
            decoder,
            pings_out: 0,
            ping_sent: None,
            tally: Tally::default(),
        }
    }

    /// Reads until the link closes; why it closed. `buf` holds what the handshake read
    /// beyond itself.
    pub(crate) async fn run<R: AsyncRead + Unpin>(
        mut self,
        mut reader: R,
        mut buf: BytesMut,
        pings: Pings,
    ) -> CloseReason {
        // The first PING goes out soon, as nats-server's does, to measure the RTT.
        let first = Instant::now() + pings.interval.min(Duration::from_secs(1));
        let mut ping = tokio::time::interval_at(first, pings.interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let link = Arc::clone(self.protocol.link());
        // Ops that arrived with the handshake.
        if let Err(reason) = self.process(&mut buf) {
            return reason;
        }
        loop {
            let want = self
                .decoder
                .bytes_needed(buf.len())
                .unwrap_or(0)
                .max(16 * 1024);
            if buf.capacity() - buf.len() < want {
                buf.reserve(want.max(READ_CHUNK));
            }
            tokio::select! {
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(_) => {
                        if let Err(reason) = self.process(&mut buf) {
                            return reason;
                        }
                        if let Some(backlogged) = self.tally.stall.take() {
                            let _ = tokio::time::timeout(STALL, backlogged.drained()).await;
                        }
                    }
                    Err(e) => {
                        debug!("{} - read error: {e}", link.log_prefix());
                        return CloseReason::ReadError;
                    }
                },
                _ = ping.tick() => {
                    if self.pings_out >= pings.max {
                        error!("{} - Stale Connection", link.log_prefix());
                        return CloseReason::StaleConnection;
                    }
                    self.pings_out += 1;
                    self.ping_sent = Some(Instant::now());
                    link.send(b"PING\r\n");
                }
                _ = link.outbound().close.notified() => return link.outbound().reason(),
            }
        }
    }

    /// Handles every whole op in `buf`.
    fn process(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        let result = loop {
            match self.decoder.decode(buf) {
                Ok(Some(RouteOp::Ping)) => self.protocol.link().send(b"PONG\r\n"),
                Ok(Some(RouteOp::Pong)) => self.pong(),
                Ok(Some(op)) => self.protocol.handle(op, &mut self.tally),
                Ok(None) => break Ok(()),
                Err(e) if !e.closes_connection() => {
                    // A subject that is not text: that op alone is dropped.
                    let prefix = self.protocol.link().log_prefix();
                    warn!("{prefix} - {} op dropped: {e}", self.kind);
                }
                Err(e) => {
                    let prefix = self.protocol.link().log_prefix();
                    error!("{prefix} - {} protocol error: {e}", self.kind);
                    break Err(CloseReason::ProtocolViolation);
                }
            }
            if self.protocol.link().is_closed() {
                break Err(self.protocol.link().outbound().reason());
            }
        };
        self.flush_tally();
        result
    }

    fn pong(&mut self) {
        self.pings_out = 0;
        if let Some(sent) = self.ping_sent.take() {
            self.protocol.link().counters().set_rtt(sent.elapsed());
        }
    }

    fn flush_tally(&mut self) {
        let (msgs, bytes, delivered) = (self.tally.msgs, self.tally.bytes, self.tally.delivered);
        (self.tally.msgs, self.tally.bytes, self.tally.delivered) = (0, 0, 0);
        if msgs == 0 {
            return;
        }
        self.protocol.link().counters().add_in(msgs, bytes);
        let stats = &self.state.stats;
        Stats::add(&stats.in_msgs, msgs);
        Stats::add(&stats.in_bytes, bytes);
        Stats::add(&stats.out_msgs, delivered);
        Stats::add(&stats.out_bytes, delivered * (bytes / msgs));
    }
}
