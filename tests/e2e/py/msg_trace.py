# Message tracing (ADR-41) driven by nats-py with raw headers, against one server (argv:
# "single" URL) or two servers joined by a route (argv: "route" URL1 URL2). Prints one JSON
# object: for each case, the messages subscribers got (subject, headers) and the trace
# reports received, sorted by the reporting server's name. The Rust side redacts the
# volatile fields and compares rill with nats-server.
import asyncio
import json
import sys

import nats

MARK = "tr.mark"


async def connect(url, user, name):
    if user is None:
        return await nats.connect(url, name=name)
    return await nats.connect(url, user=user, password=user, name=name)


class Run:
    def __init__(self):
        self.reports = []
        self.marks = 0
        self.got = []

    async def on_report(self, m):
        if m.subject == MARK:
            self.marks += 1
        else:
            self.reports.append((m.subject, json.loads(m.data)))

    async def on_msg(self, m):
        self.got.append([m.subject, dict(m.headers or {})])

    async def wait(self, cond, timeout=5.0):
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not cond() and loop.time() < end:
            await asyncio.sleep(0.01)

    async def case(self, name, pub, subject, headers, expect, settle):
        """Publishes, waits for `expect` reports, then for a marker's report from the
        same publisher (reports of one server come in order) and flushes `settle`, so
        nothing of this case arrives later."""
        self.reports.clear()
        self.got.clear()
        await pub.publish(subject, b"hello", headers=headers)
        await pub.flush()
        await self.wait(lambda: len(self.reports) >= expect)
        marks = self.marks
        await pub.publish("nobody.mark", b"", headers={"Nats-Trace-Dest": MARK})
        await self.wait(lambda: self.marks > marks)
        for c in settle:
            await c.flush()
        reports = sorted(self.reports, key=lambda r: r[1]["server"]["name"])
        return {
            "case": name,
            "delivered": sorted(self.got),
            "reports": [{"subject": s, "report": r} for s, r in reports],
        }


async def single(url):
    run = Run()
    a = await connect(url, "a", "pubA")
    a2 = await connect(url, "a", "subA")
    b = await connect(url, "b", "subB")
    d = await connect(url, "deny", "denied")
    await a.subscribe("tr.>", cb=run.on_report)
    await a.subscribe("tp.dest", cb=run.on_report)
    await d.subscribe(MARK, cb=run.on_report)
    await a2.subscribe("core.x", cb=run.on_msg)
    await a2.subscribe("core.x", queue="q1", cb=run.on_msg)
    await a2.subscribe("amap.y", cb=run.on_msg)
    await b.subscribe("tick.>", cb=run.on_msg)
    await b.subscribe("tock.>", cb=run.on_msg)
    await b.subscribe("bsvc", cb=run.on_msg)
    for name, cfg in [("S", {"subjects": ["js.>"]}),
                      ("I", {"subjects": ["ijs.>"], "retention": "interest"})]:
        cfg["name"] = name
        await a.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(cfg).encode())
    for c in (a, a2, b, d):
        await c.flush()
    settle = (a, a2, b, d)
    dest = lambda s: {"Nats-Trace-Dest": s}
    only = lambda s: {"Nats-Trace-Dest": s, "Nats-Trace-Only": "true"}
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0"
    out = [
        await run.case("core", a, "core.x", dest("tr.core"), 1, settle),
        await run.case("core trace-only", a, "core.x", only("tr.only"), 1, settle),
        await run.case("no interest", a, "nobody", dest("tr.none"), 1, settle),
        await run.case("mapping", a, "amap.x", dest("tr.map"), 1, settle),
        await run.case("js", a, "js.1", dest("tr.js"), 1, settle),
        await run.case("js trace-only", a, "js.2", only("tr.jsonly"), 1, settle),
        await run.case("js interest", a, "ijs.1", dest("tr.ijs"), 1, settle),
        await run.case("stream export allowed", a, "tick.1", dest("tr.se"), 1, settle),
        await run.case("stream export not allowed", a, "tock.1", dest("tr.se2"), 1, settle),
        await run.case("service import not allowed", a, "bsvc", only("tr.si"), 1, settle),
        await run.case("traceparent sampled", a, "core.x", {"traceparent": parent + "1"}, 1, settle),
        await run.case("traceparent not sampled", a, "core.x", {"traceparent": parent + "0"}, 0, settle),
        await run.case("invalid destination", a, "core.x", dest("bad.*"), 0, settle),
        await run.case("invalid destination trace-only", a, "core.x", only("bad.*"), 0, settle),
    ]
    # The refused publish: its report comes, and the client is told.
    out.append(await run.case("publish refused", d, "deny.x", {"Nats-Trace-Dest": "tr.deny"}, 1, settle))
    stored = await a.request("$JS.API.STREAM.INFO.S", b"")
    out.append({"case": "stream S messages", "count": json.loads(stored.data)["state"]["messages"]})
    for c in (a, a2, b, d):
        await c.close()
    return out


async def route(url1, url2):
    run = Run()
    pub = await connect(url1, None, "pub1")
    sub = await connect(url2, None, "sub2")
    await pub.subscribe("tr.>", cb=run.on_report)
    await pub.subscribe(MARK, cb=run.on_report)
    await sub.subscribe("rt.x", cb=run.on_msg)
    await sub.subscribe("rt.x", queue="q", cb=run.on_msg)
    await sub.flush()
    # Interest crosses the route: a plain request through it answers once it has.
    async def ready(m):
        await m.respond(b"")

    await sub.subscribe("rt.ready", cb=ready)
    await sub.flush()
    for _ in range(100):
        try:
            await pub.request("rt.ready", b"", timeout=0.2)
            break
        except Exception:
            pass
    settle = (pub, sub)
    out = []
    for name, headers in [("route", {"Nats-Trace-Dest": "tr.r"}),
                          ("route trace-only", {"Nats-Trace-Dest": "tr.ro", "Nats-Trace-Only": "true"})]:
        out.append(await run.case(name, pub, "rt.x", headers, 2, settle))
    await pub.close()
    await sub.close()
    return out


async def main():
    if sys.argv[1] == "single":
        cases = await single(sys.argv[2])
    else:
        cases = await route(sys.argv[2], sys.argv[3])
    print(json.dumps(cases))


asyncio.run(main())
