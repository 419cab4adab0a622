from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from webhooks.providers import payloads
from webhooks.providers.base import Provider
from webhooks.providers.delivery import Delivery


class ConfigurableProvider(Provider):
    """Base of the generic providers: where the id and type are is set per endpoint.

    Options: ``id_header`` or ``id_field`` (a dotted path into the payload) name
    the delivery id, else the body hash is used; ``type_header`` or
    ``type_field`` (default ``"type"``) name the event type.
    """

    option_defaults: ClassVar[Mapping[str, Any]] = {
        "id_header": "",
        "id_field": "",
        "type_header": "",
        "type_field": "type",
    }

    def _lookup(
        self, delivery: Delivery, payload: Any, header: str, path: str
    ) -> str | None:
        if header:
            return delivery.header(header)
        if path:
            return payloads.field(payload, *path.split("."))
        return None

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return self._lookup(
            delivery, payload, self.options["id_header"], self.options["id_field"]
        )

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        found = self._lookup(
            delivery, payload, self.options["type_header"], self.options["type_field"]
        )
        return found or ""
