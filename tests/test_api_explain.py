"""No documented filter makes PostgreSQL scan a whole table of records.

The seed is a realistic slice of a mirror: two years of records (20,000 contratações,
20,000 contratos, 20,000 atas, 3,000 PCAs with ~12,000 itens), made by importing 2,000 fake
PNCP records per resource through the importer and cloning them in SQL with keys made
unique and dates shifted, then ``VACUUM ANALYZE`` as autovacuum would leave a live database.
Each filter is combined with the date window (or the PCA year and narrowing filter) that
the API requires, exactly as PNCP requires them; then the SQL the FilterSet produces — the
page query (``qs.explain(format="json")``) and the count, page and prefetch queries the
paginator really runs — is explained, and the plan must read the big table through an
index, never with a ``Seq Scan``.

The seed is committed (VACUUM cannot run in a transaction) and removed at module teardown.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domain_tables.models import TABLES
from pncp.api import filters, selectors
from pncp.ingest import Ingester
from pncp.models import (
    AtaRegistroPreco,
    Contratacao,
    Contrato,
    ItemPCA,
    Orgao,
    PlanoContratacao,
    RecordVersion,
    RejectedRecord,
    UnidadeOrgao,
)
from tests.fakes.fake_pncp import FakeDataset

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)

SEED_START = date(2024, 1, 1)
COPIES = 10  # each imported record and 9 clones, 73 days apart: two years of data
SHIFT_DAYS = 73
PER_RESOURCE = 2000
PCA_PLANS = 600
PCA_YEARS = 5  # each plan and 4 clones in the next years: 2024..2028

MONTH = {"dataInicial": "20250601", "dataFinal": "20250630"}
RECORD_TABLES = (ItemPCA, PlanoContratacao, AtaRegistroPreco, Contrato, Contratacao)
BIG_TABLES = tuple(m._meta.db_table for m in RECORD_TABLES)


# --- seeding ---------------------------------------------------------------------------------


def _clone(model, key: str, *, copies: int, shift: str, extra: dict | None = None) -> None:
    """INSERT copies 1..copies-1 of every row of ``model``: unique key, shifted dates."""
    table = model._meta.db_table
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column == "id":
            continue
        column = field.column
        columns.append(column)
        if column == key:
            values.append(f"{column} || '-c' || g")
        elif extra and column in extra:
            values.append(extra[column])
        elif field.get_internal_type() in ("DateTimeField", "DateField"):
            values.append(f"{column} + g * {shift}")
        else:
            values.append(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "
            f"FROM {table} CROSS JOIN generate_series(1, {copies - 1}) AS g"
        )


def _clone_pca_itens(copies: int) -> None:
    item, plano = ItemPCA._meta.db_table, PlanoContratacao._meta.db_table
    columns, values = [], []
    for field in ItemPCA._meta.concrete_fields:
        if field.primary_key:
            continue
        column = field.column
        columns.append(column)
        if column == "plano_id":
            values.append("p2.id")
        elif column == "ano_pca":
            values.append("i.ano_pca + g")
        elif field.get_internal_type() in ("DateTimeField", "DateField"):
            values.append(f"i.{column} + g * interval '1 year'")
        else:
            values.append(f"i.{column}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {item} ({', '.join(columns)}) SELECT {', '.join(values)} "
            f"FROM {item} i JOIN {plano} p ON p.id = i.plano_id "
            f"CROSS JOIN generate_series(1, {copies - 1}) AS g "
            f"JOIN {plano} p2 ON p2.id_pca_pncp = p.id_pca_pncp || '-c' || g"
        )


def _ingest(ingester, resource, dataset, key):
    by_usuario: dict = {}
    for record in dataset.records(resource):
        by_usuario.setdefault(dataset.id_usuario(resource, record[key]), []).append(record)
    for uid, records in by_usuario.items():
        for start in range(0, len(records), 1000):
            extra = {"id_usuario": uid} if uid is not None else None
            ingester.ingest(resource, records[start : start + 1000], extra=extra)


def _wipe() -> None:
    tables = [m._meta.db_table for m in (*RECORD_TABLES, UnidadeOrgao, Orgao)]
    tables += [RecordVersion._meta.db_table, RejectedRecord._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    for model in TABLES.values():
        model.objects.filter(novo_em_importacao=True).delete()


@pytest.fixture(scope="module")
def seed(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        assert connection.get_autocommit(), "the seed must be committed to be vacuumed"
        _wipe()
        try:
            dataset = FakeDataset.generate(
                contratacoes=PER_RESOURCE,
                contratos=PER_RESOURCE,
                atas=PER_RESOURCE,
                pcas=PCA_PLANS,
                start=SEED_START,
                days=SHIFT_DAYS,
                seed=11,
            )
            ingester = Ingester()
            _ingest(ingester, "contratacoes", dataset, "numeroControlePNCP")
            _ingest(ingester, "contratos", dataset, "numeroControlePNCP")
            _ingest(ingester, "atas", dataset, "numeroControlePNCPAta")
            _ingest(ingester, "pca", dataset, "idPcaPncp")
            shift = f"interval '{SHIFT_DAYS} days'"
            _clone(Contratacao, "numero_controle_pncp", copies=COPIES, shift=shift)
            _clone(Contrato, "numero_controle_pncp", copies=COPIES, shift=shift)
            _clone(AtaRegistroPreco, "numero_controle_pncp_ata", copies=COPIES, shift=shift)
            _clone(
                PlanoContratacao,
                "id_pca_pncp",
                copies=PCA_YEARS,
                shift="interval '1 year'",
                extra={"ano_pca": "ano_pca + g"},
            )
            _clone_pca_itens(PCA_YEARS)
            with connection.cursor() as cursor:
                for model in RECORD_TABLES:
                    cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
            counts = {m.__name__: m.objects.count() for m in RECORD_TABLES}
            assert counts["Contratacao"] == counts["Contrato"] == counts["AtaRegistroPreco"]
            assert counts["Contratacao"] == PER_RESOURCE * COPIES
            assert counts["PlanoContratacao"] == PCA_PLANS * PCA_YEARS
            yield _values()
        finally:
            _wipe()


def _top(qs, field):
    """The most common value of ``field`` in ``qs`` (a realistic filter value)."""
    from django.db.models import Count

    row = (
        qs.exclude(**{f"{field}__isnull": True})
        .values(field)
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    return row[field]


def _values() -> dict:
    contratacoes = Contratacao.objects.all()
    contratos = Contrato.objects.all()
    atas = AtaRegistroPreco.objects.all()
    itens = ItemPCA.objects.filter(ano_pca=2025)
    return {
        "cnpj": _top(contratacoes, "orgao_id"),
        "ibge": _top(contratacoes, "codigo_municipio_ibge"),
        "unidade": _top(contratacoes, "codigo_unidade"),
        "usuario": _top(contratacoes, "id_usuario"),
        "contrato_cnpj": _top(contratos, "orgao_id"),
        "contrato_unidade": _top(contratos, "codigo_unidade"),
        "contrato_usuario": _top(contratos, "id_usuario"),
        "fornecedor": _top(contratos, "ni_fornecedor"),
        "ata_cnpj": _top(atas, "orgao_id"),
        "ata_unidade": _top(atas, "codigo_unidade"),
        "pca_cnpj": _top(itens, "orgao_id"),
        "pca_unidade": _top(itens, "codigo_unidade"),
        "pca_usuario": _top(PlanoContratacao.objects.filter(ano_pca=2025), "id_usuario"),
        "pca_classe": _top(itens, "classificacao_superior_codigo"),
    }


# --- plans -----------------------------------------------------------------------------------


def _nodes(plan: dict, ancestors: tuple = ()):
    """Every node of a plan tree, with the node types above it."""
    yield plan, ancestors
    for child in plan.get("Plans", []):
        yield from _nodes(child, (*ancestors, plan["Node Type"]))


def _explain(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _check_plan(plan: dict, table: str, label: str, *, ordered_walk_ok: bool) -> None:
    """``table`` is read only through an index condition: a bitmap scan, or an index scan
    with an ``Index Cond``. An index scan with no condition reads the index from one end
    (all of it if few rows match); it is accepted only to serve a requested ``ordenacao``
    under a ``Limit`` (it stops after one page)."""
    scans = [(n, up) for n, up in _nodes(plan) if n.get("Relation Name") == table]
    dump = json.dumps(plan, indent=1)[:4000]
    assert scans, f"{label}: {table} not read?\n{dump}"
    for node, ancestors in scans:
        kind = node["Node Type"]
        assert kind != "Seq Scan", f"{label}: Seq Scan on {table}:\n{dump}"
        assert kind in {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}, f"{label}: {kind}"
        if kind != "Bitmap Heap Scan" and "Index Cond" not in node:
            assert ordered_walk_ok and "Limit" in ancestors, (
                f"{label}: {kind} of {node['Index Name']} without an index condition:\n{dump}"
            )


def assert_indexed(filterset_class, params: dict, table: str) -> None:
    """Explain the page, count and prefetch queries the FilterSet's queryset produces."""
    data = QueryDict(mutable=True)
    data.update(params)
    filterset = filterset_class(data=data, queryset=_selector(filterset_class)())
    assert filterset.is_valid(), dict(filterset.errors)
    qs = filterset.qs

    walk_ok = "ordenacao" in params
    raw = qs[:50].explain(format="json")
    _check_plan(json.loads(raw)[0]["Plan"], table, f"page query {params}", ordered_walk_ok=walk_ok)

    with CaptureQueriesContext(connection) as captured:
        qs.count()
        list(qs[50:100])  # the second page, with any prefetch
    checked = 0
    for query in captured.captured_queries:
        sql = query["sql"]
        for big in BIG_TABLES:
            if f'"{big}"' in sql:
                _check_plan(_explain(sql), big, f"{sql[:70]}… {params}", ordered_walk_ok=walk_ok)
                checked += 1
    assert checked >= 2


