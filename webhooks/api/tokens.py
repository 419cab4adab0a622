"""API tokens: issued once, stored as a hash, checked on every API request.

A token is ``whk_`` followed by 43 URL-safe characters (256 random bits). The
prefix keeps tokens recognisable to secret scanners and in lists; nothing here
logs a token or any part of it beyond the stored prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from webhooks.models import ApiToken

MARK = "whk_"
PREFIX_CHARS = 12
VIEW_PERMISSION = "webhooks.view_event"
REPLAY_PERMISSION = "webhooks.change_event"
#: ``last_used_at`` is written at most this often per token, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(
    user: Any, name: str, scope: str = ApiToken.Scope.READ
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; the raw token is returned here and never again."""
    raw = MARK + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        prefix=raw[:PREFIX_CHARS],
        key_hash=hash_token(raw),
    )
    return token, raw


def revoke(token: ApiToken) -> bool:
    """Revoke ``token``; False when it was revoked already."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return True


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    reason: str


MISSING = Refusal(401, "unauthorized", "missing_token")
INVALID = Refusal(401, "unauthorized", "invalid_token")
NO_PERMISSION = Refusal(403, "forbidden", "missing_permission")
READ_ONLY = Refusal(403, "forbidden", "read_only_token")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


def authenticate(raw: str | None, *, replay: bool = False) -> ApiToken | Refusal:
    """The live token for ``raw`` whose user may read (and replay), or why not.

    Permissions are the user's, checked on every request, so removing a
    permission or deactivating the user takes effect at once.
    """
    if raw is None:
        return MISSING
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    # Looked up by the hash of what was sent: the time a lookup takes says
    # nothing about the stored tokens.
    if token is None:
        return INVALID
    user = token.user
    if not user.is_active:
        return INVALID
    if not user.has_perm(VIEW_PERMISSION):
        return NO_PERMISSION
    if replay:
        if token.scope != ApiToken.Scope.REPLAY:
            return READ_ONLY
        if not user.has_perm(REPLAY_PERMISSION):
            return NO_PERMISSION
    touch(token)
    return token


def touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
