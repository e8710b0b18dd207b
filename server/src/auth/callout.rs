//! Auth callout (nats-server 2.10, ADR-26): a service decides who a client is.
//!
//! A client that is not one of the service's own `auth_users` is not checked against the
//! configured users: the server sends a request JWT (signed with its server key) on
//! `$SYS.REQ.USER.AUTH` in the callout account, naming a user key it made up for this
//! connection, and waits (`authorization.timeout`, else `auth_timeout`) for a response
//! JWT signed by the issuer account. The response carries a user JWT for that user key,
//! which places the client in an account with the JWT's permissions and expiry, or an
//! error. With an xkey the request is sealed to the service's curve key (the server's
//! own curve key in the `Nats-Server-Xkey` header) and the response may be sealed back.
//!
//! Two forms, as nats-server:
//! - server config: `authorization { auth_callout { issuer, auth_users, account, xkey,
//!   allowed_accounts } }`; the user JWT's `aud` names the account to place the client in;
//! - operator mode: an account JWT's `authorization { auth_users, allowed_accounts,
//!   xkey }`; clients whose user JWT belongs to that account (other than `auth_users`) go
//!   to its service, which may place them in another account it is allowed to
//!   (`issuer_account` of the user JWT).
//!
//! Every refusal, timeout included, is an `Authorization Violation` for the client; the
//! reason (nats-server's wording) is logged.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rand::RngExt;
use rill_protocol::Connect;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::jwt::claims::{Claims, ClaimsData, GenericFields, User};
use super::jwt::resolver::ResolvedAccount;
use super::jwt::token::{self, Kind};
use super::jwt::user::callout_user;
use super::{AuthError, Authenticator, Identity, Permissions};
use crate::router::ByteString;
use crate::router::{Delivery, Msg, Subscriber, Subscription};
use crate::server::{ServerState, VERSION};
use crate::shared::GLOBAL_ACCOUNT;

/// The subject services answer requests on.
pub const SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// The request JWT's audience.
const AUDIENCE: &str = "nats-authorization-request";
/// The header carrying the server's curve key with a sealed request.
const XKEY_HEADER: &str = "Nats-Server-Xkey";

/// Whom a client's authentication is handed to.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The account the request is sent in.
    account: String,
    /// Who signs responses (the request's `sub`): the configured issuer, or the account.
    issuer: String,
    /// The service's curve key, when requests are sealed.
    xkey: Option<String>,
    /// Operator mode: the callout account's JWT.
    operator: Option<Arc<ResolvedAccount>>,
}

/// The client as the service is told about it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The CONNECT.
    pub connect: &'a Connect,
    /// The INFO nonce.
    pub nonce: Option<&'a str>,
    /// Its address.
    pub host: &'a str,
    /// Its client id.
    pub cid: u64,
    /// `STANDARD`, `WEBSOCKET` or `MQTT` (allowed connection types).
    pub conn_type: &'a str,
    /// An MQTT client's client id.
    pub mqtt_id: Option<&'a str>,
}

impl Authenticator {
    /// Whether `connect` goes to an auth callout service, given what the configured
    /// users made of it: `None` keeps `outcome`.
    pub fn callout_plan(
        &self,
        connect: &Connect,
        outcome: &Result<Identity, AuthError>,
    ) -> Option<Plan> {
        if let Some(ac) = &self.callout {
            if ac.auth_users.iter().any(|u| *u == raw_user(connect)) {
                return None;
            }
            if let Ok(id) = outcome
                && id.account != GLOBAL_ACCOUNT
                && !ac.allowed_accounts.is_empty()
                && !ac.allowed_accounts.contains(&id.account)
            {
                return None;
            }
            return Some(Plan {
                account: ac.account.clone(),
                issuer: ac.issuer.clone(),
                xkey: ac.xkey.clone(),
                operator: None,
            });
        }
        let jwt = self.jwt.as_ref()?;
        let user = token::decode::<User>(connect.jwt.as_deref()?, Kind::User).ok()?;
        let account = jwt.resolver.lookup(user.claims.account())?;
        let ext = &account.claims.nats.authorization;
        if ext.auth_users.is_empty() || ext.auth_users.contains(&user.claims.data.sub) {
            return None;
        }
        Some(Plan {
            account: account.claims.data.sub.clone(),
            issuer: account.claims.data.sub.clone(),
            xkey: Some(ext.xkey.clone()).filter(|k| !k.is_empty()),
            operator: Some(account),
        })
    }
}

