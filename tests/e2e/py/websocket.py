# nats-py over WebSocket (ws:// or wss://): pub/sub, headers, request/reply, no
# responders, queue groups and a payload larger than one TCP read, printed line by line
# so the same script's output can be compared between rill and nats-server.
# Usage: websocket.py <url> [ca.pem]
import asyncio
import ssl
import sys

import nats
from nats.errors import NoRespondersError


async def main(url, ca):
    tls = ssl.create_default_context(cafile=ca) if ca else None
    nc = await nats.connect(url, tls=tls, name="py-ws", allow_reconnect=False)
    print("connected", nc.connected_url.scheme)

    sub = await nc.subscribe("ws.greet")
    await nc.publish("ws.greet", b"hello")
    msg = await sub.next_msg(timeout=5)
    print("pubsub", msg.subject, msg.data.decode())

    await nc.publish("ws.greet", b"with headers", headers={"X-Trace": "t-1", "X-Unit": "kg"})
    msg = await sub.next_msg(timeout=5)
    print("headers", sorted(msg.headers.items()), msg.data.decode())

    async def echo(m):
        await m.respond(b"echo:" + m.data)

    await nc.subscribe("ws.echo", cb=echo)
    reply = await nc.request("ws.echo", b"ping", timeout=5)
    print("request", reply.data.decode())

    try:
        await nc.request("ws.nobody", b"", timeout=5)
        print("no responders: answered?")
    except NoRespondersError:
        print("no responders")

    got = []

    async def work(m):
        got.append(m.data)

    workers = [await nc.subscribe("ws.jobs", queue="w", cb=work) for _ in range(3)]
    for n in range(30):
        await nc.publish("ws.jobs", str(n).encode())
    await nc.flush()
    await asyncio.sleep(0.2)
    print("queue", len(got), "deliveries for 30 jobs")
    for w in workers:
        await w.unsubscribe()

    big = bytes(range(256)) * 3000
    big_sub = await nc.subscribe("ws.big")
    await nc.publish("ws.big", big)
    msg = await big_sub.next_msg(timeout=5)
    print("large", len(msg.data), msg.data == big)

    await nc.drain()
    print("done")


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
