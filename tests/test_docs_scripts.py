"""The README's shell example, run as written against a real server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.factories import make_endpoint
from webhooks.models import Event, Rejection

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a secret with spaces & symbols"


@pytest.mark.django_db(transaction=True)
def test_github_delivery_script_sends_one_delivery_twice_then_a_forged_one(
    live_server,
) -> None:
    make_endpoint("github-main", "github", SECRET)
    result = subprocess.run(
        [
            "sh",
            "docs/github-delivery.sh",
            SECRET,
            f"{live_server.url}/webhooks/github-main/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    delivery = re.fullmatch(
        r"Delivery ([0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})", lines[0]
    )
    assert delivery, result.stdout
    answers = [
        json.loads(line.split(": ", 1)[1].rsplit("  (HTTP", 1)[0]) for line in lines[1:]
    ]
    event = Event.objects.get()
    assert answers == [
        {"status": "received", "id": event.pk},
        {"status": "duplicate", "id": event.pk},
        {"error": "invalid_signature", "reason": "signature_mismatch"},
    ]
    assert lines[3].endswith("(HTTP 401)")
    assert event.delivery_id == delivery[1]
    assert Rejection.objects.get().reason == "signature_mismatch"
