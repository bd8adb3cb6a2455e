"""A served page leaves nothing for the cyclic garbage collector, and the WSGI process freezes
what it loaded (config.wsgi, config.middleware, RecordViewSet.list).

A page's rows and records held in reference cycles stayed in memory until Python's full
collection, which then walked them all: the p99 of a page of 500 (BENCHMARKS.md).
"""

from __future__ import annotations

import gc
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import sample_records

ROOT = Path(__file__).resolve().parent.parent
PAGE = "/api/v1/contratacoes/"
QUERY = "dataInicial=20260201&dataFinal=20260331&tamanhoPagina=20"

pytestmark = pytest.mark.django_db


@pytest.fixture
def contratacoes(ingester):
    records = sample_records("contratacoes_publicacao_sc_pregao.json")
    ingester.ingest("contratacoes", records, source="test")
    return records


@pytest.fixture
def handler():
    """Django's WSGI handler, as gunicorn calls it, minus closing the test's connection
    at the end of each request (as Django's own test client does)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _serve(handler, token: str) -> bytes:
    """One GET through the WSGI handler."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": PAGE,
        "QUERY_STRING": QUERY,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    status = []
    response = handler(environ, lambda s, headers, exc_info=None: status.append(s))
    body = b"".join(response)
    response.close()
    assert status == ["200 OK"], (status, body[:300])
    return body


def test_a_served_page_leaves_no_cyclic_garbage(contratacoes, handler, settings):
    settings.API_COUNT_CACHE_SECONDS = 0
    user = get_user_model().objects.create_user(username="leitor-gc")
    token = str(AccessToken.for_user(user))
    assert b'"totalRegistros":31' in _serve(handler, token)  # warm: imports, caches
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            _serve(handler, token)
        gc.collect()
        garbage = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    rows = [o for o in garbage if type(o).__name__ == "ContratacaoRow"]
    records = [o for o in garbage if isinstance(o, dict) and "numeroControlePNCP" in o]
    envelopes = [o for o in garbage if isinstance(o, dict) and "totalRegistros" in o]
    assert (len(rows), len(records), len(envelopes)) == (0, 0, 0)


def test_a_rendered_response_lets_go_of_its_view(contratacoes):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user(username="leitor-ctx"))
    response = client.get(f"{PAGE}?{QUERY}")
    assert response.status_code == 200
    assert response.renderer_context is None
    assert response.json()["totalRegistros"] == len(contratacoes)


def test_the_wsgi_module_freezes_what_it_loaded():
    code = "import gc, config.wsgi; print(gc.get_freeze_count())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert int(out.split()[-1]) > 10_000
