"""Settings, all driven by environment variables with safe defaults.

`DATABASE_URL` unset -> a SQLite file inside the project (the demo needs nothing else);
set -> PostgreSQL through psycopg 3. Production (DEBUG off) refuses to start with the
default secret key.
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


# Long enough for HS256 JWT signing (≥ 32 bytes), and refused in production anyway.
DEFAULT_SECRET_KEY = "insecure-dev-key-change-me-never-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a secret value when DEBUG is off (production mode)."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "accounts",
    "domain_tables",
    "pncp",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "config.middleware.ReleaseRenderedResponse",  # innermost: right after rendering
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with psycopg's C date-time loader (config/postgresql/base.py)
        DATABASES["default"]["ENGINE"] = "config.postgresql"
        # A per-request statement timeout keeps one bad query from holding a worker forever.
        statement_timeout_ms = env_int("DB_STATEMENT_TIMEOUT_MS", 30000)
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            f"-c statement_timeout={statement_timeout_ms}"
        )
        # Django turns psycopg's prepared statements off. The API prepares the few statements
        # it runs on every page (rows by key: pncp.api.rows.RowShape.fetch_keys) and nothing
        # else: psycopg would prepare others automatically only after a billion runs. Set it
        # to 0 behind a transaction-pooling PgBouncer older than 1.21.
        if env_bool("DB_PREPARED_STATEMENTS", True):
            DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 1_000_000_000
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "pt-br"
# PNCP sends Brasília wall-clock times without an offset; we store them as aware datetimes.
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Cache / Redis --------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# The default cache also holds the API throttling counters: with Redis they are shared by every
# worker, so a limit means the same thing however many processes serve the API.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pncp-mirror",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- PNCP -----------------------------------------------------------------------------------
PNCP_BASE_URL = os.environ.get("PNCP_BASE_URL", "https://pncp.gov.br/api/consulta")
PNCP_REQUESTS_PER_SECOND = env_float("PNCP_REQUESTS_PER_SECOND", 5.0)
PNCP_RATE_LIMIT_REDIS_URL = os.environ.get("PNCP_RATE_LIMIT_REDIS_URL", REDIS_URL)
PNCP_USER_AGENT = os.environ.get(
    "PNCP_USER_AGENT", "pncp-mirror/0.1 (+https://github.com/pncp-mirror/pncp-mirror)"
)
PNCP_INCREMENTAL_OVERLAP_DAYS = env_int("PNCP_INCREMENTAL_OVERLAP_DAYS", 2)
# ``sync_pncp --from-dir`` ingests this many saved pages of a resource per transaction (a
# from-dir run is redone, never resumed, so bigger transactions lose nothing on a crash).
PNCP_FROM_DIR_PAGES_PER_COMMIT = env_int("PNCP_FROM_DIR_PAGES_PER_COMMIT", 10)
PNCP_WRITERS = env_int("PNCP_WRITERS", 2)
# --from-dir remembers each clean page by the hash of its bytes (pncp.models.PageFingerprint)
# and re-imports the same bytes without decoding them when their records are unchanged.
PNCP_PAGE_FINGERPRINTS = env_bool("PNCP_PAGE_FINGERPRINTS", True)

# --- CORS and security ----------------------------------------------------------------------
# CORS is an explicit allowlist of origins, never allow-all, and only for the API: browsers
# call it with a bearer token, not cookies, so credentials are not allowed either.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_ALLOW_ALL_ORIGINS = False
CORS_ALLOW_CREDENTIALS = False
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["Retry-After"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes and scrapers call these over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- REST framework -------------------------------------------------------------------------
# Anonymous read of the public records API: off unless explicitly enabled.
API_ANONYMOUS_READ = env_bool("API_ANONYMOUS_READ", False)
# How long a worker process remembers a token's user (accounts.authentication); 0: never.
API_USER_CACHE_SECONDS = env_int("API_USER_CACHE_SECONDS", 10)
# How long a list's totalRegistros may be reused while no import commits (pncp.api.counts;
# only with a shared cache, i.e. REDIS_URL); 0: count every page.
API_COUNT_CACHE_SECONDS = env_int("API_COUNT_CACHE_SECONDS", 60)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.CachedUserJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.CanReadRecords"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "pncp.api.pagination.PNCPPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "pncp.api.exceptions.api_exception_handler",
    # Per user when authenticated, per client IP when anonymous; counters live in the default
    # cache (Redis when REDIS_URL is set). The classes read the rates below at request time.
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttling.AnonThrottle",
        "accounts.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
        "user": os.environ.get("API_THROTTLE_USER", "600/min"),
        # token obtain/refresh/verify and logout, per client IP: slows password guessing
        "auth": os.environ.get("API_THROTTLE_AUTH", "30/min"),
    },
    # How many reverse proxies sit in front of us: the client IP of anonymous throttling is
    # taken from X-Forwarded-For only that deep, so clients cannot forge it (0: REMOTE_ADDR).
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "pncp-mirror API",
    "DESCRIPTION": (
        "A fast, complete, auditable mirror of PNCP procurement data.\n\n"
        "Autenticação: `POST /api/v1/auth/token/` com usuário e senha devolve um par de tokens "
        "JWT; envie o `access` (15 min) em `Authorization: Bearer <token>` e renove-o com o "
        "`refresh` (1 dia, rotativo) em `POST /api/v1/auth/token/refresh/`. Parâmetros e "
        "envelope de paginação seguem a API de Consulta do PNCP. Todo erro 4xx/5xx tem o "
        "formato `Erro`."
    ),
    "VERSION": "1.0.0",
    # The docs are public; what they describe still needs a token.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "deepLinking": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.models.User.Role",
        "SyncRunStatusEnum": "pncp.models.SyncRun.Status",
        "SyncTriggerEnum": "pncp.models.SyncRun.Trigger",
        "CheckpointStatusEnum": "pncp.models.SyncCheckpoint.Status",
        "CoverageStatusEnum": "pncp.models.Coverage.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "pncp.api.openapi.document_error_responses",
    ],
    "TAGS": [
        {"name": "auth", "description": "Tokens JWT, logout e o usuário atual."},
        {"name": "operações", "description": "Execuções, cobertura e quarentena (operadores)."},
    ],
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
# A window task runs minutes, not hours; the hard limit stays well below the Redis
# visibility timeout so an unacknowledged task is never redelivered while it still runs.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 300
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600),
    # Extra kombu options as JSON, e.g. faster restore of unacked messages in tests.
    **json.loads(os.environ.get("CELERY_BROKER_TRANSPORT_OPTIONS_JSON") or "{}"),
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
