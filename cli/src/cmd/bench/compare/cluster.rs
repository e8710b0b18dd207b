//! The cluster scenarios of `rill bench compare`. Each run starts three fresh servers of the
//! side's own command, routed into one cluster through a block added with `-c` (`server_name`
//! and `cluster { name, listen, routes }`: n1 is the seed, n2 and n3 route to it and gossip
//! completes the mesh), waits until every server's INFO lists the three client URLs, then runs
//! `rill bench pubsub` with the publisher on n1 and the subscribers on n2 and n3 in turn, so
//! every message crosses a route. Servers of a cluster prefer local queue members, so the
//! queue scenario keeps the group off n1: otherwise n1's member would get every message. The
//! CPU row adds up the three servers' CPU time.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use bytes::Bytes;

use super::super::core::{self, PubSubArgs};
use super::super::js::{self, JsPubArgs, Storage, StreamOpts};
use super::super::report::Report;
use super::super::run::{Common, Target};
use super::scenario::Scenario;
use super::server::{Server, free_port};
use crate::connect::ConnOpts;

/// Servers in a cluster.
const NODES: usize = 3;
/// How long the routes may take to form a full mesh.
const MESH_TIMEOUT: Duration = Duration::from_secs(20);

/// The `-c` block of node `i` (0-based) whose route port is `ports[i]`: n1 is the seed the
/// others route to, or, with `mesh`, every node routes to every other (a JetStream cluster
/// of nats-server refuses to start without configured routes).
fn node_conf(i: usize, ports: &[u16], mesh: bool) -> String {
    let to = |p: &u16| format!("\"nats-route://127.0.0.1:{p}\"");
    let targets: Vec<String> = match (i, mesh) {
        (_, true) => ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| to(p))
            .collect(),
        (0, false) => Vec::new(),
        (_, false) => vec![to(&ports[0])],
    };
    let routes = match targets.is_empty() {
        true => String::new(),
        false => format!("  routes: [{}]\n", targets.join(", ")),
    };
    format!(
        "server_name: bench-n{}\ncluster {{\n  name: rill-bench\n  listen: \"127.0.0.1:{}\"\n{routes}}}\n",
        i + 1,
        ports[i]
    )
}

/// Attempts at starting a cluster: its route ports are picked before the servers bind them
/// (each server must know the others'), so another process may take one meanwhile.
const START_ATTEMPTS: usize = 3;

/// Three fresh servers of `template` in one cluster, once every one sees the others. A
/// node that exits while starting (a route port taken in the meantime) costs one more
/// attempt with new ports.
pub(super) async fn start(template: &str, mesh: bool) -> anyhow::Result<Vec<Server>> {
    let mut attempt = 1;
    loop {
        match start_nodes(template, mesh).await {
            Err(e) if attempt < START_ATTEMPTS => {
                eprintln!("cluster start attempt {attempt} failed, retrying: {e:#}");
                attempt += 1;
            }
            started => return started,
        }
    }
}

/// [`start`]'s one attempt.
async fn start_nodes(template: &str, mesh: bool) -> anyhow::Result<Vec<Server>> {
    let ports = (0..NODES)
        .map(|_| free_port())
        .collect::<anyhow::Result<Vec<u16>>>()?;
    let mut servers = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let server = Server::start_with_conf(template, Some(&node_conf(i, &ports, mesh)))
            .await
            .with_context(|| format!("start cluster node n{}", i + 1))?;
        servers.push(server);
    }
    let deadline = Instant::now() + MESH_TIMEOUT;
    for (i, server) in servers.iter().enumerate() {
        loop {
            let urls = server.info().await.map_or(0, |info| {
                info["connect_urls"].as_array().map_or(0, Vec::len)
            });
            if urls >= NODES {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "n{} lists {urls} of {NODES} servers after {MESH_TIMEOUT:?}",
                    i + 1
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(servers)
}

/// The CPU time the servers used so far, added up.
fn cpu(servers: &[Server]) -> Option<Duration> {
    servers.iter().map(|s| s.cpu_time().ok()).sum()
}

/// Runs `bench` within `timeout`: its report and the CPU time `servers` used meanwhile.
async fn measured(
    servers: &[Server],
    timeout: Duration,
    bench: impl Future<Output = anyhow::Result<Report>>,
) -> anyhow::Result<(Report, Option<Duration>)> {
    let before = cpu(servers);
    let report = tokio::time::timeout(timeout, bench)
        .await
        .with_context(|| format!("no result within {timeout:?}"))??;
    let used = before.zip(cpu(servers)).map(|(b, a)| a - b);
    Ok((report, used))
}

/// What one cluster run does: `subs` subscribers (in one queue group with `queue`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) subs: usize,
    pub(super) queue: bool,
}

/// One publisher on n1 and `shape`'s subscribers on n2 and n3 of a fresh cluster: the
/// report and the servers' CPU time for the run.
pub(super) async fn throughput(
    template: &str,
    conn: &ConnOpts,
    s: &Scenario,
    shape: Shape,
    (msgs, duration, timeout): (u64, Duration, Duration),
) -> anyhow::Result<(Report, Option<Duration>)> {
    let servers = start(template, false).await?;
    let target = Target::started(&servers[0].url(), conn);
    let args = PubSubArgs {
        subject: "rill.bench".into(),
        pubs: 1,
        subs: shape.subs,
        queue: shape.queue.then(|| "rill-bench".to_string()),
        sub_servers: servers[1..].iter().map(Server::url).collect(),
        common: Common::quiet(msgs, s.size, duration),
    };
    measured(&servers, timeout, core::pubsub(&target, &args)).await
}

/// What one JetStream cluster run does: publish to a stream of `replicas`, each publish
/// waiting for its ack (`sync`) or 256 in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct JsShape {
    pub(super) replicas: u32,
    pub(super) sync: bool,
}

