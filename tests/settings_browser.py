"""The demo project's settings, for the browser test.

The server runs in another process than pytest, so it cannot use the pytest-django
test database: the test passes a file database through DATABASE_URL, which
project.settings (the one module that reads the environment) picks up. The project
sends its strict Content-Security-Policy itself (project/csp.py).
"""

from __future__ import annotations

from project.settings import *  # noqa: F403
