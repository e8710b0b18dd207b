//! Accounts: isolated subject spaces, each with its own routing table, and the exports and
//! imports that connect them.
//!
//! Every client belongs to exactly one account; messages never cross accounts except
//! through an import of a matching export. [`Accounts`] is the table of all accounts.
//! Imports are wired by [`Accounts::wire`] as internal
//! subscriptions (owner id 0), at start and again on every reload:
//! - a **stream** import subscribes in the exporting account and republishes each message
//!   into the importing account under the mapped subject;
//! - a **service** import subscribes in the importing account on the local subject and
//!   republishes the request into the exporter with a fresh `_R_.` reply subject, whose
//!   one-shot subscription carries the response back to the requester's own reply subject
//!   (so the exporter never sees the importer's inboxes). Unanswered response routes expire
//!   after two minutes, nats-server's default response threshold. Each request carries a
//!   `Nats-Request-Info` header saying who asked (see [`Requesters`]).
//!
//! Imports come from two places, wired apart: the config's `accounts {}` ([`Accounts::wire`],
//! at start and reload) and account JWTs in operator mode ([`Accounts::wire_jwt`], when an
//! account is first used and after claim updates); neither touches the other's.
//! A service export answers once per request (`Singleton`, the default) or any number of
//! times until its response threshold passes (`Stream`/`Chunked` response types of JWT
//! exports), see [`Responses`].
//!
//! On reload (checked against nats-server 2.15.1) an added import starts carrying messages
//! to the running subscribers of the importing account at once, and a removed import (or
//! one whose export went away) stops at once; imports that did not change stay wired, so
//! nothing in flight through them is lost. Each account keeps the imports it has wired.
//!
//! Subject mapping: `to` with wildcards maps token by token (`a.*` → `b.*`); without
//! wildcards it is a prefix for a wildcard import (`a.>` with `from_a` → `from_a.a.>`) and
//! the whole new subject for a literal one.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rill_protocol::headers::HeaderMap;
use rill_protocol::subject;
use tracing::warn;

use crate::config::{Config, ExportConfig, ExportKind, ImportConfig, MsgTraceConfig};
use crate::locks;
use crate::router::{
    ByteString, Delivery, Msg, Origin, RemoteFactory, Router, Subscriber, Subscription,
};
use crate::shared::GLOBAL_ACCOUNT;

/// How long a service response route waits for its response, by default.
const RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

/// The header a request crossing a service import gets, saying who asked.
pub const REQUEST_INFO: &str = "Nats-Request-Info";

/// Deepest chain of cross-account forwards (guards against import cycles).
const MAX_HOPS: u32 = 8;

thread_local! {
    static HOPS: Cell<u32> = const { Cell::new(0) };
}

/// One account.
#[derive(Debug)]
pub struct Account {
    /// Account name (`$G` for the default account).
    pub name: String,
    /// The account's routing table.
    pub router: Router,
    /// The imports wired into this account, changed only by [`Accounts::wire`] (start and
    /// reload).
    imports: Mutex<Vec<WiredImport>>,
    /// `msg_trace {}`: where sampled `traceparent` messages are traced.
    msg_trace: RwLock<Option<MsgTraceConfig>>,
}

/// How a service export's responses travel back to the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responses {
    /// Several responses per request (`Stream`/`Chunked`), not one (`Singleton`).
    pub stream: bool,
    /// How long a request's response route stays open.
    pub threshold: Duration,
}

impl Default for Responses {
    fn default() -> Self {
        Self {
            stream: false,
            threshold: RESPONSE_THRESHOLD,
        }
    }
}

/// An import to wire: what it carries and how a service's responses come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSpec {
    /// The exporter, subjects and kind.
    pub config: ImportConfig,
    /// Response rules of the service export (ignored for streams).
    pub responses: Responses,
    /// Message traces cross it: the import says `allow_trace` (streams), the export
    /// does (services).
    pub allow_trace: bool,
}

