//! Client compatibility (issue 14): what clients read to decide what a server can do, and
//! the edge cases real client test suites hit. Each check runs against rill and the
//! reference nats-server side by side where both apply.
//!
//! - `version`: the nats-server version and JetStream API level in INFO, `/varz` and
//!   `$JS.API.INFO`, the ports file named after the invoked program, config parse errors
//!   worded as nats-server words them.
//! - `api`: known `$JS.API` requests rill does not serve, refused at once.
//! - `domain`: the JetStream API under `$JS.<domain>.API.>`.
//! - `pull`: pull requests nats-server refuses at once, `no_wait` with `expires`.
//! - `limits`: an account's per-stream byte limits on stream create and update.
//! - `resub`: `/connz?cid=N&subs=detail` after a subscription is replaced.
//! - `tls_available`: `allow_non_tls`, clients with and without TLS on one port.
//! - `stored`: a message published to a wildcard subject is stored (KV purge markers).
//! - `trace`: message tracing (`Nats-Trace-Dest`), one server and a route, as nats-server.
//! - `request_info`: `Nats-Request-Info` on requests crossing a service import.
//! - `stop`: servers with routes or leaf nodes exit at once on SIGTERM.

mod api;
mod domain;
mod limits;
mod pull;
mod request_info;
mod resub;
mod stop;
mod stored;
mod tls_available;
mod trace;
mod version;

use rill_tests::ServerKind;

/// Both servers, rill first.
pub(crate) const BOTH: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];
