//! Output for people and scripts: aligned tables and `key: value` sections (rows in the order the caller
//! gives, which callers keep deterministic by sorting), pretty JSON for `--json`, and human forms of
//! sizes and durations. All printing to stdout of structured data goes through here.

use std::fmt::Write as _;
use std::io::Write as _;

use async_nats::HeaderMap;

/// A plain text table with a header row; columns are padded to the widest cell.
#[derive(Debug, Default)]
pub(crate) struct Table {
    title: Option<String>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub(crate) fn new(header: &[&str]) -> Self {
        Table {
            title: None,
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Sets a title printed above the table.
    pub(crate) fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Appends a row (missing cells print empty).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table as text, each line ending in `\n` and without trailing spaces.
    pub(crate) fn render(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if let Some(title) = &self.title {
            let _ = writeln!(out, "{title}\n");
        }
        push_line(&mut out, &self.header, &widths);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        push_line(&mut out, &rule, &widths);
        for row in &self.rows {
            push_line(&mut out, row, &widths);
        }
        out
    }

    /// Prints the table to stdout.
    pub(crate) fn print(&self) {
        print!("{}", self.render());
    }
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (i, w) in widths.iter().enumerate() {
        let cell = cells.get(i).map(String::as_str).unwrap_or("");
        let _ = write!(line, "{cell:<w$}  ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Prints a titled block of right-aligned `key: value` lines (natscli's info layout). Rows with an
/// empty value are skipped.
pub(crate) fn section(title: &str, rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{title}:\n");
    for (key, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        println!("  {key:>width$}: {value}");
    }
    println!();
}

/// Prints a JSON value pretty-printed, as scripts get it with `--json`.
pub(crate) fn json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Writes raw bytes followed by a newline to stdout (`--raw` payloads).
pub(crate) fn raw_line(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Prints headers as `Name: value` lines, sorted by name for stable output.
pub(crate) fn headers(headers: &HeaderMap) {
    for (name, value) in sorted_headers(headers) {
        println!("{name}: {value}");
    }
}

/// Headers as sorted `(name, value)` pairs (multi-values in order).
pub(crate) fn sorted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.as_str().to_string()))
        })
        .collect();
    pairs.sort();
    pairs
}

/// `1.5 KiB`-style size; negative means unlimited.
pub(crate) fn bytes(n: i64) -> String {
    if n < 0 {
        return "unlimited".to_string();
    }
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A count where negative means unlimited.
pub(crate) fn limit(n: i64) -> String {
    if n < 0 {
        "unlimited".to_string()
    } else {
        n.to_string()
    }
}

/// A nanosecond duration as `1h30m`, `2m`, `500ms`; zero is shown as `zero`.
pub(crate) fn nanos(ns: i64) -> String {
    if ns <= 0 {
        return if ns == 0 {
            "zero".into()
        } else {
            "unlimited".into()
        };
    }
    if ns < 1_000_000 {
        return format!("{}µs", ns / 1000);
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", ns / 1_000_000);
    }
    let mut secs = ns / 1_000_000_000;
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        let _ = write!(out, "{secs}s");
    }
    out
}

/// A max-age style nanosecond duration, where zero means unlimited.
pub(crate) fn age(ns: i64) -> String {
    if ns == 0 {
        "unlimited".into()
    } else {
        nanos(ns)
    }
}

/// A string field of a JSON object, or empty.
pub(crate) fn s(value: &serde_json::Value, key: &str) -> String {
    match &value[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An integer field of a JSON object, or 0.
pub(crate) fn i(value: &serde_json::Value, key: &str) -> i64 {
    value[key].as_i64().unwrap_or(0)
}

/// "yes"/"no".
pub(crate) fn yes_no(yes: bool) -> String {
    if yes { "yes" } else { "no" }.into()
}

/// The word a typed enum is on the wire (`file`, `workqueue`, `explicit`…).
pub(crate) fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let mut t = Table::new(&["Name", "Messages"]);
        t.row(vec!["ORDERS".into(), "12".into()]);
        t.row(vec!["A".into(), "3".into()]);
        insta::assert_snapshot!(t.render(), @r"
        Name    Messages
        ------  --------
        ORDERS  12
        A       3
        ");
    }

    #[test]
    fn human_forms() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(-1), "unlimited");
        assert_eq!(nanos(5_400_000_000_000), "1h30m");
        assert_eq!(nanos(120_000_000_000), "2m");
        assert_eq!(nanos(500_000_000), "500ms");
        assert_eq!(nanos(0), "zero");
    }
}
