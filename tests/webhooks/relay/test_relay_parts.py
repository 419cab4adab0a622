"""The relay's pieces without an inbox: the stream parser, the header filter, its entry points."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from webhooks.relay import client as relay
from webhooks.relay.client import ServerEvent, forwarded_headers, parse_stream


def test_parser_reads_ids_types_multiline_data_and_skips_comments() -> None:
    lines = [
        "retry: 2000", "",
        ": keep-alive", "",
        "event: ready", 'data: {"after_id": 4}', "",
        "id: 5", "event: event.received", "data: line one", "data:line two", "",
        "data: no type", "",
    ]  # fmt: skip

    assert list(parse_stream(lines)) == [
        ServerEvent("ready", '{"after_id": 4}', None),
        ServerEvent("event.received", "line one\nline two", "5"),
        ServerEvent("message", "no type", None),
    ]


def test_parser_drops_an_event_cut_off_before_its_blank_line() -> None:
    assert list(parse_stream(["id: 7", "event: event.received", "data: {}"])) == []


def test_forwarded_headers_keep_the_providers_and_drop_hop_and_redacted_ones() -> None:
    stored = {
        "stripe-signature": "t=1,v1=ab",
        "content-type": "application/json; charset=utf-8",
        "user-agent": "Stripe/1.0",
        "host": "inbox.example.com",
        "content-length": "12",
        "connection": "keep-alive",
        "transfer-encoding": "chunked",
        "authorization": "[redacted]",
        "cookie": "[redacted]",
    }

    assert forwarded_headers(stored) == {
        "stripe-signature": "t=1,v1=ab",
        "content-type": "application/json; charset=utf-8",
        "user-agent": "Stripe/1.0",
    }


def test_relay_module_imports_no_django() -> None:
    code = (
        "import sys, webhooks.relay.client; "
        "print(sorted(m for m in sys.modules if m.startswith('django.conf') "
        "or m.startswith('django.db') or m.startswith('django.apps')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_console_script_runs_the_relay() -> None:
    [script] = entry_points(group="console_scripts", name="webhooks-listen")

    assert script.load() is relay.main


def test_relay_without_a_token_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(relay.TOKEN_VARIABLE, raising=False)

    with pytest.raises(SystemExit, match="a token is required"):
        relay.main(["--server", "http://127.0.0.1:9", "--forward-to", "http://x/"])
