"""Checks of the fake PNCP server itself (tests/fakes/fake_pncp.py): no database needed."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import pytest
import requests

from tests.fakes import fixtures
from tests.fakes.fake_pncp import (
    DEFAULT_PAGE_LIMITS,
    MODALIDADES,
    FakeDataset,
    FakePNCP,
    FaultConfig,
)

fake_pncp = fixtures.fake_pncp  # the shared fixture, checked below

START = date(2025, 7, 1)
WINDOW = {"dataInicial": "20250701", "dataFinal": "20250720"}
TIMEOUT = 10


@pytest.fixture(scope="module")
def dataset() -> FakeDataset:
    return FakeDataset.generate(
        contratacoes=650, contratos=300, atas=200, pcas=60, start=START, days=20, seed=42
    )


@pytest.fixture(scope="module")
def fake(dataset):
    """A read-only fake shared by the tests that do not change data or faults."""
    with FakePNCP(dataset, today=date(2025, 7, 10)) as server:
        yield server


def get(server: FakePNCP, path: str, **params) -> requests.Response:
    return requests.get(server.base_url + path, params=params, timeout=TIMEOUT)


def fetch_all(server: FakePNCP, path: str, **params) -> list[dict]:
    """Every record of a query, following the pages; [] on 204."""
    records, page = [], 1
    while True:
        response = get(server, path, pagina=page, **params)
        if response.status_code == 204:
            assert page == 1
            return records
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body["data"])
        if body["paginasRestantes"] == 0:
            return records
        page += 1


def day(value: str) -> str:
    return value[:10]


def keys(records: list[dict], field: str = "numeroControlePNCP") -> list[str]:
    return [r[field] for r in records]


# ---- envelope and paging --------------------------------------------------------------------


def test_envelope_totals_and_last_page(fake, dataset):
    expected = [
        r
        for r in dataset.records("contratos")
        if "2025-07-01" <= day(r["dataPublicacaoPncp"]) <= "2025-07-20"
    ]
    assert len(expected) > 25
    first = get(fake, "/v1/contratos", pagina=1, tamanhoPagina=10, **WINDOW)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "application/json"
    body = first.json()
    pages = -(-len(expected) // 10)
    assert list(body) == [
        "data",
        "totalRegistros",
        "totalPaginas",
        "numeroPagina",
        "paginasRestantes",
        "empty",
    ]
    assert body["totalRegistros"] == len(expected)
    assert body["totalPaginas"] == pages
    assert (body["numeroPagina"], body["paginasRestantes"], body["empty"]) == (1, pages - 1, False)
    assert len(body["data"]) == 10

    last = get(fake, "/v1/contratos", pagina=pages, tamanhoPagina=10, **WINDOW).json()
    assert last["paginasRestantes"] == 0
    assert len(last["data"]) == len(expected) - 10 * (pages - 1)

    past = get(fake, "/v1/contratos", pagina=pages + 1, tamanhoPagina=10, **WINDOW)
    assert past.status_code == 400
    assert past.json()["status"] == 400
    assert past.json()["path"] == "/pncp-consulta/v1/contratos"


def test_pages_partition_the_result_in_a_stable_order(fake, dataset):
    params = {"tamanhoPagina": 10, **WINDOW}
    walked = keys(fetch_all(fake, "/v1/contratos", **params))
    assert len(walked) == len(set(walked))
    assert walked == keys(fetch_all(fake, "/v1/contratos", **params))
    big_page = keys(fetch_all(fake, "/v1/contratos", tamanhoPagina=500, **WINDOW))
    assert walked == big_page
    dates = [dataset.get("contratos", k)["dataPublicacaoPncp"] for k in walked]
    assert dates == sorted(dates)


def test_default_page_size_is_the_maximum(fake):
    body = get(
        fake, "/v1/contratacoes/publicacao", pagina=1, codigoModalidadeContratacao=6, **WINDOW
    )
    assert len(body.json()["data"]) == 50
    assert len(get(fake, "/v1/contratos", pagina=1, **WINDOW).json()["data"]) == 300


def test_empty_window_is_204_without_body(fake):
    response = get(fake, "/v1/contratos", pagina=1, dataInicial="20200101", dataFinal="20200131")
    assert response.status_code == 204
    assert response.content == b""


# ---- endpoints: date fields and filters -----------------------------------------------------


def test_contratacoes_publicacao_filters_by_day_and_modalidade(fake, dataset):
    got = fetch_all(
        fake,
        "/v1/contratacoes/publicacao",
        dataInicial="20250703",
        dataFinal="20250705",
        codigoModalidadeContratacao=6,
    )
    expected = [
        r
        for r in dataset.records("contratacoes")
        if "2025-07-03" <= day(r["dataPublicacaoPncp"]) <= "2025-07-05" and r["modalidadeId"] == 6
    ]
    assert got and sorted(keys(got)) == sorted(keys(expected))


def test_contratacoes_atualizacao_uses_data_atualizacao_global(fake, dataset):
    got = fetch_all(
        fake,
        "/v1/contratacoes/atualizacao",
        dataInicial="20250710",
        dataFinal="20250712",
        codigoModalidadeContratacao=8,
    )
    expected = [
        r
        for r in dataset.records("contratacoes")
        if "2025-07-10" <= day(r["dataAtualizacaoGlobal"]) <= "2025-07-12"
        and r["modalidadeId"] == 8
    ]
    assert got and sorted(keys(got)) == sorted(keys(expected))


@pytest.mark.parametrize(
    ("param", "path"),
    [
        ("uf", ("unidadeOrgao", "ufSigla")),
        ("cnpj", ("orgaoEntidade", "cnpj")),
        ("codigoMunicipioIbge", ("unidadeOrgao", "codigoIbge")),
        ("codigoUnidadeAdministrativa", ("unidadeOrgao", "codigoUnidade")),
        ("codigoModoDisputa", ("modoDisputaId",)),
    ],
)
def test_contratacoes_optional_filters(fake, dataset, param, path):
    def value(record):
        for part in path:
            record = record[part]
        return record

    in_window = [
        r
        for r in dataset.records("contratacoes")
        if r["modalidadeId"] == 6 and day(r["dataPublicacaoPncp"]) <= "2025-07-20"
    ]
    wanted = Counter(value(r) for r in in_window).most_common(1)[0][0]
    got = fetch_all(
        fake,
        "/v1/contratacoes/publicacao",
        codigoModalidadeContratacao=6,
        **{param: wanted},
        **WINDOW,
    )
    expected = [r for r in in_window if value(r) == wanted]
    assert len(expected) < len(in_window)
    assert sorted(keys(got)) == sorted(keys(expected))


def test_id_usuario_filters_on_the_publishing_system(fake, dataset):
    records = dataset.records("contratacoes")
    uid = dataset.id_usuario("contratacoes", records[0]["numeroControlePNCP"])
    name = records[0]["usuarioNome"]
    got = fetch_all(
        fake, "/v1/contratacoes/publicacao", codigoModalidadeContratacao=1, idUsuario=uid, **WINDOW
    )
    assert got and {r["usuarioNome"] for r in got} == {name}


def test_modalidade_is_required_for_contratacoes(fake):
    response = get(fake, "/v1/contratacoes/publicacao", pagina=1, **WINDOW)
    assert response.status_code == 400
    assert "codigoModalidadeContratacao" in response.json()["message"]


def test_proposta_returns_open_proposal_periods(fake, dataset):
    got = fetch_all(fake, "/v1/contratacoes/proposta", dataFinal="20250720")
    expected = [
        r
        for r in dataset.records("contratacoes")
        if "2025-07-10" <= day(r["dataEncerramentoProposta"]) <= "2025-07-20"
    ]
    assert got and sorted(keys(got)) == sorted(keys(expected))
    only_pregao = fetch_all(
        fake, "/v1/contratacoes/proposta", dataFinal="20250720", codigoModalidadeContratacao=6
    )
    assert only_pregao and {r["modalidadeId"] for r in only_pregao} == {6}


def test_proposta_with_past_data_final_is_422_like_pncp(fake):
    response = get(fake, "/v1/contratacoes/proposta", pagina=1, dataFinal="20250709")
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"path", "message", "error", "timestamp", "status"}
    assert body["message"] == (
        "Data Final inválida. Data Final deve ser maior ou igual a data atual"
    )
    assert (body["status"], body["error"]) == ("422", "422 UNPROCESSABLE_ENTITY")
    assert body["path"] == "/pncp-consulta/v1/contratacoes/proposta"
    assert body["timestamp"].endswith("-03:00")


def test_compra_detail_200_and_404(fake, dataset):
    record = dataset.records("contratacoes")[5]
    cnpj, ano, seq = (
        record["orgaoEntidade"]["cnpj"],
        record["anoCompra"],
        record["sequencialCompra"],
    )
    response = get(fake, f"/v1/orgaos/{cnpj}/compras/{ano}/{seq}")
    assert response.status_code == 200
    detail = response.json()
    assert "data" not in detail
    assert detail["numeroControlePNCP"] == record["numeroControlePNCP"]
    assert detail["orcamentoSigilosoCodigo"] == 1
    assert detail["orcamentoSigilosoDescricao"] == "Compra sem sigilo"

    missing = get(fake, f"/v1/orgaos/{cnpj}/compras/{ano}/999999")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    assert missing.json()["error"] == "Not Found"


def test_atas_select_by_vigencia_overlap(fake, dataset):
    got = fetch_all(fake, "/v1/atas", dataInicial="20251101", dataFinal="20251105")
    expected = [
        r
        for r in dataset.records("atas")
        if r["vigenciaInicio"] <= "2025-11-05" and r["vigenciaFim"] >= "2025-11-01"
    ]
    assert got and sorted(keys(got, "numeroControlePNCPAta")) == sorted(
        keys(expected, "numeroControlePNCPAta")
    )
    assert len(expected) < dataset.count("atas")  # the 90-day atas ended in October


def test_atas_atualizacao_and_cnpj_filter(fake, dataset):
    atas = dataset.records("atas")
    cnpj = atas[0]["cnpjOrgao"]
    got = fetch_all(fake, "/v1/atas/atualizacao", cnpj=cnpj, **WINDOW)
    expected = [
        r
        for r in atas
        if r["cnpjOrgao"] == cnpj and "2025-07-01" <= r["dataAtualizacaoGlobal"] <= "2025-07-20"
    ]
    assert got and sorted(keys(got, "numeroControlePNCPAta")) == sorted(
        keys(expected, "numeroControlePNCPAta")
    )


def test_contratos_filters_use_contratos_parameter_names(fake, dataset):
    contratos = dataset.records("contratos")
    cnpj = Counter(r["orgaoEntidade"]["cnpj"] for r in contratos).most_common(1)[0][0]
    in_window = [r for r in contratos if day(r["dataPublicacaoPncp"]) <= "2025-07-20"]
    got = fetch_all(fake, "/v1/contratos", cnpjOrgao=cnpj, **WINDOW)
    assert sorted(keys(got)) == sorted(
        keys([r for r in in_window if r["orgaoEntidade"]["cnpj"] == cnpj])
    )
    # PNCP ignores parameters it does not know: `cnpj` does not filter contratos.
    assert len(fetch_all(fake, "/v1/contratos", cnpj=cnpj, **WINDOW)) == len(in_window)
    updated = fetch_all(
        fake, "/v1/contratos/atualizacao", dataInicial="20250715", dataFinal="20250715"
    )
    assert {day(r["dataAtualizacaoGlobal"]) for r in updated} == {"2025-07-15"}


def test_pca_atualizacao_uses_data_inicio_and_fim(fake, dataset):
    got = fetch_all(fake, "/v1/pca/atualizacao", dataInicio="20250701", dataFim="20250731")
    expected = dataset.records("pca")
    assert sorted(keys(got, "idPcaPncp")) == sorted(keys(expected, "idPcaPncp"))
    assert all(r["itens"] and "dataAtualizacaoGlobalPCA" in r for r in got)
    wrong_names = get(fake, "/v1/pca/atualizacao", pagina=1, **WINDOW)
    assert wrong_names.status_code == 400
    assert "dataInicio" in wrong_names.json()["message"]


def test_pca_by_year_user_and_class(fake, dataset):
    plans = dataset.records("pca")
    key = plans[0]["idPcaPncp"]
    uid = dataset.id_usuario("pca", key)
    got = fetch_all(fake, "/v1/pca/usuario", anoPca=2025, idUsuario=uid)
    assert key in keys(got, "idPcaPncp")
    assert {dataset.id_usuario("pca", k) for k in keys(got, "idPcaPncp")} == {uid}

    code = plans[0]["itens"][0]["classificacaoSuperiorCodigo"]
    by_class = fetch_all(fake, "/v1/pca/", anoPca=2025, codigoClassificacaoSuperior=code)
    assert key in keys(by_class, "idPcaPncp")
    assert {i["classificacaoSuperiorCodigo"] for r in by_class for i in r["itens"]} == {code}
    assert (
        get(fake, "/v1/pca/", pagina=1, anoPca=2024, codigoClassificacaoSuperior=code).status_code
        == 204
    )
    assert (
        get(fake, "/v1/pca", pagina=1, anoPca=2025, codigoClassificacaoSuperior=code).status_code
        == 404
    )


# ---- parameter validation and limits --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "limit", "extra"),
    [
        ("/v1/contratacoes/publicacao", 50, {"codigoModalidadeContratacao": 6, **WINDOW}),
        ("/v1/contratacoes/proposta", 50, {"dataFinal": "20250720"}),
        ("/v1/contratos", 500, WINDOW),
        ("/v1/atas", 500, WINDOW),
        ("/v1/pca/atualizacao", 500, {"dataInicio": "20250701", "dataFim": "20250720"}),
    ],
)
def test_page_size_over_the_maximum_is_400_naming_the_limit(fake, path, limit, extra):
    assert DEFAULT_PAGE_LIMITS[path] == limit
    response = get(fake, path, pagina=1, tamanhoPagina=limit + 1, **extra)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == f"tamanhoPagina deve ser menor ou igual a {limit}"
    assert (body["status"], body["error"]) == (400, "Bad Request")
    assert set(body) == {"message", "path", "timestamp", "status", "error"}
    assert get(fake, path, pagina=1, tamanhoPagina=limit, **extra).status_code == 200


def test_page_size_under_ten_is_400(fake):
    response = get(fake, "/v1/contratos", pagina=1, tamanhoPagina=9, **WINDOW)
    assert response.status_code == 400
    assert "10" in response.json()["message"]


def test_silent_page_size_400_has_an_empty_body(dataset):
    with FakePNCP(dataset, silent_page_size_400=True) as server:
        params = {"codigoModalidadeContratacao": 6, "tamanhoPagina": 51, **WINDOW}
        response = get(server, "/v1/contratacoes/publicacao", pagina=1, **params)
        assert response.status_code == 400
        assert response.content == b""


def test_page_limits_change_at_runtime(dataset):
    with FakePNCP(dataset) as server:
        assert get(server, "/v1/contratos", pagina=1, tamanhoPagina=200, **WINDOW).ok
        server.page_limits["/v1/contratos"] = 100
        refused = get(server, "/v1/contratos", pagina=1, tamanhoPagina=200, **WINDOW)
        assert refused.status_code == 400
        assert refused.json()["message"] == "tamanhoPagina deve ser menor ou igual a 100"
        default = get(server, "/v1/contratos", pagina=1, **WINDOW).json()
        assert len(default["data"]) == 100


def test_window_over_365_days_is_422(fake):
    response = get(fake, "/v1/contratos", pagina=1, dataInicial="20240101", dataFinal="20250101")
    assert response.status_code == 422
    assert response.json()["message"] == "Período inicial e final maior que 365 dias."
    exactly_365 = get(fake, "/v1/contratos", pagina=1, dataInicial="20240101", dataFinal="20241231")
    assert exactly_365.status_code in (200, 204)


@pytest.mark.parametrize(
    "params",
    [
        {"dataInicial": "2025-07-01", "dataFinal": "20250720", "pagina": 1},
        {"dataInicial": "20250732", "dataFinal": "20250801", "pagina": 1},
        {"dataFinal": "20250720", "pagina": 1},
        {"dataInicial": "20250701", "dataFinal": "20250720"},
        {"dataInicial": "20250701", "dataFinal": "20250720", "pagina": "x"},
        {"dataInicial": "20250701", "dataFinal": "20250720", "pagina": 0},
        {"dataInicial": "20250701", "dataFinal": "20250720", "pagina": 1, "usuarioId": "abc"},
    ],
)
def test_bad_or_missing_parameters_are_400_with_a_json_body(fake, params):
    response = requests.get(fake.base_url + "/v1/contratos", params=params, timeout=TIMEOUT)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["error"] == "Bad Request" and body["message"]


# ---- fault injection ------------------------------------------------------------------------


def test_scripted_429_has_an_integer_retry_after(dataset):
    with FakePNCP(dataset, faults=FaultConfig(retry_after=2)) as server:
        server.script([("/v1/contratos", "429")])
        other = get(server, "/v1/atas", pagina=1, **WINDOW)  # another path: not consumed
        assert other.status_code == 200
        limited = get(server, "/v1/contratos", pagina=1, **WINDOW)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"
        assert get(server, "/v1/contratos", pagina=1, **WINDOW).status_code == 200
        assert server.fault_counts == Counter({"429": 1})
        assert server.pending_script() == []


def test_default_retry_after_is_zero(fake_pncp):
    fake_pncp.script([(None, 429)])
    response = get(fake_pncp, "/v1/contratos", pagina=1, **WINDOW)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "0")


def test_scripted_faults_fire_in_order(dataset):
    with FakePNCP(dataset) as server:
        server.script(
            [
                ("/v1/contratos", "503"),
                ("/api/consulta/v1/contratos", "502"),
                ("/v1/contratos", "5xx"),
                ("/v1/contratos", "empty_200"),
                ("/v1/contratos", "422"),
            ]
        )
        statuses = [get(server, "/v1/contratos", pagina=1, **WINDOW) for _ in range(6)]
        codes = [r.status_code for r in statuses]
        assert codes[:2] == [503, 502]
        assert codes[2] in (500, 502, 503, 504)
        assert (codes[3], statuses[3].content) == (200, b"")
        assert codes[4] == 422
        assert statuses[4].json()["message"] == "Período inicial e final maior que 365 dias."
        assert codes[5] == 200


def test_truncated_body_is_not_parseable(dataset):
    with FakePNCP(dataset) as server:
        server.script([("/v1/contratos", "truncated")])
        response = get(server, "/v1/contratos", pagina=1, tamanhoPagina=10, **WINDOW)
        assert response.status_code == 200
        full = get(server, "/v1/contratos", pagina=1, tamanhoPagina=10, **WINDOW)
        assert len(response.content) == len(full.content) // 2
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


def test_timeout_and_slow_faults(dataset):
    faults = FaultConfig(hang_seconds=3, slow_seconds=0.3)
    with FakePNCP(dataset, faults=faults) as server:
        server.script([("/v1/contratos", "timeout"), ("/v1/contratos", "slow")])
        url = server.url("/v1/contratos", pagina=1, **WINDOW)
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(url, timeout=0.3)
        assert [e.fault for e in server.requests()] == ["timeout"]  # logged before the hang
        began = time.monotonic()
        assert requests.get(url, timeout=TIMEOUT).status_code == 200
        assert time.monotonic() - began >= 0.3
        began = time.monotonic()
    assert time.monotonic() - began < 2  # stopping wakes up the hanging handler


def test_disconnect_fault(fake_pncp):
    fake_pncp.script([("/v1/contratos", "disconnect")])
    with pytest.raises(requests.exceptions.ConnectionError):
        get(fake_pncp, "/v1/contratos", pagina=1, **WINDOW)


def test_fail_always(dataset):
    with FakePNCP(dataset) as server:
        server.fail_always["/v1/atas"] = 503
        assert [get(server, "/v1/atas", pagina=1, **WINDOW).status_code for _ in range(3)] == [
            503
        ] * 3
        assert get(server, "/v1/atas/atualizacao", pagina=1, **WINDOW).status_code == 200
        del server.fail_always["/v1/atas"]
        assert get(server, "/v1/atas", pagina=1, **WINDOW).status_code == 200


def _statuses_under_faults(dataset, seed: int) -> list[int]:
    faults = FaultConfig(seed=seed, rate_429=0.2, rate_5xx=0.2, rate_422_spurious=0.1)
    with FakePNCP(dataset, faults=faults) as server:
        codes = [
            get(server, "/v1/contratos", pagina=page, tamanhoPagina=10, **WINDOW).status_code
            for page in range(1, 21)
            for _ in range(3)
        ]
        assert sum(server.status_counts.values()) == len(codes)
        return codes


def test_fault_rates_are_deterministic_with_a_seed(dataset):
    first = _statuses_under_faults(dataset, seed=1)
    assert first == _statuses_under_faults(dataset, seed=1)
    assert first != _statuses_under_faults(dataset, seed=2)
    counts = Counter(first)
    assert 0 < counts[429] < 30 and 0 < counts[200] < 60
    assert any(code >= 500 for code in first) and counts[422] > 0


def test_spurious_422_only_on_valid_windows(dataset):
    with FakePNCP(dataset, faults=FaultConfig(rate_422_spurious=1.0)) as server:
        assert get(server, "/v1/contratos", pagina=1, **WINDOW).status_code == 422
        record = dataset.records("contratacoes")[0]
        cnpj, ano = record["orgaoEntidade"]["cnpj"], record["anoCompra"]
        detail = get(server, f"/v1/orgaos/{cnpj}/compras/{ano}/{record['sequencialCompra']}")
        assert detail.status_code == 200
        bad = get(server, "/v1/contratos", pagina=1, dataInicial="x", dataFinal="20250720")
        assert bad.status_code == 400
        assert server.fault_counts == Counter({"422": 1})


def test_faults_under_concurrency_keep_the_server_consistent(dataset):
    faults = FaultConfig(seed=3, rate_429=0.1, rate_5xx=0.1)
    params = {"tamanhoPagina": 10, **WINDOW}
    total = dataset.count("contratos")

    with FakePNCP(dataset, faults=faults) as server:

        def fetch(page: int) -> list[str]:
            with requests.Session() as session:
                while True:  # retry: each attempt of the same request gets a fresh draw
                    url = server.url("/v1/contratos", pagina=page, **params)
                    response = session.get(url, timeout=TIMEOUT)
                    if response.status_code == 200:
                        assert response.json()["totalRegistros"] == total
                        return keys(response.json()["data"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            pages = list(pool.map(fetch, range(1, -(-total // 10) + 1)))
        fetched = [key for page in pages for key in page]
        assert len(fetched) == len(set(fetched)) == total
        assert server.internal_errors == []
        assert server.status_counts[429] > 0
        assert sum(server.status_counts[code] for code in (500, 502, 503, 504)) > 0


# ---- request log ----------------------------------------------------------------------------


def test_request_log_and_counters(fake_pncp):
    fake_pncp.dataset.populate(contratos=30, start=START, days=5, seed=1)
    get(fake_pncp, "/v1/contratos", pagina=1, tamanhoPagina=10, **WINDOW)
    get(fake_pncp, "/v1/contratos", pagina=1, tamanhoPagina=10, **WINDOW)
    get(fake_pncp, "/v1/contratos", pagina=9, tamanhoPagina=10, **WINDOW)
    get(fake_pncp, "/v1/atas", pagina=1, **WINDOW)
    log = fake_pncp.requests(path="/v1/contratos")
    assert [e.status for e in log] == [200, 200, 400]
    assert log[0].params == {"pagina": "1", "tamanhoPagina": "10", **WINDOW}
    assert log[0].records == 10 and log[0].fault is None
    assert fake_pncp.status_counts == Counter({200: 2, 400: 1, 204: 1})
    assert list(fake_pncp.duplicate_requests().values()) == [2]
    fake_pncp.reset_log()
    assert fake_pncp.requests() == [] and not fake_pncp.status_counts


# ---- dataset --------------------------------------------------------------------------------


def test_generated_keys_are_unique_and_consistent(dataset):
    contratacoes = dataset.records("contratacoes")
    for r in contratacoes:
        cnpj, seq, ano = r["orgaoEntidade"]["cnpj"], r["sequencialCompra"], r["anoCompra"]
        assert r["numeroControlePNCP"] == f"{cnpj}-1-{seq:06d}/{ano}"
        assert r["modalidadeNome"] == MODALIDADES[r["modalidadeId"]]
        assert r["dataPublicacaoPncp"] <= r["dataAtualizacao"] <= r["dataAtualizacaoGlobal"]
        assert START.isoformat() <= r["dataPublicacaoPncp"] < "2025-07-21"
    assert {r["modalidadeId"] for r in contratacoes} == set(range(1, 14))
    assert len({r["unidadeOrgao"]["ufSigla"] for r in contratacoes}) >= 5
    compra_keys = set(keys(contratacoes))

    contratos = dataset.records("contratos")
    for r in contratos:
        cnpj, seq, ano = r["orgaoEntidade"]["cnpj"], r["sequencialContrato"], r["anoContrato"]
        assert r["numeroControlePNCP"] == f"{cnpj}-2-{seq:06d}/{ano}"
        assert "numeroControlePncpCompra" in r and "numeroControlePNCPCompra" not in r
    linked = [r for r in contratos if r["numeroControlePncpCompra"] in compra_keys]
    assert 0 < len(linked) < len(contratos)

    atas = dataset.records("atas")
    for r in atas:
        assert r["numeroControlePNCPCompra"] in compra_keys
        assert re.fullmatch(
            re.escape(r["numeroControlePNCPCompra"]) + r"-\d{6}", r["numeroControlePNCPAta"]
        )
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["dataAtualizacaoGlobal"])  # date-only

    for r in dataset.records("pca"):
        assert re.fullmatch(rf"{r['orgaoEntidadeCnpj']}-0-\d{{6}}/{r['anoPca']}", r["idPcaPncp"])
        assert "dataPublicacaoPNCP" in r and "dataAtualizacaoGlobalPCA" in r

    for resource, field in [
        ("contratacoes", "numeroControlePNCP"),
        ("contratos", "numeroControlePNCP"),
        ("atas", "numeroControlePNCPAta"),
        ("pca", "idPcaPncp"),
    ]:
        all_keys = keys(dataset.records(resource), field)
        assert len(all_keys) == len(set(all_keys)) == dataset.count(resource)


def test_generation_is_deterministic_and_populate_keeps_keys_unique():
    a = FakeDataset.generate(contratacoes=30, contratos=10, start=START, days=3, seed=5)
    b = FakeDataset.generate(contratacoes=30, contratos=10, start=START, days=3, seed=5)
    assert a.records("contratacoes") == b.records("contratacoes")
    assert a.records("contratos") == b.records("contratos")
    added = a.populate(contratacoes=30, start=START, days=3, seed=5)
    assert len(added["contratacoes"]) == 30
    assert a.count("contratacoes") == len(set(a.keys("contratacoes"))) == 60


def test_update_changes_the_record_and_its_atualizacao_date():
    data = FakeDataset.generate(contratacoes=40, atas=5, pcas=2, start=START, days=5, seed=9)
    key = data.keys("contratacoes")[0]
    before = data.get("contratacoes", key)
    with FakePNCP(data) as server:
        params = {"codigoModalidadeContratacao": before["modalidadeId"]}
        publicacao_before = fetch_all(server, "/v1/contratacoes/publicacao", **params, **WINDOW)

        new = data.update(
            "contratacoes",
            key,
            at=datetime(2025, 8, 15, 10, 30),
            objetoCompra="objeto retificado",
            unidadeOrgao={"ufSigla": "AC"},
        )
        assert new["objetoCompra"] == "objeto retificado"
        assert new["unidadeOrgao"]["ufSigla"] == "AC"
        assert new["unidadeOrgao"]["codigoIbge"] == before["unidadeOrgao"]["codigoIbge"]
        assert new["dataAtualizacao"] == new["dataAtualizacaoGlobal"] == "2025-08-15T10:30:00"
        assert new["dataPublicacaoPncp"] == before["dataPublicacaoPncp"]

        changed = fetch_all(
            server,
            "/v1/contratacoes/atualizacao",
            dataInicial="20250815",
            dataFinal="20250815",
            **params,
        )
        assert keys(changed) == [key] and changed[0]["objetoCompra"] == "objeto retificado"
        publicacao_after = fetch_all(server, "/v1/contratacoes/publicacao", **params, **WINDOW)
        assert keys(publicacao_after) == keys(publicacao_before)

    ata_key = data.keys("atas")[0]
    assert data.update("atas", ata_key, at=datetime(2025, 9, 1, 8))["dataAtualizacaoGlobal"] == (
        "2025-09-01"
    )
    pca_key = data.keys("pca")[0]
    pca = data.update("pca", pca_key, at=datetime(2025, 9, 2, 8))
    assert pca["dataAtualizacaoGlobalPCA"] == "2025-09-02T08:00:00"
    with pytest.raises(KeyError):
        data.update("contratos", "nope")


def test_records_are_copies(fake_pncp):
    data = fake_pncp.dataset
    data.populate(contratos=12, start=START, days=2, seed=3)
    data.records("contratos")[0]["objetoContrato"] = "mutated"
    got = fetch_all(fake_pncp, "/v1/contratos", **WINDOW)
    assert "mutated" not in {r["objetoContrato"] for r in got}
    assert sorted(keys(got)) == sorted(data.keys("contratos"))


def test_added_records_are_served(fake_pncp):
    template = FakeDataset.generate(contratacoes=1, start=START, days=1, seed=1).records(
        "contratacoes"
    )[0]
    key = fake_pncp.dataset.add("contratacoes", template, id_usuario=77)
    assert fake_pncp.dataset.id_usuario("contratacoes", key) == 77
    got = fetch_all(
        fake_pncp,
        "/v1/contratacoes/publicacao",
        codigoModalidadeContratacao=template["modalidadeId"],
        idUsuario=77,
        dataInicial="20250701",
        dataFinal="20250701",
    )
    assert got == [template]


def test_fixture_starts_an_empty_fake(fake_pncp):
    assert fake_pncp.base_url.startswith("http://127.0.0.1:")
    assert fake_pncp.base_url.endswith("/api/consulta")
    assert fake_pncp.dataset.counts() == {"contratacoes": 0, "contratos": 0, "atas": 0, "pca": 0}
    assert get(fake_pncp, "/v1/contratos", pagina=1, **WINDOW).status_code == 204


def test_unknown_path_is_404(fake_pncp):
    assert get(fake_pncp, "/v1/instrumentoscobranca/inclusao", pagina=1).status_code == 404
    assert (
        requests.get(fake_pncp.base_url[: -len("/api/consulta")] + "/x", timeout=5).status_code
        == 404
    )


def test_stop_closes_keep_alive_connections(dataset):
    server = FakePNCP(dataset).start()
    session = requests.Session()
    assert session.get(server.url("/v1/atas", pagina=1, **WINDOW), timeout=TIMEOUT).ok
    server.stop()
    alive = [t for t in threading.enumerate() if t.name == f"fake-pncp-{server.port}"]
    assert alive == []
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(server.url("/v1/atas", pagina=1, **WINDOW), timeout=2)
