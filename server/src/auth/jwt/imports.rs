//! Exports and imports of account JWTs (operator mode): which imports an account JWT asks
//! for are allowed by their exporters' JWTs, and the check of the activation tokens they
//! carry.
//!
//! As nats-server 2.15.1 (observed side by side, see `tests/e2e/jwt_imports.rs`):
//! - an import is wired when the exporter's JWT has an export of the same kind whose
//!   subject contains the import's; a `token_req` (private) export also wants an
//!   activation token signed by the exporter (or one of its signing keys) for the
//!   importing account, not expired, and not revoked by the export's `revocations`
//!   (importer key or `*`, tokens issued at or before the time given);
//! - an account JWT carrying a bad activation token (undecodable, signed by another
//!   account, made out to another account, of another kind, for a subject it does not
//!   cover, expired or not yet valid) does not validate: its users are refused;
//! - a service export's `response_type` `Stream` or `Chunked` lets many responses through
//!   per request, until `response_threshold`;
//! - an import whose activation expires while the server runs stops at that moment.
//!
//! Not supported: activation tokens given as URLs (nats-server fetches them); such an
//! import is not wired (logged).
//!
//! [`Wiring`] keeps which accounts have their JWT imports wired, so that a claim update
//! (of the importer or an exporter) or an expiring activation rewires them; it also
//! keeps when a wired account's own JWT expires, so that its connections are re-checked
//! then (and closed, as nats-server 2.15.1: `-ERR 'Account Authentication Expired'`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rill_protocol::subject;
use tracing::debug;

use super::JwtAuth;
use super::claims::{AccountClaims, Activation, ActivationClaims, Export, ExportType, Import};
use super::resolver::ResolvedAccount;
use super::token::{self, Kind};
use crate::account::{Accounts, ImportSpec, Responses};
use crate::config::{ExportKind, ImportConfig};
use crate::locks;

/// The accounts whose JWT imports are wired, each with the first time its standing
/// changes by itself: an activation of its imports or its own JWT expiring.
#[derive(Debug, Default)]
pub struct Wiring {
    wired: Mutex<HashMap<String, Option<i64>>>,
    /// Rung when an account is wired with an expiry sooner than any before.
    pub sooner: tokio::sync::Notify,
}

impl Wiring {
    /// The earliest expiry (unix seconds) of a wired account's JWT or of an activation of
    /// its imports.
    pub fn next_expiry(&self) -> Option<i64> {
        locks::lock(&self.wired).values().flatten().min().copied()
    }
}

impl JwtAuth {
    /// Wires the JWT imports of account `key` unless they already are (its first user).
    pub fn ensure_wired(&self, accounts: &Accounts, key: &str) {
        if locks::lock(&self.wiring.wired).contains_key(key) {
            return;
        }
        self.wire_account(accounts, key);
    }

    /// Rewires every account already wired: after a claim update (an importer's imports
    /// or an exporter's exports changed) or when an activation expired.
    pub fn rewire_all(&self, accounts: &Accounts) {
        let keys: Vec<String> = locks::lock(&self.wiring.wired).keys().cloned().collect();
        for key in keys {
            self.wire_account(accounts, &key);
        }
    }

    fn wire_account(&self, accounts: &Accounts, key: &str) {
        let now = token::now();
        let (wanted, expiry) = match self.resolver.lookup(key) {
            Some(account) => {
                let (wanted, first) = self.allowed_imports(&account.claims, now);
                let own = account.claims.data.exp;
                let own = (own > now).then_some(own);
                (wanted, first.into_iter().chain(own).min())
            }
            None => (Vec::new(), None),
        };
        accounts.wire_jwt(key, &wanted);
        let before = self.wiring.next_expiry();
        locks::lock(&self.wiring.wired).insert(key.to_string(), expiry);
        if expiry.is_some_and(|e| before.is_none_or(|b| e < b)) {
            self.wiring.sooner.notify_one();
        }
    }

    /// The imports `importer` asks for that its exporters allow at `now`, and when the
    /// first of their activations expires.
    pub fn allowed_imports(
        &self,
        importer: &AccountClaims,
        now: i64,
    ) -> (Vec<ImportSpec>, Option<i64>) {
        let mut wanted = Vec::new();
        let mut expiry: Option<i64> = None;
        for import in &importer.nats.imports {
            match self.allowed(importer, import, now) {
                Ok((spec, exp)) => {
                    if let Some(e) = exp {
                        expiry = Some(expiry.map_or(e, |x| x.min(e)));
                    }
                    if !wanted.contains(&spec) {
                        wanted.push(spec);
                    }
                }
                Err(why) => debug!(
                    "Account {}: import of \"{}\" from {} not wired: {why}",
                    importer.data.sub, import.subject, import.account
                ),
            }
        }
        (wanted, expiry)
    }

