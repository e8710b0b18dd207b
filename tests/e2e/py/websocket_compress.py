# A permessage-deflate client (aiohttp, compress=15) speaking the NATS protocol by hand:
# prints what was negotiated and checks that compressed messages flow both ways.
# Usage: websocket_compress.py <url>
import asyncio
import json
import sys

import aiohttp


async def read_until(ws, marker):
    seen = b""
    while marker not in seen:
        m = await ws.receive(timeout=5)
        if m.type != aiohttp.WSMsgType.BINARY:
            raise RuntimeError(f"unexpected {m.type}")
        seen += m.data
    return seen


async def main(url):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, compress=15) as ws:
            print("negotiated", ws.compress, "client_no_context_takeover", ws.client_notakeover)
            info = json.loads((await read_until(ws, b"\r\n")).split(b" ", 1)[1])
            print("info", info["port"] > 0, info["headers"])
            await ws.send_bytes(b'CONNECT {"verbose":false,"headers":true}\r\nSUB dash.temp 1\r\nPING\r\n')
            await read_until(ws, b"PONG\r\n")
            payload = b'{"sensor":"t1","celsius":21.5}' * 2000
            # Three messages in three compressed frames, each decompressed on its own.
            for _ in range(3):
                await ws.send_bytes(b"PUB dash.temp %d\r\n%s\r\n" % (len(payload), payload))
            await ws.send_bytes(b"PING\r\n")
            data = await read_until(ws, b"PONG\r\n")
            print("received", data.count(b"MSG dash.temp 1 %d\r\n" % len(payload)), "messages of", len(payload), "bytes")
            print("intact", data.count(payload) == 3)
            await ws.close()
            print("closed", ws.close_code)


asyncio.run(main(sys.argv[1]))
