"""The documented production environment passes `manage.py check --deploy`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: README "Production": the variables a deployment sets (DATABASE_URL and REDIS_URL
#: are not connected to by the check).
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "hooks.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://hooks.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
    "DATABASE_URL": "postgres://webhooks@db.internal:5432/webhooks",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "WEBHOOKS_PROCESSING": "worker",
}


def run(args: list[str], **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "WEBHOOKS_", "REALTIME_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        PRODUCTION,
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        **overrides,
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_production_environment() -> None:
    result = run(["check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_when_a_production_setting_is_turned_off() -> None:
    # The check above can fail: dropping HSTS is reported.
    result = run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SECURE_HSTS_SECONDS="0",
    )
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


def test_demo_mode_keeps_plain_http() -> None:
    # make run serves http://127.0.0.1:8000: no redirect, no secure-only cookies.
    result = run(
        [
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT,"
            " s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)",
        ],
        DJANGO_DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["False", "0", "False", "False"]
