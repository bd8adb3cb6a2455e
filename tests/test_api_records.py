"""The records API against PostgreSQL: every filter, every error, pagination, details.

Data: the real PNCP samples plus records from the fake PNCP generator (realistic clones),
loaded once per module through the importer, in a transaction rolled back at the end. Every
expected result is computed here from the source JSON records (PNCP field names), not from
the database or the API code, so a wrong filter fails.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from domain_tables.models import TABLES
from pncp.ingest import Ingester
from tests.conftest import sample_records
from tests.fakes.fake_pncp import FakeDataset

SP = ZoneInfo("America/Sao_Paulo")
API = "/api/v1"
FAKE_START = date(2025, 6, 1)  # fake records: June–July 2025, like the newest real samples
CONTRATACAO_WINDOW = {"dataInicial": "20250101", "dataFinal": "20251231"}
CONTRATO_WINDOW = {"dataInicial": "20250101", "dataFinal": "20251231"}
ATA_WINDOW = {"dataInicial": "20250601", "dataFinal": "20250630"}
MAX_QUERIES = 4
# Full-text search is PostgreSQL's; the SQLite demo falls back to icontains.
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL full-text search"
)

REAL_CONTRATACOES = (
    "contratacao_1.json",
    "contratacao_3.json",
    "contratacao_5.json",
    "contratacao_proposta_1.json",
    "contratacao_proposta_2.json",
    "contratacao_proposta_3.json",
    "contratacoes_publicacao_sc_pregao.json",
    "compra_1.json",
)
REAL_CONTRATOS = (
    "contrato_1.json",
    "contrato_2.json",
    "contrato_3.json",
    "contrato_5.json",
    "contratos_publicacao_page.json",
)
REAL_ATAS = ("ata_1.json", "ata_5.json")


# --- independent helpers (PNCP JSON in, expectations out) ------------------------------------


def moment(value: str | None) -> datetime | None:
    """A PNCP date or date-time (Brasília wall clock) as an aware datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SP)


def day(value: str | None) -> date | None:
    return None if not value else date.fromisoformat(value[:10])


def ymd(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def in_window(value: str | None, first: str, last: str) -> bool:
    return value is not None and ymd(first) <= day(value) <= ymd(last)


def overlaps(start: str | None, end: str | None, first: str, last: str) -> bool:
    if not start:
        return False
    return day(start) <= ymd(last) and (not end or day(end) >= ymd(first))


def words(text: str | None) -> set[str]:
    folded = unicodedata.normalize("NFKD", (text or "").lower())
    return set(re.findall(r"\w+", "".join(c for c in folded if not unicodedata.combining(c))))


def most_common(values) -> object:
    return Counter(v for v in values if v not in (None, "")).most_common(1)[0][0]


def listed(client, path: str, key: str, **params) -> list[dict]:
    """Every record of a listing, walking its pages; asserts no record repeats."""
    records, page = [], 1
    while True:
        response = client.get(path, {**params, "pagina": page, "tamanhoPagina": 500})
        assert response.status_code == 200, response.json()
        body = response.json()
        records.extend(body["data"])
        if body["paginasRestantes"] == 0:
            break
        page += 1
    numbers = [r[key] for r in records]
    assert len(numbers) == len(set(numbers)), "a record appeared on two pages"
    assert len(records) == body["totalRegistros"]
    return records


def keys_of(client, path: str, key: str, **params) -> set[str]:
    return {r[key] for r in listed(client, path, key, **params)}


def check_narrows(got: set, expected: set, universe: set) -> None:
    """The filter returns exactly ``expected``, which is non-empty and narrower than the
    unfiltered window (so the test data really exercises it)."""
    assert expected, "test data has no match for this filter"
    assert expected < universe, "test data does not make this filter narrow anything"
    assert got == expected


# --- data, loaded once -----------------------------------------------------------------------


def _dedupe(records: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in records}


def _ingest_by_usuario(ingester, resource, records, usuarios):
    groups: dict = {}
    for record in records:
        groups.setdefault(usuarios.get(record["_key"]), []).append(record)
    for uid, group in groups.items():
        clean = [{k: v for k, v in r.items() if k != "_key"} for r in group]
        extra = {"id_usuario": uid} if uid is not None else None
        result = ingester.ingest(resource, clean, extra=extra)
        assert result.rejected == 0


@pytest.fixture(scope="module")
def data(django_db_setup, django_db_blocker):
    dataset = FakeDataset.generate(
        contratacoes=240, contratos=200, atas=150, pcas=30, start=FAKE_START, days=60, seed=7
    )
    # Open proposals relative to today, for /contratacoes/proposta/.
    dataset.populate(contratacoes=40, start=timezone.localdate() - timedelta(days=3), days=10)

    fake_contratacoes = dataset.records("contratacoes")
    for i, record in enumerate(fake_contratacoes):  # vary the codes the templates keep fixed
        if i % 9 == 0:
            record.update(situacaoCompraId=3, situacaoCompraNome="Anulada")
        if i % 7 == 0:
            record.update(
                tipoInstrumentoConvocatorioCodigo=3,
                tipoInstrumentoConvocatorioNome="Ato que autoriza a Contratação Direta",
                amparoLegal={"codigo": 4, "nome": "Lei 14.133/2021, Art. 28, IV", "descricao": ""},
            )
    fake_atas = dataset.records("atas")
    for i, record in enumerate(fake_atas):
        if i % 5 == 0:
            record.update(cancelado=True, dataCancelamento=record["vigenciaInicio"])

    contratacoes = _dedupe(sample_records(*REAL_CONTRATACOES), "numeroControlePNCP")
    contratacoes.update(_dedupe(fake_contratacoes, "numeroControlePNCP"))
    contratos = _dedupe(sample_records(*REAL_CONTRATOS), "numeroControlePNCP")
    contratos.update(_dedupe(dataset.records("contratos"), "numeroControlePNCP"))
    atas = _dedupe(sample_records(*REAL_ATAS), "numeroControlePNCPAta")
    atas.update(_dedupe(fake_atas, "numeroControlePNCPAta"))
    pcas = _dedupe(sample_records("pca_1.json"), "idPcaPncp")
    pcas.update(_dedupe(dataset.records("pca"), "idPcaPncp"))

    usuarios = {
        "contratacoes": {
            k: dataset.id_usuario("contratacoes", k) for k in dataset.keys("contratacoes")
        },
        "contratos": {k: dataset.id_usuario("contratos", k) for k in dataset.keys("contratos")},
        "pca": {k: dataset.id_usuario("pca", k) for k in dataset.keys("pca")},
    }
    with django_db_blocker.unblock(), transaction.atomic():
        ingester = Ingester()
        for resource, records, key in (
            ("contratacoes", contratacoes, "numeroControlePNCP"),
            ("contratos", contratos, "numeroControlePNCP"),
            ("pca", pcas, "idPcaPncp"),
        ):
            tagged = [{**r, "_key": r[key]} for r in records.values()]
            _ingest_by_usuario(ingester, resource, tagged, usuarios[resource])
        assert ingester.ingest("atas", list(atas.values())).rejected == 0
        yield SimpleNamespace(
            contratacoes=contratacoes,
            contratos=contratos,
            atas=atas,
            pcas=pcas,
            usuarios=usuarios,
        )
        transaction.set_rollback(True)


@pytest.fixture
def client(db):
    user = get_user_model().objects.create_user(username="leitor")  # no password: no hashing
    api = APIClient()
    api.force_authenticate(user)
    return api


# --- contratações: filters -------------------------------------------------------------------

CONTRATACOES = f"{API}/contratacoes/"
NC = "numeroControlePNCP"


def contratacoes_in(data, first="20250101", last="20251231"):
    return {
        k: r
        for k, r in data.contratacoes.items()
        if in_window(r["dataPublicacaoPncp"], first, last)
    }


def test_contratacoes_window(data, client):
    everything = set(data.contratacoes)
    expected = set(contratacoes_in(data, "20250610", "20250620"))
    got = keys_of(client, CONTRATACOES, NC, dataInicial="20250610", dataFinal="20250620")
    check_narrows(got, expected, everything)


def test_contratacoes_window_includes_the_whole_last_day(data, client):
    record = next(r for r in data.contratacoes.values() if r["dataPublicacaoPncp"] >= "2025-06")
    stamp = moment(record["dataPublicacaoPncp"]).strftime("%Y%m%d")
    got = keys_of(client, CONTRATACOES, NC, dataInicial=stamp, dataFinal=stamp)
    assert record[NC] in got
    assert got == set(contratacoes_in(data, stamp, stamp))


@pytest.mark.parametrize(
    ("param", "value", "matches"),
    [
        ("codigoModalidadeContratacao", "6", lambda r: r.get("modalidadeId") == 6),
        ("codigoModoDisputa", "3", lambda r: r.get("modoDisputaId") == 3),
        ("situacaoCompraId", "3", lambda r: r.get("situacaoCompraId") == 3),
        (
            "tipoInstrumentoConvocatorioCodigo",
            "3",
            lambda r: r.get("tipoInstrumentoConvocatorioCodigo") == 3,
        ),
        ("amparoLegalCodigo", "4", lambda r: (r.get("amparoLegal") or {}).get("codigo") == 4),
        ("uf", "sc", lambda r: r["unidadeOrgao"]["ufSigla"] == "SC"),
        ("srp", "true", lambda r: r.get("srp") is True),
        ("srp", "false", lambda r: r.get("srp") is False),
    ],
)
def test_contratacoes_code_filters(data, client, param, value, matches):
    window = contratacoes_in(data)
    expected = {k for k, r in window.items() if matches(r)}
    got = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, **{param: value})
    check_narrows(got, expected, set(window))


