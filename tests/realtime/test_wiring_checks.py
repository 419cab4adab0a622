"""The checks that name each wiring mistake of a host project, one test per id."""

from __future__ import annotations

import pytest
from django.test import override_settings

from realtime.checks import check_layer_processes, check_wiring


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_test_project_is_wired_right() -> None:
    assert check_wiring() == []


@pytest.mark.parametrize(
    "application", ["tests.asgi.application", "tests.asgi_wiring.wrapped"]
)
def test_the_readme_wiring_passes_inside_other_wrappers(application) -> None:
    with override_settings(ASGI_APPLICATION=application):
        assert check_wiring() == []


@override_settings(ASGI_APPLICATION="tests.asgi_wiring.startproject")
def test_startprojects_default_asgi_application_is_e004() -> None:
    messages = check_wiring()
    assert ids(messages) == ["realtime.E004"]
    assert "does not route WebSocket" in messages[0].msg
    assert "AuthMiddlewareStack" in messages[0].hint


@pytest.mark.parametrize("name", ["http_only", "other_consumer"])
def test_a_router_without_the_live_socket_is_e004(name) -> None:
    with override_settings(ASGI_APPLICATION=f"tests.asgi_wiring.{name}"):
        assert ids(check_wiring()) == ["realtime.E004"]


@override_settings(ASGI_APPLICATION="tests.asgi_wiring.under_a_prefix")
def test_the_socket_under_another_path_is_e004() -> None:
    messages = check_wiring()
    assert ids(messages) == ["realtime.E004"]
    assert "socket/ws/webhooks/" in messages[0].msg


@override_settings(ASGI_APPLICATION="tests.no_such_module.application")
def test_an_asgi_application_that_does_not_import_is_e004() -> None:
    messages = check_wiring()
    assert ids(messages) == ["realtime.E004"]
    assert "cannot be imported" in messages[0].msg


@override_settings(ROOT_URLCONF="tests.urls_without_live_page")
def test_missing_realtime_urls_is_e005() -> None:
    messages = check_wiring()
    assert ids(messages) == ["realtime.E005"]
    assert 'include("realtime.urls")' in messages[0].hint


@override_settings(ROOT_URLCONF="tests.urls_live_page_after_admin")
def test_realtime_urls_after_the_admins_catch_all_is_e005() -> None:
    messages = check_wiring()
    assert ids(messages) == ["realtime.E005"]
    assert "another URL pattern comes first" in messages[0].msg


@override_settings(ASGI_APPLICATION="tests.asgi_wiring.without_auth")
def test_socket_without_auth_middleware_is_e006() -> None:
    assert ids(check_wiring()) == ["realtime.E006"]


@override_settings(ASGI_APPLICATION="tests.asgi_wiring.without_origin_check")
def test_socket_without_origin_check_is_w004() -> None:
    assert ids(check_wiring()) == ["realtime.W004"]


@pytest.mark.parametrize("mode", ["worker", "tasks", "celery"])
def test_in_memory_layer_with_handlers_in_other_processes_is_w003(mode) -> None:
    with override_settings(WEBHOOKS_PROCESSING=mode):
        assert ids(check_layer_processes()) == ["realtime.W003"]


@override_settings(WEBHOOKS_PROCESSING="inline")
def test_in_memory_layer_with_inline_processing_is_fine() -> None:
    assert check_layer_processes() == []


@override_settings(
    WEBHOOKS_PROCESSING="worker",
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}},
)
def test_a_shared_layer_with_workers_is_fine() -> None:
    assert check_layer_processes() == []
