//! The typed server configuration and how it is built.
//!
//! `Config` is data: built once from the config file and the command line (flags
//! win), validated up front, then shared read-only as `Arc<Config>`. Every
//! `Default` equals nats-server's default, so an empty config behaves like an
//! empty nats-server config. Nothing deeper in the server reads settings ad hoc.
//!
//! The pipeline, one module per step:
//! ```text
//! argv ──flags::normalize_args──> clap `Flags` ─────────────────┐
//! file ──conf::parse_file──> ConfMap ──Draft::from_map──> Draft ─┴─Flags::apply──> Draft::finish ──> (Config, warnings)
//! ```
//! `main` calls [`load()`], logs each [`Warning`] with `tracing::warn!`, and acts on the
//! [`Action`]: run, `-t` check, print version/help, or [`SignalRequest::send`]. On
//! SIGHUP it calls [`reload()`] with the kept [`Flags`]. A [`ConfigError`] prints as
//! `file:line:col: message` and carries its exit code.

pub mod cluster;
pub mod conf;
pub mod diff;
mod error;
pub mod flags;
mod leaf;
pub mod load;
pub mod operator;
pub mod signal;
pub mod units;
mod url;
mod websocket;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cluster::{ClusterConfig, RouteAuth, RouteUrl};
use rill_protocol::mapping::Mapping;

pub use diff::{ReloadDiff, diff, keep_fixed};
pub use error::{ConfigError, Warning, go_error};
pub use flags::Flags;
pub use leaf::{LeafAuth, LeafConfig, LeafUrl, LeafUser, RemoteLeaf};
pub use load::Draft;
pub use operator::{DirResolver, OperatorConfig, ResolverConfig};
pub use signal::SignalRequest;
pub use url::{LinkUrl, UrlKind};
pub use websocket::{DEFAULT_HANDSHAKE_TIMEOUT as WEBSOCKET_HANDSHAKE_TIMEOUT, WebsocketConfig};

/// Size of one mebibyte.
const MIB: usize = 1024 * 1024;

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Client listen host (`0.0.0.0` by default).
    pub host: String,
    /// Client port; 0 picks a random free port (`-p -1` on the command line).
    pub port: u16,
    /// Server name, reported in INFO; defaults to the server id.
    pub server_name: Option<String>,
    /// `server_tags`, lower-cased: what stream placement (`placement.tags`) matches.
    pub server_tags: Vec<String>,
    /// Address advertised to clients instead of the listen address.
    pub client_advertise: Option<String>,
    /// Largest message payload accepted (headers included).
    pub max_payload: usize,
    /// Outbound bytes buffered per client before it is a slow consumer.
    pub max_pending: usize,
    /// Longest protocol control line accepted.
    pub max_control_line: usize,
    /// Most concurrent client connections (`usize::MAX` when the config says 0 or less:
    /// unlimited, as in nats-server).
    pub max_connections: usize,
    /// Most subscriptions per connection; 0 is unlimited.
    pub max_subscriptions: usize,
    /// Interval between server PINGs.
    pub ping_interval: Duration,
    /// Unanswered PINGs before the connection is stale.
    pub ping_max: u32,
    /// How long a write to a client may block before it is a slow consumer.
    pub write_deadline: Duration,
    /// Lame-duck mode: time over which clients are closed.
    pub lame_duck_duration: Duration,
    /// Lame-duck mode: wait before the first client is closed.
    pub lame_duck_grace_period: Duration,
    /// How long a new client has to send CONNECT when authentication is required.
    pub auth_timeout: Duration,
    /// Logging options.
    pub logging: LogConfig,
    /// Where to write the pid file.
    pub pid_file: Option<PathBuf>,
    /// Directory for the `<exe>_<pid>.ports` file.
    pub ports_file_dir: Option<PathBuf>,
    /// HTTP monitoring listener.
    pub http: Option<HttpListen>,
    /// HTTPS monitoring listener (served with the `tls` settings).
    pub https: Option<HttpListen>,
    /// `http_console`: the web console at `/` of the monitoring port (on unless set false).
    pub http_console: bool,
    /// Single-user, token or multi-user authorization.
    pub authorization: Authorization,
    /// Named accounts with their users, exports and imports.
    pub accounts: Vec<AccountConfig>,
    /// `mappings {}` of the default account (`$G`), applied when its clients publish.
    pub mappings: Vec<Mapping>,
    /// User assumed by clients that send no credentials.
    pub no_auth_user: Option<String>,
    /// TLS for client connections.
    pub tls: Option<TlsConfig>,
    /// `allow_non_tls`: with `tls {}`, clients may connect with or without TLS on the one
    /// port (INFO says `tls_available` instead of `tls_required`).
    pub allow_non_tls: bool,
    /// JetStream; `None` when disabled.
    pub jetstream: Option<JetStreamConfig>,
    /// The MQTT listener (`mqtt {}`); `None` when not configured.
    pub mqtt: Option<MqttConfig>,
    /// Operator (JWT) mode; `None` without `operator`/`trusted_keys`.
    pub operator: Option<OperatorConfig>,
    /// The system account (`system_account`): a name, or a public key in operator mode.
    pub system_account: Option<String>,
    /// `no_system_account`: run without a system account.
    pub no_system_account: bool,
    /// The WebSocket listener; `None` when not configured.
    pub websocket: Option<WebsocketConfig>,
    /// Clustering (routes); `None` when this server is not a cluster member.
    pub cluster: Option<ClusterConfig>,
    /// Leaf nodes (`leafnodes {}`): the hub listener and the remotes this server dials.
    pub leafnodes: Option<LeafConfig>,
    /// The config file this was loaded from, for reload.
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 4222,
            server_name: None,
            server_tags: Vec::new(),
            client_advertise: None,
            max_payload: MIB,
            max_pending: 64 * MIB,
            max_control_line: 4096,
            max_connections: 64 * 1024,
            max_subscriptions: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(2),
            logging: LogConfig::default(),
            pid_file: None,
            ports_file_dir: None,
            http: None,
            https: None,
            http_console: true,
            authorization: Authorization::default(),
            accounts: Vec::new(),
            mappings: Vec::new(),
            no_auth_user: None,
            tls: None,
            allow_non_tls: false,
            jetstream: None,
            mqtt: None,
            operator: None,
            system_account: None,
            no_system_account: false,
            websocket: None,
            cluster: None,
            leafnodes: None,
            config_file: None,
        }
    }
}

