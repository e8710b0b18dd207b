//! rill-protocol: a sans-IO codec for the NATS client protocol and the JetStream API types.
//!
//! Nothing here touches a socket, a clock or a runtime: callers feed bytes in and take
//! bytes out. The server, the raw-socket tests, the CLI and benchmarks share these types.
//!
//! # Grammar (client → server)
//! ```text
//! CONNECT <json>\r\n
//! PUB <subject> [reply] <#bytes>\r\n<payload>\r\n
//! HPUB <subject> [reply] <#hdr> <#total>\r\nNATS/1.0\r\nK: V\r\n\r\n<payload>\r\n
//! SUB <subject> [queue] <sid>\r\n
//! UNSUB <sid> [max]\r\n
//! PING\r\n | PONG\r\n
//! ```
//! and server → client: `INFO <json>`, `MSG <subject> <sid> [reply] <#bytes>`,
//! `HMSG <subject> <sid> [reply] <#hdr> <#total>`, `+OK`, `-ERR '<text>'`, `PING`, `PONG`.
//! Op names are case-insensitive; fields are separated by runs of spaces or tabs.

pub mod compat;
pub mod connect;
pub mod decode;
pub mod encode;
pub mod error;
pub mod headers;
pub mod info;
pub mod jsapi;
pub mod leaf_info;
pub mod limits;
pub mod mapping;
pub mod op;
pub mod route;
pub mod route_info;
pub mod subject;

pub use connect::Connect;
pub use decode::{ClientDecoder, ServerDecoder};
pub use error::ProtocolError;
pub use headers::HeaderMap;
pub use info::Info;
pub use leaf_info::{LeafConnect, LeafInfo};
pub use limits::DecoderLimits;
pub use op::{ClientOp, Publish, ServerOp};
pub use route::{RouteDecoder, RouteMsg, RouteOp, RouteSub};
pub use route_info::{RouteConnect, RouteInfo};
