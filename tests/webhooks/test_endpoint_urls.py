"""webhooks_endpoint prints the URL at the server's real origin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings


def endpoint(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_endpoint", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_add_with_url_prints_the_url_under_that_origin() -> None:
    output = endpoint(
        "add",
        "gh",
        "--provider",
        "github",
        "--secret",
        "s",
        "--url",
        "http://127.0.0.1:8001/",
    )
    assert "URL to give the provider: http://127.0.0.1:8001/webhooks/gh/" in output
    assert "runserver" not in output
    assert "http://127.0.0.1:8001/webhooks/gh/" in endpoint(
        "list", "--url", "http://127.0.0.1:8001"
    )


@pytest.mark.django_db
@override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com")
def test_add_prints_the_public_url_when_set() -> None:
    output = endpoint("add", "gh", "--provider", "github", "--secret", "s")
    assert "URL to give the provider: https://hooks.example.com/webhooks/gh/" in output
    assert "runserver" not in output


@pytest.mark.django_db
@override_settings(WEBHOOKS_PUBLIC_URL="")
def test_add_without_either_says_whose_address_it_printed() -> None:
    output = endpoint("add", "gh", "--provider", "github", "--secret", "s")
    assert "http://127.0.0.1:8000/webhooks/gh/" in output
    assert "pass --url BASE, or set WEBHOOKS_PUBLIC_URL" in output
