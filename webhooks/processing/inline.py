"""Inline mode: a small runner inside each server process.

It starts with the first delivery the process stores (or the first health
check) and from then on also sweeps due retries and expired leases every
``WEBHOOKS_POLL_SECONDS``, so small sites need no second process.
"""

from __future__ import annotations

import threading

from webhooks.conf import conf
from webhooks.processing import retention
from webhooks.processing.runner import Runner, worker_name

_runner: Runner | None = None
_lock = threading.Lock()


def runner() -> Runner:
    global _runner
    with _lock:
        if _runner is None:
            _runner = Runner(conf.INLINE_THREADS, worker_name("inline"))
            threading.Thread(
                target=_runner.serve, name="webhooks-inline", daemon=True
            ).start()
            retention.Schedule(_runner.stopping).start()
        return _runner
