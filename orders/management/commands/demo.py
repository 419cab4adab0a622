"""``make run``: the demo set up, then the server and the demo sender run together.

Each child runs in a process group of its own, so this command alone decides
when they stop: Ctrl-C (SIGINT to the terminal's foreground group), SIGTERM or
SIGHUP to this process stops both groups, the server's autoreloader child
included, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.management.commands.demo_setup import (
    DEFAULT_PORT,
    PROVIDERS,
    SLUG_PREFIX,
    credential_lines,
    ensure_endpoints,
    ensure_orders,
    ensure_user,
    reset_password,
)

#: By absolute path, so that every process of the demo names its checkout.
MANAGE = Path(__file__).resolve().parents[3] / "manage.py"
#: How long children get to exit after SIGTERM before they are killed.
GRACE_SECONDS = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Command(BaseCommand):
    help = "Set up the demo and run the server with the demo sender until Ctrl-C."
    # runserver runs the checks itself, once.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)
        parser.add_argument(
            "--credentials",
            action="store_true",
            help="Print the demo login with a new password, and exit (the password "
            "is stored only hashed, so a forgotten one cannot be shown again).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port: int = options["port"]
        if options["credentials"]:
            self.stdout.write("\n".join(credential_lines(port, reset_password())))
            return
        password = ensure_user()
        ensure_endpoints()
        ensure_orders()
        stop = threading.Event()
        for number in STOP_SIGNALS:
            signal.signal(number, lambda *_: stop.set())
        demo = getattr(settings, "WEBHOOKS_DEMO", True)
        children = {"server": self.start("runserver", f"127.0.0.1:{port}")}
        try:
            if demo:
                url = f"http://127.0.0.1:{port}"
                children["demo sender"] = self.start("demo_sender", "--url", url)
            if wait_for_port(port, stop, children["server"]):
                self.banner(port, password, demo)
            failed = supervise(children, stop)
        finally:
            self.stdout.write(f"Stopping the {' and the '.join(children)} ...")
            stop_all(children.values())
        if failed:
            raise CommandError(f"The {failed} stopped; the demo is stopped too.")

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        # A group of its own, so that the server's reloader and its child stop together;
        # no terminal input, so a child never waits on the keyboard.
        return subprocess.Popen(
            [sys.executable, str(MANAGE), *command],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def banner(self, port: int, password: str | None, demo: bool) -> None:
        rule = "-" * 72
        lines = [rule, *credential_lines(port, password)]
        if demo:
            slugs = ", ".join(SLUG_PREFIX + provider for provider in PROVIDERS)
            lines.append(f"Demo sender: posts to {slugs} every 1-4 s.")
            lines.append("WEBHOOKS_DEMO=0 make run starts the server without it.")
        if port != DEFAULT_PORT:
            # The commands cannot know which port this server chose.
            lines.append(
                "In other terminals, give webhooks_send and webhooks_endpoint "
                f"--url http://127.0.0.1:{port}"
            )
        lines += [
            "Below: one line per delivery the demo sender posts, and per failure.",
            "Stop: Ctrl-C.",
            rule,
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()


def wait_for_port(
    port: int, stop: threading.Event, server: subprocess.Popen[bytes]
) -> bool:
    """True once the server accepts connections; False if it stopped or we were told to."""
    while not stop.is_set() and server.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        stop.wait(0.2)
    return False


def supervise(
    children: dict[str, subprocess.Popen[bytes]], stop: threading.Event
) -> str | None:
    """Wait for a stop signal; the name of a child that exited first, if one did."""
    while not stop.wait(0.5):
        for name, child in children.items():
            if child.poll() is not None:
                return name
    return None


def stop_all(children: Iterable[subprocess.Popen[bytes]]) -> None:
    running = [child for child in children if child.poll() is None]
    for child in running:
        signal_group(child, signal.SIGTERM)
    for child in running:
        try:
            child.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
        # The reloader's server child is in the same group: whatever is left goes too.
        signal_group(child, signal.SIGKILL)
        child.wait()


def signal_group(child: subprocess.Popen[bytes], number: int) -> None:
    # ProcessLookupError: the whole group is gone already.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, number)
