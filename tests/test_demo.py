"""make run's demo: its set-up, its traffic, and make run itself in a copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders.management.commands.demo_sender import forged_delivery, payment_event
from orders.management.commands.demo_setup import PROVIDERS
from orders.models import Order
from orders.webhook_handlers import DemoFlakyError, flaky_demo_handler, mark_order_paid
from tests.factories import make_endpoint, make_event
from tests.servers import free_port
from webhooks.models import Endpoint

ROOT = Path(__file__).resolve().parent.parent
DEMO_SLUGS = {f"demo-{provider}" for provider in PROVIDERS}


def demo_setup() -> str:
    output = StringIO()
    call_command("demo_setup", "--port", "8123", stdout=output)
    return output.getvalue()


def printed_password(output: str) -> str:
    line = next(line for line in output.splitlines() if "shown once" in line)
    return line.split(": ", 1)[1]


def secrets_by_slug() -> dict[str, list[str]]:
    endpoints = Endpoint.objects.prefetch_related("secrets")
    return {endpoint.slug: endpoint.valid_secrets() for endpoint in endpoints}


# demo_setup


@pytest.mark.django_db
def test_demo_setup_creates_a_superuser_with_the_printed_password() -> None:
    output = demo_setup()
    user = get_user_model().objects.get(username="demo")
    assert user.is_staff and user.is_superuser and user.is_active
    assert user.check_password(printed_password(output))
    assert "http://127.0.0.1:8123/admin/webhooks/live/" in output


@pytest.mark.django_db
def test_demo_setup_twice_keeps_one_user_six_endpoints_and_their_secrets() -> None:
    first = demo_setup()
    secrets = secrets_by_slug()
    second = demo_setup()
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert set(secrets) == DEMO_SLUGS
    assert all(len(values) == 1 for values in secrets.values())
    assert secrets_by_slug() == secrets
    assert Order.objects.filter(reference__startswith="DEMO-").count() == 6
    assert "shown once" in first
    assert "shown once" not in second
    assert "manage.py changepassword demo" in second


@pytest.mark.django_db
def test_demo_setup_generates_a_different_password_for_each_new_user() -> None:
    first = printed_password(demo_setup())
    get_user_model().objects.filter(username="demo").delete()
    assert printed_password(demo_setup()) != first


@pytest.mark.django_db
def test_demo_credentials_prints_a_new_password_that_logs_in() -> None:
    first = printed_password(demo_setup())
    output = StringIO()
    call_command("demo", "--credentials", "--port", "8001", stdout=output)
    password = printed_password(output.getvalue())
    user = get_user_model().objects.get(username="demo")
    assert password != first
    assert user.check_password(password)
    assert "http://127.0.0.1:8001/admin/webhooks/live/" in output.getvalue()


@pytest.mark.django_db
def test_demo_credentials_before_any_run_creates_the_user() -> None:
    output = StringIO()
    call_command("demo", "--credentials", stdout=output)
    user = get_user_model().objects.get(username="demo")
    assert user.is_staff and user.check_password(printed_password(output.getvalue()))


@pytest.mark.django_db
def test_demo_setup_leaves_an_existing_demo_endpoint_alone() -> None:
    make_endpoint("demo-github", "github", "mine")
    demo_setup()
    assert secrets_by_slug()["demo-github"] == ["mine"]


@pytest.mark.django_db
def test_demo_setup_gives_each_endpoint_a_secret_in_its_providers_form() -> None:
    demo_setup()
    assert secrets_by_slug()["demo-standard"][0].startswith("whsec_")
    assert secrets_by_slug()["demo-stripe"][0].startswith("whsec_")


# The demo's traffic and handlers


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
def test_forged_delivery_is_rejected_for_its_signature(
    provider, provider_client
) -> None:
    demo_setup()
    body, headers = forged_delivery(provider)
    response = provider_client.post(
        f"/webhooks/demo-{provider}/",
        data=body,
        content_type=headers.pop("Content-Type"),
        headers=headers,
    )
    assert response.status_code == 401
    assert json.loads(response.content)["reason"] == "signature_mismatch"


@pytest.mark.django_db
def test_payment_event_of_a_demo_order_marks_it_paid() -> None:
    demo_setup()
    order = Order.objects.get(reference="DEMO-1003")
    payload = payment_event(order)
    endpoint = Endpoint.objects.get(slug="demo-stripe")
    mark_order_paid(make_event(endpoint, payload["id"], payload=payload))
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


@pytest.mark.django_db
def test_flaky_demo_handler_fails_on_a_demo_endpoint_when_the_coin_says_so(
    monkeypatch,
) -> None:
    endpoint = make_endpoint("demo-standard", "standard", "whsec_c2VjcmV0")
    monkeypatch.setattr("orders.webhook_handlers.random.random", lambda: 0.1)
    with pytest.raises(DemoFlakyError, match="retries"):
        flaky_demo_handler(make_event(endpoint, "msg_1", payload={}))


@pytest.mark.django_db
def test_flaky_demo_handler_never_fails_outside_the_demo(monkeypatch) -> None:
    endpoint = make_endpoint("billing", "standard", "whsec_c2VjcmV0")
    monkeypatch.setattr("orders.webhook_handlers.random.random", lambda: 0.1)
    flaky_demo_handler(make_event(endpoint, "msg_1", payload={}))


# make run, as a new user would start and stop it

COPY_IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "db.sqlite3*",
    ".secret_key",
    "__pycache__",
    ".*_cache",
    "staticfiles",
    "build",
    "dist",
)


def demo_events(database: Path) -> int:
    try:
        with sqlite3.connect(database, timeout=5) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM webhooks_event JOIN webhooks_endpoint"
                " ON webhooks_endpoint.id = webhooks_event.endpoint_id"
                " WHERE webhooks_endpoint.slug LIKE 'demo-%'"
            ).fetchone()
        return int(count)
    except sqlite3.OperationalError:  # not migrated yet, or a write holds the lock
        return 0


def processes_in(directory: Path) -> list[str]:
    """Command lines of the processes started in, or naming, ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if str(directory) in command or cwd.startswith(str(directory)):
            found.append(f"{proc.name}: {command}")
    return found