    fn allowed(
        &self,
        importer: &AccountClaims,
        import: &Import,
        now: i64,
    ) -> Result<(ImportSpec, Option<i64>), &'static str> {
        let kind = export_kind(import.kind).ok_or("unknown import type")?;
        let exporter = self
            .resolver
            .lookup(&import.account)
            .ok_or("exporter not found")?;
        let remote = remote_subject(import);
        let export = exporter
            .claims
            .nats
            .exports
            .iter()
            .find(|e| e.kind == import.kind && subject::is_subset(remote, &e.subject))
            .ok_or("no matching export")?;
        if !token_position_ok(export, remote, &importer.data.sub) {
            return Err("the account token of the subject is not the importer's");
        }
        let expires = if export.token_req {
            let act = activation(import)?;
            check_activation(&act, &exporter, export, &importer.data.sub, now)?;
            (act.data.exp > 0).then_some(act.data.exp)
        } else {
            None
        };
        let config = import_config(kind, import, remote);
        let responses = Responses {
            stream: matches!(export.response_type.as_str(), "Stream" | "Chunked"),
            threshold: u64::try_from(export.response_threshold)
                .ok()
                .filter(|&ns| ns > 0)
                .map_or(Responses::default().threshold, Duration::from_nanos),
        };
        Ok((
            ImportSpec {
                config,
                responses,
                allow_trace: false,
            },
            expires,
        ))
    }
}

fn export_kind(kind: ExportType) -> Option<ExportKind> {
    match kind {
        ExportType::Stream => Some(ExportKind::Stream),
        ExportType::Service => Some(ExportKind::Service),
        ExportType::Unknown => None,
    }
}

/// The exporter's subject: a service import's deprecated `to` names it, else `subject`.
fn remote_subject(import: &Import) -> &str {
    if import.kind == ExportType::Service && !import.to.is_empty() {
        &import.to
    } else {
        &import.subject
    }
}

/// The import as the account table wires it: a stream's `local_subject` maps it (its
/// deprecated `to` is a prefix); a service is requested on `local_subject` (or, with the
/// deprecated `to`, on `subject`) and forwarded to the exporter's subject.
fn import_config(kind: ExportKind, import: &Import, remote: &str) -> ImportConfig {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let (to, prefix) = match kind {
        ExportKind::Stream => (non_empty(&import.local_subject), non_empty(&import.to)),
        ExportKind::Service => {
            let local = non_empty(&import.local_subject)
                .or_else(|| (remote != import.subject).then(|| import.subject.clone()));
            (local, None)
        }
    };
    ImportConfig {
        kind,
        account: import.account.clone(),
        subject: remote.to_string(),
        to,
        prefix,
        allow_trace: false,
        share: import.share,
    }
}

/// An export with `account_token_position` wants the importer's own key at that token.
fn token_position_ok(export: &Export, remote: &str, importer: &str) -> bool {
    let Some(at) = usize::try_from(export.account_token_position)
        .ok()
        .and_then(|p| p.checked_sub(1))
    else {
        return true;
    };
    subject::tokens(remote).nth(at) == Some(importer)
}

fn activation(import: &Import) -> Result<ActivationClaims, &'static str> {
    if import.token.is_empty() {
        return Err("the export wants an activation token");
    }
    if import.token.starts_with("http://") || import.token.starts_with("https://") {
        return Err("activation token URLs are not supported");
    }
    token::decode::<Activation>(&import.token, Kind::Activation)
        .map(|d| d.claims)
        .map_err(|_| "invalid activation token")
}

fn check_activation(
    act: &ActivationClaims,
    exporter: &ResolvedAccount,
    export: &Export,
    importer: &str,
    now: i64,
) -> Result<(), &'static str> {
    let ex = &exporter.claims;
    let signer_ok = act.data.iss == ex.data.sub
        || (act.nats.issuer_account == ex.data.sub && ex.signing_key(&act.data.iss).is_some());
    if !signer_ok {
        return Err("activation not signed by the exporter");
    }
    if act.data.sub != importer {
        return Err("activation made out to another account");
    }
    if act.data.expired(now) || act.data.not_yet_valid(now) {
        return Err("activation expired or not yet valid");
    }
    let revoked = [importer, "*"].iter().any(|k| {
        export
            .revocations
            .get(*k)
            .is_some_and(|&at| act.data.iat <= at)
    });
    if revoked {
        return Err("activation revoked");
    }
    Ok(())
}

/// Checks the activation tokens an account JWT carries, as nats-io/jwt validates an
/// account: any defect makes the whole account invalid.
///
/// # Errors
/// The first defect found.
pub fn validate(account: &AccountClaims, now: i64) -> Result<(), String> {
    for import in &account.nats.imports {
        if import.kind == ExportType::Unknown {
            return Err(format!("invalid import type for \"{}\"", import.subject));
        }
        if import.token.is_empty() || import.token.starts_with("http") {
            continue;
        }
        let act = token::decode::<Activation>(&import.token, Kind::Activation)
            .map_err(|e| {
                format!(
                    "import \"{}\" has an invalid activation token: {e}",
                    import.subject
                )
            })?
            .claims;
        let problem = if act.data.iss != import.account && act.nats.issuer_account != import.account
        {
            Some("doesn't match account for import")
        } else if act.data.sub != account.data.sub {
            Some("doesn't match account it is being included in")
        } else if act.nats.kind != import.kind {
            Some("is of another type than the import")
        } else if act.data.expired(now) || act.data.not_yet_valid(now) {
            Some("is expired or not yet valid")
        } else if !subject::is_subset(remote_subject(import), &act.nats.subject) {
            Some("does not cover the imported subject")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!(
                "activation token {problem}, \"{}\"",
                import.subject
            ));
        }
    }
    Ok(())
}