impl From<&ImportConfig> for ImportSpec {
    fn from(config: &ImportConfig) -> Self {
        Self {
            config: config.clone(),
            responses: Responses::default(),
            allow_trace: config.allow_trace && config.kind == ExportKind::Stream,
        }
    }
}

/// An import as wired: the configuration it came from and the internal subscription that
/// carries it.
#[derive(Debug)]
struct WiredImport {
    spec: ImportSpec,
    /// Wired from an account JWT (else from the config).
    from_jwt: bool,
    /// The account whose router holds `sub`: the exporter for a stream import, the
    /// importer itself for a service import (weak, so an account never owns itself).
    holder: Weak<Account>,
    sub: Arc<Subscription>,
    /// A service import's forwarder, whose unanswered response routes go with it.
    service: Option<Arc<ServiceForward>>,
}

impl WiredImport {
    /// Takes the import out of the routers.
    fn unwire(&self) {
        if let Some(holder) = self.holder.upgrade() {
            holder.router.unsubscribe(&self.sub);
        }
        if let Some(service) = &self.service {
            service.drop_routes();
        }
    }
}

impl Account {
    /// An empty account.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            router: Router::new(),
            imports: Mutex::new(Vec::new()),
            msg_trace: RwLock::new(None),
        }
    }

    /// The account's `msg_trace {}` setting, if any.
    pub fn msg_trace(&self) -> Option<MsgTraceConfig> {
        locks::read(&self.msg_trace).clone()
    }

    /// True when one of this account's service imports takes requests on the literal
    /// `subject` (so a local default answer, like "JetStream not enabled", stays quiet).
    pub fn imports_service(&self, subject: &str) -> bool {
        let imports = locks::lock(&self.imports);
        imports
            .iter()
            .any(|w| w.service.is_some() && subject::matches(w.sub.subject_str(), subject))
    }

    /// Publishes an internal message (owner 0) into this account, counting the hop;
    /// `imported` for a stream import's copy, which goes to no route (see
    /// [`Origin::Import`]). A push delivery (`routed_by`) reaches the subscribers
    /// of its deliver subject, as in the exporting account.
    fn forward(&self, msg: &Msg<'_>, imported: bool) -> Delivery {
        let hops = HOPS.with(|h| h.get());
        if hops >= MAX_HOPS {
            return Delivery::Dropped;
        }
        HOPS.with(|h| h.set(hops + 1));
        if let Some(route) = msg.routed_by {
            let origin = if imported {
                Origin::Import
            } else {
                Origin::Local
            };
            let n = self.router.deliver_routed(origin, route, msg);
            HOPS.with(|h| h.set(hops));
            return if n == 0 {
                Delivery::Dropped
            } else {
                Delivery::Queued
            };
        }
        let fanout = if imported {
            self.router.publish_from(Origin::Import, msg, None)
        } else {
            self.router.publish(0, true, msg)
        };
        HOPS.with(|h| h.set(hops));
        match (fanout.delivered, fanout.backlogged) {
            (0, _) => Delivery::Dropped,
            (_, Some(_)) => Delivery::Pressure,
            _ => Delivery::Queued,
        }
    }
}

/// Who sends the requests that cross service imports, as nats-server 2.15.1 tells the
/// exporter in a `Nats-Request-Info` header (JSON, replacing any the requester set):
/// `{"acc":<requester's account>,"rtt":<its round trip, ns>}`, or with `share: true` on
/// the import the requester's whole client info (start, host, id, acc, user, name, lang,
/// ver, rtt, server, kind, client_type). The server's client table answers.
pub trait Requesters: Send + Sync + std::fmt::Debug {
    /// The header's value for the local connection whose owner id is `publisher`;
    /// `None` for internal publishers and messages from other servers.
    fn request_info(&self, publisher: u64, share: bool) -> Option<String>;
}

