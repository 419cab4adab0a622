"""Webhook Inbox: receive, verify, store and process webhooks.

``webhooks.handler`` is the one public name here; it imports nothing from Django's
app registry, so importing the package stays free of side effects.
"""

from __future__ import annotations

from webhooks.processing.handlers import handler

__all__ = ["handler"]
