"""webhooks_send: argument errors without any network, and real deliveries to the
demo project served by daphne over PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from urllib.parse import parse_qsl

import psycopg
import pytest
import standardwebhooks.webhooks
import stripe
import svix.webhooks
from django.core.management import CommandError, call_command
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from tests.servers import ROOT, Postgres, Project, free_port
from webhooks.models import Endpoint
from webhooks.sending import samples

# -- argument errors: no server involved ---------------------------------------------

NOWHERE = "http://127.0.0.1:9"  # Nothing is sent when the arguments are wrong.


@pytest.fixture
def github_endpoint(db) -> Endpoint:
    endpoint = Endpoint.objects.create(slug="gh", provider="github")
    endpoint.secrets.create(value="gh-secret")
    return endpoint


def send(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_send", *args, stdout=out)
    return out.getvalue()


def test_send_unknown_slug_is_a_command_error_naming_the_endpoints(
    github_endpoint,
) -> None:
    with pytest.raises(CommandError, match=r"No endpoint 'nope'\. Endpoints: gh\."):
        send("nope", "--url", NOWHERE)


def test_send_unknown_type_is_a_command_error_listing_the_types(
    github_endpoint,
) -> None:
    with pytest.raises(CommandError, match="available: push, pull_request, ping"):
        send("gh", "--type", "issues", "--url", NOWHERE)


def test_send_missing_data_file_is_a_command_error(github_endpoint, tmp_path) -> None:
    with pytest.raises(CommandError, match="Cannot read --data .*missing.json"):
        send("gh", "--data", str(tmp_path / "missing.json"), "--url", NOWHERE)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--count", "0"), "--count must be at least 1"),
        (("--concurrency", "0"), "--concurrency must be at least 1"),
        (("--rate", "0"), "--rate must be positive"),
    ],
)
def test_send_bad_numbers_are_command_errors(github_endpoint, args, message) -> None:
    with pytest.raises(CommandError, match=message):
        send("gh", *args, "--url", NOWHERE)


def test_send_without_slug_is_a_command_error(db) -> None:
    with pytest.raises(CommandError, match="Name the endpoint"):
        send("--url", NOWHERE)


def test_send_endpoint_without_secret_is_a_command_error(db) -> None:
    Endpoint.objects.create(slug="bare", provider="stripe")
    with pytest.raises(CommandError, match="no valid secret"):
        send("bare", "--url", NOWHERE)


def test_send_to_a_stopped_server_says_it_is_not_running(github_endpoint) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=f"No server is running at {base}"):
        send("gh", "--url", base)


def test_send_list_types_of_an_endpoint_prints_its_provider_samples(
    github_endpoint,
) -> None:
    assert send("gh", "--list-types").split() == ["push", "pull_request", "ping"]


def test_send_list_types_without_slug_prints_every_provider(db) -> None:
    output = send("--list-types")
    assert "shopify: orders/create" in output
    assert "stripe: payment_intent.succeeded, charge.refunded" in output


# -- real deliveries: daphne serving the demo project over PostgreSQL ------------------

#: Options for the hmac endpoint, so that sign() has options to honour.
HMAC_OPTIONS = [
    "header=X-Hook-Signature",
    "prefix=sha256=",
    "template={timestamp}.{body}",
    "timestamp_header=X-Hook-Timestamp",
    "id_header=X-Hook-Id",
]


class Server:
    def __init__(self, project: Project, database: Postgres, port: int) -> None:
        self.project, self.database, self.port = project, database, port
        self.base = f"http://127.0.0.1:{port}"
        self.secrets: dict[str, str] = {}

    def sql(self, query: str, *params: object) -> list[tuple]:
        dsn = f"postgresql://postgres@127.0.0.1:5432/{self.database.name}"
        with psycopg.connect(dsn) as conn:
            return conn.execute(query, params).fetchall()

    def events(self, slug: str) -> list[tuple]:
        return self.sql(
            "SELECT e.delivery_id, e.event_type, e.body, e.headers FROM webhooks_event e "
            "JOIN webhooks_endpoint p ON p.id = e.endpoint_id WHERE p.slug = %s "
            "ORDER BY e.id",
            slug,
        )

    def send(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "webhooks_send", *args, "--url", self.base],
            cwd=ROOT,
            env=self.project.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    database = Postgres()
    database.create()
    project = Project(database.url, None)
    try:
        project.manage("migrate", "--verbosity", "0")
        running = Server(project, database, project.serve())
        for provider in ("stripe", "github", "shopify", "slack", "twilio", "standard"):
            running.secrets[provider] = add_endpoint(project, provider)
        running.secrets["hmac"] = add_endpoint(
            project, "hmac", *[f"--option={option}" for option in HMAC_OPTIONS]
        )
        running.secrets["basic"] = add_endpoint(project, "basic")
        running.secrets["none"] = add_endpoint(project, "none")
        yield running
    finally:
        project.stop_all()
        database.drop()


def add_endpoint(project: Project, provider: str, *options: str) -> str:
    output = project.manage(
        "webhooks_endpoint",
        "add",
        f"send-{provider}",
        "--provider",
        provider,
        "--generate-secret",
        *options,
    )
    return output.split("Secret (shown once): ")[1].strip()


SAMPLES = [
    (provider, event_type)
    for provider in ("stripe", "github", "shopify", "slack", "twilio", "standard")
    + ("hmac", "basic", "none")
    for event_type in samples.types(provider)
]


@pytest.mark.postgres
@pytest.mark.parametrize(("provider", "event_type"), SAMPLES)
def test_send_every_sample_is_accepted_stored_and_valid_for_the_provider_sdk(
    server: Server, provider: str, event_type: str
) -> None:
    slug = f"send-{provider}"
    before = len(server.events(slug))
    result = server.send(slug, "--type", event_type)
    assert result.returncode == 0, result.stderr + result.stdout
    assert re.fullmatch(r"#1  200 \S.* ms\n", result.stdout)
    events = server.events(slug)
    assert len(events) == before + 1
    delivery_id, stored_type, body, headers = events[-1]
    check_with_the_provider(
        provider,
        server.secrets[provider],
        bytes(body),
        headers,
        server.base + f"/webhooks/{slug}/",
    )
    if provider not in ("slack", "hmac", "basic", "none"):
        assert stored_type == event_type


def check_with_the_provider(
    provider: str, secret: str, body: bytes, headers: dict[str, str], url: str
) -> None:
    """What the provider's SDK (or documented algorithm) says of the stored delivery."""
    if provider == "stripe":
        stripe.WebhookSignature.verify_header(
            body.decode(), headers["stripe-signature"], secret, tolerance=300
        )
    elif provider == "slack":
        assert SignatureVerifier(secret).is_valid_request(body, headers)
    elif provider == "twilio":
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        assert RequestValidator(secret).validate(
            url, params, headers["x-twilio-signature"]
        )
    elif provider == "standard":
        standardwebhooks.webhooks.Webhook(secret).verify(body, headers)
        svix.webhooks.Webhook(secret).verify(body, headers)
    elif provider == "github":
        mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == f"sha256={mac}"
    elif provider == "shopify":
        mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        assert headers["x-shopify-hmac-sha256"] == base64.b64encode(mac).decode()
    elif provider == "hmac":
        signed = headers["x-hook-timestamp"].encode() + b"." + body
        mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert headers["x-hook-signature"] == f"sha256={mac}"


