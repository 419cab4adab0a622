from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.mark.django_db
def test_admin_index_names_the_pushes_in_english() -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "", "x"))
    page = client.get("/admin/").content.decode()
    assert ">Pushes<" in page
    assert "Pushs" not in page
