"""Alerts from real processing: endpoint health signals, dead events, and the notifiers
(Django's locmem mail backend, and a real HTTP receiver on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import django
import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks import signals
from webhooks.alerts import health, notify
from webhooks.models import Endpoint, Event
from webhooks.processing import batches, claims, handlers

pytestmark = pytest.mark.django_db

# Django 6 takes plain addresses and deprecates the (name, address) pairs 5.2 needs.
ADMINS = (
    ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]
)
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
ALERTS = {
    "ADMINS": ADMINS,
    # Django 6.1 asks for MAILERS (and warns without it); earlier versions ignore it.
    "MAILERS": {"default": {"BACKEND": LOCMEM}},
    "WEBHOOKS_ALERT_MIN_RUNS": 4,
    "WEBHOOKS_ALERT_FAILURE_RATE": 0.5,
    "WEBHOOKS_MAX_ATTEMPTS": 1,
}


@pytest.fixture(autouse=True)
def _fresh_windows() -> Iterator[None]:
    health.forget()
    yield
    health.forget()


@pytest.fixture
def shop(db):
    """An endpoint whose handler fails while ``shop["down"]`` is true."""
    state = {"down": True, "endpoint": make_endpoint("shop", "github")}

    def fulfil(event: Event) -> None:
        if state["down"]:
            raise ConnectionError("the shop's API is down")

    handlers.handler("github", "push")(fulfil)
    yield state
    handlers.unregister(fulfil)


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The alert signals sent, in order."""
    log: list[tuple[str, dict[str, Any]]] = []

    def listener(name: str):
        def receive(sender, **kwargs):
            log.append((name, kwargs))

        return receive

    receivers = {
        signals.endpoint_unhealthy: listener("unhealthy"),
        signals.endpoint_recovered: listener("recovered"),
        signals.event_dead: listener("dead"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    yield log
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def process(endpoint: Endpoint, count: int, capture) -> None:
    """Store ``count`` push events and run them, each step announced as its commit would."""
    start = Event.objects.count()
    for number in range(count):
        make_event(
            endpoint,
            f"d{start + number}",
            event_type="push",
            next_attempt_at=timezone.now(),
        )
    with capture(execute=True):
        claimed = claims.claim_events(count, "alert-test")
    for event in claimed:
        with capture(execute=True):
            batches.run_claimed(event)


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


@override_settings(**ALERTS)
def test_failing_handlers_make_the_endpoint_unhealthy_once_and_then_recovered(
    shop, heard, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    process(shop["endpoint"], 3, capture)
    assert [name for name, _ in heard] == ["dead"] * 3  # too few runs to judge
    process(shop["endpoint"], 3, capture)
    unhealthy = [kwargs for name, kwargs in heard if name == "unhealthy"]
    assert len(unhealthy) == 1
    assert unhealthy[0]["endpoint"].slug == "shop"
    assert unhealthy[0]["failure_rate"] == 1.0
    assert Endpoint.objects.get().unhealthy_since is not None

    shop["down"] = False
    process(shop["endpoint"], 6, capture)  # 6 of 12 failed: not yet below 25%
    assert "recovered" not in [name for name, _ in heard]
    process(shop["endpoint"], 13, capture)  # 6 of 25 failed: 24%
    assert [name for name, _ in heard].count("recovered") == 1
    assert [name for name, _ in heard].count("unhealthy") == 1
    assert Endpoint.objects.get().unhealthy_since is None

    first = Event.objects.order_by("id").values_list("id", flat=True).first()
    assert subjects() == [
        f"[Django] Webhook endpoint shop: event {first} failed for good",
        "[Django] Webhook endpoint shop: 100% of handler runs failing",
        "[Django] Resolved: webhook endpoint shop is healthy again",
    ]
    assert mail.outbox[0].to == ["ops@example.com"]
    assert "the shop's API is down" in mail.outbox[0].body


@override_settings(**ALERTS)
def test_notices_are_debounced_per_endpoint(
    shop, heard, django_capture_on_commit_callbacks
) -> None:
    endpoint = shop["endpoint"]
    health.became_unhealthy(endpoint, 0.9)
    health.recovered(endpoint)
    health.became_unhealthy(endpoint, 0.8)  # flapping inside the repeat period
    health.recovered(endpoint)
    assert [name for name, _ in heard] == [
        "unhealthy",
        "recovered",
        "unhealthy",
        "recovered",
    ]
    assert subjects() == [
        "[Django] Webhook endpoint shop: 90% of handler runs failing",
        "[Django] Resolved: webhook endpoint shop is healthy again",
    ]
    with override_settings(WEBHOOKS_ALERT_REPEAT_SECONDS=0):
        health.became_unhealthy(endpoint, 0.7)
    assert (
        subjects()[-1] == "[Django] Webhook endpoint shop: 70% of handler runs failing"
    )

    process(endpoint, 2, django_capture_on_commit_callbacks)
    dead_notices = [s for s in subjects() if "failed for good" in s]
    assert [name for name, _ in heard].count("dead") == 2
    assert (
        len(dead_notices) == 1
    )  # the second dead event within the period is not mailed


@override_settings(**ALERTS)
def test_of_two_processes_noticing_the_change_one_sends_the_signal(shop, heard) -> None:
    seen_by_one = Endpoint.objects.get()
    seen_by_other = Endpoint.objects.get()
    assert health.became_unhealthy(seen_by_one, 0.6)
    assert not health.became_unhealthy(seen_by_other, 0.6)
    assert [name for name, _ in heard] == ["unhealthy"]


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", handler
    server.shutdown()
    server.server_close()


def test_the_webhook_notifier_posts_json_notices(shop, receiver) -> None:
    url, handler = receiver
    with override_settings(
        WEBHOOKS_ALERT_NOTIFIER="webhook", WEBHOOKS_ALERT_WEBHOOK_URL=url
    ):
        health.became_unhealthy(shop["endpoint"], 0.75)
        health.recovered(shop["endpoint"])
    kinds = [(notice["kind"], notice["endpoint"]) for notice in handler.received]
    assert kinds == [("unhealthy", "shop"), ("resolved", "shop")]
    assert handler.received[0]["failure_rate"] == 0.75
    assert handler.received[0]["subject"].endswith("75% of handler runs failing")
    assert not mail.outbox


def test_a_failing_notifier_is_logged_and_changes_nothing_else(
    shop, receiver, caplog
) -> None:
    url, handler = receiver
    handler.status = 500
    with override_settings(
        WEBHOOKS_ALERT_NOTIFIER="webhook", WEBHOOKS_ALERT_WEBHOOK_URL=url
    ):
        assert health.became_unhealthy(shop["endpoint"], 0.75)
    assert len(handler.received) == 1
    assert "could not be sent" in caplog.text
    assert Endpoint.objects.get().unhealthy_since is not None


def test_a_notifier_nobody_listens_at_is_logged(shop, caplog) -> None:
    with override_settings(
        WEBHOOKS_ALERT_NOTIFIER="webhook",
        WEBHOOKS_ALERT_WEBHOOK_URL="http://127.0.0.1:9/nothing-here",
    ):
        health.became_unhealthy(shop["endpoint"], 0.75)
    assert "could not be sent" in caplog.text


notices: list[notify.Notice] = []


def collect(notice: notify.Notice) -> None:
    notices.append(notice)


def test_a_notifier_of_your_own_by_dotted_path_and_none_for_silence(shop) -> None:
    notices.clear()
    with override_settings(
        WEBHOOKS_ALERT_NOTIFIER="tests.webhooks.alerts.test_alerts.collect"
    ):
        health.became_unhealthy(shop["endpoint"], 0.5)
    assert [notice.kind for notice in notices] == ["unhealthy"]
    with override_settings(
        WEBHOOKS_ALERT_NOTIFIER=None, WEBHOOKS_ALERT_REPEAT_SECONDS=0
    ):
        health.recovered(shop["endpoint"])
        health.became_unhealthy(shop["endpoint"], 0.5)
    assert len(notices) == 1
    assert not mail.outbox


@override_settings(WEBHOOKS_ALERT_WINDOW_SECONDS=10)
def test_the_window_counts_only_the_outcomes_of_its_last_seconds() -> None:
    # Outcomes at t = 0..29, every third one failed; the window holds t - 10 .. t.
    outcomes = [(float(t), t % 3 == 0) for t in range(30)]
    for t, failed in outcomes:
        runs, rate = health.record(7, failed, now=t)
        kept = [bad for moment, bad in outcomes[: int(t) + 1] if moment >= t - 10]
        assert (runs, rate) == (len(kept), sum(kept) / len(kept))
    assert health.record(8, False, now=29.0) == (1, 0.0)  # per endpoint
    assert health.record(7, True, now=100.0) == (1, 1.0)  # all else has aged out


def test_the_window_keeps_counts_per_second_not_each_outcome() -> None:
    window = health.Window()
    for n in range(10_000):  # a busy worker's second
        runs, rate = window.add(5 + n / 20_000, n % 4 == 0, horizon=0)
    assert (runs, rate, len(window.seconds)) == (10_000, 0.25, 1)
    # A window shorter than a second still holds the outcome just recorded.
    assert window.add(60.9, False, horizon=60.5) == (1, 0.0)
