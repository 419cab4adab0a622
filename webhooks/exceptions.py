from __future__ import annotations

from typing import Literal

#: The reason codes a 401 answer carries (CONTRACT.md section 5).
SignatureReason = Literal[
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "timestamp_out_of_tolerance",
]


class WebhookError(Exception):
    """Base class of the app's errors."""


class InvalidSignature(WebhookError):
    """The delivery failed verification; the view answers 401 with ``reason``.

    Providers raise it for every verification failure and never build a
    response themselves, so the answer has one shape for every provider.
    """

    def __init__(self, reason: SignatureReason, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason: SignatureReason = reason
        self.detail = detail


class VerifyTokenMismatch(InvalidSignature):
    """A subscription check (Meta's GET) carried the wrong verify token.

    The provider expects 403 for it, not 401: the view answers
    ``{"error": "forbidden", "reason": "verify_token_mismatch"}``.
    """

    def __init__(self, detail: str = "") -> None:
        super().__init__("signature_mismatch", detail)


class UnknownProviderError(WebhookError):
    """No provider class is registered under the requested id."""


class ProviderConfigError(WebhookError):
    """An endpoint's provider options are invalid (wrong type, unknown algorithm, ...)."""
