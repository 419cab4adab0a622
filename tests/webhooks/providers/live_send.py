"""One ``webhooks_send`` delivery to the test project served in this process.

pytest-django's live server runs in this process, so a provider's seams that a
test replaces (PayPal's certificate source) apply to the receiving side too.
Handshake samples (a Discord PING) are answered by the handshake, not with
"received", so any 2xx is accepted here and the caller checks the event.
"""

from __future__ import annotations

import re
from io import StringIO

from django.core.management import call_command

from webhooks.models import Event


def send_and_check(live_url: str, slug: str, event_type: str) -> Event:
    """Send one sample of ``event_type`` to ``slug``; assert a 2xx; return the new event."""
    before = set(Event.objects.values_list("pk", flat=True))
    out = StringIO()
    call_command(
        "webhooks_send", slug, "--type", event_type, "--url", live_url, stdout=out
    )
    assert re.fullmatch(r"#1  20[04]( \S+)*  \S+ ms\n", out.getvalue()), out.getvalue()
    return Event.objects.exclude(pk__in=before).get()