/// The user a client names, as nats-server matches `auth_users`: its nkey, else its
/// user name.
fn raw_user(connect: &Connect) -> &str {
    connect
        .nkey
        .as_deref()
        .or(connect.user.as_deref())
        .unwrap_or_default()
}

/// `nats.server_id` of a request.
#[derive(Debug, Serialize)]
struct ServerId {
    name: String,
    host: String,
    id: String,
    version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    xkey: String,
}

/// `nats.client_info` of a request.
#[derive(Debug, Serialize)]
struct ClientInfo {
    host: String,
    id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    kind: &'static str,
    #[serde(rename = "type")]
    kind_type: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    mqtt_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    nonce: String,
}

/// `nats.connect_opts` of a request: the CONNECT's credentials and identity.
#[derive(Debug, Serialize)]
struct ConnectOpts {
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nkey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    protocol: i64,
}

/// The `nats` part of an `authorization_request` JWT.
#[derive(Debug, Serialize)]
struct Request {
    server_id: ServerId,
    user_nkey: String,
    client_info: ClientInfo,
    connect_opts: ConnectOpts,
    #[serde(flatten)]
    generic: GenericFields,
}

/// The `nats` part of an `authorization_response` JWT.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Response {
    jwt: String,
    error: String,
    issuer_account: String,
}

fn title_case(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// Asks the service of `plan` about `client`.
///
/// # Errors
/// Why the client is refused (nats-server's wording, for the log).
pub async fn authorize(
    state: &ServerState,
    plan: &Plan,
    client: &Client<'_>,
) -> Result<Identity, String> {
    let config = state.config();
    let timeout = config.authorization.timeout.unwrap_or(config.auth_timeout);
    let user = nkeys::KeyPair::new_user();
    let token = request_token(state, plan, client, &user.public_key(), timeout)?;
    let (headers, payload) = match &plan.xkey {
        Some(xkey) => seal(state, xkey, token.as_bytes())?,
        None => (None, Bytes::from(token)),
    };
    let Some(body) = exchange(state, &plan.account, headers, payload, timeout).await else {
        return Err(format!(
            "Authorization callout response not received in time on account {:?}",
            plan.account
        ));
    };
    let identity = check_response(state, plan, &user.public_key(), &body, client.conn_type)?;
    Ok(identity)
}

/// The signed request JWT.
fn request_token(
    state: &ServerState,
    plan: &Plan,
    client: &Client<'_>,
    user: &str,
    timeout: Duration,
) -> Result<String, String> {
    let config = state.config();
    let c = client.connect;
    let now = token::now();
    let mut claims = Claims {
        data: ClaimsData {
            aud: AUDIENCE.into(),
            sub: plan.issuer.clone(),
            iat: now,
            exp: now + i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX / 2),
            ..ClaimsData::default()
        },
        nats: Request {
            server_id: ServerId {
                name: state.server_name.clone(),
                host: config.host.clone(),
                id: state.server_id.clone(),
                version: VERSION.into(),
                xkey: plan
                    .xkey
                    .as_ref()
                    .map(|_| state.xkey.public_key())
                    .unwrap_or_default(),
            },
            user_nkey: user.into(),
            client_info: ClientInfo {
                host: client.host.into(),
                id: client.cid,
                user: raw_user(c).into(),
                name: c.name.clone().unwrap_or_default(),
                kind: "Client",
                kind_type: match client.conn_type {
                    "WEBSOCKET" => "websocket",
                    "MQTT" => "mqtt",
                    _ => "nats",
                },
                mqtt_id: client.mqtt_id.unwrap_or_default().into(),
                nonce: c.sig.as_ref().and(client.nonce).unwrap_or_default().into(),
            },
            connect_opts: ConnectOpts {
                jwt: c.jwt.clone(),
                nkey: c.nkey.clone(),
                sig: c.sig.clone(),
                auth_token: c.auth_token.clone(),
                user: c.user.clone(),
                pass: c.pass.clone(),
                name: c.name.clone(),
                lang: c.lang.clone(),
                version: c.version.clone(),
                protocol: c.protocol,
            },
            generic: GenericFields {
                kind: Kind::AuthorizationRequest.name().into(),
                version: 2,
                ..GenericFields::default()
            },
        },
    };
    token::encode(&mut claims, &state.server_key).map_err(|e| {
        format!(
            "Error encoding auth request claim on account {:?}: {e}",
            plan.account
        )
    })
}

