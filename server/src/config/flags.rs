//! The command line, spelled as nats-server's.
//!
//! nats-server parses flags with Go's `flag` package: `-flag` and `--flag` are the same,
//! values come as `-flag value` or `-flag=value`, booleans as `-flag` or `-flag=false`,
//! and several "short" names have more than one letter (`-js`, `-sd`, `-ms`, `-DV`).
//! [`normalize_args`] rewrites such a command line into one long form (`--name=value`,
//! `--name` for booleans) that the clap derive [`Flags`] reads; a flag given twice takes
//! its last value, as with Go's `flag`. Flags override the config file; [`Flags::apply`] does that on a `Draft`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

use super::error::{ConfigError, Warning};
use super::load::Draft;
use super::{TlsConfig, load::tls_default_timeout};

/// How a Go flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// `-flag value` or `-flag=value`.
    Value,
    /// `-flag` or `-flag=true|false`.
    Bool,
}

/// Every nats-server v2.15 flag name (short and long) → the long name clap knows.
const NAMES: &[(&[&str], &str, Takes)] = &[
    (&["a", "addr", "net"], "addr", Takes::Value),
    (&["p", "port"], "port", Takes::Value),
    (&["n", "name", "server_name"], "server_name", Takes::Value),
    (&["P", "pid"], "pid", Takes::Value),
    (&["m", "http_port"], "http_port", Takes::Value),
    (&["ms", "https_port"], "https_port", Takes::Value),
    (&["c", "config"], "config", Takes::Value),
    (&["t"], "test_config", Takes::Bool),
    (&["sl", "signal"], "signal", Takes::Value),
    (&["client_advertise"], "client_advertise", Takes::Value),
    (&["ports_file_dir"], "ports_file_dir", Takes::Value),
    (&["l", "log"], "log", Takes::Value),
    (&["T", "logtime"], "logtime", Takes::Bool),
    (&["logtime_utc"], "logtime_utc", Takes::Bool),
    (&["s", "syslog"], "syslog", Takes::Bool),
    (&["r", "remote_syslog"], "remote_syslog", Takes::Value),
    (&["D", "debug"], "debug", Takes::Bool),
    (&["V", "trace"], "trace", Takes::Bool),
    (&["VV"], "trace_verbose", Takes::Bool),
    (&["DV"], "debug_trace", Takes::Bool),
    (&["DVV"], "debug_trace_verbose", Takes::Bool),
    (&["log_size_limit"], "log_size_limit", Takes::Value),
    (&["max_traced_msg_len"], "max_traced_msg_len", Takes::Value),
    (&["js", "jetstream"], "jetstream", Takes::Bool),
    (&["sd", "store_dir"], "store_dir", Takes::Value),
    (&["user"], "user", Takes::Value),
    (&["pass"], "pass", Takes::Value),
    (&["auth"], "auth", Takes::Value),
    (&["tls"], "tls", Takes::Bool),
    (&["tlscert"], "tlscert", Takes::Value),
    (&["tlskey"], "tlskey", Takes::Value),
    (&["tlsverify"], "tlsverify", Takes::Bool),
    (&["tlscacert"], "tlscacert", Takes::Value),
    (&["routes"], "routes", Takes::Value),
    (&["cluster"], "cluster", Takes::Value),
    (&["cluster_name"], "cluster_name", Takes::Value),
    (&["no_advertise"], "no_advertise", Takes::Bool),
    (&["cluster_advertise"], "cluster_advertise", Takes::Value),
    (&["connect_retries"], "connect_retries", Takes::Value),
    (&["cluster_listen"], "cluster_listen", Takes::Value),
    (&["profile"], "profile", Takes::Value),
    (&["h", "help"], "help", Takes::Bool),
    (&["v", "version"], "version", Takes::Bool),
    (&["help_tls"], "help_tls", Takes::Bool),
];

fn lookup(name: &str) -> Option<(&'static str, Takes)> {
    NAMES
        .iter()
        .find(|(names, _, _)| names.contains(&name))
        .map(|(_, long, takes)| (*long, *takes))
}

