"""A provider's server, as the fault tests need one: signed GitHub deliveries at a
steady pace from a few threads, with every answer recorded.

Each delivery has its own id (``X-GitHub-Delivery``) and a body made from it, so
a delivery sent again is byte for byte the same, as a provider's retry is.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    delivery: str
    #: None when no HTTP answer came back (refused, reset, timed out).
    status: int | None
    event_id: int | None = None
    retry_after: str | None = None
    at: float = 0.0
    #: The 2xx answer's "status": "received", or "duplicate" for a delivery stored before.
    stored_as: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    def __init__(
        self,
        port: int,
        slug: str,
        secret: str,
        *,
        threads: int = 4,
        prefix: str = "d",
        event_type: str = "push",
    ) -> None:
        self.port, self.slug, self.secret = port, slug, secret
        self.threads, self.prefix, self.event_type = threads, prefix, event_type
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._next = 0
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> list[Outcome]:
        self._stopping.set()
        for worker in self._workers:
            worker.join(timeout=30)
        return self.outcomes

    def wait_for(
        self, count: int, *, acknowledged: bool = True, timeout: float = 60
    ) -> None:
        """Block until ``count`` more answers (2xx ones by default) have come in."""
        target = len(self.answers(acknowledged)) + count
        deadline = time.monotonic() + timeout
        while len(self.answers(acknowledged)) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"answers so far: {self.summary()}")
            time.sleep(0.02)

    def answers(self, acknowledged: bool = True) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.acknowledged or not acknowledged]

    def summary(self) -> Counter[int | None]:
        with self._lock:
            return Counter(o.status for o in self.outcomes)

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                self._next += 1
                delivery = f"{self.prefix}-{self._next}"
            outcome = self.deliver(delivery)
            if outcome.status is None:
                time.sleep(0.05)  # nothing listens: do not spin

    def resend(self, deliveries: Iterable[str]) -> list[Outcome]:
        return [self.deliver(delivery) for delivery in deliveries]

    def deliver(self, delivery: str) -> Outcome:
        body = json.dumps({"delivery": delivery, "ref": "refs/heads/main"}).encode()
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": self.event_type,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request("POST", f"/webhooks/{self.slug}/", body, headers)
            response = connection.getresponse()
            answer = response.read()
            event_id, stored_as = None, None
            if 200 <= response.status < 300:
                decoded = json.loads(answer)
                event_id, stored_as = int(decoded["id"]), str(decoded["status"])
            outcome = Outcome(
                delivery,
                response.status,
                event_id,
                response.getheader("Retry-After"),
                time.monotonic(),
                stored_as,
            )
        except (OSError, http.client.HTTPException):
            outcome = Outcome(delivery, None, at=time.monotonic())
        finally:
            connection.close()
        with self._lock:
            self.outcomes.append(outcome)
        return outcome
