"""The demo's traffic: a realistic mix of signed deliveries to the demo endpoints.

Every 1 to 4 seconds one delivery goes to a random demo endpoint through
``webhooks_send``, as a provider would send it. About one in twelve is forged
instead (wrong or missing signature), so the live page shows a rejection and
its reason. Stripe payments name one of the demo orders, so the orders
handler marks it paid; the demo Standard Webhooks endpoint's handler fails
about half the time (orders/webhook_handlers.py), so retries show.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import signal
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from orders.management.commands.demo_setup import SLUG_PREFIX
from orders.models import Order
from webhooks.models import Endpoint
from webhooks.sending import samples

FORGED_SHARE = 1 / 12
PAYMENT = "payment_intent.succeeded"


class Command(BaseCommand):
    help = "Post signed sample deliveries to the demo endpoints every few seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--wait", type=float, default=120, help="Seconds to wait for the server."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
        base = options["url"].rstrip("/")
        if not wait_for_server(base, stop, options["wait"]):
            if stop.is_set():
                return
            raise CommandError(f"No server answers at {base}.")
        while not stop.wait(random.uniform(1, 4)):
            try:
                self.send_one(base)
            except Exception as error:  # a busy database, a server restarting: go on
                self.say(str(error))

    def send_one(self, base: str) -> None:
        endpoints = list(Endpoint.objects.filter(slug__startswith=SLUG_PREFIX))
        if not endpoints:
            raise CommandError("No demo endpoints; run manage.py demo_setup.")
        endpoint = random.choice(endpoints)
        if random.random() < FORGED_SHARE:
            self.say(forge(base, endpoint))
            return
        event_type = random.choice(samples.types(endpoint.provider))
        output = StringIO()
        try:
            if endpoint.provider == "stripe" and event_type == PAYMENT:
                send_payment(base, endpoint.slug, output)
            else:
                arguments = [endpoint.slug, "--type", event_type, "--url", base]
                call_command("webhooks_send", *arguments, stdout=output, stderr=output)
        finally:
            # webhooks_send numbers its lines ("#1  200 received  21.3 ms"); name the
            # delivery instead, as this terminal shows deliveries to six endpoints.
            for line in output.getvalue().splitlines():
                self.say(
                    f"{endpoint.slug} {event_type}: {line.removeprefix('#1').strip()}"
                )

    def say(self, line: str) -> None:
        self.stdout.write(f"[demo sender] {line}")
        self.stdout.flush()


def wait_for_server(base: str, stop: threading.Event, timeout: float) -> bool:
    parts = urlsplit(base)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(address) == 0:
                return True
        stop.wait(0.2)
    return False


def send_payment(base: str, slug: str, output: StringIO) -> None:
    """A PaymentIntent for a demo order, pending ones first, as the shop would see it."""
    demo_orders = Order.objects.filter(reference__startswith="DEMO-")
    order = (
        demo_orders.filter(status=Order.Status.PENDING).order_by("?").first()
        or demo_orders.order_by("?").first()
    )
    if order is None:
        raise CommandError("no demo orders; run manage.py demo_setup")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as data:
        json.dump(payment_event(order), data)
        data.flush()
        arguments = [slug, "--type", PAYMENT, "--data", data.name, "--url", base]
        call_command("webhooks_send", *arguments, stdout=output, stderr=output)


def payment_event(order: Order) -> dict[str, Any]:
    """The shipped Stripe sample, paying ``order`` as the shop's checkout would ask."""
    event: dict[str, Any] = json.loads(
        samples.render("stripe", PAYMENT, now=time.time()).body
    )
    # mark_order_paid finds the order by metadata.order and checks amount and currency.
    event["data"]["object"].update(
        amount=order.amount,
        amount_received=order.amount,
        currency=order.currency,
        metadata={"order": order.reference},
    )
    return event


def forge(base: str, endpoint: Endpoint) -> str:
    """Post a delivery signed with a wrong key (or, now and then, not signed at all)."""
    body, headers = forged_delivery(endpoint.provider)
    if random.random() < 0.25:
        headers.popitem()  # the signature header is last: "missing_signature"
    path = reverse("webhooks:receive", kwargs={"slug": endpoint.slug})
    request = urllib.request.Request(
        base + path, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    reason = json.loads(answer or b"{}").get("reason", "")
    return f"{endpoint.slug}: forged delivery (on purpose) -> {status} {reason}"


def forged_delivery(provider: str) -> tuple[bytes, dict[str, str]]:
    now = str(int(time.time()))
    wrong_hex = secrets.token_hex(32)
    wrong_base64 = base64.b64encode(secrets.token_bytes(32)).decode()
    if provider == "twilio":
        body = f"MessageSid=SM{secrets.token_hex(16)}&From=%2B15005550006&Body=Hi"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers["X-Twilio-Signature"] = base64.b64encode(
            secrets.token_bytes(20)
        ).decode()
        return body.encode(), headers
    payload = {"id": f"evt_{secrets.token_hex(12)}", "note": "signed with a wrong key"}
    headers = {"Content-Type": "application/json"}
    headers.update(
        {
            "stripe": {"Stripe-Signature": f"t={now},v1={wrong_hex}"},
            "github": {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": f"sha256={wrong_hex}",
            },
            "shopify": {
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Hmac-Sha256": wrong_base64,
            },
            "slack": {
                "X-Slack-Request-Timestamp": now,
                "X-Slack-Signature": f"v0={wrong_hex}",
            },
            "standard": {
                "webhook-id": f"msg_{secrets.token_hex(12)}",
                "webhook-timestamp": now,
                "webhook-signature": f"v1,{wrong_base64}",
            },
        }.get(provider, {})
    )
    return json.dumps(payload).encode(), headers
