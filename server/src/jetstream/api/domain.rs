//! JetStream domains (`jetstream { domain: X }`): the API is also reached at
//! `$JS.X.API.>`, which is what clients with `domain: "X"` (and leaf nodes, later) use.
//!
//! As nats-server 2.15.1 does it: in every account whose API this server answers
//! (JetStream enabled, or the "not enabled" reply), `$JS.X.API.<rest>` is the same request
//! as `$JS.API.<rest>`: account info, streams, consumers, pull requests and direct gets
//! alike, with the reply going to the requester's own reply subject. An account that
//! imports another account's `$JS.API.>` instead gets no-responders at `$JS.X.API.>`
//! (it must import that subject itself), as there.
//!
//! Only the API's own subjects are mapped, as nats-server 2.15.1 lists its domain
//! mappings (`/accountz`): `INFO`, `ACCOUNT.>`, `STREAM.>`, `CONSUMER.>`, `DIRECT.>`,
//! `META.>`, `SERVER.>`; and `$JS.X.API.$KV.>` / `$JS.X.API.$OBJ.>` onto `$KV.>` /
//! `$OBJ.>`, so a KV bucket that mirrors another domain's bucket takes puts and deletes
//! at its origin (clients write to `<mirror's external api>.$KV.<bucket>.<key>`). Any
//! other subject under the prefix has no interest here (no responders, also from
//! across a leaf link).
//!
//! Done as a subject mapping, not as a second set of handlers: one internal subscription
//! on `$JS.X.API.>` republishes each request under `$JS.API.` into the same account, so
//! every API subscriber (the dispatcher, each consumer's `MSG.NEXT`, each stream's direct
//! get) answers domain requests without knowing about domains.

use std::sync::{Arc, Weak};

use bytes::Bytes;

use crate::account::Account;
use crate::router::ByteString;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

/// The API prefix every request is mapped onto.
const API: &str = "$JS.API.";

/// The subjects under a domain's API prefix that are mapped, as nats-server's.
const MAPPED: [&str; 9] = [
    "INFO",
    "ACCOUNT.>",
    "STREAM.>",
    "CONSUMER.>",
    "DIRECT.>",
    "META.>",
    "SERVER.>",
    "$KV.>",
    "$OBJ.>",
];

/// Prefixes that a domain's API prefix maps onto themselves, not onto the API (KV and
/// object store writes through a mirror of another domain's bucket).
const OWN: [&str; 2] = ["$KV.", "$OBJ."];

/// The subscriptions that map `$JS.<domain>.API.<rest>` onto `$JS.API.<rest>` in
/// `account` (one per [`MAPPED`] subject); none without a domain. The caller keeps them
/// with the API's other subscriptions.
pub(super) fn subscribe(account: &Arc<Account>, domain: &str) -> Vec<Arc<Subscription>> {
    if domain.is_empty() {
        return Vec::new();
    }
    let prefix = format!("$JS.{domain}.API.");
    let owner = Arc::new(DomainMap {
        prefix: prefix.clone(),
        account: Arc::downgrade(account),
    });
    MAPPED
        .iter()
        .map(|tail| {
            let sub = Subscription::new(
                Bytes::from_static(b"jsdomain"),
                Bytes::from(format!("{prefix}{tail}")),
                None,
                Arc::clone(&owner) as Arc<dyn Subscriber>,
            );
            account.router.subscribe(&sub);
            sub
        })
        .collect()
}

/// Republishes `$JS.<domain>.API.<rest>` as `$JS.API.<rest>` in the same account.
#[derive(Debug)]
struct DomainMap {
    /// `$JS.<domain>.API.`
    prefix: String,
    /// Weak: the account owns its router, which owns this subscriber.
    account: Weak<Account>,
}

impl DomainMap {
    /// `$JS.API.<rest>` for `$JS.<domain>.API.<rest>`; `$KV.<key>` for
    /// `$JS.<domain>.API.$KV.<key>` (and `$OBJ.` alike).
    fn map(&self, subject: &str) -> Option<ByteString> {
        let rest = subject.strip_prefix(self.prefix.as_str())?;
        if OWN.iter().any(|own| rest.starts_with(own)) {
            return Some(ByteString::from(rest));
        }
        Some(ByteString::from(format!("{API}{rest}")))
    }
}

impl Subscriber for DomainMap {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let (Some(account), Some(mapped)) = (self.account.upgrade(), self.map(msg.subject)) else {
            return Delivery::Dropped;
        };
        // nats-server maps the domain only where it answers the API itself.
        if account.imports_service(&mapped) {
            return Delivery::Dropped;
        }
        let fanout = account.router.publish(0, true, &msg.with_subject(&mapped));
        match (fanout.delivered, fanout.backlogged) {
            (0, _) => Delivery::Dropped,
            (_, Some(_)) => Delivery::Pressure,
            _ => Delivery::Queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_domain_prefix_onto_the_api() {
        let map = DomainMap {
            prefix: "$JS.hub.API.".into(),
            account: Weak::new(),
        };
        assert_eq!(
            map.map("$JS.hub.API.STREAM.INFO.S").as_deref(),
            Some("$JS.API.STREAM.INFO.S")
        );
        assert_eq!(map.map("$JS.API.INFO"), None);
        assert_eq!(
            map.map("$JS.hub.API.$KV.B.k.x").as_deref(),
            Some("$KV.B.k.x")
        );
        assert_eq!(map.map("$JS.hub.API.$OBJ.x").as_deref(), Some("$OBJ.x"));
    }
}
