"""Prepare the demo of ``make run``: a staff user, one endpoint per provider, orders.

Idempotent: ``make run`` calls it on every start, and whatever exists is left
as it is (a password or a secret is never replaced behind the user's back).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from orders.models import Order
from orders.webhook_handlers import DEMO_SLUG_PREFIX
from webhooks.models import Endpoint
from webhooks.providers import get_provider

USERNAME = "demo"
DEFAULT_PORT = 8000
#: Demo endpoints are ``demo-<provider>``; the demo's flaky handler acts only on these.
SLUG_PREFIX = DEMO_SLUG_PREFIX
PROVIDERS = ("stripe", "github", "shopify", "slack", "twilio", "standard")
#: Orders the demo sender's Stripe payments mark paid: (reference, cents, currency).
ORDERS = (
    ("DEMO-1001", 2000, "eur"),
    ("DEMO-1002", 4500, "eur"),
    ("DEMO-1003", 1299, "usd"),
    ("DEMO-1004", 9900, "usd"),
    ("DEMO-1005", 350, "gbp"),
    ("DEMO-1006", 12000, "eur"),
)


def dashboard_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/admin/webhooks/live/"


def ensure_user() -> str | None:
    """Make sure the staff superuser exists; its new password when it was just created."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME).first()
    if user is None:
        # Generated, never fixed: a demo left running must not open with a known password.
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(USERNAME, "", password)
        return password
    if not (user.is_active and user.is_staff and user.is_superuser):
        user.is_active = user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_active", "is_staff", "is_superuser"])
    return None


def ensure_endpoints() -> list[str]:
    """One endpoint per built-in provider with a generated secret; the slugs created now."""
    created = []
    for provider_id in PROVIDERS:
        slug = SLUG_PREFIX + provider_id
        if Endpoint.objects.filter(slug=slug).exists():
            continue
        secret = get_provider(provider_id).generate_secret()
        with transaction.atomic():
            endpoint = Endpoint.objects.create(slug=slug, provider=provider_id)
            endpoint.secrets.create(value=secret)
        created.append(slug)
    return created


def ensure_orders() -> None:
    for reference, amount, currency in ORDERS:
        Order.objects.get_or_create(
            reference=reference, defaults={"amount": amount, "currency": currency}
        )


def reset_password() -> str:
    """Give the demo user a new generated password (creating the user if need be)."""
    password = ensure_user()
    if password is None:
        password = secrets.token_urlsafe(12)
        user = get_user_model().objects.get(username=USERNAME)
        user.set_password(password)
        user.save(update_fields=["password"])
    return password


def login_lines(password: str | None) -> list[str]:
    if password is not None:
        return [
            f"Log in as: {USERNAME}",
            f"Password (shown once): {password}",
            "(Lost it? manage.py demo --credentials prints a new one.)",
        ]
    return [
        f"Log in as: {USERNAME} (its password was printed when it was created; "
        "forgotten: manage.py demo --credentials prints a new one; or set your "
        f"own with manage.py changepassword {USERNAME})"
    ]


def credential_lines(port: int, password: str | None) -> list[str]:
    return [f"Dashboard: {dashboard_url(port)}", *login_lines(password)]


class Command(BaseCommand):
    help = "Create the demo user, endpoints and orders of make run, unless they exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=8000, help="For the printed dashboard URL."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = ensure_user()
        created = ensure_endpoints()
        ensure_orders()
        slugs = ", ".join(SLUG_PREFIX + provider_id for provider_id in PROVIDERS)
        self.stdout.write(f"Demo endpoints: {slugs} ({len(created)} created now)")
        for line in login_lines(password):
            self.stdout.write(line)
        self.stdout.write(f"Dashboard: {dashboard_url(options['port'])}")
