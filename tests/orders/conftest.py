from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _demo_handlers_hidden() -> None:
    """Here the orders handlers are the subject: keep them registered."""