/// Rewrites a Go-style command line (without the program name) into `--long=value` /
/// `--long` form: `-js` → `--jetstream`, `-sd=/x` and `-sd /x` → `--store_dir=/x`,
/// `-p -1` → `--port=-1`, `-DV` → `--debug_trace`, `-T=false` → `--logtime=false`.
/// Unknown flags are passed through unchanged for clap to reject; everything after `--`
/// is left alone.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let Some(stripped) = text.strip_prefix("--").or_else(|| text.strip_prefix('-')) else {
            out.push(arg);
            continue;
        };
        let (name, value) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (stripped, None),
        };
        let Some((long, takes)) = lookup(name) else {
            out.push(arg);
            continue;
        };
        match (takes, value) {
            (_, Some(v)) => out.push(format!("--{long}={v}").into()),
            (Takes::Bool, None) => out.push(format!("--{long}").into()),
            (Takes::Value, None) => match args.next() {
                Some(v) => {
                    let mut joined = OsString::from(format!("--{long}="));
                    joined.push(v);
                    out.push(joined);
                }
                None => out.push(format!("--{long}").into()),
            },
        }
    }
    out
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {s:?}")),
    }
}

/// The command line after [`normalize_args`]. `None` means "not given", so the config
/// file's value stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "rill-server",
    rename_all = "snake_case",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Flags {
    /// `-a`: client listen host.
    #[arg(long)]
    pub addr: Option<String>,
    /// `-p`: client port (`-1` random).
    #[arg(long, allow_negative_numbers = true)]
    pub port: Option<i64>,
    /// `-n`: server name.
    #[arg(long)]
    pub server_name: Option<String>,
    /// `-P`: pid file.
    #[arg(long)]
    pub pid: Option<PathBuf>,
    /// `-m`: HTTP monitoring port.
    #[arg(long, allow_negative_numbers = true)]
    pub http_port: Option<i64>,
    /// `-ms`: HTTPS monitoring port.
    #[arg(long, allow_negative_numbers = true)]
    pub https_port: Option<i64>,
    /// `-c`: config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `-t`: check the configuration and exit.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub test_config: Option<bool>,
    /// `-sl`: signal a running server, `<cmd>[=<pid|pidfile>]`.
    #[arg(long)]
    pub signal: Option<String>,
    /// Client URL to advertise.
    #[arg(long)]
    pub client_advertise: Option<String>,
    /// Directory for the ports file.
    #[arg(long)]
    pub ports_file_dir: Option<PathBuf>,
    /// `-l`: log file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// `-T`: timestamps on log lines.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub logtime: Option<bool>,
    /// UTC timestamps: rill always logs in UTC, so this is accepted as is.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub logtime_utc: Option<bool>,
    /// `-s`: syslog (not supported).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub syslog: Option<bool>,
    /// `-r`: remote syslog (not supported).
    #[arg(long)]
    pub remote_syslog: Option<String>,
    /// `-D`: debug logging.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub debug: Option<bool>,
    /// `-V`: protocol trace.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub trace: Option<bool>,
    /// `-VV`: verbose trace.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub trace_verbose: Option<bool>,
    /// `-DV`: debug and trace.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub debug_trace: Option<bool>,
    /// `-DVV`: debug and verbose trace.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub debug_trace_verbose: Option<bool>,
    /// Log rotation size (not supported).
    #[arg(long)]
    pub log_size_limit: Option<String>,
    /// Trace truncation (not supported).
    #[arg(long)]
    pub max_traced_msg_len: Option<String>,
    /// `-js`: enable JetStream.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub jetstream: Option<bool>,
    /// `-sd`: JetStream store directory.
    #[arg(long)]
    pub store_dir: Option<PathBuf>,
    /// Single user name.
    #[arg(long)]
    pub user: Option<String>,
    /// Single user password.
    #[arg(long)]
    pub pass: Option<String>,
    /// Authorization token.
    #[arg(long)]
    pub auth: Option<String>,
    /// Enable TLS.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub tls: Option<bool>,
    /// Server certificate.
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Server private key.
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// Enable TLS and verify client certificates.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub tlsverify: Option<bool>,
    /// CA for client certificates.
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Routes to dial (`url,url`).
    #[arg(long)]
    pub routes: Option<String>,
    /// Cluster listen URL (`nats://[user:pass@]host:port`).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Cluster name.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Do not advertise other servers' client URLs to clients.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub no_advertise: Option<bool>,
    /// Route URL advertised to peers.
    #[arg(long)]
    pub cluster_advertise: Option<String>,
    /// Attempts for routes learned by gossip.
    #[arg(long)]
    pub connect_retries: Option<String>,
    /// Same as `--cluster`.
    #[arg(long)]
    pub cluster_listen: Option<String>,
    /// Profiling port (not supported).
    #[arg(long)]
    pub profile: Option<String>,
    /// `-h`: print the usage.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub help: Option<bool>,
    /// `-v`: print the version.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub version: Option<bool>,
    /// Print TLS help.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub help_tls: Option<bool>,
}

