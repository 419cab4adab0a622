"""Access to the live feed: refused at the handshake, and withdrawn from open sockets.

An open socket re-reads its session every REALTIME_RECHECK_SECONDS (short here),
so logout, expiry, a flushed session, a new password, or a user who loses staff
status or the permission closes it with 4403.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.utils import timezone

from realtime.consumers import CLOSE_ACCESS_ENDED
from tests.asgi import application
from tests.realtime.test_consumers import ORIGIN, make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("async_db_connections"),
]

TIMEOUT = 5
RECHECK = 0.05


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def socket_for(client: Client) -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(
        application, "/ws/webhooks/", headers=[ORIGIN, (b"cookie", cookie)]
    )


async def opened(client: Client) -> WebsocketCommunicator:
    socket = socket_for(client)
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    assert accepted
    for expected in ("hello", "snapshot"):
        assert (
            json.loads(await socket.receive_from(timeout=TIMEOUT))["type"] == expected
        )
    return socket


async def closed_with(socket: WebsocketCommunicator) -> int | None:
    """The close code the server sends next (frames before it are skipped)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = await socket.receive_output(timeout=TIMEOUT)
            if message["type"] == "websocket.close":
                return message.get("code")


def logout(client: Client, user: User) -> None:
    client.logout()


def expire(client: Client, user: User) -> None:
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )


def flush_all_sessions(client: Client, user: User) -> None:
    # What clearsessions or an operator's "log everyone out" leaves behind.
    Session.objects.all().delete()


def change_password(client: Client, user: User) -> None:
    user.set_password("a new password")
    user.save()


def lose_staff(client: Client, user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_staff=False)


def deactivate(client: Client, user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def lose_permission(client: Client, user: User) -> None:
    user.user_permissions.clear()


WITHDRAWALS: list[Callable[[Client, User], None]] = [
    logout,
    expire,
    flush_all_sessions,
    change_password,
    lose_staff,
    deactivate,
    lose_permission,
]


@override_settings(REALTIME_RECHECK_SECONDS=RECHECK)
@pytest.mark.parametrize("withdraw", WITHDRAWALS, ids=lambda f: f.__name__)
async def test_open_socket_is_closed_once_access_ends(withdraw) -> None:
    user = await sync_to_async(make_user)()
    client = await sync_to_async(logged_in)(user)
    socket = await opened(client)
    await sync_to_async(withdraw)(client, user)
    assert await closed_with(socket) == CLOSE_ACCESS_ENDED
    await socket.disconnect()


@override_settings(REALTIME_RECHECK_SECONDS=RECHECK)
async def test_socket_stays_open_while_access_holds() -> None:
    user = await sync_to_async(make_user)()
    client = await sync_to_async(logged_in)(user)
    socket = await opened(client)
    await asyncio.sleep(RECHECK * 10)  # several re-checks pass
    await socket.send_json_to({"type": "ping"})
    assert json.loads(await socket.receive_from(timeout=TIMEOUT)) == {"type": "pong"}
    await socket.disconnect()


@override_settings(REALTIME_RECHECK_SECONDS=RECHECK)
async def test_losing_change_permission_withdraws_replay_but_keeps_the_feed() -> None:
    user = await sync_to_async(make_user)(perms=("view_event", "change_event"))
    client = await sync_to_async(logged_in)(user)
    socket = await opened(client)
    change = await Permission.objects.aget(codename="change_event")
    await user.user_permissions.aremove(change)
    # Each replay of a missing id answers not_found while replay is allowed, and
    # forbidden once a re-check has seen the permission go.
    async with asyncio.timeout(TIMEOUT):
        while True:
            await socket.send_json_to({"type": "replay", "id": 10**9})
            answer = json.loads(await socket.receive_from(timeout=TIMEOUT))
            if answer["error"] == "forbidden":
                break
            assert answer["error"] == "not_found"
            await asyncio.sleep(RECHECK)
    await socket.send_json_to({"type": "ping"})
    assert json.loads(await socket.receive_from(timeout=TIMEOUT)) == {"type": "pong"}
    await socket.disconnect()


async def test_logged_out_session_is_refused_at_the_handshake() -> None:
    user = await sync_to_async(make_user)()
    client = await sync_to_async(logged_in)(user)
    socket = socket_for(client)
    await sync_to_async(client.logout)()
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    await socket.disconnect()
    assert not accepted


async def test_expired_session_is_refused_at_the_handshake() -> None:
    user = await sync_to_async(make_user)()
    client = await sync_to_async(logged_in)(user)
    await sync_to_async(expire)(client, user)
    accepted, _ = await socket_for(client).connect(timeout=TIMEOUT)
    assert not accepted


@override_settings(REALTIME_RECHECK_SECONDS=0)
async def test_recheck_can_be_turned_off() -> None:
    user = await sync_to_async(make_user)()
    client = await sync_to_async(logged_in)(user)
    socket = await opened(client)
    await sync_to_async(client.logout)()
    await asyncio.sleep(0.2)
    await socket.send_json_to({"type": "ping"})
    assert json.loads(await socket.receive_from(timeout=TIMEOUT)) == {"type": "pong"}
    await socket.disconnect()


def live_page_after_logout(user: User) -> tuple[int, str]:
    client = logged_in(user)
    assert client.get("/admin/webhooks/live/").status_code == 200
    client.logout()
    response = client.get("/admin/webhooks/live/")
    return response.status_code, response.get("Location", "")


async def test_live_page_after_logout_sends_to_the_login() -> None:
    user = await sync_to_async(make_user)()
    status, location = await sync_to_async(live_page_after_logout)(user)
    assert status == 302
    assert location.startswith("/admin/login/")
