"""Full-text search indexes of the records API (PostgreSQL only).

1. the ``unaccent`` extension (a trusted extension: the database owner may create it);
2. the text search configuration ``portuguese_unaccent``: PostgreSQL's ``portuguese`` with
   ``unaccent`` before the Portuguese stemmer, so "veiculo" matches "veículos";
3. one GIN expression index per searched column, on ``to_tsvector('portuguese_unaccent',
   COALESCE(column, ''))``: the expression ``pncp.api.selectors.text_search`` queries with;
4. ``ata_vigencia_cancelado``: atas in force in a window are a third of the table or more,
   so their count must be an index-only scan; ``cancelado`` in the index keeps it one when
   that filter is used too;
5. PCA itens: each narrowing filter of ``/pca/`` with the year and the page order (plano,
   item), so a page is read in order inside the filter instead of walking every year.

Indexes are built ``CONCURRENTLY`` (the importer keeps writing meanwhile), hence a
non-atomic migration. On SQLite (the demo) the database steps are skipped: the models'
state still records the indexes, and the API falls back to ``icontains``.
"""

import pncp.indexes
import django.contrib.postgres.search
from django.contrib.postgres.operations import AddIndexConcurrently, CreateExtension
from django.db import migrations, models

CONFIG = "portuguese_unaccent"

CREATE_CONFIG = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = '{CONFIG}') THEN
        CREATE TEXT SEARCH CONFIGURATION {CONFIG} (COPY = portuguese);
        ALTER TEXT SEARCH CONFIGURATION {CONFIG}
            ALTER MAPPING FOR hword, hword_part, word WITH unaccent, portuguese_stem;
    END IF;
END
$$;
"""
DROP_CONFIG = f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {CONFIG};"


def create_config(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_CONFIG)


def drop_config(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_CONFIG)


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """``AddIndexConcurrently`` on PostgreSQL; elsewhere a plain ``AddIndex``, or nothing
    for PostgreSQL-only indexes (the models' state changes either way)."""

    def __init__(self, model_name, index, postgres_only=True):
        self.postgres_only = postgres_only
        super().__init__(model_name, index)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, args, {**kwargs, "postgres_only": self.postgres_only}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        elif not self.postgres_only:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        elif not self.postgres_only:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )


def fts_index(column, name):
    return pncp.indexes.PostgresGinIndex(
        django.contrib.postgres.search.SearchVector(column, config=CONFIG), name=name
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("pncp", "0004_beat_schedules"),
    ]

    operations = [
        CreateExtension("unaccent"),
        migrations.RunPython(create_config, drop_config),
        AddIndexConcurrentlyOnPostgres(
            model_name="contratacao",
            index=fts_index("objeto_compra", "contratacao_objeto_fts"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="contrato",
            index=fts_index("objeto_contrato", "contrato_objeto_fts"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="ataregistropreco",
            index=fts_index("objeto_contratacao", "ata_objeto_fts"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="itempca",
            index=fts_index("descricao_item", "itempca_descricao_fts"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="ataregistropreco",
            index=models.Index(
                fields=["vigencia_inicio", "vigencia_fim", "cancelado"],
                name="ata_vigencia_cancelado",
            ),
            postgres_only=False,
        ),
        *[
            AddIndexConcurrentlyOnPostgres(
                model_name="itempca",
                index=models.Index(fields=[column, "ano_pca", "plano", "numero_item"], name=name),
                postgres_only=False,
            )
            for column, name in (
                ("classificacao_superior_codigo", "itempca_csup_ano_ordem"),
                ("orgao", "itempca_orgao_ano_ordem"),
                ("codigo_unidade", "itempca_unidade_ano_ordem"),
            )
        ],
    ]
