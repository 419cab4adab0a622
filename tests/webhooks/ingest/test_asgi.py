"""The lean front door: deliveries skip the site's middleware; everything else does not."""

from __future__ import annotations

import pytest
from channels.testing import HttpCommunicator
from django.test import override_settings

from tests.asgi import application
from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import github_headers
from webhooks.models import Event

pytestmark = pytest.mark.usefixtures("async_db_connections")


def asgi_headers(headers: dict[str, str], body: bytes) -> list[tuple[bytes, bytes]]:
    pairs = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *pairs,
    ]


def header_names(response: dict) -> set[bytes]:
    return {name.lower() for name, _ in response["headers"]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_delivery_through_the_front_door_is_stored() -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    body = b'{"zen": "Keep it logically awesome."}'
    communicator = HttpCommunicator(
        application,
        "POST",
        "/webhooks/gh/",
        body=body,
        headers=asgi_headers(github_headers(body), body),
    )
    response = await communicator.get_response()
    await communicator.wait()  # let the handler finish and close the request body
    assert response["status"] == 200, response["body"]
    event = await Event.objects.aget()
    assert bytes(event.body) == body


@pytest.mark.asyncio
@override_settings(WEBHOOKS_MAX_BODY_BYTES=10)
async def test_front_door_refuses_a_declared_oversized_body_without_reading_it() -> (
    None
):
    communicator = HttpCommunicator(
        application,
        "POST",
        "/webhooks/gh/",
        body=b"",
        headers=[(b"host", b"testserver"), (b"content-length", b"999999999")],
    )
    response = await communicator.get_response()
    await communicator.wait()  # let the handler finish and close the request body
    assert response["status"] == 413
    assert response["body"] == b'{"error": "body_too_large", "limit": 10}'


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_front_door_runs_no_site_middleware() -> None:
    # SessionMiddleware would add "Vary: Cookie"; CommonMiddleware would validate
    # the host. Neither runs for deliveries.
    communicator = HttpCommunicator(
        application,
        "POST",
        "/webhooks/nope/",
        body=b"{}",
        headers=[(b"host", b"testserver"), (b"content-length", b"2")],
    )
    response = await communicator.get_response()
    await communicator.wait()  # let the handler finish and close the request body
    assert response["status"] == 404
    assert b"vary" not in header_names(response)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_other_paths_go_through_the_site_application() -> None:
    communicator = HttpCommunicator(
        application, "GET", "/admin/login/", headers=[(b"host", b"testserver")]
    )
    response = await communicator.get_response()
    await communicator.wait()  # let the handler finish and close the request body
    assert response["status"] == 200
    assert b"set-cookie" in header_names(response)