impl Flags {
    /// Parses a command line (without the program name), Go spelling accepted.
    ///
    /// # Errors
    /// `ConfigError::Flags` with clap's message for an unknown flag or a bad value.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Self, ConfigError> {
        Flags::try_parse_from(normalize_args(args)).map_err(|e| ConfigError::Flags(flag_error(&e)))
    }

    /// Lays the flags over the config file's settings.
    ///
    /// # Errors
    /// Incomplete TLS settings.
    pub fn apply(&self, d: &mut Draft) -> Result<(), ConfigError> {
        self.apply_server(d);
        self.apply_logging(d);
        self.apply_auth(d);
        self.apply_tls(d)?;
        let cluster = super::load::cluster::ClusterFlags {
            cluster: self.cluster.as_ref(),
            cluster_listen: self.cluster_listen.as_ref(),
            routes: self.routes.as_ref(),
            cluster_name: self.cluster_name.as_ref(),
            cluster_advertise: self.cluster_advertise.as_ref(),
            no_advertise: self.no_advertise,
            connect_retries: self.connect_retries.as_ref(),
        };
        super::load::cluster::apply_flags(&cluster, d)?;
        self.warn_unsupported(d);
        Ok(())
    }

    fn apply_server(&self, d: &mut Draft) {
        let c = &mut d.config;
        set(&mut c.host, self.addr.clone());
        if self.port.is_some() {
            d.port = self.port;
        }
        set_opt(&mut c.server_name, &self.server_name);
        set_opt(&mut c.pid_file, &self.pid);
        set_opt(&mut c.client_advertise, &self.client_advertise);
        set_opt(&mut c.ports_file_dir, &self.ports_file_dir);
        if let Some(port) = self.http_port {
            d.http = Some((d.http.take().and_then(|(h, _)| h), port));
        }
        if let Some(port) = self.https_port {
            d.https = Some((d.https.take().and_then(|(h, _)| h), port));
        }
        if self.jetstream.is_some() {
            d.jetstream = self.jetstream;
        }
        if self.store_dir.is_some() {
            d.store_dir = self.store_dir.clone();
        }
        self.forget_overridden_origins(d);
    }

    /// Errors about a setting a flag overrode must not point into the config file.
    fn forget_overridden_origins(&self, d: &mut Draft) {
        let overridden = [
            ("host", self.addr.is_some()),
            ("port", self.port.is_some()),
            ("server_name", self.server_name.is_some()),
            ("http", self.http_port.is_some()),
            ("https", self.https_port.is_some()),
            ("store_dir", self.store_dir.is_some()),
        ];
        for (setting, given) in overridden {
            if given {
                d.origins.remove(setting);
            }
        }
    }

    fn apply_logging(&self, d: &mut Draft) {
        let l = &mut d.config.logging;
        set_opt(&mut l.log_file, &self.log);
        set(&mut l.logtime, self.logtime);
        set(&mut l.debug, self.debug);
        set(&mut l.trace, self.trace.or(self.trace_verbose));
        for both in [self.debug_trace, self.debug_trace_verbose]
            .into_iter()
            .flatten()
        {
            l.debug = both;
            l.trace = both;
        }
    }

    fn apply_auth(&self, d: &mut Draft) {
        let a = &mut d.config.authorization;
        set_opt(&mut a.user, &self.user);
        set_opt(&mut a.password, &self.pass);
        set_opt(&mut a.token, &self.auth);
    }

    /// Any TLS flag rebuilds the TLS settings from the flags over the file's `tls {}`.
    fn apply_tls(&self, d: &mut Draft) -> Result<(), ConfigError> {
        let given = self.tls.is_some()
            || self.tlsverify.is_some()
            || self.tlscert.is_some()
            || self.tlskey.is_some()
            || self.tlscacert.is_some();
        if !given {
            return Ok(());
        }
        let verify = self.tlsverify.unwrap_or(false);
        let on = self.tls.unwrap_or(false) || verify || d.config.tls.is_some();
        if !on {
            d.warnings.push(Warning::flag(
                "TLS certificate flags given without --tls or --tlsverify: TLS stays off",
            ));
            return Ok(());
        }
        let old = d.config.tls.take();
        let cert = self
            .tlscert
            .clone()
            .or_else(|| old.as_ref().map(|t| t.cert_file.clone()));
        let key = self
            .tlskey
            .clone()
            .or_else(|| old.as_ref().map(|t| t.key_file.clone()));
        let (Some(cert_file), Some(key_file)) = (cert, key) else {
            return Err(ConfigError::Validation(
                "TLS Server certificate must be present and valid (--tlscert and --tlskey)".into(),
            ));
        };
        let mut tls = old.unwrap_or(TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            ca_file: None,
            verify: false,
            verify_and_map: false,
            timeout: tls_default_timeout(),
            handshake_first: false,
            handshake_first_fallback: None,
            min_version: None,
            pinned_certs: Vec::new(),
        });
        tls.cert_file = cert_file;
        tls.key_file = key_file;
        set_opt(&mut tls.ca_file, &self.tlscacert);
        tls.verify |= verify;
        d.config.tls = Some(tls);
        d.origins.remove("tls");
        Ok(())
    }

    fn warn_unsupported(&self, d: &mut Draft) {
        let ignored = [
            ("--syslog", self.syslog == Some(true)),
            ("--remote_syslog", self.remote_syslog.is_some()),
            ("--log_size_limit", self.log_size_limit.is_some()),
            ("--max_traced_msg_len", self.max_traced_msg_len.is_some()),
            ("--profile", self.profile.is_some()),
        ];
        for (flag, given) in ignored {
            if given {
                d.warnings.push(Warning::flag(format!(
                    "{flag} is not supported by rill yet and is ignored"
                )));
            }
        }
    }
}

