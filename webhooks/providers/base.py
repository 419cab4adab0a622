from __future__ import annotations

import functools
import inspect
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from webhooks.exceptions import ProviderConfigError
from webhooks.providers import payloads
from webhooks.providers.delivery import Answer, Delivery

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True)
class Signed:
    """What a provider sends along with a body it signed."""

    #: The signature headers (and any the signature covers, such as a timestamp).
    headers: dict[str, str] = field(default_factory=dict)
    #: The URL to post to: the one given, unless the scheme changes it (Twilio's bodySHA256).
    url: str = ""
    #: The body to post when the scheme carries its signature inside it (Mailgun);
    #: None: the body given, unchanged.
    body: bytes | None = None


class KeyUnavailable(Exception):
    """A key the provider publishes could not be had now (not fetched, unreachable, too large)."""


class KeySource(Protocol):
    """Where keys that a provider publishes on its own servers come from (PayPal's
    certificates), and the roots they must chain to.

    Providers never fetch anything themselves: the caller gives them a source,
    which fetches, caps, times out and keeps what it got (``webhooks.ingest.keys``).
    """

    def fetch(self, url: str) -> bytes:
        """The document at ``url``; raise :class:`KeyUnavailable` when it cannot be had."""
        ...

    def trusted_roots(self) -> Sequence[x509.Certificate]:
        """The CA certificates a fetched certificate chain must lead to."""
        ...


class NoKeys:
    """The source of a provider built without one: nothing can be fetched."""

    def fetch(self, url: str) -> bytes:
        raise KeyUnavailable("no key source given")

    def trusted_roots(self) -> Sequence[x509.Certificate]:
        return []


class Provider:
    """How one provider signs, identifies and types its deliveries.

    A subclass sets the class attributes and implements :meth:`verify`; it
    overrides the other methods where the provider differs from the defaults.
    An instance is built per endpoint with that endpoint's ``options`` (and,
    for providers that set :attr:`uses_remote_keys`, a :class:`KeySource`); it
    keeps nothing from one call to the next.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Providers written before handshake() received the secrets override it with
        # (delivery, payload): wrap those so they keep working unchanged.
        own = cls.__dict__.get("handshake")
        if own is not None and len(inspect.signature(own).parameters) == 3:
            old = own

            @functools.wraps(old)
            def handshake(
                self: Provider,
                delivery: Delivery,
                payload: Any,
                secrets: Sequence[str] = (),
            ) -> Answer | None:
                return old(self, delivery, payload)  # type: ignore[no-any-return]

            cls.handshake = handshake  # type: ignore[method-assign]

    #: The id stored on endpoints and events, such as ``"github"``.
    id: ClassVar[str]
    #: Human name for the admin and docs.
    name: ClassVar[str]
    #: The provider's page on how it signs deliveries.
    docs_url: ClassVar[str] = ""
    #: Seconds a signed timestamp may be off when the endpoint sets none; None: not timestamped.
    default_tolerance: ClassVar[int | None] = None
    #: False for providers that verify nothing and so need no secret.
    needs_secret: ClassVar[bool] = True
    #: Methods besides POST that the provider uses, for handshakes (``{"GET"}``).
    extra_methods: ClassVar[frozenset[str]] = frozenset()
    #: Lower-case names of headers that carry a secret as is (GitLab's token):
    #: stored redacted, like Authorization.
    secret_headers: ClassVar[frozenset[str]] = frozenset()
    #: Option names an endpoint may set, with their defaults.
    option_defaults: ClassVar[Mapping[str, Any]] = {}
    #: True for providers that verify with keys published on their own servers:
    #: they are built with a :class:`KeySource` (``self.keys``).
    uses_remote_keys: ClassVar[bool] = False

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        keys: KeySource | None = None,
    ) -> None:
        self.keys: KeySource = keys if keys is not None else NoKeys()
        options = dict(options or {})
        unknown = set(options) - set(self.option_defaults)
        if unknown:
            raise ProviderConfigError(
                f"unknown option(s) for provider {self.id!r}: {', '.join(sorted(unknown))}"
            )
        self.options = {**self.option_defaults, **options}

    @classmethod
    def generate_secret(cls) -> str:
        """A new random secret in the form the provider's dashboard would show."""
        return secrets.token_urlsafe(32)

    def check_secret(self, secret: str) -> None:
        """Raise :class:`~webhooks.exceptions.ProviderConfigError` for a secret this
        provider cannot use (a public key that does not parse), so the admin and
        ``webhooks_endpoint`` refuse it before any delivery does. The message
        must not repeat the secret.
        """

    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        """Raise :class:`~webhooks.exceptions.InvalidSignature` unless the delivery is genuine.

        ``secrets`` holds every secret of the endpoint valid right now, newest
        first; a delivery signed with any of them is genuine (rotation).
        ``tolerance`` is the allowed clock difference in seconds (None: no
        check). Compare with :func:`webhooks.providers.signing.any_matches` only.
        """
        raise NotImplementedError

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        url: str,
        delivery_id: str,
        timestamp: int,
        content_type: str,
    ) -> Signed:
        """Sign ``body`` with ``secret`` exactly as the provider does, for ``webhooks_send``.

        ``url`` is where the body will be posted, ``delivery_id`` and
        ``timestamp`` (unix seconds) the values to sign where the scheme has
        them. Return the headers the provider would send for the signature and
        the URL to post to; :meth:`verify` must accept the result. A provider
        that cannot sign leaves this unimplemented.
        """
        raise NotImplementedError(
            f"provider {self.id!r} cannot sign deliveries: {type(self).__name__} "
            "does not implement sign()"
        )

    def signs_request_url(self) -> bool:
        """True when the signature covers the URL the provider called (Twilio).

        Such an endpoint needs ``WEBHOOKS_PUBLIC_URL`` (or trusted proxies) behind
        a proxy or tunnel; system check ``webhooks.W003`` says so.
        """
        return False

    def parse(self, delivery: Delivery) -> Any:
        """The payload to store: JSON or form by content type, None when it does not parse."""
        return payloads.parse(delivery)

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        """The provider's id of this delivery, stable across its retries; None: use a body hash."""
        return None

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        """The event type handlers are registered for; empty when the provider sends none."""
        return payloads.field(payload, "type") or ""

    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        """The answer to a verified handshake (URL verification, challenge), else None.

        ``secrets`` are those :meth:`verify` was given, for answers that prove the
        receiver holds the secret (Zoom's). A handshake is recorded like any
        delivery but never processed.
        """
        return None
