"""The live page's rates and chart in a real browser: the steps the browser test takes,
shared with the command that makes the README's screenshot.

    python -m tests.realtime.rates_scenario docs/live-rates.png

writes that screenshot (and only that command writes under docs/; the test
keeps its screenshots in its temporary directory).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright import sync_api
from playwright.sync_api import expect

from tests.realtime.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    SECRET,
    WAIT_MS,
    LiveServer,
    log_in,
    wait_until_live,
)


def prepare(server: LiveServer) -> None:
    server.manage("migrate", "--verbosity", "0")
    for slug in ("github", "billing"):
        server.manage(
            "webhooks_endpoint", "add", slug, "--provider", "github", "--secret", SECRET
        )
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('admin', 'admin@example.com', {PASSWORD!r})",
    )


def chart_total(page: Any) -> int:
    return int(page.get_attribute("#live-chart", "data-total") or 0)


def received_points(page: Any) -> str:
    return str(
        page.get_attribute("#live-chart polyline[data-kind=received]", "points") or ""
    )


def drive(page: Any, server: LiveServer) -> dict[str, Any]:
    """Open the page, send traffic, and wait for the chart and counters to follow it."""
    log_in(page, server)
    wait_until_live(page)
    page.wait_for_selector("#live[data-rates-polls]", timeout=WAIT_MS)
    expect(page.locator("#live-chart")).to_have_attribute("data-total", "0")
    flat = received_points(page)
    for number in range(6):
        status, _ = server.post("github", {"action": "opened", "n": number})
        assert status == 200
    for number in range(2):
        status, _ = server.post("billing", {"invoice": number}, event="invoice.paid")
        assert status == 200
    status, _ = server.post("billing", {"forged": True}, secret="not the secret")
    assert status == 401
    expect(page.locator("#live-chart")).to_have_attribute(
        "data-total", "8", timeout=WAIT_MS
    )
    assert received_points(page) != flat
    expect(
        page.locator("#live-counters tr[data-endpoint=github] td[data-kind=received]")
    ).to_have_text("6 / 6 / 6", timeout=WAIT_MS)
    expect(
        page.locator("#live-counters tr[data-endpoint=billing] td[data-kind=rejected]")
    ).to_have_text("1 / 1 / 1", timeout=WAIT_MS)
    page.click(".live-ranges button[data-range='24h']")
    expect(page.locator("#live-chart")).to_have_attribute("data-range", "24h")
    expect(page.locator("#live-chart")).to_have_attribute("data-total", "8")
    page.click(".live-ranges button[data-range='15m']")

    # Pause billing from the page: its next delivery is stored and answered, and waits.
    page.click("#live-counters tr[data-endpoint=billing] button[data-action=pause]")
    expect(page.locator("#live-queue")).to_contain_text(
        "Paused: billing", timeout=WAIT_MS
    )
    status, _ = server.post(
        "billing", {"invoice": "during the pause"}, event="invoice.paid"
    )
    assert status == 200
    expect(page.locator("#live-queue")).to_contain_text("1 waiting", timeout=WAIT_MS)
    return {"total": chart_total(page)}


def main(target: str) -> None:
    destination = Path(target).resolve()
    with tempfile.TemporaryDirectory() as directory:
        server = LiveServer(Path(directory))
        prepare(server)
        server.start()
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                drive(page, server)
                page.click("#toggle-nav-sidebar")
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(destination))
                browser.close()
        finally:
            server.kill()
    print(f"Wrote {destination}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.realtime.rates_scenario PATH.png")
    main(sys.argv[1])
