//! The part of a leaf-node connection other tasks reach ([`LeafLink`]): its outbound
//! queue, the account it is bound to, the other side's INFO or CONNECT, the interest
//! the other side registered, its deny lists, the leaf user's permissions (see
//! [`LinkPermissions`]) and the counters `/leafz` shows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rill_protocol::subject;

use crate::auth::LinkPermissions;
use crate::auth::jwt::JwtUser;
use crate::client::Outbound;
use crate::link::{Link, LinkCounters};
use crate::trace::record::{Conn, Kind};

/// What the other side asked for: `(subject, queue)`.
pub(crate) type SubKey = (Bytes, Option<Bytes>);

/// One entry of an account's leaf interest: this link wants messages on a subject (for
/// a queue group: with this weight, the group's member count behind the link).
pub(crate) type LeafSub = crate::link::forward::RemoteSub<LeafLink>;

/// Who the other side is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peer {
    /// Its server id.
    pub(crate) server_id: String,
    /// Its server name.
    pub(crate) name: String,
}

/// One leaf-node connection, in either role.
#[derive(Debug)]
pub(crate) struct LeafLink {
    /// Connection id (drawn from the client ids, as nats-server numbers `lid`s).
    pub(crate) lid: u64,
    /// The other side's socket address.
    pub(crate) addr: SocketAddr,
    /// What we send.
    pub(crate) outbound: Outbound,
    /// We dialled it (this server is the leaf).
    pub(crate) solicited: bool,
    /// The local account the link is bound to.
    pub(crate) account: String,
    /// The other side.
    pub(crate) peer: Peer,
    /// Subjects we do not send (nor announce interest for): the remote's `deny_exports`.
    deny_pub: Vec<String>,
    /// Subjects we do not take (nor ask for): the remote's `deny_imports`.
    deny_sub: Vec<String>,
    /// The leaf user's permissions, when its credentials carry some.
    permissions: Option<LinkPermissions>,
    /// The leaf's JWT user (a hub in operator mode): re-checked when its account JWT
    /// changes, and the link closed when the JWT expires.
    pub(crate) user: Option<Arc<JwtUser>>,
    /// What the other side asked for, to update weights and clean up when the link goes.
    pub(crate) subs: Mutex<HashMap<SubKey, LeafSub>>,
    /// Messages and bytes in and out, round-trip time.
    pub(crate) counters: LinkCounters,
}

/// How a link is set up (everything but the socket).
#[derive(Debug)]
pub(crate) struct LinkSetup {
    pub(crate) lid: u64,
    pub(crate) addr: SocketAddr,
    pub(crate) solicited: bool,
    pub(crate) account: String,
    pub(crate) peer: Peer,
    pub(crate) max_pending: usize,
    pub(crate) deny_exports: Vec<String>,
    pub(crate) deny_imports: Vec<String>,
    pub(crate) permissions: Option<LinkPermissions>,
    /// The leaf's JWT user (a hub in operator mode).
    pub(crate) user: Option<Arc<JwtUser>>,
}

impl LeafLink {
    /// A link for a connection whose handshake is done.
    pub(crate) fn new(setup: LinkSetup) -> Self {
        Self {
            lid: setup.lid,
            addr: setup.addr,
            outbound: Outbound::new(setup.max_pending),
            solicited: setup.solicited,
            account: setup.account,
            peer: setup.peer,
            deny_pub: setup.deny_exports,
            deny_sub: setup.deny_imports,
            permissions: setup.permissions,
            user: setup.user,
            subs: Mutex::new(HashMap::new()),
            counters: LinkCounters::default(),
        }
    }

    /// True when messages on `subject` may go out on this link.
    pub(crate) fn may_send(&self, subject: &[u8]) -> bool {
        !denied(&self.deny_pub, subject) && self.permitted(subject, LinkPermissions::sends)
    }

    /// True when messages on `subject` may come in on this link.
    pub(crate) fn may_take(&self, subject: &[u8]) -> bool {
        !denied(&self.deny_sub, subject) && self.permitted(subject, LinkPermissions::takes)
    }

    /// True when interest in `filter` may be announced on this link: messages on it
    /// may come in.
    pub(crate) fn may_ask(&self, filter: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(filter) else {
            return false;
        };
        !self.deny_sub.iter().any(|d| subject::is_subset(text, d))
            && self.permitted(filter, LinkPermissions::asks)
    }

