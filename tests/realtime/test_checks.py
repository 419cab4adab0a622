from __future__ import annotations

from django.conf import settings
from django.test import override_settings

from realtime.checks import check_asgi

APPS = list(settings.INSTALLED_APPS)
MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@override_settings(DEBUG=True)
def test_test_settings_have_no_problems() -> None:
    assert check_asgi() == []


@override_settings(ASGI_APPLICATION=None, DEBUG=True)
def test_missing_asgi_application_is_e001() -> None:
    assert ids(check_asgi()) == ["realtime.E001"]


@override_settings(INSTALLED_APPS=[app for app in APPS if app != "daphne"], DEBUG=True)
def test_missing_daphne_is_w001() -> None:
    assert ids(check_asgi()) == ["realtime.W001"]


@override_settings(
    INSTALLED_APPS=[app for app in APPS if app != "daphne"] + ["daphne"], DEBUG=True
)
def test_daphne_after_staticfiles_is_e002() -> None:
    assert ids(check_asgi()) == ["realtime.E002"]


@override_settings(CHANNEL_LAYERS={}, DEBUG=True)
def test_missing_channel_layer_is_e003() -> None:
    assert ids(check_asgi()) == ["realtime.E003"]


@override_settings(CHANNEL_LAYERS=MEMORY, DEBUG=False)
def test_in_memory_layer_in_production_is_w002() -> None:
    assert ids(check_asgi()) == ["realtime.W002"]
