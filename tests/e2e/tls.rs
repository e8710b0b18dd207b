//! TLS for clients: server certificates, client certificates (mTLS), certificate-to-user
//! mapping, TLS-first handshakes, and what happens to clients that get it wrong. Every
//! certificate is generated here with rcgen (no private keys are checked in).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::ConnectOptions;
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use rill_tests::raw::Conn;
use rill_tests::{ServerKind, ServerOpts, TestServer, sync};

const WAIT: Duration = Duration::from_secs(5);

/// A CA, a server certificate for 127.0.0.1, and client certificates, as PEM files.
#[derive(Debug)]
pub(crate) struct Certs {
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).expect("CA cert").pem();
    (params, key, pem)
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    sans: Vec<SanType>,
    dir: &Path,
    name: &str,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "rill");
    params.subject_alt_names = sans;
    let cert = params.signed_by(&key, issuer).expect("leaf cert");
    let cert_path = dir.join(format!("{name}-cert.pem"));
    let key_path = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

impl Certs {
    /// Generates everything into a fresh temp dir.
    pub(crate) fn generate() -> Certs {
        let dir = tempfile::tempdir().expect("cert dir");
        let (params, key, pem) = ca("rill test CA");
        std::fs::write(dir.path().join("ca.pem"), pem).expect("write CA");
        let issuer = Issuer::new(params, key);
        let ip = SanType::IpAddress("127.0.0.1".parse().expect("ip"));
        let dns = SanType::DnsName("localhost".try_into().expect("dns"));
        leaf(&issuer, "localhost", vec![ip, dns], dir.path(), "server");
        let email = SanType::Rfc822Name("device-42@iot.example".try_into().expect("email"));
        leaf(&issuer, "device-42", vec![email], dir.path(), "client");
        leaf(&issuer, "device-7", vec![], dir.path(), "unmapped");
        let (rogue_params, rogue_key, _) = ca("rogue CA");
        let rogue = Issuer::new(rogue_params, rogue_key);
        leaf(&rogue, "device-42", vec![], dir.path(), "rogue");
        Certs { dir }
    }

    /// Path of a generated file (`ca.pem`, `server-cert.pem`, `client-key.pem`, …).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `tls {}` block for the server certificate, with extra settings.
    pub(crate) fn tls_block(&self, extra: &str) -> String {
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  timeout: 2\n  {extra}\n}}\n",
            self.path("server-cert.pem").display(),
            self.path("server-key.pem").display(),
            self.path("ca.pem").display(),
        )
    }

    /// Client options trusting the test CA.
    pub(crate) fn client_opts(&self) -> ConnectOptions {
        ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(self.path("ca.pem"))
    }

    /// Client options with the client certificate `name` (`client`, `unmapped`, `rogue`).
    pub(crate) fn client_cert_opts(&self, name: &str) -> ConnectOptions {
        self.client_opts().add_client_certificate(
            self.path(&format!("{name}-cert.pem")),
            self.path(&format!("{name}-key.pem")),
        )
    }
}

async fn tls_server(kind: ServerKind, config: String) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        config: Some(config),
        ..ServerOpts::default()
    })
    .await
}

async fn connects(server: &TestServer, opts: ConnectOptions) -> Option<async_nats::Client> {
    let opts = opts
        .max_reconnects(Some(0))
        .connection_timeout(Duration::from_secs(2));
    let client = tokio::time::timeout(WAIT, opts.connect(server.url()))
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(WAIT, client.flush())
        .await
        .ok()?
        .ok()?;
    Some(client)
}

async fn round_trip(client: &async_nats::Client, subject: &str) {
    let mut sub = client.subscribe(subject.to_string()).await.expect("sub");
    sync(client).await;
    client
        .publish(subject.to_string(), "hi".into())
        .await
        .expect("pub");
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(&msg.payload[..], b"hi");
}

#[tokio::test]
async fn tls_clients_work_and_plain_clients_are_closed() {
    let certs = Certs::generate();
    let server = tls_server(ServerKind::Rill, certs.tls_block("")).await;
    let mut plain = Conn::connect(server.port()).await;
    assert_eq!(plain.info()["tls_required"], true, "{}", plain.info());
    let client = connects(&server, certs.client_opts())
        .await
        .unwrap_or_else(|| panic!("TLS client refused\n{}", server.logs()));
    plain.send(b"CONNECT {}\r\nPING\r\n").await;
    assert!(plain.is_closed_within(WAIT).await, "plain client kept");
    round_trip(&client, "after.plain").await;
    assert!(
        server.logs().contains("TLS handshake error"),
        "{}",
        server.logs()
    );
}

