//! A client's outbound queue: bounded by `max_pending`, drained by one writer task.
//!
//! Producers (any connection's read loop, JetStream actors) append frames under a
//! short `std` mutex and never wait for the socket: when the queue would exceed
//! `max_pending` the client is marked a slow consumer and closed instead, so one
//! slow reader never holds up the others. Small payloads are copied into a
//! contiguous tail buffer (one `write` carries many messages); payloads of
//! [`SHARE_THRESHOLD`] bytes or more are queued as shared `Bytes` (no copy per
//! subscriber on fan-out) and written with vectored I/O.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use rill_protocol::encode;

use crate::locks;
use crate::router::Msg;

/// Payloads at least this large are shared, not copied, into the queue. Below it a
/// copy is cheaper than an extra iovec and refcount.
pub const SHARE_THRESHOLD: usize = 4096;

/// The small-frame tail is sealed into a chunk once it holds this much, so a
/// backlog grows by appending chunks rather than by reallocating (and copying)
/// one ever larger buffer.
const TAIL_CHUNK: usize = 64 * 1024;

/// A backlog past this many bytes (or half of `max_pending`, if smaller) makes
/// deliveries answer `Pressure`: the publisher then waits, bounded, until the writer
/// drained it to half. The queue stays a few milliseconds of socket throughput deep
/// instead of tens of MiB, without costing throughput.
const STALL_CEILING: usize = 4 * 1024 * 1024;

/// Most iovecs handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// Why a connection was closed; also what monitoring reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// Still open.
    Open = 0,
    /// The client closed the socket.
    ClientClosed,
    /// Outbound queue over `max_pending`.
    SlowConsumerPendingBytes,
    /// A write took longer than `write_deadline`.
    SlowConsumerWriteDeadline,
    /// Protocol error.
    ProtocolViolation,
    /// Too many unanswered PINGs.
    StaleConnection,
    /// Server shutting down.
    ServerShutdown,
    /// Authentication failed or timed out.
    AuthenticationViolation,
    /// Write error on the socket.
    WriteError,
    /// Read error on the socket.
    ReadError,
    /// The user JWT expired (or its connect-time window ended).
    AuthenticationExpired,
    /// The user was revoked by an account JWT update.
    Revocation,
    /// The account JWT's `conn` limit was reached.
    MaxAccountConnectionsExceeded,
    /// A route to a server already connected by another route.
    DuplicateRoute,
    /// A route from a server of another cluster.
    ClusterNameConflict,
    /// Closed by `$SYS.REQ.SERVER.<id>.KICK`.
    Kicked,
    /// A message over `max_payload`.
    MaxPayloadExceeded,
}

impl CloseReason {
    fn from_u8(v: u8) -> Self {
        use CloseReason::*;
        [
            Open,
            ClientClosed,
            SlowConsumerPendingBytes,
            SlowConsumerWriteDeadline,
            ProtocolViolation,
            StaleConnection,
            ServerShutdown,
            AuthenticationViolation,
            WriteError,
            ReadError,
            AuthenticationExpired,
            Revocation,
            MaxAccountConnectionsExceeded,
            DuplicateRoute,
            ClusterNameConflict,
            Kicked,
            MaxPayloadExceeded,
        ]
        .get(usize::from(v))
        .copied()
        .unwrap_or(Open)
    }

    /// The reason as nats-server names it in `/connz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "",
            Self::ClientClosed => "Client Closed",
            Self::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            Self::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            Self::ProtocolViolation => "Protocol Violation",
            Self::StaleConnection => "Stale Connection",
            Self::ServerShutdown => "Server Shutdown",
            Self::AuthenticationViolation => "Authentication Failure",
            Self::WriteError => "Write Error",
            Self::ReadError => "Read Error",
            Self::AuthenticationExpired => "Authentication Expired",
            Self::Revocation => "Credentials Revoked",
            Self::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            Self::DuplicateRoute => "Duplicate Route",
            Self::ClusterNameConflict => "Cluster Name Conflict",
            Self::Kicked => "Kicked",
            Self::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
        }
    }

    /// True for both slow-consumer reasons.
    pub fn is_slow_consumer(self) -> bool {
        matches!(
            self,
            Self::SlowConsumerPendingBytes | Self::SlowConsumerWriteDeadline
        )
    }
}

