"""The demo project's settings for the hostile-input runs against real servers.

Every record at WARNING or above, from any logger, goes to the server's stderr
with its level, so a test can require that none is an ERROR. The rejection
throttle is off (each hostile example stands alone) and the body limit small.
"""

from __future__ import annotations

from project.settings import *  # noqa: F403

WEBHOOKS_REJECTION_LIMIT = None
WEBHOOKS_MAX_BODY_BYTES = 64 * 1024

LOGGING = {
    **LOGGING,  # noqa: F405
    "root": {"handlers": ["console"], "level": "WARNING"},
}
