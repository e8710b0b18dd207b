//! A WebSocket connection as the two byte streams the client code reads and writes.
//!
//! The NATS protocol rides in the payloads of data frames: [`WsReader`] hands out the
//! payload bytes of each binary (or text) message in order, so the decoder sees one
//! continuous stream however the client split it into frames; [`WsWriter`] gathers
//! what the outbound writer writes in one pass and sends it as one binary message on
//! flush (one compressed message per pass when permessage-deflate is on, which is
//! where compression pays). Ping, pong and fragment reassembly are handled by yawc
//! underneath; a close frame or a broken frame reads as end of stream. When the
//! connection closes, the writer sends a close frame whose code and text say why, as
//! nats-server does (`1008 Authentication Failure`, `1001 Server Shutdown`, …).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use yawc::close::CloseCode;
use yawc::{Frame, OpCode, WebSocket};

use crate::client::{ClientWriter, CloseReason};

/// The largest message the writer builds before sending what it has: big enough that a
/// burst compresses well, small enough to bound the copy.
const MAX_MESSAGE: usize = 1024 * 1024;

/// The read side: payload bytes of the client's data messages.
pub(crate) struct WsReader<S> {
    frames: SplitStream<WebSocket<S>>,
    pending: Bytes,
}

impl<S> WsReader<S> {
    pub(crate) fn new(frames: SplitStream<WebSocket<S>>) -> Self {
        Self {
            frames,
            pending: Bytes::new(),
        }
    }
}

impl<S> AsyncRead for WsReader<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            let Some(frame) = ready!(self.frames.poll_next_unpin(cx)) else {
                return Poll::Ready(Ok(()));
            };
            match frame.opcode() {
                OpCode::Binary | OpCode::Text => self.pending = frame.into_payload(),
                OpCode::Close => return Poll::Ready(Ok(())),
                _ => {}
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The write side: each flush sends what was written since as one binary message.
pub(crate) struct WsWriter<S> {
    sink: SplitSink<WebSocket<S>, Frame>,
    buf: BytesMut,
    close: Option<Frame>,
}

impl<S> WsWriter<S> {
    pub(crate) fn new(sink: SplitSink<WebSocket<S>, Frame>) -> Self {
        Self {
            sink,
            buf: BytesMut::new(),
            close: None,
        }
    }
}

impl<S> WsWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Hands the gathered bytes to the WebSocket as one message.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.sink.poll_ready_unpin(cx)).map_err(io::Error::other)?;
        let message = Frame::binary(self.buf.split().freeze());
        self.sink
            .start_send_unpin(message)
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(()))
    }
}

impl<S> AsyncWrite for WsWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.buf.len() >= MAX_MESSAGE {
            ready!(self.poll_send(cx))?;
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.buf.len() >= MAX_MESSAGE {
            ready!(self.poll_send(cx))?;
        }
        let mut n = 0;
        for b in bufs {
            self.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        self.sink.poll_flush_unpin(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        if let Some(close) = self.close.take() {
            ready!(self.sink.poll_ready_unpin(cx)).map_err(io::Error::other)?;
            self.sink
                .start_send_unpin(close)
                .map_err(io::Error::other)?;
        }
        self.sink.poll_close_unpin(cx).map_err(io::Error::other)
    }
}

impl<S> ClientWriter for WsWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn closing(&mut self, reason: CloseReason) {
        self.close = Some(Frame::close(close_code(reason), reason.as_str()));
    }
}

/// The close code nats-server sends for each reason.
fn close_code(reason: CloseReason) -> CloseCode {
    match reason {
        CloseReason::ClientClosed | CloseReason::Open => CloseCode::Normal,
        CloseReason::AuthenticationViolation
        | CloseReason::AuthenticationExpired
        | CloseReason::Revocation
        | CloseReason::MaxAccountConnectionsExceeded
        | CloseReason::SlowConsumerPendingBytes
        | CloseReason::SlowConsumerWriteDeadline => CloseCode::Policy,
        CloseReason::ProtocolViolation => CloseCode::Protocol,
        CloseReason::MaxPayloadExceeded => CloseCode::Size,
        CloseReason::WriteError
        | CloseReason::ReadError
        | CloseReason::StaleConnection
        | CloseReason::ServerShutdown
        | CloseReason::DuplicateRoute
        | CloseReason::ClusterNameConflict
        | CloseReason::Kicked => CloseCode::Away,
    }
}
