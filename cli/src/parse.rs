//! Parsers for command-line values: Go-style durations (`1h30m`, `500ms`), sizes (`1MB`, `64KiB`),
//! `key:value` headers and RFC 3339 times.
//!
//! Everything here is pure and unit-tested; clap uses these as `value_parser`s.

use std::time::Duration;

use anyhow::{Context, bail};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses a Go-style duration: one or more `<number><unit>` parts, units `ns us µs ms s m h d`
/// (`d` = 24h, as natscli accepts). A bare number means seconds.
pub(crate) fn duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if text.is_empty() {
        bail!("empty duration");
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).with_context(|| format!("bad duration {text:?}"));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .with_context(|| format!("duration {text:?} lacks a unit (use e.g. 5s, 1m, 2h)"))?;
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let value: f64 = num
            .parse()
            .with_context(|| format!("bad number in duration {text:?}"))?;
        total += value * unit_seconds(unit, text)?;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).with_context(|| format!("bad duration {text:?}"))
}

fn unit_seconds(unit: &str, text: &str) -> anyhow::Result<f64> {
    Ok(match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => bail!("unknown unit {unit:?} in duration {text:?} (use ns, us, ms, s, m, h or d)"),
    })
}

/// Parses a byte size: a plain number, `-1` (unlimited), or a number with a unit
/// (`K`/`KB`/`KiB`, `M…`, `G…`, `T…`; all binary multiples, as nats-server and natscli use).
pub(crate) fn size(text: &str) -> anyhow::Result<i64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .with_context(|| format!("bad size {text:?}"))?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().with_context(|| format!("bad size {text:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => bail!("unknown unit in size {text:?} (use B, KB, MB, GB or TB)"),
    };
    Ok((value * mult) as i64)
}

/// Parses a `key:value` header (also accepts `key=value`).
pub(crate) fn header(text: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = text
        .split_once(':')
        .or_else(|| text.split_once('='))
        .with_context(|| format!("header {text:?} must look like key:value"))?;
    let k = k.trim();
    if k.is_empty() {
        bail!("header {text:?} has an empty name");
    }
    Ok((k.to_string(), v.trim().to_string()))
}

/// Parses a `key=value` pair (stream/consumer metadata).
pub(crate) fn key_value(text: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = text
        .split_once('=')
        .with_context(|| format!("{text:?} must look like key=value"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Parses either an RFC 3339 time or a duration meaning "that long ago" / "that long from now"
/// depending on `future`.
pub(crate) fn time_or_duration(text: &str, future: bool) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let d =
        duration(text).with_context(|| format!("{text:?} is neither a duration nor RFC 3339"))?;
    let now = OffsetDateTime::now_utc();
    Ok(if future { now + d } else { now - d })
}

/// Formats a time as RFC 3339 (what `$JS.API` expects in JSON).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(duration("5x").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("-1").unwrap(), -1);
        assert_eq!(size("1KB").unwrap(), 1024);
        assert_eq!(size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert!(size("3 parsecs").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(header("a: b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(header("k=v").unwrap(), ("k".into(), "v".into()));
        assert!(header("novalue").is_err());
    }
}
