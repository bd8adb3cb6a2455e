"""config.postgresql: Django's backend, reading timestamptz with psycopg's C loader.

The values must be exactly what Django's own loader gives (same instant, ``tzinfo`` the very
``datetime.UTC``), for every kind of date-time the mirror stores, including ones before 1914
(Brasília's LMT offset of -03:06:28) and around Brazil's old DST changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

from config.postgresql.base import C_TIMESTAMPTZ_LOADER, TIMESTAMPTZ_OID

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend")

SP = ZoneInfo("America/Sao_Paulo")
VALUES = [
    "2025-06-24 00:00:46-03",
    "2018-11-04 00:30:00-02",  # first minutes of a DST day
    "2019-02-16 23:59:59.999999-02",
    "1900-01-01 00:00:00-03:06:28",
    "2026-11-26 12:00:00+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59+00",
]


def _read(cursor) -> list:
    cursor.execute(
        "SELECT v::timestamptz FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n",
        [VALUES],
    )
    return [row[0] for row in cursor.fetchall()]


def test_cursors_read_datetimes_with_the_c_loader(db):
    assert connection.settings_dict["ENGINE"] == "config.postgresql"
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert loader is C_TIMESTAMPTZ_LOADER
    assert "psycopg_binary" in loader.__module__ or "psycopg_c" in loader.__module__


def test_same_instants_and_tzinfo_as_djangos_loader(db):
    with connection.cursor() as cursor:
        fast = _read(cursor)
    with connection.cursor() as cursor:
        register_tzloader(connection.timezone, cursor.cursor)  # Django's own loader
        assert cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is not (
            C_TIMESTAMPTZ_LOADER
        )
        django_values = _read(cursor)
    assert fast == django_values
    assert all(value.tzinfo is UTC for value in fast)
    assert fast[0] == datetime(2025, 6, 24, 0, 0, 46, tzinfo=SP)
    assert fast[3] == datetime(1900, 1, 1, 3, 6, 28, tzinfo=UTC)


def test_orm_reads_aware_utc_datetimes(db):
    from pncp.models import SyncRun

    started = datetime(2025, 6, 24, 0, 0, 46, 123456, tzinfo=SP)
    run = SyncRun.objects.create(started_at=started)
    value = SyncRun.objects.values_list("started_at", flat=True).get(pk=run.pk)
    assert value == started and value.tzinfo is UTC