@pytest.mark.postgres
def test_send_own_data_from_stdin_is_signed_and_stored_byte_for_byte(
    server: Server,
) -> None:
    data = b'{"id": "evt_{{id}}", "object": "event", "type": "invoice.paid"}'
    result = subprocess.run(
        [sys.executable, "manage.py", "webhooks_send", "send-stripe", "--data", "-"]
        + ["--url", server.base],
        cwd=ROOT,
        env=server.project.env,
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    delivery_id, event_type, body, headers = server.events("send-stripe")[-1]
    assert event_type == "invoice.paid"
    assert json.loads(bytes(body))["id"] == delivery_id
    assert delivery_id.startswith("evt_") and "{{" not in delivery_id


@pytest.mark.postgres
def test_send_signed_with_a_secret_the_server_does_not_know_exits_non_zero_with_401_reason(
    server: Server, tmp_path
) -> None:
    # The sender reads the endpoint from a database of its own, where its secret
    # differs from the one the server checks against.
    sender = Project(f"sqlite:///{tmp_path / 'sender.sqlite3'}", None)
    sender.manage("migrate", "--verbosity", "0")
    sender.manage(
        "webhooks_endpoint", "add", "send-github", "--provider", "github",
        "--secret", "not-the-server-secret",
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "webhooks_send", "send-github", "--count", "3"]
        + ["--url", server.base],
        cwd=ROOT,
        env=sender.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "401 invalid_signature (signature_mismatch)" in result.stdout
    assert "3 of 3 deliveries not accepted" in result.stderr
    assert "signature_mismatch" in result.stderr
    rejected = server.sql(
        "SELECT count(*) FROM webhooks_rejection r JOIN webhooks_endpoint p "
        "ON p.id = r.endpoint_id WHERE p.slug = 'send-github' "
        "AND r.reason = 'signature_mismatch'"
    )
    assert rejected[0][0] >= 3


@pytest.mark.postgres
def test_send_1000_with_concurrency_50_stores_every_delivery_once(
    server: Server,
) -> None:
    before = {row[0] for row in server.events("send-shopify")}
    result = server.send("send-shopify", "--count", "1000", "--concurrency", "50")
    assert result.returncode == 0, result.stderr
    assert "sent 1000  2xx 1000  duplicates 0" in result.stdout
    rows = server.sql(
        "SELECT e.delivery_id, count(*) FROM webhooks_event e JOIN webhooks_endpoint p "
        "ON p.id = e.endpoint_id WHERE p.slug = 'send-shopify' GROUP BY e.delivery_id"
    )
    new = {delivery_id: n for delivery_id, n in rows if delivery_id not in before}
    assert len(new) == 1000
    assert set(new.values()) == {1}


@pytest.mark.postgres
def test_send_with_a_rate_sends_every_delivery_and_reports_the_achieved_rate(
    server: Server,
) -> None:
    # The figures are not asserted: how close they come to 40/s over 5 s depends on
    # the machine, and is measured in bench/send_rate.py.
    result = server.send("send-standard", "--rate", "40", "--count", "200")
    assert result.returncode == 0, result.stderr
    assert re.search(r"achieved rate \d+\.\d/s over \d+\.\d s", result.stdout), (
        result.stdout
    )
    assert "sent 200  2xx 200  duplicates 0" in result.stdout


@pytest.mark.postgres
def test_send_to_twilio_behind_a_public_url_signs_for_the_public_url(tmp_path) -> None:
    # The server rebuilds Twilio's signed URL from WEBHOOKS_PUBLIC_URL; the command
    # reaches it at a local address but must sign for the public one.
    database = Postgres()
    database.create()
    project = Project(
        database.url, None, WEBHOOKS_PUBLIC_URL="https://hooks.example.com"
    )
    try:
        project.manage("migrate", "--verbosity", "0")
        add_endpoint(project, "twilio")
        port = project.serve()
        result = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "webhooks_send",
                "send-twilio",
                "--url",
                f"http://127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=project.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        project.stop_all()
        database.drop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "200" in result.stdout
