"""The live page in a real browser, against a real daphne, under a strict CSP.

Headless Chromium from Debian's package, driven by Playwright (no browser
download). The server is a separate process on a file SQLite database, so it can
be killed and restarted while the page stays open.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from playwright import sync_api
from playwright.sync_api import expect

from tests.csp import POLICY

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = "browser-test-secret-9b1e"
PASSWORD = "browser-test-password"
XSS = "<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>"
SCREENSHOT = ROOT / "docs" / "dashboard.png"
WAIT_MS = 15_000
# Long enough for the backoff to reach a few seconds and for the server to start.
RECONNECT_WAIT_MS = 45_000


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """daphne serving tests.asgi_live on a fixed port, which survives restarts."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "daphne.log"
        self.process = None
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings_browser",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DJANGO_SECRET_KEY": "browser-test-only",
            "DJANGO_DEBUG": "0",
            # Production settings otherwise, but this server speaks plain HTTP.
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": "",
        }

    def manage(self, *args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self):
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "tests.asgi_live:application",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/webhooks/health/", timeout=2):
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise AssertionError(f"daphne did not start:\n{self.log.read_text()}")

    def tail(self):
        return self.log.read_text()[-4000:]

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process:
            self.process.wait(timeout=10)
        self.process = None

    def post(self, slug, payload, *, secret=SECRET, event="issues"):
        body = json.dumps(payload).encode()
        delivery = str(uuid.uuid4())
        request = urllib.request.Request(
            f"{self.url}/webhooks/{slug}/",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": "sha256="
                + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            },
        )
        # A 503 means "retry", and providers do: SQLite can be briefly busy
        # while the inline runner writes.
        for _ in range(5):
            status = send(request)
            if status != 503:
                break
            time.sleep(0.5)
        return status, delivery


def send(request):
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path)
    live.manage("migrate", "--verbosity", "0")
    live.manage(
        "webhooks_endpoint", "add", "github", "--provider", "github", "--secret", SECRET
    )
    live.manage(
        "webhooks_endpoint",
        "add",
        "billing",
        "--provider",
        "github",
        "--secret",
        SECRET,
    )
    live.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('admin', 'admin@example.com', {PASSWORD!r})",
    )
    live.start()
    yield live
    live.kill()


