//! `rill bench compare`: starts two servers (A and B, from command templates with `{port}` and
//! `{store}`), runs the same scenarios against each in alternation (for every scenario: round 1 A, B;
//! round 2 A, B; ...), samples each server's resident memory after every run and with idle
//! connections, and prints a markdown table of medians, ratios and spreads (or JSON).
//!
//! The cluster scenarios start three fresh servers of each command routed into one cluster
//! (`cluster.rs`); the MQTT ones a fresh server with an MQTT listener (`mqtt.rs`).
//!
//! A run that fails (for example a JetStream scenario against a server without JetStream) becomes a
//! note and an `n/a` cell; it never aborts the comparison. A server that dies is restarted on a fresh
//! port and store, with a note. Every run is bounded by its message count, its time cap, and an outer
//! timeout.

mod cluster;
mod mqtt;
mod restart;
mod scenario;
mod server;
mod streams;
mod table;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use super::report::{Report, micros, thousands};
use super::run::Target;
use crate::connect::ConnOpts;
use crate::output::{self, Table};
use crate::parse;
use scenario::{Better, Field, Kind, Scenario};
use server::Server;
use table::{Results, Side, Unit};

/// The default command for server B.
const DEFAULT_B: &str = "nats-server -a 127.0.0.1 -p {port} -js -sd {store}";

/// Arguments of `rill bench compare`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct CompareArgs {
    /// Command that starts server A; `{port}` and `{store}` are substituted
    /// [default: rill-server next to this rill binary, with -js]
    #[arg(long, value_name = "CMD")]
    pub(crate) server_a: Option<String>,
    /// Command that starts server B
    #[arg(long, value_name = "CMD", default_value = DEFAULT_B)]
    pub(crate) server_b: String,
    /// Label of server A in the table [default: its program name]
    #[arg(long, value_name = "NAME")]
    pub(crate) name_a: Option<String>,
    /// Label of server B in the table [default: its program name]
    #[arg(long, value_name = "NAME")]
    pub(crate) name_b: Option<String>,
    /// Rounds per scenario, each running A then B [default: 3, or 1 with --quick]
    #[arg(long)]
    pub(crate) rounds: Option<usize>,
    /// Scenarios to run, comma separated (see --list) [default: all]
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) scenarios: Vec<String>,
    /// Smoke run of about a minute: 1 round, a tenth of the messages, 1 s per run
    #[arg(long)]
    pub(crate) quick: bool,
    /// Messages per run for every scenario, overriding their own counts
    #[arg(long)]
    pub(crate) msgs: Option<u64>,
    /// Time cap per run [default: 5s, or 1s with --quick]
    #[arg(long, value_parser = parse::duration)]
    pub(crate) duration: Option<Duration>,
    /// Idle connections for the memory-per-connection scenario [default: 1000, or 100 with --quick]
    #[arg(long)]
    pub(crate) idle_conns: Option<u64>,
    /// Print the results as JSON instead of markdown
    #[arg(long)]
    pub(crate) json: bool,
    /// List the scenarios and exit
    #[arg(long)]
    pub(crate) list: bool,
}

/// The settings a comparison runs with, after defaults and `--quick`.
#[derive(Debug, Clone)]
struct Plan {
    /// Credentials and TLS settings from the command line, used with each started
    /// server's URL (so both servers can be compared over TLS or with auth).
    conn: ConnOpts,
    rounds: usize,
    duration: Duration,
    msgs: Option<u64>,
    idle_conns: u64,
    quick: bool,
}

impl Plan {
    fn new(args: &CompareArgs, conn: &ConnOpts) -> Plan {
        let quick = args.quick;
        Plan {
            conn: conn.clone(),
            rounds: args.rounds.unwrap_or(if quick { 1 } else { 3 }).max(1),
            duration: args
                .duration
                .unwrap_or(Duration::from_secs(if quick { 1 } else { 5 })),
            msgs: args.msgs,
            idle_conns: args.idle_conns.unwrap_or(if quick { 100 } else { 1000 }),
            quick,
        }
    }

    /// Messages for one run of `s`.
    fn msgs(&self, s: &Scenario) -> u64 {
        match (self.msgs, self.quick) {
            (Some(n), _) => n,
            (None, true) => (s.msgs / 10).max(100),
            (None, false) => s.msgs,
        }
    }

