//! rill-server: a NATS-compatible event bus with JetStream-style persistence.

pub mod config;
pub mod jetstream;
