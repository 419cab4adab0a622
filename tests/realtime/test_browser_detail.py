"""The live page's detail panel in a real browser: a traceback keeps its lines, and
event types do not break inside a word while the panel narrows the table."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.realtime.test_browser import WAIT_MS, log_in, page, server, wait_until_live

__all__ = ["page", "server"]  # the fixtures, used by name

pytestmark = pytest.mark.browser

LONG_TYPE = "customer.subscription.trial_will_end"
#: Long, as real delivery ids are: the column that may give way.
DELIVERY = "tb-" + "9f8e7d6c5b4a" * 6
TRACEBACK = (
    "orders.webhook_handlers.UnknownOrderError: no order\\n\\n"
    "Traceback (most recent call last):\\n"
    '  File \\"/srv/shop/orders/webhook_handlers.py\\", line 42, in mark_order_paid\\n'
    "    raise UnknownOrderError(reference)\\n"
    "UnknownOrderError: no order"
)


def failed_event_script() -> str:
    return (
        "from webhooks.models import Endpoint, Event; "
        "e = Endpoint.objects.get(slug='billing'); "
        f"Event.objects.create(endpoint=e, provider='github', delivery_id={DELIVERY!r}, event_type={LONG_TYPE!r},"
        f" body=b'{{}}', payload={{}}, status='failed', attempts=8, last_error=\"{TRACEBACK}\")"
    )


def test_detail_panel_keeps_a_tracebacks_lines_and_types_whole(page, server) -> None:
    server.manage("shell", "-c", failed_event_script())
    # Wide enough for the panel to sit beside the table, which it then narrows.
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, server)
    wait_until_live(page)
    row = page.locator("#live-rows tr", has_text="tb-")
    row.wait_for(timeout=WAIT_MS)
    row.locator("button.live-open").click()
    error = page.locator("#live-detail-summary .live-error")
    expect(error).to_contain_text("Traceback", timeout=WAIT_MS)
    # Five lines of text are laid out as five lines, not one paragraph.
    lines = page.evaluate(
        "() => { const e = document.querySelector('#live-detail-summary .live-error');"
        " const style = getComputedStyle(e);"
        " return [style.whiteSpace, e.getBoundingClientRect().height / parseFloat(style.lineHeight)]; }"
    )
    assert lines[0] == "pre-wrap"
    assert lines[1] >= 5
    # With the panel open, the type is still laid out on one line.
    rects = page.evaluate(
        "() => { const b = document.querySelector('#live-rows tr[data-id] .live-type button');"
        " const range = document.createRange(); range.selectNodeContents(b);"
        " const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));"
        " return [b.textContent, tops.size]; }"
    )
    assert rects == [LONG_TYPE, 1]
    assert page.problems == []
