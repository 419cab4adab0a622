"""The demo project's ASGI application plus static files, for the browser test's daphne.

``manage.py runserver`` serves static files itself; a bare ``daphne`` does not, and
the live page needs its module and stylesheet. Everything else, the WebSocket route
in AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...))) included, is the
project's own application.
"""

from __future__ import annotations

import os

# Before project.asgi, which would otherwise default to project.settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_browser")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from project.asgi import application as project_application

application = ASGIStaticFilesHandler(project_application)
