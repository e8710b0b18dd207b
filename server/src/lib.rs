//! rill-server: a NATS-compatible event bus with JetStream-style persistence.
//!
//! [`run`] starts a server from a [`config::Config`] and serves until a signal
//! (or the given shutdown future) stops it. The layers, bottom up (each imports only
//! the ones below it; `ARCHITECTURE.md` at the repository root draws them):
//!
//! ```text
//! shared, locks, stats, config, logging, tls, files   leaves: constants, settings
//! router                                              per-account subject routing
//! account, auth                                       the account table, who may connect
//! client::{link, registry}, server                    what other tasks reach; ServerState
//! client, jetstream, monitoring, system               connection tasks and services
//! listener, lifecycle, reload, signals                accept loops, start/stop, SIGHUP
//! ```

pub mod account;
pub mod auth;
pub mod bind;
pub mod client;
pub mod config;
mod fault;
mod files;
pub mod jetstream;
pub mod leaf;
pub mod lifecycle;
mod link;
pub mod listener;
pub mod locks;
pub mod logging;
pub mod monitoring;
pub mod mqtt;
pub mod raft;
pub mod reload;
pub mod route;
pub mod router;
pub mod server;
pub mod shared;
mod signals;
pub mod stats;
pub mod system;
pub mod tls;
pub mod trace;
pub mod websocket;

pub use lifecycle::{Server, StartError, Stop};
pub use reload::Reload;
pub use shared::BoxFuture;
pub use signals::run;
