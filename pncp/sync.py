"""Plan windows, fetch pages, ingest them, record checkpoints and coverage.

The CLI (``sync_pncp``) and the Celery tasks call these functions; nothing else moves data.

A run is planned up front as checkpoints, one per window (endpoint × period × modalidade).
Pages of different windows are fetched in parallel threads (HTTP is the slow part), while
every database write happens on the calling thread: each page is ingested together with its
checkpoint update in one transaction, so a run killed at any instant resumes by redoing at
most the page that was in flight, and the ingest's upsert makes that redo harmless.

A window counts as done only when the records fetched match PNCP's ``totalRegistros``;
otherwise it is fetched again once and, failing that, reported as incomplete.

Itens and resultados of contratações (PNCP's main API, one call per compra plus one per item
with a result) are opt-in: the pseudo-resource ``itens`` in a run adds one checkpoint per
compra, created in the same transaction as the contratações page that stored it (or planned
up front from the contratações already stored in the window when the run has no
``contratacoes``), so a resume fetches exactly the compras not done yet.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from domain_tables.models import ModalidadeContratacao
from pncp import metrics
from pncp.client import (
    AdaptiveConcurrency,
    CircuitOpenError,
    PNCPClient,
    PNCPError,
    PNCPPageSizeError,
    PNCPRequestError,
)
from pncp.ingest import (
    Ingester,
    IngestResult,
    Prepared,
    known_pages,
    page_digest,
    page_records,
    record_fingerprints,
    relax_commit,
)
from pncp.models import (
    Contratacao,
    Coverage,
    ItemContratacao,
    SyncCheckpoint,
    SyncLock,
    SyncRun,
)
from pncp.parsers import loads
from pncp.resources import (
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    INCREMENTAL_ENDPOINT,
    ITENS,
    RESULTADOS,
    EndpointSpec,
)

logger = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
MIN_PAGE_SIZE = 10
WINDOW_ATTEMPTS = 2  # a window whose count does not match is fetched once more
ITENS_RESOURCE = "itens"  # pseudo-resource: itens + resultados of the run's contratações


class SyncInputError(ValueError):
    """Bad parameters for a sync: reported to the operator, nothing is touched."""


@dataclass
class SyncOptions:
    resources: list[str]
    desde: date | None = None
    ate: date | None = None
    endpoint: str | None = None  # override of the resource's default endpoint
    incremental: bool = False
    modalidades: list[int] | None = None
    filters: dict[str, str] = field(default_factory=dict)  # uf, cnpj, unidade, ...
    required: dict[str, str] = field(default_factory=dict)  # anoPca, idUsuario, ...
    window_days: int | None = None
    dry_run: bool = False
    save_dir: Path | None = None
    concurrency: int = 4

    def as_params(self) -> dict:
        return {
            "resources": self.resources,
            "desde": self.desde.isoformat() if self.desde else None,
            "ate": self.ate.isoformat() if self.ate else None,
            "endpoint": self.endpoint,
            "incremental": self.incremental,
            "modalidades": self.modalidades,
            "filters": self.filters,
            "required": self.required,
            "window_days": self.window_days,
            "dry_run": self.dry_run,
            "save_dir": str(self.save_dir) if self.save_dir else None,
            "concurrency": self.concurrency,
        }

    @classmethod
    def from_params(cls, params: dict) -> SyncOptions:
        return cls(
            resources=params["resources"],
            desde=date.fromisoformat(params["desde"]) if params.get("desde") else None,
            ate=date.fromisoformat(params["ate"]) if params.get("ate") else None,
            endpoint=params.get("endpoint"),
            incremental=params.get("incremental", False),
            modalidades=params.get("modalidades"),
            filters=params.get("filters") or {},
            required=params.get("required") or {},
            window_days=params.get("window_days"),
            dry_run=params.get("dry_run", False),
            save_dir=Path(params["save_dir"]) if params.get("save_dir") else None,
            concurrency=params.get("concurrency", 4),
        )


@dataclass
class Progress:
    """What the CLI shows while a run goes and prints at its end."""

    windows_total: int = 0
    windows_done: int = 0
    windows_failed: int = 0
    pages: int = 0
    result: IngestResult = field(default_factory=IngestResult)
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    failures: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def records(self) -> int:
        return self.result.created + self.result.updated + self.result.unchanged

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0


# --- planning ------------------------------------------------------------------------------


def last_watermark(resource: str) -> date | None:
    """The ``ate`` of the newest run that finished this resource completely."""
    runs = SyncRun.objects.filter(
        status__in=[SyncRun.Status.SUCCESS, SyncRun.Status.PARTIAL],
        params__watermarks__has_key=resource,
    ).order_by("-finished_at")[:1]
    for run in runs:
        return date.fromisoformat(run.params["watermarks"][resource])
    return None


def endpoints_for(options: SyncOptions) -> list[EndpointSpec]:
    specs = []
    for resource in options.resources:
        if resource == ITENS_RESOURCE:
            continue  # planned by plan_itens_windows / spawned as contratações land
        if options.endpoint:
            spec = ENDPOINTS[options.endpoint]
            if spec.resource != resource:
                continue
        elif options.incremental:
            spec = ENDPOINTS[INCREMENTAL_ENDPOINT[resource]]
        elif resource == "pca" and "idUsuario" in options.required:
            spec = ENDPOINTS["pca.usuario"]
        elif resource == "pca" and "codigoClassificacaoSuperior" in options.required:
            spec = ENDPOINTS["pca.classificacao"]
        else:
            spec = ENDPOINTS[DEFAULT_ENDPOINT[resource]]
        specs.append(spec)
    return specs


def resolve_period(options: SyncOptions, spec: EndpointSpec, today: date) -> tuple[date, date]:
    if spec.date_params is None:
        return (None, None)
    if spec.name == "contratacoes.proposta":
        return (today, options.ate or today + timedelta(days=365 * 5))
    desde, ate = options.desde, options.ate or today
    if options.incremental:
        mark = last_watermark(spec.resource)
        overlap = timedelta(days=settings.PNCP_INCREMENTAL_OVERLAP_DAYS)
        if desde is None:
            desde = (mark - overlap) if mark else today - overlap
    if desde is None:
        raise SyncInputError(f"{spec.resource}: give --desde (and --ate) or use --incremental")
    if desde > ate:
        raise SyncInputError(f"--desde {desde} is after --ate {ate}")
    return desde, ate


def plan_windows(options: SyncOptions, today: date | None = None) -> list[dict]:
    """Every window the run will fetch, as checkpoint field dicts. Raises SyncInputError."""
    today = today or timezone.localdate()
    windows = []
    for spec in endpoints_for(options):
        missing = [p for p in spec.required if p not in options.required]
        if missing:
            raise SyncInputError(f"{spec.name} needs {', '.join(missing)}")
        params = {p: options.required[p] for p in spec.required}
        for name, value in options.filters.items():
            if value in (None, ""):
                continue
            if name not in spec.filters:
                raise SyncInputError(f"{spec.name} cannot filter by {name}")
            params[spec.filters[name]] = value
        if spec.modalidade == "required" or (spec.modalidade == "optional" and options.modalidades):
            modalidades = options.modalidades or list(
                ModalidadeContratacao.objects.order_by("codigo").values_list("codigo", flat=True)
            )
        else:
            modalidades = [None]
        start, end = resolve_period(options, spec, today)
        periods = [(None, None)]
        if start is not None:
            if spec.date_params[0] is None:  # proposta: only dataFinal
                periods = [(start, end)]
            else:
                days = min(options.window_days or spec.default_window_days, spec.max_window_days)
                periods = []
                cursor = start
                while cursor <= end:
                    last = min(cursor + timedelta(days=days - 1), end)
                    periods.append((cursor, last))
                    cursor = last + timedelta(days=1)
        for first, last in periods:
            for modalidade in modalidades:
                window_params = dict(params)
                if modalidade is not None:
                    window_params["codigoModalidadeContratacao"] = modalidade
                key = "|".join(
                    [spec.name, str(first or ""), str(last or "")]
                    + [f"{k}={window_params[k]}" for k in sorted(window_params)]
                )
                windows.append(
                    {
                        "resource": spec.resource,
                        "endpoint": spec.name,
                        "key": key[:300],
                        "window_start": first,
                        "window_end": last,
                        "params": window_params,
                        "page_size": spec.page_size,
                    }
                )
    if ITENS_RESOURCE in options.resources and "contratacoes" not in options.resources:
        windows += plan_itens_windows(options, today)
    return windows


def itens_window(compra: str, cnpj: str, ano: int, sequencial: int) -> dict:
    """The checkpoint of one compra's itens (and their resultados)."""
    return {
        "resource": ITENS_RESOURCE,
        "endpoint": ITENS.name,
        "key": f"{ITENS.name}|{compra}"[:300],
        "window_start": None,
        "window_end": None,
        "params": {"compra": compra, "cnpj": cnpj, "ano": ano, "sequencial": sequencial},
        "page_size": ITENS.page_size,
    }


