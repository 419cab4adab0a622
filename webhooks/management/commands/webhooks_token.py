from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.api import tokens
from webhooks.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke a user's API tokens (events API, stream and relay)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help="Create a token and print it (shown this once only)."
        )
        create.add_argument("user", help="Username the token acts as.")
        create.add_argument("--name", default="api", help="What the token is for.")
        create.add_argument(
            "--scope",
            choices=[choice.value for choice in ApiToken.Scope],
            default=ApiToken.Scope.READ,
            help="read (default) or replay (read and replay).",
        )
        listing = actions.add_parser("list", help="List a user's tokens.")
        listing.add_argument("user")
        revoke = actions.add_parser("revoke", help="Revoke tokens of a user.")
        revoke.add_argument("user")
        which = revoke.add_mutually_exclusive_group(required=True)
        which.add_argument("--prefix", help="The token's prefix, as list shows it.")
        which.add_argument("--name", help="Every live token with this name.")
        which.add_argument("--all", action="store_true", help="Every live token.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = self._user(options["user"])
        getattr(self, f"handle_{options['action']}")(user, options)

    def _user(self, username: str) -> Any:
        model = get_user_model()
        try:
            return model._default_manager.get_by_natural_key(username)
        except model.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None

    def handle_create(self, user: Any, options: dict[str, Any]) -> None:
        if not user.is_active:
            raise CommandError(f"User {user.get_username()!r} is inactive.")
        token, raw = tokens.issue(user, options["name"], options["scope"])
        if not user.has_perm(tokens.VIEW_PERMISSION):
            self.stderr.write(
                f"Warning: {user.get_username()!r} lacks {tokens.VIEW_PERMISSION}; "
                "the token is refused until the user has it."
            )
        self.stdout.write(
            f"Token {token.prefix}… ({token.name}, {token.scope}) for "
            f"{user.get_username()}. Shown once; store it now:"
        )
        self.stdout.write(raw)

    def handle_list(self, user: Any, options: dict[str, Any]) -> None:
        for token in ApiToken.objects.filter(user=user).order_by("id"):
            state = (
                f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
                if token.revoked_at
                else "live"
            )
            used = (
                f"{token.last_used_at:%Y-%m-%d %H:%M}"
                if token.last_used_at
                else "never"
            )
            self.stdout.write(
                f"{token.prefix}…  {token.name}  {token.scope}  {state}  "
                f"created {token.created_at:%Y-%m-%d %H:%M}  last used {used}"
            )

    def handle_revoke(self, user: Any, options: dict[str, Any]) -> None:
        live = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
        if options["prefix"]:
            live = live.filter(prefix=options["prefix"].rstrip("…"))
        elif options["name"]:
            live = live.filter(name=options["name"])
        revoked = [token.prefix for token in live if tokens.revoke(token)]
        if not revoked:
            raise CommandError("No live token matches.")
        self.stdout.write(f"Revoked {len(revoked)}: {', '.join(revoked)}")