    /// True when the other side's interest in `filter` is honoured: messages on it may
    /// go out.
    pub(crate) fn may_serve(&self, filter: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(filter) else {
            return false;
        };
        !self.deny_pub.iter().any(|d| subject::is_subset(text, d))
            && self.permitted(filter, LinkPermissions::serves)
    }

    /// `check` of the leaf user's permissions on `subject` (true without any).
    fn permitted(&self, subject: &[u8], check: fn(&LinkPermissions, &str) -> bool) -> bool {
        let Some(permissions) = &self.permissions else {
            return true;
        };
        std::str::from_utf8(subject).is_ok_and(|s| check(permissions, s))
    }
}

/// The JetStream side of one link: is JetStream on here, our domain and the other
/// side's (`None` or empty: none), and whether the link is bound to the system account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsSides<'a> {
    pub(crate) enabled: bool,
    pub(crate) ours: Option<&'a str>,
    pub(crate) theirs: Option<&'a str>,
    pub(crate) system: bool,
}

/// What a leaf link keeps out for JetStream, as nats-server 2.15.1 does: `(no sending,
/// no taking)`. Each side's JetStream answers its own clients, so the client API
/// (`$JS.API.>`, `$KV.>`, `$OBJ.>`) crosses no leaf link of an ordinary account; the
/// other side's JetStream is reached through its domain (`$JS.<domain>.API.>`). When
/// the domains differ, requests for our own domain do not go out (a hub and a leaf
/// named alike would answer each other's), and the system account also keeps its
/// JetStream internals (`$JSC.>`, `$NRG.>`) to itself. The third value says whether
/// the domains differ.
pub(crate) fn jetstream_denies(js: JsSides<'_>) -> (Vec<String>, Vec<String>, bool) {
    let ours = js.ours.unwrap_or_default();
    let theirs = js.theirs.unwrap_or_default();
    let differ = ours != theirs || (!js.enabled && ours.is_empty());
    let client = ["$JS.API.>", "$KV.>", "$OBJ.>"].map(String::from).to_vec();
    let both = match (js.system, differ) {
        (true, true) => [vec!["$JSC.>".to_owned(), "$NRG.>".to_owned()], client].concat(),
        (true, false) => Vec::new(),
        (false, _) => client,
    };
    let mut out = both.clone();
    if differ && js.enabled && !ours.is_empty() && !js.system {
        out.push(format!("$JS.{ours}.API.>"));
    }
    (out, both, differ)
}

fn denied(list: &[String], subject: &[u8]) -> bool {
    if list.is_empty() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(subject) else {
        return true;
    };
    list.iter().any(|d| subject::matches(d, text))
}

impl Link for LeafLink {
    fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// `"<addr> - lid:<n>"`, as nats-server prefixes leaf-node log lines.
    fn log_prefix(&self) -> String {
        format!("{} - lid:{}", self.addr, self.lid)
    }

    fn trace_conn(&self) -> Conn {
        Conn::new(Kind::Leaf, self.lid, self.peer.name.clone())
    }
}

crate::link::link_subscriber!(LeafLink, |l| l.lid);

#[cfg(test)]
mod tests {
    use super::*;

    fn sides(ours: &str, theirs: &str, system: bool) -> JsSides<'static> {
        let (ours, theirs) = (ours.to_owned().leak(), theirs.to_owned().leak());
        JsSides {
            enabled: true,
            ours: Some(ours),
            theirs: Some(theirs),
            system,
        }
    }

    #[test]
    fn jetstream_denies_follow_nats_server() {
        let (out, take, differ) = jetstream_denies(sides("hub", "edge", false));
        assert!(differ);
        assert_eq!(take, ["$JS.API.>", "$KV.>", "$OBJ.>"]);
        assert_eq!(out, ["$JS.API.>", "$KV.>", "$OBJ.>", "$JS.hub.API.>"]);
        // The same domain: the client API stays out all the same, our domain may go.
        let (out, take, differ) = jetstream_denies(sides("x", "x", false));
        assert!(!differ);
        assert_eq!((out.len(), take.len()), (3, 3));
        // The system account keeps JetStream internals in when the domains differ.
        let (out, take, _) = jetstream_denies(sides("hub", "edge", true));
        assert_eq!(out, take);
        assert!(take.contains(&"$NRG.>".to_owned()) && take.contains(&"$JSC.>".to_owned()));
        assert_eq!(
            jetstream_denies(sides("x", "x", true)).1,
            Vec::<String>::new()
        );
        // No JetStream and no domain here counts as different.
        let off = JsSides {
            enabled: false,
            ours: None,
            theirs: None,
            system: false,
        };
        assert!(jetstream_denies(off).2);
    }
}
