"""Ingest from saved pages: our importer against the usual alternatives, side by side.

Writes N contratações to a temporary directory as PNCP pages of 50 (what ``sync_pncp
--save-dir`` keeps), then, on those same rows and in this one process, measures:

a. ours, first import: read page + ``json.loads`` + ``Ingester().ingest()`` per page into
   the empty, fully indexed ``pncp_contratacao`` (and the same through ``import_from_dir``,
   the ``sync_pncp --from-dir`` path with its per-page checkpoint);
b. ours, re-import of the unchanged pages: must update and insert no row and not grow the
   table (``pg_stat_user_tables`` counters and ``pg_relation_size`` before/after);
c. a naive importer: per record ``parse_contratacao`` + ``get_or_create`` of órgão/unidade +
   ``Contratacao.objects.update_or_create`` (on ``--naive-n`` records);
d. plain ``bulk_create(update_conflicts=True)`` per page of 50 (órgãos/unidades created
   beforehand, untimed; reading, parsing and hashing timed as ours);
e. the floor: binary COPY of the same rows into an unindexed copy of the table, alone
   ("COPY only": rows built beforehand, one COPY) and with our reading/parsing ("parse + COPY").

Generation of the records and writing of the pages are never timed. Tables are truncated
before each measure and ``VACUUM (ANALYZE)``'d after each first import (this PostgreSQL runs
with autovacuum off), so every re-import starts from the same steady state.

    .venv/bin/python benchmarks/bench_ingest.py --n 50000 --naive-n 2000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _setup

TABLE = "pncp_contratacao"
FLOOR = "bench_floor"

TARGETS = {
    "first_import_min": 5_000,
    "first_import_stretch": 10_000,
    "reimport_min": 20_000,
    "vs_naive_min": 10.0,
    "vs_bulk_create_min": 3.0,
}


def read_page(path: Path) -> list[dict]:
    body = json.loads(path.read_bytes())
    return body["data"] if isinstance(body, dict) else body


# --- (a)/(b) ours ----------------------------------------------------------------------------


def ours(files: list[Path], profile: cProfile.Profile | None = None) -> dict:
    from pncp.ingest import Ingester, IngestResult

    ingester = Ingester()
    total = IngestResult()
    if profile:
        profile.enable()
    start = time.perf_counter()
    for path in files:
        total.add(ingester.ingest("contratacoes", read_page(path)))
    seconds = time.perf_counter() - start
    if profile:
        profile.disable()
    return {
        "seconds": seconds,
        "records": total.stored + total.rejected,
        "created": total.created,
        "updated": total.updated,
        "unchanged": total.unchanged,
        "rejected": total.rejected,
    }


def ours_from_dir(directory: Path, fingerprints: bool = True) -> dict:
    """``sync_pncp --from-dir``; ``fingerprints=False`` decodes every page even when its
    bytes were imported before (``PNCP_PAGE_FINGERPRINTS=0``)."""
    from django.test import override_settings

    from pncp.sync import import_from_dir

    start = time.perf_counter()
    with override_settings(PNCP_PAGE_FINGERPRINTS=fingerprints):
        run, progress = import_from_dir(directory, ["contratacoes"])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "records": progress.records + progress.result.rejected,
        "created": progress.result.created,
        "updated": progress.result.updated,
        "unchanged": progress.result.unchanged,
        "rejected": progress.result.rejected,
        "run_status": run.status,
    }


# --- (c) naive -------------------------------------------------------------------------------


def orm_values(record: dict, row: dict, unidade_ids: dict, now) -> dict:
    """A parsed contratação as keyword arguments of the model (the ORM variants (c) and (d))."""
    from pncp.ingest import canonical, content_hash

    values = dict(row)
    for name in ("unidade_id", "unidade_sub_rogada_id"):
        if values.get(name) is not None:
            values[name] = unidade_ids[values[name]]
    # the parser gives this JSON column as text (for COPY); the ORM wants the list
    values["fontes_orcamentarias"] = record.get("fontesOrcamentarias")
    values.update(
        raw=record,
        content_hash=content_hash(canonical(record)),
        first_seen_at=now,
        last_seen_at=now,
        last_changed_at=now,
    )
    return values


def naive(files: list[Path], limit: int) -> dict:
    from django.utils import timezone

    from pncp.models import Contratacao, Orgao, UnidadeOrgao
    from pncp.parsers import parse_contratacao

    count = 0
    start = time.perf_counter()
    for path in files:
        if count >= limit:
            break
        for record in read_page(path)[: limit - count]:
            now = timezone.now()
            parsed = parse_contratacao(record)
            for number, razao, poder, esfera in parsed.orgaos:
                Orgao.objects.get_or_create(
                    cnpj=number,
                    defaults={"razao_social": razao, "poder_id": poder, "esfera_id": esfera},
                )
            unidades = {}
            for number, codigo, nome, municipio, ibge, uf, uf_nome in parsed.unidades:
                unidade, _ = UnidadeOrgao.objects.get_or_create(
                    orgao_id=number,
                    codigo_unidade=codigo,
                    defaults={
                        "nome_unidade": nome,
                        "municipio_nome": municipio,
                        "codigo_ibge": ibge,
                        "uf_sigla": uf,
                        "uf_nome": uf_nome,
                    },
                )
                unidades[(number, codigo)] = unidade.pk
            values = orm_values(record, parsed.row, unidades, now)
            key = values.pop("numero_controle_pncp")
            Contratacao.objects.update_or_create(numero_controle_pncp=key, defaults=values)
            count += 1
    return {"seconds": time.perf_counter() - start, "records": count}


# --- (d) bulk_create -------------------------------------------------------------------------


def create_dependencies(files: list[Path]) -> dict[tuple[str, str], int]:
    """Órgãos and unidades of all the rows, created up front (untimed) for (d) and (e)."""
    from pncp.models import Orgao, UnidadeOrgao
    from pncp.parsers import parse_contratacao

    orgaos, unidades = {}, {}
    for path in files:
        for record in read_page(path):
            parsed = parse_contratacao(record)
            for orgao in parsed.orgaos:
                orgaos[orgao[0]] = orgao
            for unidade in parsed.unidades:
                unidades[unidade[:2]] = unidade
    Orgao.objects.bulk_create(
        [Orgao(cnpj=c, razao_social=r, poder_id=p, esfera_id=e) for c, r, p, e in orgaos.values()],
        ignore_conflicts=True,
    )
    UnidadeOrgao.objects.bulk_create(
        [
            UnidadeOrgao(
                orgao_id=u[0],
                codigo_unidade=u[1],
                nome_unidade=u[2],
                municipio_nome=u[3],
                codigo_ibge=u[4],
                uf_sigla=u[5],
                uf_nome=u[6],
            )
            for u in unidades.values()
        ],
        ignore_conflicts=True,
    )
    return {
        (u.orgao_id, u.codigo_unidade): u.pk
        for u in UnidadeOrgao.objects.filter(orgao_id__in=list(orgaos))
    }


def bulk_create(files: list[Path], unidade_ids: dict) -> dict:
    from django.utils import timezone

    from pncp.models import Contratacao
    from pncp.parsers import parse_contratacao

    update_fields = [
        f.name
        for f in Contratacao._meta.concrete_fields
        if not f.primary_key and f.name not in ("numero_controle_pncp", "first_seen_at")
    ]
    count = 0
    start = time.perf_counter()
    for path in files:
        now = timezone.now()
        objs = []
        for record in read_page(path):
            values = orm_values(record, parse_contratacao(record).row, unidade_ids, now)
            objs.append(Contratacao(**values))
        Contratacao.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["numero_controle_pncp"],
            update_fields=update_fields,
        )
        count += len(objs)
    return {"seconds": time.perf_counter() - start, "records": count}


# --- (e) the floor: binary COPY into an unindexed table ------------------------------------------


def floor_columns() -> list[str]:
    from pncp.models import Contratacao

    return [f.column for f in Contratacao._meta.concrete_fields if f.column != "id"]


def floor_rows(records, unidade_ids: dict, columns: list[str]):
    """Our row tuples (as the importer builds them), jsonb columns as canonical JSON text."""
    from django.utils import timezone

    from pncp.ingest import canonical, content_hash
    from pncp.parsers import parse_contratacao

    now = timezone.now()
    for record in records:
        text = canonical(record)
        values = dict(parse_contratacao(record).row)
        for name in ("unidade_id", "unidade_sub_rogada_id"):
            if values.get(name) is not None:
                values[name] = unidade_ids[values[name]]
        values.update(
            raw=text,
            content_hash=content_hash(text),
            first_seen_at=now,
            last_seen_at=now,
            last_changed_at=now,
        )
        yield tuple(values.get(c) for c in columns)


def _floor_connection():
    """A plain psycopg connection whose binary jsonb dumper takes ready JSON text."""
    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    conn = psycopg.connect(_setup.database_url())
    jsonb = conn.adapters.types["jsonb"].oid

    class JsonTextBinaryDumper(Dumper):
        format = Format.BINARY
        oid = jsonb

        def dump(self, obj):
            return b"\x01" + obj.encode("utf-8")

    conn.adapters.register_dumper(None, JsonTextBinaryDumper)
    return conn


def floor_prepare() -> None:
    conn = _floor_connection()
    with conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR}")
        conn.execute(f"CREATE TABLE {FLOOR} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY)")
    conn.close()


def floor_copy(rows_or_files, unidade_ids: dict, *, parse: bool) -> dict:
    """One transaction, one binary COPY of every row into the unindexed table."""
    columns = floor_columns()
    conn = _floor_connection()
    conn.execute(f"TRUNCATE {FLOOR} RESTART IDENTITY")
    conn.commit()
    oids = conn.execute(
        "SELECT a.atttypid FROM unnest(%s::text[]) WITH ORDINALITY AS c(name, i) "
        "JOIN pg_attribute a ON a.attrelid = %s::regclass AND a.attname = c.name ORDER BY c.i",
        [columns, FLOOR],
    ).fetchall()
    types = [oid for (oid,) in oids]
    count = 0
    start = time.perf_counter()
    with conn.cursor() as cursor:
        statement = f"COPY {FLOOR} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            if parse:
                for path in rows_or_files:
                    for row in floor_rows(read_page(path), unidade_ids, columns):
                        copy.write_row(row)
                        count += 1
            else:
                for row in rows_or_files:
                    copy.write_row(row)
                    count += 1
    conn.commit()
    seconds = time.perf_counter() - start
    conn.close()
    return {"seconds": seconds, "records": count}


# --- running ---------------------------------------------------------------------------------


def rate(result: dict) -> float:
    return result["records"] / result["seconds"] if result["seconds"] else 0.0


def measure(label: str, repeat: int, fn, *, before=None, after=None) -> dict:
    """Run ``fn`` ``repeat`` times (``before`` untimed each time); keep every try, report the
    median rate."""
    tries = []
    for i in range(repeat):
        if before:
            before()
        result = fn()
        result["rate"] = rate(result)
        if after:
            result.update(after() or {})
        tries.append(result)
        print(
            f"  {label:<44} try {i + 1}/{repeat}: {result['records']:>8,} records "
            f"in {result['seconds']:8.2f} s = {result['rate']:>9,.0f}/s",
            flush=True,
        )
    rates = [t["rate"] for t in tries]
    return {
        "label": label,
        "rate": statistics.median(rates),
        "rate_min": min(rates),
        "rate_max": max(rates),
        "records": tries[0]["records"],
        "tries": tries,
    }


def growth(before: dict, after: dict) -> dict:
    return {name: after[name] - before[name] for name in before}


def profile_text(profile: cProfile.Profile, limit: int = 35) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="contratações (default 50,000)")
    parser.add_argument("--naive-n", type=int, default=2_000, help="records for the naive loop")
    parser.add_argument("--repeat", type=int, default=1, help="tries of each measure (median)")
    parser.add_argument("--orgaos", type=int, default=0, help="spread over N synthetic órgãos")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma list of: from_dir,naive,bulk,floor")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile ours (extra untimed passes)"
    )
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    _setup.bootstrap()
    info = _setup.machine_info()
    _setup.print_machine(info)

    tmp = tempfile.TemporaryDirectory(prefix="pncp-bench-")
    directory = Path(tmp.name)
    t = time.perf_counter()
    files = _setup.save_pages(directory, args.n, seed=args.seed, orgaos=args.orgaos)
    size = sum(f.stat().st_size for f in files)
    print(
        f"# {args.n:,} contratações in {len(files):,} pages of {_setup.PAGE_SIZE} "
        f"({size / 1e6:,.0f} MB) written in {time.perf_counter() - t:.1f} s (untimed)",
        flush=True,
    )
    results: dict[str, dict] = {}
    extra: dict[str, object] = {}
    profiles: dict[str, str] = {}

    def fresh():
        _setup.truncate_records()

    def settle():
        _setup.vacuum_analyze(TABLE)

    # (a) ours, first import, then (b) the re-import of the same pages.
    results["ours_first"] = measure(
        "ours: first import", args.repeat, lambda: ours(files), before=fresh, after=settle
    )
    stored = _setup.count_rows(TABLE)
    before = _setup.table_stats(TABLE)
    results["ours_reimport"] = measure(
        "ours: re-import unchanged", args.repeat, lambda: ours(files)
    )
    after = _setup.table_stats(TABLE)
    delta = growth(before, after)
    extra["reimport_check"] = {
        "rows_stored": stored,
        "before": before,
        "after": after,
        "delta": delta,
        "zero_row_writes": delta["n_tup_upd"] == 0 and delta["n_tup_ins"] == 0,
        "no_growth": delta["heap_bytes"] == 0 and delta["index_bytes"] == 0,
        "versions": _setup.count_rows("pncp_recordversion"),
    }
    print(f"  re-import check: {extra['reimport_check']['delta']}", flush=True)

    if "from_dir" not in skip:
        results["ours_from_dir_first"] = measure(
            "ours: import_from_dir (--from-dir), first",
            args.repeat,
            lambda: ours_from_dir(directory),
            before=fresh,
            after=settle,
        )
        before = _setup.table_stats(TABLE)
        results["ours_from_dir_reimport"] = measure(
            "ours: import_from_dir (--from-dir), re-import",
            args.repeat,
            lambda: ours_from_dir(directory),
        )
        delta = growth(before, _setup.table_stats(TABLE))
        extra["from_dir_reimport_check"] = {
            "delta": delta,
            "zero_row_writes": delta["n_tup_upd"] == 0 and delta["n_tup_ins"] == 0,
            "no_growth": delta["heap_bytes"] == 0 and delta["index_bytes"] == 0,
            "versions": _setup.count_rows("pncp_recordversion"),
            "page_fingerprints": _setup.count_rows("pncp_pagefingerprint"),
        }
        print(f"  from-dir re-import check: {extra['from_dir_reimport_check']}", flush=True)
        results["ours_from_dir_reimport_decoding"] = measure(
            "ours: --from-dir re-import, no fingerprints",
            args.repeat,
            lambda: ours_from_dir(directory, fingerprints=False),
        )

    if "naive" not in skip:
        naive_n = min(args.naive_n, args.n)
        results["naive_first"] = measure(
            "naive update_or_create loop: first import",
            1,
            lambda: naive(files, naive_n),
            before=fresh,
        )
        results["naive_reimport"] = measure(
            "naive update_or_create loop: re-import", 1, lambda: naive(files, naive_n)
        )
        # ours on the very same subset, for a like-for-like small-table comparison
        subset = files[: -(-naive_n // _setup.PAGE_SIZE)]
        results["ours_first_naive_n"] = measure(
            f"ours on the same {naive_n:,}: first import", 1, lambda: ours(subset), before=fresh
        )

    unidade_ids: dict = {}
    if "bulk" not in skip or "floor" not in skip:
        fresh()
        unidade_ids = create_dependencies(files)

    if "bulk" not in skip:

        def fresh_keep_orgaos():
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {TABLE} RESTART IDENTITY CASCADE")

        results["bulk_first"] = measure(
            "bulk_create(update_conflicts): first import",
            args.repeat,
            lambda: bulk_create(files, unidade_ids),
            before=fresh_keep_orgaos,
            after=settle,
        )
        before = _setup.table_stats(TABLE)
        results["bulk_reimport"] = measure(
            "bulk_create(update_conflicts): re-import",
            args.repeat,
            lambda: bulk_create(files, unidade_ids),
        )
        after = _setup.table_stats(TABLE)
        extra["bulk_reimport_check"] = {"before": before, "after": after}
        extra["bulk_reimport_check"]["delta"] = growth(before, after)
        print(f"  bulk re-import check: {extra['bulk_reimport_check']['delta']}", flush=True)

    if "floor" not in skip:
        floor_prepare()
        columns = floor_columns()
        rows = [r for path in files for r in floor_rows(read_page(path), unidade_ids, columns)]
        results["floor_copy_only"] = measure(
            "floor: binary COPY only (unindexed, 1 txn)",
            args.repeat,
            lambda: floor_copy(rows, unidade_ids, parse=False),
        )
        del rows
        results["floor_parse_copy"] = measure(
            "floor: read+parse+binary COPY (unindexed)",
            args.repeat,
            lambda: floor_copy(files, unidade_ids, parse=True),
        )

    if args.profile:
        # Separate, untimed passes: cProfile slows Python down, so it never runs while timing.
        for label in ("ours_first", "ours_reimport"):
            if label == "ours_first":
                fresh()
            profile = cProfile.Profile()
            ours(files, profile)
            profiles[label] = profile_text(profile)
            settle()

    tmp.cleanup()
    summary = summarize(results, extra)
    print_table(results, summary)
    payload = {
        "benchmark": "ingest",
        "machine": info,
        "args": vars(args),
        "page_size": _setup.PAGE_SIZE,
        "pages": len(files),
        "pages_bytes": size,
        "targets": TARGETS,
        "results": results,
        "checks": extra,
        "summary": summary,
    }
    name = f"ingest{'-' + args.tag if args.tag else ''}"
    path = _setup.write_results(name, payload)
    for label, text in profiles.items():
        (path.parent / f"{path.stem}-profile-{label}.txt").write_text(text)
    print(f"# results: {path}")
    return payload


def summarize(results: dict, extra: dict) -> dict:
    def r(key):
        return results[key]["rate"] if key in results else None

    summary: dict[str, object] = {
        "first_import_rate": r("ours_first"),
        "reimport_rate": r("ours_reimport"),
        "first_import_pass": r("ours_first") >= TARGETS["first_import_min"],
        "first_import_stretch_pass": r("ours_first") >= TARGETS["first_import_stretch"],
        "reimport_pass": (
            r("ours_reimport") >= TARGETS["reimport_min"]
            and extra["reimport_check"]["zero_row_writes"]
            and extra["reimport_check"]["no_growth"]
        ),
    }
    if r("naive_first"):
        summary["vs_naive_first"] = r("ours_first") / r("naive_first")
        summary["vs_naive_first_same_n"] = r("ours_first_naive_n") / r("naive_first")
        summary["vs_naive_reimport"] = r("ours_reimport") / r("naive_reimport")
        summary["vs_naive_pass"] = summary["vs_naive_first"] >= TARGETS["vs_naive_min"]
        summary["vs_naive_same_n_pass"] = (
            summary["vs_naive_first_same_n"] >= TARGETS["vs_naive_min"]
        )
    if r("bulk_first"):
        summary["vs_bulk_first"] = r("ours_first") / r("bulk_first")
        summary["vs_bulk_reimport"] = r("ours_reimport") / r("bulk_reimport")
        summary["vs_bulk_pass"] = summary["vs_bulk_first"] >= TARGETS["vs_bulk_create_min"]
    if r("ours_from_dir_first"):
        # ``sync_pncp --from-dir``: the operators' path for saved pages (several pages per
        # transaction, reading and parsing in a thread beside the ingest)
        summary["from_dir_first_rate"] = r("ours_from_dir_first")
        summary["from_dir_reimport_rate"] = r("ours_from_dir_reimport")
        summary["from_dir_first_pass"] = r("ours_from_dir_first") >= TARGETS["first_import_min"]
        check = extra.get("from_dir_reimport_check", {})
        summary["from_dir_reimport_pass"] = (
            r("ours_from_dir_reimport") >= TARGETS["reimport_min"]
            and check.get("zero_row_writes", False)
            and check.get("no_growth", False)
        )
        summary["from_dir_reimport_no_fingerprints_rate"] = r("ours_from_dir_reimport_decoding")
        if r("bulk_first"):
            summary["from_dir_vs_bulk_first"] = r("ours_from_dir_first") / r("bulk_first")
            summary["from_dir_vs_bulk_pass"] = (
                summary["from_dir_vs_bulk_first"] >= TARGETS["vs_bulk_create_min"]
            )
    if r("floor_copy_only"):
        summary["of_floor_copy_only"] = r("ours_first") / r("floor_copy_only")
        summary["of_floor_parse_copy"] = r("ours_first") / r("floor_parse_copy")
    return summary


def print_table(results: dict, summary: dict) -> None:
    print()
    print(f"{'measure':<46} {'records':>9} {'median/s':>10} {'min/s':>9} {'max/s':>9}")
    for item in results.values():
        print(
            f"{item['label']:<46} {item['records']:>9,} {item['rate']:>10,.0f} "
            f"{item['rate_min']:>9,.0f} {item['rate_max']:>9,.0f}"
        )
    print()
    for key, value in summary.items():
        shown = f"{value:,.2f}" if isinstance(value, float) else value
        print(f"  {key:<28} {shown}")


if __name__ == "__main__":
    main()