/// Logging options (`-D`, `-V`, `-T`, `-l`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Debug messages (`-D`).
    pub debug: bool,
    /// Protocol trace (`-V`).
    pub trace: bool,
    /// Timestamps on log lines (`-T`, on by default).
    pub logtime: bool,
    /// Log to this file instead of stderr.
    pub log_file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            debug: false,
            trace: false,
            logtime: true,
            log_file: None,
        }
    }
}

/// An HTTP(S) monitoring listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpListen {
    /// Host to bind; defaults to the client host.
    pub host: String,
    /// Port; 0 picks a random free port.
    pub port: u16,
}

/// The `authorization {}` block and `--user/--pass/--auth`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authorization {
    /// Single user name.
    pub user: Option<String>,
    /// Single user password (plain or bcrypt).
    pub password: Option<String>,
    /// Token (plain or bcrypt).
    pub token: Option<String>,
    /// Multiple users.
    pub users: Vec<UserConfig>,
    /// Permissions applied to users that have none of their own.
    pub default_permissions: Option<Permissions>,
    /// Overrides `auth_timeout` when set.
    pub timeout: Option<Duration>,
    /// Delegates authentication to a service (`auth_callout {}`, nats-server 2.10).
    pub auth_callout: Option<AuthCallout>,
}

/// `authorization { auth_callout { issuer, auth_users, account, xkey, allowed_accounts } }`:
/// clients other than `auth_users` are authenticated by a service answering
/// `$SYS.REQ.USER.AUTH` in `account`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthCallout {
    /// The account public key that signs the service's responses and user JWTs.
    pub issuer: String,
    /// The account the requests are sent in (`$G` when not set).
    pub account: String,
    /// Configured users (names or nkeys) the service connects as; they skip the callout.
    pub auth_users: Vec<String>,
    /// The service's curve public key: requests are encrypted to it when set.
    pub xkey: Option<String>,
    /// When set, only clients that authenticated into these accounts (or into none) are
    /// handed to the service.
    pub allowed_accounts: Vec<String>,
}

impl Authorization {
    /// True when any form of authentication is configured.
    pub fn is_configured(&self) -> bool {
        self.user.is_some() || self.token.is_some() || !self.users.is_empty()
    }
}

/// One user in `users: [...]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserConfig {
    /// User name (absent for nkey users).
    pub user: Option<String>,
    /// Password, plain or bcrypt (`$2a$…`).
    pub password: Option<String>,
    /// Public nkey (`U…`).
    pub nkey: Option<String>,
    /// Per-user permissions.
    pub permissions: Option<Permissions>,
    /// The account the user belongs to (set when listed under `accounts`).
    pub account: Option<String>,
}

