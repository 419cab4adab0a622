"""The throughput chart and the server's rates updating in headless Chromium, under a strict CSP."""

from __future__ import annotations

import pytest
from playwright import sync_api

from tests.csp import POLICY
from tests.realtime.rates_scenario import drive, prepare
from tests.realtime.test_browser import CHROMIUM, CHROMIUM_ARGS, LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path)
    prepare(live)
    live.start()
    yield live
    live.kill()


def test_the_chart_and_the_rates_follow_deliveries_and_pausing_works(
    server, tmp_path
) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        try:
            result = drive(page, server)
            response = page.goto(f"{server.url}/admin/webhooks/live/")
            assert response is not None
            assert response.headers["content-security-policy"] == POLICY
            page.wait_for_selector("#live[data-rates-polls]")
            assert page.evaluate("window.__csp") == []
            page.screenshot(path=str(tmp_path / "rates.png"))
        except Exception:
            print(server.tail())
            raise
        finally:
            browser.close()
    assert problems == []
    assert result["total"] == 9  # the delivery during the pause was received too
