"""End-to-end: sync_pncp against the project's fake PNCP server, faults included."""

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from pncp.ingest import SPECS
from pncp.models import (
    AtaRegistroPreco,
    Contratacao,
    Contrato,
    Coverage,
    ItemPCA,
    PlanoContratacao,
    RecordVersion,
    SyncCheckpoint,
    SyncRun,
)
from pncp.sync import SyncOptions, execute_run, resume_run, start_run
from tests.conftest import make_client
from tests.fakes.fake_pncp import FakeDataset, FakePNCP, FaultConfig

START = date(2025, 7, 1)
END = date(2025, 7, 20)
MODELS = {
    "contratacoes": Contratacao,
    "contratos": Contrato,
    "atas": AtaRegistroPreco,
    "pca": PlanoContratacao,
}
ROOT = Path(__file__).resolve().parent.parent


def dataset(scale=1, seed=7):
    return FakeDataset.generate(
        contratacoes=1200 * scale,
        contratos=1500 * scale,
        atas=600 * scale,
        pcas=40 * scale,
        start=START,
        days=10,
        seed=seed,
    )


def mirror_matches(ds: FakeDataset):
    """The mirror holds exactly the fake's records, payload for payload."""
    for resource, model in MODELS.items():
        key_field = SPECS[resource].key_field
        ours = dict(model.objects.values_list(key_field, "raw"))
        theirs = {k: ds.get(resource, k) for k in ds.keys(resource)}
        assert set(ours) == set(theirs), f"{resource}: key sets differ"
        different = [k for k in theirs if ours[k] != theirs[k]]
        assert not different, f"{resource}: {len(different)} payloads differ, e.g. {different[0]}"
    expected_itens = sum(len(p["itens"]) for p in ds.records("pca"))
    assert ItemPCA.objects.count() == expected_itens


def sync(base_url, **option_overrides):
    options = SyncOptions(
        resources=["pca", "contratacoes", "atas", "contratos"],
        desde=START,
        ate=END,
        concurrency=4,
    )
    for name, value in option_overrides.items():
        setattr(options, name, value)
    run = start_run(options, trigger=SyncRun.Trigger.TEST)
    progress = execute_run(run, client=make_client(base_url))
    run.refresh_from_db()
    return run, progress


@pytest.mark.e2e
@pytest.mark.django_db
def test_sync_with_injected_faults_ends_with_exactly_the_fake_records():
    ds = dataset()
    faults = FaultConfig(
        seed=3,
        rate_429=0.05,
        rate_5xx=0.06,
        rate_422_spurious=0.02,
        rate_truncated=0.03,
        rate_timeout=0.01,
        hang_seconds=1.5,
    )
    with FakePNCP(ds, faults=faults) as fake:
        run, progress = sync(fake.base_url)
        faulted = [r for r in fake.requests() if r.fault]
    total = len(fake.requests())
    assert 0.10 <= len(faulted) / total <= 0.20, f"{len(faulted)} faults in {total} requests"
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert progress.retries >= len(faulted) * 0.9
    mirror_matches(ds)
    assert sum(ds.counts().values()) >= 3000
    # every window is done and the coverage map says complete, with PNCP's totals
    assert not run.checkpoints.exclude(status=SyncCheckpoint.Status.DONE).exists()
    assert Coverage.objects.exclude(status=Coverage.Status.COMPLETE).count() == 0
    day = Coverage.objects.get(endpoint="contratos.publicacao", day=START)
    published = [r for r in ds.records("contratos") if r["dataPublicacaoPncp"][:10] == "2025-07-01"]
    assert day.total_registros == day.fetched == len(published)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sync_through_two_writers_with_faults_ends_with_exactly_the_fake_records(
    settings, monkeypatch
):
    """Outside a test transaction pages are written through PNCP_WRITERS connections at
    once (pages of different windows in parallel, a window's pages in order): with faults,
    the mirror still ends exactly as the fake, and a second sync changes nothing."""
    import threading

    from pncp.ingest import Ingester

    settings.PNCP_WRITERS = 2
    names = set()
    ingest = Ingester.ingest

    def spying_ingest(self, *args, **kwargs):
        names.add(threading.current_thread().name)
        return ingest(self, *args, **kwargs)

    monkeypatch.setattr(Ingester, "ingest", spying_ingest)
    ds = dataset()
    faults = FaultConfig(seed=5, rate_429=0.04, rate_5xx=0.06, rate_truncated=0.03)
    with FakePNCP(ds, faults=faults) as fake:
        run, progress = sync(fake.base_url)
        assert run.status == SyncRun.Status.SUCCESS, run.errors
        mirror_matches(ds)
        assert {"pncp-writer-0", "pncp-writer-1"} <= names
        assert progress.result.created == sum(ds.counts().values())
        # the same sync again: nothing created, nothing updated, no history
        run, progress = sync(fake.base_url)
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert (progress.result.created, progress.result.updated) == (0, 0)
    assert RecordVersion.objects.count() == 0
    assert not run.checkpoints.exclude(status=SyncCheckpoint.Status.DONE).exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("pncp-writer")]