@pytest.mark.parametrize(
    ("param", "path"),
    [
        ("codigoMunicipioIbge", ("unidadeOrgao", "codigoIbge")),
        ("cnpj", ("orgaoEntidade", "cnpj")),
        ("codigoUnidadeAdministrativa", ("unidadeOrgao", "codigoUnidade")),
    ],
)
def test_contratacoes_place_and_owner_filters(data, client, param, path):
    window = contratacoes_in(data)
    value = most_common(r[path[0]][path[1]] for r in window.values())
    expected = {k for k, r in window.items() if r[path[0]][path[1]] == value}
    got = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, **{param: value})
    check_narrows(got, expected, set(window))


def test_contratacoes_cnpj_accepts_punctuation(data, client):
    window = contratacoes_in(data)
    cnpj = most_common(r["orgaoEntidade"]["cnpj"] for r in window.values())
    formatted = f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"
    plain = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, cnpj=cnpj)
    assert keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, cnpj=formatted) == plain


def test_contratacoes_id_usuario(data, client):
    window = contratacoes_in(data)
    usuarios = data.usuarios["contratacoes"]
    uid = most_common(usuarios.get(k) for k in window)
    expected = {k for k in window if usuarios.get(k) == uid}
    got = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, idUsuario=uid)
    check_narrows(got, expected, set(window))


def test_contratacoes_value_range(data, client):
    window = contratacoes_in(data)
    expected = {
        k
        for k, r in window.items()
        if r.get("valorTotalEstimado") is not None and 100_000 <= r["valorTotalEstimado"] <= 1e6
    }
    got = keys_of(
        client,
        CONTRATACOES,
        NC,
        **CONTRATACAO_WINDOW,
        valorMinimo="100000",
        valorMaximo="1000000.00",
    )
    check_narrows(got, expected, set(window))
    only_min = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, valorMinimo="100000")
    assert only_min == {
        k for k, r in window.items() if (r.get("valorTotalEstimado") or -1) >= 100_000
    }


def test_filters_combine(data, client):
    window = contratacoes_in(data)
    expected = {
        k
        for k, r in window.items()
        if r.get("modalidadeId") == 8 and r["unidadeOrgao"]["ufSigla"] == "SC" and r.get("srp")
    }
    got = keys_of(
        client,
        CONTRATACOES,
        NC,
        **CONTRATACAO_WINDOW,
        codigoModalidadeContratacao=8,
        uf="SC",
        srp="true",
    )
    assert got == expected


# --- full-text search ------------------------------------------------------------------------


@postgres_only
def test_search_ignores_accents(data, client):
    """ "aquisicao" (no accent) finds "Aquisição", "AQUISIÇÃO", "aquisicao"."""
    window = contratacoes_in(data)
    expected = {k for k, r in window.items() if "aquisicao" in words(r.get("objetoCompra"))}
    got = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, q="aquisicao")
    check_narrows(got, expected, set(window))
    assert any("Aquisição" in window[k]["objetoCompra"] for k in got)
    assert any("AQUISIÇÃO" in window[k]["objetoCompra"] for k in got)


@postgres_only
def test_search_stems_portuguese_plurals(data, client):
    """ "servicos" finds "serviço" and "SERVIÇOS" (one stem), and "serviço" finds the same.

    (Snowball's Portuguese stemmer does not join every pair: "material"/"materiais" and
    "aquisição"/"aquisições" keep different stems.)"""
    window_2026 = {"dataInicial": "20260101", "dataFinal": "20261231"}
    window = contratacoes_in(data, "20260101", "20261231")
    variants = {"servico", "servicos"}
    expected = {k for k, r in window.items() if variants & words(r.get("objetoCompra"))}
    singular = keys_of(client, CONTRATACOES, NC, **window_2026, q="serviço")
    plural = keys_of(client, CONTRATACOES, NC, **window_2026, q="servicos")
    check_narrows(plural, expected, set(window))
    assert singular == plural
    found = {w for k in plural for w in words(window[k]["objetoCompra"]) & variants}
    assert found == variants, "the data must have both forms for this test to mean anything"


@postgres_only
def test_search_web_syntax(data, client):
    window = contratacoes_in(data)
    both = {
        k
        for k, r in window.items()
        if {"aquisicao", "veiculo"} <= words(r.get("objetoCompra"))
        or {"aquisicao", "veiculos"} <= words(r.get("objetoCompra"))
    }
    got = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, q="aquisição veículo")
    assert got == both
    without = keys_of(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, q="aquisicao -material")
    assert without == {
        k
        for k, r in window.items()
        if "aquisicao" in words(r.get("objetoCompra"))
        and "material" not in words(r.get("objetoCompra"))
    }


@postgres_only
def test_search_in_contratos_atas_and_pca(data, client):
    contratos = {
        k
        for k, r in data.contratos.items()
        if in_window(r["dataPublicacaoPncp"], **_w(CONTRATO_WINDOW))
    }
    # one stem, 'aliment': alimento(s), alimentar(es) — not alimentação nor alimentícios
    family = {"alimento", "alimentos", "alimentar", "alimentares"}
    expected = {k for k in contratos if family & words(data.contratos[k]["objetoContrato"])}
    got = keys_of(client, f"{API}/contratos/", NC, **CONTRATO_WINDOW, q="alimento")
    check_narrows(got, expected, contratos)

    atas = {
        k
        for k, r in data.atas.items()
        if overlaps(r["vigenciaInicio"], r["vigenciaFim"], **_w(ATA_WINDOW))
    }
    expected = {k for k in atas if "manutencao" in words(data.atas[k]["objetoContratacao"])}
    got = keys_of(client, f"{API}/atas/", "numeroControlePNCPAta", **ATA_WINDOW, q="manutencao")
    check_narrows(got, expected, atas)

    itens = pca_items(data, 2025)
    cnpj = most_common(i["orgaoEntidadeCnpj"] for i in itens.values())
    mine = {k for k, i in itens.items() if i["orgaoEntidadeCnpj"] == cnpj}
    expected = {k for k in mine if {"cadeira", "cadeiras"} & words(itens[k]["descricaoItem"])}
    got = item_keys(client, anoPca=2025, cnpj=cnpj, q="cadeira")
    check_narrows(got, expected, mine)


