//! The comparison's collected samples and how they are shown: a markdown table with one row per
//! (scenario, metric) giving each server's median, the ratio (always oriented so that > 1 means A is
//! better, and labelled `A/B` or `B/A`), and each server's spread (min–max); a second table of resident
//! memory after each scenario; and the same data as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::scenario::Better;
use crate::cmd::bench::report::{micros, thousands};

/// Which of the two servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `--server-a`.
    A,
    /// `--server-b`.
    B,
}

/// How a row's numbers print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    /// Per second, with thousands separators.
    PerSec,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Nanoseconds.
    Nanos,
    /// KiB.
    Kib,
    /// MiB.
    Mib,
    /// A plain count (e.g. threads).
    Count,
}

/// The samples of one (scenario, metric) on both servers.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Metric label.
    pub(crate) metric: String,
    /// Unit of the samples.
    pub(crate) unit: Unit,
    /// `true` when more is better.
    pub(crate) higher_is_better: bool,
    /// Samples on server A, one per successful round.
    pub(crate) a: Vec<f64>,
    /// Samples on server B.
    pub(crate) b: Vec<f64>,
}

impl Row {
    fn side(&mut self, side: Side) -> &mut Vec<f64> {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// `(ratio, "A/B" | "B/A")`, oriented so that > 1 means A is better.
    pub(crate) fn ratio(&self) -> Option<(f64, &'static str)> {
        let (a, b) = (median(&self.a)?, median(&self.b)?);
        if self.higher_is_better {
            (b > 0.0).then(|| (a / b, "A/B"))
        } else {
            (a > 0.0).then(|| (b / a, "B/A"))
        }
    }
}

/// Everything the comparison measured.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Results {
    /// Metric rows in first-seen order.
    pub(crate) rows: Vec<Row>,
    /// Resident memory (MiB) after each scenario.
    pub(crate) memory: Vec<Row>,
    /// Failures, incomplete runs and restarts, in the order they happened.
    pub(crate) notes: Vec<String>,
}

impl Results {
    /// Adds a sample to the row (created on first use).
    pub(crate) fn push(
        &mut self,
        key: (&str, &str),
        unit: Unit,
        better: Better,
        side: Side,
        v: f64,
    ) {
        push_to(&mut self.rows, key, unit, better, side, v);
    }

    /// Adds a memory sample (MiB) for a scenario.
    pub(crate) fn push_memory(&mut self, scenario: &str, side: Side, kib: u64) {
        let key = (scenario, "RSS MiB");
        push_to(
            &mut self.memory,
            key,
            Unit::Mib,
            Better::Lower,
            side,
            kib as f64 / 1024.0,
        );
    }

    /// Ensures a row exists so that it prints as `n/a` even when every run failed.
    pub(crate) fn reserve(&mut self, key: (&str, &str), unit: Unit, better: Better) {
        if !self
            .rows
            .iter()
            .any(|r| r.scenario == key.0 && r.metric == key.1)
        {
            self.rows.push(new_row(key, unit, better));
        }
    }

    /// The markdown tables and notes; `names` label the two servers.
    pub(crate) fn markdown(&self, names: (&str, &str)) -> String {
        let (a, b) = names;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| scenario | metric | A: {a} median | B: {b} median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |"
        );
        out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let ratio = row
                .ratio()
                .map_or("n/a".to_string(), |(r, how)| format!("{r:.2}× ({how})"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {ratio} | {} | {} |",
                row.scenario,
                row.metric,
                cell(median(&row.a), row.unit),
                cell(median(&row.b), row.unit),
                spread(&row.a, row.unit),
                spread(&row.b, row.unit),
            );
        }
        if !self.memory.is_empty() {
            let _ = writeln!(
                out,
                "\n| memory (RSS after scenario) | A: {a} MiB | B: {b} MiB |\n|---|---:|---:|"
            );
            for row in &self.memory {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    row.scenario,
                    cell(median(&row.a), row.unit),
                    cell(median(&row.b), row.unit)
                );
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

fn new_row(key: (&str, &str), unit: Unit, better: Better) -> Row {
    Row {
        scenario: key.0.to_string(),
        metric: key.1.to_string(),
        unit,
        higher_is_better: better == Better::Higher,
        a: Vec::new(),
        b: Vec::new(),
    }
}

fn push_to(rows: &mut Vec<Row>, key: (&str, &str), unit: Unit, better: Better, side: Side, v: f64) {
    let at = match rows
        .iter()
        .position(|r| r.scenario == key.0 && r.metric == key.1)
    {
        Some(at) => at,
        None => {
            rows.push(new_row(key, unit, better));
            rows.len() - 1
        }
    };
    rows[at].side(side).push(v);
}

/// The median (mean of the middle two for an even count), or `None` without samples.
pub(crate) fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

fn cell(x: Option<f64>, unit: Unit) -> String {
    match x {
        None => "n/a".into(),
        Some(x) => match unit {
            Unit::PerSec => thousands(x),
            Unit::Micros => micros(x),
            Unit::Millis => format!("{x:.1} ms"),
            Unit::Nanos => format!("{x:.0} ns"),
            Unit::Kib => format!("{x:.1} KiB"),
            Unit::Mib => format!("{x:.1}"),
            Unit::Count => format!("{x:.0}"),
        },
    }
}

fn spread(xs: &[f64], unit: Unit) -> String {
    let min = xs.iter().copied().min_by(f64::total_cmp);
    let max = xs.iter().copied().max_by(f64::total_cmp);
    match (min, max) {
        (Some(lo), Some(hi)) => format!("{}–{}", cell(Some(lo), unit), cell(Some(hi), unit)),
        _ => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn renders_ratios_oriented_towards_a() {
        let mut r = Results::default();
        let rate = ("pub-16", "msgs/s");
        r.push(rate, Unit::PerSec, Better::Higher, Side::A, 2000.0);
        r.push(rate, Unit::PerSec, Better::Higher, Side::B, 1000.0);
        let lat = ("request-16", "p50 µs");
        r.push(lat, Unit::Micros, Better::Lower, Side::A, 20.0);
        r.push(lat, Unit::Micros, Better::Lower, Side::A, 40.0);
        r.push(lat, Unit::Micros, Better::Lower, Side::B, 15.0);
        r.reserve(("js-pub-sync", "p50 µs"), Unit::Micros, Better::Lower);
        r.push(
            ("js-pub-sync", "p50 µs"),
            Unit::Micros,
            Better::Lower,
            Side::B,
            15.0,
        );
        r.push_memory("pub-16", Side::A, 10240);
        r.notes.push("A failed js-pub-sync: no JetStream".into());
        insta::assert_snapshot!(r.markdown(("rill", "nats-server")), @r"
        | scenario | metric | A: rill median | B: nats-server median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |
        |---|---|---:|---:|---:|---:|---:|
        | pub-16 | msgs/s | 2,000 | 1,000 | 2.00× (A/B) | 2,000–2,000 | 1,000–1,000 |
        | request-16 | p50 µs | 30.0µs | 15.0µs | 0.50× (B/A) | 20.0µs–40.0µs | 15.0µs–15.0µs |
        | js-pub-sync | p50 µs | n/a | 15.0µs | n/a | n/a | 15.0µs–15.0µs |

        | memory (RSS after scenario) | A: rill MiB | B: nats-server MiB |
        |---|---:|---:|
        | pub-16 | 10.0 | n/a |

        Notes:
        - A failed js-pub-sync: no JetStream
        ");
    }
}
