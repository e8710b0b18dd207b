"""Priority groups on pull consumers (ADR-42), driven over the raw $JS API with nats-py.

Run by tests/e2e/js_priority.rs against rill and against nats-server; prints one JSON document
of what each step saw, with pin ids and advisory ids replaced by stable names.
"""
import asyncio
import json
import sys

import nats

PORT = int(sys.argv[1])
MS = 1_000_000
seen = []
pins = {}


def pin_name(pin):
    if pin is None:
        return None
    return pins.setdefault(pin, f"PIN{len(pins) + 1}")


def headers(m):
    h = dict(m.headers or {})
    keep = {}
    for k in ("Status", "Description", "Nats-Pending-Messages", "Nats-Pending-Bytes"):
        if k in h:
            keep[k] = h[k]
    if "Nats-Pin-Id" in h:
        keep["Nats-Pin-Id"] = pin_name(h["Nats-Pin-Id"])
    return keep


async def main():
    nc = await nats.connect(f"nats://127.0.0.1:{PORT}")
    advisories = []

    async def on_advisory(m):
        a = json.loads(m.data)
        advisories.append({"subject": m.subject, "type": a["type"], "account": a.get("account"),
                           "group": a.get("group"), "reason": a.get("reason"),
                           "pinned_id": pin_name(a.get("pinned_id"))})

    await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PINNED.>", cb=on_advisory)
    await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.>", cb=on_advisory)

    async def api(subject, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = json.loads((await nc.request(subject, data, timeout=5)).data)
        return {k: r[k] for k in ("type", "error") if k in r}

    async def send_pull(consumer, body):
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.S.{consumer}", json.dumps(body).encode(), reply=inbox)
        return sub

    async def collect(sub, batch, wait=1.5):
        got = []
        try:
            while len([g for g in got if "Status" not in g[1]]) < batch:
                m = await sub.next_msg(timeout=wait)
                got.append([m.data.decode(), headers(m)])
                if m.headers and "Status" in m.headers:
                    break
        except nats.errors.TimeoutError:
            pass
        await sub.unsubscribe()
        return got

    async def pull(label, consumer, body):
        body = {"batch": 1, "expires": 500 * MS, **body}
        got = await collect(await send_pull(consumer, body), body["batch"])
        if body.get("id") in pins:
            body["id"] = pins[body["id"]]
        seen.append([label, body, got])

    async def info(label, consumer):
        r = json.loads((await nc.request(f"$JS.API.CONSUMER.INFO.S.{consumer}", b"", timeout=5)).data)
        groups = [{"group": g["group"], "pinned": pin_name(g.get("pinned_client_id")),
                   "pinned_ts_zero": g.get("pinned_ts", "").startswith("0001-")}
                  for g in r.get("priority_groups") or []]
        seen.append([label, groups, r["config"].get("priority_policy")])

    await api("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    for i in range(8):
        await nc.request("s.x", f"m{i}".encode(), timeout=5)

    async def create(name, **cfg):
        body = {"stream_name": "S", "config": {"durable_name": name, "ack_policy": "explicit", **cfg}}
        seen.append([f"create {name}", await api(f"$JS.API.CONSUMER.CREATE.S.{name}", body)])

    # pinned_client
    await create("P", priority_groups=["A"], priority_policy="pinned_client", priority_timeout=1000 * MS)
    await info("P before", "P")
    await pull("no group", "P", {})
    await pull("unknown group", "P", {"group": "B"})
    await pull("min_pending on pinned", "P", {"group": "A", "min_pending": 1})
    await pull("first is pinned", "P", {"group": "A", "batch": 2})
    pin = next(p for p, n in pins.items() if n == "PIN1")
    await pull("the pinned client", "P", {"group": "A", "id": pin})
    await pull("another client waits", "P", {"group": "A"})
    await pull("another id", "P", {"group": "A", "id": "bogus"})
    await info("P pinned", "P")
    seen.append(["unpin unknown group", await api("$JS.API.CONSUMER.UNPIN.S.P", {"group": "B"})])
    seen.append(["unpin without body", await api("$JS.API.CONSUMER.UNPIN.S.P", b"")])
    seen.append(["unpin missing consumer", await api("$JS.API.CONSUMER.UNPIN.S.ZZ", {"group": "A"})])
    seen.append(["unpin", await api("$JS.API.CONSUMER.UNPIN.S.P", {"group": "A"})])
    await info("P unpinned", "P")
    await pull("old pin after unpin", "P", {"group": "A", "id": pin})
    await pull("next client pinned", "P", {"group": "A"})
    await asyncio.sleep(1.6)
    await info("P after its timeout", "P")
    await pull("after the timeout", "P", {"group": "A"})

    # overflow
    await create("O", priority_groups=["A"], priority_policy="overflow")
    await pull("min_pending above pending", "O", {"group": "A", "min_pending": 100})
    await pull("min_pending reached", "O", {"group": "A", "min_pending": 3})
    await pull("min_ack_pending above", "O", {"group": "A", "min_ack_pending": 5})
    await pull("min_ack_pending reached", "O", {"group": "A", "min_ack_pending": 1})
    await pull("both, one reached", "O", {"group": "A", "min_pending": 100, "min_ack_pending": 1})
    await pull("plain", "O", {"group": "A"})
    await pull("id on overflow", "O", {"group": "A", "id": "x"})
    await pull("priority on overflow", "O", {"group": "A", "priority": 3})
    seen.append(["unpin overflow", await api("$JS.API.CONSUMER.UNPIN.S.O", {"group": "A"})])
    await info("O", "O")

    # prioritized
    await create("R", priority_groups=["A"], priority_policy="prioritized")
    await pull("priority 10", "R", {"group": "A", "priority": 10})
    await pull("priority -1", "R", {"group": "A", "priority": -1})
    await pull("id on prioritized", "R", {"group": "A", "id": "x"})
    await create("R2", priority_groups=["A"], priority_policy="prioritized", filter_subject="s.late")
    low = await send_pull("R2", {"batch": 2, "expires": 1500 * MS, "group": "A", "priority": 5})
    high = await send_pull("R2", {"batch": 2, "expires": 1500 * MS, "group": "A", "priority": 1})
    await nc.flush()
    await asyncio.sleep(0.2)
    for i in range(3):
        await nc.request("s.late", f"late{i}".encode(), timeout=5)
    seen.append(["priority 1 first", await collect(high, 2), "then priority 5", await collect(low, 2)])

    # no policy: group and priority are ignored
    await create("N")
    await pull("group on none", "N", {"group": "A"})
    await pull("priority on none", "N", {"priority": 1})
    await info("N", "N")

    await nc.flush()
    await asyncio.sleep(0.3)
    await nc.close()
    print(json.dumps({"steps": seen, "advisories": advisories}, sort_keys=True))


asyncio.run(main())
