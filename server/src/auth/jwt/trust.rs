//! The trusted operators: which keys may sign account JWTs, and the system account they
//! name.
//!
//! Trusted keys are each operator JWT's own key and its signing keys, plus the
//! `trusted_keys` of the config. An operator with `strict_signing_key_usage` accepts
//! accounts signed by its signing keys only (and users signed by account signing keys
//! only, see [`super::user`]).

use std::collections::HashSet;

use super::claims::{AccountClaims, Claims, Operator};
use super::token::{self, JwtError, Kind};
use crate::config::OperatorConfig;

/// The trusted operators.
#[derive(Debug, Default)]
pub struct Trust {
    operators: Vec<Claims<Operator>>,
    keys: HashSet<String>,
    /// Operator identity keys that may not sign accounts themselves (strict mode).
    strict_identities: HashSet<String>,
    system_account: Option<String>,
}

impl Trust {
    /// Decodes the configured operators.
    ///
    /// # Errors
    /// A message naming the bad operator JWT.
    pub fn new(config: &OperatorConfig, system_account: Option<&str>) -> Result<Self, String> {
        let mut me = Self {
            system_account: system_account.map(str::to_string),
            ..Self::default()
        };
        for jwt in &config.operators {
            let op = token::decode::<Operator>(jwt, Kind::Operator)
                .map_err(|e| format!("error parsing operator JWT: {e}"))?
                .claims;
            if op.data.expired(token::now()) {
                return Err(format!("operator \"{}\" JWT has expired", op.data.name));
            }
            me.keys.insert(op.data.sub.clone());
            me.keys.extend(op.nats.signing_keys.iter().cloned());
            if op.nats.strict_signing_key_usage {
                me.strict_identities.insert(op.data.sub.clone());
            }
            if me.system_account.is_none() && !op.nats.system_account.is_empty() {
                me.system_account = Some(op.nats.system_account.clone());
            }
            me.operators.push(op);
        }
        me.keys.extend(config.trusted_keys.iter().cloned());
        Ok(me)
    }

    /// The operator claims, in configured order.
    pub fn operators(&self) -> &[Claims<Operator>] {
        &self.operators
    }

    /// The system account's public key.
    pub fn system_account(&self) -> Option<&str> {
        self.system_account.as_deref()
    }

    /// True when an operator has `strict_signing_key_usage`: then only signing keys sign,
    /// accounts (the operator's own key may not) and users (the account's may not).
    pub fn strict(&self) -> bool {
        !self.strict_identities.is_empty()
    }

    /// True when `key` may sign accounts.
    pub fn trusts(&self, key: &str) -> bool {
        self.keys.contains(key) && !self.strict_identities.contains(key)
    }

    /// Decodes an account JWT and checks that a trusted operator signed it.
    ///
    /// # Errors
    /// [`JwtError`] for a bad token; [`JwtError::Signature`] for an untrusted issuer.
    pub fn verify_account(&self, jwt: &str) -> Result<AccountClaims, JwtError> {
        let claims = token::decode(jwt, Kind::Account)?.claims;
        if !self.trusts(&claims.data.iss) {
            return Err(JwtError::Untrusted);
        }
        if !claims.data.sub.starts_with('A')
            || nkeys::KeyPair::from_public_key(&claims.data.sub).is_err()
        {
            return Err(JwtError::Claims("subject is not an account key".into()));
        }
        Ok(claims)
    }

    /// Checks a claims delete request (`$SYS.REQ.CLAIMS.DELETE`, what `nsc` sends): a
    /// generic JWT that a trusted operator key signed about itself, listing the account
    /// keys to delete in `nats.accounts`. Returns the requester and the accounts;
    /// `deletes` says whether the resolver deletes at all.
    ///
    /// # Errors
    /// The requester (when the token decodes) and nats-server's reason, checked in its
    /// order: `delete must be enabled in server config`, `not self signed`, `not
    /// trusted`, `malformed request`, `not allowed to delete system account`.
    pub fn verify_delete(
        &self,
        jwt: &str,
        deletes: bool,
    ) -> Result<(String, Vec<String>), (String, String)> {
        let claims = token::decode::<DeleteRequest>(jwt, Kind::Generic)
            .map_err(|e| (String::new(), e.to_string()))?
            .claims;
        let by = claims.data.sub.clone();
        let fail = |why: &str| (by.clone(), why.to_string());
        if !deletes {
            return Err(fail("delete must be enabled in server config"));
        }
        if claims.data.sub != claims.data.iss {
            return Err(fail("not self signed"));
        }
        if !self.trusts(&claims.data.iss) {
            return Err(fail("not trusted"));
        }
        let Some(serde_json::Value::Array(list)) = &claims.nats.accounts else {
            return Err(fail("malformed request"));
        };
        let mut accounts = Vec::with_capacity(list.len());
        for entry in list {
            let key = entry.as_str().unwrap_or_default();
            if !key.starts_with('A') || nkeys::KeyPair::from_public_key(key).is_err() {
                return Err(fail("malformed request"));
            }
            if self.system_account() == Some(key) {
                return Err(fail("not allowed to delete system account"));
            }
            accounts.push(key.to_string());
        }
        Ok((by, accounts))
    }
}

/// The `nats` part of a claims delete request.
#[derive(Debug, Default, serde::Deserialize)]
struct DeleteRequest {
    /// The account keys to delete (a list; anything else is a malformed request).
    #[serde(default)]
    accounts: Option<serde_json::Value>,
}
