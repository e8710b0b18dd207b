use std::time::Duration;

use super::super::conf::parse_str;
use super::super::{Config, ExportKind, HttpListen, SyncInterval};
use super::*;

fn load(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
    let map = parse_str(text)?;
    Draft::from_map(&map)?.finish()
}

fn ok(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("{e}\n{text}")).0
}

fn warnings(text: &str) -> Vec<String> {
    load(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .1
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn err(text: &str) -> String {
    match load(text) {
        Ok((c, _)) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_config_is_the_default() {
    assert_eq!(ok(""), Config::default());
}

#[test]
fn server_keys() {
    let c = ok(
        "listen: 127.0.0.1:4333\nserver_name: rill-a\nclient_advertise: \"ext:4222\"\n\
        max_payload: 128KB\nmax_pending: 64MB\nmax_control_line: 2KB\nmax_connections: 100\nmax_subs: 10\n\
        ping_interval: \"100ms\"\nping_max: 3\nwrite_deadline: \"5s\"\nlame_duck_duration: \"30s\"\n\
        lame_duck_grace_period: 2s\ndebug: true\ntrace: on\nlogtime: false\nlog_file: /tmp/r.log\n\
        pid_file: /tmp/r.pid\nports_file_dir: /tmp\nhttp: 8222\n",
    );
    insta::assert_debug_snapshot!(c);
}

#[test]
fn listen_forms() {
    let table: &[(&str, &str, u16)] = &[
        ("listen: 127.0.0.1:4333", "127.0.0.1", 4333),
        ("listen: \"[::1]:4333\"", "::1", 4333),
        ("listen: 4333", "0.0.0.0", 4333),
        ("listen: localhost:4333", "localhost", 4333),
        ("host: ::1\nport: 5000", "::1", 5000),
        ("net: 127.0.0.1", "127.0.0.1", 4222),
        ("port: -1", "0.0.0.0", 0),
        ("port: 0", "0.0.0.0", 4222),
    ];
    for (text, host, port) in table {
        let c = ok(text);
        assert_eq!((c.host.as_str(), c.port), (*host, *port), "{text}");
    }
}

#[test]
fn monitoring_ports() {
    let c = ok("host: 127.0.0.1\nhttp_port: 8222");
    assert_eq!(
        c.http,
        Some(HttpListen {
            host: "127.0.0.1".into(),
            port: 8222
        })
    );
    let c = ok("http: \"0.0.0.0:9000\"");
    assert_eq!(
        c.http,
        Some(HttpListen {
            host: "0.0.0.0".into(),
            port: 9000
        })
    );
    assert_eq!(ok("monitor_port: -1").http.map(|h| h.port), Some(0));
    assert_eq!(ok("http_port: 0").http, None);
}

#[test]
fn durations_given_as_numbers_are_seconds_with_a_warning() {
    let text = "ping_interval: 5";
    assert_eq!(ok(text).ping_interval, Duration::from_secs(5));
    insta::assert_debug_snapshot!(warnings(text));
}

#[test]
fn authorization_forms() {
    let single = ok("authorization { user: a, password: b, timeout: 0.5 }");
    assert_eq!(single.authorization.user.as_deref(), Some("a"));
    assert_eq!(
        single.authorization.timeout,
        Some(Duration::from_millis(500))
    );
    let token = ok("authorization { token: \"s3cr3t\", timeout: \"3s\" }");
    assert_eq!(token.authorization.token.as_deref(), Some("s3cr3t"));
    let users = ok(
        "authorization {\n  default_permissions { subscribe: \"_INBOX.>\" }\n  users = [\n\
        {user: a, password: \"$2a$11$abcdefghijklmnopqrstuv\"}\n\
        {user: b, password: c, permissions: {publish: {allow: [\"x.>\"], deny: \"x.y\"}, subscribe: [\"a\", \"b\"], allow_responses: {max: 5, expires: \"1m\"}}}\n\
        {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4}\n]}",
    );
    insta::assert_debug_snapshot!(users.authorization);
}

#[test]
fn accounts_with_users_exports_imports_and_jetstream() {
    let c = ok("accounts {\n\
        A: { jetstream: enabled, users: [{user: a, password: a}], exports: [{stream: \"a.>\"}, {service: \"svc\", accounts: [B]}] }\n\
        B { jetstream { max_mem: 1G, max_file: \"10GB\", max_streams: 5, max_consumers: 10 }\n\
            users [ {user: b, password: b, permissions: {publish: \"b.>\", allow_responses: true}} ]\n\
            imports [ {stream: {account: A, subject: \"a.>\"}, prefix: from_a}, {service: {account: A, subject: svc}, to: asvc, share: true} ] }\n\
        }\nno_auth_user: a\n");
    assert_eq!(c.accounts[0].exports[1].kind, ExportKind::Service);
    assert_eq!(c.accounts[1].users[0].account.as_deref(), Some("B"));
    assert!(!c.accounts[1].imports[0].share && c.accounts[1].imports[1].share);
    insta::assert_debug_snapshot!(c.accounts);
}

#[test]
fn msg_trace_and_allow_trace() {
    let c = ok("accounts {\n\
        A { msg_trace: { dest: \"t.d\", sampling: \"25%\" }, exports: [{service: s, allow_trace: true}] }\n\
        B { msg_trace: { dest: t.b }, imports: [{stream: {account: A, subject: x}, allow_trace: true}] }\n\
        }\n");
    let trace = |i: usize| c.accounts[i].msg_trace.clone().expect("msg_trace");
    assert_eq!((trace(0).dest.as_str(), trace(0).sampling), ("t.d", 25));
    assert_eq!((trace(1).dest.as_str(), trace(1).sampling), ("t.b", 100));
    assert!(c.accounts[0].exports[0].allow_trace);
    assert!(c.accounts[1].imports[0].allow_trace);
    assert!(
        err("accounts { A { msg_trace: { dest: t, sampling: 0 } } }").contains("between 1 and 100")
    );
    assert!(err("accounts { A { msg_trace: { dest: \"t.*\" } } }").contains("not valid"));
}

#[test]
fn max_connections_zero_is_unlimited() {
    assert_eq!(ok("max_connections: 0").max_connections, usize::MAX);
    assert_eq!(ok("max_conn: 5").max_connections, 5);
}

#[test]
fn accounts_list_form() {
    let names: Vec<String> = ok("accounts: [A, B]")
        .accounts
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["A", "B"]);
}

#[test]
fn jetstream_forms() {
    assert!(ok("jetstream: true").jetstream.is_some());
    assert!(ok("jetstream: enabled").jetstream.is_some());
    assert!(ok("jetstream: \"enabled\"").jetstream.is_some());
    assert!(ok("jetstream: false").jetstream.is_none());
    assert!(ok("jetstream: disabled").jetstream.is_none());
    assert!(ok("jetstream {}").jetstream.is_some());
    assert!(ok("jetstream { enabled: false }").jetstream.is_none());
    assert!(ok("store_dir: /tmp/x").jetstream.is_none());
    let c = ok(
        "jetstream {\n  store_dir: /tmp/rill-js\n  max_memory_store: 64MiB\n  max_file_store: 10GiB\n  \
        sync_interval: \"2m\"\n  domain: hub\n  strict: false\n  index_cache: 16MiB\n  limits { max_request_batch: 100, duplicate_window: \"1m\" }\n}",
    );
    insta::assert_debug_snapshot!(c.jetstream);
    let js = ok("jetstream { max_mem: \"1G\", store: /x, sync: always }")
        .jetstream
        .expect("enabled");
    assert_eq!(
        (js.max_memory_store, js.store_dir.to_str(), js.sync),
        (1_000_000_000, Some("/x"), SyncInterval::Always)
    );
    let js = ok("jetstream { index_cache: 65536 }")
        .jetstream
        .expect("enabled");
    assert_eq!(js.index_cache, Some(65536));
    assert!(
        ok("jetstream {}")
            .jetstream
            .expect("enabled")
            .index_cache
            .is_none()
    );
    let e = err("jetstream { index_cache: -1 }");
    assert!(e.contains("'index_cache' must not be negative"), "{e}");
    let js = ok("jetstream: enabled\nstore_dir: /y")
        .jetstream
        .expect("enabled");
    assert_eq!(js.store_dir.to_str(), Some("/y"));
}

#[test]
fn tls_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::write(dir.path().join(f), "x").expect("write");
    }
    let d = dir.path().display();
    let c = ok(&format!(
        "tls {{\n  cert_file: \"{d}/cert.pem\"\n  key_file: \"{d}/key.pem\"\n  ca_file: \"{d}/ca.pem\"\n  verify: true\n  \
         timeout: 3\n  handshake_first: \"300ms\"\n  min_version: \"1.3\"\n}}"
    ));
    let tls = c.tls.expect("tls");
    assert!(tls.verify && tls.handshake_first);
    assert_eq!(
        tls.handshake_first_fallback,
        Some(Duration::from_millis(300))
    );
    assert_eq!(tls.timeout, Duration::from_secs(3));
    let strict = ok(&format!(
        "tls {{ cert_file: \"{d}/cert.pem\", key_file: \"{d}/key.pem\", handshake_first: true }}"
    ));
    assert_eq!(
        strict
            .tls
            .map(|t| (t.handshake_first, t.handshake_first_fallback)),
        Some((true, None))
    );
}

#[test]
fn unsupported_features_warn_and_name_the_key() {
    let text = "cluster { port: 6222 }\nleafnodes { listen: \"0.0.0.0:7422\" }\nwebsocket { port: 8080, no_tls: true }\n\
        gateway { port: 7222 }\nserver_tags: [\"a\"]\nsystem_account: SYS\nsyslog: true\n";
    insta::assert_debug_snapshot!(warnings(text));
}

#[test]
fn variables_defined_but_unknown_are_not_errors() {
    assert_eq!(ok("P: 4333\nport: $P").port, 4333);
    // The role-permissions pattern of client test suites: a variable defined inside
    // `authorization` and used in a user entry.
    let c = ok(
        "authorization {\n  user_perms = { publish = { deny = \"foo\" } }\n  \
        users = [{ user: \"derek\", password: \"s3cr3t!\", permissions: $user_perms }]\n}",
    );
    let perms = c.authorization.users[0]
        .permissions
        .clone()
        .expect("permissions");
    assert_eq!(perms.publish.map(|p| p.deny), Some(vec!["foo".to_string()]));
    assert!(
        err("authorization { user_perms = { publish = \"a\" } }")
            .contains("unknown field \"user_perms\"")
    );
}

#[test]
fn errors() {
    let cases = [
        "foo_bar_baz: 1",
        "port: \"abc\"",
        "max_payload: \"abc\"",
        "debug: \"true\"",
        "debug: 1",
        "ping_interval: \"abc\"",
        "authorization { user: a, password: b, foo: 1 }",
        "authorization { user: a, users: [{user: b, password: c}] }",
        "authorization { users: [{password: c}] }",
        "authorization { users: [{nkey: \"not-a-key\"}] }",
        "authorization { auth_callout { issuer: X } }",
        "authorization { users: [{user: a}], auth_callout { issuer: ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA } }",
        "authorization { users: [{user: a}], auth_callout { auth_users: [a] } }",
        "operator: \"/some/op.jwt\"",
        "resolver: MEMORY",
        "resolver_preload { A: B }",
        "jetstream: foo",
        "jetstream { key: \"s3cr3t\" }",
        "jetstream { bogus: 1 }",
        "tls { cert_file: x }",
        "tls { cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem }",
        "server_name: \"a b\"",
        "listen: \"nonsense\"",
        "host: 1.2.3.999",
        "port: 70000",
        "max_payload: 2MB\nmax_pending: 1MB",
        "max_payload: 0",
        "no_auth_user: ghost",
        "https_port: 8443",
        "accounts { A: 1 }",
        "accounts { A { exports: [{accounts: [B]}] } }",
        "accounts { A { imports: [{stream: {account: B}}] } }",
        "authorization { users: [{user: a, permissions: {publish: {allow: 1}}}] }",
        "authorization { users: [{user: a}] }\naccounts { A { users: [{user: a}] } }",
        "max_payload: 3GB",
        "lame_duck_duration: \"10s\"\nlame_duck_grace_period: \"10s\"",
    ];
    let rendered: Vec<String> = cases
        .iter()
        .map(|c| format!("{c:?}\n  => {}", err(c)))
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn store_dir_that_is_a_file_fails_only_with_jetstream() {
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let p = file.path().display();
    assert!(ok(&format!("store_dir: \"{p}\"")).jetstream.is_none());
    let config = ok(&format!("jetstream {{ store_dir: \"{p}\" }}"));
    let e = crate::config::startup_check(&config).expect_err("a file is no store dir");
    assert_eq!(
        e,
        "Can't start JetStream: storage directory is not a directory"
    );
}

#[test]
fn the_mqtt_block_takes_nats_server_keys() {
    let c = ok(
        "jetstream: true\nmqtt {\n  listen: \"127.0.0.1:-1\"\n  ack_wait: \"2s\"\n  \
        max_inflight: 10\n  no_auth_user: dev\n  authorization { timeout: 3 }\n  \
        js_domain: hub\n  stream_replicas: 3\n}\nauthorization { users: [{user: dev}] }",
    );
    let m = c.mqtt.expect("mqtt configured");
    assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 0));
    assert_eq!(m.ack_wait, Some(std::time::Duration::from_secs(2)));
    assert_eq!(m.max_ack_pending, Some(10));
    let zero = ok("jetstream: true\nmqtt { ack_wait: \"0s\", max_ack_pending: 0 }");
    let zero = zero.mqtt.expect("mqtt configured");
    assert_eq!((zero.ack_wait, zero.max_ack_pending), (None, None));
    assert_eq!(zero.ack_wait(), std::time::Duration::from_secs(30));
    assert_eq!(zero.max_ack_pending(), 1024);
    let both = "jetstream: true\nauthorization { users: [{user: a}] }\n\
                mqtt { authorization { user: m, password: p } }";
    assert!(err(both).contains("username not compatible with presence of users"));
    let w = warnings("jetstream: true\nmqtt { consumer_replicas: 1 }");
    assert!(w[0].contains("consumer replicas setting ignored"), "{w:?}");
    assert_eq!(m.no_auth_user.as_deref(), Some("dev"));
    assert_eq!(m.authorization.timeout, Some(Duration::from_secs(3)));
    let own = ok("jetstream: true\nmqtt { authorization { user: m, password: p } }");
    let own = own.mqtt.expect("mqtt configured").authorization;
    assert_eq!(own.user.as_deref(), Some("m"));
    assert_eq!(m.js_domain.as_deref(), Some("hub"));
    assert!(err("mqtt { port: 1883 }").contains("mqtt requires JetStream"));
    assert!(err("jetstream: true\nmqtt { max_ack_pending: 70000 }").contains("[0..65535]"));
    assert!(err("jetstream: true\nmqtt { bogus: 1 }").contains("unknown field \"bogus\""));
}

