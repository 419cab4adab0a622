"""The live page in the admin's app list: on the index and in the navigation sidebar.

The page is not a model, so the admin would not list it; instead the default
site's app list gets one more row in the Webhooks section. This needs no
template of the project's (a project's own ``admin/index.html`` keeps working),
and the row is shown only to users who may open the page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from realtime.queries import VIEW_PERMISSION

#: The app whose section lists the page.
SECTION = "webhooks"


def live_page_entry(request: HttpRequest) -> dict[str, Any] | None:
    """The app-list row of the live page, or None for a user who may not open it."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return None
    try:
        url = reverse("realtime:live")
    except NoReverseMatch:  # realtime.urls is not included: check realtime.E005 says so
        return None
    return {
        "model": None,
        "name": "Live events",
        "object_name": "LiveEvents",
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


def list_live_page(site: admin.AdminSite) -> None:
    """Make ``site`` list the live page first in its Webhooks section."""
    build = site.get_app_list

    def get_app_list(
        request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        app_list = build(request, app_label)
        entry = live_page_entry(request)
        if entry is not None:
            for app in app_list:
                if app["app_label"] == SECTION:
                    app["models"].insert(0, entry)
        return app_list

    # One instance's method, not the class's: only the site realtime.urls serves.
    site.get_app_list = get_app_list  # type: ignore[method-assign]


list_live_page(admin.site)
