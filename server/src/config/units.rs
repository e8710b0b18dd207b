//! Durations written the way nats-server (Go's `time.ParseDuration`) reads them.
//!
//! `"300ms"`, `"2s"`, `"1h2m3.5s"`, `"1.5h"`, `"0"`; units `ns`, `us`/`µs`, `ms`, `s`, `m`,
//! `h`. A negative duration is refused: no rill setting has a use for one.

use std::time::Duration;

/// Parses a Go-style duration string.
///
/// # Errors
/// A message naming the problem (`time: invalid duration "abc"`, as nats-server words it).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("negative duration \"{text}\" is not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut rest = s;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = unit_nanos(&rest[..unit_len]).ok_or_else(invalid)?;
        rest = &rest[unit_len..];
        total_nanos += number * nanos_per_unit;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

/// A number of seconds (int or float) as a duration.
///
/// # Errors
/// When the number is negative or not finite.
pub fn seconds(secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid number of seconds {secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        let table: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("300ms", ms(300)),
            ("2s", ms(2000)),
            ("10s", ms(10_000)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1h2m3.5s", ms(3_723_500)),
            ("1.5s", ms(1500)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("7ns", Duration::from_nanos(7)),
            ("+5s", ms(5000)),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text).as_ref(), Ok(want), "{text}");
        }
        for bad in ["", "abc", "5", "5x", "s", "-1s", "1..5s", "1e3s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
    }
}
