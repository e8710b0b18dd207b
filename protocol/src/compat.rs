//! The one place that says which nats-server release rill stands in for: the version
//! INFO, `/varz` and JetStream metadata report, and the JetStream API level that goes
//! with it. rill's own version (`CARGO_PKG_VERSION`) is reported beside them, never
//! instead of them.
//!
//! Clients decide what to use from these two numbers: nats.js refuses its consumers API
//! below 2.9.4, KV below 2.6.2, stream `metadata` below 2.10.0, and sends batch direct
//! gets and priority-group pulls from 2.11.0 on; nats.py takes the named consumer-create
//! subject from 2.9 on; `Nats-Required-Api-Level` asks for an API level. A number that is
//! too low hides features rill has; a number that is too high makes clients use features
//! rill lacks and wait for answers that never come.
//!
//! # The rule for raising them
//! Raise [`NATS_VERSION`] to `2.Y.0` only when rill implements every feature that release
//! added which clients switch on by version or API level, and set [`API_LEVEL`] to the
//! level that release reports (the table in [`level_of`]). Until then a feature of a later
//! release may already work, but a request that needs it must be refused at once (a
//! stream config, a consumer config, a pull request field), never accepted and ignored.
//!
//! | release | API level | what it added that clients gate on | in rill |
//! |---|---|---|---|
//! | 2.10 | 0 | consumer `filter_subjects`, stream/consumer `metadata`, `first_seq`, compression, subject transforms, default consumer limits | yes |
//! | 2.11 | 1 | per-message TTL, subject delete markers, consumer pause, priority groups (overflow, pinned client, `UNPIN`), batch direct get, message tracing, `Nats-Required-Api-Level` | yes |
//! | 2.12 | 2 | counters, atomic batch publish, message schedules, `prioritized` priority policy, async persist mode, mirror removal (a mirror becomes a normal stream) | yes (async persist is accepted and stored as synchronously as the default) |
//! | 2.14 | 4 | consumer reset, fast batch publish, ack flow control | consumer reset and fast batch publish (`allow_batched`); the release is not claimed until the rest is checked against 2.14 |
//!
//! So rill reports 2.12.0 and API level 2. The clients' own gates were checked: nats.js
//! switches on batch direct gets and priority groups at 2.11.0 and consumer reset at
//! 2.14.0 (its `publish tracing` test at 2.11); nats.py skips TTL, pause and marker tests
//! below 2.11 and schedules, atomic batch, mirror removal and `persist_mode` below 2.12.

/// The nats-server release whose behaviour rill implements (INFO `version`, `/varz`
/// `version`, `_nats.ver` metadata). See the module doc before changing it.
pub const NATS_VERSION: &str = "2.12.0";

/// The JetStream API level of [`NATS_VERSION`] (INFO `api_lvl`, `$JS.API.INFO`
/// `api.level`, `_nats.level` metadata). See the module doc before changing it.
pub const API_LEVEL: u32 = 2;

/// The API level as INFO's `api_lvl` carries it: absent at level 0, as from a 2.10 server.
pub const fn info_api_level() -> Option<u32> {
    match API_LEVEL {
        0 => None,
        level => Some(level),
    }
}

/// True when a request asking for API `level` (`Nats-Required-Api-Level`) can be served.
pub fn serves_level(level: u32) -> bool {
    level.cmp(&API_LEVEL).is_le()
}

/// The JetStream API level nats-server reports for release `2.<minor>` (0 before 2.11).
pub const fn level_of(minor: u32) -> u32 {
    match minor {
        0..=10 => 0,
        11 => 1,
        12 | 13 => 2,
        14 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_level_is_the_one_of_the_reported_release() {
        let mut parts = NATS_VERSION.split('.').map(|p| p.parse::<u32>());
        let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(_patch)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("{NATS_VERSION} is not major.minor.patch");
        };
        assert_eq!(major, 2);
        assert_eq!(API_LEVEL, level_of(minor));
    }
}