#[derive(Debug, Default)]
struct Queue {
    /// Frames ready to write, in order, before `tail`.
    chunks: VecDeque<Bytes>,
    /// Small frames being appended.
    tail: BytesMut,
    /// Bytes queued and not yet written.
    pending: usize,
    /// Set once closing: producers stop queueing.
    closing: bool,
    /// A message frame was queued since the writer last took the queue.
    msgs: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let sealed = self.tail.split().freeze();
            self.chunks.push_back(sealed);
        }
    }
}

/// The outbound side of one connection, shared by every producer and its writer task.
#[derive(Debug)]
pub struct Outbound {
    queue: Mutex<Queue>,
    data: Notify,
    /// Wakes stalled publishers once the backlog fell to `stall_at / 2`.
    drained: Notify,
    max_pending: usize,
    /// Backlog at which deliveries answer [`Pushed::Pressure`].
    stall_at: usize,
    reason: AtomicU8,
    closed: AtomicBool,
    /// Wakes the connection's read loop when the connection must close.
    pub close: Notify,
    /// See [`Outbound::last_msg_written`].
    msg_written: AtomicI64,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, and the backlog is past the stall threshold: the publisher should
    /// wait for [`Outbound::drained`].
    Pressure,
    /// The connection is closing; nothing was queued.
    Closed,
    /// Queueing it would pass `max_pending`: the client is now a slow consumer.
    SlowConsumer,
}

