"""The floor of the API benchmark: the same page by one plain SQL query + JSON encoding.

A minimal WSGI app (no Django): it reads the same query parameters as
``/api/v1/contratacoes/`` (``dataInicial``, ``dataFinal``, ``codigoModalidadeContratacao``,
``pagina``, ``tamanhoPagina``), runs ONE SQL query (the API selector's SELECT list and joins,
written out by ``bench_api.py`` into ``FLOOR_SQL_FILE``; WHERE, ORDER BY and LIMIT/OFFSET
as the API's) through psycopg on a per-worker connection, and encodes the rows as objects
keyed by column with ``orjson.dumps`` (the encoder of the API's renderer). No count, no
validation, no authentication, no serializer: what is left is the database's work, the
driver's and the encoding. ``bench_api.py`` serves it with the very same gunicorn settings as
the API.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import orjson
import psycopg

BRASILIA = ZoneInfo("America/Sao_Paulo")
_conn = None
_sql = None


def _connection():
    global _conn, _sql
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["FLOOR_DSN"], autocommit=True)
        with open(os.environ["FLOOR_SQL_FILE"]) as f:
            _sql = f.read()
    return _conn, _sql


def _day(text: str) -> datetime:
    return datetime.combine(date(int(text[:4]), int(text[4:6]), int(text[6:])), time.min, BRASILIA)


def _default(value):  # Decimal (datetimes and dates orjson writes itself)
    return float(value)


def application(environ, start_response):
    params = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    first = _day(params["dataInicial"])
    last = _day(params["dataFinal"]) + timedelta(days=1)
    size = int(params.get("tamanhoPagina", 50))
    offset = (int(params.get("pagina", 1)) - 1) * size
    conn, sql = _connection()
    modalidade = params.get("codigoModalidadeContratacao")
    where = '"pncp_contratacao"."data_publicacao_pncp" >= %s AND '
    where += '"pncp_contratacao"."data_publicacao_pncp" < %s'
    args: list = [first, last]
    if modalidade:
        where += ' AND "pncp_contratacao"."modalidade_id" = %s'
        args.append(int(modalidade))
    query = (
        f'{sql} WHERE {where} ORDER BY "pncp_contratacao"."data_publicacao_pncp" DESC, '
        f'"pncp_contratacao"."id" DESC LIMIT %s OFFSET %s'
    )
    with conn.cursor() as cursor:
        cursor.execute(query, [*args, size, offset])
        names = [column.name for column in cursor.description]
        keys = [f"{name}_{i}" if names.count(name) > 1 else name for i, name in enumerate(names)]
        rows = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
    body = orjson.dumps({"data": rows}, default=_default)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