/// Publish and subscribe permissions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    /// Publish rules.
    pub publish: Option<PermissionRules>,
    /// Subscribe rules.
    pub subscribe: Option<PermissionRules>,
    /// Allow publishing to reply subjects of received requests.
    pub allow_responses: Option<ResponsePermission>,
}

/// Allow and deny lists of subjects (deny wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionRules {
    /// Subjects allowed; empty means everything not denied.
    pub allow: Vec<String>,
    /// Subjects denied.
    pub deny: Vec<String>,
}

/// `allow_responses: true` or `{ max, expires }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Responses allowed per request.
    pub max: usize,
    /// How long the permission lasts; zero is unlimited.
    pub expires: Duration,
}

/// One entry under `accounts {}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountConfig {
    /// Account name.
    pub name: String,
    /// Users of this account.
    pub users: Vec<UserConfig>,
    /// Stream and service exports.
    pub exports: Vec<ExportConfig>,
    /// Stream and service imports.
    pub imports: Vec<ImportConfig>,
    /// JetStream enabled for the account.
    pub jetstream: bool,
    /// Account JetStream limits, when `jetstream {}` is a map.
    pub jetstream_limits: Option<AccountJetStreamLimits>,
    /// Permissions for the account's users that have none of their own.
    pub default_permissions: Option<Permissions>,
    /// `mappings {}`: subject transforms applied when the account's clients publish.
    pub mappings: Vec<Mapping>,
    /// `msg_trace { dest, sampling }`: where sampled `traceparent` messages are traced.
    pub msg_trace: Option<MsgTraceConfig>,
}

/// `msg_trace { dest: subject, sampling: 1..100 }` of an account (nats-server 2.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgTraceConfig {
    /// The trace subject of messages traced through `traceparent`.
    pub dest: String,
    /// The percentage of sampled `traceparent` messages traced (100 by default).
    pub sampling: u8,
}

impl MsgTraceConfig {
    /// True when sampling picks this message.
    pub fn samples(&self) -> bool {
        self.sampling >= 100 || rand::random_range(1..=100u8) <= self.sampling
    }
}

/// `accounts { A { jetstream { max_mem, max_file, max_streams, … } } }`; -1 is unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountJetStreamLimits {
    /// Memory storage in bytes.
    pub max_memory: i64,
    /// File storage in bytes.
    pub max_store: i64,
    /// Number of streams.
    pub max_streams: i64,
    /// Number of consumers.
    pub max_consumers: i64,
    /// Largest consumer `max_ack_pending`.
    pub max_ack_pending: i64,
    /// Streams must set `max_bytes`.
    pub max_bytes_required: bool,
    /// Largest `max_bytes` of one memory stream (0 or -1: none).
    pub memory_max_stream_bytes: i64,
    /// Largest `max_bytes` of one file stream (0 or -1: none).
    pub store_max_stream_bytes: i64,
    /// The tiers of an account JWT's `tiered_limits` (`R1`, `R3`), as `$JS.API.INFO`
    /// lists them; empty for untiered limits. With tiers, the fields above are the `R1`
    /// tier's (what a stream of one replica is held to), and a stream of a replica count
    /// without a tier is refused (10120).
    pub tiers: std::collections::BTreeMap<String, AccountJetStreamLimits>,
}

impl Default for AccountJetStreamLimits {
    fn default() -> Self {
        Self {
            max_memory: -1,
            max_store: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            max_bytes_required: false,
            memory_max_stream_bytes: -1,
            store_max_stream_bytes: -1,
            tiers: std::collections::BTreeMap::new(),
        }
    }
}

/// An export: `{ stream: subj }` or `{ service: subj }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// Stream or service.
    pub kind: ExportKind,
    /// Exported subject (may hold wildcards).
    pub subject: String,
    /// Accounts allowed to import; empty is public.
    pub accounts: Vec<String>,
    /// A service export lets message traces cross into it (`allow_trace`).
    pub allow_trace: bool,
}

/// What an export or import carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Messages flow from exporter to importer.
    Stream,
    /// Requests flow to the exporter, replies back.
    Service,
}

/// An import: `{ stream: { account, subject }, prefix/to }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConfig {
    /// Stream or service.
    pub kind: ExportKind,
    /// The exporting account.
    pub account: String,
    /// The exported subject.
    pub subject: String,
    /// Local subject it is mapped to (`to`; wildcards are filled from the source).
    pub to: Option<String>,
    /// Prefix put in front of the imported subject (`prefix`).
    pub prefix: Option<String>,
    /// A stream import lets message traces cross into the importer (`allow_trace`).
    pub allow_trace: bool,
    /// A service import tells the exporter the requester's whole client info in
    /// `Nats-Request-Info`, not only its account and round trip (`share`).
    pub share: bool,
}