def plan_itens_windows(options: SyncOptions, today: date | None = None) -> list[dict]:
    """``--itens`` without contratações: the compras already stored, published in the window."""
    if options.desde is None:
        raise SyncInputError("--itens alone needs --desde (and --ate): the publication window")
    ate = options.ate or today or timezone.localdate()
    if options.desde > ate:
        raise SyncInputError(f"--desde {options.desde} is after --ate {ate}")
    rows = (
        Contratacao.objects.filter(
            data_publicacao_pncp__date__gte=options.desde, data_publicacao_pncp__date__lte=ate
        )
        .order_by("data_publicacao_pncp", "id")
        .values_list("numero_controle_pncp", "orgao_id", "ano_compra", "sequencial_compra")
    )
    return [itens_window(*row) for row in rows]


def spawn_itens_checkpoints(run: SyncRun, compras: Iterable[str]) -> list[SyncCheckpoint]:
    """Checkpoints for the itens of these stored compras that the run does not have yet."""
    rows = Contratacao.objects.filter(numero_controle_pncp__in=list(compras)).values_list(
        "numero_controle_pncp", "orgao_id", "ano_compra", "sequencial_compra"
    )
    windows = {w["key"]: w for w in (itens_window(*row) for row in rows)}
    if not windows:
        return []
    existing = set(run.checkpoints.filter(key__in=list(windows)).values_list("key", flat=True))
    new = [SyncCheckpoint(run=run, **w) for key, w in windows.items() if key not in existing]
    if not new:
        return []
    # Another worker of the run may create the same key meanwhile: keep theirs, fetch it too
    # (the ingest makes a compra fetched twice harmless).
    SyncCheckpoint.objects.bulk_create(new, ignore_conflicts=True)
    return list(run.checkpoints.filter(key__in=[cp.key for cp in new]).order_by("id"))


def start_run(options: SyncOptions, *, trigger: str = SyncRun.Trigger.CLI, user=None) -> SyncRun:
    """Validate, plan and record a run with its checkpoints; nothing is fetched yet."""
    windows = plan_windows(options)
    with transaction.atomic():
        run = SyncRun.objects.create(
            resources=options.resources,
            mode="incremental" if options.incremental else "full",
            params=options.as_params(),
            trigger=trigger,
            started_by=user,
        )
        acquire_locks(run, options.resources)
        SyncCheckpoint.objects.bulk_create(SyncCheckpoint(run=run, **w) for w in windows)
    return run