/// One publisher on n1 of a fresh JetStream cluster (once its meta group has a leader),
/// publishing to a new file stream of `shape.replicas`: the report and the servers' CPU
/// time for the run.
pub(super) async fn js_publish(
    template: &str,
    conn: &ConnOpts,
    s: &Scenario,
    shape: JsShape,
    (msgs, duration, timeout): (u64, Duration, Duration),
) -> anyhow::Result<(Report, Option<Duration>)> {
    let servers = start(template, true).await?;
    let target = Target::started(&servers[0].url(), conn);
    jetstream_ready(&target).await?;
    let args = JsPubArgs {
        stream: StreamOpts {
            stream: "benchcluster".into(),
            subject: "rill.bench.cluster".into(),
            storage: Storage::File,
            replace: true,
            keep: false,
            subjects: 1,
            replicas: shape.replicas,
        },
        sync: shape.sync,
        window: 256,
        pubs: 1,
        common: Common::quiet(msgs, s.size, duration),
    };
    measured(&servers, timeout, js::run(&target, &js::JsCmd::Pub(args))).await
}

/// Waits until the meta group has a leader that places streams: a memory stream created
/// on n1 (and deleted again) is the proof; until then a create answers 503 (10008,
/// JetStream temporarily unavailable) or nothing.
async fn jetstream_ready(target: &Target) -> anyhow::Result<()> {
    const PROBE: &str = "benchcluster-probe";
    let client = target.connect().await?;
    let config =
        serde_json::json!({"name": PROBE, "subjects": ["rill.bench.probe"], "storage": "memory"});
    let deadline = Instant::now() + MESH_TIMEOUT;
    loop {
        let body = Bytes::from(config.to_string());
        let ask = client.request(format!("$JS.API.STREAM.CREATE.{PROBE}"), body);
        let answer = tokio::time::timeout(Duration::from_secs(2), ask).await;
        let ready = answer.is_ok_and(|a| {
            a.is_ok_and(|m| {
                serde_json::from_slice::<serde_json::Value>(&m.payload)
                    .is_ok_and(|v| v.get("error").is_none())
            })
        });
        if ready {
            let delete = client.request(format!("$JS.API.STREAM.DELETE.{PROBE}"), Bytes::new());
            delete.await.context("delete the probe stream")?;
            return Ok(());
        }
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("JetStream not ready on n1 after {MESH_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_a_mesh_every_node_routes_to_the_others() {
        let conf = node_conf(1, &[7001, 7002, 7003], true);
        assert!(
            conf.contains(
                "routes: [\"nats-route://127.0.0.1:7001\", \"nats-route://127.0.0.1:7003\"]"
            ),
            "{conf}"
        );
    }

    #[test]
    fn the_seed_has_no_routes_and_the_others_route_to_it() {
        let ports = [7001, 7002, 7003];
        assert_eq!(
            node_conf(0, &ports, false),
            "server_name: bench-n1\ncluster {\n  name: rill-bench\n  listen: \"127.0.0.1:7001\"\n}\n"
        );
        assert_eq!(
            node_conf(2, &ports, false),
            "server_name: bench-n3\ncluster {\n  name: rill-bench\n  listen: \"127.0.0.1:7003\"\n  routes: [\"nats-route://127.0.0.1:7001\"]\n}\n"
        );
    }
}
