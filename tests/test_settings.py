"""Settings come from the environment, with safe defaults; production refuses unsafe ones."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def settings_in_subprocess(env: dict, expr: str):
    code = f"import django; django.setup(); from django.conf import settings as s; print({expr})"
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_sqlite_file_in_the_project_when_database_url_is_unset():
    out = settings_in_subprocess(
        {}, "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME']"
    )
    assert out.returncode == 0, out.stderr
    assert "sqlite3" in out.stdout and str(ROOT / "db.sqlite3") in out.stdout


def test_postgresql_via_psycopg_when_database_url_is_set():
    out = settings_in_subprocess(
        {"DATABASE_URL": "postgres://u:p@dbhost:5433/pncp"},
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], "
        "s.DATABASES['default']['OPTIONS']",
    )
    assert out.returncode == 0, out.stderr
    assert "postgresql" in out.stdout and "dbhost" in out.stdout
    assert "statement_timeout" in out.stdout


def test_production_refuses_the_default_secret_key():
    out = settings_in_subprocess({"DEBUG": "0"}, "s.DEBUG")
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr


def test_production_with_a_secret_starts_secure():
    out = settings_in_subprocess(
        {"DEBUG": "0", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "mirror.example"},
        "s.DEBUG, s.SESSION_COOKIE_SECURE, s.ALLOWED_HOSTS",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False True ['mirror.example']"


def test_environment_drives_pncp_redis_and_cors():
    out = settings_in_subprocess(
        {
            "PNCP_BASE_URL": "http://fake:9/api/consulta",
            "REDIS_URL": "redis://cache:6379/2",
            "CORS_ALLOWED_ORIGINS": "https://a.example,https://b.example",
        },
        "s.PNCP_BASE_URL, s.CACHES['default']['BACKEND'], s.CORS_ALLOWED_ORIGINS",
    )
    assert out.returncode == 0, out.stderr
    assert "http://fake:9/api/consulta" in out.stdout
    assert "RedisCache" in out.stdout
    assert "['https://a.example', 'https://b.example']" in out.stdout


def test_default_pncp_base_url():
    out = settings_in_subprocess({}, "s.PNCP_BASE_URL")
    assert out.stdout.strip() == "https://pncp.gov.br/api/consulta"


def test_user_model_is_ours():
    from django.conf import settings

    assert settings.AUTH_USER_MODEL == "accounts.User"


def test_the_demo_runs_on_sqlite_from_a_fresh_database(tmp_path):
    """What `make run` does before serving: every migration on SQLite, then the offline import
    of the bundled sample. Guards against PostgreSQL-only DDL reaching the demo database."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SQLITE_PATH=str(tmp_path / "demo.sqlite3"), DEMO_ADMIN_PASSWORD="demo-pass-123")
    for command in (["migrate", "--noinput"], ["demo_setup"]):
        out = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr[-3000:]
    assert "records created 1076" in out.stdout
    assert "Password: demo-pass-123" in out.stdout


def test_postgresql_engine_is_djangos_with_the_c_datetime_loader():
    out = settings_in_subprocess(
        {"DATABASE_URL": "postgres://u:p@dbhost:5433/pncp"}, "s.DATABASES['default']['ENGINE']"
    )
    assert out.returncode == 0, out.stderr
    assert "config.postgresql" in out.stdout
