"""The one place that speaks HTTP to PNCP's Consulta API.

PNCP is a public, unauthenticated, frequently overloaded government API whose status codes do
not always mean what HTTP says (204 *and* 404 *and* an empty 200 all mean "nothing here", a 400
can mean "past the last page" or "page too big", a 422 is sometimes spurious). Everything that
knows about those quirks lives here, so the sync code above only ever sees:

* a :class:`Page` whose ``status`` is ``"ok"``, ``"empty"`` or ``"end"``;
* :class:`PNCPRequestError` (our request is wrong: do not retry it as is);
* :class:`PNCPPageSizeError` (shrink ``tamanhoPagina`` and retry);
* :class:`PNCPUnavailableError` (PNCP is down or throttling: retry later);
* :class:`CircuitOpenError` (we already know PNCP is down for this resource: retry later).

Politeness is built in: a rate limiter (local or shared through Redis by every worker), retries
with exponential backoff and jitter, ``Retry-After`` on 429, a per-resource circuit breaker and
an optional AIMD concurrency controller the caller can use to size its thread pool.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import requests
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pncp.parsers import loads

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://pncp.gov.br/api/consulta"
CONSULTA_SUFFIX = "/api/consulta"
MAIN_API_SUFFIX = "/api/pncp"
DEFAULT_REQUESTS_PER_SECOND = 5.0
PROJECT_URL = "https://github.com/pncp-mirror"

SleepFn = Callable[[float], None]
ClockFn = Callable[[], float]
OnRequestHook = Callable[[str, int, float], None]
PageStatus = Literal["ok", "empty", "end"]


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("pncp-mirror")
    except (ImportError, PackageNotFoundError):
        return "0.1.0"


def _setting(name: str, default: Any) -> Any:
    """Read a Django setting lazily, so this module also works where Django is not configured
    (scripts, ``-p no:django`` tests): any failure to reach the settings gives ``default``."""
    try:
        from django.conf import settings

        return getattr(settings, name, default)
    except Exception:  # ImportError, ImproperlyConfigured: Django is optional here
        return default


def main_api_base_url(consulta_base_url: str | None = None) -> str:
    """The base URL of PNCP's main API (``/api/pncp``: itens, resultados, domain services).

    ``PNCP_API_BASE_URL`` when configured and no Consulta URL is given; otherwise the Consulta
    base URL with its trailing ``/api/consulta`` replaced by ``/api/pncp`` (a fake or a proxy
    serving both APIs under one host keeps working without a second setting).
    """
    if consulta_base_url is None:
        configured = _setting("PNCP_API_BASE_URL", None)
        if configured:
            return str(configured).rstrip("/")
        consulta_base_url = _setting("PNCP_BASE_URL", DEFAULT_BASE_URL) or DEFAULT_BASE_URL
    base = consulta_base_url.rstrip("/")
    if base.endswith(CONSULTA_SUFFIX):
        return base[: -len(CONSULTA_SUFFIX)] + MAIN_API_SUFFIX
    return base


def default_user_agent() -> str:
    """A User-Agent that tells PNCP's operators who we are and where to read about us.

    ``PNCP_USER_AGENT_CONTACT`` (e.g. an e-mail address) is appended when configured, so an
    operator can reach whoever runs this mirror instead of just blocking it.
    """
    contact = _setting("PNCP_USER_AGENT_CONTACT", "") or ""
    details = f"+{PROJECT_URL}; {contact}" if contact else f"+{PROJECT_URL}"
    return f"pncp-mirror/{_version()} ({details})"


# --------------------------------------------------------------------------------------------
# Results and errors
# --------------------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of a paged PNCP list endpoint.

    ``status`` is ``"ok"`` when the page has records, ``"empty"`` when the window has nothing
    (204, empty 200 body, 404 "Nenhum ... encontrado", or an empty ``data`` list on page 1) and
    ``"end"`` when we asked for a page past the last one (400 on ``pagina`` > 1, or an empty
    answer on ``pagina`` > 1). ``raw`` is the exact body, kept so ``--save-dir`` can archive it.
    """

    status: str
    data: list[dict]
    total_registros: int | None
    total_paginas: int | None
    numero_pagina: int | None
    paginas_restantes: int | None
    raw: bytes
    url: str
    retries: int


