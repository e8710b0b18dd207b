# nats-py on an R3 KV bucket and object store, in two phases around a SIGKILL of the
# stream leaders (tests/e2e/js_cluster_kv.rs): `before <url>` makes them (replicas=3)
# and writes; `after <url>` reads what was written and writes more, on a survivor.
import asyncio, sys, time

import nats

DATA = bytes(range(256)) * 4099  # about 1 MiB, several chunks


async def retry(what, f):
    deadline = time.monotonic() + 20
    while True:
        try:
            return await f()
        except Exception as ex:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {ex!r}")
            await asyncio.sleep(0.2)


async def before(js):
    kv = await retry("kv create", lambda: js.create_key_value(bucket="pycfg", history=5, replicas=3))
    await kv.put("k", b"1")
    await kv.put("k", b"2")
    print("kv before", (await kv.get("k")).value)
    obs = await retry("obj create", lambda: js.create_object_store("pyfiles", replicas=3))
    info = await obs.put("big", DATA)
    print("obj before", info.size)


async def after(js):
    kv = await retry("kv bind", lambda: js.key_value("pycfg"))
    print("kv after", (await retry("kv get", lambda: kv.get("k"))).value)
    await retry("kv put", lambda: kv.put("k", b"3"))
    print("kv hist", [h.value for h in await retry("kv history", lambda: kv.history("k"))])
    obs = await retry("obj bind", lambda: js.object_store("pyfiles"))
    got = await retry("obj get", lambda: obs.get("big"))
    print("obj after", got.data == DATA)
    await retry("obj put", lambda: obs.put("small", b"tiny"))
    print("obj small", (await retry("obj get", lambda: obs.get("small"))).data)


async def main():
    nc = await nats.connect(sys.argv[2])
    js = nc.jetstream(timeout=5)
    await (before(js) if sys.argv[1] == "before" else after(js))
    await nc.close()


asyncio.run(main())
