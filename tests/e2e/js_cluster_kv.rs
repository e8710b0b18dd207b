//! KV and object store on R3 buckets (issue 20): async-nats and nats-py make buckets
//! with three replicas, write, and after the buckets' stream leader is killed with
//! SIGKILL read everything back, write more, see the history and watch, from a
//! surviving server. Three nats-server 2.15.1 and three rill servers (one test each, to
//! stay under a minute) must give the same answers ([`check`]).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, object_store};
use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, Node, api};
use tokio::io::AsyncReadExt;

use crate::js_cluster::stream_leader;
use crate::js_nats_py::nats_py_available;

const PY: &str = include_str!("py/kv_r3.py");

/// Runs `f` until it succeeds (at most [`ELECTION`]): the cluster settles, a leader is
/// elected.
async fn retry<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + ELECTION;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), f()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(e)) if Instant::now() > deadline => panic!("{what}: {e:?}"),
            Err(_) if Instant::now() > deadline => panic!("{what}: timed out"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Moves the leadership of `stream` to `server` (a stepdown naming it) and waits for it.
async fn lead_on(cluster: &Cluster, stream: &str, server: &str) {
    let client = cluster.node(0).client().await;
    let body = format!(r#"{{"placement":{{"preferred":"{server}"}}}}"#);
    let deadline = Instant::now() + ELECTION;
    while stream_leader(cluster, stream).await != server {
        let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}");
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(subject, body.clone().into()),
        )
        .await;
        assert!(
            Instant::now() < deadline,
            "{stream} never moved to {server}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn python(phase: &str, node: &Node) -> String {
    let out = tokio::process::Command::new("python3")
        .args(["-c", PY, phase, &node.url()])
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{phase}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What one kind of server answered.
#[derive(Debug, PartialEq)]
struct Seen {
    replicas: u64,
    get: Option<Bytes>,
    history: Vec<Bytes>,
    watched: Vec<Bytes>,
    object: bool,
    small: Vec<u8>,
    py: Option<(String, String)>,
}

async fn buckets_on(kind: ServerKind) -> Seen {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    let n1 = cluster.node(0).client().await;
    let js = jetstream::new(n1.clone());
    let kv_config = kv::Config {
        bucket: "cfg".into(),
        history: 5,
        num_replicas: 3,
        ..Default::default()
    };
    let store = retry("kv create", || js.create_key_value(kv_config.clone())).await;
    store.put("k", "v1".into()).await.expect("put");
    store.put("k", "v2".into()).await.expect("put");
    let obj_config = object_store::Config {
        bucket: "files".into(),
        num_replicas: 3,
        ..Default::default()
    };
    let files = retry("object store create", || {
        js.create_object_store(obj_config.clone())
    })
    .await;
    let data: Vec<u8> = (0..1_100_000u32).map(|i| (i % 251) as u8).collect();
    files
        .put("big", &mut data.as_slice())
        .await
        .expect("object put");
    let py = nats_py_available();
    let py_before = if py {
        Some(python("before", cluster.node(0)).await)
    } else {
        None
    };
    let info = api(&n1, "$JS.API.STREAM.INFO.KV_cfg", "").await;
    let replicas = info["config"]["num_replicas"].as_u64().unwrap_or_default();

    // Every bucket's stream led by one server, which then dies.
    let victim = stream_leader(&cluster, "KV_cfg").await;
    let mut streams = vec!["OBJ_files"];
    if py {
        streams.extend(["KV_pycfg", "OBJ_pyfiles"]);
    }
    for s in streams {
        lead_on(&cluster, s, &victim).await;
    }
    let i = cluster
        .nodes
        .iter()
        .position(|n| n.name() == victim)
        .expect("a node");
    let survivor = cluster.node((i + 1) % 3).client().await;
    let sjs = jetstream::new(survivor.clone());
    let store = retry("kv bind", || sjs.get_key_value("cfg")).await;
    cluster.nodes[i].kill();

    let get = retry("kv get", || store.get("k")).await;
    retry("kv put", || store.put("k", "v3".into())).await;
    let history: Vec<Bytes> = retry("kv history", || async {
        let entries: Vec<_> = store.history("k").await?.collect().await;
        Ok::<_, async_nats::Error>(
            entries
                .into_iter()
                .filter_map(Result::ok)
                .map(|e| e.value)
                .collect(),
        )
    })
    .await;
    // A watch made after the failover sees the latest value, then a new one.
    let mut watch = retry("kv watch", || store.watch_with_history("k")).await;
    let mut watched = Vec::new();
    let deadline = Instant::now() + ELECTION;
    while watched.len() < 2 && Instant::now() < deadline {
        if let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(1), watch.next()).await {
            watched.push(e.value);
            if watched.len() == 1 {
                retry("kv put", || store.put("k", "v4".into())).await;
            }
        }
    }
    let files = retry("object bind", || sjs.get_object_store("files")).await;
    let object = retry("object get", || async {
        let mut got = Vec::new();
        files.get("big").await?.read_to_end(&mut got).await?;
        Ok::<_, async_nats::Error>(got == data)
    })
    .await;
    retry("object put", || async {
        let mut tiny: &[u8] = b"tiny";
        files.put("small", &mut tiny).await
    })
    .await;
    let small = retry("object get small", || async {
        let mut got = Vec::new();
        files.get("small").await?.read_to_end(&mut got).await?;
        Ok::<_, async_nats::Error>(got)
    })
    .await;
    let py = match py_before {
        Some(before) => Some((before, python("after", cluster.node((i + 1) % 3)).await)),
        None => None,
    };
    Seen {
        replicas,
        get,
        history,
        watched,
        object,
        small,
        py,
    }
}

/// What both kinds answer (the nats-py part when nats-py is installed).
fn check(kind: ServerKind, seen: &Seen) {
    assert_eq!(seen.replicas, 3, "{kind:?}: {seen:?}");
    assert_eq!(
        seen.get.as_deref(),
        Some(b"v2".as_slice()),
        "{kind:?}: {seen:?}"
    );
    assert_eq!(seen.history, ["v1", "v2", "v3"], "{kind:?}: {seen:?}");
    assert_eq!(seen.watched, ["v3", "v4"], "{kind:?}: {seen:?}");
    assert!(seen.object, "{kind:?}: {seen:?}");
    assert_eq!(seen.small, b"tiny", "{kind:?}: {seen:?}");
    if let Some((before, after)) = &seen.py {
        assert_eq!(before, "kv before b'2'\nobj before 1049344\n", "{kind:?}");
        let want = "kv after b'2'\nkv hist [b'1', b'2', b'3']\nobj after True\nobj small b'tiny'\n";
        assert_eq!(after, want, "{kind:?}");
    }
}

#[tokio::test]
async fn r3_kv_and_object_store_survive_their_leader_on_nats_server() {
    check(Nats, &buckets_on(Nats).await);
}

#[tokio::test]
async fn r3_kv_and_object_store_survive_their_leader_on_rill_as_on_nats_server() {
    check(Rill, &buckets_on(Rill).await);
}
