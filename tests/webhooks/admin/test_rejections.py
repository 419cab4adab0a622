from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_endpoint
from tests.webhooks.admin.support import (
    change_url,
)
from webhooks.models import Rejection

# Rejections


@pytest.mark.django_db
def test_rejection_list_and_detail_show_escaped_redacted_content(admin_client):
    endpoint = make_endpoint(slug="shop")
    rejection = Rejection.objects.create(
        endpoint=endpoint,
        reason="signature_mismatch",
        headers={"cookie": "[redacted]"},
        body_head=b"<script>x</script>",
        body_size=5000,
        source_ip="192.0.2.1",
    )

    listing = admin_client.get(
        reverse("admin:webhooks_rejection_changelist")
    ).content.decode()
    detail = admin_client.get(change_url(rejection)).content.decode()

    assert "signature_mismatch" in listing
    assert "192.0.2.1" in listing
    assert "&lt;script&gt;x&lt;/script&gt;" in detail
    assert "<script>x" not in detail
    assert "[redacted]" in detail
    assert admin_client.get(reverse("admin:webhooks_rejection_add")).status_code == 403