impl ImportConfig {
    /// The subject (pattern) the import appears under in the importing account,
    /// when it is remapped: `prefix.<subject>` or `to`.
    pub fn local_subject(&self) -> Option<String> {
        match (&self.prefix, &self.to) {
            (Some(prefix), _) => Some(format!("{prefix}.{}", self.subject)),
            (None, to) => to.clone(),
        }
    }
}

/// The `mqtt {}` block, with nats-server's keys and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// Listen host (`0.0.0.0` by default, whatever the client host is, as nats-server).
    pub host: String,
    /// Listen port; 0 picks a random free port (`port: -1`).
    pub port: u16,
    /// TLS for MQTT connections.
    pub tls: Option<TlsConfig>,
    /// Credentials only MQTT clients use (`user`/`password` or `token`, `timeout`);
    /// when none is set, MQTT clients authenticate like NATS clients.
    pub authorization: Authorization,
    /// The user an MQTT client without credentials becomes (overrides the top-level one).
    pub no_auth_user: Option<String>,
    /// How long a QoS 1 delivery waits for its PUBACK before it is sent again; `None`
    /// (also for `0`) is nats-server's default, 30 s (see [`MqttConfig::ack_wait`]).
    pub ack_wait: Option<Duration>,
    /// QoS 1 deliveries in flight per subscription (at most 65535); `None` (also for `0`)
    /// is nats-server's default, 1024 (see [`MqttConfig::max_ack_pending`]).
    pub max_ack_pending: Option<u16>,
    /// JetStream domain whose API stores the MQTT state.
    pub js_domain: Option<String>,
    /// Replicas of the MQTT streams (accepted; a single server stores one copy).
    pub stream_replicas: i64,
    /// Replicas of the MQTT consumers (accepted; a single server stores one copy).
    pub consumer_replicas: i64,
    /// Keep the QoS 1 consumers in memory.
    pub consumer_memory_storage: bool,
    /// Remove durable QoS 1 consumers of sessions gone for this long (zero: never).
    pub consumer_inactive_threshold: Duration,
    /// How long an internal JetStream request may take.
    pub js_api_timeout: Duration,
    /// Refuse QoS 2 publishes (close the connection) instead of accepting them.
    pub reject_qos2_publish: bool,
    /// Grant QoS 1 to QoS 2 subscriptions.
    pub downgrade_qos2_subscribe: bool,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 1883,
            tls: None,
            authorization: Authorization::default(),
            no_auth_user: None,
            ack_wait: None,
            max_ack_pending: None,
            js_domain: None,
            stream_replicas: 0,
            consumer_replicas: 0,
            consumer_memory_storage: false,
            consumer_inactive_threshold: Duration::ZERO,
            js_api_timeout: Duration::from_secs(5),
            reject_qos2_publish: false,
            downgrade_qos2_subscribe: false,
        }
    }
}

impl MqttConfig {
    /// `ack_wait`, or nats-server's default (30 s).
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait.unwrap_or(Duration::from_secs(30))
    }

    /// `max_ack_pending`, or nats-server's default (1024).
    pub fn max_ack_pending(&self) -> u16 {
        self.max_ack_pending.unwrap_or(1024)
    }
}

/// The `tls {}` block and `--tls*` flags.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
    /// CA bundle for client certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates.
    pub verify: bool,
    /// Map the client certificate's identity to a user.
    pub verify_and_map: bool,
    /// Handshake timeout.
    pub timeout: Duration,
    /// TLS before INFO.
    pub handshake_first: bool,
    /// With `handshake_first`: wait this long for the client's TLS hello, then fall back
    /// to INFO first (`handshake_first: auto` or a duration). `None` is strict TLS-first.
    pub handshake_first_fallback: Option<Duration>,
    /// Lowest accepted TLS version, "1.2" or "1.3".
    pub min_version: Option<String>,
    /// `pinned_certs`: lowercase hex SHA-256 of the client certificates' public keys
    /// (DER SubjectPublicKeyInfo); when set, only these are accepted.
    pub pinned_certs: Vec<String>,
}