class PNCPError(Exception):
    """Base class of every error this client raises on purpose."""


class PNCPRequestError(PNCPError):
    """PNCP refused our request (4xx): retrying the same request will not help."""

    def __init__(self, status: int, url: str, message: str) -> None:
        self.status = status
        self.url = url
        self.message = message
        super().__init__(f"PNCP answered HTTP {status} for {url}: {message}")


class PNCPPageSizeError(PNCPRequestError):
    """PNCP refused ``tamanhoPagina``; ``limit`` is the maximum it announced, if it said one."""

    def __init__(self, status: int, url: str, message: str, limit: int | None) -> None:
        super().__init__(status, url, message)
        self.limit = limit


class PNCPUnavailableError(PNCPError):
    """Retries exhausted on 5xx, 429, timeouts, connection errors or unparsable bodies."""

    def __init__(
        self, url: str, last_error: str, *, attempts: int, last_status: int | None = None
    ) -> None:
        self.url = url
        self.last_error = last_error
        self.attempts = attempts
        self.last_status = last_status
        super().__init__(f"PNCP unavailable for {url} after {attempts} attempt(s): {last_error}")


class CircuitOpenError(PNCPError):
    """The circuit breaker for this resource is open: the call was refused without a request."""

    def __init__(self, key: str, retry_in: float) -> None:
        self.key = key
        self.retry_in = retry_in
        super().__init__(f"circuit open for {key}; next trial in {retry_in:.1f}s")


