//! Schedule patterns (`Nats-Schedule`, ADR-51) and when they fire next.
//!
//! As nats-server 2.15 accepts them:
//! - `@at <RFC 3339 time>` (any offset, fractions allowed): once, at that instant;
//! - `@every <Go duration>` of at least one second: the first time the interval after
//!   the schedule was stored, then the interval after each firing, cut to whole
//!   seconds;
//! - six cron fields (`sec min hour day-of-month month day-of-week`, numbers, `*`,
//!   ranges, lists, steps, `?`, three-letter month and day names, day of week 0–6 with
//!   0 for Sunday; day of month and day of week both restricted means either) and the
//!   predefined `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//!   `@hourly`; a pattern that never matches (`0 0 0 30 2 *`) is invalid;
//! - `Nats-Schedule-Time-Zone` (an IANA name, `UTC` or `Local`) only with cron
//!   patterns; the firing's `Nats-Schedule-Next` is then written in that zone.
//!
//! Cron matching is the `croner` crate's, zones come from `chrono-tz`.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::super::ttl;

const SECOND: i64 = 1_000_000_000;

/// Why a pattern was refused (nats-server's `10189` and `10223`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecError {
    Pattern,
    TimeZone,
}

/// A parsed `Nats-Schedule` value.
#[derive(Debug, Clone)]
pub(crate) enum Spec {
    /// Once, at this instant (ns since the epoch).
    At(i64),
    /// Every this many nanoseconds.
    Every(i64),
    /// A cron pattern evaluated in a zone.
    Cron(Box<Cron>, Tz),
}

/// Parses a schedule and its optional time zone header.
///
/// # Errors
/// [`SpecError::TimeZone`] for a zone that is empty or unknown, [`SpecError::Pattern`]
/// for anything else nats-server refuses (see the module doc).
pub(crate) fn parse(pattern: &str, zone: Option<&str>) -> Result<Spec, SpecError> {
    let zone = zone.map(parse_zone).transpose()?;
    let pattern = pattern.trim();
    if let Some(at) = pattern.strip_prefix("@at ") {
        let t = DateTime::parse_from_rfc3339(at.trim()).map_err(|_| SpecError::Pattern)?;
        let ns = t.timestamp_nanos_opt().ok_or(SpecError::Pattern)?;
        return match zone {
            Some(_) => Err(SpecError::Pattern),
            None => Ok(Spec::At(ns)),
        };
    }
    if let Some(every) = pattern.strip_prefix("@every ") {
        let ns = ttl::parse(every).ok().flatten().ok_or(SpecError::Pattern)?;
        return match zone {
            Some(_) => Err(SpecError::Pattern),
            None => Ok(Spec::Every(ns)),
        };
    }
    let fields = predefined(pattern).unwrap_or(pattern);
    let cron = parse_cron(fields).ok_or(SpecError::Pattern)?;
    let spec = Spec::Cron(Box::new(cron), zone.unwrap_or(Tz::UTC));
    // A pattern that never matches (February 30th) is refused at once.
    spec.next(crate::jetstream::store::now_ns())
        .map(|_| spec)
        .ok_or(SpecError::Pattern)
}

fn parse_zone(name: &str) -> Result<Tz, SpecError> {
    let name = match name {
        "" => return Err(SpecError::TimeZone),
        "Local" => return Ok(local_zone()),
        other => other,
    };
    Tz::from_str(name).map_err(|_| SpecError::TimeZone)
}

/// The server's own zone (`TZ`), UTC when it names none this build knows.
fn local_zone() -> Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|z| Tz::from_str(z.trim_start_matches(':')).ok())
        .unwrap_or(Tz::UTC)
}

fn predefined(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return None,
    })
}

/// Six plain cron fields; croner's extensions (`L`, `W`, `#`, a year field, day of
/// week 7) are refused as nats-server refuses them.
fn parse_cron(fields: &str) -> Option<Cron> {
    let parts: Vec<&str> = fields.split_whitespace().collect();
    if parts.len() != 6 || !parts.iter().all(|f| plain_field(f)) {
        return None;
    }
    if parts[5].split([',', '-', '/']).any(|v| v == "7") {
        return None;
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build()
        .parse(&parts.join(" "))
        .ok()
}

/// `*`, `?`, numbers and three-letter names, joined by `,`, `-` and `/`.
fn plain_field(field: &str) -> bool {
    field.split([',', '-', '/']).all(|item| {
        item == "*"
            || item == "?"
            || (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()))
            || (item.len() == 3 && item.bytes().all(|b| b.is_ascii_alphabetic()))
    })
}

