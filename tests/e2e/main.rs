//! End-to-end tests: one binary that starts the real servers and talks to them with real clients.

mod auth;
mod cli;
mod core_protocol;
mod core_pubsub;
mod examples_iot;
mod tls;
