//! Message tracing (nats-server 2.11, ADR-41): a message published with
//! `Nats-Trace-Dest: <subject>` (or a sampled W3C `traceparent` in an account with
//! `msg_trace { dest, sampling }`) makes every server it passes publish one JSON report
//! to that subject, listing what happened to it there: how it came in (`in`, with the
//! error when its publish was refused), subject mappings (`sm`), stream exports (`se`)
//! and service imports (`si`) into other accounts, the stream that took it (`js`), and
//! where it went out (`eg`: each client subscription, each route or leaf link, with the
//! `Nats-Trace-Hop` the next server receives it as). With `Nats-Trace-Only` it is
//! reported along the whole path and delivered nowhere (not stored either).
//!
//! - [`record`]: the record of one message on this server and its report JSON (a leaf
//!   of the crate: the router carries it, [`crate::router::Msg::trace`]).
//! - [`start`]: starting a record where a message enters, and sending the report.
//!
//! The hooks that add events are small and named after what they record: the client's
//! publish (`in`, `sm`) and delivery (`eg`), the account imports (`se`, `si`; a trace
//! crosses into another account only where the export, for services, or the import, for
//! streams, says `allow_trace`), the stream's ingest (`js`, reported when the stream is
//! done with the message) and the links' forwarding (`eg` with the hop). A record is
//! reported when the last of them lets go of it.

pub mod record;
pub mod start;
