"""The OpenAPI document: valid, warning-free, every operation described, and true to the API.

The last test fuzzes the API in process with schemathesis (driven by the schema at
``/api/schema/``): no 5xx, no undocumented status code or content type, and every response
matches its documented schema.
"""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

ROOT = Path(__file__).resolve().parent.parent
OWN_PREFIXES = (
    "/api/v1/auth/",
    "/api/v1/sync-runs/",
    "/api/v1/coverage/",
    "/api/v1/quarantine/",
)
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-schema-{uuid.uuid4()}",
        }
    }


@pytest.fixture(scope="module")
def schema() -> dict:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:2000]
    return json.loads(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def is_list(operation) -> bool:
    ref = operation["responses"].get("200", {}).get("content", {})
    ref = ref.get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.split("/")[-1].startswith("Paginated")


def test_spectacular_validates_without_warnings(tmp_path):
    out_file = tmp_path / "schema.yaml"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(out_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out_file.stat().st_size > 0


def test_every_operation_is_described(schema):
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in operations(schema)
        if not operation.get("description", "").strip()
    ]
    assert not missing, f"operations without a description: {missing}"


def test_list_operations_document_their_parameters(schema):
    problems = []
    lists = [(p, m, o) for p, m, o in operations(schema) if m == "get" and is_list(o)]
    assert len(lists) >= 3
    for path, _, operation in lists:
        names = {p["name"] for p in operation.get("parameters", [])}
        if not {"pagina", "tamanhoPagina"} <= names:
            problems.append(f"{path}: no pagination parameters")
        for parameter in operation.get("parameters", []):
            where = f"{path} ?{parameter['name']}"
            if not parameter.get("description", "").strip():
                problems.append(f"{where}: no description")
            if "type" not in parameter.get("schema", {}):
                problems.append(f"{where}: no type")
    assert not problems, problems


def test_our_operations_have_typed_parameters_with_examples_and_an_example_call(schema):
    problems = []
    ours = [(p, m, o) for p, m, o in operations(schema) if p.startswith(OWN_PREFIXES)]
    assert len(ours) == 10
    for path, method, operation in ours:
        where = f"{method.upper()} {path}"
        if "```bash\ncurl -X" not in operation["description"]:
            problems.append(f"{where}: no example call")
        if not operation.get("summary"):
            problems.append(f"{where}: no summary")
        for parameter in operation.get("parameters", []):
            schema_ = parameter.get("schema", {})
            if "type" not in schema_ or "example" not in schema_:
                problems.append(f"{where} {parameter['name']}: type or example missing")
            if not parameter.get("description"):
                problems.append(f"{where} {parameter['name']}: no description")
        responses = operation["responses"]
        ok = [code for code in responses if code.startswith("2")]
        if not ok:
            problems.append(f"{where}: no success response")
        for code in ok:
            content = responses[code].get("content", {}).get("application/json")
            if code != "205" and not (content and "schema" in content):
                problems.append(f"{where}: {code} has no schema")
            if content and not content.get("examples"):
                problems.append(f"{where}: {code} has no example")
    assert not problems, problems


def test_errors_are_documented_with_the_erro_component(schema):
    from pncp.api.openapi import ERROR_SCHEMA

    assert schema["components"]["schemas"]["Erro"] == ERROR_SCHEMA
    problems = []
    for path, method, operation in operations(schema):
        codes = [c for c in operation["responses"] if c.startswith("4")]
        if "401" not in codes or "429" not in codes:
            problems.append(f"{method.upper()} {path}: 401/429 not documented")
        for code in codes:
            content = operation["responses"][code].get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref")
            if ref != "#/components/schemas/Erro":
                problems.append(f"{method.upper()} {path} {code}: not an Erro")
    assert not problems, problems


def test_operator_endpoints_document_401_and_403(schema):
    for path in ("/api/v1/sync-runs/", "/api/v1/coverage/", "/api/v1/quarantine/"):
        responses = schema["paths"][path]["get"]["responses"]
        assert {"200", "400", "401", "403", "429"} <= set(responses)
    for path in ("/api/v1/sync-runs/{id}/", "/api/v1/quarantine/{id}/"):
        assert {"200", "401", "403", "404"} <= set(schema["paths"][path]["get"]["responses"])


def test_jwt_bearer_security_scheme(schema):
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    me = schema["paths"]["/api/v1/auth/me/"]["get"]
    assert {"jwtAuth": []} in me["security"]
    assert "security" not in schema["paths"]["/api/v1/auth/token/"]["post"]


def test_components_are_named_cleanly(schema):
    names = set(schema["components"]["schemas"])
    expected = {
        "Erro",
        "Me",
        "TokenObtainRequest",
        "TokenPair",
        "RefreshTokenRequest",
        "TokenVerifyRequest",
        "SyncRun",
        "SyncRunDetail",
        "PaginatedSyncRunList",
        "Coverage",
        "PaginatedCoverageList",
        "QuarantineRecord",
        "QuarantineRecordDetail",
        "PaginatedQuarantineRecordList",
        "SyncRunStatusEnum",
        "CoverageStatusEnum",
        "RoleEnum",
    }
    assert expected <= names
    assert not [n for n in names if n.startswith(("Fixed", "Inline")) or n[-5:-1] == "Enum"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/", "/api/schema/"])
def test_docs_are_public(url):
    response = APIClient().get(url)
    assert response.status_code == 200
    # even a stale token does not lock anyone out of the docs
    stale = APIClient(headers={"Authorization": "Bearer expired.token.here"}).get(url)
    assert stale.status_code == 200


@pytest.mark.django_db
def test_docs_pages_point_at_the_schema():
    for url in ("/api/docs/", "/api/redoc/"):
        assert b"/api/schema/" in APIClient().get(url).content


# --- schemathesis ---------------------------------------------------------------------------


@pytest.fixture
def fuzz_data(db):
    from pncp.models import Coverage, RejectedRecord, SyncCheckpoint, SyncRun

    run = SyncRun.objects.create(resources=["contratos"], status="partial", errors=["x"])
    SyncCheckpoint.objects.create(
        run=run, resource="contratos", endpoint="/v1/contratos", key="k", status="failed"
    )
    Coverage.objects.create(
        resource="contratos",
        endpoint="/v1/contratos",
        day=timezone.localdate(),
        day_end=timezone.localdate(),
        status="complete",
        checked_at=timezone.now(),
        run=run,
    )
    RejectedRecord.objects.create(resource="contratos", reason="x", payload={"a": 1}, sync_run=run)


@pytest.fixture
def wsgi_requests_in_the_test_transaction():
    """The WSGI handler closes "old" connections around each request; under a test
    transaction that would close ours. Django's test client does the same as this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    settings, fuzz_data, wsgi_requests_in_the_test_transaction
):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.generation import GenerationMode

    from accounts.models import User
    from config.wsgi import application

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "anon": "100000/min",
            "user": "100000/min",
            "auth": "100000/min",
        },
    }
    operator = User.objects.create_user("fuzz", password="fuzz-pass-123", role="operator")
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(operator).access_token}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    max_examples = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))

    def fuzz(operation, mode, mode_checks) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=mode_checks)

        run()

    api = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures, tested = [], []
    for result in api.get_all_operations():
        operation = result.ok()
        # valid input: documented answers only, matching their schemas; invalid input (wrong
        # types, out-of-range values, malformed bodies): still never a 5xx
        for mode, mode_checks in (
            (GenerationMode.POSITIVE, checks),
            (GenerationMode.NEGATIVE, [not_a_server_error, content_type_conformance]),
        ):
            try:
                fuzz(operation, mode, mode_checks)
            except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
                failures.append(f"{operation.label} ({mode.value}): {exc}")
        tested.append(operation.label)
    assert len(tested) >= 10
    assert not failures, "\n\n".join(failures)
