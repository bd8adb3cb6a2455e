"""List pages read as plain rows, not Django model instances.

A page of 500 contratações read with ``select_related`` builds 1,500+ model instances
(``Model.from_db`` per row and per joined órgão/unidade, deferred-field bookkeeping): half
of the time of fetching the page (BENCHMARKS.md, API benchmarks). A ``RowShape`` reads the
same columns with ``values_list`` and turns each tuple into a light object that has the
attributes the serializers read: the model's column attnames, the joined órgão/unidade as
small objects (one per distinct key on the page), domain codes from the per-process cache
(``selectors.domain_row``) and the model's own properties (``pncp_url``). The serializers run
unchanged on either, and a test checks that both give the same output for every record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connections
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import CharField, DateTimeField, Func, Model, QuerySet


class BrasiliaWallClock(Func):
    """A ``timestamptz`` as PNCP writes it, formatted by PostgreSQL: Brasília wall clock,
    ``AAAA-MM-DDTHH:MM:SS``, seconds truncated like ``serializers._dt``."""

    template = (
        "to_char(%(expressions)s AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    )
    output_field = CharField()


class _NoJoinedCodes:
    """Stands in for ``Model._state``: no code table was joined (``serializers._code``
    then takes the names from the per-process cache)."""

    fields_cache: dict = {}


@dataclass(frozen=True)
class Related:
    """A joined row (órgão, unidade) read as ``<relation>__<column>`` paths."""

    name: str  # the relation on the record: "orgao", "unidade_sub_rogada"…
    pk_name: str  # the joined row's key attribute: "cnpj", "id"
    columns: tuple[str, ...]  # its columns the serializers read


@dataclass
class RowShape:
    """The columns of one list's records and how to rebuild the attributes serializers read.

    ``columns``: the record's own columns (attnames); ``related``: joined rows; ``codes``:
    ``{relation: domain table key}`` for code relations read as objects (``c.tipo_contrato``);
    ``properties``: model properties to carry over (computed from the row's columns).
    """

    model: type[Model]
    columns: tuple[str, ...]
    related: tuple[Related, ...] = ()
    codes: dict[str, str] = field(default_factory=dict)
    properties: tuple[str, ...] = ()

    def __post_init__(self):
        pk = self.model._meta.pk.attname
        attrs = {
            "__slots__": ("__dict__",),
            "_state": _NoJoinedCodes(),
            "pk": property(lambda row: row.__dict__[pk]),
        }
        for name in self.properties:
            attrs[name] = getattr(self.model, name)
        self.row_class = type(f"{self.model.__name__}Row", (), attrs)
        self.date_times = {
            f.attname
            for f in self.model._meta.concrete_fields
            if isinstance(f, DateTimeField) and f.attname in self.columns
        }
        # where each joined row's columns sit in a values tuple (after the record's own)
        self.plan = []
        start = len(self.columns)
        for rel in self.related:
            end = start + len(rel.columns)
            fk = self.model._meta.get_field(rel.name).attname
            joined_class = type(
                f"{self.model.__name__}_{rel.name}", (), {"__slots__": ("__dict__",)}
            )
            self.plan.append((rel.name, fk, rel.pk_name, rel.columns, start, end, joined_class))
            start = end
        self.code_plan = [
            (name, self.model._meta.get_field(name).attname, table)
            for name, table in self.codes.items()
        ]
        self._sql: dict[str, tuple[str, str, list]] = {}  # see _around_keys

    def paths(self, vendor: str = "") -> list:
        """What ``values_list`` reads. On PostgreSQL the date-times come as Brasília text:
        parsing 3,000 of them per page of 500 and formatting them again in Python was about a
        third of the serializer's time; ``serializers._dt`` passes text through."""
        paths: list = list(self.columns)
        if vendor == "postgresql":
            paths = [BrasiliaWallClock(name) if name in self.date_times else name for name in paths]
        for rel in self.related:
            paths += [f"{rel.name}__{column}" for column in rel.columns]
        return paths

    def fetch(self, queryset: QuerySet) -> list:
        """The rows of ``queryset`` (filtered, ordered and sliced already or not).

        On PostgreSQL the ORM compiles only the page's keys (``values_list("pk")``: its
        filters, order and slice); the columns and joins come from SQL compiled once per
        shape, around the keys as ``unnest(ARRAY(<keys>)) WITH ORDINALITY``, which keeps
        their order: one query. Compiling the 40-odd column paths with their four
        joins took longer than the query itself (~3 ms of a page of 50's CPU on a slow VM,
        0.3 ms for the keys).
        """
        db = queryset.db
        connection = connections[db]
        if connection.vendor != "postgresql":
            return self.build(queryset.values_list(*self.paths(connection.vendor)))
        sql_before, sql_after, converters = self._around_keys(db)
        keys_sql, keys_params = queryset.values_list("pk").query.get_compiler(db).as_sql()
        with connection.cursor() as cursor:
            cursor.execute(f"{sql_before}ARRAY({keys_sql}){sql_after}", keys_params)
            tuples = cursor.fetchall()
        return self.build(_convert(tuples, converters, connection) if converters else tuples)

    def fetch_keys(self, keys: list, db: str = "default") -> list:
        """The rows with these primary keys, in their order (PostgreSQL; pages whose keys
        were read first: deep pages and searches).

        One SQL text per shape, the keys as one array parameter, prepared once per connection
        (Django turns psycopg's automatic preparing off; this cursor asks for it), so
        PostgreSQL stops planning a five-table join for every request (1.8 ms of a page of
        50 on a slow VM, more than running it). The plan is the same for any keys: by
        primary key, then by the joins' (``DB_PREPARED_STATEMENTS=0`` plans it every time).
        """
        if not keys:
            return []
        connection = connections[db]
        sql_before, sql_after, converters = self._around_keys(db)
        connection.ensure_connection()
        with connection._prepare_cursor(_PreparingCursor(connection.connection)) as cursor:
            # as an array literal: psycopg would type a list by its values (smallint[] for
            # small keys, bigint[] past 2**31), one prepared statement per type
            literal = "{" + ",".join(str(int(key)) for key in keys) + "}"
            cursor.execute(f"{sql_before}%s::bigint[]{sql_after}", [literal])
            tuples = cursor.fetchall()
        return self.build(_convert(tuples, converters, connection) if converters else tuples)

    def _around_keys(self, db: str) -> tuple[str, str, list]:
        """The shape's SELECT as the text before and after its keys' array, and the
        column converters (JSON columns) of its values, compiled once per database."""
        cached = self._sql.get(db)
        if cached is None:
            table = self.model._meta.db_table
            pk_column = self.model._meta.pk.column
            query = (
                self.model._base_manager.using(db)
                .order_by()
                .values_list(*self.paths("postgresql"))
                .query
            )
            compiler = query.get_compiler(db)
            sql, params = compiler.as_sql()
            quote = compiler.quote_name_unless_alias
            source = f" FROM {quote(table)} "
            if params or sql.count(source) != 1 or " WHERE " in sql:
                raise ValueError(f"unexpected SQL for {self.model.__name__} rows: {sql}")
            before, after = sql.split(source)
            before += " FROM unnest("  # the keys' array parameter goes here, in its order
            after = (
                ') WITH ORDINALITY AS "_page"("pk", "n") '
                f'INNER JOIN {quote(table)} ON ({quote(table)}.{quote(pk_column)} = "_page"."pk") '
                f'{after} ORDER BY "_page"."n"'
            )
            converters = [
                (position, functions, expression)
                for position, (functions, expression) in compiler.get_converters(
                    [column for column, _, _ in compiler.select]
                ).items()
            ]
            cached = self._sql[db] = (before, after, converters)
        return cached

    def build(self, tuples) -> list:
        columns, codes = self.columns, self.code_plan
        plan = [(*entry, {}) for entry in self.plan]  # {}: this page's joined rows by key
        from pncp.api.selectors import domain_row  # selectors declare the shapes

        row_class = self.row_class
        new = object.__new__
        out = []
        for values in tuples:
            attrs = dict(zip(columns, values, strict=False))  # related columns follow
            for name, fk, pk_name, rel_columns, begin, end, rel_class, seen in plan:
                key = attrs[fk]
                if key is None:
                    attrs[name] = None
                    continue
                joined = seen.get(key)
                if joined is None:
                    joined = seen[key] = new(rel_class)
                    joined.__dict__ = dict(zip(rel_columns, values[begin:end], strict=True))
                    joined.__dict__[pk_name] = key
                attrs[name] = joined
            for name, fk, table in codes:
                attrs[name] = domain_row(table, attrs[fk])
            row = new(row_class)
            row.__dict__ = attrs
            out.append(row)
        return out


class _PreparingCursor(ServerBindingCursor):
    """Django's server-binding cursor that runs every statement as a prepared one (queries
    still go through Django's cursor wrapper: counted, logged, timed)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def _convert(tuples: list[tuple], converters: list, connection) -> list[list]:
    """Django's ``from_db_value`` converters applied to raw cursor rows (what the ORM's
    ``apply_converters`` does, with the current thread's connection)."""
    out = []
    for values in tuples:
        values = list(values)
        for position, functions, expression in converters:
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        out.append(values)
    return out
