"""The endpoint form: provider choice, option and network checks, write-only secrets."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms

from webhooks.exceptions import ProviderConfigError, UnknownProviderError
from webhooks.models import Endpoint
from webhooks.providers import get_provider, provider_ids
from webhooks.providers.base import Provider

DEFAULT_GRACE_HOURS = 24


def provider_choices() -> list[tuple[str, str]]:
    # A callable, so providers added through WEBHOOKS_PROVIDERS show up without a restart.
    return [(provider_id, provider_id) for provider_id in provider_ids()]


# Generic only in django-stubs; django-stubs-ext is not a runtime dependency.
if TYPE_CHECKING:
    EndpointFormBase = forms.ModelForm[Endpoint]
else:
    EndpointFormBase = forms.ModelForm


class EndpointForm(EndpointFormBase):
    provider = forms.ChoiceField(choices=provider_choices)
    new_secret = forms.CharField(
        required=False,
        # render_value=False: a secret typed in never comes back in the page,
        # not even when the form is redisplayed with errors.
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        help_text="Becomes the current secret. Leave empty to keep the secrets as they are.",
    )
    generate_secret = forms.BooleanField(
        required=False,
        label="Generate a secret",
        help_text="Shown once, after saving. Copy it into the provider's dashboard.",
    )
    # Not required: the add form leaves it out (a first secret replaces nothing).
    grace_hours = forms.IntegerField(
        required=False,
        min_value=0,
        initial=DEFAULT_GRACE_HOURS,
        label="Grace hours",
        help_text="How long the previous secret stays valid after a new one is set.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "slug",
            "provider",
            "is_active",
            "tolerance_seconds",
            "allowed_networks",
            "options",
            "event_types",
            "pause_after_failures",
        ]

    #: The provider built from the cleaned provider and options; None until clean() passes.
    provider_instance: Provider | None = None

    def clean_allowed_networks(self) -> list[str]:
        networks = self.cleaned_data["allowed_networks"]
        if networks in (None, ""):
            return []
        if not isinstance(networks, list) or not all(
            isinstance(n, str) for n in networks
        ):
            raise forms.ValidationError(
                'Enter a list of networks, such as ["192.0.2.0/24"].'
            )
        bad = [network for network in networks if not _is_network(network)]
        if bad:
            raise forms.ValidationError(f"Not networks (CIDR): {', '.join(bad)}")
        return networks

    def clean_event_types(self) -> list[str]:
        types = self.cleaned_data["event_types"]
        if types in (None, ""):
            return []
        if not isinstance(types, list) or not all(
            isinstance(t, str) and t.strip() for t in types
        ):
            raise forms.ValidationError(
                'Enter a list of event types, such as ["invoice.paid", "customer.*"].'
            )
        return [t.strip() for t in types]

    def clean_options(self) -> dict[str, Any]:
        options = self.cleaned_data["options"]
        if options in (None, ""):
            return {}
        if not isinstance(options, dict):
            raise forms.ValidationError(
                'Enter an object, such as {"header": "X-Signature"}.'
            )
        return options

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean() or {}
        self._build_provider(cleaned)
        self._check_secret(cleaned)
        return cleaned

    def _build_provider(self, cleaned: dict[str, Any]) -> None:
        if "provider" not in cleaned or "options" not in cleaned:
            return  # Already reported on the field.
        try:
            self.provider_instance = get_provider(
                cleaned["provider"], cleaned["options"]
            )
        except (ProviderConfigError, UnknownProviderError) as error:
            self.add_error("options", str(error))

    def _check_secret(self, cleaned: dict[str, Any]) -> None:
        if cleaned.get("new_secret") and cleaned.get("generate_secret"):
            self.add_error("new_secret", "Enter a secret or generate one, not both.")
        if cleaned.get("new_secret") and self.provider_instance is not None:
            try:
                self.provider_instance.check_secret(cleaned["new_secret"])
            except ProviderConfigError as error:
                self.add_error("new_secret", str(error))
        adding = self.instance._state.adding
        has_secret = cleaned.get("new_secret") or cleaned.get("generate_secret")
        # Without a secret every delivery would answer 401; say so now rather
        # than leave the user to find out from the provider's failure emails.
        if (
            adding
            and not has_secret
            and self.provider_instance
            and self.provider_instance.needs_secret
        ):
            self.add_error(
                "new_secret", "This provider needs a secret: enter one or generate one."
            )

    def grace(self) -> timedelta:
        hours = self.cleaned_data.get("grace_hours")
        return timedelta(hours=DEFAULT_GRACE_HOURS if hours is None else hours)

    def chosen_secret(self) -> tuple[str | None, bool]:
        """The secret to store after saving, if any, and whether it was generated."""
        if (
            self.cleaned_data.get("generate_secret")
            and self.provider_instance is not None
        ):
            return self.provider_instance.generate_secret(), True
        return self.cleaned_data.get("new_secret") or None, False


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True
