"""Realistic sample deliveries shipped with the app, rendered fresh for every send.

Each provider has a folder under ``webhooks/samples/`` holding a
``manifest.json`` (content type, the non-signature headers the provider sends,
the event types in order, the first being the default) and one body per type.
Providers without a folder of their own (hmac, basic, none, custom ones) use
``generic/``. A manifest may also map a type to the event type the provider
reads from that sample when the two differ (``read_as``: a Slack
``event_callback`` carries an ``app_mention``).

Bodies and headers carry placeholders that each render replaces with new
values, so that every delivery is a new event: ``{{id}}`` (24 letters and
digits), ``{{upper}}`` (11 upper-case letters and digits), ``{{uuid}}``,
``{{hex}}`` (32 hex digits), ``{{number}}`` (an 18-digit integer), ``{{now}}``
(unix seconds), ``{{now_iso}}`` (ISO 8601 UTC), ``{{type}}`` and
``{{delivery_id}}`` (the provider's delivery id, from the manifest's
``delivery_id`` template or a fresh UUID). Replacement is a plain
``str.replace`` of these known tokens, with values escaped for the body's
format; nothing else in a body is interpreted.
"""

from __future__ import annotations

import functools
import json
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote_plus

from webhooks.providers import payloads

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
#: The folder of providers that have none of their own.
GENERIC = "generic"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_LETTERS_AND_DIGITS = string.ascii_letters + string.digits
_UPPER_AND_DIGITS = string.ascii_uppercase + string.digits


class UnknownSampleError(LookupError):
    """No sample of the requested event type exists for the provider."""

    def __init__(self, provider_id: str, event_type: str, available: list[str]) -> None:
        super().__init__(
            f"No sample {event_type!r} for provider {provider_id!r}; "
            f"available: {', '.join(available)}"
        )
        self.available = available


@dataclass(frozen=True)
class Sample:
    """One rendered delivery, before signing."""

    type: str
    body: bytes
    content_type: str
    #: The provider's non-signature headers, Content-Type included.
    headers: dict[str, str]
    #: The id the provider identifies this delivery by (signed by some schemes).
    delivery_id: str


def folder(provider_id: str) -> str:
    return provider_id if (SAMPLES_DIR / provider_id).is_dir() else GENERIC


@functools.cache
def manifest(folder_name: str) -> dict[str, Any]:
    path = SAMPLES_DIR / folder_name / "manifest.json"
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def types(provider_id: str) -> list[str]:
    """The provider's sample event types, the default first."""
    return list(manifest(folder(provider_id))["types"])


def read_as(provider_id: str, event_type: str) -> str:
    """The event type the provider reads from the sample of ``event_type``."""
    mapping = manifest(folder(provider_id)).get("read_as", {})
    return str(mapping.get(event_type, event_type))


def fresh_values(now: float) -> dict[str, str]:
    moment = datetime.fromtimestamp(now, UTC)
    return {
        "id": "".join(secrets.choice(_LETTERS_AND_DIGITS) for _ in range(24)),
        "upper": "".join(secrets.choice(_UPPER_AND_DIGITS) for _ in range(11)),
        "uuid": str(uuid.uuid4()),
        "hex": uuid.uuid4().hex,
        "number": str(10**17 + secrets.randbelow(9 * 10**17)),
        "now": str(int(now)),
        "now_iso": f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z",
    }


def fill(text: str, values: Mapping[str, str], escape: str = "") -> str:
    """Replace each known ``{{name}}`` in ``text``; ``escape`` is "json", "form" or ""."""
    for name, value in values.items():
        if escape == "json":
            value = json.dumps(value)[1:-1]
        elif escape == "form":
            value = quote_plus(value)
        text = text.replace("{{" + name + "}}", value)
    return text


def render(
    provider_id: str,
    event_type: str | None = None,
    *,
    data: bytes | None = None,
    options: Mapping[str, Any] | None = None,
    now: float,
) -> Sample:
    """A fresh delivery of ``event_type`` (default: the first), or of ``data`` if given.

    ``data`` is the caller's own body: sent byte for byte, except that the
    placeholders above are filled in when it is UTF-8; its ``event_type`` may
    be any (it fills the provider's type header, such as ``X-GitHub-Event``).
    ``options`` are the
    endpoint's provider options; the configurable providers' ``id_header`` and
    ``type_header`` are sent when set. Raises :class:`UnknownSampleError`.
    """
    spec = manifest(folder(provider_id))
    event_type = event_type or next(iter(spec["types"]))
    if data is None and event_type not in spec["types"]:
        raise UnknownSampleError(provider_id, event_type, list(spec["types"]))
    values = fresh_values(now)
    values["type"] = event_type
    template = spec.get("delivery_id")
    values["delivery_id"] = fill(template, values) if template else str(uuid.uuid4())
    if data is None:
        path = SAMPLES_DIR / folder(provider_id) / spec["types"][event_type]
        body, content_type = _sample_body(
            path.read_text(encoding="utf-8"), spec, values
        )
    else:
        body, content_type = _own_body(data, spec["content_type"], values)
    headers = {"Content-Type": content_type}
    headers.update(
        {name: fill(value, values) for name, value in spec["headers"].items()}
    )
    options = options or {}
    if options.get("id_header"):
        headers[options["id_header"]] = values["delivery_id"]
    if options.get("type_header"):
        headers[options["type_header"]] = event_type
    return Sample(event_type, body, content_type, headers, values["delivery_id"])


def _sample_body(
    text: str, spec: Mapping[str, Any], values: Mapping[str, str]
) -> tuple[bytes, str]:
    content_type: str = spec["content_type"]
    is_form = _media_type(content_type) == FORM
    text = fill(text.strip(), values, "form" if is_form else "json")
    if spec.get("compact"):
        # Samples are stored indented for review; these providers send compact JSON.
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    return text.encode(), content_type


def _own_body(
    data: bytes, default_type: str, values: Mapping[str, str]
) -> tuple[bytes, str]:
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    content_type = _detect(fill(text, values).encode() if text else data, default_type)
    if text is None:
        return data, content_type
    escape = "form" if _media_type(content_type) == FORM else "json"
    return fill(text, values, escape).encode(), content_type


def _detect(body: bytes, default_type: str) -> str:
    # The body's own format decides, so a Slack slash-command form or a JSON
    # body for Twilio is labelled as what it is.
    if payloads.parse_json(body) is not None:
        return default_type if _media_type(default_type) == JSON else JSON
    if payloads.parse_form(body):
        return FORM
    return default_type


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()
