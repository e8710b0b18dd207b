//! The configuration library as `main` uses it: command lines spelled the way callers of
//! nats-server spell them, config files on disk, flags over files, reload.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::Duration;

use rill_server::config::flags::normalize_args;
use rill_server::config::{Action, ConfigError, Loaded, load, reload};

fn args(line: &[&str]) -> Vec<OsString> {
    line.iter().map(OsString::from).collect()
}

fn run(line: &[&str]) -> Loaded {
    load(args(line)).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn fail(line: &[&str]) -> ConfigError {
    match load(args(line)) {
        Ok(l) => panic!("{line:?} should fail, got {:?}", l.config),
        Err(e) => e,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).expect("write config");
    path.display().to_string()
}

#[test]
fn go_style_arguments_are_normalized() {
    let table: &[(&[&str], &[&str])] = &[
        (&["-js"], &["--jetstream"]),
        (&["--js"], &["--jetstream"]),
        (&["-sd", "/x"], &["--store_dir=/x"]),
        (&["-sd=/x"], &["--store_dir=/x"]),
        (&["--store_dir", "/x"], &["--store_dir=/x"]),
        (&["-p", "-1"], &["--port=-1"]),
        (&["-p=-1"], &["--port=-1"]),
        (&["-a", "::1"], &["--addr=::1"]),
        (&["--net", "127.0.0.1"], &["--addr=127.0.0.1"]),
        (&["-n", "x"], &["--server_name=x"]),
        (&["-DV"], &["--debug_trace"]),
        (&["-T=false"], &["--logtime=false"]),
        (
            &["-m", "8222", "-ms", "8443"],
            &["--http_port=8222", "--https_port=8443"],
        ),
        (&["-P", "/p", "-l", "/l"], &["--pid=/p", "--log=/l"]),
        (&["-v"], &["--version"]),
        (&["-V"], &["--trace"]),
        (&["-sl", "ldm=12"], &["--signal=ldm=12"]),
        (&["--bogus", "x"], &["--bogus", "x"]),
        (
            &["-c", "a.conf", "--", "-js"],
            &["--config=a.conf", "--", "-js"],
        ),
    ];
    for (input, want) in table {
        let got: Vec<String> = normalize_args(args(input))
            .into_iter()
            .map(|a| a.into_string().expect("utf8"))
            .collect();
        assert_eq!(&got, want, "{input:?}");
    }
}

#[test]
fn random_port_and_hosts() {
    assert_eq!(run(&["-p", "-1"]).config.port, 0);
    assert_eq!(run(&["--port=-1"]).config.port, 0);
    assert_eq!(run(&["-p", "4333"]).config.port, 4333);
    assert_eq!(run(&[]).config.port, 4222);
    assert_eq!(run(&["-a", "::1"]).config.host, "::1");
    assert_eq!(run(&["--addr", "127.0.0.1"]).config.host, "127.0.0.1");
    let e = fail(&["-a", "1.2.3.999"]);
    assert_eq!(e.to_string(), "invalid client listen host \"1.2.3.999\"");
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn logging_flags() {
    let l = run(&["-DV", "-T=false", "-l", "/tmp/x.log"]).config.logging;
    assert!(l.debug && l.trace && !l.logtime);
    assert_eq!(l.log_file.as_deref(), Some(Path::new("/tmp/x.log")));
    let l = run(&["-D"]).config.logging;
    assert!(l.debug && !l.trace && l.logtime);
    let l = run(&["--trace", "--logtime=0"]).config.logging;
    assert!(!l.debug && l.trace && !l.logtime);
}

#[test]
fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let conf = write(
        dir.path(),
        "s.conf",
        "port: 4443\nserver_name: from_file\njetstream {\n  store_dir: /should/be/replaced\n  max_mem: 1G\n}\n\
         authorization { user: file_user, password: file_pass }\nhttp: 8222\n",
    );
    let loaded = run(&[
        "-c",
        &conf,
        "-p",
        "-1",
        "--store_dir",
        store.to_str().expect("utf8"),
        "-n",
        "from_flag",
        "--user",
        "u",
        "--pass",
        "p",
        "-m",
        "-1",
    ]);
    let c = loaded.config;
    assert_eq!(c.port, 0);
    assert_eq!(c.server_name.as_deref(), Some("from_flag"));
    let js = c.jetstream.expect("jetstream from the file stays on");
    assert_eq!(js.store_dir, store);
    assert_eq!(js.max_memory_store, 1_000_000_000);
    assert_eq!(c.authorization.user.as_deref(), Some("u"));
    assert_eq!(c.authorization.password.as_deref(), Some("p"));
    assert_eq!(c.http.map(|h| h.port), Some(0));
    assert_eq!(c.config_file.as_deref(), Some(Path::new(&conf)));
    assert_eq!(loaded.action, Action::Run);
}

#[test]
fn jetstream_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sd = dir.path().join("js");
    let sd = sd.to_str().expect("utf8");
    let c = run(&["-js", &format!("-sd={sd}")]).config;
    assert_eq!(c.jetstream.map(|j| j.store_dir), Some(sd.into()));
    assert!(
        run(&["-sd", sd]).config.jetstream.is_none(),
        "-sd alone does not enable JetStream"
    );
    let file = write(dir.path(), "not-a-dir", "x");
    assert!(run(&["-sd", &file]).config.jetstream.is_none());
    // Loads (and `-t` passes, as with nats-server), but the server cannot start.
    let c = run(&["-js", "-sd", &file]).config;
    let e = rill_server::config::startup_check(&c).expect_err("a file is no store dir");
    assert!(e.contains("is not a directory"), "{e}");
}