/// Where the service forwarders find the [`Requesters`], set once when the server starts.
type RequestersCell = Arc<OnceLock<Arc<dyn Requesters>>>;

/// The account table: every account by name, the default account (`$G`) always among them.
/// Accounts are created on first use (a configured account at start or reload, or an
/// account a user joins) and never removed while the server runs.
#[derive(Debug)]
pub struct Accounts {
    global: Arc<Account>,
    by_name: RwLock<HashMap<String, Arc<Account>>>,
    /// Links to other servers, attached to each account's router (see [`Accounts::link`]).
    remotes: RwLock<Vec<Arc<dyn RemoteFactory>>>,
    /// Run on each account as it is created (see [`Accounts::each_account`]).
    hooks: RwLock<Vec<AccountHook>>,
    /// Who sends requests, for the service imports' `Nats-Request-Info`.
    requesters: RequestersCell,
}

/// Something every account gets when it is created, such as the system account's
/// services each account imports ([`Accounts::each_account`]).
#[derive(Clone)]
pub struct AccountHook(Arc<HookFn>);

type HookFn = dyn Fn(&Arc<Account>) + Send + Sync;

impl AccountHook {
    /// A hook that runs `f` on each account.
    pub fn new(f: impl Fn(&Arc<Account>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for AccountHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountHook")
    }
}

impl Default for Accounts {
    fn default() -> Self {
        let global = Arc::new(Account::new(GLOBAL_ACCOUNT));
        let by_name = HashMap::from([(GLOBAL_ACCOUNT.to_string(), Arc::clone(&global))]);
        Self {
            global,
            by_name: RwLock::new(by_name),
            remotes: RwLock::new(Vec::new()),
            hooks: RwLock::new(Vec::new()),
            requesters: RequestersCell::default(),
        }
    }
}

impl Accounts {
    /// The default account (`$G`).
    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    /// The account called `name`, created on first use.
    pub fn get(&self, name: &str) -> Arc<Account> {
        if let Some(acc) = crate::locks::read(&self.by_name).get(name) {
            return Arc::clone(acc);
        }
        let mut by_name = crate::locks::write(&self.by_name);
        let mut created = None;
        let acc = Arc::clone(by_name.entry(name.to_string()).or_insert_with(|| {
            let acc = Arc::new(Account::new(name));
            created = Some(Arc::clone(&acc));
            acc
        }));
        drop(by_name);
        if let Some(acc) = created {
            for remotes in crate::locks::read(&self.remotes).iter() {
                acc.router.attach(remotes.remote_for(&acc.name));
            }
            let hooks = crate::locks::read(&self.hooks).clone();
            for hook in hooks {
                (hook.0)(&acc);
            }
        }
        acc
    }

    /// Runs `hook` on every account now and on each account created later.
    pub fn each_account(&self, hook: AccountHook) {
        crate::locks::write(&self.hooks).push(hook.clone());
        for acc in self.all() {
            (hook.0)(&acc);
        }
    }

    /// The account called `name`, if it exists (never creates one: a name that came
    /// from another server must not conjure up an account here).
    pub fn find(&self, name: &str) -> Option<Arc<Account>> {
        crate::locks::read(&self.by_name).get(name).cloned()
    }

    /// Attaches one kind of link to other servers to every account, and to each account
    /// created later. Called once per kind (routes, leaf nodes), when it starts.
    pub fn link(&self, remotes: Arc<dyn RemoteFactory>) {
        crate::locks::write(&self.remotes).push(Arc::clone(&remotes));
        for acc in self.all() {
            acc.router.attach(remotes.remote_for(&acc.name));
        }
    }

    /// Tells the service imports who sends requests (once, when the server starts).
    pub fn set_requesters(&self, requesters: Arc<dyn Requesters>) {
        let _ = self.requesters.set(requesters);
    }

    /// Every account.
    pub fn all(&self) -> Vec<Arc<Account>> {
        crate::locks::read(&self.by_name)
            .values()
            .cloned()
            .collect()
    }

