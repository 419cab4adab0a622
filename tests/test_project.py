"""Smoke tests of the demo project, run as a user would, in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": "smoke-test",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_project_passes_system_checks(tmp_path) -> None:
    result = manage("check", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_project_asgi_application_imports(tmp_path) -> None:
    code = "import project.asgi as a; print(type(a.application).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_SECRET_KEY": "smoke-test",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ProtocolTypeRouter"


def test_production_settings_require_a_secret_key(tmp_path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **environment,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "0",
        },
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_migrate_then_add_endpoint_prints_its_url(tmp_path) -> None:
    assert manage("migrate", "-v0", tmp_path=tmp_path).returncode == 0
    result = manage(
        "webhooks_endpoint",
        "add",
        "gh",
        "--provider",
        "github",
        "--secret",
        "s",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:8000/webhooks/gh/" in result.stdout


LOGGED = """
import logging
try:
    raise RuntimeError("the handler broke")
except RuntimeError as error:
    logging.getLogger("webhooks").warning("Handler h failed on event 7", exc_info=True)
logging.getLogger("webhooks").info("Delivery to 'x' rejected: signature_mismatch")
logging.getLogger("django.channels.server").info("HTTP POST /webhooks/x/ 200")
logging.getLogger("django.channels.server").error("HTTP GET /boom/ 500")
"""


def test_terminal_log_is_one_line_per_failure_without_access_lines(tmp_path) -> None:
    result = manage("shell", "-c", LOGGED, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].endswith(
        "WARNING Handler h failed on event 7 (RuntimeError: the handler broke)"
    )
    assert "Traceback" not in result.stderr
    assert lines[1].endswith("HTTP GET /boom/ 500")


def test_access_log_and_rejections_come_back_on_request(tmp_path) -> None:
    result = manage(
        "shell",
        "-c",
        LOGGED,
        tmp_path=tmp_path,
        DJANGO_ACCESS_LOG="1",
        DJANGO_LOG_LEVEL="INFO",
    )
    assert "rejected: signature_mismatch" in result.stderr
    assert "HTTP POST /webhooks/x/ 200" in result.stderr


def test_demo_sends_a_strict_content_security_policy(tmp_path) -> None:
    code = (
        "from django.test import Client; "
        "print(Client().get('/admin/login/')['Content-Security-Policy'])"
    )
    result = manage(
        "shell", "-c", code, tmp_path=tmp_path, DJANGO_ALLOWED_HOSTS="testserver"
    )
    assert result.returncode == 0, result.stderr
    policy = result.stdout.strip().splitlines()[-1]
    assert policy.startswith("default-src 'self';")
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
