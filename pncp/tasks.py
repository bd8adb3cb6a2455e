"""Celery tasks: thin wrappers around pncp.sync, fanned out one task per window.

``sync_start`` plans a run (taking the resources' locks: a second run of a resource exits at
once saying why), then a chord runs ``sync_window`` for every window and ``sync_finish``
closes the run. Every task is idempotent: a redelivered ``sync_window`` (worker killed, task
acknowledged late) resumes its window from the checkpoint, and the ingest's upsert makes the
redone page harmless. With ``itens=True`` a window's task also fetches the itens of the
contratações it stores (their checkpoints are created with the page).

``contract_check`` (daily, before the syncs) probes PNCP's page limits and payload shapes and
stores a ContractCheck row; drift is logged as a warning.
"""

from __future__ import annotations

import logging
from datetime import date

from celery import chord, shared_task
from django.contrib.auth import get_user_model

from pncp.models import SyncCheckpoint, SyncRun
from pncp.resources import RESOURCES
from pncp.sync import (
    ITENS_RESOURCE,
    SyncLockedError,
    SyncOptions,
    execute_run,
    finish_run,
    start_run,
)

logger = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


def options_from_kwargs(
    resources: list[str],
    *,
    incremental: bool = False,
    desde: str | None = None,
    ate: str | None = None,
    endpoint: str | None = None,
    modalidades: list[int] | None = None,
    concurrency: int = 1,
    itens: bool = False,
) -> SyncOptions:
    resources = list(resources)
    if itens and ITENS_RESOURCE not in resources:
        resources.append(ITENS_RESOURCE)
    return SyncOptions(
        resources=resources,
        incremental=incremental,
        desde=date.fromisoformat(desde) if desde else None,
        ate=date.fromisoformat(ate) if ate else None,
        endpoint=endpoint,
        modalidades=modalidades,
        concurrency=concurrency,
    )


@shared_task(name="pncp.sync_start", **TASK_OPTIONS)
def sync_start(
    resources: list[str] | str,
    *,
    trigger: str = SyncRun.Trigger.BEAT,
    user_id: int | None = None,
    **options,
) -> dict:
    """Plan a run and fan it out; returns the run id (or why nothing was started)."""
    if resources == "all":
        resources = list(RESOURCES)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        run = start_run(options_from_kwargs(resources, **options), trigger=trigger, user=user)
    except SyncLockedError as exc:
        logger.warning("sync not started: %s", exc)
        return {"status": "skipped", "reason": str(exc)}
    fan_out(run)
    return {"status": "started", "run": run.pk}


def fan_out(run: SyncRun):
    windows = list(
        run.checkpoints.exclude(status=SyncCheckpoint.Status.DONE).values_list("pk", flat=True)
    )
    if not windows:
        return sync_finish.delay(None, run.pk)
    return chord(sync_window.s(run.pk, pk) for pk in windows)(sync_finish.s(run.pk))


@shared_task(name="pncp.sync_window", **TASK_OPTIONS)
def sync_window(run_id: int, checkpoint_id: int) -> dict:
    run = SyncRun.objects.get(pk=run_id)
    progress = execute_run(run, checkpoint_ids=[checkpoint_id], finish=False)
    return {"checkpoint": checkpoint_id, "records": progress.records, "pages": progress.pages}


@shared_task(name="pncp.sync_finish", **TASK_OPTIONS)
def sync_finish(results, run_id: int) -> dict:
    run = finish_run(SyncRun.objects.get(pk=run_id))
    return {"run": run.pk, "status": run.status}


@shared_task(name="pncp.sync_incremental", **TASK_OPTIONS)
def sync_incremental(resource: str) -> dict:
    """Beat's daily job: everything of ``resource`` changed since its last watermark."""
    return sync_start([resource], incremental=True, trigger=SyncRun.Trigger.BEAT)


@shared_task(name="pncp.sync_propostas", **TASK_OPTIONS)
def sync_propostas() -> dict:
    """Beat's half-hourly job: contratações whose proposal period is open."""
    return sync_start(
        ["contratacoes"], endpoint="contratacoes.proposta", trigger=SyncRun.Trigger.BEAT
    )


@shared_task(name="pncp.contract_check", **TASK_OPTIONS)
def contract_check() -> dict:
    """Beat's daily job: PNCP's page limits and payload shapes against what we expect."""
    from pncp.contract_check import run_contract_check

    check = run_contract_check(trigger="beat")
    drift = [f for f in check.findings if f["drift"]]
    if drift:
        logger.warning(
            "PNCP contract check #%s found drift: %s",
            check.pk,
            "; ".join(f"{f['endpoint']} {f['check']}: {f['observed']}" for f in drift[:10]),
        )
    return {"check": check.pk, "status": check.status, "drift": len(drift)}
