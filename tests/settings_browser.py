"""The demo project's settings under a strict Content-Security-Policy, for the browser test.

The server runs in another process than pytest, so it cannot use the pytest-django
test database: the test passes a file database through DATABASE_URL, which
project.settings (the one module that reads the environment) picks up.
"""

from __future__ import annotations

from project.settings import *  # noqa: F403
from project.settings import MIDDLEWARE

MIDDLEWARE = ["tests.csp.strict_csp", *MIDDLEWARE]
