"""Bearer tokens for the events API, the stream and the relay."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webhooks.models.fields import recorded_time


class ApiToken(models.Model):
    """A bearer token for the events API, the stream and the relay, acting as its user.

    Only a SHA-256 hash of the token is stored: the token is high-entropy random
    text, so a fast hash is enough (nothing to brute-force), and a stolen
    database yields no usable token. ``prefix`` identifies it in lists.
    """

    class Scope(models.TextChoices):
        READ = "read", "read"
        REPLAY = "replay", "read and replay"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webhook_tokens",
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    scope = models.CharField(
        max_length=10,
        choices=Scope,
        default=Scope.READ,
        help_text="Replay also needs the user's webhooks.change_event permission.",
    )
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = recorded_time()
    revoked_at = recorded_time()

    class Meta:
        ordering = ["-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
