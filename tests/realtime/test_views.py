from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.urls import path, reverse

from tests.factories import make_endpoint, make_event
from webhooks.models import Rejection

LIVE = reverse("realtime:live")
SECRET = "s3cret-never-shown-4d7f"
# The demo project's template folder, which holds its admin index override.
PROJECT_TEMPLATES = [
    {
        **settings.TEMPLATES[0],
        "DIRS": [Path(__file__).resolve().parents[2] / "templates"],
    }
]
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


def detail_url(event_id):
    return reverse("realtime:event_detail", args=[event_id])


def staff_client(*permissions):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


class PageAudit(HTMLParser):
    """What a strict Content-Security-Policy would block, collected from the HTML."""

    def __init__(self):
        super().__init__()
        self.inline_scripts = []
        self.script_sources = []
        self.stylesheets = []
        self.style_attributes = []
        self.handler_attributes = []
        self.live_root = None
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, _ in attrs:
            if name == "style":
                self.style_attributes.append(tag)
            if name.startswith("on"):
                self.handler_attributes.append(f"{tag} {name}")
        if tag == "script":
            self._in_script = True
            if "src" in attributes:
                self.script_sources.append(attributes["src"])
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes["href"])
        if attributes.get("id") == "live":
            self.live_root = attributes

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def audit(response):
    parser = PageAudit()
    parser.feed(response.content.decode())
    return parser


# The page: who may open it


