//! rill-protocol: a sans-IO codec for the NATS client protocol and the JetStream API types.
//!
//! Nothing here touches a socket, a clock or a runtime: callers feed bytes in and take
//! bytes out. The server, the raw-socket tests and benchmarks all share these types.

pub mod jsapi;
pub mod subject;
