//! Time and duration formats as nats-server renders them in monitoring JSON.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 with nanoseconds in UTC, e.g. `2026-11-21T21:18:23.731118112Z`.
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

/// Uptime/idle as nats-server writes them: `0s`, `5m3s`, `2h0m1s`, `1d2h3m4s`.
pub fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{mins}m{s}s"),
        (0, _, _) => format!("{hours}h{mins}m{s}s"),
        _ => format!("{days}d{hours}h{mins}m{s}s"),
    }
}

/// Go's `time.Duration.String()` for short durations, exact as Go prints them:
/// `523µs`, `1.5ms`, `3.91732ms`, `2.25s`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let exact = |unit: u128, digits: usize, suffix: &str| {
        let frac = format!("{:0digits$}", ns % unit);
        let frac = frac.trim_end_matches('0');
        let dot = if frac.is_empty() { "" } else { "." };
        format!("{}{dot}{frac}{suffix}", ns / unit)
    };
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => exact(1_000, 3, "µs"),
        n if n < 1_000_000_000 => exact(1_000_000, 6, "ms"),
        _ => exact(1_000_000_000, 9, "s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(uptime(Duration::from_secs(0)), "0s");
        assert_eq!(uptime(Duration::from_secs(303)), "5m3s");
        assert_eq!(uptime(Duration::from_secs(7201)), "2h0m1s");
        assert_eq!(go_duration(Duration::from_nanos(3_917_320)), "3.91732ms");
        assert_eq!(go_duration(Duration::from_nanos(343_161)), "343.161µs");
        assert_eq!(go_duration(Duration::from_nanos(437_000)), "437µs");
        assert_eq!(uptime(Duration::from_secs(93_784)), "1d2h3m4s");
        assert_eq!(go_duration(Duration::from_micros(523)), "523µs");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_millis(2250)), "2.25s");
        assert!(rfc3339(SystemTime::UNIX_EPOCH).starts_with("1970-01-01T00:00:00"));
    }
}
