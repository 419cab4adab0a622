"""A public-key provider's secret is checked when it is entered, not at the first delivery."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_endpoint
from tests.webhooks.admin.support import ENDPOINT_ADD, endpoint_form
from tests.webhooks.providers.test_discord import KEY as DISCORD_KEY
from tests.webhooks.providers.test_sendgrid import KEY as SENDGRID_KEY
from tests.webhooks.providers.test_sendgrid import VECTOR_KEY, shown_key
from webhooks.models import Endpoint

#: provider, a key it accepts, a value it must refuse.
CASES = [
    ("sendgrid", VECTOR_KEY, "pasted-the-api-key-instead"),
    ("sendgrid", shown_key(SENDGRID_KEY), VECTOR_KEY[:40]),
    ("discord", DISCORD_KEY.verify_key.encode().hex(), "not-a-hex-key"),
    ("discord", DISCORD_KEY.verify_key.encode().hex(), "ab" * 20),
]


def manage(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_endpoint", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "good", "bad"), CASES)
def test_add_with_a_secret_that_is_no_key_is_refused_without_echoing_it(
    provider, good, bad
) -> None:
    with pytest.raises(CommandError, match=f"Not a secret for '{provider}'") as error:
        manage("add", "keyed", "--provider", provider, "--secret", bad)
    assert bad not in str(error.value)
    assert not Endpoint.objects.exists()
    manage("add", "keyed", "--provider", provider, "--secret", good)
    assert Endpoint.objects.get().valid_secrets() == [good]


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "good", "bad"), CASES)
def test_rotate_to_a_secret_that_is_no_key_keeps_the_current_one(
    provider, good, bad
) -> None:
    endpoint = make_endpoint("keyed", provider, good)
    with pytest.raises(CommandError, match=f"Not a secret for '{provider}'"):
        manage("rotate", "keyed", "--secret", bad)
    assert endpoint.valid_secrets() == [good]


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "good", "bad"), CASES)
def test_admin_add_with_a_secret_that_is_no_key_is_a_form_error(
    admin_client, provider, good, bad
) -> None:
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(provider=provider, new_secret=bad)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["new_secret"]
    assert bad not in response.content.decode()
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["sendgrid", "discord"])
def test_generated_secret_passes_the_check(provider) -> None:
    output = manage("add", "keyed", "--provider", provider, "--generate-secret")
    assert "Secret (shown once): " in output
