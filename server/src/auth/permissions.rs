//! Per-user publish and subscribe permissions, compiled once per user.
//!
//! Owns the matching rules only: the client connection asks [`Permissions::can_publish`] and
//! [`Permissions::can_subscribe`] and keeps its own small result cache for publish (the hot
//! path). Subjects are matched the way nats-server's permission sublists match them: the
//! subject being checked is taken literally, so a subscription to `foo.*` is covered by an
//! allow rule `foo.*` or `foo.>` (a rule `*` token also matches a literal `*` or `>` token).
//!
//! Semantics (checked against nats-server 2.15.1):
//! - no `allow` list allows everything not denied; `deny` always wins;
//! - `"foo.> workers"` in a subscribe list is a queue rule: it matches subscriptions to
//!   `foo.>` in queue group `workers` (the queue may hold wildcards);
//! - `allow_responses` turns an absent publish `allow` list into "nothing", so the user can
//!   publish only to reply subjects of requests it received (at most `max` times each,
//!   within `expires`; zero `max` is 1 and zero `expires` two minutes, as nats-server).

use std::time::Duration;

use rill_protocol::subject;
use serde_json::{Map, Value, json};

use crate::config;

/// One rule: a subject pattern and, for subscribe rules, an optional queue pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    subject: String,
    queue: Option<String>,
}

impl Rule {
    fn parse(text: &str) -> Self {
        let mut parts = text.split_whitespace();
        let subject = parts.next().unwrap_or_default().to_string();
        let queue = parts.next().map(str::to_string);
        Self { subject, queue }
    }

    /// The rule as configured: `subject` or `subject queue`.
    fn text(&self) -> String {
        match &self.queue {
            Some(q) => format!("{} {q}", self.subject),
            None => self.subject.clone(),
        }
    }
}

/// An allow list (absent = everything) and a deny list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rules {
    allow: Option<Vec<Rule>>,
    deny: Vec<Rule>,
}

impl Rules {
    fn compile(rules: &config::PermissionRules) -> Self {
        let allow =
            (!rules.allow.is_empty()).then(|| rules.allow.iter().map(|r| Rule::parse(r)).collect());
        let deny = rules.deny.iter().map(|r| Rule::parse(r)).collect();
        Self { allow, deny }
    }

    /// Plain-subject check (publish, and deliveries against subscribe denies).
    fn allows(&self, subj: &str) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|r| subject::matches(&r.subject, subj)));
        allowed && !self.denies(subj)
    }

    /// `{"allow": [..], "deny": [..]}`, empty lists left out (nats-server's layout).
    fn to_json(&self) -> Value {
        let mut doc = Map::new();
        let lists = [
            ("allow", self.allow.as_deref()),
            ("deny", Some(&self.deny[..])),
        ];
        for (key, rules) in lists {
            if let Some(rules) = rules.filter(|r| !r.is_empty()) {
                let texts: Vec<String> = rules.iter().map(Rule::text).collect();
                doc.insert(key.into(), json!(texts));
            }
        }
        Value::Object(doc)
    }

    fn denies(&self, subj: &str) -> bool {
        self.deny
            .iter()
            .any(|r| r.queue.is_none() && subject::matches(&r.subject, subj))
    }

    /// Subscription check with queue rules.
    fn allows_sub(&self, subj: &str, queue: Option<&str>) -> bool {
        let allowed = match &self.allow {
            None => true,
            Some(allow) => {
                let hits: Vec<&Rule> = allow
                    .iter()
                    .filter(|r| subject::matches(&r.subject, subj))
                    .collect();
                match queue {
                    None => hits.iter().any(|r| r.queue.is_none()),
                    Some(q) => hits
                        .iter()
                        .any(|r| r.queue.as_ref().is_none_or(|rq| subject::matches(rq, q))),
                }
            }
        };
        let denied = self.deny.iter().any(|r| {
            subject::matches(&r.subject, subj)
                && match (&r.queue, queue) {
                    (None, _) => true,
                    (Some(rq), Some(q)) => subject::matches(rq, q),
                    (Some(_), None) => false,
                }
        });
        allowed && !denied
    }
}

/// `allow_responses`: how many replies a received request permits, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseGrant {
    /// Replies allowed per request.
    pub max: usize,
    /// Lifetime of the grant (never unlimited: zero in the configuration is
    /// nats-server's default of two minutes).
    pub expires: Duration,
}

/// The lifetime of a reply grant configured with `expires` zero or unset (nats-server's
/// `DEFAULT_ALLOW_RESPONSE_EXPIRATION`).
pub const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(2 * 60);

/// A user's compiled permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    publish: Option<Rules>,
    subscribe: Option<Rules>,
    responses: Option<ResponseGrant>,
}