/// One line saying what is wrong, nats-server style, plus where to find the options
/// (clap's own tips would suggest unrelated flags, its usage line is not ours).
fn flag_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ErrorKind};
    let what = match e.kind() {
        ErrorKind::UnknownArgument => match e.get(ContextKind::InvalidArg) {
            Some(arg) if arg.to_string().starts_with('-') => {
                format!("flag provided but not defined: {arg}")
            }
            Some(arg) => format!("unexpected argument '{arg}': rill-server takes only flags"),
            None => first_line(e),
        },
        _ => first_line(e),
    };
    format!("{what}\nrun 'rill-server --help' for the options")
}

fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_opt<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        slot.clone_from(value);
    }
}

/// The usage text for `-h`/`--help`, in nats-server's layout.
pub const USAGE: &str = "\
Usage: rill-server [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222, -1 for a random port)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to rill-server process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_listen <url>       Cluster url from which members can solicit routes

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Flags {
        Flags::parse_args(args.iter().map(OsString::from)).expect("flags")
    }

    /// Scripts append flags to a command line they were given; Go's `flag` keeps the last.
    #[test]
    fn a_flag_given_twice_takes_its_last_value() {
        let flags = parse(&[
            "-a",
            "127.0.0.1",
            "-p",
            "1",
            "--addr=0.0.0.0",
            "-p",
            "-1",
            "-js",
            "-js",
        ]);
        assert_eq!(flags.addr.as_deref(), Some("0.0.0.0"));
        assert_eq!(flags.port, Some(-1));
    }
}
