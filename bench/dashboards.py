"""Dashboards for the fan-out benchmark: raw-socket WebSocket clients, a few hundred
per process, so that the load client is never what gets measured.

Each process speaks just enough RFC 6455 to be a live page that only listens: the
handshake with the staff session's cookie and an Origin, unmasked server frames
in, pongs and ``resume`` (masked) out. Every socket of a process receives the same
frames, so a frame's event ids are parsed once per process and looked up after.

Run by :class:`Fleet` (the parent side) as ``python -m bench.dashboards``; it talks
JSON lines: one on stdout when its sockets are in, and, told the ids sent and when,
one with each socket's latencies and losses.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.cpu import cpu_seconds

#: Sockets per process: one process reads a few hundred without running out of CPU.
PER_PROCESS = 250
#: Parsed frames kept per process (every socket gets the same ones, close together).
PARSED_FRAMES = 512
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 1, 8, 9, 10
#: Longest a socket may take from connecting to its snapshot before it counts as refused.
READY_SECONDS = 30.0
#: How long after the last delivery a frame may still arrive and count as pushed live.
SETTLE_SECONDS = 10.0


class Socket(asyncio.Protocol):
    """One dashboard: hello, snapshot, then the hub's frames."""

    def __init__(self, request: bytes, parsed: dict[bytes, list[tuple[str, Any]]]):
        self.request = request
        self.parsed = parsed
        self.buffer = bytearray()
        self.handshaken = False
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.seen: dict[int, float] = {}  # event id → when it arrived (monotonic)
        self.resumed: list[int] = []
        self.resume_done: asyncio.Future[bool] | None = None
        self.close_code: int | None = None
        self.status = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(self.status or "closed"))
        if self.resume_done is not None and not self.resume_done.done():
            self.resume_done.set_exception(ConnectionError("closed during resume"))
        if self.close_code is None:
            self.close_code = 1006

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.handshaken:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            self.status = head.split(b"\r\n", 1)[0].decode("latin-1")
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.transport.close()  # type: ignore[union-attr]
                return
            self.handshaken = True
        buffer = self.buffer
        at = 0
        while len(buffer) - at >= 2:
            opcode = buffer[at] & 0x0F
            length = buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if len(buffer) - at < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, at + 2)
                start = at + 4
            elif length == 127:
                if len(buffer) - at < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, at + 2)
                start = at + 10
            if len(buffer) < start + length:
                break
            payload = bytes(buffer[start : start + length])
            at = start + length
            self.frame(opcode, payload, now)
        del buffer[:at]

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == OP_TEXT:
            messages = self.parsed.get(payload)
            if messages is None:
                messages = self.parsed[payload] = summarise(json.loads(payload))
                if len(self.parsed) > PARSED_FRAMES:
                    del self.parsed[next(iter(self.parsed))]
            for kind, value in messages:
                if kind == "event.received":
                    self.seen.setdefault(value, now)
                elif kind == "snapshot" and not self.ready.done():
                    self.ready.set_result(True)
                elif kind == "resumed":
                    events, complete = value
                    self.resumed += events
                    if self.resume_done is not None and not self.resume_done.done():
                        self.resume_done.set_result(complete)
        elif opcode == OP_PING:
            self.send(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
            self.transport.close()  # type: ignore[union-attr]

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload))
        else:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(payload))
        self.transport.write(head + mask + masked)  # type: ignore[union-attr]

    async def resume(self, after_id: int) -> None:
        """Ask for everything above ``after_id``, as a page does after a gap."""
        while True:
            self.resume_done = asyncio.get_running_loop().create_future()
            self.send(
                OP_TEXT, json.dumps({"type": "resume", "after_id": after_id}).encode()
            )
            complete = await asyncio.wait_for(self.resume_done, 60)
            if complete or not self.resumed:
                return
            after_id = max(self.resumed)


def summarise(message: dict[str, Any]) -> list[tuple[str, Any]]:
    """What a frame says that the benchmark needs: event ids, snapshot, resumed."""
    inner = message["messages"] if message.get("type") == "batch" else [message]
    out: list[tuple[str, Any]] = []
    for item in inner:
        kind = item.get("type")
        if kind == "event.received":
            out.append((kind, item["event"]["id"]))
        elif kind == "snapshot":
            out.append((kind, None))
        elif kind == "resumed":
            out.append((kind, ([e["id"] for e in item["events"]], item["complete"])))
    return out


def handshake(port: int, session: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws/webhooks/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://127.0.0.1:{port}\r\nCookie: sessionid={session}\r\n\r\n"
    ).encode()