@pytest.fixture
def page(server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.problems = []
        page.on("console", lambda message: note_console_error(page, message))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        # Registered before any page script runs, so no violation goes unseen.
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        try:
            yield page
        finally:
            context.close()
            browser.close()


def note_console_error(page, message):
    url = message.location.get("url", "")
    # The browser asks for /favicon.ico on its own; the demo project has none.
    if message.type == "error" and not url.endswith("/favicon.ico"):
        page.problems.append(f"{message.text} {url}")


def log_in(page, server):
    page.goto(f"{server.url}/admin/login/?next=/admin/webhooks/live/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}/admin/webhooks/live/")


def wait_until_live(page, timeout=WAIT_MS):
    page.wait_for_selector("#live-state[data-state=live]", timeout=timeout)


def row(page, delivery):
    return page.locator("#live-rows tr", has_text=delivery)


def offline_events_script(count):
    # Written straight to the database while the server is down: only a resume
    # after the reconnect can bring them to the page (more than a snapshot holds).
    return (
        "from webhooks.models import Endpoint, Event; "
        "e = Endpoint.objects.get(slug='billing'); "
        "Event.objects.bulk_create(["
        f"Event(endpoint=e, provider='github', delivery_id=f'offline-{{n:03d}}', event_type='invoice.paid' if n % 7 else 'invoice.failed',"
        " body=b'{}', payload={}, status='failed' if n % 7 == 0 else 'succeeded',"
        " last_error='HTTP 500 from the billing service' if n % 7 == 0 else '')"
        f" for n in range({count})])"
    )


def test_live_page_shows_deliveries_safely_and_survives_a_server_restart(
    page, server, tmp_path
):
    log_in(page, server)
    response = page.goto(f"{server.url}/admin/webhooks/live/")
    assert response.headers["content-security-policy"] == POLICY
    wait_until_live(page)
    assert page.evaluate("document.querySelector('#live-state').textContent") == "live"

    # A delivery appears in the table, once.
    status, delivery = server.post(
        "github", {"action": "opened", "issue": {"title": "Login is slow"}}
    )
    assert status == 200, server.tail()
    row(page, delivery).wait_for(timeout=WAIT_MS)
    assert "issues" in row(page, delivery).inner_text()
    # No handler is registered for it: the inline runner skips it, and the status
    # changes in the same row.
    expect(row(page, delivery).locator(".live-status")).to_have_text(
        "skipped", timeout=WAIT_MS
    )
    assert row(page, delivery).count() == 1

    # Markup in a payload is text: shown, never run.
    status, hostile = server.post(
        "github", {"action": "edited", "issue": {"title": XSS}}, event=XSS
    )
    assert status == 200, server.tail()
    row(page, hostile).wait_for(timeout=WAIT_MS)
    assert XSS in row(page, hostile).inner_text()
    row(page, hostile).locator("button.live-open").click()
    expect(page.locator("#live-payload")).to_contain_text("onerror", timeout=WAIT_MS)
    assert XSS in page.inner_text("#live-payload")
    assert XSS in page.inner_text("#live-body")
    assert page.locator("#live img").count() == 0
    assert page.evaluate("window.__pwned") is None

    # The detail panel: payload pretty-printed, a link to the admin page.
    row(page, delivery).locator("button.live-open").click()
    expect(page.locator("#live-payload")).to_contain_text(
        "Login is slow", timeout=WAIT_MS
    )
    assert '"action": "opened"' in page.inner_text("#live-payload")
    assert "x-github-event" in page.inner_text("#live-headers").lower()
    assert page.get_attribute("#live-admin-link", "href").startswith(
        "/admin/webhooks/event/"
    )
    assert page.is_visible("#live-replay")

    # A refused delivery shows in the strip, with its reason.
    status, _ = server.post("github", {"action": "forged"}, secret="wrong secret")
    assert status == 401
    page.locator("#live-rejections li", has_text="github").first.wait_for(
        timeout=WAIT_MS
    )

    # Nothing so far was blocked by the policy or failed in the console.
    assert page.evaluate("window.__csp") == []
    assert page.problems == []

    # The server dies; the page notices, and comes back by itself when it returns.
    server.kill()
    page.wait_for_selector("#live-state[data-state=reconnecting]", timeout=WAIT_MS)
    server.manage("shell", "-c", offline_events_script(60))
    server.start()
    wait_until_live(page, timeout=RECONNECT_WAIT_MS)
    status, after = server.post(
        "github", {"action": "reopened", "issue": {"title": "Back after the restart"}}
    )
    assert status == 200, server.tail()
    row(page, after).wait_for(timeout=WAIT_MS)
    # Every event stored during the outage arrived through resume, none twice.
    expect(page.locator("#live-rows tr")).to_have_count(63, timeout=WAIT_MS)
    delivery_ids = page.eval_on_selector_all(
        "#live-rows tr td:nth-child(5)", "cells => cells.map(c => c.textContent)"
    )
    offline = sorted(d for d in delivery_ids if d.startswith("offline-"))
    assert offline == [f"offline-{n:03d}" for n in range(60)]
    assert len(delivery_ids) == len(set(delivery_ids))

    # Replay a failed event: queued, then run again (and skipped, as no handler
    # is registered), each status change in place, in the same row.
    failed = row(page, "offline-007")
    assert failed.locator(".live-status").inner_text() == "failed"
    failed.locator("button.live-open").click()
    expect(page.locator("#live-detail-summary")).to_contain_text(
        "offline-007", timeout=WAIT_MS
    )
    page.click("#live-replay")
    expect(page.locator("#live-detail-note")).to_contain_text(
        "Replay queued", timeout=WAIT_MS
    )
    expect(failed.locator(".live-status")).to_have_text("skipped", timeout=WAIT_MS)
    expect(page.locator("#live-detail-summary")).to_contain_text(
        "skipped", timeout=WAIT_MS
    )
    assert row(page, "offline-007").count() == 1

    # Filters apply in the page.
    page.select_option("#live-filters select[name=status]", "failed")
    # Every seventh offline event failed, except offline-007, replayed since.
    expect(page.locator("#live-rows .live-status")).to_have_text(
        ["failed"] * 8, timeout=WAIT_MS
    )
    page.select_option("#live-filters select[name=status]", "")
    page.fill("#live-filters input[name=text]", "offline-01")
    expect(page.locator("#live-rows tr")).to_have_count(10, timeout=WAIT_MS)
    page.fill("#live-filters input[name=text]", "")

    assert page.evaluate("window.__csp") == []
    assert page.evaluate("window.__pwned") is None
    shot = tmp_path / "dashboard.png"
    expect(page.locator("#live-rows tr")).to_have_count(63, timeout=WAIT_MS)
    row(page, delivery).locator("button.live-open").click()
    expect(page.locator("#live-payload")).to_contain_text(
        "Login is slow", timeout=WAIT_MS
    )
    page.click(
        "#toggle-nav-sidebar"
    )  # the admin's own app list: more room for the table
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 0
    # Tests write nothing into the repository unless asked to refresh the
    # README's screenshot: REFRESH_SCREENSHOT=1 make test-browser.
    if os.environ.get("REFRESH_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
