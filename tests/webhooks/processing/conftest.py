"""Fixtures the processing tests share."""

from __future__ import annotations

import pytest

from webhooks.processing import handlers


@pytest.fixture
def registry():
    """Register handlers for one test only."""
    registered = []

    def register(*args, **kwargs):
        def decorate(function):
            handlers.handler(*args, **kwargs)(function)
            registered.append(function)
            return function

        return decorate

    yield register
    for function in registered:
        handlers.unregister(function)
