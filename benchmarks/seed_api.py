"""Fill a dedicated database with a million contratações (and the rest) for the API benchmarks.

Two steps, so the data is realistic and the seed takes minutes, not hours:

1. a **base set** goes through the real importer (``Ingester().ingest`` in pages of 500):
   ``--base`` contratações (the fake PNCP's clones of real records, spread over ~2 years of
   publication dates and ``--orgaos`` synthetic órgãos, modalidades weighted as in PNCP:
   dispensa and pregão eletrônico dominate; every ``objetoCompra`` is one of the ~450 real
   objetos found in the bundled PNCP samples, so full-text search is meaningful), plus atas
   and contratos linked to them, PCAs with their itens, and itens/resultados of contratações;
2. the base is **multiplied in SQL** (``INSERT … SELECT``) ``--copies`` times with new natural
   keys (the sequencial of every número de controle is bumped by 10,000 × copy), new ids
   (``id + copy × max(id)``, so links between copies stay consistent), publication dates
   jittered by up to ±1 day, and the raw payload's ``numeroControlePNCP`` rewritten. The
   non-unique indexes of the multiplied tables are dropped for the copy and rebuilt after
   it (same definitions, from ``pg_indexes``), so every index of the migrations, the GIN
   full-text ones included, is in place at the end.
3. the big record tables are ``CLUSTER``ed by publication date: a mirror filled by sync
   windows of one day stores a month's rows together, the copies would scatter them.

Then the bookkeeping tables get production-like volumes (record versions, quarantine, sync
runs, checkpoints, coverage per day × modalidade) and everything is ``VACUUM (ANALYZE)``'d
(autovacuum is off on the benchmark machine).

The database defaults to ``pncp_apibench`` (never ``pncp_bench`` nor ``pncp_mirror``). A
seed that already holds the requested volume is left alone; ``--reseed`` truncates first.

    .venv/bin/python benchmarks/seed_api.py                 # 50,000 × 20 = 1,000,000
    .venv/bin/python benchmarks/seed_api.py --base 5000 --copies 2   # a quick trial
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pncp_apibench"
# The imported records' tables (multiplied by the seed, counted in the results)
RECORD_TABLES = (
    "pncp_contratacao",
    "pncp_ataregistropreco",
    "pncp_contrato",
    "pncp_planocontratacao",
    "pncp_itempca",
    "pncp_itemcontratacao",
    "pncp_resultadoitem",
)
START = date(2024, 11, 1)
DAYS = 730  # 2024-11-01 .. 2026-10-31
PAGE = 500
KEY_BUMP = 10_000  # per copy, added to the 6-digit sequencial of every número de controle

# PNCP's mix of modalidades (share of contratações): dispensa and pregão eletrônico dominate.
MODALIDADE_WEIGHTS = {
    8: 40,  # dispensa
    6: 30,  # pregão eletrônico
    9: 12,  # inexigibilidade
    4: 4,  # concorrência eletrônica
    12: 3,  # credenciamento
    7: 2,  # pregão presencial
    5: 2,  # concorrência presencial
    1: 1,
    2: 1,
    3: 1,
    10: 1,
    11: 1,
    13: 1,
}


def bootstrap() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    from benchmarks import _setup

    _setup.bootstrap()


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- real objetos ------------------------------------------------------------------------------


def real_objetos() -> list[str]:
    """Every distinct objeto of the real PNCP records bundled as samples (~450)."""
    from tests.fakes.fake_pncp import samples_dir

    found: set[str] = set()
    for path in glob.glob(str(samples_dir() / "*.json")):
        body = json.loads(Path(path).read_text())
        data = body.get("data", [body]) if isinstance(body, dict) else body
        for record in data if isinstance(data, list) else []:
            if not isinstance(record, dict):
                continue
            for name in ("objetoCompra", "objetoContratacao", "objetoContrato"):
                text = (record.get(name) or "").strip()
                if len(text) >= 10:
                    found.add(text)
    return sorted(found)


# --- step 1: the base set through the importer -----------------------------------------------


def ingest_pages(resource: str, records, ingester) -> int:
    from django.db import transaction

    from benchmarks._setup import iter_pages

    n = 0
    for page in iter_pages(records, PAGE):
        with transaction.atomic():
            result = ingester.ingest(resource, page)
        n += result.stored
    return n


def seed_base(base: int, orgaos: int, seed: int = 7) -> dict:
    from benchmarks._setup import iter_contratacoes
    from pncp.ingest import Ingester
    from pncp.models import Contratacao, ItemContratacao
    from tests.fakes.fake_pncp import MODALIDADES, FakeDataset, _Generator, _item, _resultado

    rng = random.Random(seed)
    objetos = real_objetos()
    modalidades = list(MODALIDADE_WEIGHTS)
    weights = list(MODALIDADE_WEIGHTS.values())
    keep: list[dict] = []  # a sample of the contratações, for atas/contratos/itens to point at

    def contratacoes():
        for record in iter_contratacoes(base, seed=seed, start=START, days=DAYS, orgaos=orgaos):
            modalidade = rng.choices(modalidades, weights)[0]
            record["modalidadeId"] = modalidade
            record["modalidadeNome"] = MODALIDADES[modalidade]
            record["objetoCompra"] = rng.choice(objetos)
            if len(keep) < 20_000 and rng.random() < 0.5:
                keep.append(record)
            yield record

    ingester = Ingester()
    counts = {}
    t0 = time.perf_counter()
    counts["contratacoes"] = ingest_pages("contratacoes", contratacoes(), ingester)
    say(f"base: {counts['contratacoes']:,} contratações in {time.perf_counter() - t0:.0f} s")

    generator = _Generator(FakeDataset(), random.Random(seed + 2), START, DAYS)
    compras = [(record, None) for record in keep]
    n_atas = n_contratos = base * 3 // 10
    n_pcas = max(1, base // 15)

    def contratos():
        for j in range(n_contratos):
            record = generator.contrato(j, compras)[0]
            record["objetoContrato"] = rng.choice(objetos)
            yield record

    t0 = time.perf_counter()
    counts["atas"] = ingest_pages(
        "atas", (generator.ata(k, compras)[0] for k in range(n_atas)), ingester
    )
    counts["contratos"] = ingest_pages("contratos", contratos(), ingester)
    counts["pca"] = ingest_pages("pca", (generator.pca(p)[0] for p in range(n_pcas)), ingester)
    say(f"base: atas/contratos/pca {counts} in {time.perf_counter() - t0:.0f} s")

    # itens and resultados of a tenth of the contratações, one compra per call (as a sync does)
    t0 = time.perf_counter()
    chosen = keep[: max(1, base // 10)]
    ids = dict(
        Contratacao.objects.filter(
            numero_controle_pncp__in=[r["numeroControlePNCP"] for r in chosen]
        ).values_list("numero_controle_pncp", "id")
    )
    irng = random.Random(seed + 3)
    n_itens = n_resultados = 0
    for record in chosen:
        compra = record["numeroControlePNCP"]
        published = datetime.fromisoformat(record["dataPublicacaoPncp"])
        itens = [_item(irng, n, published) for n in range(1, irng.randint(1, 8) + 1)]
        context = {"compra": compra, "contratacao_id": ids[compra]}
        n_itens += ingester.ingest("itens", itens, context=context).stored
        item_ids = dict(
            ItemContratacao.objects.filter(numero_controle_pncp_compra=compra).values_list(
                "numero_item", "id"
            )
        )
        resultados = [
            _resultado(irng, compra, item, seq)
            for item in itens
            if item["temResultado"]
            for seq in range(1, (2 if irng.random() < 0.2 else 1) + 1)
        ]
        if resultados:
            context = {"compra": compra, "item_ids": item_ids}
            n_resultados += ingester.ingest("resultados", resultados, context=context).stored
    counts["itens"], counts["resultados"] = n_itens, n_resultados
    say(f"base: {n_itens:,} itens, {n_resultados:,} resultados in {time.perf_counter() - t0:.0f} s")
    return counts


# --- step 2: multiply in SQL -------------------------------------------------------------------


def bump(column: str) -> str:
    """SQL: the número de controle in ``column`` with its sequencial (chars 18-23) bumped."""
    return (
        f"overlay(b.{column} placing lpad((substr(b.{column}, 18, 6)::int + c * {KEY_BUMP})"
        f"::text, 6, '0') from 18 for 6)"
    )


def jitter(column: str) -> str:
    """SQL: a timestamp moved by a deterministic ±1 day per row and copy."""
    return f"b.{column} + make_interval(secs => ((b.id * 7919 + c * 104729) % 172800) - 86400)"


def columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def droppable_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of ``table`` that back no constraint."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = %s AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c WHERE c.conindid = to_regclass(i.indexname)
        )
        """,
        [table],
    )
    return cursor.fetchall()


