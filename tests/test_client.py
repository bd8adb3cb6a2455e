"""Tests for pncp.client: PNCP is stubbed with `responses`; time is fake (no real sleeping).

The Redis-shared limiter test talks to the real Redis at redis://127.0.0.1:6379/15 and is
skipped when that Redis is not reachable.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses

from pncp import client as client_module
from pncp.client import (
    AdaptiveConcurrency,
    CircuitBreaker,
    CircuitOpenError,
    LocalRateLimiter,
    NullRateLimiter,
    PNCPClient,
    PNCPPageSizeError,
    PNCPRequestError,
    PNCPUnavailableError,
    RedisRateLimiter,
    parse_page_size_limit,
    parse_retry_after,
    resource_key,
)

BASE = "https://pncp.test/api/consulta"
PATH = "/v1/contratos"
URL = BASE + PATH
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"

# The two real PNCP error bodies (samples/error_1.json and error_2.json), byte for byte.
ERROR_404_EMPTY = (
    '{\n "timestamp": "2025-07-18T02:09:24.420+00:00",\n "status": 404,\n'
    ' "error": "Not Found",\n "message": "Nenhum instrumento de Cobrança encontrado.",\n'
    ' "path": "/pncp-consulta/v1/instrumentoscobranca/inclusao"\n}'
).encode()
ERROR_422 = (
    '{\n "path": "/pncp-consulta/v1/contratacoes/proposta",\n'
    ' "message": "Data Final inválida. Data Final deve ser maior ou igual a data atual",\n'
    ' "error": "422 UNPROCESSABLE_ENTITY",\n "timestamp": "2025-07-17T23:09:25.765-03:00",\n'
    ' "status": "422"\n}'
).encode()
ERROR_422_MESSAGE = "Data Final inválida. Data Final deve ser maior ou igual a data atual"


def envelope(records: list[dict], *, total: int = 25, pages: int = 3, number: int = 1) -> bytes:
    return json.dumps(
        {
            "data": records,
            "totalRegistros": total,
            "totalPaginas": pages,
            "numeroPagina": number,
            "paginasRestantes": pages - number,
            "empty": not records,
        }
    ).encode()


OK_BODY = envelope([{"numeroControlePNCP": "00402552000126-2-000322/2022", "valorGlobal": 840.5}])


class FakeTime:
    """Injected clock and sleep: sleeping advances the clock and is recorded, instantly."""

    def __init__(self, start: float = 1000.0, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick
        self.sleeps: list[float] = []

    def clock(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Callable[..., PNCPClient]:
    """A client with no rate limit, no Redis and fake time, whatever the Django settings say."""

    def make(**overrides: Any) -> PNCPClient:
        options: dict[str, Any] = {
            "base_url": BASE,
            "requests_per_second": 0,
            "redis_url": "",
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
        }
        options.update(overrides)
        return PNCPClient(**options)

    return make


# --- successful and empty answers ------------------------------------------------------------


def test_200_page_is_parsed(rsps, make_client):
    rsps.add(responses.GET, URL, body=OK_BODY, status=200)
    page = make_client().get_page(PATH, {"dataInicial": "20240701", "pagina": 1})

    assert page.status == "ok"
    assert page.data == [
        {"numeroControlePNCP": "00402552000126-2-000322/2022", "valorGlobal": 840.5}
    ]
    assert isinstance(page.data[0]["valorGlobal"], float)
    assert (page.total_registros, page.total_paginas) == (25, 3)
    assert (page.numero_pagina, page.paginas_restantes) == (1, 2)
    assert page.raw == OK_BODY
    assert page.retries == 0
    assert page.url == f"{URL}?dataInicial=20240701&pagina=1"


def test_none_params_are_not_sent(rsps, make_client):
    rsps.add(responses.GET, URL, body=OK_BODY)
    make_client().get_page(PATH, {"pagina": 2, "cnpj": None, "tamanhoPagina": 50})
    assert rsps.calls[0].request.url == f"{URL}?pagina=2&tamanhoPagina=50"


def test_204_is_an_empty_window(rsps, make_client):
    rsps.add(responses.GET, URL, status=204)
    page = make_client().get_page(PATH, {"pagina": 1})
    assert (page.status, page.data, page.raw, page.total_registros) == ("empty", [], b"", None)


def test_204_past_the_first_page_is_the_end(rsps, make_client):
    rsps.add(responses.GET, URL, status=204)
    assert make_client().get_page(PATH, {"pagina": 4}).status == "end"


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_200_with_empty_body_is_empty(rsps, make_client, body):
    rsps.add(responses.GET, BASE + "/v1/pca/atualizacao", body=body, status=200)
    page = make_client().get_page("/v1/pca/atualizacao", {"pagina": 1})
    assert page.status == "empty"
    assert page.data == []
    assert len(rsps.calls) == 1  # not retried as "invalid JSON"


def test_200_with_empty_data_list(rsps, make_client):
    rsps.add(responses.GET, URL, body=envelope([], total=0, pages=0))
    client = make_client()
    assert client.get_page(PATH, {"pagina": 1}).status == "empty"
    assert client.get_page(PATH, {"pagina": 2}).status == "end"


def test_404_nenhum_encontrado_is_empty(rsps, make_client):
    url = BASE + "/v1/instrumentoscobranca/inclusao"
    rsps.add(responses.GET, url, body=ERROR_404_EMPTY, status=404)
    page = make_client().get_page("/v1/instrumentoscobranca/inclusao", {"pagina": 1})
    assert page.status == "empty"
    assert page.data == []
    assert len(rsps.calls) == 1


def test_other_404_raises(rsps, make_client):
    body = {"status": 404, "error": "Not Found", "message": "No message available"}
    rsps.add(responses.GET, URL, json=body, status=404)
    with pytest.raises(PNCPRequestError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1})
    assert excinfo.value.status == 404
    assert excinfo.value.message == "No message available"


def test_400_past_the_last_page_is_the_end(rsps, make_client):
    rsps.add(responses.GET, URL, json={"message": "Bad Request"}, status=400)
    client = make_client()
    assert client.get_page(PATH, {"pagina": 5}).status == "end"
    assert client.get_page(PATH, {"pagina": 5}, total_paginas=4).status == "end"
    assert len(rsps.calls) == 2  # never retried


def test_400_on_a_page_that_should_exist_is_an_error(rsps, make_client):
    rsps.add(responses.GET, URL, json={"message": "Erro interno"}, status=400)
    with pytest.raises(PNCPRequestError) as excinfo:
        make_client().get_page(PATH, {"pagina": 3}, total_paginas=10)
    assert excinfo.value.status == 400
    assert excinfo.value.message == "Erro interno"


# --- retries ---------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "7"})
    rsps.add(responses.GET, URL, body=OK_BODY)
    client = make_client()
    page = client.get_page(PATH, {"pagina": 1})

    assert page.status == "ok"
    assert fake_time.sleeps == [7.0]
    assert page.retries == 1
    assert client.stats["throttled"] == 1
    assert client.stats["retries"] == 1


def test_429_retry_after_is_capped(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "1000"})
    rsps.add(responses.GET, URL, body=OK_BODY)
    make_client(max_retry_after=30.0).get_page(PATH, {"pagina": 1})
    assert fake_time.sleeps == [30.0]


def test_429_retry_after_http_date(rsps, make_client, fake_time):
    when = datetime.now(UTC) + timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": header})
    rsps.add(responses.GET, URL, body=OK_BODY)
    make_client().get_page(PATH, {"pagina": 1})
    assert fake_time.sleeps == [pytest.approx(120, abs=3)]


def test_parse_retry_after():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0


def test_429_exhausted_is_unavailable(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "2"})
    with pytest.raises(PNCPUnavailableError) as excinfo:
        make_client(max_attempts=3).get_page(PATH, {"pagina": 1})
    assert excinfo.value.last_status == 429
    assert excinfo.value.attempts == 3
    assert fake_time.sleeps == [2.0, 2.0]


def test_5xx_is_retried_with_exponential_backoff_then_succeeds(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=503)
    rsps.add(responses.GET, URL, status=502)
    rsps.add(responses.GET, URL, body=OK_BODY)
    page = make_client(backoff_initial=1.0).get_page(PATH, {"pagina": 1})

    assert page.status == "ok"
    assert page.retries == 2
    assert len(rsps.calls) == 3
    first, second = fake_time.sleeps
    assert 1.0 <= first <= 2.0  # initial + jitter
    assert 2.0 <= second <= 3.0  # doubled + jitter


def test_backoff_is_capped_by_backoff_max(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=500)
    with pytest.raises(PNCPUnavailableError):
        make_client(max_attempts=6, backoff_initial=1.0, backoff_max=3.0).get_page(
            PATH, {"pagina": 1}
        )
    assert len(fake_time.sleeps) == 5
    assert max(fake_time.sleeps) <= 3.0


def test_5xx_exhausted_raises_unavailable(rsps, make_client):
    rsps.add(responses.GET, URL, status=500, body="upstream exploded")
    with pytest.raises(PNCPUnavailableError) as excinfo:
        make_client(max_attempts=3).get_page(PATH, {"pagina": 1})
    assert len(rsps.calls) == 3
    assert excinfo.value.url == f"{URL}?pagina=1"
    assert excinfo.value.last_status == 500
    assert "HTTP 500" in excinfo.value.last_error
    assert "upstream exploded" in excinfo.value.last_error


def test_truncated_json_is_retried(rsps, make_client):
    rsps.add(responses.GET, URL, body=OK_BODY[:-20], status=200)
    rsps.add(responses.GET, URL, body=OK_BODY, status=200)
    page = make_client().get_page(PATH, {"pagina": 1})
    assert page.status == "ok"
    assert page.retries == 1
    assert page.raw == OK_BODY


def test_200_without_envelope_is_retried_then_unavailable(rsps, make_client):
    rsps.add(responses.GET, URL, json={"unexpected": True}, status=200)
    with pytest.raises(PNCPUnavailableError) as excinfo:
        make_client(max_attempts=2).get_page(PATH, {"pagina": 1})
    assert len(rsps.calls) == 2
    assert "envelope" in excinfo.value.last_error


@pytest.mark.parametrize(
    "exc",
    [requests.exceptions.ReadTimeout("read timed out"), requests.exceptions.ConnectionError("x")],
)
def test_timeouts_and_connection_errors_are_retried(rsps, make_client, exc):
    rsps.add(responses.GET, URL, body=exc)
    rsps.add(responses.GET, URL, body=OK_BODY)
    client = make_client()
    page = client.get_page(PATH, {"pagina": 1})
    assert page.status == "ok"
    assert page.retries == 1
    assert client.stats["by_status"] == {0: 1, 200: 1}
    assert client.stats["transport_errors"] == 1


def test_timeout_is_passed_to_requests(rsps, make_client):
    rsps.add(responses.GET, URL, body=OK_BODY)
    make_client(timeout=(3.0, 42.0)).get_page(PATH, {"pagina": 1})
    assert rsps.calls[0].request.req_kwargs["timeout"] == (3.0, 42.0)


def test_422_is_retried_once_then_succeeds(rsps, make_client):
    rsps.add(responses.GET, URL, body=ERROR_422, status=422)
    rsps.add(responses.GET, URL, body=OK_BODY)
    page = make_client().get_page(PATH, {"pagina": 1})
    assert page.status == "ok"
    assert page.retries == 1


def test_422_twice_raises_with_pncp_message(rsps, make_client):
    rsps.add(responses.GET, URL, body=ERROR_422, status=422)
    with pytest.raises(PNCPRequestError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1})
    assert not isinstance(excinfo.value, PNCPPageSizeError)
    assert excinfo.value.status == 422
    assert excinfo.value.message == ERROR_422_MESSAGE
    assert excinfo.value.url == f"{URL}?pagina=1"
    assert len(rsps.calls) == 2


def test_other_400_is_not_retried_and_carries_message(rsps, make_client, fake_time):
    body = {"status": 400, "error": "Bad Request", "message": 'For input string: ""'}
    rsps.add(responses.GET, URL, json=body, status=400)
    with pytest.raises(PNCPRequestError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1, "tamanhoPagina": 50})
    assert not isinstance(excinfo.value, PNCPPageSizeError)
    assert excinfo.value.status == 400
    assert excinfo.value.message == 'For input string: ""'
    assert len(rsps.calls) == 1
    assert fake_time.sleeps == []


def test_4xx_without_json_falls_back_to_text(rsps, make_client):
    rsps.add(responses.GET, URL, body="<html>Forbidden by WAF</html>", status=403)
    with pytest.raises(PNCPRequestError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1})
    assert excinfo.value.status == 403
    assert excinfo.value.message == "<html>Forbidden by WAF</html>"
    assert len(rsps.calls) == 1


# --- page size -------------------------------------------------------------------------------


def test_page_size_error_with_limit(rsps, make_client):
    body = {"status": 400, "message": "tamanhoPagina deve ser menor ou igual a 50"}
    rsps.add(responses.GET, URL, json=body, status=400)
    with pytest.raises(PNCPPageSizeError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1, "tamanhoPagina": 500})
    assert excinfo.value.limit == 50
    assert excinfo.value.status == 400
    assert len(rsps.calls) == 1


def test_page_size_error_on_422_without_number(rsps, make_client):
    rsps.add(responses.GET, URL, json={"message": "Tamanho de página inválido"}, status=422)
    with pytest.raises(PNCPPageSizeError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1, "tamanhoPagina": 500})
    assert excinfo.value.limit is None
    assert excinfo.value.status == 422
    assert len(rsps.calls) == 1  # not the spurious-422 retry


def test_page_size_message_wins_over_end_on_later_pages(rsps, make_client):
    rsps.add(responses.GET, URL, json={"message": "tamanhoPagina máximo 100"}, status=400)
    with pytest.raises(PNCPPageSizeError) as excinfo:
        make_client().get_page(PATH, {"pagina": 3, "tamanhoPagina": 500})
    assert excinfo.value.limit == 100


@pytest.mark.parametrize(
    "body",
    [b"", json.dumps({"status": 400, "error": "Bad Request", "message": ""}).encode()],
)
def test_silent_400_on_first_page_with_big_page_is_page_size(rsps, make_client, body):
    rsps.add(responses.GET, URL, body=body, status=400)
    with pytest.raises(PNCPPageSizeError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1, "tamanhoPagina": 500})
    assert excinfo.value.limit is None


def test_silent_400_with_minimum_page_size_is_a_plain_error(rsps, make_client):
    rsps.add(responses.GET, URL, body=b"", status=400)
    with pytest.raises(PNCPRequestError) as excinfo:
        make_client().get_page(PATH, {"pagina": 1, "tamanhoPagina": 10})
    assert not isinstance(excinfo.value, PNCPPageSizeError)


@pytest.mark.parametrize(
    ("message", "requested", "expected"),
    [
        ("tamanhoPagina deve ser menor ou igual a 50", 500, 50),
        ("Tamanho de página excede o máximo de 100 registros", 500, 100),
        ("tamanhoPagina deve estar entre 10 e 50", 500, 50),
        ("tamanhoPagina 500 inválido", 500, None),
        ("Tamanho de página inválido", 500, None),
    ],
)
def test_parse_page_size_limit(message, requested, expected):
    assert parse_page_size_limit(message, requested) == expected


# --- circuit breaker -------------------------------------------------------------------------


def test_circuit_breaker_opens_then_half_opens_and_closes(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=503)
    client = make_client(max_attempts=1, breaker_threshold=3, breaker_cooldown=60.0)
    for _ in range(3):
        with pytest.raises(PNCPUnavailableError):
            client.get_page(PATH, {"pagina": 1})
    assert len(rsps.calls) == 3

    with pytest.raises(CircuitOpenError) as excinfo:
        client.get_page(PATH, {"pagina": 2})
    assert len(rsps.calls) == 3  # refused without touching PNCP
    assert excinfo.value.retry_in == pytest.approx(60.0)
    assert client.breaker.state(PATH) == "open"

    # Another resource has its own breaker.
    rsps.add(responses.GET, BASE + "/v1/atas", body=OK_BODY)
    assert client.get_page("/v1/atas", {"pagina": 1}).status == "ok"

    fake_time.now += 59.0
    with pytest.raises(CircuitOpenError):
        client.get_page(PATH, {"pagina": 1})

    fake_time.now += 1.5
    assert client.breaker.state(PATH) == "half-open"
    rsps.replace(responses.GET, URL, body=OK_BODY)
    assert client.get_page(PATH, {"pagina": 1}).status == "ok"  # the trial call
    assert client.breaker.state(PATH) == "closed"
    assert client.get_page(PATH, {"pagina": 2}).status == "ok"


def test_failed_trial_call_reopens_the_circuit(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, status=503)
    client = make_client(max_attempts=1, breaker_threshold=2, breaker_cooldown=10.0)
    for _ in range(2):
        with pytest.raises(PNCPUnavailableError):
            client.get_page(PATH, {"pagina": 1})
    fake_time.now += 11.0
    with pytest.raises(PNCPUnavailableError):
        client.get_page(PATH, {"pagina": 1})  # trial goes out and fails
    assert len(rsps.calls) == 3
    with pytest.raises(CircuitOpenError) as excinfo:
        client.get_page(PATH, {"pagina": 1})
    assert excinfo.value.retry_in == pytest.approx(10.0)
    assert len(rsps.calls) == 3


def test_half_open_allows_a_single_trial(fake_time):
    breaker = CircuitBreaker(threshold=1, cooldown=5.0, clock=fake_time.clock)
    breaker.failure("/v1/atas")
    with pytest.raises(CircuitOpenError):
        breaker.acquire("/v1/atas")
    fake_time.now += 5.0
    breaker.acquire("/v1/atas")  # the trial
    with pytest.raises(CircuitOpenError):
        breaker.acquire("/v1/atas")  # a second caller while the trial is in flight
    breaker.success("/v1/atas")
    breaker.acquire("/v1/atas")
    breaker.acquire("/v1/atas")


def test_4xx_answers_do_not_trip_the_breaker(rsps, make_client):
    client = make_client(max_attempts=1, breaker_threshold=2)
    rsps.add(responses.GET, URL, status=503)
    rsps.add(responses.GET, URL, json={"message": "cnpj inválido"}, status=400)
    rsps.add(responses.GET, URL, status=503)
    rsps.add(responses.GET, URL, body=OK_BODY)
    with pytest.raises(PNCPUnavailableError):
        client.get_page(PATH, {"pagina": 1})
    with pytest.raises(PNCPRequestError):
        client.get_page(PATH, {"pagina": 1})
    with pytest.raises(PNCPUnavailableError):
        client.get_page(PATH, {"pagina": 1})
    assert client.get_page(PATH, {"pagina": 1}).status == "ok"  # still closed
    assert len(rsps.calls) == 4


def test_resource_key_groups_detail_paths():
    assert resource_key("/v1/orgaos/00394429000100/compras/2026/2346") == (
        "/v1/orgaos/{}/compras/{}/{}"
    )
    assert resource_key("/v1/contratacoes/publicacao") == "/v1/contratacoes/publicacao"


# --- rate limiting ---------------------------------------------------------------------------


def test_local_rate_limiter_spaces_requests(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, body=OK_BODY)
    client = make_client(requests_per_second=4.0)
    assert isinstance(client.limiter, LocalRateLimiter)
    for _ in range(4):
        client.get_page(PATH, {"pagina": 1})
    assert fake_time.sleeps == pytest.approx([0.25, 0.25, 0.25])

    fake_time.now += 10.0  # idle: the bucket refills, but only up to its burst of 1
    client.get_page(PATH, {"pagina": 1})
    client.get_page(PATH, {"pagina": 1})
    assert fake_time.sleeps == pytest.approx([0.25, 0.25, 0.25, 0.25])


def test_local_rate_limiter_burst(fake_time):
    limiter = LocalRateLimiter(2.0, burst=2, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(4):
        limiter.acquire()
    assert fake_time.sleeps == pytest.approx([0.5, 0.5])


def test_local_rate_limiter_is_thread_safe(fake_time):
    limiter = LocalRateLimiter(10.0, clock=lambda: 0.0, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            wait = limiter.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 400 reservations at a frozen instant: every slot 0.0, 0.1, ... 39.9 handed out once.
    assert sorted(round(w, 6) for w in waits) == [round(i / 10, 6) for i in range(400)]


def test_zero_requests_per_second_disables_the_limiter(rsps, make_client, fake_time):
    rsps.add(responses.GET, URL, body=OK_BODY)
    client = make_client(requests_per_second=0)
    assert isinstance(client.limiter, NullRateLimiter)
    for _ in range(5):
        client.get_page(PATH, {"pagina": 1})
    assert fake_time.sleeps == []


@pytest.fixture
def redis15() -> Any:
    import redis

    connection = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=0.5)
    try:
        connection.ping()
    except redis.RedisError:
        pytest.skip(f"Redis not reachable at {REDIS_TEST_URL}")
    return connection


def test_redis_limiter_is_shared_between_clients(rsps, redis15):
    host = f"pncp-{uuid.uuid4().hex}.test"
    base = f"https://{host}/api/consulta"
    key = f"pncp-mirror:ratelimit:{host}"
    rsps.add(responses.GET, base + PATH, body=OK_BODY)
    sleeps: list[float] = []
    clients = [
        PNCPClient(base, requests_per_second=10.0, redis_url=REDIS_TEST_URL, sleep=sleeps.append)
        for _ in range(2)
    ]
    try:
        assert all(isinstance(c.limiter, RedisRateLimiter) for c in clients)
        for client in (clients[0], clients[1], clients[0], clients[1]):
            client.get_page(PATH, {"pagina": 1})
        # One shared budget of 10/s: the slots are 0, 0.1, 0.2, 0.3 s. Two separate local
        # limiters would have given [0.1, 0.1] instead.
        assert sleeps == [pytest.approx(w, abs=0.05) for w in (0.1, 0.2, 0.3)]
        assert redis15.exists(key) == 1
        assert redis15.pttl(key) > 0  # the key expires on its own
    finally:
        redis15.delete(key)


def test_unreachable_redis_falls_back_to_local_limiter(rsps, make_client, fake_time, caplog):
    rsps.add(responses.GET, URL, body=OK_BODY)
    client = make_client(requests_per_second=2.0, redis_url="redis://127.0.0.1:1/0")
    assert isinstance(client.limiter, RedisRateLimiter)
    with caplog.at_level(logging.WARNING, logger="pncp.client"):
        for _ in range(3):
            assert client.get_page(PATH, {"pagina": 1}).status == "ok"
    assert fake_time.sleeps == pytest.approx([0.5, 0.5])
    warnings = [r for r in caplog.records if "local limiter" in r.getMessage()]
    assert len(warnings) == 1


# --- adaptive concurrency --------------------------------------------------------------------


def test_adaptive_concurrency_additive_increase():
    ac = AdaptiveConcurrency(initial=4, maximum=6, k=3, slow_threshold=2.0)
    ac.on_success(0.1)
    ac.on_success(0.1)
    assert ac.limit == 4
    ac.on_success(0.1)
    assert ac.limit == 5
    for _ in range(9):
        ac.on_success(0.1)
    assert ac.limit == 6  # capped at maximum


def test_adaptive_concurrency_multiplicative_decrease():
    ac = AdaptiveConcurrency(initial=12, maximum=16, k=2, slow_threshold=2.0)
    ac.on_throttle()
    assert ac.limit == 6
    ac.on_success(0.1)
    ac.on_success(5.0)  # slow answer: halve, and the streak starts over
    assert ac.limit == 3
    ac.on_success(0.1)
    assert ac.limit == 3
    ac.on_success(0.1)
    assert ac.limit == 4
    for _ in range(5):
        ac.on_throttle()
    assert ac.limit == 1  # never below the minimum


def test_adaptive_concurrency_is_thread_safe():
    ac = AdaptiveConcurrency(initial=1, maximum=10**6, k=1)

    def worker() -> None:
        for _ in range(2000):
            ac.on_success(0.01)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ac.limit == 1 + 8 * 2000


def test_client_feeds_the_concurrency_controller(rsps, make_client):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "0"})
    rsps.add(responses.GET, URL, status=503)
    rsps.add(responses.GET, URL, body=OK_BODY)
    ac = AdaptiveConcurrency(initial=8, maximum=16, k=1)
    client = make_client(concurrency=ac)
    assert client.concurrency is ac
    client.get_page(PATH, {"pagina": 1})
    assert ac.limit == 3  # 8 -> 4 (429) -> 2 (503) -> 3 (200)


# --- identity, settings, stats ---------------------------------------------------------------


def test_user_agent_header_is_sent(rsps, make_client):
    rsps.add(responses.GET, URL, body=OK_BODY)
    make_client(user_agent="pncp-mirror/9.9 (+https://example.org)").get_page(PATH, {"pagina": 1})
    headers = rsps.calls[0].request.headers
    assert headers["User-Agent"] == "pncp-mirror/9.9 (+https://example.org)"
    assert headers["Accept"] == "application/json"


def test_default_user_agent_and_settings(rsps, monkeypatch, fake_time):
    fake_settings = {
        "PNCP_BASE_URL": "https://settings.test/api/consulta/",
        "PNCP_REQUESTS_PER_SECOND": 0,
        "PNCP_USER_AGENT_CONTACT": "ops@example.org",
    }
    monkeypatch.setattr(
        client_module, "_setting", lambda name, default: fake_settings.get(name, default)
    )
    rsps.add(responses.GET, "https://settings.test/api/consulta" + PATH, body=OK_BODY)
    client = PNCPClient(sleep=fake_time.sleep, clock=fake_time.clock)
    client.get_page(PATH, {"pagina": 1})

    assert client.base_url == "https://settings.test/api/consulta"
    assert isinstance(client.limiter, NullRateLimiter)
    user_agent = rsps.calls[0].request.headers["User-Agent"]
    assert user_agent.startswith("pncp-mirror/")
    assert "(+https://github.com/pncp-mirror; ops@example.org)" in user_agent


def test_settings_choose_user_agent_and_shared_limiter(monkeypatch):
    fake_settings = {
        "PNCP_USER_AGENT": "custom-agent/1.0",
        "PNCP_REQUESTS_PER_SECOND": 3.0,
        "PNCP_RATE_LIMIT_REDIS_URL": "",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    monkeypatch.setattr(
        client_module, "_setting", lambda name, default: fake_settings.get(name, default)
    )
    client = PNCPClient()
    assert client.user_agent == "custom-agent/1.0"
    assert client.base_url == "https://pncp.gov.br/api/consulta"
    assert isinstance(client.limiter, RedisRateLimiter)
    assert client.limiter.url == "redis://127.0.0.1:6379/15"
    assert client.limiter.key == "pncp-mirror:ratelimit:pncp.gov.br"


def test_setting_falls_back_to_default():
    assert client_module._setting("PNCP_SETTING_THAT_DOES_NOT_EXIST", 42) == 42


def test_stats_and_on_request_hook(rsps):
    ticking = FakeTime(tick=0.5)  # every clock() reading advances 0.5 s
    seen: list[tuple[str, int, float]] = []
    rsps.add(responses.GET, URL, status=503)
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "1"})
    rsps.add(responses.GET, URL, body=OK_BODY)
    client = PNCPClient(
        BASE,
        requests_per_second=0,
        redis_url="",
        sleep=ticking.sleep,
        clock=ticking.clock,
        on_request=lambda path, status, latency: seen.append((path, status, latency)),
    )
    client.get_page(PATH, {"pagina": 1})

    assert seen == [(PATH, 503, 0.5), (PATH, 429, 0.5), (PATH, 200, 0.5)]
    stats = client.stats
    assert stats["requests"] == 3
    assert stats["retries"] == 2
    assert stats["throttled"] == 1
    assert stats["by_status"] == {503: 1, 429: 1, 200: 1}
    assert stats["latency_total"] == pytest.approx(1.5)
    stats["requests"] = 999  # a snapshot, not the live counters
    assert client.stats["requests"] == 3


def test_failing_hook_does_not_break_the_request(rsps, make_client):
    rsps.add(responses.GET, URL, body=OK_BODY)

    def broken_hook(path: str, status: int, latency: float) -> None:
        raise RuntimeError("metrics backend down")

    assert make_client(on_request=broken_hook).get_page(PATH, {"pagina": 1}).status == "ok"


# --- unpaged endpoints -----------------------------------------------------------------------

DETAIL = "/v1/orgaos/00394429000100/compras/2026/2346"


def test_get_json_detail(rsps, make_client):
    rsps.add(responses.GET, BASE + DETAIL, json={"numeroControlePNCP": "x", "valor": 1.5})
    assert make_client().get_json(DETAIL) == {"numeroControlePNCP": "x", "valor": 1.5}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (204, b""),
        (200, b""),
        (404, json.dumps({"status": 404, "message": "Compra não encontrada"}).encode()),
    ],
)
def test_get_json_nothing_is_none(rsps, make_client, status, body):
    rsps.add(responses.GET, BASE + DETAIL, body=body, status=status)
    assert make_client().get_json(DETAIL) is None


def test_get_json_retries_5xx_and_raises_4xx(rsps, make_client):
    rsps.add(responses.GET, BASE + DETAIL, status=504)
    rsps.add(responses.GET, BASE + DETAIL, json=[1, 2])
    client = make_client()
    assert client.get_json(DETAIL) == [1, 2]
    rsps.replace(responses.GET, BASE + DETAIL, json={"message": "cnpj inválido"}, status=400)
    with pytest.raises(PNCPRequestError) as excinfo:
        client.get_json(DETAIL)
    assert excinfo.value.message == "cnpj inválido"
