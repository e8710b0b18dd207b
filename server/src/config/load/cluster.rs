//! The `cluster {}` block and the clustering flags.

use super::super::cluster::{ClusterConfig, DEFAULT_ROUTE_AUTH_TIMEOUT, RouteAuth, RouteUrl};
use super::super::conf::ConfValue;
use super::super::error::{ConfigError, Warning};
use super::Draft;
use super::link::{self, split_host_port};
use super::value::{self, boolean, duration, int, map, string, strings};

/// Keys nats-server knows in `cluster {}` that rill accepts and ignores.
const IGNORED: &[&str] = &[
    "accounts",
    "permissions",
    "pool_size_warning",
    "disable_repeat_connect_errors",
];

impl Draft {
    /// Reads the `cluster {}` block.
    pub(super) fn cluster_key(&mut self, v: &ConfValue) -> Result<(), ConfigError> {
        let m = map(v, "cluster")?;
        let mut c = self.config.cluster.take().unwrap_or_default();
        for e in m.entries() {
            let k = e.key.to_ascii_lowercase();
            let v = &e.value;
            match k.as_str() {
                "name" => c.name = Some(string(v, &k)?),
                "listen" => {
                    let (host, port) = link::listen(v, &k)?;
                    if let Some(host) = host {
                        c.host = host;
                    }
                    c.port = Some(port);
                }
                "host" | "net" => c.host = string(v, &k)?,
                "port" => c.port = Some(link::port(v, &k)?),
                "advertise" | "cluster_advertise" => c.advertise = Some(string(v, &k)?),
                "no_advertise" => c.no_advertise = boolean(v, &k)?,
                "routes" => c.routes = routes(v)?,
                "authorization" => c.authorization = Some(authorization(v)?),
                "tls" => c.tls = Some(super::tls::parse(v)?),
                "connect_retries" => {
                    c.connect_retries = u32::try_from(int(v, &k)?).unwrap_or_default()
                }
                "ping_interval" => c.ping_interval = Some(duration(v, &k, &mut self.warnings)?),
                "ping_max" => c.ping_max = Some(u32::try_from(int(v, &k)?).unwrap_or(2)),
                "pool_size" => c.pool_size = int(v, &k)?,
                "compression" => c.compression = Some(link::compression(v)),
                k if IGNORED.contains(&k) => self.warnings.push(Warning::at(
                    &e.key_pos,
                    format!("cluster setting \"{k}\" is not supported by rill yet and is ignored"),
                )),
                _ => value::unknown(e)?,
            }
        }
        self.config.cluster = Some(c);
        Ok(())
    }
}

fn routes(v: &ConfValue) -> Result<Vec<RouteUrl>, ConfigError> {
    strings(v, "routes")?
        .iter()
        .map(|r| RouteUrl::parse(r).map_err(|e| ConfigError::at(&v.pos, e)))
        .collect()
}

fn authorization(v: &ConfValue) -> Result<RouteAuth, ConfigError> {
    let auth = link::authorization(v, false)?;
    let single = auth.single.unwrap_or_default();
    Ok(RouteAuth {
        user: single.user,
        password: single.password,
        timeout: auth.timeout.unwrap_or(DEFAULT_ROUTE_AUTH_TIMEOUT),
    })
}

/// The cluster flags of the command line (taken apart by `flags.rs`, which calls
/// [`apply_flags`]; this module does not import the flags, so the two do not import each other).
#[derive(Debug, Default)]
pub(crate) struct ClusterFlags<'a> {
    /// `--cluster`.
    pub cluster: Option<&'a String>,
    /// `--cluster_listen`.
    pub cluster_listen: Option<&'a String>,
    /// `--routes`.
    pub routes: Option<&'a String>,
    /// `--cluster_name`.
    pub cluster_name: Option<&'a String>,
    /// `--cluster_advertise`.
    pub cluster_advertise: Option<&'a String>,
    /// `--no_advertise`.
    pub no_advertise: Option<bool>,
    /// `--connect_retries`.
    pub connect_retries: Option<&'a String>,
}

