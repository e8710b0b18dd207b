//! The first packet of an MQTT connection: reading CONNECT (whose protocol level picks
//! the codec), checking the client id and the credentials against the same users and
//! accounts NATS clients have, and answering CONNACK.
//!
//! Credentials: the MQTT user name and password are a NATS user and password; a
//! password alone is also tried as a token; a client certificate mapped with
//! `verify_and_map` and `no_auth_user` work as for NATS clients. In operator mode the
//! password is the user JWT, checked as connection type `MQTT`: with no nonce to sign,
//! only a bearer JWT is admitted (as nats-server 2.15.1). An auth callout service is
//! asked as for NATS clients (its request's `client_info.type` is `mqtt`). Refusals are
//! CONNACK 0x05 "not authorized" (MQTT 5: 0x87), as from nats-server.

use std::time::Duration;

use bytes::BytesMut;
use rand::RngExt;
use rill_protocol::Connect;
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::{debug, error};

use super::MqttService;
use super::outlet::ClientLimits;
use super::packet::{self, CodecError, Version, v5};
use crate::auth::{AuthError, Identity, callout, offload};
use crate::client::{ClientLink, Peer};

/// What a valid CONNECT settled.
#[derive(Debug)]
pub(super) struct Accepted {
    pub version: Version,
    pub client_id: String,
    /// True when the server made the id up (MQTT 5 returns it in CONNACK).
    pub assigned: bool,
    pub clean_start: bool,
    pub keep_alive: Duration,
    pub will: Option<v5::LastWill>,
    pub identity: Identity,
    pub limits: ClientLimits,
    /// Seconds the session outlives the connection: MQTT 5's session expiry interval;
    /// 3.1.1: 0 for a clean session, for ever (`u32::MAX`) otherwise.
    pub session_expiry: u32,
}

/// Reads CONNECT within the authentication timeout and checks it. Refusals are answered
/// with their CONNACK here; `None` means the connection must close.
pub(super) async fn accept<R: AsyncRead + Unpin>(
    service: &MqttService,
    link: &ClientLink,
    peer: &Peer,
    reader: &mut R,
    buf: &mut BytesMut,
) -> Option<Accepted> {
    let config = service.state.config();
    let timeout = config
        .mqtt
        .as_ref()
        .and_then(|m| m.authorization.timeout)
        .or(config.authorization.timeout)
        .unwrap_or(config.auth_timeout);
    let read = read_connect(link, reader, buf, config.max_payload);
    let (version, connect, will, login) = match tokio::time::timeout(timeout, read).await {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(_) => {
            error!("{} - MQTT CONNECT timeout", link.log_prefix());
            return None;
        }
    };
    let refuse = |code| {
        refuse(link, version, code);
        None
    };
    let (client_id, assigned) = match connect.client_id.as_str() {
        "" if !connect.clean_start && version == Version::V4 => {
            return refuse(v5::ConnectReturnCode::ClientIdentifierNotValid);
        }
        "" => (generated_id(), true),
        id => (id.to_string(), false),
    };
    let identity = match authenticate(service, (link, peer), &client_id, login.as_ref()).await {
        Some(identity) => identity,
        None => {
            error!("{} - MQTT authentication error", link.log_prefix());
            return refuse(v5::ConnectReturnCode::NotAuthorized);
        }
    };
    if identity.jwt.is_some()
        && crate::client::jwt::account_full(&service.state, &identity.account, link.cid)
    {
        // As nats-server 2.15.1: closed without a CONNACK.
        error!(
            "{} - maximum account active connections exceeded",
            link.log_prefix()
        );
        return None;
    }
    let props = connect.properties.unwrap_or_default();
    let session_expiry = match version {
        Version::V5 => props.session_expiry_interval.unwrap_or(0),
        Version::V4 if connect.clean_start => 0,
        Version::V4 => u32::MAX,
    };
    Some(Accepted {
        version,
        client_id,
        assigned,
        clean_start: connect.clean_start,
        keep_alive: Duration::from_secs(u64::from(connect.keep_alive)),
        will,
        identity,
        limits: ClientLimits {
            receive_max: props.receive_maximum.filter(|m| *m > 0).unwrap_or(u16::MAX),
            max_packet: props.max_packet_size,
            alias_max: props.topic_alias_max.unwrap_or(0),
        },
        session_expiry,
    })
}

