"""Django's PostgreSQL backend, reading date-times with psycopg's C loader.

Django 5.2 reads every ``timestamptz`` through a Python subclass of psycopg's *pure-Python*
loader (it only swaps the ``tzinfo`` afterwards): ~7 µs per value, and a page of 500
contratações carries 3,000 of them, 10–15 ms of a ~40 ms request (BENCHMARKS.md, API). The
C loader of ``psycopg[binary]`` parses the same text in ~0.5 µs and returns the same instant,
already in the session's time zone, which Django sets to UTC (``datetime.UTC`` itself, as
Django's loader gives). So each cursor gets the C loader when the connection is in UTC;
anything else (``USE_TZ`` off, a database ``TIME_ZONE``, the pure-Python psycopg) keeps
Django's behaviour untouched.
"""

from __future__ import annotations

from datetime import UTC

import psycopg
from django.db.backends.postgresql import base
from psycopg.pq import Format

TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid
# psycopg's default text loader: the C one when psycopg's C implementation is installed
C_TIMESTAMPTZ_LOADER = (
    psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if psycopg.pq.__impl__ != "python"
    else None
)


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        if C_TIMESTAMPTZ_LOADER is not None and self.timezone is UTC:
            cursor.adapters.register_loader(TIMESTAMPTZ_OID, C_TIMESTAMPTZ_LOADER)
        return cursor
