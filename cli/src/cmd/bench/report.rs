//! What a benchmark produces: a [`Report`] of one or more [`Phase`]s (e.g. `pub` and `sub`), each with
//! a count, a rate and, where it applies, [`Latency`] percentiles from an HDR histogram. It renders as a
//! readable table or as JSON with stable field names:
//!
//! ```json
//! {"bench": "pubsub", "url": "...", "params": {...},
//!  "phases": [{"name": "sub", "msgs": 1000, "expected": 1000, "errors": 0, "bytes": 16000,
//!              "seconds": 0.01, "msgs_per_sec": 100000.0, "mib_per_sec": 1.5,
//!              "latency_us": {"count": 31, "min": 1.0, "mean": 2.0, "p50": 2.0, "p90": 3.0,
//!                             "p99": 4.0, "p999": 4.0, "max": 4.0}}]}
//! ```
//!
//! `latency_us` is `null` for phases that measure only throughput.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::output::{self, Table};

/// The result of one benchmark run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// Which benchmark: `pub`, `pubsub`, `request`, `js-pub`, `js-fetch`, `js-ordered`, `kv`.
    pub(crate) bench: String,
    /// The server it ran against.
    pub(crate) url: String,
    /// The settings it ran with (field names depend on the benchmark).
    pub(crate) params: serde_json::Value,
    /// The measured phases, in the order they ran.
    pub(crate) phases: Vec<Phase>,
}

/// One measured phase of a benchmark.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Phase {
    /// `pub`, `sub`, `request`, `fetch`, `put`, `get`, ...
    pub(crate) name: String,
    /// Messages (or operations) that completed: for subscribers, only messages actually received.
    pub(crate) msgs: u64,
    /// Messages the phase set out to handle.
    pub(crate) expected: u64,
    /// Operations that failed (timeouts, errors).
    pub(crate) errors: u64,
    /// Payload bytes of the completed messages.
    pub(crate) bytes: u64,
    /// Wall time of the phase.
    pub(crate) seconds: f64,
    /// `msgs / seconds`.
    pub(crate) msgs_per_sec: f64,
    /// `bytes / seconds` in MiB/s.
    pub(crate) mib_per_sec: f64,
    /// Latency percentiles in microseconds, when the phase measures latency.
    pub(crate) latency_us: Option<Latency>,
}

impl Phase {
    /// A phase of `msgs` completed messages of `size` bytes each out of `expected`, over `elapsed`.
    pub(crate) fn new(
        name: &str,
        msgs: u64,
        expected: u64,
        size: usize,
        elapsed: Duration,
    ) -> Phase {
        let seconds = elapsed.as_secs_f64();
        let bytes = msgs.saturating_mul(size as u64);
        let per_sec = |n: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
        Phase {
            name: name.to_string(),
            msgs,
            expected,
            errors: 0,
            bytes,
            seconds,
            msgs_per_sec: per_sec(msgs as f64),
            mib_per_sec: per_sec(bytes as f64) / (1024.0 * 1024.0),
            latency_us: None,
        }
    }

    /// Sets the error count.
    pub(crate) fn errors(mut self, errors: u64) -> Phase {
        self.errors = errors;
        self
    }

