//! Configuration reload (SIGHUP): re-read the file, apply what may change at run time
//! and log each change as nats-server does.

use std::path::Path;
use std::sync::Arc;

use tracing::{info, warn};

use crate::config::{self, Config};
use crate::lifecycle::Server;
use crate::{logging, tls};

/// Re-reads the configuration on SIGHUP: given the config file, returns the new config.
pub trait Reload: Send + 'static {
    /// Builds the configuration again from `path` (and the original flags).
    ///
    /// # Errors
    /// The configuration error, which the server logs and survives.
    fn reload(
        &self,
        path: Option<&Path>,
    ) -> Result<(Config, Vec<config::Warning>), config::ConfigError>;
}

impl<F> Reload for F
where
    F: Fn(Option<&Path>) -> Result<(Config, Vec<config::Warning>), config::ConfigError>
        + Send
        + 'static,
{
    fn reload(
        &self,
        path: Option<&Path>,
    ) -> Result<(Config, Vec<config::Warning>), config::ConfigError> {
        self(path)
    }
}

/// Applies what can change at run time and logs each change as nats-server does
/// (`Reloaded: debug = true`); settings that need a restart keep their running value
/// and are logged as not reloadable, while the rest still applies.
pub(crate) async fn apply_reload(server: &Server, reload: &impl Reload) {
    let current = server.state().config();
    let Some(file) = current.config_file.as_deref() else {
        tracing::error!(
            "Failed to reload server configuration: can only reload config when a file is provided using -c or --config"
        );
        return;
    };
    let (mut new, warnings) = match reload.reload(Some(file)) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    for w in warnings {
        warn!("{w}");
    }
    pick_up_bound_port(&current, &mut new);
    let diff = config::diff(&current, &new);
    for line in &diff.not_reloadable {
        warn!("{line} (keeping the running value until restart)");
    }
    config::keep_fixed(&current, &mut new);
    let acceptor = match new.tls.as_ref().map(tls::acceptor).transpose() {
        Ok(acceptor) => acceptor,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    for line in &diff.changed {
        info!("Reloaded: {line}");
    }
    if let Err(e) = logging::apply(&new.logging) {
        tracing::error!("Failed to reload logging: {e}");
        new.logging = current.logging.clone();
    }
    let auth_changed = auth_changed(&current, &new);
    let new = Arc::new(new);
    let state = server.state();
    state.set_tls_acceptor(acceptor);
    state.set_config(Arc::clone(&new));
    if auth_changed {
        state.accounts.wire(&new);
        // Each connection re-checks its user, account and subscriptions in its own task.
        state.clients.notify_auth_reload();
        if let Some(js) = server.jetstream() {
            js.reload(state, &new).await;
        }
    } else if current.mappings != new.mappings {
        state.accounts.set_mappings(&new);
    }
    info!("Reloaded server configuration");
}

/// A client port picked at start (`-1`) is the one the server runs on (the running
/// config holds it, see lifecycle): a file that still says `-1` asks for no change, as on
/// nats-server, which reports only a file naming another port (`old=35899, new=35900`).
fn pick_up_bound_port(current: &Config, new: &mut Config) {
    if new.port == 0 {
        new.port = current.port;
    }
}

/// True when a reload changes who may connect, to which account, or with which
/// permissions (nats-server re-checks clients only then).
fn auth_changed(old: &Config, new: &Config) -> bool {
    let map_certs = |c: &Config| c.tls.as_ref().is_some_and(|t| t.verify_and_map);
    old.authorization != new.authorization
        || old.accounts != new.accounts
        || old.no_auth_user != new.no_auth_user
        || map_certs(old) != map_certs(new)
}
