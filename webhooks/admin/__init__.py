"""The admin pages of the app; importing the package registers them with ``admin.site``."""

from __future__ import annotations

from webhooks.admin.endpoints import EndpointAdmin
from webhooks.admin.events import EventAdmin
from webhooks.admin.rejections import RejectionAdmin
from webhooks.admin.tokens import ApiTokenAdmin

__all__ = ["ApiTokenAdmin", "EndpointAdmin", "EventAdmin", "RejectionAdmin"]
