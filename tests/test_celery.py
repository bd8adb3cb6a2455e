"""Celery: beat schedules, tasks through a real worker against Redis, locks, redelivery."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from config.celery import app
from pncp.models import Contrato, SyncLock, SyncRun
from pncp.sync import SyncLockedError, SyncOptions, execute_run, start_run
from tests.conftest import make_client
from tests.fakes.fake_pncp import FakeDataset, FakePNCP, FaultConfig

ROOT = Path(__file__).resolve().parent.parent
BROKER = "redis://127.0.0.1:6379/13"
QUEUE = f"pncp-test-{uuid.uuid4().hex[:8]}"
WORKER_LOG = Path(os.environ.get("CELERY_TEST_WORKER_LOG", "/tmp/pncp-test-worker.log"))
START, END = date(2025, 7, 1), date(2025, 7, 10)


@pytest.mark.django_db
def test_beat_schedules_exist_after_migrate_and_point_at_real_tasks():
    from django_celery_beat.models import PeriodicTask

    app.loader.import_default_modules()
    tasks = {t.name: t for t in PeriodicTask.objects.filter(name__startswith="pncp: ")}
    assert {t.task for t in tasks.values()} == {"pncp.sync_incremental", "pncp.sync_propostas"}
    for task in tasks.values():
        assert task.task in app.tasks, f"{task.name} points at unknown task {task.task}"
        assert task.enabled
    daily = [t for t in tasks.values() if t.task == "pncp.sync_incremental"]
    assert sorted(t.kwargs for t in daily) == sorted(
        f'{{"resource": "{r}"}}' for r in ("pca", "contratacoes", "atas", "contratos")
    )
    [propostas] = [t for t in tasks.values() if t.task == "pncp.sync_propostas"]
    assert (propostas.interval.every, propostas.interval.period) == (30, "minutes")


def test_celery_settings_for_safe_redelivery(settings):
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > settings.CELERY_TASK_TIME_LIMIT
    for name in ("pncp.sync_window", "pncp.sync_start", "pncp.sync_finish"):
        app.loader.import_default_modules()
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost


@pytest.mark.django_db
def test_second_overlapping_run_exits_at_once_and_writes_nothing():
    options = SyncOptions(resources=["contratos", "atas"], desde=START, ate=END)
    first = start_run(options, trigger=SyncRun.Trigger.TEST)
    with pytest.raises(SyncLockedError, match=f"already being synced by run #{first.pk}"):
        start_run(SyncOptions(resources=["atas"], desde=START, ate=END))
    with pytest.raises(CommandError, match="already being synced"):
        call_command("sync_pncp", "contratos", "--desde", "2025-07-01", "--ate", "2025-07-02")
    assert SyncRun.objects.count() == 1
    assert set(SyncLock.objects.values_list("resource", flat=True)) == {"contratos", "atas"}

    from pncp.tasks import sync_start

    assert sync_start.run(["contratos"], desde="2025-07-01", ate="2025-07-02")["status"] == (
        "skipped"
    )
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_lock_is_released_at_the_end_and_an_expired_lock_is_taken_over():
    ds = FakeDataset.generate(contratos=50, start=START, days=3, seed=1)
    with FakePNCP(ds) as fake:
        run = start_run(SyncOptions(resources=["contratos"], desde=START, ate=START))
        execute_run(run, client=make_client(fake.base_url))
    assert not SyncLock.objects.exists()
    stuck = start_run(SyncOptions(resources=["contratos"], desde=START, ate=START))
    SyncLock.objects.filter(run=stuck).update(expires_at="2000-01-01T00:00:00Z")
    second = start_run(SyncOptions(resources=["contratos"], desde=START, ate=START))
    assert SyncLock.objects.get(resource="contratos").run_id == second.pk


def worker_env(fake_url: str, visibility: int = 3600) -> dict:
    s = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/"
        f"{s['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "CELERY_RESULT_BACKEND": BROKER,
        "PNCP_BASE_URL": fake_url,
        "PNCP_REQUESTS_PER_SECOND": "0",
        "CELERY_VISIBILITY_TIMEOUT": str(visibility),
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "CELERY_BROKER_TRANSPORT_OPTIONS_JSON": json.dumps(
            {"unacked_restore_interval": 1, "unacked_restore_throttle": 1}
        ),
    }
    env.pop("REDIS_URL", None)
    return env


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
            "-Q",
            QUEUE,
            "-n",
            f"{QUEUE}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=WORKER_LOG.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for_run(timeout: float = 90, after: int = 0) -> SyncRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.filter(pk__gt=after).order_by("-pk").first()
        if run and run.status in (
            SyncRun.Status.SUCCESS,
            SyncRun.Status.PARTIAL,
            SyncRun.Status.FAILED,
        ):
            return run
        time.sleep(0.2)
    raise AssertionError("the worker did not finish the run in time")


@pytest.fixture
def celery_broker():
    if connection.vendor != "postgresql":
        pytest.skip("worker tests need PostgreSQL")
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running")
    client.flushdb()
    old = (app.conf.broker_url, app.conf.result_backend)
    app.conf.broker_url = app.conf.result_backend = BROKER
    # A queue of our own, so no stray worker (another test run) can steal our tasks.
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = QUEUE
    reset_connections()
    yield client
    app.conf.task_default_queue = old_queue
    app.conf.broker_url, app.conf.result_backend = old
    reset_connections()
    client.flushdb()


def reset_connections():
    """Drop the app's cached broker/backend connections so a changed URL takes effect."""
    app._pool = None  # not closed: kombu's global pool registry may still hand it out
    app.amqp._producer_pool = None
    app.__dict__.pop("backend", None)
    app._local.__dict__.pop("backend", None)


