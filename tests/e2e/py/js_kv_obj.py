# nats-py against a rill server: streams, dedupe, KV and object store, unchanged client code.
import asyncio, os, sys

import nats


async def main():
    nc = await nats.connect(f"nats://127.0.0.1:{sys.argv[1]}")
    js = nc.jetstream()
    await js.add_stream(name="ORD", subjects=["ord.>"])
    ack = await js.publish("ord.1", b"hi", headers={"Nats-Msg-Id": "a"})
    dup = await js.publish("ord.1", b"hi", headers={"Nats-Msg-Id": "a"})
    print("ack", ack.seq, dup.duplicate)
    print("msgs", (await js.stream_info("ORD")).state.messages)
    print("get", (await js.get_msg("ORD", 1)).data)
    kv = await js.create_key_value(bucket="cfg", history=3)
    r = await kv.put("a", b"1")
    await kv.update("a", b"2", last=r)
    e = await kv.get("a")
    print("kv", e.value, e.revision)
    await kv.create("b", b"x")
    await kv.delete("b")
    print("keys", sorted(await kv.keys()))
    print("hist", [h.value for h in await kv.history("a")])
    await kv.purge("a")
    try:
        await kv.get("a")
        print("purge failed")
    except Exception as ex:
        print("purged", type(ex).__name__)
    obs = await js.create_object_store("files")
    data = os.urandom(3 * 1024 * 1024 + 11)
    info = await obs.put("big", data)
    print("obj put", info.size, info.chunks)
    print("obj get", (await obs.get("big")).data == data)
    print("obj list", [o.name for o in await obs.list()])
    await obs.delete("big")
    print("done")


asyncio.run(main())