LOCK_TTL = timedelta(minutes=30)  # refreshed by every page a run stores


class SyncLockedError(SyncInputError):
    """Another run holds one of the resources: this one exits at once, touching nothing."""


def acquire_locks(run: SyncRun, resources: Iterable[str]) -> None:
    """Take the lock of every resource for ``run`` or raise SyncLockedError (all or nothing)."""
    resources = list(resources)
    now = timezone.now()
    with transaction.atomic():
        stale = SyncLock.objects.filter(resource__in=resources).exclude(run=run)
        stale.filter(expires_at__lt=now).delete()
        stale.exclude(run__status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]).delete()
        SyncLock.objects.bulk_create(
            [SyncLock(resource=r, run=run, expires_at=now + LOCK_TTL) for r in resources],
            ignore_conflicts=True,
        )
        held = SyncLock.objects.filter(resource__in=resources).exclude(run=run)
        held = list(held.select_related("run"))
        if held:
            SyncLock.objects.filter(run=run).delete()
            lock = held[0]
            raise SyncLockedError(
                f"{lock.resource} is already being synced by run #{lock.run_id} "
                f"({lock.run.trigger}, started {lock.acquired_at:%Y-%m-%d %H:%M:%S}); "
                "this run exits without doing anything"
            )
        SyncLock.objects.filter(run=run).update(expires_at=now + LOCK_TTL)


# --- running --------------------------------------------------------------------------------


@dataclass
class _PageMessage:
    checkpoint_id: int
    page: int | None = None
    data: list | None = None
    total_registros: int | None = None
    total_paginas: int | None = None
    page_size: int | None = None
    finished: bool = False
    error: str | None = None
    extra: dict | None = None
    committed: threading.Event = field(default_factory=threading.Event)
    prepared: Prepared | None = None  # hashed (and parsed) ahead by the fetching thread


