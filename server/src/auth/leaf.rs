//! Permissions on a leaf-node link, as nats-server 2.15.1 applies them (learned by
//! running it with a JWT leaf user whose `pub`/`sub` are set).
//!
//! A hub that authenticated a leaf with credentials that carry permissions holds the
//! link to them: the user's **publish** rules say what the leaf may send into the hub
//! (other messages from it are dropped), its **subscribe** rules what the hub sends
//! it; a leaf asking (`LS+`) for a literal subject it may not receive is closed with a
//! permissions violation. The hub tells the leaf in its `connect_info` `INFO`, from the
//! leaf's point of view: `export` (the publish rules) and `import` (the subscribe
//! rules). A leaf that reads them keeps to them: it asks only for what it may import,
//! sends only what it may export, and ignores the hub's interest in anything else.
//!
//! The loop-detection subjects (`$LDS.…`, which each side announces) are outside the
//! permissions: a nats-server hub takes a leaf's `LS+ $LDS.…` whatever its user may
//! receive.
//!
//! [`LinkPermissions`] is one link's set, oriented by the side it is on.

use rill_protocol::leaf_info::LeafPermission;

use super::Permissions;
use crate::config;

/// The permissions one leaf link keeps to: the leaf user's, seen from the hub or (from
/// the hub's `INFO`) from the leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPermissions {
    /// The leaf user's permissions on the hub: publish is leaf to hub, subscribe hub to
    /// leaf.
    user: Permissions,
    /// This side is the hub.
    hub: bool,
}

impl LinkPermissions {
    /// A hub's link to a leaf whose user has `p` (reply grants, which follow requests
    /// a client received, do not apply to a link).
    pub fn hub(p: &config::Permissions) -> Self {
        let p = config::Permissions {
            allow_responses: None,
            ..p.clone()
        };
        Self {
            user: Permissions::compile(&p),
            hub: true,
        }
    }

    /// A leaf's link to a hub whose `connect_info` `INFO` said `import`/`export`;
    /// `None` when it said neither.
    pub fn leaf(import: Option<&LeafPermission>, export: Option<&LeafPermission>) -> Option<Self> {
        if import.is_none() && export.is_none() {
            return None;
        }
        let user = config::Permissions {
            publish: export.map(rules),
            subscribe: import.map(rules),
            allow_responses: None,
        };
        Some(Self {
            user: Permissions::compile(&user),
            hub: false,
        })
    }

    /// The hub's `INFO` fields for a leaf user with `p`: `(import, export)`.
    pub fn info(p: &config::Permissions) -> (Option<LeafPermission>, Option<LeafPermission>) {
        (
            p.subscribe.as_ref().map(permission),
            p.publish.as_ref().map(permission),
        )
    }

    /// May a message on the literal `subject` go out on this link?
    pub fn sends(&self, subject: &str) -> bool {
        if loop_detection(subject) {
            return true;
        }
        match self.hub {
            true => self.user.can_subscribe(subject, None),
            false => self.user.can_publish(subject),
        }
    }

    /// May a message on the literal `subject` come in on this link?
    pub fn takes(&self, subject: &str) -> bool {
        if loop_detection(subject) {
            return true;
        }
        match self.hub {
            true => self.user.can_publish(subject),
            false => self.user.can_subscribe(subject, None),
        }
    }

    /// May interest in `filter` be announced on this link? A hub announces all its
    /// interest (nats-server sends `LS+` for what the leaf may not publish too); a leaf
    /// asks only for what it may import.
    pub fn asks(&self, filter: &str) -> bool {
        self.hub || loop_detection(filter) || self.user.can_subscribe(filter, None)
    }

    /// Is the other side's interest in `filter` honoured? A hub keeps every filter
    /// (messages are checked one by one; a literal one it may not send closes the
    /// link, see [`LinkPermissions::sends`]); a leaf ignores the hub's interest in what
    /// it may not export.
    pub fn serves(&self, filter: &str) -> bool {
        self.hub || loop_detection(filter) || self.user.can_publish(filter)
    }
}

/// A leaf link's loop-detection subject (`$LDS.<random>`).
fn loop_detection(subject: &str) -> bool {
    subject.starts_with("$LDS.")
}

fn rules(p: &LeafPermission) -> config::PermissionRules {
    config::PermissionRules {
        allow: p.allow.clone(),
        deny: p.deny.clone(),
    }
}

fn permission(r: &config::PermissionRules) -> LeafPermission {
    LeafPermission {
        allow: r.allow.clone(),
        deny: r.deny.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> config::Permissions {
        config::Permissions {
            publish: Some(config::PermissionRules {
                allow: vec!["a.>".into()],
                deny: Vec::new(),
            }),
            subscribe: Some(config::PermissionRules {
                allow: vec!["b.>".into()],
                deny: vec!["b.no".into()],
            }),
            allow_responses: None,
        }
    }

    #[test]
    fn hub_and_leaf_see_the_same_rules_from_their_sides() {
        let hub = LinkPermissions::hub(&user());
        assert!(hub.takes("a.x") && !hub.takes("b.x"));
        assert!(hub.sends("b.x") && !hub.sends("b.no") && !hub.sends("a.x"));
        assert!(hub.asks("c.x") && hub.serves("c.>"));
        let (import, export) = LinkPermissions::info(&user());
        let leaf = LinkPermissions::leaf(import.as_ref(), export.as_ref()).expect("rules");
        assert!(leaf.sends("a.x") && !leaf.sends("b.x"));
        assert!(leaf.takes("b.x") && !leaf.takes("b.no") && !leaf.takes("a.x"));
        assert!(leaf.asks("b.>") && !leaf.asks("c.x") && !leaf.asks("b.no"));
        assert!(leaf.serves("a.y") && !leaf.serves("$SYS.REQ.USER.INFO"));
        assert_eq!(LinkPermissions::leaf(None, None), None);
        for side in [&hub, &leaf] {
            let lds = "$LDS.mQNIwAxs11GKnCyUkJVoPk";
            assert!(side.sends(lds) && side.takes(lds) && side.asks(lds) && side.serves(lds));
        }
    }
}
