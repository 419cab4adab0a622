"""What every answer to a hostile request must look like, and a watch on error logs."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import settings

#: Loggers whose ERROR records mean an unhandled failure somewhere on the request path.
WATCHED_LOGGERS = ("django", "webhooks", "realtime", "asyncio")


def examples(count: int) -> settings:
    """``count`` examples under the CI profile, scaled by the profile loaded (explore: 10x)."""
    return settings(max_examples=count * settings.default.max_examples // 100)


SIGNATURE_REASONS = {
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "timestamp_out_of_tolerance",
}


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def error_log() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records logged to the watched loggers while the block runs."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        for logger in loggers:
            logger.removeHandler(collector)


def describe(records: list[logging.LogRecord]) -> list[str]:
    return [f"{record.name}: {record.getMessage()}" for record in records]


def assert_contract_answer(
    status: int, headers: Mapping[str, str], body: bytes, *, method: str = "POST"
) -> None:
    """Fail unless (status, headers, body) is one of CONTRACT.md section 5's answers.

    ``headers`` has lower-case names. A 503 is not allowed here: these tests run
    with a healthy database, so one would mean an unexpected failure.
    """
    assert status != 500, body
    if method == "HEAD" and not body:
        # Django drops the body of a HEAD answer; the status still has to fit.
        assert status in (405, 404, 413), status
        return
    content_type = headers.get("content-type", "")
    assert content_type.startswith("application/json"), (status, content_type, body)
    data: Any = json.loads(body)
    assert isinstance(data, dict), data
    if status == 200:
        assert (
            set(data) == {"status", "id"}
            and data["status"] in ("received", "duplicate")
            and isinstance(data["id"], int)
        ) or set(data) == {"challenge"}, data
    elif status == 401:
        assert data == {"error": "invalid_signature", "reason": data.get("reason")}
        assert data["reason"] in SIGNATURE_REASONS, data
    elif status == 403:
        assert data == {"error": "forbidden", "reason": "ip_not_allowed"}, data
    elif status == 404:
        assert data == {"error": "unknown_endpoint"}, data
    elif status == 405:
        assert data == {"error": "method_not_allowed"}, data
        assert "POST" in headers.get("allow", ""), headers
    elif status == 413:
        assert data.get("error") == "body_too_large" and set(data) == {
            "error",
            "limit",
        }, data
    elif status == 429:
        assert data == {"error": "rate_limited"}, data
        assert headers.get("retry-after", "").isdigit(), headers
    else:
        raise AssertionError(f"answer outside the contract: {status} {body!r}")


# --- real servers -----------------------------------------------------------------

#: A line of a server's log at ERROR or above (see tests/settings_hostile.py).
SERVER_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    port: int,
    head: bytes,
    body: bytes,
    *,
    hang_up_after: int | None = None,
    timeout: float = 30,
) -> RawAnswer | None:
    """Send ``head`` (request line and headers, CRLF-ended) and ``body`` as they are.

    With ``hang_up_after``, the connection is closed after that many body bytes
    and None is returned. Otherwise the server's answer, read to its end.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + b"\r\n")
        if hang_up_after is not None:
            sock.sendall(body[:hang_up_after])
            return None
        # The server may answer (413) and close before the whole body is sent.
        with contextlib.suppress(OSError):
            sock.sendall(body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return parse_answer(bytes(received))


def parse_answer(data: bytes) -> RawAnswer:
    """The answer; status 0 when the server closed the connection without one."""
    if not data:
        return RawAnswer(0, {}, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunked(body)
    return RawAnswer(int(status_line.split()[1]), headers, body)


def dechunked(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


class LiveServer:
    """The demo project served by daphne or by ``manage.py runserver`` (DEBUG on, as
    ``make run`` serves it), with tests/settings_hostile.py; its log is watched."""

    def __init__(self, kind: str, database_url: str) -> None:
        from tests.servers import Project

        self.kind = kind
        self.project = Project(database_url, None, settings="tests.settings_hostile")
        if kind == "runserver":
            self.project.env["DJANGO_DEBUG"] = "1"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        self.read_up_to = 0

    def start(self) -> None:
        from tests.servers import free_port, wait_for_port

        if self.kind == "daphne":
            self.port = self.project.serve()
            self.log = self.project.logs[self.port]
            return
        self.port = free_port()
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                f"127.0.0.1:{self.port}",
            ],
            cwd=self.project_root(),
            env=self.project.env,
            stdout=self.log,
            stderr=self.log,
        )
        wait_for_port(self.port)

    @staticmethod
    def project_root() -> str:
        from tests.servers import ROOT

        return str(ROOT)

    def add_endpoints(self, secrets: dict[str, str]) -> None:
        """One endpoint per provider id, its slug the id (one process, not one each)."""
        code = (
            "from webhooks.models import Endpoint\n"
            f"for slug, secret in {secrets!r}.items():\n"
            "    Endpoint.objects.create(slug=slug, provider=slug)"
            ".secrets.create(value=secret)\n"
        )
        self.project.manage("shell", "-c", code)

    def new_errors(self) -> list[str]:
        """Lines at ERROR or above logged since the last call."""
        self.log.flush()
        self.log.seek(self.read_up_to)
        text = self.log.read()
        self.read_up_to = self.log.tell()
        return [line for line in text.splitlines() if SERVER_ERROR.search(line)]

    def stop(self) -> None:
        if self.kind == "daphne":
            self.project.stop_all()
            return
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        if self.log is not None:
            self.log.close()
