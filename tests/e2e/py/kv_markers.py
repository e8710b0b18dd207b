"""A KV bucket with limit_marker_ttl and a max age, watched with nats-py.

Run by tests/e2e/js_features/markers.rs against rill and nats-server 2.15.1; prints one JSON
document of what the watcher saw (key, operation, value), what a get answers after the expiry
and the bucket's state once the marker itself expired.
"""
import asyncio
import json
import sys

import nats

PORT = int(sys.argv[1])


async def main():
    nc = await nats.connect(f"nats://127.0.0.1:{PORT}")
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="AGED", ttl=1, limit_marker_ttl=2)
    info = await js.stream_info("KV_AGED")
    watcher = await kv.watchall()
    seen = []
    first = await watcher.updates(timeout=5)
    seen.append({"initial": first})
    await kv.put("k", b"v")
    for _ in range(2):
        e = await watcher.updates(timeout=10)
        seen.append({"key": e.key, "op": e.operation or "PUT", "value": e.value.decode()})
    try:
        e = await kv.get("k")
        gone = {"op": e.operation, "value": e.value.decode() if e.value else None}
    except nats.js.errors.KeyNotFoundError as err:
        gone = type(err).__name__
    messages = None
    for _ in range(100):
        info = await js.stream_info("KV_AGED")
        messages = info.state.messages
        if messages == 0:
            break
        await asyncio.sleep(0.1)
    await watcher.stop()
    print(json.dumps({
        "config": {
            "allow_msg_ttl": info.config.allow_msg_ttl,
            "subject_delete_marker_ttl": info.config.subject_delete_marker_ttl,
            "max_age": info.config.max_age,
        },
        "watched": seen,
        "get_after_expiry": gone,
        "messages_after_marker_ttl": messages,
    }, indent=1))
    await nc.close()


asyncio.run(main())