@pytest.mark.django_db
def test_live_anonymous_is_redirected_to_the_admin_login():
    response = Client().get(LIVE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_live_non_staff_is_redirected_to_the_admin_login():
    user = User.objects.create_user("visitor", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_event"))
    client = Client()
    client.force_login(user)

    response = client.get(LIVE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_live_staff_without_view_event_gets_403():
    assert staff_client().get(LIVE).status_code == 403


@pytest.mark.django_db
def test_live_staff_with_view_event_gets_the_page():
    response = staff_client("view_event").get(LIVE)

    assert response.status_code == 200
    assert "realtime/live.html" in [t.name for t in response.templates]
    assert "<h1>Live events</h1>" in response.content.decode()


# The page: what it carries


@pytest.mark.django_db
def test_live_page_passes_settings_as_data_attributes():
    root = audit(staff_client("view_event").get(LIVE)).live_root

    assert root["data-websocket-path"] == "/ws/webhooks/"
    assert root["data-detail-url"] == "/admin/webhooks/live/events/0/"
    assert root["data-can-replay"] == "false"


@pytest.mark.django_db
def test_live_page_says_replay_is_allowed_with_change_event():
    client = staff_client("view_event", "change_event")

    assert audit(client.get(LIVE)).live_root["data-can-replay"] == "true"


@pytest.mark.django_db
def test_live_page_has_no_inline_script_style_or_handler():
    page = audit(staff_client("view_event").get(LIVE))

    assert page.inline_scripts == []
    assert page.style_attributes == []
    assert page.handler_attributes == []


@pytest.mark.django_db
def test_live_page_loads_its_module_and_stylesheet():
    page = audit(staff_client("view_event").get(LIVE))

    assert "/static/realtime/live.js" in page.script_sources
    assert "/static/realtime/live.css" in page.stylesheets


@pytest.mark.django_db
def test_live_page_lists_recent_rejections_escaped():
    endpoint = make_endpoint(slug="shop")
    reason = "<script>window.x=1</script>"  # reasons are at most 50 characters
    Rejection.objects.create(endpoint=endpoint, reason=reason, source_ip="192.0.2.7")

    content = staff_client("view_event").get(LIVE).content.decode()

    assert 'data-source-ip="192.0.2.7"' in content
    assert reason not in content
    assert "&lt;script&gt;window.x=1&lt;/script&gt;" in content


@pytest.mark.django_db
def test_live_page_and_detail_never_show_the_endpoint_secret():
    endpoint = make_endpoint(slug="shop", secret=SECRET)
    event = make_event(endpoint, headers={"x-hub-signature-256": "[redacted]"})
    client = staff_client("view_event", "change_event")

    page = client.get(LIVE).content.decode()
    detail = client.get(detail_url(event.pk)).content.decode()

    assert SECRET not in page
    assert SECRET not in detail


# The event detail JSON


@pytest.mark.django_db
def test_detail_returns_summary_headers_body_and_payload():
    endpoint = make_endpoint(slug="shop")
    event = make_event(
        endpoint,
        "d-42",
        body=b'{"action": "opened"}',
        payload={"action": "opened"},
        headers={"content-type": "application/json", "x-github-event": "push"},
    )

    response = staff_client("view_event").get(detail_url(event.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {
        "event",
        "headers",
        "body",
        "body_base64",
        "payload",
        "admin_url",
    }
    assert data["event"]["id"] == event.pk
    assert data["event"]["endpoint"] == "shop"
    assert data["event"]["delivery_id"] == "d-42"
    assert data["headers"] == {
        "content-type": "application/json",
        "x-github-event": "push",
    }
    assert data["body"] == '{"action": "opened"}'
    assert data["body_base64"] is None
    assert data["payload"] == {"action": "opened"}
    assert data["admin_url"] == f"/admin/webhooks/event/{event.pk}/change/"


@pytest.mark.django_db
def test_detail_of_a_non_utf8_body_adds_base64():
    body = b"\xff\xfebinary\x00"
    event = make_event(make_endpoint(), body=body, payload=None)

    data = staff_client("view_event").get(detail_url(event.pk)).json()

    assert data["body"] == body.decode("utf-8", errors="replace")
    assert base64.b64decode(data["body_base64"]) == body
    assert data["payload"] is None


@pytest.mark.django_db
def test_detail_returns_markup_in_a_payload_as_data_unchanged():
    body = json.dumps({"title": XSS}).encode()
    event = make_event(make_endpoint(), body=body, payload={"title": XSS})

    response = staff_client("view_event").get(detail_url(event.pk))

    assert response["Content-Type"] == "application/json"
    assert response.json()["payload"] == {"title": XSS}
    assert response.json()["body"] == body.decode()


@pytest.mark.django_db
def test_detail_of_a_missing_event_is_404_json():
    response = staff_client("view_event").get(detail_url(999999))

    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


@pytest.mark.django_db
def test_detail_staff_without_view_event_gets_403_json():
    event = make_event(make_endpoint())

    response = staff_client().get(detail_url(event.pk))

    assert response.status_code == 403
    assert response.json() == {"error": "forbidden"}


@pytest.mark.django_db
def test_detail_anonymous_is_redirected_to_the_admin_login():
    event = make_event(make_endpoint())

    response = Client().get(detail_url(event.pk))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# Links to the page


@pytest.mark.django_db
def test_event_changelist_links_to_the_live_view():
    content = (
        staff_client("view_event")
        .get(reverse("admin:webhooks_event_changelist"))
        .content.decode()
    )

    assert f'href="{LIVE}"' in content
    assert "Live view" in content


# Without realtime in the URLs, the event list still renders, without the link.
urlpatterns = [path("admin/", admin.site.urls)]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_event_changelist_without_realtime_urls_renders_without_the_link():
    response = staff_client("view_event").get("/admin/webhooks/event/")

    assert response.status_code == 200
    assert "Live view" not in response.content.decode()


@pytest.mark.django_db
@override_settings(TEMPLATES=PROJECT_TEMPLATES)
def test_demo_admin_index_links_to_the_live_page():
    content = staff_client("view_event").get(reverse("admin:index")).content.decode()

    assert f'<a href="{LIVE}">Live events</a>' in content


@pytest.mark.django_db
@override_settings(TEMPLATES=PROJECT_TEMPLATES)
def test_demo_admin_index_hides_the_link_without_view_event():
    content = staff_client().get(reverse("admin:index")).content.decode()

    assert LIVE not in content
