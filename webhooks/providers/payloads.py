"""Turning raw bodies into the stored ``payload``.

The raw bytes are always what is stored and verified; the parsed payload is a
convenience for handlers and the admin. Anything that does not parse cleanly,
or nests absurdly deep, or holds absurdly many values, or would not survive a
JSON column, gives ``None``. Python's parser takes values that PostgreSQL's
``jsonb`` refuses: NUL characters, lone surrogates (``"\ud800"``, or raw
surrogate bytes, which it decodes with ``surrogatepass``) and non-finite
numbers (``1e99999`` is infinity; ``NaN`` and ``Infinity`` are accepted as
literals). A genuine delivery holding one is stored all the same, unparsed, and
not refused by the database with a 503 that the provider would retry forever.

The size limit on bodies is not enough on its own: parsed, a 5 MiB body of
``[{},{},...]`` is some 1.7 million dicts and over 100 MB, so the number of
objects, arrays and form fields is bounded before anything is parsed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from webhooks.providers.delivery import Delivery

MAX_DEPTH = 64
#: Most JSON objects and arrays, or form fields, a parsed payload may hold. Real
#: deliveries hold hundreds; at this bound a payload stays within a few MB.
MAX_CONTAINERS = 100_000

FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})

#: Characters no JSON column holds: NUL, and any surrogate (a valid pair was
#: already joined into one character by the parser, so any left is alone).
UNSTORABLE_CHARACTER = re.compile(r"[\x00\ud800-\udfff]")


def parse(delivery: Delivery) -> Any:
    """Parse the body as a form when it says so, otherwise as JSON."""
    if delivery.content_type in FORM_TYPES:
        return parse_form(delivery.body)
    return parse_json(delivery.body)


def parse_json(body: bytes) -> Any:
    # Every object or array opens with one of these bytes (brackets inside strings
    # count too, so this errs towards refusing), and counting is far cheaper than
    # parsing.
    if body.count(b"{") + body.count(b"[") > MAX_CONTAINERS:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if storable(value) else None


def parse_form(body: bytes) -> dict[str, Any] | None:
    """A dict of field to value; repeated fields become lists, in order."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            max_num_fields=MAX_CONTAINERS,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, Any] = {}
    for name, value in pairs:
        if name in form:
            previous = form[name]
            form[name] = (
                [*previous, value] if isinstance(previous, list) else [previous, value]
            )
        else:
            form[name] = value
    return form if storable(form) else None


def storable(value: Any) -> bool:
    """True when ``value`` nests at most MAX_DEPTH deep and a JSON column can hold all of it."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, str):
            if UNSTORABLE_CHARACTER.search(item):
                return False
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, dict):
            for key, child in item.items():
                if UNSTORABLE_CHARACTER.search(key):
                    return False
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True


def field(payload: Any, *path: str) -> str | None:
    """The string at ``payload[path[0]][path[1]]...``, or None when absent or not scalar."""
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    if isinstance(payload, bool) or payload is None or isinstance(payload, dict | list):
        return None
    return str(payload)
