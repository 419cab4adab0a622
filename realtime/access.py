"""Who may watch the live feed, re-read for a socket that is already open.

The handshake checks the session once; a socket can stay open for days after.
:func:`still_allowed` reads the session again from its store, by the key the
socket was opened with, and the user again from the database, so a logout, an
expired or flushed session, a changed password, or a user who lost staff status
or the permission all show up. It is two small queries, run every
``REALTIME_RECHECK_SECONDS`` per socket and never per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, cast

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from realtime import queries


@dataclass
class _SessionOnly:
    # auth.get_user reads nothing from a request but its session.
    session: Any


@dataclass(frozen=True)
class Access:
    view: bool
    replay: bool


def still_allowed(session_key: str | None, user_id: Any) -> Access:
    """What the session ``session_key`` still allows, re-read from its store.

    Nothing when the session is gone, expired or now holds another user.
    """
    if not session_key:
        return Access(view=False, replay=False)
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    user = auth.get_user(cast(HttpRequest, _SessionOnly(session)))
    if user.pk is None or user.pk != user_id:
        return Access(view=False, replay=False)
    return Access(view=queries.can_view(user), replay=queries.can_replay(user))