def _w(window: dict) -> dict:
    return {"first": window["dataInicial"], "last": window["dataFinal"]}


# --- ordering --------------------------------------------------------------------------------


def test_default_order_is_publication_desc_and_stable(data, client):
    records = listed(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW)
    stamps = [r["dataPublicacaoPncp"] for r in records]
    assert stamps == sorted(stamps, reverse=True)
    again = listed(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW)
    assert [r[NC] for r in again] == [r[NC] for r in records]


@pytest.mark.parametrize("ordering", ["valorTotalEstimado", "-valorTotalEstimado"])
def test_ordering_by_value(data, client, ordering):
    records = listed(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, ordenacao=ordering)
    values = [r["valorTotalEstimado"] for r in records if r["valorTotalEstimado"] is not None]
    assert values == sorted(values, reverse=ordering.startswith("-"))
    assert {r[NC] for r in records} == set(contratacoes_in(data))


def test_ordering_by_date_ascending(data, client):
    records = listed(
        client, CONTRATACOES, NC, **CONTRATACAO_WINDOW, ordenacao="dataAtualizacaoGlobal"
    )
    stamps = [r["dataAtualizacaoGlobal"] for r in records if r["dataAtualizacaoGlobal"]]
    assert stamps == sorted(stamps)


def test_atas_default_order_is_vigencia_inicio_desc(data, client):
    records = listed(client, ATAS, NA, **ATA_WINDOW)
    starts = [r["vigenciaInicio"] for r in records]
    assert starts == sorted(starts, reverse=True)
    updated = listed(
        client, f"{ATAS}atualizacao/", NA, dataInicial="20241001", dataFinal="20241031"
    )
    stamps = [r["dataAtualizacaoGlobal"] for r in updated]
    assert stamps == sorted(stamps, reverse=True)


def test_ordering_contratos_and_atas(data, client):
    records = listed(client, f"{API}/contratos/", NC, **CONTRATO_WINDOW, ordenacao="-valorGlobal")
    values = [r["valorGlobal"] for r in records if r["valorGlobal"] is not None]
    assert values == sorted(values, reverse=True)
    atas = listed(
        client, f"{API}/atas/", "numeroControlePNCPAta", **ATA_WINDOW, ordenacao="vigenciaFim"
    )
    ends = [r["vigenciaFim"] for r in atas if r["vigenciaFim"]]
    assert ends == sorted(ends)


# --- propostas em aberto ---------------------------------------------------------------------


def test_propostas_open_now(data, client):
    now = timezone.now()
    expected = {
        k
        for k, r in data.contratacoes.items()
        if moment(r.get("dataEncerramentoProposta"))
        and moment(r["dataEncerramentoProposta"]) >= now
    }
    got = keys_of(client, f"{CONTRATACOES}proposta/", NC)
    check_narrows(got, expected, set(data.contratacoes))


def test_propostas_until_data_final(data, client):
    now = timezone.now()
    last = timezone.localdate() + timedelta(days=12)
    expected = {
        k
        for k, r in data.contratacoes.items()
        if (enc := moment(r.get("dataEncerramentoProposta")))
        and now <= enc
        and enc.astimezone(SP).date() <= last
    }
    got = keys_of(client, f"{CONTRATACOES}proposta/", NC, dataFinal=last.strftime("%Y%m%d"))
    open_now = keys_of(client, f"{CONTRATACOES}proposta/", NC)
    check_narrows(got, expected, open_now)
    six = keys_of(
        client,
        f"{CONTRATACOES}proposta/",
        NC,
        dataFinal=last.strftime("%Y%m%d"),
        codigoModalidadeContratacao=6,
    )
    assert six == {k for k in expected if data.contratacoes[k]["modalidadeId"] == 6}


def test_propostas_reject_a_past_data_final(data, client):
    response = client.get(f"{CONTRATACOES}proposta/", {"dataFinal": "20200101"})
    assert response.status_code == 400
    assert response.json()["message"] == (
        "dataFinal: Data Final inválida (20200101): deve ser maior ou igual à data atual"
    )


# --- atas ------------------------------------------------------------------------------------

ATAS = f"{API}/atas/"
NA = "numeroControlePNCPAta"


def atas_overlapping(data, first, last):
    return {
        k
        for k, r in data.atas.items()
        if overlaps(r["vigenciaInicio"], r["vigenciaFim"], first, last)
    }


def test_atas_vigencia_overlap(data, client):
    expected = atas_overlapping(data, "20250601", "20250630")
    got = keys_of(client, ATAS, NA, **ATA_WINDOW)
    check_narrows(got, expected, set(data.atas))
    # an ata that started before the window and ends inside it is included
    assert any(data.atas[k]["vigenciaInicio"] < "2025-06-01" for k in got)
    # an ata that starts after the window is not
    assert not any(data.atas[k]["vigenciaInicio"] > "2025-06-30" for k in got)


def test_atas_atualizacao_window(data, client):
    expected = {
        k
        for k, r in data.atas.items()
        if in_window(r.get("dataAtualizacaoGlobal"), "20241001", "20241031")
    }
    got = keys_of(client, f"{ATAS}atualizacao/", NA, dataInicial="20241001", dataFinal="20241031")
    check_narrows(got, expected, set(data.atas))


@pytest.mark.parametrize(
    ("param", "field"),
    [("cnpj", "cnpjOrgao"), ("codigoUnidadeAdministrativa", "codigoUnidadeOrgao")],
)
def test_atas_owner_filters(data, client, param, field):
    window = atas_overlapping(data, "20250601", "20250630")
    value = most_common(data.atas[k][field] for k in window)
    expected = {k for k in window if data.atas[k][field] == value}
    got = keys_of(client, ATAS, NA, **ATA_WINDOW, **{param: value})
    check_narrows(got, expected, window)


@pytest.mark.parametrize("cancelado", [True, False])
def test_atas_cancelado(data, client, cancelado):
    window = atas_overlapping(data, "20250601", "20250630")
    expected = {k for k in window if data.atas[k]["cancelado"] is cancelado}
    got = keys_of(client, ATAS, NA, **ATA_WINDOW, cancelado=str(cancelado).lower())
    check_narrows(got, expected, window)


# --- contratos -------------------------------------------------------------------------------

CONTRATOS = f"{API}/contratos/"


def contratos_in(data, first="20250101", last="20251231"):
    return {
        k: r for k, r in data.contratos.items() if in_window(r["dataPublicacaoPncp"], first, last)
    }


def test_contratos_window(data, client):
    expected = set(contratos_in(data, "20250601", "20250630"))
    got = keys_of(client, CONTRATOS, NC, dataInicial="20250601", dataFinal="20250630")
    check_narrows(got, expected, set(data.contratos))


@pytest.mark.parametrize(
    ("param", "value_of"),
    [
        ("cnpjOrgao", lambda r: r["orgaoEntidade"]["cnpj"]),
        ("codigoUnidadeAdministrativa", lambda r: r["unidadeOrgao"]["codigoUnidade"]),
        ("niFornecedor", lambda r: r["niFornecedor"]),
        ("tipoContrato", lambda r: r["tipoContrato"]["id"]),
        ("categoriaProcesso", lambda r: r["categoriaProcesso"]["id"]),
    ],
)
def test_contratos_filters(data, client, param, value_of):
    window = contratos_in(data)
    counts = Counter(value_of(r) for r in window.values())
    value = counts.most_common()[1][0]  # the second most common: a real narrowing
    expected = {k for k, r in window.items() if value_of(r) == value}
    got = keys_of(client, CONTRATOS, NC, **CONTRATO_WINDOW, **{param: value})
    check_narrows(got, expected, set(window))


