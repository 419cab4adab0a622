"""How closely ``webhooks_send --rate`` holds its rate when answers are slower than
the interval: the sender's schedule against a stand-in server that answers each
request after a fixed delay (no network, no database).

    python -m bench.send_rate [--rate 50] [--count 300] [--answer-ms 30]

The test suite proves the schedule does not wait for answers; the achieved rate,
which depends on the machine, is measured here. Target: within 10 % of the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx

from webhooks.sending import client

TOLERANCE = 0.10


def outgoing(index: int) -> client.Outgoing:
    return client.Outgoing(
        "http://sender.bench/webhooks/demo/",
        {"Content-Type": "application/json"},
        json.dumps({"index": index}).encode(),
    )


async def measure(rate: float, count: int, answer_seconds: float) -> client.Summary:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(answer_seconds)
        return httpx.Response(200, json={"status": "received"})

    return await client.send(
        outgoing,
        count,
        rate=rate,
        concurrency=max(1, int(rate * answer_seconds * 4) + 1),
        transport=httpx.MockTransport(handler),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--answer-ms", type=float, default=30.0)
    args = parser.parse_args()
    summary = asyncio.run(measure(args.rate, args.count, args.answer_ms / 1000))
    achieved = summary.rate or 0.0
    error = abs(achieved - args.rate) / args.rate
    verdict = "within" if error <= TOLERANCE else "OUTSIDE"
    print(
        f"asked {args.rate:.1f}/s, achieved {achieved:.1f}/s over "
        f"{summary.duration:.1f} s ({error:.1%} off, {verdict} {TOLERANCE:.0%}); "
        f"answers took {args.answer_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
