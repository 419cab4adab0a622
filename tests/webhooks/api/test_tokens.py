"""API tokens: hashed at rest, refused when revoked or when the user may not, scoped."""

from __future__ import annotations

import hashlib
import logging
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tests.factories import make_endpoint, make_event
from tests.webhooks.api.support import bearer, token_for, user_with
from webhooks.api import tokens
from webhooks.models import ApiToken

pytestmark = pytest.mark.django_db

EVENTS = reverse("webhooks:api-events")


def replay_url(event_id: int) -> str:
    return reverse("webhooks:api-replay", args=[event_id])


def command(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_issue_stores_only_the_sha256_of_the_token() -> None:
    token, raw = tokens.issue(user_with("view_event"), "ci")

    stored = ApiToken.objects.values().get(pk=token.pk)
    assert raw.startswith(tokens.MARK) and len(raw) > 40
    assert stored["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert stored["prefix"] == raw[: tokens.PREFIX_CHARS]
    assert not any(raw in str(value) for value in stored.values())


def test_valid_token_reads_and_records_last_use(client: Client) -> None:
    raw = token_for("view_event")

    response = client.get(EVENTS, **bearer(raw))

    assert response.status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_token"),
        ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}, "missing_token"),
        ({"HTTP_AUTHORIZATION": "Bearer whk_not-a-token"}, "invalid_token"),
    ],
)
def test_missing_or_unknown_token_answers_401_in_json(
    client: Client, headers: dict[str, str], reason: str
) -> None:
    response = client.get(EVENTS, **headers)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "reason": reason}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_refused(client: Client) -> None:
    raw = token_for("view_event")
    tokens.revoke(ApiToken.objects.get())

    response = client.get(EVENTS, **bearer(raw))

    assert response.status_code == 401
    assert response.json()["reason"] == "invalid_token"


def test_token_of_inactive_user_is_refused(client: Client) -> None:
    raw = token_for("view_event")
    User.objects.update(is_active=False)

    assert client.get(EVENTS, **bearer(raw)).status_code == 401


def test_token_of_user_without_view_permission_answers_403(client: Client) -> None:
    raw = token_for()

    response = client.get(EVENTS, **bearer(raw))

    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "reason": "missing_permission"}


def test_read_only_token_cannot_replay(client: Client) -> None:
    event = make_event(make_endpoint(), status="failed")
    raw = token_for("view_event", "change_event", scope=ApiToken.Scope.READ)

    response = client.post(replay_url(event.pk), **bearer(raw))

    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "reason": "read_only_token"}
    event.refresh_from_db()
    assert event.status == "failed"


def test_replay_token_needs_the_users_change_permission(client: Client) -> None:
    event = make_event(make_endpoint(), status="failed")
    raw = token_for("view_event", scope=ApiToken.Scope.REPLAY)

    response = client.post(replay_url(event.pk), **bearer(raw))

    assert response.status_code == 403
    assert response.json()["reason"] == "missing_permission"


def test_replay_token_with_permission_queues_the_event(client: Client) -> None:
    event = make_event(make_endpoint(), status="failed", attempts=8)
    raw = token_for("view_event", "change_event", scope=ApiToken.Scope.REPLAY)

    response = client.post(replay_url(event.pk), **bearer(raw))

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["event"]["id"] == event.pk
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 0)


def test_token_never_appears_in_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    user_with("view_event", "change_event", username="ops")
    caplog.set_level(logging.DEBUG)

    raw = command("create", "ops", "--scope", "replay").strip().splitlines()[-1]
    event = make_event(make_endpoint())
    assert client.get(EVENTS, **bearer(raw)).status_code == 200
    assert client.post(replay_url(event.pk), **bearer(raw)).status_code == 202
    client.get(EVENTS, **bearer(raw + "x"))
    tokens.revoke(ApiToken.objects.get())
    client.get(EVENTS, **bearer(raw))

    assert caplog.records, "the requests above log (401s at least)"
    assert raw not in caplog.text
    assert raw[tokens.PREFIX_CHARS :] not in caplog.text


def test_command_create_prints_the_token_once_and_list_shows_only_the_prefix() -> None:
    user_with("view_event", username="ops")

    raw = command("create", "ops", "--name", "laptop").strip().splitlines()[-1]
    listing = command("list", "ops")

    assert tokens.authenticate(raw) == ApiToken.objects.get()
    assert raw[: tokens.PREFIX_CHARS] in listing and "laptop" in listing
    assert raw not in listing


def test_command_revoke_by_prefix_refuses_the_token() -> None:
    user_with("view_event", username="ops")
    raw = command("create", "ops").strip().splitlines()[-1]

    command("revoke", "ops", "--prefix", raw[: tokens.PREFIX_CHARS])

    assert tokens.authenticate(raw) == tokens.INVALID
    assert "revoked" in command("list", "ops")


def test_command_refuses_unknown_and_inactive_users() -> None:
    user_with(username="gone", is_active=False)

    with pytest.raises(CommandError, match="No user"):
        command("create", "nobody")
    with pytest.raises(CommandError, match="inactive"):
        command("create", "gone")


def test_command_revoke_without_a_match_is_an_error() -> None:
    user_with("view_event", username="ops")

    with pytest.raises(CommandError, match="No live token"):
        command("revoke", "ops", "--all")
