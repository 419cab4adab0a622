"""Both front doors refuse the same request with the same answer, for every refusal reason.

The Django view is driven by Django's async test client (the site's whole
application, middleware included); the lean ASGI door by the tests' ASGI
application with the endpoint already kept in the process, so its deliveries
are decided in the event loop. Each case names the answer of CONTRACT.md
section 5 it must get, and the rejection it must record, on either door.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.test import AsyncClient, override_settings
from django.test.client import FakePayload

from tests.asgi import application
from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import github_headers
from tests.webhooks.providers.test_meta import VERIFY_TOKEN
from tests.webhooks.providers.test_stripe import SECRET as STRIPE_SECRET
from tests.webhooks.providers.test_stripe import raw_header
from webhooks.ingest import endpoints as lookup
from webhooks.ingest.ratelimit import buckets
from webhooks.models import Rejection
from webhooks.providers.base import Provider

pytestmark = [
    pytest.mark.usefixtures("async_db_connections"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]

SECRET = "s3cret"
BODY = b'{"zen": "Design for failure."}'
SOURCE = "127.0.0.1"
LIMIT = 100  # WEBHOOKS_MAX_BODY_BYTES in the 413 cases


class BrokenProvider(Provider):
    """A provider whose own code fails: the delivery must still get an answer."""

    id = "broken"
    name = "Broken"

    def verify(self, delivery, secrets, *, tolerance, now) -> None:
        raise RuntimeError("a bug in a provider")


@dataclass(frozen=True)
class Request:
    method: str = "POST"
    path: str = "/webhooks/gh/"
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = BODY
    #: Content-Length to declare: the body's length when None; no header when -1.
    declared: int | None = None
    #: Bytes per http.request message on the ASGI door.
    chunk: int = 1 << 20

    def header_list(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
        length = len(self.body) if self.declared is None else self.declared
        if length >= 0:
            headers.append((b"content-length", str(length).encode()))
        headers += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        return headers


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


async def through_view(request: Request) -> Reply:
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.request(
        method=request.method,
        path=request.path,
        query_string=request.query,
        headers=request.header_list(),
        client=[SOURCE, 50000],
        _body_file=FakePayload(request.body),
    )
    return Reply(
        response.status_code,
        json.loads(response.content),
        {name.lower(): value for name, value in response.headers.items()},
    )


async def through_asgi(request: Request) -> Reply:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.query.encode(),
        "headers": request.header_list(),
        "client": (SOURCE, 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    body = request.body
    chunks = [body[i : i + request.chunk] for i in range(0, len(body), request.chunk)]
    for n, chunk in enumerate(chunks or [b""]):
        await communicator.send_input(
            {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        )
    start = await communicator.receive_output(timeout=10)
    content = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return Reply(
        start["status"],
        json.loads(content["body"]),
        {k.decode().lower(): v.decode() for k, v in start["headers"]},
    )


Door = Callable[[Request], Awaitable[Reply]]
DOORS: dict[str, Door] = {"view": through_view, "asgi": through_asgi}


@dataclass(frozen=True)
class Case:
    request: Request
    status: int
    body: dict[str, Any]
    #: The Rejection reason the refusal records; None: it records none.
    recorded: str | None = None
    #: Headers the answer must carry, with their values.
    headers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: Requests sent first, each answered 200 (to use up a rate limit).
    before: int = 0


def invalid(reason: str) -> dict[str, str]:
    return {"error": "invalid_signature", "reason": reason}


def meta_subscription(token: str) -> str:
    return urlencode(
        {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"}
    )


RETRY = {"retry-after": "30"}
STALE = int(time.time()) - 3600

CASES = {
    "missing_signature": Case(
        Request(headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}),
        401,
        invalid("missing_signature"),
        "missing_signature",
    ),
    "malformed_signature": Case(
        Request(
            headers={**github_headers(BODY, SECRET), "X-Hub-Signature-256": "sha1=00"}
        ),
        401,
        invalid("malformed_signature"),
        "malformed_signature",
    ),
    "signature_mismatch": Case(
        Request(headers=github_headers(BODY, "not the secret")),
        401,
        invalid("signature_mismatch"),
        "signature_mismatch",
    ),
    "timestamp_out_of_tolerance": Case(
        Request(
            path="/webhooks/stripe/",
            headers={"Stripe-Signature": raw_header(BODY, STRIPE_SECRET, STALE)},
        ),
        401,
        invalid("timestamp_out_of_tolerance"),
        "timestamp_out_of_tolerance",
    ),
    "ip_not_allowed": Case(
        Request(path="/webhooks/walled/", headers=github_headers(BODY, SECRET)),
        403,
        {"error": "forbidden", "reason": "ip_not_allowed"},
        "ip_not_allowed",
    ),
    "verify_token_mismatch": Case(
        Request(
            method="GET",
            path="/webhooks/meta/",
            query=meta_subscription("guess"),
            body=b"",
        ),
        403,
        {"error": "forbidden", "reason": "verify_token_mismatch"},
        "verify_token_mismatch",
    ),
    "unknown_endpoint": Case(
        Request(path="/webhooks/nope/", headers=github_headers(BODY, SECRET)),
        404,
        {"error": "unknown_endpoint"},
    ),
    "method_refused_by_the_door": Case(
        Request(method="PUT", headers=github_headers(BODY, SECRET)),
        405,
        {"error": "method_not_allowed"},
        headers={"allow": "POST"},
    ),
    "method_refused_by_the_provider": Case(
        Request(method="GET", body=b""),
        405,
        {"error": "method_not_allowed"},
        headers={"allow": "POST"},
    ),
    "declared_body_too_large": Case(
        Request(body=b"x" * (LIMIT + 1), headers=github_headers(b"x" * (LIMIT + 1))),
        413,
        {"error": "body_too_large", "limit": LIMIT},
        settings={"WEBHOOKS_MAX_BODY_BYTES": LIMIT},
    ),
    "streamed_body_too_large": Case(
        Request(body=b"x" * (3 * LIMIT), declared=-1, chunk=LIMIT // 2),
        413,
        {"error": "body_too_large", "limit": LIMIT},
        settings={"WEBHOOKS_MAX_BODY_BYTES": LIMIT},
    ),
    "under_declared_body_too_large": Case(
        Request(body=b"x" * (3 * LIMIT), declared=10, chunk=LIMIT // 2),
        413,
        {"error": "body_too_large", "limit": LIMIT},
        settings={"WEBHOOKS_MAX_BODY_BYTES": LIMIT},
    ),
    "rate_limited_per_source": Case(
        Request(headers=github_headers(BODY, SECRET)),
        429,
        {"error": "rate_limited"},
        headers=RETRY,
        settings={"WEBHOOKS_RATE_LIMIT_PER_SOURCE": (2, 60)},
        before=2,
    ),
    "rate_limited_per_endpoint": Case(
        Request(headers=github_headers(BODY, SECRET)),
        429,
        {"error": "rate_limited"},
        headers=RETRY,
        settings={"WEBHOOKS_RATE_LIMIT_PER_ENDPOINT": (2, 60)},
        before=2,
    ),
    # The order of the steps: the endpoint's limit comes before the signature,
    # so a flood of forged deliveries costs no verification once it is used up.
    "rate_limited_per_endpoint_before_the_signature": Case(
        Request(headers=github_headers(BODY, "not the secret")),
        429,
        {"error": "rate_limited"},
        headers=RETRY,
        settings={"WEBHOOKS_RATE_LIMIT_PER_ENDPOINT": (2, 60)},
        before=2,
    ),
    "misconfigured_endpoint": Case(
        Request(path="/webhooks/odd/", headers=github_headers(BODY, SECRET)),
        503,
        {"error": "unavailable"},
        headers=RETRY,
    ),
    "unexpected_failure": Case(
        Request(path="/webhooks/broken/", headers=github_headers(BODY, SECRET)),
        503,
        {"error": "unavailable"},
        headers=RETRY,
        settings={"WEBHOOKS_PROVIDERS": {"broken": f"{__name__}.BrokenProvider"}},
    ),
}

SLUGS = ("gh", "stripe", "walled", "meta", "odd", "broken", "nope")


def make_endpoints() -> None:
    make_endpoint("gh", "github", SECRET)
    make_endpoint("stripe", "stripe", STRIPE_SECRET)
    make_endpoint("walled", "github", SECRET, allowed_networks=["10.0.0.0/8"])
    make_endpoint("meta", "meta", SECRET, options={"verify_token": VERIFY_TOKEN})
    make_endpoint("odd", "no-such-provider", SECRET)
    make_endpoint("broken", "broken", SECRET)


def fresh_process_state() -> None:
    buckets.clear()
    lookup.forget()
    for slug in SLUGS:  # kept, so the ASGI door decides in the event loop
        lookup.find(slug)


async def answer(door: str, case: Case) -> tuple[Reply, list[str]]:
    """``door``'s answer to the case's request, and the rejections it recorded."""
    await sync_to_async(fresh_process_state)()
    await Rejection.objects.all().adelete()
    for n in range(case.before):
        body = json.dumps({"n": n}).encode()
        warm = await DOORS[door](
            Request(body=body, headers=github_headers(body, SECRET))
        )
        assert warm.status == 200, warm
    reply = await DOORS[door](case.request)
    recorded = [
        reason async for reason in Rejection.objects.values_list("reason", flat=True)
    ]
    return reply, recorded


@pytest.mark.parametrize("name", list(CASES))
async def test_both_doors_give_the_same_answer(name: str, caplog) -> None:
    case = CASES[name]
    await sync_to_async(make_endpoints)()
    replies = {}
    with override_settings(**case.settings), caplog.at_level(logging.INFO, "webhooks"):
        for door in DOORS:
            replies[door] = await answer(door, case)
    view, asgi = replies["view"], replies["asgi"]
    assert (view[0].status, view[0].body) == (asgi[0].status, asgi[0].body)
    assert (view[0].status, view[0].body) == (case.status, case.body)
    for reply, recorded in (view, asgi):
        assert recorded == ([case.recorded] if case.recorded else [])
        assert reply.headers["content-type"] == "application/json"
        for header, value in case.headers.items():
            assert reply.headers.get(header) == value, (header, reply.headers)
