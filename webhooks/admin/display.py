"""Safe HTML for stored deliveries: everything a provider sent is escaped before display."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

#: Bodies are shown up to this size; the rest would only slow the page down.
SHOWN_BYTES = 64 * 1024
HEX_LINE_BYTES = 16


def as_bytes(data: bytes | memoryview | None) -> bytes:
    # PostgreSQL hands BinaryField values back as memoryview, SQLite as bytes.
    return bytes(data or b"")


def json_block(value: Any) -> SafeString:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return pre(text)


def pre(text: str) -> SafeString:
    # format_html escapes the text: a payload is attacker-controlled until verified,
    # and even a verified one may carry markup.
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def body_text(data: bytes) -> SafeString:
    text = data[:SHOWN_BYTES].decode("utf-8", errors="replace")
    return pre(text + truncation_note(data))


def body_hex(data: bytes) -> SafeString | str:
    """A hex dump for bodies that are not UTF-8; a note for those that are."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return pre(hex_dump(data[:SHOWN_BYTES]) + truncation_note(data))
    return "Not needed: the body is valid UTF-8."


def hex_dump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), HEX_LINE_BYTES):
        chunk = data[offset : offset + HEX_LINE_BYTES]
        lines.append(f"{offset:08x}  {chunk.hex(' ')}")
    return "\n".join(lines)


def truncation_note(data: bytes) -> str:
    if len(data) <= SHOWN_BYTES:
        return ""
    return f"\n\n[first {SHOWN_BYTES} of {len(data)} bytes shown]"


def size(num_bytes: int) -> str:
    return f"{num_bytes} byte" if num_bytes == 1 else f"{num_bytes} bytes"