    /// Creates every configured account and brings its wired imports in line with
    /// `config`: imports no longer configured (or no longer exported to it) are removed,
    /// new ones are wired, unchanged ones are left alone; each account's `mappings {}`
    /// are replaced. Called at start and on every reload that changes accounts.
    pub fn wire(&self, config: &Config) {
        for acc in &config.accounts {
            self.get(&acc.name);
        }
        for account in self.all() {
            let wanted: Vec<ImportSpec> = wanted_imports(config, &account.name)
                .into_iter()
                .map(|import| ImportSpec {
                    allow_trace: allows_trace(config, import),
                    ..ImportSpec::from(import)
                })
                .collect();
            rewire(self, &account, &wanted, false);
        }
        self.set_mappings(config);
    }

    /// Brings the JWT imports of account `name` in line with `wanted` (operator mode:
    /// the imports its account JWT asks for that the exporters allow); the config's
    /// imports are left alone.
    pub fn wire_jwt(&self, name: &str, wanted: &[ImportSpec]) {
        let account = self.get(name);
        rewire(self, &account, wanted, true);
    }

    /// Replaces every account's `mappings {}` and `msg_trace {}` with `config`'s (start
    /// and reload).
    pub fn set_mappings(&self, config: &Config) {
        let cluster = config.cluster.as_ref().and_then(|c| c.name.clone());
        for account in self.all() {
            let list = mappings_of(config, &account.name);
            account.router.mappings().set(list, cluster.clone());
            let own = config.accounts.iter().find(|a| a.name == account.name);
            *locks::write(&account.msg_trace) = own.and_then(|a| a.msg_trace.clone());
        }
    }
}

/// The `mappings {}` of account `name`: its own, after the top-level ones for `$G`.
fn mappings_of(config: &Config, name: &str) -> Vec<rill_protocol::mapping::Mapping> {
    let mut list = Vec::new();
    if name == GLOBAL_ACCOUNT {
        list.extend(config.mappings.iter().cloned());
    }
    if let Some(acc) = config.accounts.iter().find(|a| a.name == name) {
        list.extend(acc.mappings.iter().cloned());
    }
    list
}

/// The imports `config` gives the account `name` that a matching export allows.
fn wanted_imports<'a>(config: &'a Config, name: &str) -> Vec<&'a ImportConfig> {
    let Some(acc) = config.accounts.iter().find(|a| a.name == name) else {
        return Vec::new();
    };
    let mut wanted: Vec<&ImportConfig> = Vec::new();
    for import in &acc.imports {
        if !exported(config, import, &acc.name) {
            warn!(
                "Account \"{}\": import of {:?} \"{}\" from \"{}\" has no matching export; ignored",
                acc.name, import.kind, import.subject, import.account
            );
        } else if !wanted.contains(&import) {
            wanted.push(import);
        }
    }
    wanted
}

/// Wires `wanted` into `importer`, replacing its imports of the same origin (JWT or
/// config) that are no longer wanted and keeping those that are.
fn rewire(accounts: &Accounts, importer: &Arc<Account>, wanted: &[ImportSpec], from_jwt: bool) {
    let mut wired = locks::lock(&importer.imports);
    wired.retain(|w| {
        let keep = w.from_jwt != from_jwt || wanted.contains(&w.spec);
        if !keep {
            w.unwire();
        }
        keep
    });
    for spec in wanted {
        if wired
            .iter()
            .any(|w| w.from_jwt == from_jwt && w.spec == *spec)
        {
            continue;
        }
        let exporter = accounts.get(&spec.config.account);
        let mut w = match spec.config.kind {
            ExportKind::Stream => wire_stream(&exporter, Arc::clone(importer), spec),
            ExportKind::Service => wire_service(importer, exporter, spec, &accounts.requesters),
        };
        w.from_jwt = from_jwt;
        wired.push(w);
    }
}

