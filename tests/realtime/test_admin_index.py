"""The admin lists the live page by itself, with no template of the project's."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

LIVE = "/admin/webhooks/live/"


def staff_client(*permissions: str) -> Client:
    user = User.objects.create_user("staff", password="x", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_index_links_the_live_page_for_users_who_may_see_events() -> None:
    page = staff_client("view_event").get("/admin/").content.decode()
    assert f'href="{LIVE}"' in page
    assert "Live events" in page


@pytest.mark.django_db
def test_the_navigation_sidebar_of_other_admin_pages_links_it_too() -> None:
    page = staff_client("view_event").get("/admin/webhooks/event/").content.decode()
    assert 'id="nav-sidebar"' in page
    assert f'href="{LIVE}"' in page


@pytest.mark.django_db
def test_admin_index_hides_the_live_page_from_staff_without_view_event() -> None:
    page = staff_client("view_endpoint").get("/admin/").content.decode()
    assert "Webhooks" in page  # the section is listed, for the endpoints
    assert LIVE not in page


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.urls_without_live_page")
def test_admin_index_works_when_the_live_page_is_not_mounted() -> None:
    response = staff_client("view_event").get("/admin/")
    assert response.status_code == 200
    assert LIVE not in response.content.decode()
