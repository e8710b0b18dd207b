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
//! Done as a subject mapping, not as a second set of handlers: one internal subscription
//! on `$JS.X.API.>` republishes each request under `$JS.API.` into the same account, so
//! every API subscriber (the dispatcher, each consumer's `MSG.NEXT`, each stream's direct
//! get) answers domain requests without knowing about domains.

use std::sync::{Arc, Weak};

use bytes::Bytes;

use crate::account::Account;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

/// The API prefix every request is mapped onto.
const API: &str = "$JS.API.";

/// The subscription that maps `$JS.<domain>.API.>` onto `$JS.API.>` in `account`;
/// `None` without a domain. The caller keeps it with the API's other subscriptions.
pub(super) fn subscribe(account: &Arc<Account>, domain: &str) -> Option<Arc<Subscription>> {
    if domain.is_empty() {
        return None;
    }
    let prefix = format!("$JS.{domain}.API.");
    let owner = Arc::new(DomainMap {
        prefix: prefix.clone(),
        account: Arc::downgrade(account),
    });
    let sub = Subscription::new(
        Bytes::from_static(b"jsdomain"),
        Bytes::from(format!("{prefix}>")),
        None,
        owner,
    );
    account.router.subscribe(&sub);
    Some(sub)
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
    /// `$JS.API.<rest>` for `$JS.<domain>.API.<rest>`.
    fn map(&self, subject: &[u8]) -> Option<Bytes> {
        let rest = subject.strip_prefix(self.prefix.as_bytes())?;
        let mut mapped = Vec::with_capacity(API.len() + rest.len());
        mapped.extend_from_slice(API.as_bytes());
        mapped.extend_from_slice(rest);
        Some(Bytes::from(mapped))
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
        if account.imports_service(std::str::from_utf8(&mapped).unwrap_or_default()) {
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
            map.map(b"$JS.hub.API.STREAM.INFO.S").as_deref(),
            Some(&b"$JS.API.STREAM.INFO.S"[..])
        );
        assert_eq!(map.map(b"$JS.API.INFO"), None);
    }
}
