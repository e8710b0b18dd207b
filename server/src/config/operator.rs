//! Operator mode settings: the trusted operators, the account resolver and the system
//! account (nats-server's `operator`, `trusted_keys`, `resolver`, `resolver_preload`,
//! `system_account`).
//!
//! Only data lives here; `auth::jwt` verifies the tokens and runs the resolver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Decentralized (JWT) authentication: set when `operator` or `trusted_keys` is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Operator JWTs (read from files when the config names files).
    pub operators: Vec<String>,
    /// Operator public keys trusted without an operator JWT (`trusted_keys`).
    pub trusted_keys: Vec<String>,
    /// Where account JWTs come from.
    pub resolver: ResolverConfig,
    /// Account JWTs loaded at start (`resolver_preload`): account public key → JWT.
    pub preload: BTreeMap<String, String>,
}

/// The account resolver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ResolverConfig {
    /// No resolver configured: only preloaded accounts are known.
    #[default]
    None,
    /// `resolver: MEMORY`: the preloaded accounts, updated in memory only.
    Memory,
    /// `resolver { type: full, dir }`: every account JWT kept on disk, updates accepted
    /// over the system account.
    Full(DirResolver),
    /// `resolver { type: cache, dir }`: a bounded on-disk cache of looked-up accounts.
    Cache(DirResolver),
}

/// Settings of a directory resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirResolver {
    /// Where the `<account>.jwt` files live.
    pub dir: PathBuf,
    /// Accept `$SYS.REQ.CLAIMS.DELETE` (full only).
    pub allow_delete: bool,
    /// `hard_delete`: a deleted JWT's file is removed (otherwise renamed to
    /// `<account>.jwt.deleted`).
    pub hard_delete: bool,
    /// How often servers compare their stores (full only).
    pub interval: Duration,
    /// Most JWTs kept (cache only).
    pub limit: usize,
    /// How long a looked-up JWT is kept (cache only); zero keeps it until evicted.
    pub ttl: Duration,
    /// How long a lookup waits for an answer.
    pub timeout: Duration,
}

impl Default for DirResolver {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("."),
            allow_delete: false,
            hard_delete: false,
            interval: Duration::from_secs(120),
            limit: 1000,
            ttl: Duration::ZERO,
            timeout: Duration::from_secs(2),
        }
    }
}

impl OperatorConfig {
    /// True when a resolver takes account JWT updates (`MEMORY`, `full`, `cache`).
    pub fn updatable(&self) -> bool {
        !matches!(self.resolver, ResolverConfig::None)
    }
}
