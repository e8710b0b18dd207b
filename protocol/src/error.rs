//! Protocol errors and the exact `-ERR` texts nats-server sends.
//!
//! Every error a client can cause is a variant of [`ProtocolError`]. Exactly one
//! function, [`ProtocolError::err_text`], chooses the text of the `-ERR '<text>'`
//! line, and [`ProtocolError::closes_connection`] says whether the server must close
//! the connection afterwards. The texts and the close/keep choice were checked
//! against nats-server 2.15.1; several are lower-case Go error strings.

/// An error caused by what a client sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An op name the server does not know, an op with missing arguments, or a
    /// payload not followed by CRLF. `-ERR 'Unknown Protocol Operation'`, close.
    #[error("Unknown Protocol Operation")]
    UnknownOp,
    /// The control line is longer than `max_control_line`. Close.
    #[error("maximum control line exceeded")]
    MaxControlLine,
    /// A PUB/HPUB payload larger than `max_payload`. Close.
    #[error("Maximum Payload Violation")]
    MaxPayload,
    /// Malformed op arguments (bad size, too many fields, header size larger
    /// than total). nats-server logs these and closes without an `-ERR` line.
    #[error("{op} parse error: {detail}")]
    BadArgs {
        /// The op whose arguments were bad.
        op: &'static str,
        /// What was wrong, for the log.
        detail: &'static str,
    },
    /// The CONNECT JSON did not parse. Logged, closed without `-ERR`.
    #[error("invalid CONNECT: {0}")]
    BadConnect(String),
    /// The client sent `-ERR`. Logged, closed without `-ERR`.
    #[error("Client Error {0}")]
    ClientErr(String),
    /// HPUB from a client that did not CONNECT with `headers: true`. Closed without `-ERR`.
    #[error("message headers not supported")]
    HeadersNotSupported,
    /// CONNECT with a `protocol` above 1. Close.
    #[error("invalid client protocol")]
    InvalidClientProtocol,
    /// CONNECT with `no_responders` but without `headers`. Close.
    #[error("no responders requires headers support")]
    NoRespondersRequiresHeaders,
    /// A subscription subject that is not a valid filter. Keep.
    #[error("Invalid Subject")]
    InvalidSubject,
    /// A publish subject that is not a valid literal subject. Keep.
    #[error("Invalid Publish Subject")]
    InvalidPublishSubject,
    /// The client has `max_subscriptions` subscriptions already. Keep.
    #[error("maximum subscriptions exceeded")]
    MaxSubscriptions,
    /// The server has `max_connections` clients already. Close.
    #[error("maximum connections exceeded")]
    MaxConnections,
    /// Bad or missing credentials. Close.
    #[error("Authorization Violation")]
    AuthorizationViolation,
    /// No CONNECT within the authentication timeout. Close.
    #[error("Authentication Timeout")]
    AuthenticationTimeout,
    /// A plain-text client on a port that requires TLS. Close.
    #[error("Secure Connection - TLS Required")]
    TlsRequired,
    /// Too many unanswered server PINGs. Close.
    #[error("Stale Connection")]
    StaleConnection,
    /// Publish not allowed by the user's permissions. Keep.
    #[error("Permissions Violation for Publish to \"{0}\"")]
    PublishViolation(String),
    /// Subscribe not allowed by the user's permissions. Keep.
    #[error("Permissions Violation for Subscription to \"{subject}\"{}", queue_suffix(.queue))]
    SubscribeViolation {
        /// The subject of the refused subscription.
        subject: String,
        /// Its queue group, when it had one.
        queue: Option<String>,
    },
}

fn queue_suffix(queue: &Option<String>) -> String {
    match queue {
        Some(q) => format!(" using queue \"{q}\""),
        None => String::new(),
    }
}

impl ProtocolError {
    /// The text nats-server puts inside `-ERR '…'`, or `None` when it closes without a word.
    pub fn err_text(&self) -> Option<String> {
        match self {
            Self::BadArgs { .. }
            | Self::BadConnect(_)
            | Self::ClientErr(_)
            | Self::HeadersNotSupported => None,
            other => Some(other.to_string()),
        }
    }

    /// Whether the server closes the connection after this error.
    pub fn closes_connection(&self) -> bool {
        !matches!(
            self,
            Self::InvalidSubject
                | Self::InvalidPublishSubject
                | Self::MaxSubscriptions
                | Self::PublishViolation(_)
                | Self::SubscribeViolation { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_close_policy() {
        let all = [
            ProtocolError::UnknownOp,
            ProtocolError::MaxControlLine,
            ProtocolError::MaxPayload,
            ProtocolError::BadArgs {
                op: "PUB",
                detail: "bad size",
            },
            ProtocolError::BadConnect("eof".into()),
            ProtocolError::ClientErr("'x'".into()),
            ProtocolError::HeadersNotSupported,
            ProtocolError::InvalidClientProtocol,
            ProtocolError::NoRespondersRequiresHeaders,
            ProtocolError::InvalidSubject,
            ProtocolError::InvalidPublishSubject,
            ProtocolError::MaxSubscriptions,
            ProtocolError::MaxConnections,
            ProtocolError::AuthorizationViolation,
            ProtocolError::AuthenticationTimeout,
            ProtocolError::TlsRequired,
            ProtocolError::StaleConnection,
            ProtocolError::PublishViolation("foo".into()),
            ProtocolError::SubscribeViolation {
                subject: "foo".into(),
                queue: None,
            },
            ProtocolError::SubscribeViolation {
                subject: "foo".into(),
                queue: Some("q".into()),
            },
        ];
        let table: Vec<String> = all
            .iter()
            .map(|e| {
                let text = e
                    .err_text()
                    .map_or_else(|| "(silent)".to_string(), |t| format!("-ERR '{t}'"));
                let action = if e.closes_connection() {
                    "close"
                } else {
                    "keep"
                };
                format!("{text} -> {action}")
            })
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }
}