/// Seals `token` to the service's curve key: the header names the server's.
fn seal(state: &ServerState, xkey: &str, token: &[u8]) -> Result<(Option<Bytes>, Bytes), String> {
    let to = nkeys::XKey::from_public_key(xkey).map_err(|e| e.to_string())?;
    let sealed = state
        .xkey
        .seal(token, &to)
        .map_err(|e| format!("Error encrypting auth request claim: {e}"))?;
    let headers = format!(
        "NATS/1.0\r\n{XKEY_HEADER}: {}\r\n\r\n",
        state.xkey.public_key()
    );
    Ok((Some(Bytes::from(headers)), Bytes::from(sealed)))
}

/// Takes the first message on a one-off reply subject.
#[derive(Debug)]
struct OneReply(Mutex<Option<oneshot::Sender<Bytes>>>);

impl Subscriber for OneReply {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let tx = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        match tx.map(|tx| tx.send(msg.payload_bytes())) {
            Some(Ok(())) => Delivery::Queued,
            _ => Delivery::Dropped,
        }
    }
}

/// Publishes the request in `account` and waits up to `timeout` for the reply body.
async fn exchange(
    state: &ServerState,
    account: &str,
    headers: Option<Bytes>,
    payload: Bytes,
    timeout: Duration,
) -> Option<Bytes> {
    let account = state.accounts.get(account);
    let mut id = [0u8; 12];
    rand::rng().fill(&mut id);
    let reply = ByteString::from(format!(
        "$SYS._INBOX.{}.{}",
        &state.server_id[..8.min(state.server_id.len())],
        URL_SAFE_NO_PAD.encode(id)
    ));
    let (tx, rx) = oneshot::channel();
    let owner: Arc<dyn Subscriber> = Arc::new(OneReply(Mutex::new(Some(tx))));
    let sub = Subscription::new(
        Bytes::from_static(b"callout"),
        reply.clone().into_bytes(),
        None,
        owner,
    );
    account.router.subscribe(&sub);
    let subject = ByteString::from_static(SUBJECT);
    let msg = Msg::new(&subject, Some(&reply), headers.as_ref(), &payload);
    account.router.publish(0, true, &msg);
    let body = tokio::time::timeout(timeout, rx)
        .await
        .ok()
        .and_then(Result::ok);
    account.router.unsubscribe(&sub);
    body
}

/// Checks the service's answer, in nats-server's order, and makes the client's identity.
fn check_response(
    state: &ServerState,
    plan: &Plan,
    user: &str,
    body: &[u8],
    conn_type: &str,
) -> Result<Identity, String> {
    let account = &plan.account;
    if body.is_empty() {
        return Err(format!(
            "Auth callout violation: \"no reason supplied\" on account {account:?}"
        ));
    }
    let opened;
    let mut text = body;
    if plan.xkey.is_some() && !body.starts_with(b"eyJ") {
        let from = plan.xkey.as_deref().unwrap_or_default();
        let from = nkeys::XKey::from_public_key(from).map_err(|e| e.to_string())?;
        opened = state.xkey.open(body, &from).map_err(|e| {
            format!("Error decrypting auth callout response on account {account:?}: {e}")
        })?;
        text = &opened;
    }
    let text = std::str::from_utf8(text).map_err(|e| title_case(&e.to_string()))?;
    let response = token::decode::<Response>(text, Kind::AuthorizationResponse)
        .map_err(|e| title_case(&e.to_string()))?
        .claims;
    check_envelope(state, plan, user, &response)?;
    let uc = token::decode::<User>(&response.nats.jwt, Kind::User)
        .map_err(|e| format!("Error validating user JWT: {e}"))?
        .claims;
    if uc.data.sub != user {
        return Err(format!(
            "Expected authorized user of {user:?} but got {:?} on account {account:?}",
            uc.data.sub
        ));
    }
    place(state, plan, uc, conn_type)
}

/// The response is current, for this server and this user, and signed by the issuer (or,
/// in operator mode, one of the account's signing keys).
fn check_envelope(
    state: &ServerState,
    plan: &Plan,
    user: &str,
    response: &Claims<Response>,
) -> Result<(), String> {
    let r = &response.data;
    if r.expired(token::now()) {
        return Err("Authorization response had validation errors: claim is expired".into());
    }
    let has = (
        !response.nats.jwt.is_empty(),
        !response.nats.error.is_empty(),
    );
    if has == (false, false) {
        return Err(
            "Authorization response had validation errors: Error or Jwt is required".into(),
        );
    }
    if has == (true, true) {
        return Err(
            "Authorization response had validation errors: Only Error or Jwt can be set".into(),
        );
    }
    if r.sub != user {
        return Err(
            "Auth callout violation: auth callout response is not for expected user".into(),
        );
    }
    if r.aud != state.server_id {
        return Err("Auth callout violation: auth callout response is not for server".into());
    }
    if !response.nats.error.is_empty() {
        return Err(format!(
            "Auth callout service returned an error: {}",
            response.nats.error
        ));
    }
    let signer = match response.nats.issuer_account.as_str() {
        "" => r.iss.as_str(),
        a => a,
    };
    let known = match &plan.operator {
        Some(acc) => signer == plan.issuer || acc.claims.signing_key(signer).is_some(),
        None => true,
    };
    match known {
        true => Ok(()),
        false => Err("Auth callout signing key is unknown".into()),
    }
}