impl Outbound {
    /// The most bytes this queue holds before its client is a slow consumer.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// An empty queue bounded by `max_pending` bytes.
    pub fn new(max_pending: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            data: Notify::new(),
            drained: Notify::new(),
            max_pending,
            stall_at: (max_pending / 2).min(STALL_CEILING),
            reason: AtomicU8::new(CloseReason::Open as u8),
            closed: AtomicBool::new(false),
            close: Notify::new(),
            msg_written: AtomicI64::new(0),
        }
    }

    /// Queues raw protocol bytes (INFO, PING, PONG, +OK, -ERR).
    pub fn push_raw(&self, bytes: &[u8]) -> Pushed {
        self.push_with(bytes.len(), |q| {
            q.tail.put_slice(bytes);
            bytes.len()
        })
    }

    /// Queues `msg` as a `MSG`/`HMSG` frame for subscription `sid`; `with_headers`
    /// false drops its header block (a client that did not ask for headers).
    pub fn push_msg(&self, sid: &[u8], msg: &Msg<'_>, with_headers: bool) -> Pushed {
        let headers = msg.headers.filter(|_| with_headers);
        let hdr_len = headers.map(<[u8]>::len);
        let total = hdr_len.unwrap_or(0) + msg.payload.len();
        let head = msg.subject.len() + sid.len() + msg.reply.map_or(0, str::len) + 32;
        self.push_frame(head, msg, with_headers, |tail| {
            let (subject, reply) = (msg.subject.as_bytes(), msg.reply.map(str::as_bytes));
            encode::msg_head(tail, subject, sid, reply, hdr_len, total);
        })
    }

    /// Queues a message frame whose control line `head` writes (at most `head_len`
    /// bytes: `MSG`, a route's `RMSG`, …), followed by the header block (unless
    /// `with_headers` is false), the payload and `\r\n`. Large payloads are shared,
    /// not copied.
    pub fn push_frame(
        &self,
        head_len: usize,
        msg: &Msg<'_>,
        with_headers: bool,
        head: impl FnOnce(&mut BytesMut),
    ) -> Pushed {
        let headers = msg.headers.filter(|_| with_headers);
        let total = headers.map_or(0, <[u8]>::len) + msg.payload.len();
        self.push_with(head_len + total + 2, |q| {
            let before = q.tail.len();
            head(&mut q.tail);
            let head = q.tail.len() - before;
            q.tail.put_slice(headers.unwrap_or_default());
            if total >= SHARE_THRESHOLD {
                // Shared, not copied: fan-out of a large payload costs a refcount each.
                q.seal_tail();
                q.chunks.push_back(msg.payload_bytes());
            } else {
                q.tail.put_slice(msg.payload);
            }
            q.tail.put_slice(b"\r\n");
            q.msgs = true;
            head + total + 2
        })
    }

    /// Queues what `write` appends; `size` is an upper bound checked against
    /// `max_pending` first, and `write` returns the bytes it actually queued.
    fn push_with(&self, size: usize, write: impl FnOnce(&mut Queue) -> usize) -> Pushed {
        let mut q = locks::lock(&self.queue);
        if q.closing {
            return Pushed::Closed;
        }
        if q.pending + size > self.max_pending {
            drop(q);
            self.close_with(CloseReason::SlowConsumerPendingBytes);
            return Pushed::SlowConsumer;
        }
        let was_empty = q.is_empty();
        let queued = write(&mut q);
        q.pending += queued;
        if q.tail.len() >= TAIL_CHUNK {
            q.seal_tail();
        }
        let pressure = q.pending > self.stall_at;
        drop(q);
        if was_empty {
            // The writer drains everything before it waits, so one wake-up per
            // empty-to-non-empty transition is enough.
            self.data.notify_one();
        }
        if pressure {
            Pushed::Pressure
        } else {
            Pushed::Queued
        }
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        locks::lock(&self.queue).pending
    }

    /// Resolves once the backlog is at most half the stall threshold, or the
    /// connection closed. Publishers bound the wait themselves.
    pub async fn drained(&self) {
        let notified = self.drained.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before the check, so a drain in between still wakes us.
        notified.as_mut().enable();
        if self.is_closed() || self.pending_bytes() <= self.stall_at / 2 {
            return;
        }
        notified.await;
    }

    /// Marks the connection closed for `reason` (the first reason wins) and wakes
    /// the read loop and the writer. Frames already queued are still flushed.
    pub fn close_with(&self, reason: CloseReason) {
        let _ = self.reason.compare_exchange(
            CloseReason::Open as u8,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if !self.closed.swap(true, Ordering::AcqRel) {
            locks::lock(&self.queue).closing = true;
            self.close.notify_one();
            self.data.notify_one();
            self.drained.notify_waiters();
        }
    }

    /// True once [`Outbound::close_with`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Why the connection closed ([`CloseReason::Open`] while open).
    pub fn reason(&self) -> CloseReason {
        CloseReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    /// Takes everything queued, in order.
    /// The queued frames, whether the connection is closing, and whether a message frame
    /// is among them.
    fn take(&self) -> (Vec<Bytes>, bool, bool) {
        let mut q = locks::lock(&self.queue);
        if self.reason().is_slow_consumer() {
            // A slow consumer is cut off at once, as nats-server does: its backlog is dropped.
            q.chunks.clear();
            q.tail.clear();
            q.pending = 0;
            return (Vec::new(), true, false);
        }
        q.seal_tail();
        let chunks: Vec<Bytes> = q.chunks.drain(..).collect();
        (chunks, q.closing, std::mem::take(&mut q.msgs))
    }

    /// When a message was last written to the connection (unix ns; 0: never), which
    /// /connz's `last_activity` takes into account.
    pub fn last_msg_written(&self) -> i64 {
        self.msg_written.load(Ordering::Relaxed)
    }

    /// Accounts for `n` bytes written, waking stalled publishers when the backlog
    /// falls to half the stall threshold.
    fn written(&self, n: usize) {
        let resume_at = self.stall_at / 2;
        let mut q = locks::lock(&self.queue);
        let before = q.pending;
        q.pending = before.saturating_sub(n);
        let resumed = before > resume_at && q.pending <= resume_at;
        drop(q);
        if resumed {
            self.drained.notify_waiters();
        }
    }

    /// The writer task of a client: drains the queue into `io` until the connection
    /// closes, then flushes what is left and shuts the socket down. A write that passes
    /// `write_deadline` closes the client as a slow consumer.
    pub async fn run_writer<W: super::ClientWriter>(&self, io: W, write_deadline: Duration) {
        self.write_loop(io, write_deadline, None).await;
    }

    /// The writer task of a route or leaf link. As nats-server treats links, a write
    /// that passes `write_deadline` after writing something is reported to `slow`
    /// ([`SlowWrite`]) and goes on; only a deadline that passes with nothing written
    /// closes the link as a slow consumer.
    pub async fn run_link_writer<W: super::ClientWriter>(
        &self,
        io: W,
        write_deadline: Duration,
        slow: &(dyn Fn(SlowWrite) + Send + Sync),
    ) {
        self.write_loop(io, write_deadline, Some(slow)).await;
    }

    async fn write_loop<W: super::ClientWriter>(
        &self,
        mut io: W,
        write_deadline: Duration,
        slow: Option<&(dyn Fn(SlowWrite) + Send + Sync)>,
    ) {
        'run: loop {
            let (chunks, closing, msgs) = self.take();
            let mut at = WriteAt::default();
            while at.idx < chunks.len() {
                let before = at;
                let write = write_all(&mut io, &chunks, &mut at, |n| self.written(n));
                match tokio::time::timeout(write_deadline, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        self.close_with(CloseReason::WriteError);
                        break 'run;
                    }
                    Err(_) => match slow {
                        Some(report) if at != before => report(SlowWrite {
                            deadline: write_deadline,
                            chunks: chunks.len() - at.idx,
                            bytes: at.left(&chunks),
                        }),
                        _ => {
                            self.close_with(CloseReason::SlowConsumerWriteDeadline);
                            break 'run;
                        }
                    },
                }
            }
            if msgs {
                // Once per written batch, not per message: /connz's last_activity.
                self.msg_written
                    .store(crate::shared::unix_ns(), Ordering::Relaxed);
            }
            if !chunks.is_empty() {
                continue;
            }
            if closing {
                break;
            }
            self.data.notified().await;
        }
        io.closing(self.reason());
        let _ = tokio::time::timeout(Duration::from_millis(200), io.shutdown()).await;
    }
}

