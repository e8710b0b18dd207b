//! The account resolver: the account JWTs this server knows, by account public key.
//!
//! - `MEMORY`: the `resolver_preload` accounts; claim updates replace them in memory.
//! - `full`: every account JWT is a `<account>.jwt` file in `dir`, read at start; claim
//!   updates are written there (so they survive a restart) and deletes honoured when
//!   `allow_delete` is set.
//! - `cache`: as `full`, but only accounts this server was told about are kept, at most
//!   `limit` of them.
//!
//! Every JWT is verified against the trusted operators before it is kept; an update that
//! is older (by `iat`) than the JWT already held is refused, as nats-server does.
//!
//! Full resolvers catch up with each other (a server that was down while an update was
//! pushed): every `interval` each asks the others with `$SYS.REQ.CLAIMS.PACK`, sending
//! [`Resolver::hash`] of what it holds; one whose hash differs answers with its JWTs
//! ([`Resolver::pack`], one `<account>|<jwt>` line a message, then an empty message),
//! and the asking server keeps the newer ones ([`Resolver::merge`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing::warn;

use super::claims::AccountClaims;
use super::token::JwtError;
use super::trust::Trust;
use crate::config::{OperatorConfig, ResolverConfig};
use crate::locks;

/// An account JWT as kept: the token and its verified claims.
#[derive(Debug, Clone)]
pub struct ResolvedAccount {
    /// The JWT as received.
    pub jwt: String,
    /// Its claims.
    pub claims: AccountClaims,
}

/// Why a claim update was refused.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The JWT does not verify.
    #[error("{0}")]
    Invalid(#[from] JwtError),
    /// The update is for another account than the subject names.
    #[error("subject does not match the account")]
    WrongAccount,
    /// An account JWT issued later is already held.
    #[error("jwt update older than existing")]
    Older,
    /// The resolver does not take updates or deletes.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// The JWT could not be stored.
    #[error("storing the jwt failed: {0}")]
    Store(String),
}

/// The account JWTs known to this server.
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    accounts: RwLock<HashMap<String, Arc<ResolvedAccount>>>,
}

