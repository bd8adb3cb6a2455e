"""Operators start a sync through the API (Celery task) and follow its progress."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from config.celery import app
from pncp.models import Contrato, SyncLock, SyncRun
from tests.fakes.fake_pncp import FakeDataset, FakePNCP

URL = "/api/v1/sync-tasks/"


@pytest.fixture
def eager_celery():
    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def client_for(role: str | None) -> APIClient:
    client = APIClient()
    if role:
        user = get_user_model().objects.create_user(f"u-{role}", password="x" * 12, role=role)
        client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_operator_starts_a_sync_and_follows_it_to_the_end(settings, eager_celery):
    ds = FakeDataset.generate(contratos=300, start=date(2025, 7, 1), days=3, seed=1)
    with FakePNCP(ds) as fake:
        settings.PNCP_BASE_URL = fake.base_url
        settings.PNCP_REQUESTS_PER_SECOND = 0
        settings.PNCP_RATE_LIMIT_REDIS_URL = ""
        client = client_for("operator")
        response = client.post(
            URL,
            {"resources": ["contratos"], "desde": "2025-07-01", "ate": "2025-07-03"},
            format="json",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["taskId"] and body["syncRunId"]
    run = SyncRun.objects.get(pk=body["syncRunId"])
    assert (run.trigger, run.started_by.username) == ("api", "u-operator")
    status = client.get(f"{URL}{body['taskId']}/").json()
    assert status["status"] == "success" and status["finished"] is True
    assert status["windowsTotal"] == status["windowsDone"] == 3
    assert status["records"]["created"] == len(ds.keys("contratos")) == Contrato.objects.count()
    assert not SyncLock.objects.exists()


@pytest.mark.django_db
def test_a_resource_already_syncing_answers_409_naming_the_run(eager_celery):
    from pncp.sync import SyncOptions, start_run

    running = start_run(
        SyncOptions(resources=["atas"], desde=date(2025, 7, 1), ate=date(2025, 7, 1))
    )
    response = client_for("operator").post(
        URL, {"resources": ["atas"], "desde": "2025-07-01"}, format="json"
    )
    assert response.status_code == 409
    assert f"run #{running.pk}" in response.json()["message"]
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"resources": ["contrtos"], "desde": "2025-07-01"}, "resources"),
        ({"resources": ["contratos"], "desde": "2025-07-10", "ate": "2025-07-01"}, "desde"),
        ({"resources": ["contratos"], "desde": "2025-07-01", "cnpj": "123"}, "cnpj"),
        ({"resources": ["contratos"], "desde": "2025-07-01", "uf": "XX"}, "uf"),
        ({"resources": ["contratos"]}, "give --desde"),
    ],
)
def test_bad_requests_are_400_and_start_nothing(body, field, eager_celery):
    response = client_for("operator").post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert field in body.get("detail", {}) or field in body["message"]
    assert body["message"]
    assert SyncRun.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("role, expected", [(None, 401), ("consumer", 403)])
def test_only_operators_start_or_read_sync_tasks(role, expected):
    client = client_for(role)
    assert client.post(URL, {"resources": ["contratos"]}, format="json").status_code == expected
    assert client.get(f"{URL}abc/").status_code == expected


@pytest.mark.django_db
def test_unknown_task_is_404_in_the_error_shape():
    response = client_for("operator").get(f"{URL}nope/")
    assert response.status_code == 404
    assert response.json()["status"] == 404 and "nope" in response.json()["message"]