    /// Adds latency percentiles from a nanosecond histogram (none if it is empty).
    pub(crate) fn latency(mut self, hist: &Histogram<u64>) -> Phase {
        self.latency_us = Latency::from_histogram(hist);
        self
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Latency {
    /// Number of samples.
    pub(crate) count: u64,
    /// Smallest sample.
    pub(crate) min: f64,
    /// Mean.
    pub(crate) mean: f64,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p999: f64,
    /// Largest sample.
    pub(crate) max: f64,
}

impl Latency {
    /// Percentiles of a nanosecond histogram, or `None` when it holds no samples.
    pub(crate) fn from_histogram(hist: &Histogram<u64>) -> Option<Latency> {
        if hist.is_empty() {
            return None;
        }
        let us = |ns: u64| round2(ns as f64 / 1000.0);
        Some(Latency {
            count: hist.len(),
            min: us(hist.min()),
            mean: round2(hist.mean() / 1000.0),
            p50: us(hist.value_at_quantile(0.5)),
            p90: us(hist.value_at_quantile(0.9)),
            p99: us(hist.value_at_quantile(0.99)),
            p999: us(hist.value_at_quantile(0.999)),
            max: us(hist.max()),
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Report {
    /// The phase called `name`, if the benchmark has one.
    pub(crate) fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Prints the report: JSON when `json` is set, else a title line and a table.
    pub(crate) fn print(&self, json: bool) {
        if json {
            match serde_json::to_value(self) {
                Ok(value) => output::json(&value),
                Err(e) => eprintln!("rill: cannot encode the report as JSON: {e}"),
            }
        } else {
            print!("{}", self.render());
        }
    }

    /// The human form: a title with the settings, then one table row per phase.
    pub(crate) fn render(&self) -> String {
        let mut table = Table::new(&[
            "Phase", "Msgs", "Errors", "Seconds", "Msgs/s", "MiB/s", "p50", "p90", "p99", "p99.9",
            "max",
        ])
        .title(format!(
            "{} on {}: {}",
            self.bench,
            self.url,
            params_line(&self.params)
        ));
        for p in &self.phases {
            let mut row = vec![
                p.name.clone(),
                format!("{}/{}", p.msgs, p.expected),
                p.errors.to_string(),
                format!("{:.3}", p.seconds),
                thousands(p.msgs_per_sec),
                format!("{:.2}", p.mib_per_sec),
            ];
            if let Some(l) = &p.latency_us {
                row.extend([l.p50, l.p90, l.p99, l.p999, l.max].map(micros));
            }
            table.row(row);
        }
        table.render()
    }
}

/// `key=value` pairs of a params object, in its order.
fn params_line(params: &serde_json::Value) -> String {
    let Some(map) = params.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A rate with thousands separators and no decimals: `1,234,567`.
pub(crate) fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Microseconds as `850µs`, `12.3µs` or `1.25ms`.
pub(crate) fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0}µs")
    } else {
        format!("{us:.1}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::bench::run;

    #[test]
    fn phase_rates_and_latency() {
        let mut hist = run::histogram();
        for us in [10u64, 20, 30, 40, 1000] {
            hist.record(us * 1000).expect("in range");
        }
        let phase = Phase::new("sub", 1000, 1000, 16, Duration::from_millis(500)).latency(&hist);
        assert_eq!(phase.bytes, 16_000);
        assert!((phase.msgs_per_sec - 2000.0).abs() < 1e-6);
        let l = phase.latency_us.expect("latency");
        assert_eq!(l.count, 5);
        assert!((l.p50 - 30.0).abs() < 0.1, "p50 {}", l.p50);
        assert!(l.max >= 999.0);
        assert!(Phase::new("pub", 0, 1, 16, Duration::ZERO).msgs_per_sec == 0.0);
    }

    #[test]
    fn human_numbers() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(micros(12.34), "12.3µs");
        assert_eq!(micros(850.0), "850µs");
        assert_eq!(micros(1250.0), "1.25ms");
    }

    #[test]
    fn renders_a_table() {
        let report = Report {
            bench: "pub".into(),
            url: "nats://127.0.0.1:4222".into(),
            params: serde_json::json!({"msgs": 10, "size": 16}),
            phases: vec![Phase::new("pub", 10, 10, 16, Duration::from_secs(1))],
        };
        insta::assert_snapshot!(report.render(), @r"
        pub on nats://127.0.0.1:4222: msgs=10 size=16

        Phase  Msgs   Errors  Seconds  Msgs/s  MiB/s  p50  p90  p99  p99.9  max
        -----  -----  ------  -------  ------  -----  ---  ---  ---  -----  ---
        pub    10/10  0       1.000    10      0.00
        ");
    }
}