@pytest.mark.e2e
@pytest.mark.django_db
def test_second_identical_sync_creates_and_updates_nothing():
    ds = dataset(seed=11)
    with FakePNCP(ds) as fake:
        first, _ = sync(fake.base_url)
        versions = RecordVersion.objects.count()
        second, _ = sync(fake.base_url)
    assert first.created == sum(ds.counts().values())
    assert (second.created, second.updated) == (0, 0)
    assert second.unchanged == first.created
    assert RecordVersion.objects.count() == versions == 0
    mirror_matches(ds)


@pytest.mark.e2e
@pytest.mark.django_db
def test_changed_record_yields_exactly_one_history_row_with_old_payload():
    ds = dataset(seed=5)
    with FakePNCP(ds) as fake:
        sync(fake.base_url, resources=["contratos"])
        key = ds.keys("contratos")[0]
        old = dict(ds.get("contratos", key))
        ds.update("contratos", key, objetoContrato="OBJETO ALTERADO")
        run, _ = sync(fake.base_url, resources=["contratos"])
    assert (run.created, run.updated) == (0, 1)
    [version] = RecordVersion.objects.all()
    assert (version.resource, version.natural_key) == ("contratos", key)
    assert version.payload == old
    assert Contrato.objects.get(numero_controle_pncp=key).objeto_contrato == "OBJETO ALTERADO"


@pytest.mark.e2e
@pytest.mark.django_db
def test_contratacao_arriving_after_its_contratos_gets_linked():
    ds = dataset(seed=9)
    with FakePNCP(ds) as fake:
        sync(fake.base_url, resources=["contratos", "atas"])
        assert not Contrato.objects.filter(contratacao__isnull=False).exists()
        sync(fake.base_url, resources=["contratacoes"])
    known = set(ds.keys("contratacoes"))
    linked = Contrato.objects.filter(numero_controle_pncp_compra__in=known)
    assert linked.exists()
    assert not linked.filter(contratacao__isnull=True).exists()
    for contrato in linked.select_related("contratacao")[:50]:
        assert contrato.contratacao.numero_controle_pncp == contrato.numero_controle_pncp_compra
    atas = AtaRegistroPreco.objects.filter(numero_controle_pncp_compra__in=known)
    assert atas.exists() and not atas.filter(contratacao__isnull=True).exists()


@pytest.mark.e2e
@pytest.mark.django_db
def test_page_size_shrinks_when_pncp_lowers_its_limit():
    ds = dataset(seed=2)
    with FakePNCP(ds, page_limits={"/v1/contratos": 100}) as fake:
        run, _ = sync(fake.base_url, resources=["contratos"])
        sizes = {r.params.get("tamanhoPagina") for r in fake.requests(status=200)}
    assert run.status == SyncRun.Status.SUCCESS
    assert sizes == {"100"}
    mirror_matches_resource(ds, "contratos")


def mirror_matches_resource(ds, resource):
    model = MODELS[resource]
    ours = set(model.objects.values_list(SPECS[resource].key_field, flat=True))
    assert ours == set(ds.keys(resource))


