"""Index classes that exist only on PostgreSQL.

SQLite (the demo database) cannot build a full-text GIN expression index, and Django rebuilds
SQLite tables with every index of the model whenever a later migration alters a field. An index
that renders to a no-op statement there keeps both databases migrating from the same history.
"""

from django.contrib.postgres.indexes import GinIndex
from django.db.backends.ddl_references import Statement


class PostgresGinIndex(GinIndex):
    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return Statement("SELECT 1 /* %(name)s: PostgreSQL only */", name=self.name)
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return Statement("SELECT 1 /* %(name)s: PostgreSQL only */", name=self.name)
        return super().remove_sql(model, schema_editor, **kwargs)
