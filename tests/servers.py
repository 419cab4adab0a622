"""Real server processes for end-to-end tests: daphne serving the demo project,
a private redis-server, and a PostgreSQL database of their own."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class Redis:
    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError(
                "redis-server is required (apt-get install redis-server)"
            )
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class Postgres:
    """A database of its own on the local server, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"webhooks_e2e_{uuid.uuid4().hex[:10]}"
        self.url = f"postgres://postgres@127.0.0.1:5432/{self.name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def postgres_bindir() -> Path:
    """Where initdb and postgres are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: (
            int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0
        ),
    )
    if not versions:
        raise RuntimeError(
            "PostgreSQL's server programs are required (apt-get install postgresql)"
        )
    return versions[-1].parent


class Cluster:
    """A private PostgreSQL server on a free port, for tests that stop and restart it.

    The machine's shared server must never be stopped: other test runs use it.
    PostgreSQL refuses to run as root, so under root the cluster runs as the
    ``postgres`` system user.
    """

    def __init__(self) -> None:
        bindir = postgres_bindir()
        self.initdb, self.postgres = bindir / "initdb", bindir / "postgres"
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="webhooks-pg-"))
        self.data = self.directory / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return [
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            *command,
        ]

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(
            self._as_owner(
                [
                    str(self.initdb),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self._as_owner(
                [
                    str(self.postgres),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.directory}",
                    # Throwaway data: a crash of the test machine loses nothing of value.
                    "-c",
                    "fsync=off",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(
                    self.url.replace("postgres://", "postgresql://")
                ).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """A fast shutdown, as an operator's restart does: clients are disconnected."""
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
            self.process = None

    def destroy(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


class Project:
    """The demo project configured through its environment, as in production."""

    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        settings: str = "project.settings",
        **env: str,
    ) -> None:
        self.env = {
            **os.environ,
            # Production settings otherwise, but these servers speak plain HTTP.
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            **env,
            "DJANGO_SETTINGS_MODULE": settings,
            "DJANGO_SECRET_KEY": "end-to-end-tests",
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.logs: dict[int, Any] = {}

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            raise RuntimeError(result.stderr)
        return result.stdout

    def staff_session(self) -> str:
        """A logged-in superuser's session key."""
        code = (
            "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY\n"
            "from django.contrib.auth.models import User\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            "import uuid\n"
            "user = User.objects.create_superuser('staff-' + uuid.uuid4().hex[:6], 's@example.com', 'pw')\n"
            "session = SessionStore()\n"
            "session[SESSION_KEY] = str(user.pk)\n"
            "session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
            "session.create()\n"
            "print(session.session_key)\n"
        )
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    def serve(self, port: int | None = None) -> int:
        port = port or free_port()
        # The server's log is kept for a failing test to show (see log()).
        self.logs[port] = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in kill())
        self.servers[port] = subprocess.Popen(
            [
                str(BIN / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "project.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.logs[port],
        )
        wait_for_port(port)
        return port

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "manage.py", "webhooks_worker", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def kill(self, port: int) -> None:
        process = self.servers.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.logs.pop(port).close()

    def log(self, port: int) -> str:
        self.logs[port].seek(0)
        return str(self.logs[port].read())

    def stop_all(self) -> None:
        for port in list(self.servers):
            self.kill(port)


def post_github(
    port: int, slug: str, secret: str, payload: dict[str, object]
) -> dict[str, object]:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/{slug}/",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256="
            + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()), http_status=response.status)
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read() or b"{}"), http_status=error.code)