#[test]
fn auth_and_tls_flags() {
    assert_eq!(
        run(&["--auth", "s3cr3t"])
            .config
            .authorization
            .token
            .as_deref(),
        Some("s3cr3t")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write(dir.path(), "c.pem", "x");
    let key = write(dir.path(), "k.pem", "x");
    let ca = write(dir.path(), "ca.pem", "x");
    let tls = run(&["--tls", "--tlscert", &cert, "--tlskey", &key])
        .config
        .tls
        .expect("tls on");
    assert!(!tls.verify);
    assert_eq!(tls.timeout, Duration::from_secs(2));
    let tls = run(&[
        "--tlsverify",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--tlscacert",
        &ca,
    ])
    .config
    .tls
    .expect("tls on");
    assert!(tls.verify);
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new(&ca)));
    let e = fail(&["--tls", "--tlscert", &cert]);
    assert!(e.to_string().contains("--tlskey"), "{e}");
    let e = fail(&["--tls", "--tlscert", "/nonexistent/c.pem", "--tlskey", &key]);
    assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
}

#[test]
fn unsupported_flags_are_accepted_with_a_warning() {
    let l = run(&[
        "--cluster",
        "nats://127.0.0.1:6222",
        "--routes",
        "nats://a:6222",
        "--cluster_name",
        "c",
        "--cluster_listen",
        "nats://0.0.0.0:6222",
        "-s",
    ]);
    let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    insta::assert_debug_snapshot!(w);
}

#[test]
fn bad_command_lines_are_errors_with_exit_code_2() {
    for line in [
        &["--bogus"][..],
        &["-p", "abc"],
        &["-T=maybe"],
        &["extra"],
        &["-p"],
    ] {
        let e = fail(line);
        assert_eq!(e.exit_code(), 2, "{line:?}: {e}");
        assert!(!e.to_string().is_empty());
    }
    let e = fail(&["--bogus"]);
    assert!(e.to_string().contains("--bogus"), "{e}");
}