def wait_until(condition, timeout: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.25)
    return False


def make_run(repository: Path, port: int, log) -> subprocess.Popen:
    venv = Path(sys.prefix)
    # Our own settings and an outer make's flags must not leak into the user's run.
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "REDIS_", "WEBHOOKS_", "MAKE"))
        and name not in {"MFLAGS", "PYTHONPATH"}
    }
    return subprocess.Popen(
        # The test's venv serves the copy; -o keeps make from reinstalling into it
        # (requirements.txt installs "-e .", which would point it at the copy).
        ["make", "-o", f"{venv}/bin/.installed", "run", f"PORT={port}", f"VENV={venv}"],
        cwd=repository,
        env={**environment, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.demo
def test_make_run_serves_the_demo_and_ctrl_c_leaves_no_process(tmp_path) -> None:
    repository = tmp_path / "repository"
    shutil.copytree(ROOT, repository, ignore=COPY_IGNORED)
    port = free_port()
    log_path = tmp_path / "make-run.log"
    with log_path.open("w") as log:
        make = make_run(repository, port, log)
        try:
            came_up = wait_until(
                lambda: demo_events(repository / "db.sqlite3") >= 2, 120, make
            )
        finally:
            os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C sends
            make.wait(timeout=30)
    output = log_path.read_text()
    assert came_up, output
    assert f"Dashboard: http://127.0.0.1:{port}/admin/webhooks/live/" in output
    assert "Password (shown once): " in output
    # A quiet terminal: no access log, no traceback, the port the commands need.
    assert "Traceback" not in output
    assert "HTTP POST" not in output and "HTTP GET" not in output
    assert f"--url http://127.0.0.1:{port}" in output
    assert "[demo sender] demo-" in output
    deadline = time.monotonic() + 20
    while processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.25)
    left = processes_in(tmp_path)
    for entry in left:  # leave the machine clean even when the test fails
        os.kill(int(entry.split(":")[0]), signal.SIGKILL)
    assert not left, output