@pytest.mark.e2e
@pytest.mark.django_db
def test_window_that_never_matches_total_is_reported_incomplete_not_done():
    ds = dataset(seed=4)
    with FakePNCP(ds) as fake:
        fake.fail_always["/v1/atas"] = 503
        run, _ = sync(fake.base_url, resources=["atas", "contratos"])
    assert run.status == SyncRun.Status.PARTIAL
    failed = run.checkpoints.get(endpoint="atas.vigencia")
    assert failed.status == SyncCheckpoint.Status.FAILED
    assert "atas" in " ".join(run.errors)
    assert Coverage.objects.get(endpoint="atas.vigencia").status == Coverage.Status.FAILED
    mirror_matches_resource(ds, "contratos")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_killed_mid_run_then_resume_equals_uninterrupted_run(tmp_path):
    ds = dataset(seed=21)
    faults = FaultConfig(seed=1, rate_slow=1.0, slow_seconds=0.02)
    with FakePNCP(ds, faults=faults) as fake:
        env = {
            **os.environ,
            "PNCP_BASE_URL": fake.base_url,
            "PNCP_REQUESTS_PER_SECOND": "0",
            "DATABASE_URL": database_url(),
        }
        env.pop("REDIS_URL", None)
        env.pop("PNCP_RATE_LIMIT_REDIS_URL", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "sync_pncp",
                "contratos",
                "atas",
                "--desde",
                str(START),
                "--ate",
                str(END),
                "--concurrency",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done_pages = (
                sum(SyncCheckpoint.objects.values_list("next_page", flat=True))
                - SyncCheckpoint.objects.count()
            )
            if done_pages >= 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert Contrato.objects.count() < len(ds.keys("contratos")), "killed too late"
        before_resume = {r.key for r in fake.requests(status=200)}
        fake.reset_log()
        run = resume_run()
        execute_run(run, client=make_client(fake.base_url))
        redone = [r for r in fake.requests(status=200) if r.key in before_resume]
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert len(redone) <= 1, f"resume fetched {len(redone)} pages again"
    mirror_matches_resource(ds, "contratos")
    mirror_matches_resource(ds, "atas")
    assert RecordVersion.objects.count() == 0


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("the kill/resume test needs PostgreSQL")
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["contrtos", "--desde", "2025-07-01"], "unknown resource contrtos"),
        (["contratos", "--desde", "2025-07-10", "--ate", "2025-07-01"], "is after --ate"),
        (["contratos", "--desde", "2025-07-01", "--cnpj", "123"], "malformed CNPJ"),
        (["contratos", "--desde", "2025-07-01", "--cnpj", "00394429000101"], "check digits"),
        (["contratos", "--desde", "01/07/2025"], "not a date as YYYY-MM-DD"),
        (["contratos"], "give --desde"),
        ([], "name the resources"),
    ],
)
def test_bad_input_exits_non_zero_with_clear_message_and_touches_nothing(args, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("sync_pncp", *args)
    assert SyncRun.objects.count() == 0
    assert SyncCheckpoint.objects.count() == 0


def test_bad_input_exit_status_from_the_shell():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "sync_pncp",
            "contratos",
            "--desde",
            "2025-07-10",
            "--ate",
            "2025-07-01",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", "")},
    )
    assert result.returncode != 0
    assert "is after --ate" in result.stderr


@pytest.mark.e2e
@pytest.mark.django_db
def test_incremental_uses_atualizacao_from_the_watermark_with_overlap(settings):
    settings.PNCP_INCREMENTAL_OVERLAP_DAYS = 2
    ds = dataset(seed=13)
    with FakePNCP(ds) as fake:
        run = start_run(
            SyncOptions(resources=["contratos"], desde=START, ate=date(2025, 7, 25)),
            trigger=SyncRun.Trigger.TEST,
        )
        execute_run(run, client=make_client(fake.base_url))
        key = ds.keys("contratos")[5]
        ds.update("contratos", key, objetoContrato="MUDOU", at=datetime(2025, 7, 26, 10, 0))
        fake.reset_log()
        options = SyncOptions(resources=["contratos"], incremental=True, ate=date(2025, 7, 27))
        inc = start_run(options, trigger=SyncRun.Trigger.TEST)
        execute_run(inc, client=make_client(fake.base_url))
        paths = {r.path for r in fake.requests()}
        first_days = sorted(r.params["dataInicial"] for r in fake.requests())
    inc.refresh_from_db()
    assert paths == {"/v1/contratos/atualizacao"}
    assert first_days[0] == "20250723"  # watermark 07-25 minus 2 days of overlap
    assert inc.mode == "incremental" and inc.updated == 1
    assert Contrato.objects.get(numero_controle_pncp=key).objeto_contrato == "MUDOU"
    assert inc.params["watermarks"]["contratos"] == "2025-07-27"


