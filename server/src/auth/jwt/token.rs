//! The JWT envelope: `header.payload.signature`, base64url without padding, signed with
//! the issuer's nkey (ed25519).
//!
//! Decoding checks, in nats-io/jwt's order: three parts, a `JWT` type with the
//! `ed25519-nkey` (v2) or `ed25519` (v1) algorithm, claims that parse, a signature by the
//! `iss` key — over `header.payload` for v2 tokens and over the payload alone for v1
//! ones — and an issuer of the kind the claim type allows. Expiry is checked by the
//! caller, which knows what an expired token means in its context.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use rand::RngExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::claims::{Claims, GenericFields};

/// The largest token accepted (nats-io/jwt's limit).
const MAX_TOKEN_SIZE: usize = 1024 * 1024;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three dot-separated parts, bad base64, or too large.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names another type or algorithm.
    #[error("unsupported token header")]
    Header,
    /// The claims are not JSON of the expected shape.
    #[error("invalid claims: {0}")]
    Claims(String),
    /// The claims are of another type than expected.
    #[error("expected {expected} claims, got \"{got}\"")]
    Kind {
        /// The type wanted.
        expected: &'static str,
        /// The type found.
        got: String,
    },
    /// The token comes from a newer format than this server reads.
    #[error("token format version {0} is newer than 2")]
    Version(i64),
    /// The signature does not verify with the issuer's key, or the issuer is not a key of
    /// the kind this claim type allows.
    #[error("signature verification failed")]
    Signature,
    /// The issuer is not trusted to sign this token.
    #[error("not signed by a trusted key")]
    Untrusted,
    /// The token has expired.
    #[error("token has expired")]
    Expired,
}

#[derive(Deserialize)]
struct Header {
    #[serde(rename = "typ", default)]
    typ: String,
    #[serde(rename = "alg", default)]
    alg: String,
}

/// Just enough of the claims to tell their type and format version.
#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type", default)]
    v1_type: String,
    #[serde(default)]
    nats: GenericFields,
}

/// The claim types, with the issuer key kinds each allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Operator (self-signed or by an operator key).
    Operator,
    /// Account (signed by an operator key).
    Account,
    /// User (signed by an account key).
    User,
    /// Activation (signed by an account key).
    Activation,
    /// Auth callout request (signed by a server key).
    AuthorizationRequest,
    /// Auth callout response (signed by an account key).
    AuthorizationResponse,
    /// Any type, signed by an operator key (`nsc`'s claims delete request).
    Generic,
}

impl Kind {
    /// The claim type name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Account => "account",
            Self::User => "user",
            Self::Activation => "activation",
            Self::AuthorizationRequest => "authorization_request",
            Self::AuthorizationResponse => "authorization_response",
            Self::Generic => "generic",
        }
    }

    fn issuer_ok(self, iss: &str) -> bool {
        let prefix = match self {
            Self::Operator | Self::Account | Self::Generic => 'O',
            Self::User | Self::Activation | Self::AuthorizationResponse => 'A',
            Self::AuthorizationRequest => 'N',
        };
        iss.starts_with(prefix) && nkeys::KeyPair::from_public_key(iss).is_ok()
    }
}

/// A decoded, signature-checked token.
#[derive(Debug, Clone)]
pub struct Decoded<T> {
    /// The claims.
    pub claims: Claims<T>,
    /// The format version (1 or 2).
    pub version: i64,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE.decode(part))
        .map_err(|_| JwtError::Malformed("bad base64"))
}

/// Decodes `token` as claims of `kind` and checks its signature.
///
/// # Errors
/// [`JwtError`] for any defect; the caller reports all of them to the client the same way.
pub fn decode<T: DeserializeOwned + Default>(
    token: &str,
    kind: Kind,
) -> Result<Decoded<T>, JwtError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_SIZE {
        return Err(JwtError::Malformed("too large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected 3 chunks"));
    };
    let header: Header =
        serde_json::from_slice(&b64(h)?).map_err(|e| JwtError::Claims(e.to_string()))?;
    let alg = header.alg.to_ascii_lowercase();
    if !header.typ.eq_ignore_ascii_case("JWT") || (alg != "ed25519" && alg != "ed25519-nkey") {
        return Err(JwtError::Header);
    }
    let payload = b64(p)?;
    let id: Identifier =
        serde_json::from_slice(&payload).map_err(|e| JwtError::Claims(e.to_string()))?;
    let (version, got) = match id.v1_type.is_empty() {
        false => (1, id.v1_type),
        true => (id.nats.version, id.nats.kind),
    };
    if version > 2 {
        return Err(JwtError::Version(version));
    }
    if kind != Kind::Generic && got != kind.name() {
        return Err(JwtError::Kind {
            expected: kind.name(),
            got,
        });
    }
    let claims: Claims<T> =
        serde_json::from_slice(&payload).map_err(|e| JwtError::Claims(e.to_string()))?;
    // The algorithm says what was signed: `ed25519` (v1) the claims alone,
    // `ed25519-nkey` (v2) the header and the claims.
    let signed = if alg == "ed25519" {
        p
    } else {
        &token[..h.len() + 1 + p.len()]
    };
    let sig = b64(s)?;
    let issuer =
        nkeys::KeyPair::from_public_key(&claims.data.iss).map_err(|_| JwtError::Signature)?;
    issuer
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| JwtError::Signature)?;
    if !kind.issuer_ok(&claims.data.iss) {
        return Err(JwtError::Signature);
    }
    Ok(Decoded { claims, version })
}

/// Encodes and signs claims as a v2 token with `signer` (whose public key becomes `iss`).
///
/// # Errors
/// [`JwtError::Signature`] when `signer` holds no seed.
pub fn encode<T: Serialize>(
    claims: &mut Claims<T>,
    signer: &nkeys::KeyPair,
) -> Result<String, JwtError> {
    claims.data.iss = signer.public_key();
    if claims.data.jti.is_empty() {
        let mut id = [0u8; 16];
        rand::rng().fill(&mut id);
        claims.data.jti = URL_SAFE_NO_PAD.encode(id);
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = serde_json::to_vec(claims).map_err(|e| JwtError::Claims(e.to_string()))?;
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let sig = signer
        .sign(signed.as_bytes())
        .map_err(|_| JwtError::Signature)?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Seconds since the unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