def test_contratos_usuario_id(data, client):
    window = contratos_in(data)
    usuarios = data.usuarios["contratos"]
    uid = most_common(usuarios.get(k) for k in window)
    expected = {k for k in window if usuarios.get(k) == uid}
    got = keys_of(client, CONTRATOS, NC, **CONTRATO_WINDOW, usuarioId=uid)
    check_narrows(got, expected, set(window))


def test_contratos_vigencia_overlap(data, client):
    window = contratos_in(data)
    expected = {
        k
        for k, r in window.items()
        if overlaps(r["dataVigenciaInicio"], r["dataVigenciaFim"], "20251001", "20251231")
    }
    got = keys_of(
        client,
        CONTRATOS,
        NC,
        **CONTRATO_WINDOW,
        vigenciaInicial="20251001",
        vigenciaFinal="20251231",
    )
    check_narrows(got, expected, set(window))


# --- PCA -------------------------------------------------------------------------------------

PCA = f"{API}/pca/"


def pca_items(data, ano: int) -> dict[tuple[str, int], dict]:
    items = {}
    for plano in data.pcas.values():
        if plano["anoPca"] != ano:
            continue
        for item in plano["itens"]:
            items[(plano["idPcaPncp"], item["numeroItem"])] = {
                **item,
                "idPcaPncp": plano["idPcaPncp"],
                "orgaoEntidadeCnpj": plano["orgaoEntidadeCnpj"],
                "codigoUnidade": plano["codigoUnidade"],
                "idUsuario": data.usuarios["pca"].get(plano["idPcaPncp"]),
            }
    return items


def item_keys(client, **params) -> set[tuple[str, int]]:
    return {(r["idPcaPncp"], r["numeroItem"]) for r in _all_items(client, params)}


def _all_items(client, params) -> list[dict]:
    response = client.get(PCA, {**params, "tamanhoPagina": 500})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["totalRegistros"] == len(body["data"]) <= 500
    return body["data"]


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("idUsuario", "idUsuario"),
        ("codigoClassificacaoSuperior", "classificacaoSuperiorCodigo"),
        ("cnpj", "orgaoEntidadeCnpj"),
        ("codigoUnidade", "codigoUnidade"),
    ],
)
def test_pca_itens_by_year_and_narrowing_filter(data, client, param, field):
    itens = pca_items(data, 2025)
    value = most_common(i[field] for i in itens.values())
    expected = {k for k, i in itens.items() if i[field] == value}
    check_narrows(item_keys(client, anoPca=2025, **{param: value}), expected, set(itens))
    assert item_keys(client, anoPca=2024, **{param: value}) == set()


def test_pca_itens_by_categoria(data, client):
    itens = pca_items(data, 2025)
    cnpj = most_common(i["orgaoEntidadeCnpj"] for i in itens.values())
    mine = {k for k, i in itens.items() if i["orgaoEntidadeCnpj"] == cnpj}
    expected = {k for k in mine if itens[k]["categoriaItemPcaNome"] == "Serviço"}  # code 2
    got = item_keys(client, anoPca=2025, cnpj=cnpj, categoriaItemPca=2)
    check_narrows(got, expected, mine)


def test_pca_planos_by_year_and_owner(data, client):
    cnpj = most_common(p["orgaoEntidadeCnpj"] for p in data.pcas.values())
    expected = {k for k, p in data.pcas.items() if p["orgaoEntidadeCnpj"] == cnpj}
    records = listed(client, f"{PCA}planos/", "idPcaPncp", anoPca=2025, cnpj=cnpj)
    check_narrows({r["idPcaPncp"] for r in records}, expected, set(data.pcas))
    for record in records:
        source = data.pcas[record["idPcaPncp"]]
        assert [i["numeroItem"] for i in record["itens"]] == sorted(
            i["numeroItem"] for i in source["itens"]
        )


def test_pca_planos_by_usuario_and_unidade(data, client):
    usuarios = data.usuarios["pca"]
    uid = most_common(usuarios.values())
    expected = {k for k in data.pcas if usuarios.get(k) == uid}
    got = keys_of(client, f"{PCA}planos/", "idPcaPncp", anoPca=2025, idUsuario=uid)
    check_narrows(got, expected, set(data.pcas))
    unidade = most_common(p["codigoUnidade"] for p in data.pcas.values())
    expected = {k for k, p in data.pcas.items() if p["codigoUnidade"] == unidade}
    got = keys_of(client, f"{PCA}planos/", "idPcaPncp", anoPca=2025, codigoUnidade=unidade)
    check_narrows(got, expected, set(data.pcas))


