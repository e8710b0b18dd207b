//! Connection options (global flags and `NATS_*` environment variables), named contexts saved on disk,
//! and turning both into a connected `async_nats::Client`.
//!
//! Precedence: an explicit flag or environment variable wins over the chosen context (`--context`,
//! else the selected one), which wins over the built-in default `nats://127.0.0.1:4222`.
//!
//! Contexts live in `$RILL_CONFIG_DIR` if set (tests use this), else `$XDG_CONFIG_HOME/rill`, else
//! `~/.config/rill`: one `context/<name>.json` per context and `context.txt` naming the selected one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

/// The default server when neither a flag, the environment nor a context names one.
pub(crate) const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// Connection flags accepted by every command.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Connection options")]
pub(crate) struct ConnOpts {
    /// Server URL(s), comma separated
    #[arg(short = 's', long, env = "NATS_URL", global = true, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Username for user/password authentication
    #[arg(long, env = "NATS_USER", global = true)]
    pub(crate) user: Option<String>,
    /// Password for user/password authentication
    #[arg(long, env = "NATS_PASSWORD", global = true)]
    pub(crate) password: Option<String>,
    /// Authentication token
    #[arg(long, env = "NATS_TOKEN", global = true)]
    pub(crate) token: Option<String>,
    /// User credentials file (JWT + seed)
    #[arg(long, env = "NATS_CREDS", global = true, value_name = "FILE")]
    pub(crate) creds: Option<PathBuf>,
    /// NKey seed file
    #[arg(long, env = "NATS_NKEY", global = true, value_name = "FILE")]
    pub(crate) nkey: Option<PathBuf>,
    /// TLS client certificate file
    #[arg(long, env = "NATS_CERT", global = true, value_name = "FILE")]
    pub(crate) tlscert: Option<PathBuf>,
    /// TLS client private key file
    #[arg(long, env = "NATS_KEY", global = true, value_name = "FILE")]
    pub(crate) tlskey: Option<PathBuf>,
    /// TLS CA certificate file to verify the server with
    #[arg(long, env = "NATS_CA", global = true, value_name = "FILE")]
    pub(crate) tlsca: Option<PathBuf>,
    /// Do the TLS handshake before the server sends INFO (handshake_first)
    #[arg(long, global = true)]
    pub(crate) tlsfirst: bool,
    /// Time limit for connecting and for each request
    #[arg(long, global = true, default_value = "5s", value_parser = crate::parse::duration)]
    pub(crate) timeout: Duration,
    /// Use this saved context instead of the selected one
    #[arg(long, env = "RILL_CONTEXT", global = true, value_name = "NAME")]
    pub(crate) context: Option<String>,
}

/// A saved context: the connection settings one `rill context add` recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct SavedContext {
    /// Free text shown by `context ls`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) description: String,
    /// Server URL(s).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) url: String,
    /// Username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<String>,
    /// Token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
    /// Credentials file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) creds: Option<PathBuf>,
    /// NKey seed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nkey: Option<PathBuf>,
    /// TLS client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cert: Option<PathBuf>,
    /// TLS client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<PathBuf>,
    /// TLS CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca: Option<PathBuf>,
    /// TLS handshake first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tls_first: bool,
}

impl SavedContext {
    /// The context the given flags describe (for `context add`).
    pub(crate) fn from_opts(opts: &ConnOpts, description: String) -> Self {
        SavedContext {
            description,
            url: opts
                .server
                .clone()
                .unwrap_or_else(|| DEFAULT_URL.to_string()),
            user: opts.user.clone(),
            password: opts.password.clone(),
            token: opts.token.clone(),
            creds: opts.creds.clone(),
            nkey: opts.nkey.clone(),
            cert: opts.tlscert.clone(),
            key: opts.tlskey.clone(),
            ca: opts.tlsca.clone(),
            tls_first: opts.tlsfirst,
        }
    }

    /// Fills every option the flags left unset from this context.
    fn fill(&self, opts: &mut ConnOpts) {
        if opts.server.is_none() && !self.url.is_empty() {
            opts.server = Some(self.url.clone());
        }
        fill(&mut opts.user, &self.user);
        fill(&mut opts.password, &self.password);
        fill(&mut opts.token, &self.token);
        fill(&mut opts.creds, &self.creds);
        fill(&mut opts.nkey, &self.nkey);
        fill(&mut opts.tlscert, &self.cert);
        fill(&mut opts.tlskey, &self.key);
        fill(&mut opts.tlsca, &self.ca);
        opts.tlsfirst |= self.tls_first;
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, saved: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(saved);
    }
}

/// The on-disk context directory.
#[derive(Debug, Clone)]
pub(crate) struct ContextStore {
    dir: PathBuf,
}

