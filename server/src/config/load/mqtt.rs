//! The `mqtt {}` block: nats-server's keys (and aliases) for the MQTT listener.

use super::super::conf::{ConfMap, ConfValue};
use super::super::error::{ConfigError, Warning};
use super::super::{Authorization, MqttConfig};
use super::value::{self, boolean, duration, int, map, string, timeout};

/// nats-server's ceiling for `max_ack_pending` (MQTT packet ids are 16 bits).
const MAX_ACK_PENDING: i64 = 65535;

/// Parses `mqtt { host, port, listen, tls, authorization, no_auth_user, ack_wait,
/// max_ack_pending, js_domain, stream_replicas, consumer_replicas, … }`.
pub(super) fn parse(v: &ConfValue, warnings: &mut Vec<Warning>) -> Result<MqttConfig, ConfigError> {
    let mut mqtt = MqttConfig::default();
    for e in map(v, "mqtt")?.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "host" | "net" => mqtt.host = string(v, &k)?,
            "port" => mqtt.port = port(v)?,
            "listen" => listen(v, &mut mqtt)?,
            "tls" => mqtt.tls = Some(super::tls::parse(v)?),
            "authorization" | "authentication" => {
                mqtt.authorization = authorization(map(v, &k)?)?;
            }
            "no_auth_user" => mqtt.no_auth_user = Some(string(v, &k)?),
            "ack_wait" | "ackwait" => {
                mqtt.ack_wait = Some(duration(v, &k, warnings)?).filter(|d| !d.is_zero());
            }
            "max_ack_pending" | "max_pending" | "max_inflight" => {
                let n = int(v, &k)?;
                let pending = u16::try_from(n)
                    .ok()
                    .filter(|n| i64::from(*n) <= MAX_ACK_PENDING)
                    .ok_or_else(|| {
                        ConfigError::at(
                            &v.pos,
                            format!("invalid value {n}, should be in [0..{MAX_ACK_PENDING}] range"),
                        )
                    })?;
                mqtt.max_ack_pending = Some(pending).filter(|n| *n > 0);
            }
            "js_domain" => mqtt.js_domain = Some(string(v, &k)?),
            "stream_replicas" => mqtt.stream_replicas = int(v, &k)?,
            "consumer_replicas" => {
                // nats-server 2.15 warns the same and ignores the value.
                mqtt.consumer_replicas = int(v, &k)?;
                warnings.push(Warning::at(
                    &e.key_pos,
                    "invalid use of field \"consumer_replicas\": consumer replicas setting ignored in this server version",
                ));
            }
            "consumer_memory_storage" => mqtt.consumer_memory_storage = boolean(v, &k)?,
            "consumer_inactive_threshold" | "consumer_auto_cleanup" => {
                mqtt.consumer_inactive_threshold = duration(v, &k, warnings)?;
            }
            "js_api_timeout" | "api_timeout" => mqtt.js_api_timeout = duration(v, &k, warnings)?,
            "reject_qos2_publish" => mqtt.reject_qos2_publish = boolean(v, &k)?,
            "downgrade_qos2_subscribe" => mqtt.downgrade_qos2_subscribe = boolean(v, &k)?,
            _ => value::unknown(e)?,
        }
    }
    Ok(mqtt)
}

/// `-1` is a random free port (0 here), `0` the default 1883.
fn port(v: &ConfValue) -> Result<u16, ConfigError> {
    match int(v, "port")? {
        0 => Ok(1883),
        -1 => Ok(0),
        p => {
            u16::try_from(p).map_err(|_| ConfigError::at(&v.pos, format!("invalid mqtt port {p}")))
        }
    }
}

/// `listen: host:port`.
fn listen(v: &ConfValue, mqtt: &mut MqttConfig) -> Result<(), ConfigError> {
    let text = string(v, "listen")?;
    let (host, p) = text
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::at(&v.pos, format!("could not parse address {text:?}")))?;
    let p: i64 = p
        .parse()
        .map_err(|_| ConfigError::at(&v.pos, format!("could not parse port {p:?}")))?;
    mqtt.host = host.trim_matches(['[', ']']).to_string();
    mqtt.port = match p {
        0 => 1883,
        -1 => 0,
        p => u16::try_from(p)
            .map_err(|_| ConfigError::at(&v.pos, format!("invalid mqtt port {p}")))?,
    };
    Ok(())
}

/// `authorization { user, password, token, timeout }`: MQTT-only credentials.
fn authorization(m: &ConfMap) -> Result<Authorization, ConfigError> {
    let mut auth = Authorization::default();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "user" | "username" => auth.user = Some(string(v, &k)?),
            "pass" | "password" => auth.password = Some(string(v, &k)?),
            "token" => auth.token = Some(string(v, &k)?),
            "timeout" => auth.timeout = Some(timeout(v, &k)?),
            _ => value::unknown(e)?,
        }
    }
    Ok(auth)
}