    /// The outer limit of one run: the benchmark's own phases are each capped at `duration`.
    fn run_timeout(&self) -> Duration {
        self.duration * 3 + Duration::from_secs(30)
    }
}

/// One side of the comparison: its label, command and (while it runs) process.
struct Contender {
    side: Side,
    name: String,
    template: String,
    server: Option<Server>,
    version: String,
}

impl Contender {
    async fn start(side: Side, name: Option<String>, template: String) -> anyhow::Result<Self> {
        let server = Server::start(&template)
            .await
            .with_context(|| format!("start server {side:?}"))?;
        Ok(Contender {
            side,
            name: name.unwrap_or_else(|| program_name(&template)),
            version: server.version.clone(),
            template,
            server: Some(server),
        })
    }

    /// The running server, restarted (with a note) if it died.
    async fn alive(&mut self, notes: &mut Vec<String>) -> Option<&Server> {
        let died = match self.server.as_mut() {
            Some(s) => s.exited(),
            None => Some("not running".into()),
        };
        if let Some(why) = died {
            notes.push(format!(
                "{:?} ({}) had exited ({why}); restarted it",
                self.side, self.name
            ));
            self.server = match Server::start(&self.template).await {
                Ok(s) => Some(s),
                Err(e) => {
                    notes.push(format!(
                        "{:?} ({}) could not be restarted: {e:#}",
                        self.side, self.name
                    ));
                    None
                }
            };
        }
        self.server.as_ref()
    }
}

/// Runs `rill bench compare`.
pub(crate) async fn run(args: &CompareArgs, conn: &ConnOpts) -> anyhow::Result<()> {
    if args.list {
        list();
        return Ok(());
    }
    let plan = Plan::new(args, conn);
    let scenarios = scenario::select(&args.scenarios)?;
    let template_a = args.server_a.clone().unwrap_or_else(default_a);
    server::check_program(&template_a)?;
    server::check_program(&args.server_b)?;
    let mut a = Contender::start(Side::A, args.name_a.clone(), template_a).await?;
    let mut b = Contender::start(Side::B, args.name_b.clone(), args.server_b.clone()).await?;
    let mut results = Results::default();
    let mut failed = HashSet::new();
    let total = scenarios.len() * plan.rounds * 2;
    let mut done = 0;
    for s in &scenarios {
        reserve_rows(&mut results, s);
        for round in 1..=plan.rounds {
            for who in [&mut a, &mut b] {
                done += 1;
                let line = run_one(who, s, &plan, &mut results, &mut failed).await;
                eprintln!(
                    "[{done}/{total}] {} round {round}/{} on {:?} ({}): {line}",
                    s.name, plan.rounds, who.side, who.name
                );
            }
        }
    }
    for who in [&a, &b] {
        if let Some(kib) = who.server.as_ref().and_then(|s| s.rss_kib(true).ok()) {
            results.push_memory("peak (VmHWM) at end", who.side, kib);
        }
    }
    if args.json {
        output::json(&json_summary(&a, &b, &plan, &results));
    } else {
        print!("{}", header(&a, &b, &plan));
        print!("{}", results.markdown((&a.name, &b.name)));
    }
    Ok(())
}

