"""Security settings that must hold: short-lived rotating tokens, a clean deploy check, a
statement timeout on PostgreSQL, a CORS allowlist and the security headers."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "Zq8#vT2!mR5$wX9&kL3*pN7@bH4^cJ6%dF1(gS0)yU8+eW2=aQ5-test-only",
    "ALLOWED_HOSTS": "mirror.example",
}
needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the statement timeout is a PostgreSQL setting"
)


def run(args: list[str], env: dict, drop=("DATABASE_URL", "REDIS_URL")):
    clean = {k: v for k, v in os.environ.items() if k not in drop}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def settings_in_production(expr: str, **env) -> str:
    code = f"import django; django.setup(); from django.conf import settings as s; print({expr})"
    out = run(["-c", code], {**PRODUCTION_ENV, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# --- tokens ---------------------------------------------------------------------------------


def test_access_tokens_live_at_most_15_minutes_and_refresh_tokens_one_day():
    assert timedelta(minutes=15) >= jwt_settings.ACCESS_TOKEN_LIFETIME
    assert timedelta(days=1) >= jwt_settings.REFRESH_TOKEN_LIFETIME


def test_refresh_tokens_rotate_and_the_old_ones_are_blacklisted():
    assert jwt_settings.ROTATE_REFRESH_TOKENS is True
    assert jwt_settings.BLACKLIST_AFTER_ROTATION is True
    assert "rest_framework_simplejwt.token_blacklist" in django_settings.INSTALLED_APPS


@pytest.mark.django_db
def test_issued_tokens_carry_those_lifetimes():
    from accounts.models import User

    refresh = RefreshToken.for_user(User.objects.create(username="t"))
    access = refresh.access_token
    assert access["exp"] - access["iat"] <= 15 * 60
    assert refresh["exp"] - refresh["iat"] <= 24 * 60 * 60


# --- deploy check ---------------------------------------------------------------------------


def test_check_deploy_is_clean_in_production_settings():
    out = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_check_deploy_is_clean_with_postgresql_and_redis_too():
    env = {
        **PRODUCTION_ENV,
        "DATABASE_URL": "postgres://u:p@db.example:5432/pncp",
        "REDIS_URL": "redis://cache.example:6379/0",
    }
    out = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert out.returncode == 0, out.stdout + out.stderr


def test_production_is_https_only_with_hsts_and_secure_cookies():
    values = settings_in_production(
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000,"
        " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SESSION_COOKIE_HTTPONLY"
    )
    assert values == "True True True True True True"


def test_production_serves_json_only():
    assert settings_in_production("s.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES']") == (
        "['rest_framework.renderers.JSONRenderer']"
    )


# --- statement timeout ----------------------------------------------------------------------


@needs_postgresql
@pytest.mark.django_db
def test_every_connection_has_the_configured_statement_timeout():
    options = django_settings.DATABASES["default"]["OPTIONS"]["options"]
    configured_ms = int(options.split("statement_timeout=")[1].split()[0])
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        (shown,) = cursor.fetchone()
        cursor.execute("SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'")
        (setting_ms,) = cursor.fetchone()
    assert setting_ms == configured_ms == int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", 30000))
    expected = f"{configured_ms // 1000}s" if configured_ms % 1000 == 0 else f"{configured_ms}ms"
    assert shown == expected


@needs_postgresql
def test_the_timeout_comes_from_the_environment_and_cancels_slow_queries():
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/postgres"
    if db.get("PASSWORD"):
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/postgres"
    code = (
        "import django; django.setup()\n"
        "from django.db import connection, OperationalError\n"
        "cursor = connection.cursor()\n"
        "cursor.execute('SHOW statement_timeout'); print(cursor.fetchone()[0])\n"
        "try:\n"
        "    cursor.execute('SELECT pg_sleep(2)'); print('not cancelled')\n"
        "except OperationalError as exc:\n"
        "    print(type(exc.__cause__).__name__)\n"
    )
    out = run(["-c", code], {"DATABASE_URL": url, "DB_STATEMENT_TIMEOUT_MS": "250"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["250ms", "QueryCanceled"]


# --- CORS -----------------------------------------------------------------------------------


def test_cors_is_an_allowlist_never_allow_all():
    assert django_settings.CORS_ALLOW_ALL_ORIGINS is False
    assert "*" not in django_settings.CORS_ALLOWED_ORIGINS
    assert django_settings.CORS_ALLOW_CREDENTIALS is False


def test_cors_allowed_origins_come_from_the_environment():
    value = settings_in_production(
        "s.CORS_ALLOWED_ORIGINS", CORS_ALLOWED_ORIGINS="https://a.example, https://b.example"
    )
    assert value == "['https://a.example', 'https://b.example']"


def test_an_allowed_origin_gets_cors_headers_and_another_does_not(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://painel.example"]
    client = APIClient()
    allowed = client.get("/api/schema/", HTTP_ORIGIN="https://painel.example")
    assert allowed["Access-Control-Allow-Origin"] == "https://painel.example"
    assert "Access-Control-Allow-Credentials" not in allowed
    other = client.get("/api/schema/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


def test_cors_preflight_allows_the_bearer_header(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://painel.example"]
    response = APIClient().options(
        "/api/v1/auth/me/",
        HTTP_ORIGIN="https://painel.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://painel.example"
    assert "authorization" in response["Access-Control-Allow-Headers"]


def test_cors_applies_to_the_api_only(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://painel.example"]
    response = APIClient().get("/health", HTTP_ORIGIN="https://painel.example")
    assert "Access-Control-Allow-Origin" not in response


# --- headers --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/auth/me/", "/api/docs/", "/health"])
def test_security_headers(url):
    response = APIClient().get(url)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    if url != "/api/docs/":  # Swagger UI relaxes it on purpose (its OAuth popup)
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_hsts_on_https_when_configured(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = APIClient().get("/health", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in response["Strict-Transport-Security"]


def test_production_redirects_to_https_except_probes_and_metrics():
    exempt = settings_in_production("s.SECURE_REDIRECT_EXEMPT")
    assert exempt == "['^health$', '^ready$', '^metrics$']"


@pytest.mark.django_db
def test_https_redirect_spares_probes(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
    client = APIClient()
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    redirected = client.get("/api/v1/auth/me/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")