def multiply(copies: int) -> None:
    from django.db import connection, transaction

    span: dict[str, int] = {}
    with connection.cursor() as cursor:
        for table in RECORD_TABLES:
            cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")
            span[table] = cursor.fetchone()[0]

    def ref(column: str, table: str) -> str:
        return f"b.{column} + c * {span[table]}"

    key_json = "jsonb_set(b.raw, '{{{name}}}', to_jsonb({expr}))"
    plans = {
        "pncp_contratacao": {
            "id": ref("id", "pncp_contratacao"),
            "numero_controle_pncp": bump("numero_controle_pncp"),
            "sequencial_compra": f"b.sequencial_compra + c * {KEY_BUMP}",
            "raw": key_json.format(name="numeroControlePNCP", expr=bump("numero_controle_pncp")),
            **{
                name: jitter(name)
                for name in (
                    "data_publicacao_pncp",
                    "data_inclusao",
                    "data_atualizacao",
                    "data_atualizacao_global",
                    "data_abertura_proposta",
                    "data_encerramento_proposta",
                )
            },
        },
        "pncp_ataregistropreco": {
            "id": ref("id", "pncp_ataregistropreco"),
            "numero_controle_pncp_ata": bump("numero_controle_pncp_ata"),
            "numero_controle_pncp_compra": bump("numero_controle_pncp_compra"),
            "contratacao_id": ref("contratacao_id", "pncp_contratacao"),
            "raw": key_json.format(
                name="numeroControlePNCPAta", expr=bump("numero_controle_pncp_ata")
            ),
            **{name: jitter(name) for name in ("data_publicacao_pncp", "data_atualizacao_global")},
        },
        "pncp_contrato": {
            "id": ref("id", "pncp_contrato"),
            "numero_controle_pncp": bump("numero_controle_pncp"),
            "sequencial_contrato": f"b.sequencial_contrato + c * {KEY_BUMP}",
            "numero_controle_pncp_compra": (
                "CASE WHEN b.contratacao_id IS NULL THEN b.numero_controle_pncp_compra "
                f"ELSE {bump('numero_controle_pncp_compra')} END"
            ),
            "contratacao_id": ref("contratacao_id", "pncp_contratacao"),
            "raw": key_json.format(name="numeroControlePNCP", expr=bump("numero_controle_pncp")),
            **{name: jitter(name) for name in ("data_publicacao_pncp", "data_atualizacao_global")},
        },
        "pncp_planocontratacao": {
            "id": ref("id", "pncp_planocontratacao"),
            "id_pca_pncp": bump("id_pca_pncp"),
            "raw": key_json.format(name="idPcaPncp", expr=bump("id_pca_pncp")),
            **{
                name: jitter(name)
                for name in ("data_publicacao_pncp", "data_atualizacao_global_pca")
            },
        },
        "pncp_itempca": {
            "id": ref("id", "pncp_itempca"),
            "plano_id": ref("plano_id", "pncp_planocontratacao"),
        },
        "pncp_itemcontratacao": {
            "id": ref("id", "pncp_itemcontratacao"),
            "chave": bump("chave"),
            "contratacao_id": ref("contratacao_id", "pncp_contratacao"),
            "numero_controle_pncp_compra": bump("numero_controle_pncp_compra"),
        },
        "pncp_resultadoitem": {
            "id": ref("id", "pncp_resultadoitem"),
            "chave": bump("chave"),
            "item_id": ref("item_id", "pncp_itemcontratacao"),
            "numero_controle_pncp_compra": bump("numero_controle_pncp_compra"),
        },
    }
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        for table, overrides in plans.items():
            t0 = time.perf_counter()
            names = columns(cursor, table)
            exprs = [overrides.get(name, f"b.{name}") for name in names]
            indexes = droppable_indexes(cursor, table)
            with transaction.atomic():
                cursor.execute("SET LOCAL synchronous_commit = off")
                # FK checks now, not at commit: CREATE INDEX refuses pending trigger events
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for name, _ in indexes:
                    cursor.execute(f'DROP INDEX "{name}"')
                cursor.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) "
                    f"SELECT {', '.join(exprs)} FROM {table} b "
                    f"CROSS JOIN generate_series(1, {copies - 1}) AS c "
                    f"WHERE b.id <= {span[table]} ORDER BY c, b.id"
                )
                inserted = cursor.rowcount
                t1 = time.perf_counter()
                for _, definition in indexes:
                    cursor.execute(definition)
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
            say(
                f"{table}: +{inserted:,} rows in {t1 - t0:.0f} s, "
                f"{len(indexes)} indexes rebuilt in {time.perf_counter() - t1:.0f} s"
            )