/// True when `import` names an export of its account that `importer` may use.
fn exported(config: &Config, import: &ImportConfig, importer: &str) -> bool {
    exports_of(config, import)
        .any(|e| e.accounts.is_empty() || e.accounts.iter().any(|a| a == importer))
}

/// The exports of `import`'s account that cover it.
fn exports_of<'a>(
    config: &'a Config,
    import: &'a ImportConfig,
) -> impl Iterator<Item = &'a ExportConfig> + 'a {
    let acc = config.accounts.iter().find(|a| a.name == import.account);
    acc.into_iter()
        .flat_map(|acc| &acc.exports)
        .filter(|e| e.kind == import.kind && subject::is_subset(&import.subject, &e.subject))
}

/// True when message traces cross `import`: a stream import that says `allow_trace`, a
/// service import of an export that does (as nats-server: the side the message flows
/// into decides).
fn allows_trace(config: &Config, import: &ImportConfig) -> bool {
    match import.kind {
        ExportKind::Stream => import.allow_trace,
        ExportKind::Service => exports_of(config, import).any(|e| e.allow_trace),
    }
}

/// An internal subscription (owner 0) in `router`. `Scope::Server` ones are not
/// announced to routes or leaf nodes.
fn internal_sub(
    router: &Router,
    subject: &str,
    owner: Arc<dyn Subscriber>,
    scope: Scope,
) -> Arc<Subscription> {
    let make = match scope {
        Scope::Cluster => Subscription::new,
        Scope::Server => Subscription::new_local,
    };
    let sub = make(
        Bytes::from_static(b"0"),
        Bytes::from(subject.to_string()),
        None,
        owner,
    );
    router.subscribe(&sub);
    sub
}

/// Who hears of an internal subscription.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Announced to routes and leaf nodes: a stream import pulls the exporter's
    /// messages from other servers, a response route its response.
    Cluster,
    /// This server only: a service import takes the requests of this server's clients
    /// (each server imports for its own clients, so a request is forwarded once).
    Server,
}

fn wire_stream(exporter: &Arc<Account>, importer: Arc<Account>, spec: &ImportSpec) -> WiredImport {
    let import = &spec.config;
    let to = import.local_subject();
    let owner = Arc::new(StreamForward {
        from: import.subject.clone(),
        to,
        target: importer,
        allow_trace: spec.allow_trace,
    });
    WiredImport {
        spec: spec.clone(),
        from_jwt: false,
        holder: Arc::downgrade(exporter),
        sub: internal_sub(&exporter.router, &import.subject, owner, Scope::Cluster),
        service: None,
    }
}

fn wire_service(
    importer: &Arc<Account>,
    exporter: Arc<Account>,
    spec: &ImportSpec,
    requesters: &RequestersCell,
) -> WiredImport {
    let import = &spec.config;
    let local = import
        .local_subject()
        .unwrap_or_else(|| import.subject.clone());
    let owner = Arc::new(ServiceForward {
        local: local.clone(),
        remote: import.subject.clone(),
        origin: Arc::downgrade(importer),
        target: exporter,
        responses: spec.responses,
        pending: Mutex::new(VecDeque::new()),
        token: response_token(),
        next: AtomicU64::new(1),
        allow_trace: spec.allow_trace,
        share: import.share,
        requesters: Arc::clone(requesters),
    });
    let sub = internal_sub(
        &importer.router,
        &local,
        Arc::clone(&owner) as Arc<dyn Subscriber>,
        Scope::Server,
    );
    WiredImport {
        spec: spec.clone(),
        from_jwt: false,
        holder: Arc::downgrade(importer),
        sub,
        service: Some(owner),
    }
}