impl ContextStore {
    /// The store at the standard location (see the module doc).
    pub(crate) fn open() -> anyhow::Result<Self> {
        let dir = if let Some(dir) = std::env::var_os("RILL_CONFIG_DIR") {
            PathBuf::from(dir)
        } else if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(xdg).join("rill")
        } else {
            let home = std::env::var_os("HOME")
                .context("cannot find the config directory: HOME is not set")?;
            PathBuf::from(home).join(".config").join("rill")
        };
        Ok(ContextStore { dir })
    }

    /// The directory holding the contexts.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join("context").join(format!("{name}.json"))
    }

    /// Loads a context by name.
    pub(crate) fn load(&self, name: &str) -> anyhow::Result<SavedContext> {
        validate_name(name)?;
        let path = self.path(name);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("unknown context {name:?}"))?;
        serde_json::from_str(&text).with_context(|| format!("bad context file {}", path.display()))
    }

    /// Saves (creates or replaces) a context.
    pub(crate) fn save(&self, name: &str, ctx: &SavedContext) -> anyhow::Result<()> {
        validate_name(name)?;
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        let text = serde_json::to_string_pretty(ctx)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))
    }

    /// Removes a context (and unselects it if it was selected).
    pub(crate) fn remove(&self, name: &str) -> anyhow::Result<()> {
        validate_name(name)?;
        std::fs::remove_file(self.path(name))
            .with_context(|| format!("unknown context {name:?}"))?;
        if self.selected().as_deref() == Some(name) {
            let _ = std::fs::remove_file(self.dir.join("context.txt"));
        }
        Ok(())
    }

    /// All context names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("context")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    /// The selected context name, if any.
    pub(crate) fn selected(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("context.txt")).ok()?;
        let name = text.trim();
        (!name.is_empty()).then(|| name.to_string())
    }

    /// Marks `name` as the selected context.
    pub(crate) fn select(&self, name: &str) -> anyhow::Result<()> {
        self.load(name)?;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join("context.txt"), format!("{name}\n"))
            .with_context(|| format!("write {}", self.dir.display()))
    }
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        bail!("invalid context name {name:?}: use letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

impl ConnOpts {
    /// These options with unset values filled from the chosen context.
    pub(crate) fn resolved(&self) -> anyhow::Result<ConnOpts> {
        let mut opts = self.clone();
        let store = ContextStore::open()?;
        let name = match &self.context {
            Some(name) => Some(name.clone()),
            None => store.selected(),
        };
        if let Some(name) = name {
            store.load(&name)?.fill(&mut opts);
        }
        Ok(opts)
    }

    /// Connects with these options (after context resolution).
    pub(crate) async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        self.connect_tuned(false, |o| o).await
    }

    /// Connects after `tune` adjusted the client options (e.g. a benchmark subscriber's queue size).
    /// `direct` uses exactly these options without looking at saved contexts (for servers the caller
    /// started itself, such as `rill bench compare`'s).
    pub(crate) async fn connect_tuned(
        &self,
        direct: bool,
        tune: impl FnOnce(async_nats::ConnectOptions) -> async_nats::ConnectOptions,
    ) -> anyhow::Result<async_nats::Client> {
        let opts = if direct {
            self.clone()
        } else {
            self.resolved()?
        };
        let url = opts
            .server
            .clone()
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let connect = tune(opts.connect_options().await?);
        connect
            .connect(url.as_str())
            .await
            .with_context(|| format!("cannot connect to {url}"))
    }

    async fn connect_options(&self) -> anyhow::Result<async_nats::ConnectOptions> {
        let mut o = async_nats::ConnectOptions::new()
            .name("rill")
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .max_reconnects(3);
        if let Some(user) = &self.user {
            o = o.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(token) = &self.token {
            o = o.token(token.clone());
        }
        if let Some(creds) = &self.creds {
            o = o
                .credentials_file(creds)
                .await
                .with_context(|| format!("read credentials {}", creds.display()))?;
        }
        if let Some(nkey) = &self.nkey {
            let seed = std::fs::read_to_string(nkey)
                .with_context(|| format!("read nkey seed {}", nkey.display()))?;
            o = o.nkey(seed.trim().to_string());
        }
        o = self.tls_options(o)?;
        Ok(o)
    }

    fn tls_options(
        &self,
        mut o: async_nats::ConnectOptions,
    ) -> anyhow::Result<async_nats::ConnectOptions> {
        match (&self.tlscert, &self.tlskey) {
            (Some(cert), Some(key)) => {
                o = o
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => bail!("--tlscert and --tlskey must be given together"),
        }
        if let Some(ca) = &self.tlsca {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        if self.tlsfirst {
            o = o.tls_first().require_tls(true);
        }
        Ok(o)
    }
}
