"""totalRegistros remembered in the shared cache until an import commits (pncp.api.counts).

Against the real Redis of the machine (a private key prefix per test) and PostgreSQL: a page
after the first one of the same filter runs no COUNT; an import that writes renews the
generation and the next page counts again, with the new total; an import that writes nothing
does not; without a shared cache, with 0 seconds, or with the cache down, every page counts.
"""

from __future__ import annotations

import copy
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from pncp.api import counts
from tests.conftest import sample_records

PATH = "/api/v1/contratacoes/"
WINDOW = {"dataInicial": "20260201", "dataFinal": "20260331"}
SAMPLE = "contratacoes_publicacao_sc_pregao.json"  # 31 pregões of Feb-Mar 2026

pytestmark = pytest.mark.django_db


def _redis_cache(location="redis://127.0.0.1:6379/14"):
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"test-counts-{uuid.uuid4().hex}",
        }
    }


@pytest.fixture
def shared_cache(settings):
    settings.CACHES = _redis_cache()
    settings.API_COUNT_CACHE_SECONDS = 60


@pytest.fixture
def records(ingester, django_capture_on_commit_callbacks):
    found = sample_records(SAMPLE)
    with django_capture_on_commit_callbacks(execute=True):
        ingester.ingest("contratacoes", found, source="test")
    return found


@pytest.fixture
def client(db):
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user(username="leitor-counts"))
    return api


def page(client, **params) -> tuple[dict, int]:
    """The page's body and how many COUNT queries answering it ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PATH, {**WINDOW, "tamanhoPagina": 10, **params})
    assert response.status_code == 200, response.content
    counted = sum(q["sql"].lstrip().upper().startswith("SELECT COUNT") for q in queries)
    return response.json(), counted


def outcome(name: str) -> float:
    return REGISTRY.get_sample_value("pncp_api_count_cache_total", {"outcome": name}) or 0.0


def test_pages_after_the_first_reuse_the_count(shared_cache, records, client):
    assert counts.enabled()
    first, counted = page(client)
    assert counted == 1
    assert first["totalRegistros"] == len(records)
    hits = outcome("hit")
    for number in (2, 3, 4):
        body, counted = page(client, pagina=number)
        assert counted == 0
        assert body["totalRegistros"] == len(records)
        assert body["numeroPagina"] == number
        assert len(body["data"]) == min(10, len(records) - 10 * (number - 1))
    assert outcome("hit") == hits + 3


def test_a_new_cache_starts_a_generation_first(shared_cache, records, client):
    from django.core.cache import cache

    cache.delete(counts.GENERATION_KEY)  # an empty Redis: no import renewed it yet
    assert page(client)[1] == 1  # counted; the generation starts
    assert cache.get(counts.GENERATION_KEY)
    assert page(client)[1] == 1  # counted and kept
    assert page(client, pagina=2)[1] == 0


def test_another_filter_is_counted_apart(shared_cache, records, client):
    page(client)
    narrower = {"dataInicial": "20260301", "dataFinal": "20260331"}
    body, counted = page(client, **narrower)
    assert counted == 1
    expected = sum(r["dataPublicacaoPncp"] >= "2026-03" for r in records)
    assert 0 < expected < len(records)
    assert body["totalRegistros"] == expected


def test_an_import_that_writes_renews_the_generation(
    shared_cache, records, client, ingester, django_capture_on_commit_callbacks
):
    page(client)
    assert page(client, pagina=2)[1] == 0
    new = copy.deepcopy(records[0])
    new["sequencialCompra"] = 999_001
    new["numeroControlePNCP"] = new["numeroControlePNCP"].replace(
        f"-{records[0]['sequencialCompra']:06d}/", "-999001/"
    )
    assert new["numeroControlePNCP"] != records[0]["numeroControlePNCP"]
    with django_capture_on_commit_callbacks(execute=True):
        result = ingester.ingest("contratacoes", [new], source="test")
    assert result.created == 1
    body, counted = page(client, pagina=2)
    assert counted == 1
    assert body["totalRegistros"] == len(records) + 1
    assert page(client, pagina=3)[1] == 0


def test_an_import_that_writes_nothing_keeps_the_counts(
    shared_cache, records, client, ingester, django_capture_on_commit_callbacks
):
    page(client)
    with django_capture_on_commit_callbacks(execute=True):
        result = ingester.ingest("contratacoes", records, source="test")
    assert result.created == result.updated == 0
    assert page(client, pagina=2)[1] == 0


def test_without_a_shared_cache_every_page_counts(records, client, settings):
    assert "LocMemCache" in settings.CACHES["default"]["BACKEND"]  # conftest's private cache
    assert not counts.enabled()
    for number in (1, 2, 2):
        assert page(client, pagina=number)[1] == 1


def test_zero_seconds_turns_it_off(shared_cache, records, client, settings):
    settings.API_COUNT_CACHE_SECONDS = 0
    assert not counts.enabled()
    for number in (1, 1, 2):
        assert page(client, pagina=number)[1] == 1


def test_a_cache_that_fails_still_gets_the_right_total(shared_cache, records, client, monkeypatch):
    class Down:
        def get_many(self, keys):
            raise ConnectionError("cache down")

    monkeypatch.setattr(counts, "cache", Down())
    errors = outcome("error")
    for number in (1, 2):
        body, counted = page(client, pagina=number)
        assert counted == 1
        assert body["totalRegistros"] == len(records)
    assert outcome("error") == errors + 2


def test_renewing_the_generation_never_fails_an_import(
    shared_cache, records, ingester, django_capture_on_commit_callbacks, monkeypatch
):
    class Down:
        def set(self, *args, **kwargs):
            raise ConnectionError("cache down")

    monkeypatch.setattr(counts, "cache", Down())
    changed = copy.deepcopy(records[0])
    changed["objetoCompra"] = "objeto alterado"
    with django_capture_on_commit_callbacks(execute=True):
        result = ingester.ingest("contratacoes", [changed], source="test")
    assert result.updated == 1


def test_the_default_is_short_and_on():
    from django.conf import settings

    assert 0 < settings.API_COUNT_CACHE_SECONDS <= 300