type ConnectParts = (
    Version,
    v5::Connect,
    Option<v5::LastWill>,
    Option<v5::Login>,
);

/// Reads bytes until a whole CONNECT is decoded.
async fn read_connect<R: AsyncRead + Unpin>(
    link: &ClientLink,
    reader: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Option<ConnectParts> {
    let mut version = None;
    loop {
        if version.is_none() {
            match packet::peek_connect(buf) {
                Ok(v) => version = v,
                Err(CodecError::Protocol(name, level)) => {
                    debug!(
                        "{} - MQTT protocol {name:?} level {level}",
                        link.log_prefix()
                    );
                    refuse(
                        link,
                        Version::V4,
                        v5::ConnectReturnCode::UnsupportedProtocolVersion,
                    );
                    return None;
                }
                Err(e) => {
                    debug!("{} - MQTT: {e}", link.log_prefix());
                    return None;
                }
            }
        }
        if let Some(v) = version {
            match packet::decode(v, buf, max) {
                Ok(Some(v5::Packet::Connect(c, will, login))) => return Some((v, c, will, login)),
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return None,
            }
        }
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Sends a refusing CONNACK (the caller closes the connection).
pub(super) fn refuse(link: &ClientLink, version: Version, code: v5::ConnectReturnCode) {
    let ack = v5::ConnAck {
        session_present: false,
        code,
        properties: None,
    };
    let mut buf = BytesMut::new();
    if packet::encode(version, &v5::Packet::ConnAck(ack), &mut buf).is_ok() {
        link.outbound.push_raw(&buf);
    }
}

/// The connection type a user JWT's `allowed_connection_types` names MQTT clients by.
const CONN_TYPE: &str = "MQTT";

/// Checks the credentials as a NATS CONNECT carrying the same user, password (also
/// tried as a token and, in operator mode, as the user JWT) and certificate, then asks
/// the auth callout service when one is configured for the client.
/// A bcrypt check runs off the async workers (`auth::offload`).
async fn authenticate(
    service: &MqttService,
    (link, peer): (&ClientLink, &Peer),
    client_id: &str,
    login: Option<&v5::Login>,
) -> Option<Identity> {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let password = login.and_then(|l| nonempty(&l.password));
    let auth = service.authenticator();
    let connect = Connect {
        user: login.and_then(|l| nonempty(&l.username)),
        pass: password.clone(),
        auth_token: password.clone(),
        jwt: password.filter(|_| auth.jwt().is_some()),
        ..Connect::default()
    };
    let costly = auth.is_costly(&connect);
    let (check_auth, check_connect) = (auth.clone(), connect.clone());
    let cert = peer.cert.clone();
    let from = (Some(peer.addr.ip()), CONN_TYPE);
    let mut outcome = offload::check(costly, move || {
        check_auth.authenticate_client(&check_connect, None, cert.as_ref(), from)
    })
    .await;
    if let Some(plan) = auth.callout_plan(&connect, &outcome) {
        let host = peer.addr.ip().to_string();
        let client = callout::Client {
            connect: &connect,
            nonce: None,
            host: &host,
            cid: link.cid,
            conn_type: CONN_TYPE,
            mqtt_id: Some(client_id),
        };
        outcome = callout::authorize(&service.state, &plan, &client)
            .await
            .map_err(AuthError::Callout);
    }
    let identity = outcome.ok()?;
    if let (Some(user), Some(jwt)) = (&identity.jwt, service.state.jwt()) {
        jwt.ensure_wired(&service.state.accounts, &user.account);
    }
    Some(identity)
}

/// A client id for a client that sent none (MQTT 5 returns it in CONNACK).
fn generated_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
