from __future__ import annotations

import webhooks
from webhooks.models import Event


@webhooks.handler("none")
def nothing(event: Event) -> None:
    return None
