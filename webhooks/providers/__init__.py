"""The provider registry: built-in providers plus any named in ``WEBHOOKS_PROVIDERS``."""

from __future__ import annotations

import functools
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from webhooks.conf import conf
from webhooks.exceptions import UnknownProviderError
from webhooks.providers.base import Provider

BUILTIN: dict[str, str] = {
    "stripe": "webhooks.providers.stripe.StripeProvider",
    "github": "webhooks.providers.github.GitHubProvider",
    "shopify": "webhooks.providers.shopify.ShopifyProvider",
    "slack": "webhooks.providers.slack.SlackProvider",
    "twilio": "webhooks.providers.twilio.TwilioProvider",
    "standard": "webhooks.providers.standard.StandardWebhooksProvider",
    "gitlab": "webhooks.providers.gitlab.GitLabProvider",
    "bitbucket": "webhooks.providers.bitbucket.BitbucketProvider",
    "paddle": "webhooks.providers.paddle.PaddleProvider",
    "mailgun": "webhooks.providers.mailgun.MailgunProvider",
    "square": "webhooks.providers.square.SquareProvider",
    "linear": "webhooks.providers.linear.LinearProvider",
    "intercom": "webhooks.providers.intercom.IntercomProvider",
    "postmark": "webhooks.providers.postmark.PostmarkProvider",
    "resend": "webhooks.providers.resend.ResendProvider",
    "clerk": "webhooks.providers.clerk.ClerkProvider",
    "svix": "webhooks.providers.svix.SvixProvider",
    "sendgrid": "webhooks.providers.sendgrid.SendGridProvider",
    "discord": "webhooks.providers.discord.DiscordProvider",
    "zoom": "webhooks.providers.zoom.ZoomProvider",
    "twitch": "webhooks.providers.twitch.TwitchProvider",
    "meta": "webhooks.providers.meta.MetaProvider",
    "paypal": "webhooks.providers.paypal.PayPalProvider",
    "hmac": "webhooks.providers.hmac.HmacProvider",
    "basic": "webhooks.providers.basic.BasicAuthProvider",
    "none": "webhooks.providers.none.UnsignedProvider",
}


@functools.cache
def provider_classes() -> dict[str, type[Provider]]:
    """Every provider class by id. Raises ImportError for a bad dotted path in settings."""
    paths = {**BUILTIN, **conf.PROVIDERS}
    return {provider_id: import_string(path) for provider_id, path in paths.items()}


def provider_ids() -> list[str]:
    return sorted({*BUILTIN, *conf.PROVIDERS})


def get_provider(provider_id: str, options: dict[str, Any] | None = None) -> Provider:
    try:
        cls = provider_classes()[provider_id]
    except KeyError:
        raise UnknownProviderError(f"no provider {provider_id!r}") from None
    return cls(options)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "WEBHOOKS_PROVIDERS":
        provider_classes.cache_clear()
