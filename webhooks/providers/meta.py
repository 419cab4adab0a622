from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from webhooks.exceptions import InvalidSignature, VerifyTokenMismatch
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Answer, Delivery

VERIFICATION_TYPE = "hub.verification"


def query(delivery: Delivery) -> dict[str, str]:
    """The URL's query parameters, the first value of each."""
    params = parse_qs(urlsplit(delivery.url).query, keep_blank_values=True)
    return {name: values[0] for name, values in params.items()}


class MetaProvider(Provider):
    """Meta's Graph API webhooks: WhatsApp Cloud API, Instagram, Messenger, Pages.

    The endpoint's secret is the App Secret. The ``verify_token`` option is the
    Verify Token typed into the app dashboard, which Meta's subscription GET
    must repeat before the challenge is answered.
    """

    id = "meta"
    name = "Meta (WhatsApp, Instagram, Messenger)"
    docs_url = "https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications"
    extra_methods = frozenset({"GET"})
    option_defaults: ClassVar[Mapping[str, Any]] = {"verify_token": ""}

    # POST: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body> keyed with
    # the App Secret. Meta escapes non-ASCII as \uXXXX, so only the raw bytes verify.
    # GET (the subscription check) is not signed: it must carry hub.mode=subscribe
    # and the endpoint's verify token.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        if delivery.method == "GET":
            self._verify_subscription(delivery)
            return
        header = signing.require(delivery.header("x-hub-signature-256"))
        signing.check_prefixed_hmac(header, delivery.body, secrets)

    def _verify_subscription(self, delivery: Delivery) -> None:
        params = query(delivery)
        token = signing.require(params.get("hub.verify_token"), "hub.verify_token")
        if params.get("hub.mode") != "subscribe" or "hub.challenge" not in params:
            raise InvalidSignature(
                "malformed_signature", "expected hub.mode=subscribe and hub.challenge"
            )
        configured = str(self.options["verify_token"])
        # No token configured: no GET can match, so the endpoint is never subscribed
        # by someone who merely guessed its URL.
        if not configured or not signing.any_matches(
            [configured.encode()], [token.encode()]
        ):
            raise VerifyTokenMismatch("verify token differs")

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
        mac = signing.hmac_digest(secret.encode(), body).hex()
        return Signed({"X-Hub-Signature-256": f"sha256={mac}"}, url)

    def parse(self, delivery: Delivery) -> Any:
        if delivery.method == "GET":
            return query(delivery)
        return super().parse(delivery)

    # Meta sends no delivery id. The ids of the messages and statuses a batch
    # carries identify it (a retry repeats them); without any, the body hash does.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        if delivery.method == "GET":
            challenge = payloads.field(payload, "hub.challenge") or ""
            return f"{VERIFICATION_TYPE}:{challenge}"
        ids = message_ids(payload)
        return ",".join(ids) if ids else None

    # "<object>.<field>" of the first change, such as
    # "whatsapp_business_account.messages"; "page.messaging" for Messenger.
    def event_type(self, delivery: Delivery, payload: Any) -> str:
        if delivery.method == "GET":
            return VERIFICATION_TYPE
        kind = payloads.field(payload, "object") or ""
        for entry in entries(payload):
            for change in listed(entry, "changes"):
                change_field = payloads.field(change, "field")
                if change_field:
                    return f"{kind}.{change_field}"
            if listed(entry, "messaging"):
                return f"{kind}.messaging"
        return kind

    # https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
    # The challenge, as sent, is the whole body of a 200.
    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        if delivery.method != "GET":
            return None
        return Answer(
            200, (payloads.field(payload, "hub.challenge") or "").encode(), "text/plain"
        )


def listed(value: Any, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def entries(payload: Any) -> list[Any]:
    return listed(payload, "entry")


def message_ids(payload: Any) -> list[str]:
    """WhatsApp message and status ids, and Messenger message ids, in order, once each."""
    found: list[str] = []
    for entry in entries(payload):
        for change in listed(entry, "changes"):
            value = change.get("value") if isinstance(change, dict) else None
            for key in ("messages", "statuses"):
                for item in listed(value, key):
                    found.append(payloads.field(item, "id") or "")
        for item in listed(entry, "messaging"):
            found.append(payloads.field(item, "message", "mid") or "")
    return list(dict.fromkeys(item for item in found if item))