def _selector(filterset_class):
    return {
        filters.ContratacaoFilterSet: selectors.contratacao_queryset,
        filters.ContratacaoPropostaFilterSet: selectors.contratacao_queryset,
        filters.AtaFilterSet: selectors.ata_queryset,
        filters.AtaAtualizacaoFilterSet: selectors.ata_queryset,
        filters.ContratoFilterSet: selectors.contrato_queryset,
        filters.ItemPCAFilterSet: selectors.item_pca_queryset,
        filters.PlanoContratacaoFilterSet: selectors.plano_queryset,
    }[filterset_class]


# --- contratações ----------------------------------------------------------------------------

CONTRATACAO = Contratacao._meta.db_table


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"codigoModalidadeContratacao": "6"},
        {"codigoModoDisputa": "1"},
        {"situacaoCompraId": "1"},
        {"tipoInstrumentoConvocatorioCodigo": "1"},
        {"amparoLegalCodigo": "1"},
        {"uf": "SC"},
        {"codigoMunicipioIbge": "ibge"},
        {"cnpj": "cnpj"},
        {"codigoUnidadeAdministrativa": "unidade"},
        {"idUsuario": "usuario"},
        {"srp": "true"},
        {"valorMinimo": "100000", "valorMaximo": "500000"},
        {"q": "veículo"},
        {"q": "aquisicao material"},
        {"ordenacao": "valorTotalEstimado"},
        {"ordenacao": "-dataAtualizacaoGlobal"},
        {"ordenacao": "dataEncerramentoProposta"},
        {"codigoModalidadeContratacao": "8", "uf": "SC", "srp": "false"},
    ],
    ids=lambda p: ",".join(p) or "window",
)
def test_contratacoes_filters_use_indexes(seed, db, params):
    params = {k: str(seed.get(v, v)) for k, v in params.items()}
    assert_indexed(filters.ContratacaoFilterSet, {**MONTH, **params}, CONTRATACAO)


