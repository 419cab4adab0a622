"""Arbitrary frames at the live socket: each gets one answer from the contract.

Frames of every size and type, through the real consumer: text over
REALTIME_MAX_FRAME_BYTES, binary, malformed or deeply nested JSON, lone
surrogates (escaped and raw), NUL, non-finite numbers, wrong types. Each gets a
contract answer (most a ``bad_message`` error), the socket stays open, nothing
is logged at ERROR and no close code is sent. Through a real daphne server,
too, where a close code the server refuses reached the browser as 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import given
from hypothesis import strategies as st

from realtime.conf import conf
from tests.asgi import application
from tests.hostile import describe, error_log, examples
from tests.realtime.test_consumers import ORIGIN, make_user, session_cookie

ERRORS = {"bad_message", "forbidden", "not_found"}
TIMEOUT = 5

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
requests = st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "resume", "replay", "subscribe", "", "PING"])},
    optional={
        "after_id": st.one_of(json_values, st.integers(-(2**70), 2**70)),
        "id": st.one_of(json_values, st.integers(-(2**70), 2**70)),
    },
).map(json.dumps)
#: Pieces that parsers, encoders and PostgreSQL each trip on.
ODD = [
    "\x00",
    "\\u0000",
    "\ud800",
    "\\ud800",
    "\udfff",
    "\\udfff",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "\ufeff",
    "é",
    "\U0001f600",
]
text_frames = st.one_of(
    requests,
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.lists(st.sampled_from(ODD) | st.text(max_size=5), max_size=20).map("".join),
    st.sampled_from(ODD).map(lambda odd: '{"type": "' + odd + '"}'),
    st.sampled_from(ODD).map(lambda odd: '{"type": "resume", "after_id": ' + odd + "}"),
    st.sampled_from(["[", '{"a":']).flatmap(
        lambda opening: st.integers(1, 5000).map(lambda depth: opening * depth)
    ),
    st.sampled_from(['{"type": "ping"', "NaN", "", " ", "[]", "{}"]),
)
#: Around the limit, in one-byte and multi-byte characters.
sized_frames = st.tuples(
    st.integers(-3, 3), st.sampled_from(["x", "é", "\U0001f600"])
).map(
    lambda spec: (
        "y" * (conf.MAX_FRAME_BYTES + spec[0] - len(spec[1].encode())) + spec[1]
    )
)
frames = st.one_of(
    text_frames.map(lambda text: ("text", text)),
    sized_frames.map(lambda text: ("text", text)),
    st.integers(conf.MAX_FRAME_BYTES + 1, 4 * conf.MAX_FRAME_BYTES).map(
        lambda size: ("text", json.dumps({"type": "ping", "pad": "x" * size}))
    ),
    st.binary(max_size=100).map(lambda data: ("bytes", data)),
    st.integers(0, 4 * conf.MAX_FRAME_BYTES).map(
        lambda size: ("bytes", b"\x00" * size)
    ),
)


def answer_is_in_the_contract(answer: dict[str, Any], replay_allowed: bool) -> None:
    kind = answer.get("type")
    if kind == "pong":
        assert answer == {"type": "pong"}
    elif kind == "resumed":
        assert set(answer) == {"type", "events", "complete"}
        assert answer["events"] == [] and answer["complete"] is True
    elif kind == "error":
        assert set(answer) == {"type", "error", "detail"}, answer
        assert answer["error"] in ERRORS, answer
        if answer["error"] == "forbidden":
            assert not replay_allowed
    else:
        raise AssertionError(f"frame outside the contract: {answer}")


async def exchange(
    cookie: bytes, sent: list[tuple[str, Any]], replay_allowed: bool
) -> None:
    socket = WebsocketCommunicator(
        application,
        "/ws/webhooks/",
        headers=[ORIGIN, (b"cookie", cookie)],
    )
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    assert accepted
    for expected in ("hello", "snapshot"):
        assert (
            json.loads(await socket.receive_from(timeout=TIMEOUT))["type"] == expected
        )
    for kind, data in sent:
        # Raw input: the communicator's helpers refuse empty frames, servers do not.
        await socket.send_input({"type": "websocket.receive", kind: data})
        output = await socket.receive_output(timeout=TIMEOUT)
        assert output["type"] == "websocket.send", output  # never a close
        answer = json.loads(output["text"])
        answer_is_in_the_contract(answer, replay_allowed)
        if kind == "bytes" or utf8_size(data) > conf.MAX_FRAME_BYTES:
            assert answer["error"] == "bad_message", answer
    await socket.send_input({"type": "websocket.receive", "text": '{"type":"ping"}'})
    assert json.loads(await socket.receive_from(timeout=TIMEOUT)) == {"type": "pong"}
    await socket.disconnect()


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("replay_allowed", [False, True], ids=["viewer", "replayer"])
def test_socket_answers_any_frame_within_the_contract(replay_allowed) -> None:
    perms = ("view_event", "change_event") if replay_allowed else ("view_event",)
    cookie = session_cookie(make_user(perms=perms))

    @examples(100)
    @given(
        sent=st.lists(
            frames,
            min_size=1,
            max_size=8,
        )
    )
    def run(sent: list[tuple[str, Any]]) -> None:
        with error_log() as records:
            async_to_sync(exchange)(cookie, sent, replay_allowed)
        assert not records, describe(records)

    run()


# --- through a real daphne server ------------------------------------------------------

#: (frame, what the server answers): every one a ``bad_message`` error but the ping.
SERVED_FRAMES: list[tuple[str | bytes, str]] = [
    ("x" * 10_000, "bad_message"),
    (json.dumps({"type": "ping", "pad": "é" * 100_000}), "bad_message"),
    (b"\x00" * 5000, "bad_message"),
    (b"", "bad_message"),
    ("", "bad_message"),
    ("[" * 4000, "bad_message"),
    ('{"type": NaN}', "bad_message"),
    ('{"type": "resume", "after_id": 1e999}', "bad_message"),
    ('"\\ud800"', "bad_message"),
    ('{"type": "\\u0000"}', "bad_message"),
    ('{"type": "replay", "id": "\\udfff"}', "bad_message"),
    ('{"type": "ping"}', "pong"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Daphne serving the demo project, a staff session, and the server's log."""
    from tests.hostile import LiveServer

    database = tmp_path_factory.mktemp("frames") / "db.sqlite3"
    server = LiveServer("daphne", f"sqlite:///{database}")
    try:
        server.project.manage("migrate", "--verbosity", "0")
        session = server.project.staff_session()
        server.start()
        yield server, session
    finally:
        server.stop()