def execute_run(
    run: SyncRun,
    *,
    client: PNCPClient | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint_ids: list[int] | None = None,
    finish: bool = True,
) -> Progress:
    """Fetch every unfinished window of ``run``; safe to call again to resume it.

    ``checkpoint_ids`` limits it to some windows (a Celery task per window); ``finish=False``
    leaves closing the run (status, watermarks, lock) to whoever runs the last window.
    """
    options = SyncOptions.from_params(run.params)
    if checkpoint_ids is not None:
        options.concurrency = 1
    workers = max(1, options.concurrency if _parallel_ok() else 1)
    client = client or PNCPClient()
    client.on_request = client.on_request or metrics.observe_pncp_request
    if client.concurrency is None:
        # Start at the operator's concurrency, halve on 429/5xx/slow answers, grow back
        # after a run of fast successes (never above twice what was asked).
        client.concurrency = AdaptiveConcurrency(initial=workers, maximum=workers * 2)
    workers = client.concurrency.maximum if _parallel_ok() else 1
    gate = _Gate(client.concurrency)
    ingester = Ingester(run)
    progress = Progress()
    candidates = run.checkpoints.all()
    if checkpoint_ids is not None:
        candidates = candidates.filter(pk__in=checkpoint_ids)
    pending = list(candidates.exclude(status=SyncCheckpoint.Status.DONE).order_by("id"))
    progress.windows_total = candidates.count()
    progress.windows_done = progress.windows_total - len(pending)
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.RUNNING, started_at=run.started_at or timezone.now()
    )

    checkpoints = {cp.pk: cp for cp in pending}
    spawn_itens = ITENS_RESOURCE in (run.resources or [])
    attempts: dict[int, int] = {}
    retries_before = client.stats.get("retries", 0)
    messages: queue.Queue[_PageMessage] = queue.Queue(maxsize=64)
    work: queue.Queue[SyncCheckpoint | None] = queue.Queue()
    for cp in pending:
        if cp.status != SyncCheckpoint.Status.DONE:
            work.put(cp)
    outstanding = len(pending)
    stop = threading.Event()

    learned: dict[str, int] = {}  # page sizes PNCP refused during this run, per endpoint

    def fetcher() -> None:
        while not stop.is_set():
            cp = work.get()
            if cp is None:
                return
            _fetch_window(
                client, cp, messages, stop, options.save_dir, gate, learned, ingester.prepare
            )

    def write(writer: Ingester, cp: SyncCheckpoint, message: _PageMessage):
        """A page into the database (in a writing thread, or this one)."""
        if cp.resource == ITENS_RESOURCE:
            result = _ingest_itens(run, writer, cp, message), []
        else:
            spawn = spawn_itens and cp.resource == "contratacoes"
            result = _ingest_page(run, writer, cp, message, spawn_itens=spawn)
        message.committed.set()  # its fetcher may go on with the window
        return result

    def account(args: tuple, written: tuple[IngestResult, list[SyncCheckpoint]]) -> None:
        nonlocal outstanding
        result, spawned = written
        progress.pages += 1
        progress.result.add(result)
        for new in spawned:  # this process fetches them, whoever planned the run
            checkpoints[new.pk] = new
            work.put(new)
        outstanding += len(spawned)
        progress.windows_total += len(spawned)

    # Pages are written through ``PNCP_WRITERS`` connections at once. A page conflicts with
    # the pages of its own window (the window's checkpoint advances page by page) and with
    # pages holding one of its records (the later one must win).
    writers = BatchWriters(writer_count(), run, write, account)
    threads = [threading.Thread(target=fetcher, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        while outstanding:
            message = messages.get()
            cp = checkpoints[message.checkpoint_id]
            window = ("window", cp.pk)
            if message.data is not None:
                keys = None  # records unknown before parsing: conflicts with every page
                if message.prepared is not None:
                    keys = {window, *message.prepared.records}
                writers.submit(ingester, keys, cp, message)
            else:
                message.committed.set()
            if message.finished or message.error:
                writers.wait_for({window})
                redo = _finish_window(run, cp, message, attempts, progress)
                if redo:
                    work.put(cp)
                else:
                    outstanding -= 1
            progress.retries = client.stats.get("retries", 0) - retries_before
            if on_progress:
                on_progress(progress)
        writers.drain()
    finally:
        stop.set()
        writers.close()
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join(timeout=5)
    add_counts(run, progress)
    if finish:
        finish_run(run)
    return progress


def _parallel_ok() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def _fetch_window(
    client,
    cp: SyncCheckpoint,
    messages: queue.Queue,
    stop,
    save_dir,
    gate=None,
    learned=None,
    prepare=None,
) -> None:
    """Fetch one window page by page from ``cp.next_page``, posting each page for ingest.

    The concurrency slot is held from the request until the page is committed, so the pages
    fetched but not yet in the database never exceed the concurrency limit (with one fetcher,
    a kill -9 loses at most one page).
    """
    if cp.resource == ITENS_RESOURCE:
        return _fetch_itens(client, cp, messages, stop, gate or _NO_GATE, learned)
    spec = ENDPOINTS[cp.endpoint]
    page = cp.next_page
    page_size = cp.page_size
    fetched_before = cp.fetched
    total_paginas = cp.total_paginas
    gate = gate or _NO_GATE
    try:
        if spec.unpaged:
            with gate:
                record = client.get_json(spec.path.format(**cp.params))
                _post(
                    messages,
                    stop,
                    _PageMessage(
                        cp.pk,
                        page=1,
                        data=[record] if record else [],
                        total_registros=1 if record else 0,
                        total_paginas=1,
                        finished=True,
                    ),
                )
            return
        while not stop.is_set():
            params = _query(spec, cp, page, page_size)
            with gate:
                try:
                    result = client.get_page(spec.path, params, total_paginas=total_paginas)
                except PNCPPageSizeError as exc:
                    new_size = _smaller_page_size(page_size, exc.limit)
                    if new_size is None:
                        raise
                    logger.warning(
                        "%s: page size %s refused, using %s", cp.key, page_size, new_size
                    )
                    done = fetched_before + (page - cp.next_page) * page_size
                    page_size, page = new_size, done // new_size + 1
                    continue
                if save_dir and result.raw:
                    _save_page(save_dir, spec, cp, page, result.raw)
                if result.status != "ok":
                    first = page == 1
                    messages.put(
                        _PageMessage(
                            cp.pk,
                            finished=True,
                            total_registros=0 if first else None,
                            total_paginas=0 if first else None,
                            page_size=page_size,
                        )
                    )
                    return
                total_paginas = result.total_paginas
                last = result.total_paginas is None or page >= result.total_paginas
                _post(
                    messages,
                    stop,
                    _PageMessage(
                        cp.pk,
                        page=page,
                        data=result.data,
                        total_registros=result.total_registros,
                        total_paginas=result.total_paginas,
                        page_size=page_size,
                        finished=last,
                        extra=_extra(spec, cp.params),
                        # hashed and parsed here, off the ingesting thread's critical path
                        prepared=prepare(
                            cp.resource, result.data, source=f"{cp.key} p{page}", parse=True
                        )
                        if prepare
                        else None,
                    ),
                )
            if last:
                return
            page += 1
    except CircuitOpenError as exc:
        messages.put(_PageMessage(cp.pk, error=f"PNCP circuit open: {exc}"))
    except PNCPRequestError as exc:
        messages.put(_PageMessage(cp.pk, error=f"PNCP refused {exc.url}: {exc.status} {exc}"))
    except PNCPError as exc:
        messages.put(_PageMessage(cp.pk, error=f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # never let a thread die silently: the window is reported failed
        logger.exception("unexpected error fetching %s", cp.key)
        messages.put(_PageMessage(cp.pk, error=f"unexpected {type(exc).__name__}: {exc}"))


def _fetch_itens(
    client, cp: SyncCheckpoint, messages: queue.Queue, stop, gate, learned: dict | None = None
) -> None:
    """Fetch one compra's itens (every page) and the resultados of those that have any.

    The whole compra is one message: it lands in one transaction, so its checkpoint is either
    done or redone whole, and a compra costs 1 + (itens with a result) calls.
    """
    p = cp.params
    where = {"cnpj": p["cnpj"], "ano": p["ano"], "sequencial": p["sequencial"]}
    path = ITENS.path.format(**where)
    learned = learned if learned is not None else {}
    size = min(cp.page_size or ITENS.page_size, learned.get(ITENS.name, ITENS.page_size))
    try:
        with gate:
            itens: dict = {}
            page = 1
            while not stop.is_set():
                try:
                    batch = client.get_list(path, {"pagina": page, "tamanhoPagina": size})
                except PNCPPageSizeError as exc:
                    smaller = _smaller_page_size(size, exc.limit)
                    if smaller is None:
                        raise
                    logger.warning("%s: page size %s refused, using %s", cp.key, size, smaller)
                    size, page, itens = smaller, 1, {}
                    learned[ITENS.name] = min(smaller, learned.get(ITENS.name, smaller))
                    continue
                for position, item in enumerate(batch):
                    numero = item.get("numeroItem") if isinstance(item, dict) else None
                    key = numero if isinstance(numero, int | str) else (page, position)
                    itens[key] = item  # by numeroItem: a page that shifted adds no duplicate
                if len(batch) < size:
                    break
                page += 1
            resultados = []
            for item in itens.values():
                if not isinstance(item, dict) or item.get("numeroItem") is None:
                    continue
                if item.get("temResultado") is False:
                    continue  # saves a call per item without a result
                numero = item["numeroItem"]
                resultados += client.get_list(RESULTADOS.path.format(**where, numeroItem=numero))
            if stop.is_set():
                return
            _post(
                messages,
                stop,
                _PageMessage(
                    cp.pk,
                    page=1,
                    data=list(itens.values()),
                    total_registros=len(itens),
                    total_paginas=page,
                    page_size=size,
                    finished=True,
                    extra={"resultados": resultados},
                ),
            )
    except CircuitOpenError as exc:
        messages.put(_PageMessage(cp.pk, error=f"PNCP circuit open: {exc}"))
    except PNCPRequestError as exc:
        messages.put(_PageMessage(cp.pk, error=f"PNCP refused {exc.url}: {exc.status} {exc}"))
    except PNCPError as exc:
        messages.put(_PageMessage(cp.pk, error=f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # never let a thread die silently: the compra is reported failed
        logger.exception("unexpected error fetching %s", cp.key)
        messages.put(_PageMessage(cp.pk, error=f"unexpected {type(exc).__name__}: {exc}"))


def _query(spec: EndpointSpec, cp: SyncCheckpoint, page: int, page_size: int) -> dict:
    params = dict(cp.params)
    if spec.date_params:
        first, last = spec.date_params
        if first and cp.window_start:
            params[first] = cp.window_start.strftime("%Y%m%d")
        if last and cp.window_end:
            params[last] = cp.window_end.strftime("%Y%m%d")
    params["pagina"] = page
    params["tamanhoPagina"] = page_size
    return params


class _Gate:
    """At most ``controller.limit`` requests in flight; the limit moves with PNCP's answers."""

    def __init__(self, controller: AdaptiveConcurrency) -> None:
        self.controller = controller
        self.active = 0
        self.condition = threading.Condition()

    def __enter__(self) -> None:
        with self.condition:
            while self.active >= self.controller.limit:
                self.condition.wait(0.1)
            self.active += 1

    def __exit__(self, *exc) -> None:
        with self.condition:
            self.active -= 1
            self.condition.notify()


class _NoGate:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


_NO_GATE = _NoGate()


def _post(messages: queue.Queue, stop: threading.Event, message: _PageMessage) -> None:
    """Hand a page to the ingesting thread and wait until it is committed.

    Waiting keeps each fetcher at most one page ahead of the database, so a run killed at any
    instant has at most one fetched-but-uncommitted page per fetcher to redo on resume.
    """
    messages.put(message)
    while not message.committed.wait(0.5):
        if stop.is_set():
            return


def _extra(spec: EndpointSpec, params: dict) -> dict | None:
    extra = {column: params[p] for p, column in spec.extra_from_params.items() if p in params}
    return extra or None


def _smaller_page_size(current: int, limit: int | None) -> int | None:
    if limit is not None and MIN_PAGE_SIZE <= limit < current:
        return limit
    if current <= MIN_PAGE_SIZE:
        return None
    return max(MIN_PAGE_SIZE, current // 2)


def _save_page(save_dir: Path, spec: EndpointSpec, cp: SyncCheckpoint, page: int, raw: bytes):
    """Keep the raw page under ``<dir>/<resource>/`` so ``--from-dir`` can replay it."""
    safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in cp.key)
    target = Path(save_dir) / spec.resource / f"{safe}__p{page:05d}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)


def _ingest_page(
    run, ingester, cp: SyncCheckpoint, message: _PageMessage, *, spawn_itens=False
) -> tuple[IngestResult, list[SyncCheckpoint]]:
    """Store one page and advance its checkpoint in one transaction.

    With ``spawn_itens`` (contratações of a run with itens) the checkpoints of the page's
    compras' itens are created in that same transaction, so a resume knows every one of them.
    """
    spawned = []
    with transaction.atomic():
        result = ingester.ingest(
            cp.resource,
            message.data,
            source=f"{cp.key} p{message.page}",
            extra=message.extra,
            prepared_batch=message.prepared,
        )
        if spawn_itens:
            spawned = spawn_itens_checkpoints(run, result.keys)
        _advance_checkpoint(run, cp, message)
    return result, spawned


def _ingest_itens(run, ingester, cp: SyncCheckpoint, message: _PageMessage) -> IngestResult:
    """Store one compra's itens, then their resultados, and close its page, atomically."""
    compra = cp.params["compra"]
    source = f"{cp.key} p{message.page}"
    with transaction.atomic():
        contratacao_id = (
            Contratacao.objects.filter(numero_controle_pncp=compra)
            .values_list("id", flat=True)
            .first()
        )
        if contratacao_id is None:  # deleted since it was planned: nothing to attach them to
            message.data, message.extra, message.total_registros = [], {"resultados": []}, 0
        context = {"compra": compra, "contratacao_id": contratacao_id}
        result = ingester.ingest("itens", message.data, source=source, context=context)
        resultados = (message.extra or {}).get("resultados") or []
        if resultados:
            item_ids = dict(
                ItemContratacao.objects.filter(contratacao_id=contratacao_id).values_list(
                    "numero_item", "id"
                )
            )
            context = {"compra": compra, "item_ids": item_ids}
            result.add(ingester.ingest("resultados", resultados, source=source, context=context))
        _advance_checkpoint(run, cp, message)
    return result


def _advance_checkpoint(run, cp: SyncCheckpoint, message: _PageMessage) -> None:
    """Record a stored page on its checkpoint (call inside the page's transaction)."""
    if message.page == 1 or cp.next_page != message.page:
        # first page of a (re)started window: counts restart from here
        cp.fetched = (message.page - 1) * (message.page_size or cp.page_size)
    cp.fetched += len(message.data)
    cp.next_page = message.page + 1
    cp.page_size = message.page_size or cp.page_size
    cp.total_registros = message.total_registros
    cp.total_paginas = message.total_paginas
    cp.status = SyncCheckpoint.Status.RUNNING
    cp.save(
        update_fields=[
            "fetched",
            "next_page",
            "page_size",
            "total_registros",
            "total_paginas",
            "status",
            "updated_at",
        ]
    )
    beat(run)


HEARTBEAT_EVERY = 5.0  # seconds between heartbeats of a run (and renewals of its locks)
_last_beat: dict[int, float] = {}


def beat(run, *, force: bool = False) -> None:
    """Mark the run alive and renew its locks, at most every HEARTBEAT_EVERY seconds."""
    clock = time.monotonic()
    if not force and clock - _last_beat.get(run.pk, -HEARTBEAT_EVERY) < HEARTBEAT_EVERY:
        return
    _last_beat[run.pk] = clock
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=now)
    SyncLock.objects.filter(run=run).update(expires_at=now + LOCK_TTL)


def _finish_window(run, cp: SyncCheckpoint, message: _PageMessage, attempts, progress) -> bool:
    """Close a window; returns True when it should be fetched again."""
    attempts[cp.pk] = attempts.get(cp.pk, 0) + 1
    if message.error:
        cp.status = SyncCheckpoint.Status.FAILED
        cp.error = message.error
    else:
        if message.total_registros == 0 and message.data is None:
            cp.total_registros, cp.total_paginas = 0, 0
            if cp.next_page == 1:
                cp.fetched = 0
        if cp.total_registros is not None and cp.fetched >= cp.total_registros:
            cp.status = SyncCheckpoint.Status.DONE
            cp.error = ""
        else:
            cp.status = SyncCheckpoint.Status.INCOMPLETE
            cp.error = f"fetched {cp.fetched} records, PNCP announced {cp.total_registros}"
    redo = cp.status != SyncCheckpoint.Status.DONE and attempts[cp.pk] < WINDOW_ATTEMPTS
    if redo and cp.status == SyncCheckpoint.Status.INCOMPLETE:
        cp.next_page, cp.fetched = 1, 0
    cp.attempts += 1
    with transaction.atomic():  # the checkpoint and its coverage row: one commit, not three
        # No WAL flush wait, as for pages: a crash can only lose this window's closing,
        # and a resume then fetches the window again (idempotent).
        relax_commit()
        cp.save()
        if not redo:
            _record_coverage(run, cp)
    if not redo:
        if cp.status == SyncCheckpoint.Status.DONE:
            progress.windows_done += 1
        else:
            progress.windows_failed += 1
            progress.failures.append(f"{cp.key}: {cp.status}: {cp.error}")
    return redo


def _record_coverage(run, cp: SyncCheckpoint) -> None:
    if cp.window_start is None:
        return
    status = {
        SyncCheckpoint.Status.DONE: Coverage.Status.COMPLETE,
        SyncCheckpoint.Status.INCOMPLETE: Coverage.Status.PARTIAL,
    }.get(cp.status, Coverage.Status.FAILED)
    Coverage.objects.update_or_create(
        endpoint=cp.endpoint,
        day=cp.window_start,
        day_end=cp.window_end,
        modalidade=int(cp.params.get("codigoModalidadeContratacao") or 0),
        defaults={
            "resource": cp.resource,
            "total_registros": cp.total_registros,
            "fetched": cp.fetched,
            "status": status,
            "checked_at": timezone.now(),
            "run": run,
        },
    )


def add_counts(run: SyncRun, progress: Progress) -> None:
    """Add what this process did to the run's totals (F() updates: tasks run in parallel)."""
    SyncRun.objects.filter(pk=run.pk).update(
        pages=F("pages") + progress.pages,
        created=F("created") + progress.result.created,
        updated=F("updated") + progress.result.updated,
        unchanged=F("unchanged") + progress.result.unchanged,
        rejected=F("rejected") + progress.result.rejected,
        retries=F("retries") + progress.retries,
    )


def finish_run(run: SyncRun) -> SyncRun:
    """Status from the checkpoints, watermarks of fully done resources, locks released."""
    run.refresh_from_db()
    options = SyncOptions.from_params(run.params) if "resources" in run.params else None
    by_resource: dict[str, set] = {}
    for resource, status in run.checkpoints.values_list("resource", "status"):
        by_resource.setdefault(resource, set()).add(status)
    watermarks = dict(run.params.get("watermarks") or {})
    if options and (options.ate or options.incremental):
        ate = (options.ate or timezone.localdate()).isoformat()
        for resource, statuses in by_resource.items():
            if statuses == {SyncCheckpoint.Status.DONE}:
                watermarks[resource] = ate
    failures = [
        f"{key}: {status}: {error}"
        for key, status, error in run.checkpoints.exclude(
            status=SyncCheckpoint.Status.DONE
        ).values_list("key", "status", "error")[:500]
    ]
    run.params = {**run.params, "watermarks": watermarks}
    if not failures:
        run.status = SyncRun.Status.SUCCESS
    elif run.created + run.updated + run.unchanged:
        run.status = SyncRun.Status.PARTIAL
    else:
        run.status = SyncRun.Status.FAILED
    run.finished_at = timezone.now()
    run.errors = failures
    run.save(update_fields=["params", "status", "finished_at", "errors"])
    SyncLock.objects.filter(run=run).delete()
    metrics.sync_finished(*(r for r, s in by_resource.items() if s == {SyncCheckpoint.Status.DONE}))
    return run


def resume_run(run_id: int | None = None) -> SyncRun:
    runs = SyncRun.objects.exclude(status=SyncRun.Status.SUCCESS).exclude(
        mode__in=["from_dir", "dry_run"]
    )
    run = runs.get(pk=run_id) if run_id else runs.order_by("-created_at").first()
    if run is None:
        raise SyncInputError("there is no interrupted or failed run to resume")
    acquire_locks(run, run.resources)
    run.status = SyncRun.Status.RUNNING
    run.checkpoints.filter(status=SyncCheckpoint.Status.FAILED).update(
        status=SyncCheckpoint.Status.PENDING, attempts=0
    )
    run.checkpoints.filter(status=SyncCheckpoint.Status.INCOMPLETE).update(
        status=SyncCheckpoint.Status.PENDING, next_page=1, fetched=0, attempts=0
    )
    run.save(update_fields=["status"])
    return run


# --- offline import -------------------------------------------------------------------------


def writer_count() -> int:
    """How many connections an import writes through at once (``PNCP_WRITERS``).

    One inside an open transaction (the writes must be part of it, as in tests) and on
    SQLite (one writer at a time).
    """
    from django.db import connection

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, int(getattr(settings, "PNCP_WRITERS", 2)))


class BatchWriters:
    """Writes batches on ``count`` connections at once, each batch its own transaction.

    On 2 cores one writer leaves a core idle: while PostgreSQL works through a batch's COPY,
    indexes and COMMIT, the next batch's Python (row tuples, COPY formatting) waits. With two
    writers one batch's Python runs while the other's SQL does. Used by ``--from-dir``
    (batches of saved pages) and by HTTP syncs (one page per batch).

    - Each batch comes with its keys (records, and whatever else must not be written by two
      batches at once, e.g. a window's checkpoint); ``None`` means "conflicts with
      everything". A batch sharing a key with one still being written waits for it (and
      every batch before it), so a record met twice ends as the later batch has it, and a
      window's pages commit in order, as with one writer.
    - Results are accounted (``account(args, result)``) in the order the batches were
      submitted, by the submitting thread; ``wait_for(keys)`` accounts what conflicts with
      ``keys`` (before closing a window, say).
    - Each writing thread has its own ``Ingester`` (caches of órgãos, unidades and codes
      describe what its own connection has seen committed or written) and its own
      connection, closed when the pool closes. Rows both writers create (a new órgão, say)
      make one wait for the other's commit; they are inserted in sorted order, so the two
      never wait on each other.
    - A failed batch raises from ``submit``/``wait_for``/``drain`` in the submitting thread.

    With ``count`` 1 everything runs in the submitting thread, on its connection, with the
    ``Ingester`` given to ``submit``.
    """

    def __init__(self, count: int, run: SyncRun, write: Callable, account: Callable) -> None:
        self.count, self.run, self.write, self.account = count, run, write, account
        # Set False while batches come back unchanged: writing them is then mostly Python,
        # which two threads would only fight over (the GIL); one batch at a time is faster.
        self.parallel = True
        self.jobs: queue.Queue = queue.Queue()
        self.inflight: deque = deque()  # (future, keys or None, args) in submission order
        self.threads = [
            threading.Thread(target=self._loop, name=f"pncp-writer-{n}", daemon=True)
            for n in range(count if count > 1 else 0)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, ingester: Ingester, keys: set | None, *args) -> None:
        if not self.threads:
            self.account(args, self.write(ingester, *args))
            return
        limit = self.count if self.parallel else 1
        while self.inflight and (len(self.inflight) >= limit or self._conflicts(keys)):
            self._account_oldest()
        future: Future = Future()
        self.jobs.put((future, args))
        self.inflight.append((future, keys, args))

    def wait_for(self, keys: set | None) -> None:
        while self.inflight and self._conflicts(keys):
            self._account_oldest()

    def drain(self) -> None:
        while self.inflight:
            self._account_oldest()

    def close(self) -> None:
        """Stop the threads (after their current batch) and close their connections."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        self.threads = []

    def _conflicts(self, keys: set | None) -> bool:
        return any(
            keys is None or other is None or not keys.isdisjoint(other)
            for _, other, _ in self.inflight
        )

    def _account_oldest(self) -> None:
        future, _, args = self.inflight.popleft()
        self.account(args, future.result())

    def _loop(self) -> None:
        from django.db import connection

        writer = Ingester(self.run)
        try:
            while (job := self.jobs.get()) is not None:
                future, args = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(self.write(writer, *args))
                except BaseException as exc:  # handed to the submitting thread
                    future.set_exception(exc)
        finally:
            connection.close()


def import_from_dir(
    directory: Path,
    resources: Iterable[str],
    *,
    trigger: str = SyncRun.Trigger.CLI,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[SyncRun, Progress]:
    """Import saved pages: ``<dir>/<resource>/*.json``, each a PNCP page, a list or a record.

    The same path as a live sync after the HTTP client (prepare, ingest, a checkpoint per
    file), except that up to ``PNCP_FROM_DIR_PAGES_PER_COMMIT`` files share a transaction.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SyncInputError(f"--from-dir {directory} is not a directory")
    files = []
    for resource in resources:
        files += [(resource, f) for f in sorted((directory / resource).glob("**/*.json"))]
    if not files:
        raise SyncInputError(f"no saved pages under {directory}/<resource>/ for {list(resources)}")
    run = SyncRun.objects.create(
        resources=list(resources),
        mode="from_dir",
        params={"from_dir": str(directory)},
        trigger=trigger,
        status=SyncRun.Status.RUNNING,
        started_at=timezone.now(),
    )
    ingester = Ingester(run)
    progress = Progress(windows_total=len(files))
    # A reader thread reads, decodes, hashes and parses the next pages while this thread
    # waits on the database for the current one (pure Python on one side, I/O on the other).
    # Up to ``per_commit`` consecutive pages of one resource are ingested as one batch and
    # committed together with their checkpoints (one round of queries, one COPY, one COMMIT
    # instead of one per page). Saved pages are local files and a from-dir run is redone,
    # not resumed, so a kill costs nothing but re-reading them.
    per_commit = max(1, int(getattr(settings, "PNCP_FROM_DIR_PAGES_PER_COMMIT", 10)))
    pages: queue.Queue = queue.Queue(maxsize=per_commit + 4)
    # Parsing ahead pays off only for records that turn out new or changed: while the last
    # batch had some, the reader parses ahead; on a re-import of unchanged pages it stops and
    # the ingesting thread parses the odd changed record itself.
    ahead = {"parse": True}

    # Pages imported before are known by the hash of their bytes (``PageFingerprint``): the
    # reader then skips decoding them, and ``ingest`` compares their keys' stored hashes.
    fingerprints = connection.vendor == "postgresql" and getattr(
        settings, "PNCP_PAGE_FINGERPRINTS", True
    )

    def known(chunk: list[tuple]) -> dict:
        if not fingerprints:
            return {}
        try:
            return known_pages(digest for *_, digest in chunk if digest)
        except Exception:  # only an optimization: decode every page instead
            logger.warning("reading page fingerprints failed", exc_info=True)
            return {}

    def read(resource: str, path: Path) -> tuple:
        relative = str(path.relative_to(directory))
        try:
            body = path.read_bytes()
        except OSError as exc:
            return resource, relative, None, f"unreadable page: {exc}", None
        digest = page_digest(resource, body) if fingerprints else None
        return resource, relative, body, None, digest

    def reader() -> None:
        try:
            read_pages()
        finally:
            if fingerprints:
                connections.close_all()  # this thread's connection only

    def read_pages() -> None:
        for start in range(0, len(files), per_commit):
            chunk = [read(resource, path) for resource, path in files[start : start + per_commit]]
            seen = known(chunk)
            for resource, relative, body, error, digest in chunk:
                if error:
                    pages.put((resource, relative, None, None, error))
                    continue
                source = f"{relative} p1"
                hit = seen.get(digest)
                if hit is not None and hit[0] == resource:
                    _, total, entries = hit
                    batch = Prepared.known(resource, entries, body, source=source)
                    pages.put((resource, relative, len(entries), (batch, total), None))
                    continue
                try:
                    records, total = page_records(loads(body))
                except ValueError as exc:
                    pages.put((resource, relative, None, None, f"unreadable page: {exc}"))
                    continue
                try:
                    batch = ingester.prepare(resource, records, source=source, parse=ahead["parse"])
                except Exception as exc:  # a bug must fail the page, not hang the ingesting thread
                    logger.exception("preparing %s failed", relative)
                    pages.put(
                        (resource, relative, None, None, f"could not prepare the page: {exc}")
                    )
                    continue
                if (
                    digest
                    and not batch.rejects
                    and len(batch.records) == len(records)  # no key twice on the page
                    and (total is None or (type(total) is int and 0 <= total < 2**31))
                ):
                    batch.fingerprint = (digest, total)
                pages.put((resource, relative, len(records), (batch, total), None))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    pending: list[tuple] = []

    def checkpoint(resource: str, relative: str, **fields) -> SyncCheckpoint:
        return SyncCheckpoint(
            run=run,
            resource=resource,
            endpoint="from_dir",
            key=relative[:300],
            page_size=0,
            **fields,
        )

    def write(writer: Ingester, resource: str, merged: Prepared, batch: list[tuple]):
        with transaction.atomic():  # the pages and their checkpoints, one commit
            result = writer.ingest(resource, prepared_batch=merged)
            record_fingerprints(page for _, _, _, page, _ in batch)
            SyncCheckpoint.objects.bulk_create(
                [
                    checkpoint(
                        resource,
                        relative,
                        status=SyncCheckpoint.Status.DONE,
                        next_page=2,
                        fetched=count,
                        total_registros=total,
                    )
                    for _, relative, count, _, total in batch
                ]
            )
        return result

    def account(args: tuple, result: IngestResult) -> None:
        batch = args[2]
        beat(run)
        progress.pages += len(batch)
        progress.windows_done += len(batch)
        progress.result.add(result)
        ahead["parse"] = writers.parallel = result.created + result.updated > 0
        if on_progress:
            on_progress(progress)

    writers = BatchWriters(writer_count(), run, write, account)

    def flush() -> None:
        if not pending:
            return
        merged = Prepared.merge([batch for _, _, _, batch, _ in pending])
        writers.submit(ingester, set(merged.records), pending[0][0], merged, list(pending))
        pending.clear()

    try:
        for _ in files:
            resource, relative, count, ready, error = pages.get()
            if error:
                flush()
                checkpoint(
                    resource, relative, status=SyncCheckpoint.Status.FAILED, error=error
                ).save()
                progress.windows_failed += 1
                progress.failures.append(f"{relative}: {error}")
                continue
            batch, total = ready
            if pending and (pending[0][0] != resource or len(pending) >= per_commit):
                flush()
            pending.append((resource, relative, count, batch, total))
        flush()
        writers.drain()
    finally:
        writers.close()
    thread.join()
    add_counts(run, progress)
    finish_run(run)
    run.refresh_from_db()
    return run, progress
