from __future__ import annotations

from collections.abc import Sequence

from webhooks.providers.base import Signed
from webhooks.providers.configurable import ConfigurableProvider
from webhooks.providers.delivery import Delivery


class UnsignedProvider(ConfigurableProvider):
    """Accepts every delivery. For local tests and networks you trust; a system check
    warns while it is in use with ``DEBUG`` off."""

    id = "none"
    name = "Unsigned"
    needs_secret = False

    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        return None

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        url: str,
        delivery_id: str,
        timestamp: int,
        content_type: str,
    ) -> Signed:
        return Signed({}, url)
