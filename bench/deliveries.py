"""Signed GitHub deliveries POSTed at a steady rate over a few keep-alive connections,
with raw HTTP/1.1 on asyncio streams: a sender cheap enough that hundreds per second
cost the client a small share of a core.

``send(port, rate, seconds)`` returns, per stored event id, when its request left
and when its answer came (``time.monotonic()``, the clock every process of the
machine shares).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

SECRET = "bench-secret"
SLUG = "bench"
#: Requests in flight at most; a server slower than the rate falls behind schedule
#: (reported as the rate achieved) rather than being flooded.
CONNECTIONS = 32


def request(port: int, body: bytes, signature: str) -> bytes:
    return (
        f"POST /webhooks/{SLUG}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-GitHub-Event: push\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"X-Hub-Signature-256: {signature}\r\n\r\n"
    ).encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def send(
    port: int, rate: float, seconds: float
) -> tuple[dict[int, tuple[float, float]], int]:
    """POST ``rate * seconds`` deliveries; ((sent, answered) by stored event id, failures)."""
    body = json.dumps({"zen": "x" * 1200}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    total = int(rate * seconds)
    schedule: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        schedule.put_nowait(n)
    sent: dict[int, tuple[float, float]] = {}
    failures = 0
    start = time.monotonic() + 0.05

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not schedule.empty():
                n = schedule.get_nowait()
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                at = time.monotonic()
                writer.write(request(port, body, signature))
                status, content = await answer(reader)
                if status == 200:
                    sent[int(json.loads(content)["id"])] = (at, time.monotonic())
                else:
                    failures += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return sent, failures
