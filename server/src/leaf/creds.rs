//! A remote's `.creds` file (nsc's format): the user JWT a leaf sends in CONNECT, and
//! the user seed that signs the hub's INFO nonce, as nats-server's leafs do.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What CONNECT carries for a `.creds` file: `(jwt, sig)`.
pub(super) fn connect_fields(path: &Path, nonce: &str) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("could not read credentials {}: {e}", path.display()))?;
    let jwt = armored(&text, "NATS USER JWT")
        .ok_or_else(|| format!("no user JWT in {}", path.display()))?;
    let seed = armored(&text, "USER NKEY SEED")
        .ok_or_else(|| format!("no user seed in {}", path.display()))?;
    let key = nkeys::KeyPair::from_seed(&seed)
        .map_err(|e| format!("bad user seed in {}: {e}", path.display()))?;
    let sig = key
        .sign(nonce.as_bytes())
        .map_err(|e| format!("could not sign the nonce: {e}"))?;
    Ok((jwt, URL_SAFE_NO_PAD.encode(sig)))
}

/// The first non-empty line after the `-----BEGIN <label>-----` line.
fn armored(text: &str, label: &str) -> Option<String> {
    let begin = format!("BEGIN {label}");
    let mut lines = text.lines().skip_while(|l| !l.contains(&begin)).skip(1);
    lines
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .filter(|l| !l.starts_with("---"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwt_and_seed_are_read_and_the_nonce_signed() {
        let key = nkeys::KeyPair::new_user();
        let seed = key.seed().expect("seed");
        let text = format!(
            "-----BEGIN NATS USER JWT-----\neyJ0.x.y\n------END NATS USER JWT------\n\n\
             ***** IMPORTANT *****\n\n-----BEGIN USER NKEY SEED-----\n{seed}\n\
             ------END USER NKEY SEED------\n"
        );
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("u.creds");
        std::fs::write(&path, text).expect("write");
        let (jwt, sig) = connect_fields(&path, "nonce").expect("fields");
        assert_eq!(jwt, "eyJ0.x.y");
        let raw = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
        assert!(key.verify(b"nonce", &raw).is_ok());
        std::fs::write(&path, "nothing").expect("write");
        assert!(connect_fields(&path, "nonce").is_err());
    }
}
