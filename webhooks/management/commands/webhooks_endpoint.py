from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug
from django.db import transaction
from django.urls import reverse

from webhooks.api.links import DEVELOPMENT_URL, endpoint_url
from webhooks.checks import invalid_networks
from webhooks.conf import conf
from webhooks.exceptions import ProviderConfigError, UnknownProviderError
from webhooks.models import Endpoint, validate_not_reserved
from webhooks.processing import pausing
from webhooks.providers import get_provider, provider_ids
from webhooks.providers.base import Provider


class Command(BaseCommand):
    help = (
        "Add, list, rotate the secret of, disable, enable or remove webhook endpoints."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Create an endpoint and print its URL.")
        add.add_argument("slug")
        add.add_argument("--provider", required=True, choices=provider_ids())
        self._secret_arguments(add, required=False)
        add.add_argument(
            "--tolerance", type=int, help="Allowed clock difference, in seconds."
        )
        add.add_argument(
            "--allow-ip",
            action="append",
            default=[],
            metavar="CIDR",
            help="Accept deliveries only from this network (repeatable).",
        )
        add.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A provider option, for hmac, basic and none (repeatable).",
        )
        url_help = (
            "The origin providers call, for the printed URLs (default: "
            f"WEBHOOKS_PUBLIC_URL, else {DEVELOPMENT_URL})."
        )
        add.add_argument("--url", metavar="BASE", help=url_help)
        listing = actions.add_parser("list", help="List endpoints.")
        listing.add_argument("--url", metavar="BASE", help=url_help)
        rotate = actions.add_parser(
            "rotate", help="Replace the secret, keeping the old one a while."
        )
        rotate.add_argument("slug")
        self._secret_arguments(rotate, required=True)
        rotate.add_argument(
            "--grace-hours",
            type=float,
            default=24.0,
            help="Hours the previous secret stays valid (default 24).",
        )
        for name, text in (
            ("disable", "Answer 404 to deliveries, keeping events."),
            ("enable", "Accept deliveries again."),
            ("remove", "Delete an endpoint that has no events."),
        ):
            actions.add_parser(name, help=text).add_argument("slug")
        paused = actions.add_parser(
            "pause", help="Hold its handlers; deliveries are still stored and answered."
        )
        paused.add_argument("slug")
        paused.add_argument(
            "--reason", default="", help="Shown in the admin and live page."
        )
        actions.add_parser(
            "resume", help="Run the handlers again, waiting events first, in order."
        ).add_argument("slug")

    def _secret_arguments(self, parser: ArgumentParser, *, required: bool) -> None:
        group = parser.add_mutually_exclusive_group(required=required)
        group.add_argument("--secret", help="The secret the provider shows you.")
        group.add_argument(
            "--generate-secret", action="store_true", help="Make a random one."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['action']}")(options)

    def handle_add(self, options: dict[str, Any]) -> None:
        slug = options["slug"]
        try:
            validate_slug(slug)
            validate_not_reserved(slug)
        except ValidationError as error:
            raise CommandError(f"{slug!r}: {' '.join(error.messages)}") from None
        if Endpoint.objects.filter(slug=slug).exists():
            raise CommandError(f"An endpoint {slug!r} exists already.")
        provider_options = parse_options(options["option"])
        try:
            provider = get_provider(options["provider"], provider_options)
        except (UnknownProviderError, ProviderConfigError) as error:
            raise CommandError(str(error)) from None
        bad = invalid_networks(options["allow_ip"])
        if bad:
            raise CommandError(f"Not networks: {', '.join(bad)}")
        secret = (
            provider.generate_secret()
            if options["generate_secret"]
            else options["secret"]
        )
        if provider.needs_secret and not secret:
            raise CommandError(
                f"Provider {provider.id!r} verifies signatures: pass --secret or --generate-secret."
            )
        if secret:
            check_secret(provider, secret)
        with transaction.atomic():
            endpoint = Endpoint.objects.create(
                slug=slug,
                provider=provider.id,
                options=provider_options,
                tolerance_seconds=options["tolerance"],
                allowed_networks=options["allow_ip"],
            )
            if secret:
                endpoint.secrets.create(value=secret)
        self.stdout.write(f"Endpoint {slug} ({provider.name}) created.")
        self.stdout.write(
            f"URL to give the provider: {public_url(endpoint, options['url'])}"
        )
        if not (options["url"] or conf.PUBLIC_URL):
            self.stdout.write(
                "(the address of manage.py runserver; a server elsewhere: pass "
                "--url BASE, or set WEBHOOKS_PUBLIC_URL)"
            )
        if options["generate_secret"]:
            self.stdout.write(f"Secret (shown once): {secret}")

    def handle_list(self, options: dict[str, Any]) -> None:
        endpoints = Endpoint.objects.prefetch_related("secrets")
        if not endpoints:
            self.stdout.write(
                "No endpoints. Add one: manage.py webhooks_endpoint add SLUG --provider P ..."
            )
            return
        for endpoint in endpoints:
            state = "active" if endpoint.is_active else "disabled"
            if endpoint.paused:
                state += ", paused"
            secrets = len(endpoint.valid_secrets())
            self.stdout.write(
                f"{endpoint.slug}\t{endpoint.provider}\t{state}\t{secrets} valid secret(s)\t"
                f"{endpoint.rejected_count} rejected\t"
                f"{public_url(endpoint, options['url'])}"
            )

    def handle_rotate(self, options: dict[str, Any]) -> None:
        endpoint = self._endpoint(options["slug"])
        if options["grace_hours"] < 0:
            raise CommandError("--grace-hours cannot be negative.")
        provider = endpoint.get_provider()
        secret = (
            provider.generate_secret()
            if options["generate_secret"]
            else options["secret"]
        )
        check_secret(provider, secret)
        endpoint.rotate_secret(secret, timedelta(hours=options["grace_hours"]))
        self.stdout.write(
            f"Secret of {endpoint.slug} rotated; earlier secrets stay valid for "
            f"{options['grace_hours']:g} hour(s)."
        )
        if options["generate_secret"]:
            self.stdout.write(f"Secret (shown once): {secret}")

    def handle_disable(self, options: dict[str, Any]) -> None:
        self._set_active(options["slug"], False)

    def handle_enable(self, options: dict[str, Any]) -> None:
        self._set_active(options["slug"], True)

    def handle_pause(self, options: dict[str, Any]) -> None:
        endpoint = self._endpoint(options["slug"])
        reason = options["reason"] or "paused from the command line"
        if not pausing.pause(endpoint, reason):
            self.stdout.write(
                f"Endpoint {endpoint.slug} was paused already ({endpoint.paused_reason})."
            )
            return
        self.stdout.write(
            f"Endpoint {endpoint.slug} paused: deliveries are stored and answered, "
            f"handlers wait ({pausing.waiting(endpoint)} event(s) waiting)."
        )

    def handle_resume(self, options: dict[str, Any]) -> None:
        endpoint = self._endpoint(options["slug"])
        waiting = pausing.waiting(endpoint)
        if not pausing.resume(endpoint):
            self.stdout.write(f"Endpoint {endpoint.slug} was not paused.")
            return
        self.stdout.write(
            f"Endpoint {endpoint.slug} resumed: {waiting} waiting event(s) run in order."
        )

    def handle_remove(self, options: dict[str, Any]) -> None:
        endpoint = self._endpoint(options["slug"])
        stored = endpoint.events.count()
        if stored:
            raise CommandError(
                f"{endpoint.slug} has {stored} stored event(s); disable it instead, "
                "or prune its events first."
            )
        endpoint.delete()
        self.stdout.write(f"Endpoint {endpoint.slug} removed.")

    def _set_active(self, slug: str, active: bool) -> None:
        endpoint = self._endpoint(slug)
        endpoint.is_active = active
        endpoint.save(update_fields=["is_active", "updated_at"])
        self.stdout.write(f"Endpoint {slug} {'enabled' if active else 'disabled'}.")

    def _endpoint(self, slug: str) -> Endpoint:
        try:
            return Endpoint.objects.get(slug=slug)
        except Endpoint.DoesNotExist:
            raise CommandError(f"No endpoint {slug!r}.") from None


def public_url(endpoint: Endpoint, base: str | None) -> str:
    """The endpoint's URL under ``base`` (an origin such as ``https://hooks.example.com``)."""
    if not base:
        return endpoint_url(endpoint)
    path = reverse("webhooks:receive", kwargs={"slug": endpoint.slug})
    return base.rstrip("/") + path


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs; a value that reads as JSON (numbers, true) is taken as such."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, found, value = pair.partition("=")
        if not found or not name:
            raise CommandError(f"--option takes NAME=VALUE, not {pair!r}.")
        try:
            options[name] = json.loads(value)
        except ValueError:
            options[name] = value
    return options


def check_secret(provider: Provider, secret: str) -> None:
    try:
        provider.check_secret(secret)
    except ProviderConfigError as error:
        raise CommandError(f"Not a secret for {provider.id!r}: {error}") from None
