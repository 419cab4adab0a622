"""The README's install section, run as a newcomer would run it.

The wheel is built from this checkout and installed with pip into a new virtualenv;
``startproject`` makes a project there, and the README's blocks (marked with
``<!-- install:... -->`` and ``<!-- testing:... -->`` comments) are written into it
exactly as the README shows them. Then ``check``, ``migrate``, the README's test
example, and a signed delivery seen over the live page's WebSocket, on a real daphne.

The new environment has none of this checkout on its path: the apps come from the
wheel. Their dependencies (Django, Channels, daphne, ...) come from the test's own
environment through a ``.pth`` file, so the test needs no package index and takes
seconds; that the wheel declares them is checked in ``test_packaging.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.servers import free_port, wait_for_port

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
WAIT_SECONDS = 20


def readme_block(marker: str) -> str:
    """The code block right after ``<!-- marker -->`` in the README, as written."""
    match = re.search(
        rf"<!-- {re.escape(marker)} -->\n```\w*\n(.*?)\n```", README, flags=re.DOTALL
    )
    assert match, f"README has no block marked <!-- {marker} -->"
    return match[1] + "\n"


class Newcomer:
    """A new virtualenv with the wheel installed, and a startproject made in it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.python = tmp_path / "venv" / "bin" / "python"
        self.site = tmp_path / "site"
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DJANGO_", "WEBHOOKS_", "PYTHON"))
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.python), *args],
            cwd=self.site if self.site.exists() else self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def manage(
        self, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, check=check)

    def install(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation"]
            + ["--outdir", str(self.tmp / "dist")],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        (wheel,) = (self.tmp / "dist").glob("*.whl")
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(self.tmp / "venv")],
            check=True,
            timeout=120,
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python), "install"]
            + ["--quiet", "--no-deps", "--no-index", f"{wheel}[server]"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        purelib = self.run(
            "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
        dependencies = sysconfig.get_paths()["purelib"]
        (Path(purelib) / "test-dependencies.pth").write_text(dependencies + "\n")

    def start_project(self) -> None:
        self.site.mkdir()
        self.run("-m", "django", "startproject", "mysite", str(self.site))
        package = self.site / "mysite"
        with (package / "settings.py").open("a") as settings:
            settings.write("\n" + readme_block("install:settings"))
        (package / "urls.py").write_text(readme_block("install:urls"))
        (package / "asgi.py").write_text(readme_block("install:asgi"))


@pytest.fixture
def newcomer(tmp_path) -> Newcomer:
    person = Newcomer(tmp_path)
    person.install()
    person.start_project()
    return person


def test_readme_install_section_serves_a_signed_delivery_on_the_live_page(
    newcomer,
) -> None:
    where = newcomer.run("-c", "import webhooks, realtime; print(webhooks.__file__)")
    assert str(newcomer.tmp / "venv") in where.stdout  # the wheel, not this checkout

    check = newcomer.manage("check", "--fail-level", "WARNING")
    assert "System check identified no issues" in check.stdout
    newcomer.manage("migrate", "--verbosity", "0")

    # The README's handler and its test, in an app of the newcomer's.
    newcomer.manage("startapp", "shop")
    (newcomer.site / "shop" / "webhook_handlers.py").write_text(
        readme_block("testing:handler")
    )
    (newcomer.site / "shop" / "tests.py").write_text(readme_block("testing:test"))
    with (newcomer.site / "mysite" / "settings.py").open("a") as settings:
        settings.write('INSTALLED_APPS += ["shop"]\n')
    tests = newcomer.manage("test", "shop", "--noinput", check=False)
    assert tests.returncode == 0, tests.stderr
    assert re.search(r"Ran 3 tests.*\n\nOK", tests.stderr, flags=re.DOTALL)
    (newcomer.site / "shop" / "test_payments.py").write_text(
        readme_block("testing:pytest")
    )
    pytest_run = newcomer.run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
        "--ds=mysite.settings", "shop/test_payments.py",
        check=False,
    )  # fmt: skip
    assert pytest_run.returncode == 0, pytest_run.stdout + pytest_run.stderr
    assert "1 passed" in pytest_run.stdout

    added = newcomer.manage(
        "webhooks_endpoint", "add", "github-main", "--provider", "github",
        "--generate-secret",
    )  # fmt: skip
    assert "/webhooks/github-main/" in added.stdout
    session = newcomer.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from django.test import Client; "
        "c = Client(); c.force_login(User.objects.create_superuser('ada', '', 'x')); "
        "print(c.cookies['sessionid'].value)",
    ).stdout.split()[-1]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (newcomer.tmp / "daphne.log").open("w")
    server = subprocess.Popen(
        [str(newcomer.python), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["mysite.asgi:application"],
        cwd=newcomer.site,
        env=newcomer.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        # The admin index lists the live page, and the page answers: the URLs as pasted.
        index = fetch(f"{base}/admin/", session)
        assert 'href="/admin/webhooks/live/"' in index, index[-2000:]
        assert "Live events" in fetch(f"{base}/admin/webhooks/live/", session)
        with connect(
            f"ws://127.0.0.1:{port}/ws/webhooks/",
            origin=base,
            additional_headers={"Cookie": f"sessionid={session}"},
            open_timeout=WAIT_SECONDS,
        ) as socket:
            assert json.loads(socket.recv(WAIT_SECONDS))["type"] == "hello"
            sent = newcomer.manage("webhooks_send", "github-main", "--url", base)
            event_id = int(re.search(r"\(event (\d+)\)", sent.stdout)[1])
            assert event_id in received_ids(socket), (sent.stdout, log_of(newcomer))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def received_ids(socket) -> set[int]:
    """Ids of the events the socket announces as received, until one arrives."""
    deadline = time.monotonic() + WAIT_SECONDS
    ids: set[int] = set()
    while not ids and time.monotonic() < deadline:
        frame = json.loads(socket.recv(max(0.1, deadline - time.monotonic())))
        messages = frame["messages"] if frame["type"] == "batch" else [frame]
        ids |= {
            message["event"]["id"]
            for message in messages
            if message["type"] == "event.received"
        }
    return ids


def fetch(url: str, session: str) -> str:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}"})
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        return response.read().decode()


def log_of(newcomer: Newcomer) -> str:
    return (newcomer.tmp / "daphne.log").read_text()[-3000:]