/// Maps `subj` (matched by `from`) onto `to`, filling `to`'s wildcards with the tokens
/// `from`'s wildcards matched, in order. A literal `to` is returned as is.
pub fn map_subject(from: &str, to: &str, subj: &str) -> String {
    let mut captured: Vec<String> = Vec::new();
    let mut s = subject::tokens(subj);
    for f in subject::tokens(from) {
        match f {
            "*" => captured.push(s.next().unwrap_or_default().to_string()),
            ">" => {
                captured.push(s.by_ref().collect::<Vec<_>>().join("."));
                break;
            }
            _ => {
                s.next();
            }
        }
    }
    let mut caps = captured.into_iter();
    subject::tokens(to)
        .map(|t| match t {
            "*" | ">" => caps.next().unwrap_or_default(),
            lit => lit.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Carries a stream export into the importing account.
#[derive(Debug)]
struct StreamForward {
    from: String,
    to: Option<String>,
    target: Arc<Account>,
    /// Message traces cross into the importer.
    allow_trace: bool,
}

impl Subscriber for StreamForward {
    fn owner_id(&self) -> u64 {
        0
    }

    fn reaches(&self, subject: &[u8]) -> bool {
        let hops = HOPS.with(Cell::get);
        if hops >= MAX_HOPS {
            return false;
        }
        // Interest is asked by bytes; a subject that is not text reaches nothing.
        let Ok(subject) = std::str::from_utf8(subject) else {
            return false;
        };
        let mapped = match &self.to {
            Some(to) => map_subject(&self.from, to, subject),
            None => subject.to_owned(),
        };
        HOPS.with(|h| h.set(hops + 1));
        let reached = self.target.router.has_interest(mapped.as_bytes());
        HOPS.with(|h| h.set(hops));
        reached
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        // A push delivery is mapped by the subject it is routed by, and keeps showing
        // the stored message's subject.
        let routed = msg.routed_by.unwrap_or(msg.subject);
        let mapped = self
            .to
            .as_ref()
            .map(|to| ByteString::from(map_subject(&self.from, to, routed)));
        if let Some(trace) = msg.trace {
            trace.stream_export(&self.target.name, mapped.as_deref().unwrap_or(routed));
        }
        let Some(msg) = crossing(msg, self.allow_trace) else {
            return Delivery::Queued;
        };
        match (&mapped, msg.routed_by) {
            (None, _) => self.target.forward(&msg, true),
            (Some(mapped), Some(_)) => self.target.forward(&msg.with_route(mapped), true),
            (Some(mapped), None) => self.target.forward(&msg.with_subject(mapped), true),
        }
    }

    fn follows_traces(&self) -> bool {
        true
    }
}

/// `msg` as it crosses an import into another account, after the crossing event was
/// recorded: with its trace when the import lets traces cross (`allow_trace`), else
/// without it (delivered untraced, as nats-server); `None` when it goes no further
/// (`Nats-Trace-Only` and the trace may not cross).
fn crossing<'a>(msg: &Msg<'a>, allow_trace: bool) -> Option<Msg<'a>> {
    match msg.trace {
        Some(trace) if !allow_trace => (!trace.only()).then(|| msg.with_trace(None)),
        _ => Some(*msg),
    }
}

/// Carries requests from the importing account to the exporter.
#[derive(Debug)]
struct ServiceForward {
    local: String,
    remote: String,
    origin: Weak<Account>,
    target: Arc<Account>,
    responses: Responses,
    pending: Mutex<VecDeque<(Instant, Arc<Subscription>)>>,
    /// This import's random part of its `_R_.<token>.<n>` response subjects.
    token: String,
    next: AtomicU64,
    /// Message traces cross into the exporter.
    allow_trace: bool,
    /// The import shares the requester's whole client info (`share: true`).
    share: bool,
    requesters: RequestersCell,
}

impl ServiceForward {
    /// `msg`'s header block with `Nats-Request-Info` set (one the requester sent
    /// replaced), when its publisher is a client of this server; `None` otherwise, or
    /// when its block does not parse (it crosses as it is).
    fn with_request_info(&self, msg: &Msg<'_>) -> Option<Bytes> {
        let info = self
            .requesters
            .get()?
            .request_info(msg.publisher, self.share)?;
        let mut headers = match msg.headers {
            Some(block) => HeaderMap::parse(block).ok()?,
            None => HeaderMap::new(),
        };
        headers.insert(REQUEST_INFO, info);
        Some(headers.to_bytes())
    }

    /// Drops response routes older than the threshold.
    fn expire(&self) {
        let mut pending = locks::lock(&self.pending);
        while let Some((at, sub)) = pending.front() {
            if at.elapsed() < self.responses.threshold {
                break;
            }
            self.target.router.unsubscribe(sub);
            pending.pop_front();
        }
    }

    /// Drops every pending response route (the import is being removed).
    fn drop_routes(&self) {
        let mut pending = locks::lock(&self.pending);
        for (_, sub) in pending.drain(..) {
            self.target.router.unsubscribe(&sub);
        }
    }
}

impl Subscriber for ServiceForward {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let remote = ByteString::from(map_subject(&self.local, &self.remote, msg.subject));
        if let Some(trace) = msg.trace {
            trace.service_import(&self.target.name, msg.subject, &remote);
        }
        let Some(msg) = crossing(msg, self.allow_trace) else {
            return Delivery::Queued;
        };
        let headers = self.with_request_info(&msg);
        let msg = match &headers {
            Some(block) => msg.with_headers(block),
            None => msg,
        };
        let Some(reply) = msg.reply else {
            return self.target.forward(&msg.with_subject(&remote), false);
        };
        self.expire();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let route = ByteString::from(format!("_R_.{}.{n}", self.token));
        let back = Arc::new(ResponseForward {
            reply: ByteString::from(reply),
            origin: Weak::clone(&self.origin),
        });
        let route_sub = internal_sub(&self.target.router, &route, back, Scope::Cluster);
        if !self.responses.stream {
            self.target.router.auto_unsubscribe(&route_sub, 1);
        }
        let delivered = self
            .target
            .forward(&msg.with_subject(&remote).with_reply(Some(&route)), false);
        if delivered == Delivery::Dropped {
            self.target.router.unsubscribe(&route_sub);
        } else {
            locks::lock(&self.pending).push_back((Instant::now(), route_sub));
        }
        delivered
    }

    fn follows_traces(&self) -> bool {
        true
    }
}

