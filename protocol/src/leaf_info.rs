//! The JSON of a leaf-node link's `INFO` and `CONNECT`.
//!
//! Recorded from nats-server 2.15.1 (a hub and a leaf through a proxy): the hub sends
//! `INFO` at once (with a `nonce`, `leafnode_urls`, `info_on_connect` and its
//! `compression` mode). A leaf that answers `compression` other than `off` would
//! negotiate S2 with a compression `INFO` of its own; when the hub says `off` (or says
//! nothing), the leaf sends `CONNECT` straight away, with `compress_mode: "off"`. The
//! hub then sends a second `INFO` with `connect_info: true` and the `remote_account`
//! the leaf is bound to, followed by its `LS+` list. When the leaf's credentials carry
//! permissions (a user JWT's `pub`/`sub`), that `INFO` also carries them as the leaf
//! sees them: `export` what it may send the hub (the user's publish rules), `import`
//! what it may take from it (the subscribe rules), each `{"allow":[..],"deny":[..]}`.

use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// Leaf-node `INFO` (sent by the hub).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafInfo {
    /// The hub's id.
    pub server_id: String,
    /// The hub's name.
    pub server_name: String,
    /// Version.
    pub version: String,
    /// Protocol level (nats-server 2.15 sends 3).
    pub proto: i64,
    /// Implementation/toolchain string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<String>,
    /// Leaf listen host.
    pub host: String,
    /// Leaf listen port.
    pub port: u16,
    /// Headers supported.
    pub headers: bool,
    /// Credentials required (nats-server always says so: the leaf signs the nonce when
    /// it has credentials).
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// TLS required.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Accepting side: client certificates are required (`tls { verify: true }`).
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// Largest payload.
    pub max_payload: i64,
    /// The connection's id on the hub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// Nonce a leaf with credentials signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Compression mode: rill sends `off`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// The hub sends INFO first (always true).
    #[serde(skip_serializing_if = "is_false")]
    pub info_on_connect: bool,
    /// The INFO that answers CONNECT.
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    /// Where leafs may connect (`host:port`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leafnode_urls: Vec<String>,
    /// The hub account the leaf was bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// The hub's cluster name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The hub's JetStream domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Lame-duck mode.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// What the leaf may take from the hub (its user's subscribe permissions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<LeafPermission>,
    /// What the leaf may send the hub (its user's publish permissions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<LeafPermission>,
}

/// One direction of a leaf's permissions in the hub's `INFO`: allowed and denied
/// subjects (an empty list is left out, as nats-server leaves it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafPermission {
    /// Subjects allowed; none means every subject not denied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Subjects denied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Leaf-node `CONNECT` (sent by the leaf).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafConnect {
    /// The leaf's version.
    pub version: String,
    /// The leaf's server id.
    pub server_id: String,
    /// The leaf's server name.
    pub name: String,
    /// The leaf's cluster name (its server name when it has no cluster).
    pub cluster: String,
    /// Headers supported.
    pub headers: bool,
    /// `off`: no compression.
    pub compress_mode: String,
    /// The hub account the leaf asks to be bound to (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// Protocol level.
    pub protocol: i64,
    /// User.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// User JWT (credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// The nonce signed with the credentials' seed (base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// The leaf's JetStream domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Writes `INFO {json} \r\n` (nats-server puts a space before the line ending).
pub fn encode_info(buf: &mut bytes::BytesMut, info: &LeafInfo) {
    crate::encode::info_json(buf, info);
}

/// Writes `CONNECT {json}\r\n`.
pub fn encode_connect(buf: &mut bytes::BytesMut, connect: &LeafConnect) {
    crate::encode::connect_json(buf, connect);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_server_leaf_info_and_connect_parse() {
        let info: LeafInfo = serde_json::from_str(
            r#"{"server_id":"NDSZ2Q","server_name":"hub","version":"2.15.1","proto":3,"git_commit":"b2fd3ef","go":"go1.27.2","host":"192.0.2.2","port":17422,"headers":true,"auth_required":true,"max_payload":1048576,"ip":"192.0.2.2:17422","client_id":5,"nonce":"2OHlDEzPYBbcmJM","compression":"off","api_lvl":5,"info_on_connect":true,"leafnode_urls":["192.0.2.2:17422"]}"#,
        )
        .expect("hub INFO");
        assert_eq!(info.nonce.as_deref(), Some("2OHlDEzPYBbcmJM"));
        assert_eq!(info.leafnode_urls, vec!["192.0.2.2:17422".to_string()]);
        let connect: LeafConnect = serde_json::from_str(
            r#"{"version":"2.15.1","server_id":"NCJTBZ","name":"leaf","cluster":"leaf","headers":true,"compress_mode":"off","remote_account":"$G","protocol":3}"#,
        )
        .expect("leaf CONNECT");
        assert_eq!(connect.compress_mode, "off");
        assert_eq!(connect.remote_account.as_deref(), Some("$G"));
    }

    #[test]
    fn nats_server_connect_info_with_permissions_parses() {
        let info: LeafInfo = serde_json::from_str(
            r#"{"server_id":"NASQD3","server_name":"hub","version":"2.15.1","proto":3,"host":"127.0.0.1","port":39565,"headers":true,"auth_required":true,"max_payload":1048576,"client_id":5,"connect_info":true,"remote_account":"ACRVBU","api_lvl":5,"import":{"allow":["b.\u003e"],"deny":["b.no"]},"export":{"allow":["a.\u003e"]},"info_on_connect":true,"leafnode_urls":["127.0.0.1:39565"]}"#,
        )
        .expect("connect INFO");
        let import = info.import.as_ref().expect("import");
        assert_eq!(
            (import.allow.as_slice(), import.deny.as_slice()),
            (&["b.>".to_string()][..], &["b.no".to_string()][..])
        );
        assert_eq!(
            info.export.as_ref().map(|e| e.allow.clone()),
            Some(vec!["a.>".to_string()])
        );
        let json = serde_json::to_string(&info.export).expect("json");
        assert_eq!(json, r#"{"allow":["a.>"]}"#);
    }
}
