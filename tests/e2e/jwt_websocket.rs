//! Operator mode over WebSocket, side by side with nats-server 2.15.1: the user JWT read
//! from the `jwt_cookie` of the upgrade request when CONNECT carries none, and a user
//! JWT's `allowed_connection_types` naming the WebSocket port `WEBSOCKET` (not
//! `STANDARD`).
//!
//! Observed on nats-server and required of rill: a cookie JWT connects when CONNECT signs
//! the nonce, or without a signature when it is a bearer token; unsigned otherwise it is
//! refused; a JWT in CONNECT wins over the cookie; the cookie user's permissions apply; a
//! user allowed only `WEBSOCKET` connects on the WebSocket port and not on the client
//! port, one allowed only `STANDARD` the other way round.

use rill_tests::ServerKind;
use rill_tests::jwt::User;
use serde_json::json;

use crate::jwt_auth::{Setup, attempt};
use crate::websocket::{ws_server, ws_url};
use crate::websocket_frames::RawWs;

/// What the server answers a WebSocket client whose upgrade carries `cookie` (the
/// `jwt` cookie's value, if any) and which sends `CONNECT` (signing the nonce as `signer`
/// when given), then `then` and `PING`: the first line back.
async fn over_ws(
    url: &str,
    cookie: Option<&str>,
    connect: serde_json::Value,
    signer: Option<&User>,
    then: &str,
) -> String {
    let headers = cookie.map_or(String::new(), |c| {
        format!("Cookie: theme=dark; jwt={c}\r\n")
    });
    let (mut ws, _) = RawWs::connect_with(url, &headers).await;
    let info = ws.info().await;
    let mut connect = connect;
    if let (Some(user), Some(nonce)) = (signer, info["nonce"].as_str()) {
        connect["sig"] = json!(user.sign_nonce(nonce));
    }
    let answer = ws.login(&connect, then, b"\r\n").await;
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn jwt_cookie_and_websocket_connection_type_as_nats_server() {
    let mut seen = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let setup = Setup::new(json!({}));
        let server = ws_server(
            kind,
            "port: -1\nno_tls: true\njwt_cookie: jwt",
            &setup.config(),
        )
        .await;
        let url = ws_url(&server);
        let plain = setup.app.user("plain", json!({}));
        let bearer = setup.app.user(
            "bearer",
            json!({"bearer_token": true, "pub": {"allow": ["ok.>"]}}),
        );
        let ws_only = setup
            .app
            .user("ws", json!({"allowed_connection_types": ["WEBSOCKET"]}));
        let std_only = setup
            .app
            .user("std", json!({"allowed_connection_types": ["STANDARD"]}));
        let none = json!({"verbose": false});
        let mut got = vec![
            over_ws(&url, Some(&plain.jwt), none.clone(), Some(&plain), "").await,
            over_ws(&url, Some(&plain.jwt), none.clone(), None, "").await,
            over_ws(
                &url,
                Some(&bearer.jwt),
                none.clone(),
                None,
                "PUB no.1 0\r\n\r\n",
            )
            .await,
            over_ws(
                &url,
                Some("not.a.jwt"),
                json!({"verbose": false, "jwt": plain.jwt}),
                Some(&plain),
                "",
            )
            .await,
            over_ws(&url, Some(&ws_only.jwt), none.clone(), Some(&ws_only), "").await,
            over_ws(&url, Some(&std_only.jwt), none.clone(), Some(&std_only), "").await,
        ];
        for user in [&ws_only, &std_only] {
            let (lines, _) = attempt(&server, user, true, "").await;
            got.push(lines.first().cloned().unwrap_or_default());
        }
        seen.push(got);
    }
    let violation = "-ERR 'Authorization Violation'";
    assert_eq!(
        seen[1],
        [
            "PONG",
            violation,
            "-ERR 'Permissions Violation for Publish to \"no.1\"'",
            "PONG",
            "PONG",
            violation,
            violation,
            "PONG"
        ],
        "nats-server"
    );
    assert_eq!(
        seen[0], seen[1],
        "rill (left) and nats-server (right) differ"
    );
}
