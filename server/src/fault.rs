//! Fault injection for end-to-end tests, compiled into debug builds only.
//!
//! Some failure paths cannot be reached from outside on a healthy machine (a handler
//! that panics, a disk that refuses a rename while the test runs as root). Tests start
//! the debug `rill-server` with `RILL_FAULTS` naming the faults to inject, as
//! `point=key` pairs separated by commas:
//!
//! | point | key | effect |
//! |---|---|---|
//! | `api.panic` | a `$JS.API` subject | that request's handler panics |
//! | `stream.panic` | a stream name | that stream's `STREAM.INFO` panics on the stream's own task |
//! | `stream.delete` | a stream name | moving the stream's files into the trash fails |
//! | `consumer.delete` | a consumer name | moving the consumer's files into the trash fails |
//! | `stream.queue` | a stream name | that stream's ingest queue holds 4 commands (it overflows) |
//! | `stream.sync` | a stream name | every sync of that stream's store fails |
//!
//! In release builds every check is a constant `false` and the variable is never read.

#[cfg(debug_assertions)]
use std::sync::OnceLock;

/// Parsed `RILL_FAULTS` (debug builds).
#[cfg(debug_assertions)]
fn faults() -> &'static [(String, String)] {
    static FAULTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FAULTS.get_or_init(|| {
        std::env::var("RILL_FAULTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(p, k)| (p.trim().to_owned(), k.trim().to_owned()))
            .collect()
    })
}

/// True when the test asked for a fault at `point` for `key`.
#[cfg(debug_assertions)]
pub(crate) fn armed(point: &str, key: &str) -> bool {
    faults().iter().any(|(p, k)| p == point && k == key)
}

/// True when the test asked for a fault at `point` for `key` (never in release builds).
#[cfg(not(debug_assertions))]
pub(crate) fn armed(_point: &str, _key: &str) -> bool {
    false
}

/// Panics when a panic was asked for at `point` for `key`.
pub(crate) fn panic_if_armed(point: &str, key: &str) {
    if armed(point, key) {
        panic!("injected fault {point}={key}");
    }
}

/// An I/O error when one was asked for at `point` for `key`.
///
/// # Errors
/// The injected error.
pub(crate) fn io_if_armed(point: &str, key: &str) -> std::io::Result<()> {
    if armed(point, key) {
        return Err(std::io::Error::other(format!("injected fault {point}")));
    }
    Ok(())
}