#[tokio::test]
async fn mutual_tls_accepts_trusted_client_certificates_only() {
    let certs = Certs::generate();
    let server = tls_server(ServerKind::Rill, certs.tls_block("verify: true")).await;
    let good = connects(&server, certs.client_cert_opts("client"))
        .await
        .unwrap_or_else(|| panic!("trusted client refused\n{}", server.logs()));
    assert!(connects(&server, certs.client_opts()).await.is_none());
    assert!(
        connects(&server, certs.client_cert_opts("rogue"))
            .await
            .is_none()
    );
    round_trip(&good, "mtls.ok").await;
}

#[tokio::test]
async fn handshake_first_serves_tls_first_clients() {
    let certs = Certs::generate();
    let server = tls_server(ServerKind::Rill, certs.tls_block("handshake_first: true")).await;
    let client = connects(&server, certs.client_opts().tls_first())
        .await
        .unwrap_or_else(|| panic!("TLS-first client refused\n{}", server.logs()));
    round_trip(&client, "first.ok").await;
}

#[tokio::test]
async fn verify_and_map_maps_certificates_to_users_like_nats_server() {
    let certs = Certs::generate();
    let config = format!(
        "{}\nauthorization {{ users: [ {{ user: \"device-42@iot.example\" }}, {{ user: \"CN=device-7,O=rill\", permissions: {{ publish: [\"devices.7.>\", \"_rill_sync.>\"] }} }} ] }}\n",
        certs.tls_block("verify_and_map: true")
    );
    for kind in [ServerKind::Nats, ServerKind::Rill] {
        let server = tls_server(kind, config.clone()).await;
        let mapped = connects(&server, certs.client_cert_opts("client"))
            .await
            .unwrap_or_else(|| panic!("{kind:?}: e-mail SAN not mapped\n{}", server.logs()));
        round_trip(&mapped, "devices.42.telemetry").await;
        let by_dn = connects(&server, certs.client_cert_opts("unmapped"))
            .await
            .unwrap_or_else(|| panic!("{kind:?}: subject DN not mapped\n{}", server.logs()));
        sync(&by_dn).await;
        assert!(connects(&server, certs.client_opts()).await.is_none());
    }
}

#[tokio::test]
async fn malformed_certificate_file_stops_startup_naming_the_file() {
    let certs = Certs::generate();
    let bad = certs.path("garbage.pem");
    std::fs::write(&bad, "not a certificate").expect("write");
    let config = certs.tls_block("").replace(
        &certs.path("server-cert.pem").display().to_string(),
        &bad.display().to_string(),
    );
    let conf = certs.path("server.conf");
    std::fs::write(&conf, config).expect("write conf");
    let out = std::process::Command::new(rill_tests::rill_server_bin())
        .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
        .arg(&conf)
        .output()
        .expect("run server");
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("garbage.pem"), "{stderr}");
}

#[tokio::test]
async fn handshake_first_auto_also_serves_clients_that_wait_for_info() {
    let certs = Certs::generate();
    let server = tls_server(ServerKind::Rill, certs.tls_block("handshake_first: auto")).await;
    let first = connects(&server, certs.client_opts().tls_first())
        .await
        .unwrap_or_else(|| panic!("TLS-first client refused\n{}", server.logs()));
    let classic = connects(&server, certs.client_opts())
        .await
        .unwrap_or_else(|| panic!("INFO-first client refused\n{}", server.logs()));
    round_trip(&first, "auto.first").await;
    round_trip(&classic, "auto.classic").await;
}