@pytest.mark.e2e
@pytest.mark.django_db
def test_save_dir_pages_replay_offline_to_the_same_state(tmp_path):
    ds = dataset(seed=17)
    with FakePNCP(ds) as fake:
        sync(fake.base_url, resources=["contratos", "pca"], save_dir=tmp_path)
    saved = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.glob("*/*.json"))
    assert set(saved) == {"contratos", "pca"}
    before = dict(Contrato.objects.values_list("numero_controle_pncp", "content_hash"))
    Contrato.objects.all().delete()
    ItemPCA.objects.all().delete()
    PlanoContratacao.objects.all().delete()
    call_command("sync_pncp", "contratos", "pca", from_dir=str(tmp_path))
    assert dict(Contrato.objects.values_list("numero_controle_pncp", "content_hash")) == before
    mirror_matches_resource(ds, "pca")


@pytest.mark.e2e
@pytest.mark.django_db
def test_pca_by_usuario_records_the_id_usuario_from_the_query():
    ds = dataset(seed=19)
    plano = ds.records("pca")[0]
    id_usuario = ds.id_usuario("pca", plano["idPcaPncp"])
    with FakePNCP(ds) as fake:
        options = SyncOptions(
            resources=["pca"], required={"anoPca": plano["anoPca"], "idUsuario": id_usuario}
        )
        run = start_run(options, trigger=SyncRun.Trigger.TEST)
        execute_run(run, client=make_client(fake.base_url))
        [request] = fake.requests(path="/v1/pca/usuario")
    assert request.params["idUsuario"] == str(id_usuario)
    stored = PlanoContratacao.objects.get(id_pca_pncp=plano["idPcaPncp"])
    assert stored.id_usuario == id_usuario
    expected = {
        p["idPcaPncp"]
        for p in ds.records("pca")
        if ds.id_usuario("pca", p["idPcaPncp"]) == id_usuario and p["anoPca"] == plano["anoPca"]
    }
    assert set(PlanoContratacao.objects.values_list("id_pca_pncp", flat=True)) == expected


@pytest.mark.e2e
@pytest.mark.django_db
def test_proposta_endpoint_imports_open_contratacoes():
    ds = dataset(seed=23)
    today = date(2025, 7, 5)
    with FakePNCP(ds, today=today) as fake:
        options = SyncOptions(
            resources=["contratacoes"],
            endpoint="contratacoes.proposta",
            ate=date(2025, 12, 31),
            modalidades=[6, 8],
        )
        run = start_run(options, trigger=SyncRun.Trigger.TEST)
        run.checkpoints.update(window_start=today)
        execute_run(run, client=make_client(fake.base_url))
        params = [r.params for r in fake.requests(prefix="/v1/contratacoes/proposta")]
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCESS, run.errors
    assert {p["codigoModalidadeContratacao"] for p in params} == {"6", "8"}
    assert all("dataInicial" not in p and p["dataFinal"] == "20251231" for p in params)
    expected = {
        r["numeroControlePNCP"]
        for r in ds.records("contratacoes")
        if r["modalidadeId"] in (6, 8)
        and r.get("dataEncerramentoProposta")
        and "2025-07-05" <= r["dataEncerramentoProposta"][:10] <= "2025-12-31"
    }
    assert expected
    assert set(Contratacao.objects.values_list("numero_controle_pncp", flat=True)) == expected
