//! `operator`, `trusted_keys`, `resolver`, `resolver_preload`, `system_account`.
//!
//! An operator is given as a JWT, a file holding one (raw or between `-----BEGIN …-----`
//! lines, as nsc writes them), or a list of these. A bad token or file is an error at
//! start, as in nats-server.

use std::path::Path;

use super::super::conf::{ConfValue, ValueKind};
use super::super::error::{ConfigError, Warning};
use super::super::operator::{DirResolver, ResolverConfig};
use super::Draft;
use super::value::{self, boolean, count, duration, map, string, strings};

impl Draft {
    /// Applies an operator-mode key; false when `lower` is not one.
    pub(super) fn operator_key(&mut self, lower: &str, v: &ConfValue) -> Result<bool, ConfigError> {
        match lower {
            "operator" | "operators" | "root" | "roots" | "root_operator" | "root_operators" => {
                let list = match &v.kind {
                    ValueKind::Array(_) => strings(v, lower)?,
                    _ => vec![string(v, lower)?],
                };
                let op = self.config.operator.get_or_insert_with(Default::default);
                for item in &list {
                    op.operators.push(operator_jwt(item, v)?);
                }
            }
            "trusted" | "trusted_keys" => {
                let keys = match &v.kind {
                    ValueKind::Array(_) => strings(v, lower)?,
                    _ => vec![string(v, lower)?],
                };
                for k in &keys {
                    if !k.starts_with('O') || nkeys::KeyPair::from_public_key(k).is_err() {
                        return Err(ConfigError::at(
                            &v.pos,
                            format!("trusted Keys \"{k}\" are not valid operator public keys"),
                        ));
                    }
                }
                let op = self.config.operator.get_or_insert_with(Default::default);
                op.trusted_keys.extend(keys);
            }
            "resolver" | "account_resolver" | "accounts_resolver" => {
                self.resolver = Some(resolver(v, &mut self.warnings)?);
            }
            "resolver_preload" => {
                for e in map(v, lower)?.entries() {
                    let jwt = string(&e.value, &e.key)?;
                    self.preload.insert(e.key.clone(), jwt);
                }
            }
            "system_account" | "system" => self.config.system_account = Some(string(v, lower)?),
            "no_system_account" | "no_system" | "no_sys_acc" => {
                self.config.no_system_account = boolean(v, lower)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Attaches the resolver settings to the operator settings; a resolver without an
    /// operator is an error, as in nats-server.
    pub(super) fn finish_operator(&mut self) -> Result<(), ConfigError> {
        let resolver = self.resolver.take();
        let preload = std::mem::take(&mut self.preload);
        let Some(op) = self.config.operator.as_mut() else {
            if resolver.is_some() || !preload.is_empty() {
                return Err(ConfigError::Validation(
                    "resolver requires an operator (operator or trusted_keys)".into(),
                ));
            }
            return Ok(());
        };
        op.resolver = resolver.unwrap_or_default();
        op.preload = preload;
        let auth = &self.config.authorization;
        let has_users = !auth.users.is_empty() || auth.user.is_some() || auth.token.is_some();
        if has_users || self.config.accounts.iter().any(|a| !a.users.is_empty()) {
            return Err(ConfigError::Validation(
                "operators do not allow users to be configured directly".into(),
            ));
        }
        Ok(())
    }
}

/// The operator JWT in `item`: the token itself, or a file holding it.
fn operator_jwt(item: &str, v: &ConfValue) -> Result<String, ConfigError> {
    let item = item.trim();
    if item.starts_with("eyJ") {
        return Ok(item.to_string());
    }
    let text = std::fs::read_to_string(Path::new(item)).map_err(|e| {
        ConfigError::at(
            &v.pos,
            format!(
                "error parsing operator JWT: open {item}: {}",
                super::super::go_error(&e)
            ),
        )
    })?;
    armored_jwt(&text).ok_or_else(|| {
        ConfigError::at(
            &v.pos,
            format!("error parsing operator JWT: no JWT in {item}"),
        )
    })
}

/// The first JWT in `text`: between armor lines (`-----BEGIN …-----`), or the first
/// line that looks like one.
pub(crate) fn armored_jwt(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("---") && line.contains("JWT") {
            return lines.next().filter(|l| !l.is_empty()).map(str::to_string);
        }
        if line.starts_with("eyJ") {
            return Some(line.to_string());
        }
    }
    None
}

fn resolver(v: &ConfValue, warnings: &mut Vec<Warning>) -> Result<ResolverConfig, ConfigError> {
    if let ValueKind::String(s) = &v.kind {
        return match s.to_ascii_uppercase().as_str() {
            "MEMORY" => Ok(ResolverConfig::Memory),
            u if u.starts_with("URL(") => Err(ConfigError::at(
                &v.pos,
                "the URL account resolver is not supported by rill; use MEMORY or a full/cache directory resolver",
            )),
            _ => Err(ConfigError::at(
                &v.pos,
                format!("resolver type \"{s}\" is not known (MEMORY, URL(...) or a map)"),
            )),
        };
    }
    let mut kind = String::from("cache");
    let mut dir = DirResolver::default();
    for e in map(v, "resolver")?.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "type" => kind = string(v, &key)?.to_ascii_lowercase(),
            "dir" => dir.dir = value::path(v, &key)?,
            "allow_delete" => dir.allow_delete = boolean(v, &key)?,
            "hard_delete" => dir.hard_delete = boolean(v, &key)?,
            "interval" => dir.interval = duration(v, &key, warnings)?,
            "limit" => dir.limit = count(v, &key)?,
            "ttl" => dir.ttl = duration(v, &key, warnings)?,
            "timeout" => dir.timeout = duration(v, &key, warnings)?,
            _ => value::unknown(e)?,
        }
    }
    match kind.as_str() {
        "full" => Ok(ResolverConfig::Full(dir)),
        "cache" => Ok(ResolverConfig::Cache(dir)),
        other => Err(ConfigError::at(
            &v.pos,
            format!("resolver type \"{other}\" is not known (full or cache)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::conf::parse_str;
    use super::*;

    fn load(text: &str) -> Result<crate::config::Config, ConfigError> {
        Draft::from_map(&parse_str(text)?)?.finish().map(|(c, _)| c)
    }

    #[test]
    fn operator_from_file_with_armor_and_resolvers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("op.jwt");
        std::fs::write(
            &file,
            "-----BEGIN TEST OPERATOR JWT-----\neyJhbGciOi.e30.sig\n------END TEST OPERATOR JWT------\n",
        )
        .expect("write");
        let text = format!(
            "operator: \"{}\"\nsystem_account: AXYZ\nresolver {{ type: full, dir: \"{}\", allow_delete: true, hard_delete: true, interval: \"2m\" }}\n",
            file.display(),
            dir.path().display()
        );
        let c = load(&text).expect("loads");
        let op = c.operator.expect("operator mode");
        assert_eq!(op.operators, vec!["eyJhbGciOi.e30.sig".to_string()]);
        assert_eq!(c.system_account.as_deref(), Some("AXYZ"));
        match op.resolver {
            ResolverConfig::Full(d) => {
                assert!(d.allow_delete && d.hard_delete);
                assert_eq!(d.interval, std::time::Duration::from_secs(120));
            }
            other => panic!("full resolver expected, got {other:?}"),
        }
        let mem = load(
            "operator: eyJx.e30.sig\nresolver: MEMORY\nresolver_preload { AKEY: \"eyJ.a.b\" }",
        )
        .expect("loads");
        let op = mem.operator.expect("operator mode");
        assert_eq!(op.resolver, ResolverConfig::Memory);
        assert_eq!(op.preload.get("AKEY").map(String::as_str), Some("eyJ.a.b"));
    }

    #[test]
    fn operator_mode_errors() {
        let users = "operator: eyJx.e30.sig\nauthorization { users: [{user: a, password: b}] }";
        assert!(load(users).is_err_and(|e| e.to_string().contains("operators do not allow users")));
        assert!(load("trusted_keys: [\"not-a-key\"]").is_err());
        assert!(load("resolver: MEMORY").is_err());
        assert!(load("operator: eyJx.e30.sig\nresolver: \"URL(http://x)\"").is_err());
        assert!(load("operator: /nonexistent/op.jwt").is_err());
    }
}