/// A link's write that passed the write deadline having written something (nats-server
/// logs it as `Slow Consumer Detected: WriteDeadline of <d> exceeded with <n> chunks of
/// <b> total bytes.` and counts a slow consumer, but keeps the link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowWrite {
    /// The write deadline.
    pub deadline: Duration,
    /// Chunks still to write.
    pub chunks: usize,
    /// Bytes still to write.
    pub bytes: usize,
}

/// How far a batch of chunks has been written: kept outside the write so a write cut
/// off by the deadline resumes where it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct WriteAt {
    idx: usize,
    offset: usize,
}

impl WriteAt {
    /// Bytes of `chunks` not written yet.
    fn left(self, chunks: &[Bytes]) -> usize {
        chunks[self.idx..].iter().map(Bytes::len).sum::<usize>() - self.offset
    }

    /// Moves past `n` written bytes.
    fn advance(&mut self, chunks: &[Bytes], mut n: usize) {
        while n > 0 && self.idx < chunks.len() {
            let left = chunks[self.idx].len() - self.offset;
            if n >= left {
                n -= left;
                self.idx += 1;
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }
}

/// Writes the chunks from `at` on, in vectored batches, reporting each write's progress
/// and moving `at` as it goes.
async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    chunks: &[Bytes],
    at: &mut WriteAt,
    mut progress: impl FnMut(usize),
) -> std::io::Result<()> {
    while at.idx < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[at.idx..]
            .iter()
            .take(MAX_IOVECS)
            .enumerate()
            .map(|(i, c)| IoSlice::new(if i == 0 { &c[at.offset..] } else { c }))
            .collect();
        let n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        progress(n);
        at.advance(chunks, n);
    }
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ByteString;
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;

    const KIB: usize = 1024;

    fn push_kib(out: &Outbound) -> Pushed {
        let subject = ByteString::from_static("foo");
        let payload = Bytes::from(vec![b'x'; KIB]);
        out.push_msg(b"1", &Msg::new(&subject, None, None, &payload), true)
    }

    #[tokio::test]
    async fn pressure_from_the_stall_threshold_until_the_writer_drains_half() {
        let out = Arc::new(Outbound::new(1024 * KIB));
        let mut pushed = 0;
        while push_kib(&out) == Pushed::Queued {
            pushed += 1;
        }
        // Past half of max_pending (the threshold below the 4 MiB ceiling), not before.
        assert!((500..=512).contains(&pushed), "pressure after {pushed} KiB");
        let waiter = tokio::spawn({
            let out = Arc::clone(&out);
            async move { out.drained().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "nothing was written yet");
        let (client, server) = tokio::io::duplex(64 * KIB);
        let writer = tokio::spawn({
            let out = Arc::clone(&out);
            async move { out.run_writer(server, Duration::from_secs(5)).await }
        });
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut sink = vec![0u8; 64 * KIB];
            while client.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("drained once the writer caught up")
            .expect("task");
        assert!(out.pending_bytes() <= out.stall_at / 2 + 2 * KIB);
        out.close_with(CloseReason::ServerShutdown);
        writer.await.expect("writer");
        reader.await.expect("reader");
    }

    #[tokio::test]
    async fn a_queue_past_max_pending_is_a_slow_consumer_and_frees_waiters() {
        let out = Outbound::new(64 * KIB);
        let outcome = std::iter::repeat_with(|| push_kib(&out))
            .find(|p| !matches!(p, Pushed::Queued | Pushed::Pressure));
        assert_eq!(outcome, Some(Pushed::SlowConsumer));
        assert_eq!(out.reason(), CloseReason::SlowConsumerPendingBytes);
        assert_eq!(push_kib(&out), Pushed::Closed);
        tokio::time::timeout(Duration::from_secs(1), out.drained())
            .await
            .expect("a closed queue never stalls a publisher");
    }
}