/// A random token that keeps the response routes of different imports (and servers)
/// apart: 16 characters from `[0-9a-zA-Z]` (about 95 bits), nothing derived from memory.
fn response_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..16)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// Carries one service response back to the requester's reply subject.
#[derive(Debug)]
struct ResponseForward {
    reply: ByteString,
    origin: Weak<Account>,
}

impl Subscriber for ResponseForward {
    fn owner_id(&self) -> u64 {
        0
    }

    /// Routes the response to the requester's reply subject. A JetStream delivery (routed
    /// by its deliver subject) is routed the same way, so a pull request made through an
    /// imported `$JS.API` gets its messages and status heartbeats. The response's
    /// own reply survives when the requester's account reaches it through a service
    /// import of its own (a JetStream ack subject with `$JS.ACK.>` imported), as on
    /// nats-server; other replies are dropped (nats-server maps them back through a
    /// response route of the requester's account, which rill does not do).
    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let Some(origin) = self.origin.upgrade() else {
            return Delivery::Dropped;
        };
        let reply = msg.reply_text().filter(|r| origin.imports_service(r));
        let msg = msg.with_reply(reply.as_ref());
        let msg = match msg.routed_by {
            // A stored message keeps showing its own subject; a status (heartbeat,
            // timeout) shows the reply subject, as its own subject was the route.
            Some(route) if route != msg.subject => msg.with_route(&self.reply),
            Some(_) => msg.with_subject(&self.reply).with_route(&self.reply),
            None => msg.with_subject(&self.reply),
        };
        origin.forward(&msg, false)
    }
}
