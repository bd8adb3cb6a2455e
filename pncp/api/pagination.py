"""PNCP's page envelope, so a client written for PNCP can point at us.

``{data, totalRegistros, totalPaginas, numeroPagina, paginasRestantes, empty}``, with
``pagina`` ≥ 1 and ``tamanhoPagina`` 1..500 (default 50). A page size above 500 is a 400 with
a clear message, never silently cut; a page past the last one is an empty page, as PNCP's
envelope allows, with the real totals so clients can tell.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from django.db import connections
from django.db.models import Count, Window
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from pncp.api import counts

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
# From this offset on, a page is read keys first (see PNCPPagination._deep_page).
DEFERRED_JOIN_OFFSET = 1000


def _sorted_matches(queryset, offset: int, limit: int) -> list | None:
    """A text search's page as (key, total) pairs, read from its fenced matches.

    ``selectors.text_search`` keeps the matches of a windowed search on the query
    (``search_matches``). Selecting them with the page's order columns in a subquery of
    their own (``OFFSET 0``: PostgreSQL may not pull it up and walk the window's index in
    page order), then sorting and counting outside, reads each match once: the GIN index AND
    the window's index, then the matching heap rows. Through the outer queryset the window
    was walked a second time to probe a hash of the matches: 29 -> 13 ms for a rare word,
    81 -> 35 ms for a common one over 90 days at a million contratações.

    ``None`` when there are no kept matches or the order is not plain columns of the model.
    """
    matches = getattr(queryset.query, "search_matches", None)
    if matches is None:
        return None
    opts = queryset.model._meta
    columns, order = [], []
    for position, item in enumerate(queryset.query.order_by, start=2):
        if not isinstance(item, str):
            return None
        name = item.lstrip("-")
        field = (
            opts.pk
            if name == "pk"
            else next((f for f in opts.concrete_fields if name in (f.name, f.attname)), None)
        )
        if field is None or field.is_relation:
            return None
        columns.append(field.attname)
        order.append(f"{position} {'DESC' if item.startswith('-') else 'ASC'}")
    if not order:
        return None
    db = queryset.db
    inner, params = matches.values_list("pk", *columns).query.get_compiler(db).as_sql()
    with connections[db].cursor() as cursor:
        cursor.execute(
            f"SELECT _m.*, COUNT(*) OVER () FROM ({inner} OFFSET 0) _m "
            f"ORDER BY {', '.join(order)} LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [(row[0], row[-1]) for row in cursor.fetchall()]


def _positive_int(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            {name: [f"{name} deve ser um número inteiro, recebido {raw!r}."]}
        ) from None
    if value < 1:
        raise ValidationError({name: [f"{name} deve ser maior ou igual a 1."]})
    if maximum is not None and value > maximum:
        raise ValidationError(
            {name: [f"{name} deve ser menor ou igual a {maximum} (recebido {value})."]}
        )
    return value


class PNCPPagination(BasePagination):
    page_query_param = "pagina"
    page_size_query_param = "tamanhoPagina"

    def paginate_queryset(self, queryset, request, view=None):
        if getattr(queryset, "ordered", True) is False:
            raise RuntimeError("PNCPPagination needs an ordered queryset (stable pages)")
        self.page_number = _positive_int(request, self.page_query_param, 1)
        self.page_size = _positive_int(
            request, self.page_size_query_param, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
        )
        offset = (self.page_number - 1) * self.page_size
        if view is not None and request.query_params.get("q"):
            return self._search_page(queryset, view, offset)
        self.total = counts.count(queryset)
        if offset >= self.total:
            return []
        if view is not None and offset >= DEFERRED_JOIN_OFFSET:
            return self._deep_page(queryset, view, offset)
        return self._fetch(view, queryset[offset : offset + self.page_size])

    @staticmethod
    def _fetch(view, queryset) -> list:
        """The page's records: light rows when the view declares their shape
        (``row_shape``, see ``rows``), model instances otherwise."""
        shape = getattr(view, "row_shape", None)
        return list(queryset) if shape is None else shape.fetch(queryset)

    def _search_page(self, queryset, view, offset: int) -> list:
        """A text search: the page's keys and the total in one query, then the rows.

        The matches are sorted as bare keys, not as joined rows (PostgreSQL joined every
        match before sorting: ~50 ms for a common word), and counted by the same query
        (``COUNT(*) OVER ()``), so a search costs no more queries than a plain page.
        """
        found = _sorted_matches(queryset, offset, self.page_size)
        if found is None:
            keyed = queryset.annotate(_total=Window(Count("pk"))).values_list("pk", "_total")
            found = list(keyed[offset : offset + self.page_size])
        if not found:  # past the last page (or nothing found): the total still counts
            self.total = queryset.count()
            return []
        self.total = found[0][1]
        return self._rows(view, [key for key, _ in found])

    def _deep_page(self, queryset, view, offset: int) -> list:
        """A page far from the first: its keys first, then its rows by primary key.

        ``OFFSET n`` makes PostgreSQL build, join and throw away n whole rows (every
        select_related join, for every skipped row): page 30 of 500 cost ~15,000 joined rows.
        Walking the n keys alone is cheap; the page's rows are then read by primary key
        with the view's own joins and prefetches, in the keys' order.
        """
        keys = list(queryset.values_list("pk", flat=True)[offset : offset + self.page_size])
        return self._rows(view, keys)

    @staticmethod
    def _rows(view, keys: list) -> list:
        """The view's rows (its joins and prefetches) with these primary keys, in order."""
        shape = getattr(view, "row_shape", None)
        queryset = view.get_queryset()
        if shape is not None and connections[queryset.db].vendor == "postgresql":
            return shape.fetch_keys(keys, queryset.db)  # ordered by the keys already
        found = PNCPPagination._fetch(view, queryset.filter(pk__in=keys).order_by())
        rows = {row.pk: row for row in found}
        return [rows[key] for key in keys if key in rows]

    def get_paginated_response(self, data):
        total_pages = math.ceil(self.total / self.page_size) if self.total else 0
        return Response(
            OrderedDict(
                [
                    ("data", data),
                    ("totalRegistros", self.total),
                    ("totalPaginas", total_pages),
                    ("numeroPagina", self.page_number),
                    ("paginasRestantes", max(total_pages - self.page_number, 0)),
                    ("empty", not data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": [
                "data",
                "totalRegistros",
                "totalPaginas",
                "numeroPagina",
                "paginasRestantes",
                "empty",
            ],
            "properties": {
                "data": schema,
                "totalRegistros": {"type": "integer", "example": 39853},
                "totalPaginas": {"type": "integer", "example": 798},
                "numeroPagina": {"type": "integer", "example": 1},
                "paginasRestantes": {"type": "integer", "example": 797},
                "empty": {"type": "boolean", "example": False},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Número da página (≥ 1).",
                "schema": {"type": "integer", "minimum": 1, "default": 1, "example": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Registros por página, 1..{MAX_PAGE_SIZE} (padrão "
                f"{DEFAULT_PAGE_SIZE}). Acima de {MAX_PAGE_SIZE} é um erro 400.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PAGE_SIZE,
                    "default": DEFAULT_PAGE_SIZE,
                    "example": 50,
                },
            },
        ]