def test_pca_planos_by_update_window(data, client):
    expected = {
        k
        for k, p in data.pcas.items()
        if in_window(p["dataAtualizacaoGlobalPCA"], "20250601", "20250615")
    }
    got = keys_of(client, f"{PCA}planos/", "idPcaPncp", dataInicio="20250601", dataFim="20250615")
    check_narrows(got, expected, set(data.pcas))


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (
            CONTRATACOES,
            {"dataInicial": "xx", "dataFinal": "20250131"},
            "dataInicial: data inválida 'xx', use AAAAMMDD",
        ),
        (
            CONTRATACOES,
            {"dataInicial": "20250230", "dataFinal": "20250331"},
            "dataInicial: data inválida '20250230', use AAAAMMDD",
        ),
        (
            CONTRATACOES,
            {"dataInicial": "2025-01-01", "dataFinal": "20250131"},
            "dataInicial: data inválida '2025-01-01', use AAAAMMDD",
        ),
        (
            CONTRATACOES,
            {"dataFinal": "20250131"},
            "dataInicial: parâmetro obrigatório, use AAAAMMDD",
        ),
        (
            CONTRATACOES,
            {"dataInicial": "20250201", "dataFinal": "20250131"},
            "dataInicial: dataInicial (20250201) é posterior a dataFinal (20250131)",
        ),
        (
            CONTRATACOES,
            {"dataInicial": "20240101", "dataFinal": "20250102"},
            "dataFinal: período de 20240101 a 20250102 maior que 365 dias; divida a consulta em "
            "janelas de até 365 dias",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "codigoModalidadeContratacao": "99"},
            "codigoModalidadeContratacao: código 99 desconhecido",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "codigoModalidadeContratacao": "seis"},
            "codigoModalidadeContratacao: código inválido 'seis', informe um número",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "amparoLegalCodigo": "9999"},
            "amparoLegalCodigo: código 9999 desconhecido",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "cnpj": "123"},
            "cnpj: CNPJ inválido '123', informe os 14 dígitos",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "uf": "XX"},
            "uf: UF desconhecida 'XX', use a sigla (ex.: SP)",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "codigoMunicipioIbge": "43"},
            "codigoMunicipioIbge: código IBGE inválido '43', informe os 7 dígitos",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "srp": "talvez"},
            "srp: valor inválido 'talvez', use true ou false",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "valorMinimo": "mil"},
            "valorMinimo: valor inválido 'mil', use um número como 1500.50",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "valorMinimo": "10", "valorMaximo": "5"},
            "valorMinimo: valorMinimo (10) maior que valorMaximo (5)",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "ordenacao": "objetoCompra"},
            "ordenacao: valor inválido 'objetoCompra'; use um de: dataPublicacaoPncp, "
            "-dataPublicacaoPncp, dataAtualizacaoGlobal, -dataAtualizacaoGlobal, "
            "dataEncerramentoProposta, -dataEncerramentoProposta, valorTotalEstimado, "
            "-valorTotalEstimado",
        ),
        (
            CONTRATOS,
            {**CONTRATO_WINDOW, "cnpjOrgao": "abc"},
            "cnpjOrgao: CNPJ inválido 'abc', informe os 14 dígitos",
        ),
        (
            CONTRATOS,
            {**CONTRATO_WINDOW, "tipoContrato": "999"},
            "tipoContrato: código 999 desconhecido",
        ),
        (
            CONTRATOS,
            {**CONTRATO_WINDOW, "vigenciaInicial": "20251231", "vigenciaFinal": "20250101"},
            "vigenciaInicial: vigenciaInicial (20251231) é posterior a vigenciaFinal (20250101)",
        ),
        (
            ATAS,
            {"dataInicial": "20250101"},
            "dataFinal: parâmetro obrigatório, use AAAAMMDD",
        ),
        (
            f"{ATAS}atualizacao/",
            {"dataInicial": "20230101", "dataFinal": "20250101"},
            "dataFinal: período de 20230101 a 20250101 maior que 365 dias; divida a consulta em "
            "janelas de até 365 dias",
        ),
        (
            PCA,
            {"anoPca": "2025"},
            "informe, além de anoPca, um destes filtros: idUsuario, codigoClassificacaoSuperior, "
            "cnpj ou codigoUnidade (como no PNCP)",
        ),
        (PCA, {"cnpj": "47015532000166"}, "anoPca: parâmetro obrigatório."),
        (
            PCA,
            {"anoPca": "2025", "cnpj": "47015532000166", "categoriaItemPca": "99"},
            "categoriaItemPca: código 99 desconhecido",
        ),
        (
            f"{PCA}planos/",
            {"anoPca": "2025"},
            "informe dataInicio e dataFim, ou anoPca com idUsuario, cnpj ou codigoUnidade "
            "(como no PNCP)",
        ),
        (
            CONTRATACOES,
            {**CONTRATACAO_WINDOW, "tamanhoPagina": "501"},
            "tamanhoPagina: tamanhoPagina deve ser menor ou igual a 500 (recebido 501).",
        ),
    ],
)
def test_errors_have_a_specific_message(data, client, path, params, message):
    response = client.get(path, params)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["message"] == message
    assert body["status"] == 400
    assert body["error"] == "invalid"
    assert body["path"] == path


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"niFornecedor": "50%"}, "dataInicial: parâmetro obrigatório, use AAAAMMDD"),
        (
            {**CONTRATO_WINDOW, "codigoUnidadeAdministrativa": "100%"},
            None,  # a '%' in a value is just a character (it once broke message formatting)
        ),
        (
            {**CONTRATO_WINDOW, "codigoUnidadeAdministrativa": "a\x00b"},
            "codigoUnidadeAdministrativa: valor inválido: caracteres de controle não são aceitos",
        ),
        (
            {**CONTRATO_WINDOW, "tipoContrato": "²"},
            "tipoContrato: código inválido '²', informe um número",
        ),
        (
            {**CONTRATO_WINDOW, "usuarioId": "99999999999999999999"},
            "usuarioId: valor 99999999999999999999 maior que o máximo 9223372036854775807",
        ),
        (
            {**CONTRATO_WINDOW, "cnpjOrgao": "٣٣٦٥٤٨٣١٠٠٠١٣٦"},
            "cnpjOrgao: CNPJ inválido '٣٣٦٥٤٨٣١٠٠٠١٣٦', informe os 14 dígitos",
        ),
        (
            {**CONTRATO_WINDOW, "dataFinal": "2025%31"},
            "dataFinal: data inválida '2025%31', use AAAAMMDD",
        ),
    ],
)
def test_hostile_values_are_400_not_500(data, client, params, message):
    response = client.get(CONTRATOS, params)
    if message is None:
        assert response.status_code == 200
        assert response.json()["data"] == []
        return
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_anonymous_is_refused(data, db):
    response = APIClient().get(CONTRATACOES, CONTRATACAO_WINDOW)
    assert response.status_code == 401
    assert set(response.json()) >= {"status", "error", "message", "path"}


# --- pagination ------------------------------------------------------------------------------


def test_page_size_500_and_the_last_pages(data, client):
    total = len(contratos_in(data))
    assert total > 1000
    first = client.get(CONTRATOS, {**CONTRATO_WINDOW, "tamanhoPagina": 500}).json()
    assert len(first["data"]) == 500
    assert first["totalRegistros"] == total
    assert first["totalPaginas"] == math.ceil(total / 500)
    assert first["paginasRestantes"] == first["totalPaginas"] - 1
    assert first["empty"] is False

    last_page = math.ceil(total / 500)
    last = client.get(
        CONTRATOS, {**CONTRATO_WINDOW, "tamanhoPagina": 500, "pagina": last_page}
    ).json()
    assert len(last["data"]) == total - 500 * (last_page - 1)
    assert last["paginasRestantes"] == 0
    assert last["numeroPagina"] == last_page

    beyond = client.get(
        CONTRATOS, {**CONTRATO_WINDOW, "tamanhoPagina": 500, "pagina": last_page + 1}
    )
    assert beyond.status_code == 200
    assert beyond.json() == {
        "data": [],
        "totalRegistros": total,
        "totalPaginas": last_page,
        "numeroPagina": last_page + 1,
        "paginasRestantes": 0,
        "empty": True,
    }


def test_pages_partition_the_result(data, client):
    expected = set(contratacoes_in(data, "20250601", "20250731"))
    seen, page = [], 1
    while True:
        body = client.get(
            CONTRATACOES,
            {
                "dataInicial": "20250601",
                "dataFinal": "20250731",
                "tamanhoPagina": 7,
                "pagina": page,
            },
        ).json()
        seen.extend(r[NC] for r in body["data"])
        if not body["paginasRestantes"]:
            break
        page += 1
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(CONTRATACOES, {**CONTRATACAO_WINDOW, "q": "aquisicao"}, marks=postgres_only),
        (CONTRATACOES, {**CONTRATACAO_WINDOW, "uf": "SC", "srp": "true"}),
        (f"{CONTRATACOES}proposta/", {"codigoModalidadeContratacao": "6"}),
        (CONTRATOS, {**CONTRATO_WINDOW, "tipoContrato": "8"}),
        (ATAS, ATA_WINDOW),
        (f"{ATAS}atualizacao/", {"dataInicial": "20240101", "dataFinal": "20241231"}),
        (PCA, {"anoPca": "2025", "codigoClassificacaoSuperior": "7110"}),
        (f"{PCA}planos/", {"dataInicio": "20250101", "dataFim": "20251231"}),
    ],
)
@pytest.mark.parametrize("size", [10, 500])
def test_list_pages_cost_a_fixed_number_of_queries(
    data, client, django_assert_max_num_queries, path, params, size
):
    client.get(path, params)  # warm the per-process cache of domain codes
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path, {**params, "tamanhoPagina": size})
    assert response.status_code == 200
    assert response.json()["data"]


# --- detail endpoints ------------------------------------------------------------------------


def test_contratacao_detail_by_numero_with_slash(data, client, django_assert_max_num_queries):
    key = "00394429000100-1-002346/2026"  # compra_1.json
    with django_assert_max_num_queries(3):
        response = client.get(f"{CONTRATACOES}{key}")
    assert response.status_code == 200
    body = response.json()
    assert body[NC] == key
    assert body["objetoCompra"] == data.contratacoes[key]["objetoCompra"]
    assert body["_links"]["self"] == f"{CONTRATACOES}{key}"
    assert body["pncpUrl"] == "https://pncp.gov.br/app/editais/00394429000100/2026/2346"
    # a trailing slash is tolerated
    assert client.get(f"{CONTRATACOES}{key}/").json()[NC] == key