async def open_sockets(
    port: int, session: str, count: int, wave: int, retries: int
) -> tuple[list[Socket], list[str]]:
    """Open ``count`` sockets, ``wave`` at a time (0: all at once), each wave waiting
    for the last to be in. A refused socket tries again as the live page does, up to
    ``retries`` times: after a random wait below 0.5 s, then 1 s, 2 s... (full jitter).
    The sockets in, and every refusal (a socket refused twice counts twice)."""
    loop = asyncio.get_running_loop()
    parsed: dict[bytes, list[tuple[str, Any]]] = {}
    sockets: list[Socket] = []
    failures: list[str] = []

    async def one() -> Socket | None:
        for attempt in range(retries + 1):
            socket = Socket(handshake(port, session), parsed)
            try:
                await loop.create_connection(lambda s=socket: s, "127.0.0.1", port)
                await asyncio.wait_for(socket.ready, READY_SECONDS)
                return socket
            except (OSError, TimeoutError) as error:
                failures.append(f"{type(error).__name__}: {error}")
                if socket.transport is not None:
                    socket.transport.close()
            if attempt < retries:
                await asyncio.sleep(random.random() * min(30.0, 0.5 * 2**attempt))
        return None

    size = wave or count
    for first in range(0, count, size):
        batch = await asyncio.gather(*(one() for _ in range(first, min(count, first + size))))  # fmt: skip
        sockets += [socket for socket in batch if socket is not None]
    return sockets, failures


async def serve(options: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**30)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    started = time.monotonic()
    sockets, failures = await open_sockets(
        options.port, options.session, options.count, options.wave, options.retries
    )
    say({"ready": len(sockets), "failures": failures, "seconds": time.monotonic() - started})  # fmt: skip
    while line := await reader.readline():
        command = json.loads(line)
        if command["command"] == "report":
            sent = {int(k): (v[0], v[1]) for k, v in command["sent"].items()}
            say(await report(sockets, sent))
        elif command["command"] == "quit":
            break
    for socket in sockets:
        if socket.transport is not None:
            socket.transport.close()


async def report(
    sockets: Sequence[Socket], sent: dict[int, tuple[float, float]]
) -> dict[str, Any]:
    """Latencies (ms) of the events pushed live, from the POST and from its 2xx, and
    what each socket missed; sockets that missed any resume, as the page does, and
    report what is still missing."""
    # Frames still on their way are late, not lost: wait for them, within a bound.
    ids = set(sent)
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline and any(
        s.close_code is None and not ids <= s.seen.keys() for s in sockets
    ):
        await asyncio.sleep(0.05)
    latencies: list[float] = []
    after_answer: list[float] = []
    missed_live: list[int] = []
    gaps: list[Socket] = []
    for socket in sockets:
        missed = 0
        for event_id, (at, answered) in sent.items():
            arrived = socket.seen.get(event_id)
            if arrived is None:
                missed += 1
            else:
                latencies.append(round((arrived - at) * 1000, 2))
                after_answer.append(round((arrived - answered) * 1000, 2))
        missed_live.append(missed)
        if missed:
            gaps.append(socket)
    closed = sum(1 for socket in sockets if socket.close_code is not None)
    after = min(sent, default=1) - 1
    await asyncio.gather(
        *(s.resume(after) for s in gaps if s.close_code is None), return_exceptions=True
    )
    # A socket the server closed would reconnect and resume; here it counts as is.
    still = [len(set(sent) - set(s.seen) - set(s.resumed)) for s in gaps]
    return {
        "latencies": latencies,
        "after_answer": after_answer,
        "missed_live": missed_live,
        "missing_after_resume": still,
        "closed": closed,
    }


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Fleet:
    """The parent's side: ``count`` dashboards over as many processes as they need."""

    def __init__(
        self, port: int, session: str, count: int, *, wave: int = 50, retries: int = 0
    ) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        processes = max(1, -(-count // PER_PROCESS))
        per = -(-count // processes)
        # ``wave`` sockets at a time across all the processes.
        wave = max(1, wave // processes) if wave else 0
        for first in range(0, count, per):
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.dashboards",
                        "--port",
                        str(port),
                        "--session",
                        session,
                        "--count",
                        str(min(per, count - first)),
                        "--wave",
                        str(wave),
                        "--retries",
                        str(retries),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def wait_ready(self) -> dict[str, Any]:
        answers = [self._read(process) for process in self.processes]
        return {
            "ready": sum(a["ready"] for a in answers),
            "failures": [f for a in answers for f in a["failures"]],
            "seconds": max(a["seconds"] for a in answers),
        }

    def report(self, sent: dict[int, tuple[float, float]]) -> dict[str, Any]:
        line = json.dumps({"command": "report", "sent": sent}) + "\n"
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(line)
            process.stdin.flush()
        answers = [self._read(process) for process in self.processes]
        return {
            key: [v for a in answers for v in a[key]]
            for key in (
                "latencies",
                "after_answer",
                "missed_live",
                "missing_after_resume",
            )
        } | {"closed": sum(a["closed"] for a in answers)}

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def close(self) -> None:
        for process in self.processes:
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"command": "quit"}) + "\n")
                process.stdin.close()
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()

    @staticmethod
    def _read(process: subprocess.Popen[str]) -> dict[str, Any]:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"a dashboards process ended (exit {process.wait()})")
        return dict(json.loads(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--wave", type=int, default=50, help="sockets per wave; 0: all at once")  # fmt: skip
    parser.add_argument("--retries", type=int, default=0, help="tries again after a refusal, as the page does")  # fmt: skip
    options = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(options))
    else:
        uvloop.run(serve(options))


if __name__ == "__main__":
    main()