def stored_contratos():
    return dict(Contrato.objects.values_list("numero_controle_pncp", "content_hash"))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_task_through_a_real_worker_lands_the_same_records_as_the_command(celery_broker):
    from pncp.tasks import sync_start

    ds = FakeDataset.generate(contratos=800, start=START, days=10, seed=3)
    with FakePNCP(ds) as fake:
        env = worker_env(fake.base_url)
        by_command = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "sync_pncp",
                "contratos",
                "--desde",
                str(START),
                "--ate",
                str(END),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert by_command.returncode == 0, by_command.stderr
        expected = stored_contratos()
        command_run = SyncRun.objects.get().pk
        Contrato.objects.all().delete()
        worker = start_worker(env)
        try:
            sync_start.delay(["contratos"], desde=str(START), ate=str(END), trigger="api")
            run = wait_for_run(after=command_run)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert run.trigger == "api"
    assert stored_contratos() == expected
    assert len(expected) == len(ds.keys("contratos"))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_killed_mid_task_is_redelivered_and_ends_like_an_uninterrupted_run(
    celery_broker,
):
    from pncp.tasks import sync_start

    ds = FakeDataset.generate(contratos=3000, start=START, days=2, seed=5)
    faults = FaultConfig(seed=2, rate_slow=1.0, slow_seconds=0.3)
    with FakePNCP(ds, faults=faults, page_limits={"/v1/contratos": 100}) as fake:
        env = worker_env(fake.base_url, visibility=3)
        worker = start_worker(env)
        sync_start.delay(["contratos"], desde=str(START), ate=str(START + (END - END)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Contrato.objects.count() < 300:
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        killed_at = Contrato.objects.count()
        fake.faults = FaultConfig()
        worker = start_worker(env)
        try:
            run = wait_for_run(timeout=120)
        finally:
            worker.terminate()
            worker.wait(timeout=20)
    expected = {
        r["numeroControlePNCP"]
        for r in ds.records("contratos")
        if r["dataPublicacaoPncp"][:10] == str(START)
    }
    assert 0 < killed_at < len(expected), "the kill did not land mid-task"
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert set(stored_contratos()) == expected
