from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_endpoint", *args, stdout=out)
    return out.getvalue()


def test_add_with_secret_prints_the_url_and_stores_the_endpoint() -> None:
    output = run("add", "gh", "--provider", "github", "--secret", "s3cret")
    assert "http://127.0.0.1:8000/webhooks/gh/" in output
    assert "s3cret" not in output
    endpoint = Endpoint.objects.get(slug="gh")
    assert endpoint.valid_secrets() == ["s3cret"]


def test_add_with_generated_secret_prints_it_once() -> None:
    output = run("add", "pay", "--provider", "stripe", "--generate-secret")
    secret = Endpoint.objects.get(slug="pay").valid_secrets()[0]
    assert secret.startswith("whsec_")
    assert output.count(secret) == 1


def test_add_standard_generates_a_base64_whsec_secret() -> None:
    run("add", "std", "--provider", "standard", "--generate-secret")
    from webhooks.providers.standard import secret_key

    key = secret_key(Endpoint.objects.get(slug="std").valid_secrets()[0])
    assert key is not None and len(key) == 32


def test_add_uses_public_url_setting(settings) -> None:
    settings.WEBHOOKS_PUBLIC_URL = "https://hooks.example.com/"
    assert "https://hooks.example.com/webhooks/gh/" in run(
        "add", "gh", "--provider", "github", "--secret", "s"
    )


def test_add_with_options_tolerance_and_networks() -> None:
    run(
        "add",
        "h",
        "--provider",
        "hmac",
        "--secret",
        "s",
        "--tolerance",
        "60",
        "--allow-ip",
        "10.0.0.0/8",
        "--allow-ip",
        "192.0.2.1",
        "--option",
        "header=X-Sig",
        "--option",
        "encoding=base64",
    )
    endpoint = Endpoint.objects.get(slug="h")
    assert endpoint.tolerance_seconds == 60
    assert endpoint.allowed_networks == ["10.0.0.0/8", "192.0.2.1"]
    assert endpoint.options == {"header": "X-Sig", "encoding": "base64"}


def test_add_signed_provider_without_secret_fails() -> None:
    with pytest.raises(CommandError, match="--secret or --generate-secret"):
        run("add", "gh", "--provider", "github")
    assert not Endpoint.objects.exists()


def test_add_unsigned_provider_needs_no_secret() -> None:
    run("add", "open", "--provider", "none")
    assert Endpoint.objects.get(slug="open").valid_secrets() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "bad slug", "--provider", "github", "--secret", "s"], "slug"),
        (["add", "health", "--provider", "github", "--secret", "s"], "reserved"),
        (
            ["add", "h", "--provider", "github", "--secret", "s", "--allow-ip", "nope"],
            "Not networks",
        ),
        (
            [
                "add",
                "h",
                "--provider",
                "hmac",
                "--secret",
                "s",
                "--option",
                "algorithm=md5",
            ],
            "algorithm",
        ),
        (
            [
                "add",
                "h",
                "--provider",
                "hmac",
                "--secret",
                "s",
                "--option",
                "colour=red",
            ],
            "unknown option",
        ),
        (
            ["add", "h", "--provider", "hmac", "--secret", "s", "--option", "novalue"],
            "NAME=VALUE",
        ),
    ],
)
def test_add_with_bad_input_fails_clearly(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_add_existing_slug_fails() -> None:
    make_endpoint("gh")
    with pytest.raises(CommandError, match="exists already"):
        run("add", "gh", "--provider", "github", "--secret", "s")


def test_add_unknown_provider_is_refused_by_the_parser() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        run("add", "x", "--provider", "acme", "--secret", "s")


def test_list_shows_endpoints_without_secrets() -> None:
    make_endpoint("gh", secret="very-secret-value")
    output = run("list")
    assert "gh\tgithub\tactive\t1 valid secret(s)" in output
    assert "very-secret-value" not in output


def test_list_without_endpoints_says_how_to_add_one() -> None:
    assert "webhooks_endpoint add" in run("list")


def test_rotate_keeps_the_old_secret_for_the_grace_period() -> None:
    endpoint = make_endpoint("gh", secret="old")
    run("rotate", "gh", "--secret", "new", "--grace-hours", "2")
    assert endpoint.valid_secrets() == ["new", "old"]
    old = endpoint.secrets.get(value="old")
    assert abs(old.expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(
        minutes=1
    )


def test_rotate_with_zero_grace_invalidates_the_old_secret_now() -> None:
    endpoint = make_endpoint("gh", secret="old")
    run("rotate", "gh", "--secret", "new", "--grace-hours", "0")
    assert endpoint.valid_secrets() == ["new"]


def test_rotate_does_not_extend_a_secret_already_expiring_sooner() -> None:
    endpoint = make_endpoint("gh", secret="oldest")
    run("rotate", "gh", "--secret", "older", "--grace-hours", "1")
    run("rotate", "gh", "--secret", "new", "--grace-hours", "48")
    oldest = endpoint.secrets.get(value="oldest")
    assert oldest.expires_at < timezone.now() + timedelta(hours=2)


def test_rotate_generated_prints_the_new_secret() -> None:
    endpoint = make_endpoint("gh", secret="old")
    output = run("rotate", "gh", "--generate-secret")
    assert endpoint.valid_secrets()[0] in output


def test_rotate_needs_a_secret_option() -> None:
    make_endpoint("gh")
    with pytest.raises(CommandError):
        run("rotate", "gh")


def test_rotate_unknown_slug_fails() -> None:
    with pytest.raises(CommandError, match="No endpoint"):
        run("rotate", "nope", "--secret", "x")


def test_disable_and_enable() -> None:
    endpoint = make_endpoint("gh")
    run("disable", "gh")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    run("enable", "gh")
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_remove_endpoint_without_events() -> None:
    make_endpoint("gh")
    assert "removed" in run("remove", "gh")
    assert not Endpoint.objects.exists()


def test_remove_endpoint_with_events_is_refused() -> None:
    endpoint = make_endpoint("gh")
    make_event(endpoint)
    with pytest.raises(CommandError, match="1 stored event"):
        run("remove", "gh")
    assert Endpoint.objects.exists()
