"""Header values carrying CR/LF, NUL, markup and non-UTF-8 bytes, from the wire to the admin.

They arrive as raw ASGI header bytes, are stored (NUL dropped, the rest as
text), and are shown escaped: never as markup, never as a header of the page
that shows them.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.factories import make_endpoint
from tests.webhooks.admin.support import change_url
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Event, Rejection

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = [
    (b"x-split", b"a\r\nSet-Cookie: pwned=1\r\n\r\n<script>alert(1)</script>"),
    (b"x-nul", b"before\x00after"),
    (b"x-markup", b'"><img src=x onerror=alert(1)>'),
    (b"x-latin", b"caf\xe9 \xff"),
]


async def post(body: bytes, headers: dict[str, str]) -> int:
    from project.asgi import application

    communicator = HttpCommunicator(
        application,
        "POST",
        "/webhooks/gh/",
        body=body,
        headers=[
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            *[
                (name.lower().encode(), value.encode())
                for name, value in headers.items()
            ],
            *HOSTILE,
        ],
    )
    response = await communicator.get_response()
    await communicator.wait()
    return int(response["status"])


def shown_safely(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    assert "pwned" not in response.get("Set-Cookie", "")
    assert not any("pwned" in value for _, value in response.items())
    content = response.content.decode()
    assert "<script>alert(1)" not in content
    assert "<img src=x" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "\x00" not in content
    return content


def test_hostile_header_values_are_stored_as_text_and_shown_escaped() -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    body = b'{"zen": "ok"}'
    assert async_to_sync(post)(body, github_headers(body)) == 200
    assert async_to_sync(post)(body, github_headers(body, secret="wrong")) == 401

    event = Event.objects.get()
    rejection = Rejection.objects.get(endpoint=endpoint)
    for stored in (event.headers, rejection.headers):
        assert stored["x-split"] == (
            "a\r\nSet-Cookie: pwned=1\r\n\r\n<script>alert(1)</script>"
        )
        assert stored["x-nul"] == "beforeafter"
        assert stored["x-latin"] == "café ÿ"  # ASGI header bytes are latin-1

    staff = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(staff)
    shown_safely(client, change_url(event))
    shown_safely(client, change_url(rejection))
    # The live page's detail is JSON data, which its script inserts as text.
    detail = client.get(reverse("realtime:event_detail", args=[event.pk]))
    assert detail["Content-Type"] == "application/json"
    assert "pwned" not in detail.get("Set-Cookie", "")
    assert json.loads(detail.content)["headers"]["x-markup"] == (
        '"><img src=x onerror=alert(1)>'
    )
