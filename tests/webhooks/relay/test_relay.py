"""The relay end to end: provider SDKs sign, the inbox stores, the relay forwards, and
a local app verifies the forwarded delivery with the same SDKs."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import standardwebhooks.webhooks
import stripe
from django.core.management import CommandError, call_command

from tests.servers import Project
from tests.webhooks.api.inbox import GITHUB_SECRET, api_token, inbox

STRIPE_SECRET = "whsec_3f9a1c0e5b7d4a2f8e6c1b0a9d8e7f6a5b4c3d2e1f0a9b8c"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: Bound on waiting for forwarded deliveries; a missing one fails the test.
WAIT_SECONDS = 30


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool


def verify(headers: dict[str, str], body: bytes) -> bool:
    """Check a delivery as the local app would, with each provider's own library."""
    try:
        if "stripe-signature" in headers:
            stripe.Webhook.construct_event(
                body.decode(), headers["stripe-signature"], STRIPE_SECRET
            )
        elif "webhook-signature" in headers:
            standardwebhooks.webhooks.Webhook(STANDARD_SECRET).verify(body, headers)
        elif "x-hub-signature-256" in headers:
            # GitHub publishes no Python library: its documented HMAC check.
            expected = (
                "sha256="
                + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(expected, headers["x-hub-signature-256"]):
                return False
        else:
            return False
    except Exception:
        return False
    return True


@dataclass
class LocalApp:
    """The developer's app on the laptop: verifies and records every delivery."""

    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(
                lambda: len(self.received) >= count, WAIT_SECONDS
            ), f"{len(self.received)} of {count} deliveries arrived"
            return list(self.received)


@pytest.fixture
def local_app() -> Iterator[tuple[LocalApp, str]]:
    app = LocalApp()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            ok = verify(headers, body)
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with app.arrived:
                app.received.append(Received(headers, body, ok))
                app.arrived.notify_all()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Project, int, str]]:
    with inbox() as project:
        project.manage(
            "webhooks_endpoint", "add", "st", "--provider", "stripe",
            "--secret", STRIPE_SECRET,
        )  # fmt: skip
        project.manage(
            "webhooks_endpoint", "add", "sw", "--provider", "standard",
            "--secret", STANDARD_SECRET,
        )  # fmt: skip
        yield project, project.serve(), api_token(project)


def post(port: int, slug: str, body: bytes, headers: dict[str, str]) -> int:
    response = httpx.post(
        f"http://127.0.0.1:{port}/webhooks/{slug}/",
        content=body,
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


def send_stripe(port: int) -> tuple[int, bytes]:
    # Key order and spacing a re-serialising relay would not keep.
    body = json.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "type": "payment_intent.succeeded",
         "object": "event", "data": {"object": {"amount": 2000, "note": "caf\u00e9"}}},
        indent=3, ensure_ascii=False,
    ).encode()  # fmt: skip
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, timestamp=int(time.time())
    )
    return post(port, "st", body, {"Stripe-Signature": header}), body


def send_github(port: int) -> tuple[int, bytes]:
    body = b'{"zen":  "Keep it logically awesome.",\n "hook_id": 1}'
    signature = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    return post(port, "gh", body, headers), body


def send_standard(port: int) -> tuple[int, bytes]:
    body = json.dumps(
        {"type": "user.created", "data": {"id": uuid.uuid4().hex}}
    ).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(tz=UTC)
    signature = standardwebhooks.webhooks.Webhook(STANDARD_SECRET).sign(
        msg_id, now, body.decode()
    )
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return post(port, "sw", body, headers), body


