"""Known endpoint secrets, grepped for in every response, log record and socket frame.

Endpoints of several providers get known secrets; valid and invalid deliveries
arrive; a handler fails; then every webhooks admin page (list, add, change), the
live page, the event detail JSON and the live socket's frames are read. None of
them, nor anything logged meanwhile, holds a secret or its base64 form.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.asgi import application
from tests.factories import make_endpoint
from webhooks.models import Event
from webhooks.processing import batches, claims, handlers
from webhooks.providers import get_provider

SECRETS = {
    "github": "gh-secret-9f2c1e7a5b3d",
    "stripe": "whsec_stripe0secret0c4a8e2f6b1d",
    "slack": "slack-secret-7e1f3a9c5b2d",
    "basic": "inbox:basic-password-3b8d1f6a",
}


def forms(secret: str) -> list[str]:
    """The secret as written and as it travels in Basic credentials."""
    return [secret, base64.b64encode(secret.encode()).decode()]


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@pytest.fixture
def logged() -> Iterator[list[str]]:
    handler = Everything()
    loggers = [
        logging.getLogger(name) for name in ("", "django", "webhooks", "realtime")
    ]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler.lines
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


def deliver(client: Client, slug: str, secret: str, body: bytes) -> int:
    provider = get_provider(slug)
    url = f"http://testserver/webhooks/{slug}/"
    signed = provider.sign(
        body,
        secret,
        url=url,
        delivery_id=str(uuid.uuid4()),
        timestamp=int(time.time()),
        content_type="application/json",
    )
    response = client.post(
        f"/webhooks/{slug}/",
        body,
        content_type="application/json",
        headers=signed.headers,
    )
    return response.status_code


def admin_pages() -> list[str]:
    pages = []
    for model in admin.site._registry:
        if model._meta.app_label != "webhooks":
            continue
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        pages.append(reverse("admin:{}_{}_add".format(*info)))
        for pk in model.objects.values_list("pk", flat=True)[:5]:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
    return pages


async def socket_frames(cookie: bytes) -> list[str]:
    socket = WebsocketCommunicator(
        application,
        "/ws/webhooks/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    accepted, _ = await socket.connect(timeout=5)
    assert accepted
    frames = [await socket.receive_from(timeout=5) for _ in range(2)]
    await socket.send_json_to({"type": "resume", "after_id": 0})
    frames.append(await socket.receive_from(timeout=5))
    await socket.disconnect()
    return frames


# Committed rows: the live socket reads the snapshot on a thread of its own, which
# cannot see the rows of a test's open transaction.
@pytest.mark.django_db(transaction=True)
def test_no_secret_in_any_page_frame_or_log_line(logged, provider_client) -> None:
    for provider_id, secret in SECRETS.items():
        make_endpoint(provider_id, provider_id, secret)

    def fail(event: Event) -> None:
        raise RuntimeError(f"handler failed on {event.delivery_id}")

    handlers.handler("*", "*")(fail)
    try:
        answers = []
        for provider_id, secret in SECRETS.items():
            body = json.dumps({"id": f"evt_{provider_id}", "type": "test"}).encode()
            answers.append(deliver(provider_client, provider_id, secret, body))
            answers.append(deliver(provider_client, provider_id, secret + "x", body))
        assert answers.count(200) == len(SECRETS), answers
        for event_id in claims.claim(100, "test-worker"):
            batches.run(event_id, "test-worker")
    finally:
        handlers.unregister(fail)
    assert Event.objects.filter(status__in=["retrying", "failed"]).count() == len(
        SECRETS
    )

    staff = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(staff)
    texts = []
    for page in [
        *admin_pages(),
        reverse("realtime:live"),
        *[
            reverse("realtime:event_detail", args=[pk])
            for pk in Event.objects.values_list("pk", flat=True)
        ],
    ]:
        response = client.get(page)
        # Events and rejections come from deliveries only: their add page is refused.
        allowed = (200, 403) if page.endswith("/add/") else (200,)
        assert response.status_code in allowed, page
        texts.append(response.content.decode())
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    texts.extend(async_to_sync(socket_frames)(cookie))
    texts.extend(logged)
    assert any("handler failed on" in line for line in logged)  # the failure was logged

    everything = "\n".join(texts)
    for secret in SECRETS.values():
        for form in forms(secret):
            assert form not in everything, f"{form!r} appears"


@pytest.mark.django_db
def test_a_secret_sent_in_an_arbitrary_header_is_not_stored(provider_client) -> None:
    # Some senders put the shared secret itself in a header of their choosing.
    secret = SECRETS["github"]
    make_endpoint("github", "github", secret)
    body = b'{"zen": "x"}'
    provider = get_provider("github")
    signed = provider.sign(
        body,
        secret,
        url="http://testserver/webhooks/github/",
        delivery_id=str(uuid.uuid4()),
        timestamp=int(time.time()),
        content_type="application/json",
    )
    response = provider_client.post(
        "/webhooks/github/",
        body,
        content_type="application/json",
        headers={**signed.headers, "X-Shared-Secret": secret},
    )
    assert response.status_code == 200
    assert secret not in json.dumps(Event.objects.get().headers)