# --- physical order ----------------------------------------------------------------------------

# (table, index) pairs: a mirror filled by sync windows of one day lays rows down in
# publication order; the copies above (and the generator's random days) do not.
CLUSTER_BY = (
    ("pncp_contratacao", "contratacao_pub_id"),
    ("pncp_contrato", "contrato_pub"),
    ("pncp_ataregistropreco", "ata_pub"),
)


def cluster_by_date() -> None:
    """Rewrite the big record tables in publication-date order (``CLUSTER``), as a
    mirror that synced day by day would have them: a month's rows sit together on disk."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for table, index in CLUSTER_BY:
            t0 = time.perf_counter()
            cursor.execute(f"CLUSTER {table} USING {index}")
            say(f"{table}: clustered by {index} in {time.perf_counter() - t0:.0f} s")


# --- bookkeeping at production-like volumes ----------------------------------------------------


# Every synced window of the fake history: 730 days x (contratações by modalidade, contratos,
# atas), as the FROM clause of the checkpoint and coverage inserts.
SYNC_WINDOWS = """
            FROM generate_series(0, 729) d
            CROSS JOIN (VALUES ('contratacoes', 'contratacoes.publicacao'),
                               ('contratos', 'contratos.publicacao'),
                               ('atas', 'atas.vigencia')) r(resource, endpoint)
            CROSS JOIN generate_series(1, 13) m
            WHERE r.resource = 'contratacoes' OR m = 1
