//! JetStream: streams, consumers and their storage.

pub mod store;
pub mod validate;
