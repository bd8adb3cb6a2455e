"""The API and admin at a million contratações: latency at concurrency 4, and where it goes.

Against a dedicated database (``DATABASE_URL``, default ``pncp_apibench``) filled by
``benchmarks/seed_api.py`` (run first unless ``--skip-seed``), this script measures:

over HTTP (gunicorn on 127.0.0.1 with sync workers as the Dockerfile runs it, production
settings with Redis, 4 client threads each with its own ``http.client`` connection, a warm-up
before each scenario, JWT from ``/api/v1/auth/token/``; the client's own CPU per request is
reported, since on a small machine it is taken from the server):

- ``page500``: ``/api/v1/contratacoes/`` with one month (``dataInicial``/``dataFinal``), one
  ``codigoModalidadeContratacao``, ``tamanhoPagina=500`` and a ``pagina``; the (month,
  modalidade, pagina) of each request is drawn uniformly from every page that exists, so
  big modalidades and deep pages come up as often as a client paging through them would ask;
- ``page50``: the same with ``tamanhoPagina=50`` (all pages of 50);
- ``page50_default``: one month and nothing else (the required window, default page);
- ``search``: ``q=<word>`` (words of the real objetos) with a 90-day window, default page;
- ``floor500``: the ``page500`` requests, same order, against ``benchmarks/_floor_wsgi.py``
  (one plain SQL query with the selector's columns and joins + ``json.dumps``) served by the
  same gunicorn settings: the ratio API p50 / floor p50 is the overhead of everything else;

in-process (this process, Django test ``Client``, no HTTP):

- ``count_share``: per ``page500`` request, the time of the COUNT query against the whole
  request (``connection.execute_wrapper`` times every query);
- ``serialization``: ``ContratacaoSerializer(many=True).data`` + ``JSONRenderer().render``
  over 500 records fetched as the view fetches them (``row_shape`` rows), per record;
- ``admin``: every changelist ``pncp/admin.py`` registers, plus filtered and searched ones on
  the big tables, as a logged-in superuser: wall ms, number of queries, and whether any query
  is a full-table ``COUNT`` (no WHERE, no LIMIT) over a table of ≥ 100,000 rows.

    .venv/bin/python benchmarks/seed_api.py
    .venv/bin/python benchmarks/bench_api.py --skip-seed
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import seed_api

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/contratacoes/"
MONTHS = [
    (seed_api.START.replace(day=1) + timedelta(days=32 * i)).replace(day=1) for i in range(24)
]
BIG_TABLE_ROWS = 100_000
PASSWORD = "bench-api-Senha-1234"

TARGETS = {
    "page500_p50_ms": 100,
    "page500_p50_stretch_ms": 50,
    "page500_p99_ms": 300,
    "page50_p50_ms": 30,
    "floor_ratio_max": 3.0,
    "serialization_us_per_record": 20,
    "search_p95_ms": 200,
    "admin_ms": 500,
    "admin_queries": 10,
}

# Production-like settings for the servers and for this process.
SERVER_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-api-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    "DB_STATEMENT_TIMEOUT_MS": "60000",
    "SECURE_SSL_REDIRECT": "0",  # plain HTTP over loopback
    "API_THROTTLE_USER": "100000000/min",
    "API_THROTTLE_ANON": "100000000/min",
    "API_THROTTLE_AUTH": "100000000/min",
    "REDIS_URL": "redis://127.0.0.1:6379/9",  # cache + throttle counters, as in production
    "LOG_LEVEL": "WARNING",
}


def month_end(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary(latencies_s: list[float], wall_s: float | None = None) -> dict:
    ms = [x * 1000 for x in latencies_s]
    out = {
        "requests": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
    }
    if wall_s:
        out["requests_per_s"] = round(len(ms) / wall_s, 1)
    return out


# --- request plans -----------------------------------------------------------------------------


def page_counts() -> dict[tuple[date, int], int]:
    """Rows per (month, modalidade), Brasília months as the API's windows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT date_trunc('month', data_publicacao_pncp AT TIME ZONE 'America/Sao_Paulo')"
            "::date, modalidade_id, count(*) FROM pncp_contratacao GROUP BY 1, 2"
        )
        return {(month, mod): n for month, mod, n in cursor.fetchall() if month in MONTHS}


