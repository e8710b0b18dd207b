//! What a reload changes: the settings that differ between the running configuration
//! and the re-read one, worded as nats-server logs them (`Reloaded: debug = true`), and
//! the settings that cannot change while the server runs (`config reload not supported
//! for Port: old=4222, new=4223`).
//!
//! nats-server refuses the whole reload when one setting cannot change; rill keeps the
//! running value of each such setting, says so, and applies the rest. Listen addresses,
//! the server name and all of JetStream's settings (its service keeps its own copy) need
//! a restart.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use super::Config;

/// The outcome of comparing two configurations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadDiff {
    /// `option = value` for each changed reloadable option, in nats-server's order and
    /// wording (logged as `Reloaded: <line>`).
    pub changed: Vec<String>,
    /// `config reload not supported for …` for each changed option that only a restart
    /// can change.
    pub not_reloadable: Vec<String>,
}

/// Compares the running `old` configuration with the re-read `new` one.
pub fn diff(old: &Config, new: &Config) -> ReloadDiff {
    let mut d = ReloadDiff::default();
    fixed(&mut d, "Host", &old.host, &new.host);
    fixed(&mut d, "Port", &old.port, &new.port);
    fixed(
        &mut d,
        "ServerName",
        &old.server_name.clone().unwrap_or_default(),
        &new.server_name.clone().unwrap_or_default(),
    );
    let http = |c: &Config| c.http.as_ref().map_or(0, |h| h.port);
    let https = |c: &Config| c.https.as_ref().map_or(0, |h| h.port);
    fixed(&mut d, "HTTPPort", &http(old), &http(new));
    fixed(&mut d, "HTTPSPort", &https(old), &https(new));
    if old.websocket != new.websocket {
        d.not_reloadable
            .push("config reload not supported for websocket".into());
    }
    if old.cluster != new.cluster {
        d.not_reloadable
            .push("config reload not supported for cluster".into());
    }
    let js = |c: &Config| c.jetstream.is_some();
    fixed(&mut d, "JetStream", &js(old), &js(new));
    if let (Some(a), Some(b)) = (&old.jetstream, &new.jetstream) {
        if a.store_dir != b.store_dir {
            d.not_reloadable
                .push("config reload not supported for jetstream storage directory".into());
        }
        let mut rest = b.clone();
        rest.store_dir.clone_from(&a.store_dir);
        if *a != rest {
            // The running JetStream service holds its own copy of these.
            d.not_reloadable
                .push("config reload not supported for jetstream limits".into());
        }
    }
    if old.operator != new.operator || old.system_account != new.system_account {
        // Operator mode keeps its resolved accounts for the server's life.
        d.not_reloadable
            .push("config reload not supported for TrustedOperators".into());
    }
    logging(&mut d, old, new);
    limits(&mut d, old, new);
    let mut section = |name: &str, changed: bool| {
        if changed {
            d.changed.push(name.to_string());
        }
    };
    let auth_changed = old.authorization != new.authorization;
    section("authorization users", auth_changed);
    // nats-server reports accounts with any change of users (users live in accounts).
    section("accounts", auth_changed || old.accounts != new.accounts);
    authorization(&mut d, old, new);
    let mut section = |name: &str, changed: bool| {
        if changed {
            d.changed.push(name.to_string());
        }
    };
    section("no_auth_user", old.no_auth_user != new.no_auth_user);
    section("http_console", old.http_console != new.http_console);
    section("mappings", old.mappings != new.mappings);
    section("tls", old.tls != new.tls);
    d
}

/// The single-user, token and timeout settings of `authorization`, as nats-server
/// words them (`Reloaded: authorization token`, `… timeout = 3`).
fn authorization(d: &mut ReloadDiff, old: &Config, new: &Config) {
    let (a, b) = (&old.authorization, &new.authorization);
    let parts = [
        ("authorization username", a.user != b.user),
        ("authorization password", a.password != b.password),
        ("authorization token", a.token != b.token),
    ];
    for (name, changed) in parts {
        if changed {
            d.changed.push(name.to_string());
        }
    }
    let timeout = b.timeout.map_or(0.0, |t| t.as_secs_f64());
    changed(
        d,
        "authorization timeout",
        &a.timeout,
        &b.timeout,
        timeout.to_string(),
    );
}

/// Puts back the running value of every setting that cannot change at run time.
pub fn keep_fixed(old: &Config, new: &mut Config) {
    new.host.clone_from(&old.host);
    new.port = old.port;
    new.server_name.clone_from(&old.server_name);
    new.http.clone_from(&old.http);
    new.https.clone_from(&old.https);
    new.jetstream.clone_from(&old.jetstream);
    new.websocket.clone_from(&old.websocket);
    new.pid_file.clone_from(&old.pid_file);
    new.ports_file_dir.clone_from(&old.ports_file_dir);
    // The MQTT listener stays where it was bound (its other settings reload).
    if let (Some(old), Some(new)) = (&old.mqtt, &mut new.mqtt) {
        new.host.clone_from(&old.host);
        new.port = old.port;
    }
    new.cluster.clone_from(&old.cluster);
}