def test_contratacao_detail_lists_its_atas_and_contratos(data, client):
    linked = Counter(r["numeroControlePncpCompra"] for r in data.contratos.values())
    key = next(k for k, _ in linked.most_common() if k in data.contratacoes)
    expected_atas = {k for k, r in data.atas.items() if r["numeroControlePNCPCompra"] == key}
    expected_contratos = {
        k for k, r in data.contratos.items() if r.get("numeroControlePncpCompra") == key
    }
    body = client.get(f"{CONTRATACOES}{key}").json()
    assert {a[NA] for a in body["atas"]} == expected_atas
    assert {c[NC] for c in body["contratos"]} == expected_contratos
    assert expected_contratos
    for contrato in body["contratos"]:
        assert contrato["_links"]["self"] == f"{CONTRATOS}{contrato[NC]}"


def test_contratacao_by_cnpj_ano_sequencial(data, client):
    record = data.contratacoes["00394429000100-1-002346/2026"]
    response = client.get(f"{API}/orgaos/00394429000100/compras/2026/2346")
    assert response.status_code == 200
    assert response.json()[NC] == record[NC]
    assert response.json()["orcamentoSigilosoCodigo"] == record["orcamentoSigilosoCodigo"]


@pytest.mark.parametrize(
    "path",
    [
        f"{CONTRATACOES}00000000000000-1-000001/2025",
        f"{CONTRATACOES}nao-existe",
        f"{API}/orgaos/00394429000100/compras/2026/9999",
        f"{ATAS}00000000000000-1-000001/2025-000001",
        f"{CONTRATOS}00000000000000-2-000001/2025",
        f"{PCA}planos/00000000000000-0-000001/2025",
        f"{API}/dominios/nao_existe/",
    ],
)
def test_missing_records_are_404_in_the_error_shape(data, client, path):
    response = client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert body["error"] == "not_found"
    assert body["path"] == path
    assert "não encontrad" in body["message"] or "desconhecida" in body["message"]


def test_compra_with_malformed_cnpj_is_400(data, client):
    response = client.get(f"{API}/orgaos/123/compras/2026/1")
    assert response.status_code == 400
    assert response.json()["message"] == "cnpj: CNPJ inválido '123', informe os 14 dígitos"


def test_contrato_detail_with_its_contratacao(data, client, django_assert_max_num_queries):
    key = next(
        k
        for k, r in data.contratos.items()
        if r.get("numeroControlePncpCompra") in data.contratacoes
    )
    compra = data.contratos[key]["numeroControlePncpCompra"]
    with django_assert_max_num_queries(3):
        body = client.get(f"{CONTRATOS}{key}").json()
    assert body[NC] == key
    assert body["contratacao"][NC] == compra
    assert body["contratacao"]["objetoCompra"] == data.contratacoes[compra]["objetoCompra"]
    orphan = next(
        k
        for k, r in data.contratos.items()
        if r.get("numeroControlePncpCompra") not in data.contratacoes
    )
    assert client.get(f"{CONTRATOS}{orphan}").json()["contratacao"] is None


def test_ata_detail(data, client):
    key = "92324706000127-1-000203/2023-000002"
    body = client.get(f"{ATAS}{key}").json()
    source = data.atas[key]
    for field in (
        "numeroControlePNCPCompra",
        "vigenciaInicio",
        "vigenciaFim",
        "dataPublicacaoPncp",
    ):
        assert body[field] == source[field]
    assert body["pncpUrl"] == "https://pncp.gov.br/app/atas/92324706000127/2023/203/2"


def test_plano_detail(data, client, django_assert_max_num_queries):
    key = "47015532000166-0-000002/2025"
    with django_assert_max_num_queries(2):
        body = client.get(f"{PCA}planos/{key}").json()
    source = data.pcas[key]
    assert body["idPcaPncp"] == key
    assert len(body["itens"]) == len(source["itens"])
    first = min(source["itens"], key=lambda i: i["numeroItem"])
    for field in ("descricaoItem", "valorTotal", "classificacaoSuperiorCodigo", "dataDesejada"):
        assert body["itens"][0][field] == first[field]


# --- records keep PNCP's names and values ----------------------------------------------------

# Values the mirror normalizes: names come from the domain tables and the shared órgão/unidade
# rows (the latest PNCP sent), and the 2023 payloads lack fields later ones have.
NORMALIZED = {"amparoLegal", "orgaoEntidade", "unidadeOrgao"}


def test_contratacao_records_match_pncp_payloads(data, client):
    records = listed(client, CONTRATACOES, NC, **CONTRATACAO_WINDOW)
    real = _dedupe(sample_records(*REAL_CONTRATACOES), NC)
    compared = 0
    for record in records:
        source = real.get(record[NC])
        if source is None or source != data.contratacoes[record[NC]]:
            continue
        compared += 1
        for name, value in source.items():
            if name in NORMALIZED:
                assert record[name].keys() >= value.keys()
                continue
            assert record[name] == value, (record[NC], name)
        assert record["amparoLegal"]["codigo"] == source["amparoLegal"]["codigo"]
        assert record["orgaoEntidade"]["cnpj"] == source["orgaoEntidade"]["cnpj"]
        assert record["unidadeOrgao"]["codigoUnidade"] == source["unidadeOrgao"]["codigoUnidade"]
    assert compared >= 10


def test_contrato_and_ata_records_match_pncp_payloads(data, client):
    real = _dedupe(sample_records("contrato_1.json"), NC)
    records = listed(client, CONTRATOS, NC, dataInicial="20250601", dataFinal="20250630")
    compared = 0
    for record in records:
        source = real.get(record[NC])
        if source is None or source != data.contratos[record[NC]]:
            continue
        compared += 1
        for name, value in source.items():
            if name in NORMALIZED:
                continue
            assert record[name] == value, (record[NC], name)
    assert compared >= 100

    real_atas = _dedupe(sample_records("ata_1.json"), NA)
    compared = 0
    for record in listed(client, ATAS, NA, **ATA_WINDOW):
        source = real_atas.get(record[NA])
        if source is None:
            continue
        compared += 1
        for name, value in source.items():
            assert record[name] == value, (record[NA], name)
    assert compared >= 10


# --- dominios --------------------------------------------------------------------------------