#[test]
fn actions() {
    assert_eq!(run(&["-h"]).action, Action::PrintHelp);
    assert_eq!(run(&["--help"]).action, Action::PrintHelp);
    assert_eq!(run(&["-v"]).action, Action::PrintVersion);
    assert_eq!(run(&["--version"]).action, Action::PrintVersion);
    assert_eq!(run(&["-t"]).action, Action::CheckConfig);
    match run(&["--signal", "ldm=1234"]).action {
        Action::Signal(req) => {
            assert_eq!((req.signal, req.target.as_deref()), ("USR2", Some("1234")))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(run(&["-sl", "reload"]).action, Action::Signal(_)));
    assert!(
        fail(&["--signal", "nope"])
            .to_string()
            .contains("unknown signal")
    );
}

#[test]
fn config_files_with_includes_and_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    // As in nats-server, an included file is parsed on its own: it cannot see the
    // including file's variables, but its keys merge into the including map.
    write(
        dir.path(),
        "conf.d/limits.conf",
        "max_payload: 64KB\nping_interval: \"2m\"\n",
    );
    let conf = write(
        dir.path(),
        "main.conf",
        "# the main file\nPASS: \"a-secret\"\nRO = { publish: { deny: \">\" }, subscribe: \">\" }\n\
         listen: 127.0.0.1:4567\ninclude ./conf.d/limits.conf\n\
         authorization {\n  users = [\n    {user: alice, password: $PASS}\n    {user: bob, password: \"b\", permissions: $RO}\n  ]\n  timeout: 1.5\n}\n",
    );
    let c = run(&["-c", &conf]).config;
    assert_eq!(
        (c.host.as_str(), c.port, c.max_payload),
        ("127.0.0.1", 4567, 65536)
    );
    assert_eq!(c.ping_interval, Duration::from_secs(120));
    let users = &c.authorization.users;
    assert_eq!(users[0].password.as_deref(), Some("a-secret"));
    let ro = users[1].permissions.as_ref().expect("permissions");
    assert_eq!(
        ro.publish.as_ref().map(|p| p.deny.clone()),
        Some(vec![">".to_string()])
    );
    assert_eq!(c.authorization.timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn errors_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let cases = [
        ("syntax.conf", "port: 4222\nfoo {\n  bar: [1, 2\n}\n"),
        ("unknown.conf", "port: 4222\nfoo_bar_baz: 1\n"),
        ("type.conf", "port: 4222\nmax_payload: \"big\"\n"),
        ("jwt.conf", "port: 4222\noperator: /etc/op.jwt\n"),
        ("var.conf", "port: $RILL_SURELY_UNDEFINED_VAR\n"),
        (
            "tls.conf",
            "tls {\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n}\n",
        ),
    ];
    let mut out = Vec::new();
    for (name, text) in cases {
        let path = write(dir.path(), name, text);
        let e = fail(&["-c", &path]);
        assert_eq!(e.exit_code(), 1);
        out.push(e.to_string().replace(&d, "DIR"));
    }
    let missing = fail(&["-c", &format!("{d}/absent.conf")]);
    out.push(missing.to_string().replace(&d, "DIR"));
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn reload_rereads_the_file_and_keeps_the_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(
        dir.path(),
        "r.conf",
        "port: 4443\ndebug: false\nmax_payload: 1KB\n",
    );
    let loaded = run(&["-c", &conf, "-p", "-1"]);
    assert_eq!((loaded.config.port, loaded.config.max_payload), (0, 1024));
    write(
        dir.path(),
        "r.conf",
        "port: 5555\ndebug: true\nmax_payload: 2KB\n",
    );
    let (c, _) = reload(Some(Path::new(&conf)), &loaded.flags).expect("reload");
    assert_eq!((c.port, c.logging.debug, c.max_payload), (0, true, 2048));
    write(dir.path(), "r.conf", "port: [\n");
    assert!(reload(Some(Path::new(&conf)), &loaded.flags).is_err());
}

#[test]
fn help_text() {
    insta::assert_snapshot!(rill_server::config::flags::USAGE);
}

#[test]
fn flag_error_messages() {
    let lines: &[&[&str]] = &[
        &["--bogus"],
        &["-p", "abc"],
        &["-T=maybe"],
        &["-p"],
        &["stray"],
    ];
    let out: Vec<String> = lines
        .iter()
        .map(|l| format!("{l:?}\n{}", fail(l)))
        .collect();
    insta::assert_snapshot!(out.join("\n---\n"));
}