impl Spec {
    /// When the schedule fires first after `after` (ns since the epoch): an `@at`
    /// always at its instant (at once when that has passed); `None` when a cron
    /// pattern has no further match.
    pub(crate) fn next(&self, after: i64) -> Option<i64> {
        match self {
            Self::At(at) => Some(*at),
            Self::Every(every) => {
                let t = after.saturating_add(*every);
                Some(t - t.rem_euclid(SECOND))
            }
            Self::Cron(cron, zone) => {
                let start = zone.timestamp_nanos(after);
                let next = cron.find_next_occurrence(&start, false).ok()?;
                next.timestamp_nanos_opt()
            }
        }
    }

    /// True for a one-shot `@at`.
    pub(crate) fn once(&self) -> bool {
        matches!(self, Self::At(_))
    }

    /// `Nats-Schedule-Next` for a firing whose successor is due at `next`: UTC, or the
    /// cron pattern's zone, to the second.
    pub(crate) fn format_next(&self, next: i64) -> String {
        match self {
            Self::Cron(_, zone) => zone
                .timestamp_nanos(next)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            _ => Utc
                .timestamp_nanos(next)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

/// Reads a `Nats-Schedule-Next` time back (ns since the epoch).
pub(crate) fn parse_next(value: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(value)
        .ok()?
        .timestamp_nanos_opt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(rfc3339: &str) -> i64 {
        parse_next(rfc3339).expect("time")
    }

    #[test]
    fn refuses_what_nats_server_refuses() {
        for bad in [
            "bad",
            "@every 500ms",
            "@every xx",
            "@at nope",
            "@at 2030-01-01 00:00:00",
            "* * * *",
            "61 * * * * *",
            "0 0 0 * * 7",
            "0 0 0 L * *",
            "0 0 0 1 1 0#2",
            "0 0 0 * * * 2030",
            "0 0 0 30 2 *",
            "@bogus",
        ] {
            assert_eq!(parse(bad, None).err(), Some(SpecError::Pattern), "{bad}");
        }
        assert_eq!(
            parse("@every 5s", Some("Europe/Berlin")).err(),
            Some(SpecError::Pattern)
        );
        assert_eq!(
            parse("0 * * * * *", Some("Mars/Base")).err(),
            Some(SpecError::TimeZone)
        );
        assert_eq!(
            parse("@every 5s", Some("")).err(),
            Some(SpecError::TimeZone)
        );
    }

    #[test]
    fn accepts_what_nats_server_accepts() {
        for good in [
            "@every 1s",
            "@every 1h30m",
            "@at 2030-01-01T00:00:00+02:00",
            "@at 2030-01-01T00:00:00.5Z",
            "0 0 0 ? * *",
            "0 0 0 * JAN-MAR WED",
            "*/15 0-30/5 * * * *",
            "0 0 9 * * mon-fri",
            "@hourly",
        ] {
            assert!(parse(good, None).is_ok(), "{good}");
        }
        assert!(parse("@midnight", Some("UTC")).is_ok());
        assert!(parse("@annually", Some("Local")).is_ok());
    }

    #[test]
    fn every_fires_on_whole_seconds_after_the_interval() {
        let every = parse("@every 3s", None).expect("spec");
        let stored = ns("2026-12-05T01:27:07Z") + 175_000_000;
        let first = every.next(stored).expect("next");
        assert_eq!(first, ns("2026-12-05T01:27:10Z"));
        assert_eq!(every.format_next(first), "2026-12-05T01:27:10Z");
    }

    #[test]
    fn cron_runs_in_its_zone() {
        let cron = parse("0 0 9 * * *", Some("America/New_York")).expect("spec");
        let next = cron.next(ns("2026-12-05T01:00:00Z")).expect("next");
        assert_eq!(next, ns("2026-12-05T14:00:00Z"));
        assert_eq!(cron.format_next(next), "2026-12-05T09:00:00-05:00");
        let utc = parse("* * * * * *", None).expect("spec");
        let t = ns("2026-12-05T01:26:46Z");
        assert_eq!(utc.next(t), Some(t + SECOND));
    }

    #[test]
    fn at_fires_at_its_instant_once() {
        let at = parse("@at 2030-01-01T02:00:00+02:00", None).expect("spec");
        assert!(at.once());
        assert_eq!(at.next(0), Some(ns("2030-01-01T00:00:00Z")));
    }
}