"""


def seed_bookkeeping(contratacoes: int) -> dict:
    """Sync runs, checkpoints, coverage, record versions and quarantine, in SQL."""
    from django.db import connection

    versions = contratacoes // 5
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO pncp_syncrun (resources, mode, params, trigger, status, created_at,
                started_at, finished_at, heartbeat_at, pages, created, updated, unchanged,
                rejected, retries, errors)
            SELECT '["contratacoes", "contratos", "atas"]'::jsonb,
                   CASE WHEN g % 10 = 0 THEN 'full' ELSE 'incremental' END,
                   jsonb_build_object('desde', (date '2024-11-01' + g)::text),
                   CASE WHEN g % 3 = 0 THEN 'cli' ELSE 'beat' END,
                   CASE WHEN g % 17 = 0 THEN 'partial' WHEN g % 29 = 0 THEN 'failed'
                        ELSE 'success' END,
                   timestamptz '2024-11-01 03:00-03' + g * interval '1 day',
                   timestamptz '2024-11-01 03:00-03' + g * interval '1 day',
                   timestamptz '2024-11-01 03:40-03' + g * interval '1 day',
                   timestamptz '2024-11-01 03:40-03' + g * interval '1 day',
                   40 + g % 60, 1300 + g % 500, 200, 5000, g % 7, g % 4, '[]'::jsonb
            FROM generate_series(0, 729) g
            """
        )
        cursor.execute("SELECT min(id), max(id) FROM pncp_syncrun")
        first_run, last_run = cursor.fetchone()
        # one checkpoint and one coverage row per day × modalidade (contratações) or per day
        cursor.execute(
            """
            INSERT INTO pncp_synccheckpoint (run_id, resource, endpoint, key, window_start,
                window_end, params, page_size, next_page, total_registros, total_paginas,
                fetched, status, attempts, error, updated_at)
            SELECT %s + d, r.resource, r.endpoint,
                   r.endpoint || '|' || (date '2024-11-01' + d) || '|' || m,
                   date '2024-11-01' + d, date '2024-11-01' + d,
                   jsonb_build_object('codigoModalidadeContratacao', m), 50, 30, 1450, 29,
                   1450, CASE WHEN (d + m) %% 97 = 0 THEN 'incomplete' ELSE 'done' END, 1, '',
                   timestamptz '2024-11-01 03:30-03' + d * interval '1 day'
            """
            + SYNC_WINDOWS,
            [first_run],
        )
        cursor.execute(
            """
            INSERT INTO pncp_coverage (resource, endpoint, day, day_end, modalidade,
                total_registros, fetched, status, checked_at, run_id)
            SELECT r.resource, r.endpoint, date '2024-11-01' + d, date '2024-11-01' + d,
                   CASE WHEN r.resource = 'contratacoes' THEN m ELSE 0 END, 1450,
                   CASE WHEN (d + m) %% 97 = 0 THEN 1400 ELSE 1450 END,
                   CASE WHEN (d + m) %% 97 = 0 THEN 'partial' ELSE 'complete' END,
                   timestamptz '2024-11-01 03:30-03' + d * interval '1 day', %s + d
            """
            + SYNC_WINDOWS,
            [first_run],
        )
        # previous payloads of a fifth of the contratações (as if each changed once)
        cursor.execute(
            """
            INSERT INTO pncp_recordversion (resource, natural_key, payload, content_hash,
                valid_from, replaced_at, sync_run_id)
            SELECT 'contratacoes', numero_controle_pncp, raw, content_hash,
                   data_publicacao_pncp, data_publicacao_pncp + interval '2 days',
                   %s + (id %% 730)
            FROM pncp_contratacao WHERE id %% 5 = 0 ORDER BY id LIMIT %s
            """,
            [first_run, versions],
        )
        cursor.execute(
            """
            INSERT INTO pncp_rejectedrecord (resource, natural_key, reason, payload, source,
                sync_run_id, created_at, attempts, resolved_at)
            SELECT 'contratacoes', numero_controle_pncp,
                   'dataPublicacaoPncp: data inválida ''' || id || '''', raw,
                   'contratacoes.publicacao p' || (id %% 40 + 1), %s + (id %% 730),
                   data_publicacao_pncp, 1,
                   CASE WHEN id %% 3 = 0 THEN data_publicacao_pncp + interval '1 day' END
            FROM pncp_contratacao WHERE id %% 200 = 1 ORDER BY id LIMIT 5000
            """,
            [first_run],
        )
    return {"sync_runs": last_run - first_run + 1, "record_versions": versions}


