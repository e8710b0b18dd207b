//! Operator mode (decentralized authentication): an operator signs accounts, accounts sign
//! users, and a client proves it holds a user's key by signing the INFO nonce.
//!
//! [`JwtAuth`] is built once at start from the `operator`/`trusted_keys`/`resolver`
//! settings and kept for the server's life (a reload does not replace it: the accounts it
//! resolved, and the updates pushed to it, stay). It owns:
//! - [`trust::Trust`]: the trusted operator keys, which every account JWT must be signed
//!   by;
//! - [`resolver::Resolver`]: the account JWTs known to this server (preloaded, read from
//!   the resolver directory, or pushed as claim updates);
//! - [`imports`]: the imports account JWTs ask for that their exporters allow, wired into
//!   the account table when an account is first used and again after claim updates;
//! - [`user`]: the check of a CONNECT's user JWT against its account, in nats-server's
//!   order.
//!
//! It does not own connections: a claim update tells the server, which wakes the
//! connections of that account to re-check themselves (revocations, bearer rules).

pub mod claims;
pub mod imports;
pub mod leaf;
pub mod resolver;
pub mod token;
pub mod trust;
pub mod user;

use std::sync::Arc;

pub use claims::{AccountClaims, UserClaims};
pub use leaf::LeafCredentials;
pub use resolver::{Resolver, UpdateError};
pub use token::{JwtError, Kind, decode, encode};
pub use trust::Trust;
pub use user::{JwtUser, UserCheck};

use crate::config::{AccountJetStreamLimits, OperatorConfig};

/// Operator mode: the trusted operators and the accounts this server can resolve.
#[derive(Debug)]
pub struct JwtAuth {
    /// Who may sign accounts.
    pub trust: Trust,
    /// The account JWTs known here.
    pub resolver: Resolver,
    /// Which accounts have their JWT imports wired.
    pub wiring: imports::Wiring,
}

impl JwtAuth {
    /// Builds operator mode from its settings: decodes the operators, then loads the
    /// preloaded and stored account JWTs.
    ///
    /// # Errors
    /// A message naming the bad operator or preloaded account JWT; the server does not
    /// start.
    pub fn new(config: &OperatorConfig, system_account: Option<&str>) -> Result<Arc<Self>, String> {
        let trust = Trust::new(config, system_account)?;
        let resolver = Resolver::new(config, &trust)?;
        Ok(Arc::new(Self {
            trust,
            resolver,
            wiring: imports::Wiring::default(),
        }))
    }

    /// The system account's public key, from the config or the operator JWT.
    pub fn system_account(&self) -> Option<&str> {
        self.trust.system_account()
    }

    /// Every known account with its JetStream limits, `None` for an account whose JWT does
    /// not enable JetStream. As nats-server: JetStream is on when the JWT allows some
    /// storage or has tiers; streams of one replica are held to the `R1` tier.
    pub fn jetstream_accounts(&self) -> Vec<(String, Option<AccountJetStreamLimits>)> {
        let keys = self.resolver.keys();
        keys.into_iter()
            .filter_map(|key| {
                let account = self.resolver.lookup(&key)?;
                let limits = &account.claims.nats.limits;
                let js = if limits.tiered_limits.is_empty() {
                    Some(&limits.jetstream)
                        .filter(|l| l.enabled())
                        .map(js_limits)
                } else {
                    Some(tiered(&limits.tiered_limits))
                };
                Some((key, js))
            })
            .collect()
    }
}

/// An account JWT's `tiered_limits`: the `R1` tier's limits in force (nothing allowed
/// without one) and every tier listed. A tier's unset largest stream and unset
/// max_ack_pending are unlimited (-1), as nats-server lists them (the top-level limits
/// keep their 0).
fn tiered(
    tiers: &std::collections::BTreeMap<String, claims::JetStreamLimits>,
) -> AccountJetStreamLimits {
    let listed = tiers
        .iter()
        .map(|(name, l)| {
            let mut limits = js_limits(l);
            for max in [
                &mut limits.memory_max_stream_bytes,
                &mut limits.store_max_stream_bytes,
                &mut limits.max_ack_pending,
            ] {
                if *max == 0 {
                    *max = -1;
                }
            }
            (name.clone(), limits)
        })
        .collect();
    let r1 = tiers.get("R1").map_or_else(no_storage, js_limits);
    AccountJetStreamLimits {
        tiers: listed,
        ..r1
    }
}

/// Limits that allow nothing (an account whose tiers have no `R1`).
fn no_storage() -> AccountJetStreamLimits {
    AccountJetStreamLimits {
        max_memory: 0,
        max_store: 0,
        max_streams: 0,
        max_consumers: 0,
        max_ack_pending: 0,
        max_bytes_required: false,
        memory_max_stream_bytes: 0,
        store_max_stream_bytes: 0,
        tiers: std::collections::BTreeMap::new(),
    }
}

/// A JWT's JetStream limits as an account's configured ones.
fn js_limits(l: &claims::JetStreamLimits) -> AccountJetStreamLimits {
    AccountJetStreamLimits {
        max_memory: l.mem_storage,
        max_store: l.disk_storage,
        max_streams: l.streams,
        max_consumers: l.consumer,
        max_ack_pending: l.max_ack_pending,
        max_bytes_required: l.max_bytes_required,
        memory_max_stream_bytes: l.mem_max_stream_bytes,
        store_max_stream_bytes: l.disk_max_stream_bytes,
        tiers: std::collections::BTreeMap::new(),
    }
}