/// Applies `--cluster`, `--cluster_listen`, `--cluster_name`, `--routes`,
/// `--cluster_advertise`, `--no_advertise` and `--connect_retries` (flags win over the
/// file). `--cluster nats://user:pass@host:port` also sets the route credentials, as in
/// nats-server.
pub(crate) fn apply_flags(flags: &ClusterFlags<'_>, d: &mut Draft) -> Result<(), ConfigError> {
    let given = flags.cluster.is_some()
        || flags.cluster_listen.is_some()
        || flags.routes.is_some()
        || flags.cluster_name.is_some();
    if !given && d.config.cluster.is_none() {
        return Ok(());
    }
    let c = d.config.cluster.get_or_insert_with(ClusterConfig::default);
    if let Some(url) = flags.cluster.or(flags.cluster_listen) {
        let bad = || ConfigError::Validation(format!("could not parse cluster URL {url:?}"));
        let (host, port) = split_host_port(url).ok_or_else(bad)?;
        if let Some(host) = host {
            c.host = host;
        }
        c.port = Some(port);
        if let Ok(parsed) = RouteUrl::parse(&url.replace(":-1", ":1"))
            && let (Some(user), Some(password)) = (parsed.user, parsed.pass)
        {
            c.authorization = Some(RouteAuth {
                user,
                password,
                timeout: DEFAULT_ROUTE_AUTH_TIMEOUT,
            });
        }
    }
    if let Some(routes) = flags.routes {
        c.routes = routes
            .split(',')
            .filter(|r| !r.trim().is_empty())
            .map(|r| RouteUrl::parse(r).map_err(ConfigError::Validation))
            .collect::<Result<_, _>>()?;
    }
    if let Some(name) = flags.cluster_name {
        c.name = Some(name.clone());
    }
    if let Some(advertise) = flags.cluster_advertise {
        c.advertise = Some(advertise.clone());
    }
    if let Some(no) = flags.no_advertise {
        c.no_advertise = no;
    }
    if let Some(retries) = flags.connect_retries {
        c.connect_retries = retries.parse().map_err(|_| {
            ConfigError::Validation(format!("invalid value {retries:?} for --connect_retries"))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;

    #[test]
    fn the_block_nats_server_users_write_is_read() {
        let map = parse_str(
            "server_name: n1\ncluster { name: C1, listen: 0.0.0.0:6222, routes: [nats-route://n2:6222, nats-route://ruser:pw@n3:6222]\n\
             authorization { user: route, password: pw, timeout: 0.5 }, pool_size: 3, compression: s2_auto, ping_interval: \"1s\" }",
        )
        .expect("parse");
        let draft = Draft::from_map(&map).expect("draft");
        let c = draft.config.cluster.expect("cluster");
        assert_eq!(c.name.as_deref(), Some("C1"));
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", Some(6222)));
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].user.as_deref(), Some("ruser"));
        let auth = c.authorization.expect("auth");
        assert_eq!(
            (auth.user.as_str(), auth.password.as_str()),
            ("route", "pw")
        );
        assert_eq!(auth.timeout, std::time::Duration::from_millis(500));
        assert_eq!(c.ping_interval, Some(std::time::Duration::from_secs(1)));
        assert_eq!(c.compression.as_deref(), Some("s2_auto"));
    }

    #[test]
    fn random_ports_and_unknown_keys() {
        let map = parse_str("cluster { listen: \"127.0.0.1:-1\" }").expect("parse");
        let c = Draft::from_map(&map)
            .expect("draft")
            .config
            .cluster
            .expect("cluster");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(0)));
        let map = parse_str("cluster { bogus: 1 }").expect("parse");
        assert!(Draft::from_map(&map).is_err());
    }
}