/// Places the client in the account the user JWT names, with its permissions.
fn place(
    state: &ServerState,
    plan: &Plan,
    uc: super::jwt::UserClaims,
    conn_type: &str,
) -> Result<Identity, String> {
    let account = &plan.account;
    let issuer = match (&plan.operator, uc.nats.issuer_account.as_str()) {
        (None, "") => uc.data.iss.clone(),
        (None, _) => {
            return Err(format!(
                "Error non operator mode account {account:?}: attempted to use issuer_account"
            ));
        }
        (Some(_), "") => uc.data.iss.clone(),
        (Some(_), a) => a.to_string(),
    };
    let identity = match &plan.operator {
        None => {
            if issuer != plan.issuer {
                return Err(format!(
                    "Wrong issuer for auth callout response on account {account:?}, expected {:?} got {issuer:?}",
                    plan.issuer
                ));
            }
            config_identity(state, account, uc, conn_type)?
        }
        Some(acc) => operator_identity(state, plan, acc, &issuer, uc, conn_type)?,
    };
    Ok(deny_callout_subject(identity, account))
}

/// Server config mode: the user JWT's audience names a configured account.
fn config_identity(
    state: &ServerState,
    account: &str,
    uc: super::jwt::UserClaims,
    conn_type: &str,
) -> Result<Identity, String> {
    let config = state.config();
    let target = uc.data.aud.clone();
    let known = target == GLOBAL_ACCOUNT
        || state.system_account().as_deref() == Some(target.as_str())
        || config.accounts.iter().any(|a| a.name == target);
    if !known {
        return Err(format!(
            "No valid account {target:?} for auth callout response on account {account:?}: account not found"
        ));
    }
    let defaults = config
        .accounts
        .iter()
        .find(|a| a.name == target)
        .and_then(|a| a.default_permissions.as_ref())
        .or(config.authorization.default_permissions.as_ref());
    let user = callout_user(uc, None, &target, defaults, conn_type).map_err(|e| e.0)?;
    Ok(identity_of(user))
}

/// Operator mode: the user JWT's issuer account is the callout account or one it may
/// place users in.
fn operator_identity(
    state: &ServerState,
    plan: &Plan,
    callout: &ResolvedAccount,
    issuer: &str,
    uc: super::jwt::UserClaims,
    conn_type: &str,
) -> Result<Identity, String> {
    let account = &plan.account;
    let allowed = &callout.claims.nats.authorization.allowed_accounts;
    if issuer != plan.issuer && !allowed.iter().any(|a| a == "*" || a == issuer) {
        return Err(format!(
            "Account {:?} not permitted as valid account option for auth callout for account {account:?}",
            uc.data.iss
        ));
    }
    let target = state
        .jwt()
        .and_then(|j| j.resolver.lookup(issuer))
        .ok_or_else(|| {
            format!(
                "No valid account {issuer:?} for auth callout response on account {account:?}: account not found"
            )
        })?;
    let user = callout_user(uc, Some(&target), issuer, None, conn_type).map_err(|e| e.0)?;
    Ok(identity_of(user))
}

fn identity_of(user: super::jwt::JwtUser) -> Identity {
    let mut identity = Identity::from_jwt(user);
    if let Some(jwt) = &identity.jwt
        && !jwt.name.is_empty()
    {
        identity.user = Some(jwt.name.clone());
    }
    identity
}

/// A client placed in the callout account itself may not publish requests to the service
/// (nats-server adds `$SYS.REQ.USER.AUTH` to its publish deny list).
fn deny_callout_subject(mut identity: Identity, callout_account: &str) -> Identity {
    if identity.account != callout_account {
        return identity;
    }
    let mut perms = identity
        .jwt
        .as_ref()
        .and_then(|j| j.permissions.clone())
        .unwrap_or_default();
    let publish = perms.publish.get_or_insert_with(Default::default);
    publish.deny.push(SUBJECT.into());
    identity.permissions = Some(Arc::new(Permissions::compile(&perms)));
    identity
}
