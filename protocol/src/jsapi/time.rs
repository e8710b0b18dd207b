//! JSON time values of the JetStream API: [`Nanos`] durations and [`Timestamp`] instants.
//!
//! nats-server writes Go `time.Duration` values as plain int64 **nanoseconds** and Go
//! `time.Time` values as RFC 3339 strings with up to nine fractional digits, trailing zeros
//! trimmed (`2026-11-21T20:50:09.2457306Z`). A Go zero time is `0001-01-01T00:00:00Z` and
//! nats-server emits it as such (for example `first_ts` of an empty stream); this module
//! round-trips it unchanged.
//!
//! Also here: the serde helpers shared by every `jsapi` type (`null` accepted as the default,
//! omit-if-zero predicates mirroring Go's `omitempty`, and base64 byte fields).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A duration in nanoseconds, exactly as it appears in the JSON (Go `time.Duration`).
///
/// Kept signed because clients may send negative values and nats-server decides what they
/// mean (usually "unset" or an error); the validation layer, not the parser, rejects them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nanos(pub i64);

impl Nanos {
    /// Zero: "not set" for every optional duration field.
    pub const ZERO: Nanos = Nanos(0);

    /// `n` milliseconds.
    pub const fn from_millis(n: i64) -> Nanos {
        Nanos(n * 1_000_000)
    }

    /// `n` seconds.
    pub const fn from_secs(n: i64) -> Nanos {
        Nanos(n * 1_000_000_000)
    }

    /// Converts a [`Duration`], saturating at `i64::MAX` nanoseconds (about 292 years).
    pub fn from_duration(d: Duration) -> Nanos {
        Nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// The value as a [`Duration`]; `None` when negative.
    pub fn to_duration(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }

    /// True when zero (Go's `omitempty` test).
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Nanos {
    /// Formats like Go's `time.Duration.String()` for whole units used in error texts
    /// (`10s`, `2m0s`, `1.5s`, `100ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        go_duration(self.0, f)
    }
}

fn go_duration(ns: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if ns == 0 {
        return f.write_str("0s");
    }
    if ns < 0 {
        f.write_str("-")?;
    }
    let u = ns.unsigned_abs();
    if u < 1_000 {
        return write!(f, "{u}ns");
    }
    if u < 1_000_000 {
        return write_frac(f, u, 1_000, "µs");
    }
    if u < 1_000_000_000 {
        return write_frac(f, u, 1_000_000, "ms");
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        write!(f, "{h}h{m}m")?;
    } else if m > 0 {
        write!(f, "{m}m")?;
    }
    write_frac(f, s * 1_000_000_000 + frac, 1_000_000_000, "s")
}

fn write_frac(f: &mut fmt::Formatter<'_>, v: u64, unit: u64, suffix: &str) -> fmt::Result {
    let whole = v / unit;
    let mut frac = v % unit;
    if frac == 0 {
        return write!(f, "{whole}{suffix}");
    }
    let mut width = unit.ilog10() as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    write!(f, "{whole}.{frac:0width$}{suffix}")
}

/// An instant on the wire: RFC 3339 in UTC with trimmed nanoseconds.
///
/// # Invariants
/// Always UTC. [`Timestamp::ZERO`] is Go's zero `time.Time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Go's zero time, `0001-01-01T00:00:00Z`, which nats-server sends for "never".
    pub const ZERO: Timestamp = Timestamp(time::macros::datetime!(0001-01-01 0:00 UTC));

    /// From nanoseconds since the Unix epoch.
    ///
    /// # Errors
    /// When the value is outside the years -9999..=9999.
    pub fn from_unix_nanos(ns: i128) -> Result<Timestamp, time::error::ComponentRange> {
        OffsetDateTime::from_unix_timestamp_nanos(ns).map(Timestamp)
    }

    /// Nanoseconds since the Unix epoch (negative for [`Timestamp::ZERO`]).
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// True for Go's zero time.
    pub fn is_zero(&self) -> bool {
        *self == Timestamp::ZERO
    }

    /// The underlying UTC date-time.
    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses RFC 3339 (any offset; stored as UTC).
    ///
    /// # Errors
    /// When `s` is not RFC 3339.
    pub fn parse(s: &str) -> Result<Timestamp, time::error::Parse> {
        OffsetDateTime::parse(s, &Rfc3339).map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::ZERO
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Timestamp(t.to_offset(time::UtcOffset::UTC))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers shared by the `jsapi` types.
pub(crate) mod serde_util {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Deserialises `null` as `T::default()` (Go leaves a field untouched on `null`).
    pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// Go `omitempty` for integers.
    pub(crate) fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
        *v == T::default()
    }

    /// Go `omitempty` for bools.
    pub(crate) fn is_false(v: &bool) -> bool {
        !*v
    }

    /// `[]byte` fields: standard base64 with padding, as Go's encoding/json writes them.
    pub(crate) mod base64_opt {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            v: &Option<Vec<u8>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_str(&STANDARD.encode(b)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
                Some(text) => STANDARD
                    .decode(text.as_bytes())
                    .map(Some)
                    .map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        let cases = [
            (0, "0s"),
            (100_000_000, "100ms"),
            (1_500_000_000, "1.5s"),
            (10_000_000_000, "10s"),
            (120_000_000_000, "2m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_000, "1µs"),
            (5, "5ns"),
        ];
        for (ns, want) in cases {
            assert_eq!(Nanos(ns).to_string(), want, "{ns}");
        }
    }

    #[test]
    fn timestamp_round_trips_go_forms() {
        for s in [
            "0001-01-01T00:00:00Z",
            "2026-11-21T20:50:09.2457306Z",
            "2099-01-01T00:00:00Z",
        ] {
            let t: Timestamp = serde_json::from_str(&format!("\"{s}\"")).expect("parse");
            assert_eq!(serde_json::to_string(&t).expect("ser"), format!("\"{s}\""));
        }
        assert!(Timestamp::ZERO.is_zero());
        let t = Timestamp::parse("2024-01-02T05:04:05.5+02:00").expect("offset");
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.5Z");
    }
}
