//! Leaf nodes (`leafnodes {}`): this server as a **hub** that accepts leaf connections,
//! as a **leaf** that dials hubs (`remotes`), or both. A leaf link joins one local
//! account to one account on the other side; unlike routes there is no full mesh, and a
//! hub joins its leafs' subject spaces through itself.
//!
//! # The wire, as nats-server 2.15.1 speaks it (recorded through a proxy)
//! - The hub sends `INFO` at once: `server_id`, `server_name`, `proto` 3, its leaf
//!   listen `host`/`port`, `headers`, `auth_required`, `max_payload`, `client_id`, a
//!   `nonce`, `compression`, `info_on_connect` and `leafnode_urls`.
//! - Compression: nats-server's default is `s2_auto`, and a leaf answering with an INFO
//!   of its own carrying a mode switches both sides to S2 framing. A hub that says
//!   `off` gets `CONNECT` at once. rill's hub says `off`; rill's leaf answers a hub that
//!   offers compression with `INFO {"compression":"off"}`, which declines it.
//! - The leaf sends `CONNECT {"version","server_id","name","cluster","headers",
//!   "compress_mode","remote_account","protocol":3}` (plus `user`/`pass`); the hub
//!   answers with `INFO` carrying `connect_info: true` and the `remote_account` the
//!   leaf was bound to, then its `LS+` list; the leaf sends its own.
//! - Both sides announce `LS+ $LDS.<random>` (loop detection) and then speak `LS+`,
//!   `LS-`, `LMSG`/`HMSG` (see `rill_protocol::route`), `PING`/`PONG`.
//! - Logs: `Listening for leafnode connections on <host:port>`, `<addr> - lid:<n> -
//!   Leafnode connection created` (hub), `… Leafnode connection created for account:
//!   <acc>` (leaf), `… Leafnode connection closed: <reason>`.
//!
//! # Design
//! ```text
//! accept loop ─┐                          ┌─ links: every live link (monitoring)
//! dialers ─────┴─ conn (handshake, read ──┤
//!                 loop, writer task)      └─ accounts: per account, LeafAccount =
//!                                            the router's Remote for leaf nodes
//! ```
//! Local messages reach leafs through the router's `Remote` hook after local delivery
//! (see [`interest`]); messages from a leaf enter the router with
//! `Origin::Leaf(lid)`, so they reach local subscribers, routes and the other leafs.

mod conn;
mod creds;
mod dial;
mod interest;
mod link;
mod report;
mod revoke;
mod ws;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rill_protocol::{LeafConnect, LeafInfo};
use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::client::CloseReason;
use crate::config::{LeafConfig, LeafUrl};
use crate::link::tls::LinkTls;
use crate::locks;
use crate::server::ServerState;
use crate::shared::{GLOBAL_ACCOUNT, VERSION};

use interest::LeafAccounts;
use link::LeafLink;

pub use report::LeafReport;

/// The leaf protocol level rill speaks (as nats-server 2.15).
const LEAF_PROTO: i64 = 3;

/// How long a remote waits after a loop was detected (as nats-server).
const LOOP_DELAY: Duration = Duration::from_secs(30);

/// This server's leaf-node links, in both roles.
#[derive(Debug)]
pub struct LeafNodes {
    state: Weak<ServerState>,
    config: LeafConfig,
    server_id: String,
    server_name: String,
    /// `$LDS.<random>`: announced on every link; hearing it back means a loop.
    loop_subject: String,
    /// Where leafs connect, when this server is a hub.
    listen: Option<SocketAddr>,
    /// TLS on accepted leaf connections (`leafnodes { tls {} }`).
    tls: Option<LinkTls>,
    /// TLS to each remote's hub (`remotes [{ tls {} }]`), by remote index.
    remote_tls: Vec<Option<LinkTls>>,
    accounts: Arc<LeafAccounts>,
    links: Mutex<Vec<Arc<LeafLink>>>,
    /// Hub leaf URLs learned from INFO (`leafnode_urls`).
    learned: Mutex<Vec<String>>,
    /// Remotes (by index) that saw a loop, and until when they wait.
    loops: Mutex<Vec<(String, tokio::time::Instant)>>,
    stop: watch::Receiver<bool>,
    /// Held by every leaf task, so shutdown waits for them.
    done: crate::link::Done,
}

