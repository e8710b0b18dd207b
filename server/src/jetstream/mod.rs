//! JetStream: streams, consumers and their storage.

pub mod consumer;
pub mod store;
pub mod validate;
