from __future__ import annotations

import contextlib
from argparse import Namespace
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.relay import client as relay


class Command(BaseCommand):
    help = (
        "Forward an inbox's deliveries to a local URL with their original body and "
        "headers (also installed as the webhooks-listen console script)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        relay.arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        # The command's stdout wrapper writes and flushes as a text stream does.
        out = cast(TextIO, self.stdout)
        forwarder = relay.relay_from(Namespace(**options), out)
        with contextlib.suppress(KeyboardInterrupt):
            try:
                forwarder.run()
            except relay.RefusedError as exc:
                raise CommandError(str(exc)) from None
