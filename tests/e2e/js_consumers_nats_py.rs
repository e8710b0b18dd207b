//! nats-py pull, push and ordered consumers and KV watch against rill, compared line for
//! line with the same script against nats-server 2.15.1. Skipped when nats-py is missing.

use std::process::Command;

use rill_tests::{ServerKind, ServerOpts, TestServer};

const SCRIPT: &str = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(f"nats://127.0.0.1:{sys.argv[1]}")
    js = nc.jetstream()
    await js.add_stream(name="P", subjects=["p.>"])
    for i in range(10):
        await js.publish(f"p.{i}", f"m{i}".encode())
    sub = await js.pull_subscribe("p.>", durable="pd")
    msgs = await sub.fetch(4, timeout=2)
    for m in msgs:
        await m.ack_sync()
    print("pull", [m.data.decode() for m in msgs], msgs[0].metadata.sequence.stream, msgs[0].metadata.num_pending)
    msgs = await sub.fetch(10, timeout=1)
    print("pull2", len(msgs), msgs[-1].metadata.num_delivered)
    await msgs[0].nak()
    await msgs[1].term()
    await msgs[2].in_progress()
    await asyncio.sleep(0.2)
    again = await sub.fetch(1, timeout=1)
    print("nak", again[0].data.decode(), again[0].metadata.num_delivered)
    info = await js.consumer_info("P", "pd")
    print("info", info.delivered.stream_seq, info.ack_floor.stream_seq, info.num_ack_pending, info.num_pending, info.num_redelivered)
    got = []
    async def cb(m):
        got.append(m.data.decode())
        await m.ack()
    await js.subscribe("p.>", cb=cb, durable="push1", idle_heartbeat=1.0, flow_control=True)
    for _ in range(50):
        if len(got) == 10:
            break
        await asyncio.sleep(0.05)
    print("push", got)
    osub = await js.subscribe("p.>", ordered_consumer=True)
    seen = [(await osub.next_msg(timeout=2)).data.decode() for _ in range(10)]
    print("ordered", seen)
    kv = await js.create_key_value(bucket="b1")
    await kv.put("k1", b"v1")
    await kv.put("k2", b"v2")
    print("kv keys", sorted(await kv.keys()))
    w = await kv.watchall()
    e = await w.updates(timeout=2)
    print("watch", e.key, e.value.decode())
    names = await js.consumers_info("P")
    print("consumers", sorted(c.name for c in names if c.config.durable_name))
    await js.delete_consumer("P", "pd")
    print("deleted")
    await nc.close()
asyncio.run(main())
"#;

fn nats_py_available() -> bool {
    Command::new("python3")
        .args(["-c", "import nats"])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn run(kind: ServerKind) -> String {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let out = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &server.port().to_string()])
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{kind:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn nats_py_consumers_like_nats_server() {
    if !nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let want = run(ServerKind::Nats).await;
    let got = run(ServerKind::Rill).await;
    assert_eq!(got, want);
}