def test_dominios_list(data, client, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = client.get(f"{API}/dominios/")
    tables = {t["key"]: t for t in response.json()}
    assert set(tables) == set(TABLES)
    for key, model in TABLES.items():
        assert tables[key]["count"] == model.objects.count()
        assert tables[key]["url"].endswith(f"{API}/dominios/{key}/")
        assert tables[key]["name"]


def test_dominio_codes(data, client):
    body = client.get(f"{API}/dominios/modalidade_contratacao/").json()
    codes = {row["codigo"]: row for row in body}
    assert len(codes) == 13
    assert codes[6]["nome"] == "Pregão - Eletrônico"
    assert set(codes[6]) == {"codigo", "nome", "descricao", "novoEmImportacao", "ativo"}
    assert [row["codigo"] for row in body] == sorted(codes)
    poder = client.get(f"{API}/dominios/poder/").json()
    assert {row["codigo"] for row in poder} >= {"E", "L", "J"}


# --- serialization cost ----------------------------------------------------------------------


def test_serialization_of_a_page_of_rows_runs_no_query(data, db, django_assert_num_queries):
    """Writing a record is dict lookups: its órgão/unidade came with the rows, its code names
    from the per-process cache. (How fast is measured by ``benchmarks/bench_api.py``, not
    by a timed test: the machines differ up to 3x.)"""
    from pncp.api import selectors
    from pncp.api.serializers import ContratacaoSerializer

    rows = selectors.CONTRATACAO_ROWS.fetch(selectors.contratacao_list()[:300])
    assert len(rows) > 20
    _ = ContratacaoSerializer(rows, many=True, context={}).data  # loads each code table once
    with django_assert_num_queries(0):
        data = ContratacaoSerializer(rows, many=True, context={}).data
    assert len(data) == len(rows)
    assert all(record["modalidadeNome"] for record in data)


# --- fast paths: deep pages, search pages, cached code names, orjson rendering ----------------


def test_deep_pages_read_keys_first_and_return_the_same_records(data, client, monkeypatch):
    from pncp.api import pagination

    params = {**CONTRATACAO_WINDOW, "tamanhoPagina": 7}
    pages = []
    for offset in (10**9, 0):  # first the plain OFFSET path, then keys-first for every page
        monkeypatch.setattr(pagination, "DEFERRED_JOIN_OFFSET", offset)
        pages.append([client.get(CONTRATACOES, {**params, "pagina": p}).json() for p in (1, 4, 9)])
        pages[-1].append(client.get(CONTRATOS, {**CONTRATO_WINDOW, "pagina": 3}).json())
    assert pages[0] == pages[1]
    assert all(page["data"] for page in pages[1])


@postgres_only
def test_search_pages_count_and_partition_the_matches(data, client):
    params = {**CONTRATACAO_WINDOW, "q": "aquisicao", "tamanhoPagina": 5}
    first = client.get(CONTRATACOES, params).json()
    total = first["totalRegistros"]
    assert total > 10
    seen = []
    for page in range(1, first["totalPaginas"] + 1):
        body = client.get(CONTRATACOES, {**params, "pagina": page}).json()
        assert body["totalRegistros"] == total
        seen += [r[NC] for r in body["data"]]
    assert len(seen) == len(set(seen)) == total
    beyond = client.get(CONTRATACOES, {**params, "pagina": first["totalPaginas"] + 1}).json()
    assert (beyond["data"], beyond["totalRegistros"], beyond["empty"]) == ([], total, True)
    nothing = client.get(CONTRATACOES, {**params, "q": "zzzpalavrainexistente"}).json()
    assert (nothing["data"], nothing["totalRegistros"]) == ([], 0)


@postgres_only
@pytest.mark.parametrize(
    "path, window, ordering",
    [
        (CONTRATACOES, CONTRATACAO_WINDOW, None),
        (CONTRATACOES, CONTRATACAO_WINDOW, "valorTotalEstimado"),
        (CONTRATACOES, CONTRATACAO_WINDOW, "-dataEncerramentoProposta"),
        (CONTRATACOES, {**CONTRATACAO_WINDOW, "uf": "RS"}, "dataAtualizacaoGlobal"),
        (f"{API}/contratos/", CONTRATO_WINDOW, "-valorGlobal"),
    ],
)
def test_search_pages_from_the_kept_matches_equal_the_plain_query(
    data, client, monkeypatch, path, window, ordering
):
    """Windowed searches read their pages from the matches kept on the query (fenced,
    sorted outside); every page, total and order equals what the outer queryset gives."""
    from pncp.api import pagination

    calls = []
    kept = pagination._sorted_matches

    def spy(*args):
        found = kept(*args)
        calls.append(found is not None)
        return found

    params = {**window, "q": "aquisicao OR material OR servico", "tamanhoPagina": 4}
    if ordering:
        params["ordenacao"] = ordering
    pages = {}
    for mode in ("kept", "plain"):
        monkeypatch.setattr(
            pagination, "_sorted_matches", spy if mode == "kept" else lambda *args: None
        )
        first = client.get(path, params).json()
        pages[mode] = [first] + [
            client.get(path, {**params, "pagina": page}).json()
            for page in range(2, first["totalPaginas"] + 2)  # one past the last, too
        ]
    assert pages["kept"] == pages["plain"]
    assert pages["kept"][0]["totalRegistros"] > 4
    assert calls and all(calls)


def test_a_code_added_after_the_cache_was_filled_shows_its_name(data, client):
    from pncp.api.selectors import domain_row, forget_domain_rows

    forget_domain_rows()
    model = TABLES["modalidade_contratacao"]
    assert domain_row("modalidade_contratacao", 6).nome  # cache filled
    model.objects.create(codigo=777, nome="Modalidade nova", novo_em_importacao=True)
    try:
        assert domain_row("modalidade_contratacao", 777).nome == "Modalidade nova"
    finally:
        forget_domain_rows()


def test_a_list_page_names_a_code_added_after_the_cache_was_filled(data, client):
    """List pages read each code table once per response (``domain_rows``); a code missing
    from that snapshot still gets its name."""
    from pncp.api.selectors import forget_domain_rows
    from pncp.models import Contratacao

    forget_domain_rows()
    params = {**CONTRATACAO_WINDOW, "tamanhoPagina": 1}
    try:
        first = client.get(CONTRATACOES, params).json()["data"][0]
        assert first["modalidadeNome"]  # the cache is filled
        TABLES["modalidade_contratacao"].objects.create(
            codigo=778, nome="Modalidade mais nova", novo_em_importacao=True
        )
        Contratacao.objects.filter(numero_controle_pncp=first[NC]).update(modalidade_id=778)
        again = client.get(CONTRATACOES, params).json()["data"][0]
        assert again[NC] == first[NC]
        assert (again["modalidadeId"], again["modalidadeNome"]) == (778, "Modalidade mais nova")
    finally:
        forget_domain_rows()


def test_fast_renderer_writes_what_drfs_renderer_writes(data, client):
    from rest_framework.renderers import JSONRenderer

    from pncp.api.renderers import FastJSONRenderer

    body = client.get(CONTRATACOES, {**CONTRATACAO_WINDOW, "tamanhoPagina": 500}).json()
    body["data"][0]["objetoCompra"] += " linha\u2028parágrafo\u2029fim"
    body["extra"] = {"valor": 1234.5, "grande": 2**70, "data": date(2025, 6, 1)}
    assert FastJSONRenderer().render(body) == JSONRenderer().render(body)


@pytest.mark.parametrize(
    "view_name, serializer_name, instances_selector",
    [
        ("ContratacaoViewSet", "ContratacaoSerializer", "contratacao_queryset"),
        ("ContratoViewSet", "ContratoSerializer", "contrato_queryset"),
        ("AtaViewSet", "AtaSerializer", "ata_queryset"),
    ],
)
def test_rows_serialize_like_model_instances(
    data, db, view_name, serializer_name, instances_selector
):
    """List pages read light rows (``rows.RowShape``); every record, sub-rogados and null
    codes included, writes out exactly as from the model instance the detail views use."""
    from pncp.api import selectors, serializers, views

    view = getattr(views, view_name)
    serializer = getattr(serializers, serializer_name)
    queryset = getattr(selectors, instances_selector)()
    assert list(view.selector().values_list("pk", flat=True)) == list(
        queryset.values_list("pk", flat=True)
    )
    # PNCP's samples have no sub-rogação: give three records one (another record's órgão)
    model = queryset.model
    donor = model.objects.exclude(unidade=None).order_by("pk").last()
    model.objects.filter(pk__in=list(queryset.values_list("pk", flat=True)[:3])).update(
        orgao_sub_rogado_id=donor.orgao_id, unidade_sub_rogada_id=donor.unidade_id
    )
    instances = list(queryset)
    rows = view.row_shape.fetch(queryset)
    assert len(rows) == len(instances) > 20
    assert [row.pk for row in rows] == [instance.pk for instance in instances]
    from_rows = serializer(rows, many=True, context={}).data
    from_instances = serializer(instances, many=True, context={}).data
    for row, instance in zip(from_rows, from_instances, strict=True):
        assert row == instance
    assert sum(1 for instance in instances if instance.unidade_sub_rogada_id) == 3


@pytest.mark.parametrize(
    "ordering, window",
    [
        (("-data_publicacao_pncp", "-id"), slice(0, 50)),
        (("valor_total_estimado", "id"), slice(3, 17)),
        (("-valor_total_estimado", "id"), slice(10, 11)),
        (("orgao__razao_social", "-id"), slice(0, 500)),
        (("id",), slice(1000, 1050)),  # past the end: no rows
    ],
)
def test_rows_keep_the_querysets_filters_order_and_slice(
    data, db, django_assert_num_queries, ordering, window
):
    """On PostgreSQL the ORM compiles only the page's keys and the shape's SQL joins its
    columns around them: same records, same order, JSON columns decoded, one query."""
    from pncp.api import selectors

    queryset = (
        selectors.contratacao_queryset()
        .filter(valor_total_estimado__gte=0)
        .order_by(*ordering)[window]
    )
    instances = list(queryset)
    with django_assert_num_queries(1):
        rows = selectors.CONTRATACAO_ROWS.fetch(queryset)
    assert [row.pk for row in rows] == [instance.pk for instance in instances]
    for row, instance in zip(rows, instances, strict=True):
        assert row.fontes_orcamentarias == instance.fontes_orcamentarias
        assert row.orgao.razao_social == instance.orgao.razao_social
        assert row.valor_total_estimado == instance.valor_total_estimado


@postgres_only
def test_rows_by_keys_keep_the_keys_order_and_become_a_prepared_statement(
    data, db, django_assert_num_queries
):
    """Deep pages and searches read their rows by key (``fetch_keys``): rows equal the ORM's
    path in the keys' order, unknown keys are skipped, and the SQL runs as one prepared
    statement per connection (no planning per page)."""
    from django.db import connection

    from pncp.api import selectors

    shape = selectors.CONTRATACAO_ROWS
    queryset = selectors.contratacao_queryset().order_by("-valor_total_estimado", "id")
    keys = list(queryset.values_list("pk", flat=True)[:40])[::-1]
    expected = shape.fetch(queryset.filter(pk__in=keys).order_by("id"))
    by_key = {row.pk: row for row in expected}
    with django_assert_num_queries(1):
        rows = shape.fetch_keys([*keys[:20], 10**12, *keys[20:]])
    assert [row.pk for row in rows] == keys

    def flat(row) -> dict:
        return {
            name: value.__dict__ if hasattr(value, "__dict__") else value
            for name, value in row.__dict__.items()
        }

    for row in rows:
        assert flat(row) == flat(by_key[row.pk])
    assert shape.fetch_keys([]) == []

    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%WITH ORDINALITY AS "_page"%'],
            )
            return cursor.fetchone()[0]

    for n in range(6):
        assert [row.pk for row in shape.fetch_keys(keys[n : n + 5])] == keys[n : n + 5]
    assert prepared() == 1  # one statement, whatever the keys' size