impl Permissions {
    /// Compiles the configured permissions.
    pub fn compile(p: &config::Permissions) -> Self {
        let responses = p.allow_responses.as_ref().map(|r| ResponseGrant {
            max: r.max.max(1),
            expires: if r.expires.is_zero() {
                DEFAULT_RESPONSE_EXPIRES
            } else {
                r.expires
            },
        });
        let mut publish = p.publish.as_ref().map(Rules::compile);
        if responses.is_some() {
            // nats-server: responses alone means "publish only replies".
            let rules = publish.get_or_insert_with(Rules::default);
            rules.allow.get_or_insert_with(Vec::new);
        }
        Self {
            publish,
            subscribe: p.subscribe.as_ref().map(Rules::compile),
            responses,
        }
    }

    /// May the user publish to the literal subject `subj` (reply grants aside)?
    pub fn can_publish(&self, subj: &str) -> bool {
        self.publish.as_ref().is_none_or(|r| r.allows(subj))
    }

    /// May the user subscribe to `subj` (optionally in queue group `queue`)?
    pub fn can_subscribe(&self, subj: &str, queue: Option<&str>) -> bool {
        self.subscribe
            .as_ref()
            .is_none_or(|r| r.allows_sub(subj, queue))
    }

    /// True when a message on the literal subject `subj` must not be delivered to this user
    /// (a subscribe deny inside a wider wildcard subscription).
    pub fn denies_delivery(&self, subj: &str) -> bool {
        self.subscribe.as_ref().is_some_and(|r| r.denies(subj))
    }

    /// True when subscribe denies exist, so deliveries need checking.
    pub fn filters_deliveries(&self) -> bool {
        self.subscribe.as_ref().is_some_and(|r| !r.deny.is_empty())
    }

    /// The reply grant, when `allow_responses` is set.
    pub fn responses(&self) -> Option<ResponseGrant> {
        self.responses
    }

    /// The permissions in nats-server's JSON layout (`$SYS.REQ.USER.INFO`): `publish`
    /// and `subscribe` with their `allow`/`deny` lists, `responses` with `max` and `ttl`
    /// (nanoseconds).
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        for (key, rules) in [("publish", &self.publish), ("subscribe", &self.subscribe)] {
            if let Some(rules) = rules {
                doc.insert(key.into(), rules.to_json());
            }
        }
        if let Some(r) = self.responses {
            let ttl = u64::try_from(r.expires.as_nanos()).unwrap_or(u64::MAX);
            doc.insert("responses".into(), json!({"max": r.max, "ttl": ttl}));
        }
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> Option<config::PermissionRules> {
        Some(config::PermissionRules {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = Permissions::compile(&config::Permissions {
            publish: rules(&["orders.>"], &["orders.secret"]),
            ..Default::default()
        });
        assert!(p.can_publish("orders.new"));
        assert!(!p.can_publish("orders.secret"));
        assert!(!p.can_publish("billing.x"));
    }

    #[test]
    fn queue_rules_restrict_queue_subscriptions() {
        let p = Permissions::compile(&config::Permissions {
            subscribe: rules(&["jobs.> workers", "events.>"], &["events.private"]),
            ..Default::default()
        });
        assert!(p.can_subscribe("jobs.a", Some("workers")));
        assert!(!p.can_subscribe("jobs.a", Some("others")));
        assert!(!p.can_subscribe("jobs.a", None));
        assert!(p.can_subscribe("events.*", None));
        assert!(p.can_subscribe("events.a", Some("any")));
        assert!(!p.can_subscribe("events.private", None));
        assert!(p.denies_delivery("events.private"));
        assert!(!p.denies_delivery("events.public"));
    }

    #[test]
    fn allow_responses_alone_allows_no_publish() {
        let p = Permissions::compile(&config::Permissions {
            allow_responses: Some(config::ResponsePermission {
                max: 1,
                expires: Duration::ZERO,
            }),
            ..Default::default()
        });
        assert!(!p.can_publish("anything"));
        assert!(p.can_subscribe("anything", None));
        assert_eq!(
            p.responses(),
            Some(ResponseGrant {
                max: 1,
                expires: DEFAULT_RESPONSE_EXPIRES
            })
        );
    }

    #[test]
    fn json_lists_rules_as_configured() {
        let p = Permissions::compile(&config::Permissions {
            publish: rules(&["a.>"], &[]),
            subscribe: rules(&["jobs.> workers"], &["x"]),
            allow_responses: Some(config::ResponsePermission {
                max: 2,
                expires: Duration::from_secs(1),
            }),
        });
        assert_eq!(
            p.to_json(),
            json!({"publish": {"allow": ["a.>"]},
                   "subscribe": {"allow": ["jobs.> workers"], "deny": ["x"]},
                   "responses": {"max": 2, "ttl": 1_000_000_000_u64}})
        );
    }
}