impl LeafNodes {
    /// Binds the leaf listener and starts the dialers, when the configuration has a
    /// `leafnodes` block.
    ///
    /// # Errors
    /// The bind error; a `tls {}` block whose files cannot be loaded.
    pub async fn start(
        state: &Arc<ServerState>,
        stop: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
    ) -> std::io::Result<Option<Arc<LeafNodes>>> {
        let config = state.config();
        let Some(cfg) = config.leafnodes.clone() else {
            return Ok(None);
        };
        let tls = cfg
            .tls
            .as_ref()
            .map(LinkTls::server)
            .transpose()
            .map_err(std::io::Error::other)?;
        let remote_tls = cfg
            .remotes
            .iter()
            .map(|r| r.tls.as_ref().map(LinkTls::client).transpose())
            .collect::<Result<Vec<_>, _>>()
            .map_err(std::io::Error::other)?;
        let (listener, listen) = match cfg.port {
            Some(port) => {
                let bound = crate::bind::listen(&cfg.host, port).await?;
                (Some(bound.listener), Some(bound.addr))
            }
            None => (None, None),
        };
        let loop_subject = format!("$LDS.{}", crate::link::random_id());
        let leafs = Arc::new(LeafNodes {
            state: Arc::downgrade(state),
            server_id: state.server_id.clone(),
            server_name: state.server_name.clone(),
            accounts: Arc::new(LeafAccounts::new(loop_subject.clone())),
            loop_subject,
            listen,
            tls,
            remote_tls,
            links: Mutex::new(Vec::new()),
            learned: Mutex::new(Vec::new()),
            loops: Mutex::new(Vec::new()),
            stop,
            done: crate::link::Done::new(done.clone()),
            config: cfg,
        });
        state
            .accounts
            .link(Arc::clone(&leafs.accounts) as Arc<dyn crate::router::RemoteFactory>);
        state.set_leafs(Arc::clone(&leafs) as Arc<dyn crate::shared::LeafReport>);
        if let Some(listener) = listener {
            if let Some(addr) = listen {
                info!("Listening for leafnode connections on {addr}");
            }
            crate::link::serve_listener(
                listener,
                (leafs.stop.clone(), done),
                "leafnode",
                Arc::clone(&leafs),
                conn::accept,
            );
        }
        for (i, remote) in leafs.config.remotes.iter().enumerate() {
            tokio::spawn(dial::keep_dialing(Arc::clone(&leafs), i, remote.clone()));
        }
        Ok(Some(leafs))
    }

