"""Shared plumbing of the importer benchmarks: Django bootstrap, data, truncation, machine info.

Every benchmark script starts with::

    from benchmarks import _setup
    _setup.bootstrap()

which points Django at ``DATABASE_URL`` (default: a dedicated ``pncp_bench`` database on the
local PostgreSQL, created when missing), turns DEBUG off (Django's query log would otherwise
cost time and memory), lifts the per-statement timeout and migrates.

Records are the fake PNCP's realistic clones of real PNCP records
(``tests/fakes/fake_pncp.py``), produced one at a time so that a million of them never sit in
memory together; benchmarks write them to disk as PNCP pages *before* any clock starts.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pncp_bench"
PAGE_SIZE = 50  # PNCP's page size for /v1/contratacoes/* since February 2026
START = date(2025, 7, 1)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- Django ---------------------------------------------------------------------------------


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def ensure_database(url: str) -> None:
    """CREATE DATABASE for ``url`` if it does not exist (through the maintenance database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def bootstrap(*, migrate: bool = True) -> None:
    """Configure and set up Django for a benchmark process."""
    url = database_url()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Production settings: DEBUG on would log every query (time and memory).
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "benchmarks-only-not-a-secret")
    os.environ.setdefault("DB_STATEMENT_TIMEOUT_MS", "0")
    if url.startswith(("postgres://", "postgresql://")):
        ensure_database(url)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


# --- data -----------------------------------------------------------------------------------


def iter_contratacoes(
    n: int, *, seed: int = 1, start: date = START, days: int = 30, orgaos: int = 0
) -> Iterator[dict]:
    """``n`` contratação records, generated lazily by the fake PNCP's record generator.

    The generator clones the real sample records (``tests/data/samples/contratacao_1.json``)
    and varies órgão/unidade, keys, sequencial, dates, modalidade and values; keys are unique.
    It draws órgãos from a pool of 26 (the samples' plus 10 capitals); ``orgaos`` > 0 spreads
    the records over that many synthetic órgãos instead (one unidade each), closer to PNCP's
    tens of thousands of publishers, to show what cache misses cost.
    """
    from tests.fakes.fake_pncp import FakeDataset, _cnpj, _Generator

    generator = _Generator(FakeDataset(), random.Random(seed), start, days)
    rng = random.Random(seed + 1)
    sequences: dict[tuple[str, int], int] = {}
    for i in range(n):
        record = generator.contratacao(i)[0]
        if orgaos > 0:
            k = rng.randrange(orgaos)
            number = _cnpj(f"{10_000_000 + k:08d}0001")
            year = record["anoCompra"]
            seq = sequences[(number, year)] = sequences.get((number, year), 0) + 1
            # órgão k always looks the same (poder, esfera, município): a real publisher's
            # attributes do not change from record to record
            orgao, unidade = generator.orgaos[k % len(generator.orgaos)]
            record["orgaoEntidade"] = {
                **orgao,
                "cnpj": number,
                "razaoSocial": f"ORGAO SINTETICO {k}",
            }
            record["unidadeOrgao"] = {
                **unidade,
                "codigoUnidade": f"{k:06d}",
                "nomeUnidade": f"UNIDADE SINTETICA {k}",
            }
            record.update(
                sequencialCompra=seq,
                numeroControlePNCP=f"{number}-1-{seq:06d}/{year}",
                numeroCompra=f"{seq:04d}",
                processo=f"{seq:04d}/{year}",
            )
        yield record


def iter_pages(records, page_size: int = PAGE_SIZE) -> Iterator[list[dict]]:
    page: list[dict] = []
    for record in records:
        page.append(record)
        if len(page) == page_size:
            yield page
            page = []
    if page:
        yield page