/// Runs one scenario on one server, records its numbers and memory, and returns a progress line.
async fn run_one(
    who: &mut Contender,
    s: &Scenario,
    plan: &Plan,
    results: &mut Results,
    failed: &mut HashSet<(&'static str, String)>,
) -> String {
    let side = who.side;
    let template = who.template.clone();
    let Some(server) = who.alive(&mut results.notes).await else {
        return "n/a (server not running)".into();
    };
    let outcome = match s.kind {
        Kind::IdleConns => idle(&template, plan).await.map(|(per_conn, rss)| {
            let key = (s.name, "KiB per idle conn");
            results.push(key, Unit::Kib, Better::Lower, side, per_conn);
            results.push_memory(&idle_label(plan, s), side, rss);
            format!("{per_conn:.1} KiB per connection")
        }),
        Kind::MqttIdle => {
            let deadline = Instant::now() + plan.run_timeout();
            let idle = mqtt::idle(&template, plan.idle_conns, deadline).await;
            idle.map(|(per_conn, rss)| {
                let key = (s.name, "KiB per idle conn");
                results.push(key, Unit::Kib, Better::Lower, side, per_conn);
                results.push_memory(&idle_label(plan, s), side, rss);
                format!("{per_conn:.1} KiB per connection")
            })
        }
        Kind::Streams { kv } => {
            let (n, cap, timeout) = (plan.msgs(s), plan.duration * 20, plan.run_timeout() * 20);
            let run = streams::run(&template, &plan.conn, kv, n, cap, timeout).await;
            run.map(|m| {
                record(results, s, side, &m.report);
                let per = if kv {
                    "KiB per bucket"
                } else {
                    "KiB per stream"
                };
                results.push(
                    (s.name, per),
                    Unit::Kib,
                    Better::Lower,
                    side,
                    m.kib_per_stream,
                );
                let threads = (s.name, "threads added");
                results.push(threads, Unit::Count, Better::Lower, side, m.threads_added);
                results.push_memory(
                    &format!("{} (fresh server, {n} created)", s.name),
                    side,
                    m.rss_kib,
                );
                format!(
                    "{}, {:.1} KiB each, {:.0} threads added",
                    summary(s, &m.report),
                    m.kib_per_stream,
                    m.threads_added
                )
            })
        }
        Kind::Restart { subjects } => {
            let limits = ((plan.msgs(s), s.size), plan.duration * 20);
            let run = restart::run(&template, &plan.conn, limits.0, subjects, limits.1);
            let timeout = plan.run_timeout() * 20;
            match tokio::time::timeout(timeout, run).await {
                Ok(run) => run.map(|m| record_restart(results, s, side, &m)),
                Err(_) => Err(anyhow::anyhow!("no result within {timeout:?}")),
            }
        }
        Kind::Mqtt { qos } => {
            let (msgs, cap, timeout) = (plan.msgs(s), plan.duration, plan.run_timeout());
            let run = mqtt::throughput(&template, s, qos, msgs, cap, timeout).await;
            record_measured(results, s, side, run)
        }
        Kind::ClusterJs { replicas, sync } => {
            let limits = (plan.msgs(s), plan.duration, plan.run_timeout());
            let shape = cluster::JsShape { replicas, sync };
            let run = cluster::js_publish(&template, &plan.conn, s, shape, limits).await;
            record_measured(results, s, side, run)
        }
        Kind::Cluster { subs, queue } => {
            let limits = (plan.msgs(s), plan.duration, plan.run_timeout());
            let shape = cluster::Shape { subs, queue };
            let run = cluster::throughput(&template, &plan.conn, s, shape, limits).await;
            record_measured(results, s, side, run)
        }
        _ => {
            let cpu_before = server.cpu_time().ok();
            let run = scenario_run(server, s, plan).await;
            let cpu = cpu_before.zip(server.cpu_time().ok()).map(|(b, a)| a - b);
            run.map(|report| {
                record(results, s, side, &report);
                record_cpu(results, s, side, &report, cpu);
                summary(s, &report)
            })
        }
    };
    if !s.kind.fresh_server()
        && let Ok(kib) = server.rss_kib(false)
    {
        results.push_memory(s.name, side, kib);
    }
    match outcome {
        Ok(line) => line,
        Err(e) => {
            let text = crate::error_text(&e);
            if failed.insert((s.name, format!("{side:?}"))) {
                results.notes.push(format!(
                    "{} on {side:?} ({}): n/a: {text}",
                    s.name, who.name
                ));
            }
            format!("failed: {text}")
        }
    }
}

/// Memory per idle connection, measured on a freshly started server of the same command (so garbage
/// left by earlier scenarios neither inflates nor hides the growth).
async fn idle(template: &str, plan: &Plan) -> anyhow::Result<(f64, u64)> {
    let fresh = Server::start(template).await?;
    let deadline = Instant::now() + plan.run_timeout();
    fresh.idle_conn_kib(plan.idle_conns, deadline).await
}

fn idle_label(plan: &Plan, s: &Scenario) -> String {
    format!("{} (fresh server, {} open)", s.name, plan.idle_conns)
}

async fn scenario_run(server: &Server, s: &Scenario, plan: &Plan) -> anyhow::Result<Report> {
    let target = Target::started(&server.url(), &plan.conn);
    let run = scenario::run(s, &target, plan.msgs(s), plan.duration);
    tokio::time::timeout(plan.run_timeout(), run)
        .await
        .with_context(|| format!("no result within {:?}", plan.run_timeout()))?
}

/// Label of the server CPU row.
const CPU: &str = "server CPU ns/msg";
/// Runs that used less server CPU than this (20 clock ticks) are too short to measure it to 10%.
const MIN_CPU: Duration = Duration::from_millis(200);

fn reserve_rows(results: &mut Results, s: &Scenario) {
    if matches!(s.kind, Kind::Restart { .. }) {
        for (metric, unit) in RESTART_ROWS {
            results.reserve((s.name, metric), unit, Better::Lower);
        }
        return;
    }
    if matches!(s.kind, Kind::IdleConns | Kind::MqttIdle) {
        results.reserve((s.name, "KiB per idle conn"), Unit::Kib, Better::Lower);
        return;
    }
    if let Kind::Streams { kv } = s.kind {
        for m in scenario::metrics(s.kind) {
            results.reserve((s.name, m.label), unit(m.field), m.better());
        }
        let per = if kv {
            "KiB per bucket"
        } else {
            "KiB per stream"
        };
        results.reserve((s.name, per), Unit::Kib, Better::Lower);
        results.reserve((s.name, "threads added"), Unit::Count, Better::Lower);
        return;
    }
    for m in scenario::metrics(s.kind) {
        results.reserve((s.name, m.label), unit(m.field), m.better());
    }
    results.reserve((s.name, CPU), Unit::Nanos, Better::Lower);
}

/// The rows of the restart scenario, in table order.
const RESTART_ROWS: [(&str, Unit); 7] = [
    (
        "restart after SIGKILL (spawn → stream answers)",
        Unit::Millis,
    ),
    (
        "restart after clean stop (spawn → stream answers)",
        Unit::Millis,
    ),
    ("clean stop (SIGTERM → exit)", Unit::Millis),
    ("clean stop of an empty server", Unit::Millis),
    ("RSS MiB after crash recovery", Unit::Mib),
    ("RSS MiB after clean restart", Unit::Mib),
    ("RSS MiB of the empty server", Unit::Mib),
];

/// Pushes the restart scenario's rows; returns the progress line.
fn record_restart(
    results: &mut Results,
    s: &Scenario,
    side: Side,
    m: &restart::Measured,
) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let values = [
        m.kill_restart_ms,
        m.clean_restart_ms,
        m.stop_ms,
        m.empty_stop_ms,
        mib(m.kill_kib),
        mib(m.clean_kib),
        mib(m.idle_kib),
    ];
    for ((metric, unit), v) in RESTART_ROWS.into_iter().zip(values) {
        results.push((s.name, metric), unit, Better::Lower, side, v);
    }
    if let Some(p) = m.fill.phase("pub")
        && (p.errors > 0 || m.stored < p.expected)
    {
        results.notes.push(format!(
            "{} on {side:?}: the fill stored {} of {} messages, {} errors",
            s.name, m.stored, p.expected, p.errors
        ));
    }
    format!(
        "{} stored; restart {:.1} ms after SIGKILL, {:.1} ms after a {:.1} ms clean stop; RSS {:.1} / {:.1} MiB",
        m.stored,
        m.kill_restart_ms,
        m.clean_restart_ms,
        m.stop_ms,
        mib(m.kill_kib),
        mib(m.clean_kib)
    )
}