#[test]
fn mappings_in_every_form_at_the_top_and_in_accounts() {
    let c = ok(
        "mappings {\n  a: b\n  \"c.*\": { destination: \"d.$1\", weight: 100% }\n  \
        e: [ { destination: e.v1, weight: 80% }, { destination: e.v2, weight: \"20\" } ]\n}\n\
        accounts { A { mappings { f: g } } }\n",
    );
    let srcs: Vec<&str> = c.mappings.iter().map(|m| m.src()).collect();
    assert_eq!(srcs, ["a", "c.*", "e"]);
    let weights: Vec<u8> = c.mappings[2].dests().iter().map(|d| d.weight).collect();
    assert_eq!(weights, [80, 20]);
    assert_eq!(c.accounts[0].mappings[0].src(), "f");
}

#[test]
fn invalid_mappings_are_refused_with_nats_servers_reason() {
    assert_eq!(
        err("mappings { \"foo.*\": \"bar.$2\" }"),
        "1:12: Error adding mapping for \"foo.*\" to \"bar.$2\" : invalid mapping destination: \
         wildcard index out of range in $2: [2]"
    );
    assert_eq!(
        err("mappings { foo: [{destination: a, weight: 60%}, {destination: b, weight: 50%}] }"),
        "1:12: Error adding mapping for \"foo\" : total weight needs to be <= 100"
    );
    assert!(
        err("mappings { foo: [{destination: a}] }")
            .ends_with("Missing weight for mapping destination \"a\"")
    );
    assert!(
        err("mappings { \"foo..x\": bar }").ends_with("Subject \"foo..x\" is not a valid subject")
    );
}

#[test]
fn clustered_jetstream_needs_a_server_name_as_nats_server() {
    let cluster = "jetstream: true\ncluster { name: C, listen: \"127.0.0.1:-1\" }\n";
    assert!(err(cluster).contains("jetstream cluster requires `server_name` to be set"));
    assert_eq!(
        ok(&format!("server_name: n1\n{cluster}"))
            .server_name
            .as_deref(),
        Some("n1")
    );
    // Either alone needs no name.
    ok("jetstream: true\n");
    ok("cluster { name: C, listen: \"127.0.0.1:-1\" }\n");
}