def served_socket(server, session: str):
    from websockets.asyncio.client import connect

    return connect(
        f"ws://127.0.0.1:{server.port}/ws/webhooks/",
        origin=f"http://127.0.0.1:{server.port}",
        additional_headers={"Cookie": f"sessionid={session}"},
        max_size=None,
    )


async def greeted(socket) -> None:
    for expected in ("hello", "snapshot"):
        assert json.loads(await socket.recv())["type"] == expected


def test_daphne_answers_every_hostile_frame_and_keeps_the_socket_open(served) -> None:
    server, session = served

    async def exchange() -> list[str]:
        answers = []
        async with served_socket(server, session) as socket:
            await greeted(socket)
            for frame, _ in SERVED_FRAMES:
                await socket.send(frame)
                async with asyncio.timeout(TIMEOUT * 3):
                    answer = json.loads(await socket.recv())
                answers.append(answer.get("error", answer["type"]))
        return answers

    answers = asyncio.run(exchange())

    assert answers == [expected for _, expected in SERVED_FRAMES]
    assert not server.new_errors()


def test_daphne_drops_a_text_frame_that_is_not_utf8_without_a_1011(served) -> None:
    # A raw surrogate cannot cross a real server: its WebSocket layer fails the
    # connection (RFC 6455: 1007, or dropped, which the client sees as 1006)
    # before the application sees the frame.
    from websockets.exceptions import ConnectionClosed

    server, session = served

    async def exchange() -> int | None:
        async with served_socket(server, session) as socket:
            await greeted(socket)
            await socket.send(b'{"type": "\xed\xa0\x80"}', text=True)
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(TIMEOUT * 3):
                    await socket.recv()
            return socket.close_code

    assert asyncio.run(exchange()) in (1006, 1007)
    assert not server.new_errors()