class RelayProcess:
    """``python -m webhooks.relay.client``, as the console script runs it, outside any Django project."""

    def __init__(self, port: int, token: str, forward_to: str, *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "webhooks.relay.client",
                "--server", f"http://127.0.0.1:{port}", "--token", token,
                "--forward-to", forward_to, *args,
            ],
            # Away from the checkout: no manage.py, no settings, no Django project.
            cwd=tempfile.gettempdir(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    def forwarded_ids(self) -> list[int]:
        return [
            int(match.group(1))
            for line in self.lines
            if (match := re.search(r" #(\d+) \S+ \S+ -> ", line))
        ]

    def wait_forwarded(self, count: int) -> list[int]:
        """The ids of the first ``count`` deliveries the relay reports, once it has."""
        deadline = time.monotonic() + WAIT_SECONDS
        while len(ids := self.forwarded_ids()) < count:
            assert time.monotonic() < deadline, self.lines
            time.sleep(0.05)
        return ids

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.reader.join()


@pytest.fixture
def relays() -> Iterator[list[RelayProcess]]:
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        if relay.process.poll() is None:
            relay.kill()


def latest_id(port: int, token: str) -> int:
    # The stream's ready event names where "now" is.
    with httpx.Client(timeout=20) as client, client.stream(
        "GET", f"http://127.0.0.1:{port}/webhooks/api/stream/",
        headers={"Authorization": f"Bearer {token}"},
    ) as response:  # fmt: skip
        for line in response.iter_lines():
            if line.startswith("data: "):
                return int(json.loads(line[6:])["after_id"])
    raise AssertionError("no ready event")


def test_relay_forwards_stripe_github_and_standard_deliveries_verifiably(
    shared, local_app, relays
) -> None:
    project, port, token = shared
    app, url = local_app
    start = latest_id(port, token)
    relays.append(RelayProcess(port, token, url, "--from-id", str(start)))
    sent = [send_stripe(port), send_github(port), send_standard(port)]

    received = app.wait_for(3)

    assert [r.body for r in received] == [body for _, body in sent]
    assert [r.verified for r in received] == [True, True, True]
    # Host and Content-Length are the local request's own, the rest the provider's.
    assert received[0].headers["host"] == url.split("/")[2]
    assert received[0].headers["content-length"] == str(len(sent[0][1]))
    assert received[0].headers["content-type"] == "application/json"
    assert relays[0].wait_forwarded(3) == [event_id for event_id, _ in sent]
    assert all(" -> 200 OK " in line for line in relays[0].lines if " -> " in line)


def test_relay_resumes_after_a_dropped_connection(shared, local_app, relays) -> None:
    project, port, token = shared
    app, url = local_app
    relays.append(
        RelayProcess(port, token, url, "--from-id", str(latest_id(port, token)))
    )
    first = send_github(port)[0]
    app.wait_for(1)

    project.kill(port)
    project.serve(port)
    later = [send_github(port)[0] for _ in range(3)]
    received = app.wait_for(4)

    assert relays[0].wait_forwarded(4) == [first, *later]
    assert all(r.verified for r in received)
    assert any("reconnecting" in line for line in relays[0].lines)


def test_relay_killed_and_restarted_resumes_without_loss_or_duplicates(
    shared, local_app, relays, tmp_path
) -> None:
    project, port, token = shared
    app, url = local_app
    state = str(tmp_path / "relay.state")
    relays.append(
        RelayProcess(
            port, token, url, "--from-id", str(latest_id(port, token)), "--state", state
        )
    )
    before = [send_stripe(port)[0] for _ in range(3)]
    app.wait_for(3)
    relays[0].wait_forwarded(3)
    relays[0].kill()
    while_down = [send_standard(port)[0] for _ in range(3)]

    # Restarted with the same state file and no cursor: it goes on by itself.
    relays.append(RelayProcess(port, token, url, "--state", state))
    after = send_github(port)[0]
    received = app.wait_for(7)

    forwarded = relays[0].forwarded_ids() + relays[1].wait_forwarded(4)
    assert forwarded == [*before, *while_down, after]
    assert len(received) == 7
    assert all(r.verified for r in received)


def test_relay_only_forwards_the_chosen_endpoint(shared, local_app, relays) -> None:
    project, port, token = shared
    app, url = local_app
    start = latest_id(port, token)
    relays.append(
        RelayProcess(port, token, url, "--from-id", str(start), "--endpoint", "sw")
    )
    send_stripe(port)
    wanted = send_standard(port)

    [received] = app.wait_for(1)

    assert received.body == wanted[1]
    assert relays[0].wait_forwarded(1) == [wanted[0]]


def test_relay_with_a_bad_token_stops_with_the_inbox_answer(shared, local_app) -> None:
    project, port, _ = shared
    relay = RelayProcess(port, "whk_wrong", local_app[1])

    assert relay.process.wait(timeout=WAIT_SECONDS) == 1
    relay.reader.join()
    assert any("401" in line for line in relay.lines)


def test_listen_command_reports_a_refused_stream_as_an_error(shared) -> None:
    project, port, _ = shared

    with pytest.raises(CommandError, match="401"):
        call_command(
            "webhooks_listen",
            "--server", f"http://127.0.0.1:{port}",
            "--token", "whk_wrong",
            "--forward-to", "http://127.0.0.1:9/hook",
            stdout=io.StringIO(),
        )  # fmt: skip