/// Server CPU time (user + system) of the whole run, per message of its headline phase: the cost
/// of the work, which unlike rates hardly depends on what else the machine is doing. Not recorded
/// for runs shorter than [`MIN_CPU`].
fn record_cpu(
    results: &mut Results,
    s: &Scenario,
    side: Side,
    report: &Report,
    cpu: Option<Duration>,
) {
    let msgs = report
        .phase(scenario::headline_phase(s.kind))
        .map_or(0, |p| p.msgs);
    if let Some(cpu) = cpu
        && msgs > 0
        && cpu >= MIN_CPU
    {
        let ns = cpu.as_nanos() as f64 / msgs as f64;
        results.push((s.name, CPU), Unit::Nanos, Better::Lower, side, ns);
    }
}

fn unit(field: Field) -> Unit {
    match field {
        Field::Rate => Unit::PerSec,
        _ => Unit::Micros,
    }
}

/// Pushes the scenario's metrics; notes lost messages and errors.
/// Records a run measured with its servers' CPU time; the progress line.
fn record_measured(
    results: &mut Results,
    s: &Scenario,
    side: Side,
    run: anyhow::Result<(Report, Option<Duration>)>,
) -> anyhow::Result<String> {
    run.map(|(report, cpu)| {
        record(results, s, side, &report);
        record_cpu(results, s, side, &report, cpu);
        summary(s, &report)
    })
}