# --- entry point -------------------------------------------------------------------------------

COUNTED = (
    *RECORD_TABLES,
    "pncp_orgao",
    "pncp_unidadeorgao",
    "pncp_fornecedor",
    "pncp_recordversion",
    "pncp_rejectedrecord",
    "pncp_syncrun",
    "pncp_synccheckpoint",
    "pncp_coverage",
)


def volumes() -> dict[str, int]:
    from benchmarks._setup import count_rows

    return {table: count_rows(table) for table in COUNTED}


def seed(base: int, copies: int, orgaos: int, *, reseed: bool = False) -> dict:
    """Seed unless the database already holds ``base × copies`` contratações."""
    from benchmarks import _setup

    target = base * copies
    current = _setup.count_rows("pncp_contratacao")
    if current == target and not reseed:
        say(f"database already holds {current:,} contratações: seed skipped")
        return volumes()
    say(f"seeding {target:,} contratações ({base:,} through the importer × {copies})")
    _setup.truncate_records()
    t0 = time.perf_counter()
    seed_base(base, orgaos)
    if copies > 1:
        multiply(copies)
    cluster_by_date()
    seed_bookkeeping(target)
    say("VACUUM (ANALYZE) …")
    _setup.vacuum_analyze(*_setup.record_tables())
    counts = volumes()
    say(f"seeded in {time.perf_counter() - t0:.0f} s: {counts}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=int, default=50_000, help="contratações via Ingester")
    parser.add_argument("--copies", type=int, default=20, help="total = base × copies")
    parser.add_argument("--orgaos", type=int, default=5_000, help="synthetic órgãos")
    parser.add_argument("--reseed", action="store_true", help="truncate and seed again")
    args = parser.parse_args()
    bootstrap()
    seed(args.base, args.copies, args.orgaos, reseed=args.reseed)


if __name__ == "__main__":
    main()
