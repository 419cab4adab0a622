"""The event stream over real connections to real daphne processes (httpx streaming)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Redis, post_github
from tests.webhooks.api.inbox import GITHUB_SECRET, EventStream, api_token, inbox


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[int, str]]:
    """One server for the tests that need nothing else; each reads only its own events."""
    with inbox() as project:
        port = project.serve()
        yield port, api_token(project)


def deliver(port: int, number: int) -> int:
    answer = post_github(port, "gh", GITHUB_SECRET, {"n": number})
    assert answer["http_status"] == 200, answer
    return int(answer["id"])  # type: ignore[call-overload]


def test_stream_sends_stored_events_then_live_ones(shared) -> None:
    port, token = shared
    stored = [deliver(port, n) for n in range(2)]
    cursor = stored[0] - 1

    with EventStream(port, token, after_id=str(cursor)) as stream:
        content_type = stream.response.headers["content-type"]
        ready = stream.next("ready")
        first, second = stream.next(), stream.next()
        live = deliver(port, 2)
        third = stream.next()

    assert content_type.startswith("text/event-stream")
    assert json.loads(ready.data) == {"after_id": cursor}
    assert [first.id, second.id] == [str(stored[0]), str(stored[1])]
    assert third.id == str(live)
    summary = json.loads(third.data)
    assert summary["id"] == live
    assert (summary["endpoint"], summary["provider"]) == ("gh", "github")


def test_stream_without_a_cursor_starts_at_the_present(shared) -> None:
    port, token = shared
    old = deliver(port, 0)

    with EventStream(port, token) as stream:
        ready = stream.next("ready")
        new = deliver(port, 1)
        received = stream.next()

    assert json.loads(ready.data) == {"after_id": old}
    assert received.id == str(new)


def test_dropped_stream_resumes_from_last_event_id_and_misses_nothing(shared) -> None:
    port, token = shared
    with EventStream(port, token) as stream:
        stream.next("ready")
        seen = deliver(port, 0)
        assert stream.next().id == str(seen)
    missed = [deliver(port, n) for n in range(1, 4)]

    # As an EventSource reconnects: the original URL, plus Last-Event-ID.
    with EventStream(port, token, last_event_id=seen, after_id="0") as stream:
        resumed = [stream.next().id for _ in missed]
        later = deliver(port, 9)
        live = stream.next().id

    assert resumed == [str(event_id) for event_id in missed]
    assert live == str(later)


def test_stream_sends_heartbeat_comments_while_idle() -> None:
    with inbox(TEST_STREAM_HEARTBEAT_SECONDS="0.2") as project:
        port = project.serve()
        token = api_token(project)

        with EventStream(port, token) as stream:
            stream.next("ready")
            while (line := stream.next_line()) == "":
                pass

        assert line == ": keep-alive"


def test_revoking_the_token_ends_an_open_stream() -> None:
    with inbox(TEST_STREAM_HEARTBEAT_SECONDS="0.2") as project:
        port = project.serve()
        token = api_token(project)

        with EventStream(port, token) as stream:
            stream.next("ready")
            project.manage("webhooks_token", "revoke", "bot", "--all")
            ended = stream.next("error")
            rest = list(stream.events)

        assert json.loads(ended.data) == {
            "error": "unauthorized",
            "reason": "invalid_token",
        }
        assert rest == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer whk_wrong"}])
def test_stream_refuses_requests_without_a_valid_token(shared, headers) -> None:
    port, _ = shared

    response = httpx.get(
        f"http://127.0.0.1:{port}/webhooks/api/stream/", headers=headers
    )

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_stream_refuses_a_bad_cursor_with_400(shared) -> None:
    port, token = shared

    response = httpx.get(
        f"http://127.0.0.1:{port}/webhooks/api/stream/",
        headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "abc"},
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "detail": "after_id must be an integer",
    }


@pytest.mark.postgres
def test_event_stored_by_another_server_process_arrives_through_redis() -> None:
    redis = Redis()
    redis.start()
    try:
        with inbox(redis) as project:
            streaming, receiving = project.serve(), project.serve()
            token = api_token(project)
            with EventStream(streaming, token) as stream:
                stream.next("ready")
                first = deliver(receiving, 0)
                assert stream.next().id == str(first)
            missed = deliver(receiving, 1)

            # The drop: resume on the other process, which misses nothing either.
            with EventStream(receiving, token, last_event_id=first) as stream:
                assert stream.next().id == str(missed)
                live = deliver(streaming, 2)
                assert stream.next().id == str(live)
    finally:
        redis.kill()


@pytest.mark.postgres
def test_event_stored_while_redis_was_down_arrives_from_the_database() -> None:
    redis = Redis()
    redis.start()
    try:
        with inbox(redis) as project:
            streaming, receiving = project.serve(), project.serve()
            token = api_token(project)
            with EventStream(streaming, token) as stream:
                stream.next("ready")
                before = deliver(receiving, 0)
                assert stream.next().id == str(before)
                redis.kill()
                # Stored, but its news is lost with the layer.
                during = deliver(receiving, 1)
                redis.start()
                assert stream.next().id == str(during)
                after = deliver(receiving, 2)
                assert stream.next().id == str(after)
    finally:
        redis.kill()