@postgres_only
def test_wall_clock_from_postgresql_matches_the_serializers(db):
    """List rows get their date-times formatted by PostgreSQL (``rows.BrasiliaWallClock``);
    they must equal ``serializers._dt`` of the same instant, DST years and LMT included."""
    from django.db.models import Value
    from django.db.models.fields import DateTimeField

    from pncp.api.rows import BrasiliaWallClock
    from pncp.api.serializers import _dt
    from pncp.models import SyncRun

    run = SyncRun.objects.create()
    moments = [
        datetime(2025, 6, 24, 3, 0, 46, tzinfo=ZoneInfo("UTC")),
        datetime(2018, 11, 4, 2, 59, 59, 999999, tzinfo=ZoneInfo("UTC")),  # DST starts
        datetime(2018, 11, 4, 3, 0, 0, tzinfo=ZoneInfo("UTC")),
        datetime(2019, 2, 17, 1, 30, tzinfo=ZoneInfo("UTC")),  # the last DST end
        datetime(2012, 1, 15, 12, 0, tzinfo=SP),
        datetime(1900, 1, 1, 0, 0, tzinfo=SP),  # local mean time, -03:06:28
        datetime(2026, 11, 26, 23, 59, 59, tzinfo=SP),
    ]
    for moment in moments:
        text = (
            SyncRun.objects.filter(pk=run.pk)
            .values_list(BrasiliaWallClock(Value(moment, output_field=DateTimeField())), flat=True)
            .get()
        )
        assert text == _dt(moment.astimezone(ZoneInfo("UTC"))), moment


def _stock_filterset(cls, data, queryset):
    """The same FilterSet built by django-filter's own ``__init__``/``get_form_class``
    (deep copies of every filter, a form class per instance)."""
    from django_filters.filterset import BaseFilterSet

    stock = object.__new__(cls)
    BaseFilterSet.__init__(stock, data, queryset=queryset)
    stock.get_form_class = lambda: BaseFilterSet.get_form_class(stock)
    return stock


@pytest.mark.parametrize(
    "filterset_name, params",
    [
        ("ContratacaoFilterSet", {**CONTRATACAO_WINDOW, "codigoModalidadeContratacao": "6"}),
        ("ContratacaoFilterSet", {**CONTRATACAO_WINDOW, "q": "material", "uf": "rs"}),
        ("ContratacaoFilterSet", {"dataInicial": "20251231", "dataFinal": "20250101"}),
        ("ContratacaoFilterSet", {**CONTRATACAO_WINDOW, "valorMinimo": "abc", "srp": "talvez"}),
        ("ContratoFilterSet", {"dataInicial": "20250101", "dataFinal": "20250301"}),
        ("AtaFilterSet", {"dataInicial": "20250101", "dataFinal": "20250301", "cnpj": "1"}),
        ("ItemPCAFilterSet", {"anoPca": "2025", "idUsuario": "3"}),
    ],
)
def test_filtersets_validate_and_filter_as_django_filter_does(db, filterset_name, params):
    """Our FilterSets skip django-filter's per-request deep copies (shallow copies of the
    filters, one form class per FilterSet class): same form fields and labels, same
    errors, same SQL as django-filter's own path."""
    from django.http import QueryDict

    from pncp.api import filters

    cls = getattr(filters, filterset_name)
    data = QueryDict(mutable=True)
    data.update(params)
    queryset = cls._meta.model.objects.all()
    ours, stock = cls(data, queryset=queryset), _stock_filterset(cls, data, queryset)
    assert [(n, type(f), f.label, f.required) for n, f in ours.form.fields.items()] == [
        (n, type(f), f.label, f.required) for n, f in stock.form.fields.items()
    ]
    assert ours.is_valid() == stock.is_valid()
    assert ours.errors == stock.errors
    if ours.is_valid():
        assert str(ours.qs.query) == str(stock.qs.query)


def test_filterset_instances_do_not_share_their_filters(db):
    """Two requests at once (threads): each FilterSet's method filters call its own methods."""
    from django.http import QueryDict

    from pncp.api import filters

    first = filters.ContratacaoFilterSet(QueryDict("q=a"), queryset=None)
    second = filters.ContratacaoFilterSet(QueryDict("q=b"), queryset=None)
    assert first.filters["q"] is not second.filters["q"]
    assert first.filters["q"].parent is first and second.filters["q"].parent is second
    assert first.filters["q"].filter.method.__self__ is first
    assert second.filters["q"].filter.method.__self__ is second
    assert getattr(filters.ContratacaoFilterSet.base_filters["q"], "parent", None) is None


def test_filter_forms_get_their_own_fields_and_clean_independently(db):
    """Form fields are copied shallowly per form (not deep-copied as Django does): each
    form still has its own field objects, and one form's errors never reach another."""
    from django.http import QueryDict

    from pncp.api import filters

    good = filters.ContratacaoFilterSet(QueryDict("dataInicial=20250101&dataFinal=20250131"))
    bad = filters.ContratacaoFilterSet(QueryDict("dataInicial=2025-01-01&dataFinal=20250131"))
    base = filters.ContratacaoFilterSet._form_class().base_fields
    for name, field in good.form.fields.items():
        assert field is not base[name] and field is not bad.form.fields[name]
        assert type(field) is type(base[name]) and field.label == base[name].label
    assert not bad.is_valid() and "dataInicial" in bad.errors
    assert good.is_valid(), good.errors
    assert "dataInicial" not in good.errors
