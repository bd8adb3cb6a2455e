"""Static checks of the container setup: Dockerfile, docker-compose.yml and .dockerignore.

No Docker engine and no database are needed. The files are parsed (YAML / Dockerfile text) and
cross-checked against the repository: every module the containers run must exist, every
package the image needs must be in requirements.txt, and the compose environment must make the
settings import in production mode. `docker compose config` runs only where Compose exists.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements.txt"

APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING_APP_SERVICES = ("web", "worker", "beat")
ALL_SERVICES = ("postgres", "redis", *APP_SERVICES)

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
# gunicorn's APP_MODULE argument, e.g. config.wsgi:application
MODULE_ATTR = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


# --- helpers ----------------------------------------------------------------------------------


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict:
    return load_compose()["services"]


def command_argv(service: dict) -> list[str]:
    command = service.get("command")
    assert command, "service has no command"
    return list(command) if isinstance(command, list) else shlex.split(command)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form means service_started
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve compose-style ${...} references the way `docker compose` would."""

    def replace(match: re.Match) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op in ("?", ":?"):
            missing = current is None or (op == ":?" and current == "")
            if missing:
                raise KeyError(f"required variable {name} is missing: {arg}")
            return current
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        return current or ""

    return INTERPOLATION.sub(replace, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and line continuations joined."""
    logical, buffer = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    if buffer:
        logical.append(buffer)
    pairs = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def exec_or_shell_text(args: str) -> str:
    """The command text of a CMD/ENTRYPOINT, whether in exec (JSON) or shell form."""
    if args.startswith("["):
        return " ".join(json.loads(args))
    return args


def requirement_names() -> dict[str, set[str]]:
    """Normalized requirement name -> its extras, from requirements.txt."""
    found: dict[str, set[str]] = {}
    for raw in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", line)
        assert match, f"cannot parse requirement line: {raw!r}"
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        extras = {e.strip().lower() for e in (match.group(2) or "").split(",") if e.strip()}
        found[name] = extras
    return found


def python_module_file(dotted: str) -> Path:
    base = ROOT.joinpath(*dotted.split("."))
    module = base.with_suffix(".py")
    return module if module.exists() else base / "__init__.py"


# --- docker-compose.yml: services, images, builds ---------------------------------------------


def test_compose_has_no_obsolete_version_key():
    assert "version" not in load_compose()


def test_compose_defines_all_services():
    assert set(ALL_SERVICES) <= set(services())


def test_backing_service_images():
    svc = services()
    assert svc["postgres"]["image"].startswith("postgres:16")
    assert svc["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_from_repo_root(name):
    build = services()[name]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert context in (".", "./")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / dockerfile).is_file()


def test_postgres_service_configuration():
    pg = services()["postgres"]
    env = environment(pg)
    assert {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"} <= set(env)
    assert any(str(v).endswith("/var/lib/postgresql/data") for v in pg.get("volumes", []))
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])


def test_redis_healthcheck_pings():
    test = services()["redis"]["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    assert "redis-cli" in text
    assert "ping" in text


def test_named_volumes_are_declared():
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source!r}"


# --- commands ---------------------------------------------------------------------------------


def test_web_runs_gunicorn_on_port_8000():
    argv = command_argv(services()["web"])
    assert argv[0] == "gunicorn"
    assert "config.wsgi:application" in argv
    text = " ".join(argv)
    assert re.search(r"(--bind|-b)[ =]0\.0\.0\.0:8000\b", text)


def test_worker_runs_celery_worker():
    argv = command_argv(services()["worker"])
    assert argv[:4] == ["celery", "-A", "config", "worker"]


def test_beat_runs_celery_beat():
    argv = command_argv(services()["beat"])
    assert argv[:4] == ["celery", "-A", "config", "beat"]


def test_migrate_runs_manage_py_migrate_once():
    migrate = services()["migrate"]
    argv = command_argv(migrate)
    assert "manage.py" in argv
    assert argv[argv.index("manage.py") + 1] == "migrate"
    assert "--noinput" in argv
    # A string "no": unquoted `no` in YAML would be the boolean False.
    assert migrate.get("restart") == "no"


def test_exactly_one_beat_replica():
    beat = services()["beat"]
    assert beat["deploy"]["replicas"] == 1
    assert beat.get("scale", 1) == 1


def test_web_publishes_port_8000():
    ports = services()["web"]["ports"]
    published = []
    for port in ports:
        if isinstance(port, dict):
            published.append((str(port.get("published")), str(port.get("target"))))
        else:
            host, _, container = str(port).rpartition(":")
            published.append((host.rsplit(":", 1)[-1], container.split("/")[0]))
    assert ("8000", "8000") in published


def test_web_healthcheck_probes_health_endpoint():
    test = services()["web"]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    text = " ".join(test)
    assert "/health" in text
    if test[:3] == ["CMD", "python", "-c"]:
        compile(test[3], "<web healthcheck>", "exec")  # the probe is valid Python


# --- depends_on -------------------------------------------------------------------------------


def test_migrate_waits_for_healthy_postgres():
    assert depends_on(services()["migrate"]).get("postgres") == "service_healthy"


@pytest.mark.parametrize("name", LONG_RUNNING_APP_SERVICES)
def test_app_services_start_after_migrations(name):
    deps = depends_on(services()[name])
    assert deps.get("migrate") == "service_completed_successfully"
    assert deps.get("redis") == "service_healthy"


def test_healthy_conditions_target_services_with_healthchecks():
    svc = services()
    for name, service in svc.items():
        for target, condition in depends_on(service).items():
            assert target in svc, f"{name} depends on unknown service {target!r}"
            if condition == "service_healthy":
                assert svc[target].get("healthcheck"), f"{target} has no healthcheck"


# --- environment ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_points_at_compose_services(name):
    env = environment(services()[name])
    db = urlparse(env["DATABASE_URL"])
    assert db.scheme in ("postgres", "postgresql")
    assert db.hostname == "postgres"
    assert (db.port or 5432) == 5432
    redis = urlparse(env["REDIS_URL"])
    assert redis.scheme == "redis"
    assert redis.hostname == "redis"
    assert env["DEBUG"].strip().lower() in ("0", "false", "no", "off")
    assert re.fullmatch(r"\$\{SECRET_KEY:?\?[^}]*\}", env["SECRET_KEY"]), "SECRET_KEY not required"
    assert "ALLOWED_HOSTS" in env
    assert "pncp.gov.br/api/consulta" in env["PNCP_BASE_URL"]


def test_app_services_share_one_environment():
    svc = services()
    envs = [environment(svc[name]) for name in APP_SERVICES]
    assert all(env == envs[0] for env in envs)


def test_database_url_matches_postgres_credentials():
    svc = services()
    pg = environment(svc["postgres"])
    db = urlparse(environment(svc["web"])["DATABASE_URL"])
    assert db.username == pg["POSTGRES_USER"]
    assert db.password == pg["POSTGRES_PASSWORD"]
    assert db.path.lstrip("/") == pg["POSTGRES_DB"]


def test_secret_key_is_required_at_interpolation():
    env = environment(services()["web"])
    with pytest.raises(KeyError):
        interpolate(env["SECRET_KEY"], {})
    assert interpolate(env["SECRET_KEY"], {"SECRET_KEY": "s3cret"}) == "s3cret"


def test_compose_environment_loads_production_settings():
    """The settings import with exactly what the containers get (DEBUG off, real key)."""
    host_env = {"SECRET_KEY": "compose-test-" + "x" * 50}
    child_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    for key, value in environment(services()["web"]).items():
        child_env[key] = interpolate(value, host_env)
    child_env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'debug': settings.DEBUG, "
        "'engine': settings.DATABASES['default']['ENGINE'], "
        "'host': settings.DATABASES['default']['HOST'], "
        "'broker': settings.CELERY_BROKER_URL, "
        "'hosts': settings.ALLOWED_HOSTS}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["debug"] is False
    assert loaded["engine"] == "config.postgresql"  # Django's, with the C date-time loader
    assert loaded["host"] == "postgres"
    assert loaded["broker"].startswith("redis://redis:")
    # The web healthcheck probes 127.0.0.1, so the default hosts must accept it.
    assert "127.0.0.1" in loaded["hosts"]


# --- the code and packages the containers run -------------------------------------------------


def test_modules_referenced_by_commands_exist():
    svc = services()
    referenced: set[Path] = set()
    for name in APP_SERVICES:
        argv = command_argv(svc[name])
        if argv[0] == "gunicorn":
            target = next(a for a in argv[1:] if MODULE_ATTR.fullmatch(a))
            module, _, attr = target.partition(":")
            path = python_module_file(module)
            assert path.is_file(), f"{name}: {module} not found"
            assert re.search(rf"^{attr}\s*=", path.read_text(encoding="utf-8"), re.M)
            referenced.add(path)
        elif argv[0] == "celery":
            app_module = argv[argv.index("-A") + 1]
            path = ROOT / app_module / "celery.py"
            assert path.is_file(), f"{name}: celery app module {app_module}.celery not found"
            assert re.search(r"^app\s*=\s*Celery\(", path.read_text(encoding="utf-8"), re.M)
            referenced.add(path)
        elif "manage.py" in argv:
            assert (ROOT / "manage.py").is_file()
            referenced.add(ROOT / "manage.py")
    assert {ROOT / "config" / "wsgi.py", ROOT / "config" / "celery.py", ROOT / "manage.py"} <= (
        referenced
    )


def test_requirements_include_what_the_image_runs():
    reqs = requirement_names()
    for package in ("django", "gunicorn", "celery", "django-celery-beat", "redis"):
        assert package in reqs, f"{package} missing from requirements.txt"
    assert "dj-database-url" in reqs
    # python:3.11-slim has no libpq; psycopg needs its binary wheel there.
    assert "psycopg" in reqs
    assert "binary" in reqs["psycopg"]


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_uses_python_311_slim_base():
    froms = [args for kw, args in dockerfile_instructions() if kw == "FROM"]
    assert froms
    for image in froms:
        ref = image.split()[0]
        assert ref.startswith("python:3.11"), ref
    assert final_stage()[0][1].split()[0].startswith("python:3.11")


def test_dockerfile_runs_as_non_root_user():
    users = [args.split()[0] for kw, args in final_stage() if kw == "USER"]
    assert users, "final stage has no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    created = " ".join(args for kw, args in dockerfile_instructions() if kw == "RUN")
    assert re.search(rf"(useradd|adduser)\b.*\b{re.escape(users[-1].split(':')[0])}\b", created)


def test_dockerfile_exposes_8000():
    exposed = [p for kw, args in final_stage() if kw == "EXPOSE" for p in args.split()]
    assert any(p.split("/")[0] == "8000" for p in exposed)


def test_dockerfile_default_command_is_gunicorn():
    commands = [
        exec_or_shell_text(args) for kw, args in final_stage() if kw in ("CMD", "ENTRYPOINT")
    ]
    text = " ".join(commands)
    assert "gunicorn" in text
    assert "config.wsgi:application" in text
    assert "0.0.0.0:8000" in text
    assert "WEB_CONCURRENCY" in text


def test_dockerfile_installs_requirements_without_cache():
    runs = [args for kw, args in dockerfile_instructions() if kw == "RUN"]
    # Each shell command of each RUN, so `pip install -U pip && pip install -r ...` splits.
    commands = [c for r in runs for c in re.split(r"&&|;|\|\|", r)]
    installs = [c for c in commands if re.search(r"pip install .*-r \S*requirements\.txt", c)]
    assert installs, "requirements.txt is never installed"
    assert all("--no-cache-dir" in c for c in installs)
    copies = [args for kw, args in dockerfile_instructions() if kw == "COPY"]
    assert any("requirements.txt" in c for c in copies)


def test_dockerfile_collects_static_with_build_only_settings():
    runs = [args for kw, args in final_stage() if kw == "RUN"]
    collect = [r for r in runs if "collectstatic" in r]
    assert collect, "collectstatic is not run at build time"
    assert "SECRET_KEY=" in collect[0]
    assert re.search(r"\bDEBUG=(1|true)\b", collect[0], re.I)
    # The dummy key is scoped to that RUN, never baked into the image environment.
    envs = " ".join(args for kw, args in dockerfile_instructions() if kw in ("ENV", "ARG"))
    assert "SECRET_KEY" not in envs


def test_dockerfile_sets_python_env():
    envs = " ".join(args for kw, args in final_stage() if kw == "ENV")
    assert re.search(r"PYTHONDONTWRITEBYTECODE[= ]1", envs)
    assert re.search(r"PYTHONUNBUFFERED[= ]1", envs)


def test_dockerignore_excludes_local_state():
    patterns = {
        line.strip().rstrip("/").removeprefix("**/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".git", "__pycache__", "db.sqlite3", ".pytest_cache", ".env"):
        assert required in patterns, f"{required} is not in .dockerignore"


# --- optional: real Compose validation --------------------------------------------------------


def test_docker_compose_config_is_valid():
    """Validates with the real Compose when available; not required (skips otherwise)."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    try:
        version = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"`docker compose version` failed: {exc}")
    if version.returncode != 0:
        reason = (version.stderr or version.stdout).strip().splitlines()
        pytest.skip(f"docker compose unavailable: {reason[0] if reason else 'unknown error'}")
    env = {**os.environ, "SECRET_KEY": "compose-config-check"}
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