def envelope(data: list[dict], number: int, total_records: int, page_size: int) -> dict:
    """PNCP's page envelope around ``data``."""
    pages = -(-total_records // page_size)
    return {
        "data": data,
        "totalRegistros": total_records,
        "totalPaginas": pages,
        "numeroPagina": number,
        "paginasRestantes": max(0, pages - number),
        "empty": False,
    }


def save_pages(
    directory: Path,
    n: int,
    *,
    seed: int = 1,
    page_size: int = PAGE_SIZE,
    days: int = 30,
    orgaos: int = 0,
) -> list[Path]:
    """Write ``n`` contratações as PNCP pages under ``directory/contratacoes/`` (as
    ``sync_pncp --save-dir`` does: one JSON file per page) and return the files in order."""
    target = Path(directory) / "contratacoes"
    target.mkdir(parents=True, exist_ok=True)
    files = []
    records = iter_contratacoes(n, seed=seed, days=days, orgaos=orgaos)
    for number, page in enumerate(iter_pages(records, page_size), 1):
        path = target / f"contratacoes.publicacao__bench__p{number:05d}.json"
        body = envelope(page, number, n, page_size)
        path.write_bytes(json.dumps(body, ensure_ascii=False).encode("utf-8"))
        files.append(path)
    return files


# --- database helpers -------------------------------------------------------------------------


def record_tables() -> list[str]:
    """The pncp app's tables (records, órgãos, runs, history); never the domain tables."""
    from django.apps import apps

    return [m._meta.db_table for m in apps.get_app_config("pncp").get_models()]


def truncate_records() -> None:
    from django.db import connection

    tables = ", ".join(record_tables())
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def vacuum_analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def table_stats(table: str) -> dict:
    """Cumulative row counters and sizes of ``table``, with the statistics flushed first.

    PostgreSQL publishes a backend's counters only when it goes idle (at most once a second)
    or exits; we close our connection so its backend exits and flushes, then read from a new
    one until two reads half a second apart agree.
    """
    import time

    from django.db import connection

    connection.close()
    query = (
        "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup, "
        "pg_relation_size(relid), pg_indexes_size(relid), pg_total_relation_size(relid) "
        "FROM pg_stat_user_tables WHERE relname = %s"
    )
    previous = None
    for _ in range(20):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(query, [table])
            row = cursor.fetchone()
        if row == previous:
            break
        previous = row
        time.sleep(0.6)
    names = (
        "n_tup_ins",
        "n_tup_upd",
        "n_tup_hot_upd",
        "n_tup_del",
        "n_dead_tup",
        "heap_bytes",
        "index_bytes",
        "total_bytes",
    )
    return dict(zip(names, previous, strict=True))


def count_rows(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


# --- machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict:
    """What the figures were measured on (call after bootstrap)."""
    import django
    import psycopg
    from django.db import connection

    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        "psycopg_impl": psycopg.pq.__impl__,
        "platform": platform.platform(),
        "cpu_calibration_ms": cpu_calibration_ms(),
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["postgresql"] = cursor.fetchone()[0]
            cursor.execute(
                "SELECT name, setting, unit FROM pg_settings WHERE name IN "
                "('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', "
                "'max_wal_size', 'work_mem', 'autovacuum')"
            )
            info["postgresql_settings"] = {
                name: f"{setting}{' x ' + unit if unit else ''}"
                for name, setting, unit in cursor.fetchall()
            }
    else:
        info["database"] = connection.vendor
    return info


def cpu_calibration_ms() -> float:
    """Best of 5 runs of a fixed pure-Python loop (1M additions), in milliseconds.

    VMs sold as the same size differ: on 2026-11-26 one "AMD EPYC, 2 cores" ran Python about
    3x slower than another. This figure, printed with every result, tells which kind of
    machine a run had, so figures from different days can be compared.
    """
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def print_machine(info: dict) -> None:
    pg = info.get("postgresql", info.get("database"))
    print(
        f"# {info['date']}  {info['cpu']} x{info['cores']}  {info['ram_gib']} GiB  "
        f"PostgreSQL {pg}  Python {info['python']}  Django {info['django']}  "
        f"load {info['load_average']}  calibration {info.get('cpu_calibration_ms')} ms"
    )
    settings = info.get("postgresql_settings")
    if settings:
        print("# " + "  ".join(f"{k}={v}" for k, v in sorted(settings.items())))


def write_results(name: str, payload: dict) -> Path:
    if isinstance(payload.get("machine"), dict):
        payload["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    return path
