from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from webhooks.api.links import DEVELOPMENT_URL
from webhooks.conf import conf
from webhooks.exceptions import ProviderConfigError, UnknownProviderError
from webhooks.models import Endpoint
from webhooks.providers import provider_ids
from webhooks.providers.base import Provider
from webhooks.sending import client, samples
from webhooks.sending.signed import signed_delivery

#: Up to this many deliveries, each gets a line of its own.
DETAILED_COUNT = 20


class Command(BaseCommand):
    help = (
        "Post realistic deliveries to an endpoint, signed with its current secret "
        "exactly as its provider signs them, and report how they were answered."
    )
    # The checks describe the server's configuration; this only posts to it over
    # HTTP, as a provider would, and must not bury its output under their warnings.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?", help="The endpoint to deliver to.")
        parser.add_argument(
            "--type", help="Sample event type (default: the provider's first)."
        )
        parser.add_argument(
            "--data",
            metavar="FILE",
            help="Send this body instead of a sample ('-' reads stdin); "
            "{{id}}, {{uuid}}, {{now}}, ... placeholders are filled in.",
        )
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument(
            "--rate", type=float, help="Deliveries per second (default: no limit)."
        )
        parser.add_argument(
            "--concurrency", type=int, default=10, help="Requests in flight at most."
        )
        parser.add_argument(
            "--url",
            metavar="BASE",
            help="Server to post to (default: WEBHOOKS_PUBLIC_URL or "
            f"{DEVELOPMENT_URL}).",
        )
        parser.add_argument(
            "--list-types",
            action="store_true",
            help="List the sample event types (of the endpoint's provider, or all).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list_types"]:
            self._list_types(options["slug"])
            return
        if not options["slug"]:
            raise CommandError("Name the endpoint: webhooks_send SLUG.")
        self._check_numbers(options)
        endpoint = self._endpoint(options["slug"])
        provider = self._provider(endpoint)
        secrets = endpoint.valid_secrets()
        if provider.needs_secret and not secrets:
            raise CommandError(f"Endpoint {endpoint.slug!r} has no valid secret.")
        data = _read_data(options["data"]) if options["data"] is not None else None
        base = (options["url"] or conf.PUBLIC_URL or DEVELOPMENT_URL).rstrip("/")
        path = reverse("webhooks:receive", kwargs={"slug": endpoint.slug})
        # URL-signing providers (Twilio) are checked against the public URL when one
        # is set, whatever address this command reaches the server at.
        urls = (base + path, (conf.PUBLIC_URL or base) + path)

        def prepare(index: int) -> client.Outgoing:
            return _prepare(
                provider, secrets[0] if secrets else "", urls, options, data
            )

        try:
            prepare(-1)  # Fails here, before any network, on a bad type or secret.
        except samples.UnknownSampleError as error:
            raise CommandError(str(error)) from None
        except (NotImplementedError, ValueError) as error:
            raise CommandError(f"Cannot sign for {endpoint.slug!r}: {error}") from None
        self._send(prepare, options, base)

    def _check_numbers(self, options: dict[str, Any]) -> None:
        if options["count"] < 1:
            raise CommandError("--count must be at least 1.")
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        if options["rate"] is not None and options["rate"] <= 0:
            raise CommandError("--rate must be positive.")

    def _endpoint(self, slug: str) -> Endpoint:
        try:
            return Endpoint.objects.prefetch_related("secrets").get(slug=slug)
        except Endpoint.DoesNotExist:
            known = ", ".join(Endpoint.objects.values_list("slug", flat=True))
            raise CommandError(
                f"No endpoint {slug!r}. Endpoints: {known or 'none yet'}."
            ) from None

    def _provider(self, endpoint: Endpoint) -> Provider:
        try:
            return endpoint.get_provider()
        except (UnknownProviderError, ProviderConfigError) as error:
            raise CommandError(f"Endpoint {endpoint.slug!r}: {error}") from None

    def _list_types(self, slug: str | None) -> None:
        if slug:
            provider_id = self._endpoint(slug).provider
            self.stdout.write("\n".join(samples.types(provider_id)))
            return
        for provider_id in provider_ids():
            self.stdout.write(f"{provider_id}: {', '.join(samples.types(provider_id))}")

    def _send(
        self,
        prepare: Callable[[int], client.Outgoing],
        options: dict[str, Any],
        base: str,
    ) -> None:
        count = options["count"]
        detailed = count <= DETAILED_COUNT
        try:
            summary = asyncio.run(
                client.send(
                    prepare,
                    count,
                    rate=options["rate"],
                    concurrency=options["concurrency"],
                    on_result=self._write_result if detailed else None,
                )
            )
        except client.ServerUnreachableError as error:
            raise CommandError(
                f"No server is running at {base} ({error}). Start it (make run), "
                "or pass --url."
            ) from None
        if count > 1:
            self._write_summary(summary)
        failed = summary.sent - summary.accepted
        if failed:
            reasons = "; ".join(
                f"{_outcome(*key)} x{times}"
                for key, times in summary.failures().most_common()
            )
            raise CommandError(
                f"{failed} of {summary.sent} deliveries not accepted: {reasons}"
            )

    def _write_result(self, result: client.Result) -> None:
        status = _outcome(result.status, result.answer, result.reason)
        # The stored event's id, for webhooks_replay and the admin.
        if result.event_id is not None:
            status += f" (event {result.event_id})"
        line = f"#{result.index + 1}  {status}  {result.latency * 1000:.1f} ms"
        self.stdout.write(line, self.style.SUCCESS if result.ok else self.style.ERROR)

    def _write_summary(self, summary: client.Summary) -> None:
        self.stdout.write(
            f"sent {summary.sent}  2xx {summary.accepted}  "
            f"duplicates {summary.duplicates}"
        )
        for key, times in summary.failures().most_common():
            self.stdout.write(f"  {_outcome(*key)}: {times}", self.style.ERROR)
        ids = sorted({r.event_id for r in summary.results if r.event_id is not None})
        if ids:
            self.stdout.write(f"events {ids[0]}..{ids[-1]} ({len(ids)} stored or seen)")
        self.stdout.write(
            "latency "
            + "  ".join(
                f"p{p} {summary.latency(p) * 1000:.1f} ms" for p in (50, 95, 99)
            )
        )
        rate = summary.rate
        if rate is not None:
            self.stdout.write(
                f"achieved rate {rate:.1f}/s over {summary.duration:.1f} s"
            )


def _prepare(
    provider: Provider,
    secret: str,
    urls: tuple[str, str],
    options: dict[str, Any],
    data: bytes | None,
) -> client.Outgoing:
    """The delivery to post to ``urls[0]``, signed as if sent to ``urls[1]``."""
    url, public_url = urls
    return signed_delivery(
        provider,
        secret,
        url=url,
        public_url=public_url,
        event_type=options["type"],
        data=data,
    )


def _read_data(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CommandError(f"Cannot read --data {path}: {error.strerror}") from None


def _outcome(status: int | None, answer: str, reason: str) -> str:
    text = str(status) if status is not None else "no answer"
    if answer:
        text += f" {answer}"
    if reason:
        text += f" ({reason})"
    return text
