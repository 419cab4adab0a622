from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from webhooks.providers import payloads
from webhooks.providers.basic import BasicAuthProvider
from webhooks.providers.delivery import Delivery

#: The time field of each record type, so that two opens of one message stay two events.
TIME_FIELDS = ("ReceivedAt", "DeliveredAt", "BouncedAt", "ChangedAt", "Date")


class PostmarkProvider(BasicAuthProvider):
    """Postmark signs nothing: it sends the credentials written in the webhook URL.

    Give Postmark ``https://user:password@host/webhooks/<slug>/`` and the endpoint
    the secret ``user:password``. That proves the sender knows the password; the
    body, its time and its origin are not protected. Require Postmark's published
    source networks on the endpoint (``--allow-ip``) as well.
    """

    id = "postmark"
    name = "Postmark"
    docs_url = "https://postmarkapp.com/developer/webhooks/webhooks-overview"
    option_defaults: ClassVar[Mapping[str, Any]] = {}

    # A retry carries the same record, so its type, message and time name it.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        message_id = payloads.field(payload, "MessageID")
        if not message_id:
            return None
        kind = payloads.field(payload, "RecordType") or "Inbound"
        moment = next(
            (
                value
                for value in (payloads.field(payload, name) for name in TIME_FIELDS)
                if value
            ),
            "",
        )
        return f"{kind}:{message_id}:{moment}"

    # Inbound messages carry no RecordType.
    def event_type(self, delivery: Delivery, payload: Any) -> str:
        record_type = payloads.field(payload, "RecordType")
        if record_type:
            return record_type
        return "Inbound" if payloads.field(payload, "MessageID") else ""