def page_urls(counts, size: int, n: int, rng: random.Random) -> list[str]:
    """``n`` page requests drawn uniformly from every page of ``size`` that exists."""
    pages = [
        (month, mod, page)
        for (month, mod), rows in sorted(counts.items())
        for page in range(1, -(-rows // size) + 1)
    ]
    urls = []
    for month, mod, page in (rng.choice(pages) for _ in range(n)):
        urls.append(
            f"{API}?dataInicial={ymd(month)}&dataFinal={ymd(month_end(month))}"
            f"&codigoModalidadeContratacao={mod}&pagina={page}&tamanhoPagina={size}"
        )
    return urls


def default_urls(n: int, rng: random.Random) -> list[str]:
    urls = []
    for _ in range(n):
        month = rng.choice(MONTHS)
        urls.append(f"{API}?dataInicial={ymd(month)}&dataFinal={ymd(month_end(month))}")
    return urls


STOPWORDS = {
    "para", "pela", "pelo", "com", "sem", "das", "dos", "nas", "nos", "uma", "que", "por",
    "sobre", "entre", "conforme", "demais", "desta", "deste", "neste", "nesta", "seus", "suas",
    "atender", "eventual", "eventuais", "futura", "futuras", "futuro", "registro", "preços",
    "precos", "empresa", "especializada", "contratação", "contratacao", "aquisição",
    "aquisicao", "objeto", "presente", "municipal", "municipio", "município", "secretaria",
    "edital", "termo", "referência", "referencia", "anexo", "através", "atraves",
}  # fmt: skip


def search_terms(k: int = 40, seed: int = 5) -> list[str]:
    """Words of the real objetos (≥ 5 letters, in ≥ 3 objetos, not filler), ``k`` of them."""
    from collections import Counter

    seen: Counter = Counter()
    for text in seed_api.real_objetos():
        words = {w for w in re.findall(r"[a-zà-ú]+", text.lower()) if len(w) >= 5}
        seen.update(words - STOPWORDS)
    candidates = sorted(w for w, c in seen.items() if c >= 3)
    return random.Random(seed).sample(candidates, min(k, len(candidates)))


def search_urls(terms: list[str], n: int, rng: random.Random) -> list[str]:
    from urllib.parse import quote

    urls = []
    first, last = MONTHS[0], month_end(MONTHS[-1]) - timedelta(days=89)
    for _ in range(n):
        start = first + timedelta(days=rng.randrange((last - first).days))
        urls.append(
            f"{API}?dataInicial={ymd(start)}&dataFinal={ymd(start + timedelta(days=89))}"
            f"&q={quote(rng.choice(terms))}"
        )
    return urls


# --- servers -----------------------------------------------------------------------------------


class Server:
    def __init__(
        self,
        app: str,
        port: int,
        workers: int,
        threads: int,
        env: dict,
        log: Path,
        worker_class: str = "sync",
    ):
        self.url = f"http://127.0.0.1:{port}"
        command = [
            str(ROOT / ".venv/bin/gunicorn"),
            app,
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            *(["--threads", str(threads)] if worker_class == "gthread" else []),
            "--keep-alive",
            "30",
            "--timeout",
            "120",
        ]
        self.log = open(log, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=ROOT, stdout=self.log, stderr=self.log
        )

    def wait(self, path: str, headers: dict | None = None, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.log.name})")
            try:
                if requests.get(self.url + path, headers=headers, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready ({self.log.name})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


class _Connection:
    """One keep-alive HTTP/1.1 connection (``http.client``) that GETs a path.

    ``requests`` cost the benchmark's client ~3.5 ms of CPU per request on a 2-core VM
    (BENCHMARKS.md, sixth round): CPU taken from the server it measures. ``http.client``
    does the same GET over one kept-alive connection for a fraction of that.
    """

    def __init__(self, base: str, headers: dict):
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.headers = {"Accept": "application/json", **headers}
        self.connection = None

    def get(self, path: str) -> tuple[int, bytes]:
        import http.client

        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()  # the server closed a kept-alive connection: once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class _RequestsConnection:
    """The same GET through ``requests`` (``--client requests``, as before)."""

    def __init__(self, base: str, headers: dict):
        import requests

        self.base = base
        self.session = requests.Session()
        self.session.headers.update(headers)

    def get(self, path: str) -> tuple[int, bytes]:
        response = self.session.get(self.base + path, timeout=120)
        return response.status_code, response.content

    def close(self) -> None:
        self.session.close()


CLIENTS = {"http.client": _Connection, "requests": _RequestsConnection}


def run_http(
    base: str,
    urls: list[str],
    headers: dict,
    concurrency: int,
    warmup: int,
    client: str = "http.client",
) -> dict:
    """Fire ``urls`` (after ``warmup`` of them) from ``concurrency`` keep-alive connections.

    Also reports the client's own CPU per request (this process, all its threads): on a
    2-core machine it is CPU the server under test did not get."""
    connections = [CLIENTS[client](base, headers) for _ in range(concurrency)]

    def fire(batch: list[str]) -> tuple[list[float], list[int], list[int]]:
        lock = threading.Lock()
        queue = list(reversed(batch))
        latencies, statuses, sizes = [], [], []

        def worker(connection):
            while True:
                with lock:
                    if not queue:
                        return
                    url = queue.pop()
                start = time.perf_counter()
                status, body = connection.get(url)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    statuses.append(status)
                    sizes.append(len(body))

        threads = [threading.Thread(target=worker, args=(c,)) for c in connections]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return latencies, statuses, sizes

    fire(urls[:warmup])
    load_before = os.getloadavg()[0]
    cpu_before = time.process_time()
    start = time.perf_counter()
    latencies, statuses, sizes = fire(urls[warmup:])
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu_before
    errors = [s for s in statuses if s != 200]
    for connection in connections:
        connection.close()
    return {
        **summary(latencies, wall),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
        "mean_body_bytes": round(statistics.fmean(sizes)),
        "client": client,
        "client_cpu_ms_per_request": round(client_cpu * 1000 / len(latencies), 2),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


# --- in-process measures -----------------------------------------------------------------------


class QueryLog:
    """``connection.execute_wrapper`` that times each query."""

    def __init__(self):
        self.queries: list[tuple[str, float]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, time.perf_counter() - start))


def count_share(urls: list[str], token: str) -> dict:
    """The COUNT's share with every page counting (``API_COUNT_CACHE_SECONDS=0``): the first
    page of a filter, or any page right after an import commits."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    settings.API_COUNT_CACHE_SECONDS = 0

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for url in urls[:5]:
        client.get(url)  # warm
    rows = []
    for url in urls[5:]:
        log = QueryLog()
        with connection.execute_wrapper(log):
            start = time.perf_counter()
            response = client.get(url)
            total = time.perf_counter() - start
        assert response.status_code == 200, (url, response.status_code)
        count = sum(t for sql, t in log.queries if sql.lstrip().upper().startswith("SELECT COUNT"))
        page = sum(
            t for sql, t in log.queries if not sql.lstrip().upper().startswith("SELECT COUNT")
        )
        rows.append((total, count, page, len(log.queries)))
    total = [r[0] * 1000 for r in rows]
    count = [r[1] * 1000 for r in rows]
    page = [r[2] * 1000 for r in rows]
    shares = [c / t for c, t in zip(count, total, strict=True)]
    return {
        "requests": len(rows),
        "queries_per_request": sorted({r[3] for r in rows}),
        "total_ms_p50": round(percentile(total, 50), 1),
        "count_ms_p50": round(percentile(count, 50), 2),
        "count_ms_p95": round(percentile(count, 95), 2),
        "page_query_ms_p50": round(percentile(page, 50), 1),
        "count_share_median": round(statistics.median(shares), 3),
        "count_share_p95": round(percentile(shares, 95), 3),
        "count_share_of_summed_time": round(sum(count) / sum(total), 3),
    }


def serialization(tries: int = 30) -> dict:
    from rest_framework.renderers import JSONRenderer
    from rest_framework.test import APIRequestFactory

    from pncp.api import selectors
    from pncp.api.filters import _day_start
    from pncp.api.serializers import ContratacaoSerializer
    from pncp.api.views import ContratacaoViewSet

    month = MONTHS[18]  # a page of 500 dispensas of May 2026, as the API fetches it (rows)
    qs = selectors.contratacao_queryset().filter(
        data_publicacao_pncp__gte=_day_start(month),
        data_publicacao_pncp__lt=_day_start(month_end(month) + timedelta(days=1)),
        modalidade_id=8,
    )[:500]
    if len(qs) < 500:  # a small trial database
        qs = selectors.contratacao_queryset()[:500]
    objects = ContratacaoViewSet.row_shape.fetch(qs)
    assert len(objects) == 500, len(objects)
    request = APIRequestFactory().get(API)
    renderer = ContratacaoViewSet.renderer_classes[0]()  # the view's renderer
    stdlib = JSONRenderer()  # DRF's own, for comparison
    ser, ren, ren_drf = [], [], []
    for _ in range(tries):
        start = time.perf_counter()
        data = ContratacaoSerializer(objects, many=True, context={"request": request}).data
        middle = time.perf_counter()
        body = renderer.render(data)
        end = time.perf_counter()
        same = stdlib.render(data)
        ser.append(middle - start)
        ren.append(end - middle)
        ren_drf.append(time.perf_counter() - end)
    both = [a + b for a, b in zip(ser, ren, strict=True)]
    per = 1e6 / len(objects)
    return {
        "records": len(objects),
        "tries": tries,
        "renderer": type(renderer).__name__,
        "us_per_record_median": round(statistics.median(both) * per, 2),
        "us_per_record_min": round(min(both) * per, 2),
        "serializer_us_per_record_median": round(statistics.median(ser) * per, 2),
        "render_us_per_record_median": round(statistics.median(ren) * per, 2),
        "drf_json_renderer_us_per_record_median": round(statistics.median(ren_drf) * per, 2),
        "same_bytes_as_drf_json_renderer": body == same,
        "body_bytes": len(body),
    }


def big_tables() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' "
            "AND relname LIKE 'pncp_%%' AND reltuples >= %s",
            [BIG_TABLE_ROWS],
        )
        return dict(cursor.fetchall())


FULL_COUNT = re.compile(r"SELECT\s+COUNT\(", re.I)


def full_table_counts(queries: list[tuple[str, float]], big: dict[str, int]) -> list[str]:
    """Queries that COUNT a big table with no WHERE and no LIMIT."""
    found = []
    for sql, _ in queries:
        if not FULL_COUNT.search(sql) or " WHERE " in sql.upper() or " LIMIT " in sql.upper():
            continue
        if any(f'"{table}"' in sql for table in big):
            found.append(sql[:200])
    return found


def admin_urls(sample: dict) -> list[tuple[str, str]]:
    """(label, url) of every changelist pncp/admin.py registers, plus filtered/search ones."""
    from urllib.parse import quote

    from django.contrib import admin
    from django.urls import reverse

    urls = []
    for model in admin.site._registry:
        if model._meta.app_label != "pncp":
            continue
        name = f"admin:pncp_{model._meta.model_name}_changelist"
        urls.append((f"{model._meta.model_name}", reverse(name)))
    june = "__gte=2026-06-01&{f}__lte=2026-06-30"

    def cl(model: str) -> str:
        return reverse(f"admin:pncp_{model}_changelist")

    term = quote("ambulância")
    urls += [
        (
            "contratacao: modalidade 6 + June 2026",
            cl("contratacao")
            + "?modalidade__codigo__exact=6&data_publicacao_pncp"
            + june.format(f="data_publicacao_pncp"),
        ),
        ("contratacao: UF SP", cl("contratacao") + "?uf=SP"),
        ("contratacao: sorted by valor estimado", cl("contratacao") + "?o=5"),
        ("contratacao: search text", cl("contratacao") + f"?q={term}"),
        ("contratacao: search key", cl("contratacao") + f"?q={quote(sample['contratacao'])}"),
        ("contratacao: search CNPJ", cl("contratacao") + f"?q={sample['cnpj']}"),
        (
            "contrato: tipo 1 + June 2026",
            cl("contrato")
            + "?tipo_contrato__codigo__exact=1&data_publicacao_pncp"
            + june.format(f="data_publicacao_pncp"),
        ),
        ("contrato: search text", cl("contrato") + f"?q={term}"),
        ("contrato: search key", cl("contrato") + f"?q={quote(sample['contrato'])}"),
        (
            "ata: not cancelled + year 2026",
            cl("ataregistropreco") + "?cancelado__exact=0&ano_ata=2026",
        ),
        ("ata: search text", cl("ataregistropreco") + f"?q={term}"),
        ("itempca: ano 2026", cl("itempca") + "?ano_pca=2026"),
        ("itempca: search text", cl("itempca") + f"?q={quote('papel')}"),
        ("planocontratacao: ano 2025", cl("planocontratacao") + "?ano_pca=2025"),
        ("itemcontratacao: search text", cl("itemcontratacao") + f"?q={quote('papel')}"),
        ("recordversion: contratacoes", cl("recordversion") + "?resource__exact=contratacoes"),
        ("recordversion: search key", cl("recordversion") + f"?q={quote(sample['contratacao'])}"),
        ("rejectedrecord: pending", cl("rejectedrecord") + "?resolved=no"),
        ("coverage: gaps", cl("coverage") + "?gap=yes"),
    ]
    return urls


def admin_changelists(tries: int = 5) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from pncp.models import Contratacao, Contrato

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    contratacao = Contratacao.objects.only("numero_controle_pncp", "orgao_id").order_by("id")[7]
    sample = {
        "contratacao": contratacao.numero_controle_pncp,
        "cnpj": contratacao.orgao_id,
        "contrato": Contrato.objects.order_by("id").values_list("numero_controle_pncp", flat=True)[
            7
        ],
    }
    big = big_tables()
    results = []
    for label, url in admin_urls(sample):
        response = client.get(url)  # warm
        times, queries = [], []
        for _ in range(tries):
            log = QueryLog()
            with connection.execute_wrapper(log):
                start = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - start)
            queries = log.queries
        full = full_table_counts(queries, big)
        ms = [t * 1000 for t in times]
        results.append(
            {
                "changelist": label,
                "url": url,
                "status": response.status_code,
                "ms_median": round(statistics.median(ms), 1),
                "ms_max": round(max(ms), 1),
                "queries": len(queries),
                "sql_ms": round(sum(t for _, t in queries) * 1000, 1),
                "slowest_sql_ms": round(max((t for _, t in queries), default=0) * 1000, 1),
                "slowest_sql": max(queries, key=lambda q: q[1])[0][:300] if queries else "",
                "full_table_counts": full,
            }
        )
        print(
            f"  admin {label:45} {results[-1]['status']} {results[-1]['ms_median']:8.1f} ms "
            f"{len(queries):3} queries{'  FULL COUNT!' if full else ''}",
            flush=True,
        )
    return results


# --- main --------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-seed", action="store_true", help="the database holds the data")
    parser.add_argument("--base", type=int, default=50_000)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--orgaos", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=400, help="timed requests per scenario")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default="sync",
        help="gunicorn worker class: sync (as the Dockerfile runs it: one request per "
        "connection, an idle worker takes the next) or gthread (keep-alive connections "
        "stay with the worker that accepted them)",
    )
    parser.add_argument("--threads", type=int, default=1, help="gthread threads per worker")
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument("--name", default="api", help="results file name prefix")
    parser.add_argument("--skip-admin", action="store_true")
    parser.add_argument(
        "--client", choices=sorted(CLIENTS), default="http.client", help="the HTTP client"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only some scenarios over HTTP (--scenarios; no floor, no in-process parts)",
    )
    parser.add_argument(
        "--scenarios",
        default="page50,page50_default",
        help="with --quick: comma-separated HTTP scenarios (page500, page50, "
        "page50_default, search)",
    )
    args = parser.parse_args()

    os.environ.update(SERVER_ENV)
    seed_api.bootstrap()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from benchmarks import _setup

    if not args.skip_seed:
        seed_api.seed(args.base, args.copies, args.orgaos)
    volumes = seed_api.volumes()
    info = _setup.machine_info()
    _setup.print_machine(info)
    print(f"# volumes: {volumes}")

    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username="bench-api", defaults={"role": "consumer"})
    user.set_password(PASSWORD)
    user.save()

    rng = random.Random(11)
    counts = page_counts()
    n, w = args.requests, args.warmup
    plans = {
        "page500": page_urls(counts, 500, n + w, rng),
        "page50": page_urls(counts, 50, n + w, rng),
        "page50_default": default_urls(n + w, rng),
    }
    terms = search_terms()
    plans["search"] = search_urls(terms, n + w, rng)
    floor_probe = plans["page500"][0]
    if args.quick:
        plans = {name: plans[name] for name in args.scenarios.split(",")}

    # the floor's SQL: the selector's SELECT list and joins, without WHERE/ORDER/LIMIT
    from pncp.api import selectors

    select_sql, params = selectors.contratacao_queryset().order_by().query.sql_with_params()
    assert not params and " WHERE " not in select_sql, select_sql
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    (work / "floor.sql").write_text(select_sql)
    connection.close()

    env = {**SERVER_ENV, "DATABASE_URL": os.environ["DATABASE_URL"]}
    floor_env = {
        **env,
        "FLOOR_DSN": os.environ["DATABASE_URL"],
        "FLOOR_SQL_FILE": str(work / "floor.sql"),
    }
    server_args = (args.workers, args.threads)
    server_kw = {"worker_class": args.worker_class}
    api = Server(
        "config.wsgi:application", args.port, *server_args, env, work / "api.log", **server_kw
    )
    floor = None if args.quick else Server(
        "benchmarks._floor_wsgi:application", args.port + 1, *server_args, floor_env,
        work / "floor.log", **server_kw,
    )  # fmt: skip
    http: dict[str, dict] = {}
    try:
        import requests

        api.wait("/health")
        if floor is not None:
            floor.wait(floor_probe)
        token = requests.post(
            api.url + "/api/v1/auth/token/",
            json={"username": "bench-api", "password": PASSWORD},
            timeout=30,
        ).json()["access"]
        headers = {"Authorization": f"Bearer {token}"}
        c = (args.concurrency, w, args.client)
        for name, urls in plans.items():
            http[name] = run_http(api.url, urls, headers, *c)
            print(f"  {name:16} {http[name]}", flush=True)
        if not args.quick:
            http["floor500"] = run_http(floor.url, plans["page500"], {}, *c)
            print(f"  {'floor500':16} {http['floor500']}", flush=True)
            # the API once more right after the floor: both in the same conditions
            http["page500_again"] = run_http(api.url, plans["page500"], headers, *c)
            print(f"  {'page500_again':16} {http['page500_again']}", flush=True)
    finally:
        api.stop()
        if floor is not None:
            floor.stop()
    if args.quick:
        quick = {"benchmark": "api-quick", "machine": info, "client": args.client, "http": http}
        print(f"results: {_setup.write_results(args.name, quick)}")
        return

    print("# in-process: count share, serialization, admin", flush=True)
    import gc

    gc.collect()
    gc.freeze()  # what is loaded stays out of the collector, as config.wsgi does in servers
    from rest_framework_simplejwt.tokens import AccessToken

    token = str(AccessToken.for_user(user))
    counting = count_share(plans["page500"][:105], token)
    print(f"  count_share {counting}", flush=True)
    serial = serialization()
    print(f"  serialization {serial}", flush=True)
    admin = [] if args.skip_admin else admin_changelists()

    page500 = http["page500"]
    floor_p50 = http["floor500"]["p50_ms"]
    api_p50 = min(http["page500"]["p50_ms"], http["page500_again"]["p50_ms"])
    ratio = round(http["page500_again"]["p50_ms"] / floor_p50, 2)
    ratio_first = round(http["page500"]["p50_ms"] / floor_p50, 2)
    admin_ok = [
        a
        for a in admin
        if a["status"] == 200
        and a["ms_median"] <= TARGETS["admin_ms"]
        and a["queries"] <= TARGETS["admin_queries"]
        and not a["full_table_counts"]
    ]
    verdicts = {
        "page500_p50": verdict(page500["p50_ms"] <= TARGETS["page500_p50_ms"]),
        "page500_p50_stretch": verdict(page500["p50_ms"] <= TARGETS["page500_p50_stretch_ms"]),
        "page500_p99": verdict(page500["p99_ms"] <= TARGETS["page500_p99_ms"]),
        "page50_p50": verdict(http["page50"]["p50_ms"] <= TARGETS["page50_p50_ms"]),
        "page50_default_p50": verdict(http["page50_default"]["p50_ms"] <= TARGETS["page50_p50_ms"]),
        "floor_ratio": verdict(ratio <= TARGETS["floor_ratio_max"]),
        "serialization": verdict(
            serial["us_per_record_median"] <= TARGETS["serialization_us_per_record"]
        ),
        "search_p95": verdict(http["search"]["p95_ms"] <= TARGETS["search_p95_ms"]),
        "admin": verdict(len(admin_ok) == len(admin)) if admin else "not run",
        "count_never_dominates": verdict(counting["count_share_p95"] < 0.5),
    }
    payload = {
        "benchmark": "api",
        "machine": info,
        "volumes": volumes,
        "server": {
            "gunicorn": f"{args.workers} workers, {args.worker_class}"
            + (f" × {args.threads} thread (keep-alive)" if args.worker_class == "gthread" else ""),
            "client": args.client,
            "env": {k: v for k, v in SERVER_ENV.items() if k != "SECRET_KEY"},
            "concurrency": args.concurrency,
            "requests_per_scenario": n,
            "warmup": w,
        },
        "targets": TARGETS,
        "search_terms": terms,
        "http": http,
        "floor_ratio_p50": ratio,
        "floor_ratio_p50_first_run": ratio_first,
        "api_best_p50_ms": api_p50,
        "count_share": counting,
        "serialization": serial,
        "admin": admin,
        "verdicts": verdicts,
    }
    path = _setup.write_results(args.name, payload)
    print()
    print(f"{'scenario':18} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8} {'req/s':>7}")
    for name, row in http.items():
        print(
            f"{name:18} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['p99_ms']:8.1f} "
            f"{row['mean_ms']:8.1f} {row['requests_per_s']:7.1f}"
        )
    print(f"floor ratio (API p50 / floor p50): {ratio} (first API run: {ratio_first})")
    share, share95 = counting["count_share_median"], counting["count_share_p95"]
    print(f"count share: {share:.1%} median, p95 {share95:.1%}")
    print(f"serialization: {serial['us_per_record_median']} µs/record")
    for key, value in verdicts.items():
        print(f"  {key:24} {value}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
