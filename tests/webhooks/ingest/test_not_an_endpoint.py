"""Under /webhooks, whatever is not an endpoint URL gets a JSON 404 or 405, in DEBUG too.

Django would otherwise answer an HTML page, or (APPEND_SLASH) redirect, which
for a POST under DEBUG is a 500. Both doors: the lean ASGI door, and the site's
own application (its middleware included) through Django's test client. The
prefix without its slash (``/webhooks``) lies outside ``webhooks.urls``, so only
the ASGI door, which owns the prefix, can answer it.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.webhooks.ingest.test_both_doors import DOORS, Request

pytestmark = [
    pytest.mark.usefixtures("async_db_connections"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]

UNKNOWN = (404, {"error": "unknown_endpoint"})

PATHS = [
    "/webhooks/",
    "/webhooks/a/b",
    "/webhooks/a/b/",
    "/webhooks/no such slug/",
    "/webhooks/%00/",
    "/webhooks/api/events",  # a POST here once met APPEND_SLASH
    "/webhooks/api/nothing/",
]
#: Shaped like an endpoint URL, of no endpoint: a method no endpoint takes is a 405.
SLUG_SHAPED = ["/webhooks/nope", "/webhooks/nope/", "/webhooks/api", "/webhooks/health"]
METHODS = ["GET", "POST", "PUT", "DELETE"]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", PATHS)
async def test_a_path_that_is_not_an_endpoint_gets_the_json_404(
    path: str, method: str, door: str, debug: bool
) -> None:
    with override_settings(DEBUG=debug):
        reply = await DOORS[door](Request(method=method, path=path, body=b"{}"))
    assert (reply.status, reply.body) == UNKNOWN
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", SLUG_SHAPED)
async def test_a_url_shaped_like_an_endpoint_of_none_gets_a_json_404_or_405(
    path: str, method: str, door: str, debug: bool
) -> None:
    with override_settings(DEBUG=debug):
        reply = await DOORS[door](Request(method=method, path=path, body=b"{}"))
    if method in ("GET", "POST"):
        assert (reply.status, reply.body) == UNKNOWN
    else:
        assert (reply.status, reply.body) == (405, {"error": "method_not_allowed"})
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("method", METHODS)
async def test_the_prefix_without_its_slash_gets_the_json_404(
    method: str, debug: bool
) -> None:
    with override_settings(DEBUG=debug):
        reply = await DOORS["asgi"](
            Request(method=method, path="/webhooks", body=b"{}")
        )
    assert (reply.status, reply.body) == UNKNOWN


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_health_answers_other_methods_with_a_json_405(
    method: str, door: str, debug: bool
) -> None:
    with override_settings(DEBUG=debug):
        reply = await DOORS[door](Request(method=method, path="/webhooks/health/"))
    assert (reply.status, reply.body) == (405, {"error": "method_not_allowed"})
    assert reply.headers["allow"] == "GET"


async def test_a_site_view_at_the_prefix_without_its_slash_is_left_alone() -> None:
    with override_settings(ROOT_URLCONF="tests.urls_webhooks_page"):
        reply = await DOORS["asgi"](Request(method="GET", path="/webhooks", body=b""))
    assert (reply.status, reply.body) == (200, {"page": "the site's own"})
