"""Arbitrary frames at the live socket: each gets one answer from the contract, or 1009.

Nothing is logged at ERROR, and the socket stays open for anything up to
REALTIME_MAX_FRAME_BYTES.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import given
from hypothesis import strategies as st

from realtime.conf import conf
from realtime.consumers import CLOSE_FRAME_TOO_BIG
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
text_frames = st.one_of(
    requests,
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.sampled_from(["[" * 5000, '{"type": "ping"', "NaN", "\x00", "\ud800"]),
)
frames = st.one_of(
    text_frames.map(lambda text: ("text", text)),
    st.binary(max_size=100).map(lambda data: ("bytes", data)),
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
        if kind == "text" and len(data) > conf.MAX_FRAME_BYTES:
            message = await socket.receive_output(timeout=TIMEOUT)
            assert message == {"type": "websocket.close", "code": CLOSE_FRAME_TOO_BIG}
            break
        answer_is_in_the_contract(
            json.loads(await socket.receive_from(timeout=TIMEOUT)), replay_allowed
        )
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("replay_allowed", [False, True], ids=["viewer", "replayer"])
def test_socket_answers_any_frame_within_the_contract(replay_allowed) -> None:
    perms = ("view_event", "change_event") if replay_allowed else ("view_event",)
    cookie = session_cookie(make_user(perms=perms))

    @examples(40)
    @given(
        sent=st.lists(
            st.one_of(
                frames,
                st.integers(1, 3).map(
                    lambda extra: ("text", "x" * (conf.MAX_FRAME_BYTES + extra))
                ),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def run(sent: list[tuple[str, Any]]) -> None:
        with error_log() as records:
            async_to_sync(exchange)(cookie, sent, replay_allowed)
        assert not records, describe(records)

    run()
