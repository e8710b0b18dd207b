//! rill-protocol: sans-IO codec for the NATS client protocol.