class _Retryable(Exception):
    """Internal: a transient failure that tenacity should retry.

    ``retry_after`` overrides the backoff (429). ``final`` is raised instead of
    :class:`PNCPUnavailableError` when this turns out to be the last attempt (spurious 422).
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        final: PNCPError | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.final = final


# --------------------------------------------------------------------------------------------
# Error bodies and page-size detection
# --------------------------------------------------------------------------------------------

# "Nenhum instrumento de Cobrança encontrado.", "Nenhuma contratação encontrada", "Compra não
# encontrada": PNCP's way of saying "empty" through a 404.
_NOT_FOUND_EMPTY = re.compile(r"nenhum.*encontrad|n[aã]o\s+(?:foi\s+)?encontrad", re.I | re.S)
_PAGE_SIZE = re.compile(
    r"tamanho\s*(?:d[ae]\s*)?p[aá]gina|tamanhopagina|page\s*size|pagesize", re.I
)
_LIMIT_AFTER_KEYWORD = re.compile(
    r"(?:m[aá]xim[oa]|menor\s+(?:ou\s+igual\s+)?(?:a|que)|at[eé]|limite|max(?:imum)?|<=?)"
    r"\D{0,20}?(\d+)",
    re.I,
)
# Bodies that say nothing beyond the status line; a 400 like that on page 1 with a big page is
# PNCP's "silent" page-size refusal.
_GENERIC_MESSAGES = {
    "",
    "bad request",
    "400 bad request",
    "400 bad_request",
    "no message available",
}


def error_message(response: requests.Response) -> tuple[str, bool]:
    """PNCP's ``message`` from a JSON error body, else the text; and whether it came from JSON.

    Both observed shapes (``"status": 404`` as a number or ``"status": "422"`` as a string)
    carry a ``message`` string, which is all we need. The body is decoded from bytes as JSON
    (UTF-8) rather than through ``response.text``: PNCP sends no charset, and requests would
    then guess ISO-8859-1 for ``text/*`` and turn "inválida" into "invÃ¡lida".
    """
    body = response.content or b""
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        payload = None
    text = body.decode("utf-8", errors="replace")
    if isinstance(payload, dict):
        message = payload.get("message")
        if isinstance(message, str) and message.strip():
            return message.strip(), True
    return text.strip()[:1000], False


def parse_page_size_limit(message: str, requested: int | None = None) -> int | None:
    """The page-size maximum announced in ``message``, or ``None`` when it names none.

    A number after a "maximum" word wins ("menor ou igual a 50", "máximo de 50"). Otherwise the
    largest number other than the size we asked for ("entre 10 e 50" -> 50); a message quoting
    only our own value ("tamanhoPagina 500 inválido") announces no limit.
    """
    match = _LIMIT_AFTER_KEYWORD.search(message)
    if match:
        return int(match.group(1))
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    candidates = [n for n in numbers if n != requested]
    return max(candidates) if candidates else None


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    try:
        return int(params[name])
    except (KeyError, TypeError, ValueError):
        return None


def page_size_error(
    status: int,
    message: str,
    *,
    url: str,
    params: Mapping[str, Any],
    message_from_json: bool,
) -> PNCPPageSizeError | None:
    """Recognise PNCP's page-size refusals, or return ``None``.

    Two shapes: a 400/422 whose message talks about ``tamanhoPagina`` (limit parsed from it),
    and the "silent" 400 on ``pagina=1`` with ``tamanhoPagina`` > 10 and an empty or generic body
    (contratações since Feb 2026): nothing else explains a 400 on the first page of a query
    that only differs from a working one by its page size, so the caller should shrink it.
    """
    requested = _int_param(params, "tamanhoPagina")
    if status in (400, 422) and _PAGE_SIZE.search(message):
        return PNCPPageSizeError(status, url, message, parse_page_size_limit(message, requested))
    unhelpful = not message_from_json or message.strip().lower() in _GENERIC_MESSAGES
    pagina = _int_param(params, "pagina") or 1
    if status == 400 and pagina == 1 and requested is not None and requested > 10 and unhelpful:
        return PNCPPageSizeError(status, url, message or "silent 400 on page 1", None)
    return None


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def resource_key(path: str) -> str:
    """The circuit-breaker key of a path: numeric segments (CNPJ, ano, sequencial) become ``{}``
    so every detail call of one endpoint shares one breaker, and the breaker table stays small.
    """
    segments = path.split("?", 1)[0].split("/")
    return "/".join("{}" if re.fullmatch(r"[\d.\-]+", s) else s for s in segments)


# --------------------------------------------------------------------------------------------
# Adaptive concurrency
# --------------------------------------------------------------------------------------------


class AdaptiveConcurrency:
    """AIMD controller for how many requests a caller should run in parallel.

    Additive increase (+1 after ``k`` consecutive fast successes), multiplicative decrease
    (halve on 429/5xx/timeouts and on answers slower than ``slow_threshold`` seconds): the same
    rule TCP uses to find the capacity of a link it cannot see, here PNCP's tolerance.
    """

    def __init__(
        self,
        initial: int = 4,
        maximum: int = 16,
        *,
        k: int = 10,
        slow_threshold: float = 10.0,
        minimum: int = 1,
    ) -> None:
        if minimum < 1 or maximum < minimum:
            raise ValueError("need 1 <= minimum <= maximum")
        self.minimum = minimum
        self.maximum = maximum
        self.k = max(1, k)
        self.slow_threshold = slow_threshold
        self._limit = min(max(initial, minimum), maximum)
        self._streak = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        with self._lock:
            return self._limit

    def on_success(self, latency: float) -> None:
        """A good answer; a slow one counts as congestion and halves the limit."""
        if latency >= self.slow_threshold:
            self.on_throttle()
            return
        with self._lock:
            self._streak += 1
            if self._streak >= self.k:
                self._streak = 0
                self._limit = min(self.maximum, self._limit + 1)

    def on_throttle(self) -> None:
        """PNCP pushed back (429/5xx/timeout, or a slow answer): halve the limit."""
        with self._lock:
            self._streak = 0
            self._limit = max(self.minimum, self._limit // 2)


# --------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------


class RateLimiter(Protocol):
    def acquire(self) -> None: ...


class NullRateLimiter:
    """``requests_per_second = 0``: no limit."""

    def acquire(self) -> None:
        return None


class LocalRateLimiter:
    """Thread-safe token bucket with reservations.

    Each caller takes a token even when the bucket is empty (the balance goes negative) and
    sleeps for its own debt *outside* the lock, so waiting threads queue in arrival order and
    never hold each other up longer than the rate requires. ``burst=1`` spaces requests evenly.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: ClockFn = time.monotonic,
        sleep: SleepFn = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token and return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)


# GCRA with reservations, on Redis' own clock so workers on different hosts agree on time.
# KEYS[1]: the key; ARGV[1]: µs between requests; ARGV[2]: burst tolerance in µs.
# Returns how many µs the caller must wait before sending.
_GCRA_LUA = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local start = tat - tolerance
if start < now then start = now end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return start - now
"""


class RedisRateLimiter:
    """Rate limit shared by every process that uses the same Redis key (all Celery workers).

    A Lua GCRA script keeps one "theoretical arrival time" in Redis and hands each caller its
    slot atomically. If Redis cannot be reached we fall back to ``fallback`` (a local limiter)
    with a warning and try Redis again after ``retry_interval`` seconds: the limiter must never
    be the reason a sync fails.
    """

    def __init__(
        self,
        url: str,
        key: str,
        rate: float,
        *,
        burst: int = 1,
        fallback: LocalRateLimiter,
        clock: ClockFn = time.monotonic,
        sleep: SleepFn = time.sleep,
        retry_interval: float = 30.0,
        socket_timeout: float = 0.5,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.url = url
        self.key = key
        self.interval_us = max(1, round(1_000_000 / rate))
        self.tolerance_us = (max(1, burst) - 1) * self.interval_us
        self.fallback = fallback
        self._clock = clock
        self._sleep = sleep
        self._retry_interval = retry_interval
        self._socket_timeout = socket_timeout
        self._script: Any = None
        self._down_until: float | None = None
        self._lock = threading.Lock()

    def _get_script(self) -> Any:
        with self._lock:
            if self._script is None:
                import redis

                client = redis.Redis.from_url(
                    self.url,
                    socket_connect_timeout=self._socket_timeout,
                    socket_timeout=self._socket_timeout,
                )
                self._script = client.register_script(_GCRA_LUA)
            return self._script

    def reserve(self) -> float | None:
        """Seconds to wait for our shared slot, or ``None`` when Redis is unusable right now."""
        if self._down_until is not None and self._clock() < self._down_until:
            return None
        try:
            wait_us = self._get_script()(
                keys=[self.key], args=[self.interval_us, self.tolerance_us]
            )
        except Exception as exc:  # any Redis/network/URL problem: degrade, never fail the sync
            if self._down_until is None:
                logger.warning(
                    "PNCP rate limiter: Redis at %s unusable (%s); using a local limiter, "
                    "so the rate is no longer shared between workers",
                    _redact(self.url),
                    exc,
                )
            self._down_until = self._clock() + self._retry_interval
            return None
        if self._down_until is not None:
            logger.info("PNCP rate limiter: Redis is back, the rate is shared again")
            self._down_until = None
        return max(0.0, int(wait_us) / 1_000_000)

    def acquire(self) -> None:
        wait = self.reserve()
        if wait is None:
            self.fallback.acquire()
        elif wait > 0:
            self._sleep(wait)


def _redact(url: str) -> str:
    """Hide a password in a Redis URL before logging it."""
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


# --------------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------------


@dataclass
class _BreakerState:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False


class CircuitBreaker:
    """Per-resource breaker: closed -> open after ``threshold`` consecutive failed calls ->
    half-open after ``cooldown`` seconds (exactly one trial call) -> closed on success.

    A failed call is one that ended in :class:`PNCPUnavailableError` (its retries were spent),
    so with the defaults a dead PNCP still gets a full retry cycle per call before we give up,
    but not an endless stream of them. 4xx answers prove PNCP is up and count as successes.
    """

    def __init__(self, threshold: int = 5, cooldown: float = 60.0, clock: ClockFn = time.monotonic):
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._states: dict[str, _BreakerState] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> None:
        """Let a call through, or raise :class:`CircuitOpenError`."""
        if self.threshold <= 0:
            return
        with self._lock:
            state = self._states.get(key)
            if state is None or state.opened_at is None:
                return
            remaining = state.opened_at + self.cooldown - self._clock()
            if remaining > 0:
                raise CircuitOpenError(key, remaining)
            if state.trial:
                raise CircuitOpenError(key, 0.0)
            state.trial = True  # half-open: this call is the trial

    def success(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)

    def failure(self, key: str) -> None:
        if self.threshold <= 0:
            return
        with self._lock:
            state = self._states.setdefault(key, _BreakerState())
            if state.trial:
                state.trial = False
                state.opened_at = self._clock()
                logger.warning("PNCP circuit for %s: trial call failed, open again", key)
                return
            state.failures += 1
            if state.failures >= self.threshold:
                state.opened_at = self._clock()
                logger.warning(
                    "PNCP circuit for %s open for %.0fs after %d failed calls",
                    key,
                    self.cooldown,
                    state.failures,
                )

    def release(self, key: str) -> None:
        """The call ended with an unexpected error: free the trial slot, change nothing else."""
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                state.trial = False

    def state(self, key: str) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` (for logs and tests)."""
        with self._lock:
            state = self._states.get(key)
            if state is None or state.opened_at is None:
                return "closed"
            if state.opened_at + self.cooldown > self._clock():
                return "open"
            return "half-open"


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """Per-call state shared by the attempts of one logical request."""

    path: str
    url: str
    params: dict[str, Any]
    paged: bool
    total_paginas: int | None = None
    retries: int = 0
    seen_422: int = 0
    pagina: int = field(init=False)

    def __post_init__(self) -> None:
        self.pagina = _int_param(self.params, "pagina") or 1


_TRANSPORT_ERRORS = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class PNCPClient:
    """HTTP client for PNCP's Consulta API (see the module docstring for the contract).

    Thread-safe: one instance can serve a thread pool, which is what makes the shared rate
    limiter, breaker, concurrency controller and stats meaningful.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_base_url: str | None = None,
        timeout: float | tuple[float, float] = (5.0, 60.0),
        max_attempts: int = 6,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        max_retry_after: float = 300.0,
        requests_per_second: float | None = None,
        redis_url: str | None = None,
        user_agent: str | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 60.0,
        concurrency: AdaptiveConcurrency | None = None,
        session: requests.Session | None = None,
        sleep: SleepFn = time.sleep,
        clock: ClockFn = time.monotonic,
        on_request: OnRequestHook | None = None,
    ) -> None:
        self.base_url = (
            base_url or _setting("PNCP_BASE_URL", DEFAULT_BASE_URL) or DEFAULT_BASE_URL
        ).rstrip("/")
        # PNCP's main API: derived from an explicit Consulta URL (so a test's fake serves
        # both), else from the settings.
        self.api_base_url = (api_base_url or main_api_base_url(base_url)).rstrip("/")
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent or _setting("PNCP_USER_AGENT", "") or default_user_agent()
        self.concurrency = concurrency
        self.on_request = on_request
        self._sleep = sleep
        self._clock = clock
        self._own_session = session is None
        self.session = session or requests.Session()
        self._headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_initial, max=backoff_max, jitter=backoff_initial
        )
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown, clock)

        if requests_per_second is None:
            requests_per_second = float(
                _setting("PNCP_REQUESTS_PER_SECOND", DEFAULT_REQUESTS_PER_SECOND)
            )
        if redis_url is None:
            redis_url = _setting("PNCP_RATE_LIMIT_REDIS_URL", "") or _setting("REDIS_URL", "")
        self.requests_per_second = requests_per_second
        self.limiter = self._make_limiter(requests_per_second, redis_url or "")

        self._stats_lock = threading.Lock()
        self._requests = 0
        self._retries = 0
        self._throttled = 0
        self._transport_errors = 0
        self._latency_total = 0.0
        self._by_status: dict[int, int] = {}

    def _make_limiter(self, rate: float, redis_url: str) -> RateLimiter:
        if rate <= 0:
            return NullRateLimiter()
        local = LocalRateLimiter(rate, clock=self._clock, sleep=self._sleep)
        if not redis_url:
            return local
        # One budget per PNCP host, whatever path or worker the request comes from.
        key = f"pncp-mirror:ratelimit:{urlsplit(self.base_url).netloc or self.base_url}"
        return RedisRateLimiter(
            redis_url, key, rate, fallback=local, clock=self._clock, sleep=self._sleep
        )

    # -- public API ---------------------------------------------------------------------------

    def get_page(
        self, path: str, params: dict[str, Any], *, total_paginas: int | None = None
    ) -> Page:
        """Fetch one page of a paged list endpoint and parse PNCP's envelope.

        ``params`` must carry ``pagina`` (and usually ``tamanhoPagina``). ``total_paginas`` is
        what the caller already knows of the page count: a 400 on ``pagina`` > 1 is read as
        "past the last page" (status ``"end"``) unless the caller knows the page should exist
        (``pagina`` <= ``total_paginas``), in which case it is a real error and is raised, so a
        bad answer never silently truncates a window.
        """
        call = self._new_call(path, params, paged=True, total_paginas=total_paginas)
        return self._run(call, self._interpret_page)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict | list | None:
        """Fetch an unpaged (detail) endpoint; ``None`` when PNCP says there is nothing
        (204, empty 200 body, 404 "... não encontrada" / "Nenhum ... encontrado")."""
        call = self._new_call(path, params or {}, paged=False)
        return self._run(call, self._interpret_json)

    def get_list(self, path: str, params: dict[str, Any] | None = None) -> list:
        """Fetch a list of PNCP's main API (itens, resultados, domain services).

        These answer a bare JSON array; 204, an empty body and 404 all mean an empty list
        (sub-resource lists answer 404 when there is nothing). With ``pagina`` in ``params``
        the page-size refusals raise :class:`PNCPPageSizeError` as on the Consulta API.
        """
        params = params or {}
        call = self._new_call(path, params, paged="pagina" in params, base=self.api_base_url)
        return self._run(call, self._interpret_list)

    @property
    def stats(self) -> dict[str, Any]:
        """A consistent snapshot of the counters (safe to mutate)."""
        with self._stats_lock:
            return {
                "requests": self._requests,
                "retries": self._retries,
                "throttled": self._throttled,
                "transport_errors": self._transport_errors,
                "latency_total": self._latency_total,
                "by_status": dict(self._by_status),
            }

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> PNCPClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- machinery ----------------------------------------------------------------------------

    def _new_call(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        paged: bool,
        total_paginas: int | None = None,
        base: str | None = None,
    ) -> _Call:
        url = f"{base or self.base_url}/{path.lstrip('/')}"
        clean = {k: v for k, v in params.items() if v is not None}
        full_url = requests.Request("GET", url, params=clean).prepare().url or url
        return _Call(path, full_url, clean, paged, total_paginas)

    def _run(self, call: _Call, interpret: Callable[[requests.Response, _Call], Any]) -> Any:
        """One logical call: breaker check, then attempts under tenacity, then breaker update."""
        key = resource_key(call.path)
        self.breaker.acquire(key)
        try:
            result = self._with_retries(call, interpret)
        except PNCPUnavailableError:
            self.breaker.failure(key)
            raise
        except PNCPRequestError:
            self.breaker.success(key)  # PNCP answered; it is up
            raise
        except BaseException:
            self.breaker.release(key)
            raise
        self.breaker.success(key)
        return result

    def _with_retries(
        self, call: _Call, interpret: Callable[[requests.Response, _Call], Any]
    ) -> Any:
        def attempt() -> Any:
            return interpret(self._send(call), call)

        def before_sleep(state: RetryCallState) -> None:
            call.retries += 1
            with self._stats_lock:
                self._retries += 1
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "PNCP retry %d for %s in %.1fs: %s",
                call.retries,
                call.url,
                state.upcoming_sleep,
                exc,
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=False,
        )
        try:
            return retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            if isinstance(last, _Retryable) and last.final is not None:
                raise last.final from last
            status = last.status if isinstance(last, _Retryable) else None
            raise PNCPUnavailableError(
                call.url, str(last), attempts=exc.last_attempt.attempt_number, last_status=status
            ) from last

    def _wait(self, state: RetryCallState) -> float:
        """``Retry-After`` when PNCP sent one (capped), else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return float(self._backoff(state))

    def _send(self, call: _Call) -> requests.Response:
        self.limiter.acquire()
        start = self._clock()
        try:
            response = self.session.get(call.url, timeout=self.timeout, headers=self._headers)
        except _TRANSPORT_ERRORS as exc:
            self._observe(call.path, 0, self._clock() - start)
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        self._observe(call.path, response.status_code, self._clock() - start)
        return response

    def _observe(self, path: str, status: int, latency: float) -> None:
        """Count one HTTP attempt (status 0 = no response) and feed the hooks."""
        with self._stats_lock:
            self._requests += 1
            self._latency_total += latency
            self._by_status[status] = self._by_status.get(status, 0) + 1
            if status == 429:
                self._throttled += 1
            if status == 0:
                self._transport_errors += 1
        if self.concurrency is not None:
            if status == 0 or status == 429 or status >= 500:
                self.concurrency.on_throttle()
            else:
                self.concurrency.on_success(latency)
        if self.on_request is not None:
            try:
                self.on_request(path, status, latency)
            except Exception:  # metrics must never break a sync
                logger.exception("PNCP on_request hook failed")

    # -- interpreting answers -----------------------------------------------------------------

    def _classify_error(self, response: requests.Response, call: _Call) -> Literal["empty", "end"]:
        """Turn a non-2xx answer into "empty"/"end", a retry, or an exception."""
        status = response.status_code
        if status == 429:
            raise _Retryable(
                "HTTP 429 Too Many Requests",
                status=429,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        message, from_json = error_message(response)
        if status >= 500:
            raise _Retryable(f"HTTP {status}: {message[:200]}", status=status)
        if status == 404 and _NOT_FOUND_EMPTY.search(message):
            return "empty"
        if call.paged:
            size_error = page_size_error(
                status, message, url=call.url, params=call.params, message_from_json=from_json
            )
            if size_error is not None:
                raise size_error
            past_known_end = call.total_paginas is None or call.pagina > call.total_paginas
            if status == 400 and call.pagina > 1 and past_known_end:
                return "end"
        error = PNCPRequestError(status, call.url, message)
        if status == 422 and call.seen_422 == 0:
            # PNCP sometimes refuses perfectly valid windows with a 422; one more try settles it.
            call.seen_422 += 1
            raise _Retryable(f"HTTP 422 (retried once): {message}", status=422, final=error)
        raise error

    @staticmethod
    def _parse_json(body: bytes) -> Any:
        try:
            return loads(body)
        except ValueError as exc:  # truncated or garbled: PNCP cut the answer short
            raise _Retryable(f"invalid JSON in 200 body ({len(body)} bytes): {exc}") from exc

    def _empty_page(self, call: _Call, status: Literal["empty", "end"], raw: bytes) -> Page:
        if status == "empty" and call.pagina > 1:
            status = "end"  # nothing on a later page means we ran past the last one
        return Page(status, [], None, None, None, None, raw, call.url, call.retries)

    def _interpret_page(self, response: requests.Response, call: _Call) -> Page:
        status = response.status_code
        body = response.content or b""
        if status == 204 or (200 <= status < 300 and not body.strip()):
            return self._empty_page(call, "empty", body)
        if not 200 <= status < 300:
            return self._empty_page(call, self._classify_error(response, call), body)
        payload = self._parse_json(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise _Retryable(f"unexpected envelope (no 'data' list) in 200 body of {call.url}")
        data = payload["data"]
        page_status: PageStatus = "ok" if data else ("empty" if call.pagina <= 1 else "end")
        return Page(
            status=page_status,
            data=data,
            total_registros=_as_int(payload.get("totalRegistros")),
            total_paginas=_as_int(payload.get("totalPaginas")),
            numero_pagina=_as_int(payload.get("numeroPagina")),
            paginas_restantes=_as_int(payload.get("paginasRestantes")),
            raw=body,
            url=call.url,
            retries=call.retries,
        )

    def _interpret_json(self, response: requests.Response, call: _Call) -> dict | list | None:
        status = response.status_code
        body = response.content or b""
        if status == 204 or (200 <= status < 300 and not body.strip()):
            return None
        if not 200 <= status < 300:
            self._classify_error(response, call)  # raises unless PNCP said "nothing here"
            return None
        payload = self._parse_json(body)
        if not isinstance(payload, dict | list):
            raise _Retryable(f"unexpected JSON ({type(payload).__name__}) in 200 body")
        return payload

    def _interpret_list(self, response: requests.Response, call: _Call) -> list:
        status = response.status_code
        body = response.content or b""
        if status == 404 and not error_message(response)[0].startswith("No static resource"):
            return []  # an empty sub-resource list; Spring's "No static resource" is a bad path
        if status == 204 or (200 <= status < 300 and not body.strip()):
            return []
        if not 200 <= status < 300:
            self._classify_error(response, call)  # raises unless PNCP said "nothing here"
            return []
        payload = self._parse_json(body)
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]  # tolerate an envelope, should PNCP add one
        if not isinstance(payload, list):
            raise _Retryable(f"unexpected JSON ({type(payload).__name__}) in 200 body of a list")
        return payload


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None
