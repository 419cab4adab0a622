from __future__ import annotations

from django.core.asgi import get_asgi_application

from webhooks.asgi import deliveries_first

application = deliveries_first(get_asgi_application(), prefix="/webhooks/")