fn fixed<T: PartialEq + Display>(d: &mut ReloadDiff, name: &str, old: &T, new: &T) {
    if old != new {
        d.not_reloadable.push(format!(
            "config reload not supported for {name}: old={old}, new={new}"
        ));
    }
}

fn changed<T: PartialEq>(d: &mut ReloadDiff, name: &str, old: &T, new: &T, shown: String) {
    if old != new {
        d.changed.push(format!("{name} = {shown}"));
    }
}

fn logging(d: &mut ReloadDiff, old: &Config, new: &Config) {
    let (a, b) = (&old.logging, &new.logging);
    changed(d, "debug", &a.debug, &b.debug, b.debug.to_string());
    changed(d, "trace", &a.trace, &b.trace, b.trace.to_string());
    changed(d, "logtime", &a.logtime, &b.logtime, b.logtime.to_string());
    let file = b.log_file.as_deref().map(Path::display);
    let shown = file.map(|f| f.to_string()).unwrap_or_default();
    changed(d, "log_file", &a.log_file, &b.log_file, shown);
}

/// Reads one setting.
type Getter<T> = fn(&Config) -> T;

fn limits(d: &mut ReloadDiff, old: &Config, new: &Config) {
    let sizes: [(&str, Getter<usize>); 5] = [
        ("max_payload", |c| c.max_payload),
        ("max_pending", |c| c.max_pending),
        ("max_control_line", |c| c.max_control_line),
        ("max_connections", |c| c.max_connections),
        ("max_subscriptions", |c| c.max_subscriptions),
    ];
    for (name, get) in sizes {
        let (a, b) = (get(old), get(new));
        changed(d, name, &a, &b, b.to_string());
    }
    changed(
        d,
        "ping_max",
        &old.ping_max,
        &new.ping_max,
        new.ping_max.to_string(),
    );
    let durations: [(&str, Getter<Duration>); 5] = [
        ("ping_interval", |c| c.ping_interval),
        ("write_deadline", |c| c.write_deadline),
        ("lame_duck_duration", |c| c.lame_duck_duration),
        ("lame_duck_grace_period", |c| c.lame_duck_grace_period),
        ("auth_timeout", |c| c.auth_timeout),
    ];
    for (name, get) in durations {
        let (a, b) = (get(old), get(new));
        changed(d, name, &a, &b, go_duration(b));
    }
}

/// A duration as Go prints it: `300ms`, `30s`, `2m0s`, `1h0m0s`, `1.5s`.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_secs(1) {
        let nanos = d.as_nanos();
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}µs", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let frac = d.subsec_nanos();
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let digits = format!("{frac:09}");
        format!("{s}.{}s", digits.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpListen, JetStreamConfig};

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_micros(5), "5µs"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want);
        }
    }

    #[test]
    fn reloadable_changes_are_listed_in_nats_wording() {
        let old = Config::default();
        let mut new = Config::default();
        new.logging.debug = true;
        new.logging.logtime = false;
        new.max_payload = 2000;
        new.ping_interval = Duration::from_secs(30);
        let d = diff(&old, &new);
        assert_eq!(
            d.changed,
            [
                "debug = true",
                "logtime = false",
                "max_payload = 2000",
                "ping_interval = 30s"
            ]
        );
        assert!(d.not_reloadable.is_empty());
    }

    /// As nats-server 2.15.1 logs a move from a token to a single user with a timeout.
    #[test]
    fn authorization_changes_are_listed_part_by_part() {
        let mut old = Config::default();
        old.authorization.token = Some("xyz".into());
        let mut new = Config::default();
        new.authorization.user = Some("u".into());
        new.authorization.password = Some("p".into());
        new.authorization.timeout = Some(Duration::from_secs(3));
        assert_eq!(
            diff(&old, &new).changed,
            [
                "authorization users",
                "accounts",
                "authorization username",
                "authorization password",
                "authorization token",
                "authorization timeout = 3",
            ]
        );
    }

    #[test]
    fn fixed_settings_are_reported_and_kept() {
        let old = Config {
            jetstream: Some(JetStreamConfig::default()),
            ..Config::default()
        };
        let mut new = old.clone();
        new.port = 4995;
        new.host = "127.0.0.2".into();
        new.http = Some(HttpListen {
            host: String::new(),
            port: 8222,
        });
        new.max_payload = 10;
        if let Some(js) = &mut new.jetstream {
            js.store_dir = "/elsewhere".into();
            js.max_file_store = 1024;
        }
        let d = diff(&old, &new);
        assert_eq!(
            d.not_reloadable,
            [
                "config reload not supported for Host: old=0.0.0.0, new=127.0.0.2",
                "config reload not supported for Port: old=4222, new=4995",
                "config reload not supported for HTTPPort: old=0, new=8222",
                "config reload not supported for jetstream storage directory",
                "config reload not supported for jetstream limits",
            ]
        );
        keep_fixed(&old, &mut new);
        let expected = Config {
            max_payload: 10,
            ..old.clone()
        };
        assert_eq!(new, expected);
    }
}
