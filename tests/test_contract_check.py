"""The PNCP contract check against the fake PNCP: page limits and payload shapes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from pncp.contract_check import compare_shape, run_contract_check
from pncp.models import ContractCheck
from pncp.resources import ENDPOINTS
from tests.conftest import make_client, sample_records
from tests.fakes.fake_pncp import FakeDataset, FakePNCP

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]
PAGED = sorted(name for name, spec in ENDPOINTS.items() if not spec.unpaged)


@pytest.fixture(scope="module")
def recent():
    """Records published and updated around yesterday, the day the probes ask for."""
    yesterday = timezone.localdate() - timedelta(days=1)
    return FakeDataset.generate(
        contratacoes=260, contratos=60, atas=40, pcas=20, start=yesterday, days=1, seed=12
    )


def check(fake, **kwargs) -> ContractCheck:
    return run_contract_check(client=make_client(fake.base_url), **kwargs)


def findings(result: ContractCheck, **match) -> list[dict]:
    return [f for f in result.findings if all(f[k] == v for k, v in match.items())]


def test_no_drift_when_pncp_answers_as_expected(recent):
    with FakePNCP(recent) as fake:
        result = check(fake)
    assert result.status == ContractCheck.Status.OK, [f for f in result.findings if f["drift"]]
    assert result.endpoints == len(PAGED)
    assert result.window == timezone.localdate() - timedelta(days=1)
    limits = {f["endpoint"] for f in findings(result, check="page_limit", drift=False)}
    shapes = {f["endpoint"] for f in findings(result, check="shape")}
    # the PCA queries by usuário / classificação need a stored idUsuario / classificação
    skipped = {f["endpoint"] for f in findings(result, check="skipped")}
    assert skipped == {"pca.usuario", "pca.classificacao"}
    assert limits == set(PAGED) - skipped
    assert {"contratacoes.publicacao", "contratos.publicacao", "atas.vigencia"} <= shapes
    assert not findings(result, drift=True) and not findings(result, error=True)


def test_lowered_and_raised_page_limits_are_drift(recent):
    with FakePNCP(recent, page_limits={"/v1/contratos": 100, "/v1/atas": 1000}) as fake:
        result = check(fake, endpoints=["contratos.publicacao", "atas.vigencia", "pca.atualizacao"])
    assert result.status == ContractCheck.Status.DRIFT
    [lowered] = findings(result, endpoint="contratos.publicacao", check="page_limit")
    assert lowered["drift"] and "refused" in lowered["observed"]
    assert "at most 100" in lowered["observed"]
    [raised] = findings(result, endpoint="atas.vigencia", check="page_limit")
    assert raised["drift"] and raised["observed"].startswith("accepted")
    [same] = findings(result, endpoint="pca.atualizacao", check="page_limit")
    assert not same["drift"]


def test_silent_page_size_refusal_is_recognised(recent):
    limits = {"/v1/contratacoes/publicacao": 20}
    with FakePNCP(recent, page_limits=limits, silent_page_size_400=True) as fake:
        result = check(fake, endpoints=["contratacoes.publicacao"])
    [lowered] = findings(result, check="page_limit")
    assert lowered["drift"] and "refused" in lowered["observed"]


def test_new_and_missing_fields_are_drift(recent):
    with FakePNCP(recent) as fake:
        fake.add_field("contratos", "valorTotalAditivado", 123.45)
        fake.add_field("contratacoes", "orgaoEntidade.codigoNaturezaJuridica", "1031")
        fake.remove_field("contratos", "valorGlobal")
        fake.remove_field("atas", "numeroControlePNCPAta")
        result = check(
            fake, endpoints=["contratos.publicacao", "contratacoes.publicacao", "atas.vigencia"]
        )
    assert result.status == ContractCheck.Status.DRIFT
    new = {(f["endpoint"], f["observed"].split()[0]) for f in findings(result, check="new_field")}
    assert new == {
        ("contratos.publicacao", "valorTotalAditivado"),
        ("contratacoes.publicacao", "orgaoEntidade.codigoNaturezaJuridica"),
    }
    missing = {
        (f["endpoint"], f["expected"].split()[0]) for f in findings(result, check="missing_field")
    }
    assert missing == {
        ("contratos.publicacao", "valorGlobal"),
        ("atas.vigencia", "numeroControlePNCPAta"),
    }
    # an ata without its key could not be stored: the check says so before a sync tries
    [quarantine] = findings(result, endpoint="atas.vigencia", check="parse_error")
    assert "would be quarantined" in quarantine["observed"]
    assert not findings(result, endpoint="contratos.publicacao", check="parse_error")


def test_shape_of_real_samples_has_no_drift():
    for resource, names in {
        "contratacoes": ["contratacao_1.json", "contratacao_3.json"],
        "contratos": ["contrato_2.json", "contratos_publicacao_page.json"],
        "atas": ["ata_1.json"],
        "pca": ["pca_1.json"],
    }.items():
        new, missing, errors = compare_shape(resource, sample_records(*names))
        assert (new, missing, errors) == (set(), set(), {}), resource


def test_command_prints_the_table_stores_a_report_and_exits_non_zero_on_drift(
    recent, settings, capsys
):
    settings.PNCP_REQUESTS_PER_SECOND = 0
    settings.PNCP_RATE_LIMIT_REDIS_URL = ""
    settings.REDIS_URL = ""
    with FakePNCP(recent) as fake:
        settings.PNCP_BASE_URL = fake.base_url
        call_command("sync_pncp", "check")
        out = capsys.readouterr().out
        assert "endpoint" in out and "contratos.publicacao" in out and ": ok;" in out
        fake.remove_field("contratos", "objetoContrato")
        with pytest.raises(CommandError, match="PNCP drifted") as raised:
            call_command("sync_pncp", "check")
        out = capsys.readouterr().out
    assert raised.value.returncode == 1
    assert "DRIFT" in out and "objetoContrato" in out
    assert list(ContractCheck.objects.order_by("pk").values_list("status", flat=True)) == [
        "ok",
        "drift",
    ]


def test_beat_task_is_scheduled_daily_and_stores_a_report(recent, settings):
    from django_celery_beat.models import PeriodicTask

    from config.celery import app
    from pncp.tasks import contract_check

    app.loader.import_default_modules()
    task = PeriodicTask.objects.get(task="pncp.contract_check")
    assert task.enabled and task.crontab.hour == "1" and task.crontab.day_of_week == "*"
    assert "pncp.contract_check" in app.tasks
    settings.PNCP_REQUESTS_PER_SECOND = 0
    settings.PNCP_RATE_LIMIT_REDIS_URL = ""
    settings.REDIS_URL = ""
    with FakePNCP(recent, page_limits={"/v1/contratos": 100}) as fake:
        settings.PNCP_BASE_URL = fake.base_url
        summary = contract_check.run()
    stored = ContractCheck.objects.get(pk=summary["check"])
    assert (summary["status"], stored.trigger) == ("drift", "beat")
    assert summary["drift"] == 1


def test_admin_shows_reports_read_only(admin_client, django_assert_max_num_queries):
    from django.urls import reverse

    ok = ContractCheck.objects.create(status="ok", endpoints=10, findings=[])
    drift = ContractCheck.objects.create(
        status="drift",
        endpoints=10,
        findings=[
            {
                "endpoint": "contratos.publicacao",
                "check": "missing_field",
                "expected": "valorGlobal in the answer",
                "observed": "absent",
                "drift": True,
                "error": False,
            }
        ],
    )
    changelist = reverse("admin:pncp_contractcheck_changelist")
    with django_assert_max_num_queries(12):
        response = admin_client.get(changelist, {"status__exact": "drift"})
    assert [o.pk for o in response.context["cl"].result_list] == [drift.pk]
    response = admin_client.get(changelist, {"q": "ok"})
    assert ok.pk in [o.pk for o in response.context["cl"].result_list]
    with django_assert_max_num_queries(15):
        page = admin_client.get(reverse("admin:pncp_contractcheck_change", args=[drift.pk]))
    text = page.content.decode()
    assert page.status_code == 200 and "valorGlobal in the answer" in text and "DRIFT" in text
    assert admin_client.get(reverse("admin:pncp_contractcheck_add")).status_code == 403
    assert not page.context["has_change_permission"]
