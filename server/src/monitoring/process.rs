//! What the operating system says about this process: resident memory and CPU use, read from
//! Linux's `/proc` on demand (nothing runs in the background, so an unwatched server pays
//! nothing). Elsewhere both read as 0.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::locks;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 by the kernel's ABI).
const USER_HZ: f64 = 100.0;

/// Samples closer together than this reuse the last figure, as nats-server's once-a-second
/// sampling does: a page polling several endpoints at once sees one value.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Resident memory of this process in bytes (Linux `/proc/self/status`), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time used so far by all of this process's threads (user + system), in seconds, and the
/// process's age in seconds.
fn cpu_and_age() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let since_boot: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    parse_stat(&stat, since_boot)
}

/// `(cpu seconds, age seconds)` from a `/proc/<pid>/stat` line and the system's uptime.
fn parse_stat(stat: &str, since_boot: f64) -> Option<(f64, f64)> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<f64>().ok();
    let cpu = (ticks(14)? + ticks(15)?) / USER_HZ;
    let age = since_boot - ticks(22)? / USER_HZ;
    Some((cpu, age))
}

struct Sample {
    at: Instant,
    cpu: f64,
    percent: f64,
}

static LAST: Mutex<Option<Sample>> = Mutex::new(None);

/// CPU use in percent of one core, as nats-server's `cpu` in `/varz` and `STATSZ`: over the time
/// since the previous sample (at least a second), or since the process started for the first.
pub fn cpu_percent() -> f64 {
    let Some((cpu, age)) = cpu_and_age() else {
        return 0.0;
    };
    let now = Instant::now();
    let mut last = locks::lock(&LAST);
    let percent = match last.as_ref() {
        Some(s) if now.duration_since(s.at) < MIN_INTERVAL => return s.percent,
        Some(s) => share(cpu - s.cpu, now.duration_since(s.at).as_secs_f64()),
        None => share(cpu, age),
    };
    *last = Some(Sample {
        at: now,
        cpu,
        percent,
    });
    percent
}

/// `used` seconds of CPU over `elapsed` seconds, in percent rounded to a tenth.
fn share(used: f64, elapsed: f64) -> f64 {
    if elapsed <= 0.0 || used <= 0.0 {
        return 0.0;
    }
    (used / elapsed * 1000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // pid (comm with ") ( spaces") state ppid ... utime=250 stime=50 ... starttime=1000
        let mut fields = vec!["0"; 20];
        fields[14 - 3] = "250";
        fields[15 - 3] = "50";
        fields[22 - 3] = "1000";
        let stat = format!("42 (a) b ( c) {}", fields.join(" "));
        assert_eq!(parse_stat(&stat, 40.0), Some((3.0, 30.0)));
        assert_eq!(parse_stat("garbage", 1.0), None);
    }

    #[test]
    fn share_is_percent_of_one_core() {
        assert_eq!(share(0.5, 1.0), 50.0);
        assert_eq!(share(3.0, 2.0), 150.0);
        assert_eq!(share(0.0, 1.0), 0.0);
        assert_eq!(share(1.0, 0.0), 0.0);
    }

    #[test]
    fn this_process_has_a_memory_and_a_cpu_figure() {
        assert!(rss_bytes() > 0);
        let burn = Instant::now();
        while burn.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        assert!(cpu_percent() > 0.0);
    }
}
