//! The `rill` CLI's connection options: authentication, TLS, TLS-first, and servers without JetStream.

use super::*;

// ---------------------------------------------------------------------------------------------------
// Authentication and TLS options.
// ---------------------------------------------------------------------------------------------------

/// PEM files for a test CA, a server certificate for 127.0.0.1/localhost and a client certificate.
struct Certs {
    _dir: tempfile::TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn make_certs() -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rill test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |sans: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        "rill test server",
    );
    let (client_cert, client_key) = leaf(vec!["client.rill.test".into()], "rill test client");
    Certs {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server_cert),
        server_key: write("server-key.pem", server_key),
        client_cert: write("client.pem", client_cert),
        client_key: write("client-key.pem", client_key),
        _dir: dir,
    }
}

async fn server_with_config(kind: ServerKind, config: String) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        config: Some(config),
        ..ServerOpts::default()
    })
    .await
}

async fn user_password_and_token(kind: ServerKind) {
    let srv = server_with_config(
        kind,
        "authorization { user: alice, password: s3cret }\n".into(),
    )
    .await;
    let cli = Cli::new(srv.url());
    cli.ok(&["--user", "alice", "--password", "s3cret", "pub", "a", "b"])
        .await;
    let err = cli.fail(&["pub", "a", "b"]).await;
    assert!(
        err.to_lowercase().contains("authorization violation"),
        "{err}"
    );
    let err = cli
        .fail(&["--user", "alice", "--password", "wrong", "pub", "a", "b"])
        .await;
    assert!(
        err.to_lowercase().contains("authorization violation"),
        "{err}"
    );

    let srv = server_with_config(kind, "authorization { token: t0ken }\n".into()).await;
    let cli = Cli::new(srv.url());
    cli.ok(&["--token", "t0ken", "pub", "a", "b"]).await;
    cli.fail(&["--token", "nope", "pub", "a", "b"]).await;
    // A context remembers credentials.
    cli.ok(&["context", "add", "tok", "--token", "t0ken", "--select"])
        .await;
    cli.ok(&["pub", "a", "b"]).await;
}

#[tokio::test]
async fn cli_user_password_and_token() {
    user_password_and_token(ServerKind::Nats).await;
}

async fn mutual_tls(kind: ServerKind) {
    let c = make_certs();
    let config = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n",
        c.server_cert, c.server_key, c.ca
    );
    let srv = server_with_config(kind, config).await;
    let cli = Cli::new(srv.url());
    let tls = [
        "--tlsca",
        &c.ca,
        "--tlscert",
        &c.client_cert,
        "--tlskey",
        &c.client_key,
    ];
    let sub = cli
        .spawn(
            &[&tls[..], &["sub", "secure", "--count", "1", "--raw"]].concat(),
            "Subscribing on",
        )
        .await;
    cli.ok(&[&tls[..], &["pub", "secure", "over tls"]].concat())
        .await;
    assert_eq!(sub.finish().await.stdout, "over tls\n");
    // Without a client certificate the server refuses the handshake.
    cli.fail(&["--tlsca", &c.ca, "pub", "secure", "x"]).await;
    // Without the CA the client refuses the server.
    cli.fail(&[
        "--tlscert",
        &c.client_cert,
        "--tlskey",
        &c.client_key,
        "pub",
        "secure",
        "x",
    ])
    .await;
    let err = cli
        .fail(&["--tlscert", &c.client_cert, "pub", "a", "b"])
        .await;
    assert_eq!(
        err,
        "rill: error: --tlscert and --tlskey must be given together\n"
    );
}

#[tokio::test]
async fn cli_mutual_tls() {
    mutual_tls(ServerKind::Nats).await;
}

async fn tls_first(kind: ServerKind) {
    let c = make_certs();
    let config = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", handshake_first: true }}\n",
        c.server_cert, c.server_key
    );
    let srv = server_with_config(kind, config).await;
    let cli = Cli::new(srv.url());
    cli.ok(&["--tlsfirst", "--tlsca", &c.ca, "pub", "a", "b"])
        .await;
    cli.fail(&["--tlsca", &c.ca, "--timeout", "1s", "pub", "a", "b"])
        .await;
}

#[tokio::test]
async fn cli_tls_first() {
    tls_first(ServerKind::Nats).await;
}

#[tokio::test]
async fn cli_user_password_and_token_rill() {
    user_password_and_token(ServerKind::Rill).await;
}

#[tokio::test]
async fn cli_mutual_tls_rill() {
    mutual_tls(ServerKind::Rill).await;
}

#[tokio::test]
async fn cli_tls_first_rill() {
    tls_first(ServerKind::Rill).await;
}

async fn jetstream_disabled(kind: ServerKind) {
    let srv = TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let cli = Cli::new(srv.url());
    let err = cli.fail(&["stream", "ls"]).await;
    assert_eq!(
        err,
        "rill: error: no responders for $JS.API.STREAM.LIST: is JetStream enabled on this server?\n"
    );
}

#[tokio::test]
async fn cli_jetstream_disabled() {
    jetstream_disabled(ServerKind::Nats).await;
}

#[tokio::test]
async fn cli_jetstream_disabled_rill() {
    jetstream_disabled(ServerKind::Rill).await;
}

async fn push_consumer(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    cli.ok(&["stream", "add", "PUSH", "--subjects", "push.>"])
        .await;
    cli.ok(&["pub", "push.1", "p1"]).await;
    let sub = cli
        .spawn(
            &["sub", "deliver.push", "--count", "1", "--raw"],
            "Subscribing on",
        )
        .await;
    let info = json(
        &cli.ok(&[
            "consumer",
            "add",
            "PUSH",
            "pusher",
            "--target",
            "deliver.push",
            "--ack",
            "none",
            "--deliver",
            "all",
            "--heartbeat",
            "5s",
            "--json",
        ])
        .await,
    );
    assert_eq!(info["config"]["deliver_subject"], "deliver.push");
    assert_eq!(info["config"]["idle_heartbeat"], 5_000_000_000u64);
    assert_eq!(sub.finish().await.stdout, "p1\n");
    let err = cli
        .fail(&["consumer", "next", "PUSH", "pusher", "--timeout", "1s"])
        .await;
    assert!(err.contains("409"), "{err}");
}

#[tokio::test]
async fn cli_push_consumer() {
    push_consumer(KIND).await;
}

async fn account_info(kind: ServerKind) {
    let (srv, cli) = setup(kind).await;
    cli.ok(&["stream", "add", "ACC", "--subjects", "acc"]).await;
    let info = json(&cli.ok(&["account", "info", "--json"]).await);
    assert_eq!(info["streams"], 1);
    assert_eq!(
        info["type"],
        "io.nats.jetstream.api.v1.account_info_response"
    );
    let human = cli.ok(&["account", "info"]).await;
    assert!(human.contains("Streams: 1"), "{human}");
    drop(srv);
}

#[tokio::test]
async fn cli_account_info() {
    account_info(KIND).await;
}
