//! Reading a link's handshake (the ops before it runs: `INFO`, `CONNECT`) with a
//! deadline, and refusing a connection that fails it. The bytes read and the decoder
//! go on to the read loop, since the other side may send interest right behind its
//! handshake.

use bytes::{Bytes, BytesMut};
use rill_protocol::{DecoderLimits, ProtocolError, RouteDecoder, RouteOp, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{error, info};

use crate::client::CloseReason;
use crate::server::ServerState;

/// Read buffer size at the start of a link.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Longest control line on a link (long subjects and many queue names).
const LINK_CONTROL_LINE: usize = 64 * 1024;

/// Why a handshake ended without a link.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// The other side said nothing in time.
    #[error("timeout waiting for the handshake")]
    Timeout,
    /// The other side closed the connection.
    #[error("connection closed during the handshake")]
    Closed,
    /// A socket error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Bytes that are not the protocol.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// The other side refused us (`-ERR`).
    #[error("-ERR '{0}'")]
    Refused(String),
    /// A well-formed op out of place, or bad JSON.
    #[error("{0}")]
    Unexpected(String),
}

/// Why an accepted connection was refused: the close reason and the `-ERR` text to
/// send (none for a silent close).
pub(crate) type Refusal = (CloseReason, Option<String>);

/// The bytes read while handshaking and the decoder.
#[derive(Debug)]
pub(crate) struct Handshake {
    pub(crate) buf: BytesMut,
    pub(crate) decoder: RouteDecoder,
}

impl Handshake {
    /// A handshake decoding with `decoder`.
    pub(crate) fn new(decoder: RouteDecoder) -> Self {
        Self {
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder,
        }
    }

    /// The decoder limits of a link on `state`'s server: payloads up to `max_pending`
    /// (the other side's `max_payload` may be larger than ours).
    pub(crate) fn limits(state: &ServerState) -> DecoderLimits {
        let config = state.config();
        DecoderLimits {
            max_control_line: config.max_control_line.max(LINK_CONTROL_LINE),
            max_payload: config.max_pending.max(config.max_payload),
        }
    }

    /// The next op, read until `deadline`.
    pub(crate) async fn next<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<RouteOp, HandshakeError> {
        loop {
            if let Some(op) = self.decoder.decode(&mut self.buf)? {
                return Ok(op);
            }
            let read = tokio::time::timeout_at(deadline, reader.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => return Err(HandshakeError::Timeout),
                Ok(Ok(0)) => return Err(HandshakeError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// The next op other than PING/PONG/+OK.
    async fn next_op<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<RouteOp, HandshakeError> {
        loop {
            match self.next(reader, deadline).await? {
                RouteOp::Ping | RouteOp::Pong | RouteOp::Ok => {}
                op => return Ok(op),
            }
        }
    }

    /// The next op, which must be an INFO (PINGs before it are skipped).
    pub(crate) async fn info<T, R>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<T, HandshakeError>
    where
        T: serde::de::DeserializeOwned,
        R: AsyncRead + Unpin,
    {
        match self.next_op(reader, deadline).await? {
            RouteOp::Info(json) => parse_json(&json),
            RouteOp::Err(text) => Err(HandshakeError::Refused(text)),
            other => Err(HandshakeError::Unexpected(format!("{other:?} before INFO"))),
        }
    }

    /// The next op, which must be a CONNECT: anything else is refused with
    /// `Authorization Violation`, silence with `Authentication Timeout`.
    pub(crate) async fn connect<T, R>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<T, Refusal>
    where
        T: serde::de::DeserializeOwned,
        R: AsyncRead + Unpin,
    {
        match self.next_op(reader, deadline).await {
            Ok(RouteOp::Connect(json)) => {
                parse_json(&json).map_err(|_| (CloseReason::ProtocolViolation, None))
            }
            Ok(_) => Err((
                CloseReason::ProtocolViolation,
                Some("Authorization Violation".into()),
            )),
            Err(HandshakeError::Timeout) => Err((
                CloseReason::AuthenticationViolation,
                Some("Authentication Timeout".into()),
            )),
            Err(HandshakeError::Protocol(_)) => Err((CloseReason::ProtocolViolation, None)),
            Err(_) => Err((CloseReason::ClientClosed, None)),
        }
    }
}

/// Parses a JSON op body.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    json: &Bytes,
) -> Result<T, HandshakeError> {
    serde_json::from_slice(json).map_err(|e| HandshakeError::Unexpected(e.to_string()))
}

/// Refuses an accepted connection: sends the `-ERR` (if any), logs it and the close
/// (`kind`: "Router", "Leafnode", as nats-server's "<kind> connection closed").
pub(crate) async fn refuse<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    prefix: &str,
    kind: &str,
    refusal: Refusal,
) {
    refuse_logged(writer, prefix, kind, refusal, None).await;
}

/// [`refuse`], logging `log` instead of the error sent when it is given.
pub(crate) async fn refuse_logged<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    prefix: &str,
    kind: &str,
    (reason, text): Refusal,
    log: Option<&str>,
) {
    if let Some(text) = text {
        let mut buf = BytesMut::new();
        encode::err(&mut buf, &text);
        let _ = writer.write_all(&buf).await;
        let _ = writer.flush().await;
        error!("{prefix} - {}", log.unwrap_or(&text));
    }
    info!("{prefix} - {kind} connection closed: {}", reason.as_str());
}
