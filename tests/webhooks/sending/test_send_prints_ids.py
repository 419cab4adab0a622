"""webhooks_send names the stored event, so webhooks_replay can follow it."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_endpoint
from webhooks.models import Event


def send(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_send", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_send_prints_the_stored_event_id_that_replay_takes(live_server) -> None:
    make_endpoint("gh", "github", "gh-secret")
    output = send("gh", "--type", "push", "--url", live_server.url)
    match = re.fullmatch(r"#1  200 received \(event (\d+)\)  \S+ ms\n", output)
    assert match, output
    event = Event.objects.get()
    assert int(match[1]) == event.pk
    replayed = StringIO()
    call_command("webhooks_replay", match[1], stdout=replayed)
    assert "Queued 1 event(s)" in replayed.getvalue()


@pytest.mark.django_db(transaction=True)
def test_send_prints_no_id_for_a_refused_delivery(live_server) -> None:
    make_endpoint("gh", "github", "gh-secret", allowed_networks=["10.0.0.0/8"])
    output = StringIO()
    with pytest.raises(CommandError, match="not accepted"):
        call_command("webhooks_send", "gh", "--url", live_server.url, stdout=output)
    assert "403 forbidden (ip_not_allowed)" in output.getvalue()
    assert "(event" not in output.getvalue()


@pytest.mark.django_db(transaction=True)
def test_send_of_many_names_the_range_of_stored_events(live_server) -> None:
    make_endpoint("gh", "github", "gh-secret")
    output = send("gh", "--count", "3", "--url", live_server.url)
    ids = sorted(Event.objects.values_list("pk", flat=True))
    assert f"events {ids[0]}..{ids[-1]} (3 stored or seen)" in output
    assert len(re.findall(r"\(event \d+\)", output)) == 3