@pytest.mark.parametrize(
    "params",
    [{}, {"dataFinal": "+30"}, {"codigoModalidadeContratacao": "6", "uf": "SC"}],
    ids=["open-now", "dataFinal", "combined"],
)
def test_propostas_use_indexes(seed, db, params):
    if params.get("dataFinal") == "+30":
        params = {"dataFinal": (timezone.localdate() + timedelta(days=30)).strftime("%Y%m%d")}
    assert_indexed(filters.ContratacaoPropostaFilterSet, params, CONTRATACAO)


# --- atas ------------------------------------------------------------------------------------

ATA = AtaRegistroPreco._meta.db_table


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"cnpj": "ata_cnpj"},
        {"codigoUnidadeAdministrativa": "ata_unidade"},
        {"cancelado": "false"},
        {"q": "manutenção"},
        {"ordenacao": "vigenciaFim"},
    ],
    ids=lambda p: ",".join(p) or "window",
)
def test_atas_filters_use_indexes(seed, db, params):
    params = {k: str(seed.get(v, v)) for k, v in params.items()}
    assert_indexed(filters.AtaFilterSet, {**MONTH, **params}, ATA)


@pytest.mark.parametrize("params", [{}, {"cnpj": "ata_cnpj"}], ids=["window", "cnpj"])
def test_atas_atualizacao_use_indexes(seed, db, params):
    params = {k: str(seed.get(v, v)) for k, v in params.items()}
    assert_indexed(filters.AtaAtualizacaoFilterSet, {**MONTH, **params}, ATA)


