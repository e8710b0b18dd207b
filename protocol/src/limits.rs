//! Limits the caller imposes on the decoder.

/// Decoder limits, set by the server from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Longest control line accepted, line ending excluded (nats-server: 4096).
    pub max_control_line: usize,
    /// Largest PUB/HPUB payload, headers included (nats-server: 1 MiB).
    pub max_payload: usize,
}

impl DecoderLimits {
    /// nats-server's default control line limit.
    pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
    /// nats-server's default payload limit.
    pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self {
            max_control_line: Self::DEFAULT_MAX_CONTROL_LINE,
            max_payload: Self::DEFAULT_MAX_PAYLOAD,
        }
    }
}
