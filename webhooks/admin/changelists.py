"""The admin lists' answer to query strings the database cannot take: refused, never a 500.

Django checks a filter's value while it builds the query and, when the value
is wrong, sends the user back to the unfiltered list with ``?e=1``. Some
values pass that check and fail only when the query runs: a NUL character
(PostgreSQL's text types refuse it), a date whose UTC time falls outside years
1-9999. Those take the same way back here, before any query runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db.models import Model, QuerySet
from django.http import HttpRequest

NUL = "\x00"


class CheckedChangeList(ChangeList):
    """A change list that refuses, as Django refuses a bad filter value, what would fail later.

    Besides the values above, it refuses lookups that none of the list's filters
    offers: Django lets a query string filter on any field of the model, which
    would put ``?body__contains=`` or a regular expression over a million rows
    in any staff member's hands.
    """

    def get_filters(self, request: HttpRequest) -> Any:
        if any(NUL in key or NUL in value for key, value in _pairs(request)):
            raise IncorrectLookupParameters("a NUL character in the query string")
        try:
            filters = super().get_filters(request)
        except DisallowedModelAdminLookup as error:
            # Django answers a lookup across a relation no filter offers with a
            # 400 and a security log at ERROR; it is refused as any other here.
            raise IncorrectLookupParameters(error) from error
        remaining = filters[2]
        if remaining:
            raise IncorrectLookupParameters(
                f"not one of the list's filters: {', '.join(sorted(remaining))}"
            )
        return filters

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        # Compiling converts every value for the database: a value that cannot
        # be converted fails here, where it can still be refused.
        try:
            queryset.query.get_compiler(queryset.db).as_sql()
        except (EmptyResultSet, FullResultSet):
            pass
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error
        return queryset


def _pairs(request: HttpRequest) -> list[tuple[str, str]]:
    return [(key, value) for key, values in request.GET.lists() for value in values]


_ModelT = TypeVar("_ModelT", bound=Model)

# Generic only in django-stubs; django-stubs-ext is not a runtime dependency.
if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin
else:

    class ModelAdminBase(admin.ModelAdmin, Generic[_ModelT]):
        pass


class CheckedListAdmin(ModelAdminBase[_ModelT]):
    """A model admin whose list (and autocomplete answers) take hostile query strings."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CheckedChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[_ModelT], search_term: str
    ) -> tuple[QuerySet[_ModelT], bool]:
        # The autocomplete view searches without the change list: a term holding
        # a NUL matches nothing here, where PostgreSQL would refuse the query.
        if NUL in search_term:
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)
