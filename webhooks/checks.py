"""System checks: each problem a user would trip on, with an id and a fix."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from webhooks.conf import conf
from webhooks.exceptions import ProviderConfigError, UnknownProviderError
from webhooks.providers import get_provider, provider_classes, provider_ids


@register()
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    try:
        provider_classes()
    except ImportError as error:
        messages.append(
            Error(
                f"A provider class in WEBHOOKS_PROVIDERS cannot be imported: {error}",
                hint="Each value of WEBHOOKS_PROVIDERS is the dotted path of a Provider subclass.",
                id="webhooks.E001",
            )
        )
    limit: object = conf.MAX_BODY_BYTES
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        messages.append(
            Error(
                "WEBHOOKS_MAX_BODY_BYTES must be a positive integer.",
                id="webhooks.E003",
            )
        )
    for name in ("WEBHOOKS_TRUSTED_PROXIES",):
        bad = invalid_networks(getattr(settings, name, ()))
        if bad:
            messages.append(
                Error(
                    f"{name} holds entries that are not networks: {', '.join(bad)}",
                    hint='Use CIDR notation, such as "10.0.0.0/8" or "127.0.0.1/32".',
                    id="webhooks.E004",
                )
            )
    for name in ("WEBHOOKS_RATE_LIMIT_PER_ENDPOINT", "WEBHOOKS_RATE_LIMIT_PER_SOURCE"):
        value = getattr(settings, name, None)
        if value is not None and not valid_rate(value):
            messages.append(
                Error(
                    f"{name} must be None or (requests, seconds) with both positive.",
                    id="webhooks.E005",
                )
            )
    return messages


@register()
def check_urls(**kwargs: Any) -> list[CheckMessage]:
    """Deliveries need webhooks.urls: without it every endpoint URL is the site's 404."""
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("webhooks:receive", kwargs={"slug": "check"})
    except NoReverseMatch:
        return [
            Error(
                "webhooks.urls is not included, so no endpoint URL exists and every "
                "delivery answers the site's 404.",
                hint='Add path("webhooks/", include("webhooks.urls")) to your ROOT_URLCONF.',
                id="webhooks.E007",
            )
        ]
    return []


# Endpoints live in the database, so these run with the database checks
# (migrate, and "check --database default").
@register(Tags.database)
def check_endpoints(
    databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases:
        return []
    from webhooks.models import Endpoint

    messages: list[CheckMessage] = []
    try:
        endpoints = list(Endpoint.objects.prefetch_related("secrets"))
    except DatabaseError:
        return []  # Not migrated yet: nothing to check.
    for endpoint in endpoints:
        messages.extend(endpoint_problems(endpoint))
    return messages


def endpoint_problems(endpoint: Any) -> list[CheckMessage]:
    label = f"Endpoint {endpoint.slug!r}"
    try:
        provider = get_provider(endpoint.provider, endpoint.options)
    except UnknownProviderError:
        return [
            Error(
                f"{label} uses the unknown provider {endpoint.provider!r}; its deliveries answer 503.",
                hint=f"Known providers: {', '.join(provider_ids())}; or add it to WEBHOOKS_PROVIDERS.",
                obj=endpoint,
                id="webhooks.E002",
            )
        ]
    except ProviderConfigError as error:
        return [
            Error(
                f"{label} has invalid provider options: {error}",
                obj=endpoint,
                id="webhooks.E006",
            )
        ]
    messages: list[CheckMessage] = []
    if not provider.needs_secret and not settings.DEBUG and endpoint.is_active:
        messages.append(
            Warning(
                f"{label} accepts unsigned deliveries while DEBUG is off.",
                hint="Anyone who knows the URL can store events. Use a signed provider, or "
                "at least allowed networks.",
                obj=endpoint,
                id="webhooks.W001",
            )
        )
    if provider.needs_secret and endpoint.is_active and not endpoint.valid_secrets():
        messages.append(
            Warning(
                f"{label} has no valid secret, so every delivery is refused.",
                hint=f"python manage.py webhooks_endpoint rotate {endpoint.slug} --generate-secret",
                obj=endpoint,
                id="webhooks.W002",
            )
        )
    if (
        provider.signs_request_url()
        and endpoint.is_active
        and not settings.DEBUG
        and not conf.PUBLIC_URL
        and not conf.TRUSTED_PROXIES
    ):
        messages.append(
            Warning(
                f"{label} ({provider.name}) is signed over the URL the provider called, "
                "and WEBHOOKS_PUBLIC_URL is unset: behind a proxy, load balancer or "
                "tunnel the URL this server sees differs, and every delivery is refused.",
                hint='Set WEBHOOKS_PUBLIC_URL = "https://<the host providers call>", or list '
                "your proxies in WEBHOOKS_TRUSTED_PROXIES so that X-Forwarded-Proto and "
                "X-Forwarded-Host are believed.",
                obj=endpoint,
                id="webhooks.W003",
            )
        )
    bad = invalid_networks(endpoint.allowed_networks)
    if bad:
        messages.append(
            Error(
                f"{label} has allowed networks that are not networks: {', '.join(bad)}",
                obj=endpoint,
                id="webhooks.E004",
            )
        )
    return messages


def invalid_networks(networks: Any) -> list[str]:
    if isinstance(networks, str) or not isinstance(networks, list | tuple):
        return [repr(networks)]
    bad = []
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            bad.append(repr(network))
    return bad


def valid_rate(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(part, int | float) and part > 0 for part in value)
    )