/// `pinned_certs`: of two client certificates from the trusted CA, only the one whose
/// public key (SHA-256 of its DER SubjectPublicKeyInfo) is pinned connects, on rill as on
/// nats-server.
#[tokio::test]
async fn pinned_certs_admit_only_pinned_client_keys_like_nats_server() {
    let certs = Certs::generate();
    let pem = std::fs::read_to_string(certs.path("client-key.pem")).expect("key");
    let spki = KeyPair::from_pem(&pem)
        .expect("key")
        .subject_public_key_info();
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    let pin: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let extra = format!("verify: true\n  pinned_certs: [\"{pin}\"]");
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = tls_server(kind, certs.tls_block(&extra)).await;
        let good = connects(&server, certs.client_cert_opts("client"))
            .await
            .unwrap_or_else(|| panic!("{kind:?}: pinned client refused\n{}", server.logs()));
        round_trip(&good, "pinned.ok").await;
        let other = connects(&server, certs.client_cert_opts("unmapped")).await;
        assert!(
            other.is_none(),
            "{kind:?}: a client key that is not pinned got in"
        );
        round_trip(&good, "pinned.still").await;
    }
}

/// A TLS setting rill does not enforce (or `pinned_certs` without `verify`, where no
/// client certificate is asked for) stops the server at start, naming the setting,
/// instead of being ignored with a warning.
#[tokio::test]
async fn unenforced_tls_settings_stop_startup() {
    let certs = Certs::generate();
    for (extra, named) in [
        ("verify: true\n  cert_match_by: subject", "cert_match_by"),
        ("verify: true\n  ocsp_peer: true", "ocsp_peer"),
        ("insecure: true", "insecure"),
        ("cipher_suites: [TLS_AES_128_GCM_SHA256]", "cipher_suites"),
        ("pinned_certs: [\"00\"]", "pinned_certs"),
        (
            "pinned_certs: [\"0000000000000000000000000000000000000000000000000000000000000000\"]",
            "pinned_certs needs verify",
        ),
    ] {
        let conf = certs.path("refused.conf");
        std::fs::write(&conf, certs.tls_block(extra)).expect("write conf");
        let run = tokio::process::Command::new(rill_tests::rill_server_bin())
            .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
            .arg(&conf)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .unwrap_or_else(|_| panic!("{extra}: the server started and kept running"))
            .expect("run server");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{extra}: started\n{text}");
        assert!(text.contains(named), "{extra}: {text}");
    }
}

/// Two connections that got INFO and stay in the TLS handshake. The harness's readiness probe may still
/// hold a place until the server sees it close, so a refused pair is dropped and tried again. nats-server
/// refuses a connection over `max_connections` after its INFO (`-ERR 'maximum connections exceeded'`
/// follows it), so a pair counts only once neither has heard more than INFO for a moment.
async fn stalled_pair(port: u16) -> [Conn; 2] {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut first = Conn::try_connect(port).await;
        let mut second = Conn::try_connect(port).await;
        let admitted = match (&mut first, &mut second) {
            (Ok(a), Ok(b)) => quiet(a).await && quiet(b).await,
            _ => false,
        };
        match (first, second) {
            (Ok(a), Ok(b)) if admitted => return [a, b],
            (a, b) if tokio::time::Instant::now() < deadline => {
                drop((a, b));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (a, b) => panic!(
                "no two connections admitted within {WAIT:?}: {:?} {:?}",
                a.err(),
                b.err()
            ),
        }
    }
}

/// True when the server says nothing more on `conn` for a moment (no `-ERR` after its INFO).
async fn quiet(conn: &mut Conn) -> bool {
    conn.try_read_line(Duration::from_millis(300))
        .await
        .is_none()
}

/// What a connection to `port` is told before the server closes it or `WAIT` passes.
async fn first_words(port: u16) -> String {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !String::from_utf8_lossy(&seen).contains("-ERR") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn connections_in_the_tls_handshake_count_towards_max_connections_like_nats_server() {
    let certs = Certs::generate();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let config = format!("max_connections: 2\n{}", certs.tls_block(""));
        let server = tls_server(kind, config).await;
        // Two connections read INFO and never start their handshake (2 s allowed).
        let stalled = stalled_pair(server.port()).await;
        let third = first_words(server.port()).await;
        assert!(
            third.contains("-ERR 'maximum connections exceeded'"),
            "{kind:?}: {third:?}\n{}",
            server.logs()
        );
        drop(stalled);
        // Their places come back once they are gone.
        rill_tests::check_for(WAIT, || async {
            connects(&server, certs.client_opts()).await.is_some()
        })
        .await;
    }
}