    /// The bound leaf listen address, when this server is a hub.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    fn state(&self) -> Option<Arc<ServerState>> {
        self.state.upgrade()
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The INFO a hub sends on a connection whose local end is `local`.
    fn own_info(&self, local: Option<SocketAddr>) -> LeafInfo {
        let state = self.state();
        let config = state.as_ref().map(|s| s.config()).unwrap_or_default();
        let (host, port) = self.advertised(local);
        LeafInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: VERSION.to_string(),
            proto: LEAF_PROTO,
            go: Some(format!("rill {VERSION}")),
            leafnode_urls: if self.config.no_advertise {
                Vec::new()
            } else {
                vec![crate::link::join_host_port(&host, port)]
            },
            host,
            port,
            headers: true,
            auth_required: self.config.authorization.is_some()
                || self.tls.as_ref().is_some_and(|t| t.verify),
            tls_required: self.tls.is_some(),
            tls_verify: self.tls.as_ref().is_some_and(|t| t.verify),
            max_payload: i64::try_from(config.max_payload).unwrap_or(i64::MAX),
            compression: Some("off".into()),
            info_on_connect: true,
            cluster: state.as_ref().and_then(|s| s.cluster()).map(|c| c.name()),
            domain: config.jetstream.as_ref().and_then(|j| j.domain.clone()),
            ldm: state.is_some_and(|s| s.is_lame_duck()),
            ..LeafInfo::default()
        }
    }

    /// The `host`/`port` leafs should dial: `advertise`, else the listen address (an
    /// unspecified host is replaced by our address on `local`).
    fn advertised(&self, local: Option<SocketAddr>) -> (String, u16) {
        crate::link::advertised(
            self.config.advertise.as_deref(),
            &self.config.host,
            self.listen.map_or(0, |a| a.port()),
            local,
        )
    }

    /// The CONNECT a leaf sends for its local `account` to the hub at `url`.
    fn own_connect(&self, account: &str, url: &LeafUrl) -> LeafConnect {
        let state = self.state();
        let config = state.as_ref().map(|s| s.config()).unwrap_or_default();
        let cluster = state
            .as_ref()
            .and_then(|s| s.cluster())
            .map_or_else(|| self.server_name.clone(), |c| c.name());
        LeafConnect {
            version: VERSION.to_string(),
            server_id: self.server_id.clone(),
            name: self.server_name.clone(),
            cluster,
            headers: true,
            compress_mode: "off".into(),
            remote_account: Some(account.to_string()),
            protocol: LEAF_PROTO,
            user: url.user.clone(),
            pass: url.pass.clone(),
            domain: config.jetstream.as_ref().and_then(|j| j.domain.clone()),
            ..LeafConnect::default()
        }
    }

    /// The local account a leaf presenting `user`/`pass` is bound to; `None` when the
    /// credentials are refused. Without `authorization`, every leaf is bound to the
    /// global account.
    fn authorize(&self, user: Option<&str>, pass: Option<&str>) -> Option<String> {
        let Some(auth) = &self.config.authorization else {
            return Some(GLOBAL_ACCOUNT.to_string());
        };
        let (user, pass) = (user?, pass.unwrap_or_default());
        auth.users
            .iter()
            .find(|u| u.user == user && crate::auth::check_secret(&u.password, pass))
            .map(|u| {
                u.account
                    .clone()
                    .unwrap_or_else(|| GLOBAL_ACCOUNT.to_string())
            })
    }

    /// How long a leaf has to send CONNECT.
    fn auth_timeout(&self) -> Duration {
        let default = self
            .state()
            .map_or(Duration::from_secs(2), |s| s.config().auth_timeout);
        self.config
            .authorization
            .as_ref()
            .and_then(|a| a.timeout)
            .unwrap_or(default)
    }

    fn register(&self, link: &Arc<LeafLink>) {
        locks::lock(&self.links).push(Arc::clone(link));
    }

    fn unregister(&self, link: &Arc<LeafLink>) {
        locks::lock(&self.links).retain(|l| !Arc::ptr_eq(l, link));
    }

    /// Every live link.
    fn links(&self) -> Vec<Arc<LeafLink>> {
        locks::lock(&self.links).clone()
    }

    /// Remembers the hub's `leafnode_urls`.
    fn learn_urls(&self, urls: &[String]) {
        if !urls.is_empty() {
            *locks::lock(&self.learned) = urls.to_vec();
        }
    }

    /// A loop was detected on `link`: if we dialled it, wait before redialling.
    fn note_loop(&self, link: &LeafLink) {
        if link.solicited {
            locks::lock(&self.loops).push((
                link.peer.server_id.clone(),
                tokio::time::Instant::now() + LOOP_DELAY,
            ));
        }
    }

    /// How long to wait before dialling the hub with id `hub`, after a loop with it.
    fn loop_wait(&self, hub: &str) -> Option<tokio::time::Instant> {
        let mut loops = locks::lock(&self.loops);
        let now = tokio::time::Instant::now();
        loops.retain(|(_, until)| *until > now);
        loops
            .iter()
            .find(|(id, _)| id == hub)
            .map(|(_, until)| *until)
    }

    /// Closes every link (server shutdown).
    pub fn shutdown(&self) {
        self.done.release();
        for link in self.links() {
            link.outbound.close_with(CloseReason::ServerShutdown);
        }
    }
}
