"""Operator endpoints: sync runs, coverage map and quarantine, on real rows.

Lists use PNCP's page envelope and camelCase, filter as documented (bad input is a 400 in the
one error shape), cost a fixed number of queries whatever the page size, and answer operators
only (consumers 403, anonymous 401).
"""

import json
import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from pncp.ingest import Ingester
from pncp.models import Coverage, RejectedRecord, SyncCheckpoint, SyncRun
from tests.conftest import sample_records

pytestmark = pytest.mark.django_db

ENVELOPE = {"data", "totalRegistros", "totalPaginas", "numeroPagina", "paginasRestantes", "empty"}
CP = SyncCheckpoint.Status


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-ops-{uuid.uuid4()}",
        }
    }
    # every request reads its token's user, so query counts below do not depend on order
    settings.API_USER_CACHE_SECONDS = 0


def client_for(user) -> APIClient:
    token = RefreshToken.for_user(user).access_token
    return APIClient(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def operator():
    user = User.objects.create(username="op", role=User.Role.OPERATOR)
    return client_for(user)


@pytest.fixture
def consumer():
    return client_for(User.objects.create(username="reader", role=User.Role.CONSUMER))


def assert_error(response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status and body["message"] and body["path"], body
    if error:
        assert body["error"] == error, body
    return body


def make_run(statuses=(), **fields) -> SyncRun:
    fields.setdefault("trigger", SyncRun.Trigger.TEST)
    run = SyncRun.objects.create(resources=["contratacoes"], **fields)
    for i, status in enumerate(statuses):
        SyncCheckpoint.objects.create(
            run=run,
            resource="contratacoes",
            endpoint="/v1/contratacoes/publicacao",
            key=f"contratacoes:2024-01-{i + 1:02d}:m6",
            window_start=date(2024, 1, i + 1),
            window_end=date(2024, 1, i + 1),
            status=status,
            fetched=10 * i,
            total_registros=10 * i + (5 if status == CP.INCOMPLETE else 0),
            error="PNCP 503" if status == CP.FAILED else "",
        )
    return run


def make_coverage(resource, day, *, modalidade=0, status=Coverage.Status.COMPLETE, days=1, **kw):
    endpoint = kw.pop("endpoint", f"/v1/{resource}/publicacao")
    return Coverage.objects.create(
        resource=resource,
        endpoint=endpoint,
        day=day,
        day_end=day + timedelta(days=days - 1),
        modalidade=modalidade,
        status=status,
        checked_at=timezone.now(),
        total_registros=kw.pop("total_registros", 100),
        fetched=kw.pop("fetched", 100),
        **kw,
    )


# --- sync runs ------------------------------------------------------------------------------


def test_sync_runs_list_counts_and_checkpoint_summaries(operator):
    old = make_run([CP.DONE, CP.DONE], status=SyncRun.Status.SUCCESS, created=20, pages=2)
    new = make_run(
        [CP.DONE, CP.FAILED, CP.INCOMPLETE, CP.PENDING],
        status=SyncRun.Status.PARTIAL,
        params={"desde": "2024-01-01"},
        created=5,
        updated=3,
        unchanged=2,
        rejected=1,
        retries=4,
        errors=["contratacoes:2024-01-02:m6: failed: PNCP 503"],
        resumed_from=old,
    )
    response = operator.get("/api/v1/sync-runs/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ENVELOPE
    assert body["totalRegistros"] == 2 and body["numeroPagina"] == 1 and not body["empty"]
    assert [r["id"] for r in body["data"]] == [new.pk, old.pk]  # newest first
    first = body["data"][0]
    assert first["status"] == "partial"
    assert first["params"] == {"desde": "2024-01-01"}
    assert first["resumedFrom"] == old.pk
    assert first["startedBy"] is None
    assert (first["created"], first["updated"], first["unchanged"], first["rejected"]) == (
        5,
        3,
        2,
        1,
    )
    assert first["retries"] == 4
    assert first["checkpoints"] == {
        "total": 4,
        "done": 1,
        "failed": 1,
        "incomplete": 1,
        "pending": 1,
        "running": 0,
    }
    assert "errors" not in first  # the detail carries them
    assert body["data"][1]["checkpoints"]["done"] == 2


def test_sync_run_detail_has_errors_and_the_windows_that_went_wrong(operator):
    starter = User.objects.create(username="ana", role=User.Role.OPERATOR)
    run = make_run(
        [CP.DONE, CP.FAILED, CP.INCOMPLETE],
        status=SyncRun.Status.PARTIAL,
        started_by=starter,
        errors=["boom"],
    )
    response = operator.get(f"/api/v1/sync-runs/{run.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.pk
    assert body["startedBy"] == "ana"
    assert body["errors"] == ["boom"]
    assert body["checkpoints"]["total"] == 3
    problems = body["problemCheckpoints"]
    assert [p["status"] for p in problems] == ["failed", "incomplete"]
    assert problems[0]["error"] == "PNCP 503"
    assert problems[1]["totalRegistros"] == problems[1]["fetched"] + 5
    assert problems[0]["dataInicial"] == "2024-01-02"


def test_sync_run_from_an_import_of_saved_pages(operator, tmp_path):
    """A real run (the offline import path of the importer) shows up with its counts."""
    from pncp.sync import import_from_dir

    folder = tmp_path / "contratos"
    folder.mkdir()
    page = {"data": [*sample_records("contrato_2.json"), {"sem": "chave"}]}
    (folder / "page1.json").write_text(json.dumps(page), encoding="utf-8")
    run, _ = import_from_dir(tmp_path, ["contratos"], trigger=SyncRun.Trigger.TEST)

    body = operator.get(f"/api/v1/sync-runs/{run.pk}/").json()
    assert body["mode"] == "from_dir"
    assert body["created"] == len(sample_records("contrato_2.json"))
    assert body["rejected"] == 1
    assert body["checkpoints"]["total"] == body["checkpoints"]["done"] == 1


def test_sync_runs_filters(operator):
    make_run(status=SyncRun.Status.SUCCESS, trigger=SyncRun.Trigger.BEAT, mode="incremental")
    make_run(status=SyncRun.Status.FAILED, trigger=SyncRun.Trigger.CLI)

    def ids(query):
        response = operator.get(f"/api/v1/sync-runs/?{query}")
        assert response.status_code == 200, response.content
        return {r["status"] for r in response.json()["data"]}

    assert ids("status=failed") == {"failed"}
    assert ids("trigger=beat") == {"success"}
    assert ids("mode=incremental") == {"success"}
    assert ids("status=running") == set()
    assert_error(operator.get("/api/v1/sync-runs/?status=bogus"), 400, "invalid")


def test_sync_run_detail_not_found(operator):
    assert_error(operator.get("/api/v1/sync-runs/999999/"), 404, "not_found")
    assert_error(operator.get("/api/v1/sync-runs/abc/"), 404, "not_found")
    assert_error(operator.get("/api/v1/sync-runs/1.5/"), 404, "not_found")
    assert_error(operator.get(f"/api/v1/sync-runs/{10**30}/"), 404, "not_found")


def test_sync_runs_list_costs_a_fixed_number_of_queries(operator, django_assert_num_queries):
    starter = User.objects.create(username="ana", role=User.Role.OPERATOR)
    for _ in range(3):
        make_run([CP.DONE, CP.FAILED], started_by=starter)
    # token user + count + page (with the starter joined) + one grouped checkpoint query
    with django_assert_num_queries(4):
        assert len(operator.get("/api/v1/sync-runs/").json()["data"]) == 3
    for _ in range(10):
        make_run([CP.DONE, CP.PENDING, CP.RUNNING], started_by=starter)
    with django_assert_num_queries(4):
        assert len(operator.get("/api/v1/sync-runs/").json()["data"]) == 13
    run = SyncRun.objects.first()
    # token user + run + its checkpoint summary + its problem windows
    with django_assert_num_queries(4):
        assert operator.get(f"/api/v1/sync-runs/{run.pk}/").status_code == 200


# --- coverage -------------------------------------------------------------------------------


@pytest.fixture
def coverage_rows():
    jan = date(2024, 1, 1)
    return {
        "c-jan01-m6": make_coverage("contratacoes", jan, modalidade=6),
        "c-jan02-m8": make_coverage(
            "contratacoes",
            jan + timedelta(days=1),
            modalidade=8,
            status=Coverage.Status.PARTIAL,
            fetched=90,
        ),
        "k-jan10": make_coverage("contratos", jan + timedelta(days=9), status="failed"),
        # a month-long window (PCA-like), crossing the January/February boundary
        "p-jan20-feb18": make_coverage(
            "pca", jan + timedelta(days=19), days=30, endpoint="/v1/pca/atualizacao"
        ),
    }


def test_coverage_list(operator, coverage_rows):
    body = operator.get("/api/v1/coverage/").json()
    assert set(body) == ENVELOPE
    assert body["totalRegistros"] == 4
    row = next(r for r in body["data"] if r["id"] == coverage_rows["c-jan02-m8"].pk)
    assert row == {
        "id": coverage_rows["c-jan02-m8"].pk,
        "resource": "contratacoes",
        "endpoint": "/v1/contratacoes/publicacao",
        "dataInicial": "2024-01-02",
        "dataFinal": "2024-01-02",
        "modalidade": 8,
        "status": "partial",
        "totalRegistros": 100,
        "fetched": 90,
        "missing": 10,
        "checkedAt": row["checkedAt"],
        "syncRun": None,
    }
    # newest day first
    days = [r["dataInicial"] for r in body["data"]]
    assert days == sorted(days, reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("resource=contratacoes", {"c-jan01-m6", "c-jan02-m8"}),
        ("endpoint=/v1/pca/atualizacao", {"p-jan20-feb18"}),
        ("status=partial", {"c-jan02-m8"}),
        ("status=failed", {"k-jan10"}),
        ("modalidade=6", {"c-jan01-m6"}),
        ("modalidade=0", {"k-jan10", "p-jan20-feb18"}),
        ("dataInicial=20240102&dataFinal=20240110", {"c-jan02-m8", "k-jan10"}),
        ("dataInicial=20240201", {"p-jan20-feb18"}),  # overlapping windows count
        ("dataFinal=20240101", {"c-jan01-m6"}),
        ("dataInicial=20240105&dataFinal=20240105", set()),
        ("resource=contratacoes&dataInicial=20240102", {"c-jan02-m8"}),
        ("resource=nada", set()),
    ],
)
def test_coverage_filters(operator, coverage_rows, query, expected):
    response = operator.get(f"/api/v1/coverage/?{query}")
    assert response.status_code == 200, response.content
    by_id = {row.pk: name for name, row in coverage_rows.items()}
    assert {by_id[r["id"]] for r in response.json()["data"]} == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("dataInicial=2024-01-01", "AAAAMMDD"),
        ("dataInicial=%25(x)s%25", "AAAAMMDD"),  # a '%' in the input is not a format string
        ("dataFinal=20240230", "não é uma data válida"),
        ("dataInicial=20240201&dataFinal=20240101", "posterior a dataFinal"),
        ("status=sometimes", "status"),
        ("modalidade=x", "modalidade"),
        ("modalidade=-1", "modalidade"),
        ("tamanhoPagina=501", "500"),
        ("pagina=0", "pagina"),
    ],
)
def test_coverage_rejects_bad_parameters_with_a_clear_message(operator, query, message):
    body = assert_error(operator.get(f"/api/v1/coverage/?{query}"), 400, "invalid")
    assert message in body["message"], body


def test_coverage_pages(operator, coverage_rows):
    body = operator.get("/api/v1/coverage/?tamanhoPagina=3&pagina=2").json()
    assert body["totalRegistros"] == 4
    assert body["totalPaginas"] == 2
    assert body["numeroPagina"] == 2
    assert body["paginasRestantes"] == 0
    assert len(body["data"]) == 1
    past = operator.get("/api/v1/coverage/?tamanhoPagina=3&pagina=9").json()
    assert past["empty"] is True and past["data"] == [] and past["totalRegistros"] == 4


def test_coverage_costs_a_fixed_number_of_queries(operator, django_assert_num_queries):
    for i in range(3):
        make_coverage("contratos", date(2024, 3, 1) + timedelta(days=i))
    with django_assert_num_queries(3):  # token user + count + page
        operator.get("/api/v1/coverage/")
    for i in range(20):
        make_coverage("atas", date(2024, 4, 1) + timedelta(days=i))
    with django_assert_num_queries(3):
        assert len(operator.get("/api/v1/coverage/").json()["data"]) == 23


def test_coverage_has_no_detail_route(operator, coverage_rows):
    assert operator.get(f"/api/v1/coverage/{coverage_rows['k-jan10'].pk}/").status_code == 404


# --- quarantine -----------------------------------------------------------------------------


@pytest.fixture
def quarantine():
    """Rejections made by the importer itself, from bad records next to good ones."""
    run = SyncRun.objects.create(resources=["contratos", "atas"], trigger=SyncRun.Trigger.TEST)
    ingester = Ingester(run)
    good = sample_records("contrato_2.json")
    bad_key = {"objetoContrato": "sem chave"}
    result = ingester.ingest("contratos", [*good, bad_key], source="contratos:2024-01-15 p1")
    assert result.rejected == 1
    ingester.ingest("atas", ["not an object"], source="atas:2024-01-15 p1")
    resolved = RejectedRecord.objects.get(resource="atas")
    resolved.resolved_at = timezone.now()
    resolved.save()
    return run


def test_quarantine_list_and_detail(operator, quarantine):
    body = operator.get("/api/v1/quarantine/").json()
    assert set(body) == ENVELOPE
    assert body["totalRegistros"] == 2
    contrato = next(r for r in body["data"] if r["resource"] == "contratos")
    assert set(contrato) == {
        "id",
        "resource",
        "naturalKey",
        "reason",
        "source",
        "syncRun",
        "createdAt",
        "attempts",
        "resolved",
        "resolvedAt",
    }
    assert "natural key" in contrato["reason"]
    assert contrato["source"] == "contratos:2024-01-15 p1"
    assert contrato["syncRun"] == quarantine.pk
    assert contrato["resolved"] is False and contrato["resolvedAt"] is None

    detail = operator.get(f"/api/v1/quarantine/{contrato['id']}/").json()
    assert detail["payload"] == {"objetoContrato": "sem chave"}
    assert {k: v for k, v in detail.items() if k != "payload"} == contrato


@pytest.mark.parametrize(
    ("query", "resources"),
    [
        ("resource=contratos", ["contratos"]),
        ("resource=pca", []),
        ("resolved=true", ["atas"]),
        ("resolved=false", ["contratos"]),
        ("resource=atas&resolved=false", []),
        ("naturalKey=", ["atas", "contratos"]),
    ],
)
def test_quarantine_filters(operator, quarantine, query, resources):
    response = operator.get(f"/api/v1/quarantine/?{query}")
    assert response.status_code == 200, response.content
    assert sorted(r["resource"] for r in response.json()["data"]) == resources


def test_quarantine_filter_by_run_and_key(operator, quarantine):
    other = SyncRun.objects.create(resources=["pca"], trigger=SyncRun.Trigger.TEST)
    RejectedRecord.objects.create(
        resource="pca",
        natural_key="12345678000190-0-000001/2024",
        reason="x",
        payload={},
        sync_run=other,
    )
    data = operator.get(f"/api/v1/quarantine/?syncRun={other.pk}").json()["data"]
    assert [r["resource"] for r in data] == ["pca"]
    data = operator.get("/api/v1/quarantine/?naturalKey=12345678000190-0-000001/2024").json()
    assert [r["naturalKey"] for r in data["data"]] == ["12345678000190-0-000001/2024"]
    assert_error(operator.get("/api/v1/quarantine/?syncRun=abc"), 400, "invalid")


def test_quarantine_costs_a_fixed_number_of_queries(
    operator, quarantine, django_assert_num_queries
):
    with django_assert_num_queries(3):  # token user + count + page
        operator.get("/api/v1/quarantine/")
    RejectedRecord.objects.bulk_create(
        RejectedRecord(resource="atas", reason="x", payload={"n": i}) for i in range(20)
    )
    with django_assert_num_queries(3):
        assert len(operator.get("/api/v1/quarantine/").json()["data"]) == 22
    record = RejectedRecord.objects.first()
    with django_assert_num_queries(2):  # token user + record
        operator.get(f"/api/v1/quarantine/{record.pk}/")


def test_quarantine_detail_not_found(operator):
    assert_error(operator.get("/api/v1/quarantine/424242/"), 404, "not_found")
    assert_error(operator.get("/api/v1/quarantine/-1/"), 404, "not_found")


def test_unknown_api_paths_are_json_404s(operator, client):
    assert_error(operator.get("/api/v1/nada-aqui/"), 404, "not_found")
    response = client.get("/admin-nada/")  # outside the API: Django's own page
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync-runs", "quarantine"])
def test_details_by_role(kind, consumer, operator, quarantine):
    pk = quarantine.pk if kind == "sync-runs" else RejectedRecord.objects.first().pk
    url = f"/api/v1/{kind}/{pk}/"
    assert_error(APIClient().get(url), 401, "not_authenticated")
    body = assert_error(consumer.get(url), 403, "permission_denied")
    assert "operadores" in body["message"]
    assert operator.get(url).status_code == 200


def test_consumers_do_not_learn_whether_an_object_exists(consumer):
    assert_error(consumer.get("/api/v1/sync-runs/999999/"), 403, "permission_denied")