impl Resolver {
    /// Loads the preloaded accounts and, for a directory resolver, the stored ones.
    ///
    /// # Errors
    /// A preloaded JWT that does not verify, or a directory that cannot be created.
    pub fn new(config: &OperatorConfig, trust: &Trust) -> Result<Self, String> {
        let mut accounts = HashMap::new();
        for (key, jwt) in &config.preload {
            let claims = match trust.verify_account(jwt) {
                Ok(claims) => claims,
                // As nats-server: an account no trusted key signed is stored nowhere (its
                // users are refused), unless it is the system account.
                Err(JwtError::Untrusted) if trust.system_account() != Some(key.as_str()) => {
                    warn!("resolver_preload account \"{key}\": not signed by a trusted key");
                    continue;
                }
                Err(JwtError::Untrusted) => {
                    return Err("error resolving system account: account validation failed".into());
                }
                Err(e) => return Err(format!("resolver_preload account \"{key}\": {e}")),
            };
            if &claims.data.sub != key {
                return Err(format!(
                    "resolver_preload account \"{key}\": the JWT is for \"{}\"",
                    claims.data.sub
                ));
            }
            let jwt = jwt.clone();
            accounts.insert(key.clone(), Arc::new(ResolvedAccount { jwt, claims }));
        }
        if let Some(dir) = dir_of(&config.resolver) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("resolver directory {}: {e}", dir.display()))?;
            load_dir(dir, trust, &mut accounts);
        }
        Ok(Self {
            config: config.resolver.clone(),
            accounts: RwLock::new(accounts),
        })
    }

    /// The account JWT of `key`, when known.
    pub fn lookup(&self, key: &str) -> Option<Arc<ResolvedAccount>> {
        locks::read(&self.accounts).get(key).cloned()
    }

    /// The public keys of every known account, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut v: Vec<String> = locks::read(&self.accounts).keys().cloned().collect();
        v.sort();
        v
    }

    /// True for a resolver that takes claim updates.
    pub fn takes_updates(&self) -> bool {
        !matches!(self.config, ResolverConfig::None)
    }

    /// True for a directory resolver (`full` or `cache`).
    pub fn has_dir(&self) -> bool {
        dir_of(&self.config).is_some()
    }

    /// True when an update for `key` would only be skipped: the MEMORY and cache resolvers
    /// take updates only for accounts they already hold.
    pub fn skips(&self, key: &str) -> bool {
        !matches!(self.config, ResolverConfig::Full(_)) && self.lookup(key).is_none()
    }

    /// Verifies and keeps an account JWT update for `account` (`None`: any account).
    ///
    /// # Errors
    /// [`UpdateError`] when the JWT is refused.
    pub fn update(
        &self,
        trust: &Trust,
        account: Option<&str>,
        jwt: &str,
    ) -> Result<Arc<ResolvedAccount>, UpdateError> {
        if !self.takes_updates() {
            return Err(UpdateError::NotAllowed("resolver does not take updates"));
        }
        let claims = trust.verify_account(jwt)?;
        if account.is_some_and(|a| a != claims.data.sub) {
            return Err(UpdateError::WrongAccount);
        }
        let key = claims.data.sub.clone();
        if let Some(old) = self.lookup(&key)
            && old.claims.data.iat > claims.data.iat
        {
            return Err(UpdateError::Older);
        }
        if let Some(dir) = dir_of(&self.config) {
            store(dir, &key, jwt).map_err(|e| UpdateError::Store(e.to_string()))?;
        }
        let resolved = Arc::new(ResolvedAccount {
            jwt: jwt.trim().to_string(),
            claims,
        });
        let mut accounts = locks::write(&self.accounts);
        if let ResolverConfig::Cache(c) = &self.config
            && accounts.len() >= c.limit
            && !accounts.contains_key(&key)
            && let Some(evict) = accounts.keys().next().cloned()
        {
            accounts.remove(&evict);
        }
        accounts.insert(key, Arc::clone(&resolved));
        drop(accounts);
        Ok(resolved)
    }

    /// The catch-up interval of a full resolver; `None` for the others, which do not
    /// catch up.
    pub fn sync_interval(&self) -> Option<std::time::Duration> {
        match &self.config {
            ResolverConfig::Full(d) => Some(d.interval),
            _ => None,
        }
    }

    /// A digest of every JWT held, equal on two servers that hold the same ones
    /// (in any order): the XOR of each JWT's SHA-256.
    pub fn hash(&self) -> [u8; 32] {
        let mut hash = [0u8; 32];
        for account in locks::read(&self.accounts).values() {
            let digest = ring::digest::digest(&ring::digest::SHA256, account.jwt.as_bytes());
            for (h, d) in hash.iter_mut().zip(digest.as_ref()) {
                *h ^= d;
            }
        }
        hash
    }

    /// Every JWT held as a pack line `<account>|<jwt>`, sorted by account.
    pub fn pack(&self) -> Vec<String> {
        let mut lines: Vec<String> = locks::read(&self.accounts)
            .iter()
            .map(|(key, account)| format!("{key}|{}", account.jwt))
            .collect();
        lines.sort();
        lines
    }

    /// Keeps the JWTs of a pack message (lines `<account>|<jwt>`) that are newer than
    /// those held, as updates; the accounts that changed. Lines that do not verify, or
    /// are not newer, are skipped (logged at debug).
    pub fn merge(&self, trust: &Trust, pack: &str) -> Vec<String> {
        let mut changed = Vec::new();
        for line in pack.lines().filter(|l| !l.trim().is_empty()) {
            let Some((key, jwt)) = line.split_once('|') else {
                tracing::debug!("pack line without an account: skipped");
                continue;
            };
            if self.lookup(key).is_some_and(|held| held.jwt == jwt.trim()) {
                continue;
            }
            match self.update(trust, Some(key), jwt) {
                Ok(_) => changed.push(key.to_string()),
                Err(e) => tracing::debug!("pack entry for {key} skipped: {e}"),
            }
        }
        changed
    }

    /// True when this resolver deletes accounts on request: a full one with
    /// `allow_delete`, or a cache (as nats-server).
    pub fn deletes(&self) -> bool {
        match &self.config {
            ResolverConfig::Full(dir) => dir.allow_delete,
            ResolverConfig::Cache(_) => true,
            _ => false,
        }
    }

    /// Deletes the account `key`: its file is removed (`hard_delete`, and always for a
    /// cache) or renamed to `<key>.jwt.deleted`, and the account is forgotten. A key not
    /// held is no error.
    ///
    /// # Errors
    /// [`UpdateError::NotAllowed`] when the resolver does not delete; a file that
    /// could not be removed.
    pub fn delete(&self, key: &str) -> Result<(), UpdateError> {
        if !self.deletes() {
            return Err(UpdateError::NotAllowed(
                "delete must be enabled in server config",
            ));
        }
        if let Some(dir) = dir_of(&self.config) {
            let path = jwt_path(dir, key);
            let hard = !matches!(&self.config, ResolverConfig::Full(d) if !d.hard_delete);
            let removed = if hard {
                std::fs::remove_file(&path)
            } else {
                std::fs::rename(&path, dir.join(format!("{key}.jwt.deleted")))
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(UpdateError::Store(e.to_string()));
                }
                _ => {}
            }
        }
        locks::write(&self.accounts).remove(key);
        Ok(())
    }
}

fn dir_of(config: &ResolverConfig) -> Option<&Path> {
    match config {
        ResolverConfig::Full(d) | ResolverConfig::Cache(d) => Some(&d.dir),
        _ => None,
    }
}

fn jwt_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.jwt"))
}

/// Writes `<dir>/<key>.jwt` through a temporary file, so a crash leaves the old or the
/// new JWT, never half of one.
fn store(dir: &Path, key: &str, jwt: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{key}.jwt.tmp"));
    std::fs::write(&tmp, jwt.trim())?;
    std::fs::rename(&tmp, jwt_path(dir, key))
}

/// Reads every `<account>.jwt` in `dir`; files that do not verify are skipped with a
/// warning.
fn load_dir(dir: &Path, trust: &Trust, accounts: &mut HashMap<String, Arc<ResolvedAccount>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "jwt") {
            continue;
        }
        let Ok(jwt) = std::fs::read_to_string(&path) else {
            continue;
        };
        match trust.verify_account(&jwt) {
            Ok(claims) => {
                let key = claims.data.sub.clone();
                let jwt = jwt.trim().to_string();
                accounts.insert(key, Arc::new(ResolvedAccount { jwt, claims }));
            }
            Err(e) => warn!("Account JWT {} skipped: {e}", path.display()),
        }
    }
}
