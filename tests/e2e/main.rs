//! End-to-end tests: one binary that starts the real servers and talks to them with real clients.

mod auth;
mod bench;
mod cli;
mod compat;
mod core_protocol;
mod core_pubsub;
mod drop_in;
mod durability;
mod examples_iot;
mod js_accounts;
mod js_consumers;
mod js_consumers_bench;
mod js_consumers_examples;
mod js_consumers_nats_py;
mod js_consumers_push;
mod js_dedupe;
mod js_direct;
mod js_exactly_once;
mod js_limits;
mod js_nats_py;
mod js_streams;
mod kv;
mod monitoring;
mod object_store;
mod reload_auth;
mod tls;