# --- contratos -------------------------------------------------------------------------------

CONTRATO = Contrato._meta.db_table


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"cnpjOrgao": "contrato_cnpj"},
        {"codigoUnidadeAdministrativa": "contrato_unidade"},
        {"usuarioId": "contrato_usuario"},
        {"niFornecedor": "fornecedor"},
        {"tipoContrato": "8"},
        {"categoriaProcesso": "2"},
        {"vigenciaInicial": "20250701", "vigenciaFinal": "20251231"},
        {"q": "alimentos"},
        {"ordenacao": "-valorGlobal"},
        {"ordenacao": "dataVigenciaInicio"},
    ],
    ids=lambda p: ",".join(p) or "window",
)
def test_contratos_filters_use_indexes(seed, db, params):
    params = {k: str(seed.get(v, v)) for k, v in params.items()}
    assert_indexed(filters.ContratoFilterSet, {**MONTH, **params}, CONTRATO)


# --- PCA -------------------------------------------------------------------------------------

ITEM = ItemPCA._meta.db_table
PLANO = PlanoContratacao._meta.db_table


@pytest.mark.parametrize(
    "params",
    [
        {"idUsuario": "pca_usuario"},
        {"codigoClassificacaoSuperior": "pca_classe"},
        {"cnpj": "pca_cnpj"},
        {"codigoUnidade": "pca_unidade"},
        {"cnpj": "pca_cnpj", "categoriaItemPca": "1"},
        {"cnpj": "pca_cnpj", "q": "cadeira"},
    ],
    ids=lambda p: ",".join(p),
)
def test_pca_itens_filters_use_indexes(seed, db, params):
    params = {k: str(seed.get(v, v)) for k, v in params.items()}
    assert_indexed(filters.ItemPCAFilterSet, {"anoPca": "2025", **params}, ITEM)


@pytest.mark.parametrize(
    "params",
    [
        {"anoPca": "2025", "cnpj": "pca_cnpj"},
        {"anoPca": "2025", "idUsuario": "pca_usuario"},
        {"anoPca": "2025", "codigoUnidade": "pca_unidade"},
        {"dataInicio": "20250601", "dataFim": "20250630"},
    ],
    ids=lambda p: ",".join(p),
)
def test_pca_planos_filters_use_indexes(seed, db, params):
    params = {k: str(seed.get(v, v)) for k, v in params.items()}
    assert_indexed(filters.PlanoContratacaoFilterSet, params, PLANO)