/// The `jetstream {}` block and `-js`/`-sd`.
#[derive(Debug, Clone, PartialEq)]
pub struct JetStreamConfig {
    /// Root directory of the file store.
    pub store_dir: PathBuf,
    /// Memory storage limit in bytes; -1 unlimited.
    pub max_memory_store: i64,
    /// File storage limit in bytes; -1 unlimited.
    pub max_file_store: i64,
    /// When appended data is flushed to disk.
    pub sync: SyncInterval,
    /// JetStream domain.
    pub domain: Option<String>,
    /// Strict API request checking (nats-server's default since 2.11).
    pub strict: bool,
    /// Server-wide limits from `jetstream { limits {} }`.
    pub limits: JetStreamLimits,
    /// `index_cache`: bytes of block index entries a file stream keeps in memory at
    /// most (rill's own setting; `None` is the store's default, 4 MiB per stream).
    pub index_cache: Option<usize>,
}

/// `jetstream { limits { … } }`: caps applied to every stream and consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JetStreamLimits {
    /// Largest pull request batch.
    pub max_request_batch: Option<usize>,
    /// Largest consumer `max_ack_pending`.
    pub max_ack_pending: Option<usize>,
    /// Largest stream `duplicate_window`.
    pub duplicate_window: Option<Duration>,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            store_dir: std::env::temp_dir().join("nats").join("jetstream"),
            max_memory_store: -1,
            max_file_store: -1,
            sync: SyncInterval::Always,
            domain: None,
            strict: true,
            limits: JetStreamLimits::default(),
            index_cache: None,
        }
    }
}

/// `sync_interval`: rill's durable default is `Always` (fsync before the ack, with group
/// commit); a duration selects nats-server's lazy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncInterval {
    /// Acknowledge only what is on disk.
    Always,
    /// Flush on this interval; acknowledged data may be lost on power loss.
    Every(Duration),
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the server.
    Run,
    /// `-t`: the configuration is valid; print [`check_message`] and exit 0.
    CheckConfig,
    /// `-v`: print [`version_line`] and exit 0.
    PrintVersion,
    /// `-h`: print [`flags::USAGE`] and exit 0.
    PrintHelp,
    /// `--signal`: call [`SignalRequest::send`] and exit.
    Signal(SignalRequest),
}

/// The result of [`load()`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration (defaults for the print/signal actions).
    pub config: Config,
    /// Accepted-but-ignored settings; log each with `tracing::warn!`.
    pub warnings: Vec<Warning>,
    /// What to do.
    pub action: Action,
    /// The parsed command line, kept for [`reload`].
    pub flags: Flags,
}

/// Parses the command line (without the program name), reads the config file it names,
/// applies the flags over it and validates the result.
///
/// # Errors
/// A bad command line ([`ConfigError::exit_code`] 2), or a config file that cannot be
/// read, parsed or validated (exit code 1). The text is ready to print.
pub fn load(args: impl IntoIterator<Item = OsString>) -> Result<Loaded, ConfigError> {
    let flags = Flags::parse_args(args)?;
    let early = if flags.help == Some(true) || flags.help_tls == Some(true) {
        Some(Action::PrintHelp)
    } else if flags.version == Some(true) {
        Some(Action::PrintVersion)
    } else if let Some(spec) = &flags.signal {
        Some(Action::Signal(SignalRequest::parse(spec)?))
    } else {
        None
    };
    if let Some(action) = early {
        return Ok(Loaded {
            config: Config::default(),
            warnings: Vec::new(),
            action,
            flags,
        });
    }
    let (config, warnings) = reload(flags.config.as_deref(), &flags)?;
    let action = if flags.test_config == Some(true) {
        Action::CheckConfig
    } else {
        Action::Run
    };
    Ok(Loaded {
        config,
        warnings,
        action,
        flags,
    })
}

/// Builds the configuration from `path` (if any) and `flags`: used at start-up and again
/// on SIGHUP, with the original flags, so flags keep winning after a reload.
///
/// # Errors
/// As [`load()`].
pub fn reload(path: Option<&Path>, flags: &Flags) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut draft = match path {
        Some(p) => Draft::from_file(p)?,
        None => Draft::default(),
    };
    flags.apply(&mut draft)?;
    draft.finish()
}

/// Checks what only matters when the server starts (the JetStream store directory is
/// not a file). An error is fatal: log it with [`crate::logging::fatal`] and exit 1.
///
/// # Errors
/// The message, worded as nats-server's.
pub fn startup_check(config: &Config) -> Result<(), String> {
    load::validate::check_store_dir(config)
}

/// `rill-server: v<version>`, the `-v` output (nats-server prints `nats-server: v2.x.y`).
pub fn version_line() -> String {
    format!("rill-server: v{}", env!("CARGO_PKG_VERSION"))
}

/// The `-t` success line, as nats-server words it.
pub fn check_message(config: &Config) -> String {
    match &config.config_file {
        Some(f) => format!("rill-server: configuration file {} is valid", f.display()),
        None => "rill-server: configuration is valid".to_string(),
    }
}
