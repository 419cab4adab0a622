"""The async sender behind ``webhooks_send``: bounded concurrency, a steady rate, timings."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Outgoing:
    """One request, ready to post."""

    url: str
    headers: dict[str, str]
    body: bytes
    #: The provider's id of the delivery, and the sample's event type, where known.
    delivery_id: str = ""
    event_type: str = ""


@dataclass(frozen=True)
class Result:
    index: int
    #: HTTP status; None when no answer came (timeout, dropped connection).
    status: int | None
    #: The JSON answer's ``status`` or ``error`` ("received", "invalid_signature", ...).
    answer: str
    #: The JSON answer's ``reason``, or what went wrong without an answer.
    reason: str
    #: Seconds from sending to the full answer.
    latency: float
    #: ``time.perf_counter()`` when the request was sent.
    started: float
    #: The stored event's id from a 2xx answer (``{"status": ..., "id": N}``), else None.
    event_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def duplicate(self) -> bool:
        return self.ok and self.answer == "duplicate"


class ServerUnreachableError(ConnectionError):
    """Nothing accepted the connection: no server runs at the URL."""


@dataclass
class Summary:
    results: list[Result] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.results)

    @property
    def accepted(self) -> int:
        return sum(result.ok for result in self.results)

    @property
    def duplicates(self) -> int:
        return sum(result.duplicate for result in self.results)

    def failures(self) -> Counter[tuple[int | None, str, str]]:
        """How many deliveries got each non-2xx (status, answer, reason)."""
        return Counter(
            (result.status, result.answer, result.reason)
            for result in self.results
            if not result.ok
        )

    def latency(self, percent: float) -> float:
        """The nearest-rank percentile of latencies, in seconds."""
        latencies = sorted(result.latency for result in self.results)
        if not latencies:
            return 0.0
        rank = max(1, math.ceil(percent / 100 * len(latencies)))
        return latencies[rank - 1]

    @property
    def duration(self) -> float:
        """Seconds from the first request sent to the last answer received."""
        if not self.results:
            return 0.0
        first = min(result.started for result in self.results)
        return max(result.started + result.latency for result in self.results) - first

    @property
    def rate(self) -> float | None:
        """Deliveries sent per second, first to last; None for fewer than two."""
        starts = sorted(result.started for result in self.results)
        if len(starts) < 2 or starts[-1] == starts[0]:
            return None
        return (len(starts) - 1) / (starts[-1] - starts[0])


async def send(
    prepare: Callable[[int], Outgoing],
    count: int,
    *,
    rate: float | None = None,
    concurrency: int = 10,
    timeout: float = 30.0,
    on_result: Callable[[Result], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Summary:
    """Post ``count`` requests built by ``prepare(index)`` and collect the results.

    At most ``concurrency`` requests are in flight. With a ``rate``, request
    ``i`` is sent at ``start + i / rate``: a fixed schedule, so a slow answer
    delays no later send beyond the concurrency bound and sleeps do not add
    up. ``prepare`` runs just before each send, so signed timestamps are
    fresh. Raises :class:`ServerUnreachableError` on the first refused
    connection, cancelling the rest. ``transport`` replaces the network (tests).
    """
    summary = Summary()
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )
    loop = asyncio.get_running_loop()

    async def deliver(index: int) -> None:
        try:
            result = await _post(client, index, prepare(index), timeout)
        finally:
            slots.release()
        summary.results.append(result)
        if on_result is not None:
            on_result(result)

    async with httpx.AsyncClient(limits=limits, transport=transport) as client:
        try:
            async with asyncio.TaskGroup() as group:
                start = loop.time()
                for index in range(count):
                    if rate:
                        await asyncio.sleep(
                            max(0.0, start + index / rate - loop.time())
                        )
                    await slots.acquire()
                    group.create_task(deliver(index))
        except* ServerUnreachableError as errors:
            raise errors.exceptions[0] from None
    return summary


async def _post(
    client: httpx.AsyncClient, index: int, outgoing: Outgoing, timeout: float
) -> Result:
    started = time.perf_counter()
    try:
        response = await client.post(
            outgoing.url,
            content=outgoing.body,
            headers=outgoing.headers,
            timeout=timeout,
        )
    except httpx.ConnectError as error:
        raise ServerUnreachableError(str(error) or "connection refused") from error
    except httpx.TransportError as error:
        latency = time.perf_counter() - started
        return Result(index, None, "", type(error).__name__, latency, started)
    latency = time.perf_counter() - started
    answer, reason, event_id = _read_answer(response)
    return Result(
        index, response.status_code, answer, reason, latency, started, event_id
    )


def _read_answer(response: httpx.Response) -> tuple[str, str, int | None]:
    """The answer's ``status`` or ``error``, its ``reason``, and the stored event's id."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return "", response.text[:80].strip(), None
    if not isinstance(data, dict):
        return "", "", None
    answer = data.get("status") or data.get("error") or ""
    if not answer and "challenge" in data:
        answer = "challenge answered"
    event_id = data.get("id")
    if not (response.is_success and type(event_id) is int):
        event_id = None
    return str(answer), str(data.get("reason") or ""), event_id