fn record(results: &mut Results, s: &Scenario, side: Side, report: &Report) {
    for m in scenario::metrics(s.kind) {
        if let Some(v) = m.value(report) {
            results.push((s.name, m.label), unit(m.field), m.better(), side, v);
        }
    }
    let sent = report.phase("pub").map_or(0, |p| p.msgs);
    if let Some(p) = report.phase(scenario::headline_phase(s.kind)) {
        let want = match s.kind {
            Kind::PubSub { subs, queue: false } | Kind::Cluster { subs, queue: false } => {
                sent * subs as u64
            }
            Kind::PubSub { .. } | Kind::Cluster { .. } | Kind::Mqtt { .. } => sent,
            _ => p.msgs,
        };
        if p.errors > 0 || p.msgs < want {
            results.notes.push(format!(
                "{} on {side:?}: {} of {want} messages arrived, {} errors",
                s.name, p.msgs, p.errors
            ));
        }
    }
}

/// The progress line of a finished run: its first metric.
fn summary(s: &Scenario, report: &Report) -> String {
    scenario::metrics(s.kind)
        .iter()
        .filter_map(|m| {
            let v = m.value(report)?;
            Some(match m.field {
                Field::Rate => format!("{} {}", thousands(v), m.label),
                _ => format!("{} {}", m.label.trim_end_matches(" µs"), micros(v)),
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn list() {
    let mut table = Table::new(&["Scenario", "Full run", "Description"]);
    for s in scenario::ALL {
        let count = match s.kind {
            Kind::IdleConns | Kind::MqttIdle => "1000 conns".to_string(),
            Kind::Streams { kv: false } => format!("{} streams", s.msgs),
            Kind::Streams { kv: true } => format!("{} buckets", s.msgs),
            _ => format!("{} msgs", s.msgs),
        };
        table.row(vec![s.name.to_string(), count, s.about.to_string()]);
    }
    table.print();
}

/// rill-server next to this rill binary if it is there, else from PATH.
fn default_a() -> String {
    let next_to_us = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("rill-server")))
        .filter(|p| p.is_file());
    let program = next_to_us.map_or("rill-server".to_string(), |p| p.display().to_string());
    format!("{program} -a 127.0.0.1 -p {{port}} -js -sd {{store}}")
}

/// The program's file name, as a default label.
fn program_name(template: &str) -> String {
    let program = template.split_whitespace().next().unwrap_or("server");
    program.rsplit('/').next().unwrap_or(program).to_string()
}

/// The context lines printed above the table.
fn header(a: &Contender, b: &Contender, plan: &Plan) -> String {
    let (cpus, cpu) = machine();
    let args: Vec<String> = std::env::args().collect();
    format!(
        "# rill bench compare\n\n- date: {}\n- machine: {cpus} CPUs, {cpu}\n- A: {} {}: `{}`\n- B: {} {}: `{}`\n- {} round(s) per scenario (A then B), time cap {:?} per run\n- command: `{}`\n\n",
        now(),
        a.name,
        a.version,
        a.template,
        b.name,
        b.version,
        b.template,
        plan.rounds,
        plan.duration,
        args.join(" "),
    )
}

fn json_summary(a: &Contender, b: &Contender, plan: &Plan, results: &Results) -> serde_json::Value {
    let (cpus, cpu) = machine();
    let side = |c: &Contender| json!({"name": c.name, "version": c.version, "cmd": c.template});
    json!({
        "date": now(),
        "machine": {"cpus": cpus, "cpu": cpu},
        "a": side(a),
        "b": side(b),
        "rounds": plan.rounds,
        "duration_secs": plan.duration.as_secs_f64(),
        "results": results,
    })
}

fn now() -> String {
    parse::rfc3339(time::OffsetDateTime::now_utc())
}

/// CPU count and model name (from /proc/cpuinfo where there is one).
fn machine() -> (usize, String) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    (cpus, model)
}
