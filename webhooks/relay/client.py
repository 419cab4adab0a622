"""Forward the deliveries an inbox receives to a local URL, signatures intact.

``webhooks-listen --server https://inbox.example.com --token T --forward-to
http://localhost:3000/hook`` follows the inbox's event stream and, for each new
delivery, posts the stored raw body with the provider's original headers to
the local app, so the app's own signature check passes, as it would for the
provider itself (timestamped schemes still apply their tolerance window to the
original timestamp). One line is printed per delivery with the local answer.

This module imports nothing from Django and needs no Django project: it talks
to the inbox over HTTP only (httpx), so it runs on any laptop with the wheel.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

#: Headers about one hop or one message's framing, which the relay's own request
#: sets; everything else the provider sent is forwarded as stored.
NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
#: How the inbox stores the headers it must not keep (Authorization, Cookie, secrets).
REDACTED = "[redacted]"
RECONNECT_SECONDS = (0.5, 1, 2, 5, 10)
TOKEN_VARIABLE = "WEBHOOKS_LISTEN_TOKEN"
READ_TIMEOUT = 75.0


@dataclass
class ServerEvent:
    """One event of a ``text/event-stream``."""

    event: str = "message"
    data: str = ""
    id: str | None = None


def parse_stream(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Events of a server-sent event stream, from its lines (without line ends)."""
    current = ServerEvent()
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or current.id is not None:
                current.data = "\n".join(data)
                yield current
            current, data = ServerEvent(), []
            continue
        if line.startswith(":"):
            continue  # a comment: heartbeats
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            current.event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            current.id = value


def forwarded_headers(stored: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in stored.items()
        if name.lower() not in NOT_FORWARDED and value != REDACTED
    }


@dataclass
class Relay:
    server: str
    token: str
    forward_to: str
    endpoint: str = ""
    #: Forward deliveries above this id; None: only those arriving from now on.
    after_id: int | None = None
    prefix: str = "/webhooks/"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    forwarded: int = 0
    #: A file holding the last forwarded id, so that a restarted relay goes on from it.
    state: Path | None = None

    @property
    def api(self) -> str:
        return self.server.rstrip("/") + "/" + self.prefix.strip("/") + "/api/"

    def run(self) -> None:
        """Follow the stream for ever, reconnecting after every drop."""
        # The server sends a heartbeat every 15 s by default: a read that waits
        # far longer means a connection that died without closing.
        with httpx.Client(timeout=httpx.Timeout(30.0, read=READ_TIMEOUT)) as client:
            failures = 0
            while True:
                try:
                    self.follow(client)
                    failures = 0
                except (httpx.HTTPError, OSError) as exc:
                    failures += 1
                    self.say(f"stream interrupted ({type(exc).__name__}); reconnecting")
                except RefusedError as exc:
                    self.say(str(exc))
                    raise
                pause = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                time.sleep(pause)

    def follow(self, client: httpx.Client) -> None:
        """Read the stream from the cursor until the connection ends."""
        headers = {**self.auth, "Accept": "text/event-stream"}
        params = {"endpoint": self.endpoint} if self.endpoint else {}
        if self.after_id is not None:
            # Resuming: the server sends everything after the last forwarded id.
            headers["Last-Event-ID"] = str(self.after_id)
        with client.stream(
            "GET", self.api + "stream/", headers=headers, params=params
        ) as response:
            if response.status_code != 200:
                response.read()
                raise RefusedError(
                    f"the inbox refused the stream: {response.status_code} {response.text}"
                )
            for event in parse_stream(response.iter_lines()):
                self.handle(client, event)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def handle(self, client: httpx.Client, event: ServerEvent) -> None:
        if event.event == "ready" and self.after_id is None:
            self.after_id = int(json.loads(event.data)["after_id"])
            self.say(
                f"ready: forwarding deliveries after #{self.after_id} to {self.forward_to}"
            )
        elif event.event == "event.received" and event.id is not None:
            event_id = int(event.id)
            if self.after_id is not None and event_id <= self.after_id:
                return  # forwarded already in this run
            outcome = self.forward(client, event_id)
            self.after_id = event_id
            # Saved before it is printed: whoever sees the line may rely on it.
            self.save_state()
            self.say(outcome)

    def forward(self, client: httpx.Client, event_id: int) -> str:
        """Re-send one stored delivery; the line that says how the local app answered."""
        detail = client.get(self.api + f"events/{event_id}/", headers=self.auth)
        if detail.status_code == 404:
            return f"#{event_id} is gone from the inbox (pruned?); skipped"
        detail.raise_for_status()
        delivery: dict[str, Any] = detail.json()
        label = f"#{event_id} {delivery['provider']} {delivery['event_type'] or '-'}"
        started = time.monotonic()
        self.forwarded += 1
        try:
            answer = client.post(
                self.forward_to,
                content=base64.b64decode(delivery["body_base64"]),
                headers=forwarded_headers(delivery["headers"]),
            )
        except httpx.HTTPError as exc:
            return f"{label} -> failed: {type(exc).__name__}: {exc}"
        took = (time.monotonic() - started) * 1000
        return f"{label} -> {answer.status_code} {answer.reason_phrase} ({took:.0f} ms)"

    def save_state(self) -> None:
        if self.state is None or self.after_id is None:
            return
        # Written whole, then renamed: a relay killed mid-write leaves the old id.
        partial = self.state.with_name(self.state.name + ".partial")
        partial.write_text(f"{self.after_id}\n")
        partial.replace(self.state)

    def say(self, line: str) -> None:
        self.out.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        self.out.flush()


class RefusedError(Exception):
    """The inbox answered the stream with an error (a bad token, say): retrying cannot help."""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        required=True,
        help="The inbox's base URL, such as https://inbox.example.com.",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"An API token of the inbox (default: ${TOKEN_VARIABLE}).",
    )
    parser.add_argument(
        "--forward-to", required=True, help="Local URL that receives the deliveries."
    )
    parser.add_argument(
        "--endpoint", default="", help="Only deliveries to this endpoint slug."
    )
    parser.add_argument(
        "--from-id",
        type=int,
        default=None,
        help="Forward stored deliveries after this event id first (default: only new ones).",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="A file that keeps the last forwarded id: a relay restarted with the same "
        "file goes on after it (--from-id, if given, wins).",
    )
    parser.add_argument(
        "--prefix",
        default="/webhooks/",
        help="Where the inbox mounts the webhooks app.",
    )


def relay_from(options: argparse.Namespace, out: TextIO) -> Relay:
    if not options.token:
        raise SystemExit(f"a token is required: --token or ${TOKEN_VARIABLE}")
    after_id = options.from_id
    if after_id is None and options.state is not None and options.state.exists():
        try:
            after_id = int(options.state.read_text().strip())
        except ValueError:
            raise SystemExit(f"{options.state} holds no event id") from None
    return Relay(
        server=options.server,
        token=options.token,
        forward_to=options.forward_to,
        endpoint=options.endpoint,
        after_id=after_id,
        prefix=options.prefix,
        out=out,
        state=options.state,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="webhooks-listen",
        description="Forward an inbox's deliveries to a local URL, byte for byte.",
    )
    arguments(parser)
    relay = relay_from(parser.parse_args(argv), sys.stdout)
    try:
        relay.run()
    except KeyboardInterrupt:
        return 0
    except RefusedError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
