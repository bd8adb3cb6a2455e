"""PostgreSQL: compress the stored JSON payloads with LZ4 instead of pglz.

Every record row carries its PNCP payload (``raw``, ~1.5-2 kB of jsonb), large enough for
PostgreSQL to compress it on insert. LZ4 compresses several times faster than pglz: the
backend's CPU per page of 50 new contratações fell from 3.6-3.7 ms to 3.2-3.3 ms on the
benchmark VM (BENCHMARKS.md, third round), for slightly larger values. It applies to values
written from now on. Skipped on SQLite and on a PostgreSQL built without LZ4.
"""

from django.db import migrations

PAYLOAD_COLUMNS = ("raw", "payload")


def _targets(apps):
    for model in apps.get_app_config("pncp").get_models():
        for field in model._meta.concrete_fields:
            if field.column in PAYLOAD_COLUMNS and field.get_internal_type() == "JSONField":
                yield model._meta.db_table, field.column


def _set_compression(method):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                "AND %s = ANY(enumvals)",
                [method],
            )
            if cursor.fetchone() is None:
                return
            for table, column in _targets(apps):
                cursor.execute(
                    f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}'
                )

    return run


class Migration(migrations.Migration):
    dependencies = [("pncp", "0009_page_keys_indexes")]

    operations = [migrations.RunPython(_set_compression("lz4"), _set_compression("pglz"))]
