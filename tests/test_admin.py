"""The admin as staff use it, against real PNCP records stored by the Ingester.

Every registered model of ours answers its list (with a search and with a filter, each
actually narrowing the rows) and its change page within a fixed number of queries; record
pages show the pretty payload, the pncp.gov.br link and the history with what changed; lists
never count a whole table; imported rows cannot be added, changed or deleted; the quarantine
retry resolves a record once the cause of its rejection is gone.
"""

from __future__ import annotations

import copy
import html
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from domain_tables.models import TABLES
from pncp import admin as pncp_admin
from pncp.ingest import SPECS, Ingester
from pncp.models import (
    AtaRegistroPreco,
    ContractCheck,
    Contratacao,
    Contrato,
    Coverage,
    Fornecedor,
    ItemContratacao,
    ItemPCA,
    Orgao,
    PlanoContratacao,
    RecordVersion,
    RejectedRecord,
    ResultadoItem,
    SyncCheckpoint,
    SyncLock,
    SyncRun,
    UnidadeOrgao,
)
from pncp.parsers import ParseError
from tests.conftest import sample_records

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the SQLite demo counts plainly, by design"
)
CHANGELIST_MAX_QUERIES = 12
CHANGE_PAGE_MAX_QUERIES = 15

CONTRATACAO_KEY = "90940172000138-1-000025/2025"  # contratacao_1.json, RS, published 2025-06-24
CONTRATO_KEY = "83754044000134-2-001790/2024"  # contrato_2.json, SC, fornecedor VLA POZZI
ATA_KEY = "17888082000155-1-000011/2022-000001"  # ata_5.json
PCA_KEY = "47015532000166-0-000002/2025"  # pca_1.json, 8 itens
NEW_OBJETO = "Objeto alterado numa retificação posterior"


def url(model, view="changelist", *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def result_pks(response) -> list:
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.fixture
def data(db):
    """Real records of every kind, one contratação changed once, two quarantined records."""
    run = SyncRun.objects.create(
        resources=["contratacoes", "contratos"],
        mode="full",
        trigger=SyncRun.Trigger.TEST,
        status=SyncRun.Status.PARTIAL,
        errors=[{"window": "2025-06-24", "error": "HTTP 500 after 5 retries"}],
    )
    SyncRun.objects.create(resources=["pca"], mode="incremental", status=SyncRun.Status.SUCCESS)
    ingester = Ingester(run=run)

    contratacoes = sample_records("contratacao_1.json")
    ingester.ingest("contratacoes", contratacoes)
    changed = copy.deepcopy(contratacoes[0])
    changed["objetoCompra"] = NEW_OBJETO
    assert ingester.ingest("contratacoes", [changed]).updated == 1

    # The samples hold no contrato or ata of a sampled contratação: point one of each at ours.
    contratos = sample_records("contrato_2.json")
    contratos[0]["numeroControlePncpCompra"] = CONTRATACAO_KEY
    ingester.ingest("contratos", contratos)
    atas = sample_records("ata_5.json") + sample_records("ata_1.json")[:10]
    atas[1]["numeroControlePNCPCompra"] = CONTRATACAO_KEY
    ingester.ingest("atas", atas)
    ingester.ingest("pca", sample_records("pca_1.json"))

    broken_contratacao = copy.deepcopy(contratacoes[1])
    del broken_contratacao["orgaoEntidade"]
    broken_contrato = copy.deepcopy(contratos[1])
    del broken_contrato["orgaoEntidade"]
    ingester.ingest("contratacoes", [broken_contratacao])
    ingester.ingest("contratos", [broken_contrato])
    assert RejectedRecord.objects.count() == 2

    for key, status, fetched in (
        ("contratacoes/2025-06-24/m6", "done", 10),
        ("contratacoes/2025-06-24/m8", "failed", 0),
    ):
        SyncCheckpoint.objects.create(
            run=run,
            resource="contratacoes",
            endpoint="/v1/contratacoes/publicacao",
            key=key,
            window_start=date(2025, 6, 24),
            window_end=date(2025, 6, 24),
            total_registros=10,
            fetched=fetched,
            status=status,
            error="" if fetched else "HTTP 500",
        )
    for resource, day, fetched, status in (
        ("contratacoes", date(2025, 6, 24), 10, Coverage.Status.COMPLETE),
        ("contratos", date(2024, 7, 1), 7, Coverage.Status.PARTIAL),
    ):
        Coverage.objects.create(
            resource=resource,
            endpoint=f"/v1/{resource}",
            day=day,
            day_end=day,
            modalidade=6 if resource == "contratacoes" else 0,
            total_registros=10,
            fetched=fetched,
            status=status,
            checked_at="2025-07-01T12:00:00-03:00",
            run=run,
        )
    return {"run": run}


# --- Every model: list with search, list with filter, change page --------------------------------


@dataclass
class Case:
    obj: object  # a known row
    search: str  # a search that finds it
    hit: dict  # a filter that keeps it
    miss: dict  # a filter that drops it


def _domain_case(model):
    row = model.objects.order_by("codigo").first()
    row.novo_em_importacao = True
    row.save()
    return Case(
        row, row.nome, {"novo_em_importacao__exact": "1"}, {"novo_em_importacao__exact": "0"}
    )


def _itens(d):
    """An item with a resultado (and its fornecedor), stored through the importer once."""
    if "itens" not in d:
        from pncp.ingest import Ingester
        from tests.fakes.fake_pncp import FakeDataset

        contratacao = Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY)
        ds = FakeDataset()
        ds.add("contratacoes", dict(contratacao.raw))
        ds.generate_itens(seed=3, max_itens=6)
        itens = ds.itens(CONTRATACAO_KEY)
        with_result = next(i for i in itens if i["temResultado"])
        ingester = Ingester()
        context = {"compra": CONTRATACAO_KEY, "contratacao_id": contratacao.pk}
        ingester.ingest("itens", itens, context=context)
        item_ids = dict(
            ItemContratacao.objects.filter(contratacao=contratacao).values_list("numero_item", "id")
        )
        resultados = ds.resultados(CONTRATACAO_KEY, with_result["numeroItem"])
        ingester.ingest(
            "resultados", resultados, context={"compra": CONTRATACAO_KEY, "item_ids": item_ids}
        )
        item = ItemContratacao.objects.get(
            contratacao=contratacao, numero_item=with_result["numeroItem"]
        )
        d["itens"] = (item, ResultadoItem.objects.filter(item=item).select_related("fornecedor")[0])
    return d["itens"]


# name -> (model, the case built from the ``data`` fixture)
CASES = {
    "contratacao": (
        Contratacao,
        lambda d: Case(
            Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY),
            CONTRATACAO_KEY,
            {"uf": "RS", "modalidade__codigo__exact": "6"},
            {"uf": "SP"},
        ),
    ),
    "contrato": (
        Contrato,
        lambda d: Case(
            Contrato.objects.get(numero_controle_pncp=CONTRATO_KEY),
            "VLA POZZI",
            {"uf": "SC", "tipo_contrato__codigo__exact": "8"},
            {"tipo_contrato__codigo__exact": "1"},
        ),
    ),
    "ata": (
        AtaRegistroPreco,
        lambda d: Case(
            AtaRegistroPreco.objects.get(numero_controle_pncp_ata=ATA_KEY),
            ATA_KEY,
            {"ano_ata": "2022"},
            {"ano_ata": "2023"},
        ),
    ),
    "pca": (
        PlanoContratacao,
        lambda d: Case(
            PlanoContratacao.objects.get(id_pca_pncp=PCA_KEY),
            "BRAGANCA PAULISTA",
            {"ano_pca": "2025"},
            {"ano_pca": "2024"},
        ),
    ),
    "itempca": (
        ItemPCA,
        lambda d: Case(
            ItemPCA.objects.get(plano__id_pca_pncp=PCA_KEY, numero_item=3),
            "CARIMBO",
            {"data_desejada__gte": "2025-03-29", "data_desejada__lte": "2025-03-29"},
            {"data_desejada__gte": "2025-03-30"},
        ),
    ),
    "orgao": (
        Orgao,
        lambda d: Case(
            Orgao.objects.get(cnpj="90940172000138"),
            "90.940.172/0001-38",
            {"esfera__codigo__exact": "M"},
            {"esfera__codigo__exact": "F"},
        ),
    ),
    "unidade": (
        UnidadeOrgao,
        lambda d: Case(
            UnidadeOrgao.objects.get(orgao_id="90940172000138"), "Bagé", {"uf": "RS"}, {"uf": "SC"}
        ),
    ),
    "syncrun": (
        SyncRun,
        lambda d: Case(
            d["run"], "contratos", {"status__exact": "partial"}, {"status__exact": "success"}
        ),
    ),
    "synccheckpoint": (
        SyncCheckpoint,
        lambda d: Case(
            SyncCheckpoint.objects.get(key="contratacoes/2025-06-24/m8"),
            "HTTP 500",
            {"status__exact": "failed"},
            {"status__exact": "done"},
        ),
    ),
    "coverage": (
        Coverage,
        lambda d: Case(
            Coverage.objects.get(resource="contratos"), "contratos", {"gap": "yes"}, {"gap": "no"}
        ),
    ),
    "recordversion": (
        RecordVersion,
        lambda d: Case(
            RecordVersion.objects.get(natural_key=CONTRATACAO_KEY),
            CONTRATACAO_KEY,
            {"resource__exact": "contratacoes"},
            {"resource__exact": "pca"},
        ),
    ),
    "rejectedrecord": (
        RejectedRecord,
        lambda d: Case(
            RejectedRecord.objects.get(resource="contratos"),
            "78492576000100-2-000445/2024",  # contrato_2.json's second record
            {"resource__exact": "contratos", "resolved": "no"},
            {"resolved": "yes"},
        ),
    ),
    "contractcheck": (
        ContractCheck,
        lambda d: Case(
            ContractCheck.objects.create(status="drift", endpoints=10, findings=[]),
            "drift",
            {"status__exact": "drift"},
            {"status__exact": "ok"},
        ),
    ),
    "itemcontratacao": (
        ItemContratacao,
        lambda d: Case(
            _itens(d)[0],
            _itens(d)[0].chave,
            {"tem_resultado__exact": "1"},
            {"tem_resultado__exact": "0"},
        ),
    ),
    "resultadoitem": (
        ResultadoItem,
        lambda d: Case(
            _itens(d)[1],
            _itens(d)[1].nome_razao_social_fornecedor,
            {"tipo_pessoa__codigo__exact": _itens(d)[1].tipo_pessoa_id},
            {"tipo_pessoa__codigo__exact": "PE"},
        ),
    ),
    "fornecedor": (
        Fornecedor,
        lambda d: Case(
            _itens(d)[1].fornecedor,
            _itens(d)[1].fornecedor.nome_razao_social,
            {"tipo_pessoa__codigo__exact": _itens(d)[1].fornecedor.tipo_pessoa_id},
            {"tipo_pessoa__codigo__exact": "PE"},
        ),
    ),
    "synclock": (
        SyncLock,
        lambda d: Case(
            SyncLock.objects.create(
                resource="atas", run=d["run"], expires_at=datetime(2030, 1, 1, tzinfo=UTC)
            ),
            "atas",
            {"resource": "atas"},
            {"resource": "pca"},
        ),
    ),
    "user": (
        User,
        lambda d: Case(
            User.objects.create_user("operadora", role=User.Role.OPERATOR),
            "operadora",
            {"role__exact": "operator"},
            {"is_staff__exact": "1"},
        ),
    ),
    **{
        f"domain:{key}": (model, lambda d, model=model: _domain_case(model))
        for key, model in TABLES.items()
    },
}


def test_every_model_of_ours_has_an_admin_and_a_case_below():
    registered = {
        model
        for model in admin.site._registry
        if model._meta.app_label in {"pncp", "domain_tables", "accounts"}
    }
    assert len([m for m in registered if m._meta.app_label == "pncp"]) == 17
    assert len([m for m in registered if m._meta.app_label == "domain_tables"]) == 22
    assert registered == {model for model, _ in CASES.values()}


@pytest.mark.parametrize("name", list(CASES))
def test_changelist_search_and_filter_narrow_within_query_budget(
    name, data, admin_client, django_assert_max_num_queries
):
    model, build = CASES[name]
    case = build(data)
    total = model.objects.count()

    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):  # every row: no N+1
        response = admin_client.get(url(model))
    assert response.status_code == 200
    assert len(result_pks(response)) == min(total, response.context["cl"].list_per_page)

    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = admin_client.get(url(model), {"q": case.search})
    assert response.status_code == 200
    assert case.obj.pk in result_pks(response)
    if total > 1:
        assert response.context["cl"].result_count < total

    response = admin_client.get(url(model), {"q": "zz-nothing-matches-this-zz"})
    assert response.status_code == 200
    assert result_pks(response) == []

    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = admin_client.get(url(model), case.hit)
    assert response.status_code == 200
    assert case.obj.pk in result_pks(response)

    response = admin_client.get(url(model), case.miss)
    assert response.status_code == 200
    assert case.obj.pk not in result_pks(response)


@pytest.mark.parametrize("name", list(CASES))
def test_change_page_within_query_budget(name, data, admin_client, django_assert_max_num_queries):
    model, build = CASES[name]
    case = build(data)
    with django_assert_max_num_queries(CHANGE_PAGE_MAX_QUERIES):
        response = admin_client.get(url(model, "change", case.obj.pk))
    assert response.status_code == 200
    assert str(case.obj) in page_text(response)


# --- Search -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "term", "expected"),
    [
        (Contratacao, CONTRATACAO_KEY, {CONTRATACAO_KEY}),
        (Contratacao, "90940172000138", {CONTRATACAO_KEY}),  # CNPJ of the órgão
        (Contratacao, "90.940.172/0001-38", {CONTRATACAO_KEY}),
        (Contratacao, "ARROIOS E ESGOTO", {CONTRATACAO_KEY}),  # razão social
        (Contratacao, NEW_OBJETO, {CONTRATACAO_KEY}),  # objeto
        (
            Contrato,
            "09505958000290",
            {  # CNPJ of the fornecedor
                "78492576000100-2-000445/2024",
                "82892266000150-2-000308/2024",
                "82558909000124-2-000540/2024",
            },
        ),
        (Contrato, CONTRATACAO_KEY, {CONTRATO_KEY}),  # the contratação's número de controle
        (Contrato, "MÓVEIS PARA ESCRITÓRIO", {CONTRATO_KEY}),
    ],
)
def test_search_by_numero_de_controle_cnpj_razao_social_and_objeto(
    model, term, expected, data, admin_client
):
    response = admin_client.get(url(model), {"q": term})
    assert response.status_code == 200
    assert {obj.numero_controle_pncp for obj in response.context["cl"].result_list} == expected


def test_key_search_is_an_exact_lookup_not_a_scan(data, admin_client):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(url(Contratacao), {"q": CONTRATACAO_KEY})
    selects = [q["sql"] for q in queries if '"pncp_contratacao"' in q["sql"]]
    assert selects
    assert all("LIKE" not in sql for sql in selects)


@postgres_only
@pytest.mark.parametrize(
    ("model", "term", "expected"),
    [
        (Contratacao, "retificacao posteriores", {CONTRATACAO_KEY}),  # no accents, plurals
        (Contratacao, '"objeto alterado"', {CONTRATACAO_KEY}),  # a phrase
        (Contratacao, "objeto alterado -retificação", set()),  # excluding a word
        (Contrato, "vla pozzi", {CONTRATO_KEY}),  # the fornecedor's name
        (Contrato, "moveis escritorios", {CONTRATO_KEY}),
    ],
)
def test_text_search_uses_full_text_words(model, term, expected, data, admin_client):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(model), {"q": term})
    assert response.status_code == 200
    assert {obj.numero_controle_pncp for obj in response.context["cl"].result_list} == expected
    table = f'"{model._meta.db_table}"'
    on_table = [q["sql"] for q in queries if table in q["sql"] and "to_tsvector" in q["sql"]]
    assert on_table, "the search went through the full-text expression"
    assert not [q["sql"] for q in queries if table in q["sql"] and "LIKE" in q["sql"]]


@postgres_only
def test_item_pca_search_by_codes_and_words(data, admin_client):
    item = ItemPCA.objects.get(plano__id_pca_pncp=PCA_KEY, numero_item=3)
    assert item.codigo_item and item.classificacao_superior_codigo
    for term in (item.codigo_item, item.classificacao_superior_codigo):
        assert term.isdigit()
        response = admin_client.get(url(ItemPCA), {"q": term})
        found = response.context["cl"].result_list
        assert item in found
        assert all(term in (o.codigo_item, o.classificacao_superior_codigo) for o in found)
    words = admin_client.get(url(ItemPCA), {"q": "carimbos"}).context["cl"].result_list
    assert item in words and all("CARIMBO" in o.descricao_item.upper() for o in words)


@postgres_only
@pytest.mark.parametrize("model", [Contratacao, Contrato, AtaRegistroPreco])
def test_text_search_finds_the_same_rows_sorting_matches_or_walking_the_list(
    model, data, admin_client, monkeypatch
):
    """Few matches are found first then sorted; many are found walking the list's order
    (``text_search_sort_limit``): both give the same page, in the same order."""
    admin_class = type(admin.site._registry[model])
    found = []
    terms = (
        "aquisição",
        "material",
        "prefeitura",
        "registro de preços",
        "serviços -obra",
        "correlatos",
    )
    for term in terms:
        pages = []
        for limit in (10**9, 0):
            monkeypatch.setattr(admin_class, "text_search_sort_limit", limit)
            response = admin_client.get(url(model), {"q": term})
            assert response.status_code == 200
            cl = response.context["cl"]
            pages.append(([obj.pk for obj in cl.result_list], cl.result_count))
        assert pages[0] == pages[1], term
        assert model.objects.count() > pages[0][1]  # the search narrowed the list
        found.append(pages[0][1])
    assert sum(1 for count in found if count) >= 2, found


# --- Date range filter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "found"),
    [
        (
            {"data_publicacao_pncp__gte": "2025-06-24", "data_publicacao_pncp__lte": "2025-06-24"},
            True,
        ),
        ({"data_publicacao_pncp__lte": "2025-06-24"}, True),  # the whole day, up to 23:59:59
        ({"data_publicacao_pncp__gte": "2025-06-25"}, False),
        ({"data_publicacao_pncp__lte": "2025-06-23"}, False),
        ({"data_encerramento_proposta__gte": "2025-07-04"}, True),
    ],
)
def test_date_range_filter(params, found, data, admin_client):
    response = admin_client.get(url(Contratacao), params)
    assert response.status_code == 200
    keys = {obj.numero_controle_pncp for obj in response.context["cl"].result_list}
    assert (CONTRATACAO_KEY in keys) is found


def test_date_range_filter_offers_quick_ranges_and_keeps_other_params(data, admin_client):
    response = admin_client.get(url(Contratacao), {"uf": "RS", "q": "MUNICIPIO"})
    text = page_text(response)
    for label in ("Hoje", "Últimos 7 dias", "Este mês", "Este ano"):
        assert label in text
    assert 'name="data_publicacao_pncp__gte"' in text
    assert '<input type="hidden" name="uf" value="RS">' in text
    assert '<input type="hidden" name="q" value="MUNICIPIO">' in text


def test_date_range_filter_refuses_a_bad_date(data, admin_client):
    response = admin_client.get(url(Contratacao), {"data_publicacao_pncp__gte": "24/06/2025"})
    assert response.status_code == 302
    assert response.url.endswith("?e=1")


# --- Record pages: payload, PNCP link, related records, history ---------------------------------


def test_record_page_shows_pretty_payload_pncp_link_and_origin(data, admin_client):
    contratacao = Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY)
    text = page_text(admin_client.get(url(Contratacao, "change", contratacao.pk)))

    pre = re.search(r'<pre class="pncp-json">(.*?)</pre>', text, re.S).group(1)
    assert json.loads(pre) == contratacao.raw
    assert '\n  "numeroControlePNCP": "90940172000138-1-000025/2025"' in pre

    assert f'href="{contratacao.pncp_url}"' in text
    assert contratacao.pncp_url == "https://pncp.gov.br/app/editais/90940172000138/2025/25"
    assert url(SyncRun, "change", data["run"].pk) in text  # where it came from


def test_record_page_lists_related_contratos_and_atas(data, admin_client):
    contratacao = Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY)
    text = page_text(admin_client.get(url(Contratacao, "change", contratacao.pk)))
    assert CONTRATO_KEY in text
    ata = AtaRegistroPreco.objects.get(contratacao=contratacao)
    assert url(AtaRegistroPreco, "change", ata.pk) in text
    assert f"{url(Contrato)}?contratacao__exact={contratacao.pk}" in text


def test_pca_page_shows_its_itens_limited(data, admin_client, monkeypatch):
    monkeypatch.setattr(pncp_admin.ItemPCAInline, "max_rows", 3)
    plano = PlanoContratacao.objects.get(id_pca_pncp=PCA_KEY)
    response = admin_client.get(url(PlanoContratacao, "change", plano.pk))
    text = page_text(response)
    inline = text[text.index('id="itens-group"') :]  # the payload above holds every item
    assert "CADEIRA DIGITADOR" in inline  # item 1
    assert "CARIMBO" in inline  # item 3
    assert "FONE OUVIDO" not in inline  # item 4: beyond the limit
    assert f'{url(ItemPCA)}?plano__exact={plano.pk}">8 itens' in text
    assert "https://pncp.gov.br/app/pca/47015532000166/2025/2" in text


def test_changed_record_shows_old_value_and_diff(data, admin_client):
    contratacao = Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY)
    old_objeto = RecordVersion.objects.get(natural_key=CONTRATACAO_KEY).payload["objetoCompra"]
    assert old_objeto != NEW_OBJETO

    text = page_text(admin_client.get(url(Contratacao, "change", contratacao.pk)))
    history = text[text.index('class="pncp-history"') :]
    rows = re.findall(
        r'<tr class="pncp-diff"><td><code>(.*?)</code></td><td><pre>(.*?)</pre></td>'
        r"<td><pre>(.*?)</pre></td></tr>",
        history,
        re.S,
    )
    assert rows == [("objetoCompra", json.dumps(old_objeto, ensure_ascii=False), f'"{NEW_OBJETO}"')]


def test_record_without_changes_says_so(data, admin_client):
    contratacao = Contratacao.objects.get(numero_controle_pncp="01611339000197-1-000121/2025")
    text = page_text(admin_client.get(url(Contratacao, "change", contratacao.pk)))
    assert "Nenhuma versão anterior" in text


def test_record_version_page_shows_its_payload_and_what_replaced_it(data, admin_client):
    version = RecordVersion.objects.get(natural_key=CONTRATACAO_KEY)
    text = page_text(admin_client.get(url(RecordVersion, "change", version.pk)))
    assert "<td><code>objetoCompra</code></td>" in text
    assert f'"{NEW_OBJETO}"' in text
    contratacao = Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY)
    assert url(Contratacao, "change", contratacao.pk) in text


def test_sync_run_page_shows_errors_pretty_and_checkpoints(data, admin_client):
    run = data["run"]
    text = page_text(admin_client.get(url(SyncRun, "change", run.pk)))
    pre = re.search(r'<pre class="pncp-json">(\[.*?)</pre>', text, re.S).group(1)
    assert json.loads(pre) == run.errors
    assert "contratacoes/2025-06-24/m6" in text and "contratacoes/2025-06-24/m8" in text


def test_sync_run_checkpoint_inline_is_limited(data, admin_client, monkeypatch):
    monkeypatch.setattr(pncp_admin.CheckpointInline, "max_rows", 1)
    text = page_text(admin_client.get(url(SyncRun, "change", data["run"].pk)))
    shown = [k for k in ("contratacoes/2025-06-24/m6", "contratacoes/2025-06-24/m8") if k in text]
    assert len(shown) == 1


# --- Counting -----------------------------------------------------------------------------------


def _full_counts(queries, table):
    """COUNT queries over the whole table: no WHERE and no LIMIT."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper()
        and f'FROM "{table}"' in q["sql"]
        and "WHERE" not in q["sql"].upper()
        and "LIMIT" not in q["sql"].upper()
    ]


@postgres_only
def test_changelist_never_counts_the_whole_table(data, admin_client):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(Contratacao))
    assert response.status_code == 200
    assert response.context["cl"].result_count == Contratacao.objects.count()
    assert _full_counts(queries, "pncp_contratacao") == []


@postgres_only
def test_unfiltered_big_table_uses_the_planner_estimate(data, admin_client, monkeypatch):
    monkeypatch.setattr(pncp_admin.EstimatedCountPaginator, "exact_count_limit", 5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pncp_contratacao")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(Contratacao))
    assert response.context["cl"].result_count == Contratacao.objects.count()  # exact after ANALYZE
    assert "cerca de" in page_text(response)
    assert not [q for q in queries if "COUNT(" in q["sql"] and "pncp_contratacao" in q["sql"]]


@postgres_only
def test_filtered_count_is_capped(data, admin_client, monkeypatch):
    monkeypatch.setattr(pncp_admin.EstimatedCountPaginator, "exact_count_limit", 3)
    response = admin_client.get(url(Contratacao), {"uf": "ES"})  # 4 of the 10
    assert response.context["cl"].result_count == 3
    assert "mais de 3" in page_text(response)
    response = admin_client.get(url(Contratacao), {"uf": "RS", "q": "MUNICIPIO"})  # 2
    assert response.context["cl"].result_count == 2
    assert "mais de" not in page_text(response)


@pytest.mark.parametrize("model", [ItemPCA, Contratacao, RecordVersion, RejectedRecord])
def test_lists_do_not_load_payloads(model, data, admin_client):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(model))
    assert response.context["cl"].result_list
    rows = [
        q["sql"] for q in queries if q["sql"].startswith(f'SELECT "{model._meta.db_table}"."id"')
    ]
    assert rows
    assert all('."raw"' not in sql and '."payload"' not in sql for sql in rows)


# --- Permissions --------------------------------------------------------------------------------

IMPORTER_OWNED = [
    Contratacao,
    Contrato,
    AtaRegistroPreco,
    PlanoContratacao,
    ItemPCA,
    Orgao,
    UnidadeOrgao,
    SyncRun,
    SyncCheckpoint,
    Coverage,
    RecordVersion,
    RejectedRecord,
]


@pytest.mark.parametrize("model", IMPORTER_OWNED)
def test_importer_owned_rows_cannot_be_added_changed_or_deleted(model, data, admin_client):
    obj = model.objects.first()
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.get(url(model, "delete", obj.pk)).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    response = admin_client.get(url(model))
    assert "delete_selected" not in response.content.decode()


def test_domain_code_name_can_be_fixed_but_not_deleted(data, admin_client):
    model = TABLES["modalidade_contratacao"]
    row = model.objects.get(codigo=6)
    response = admin_client.post(
        url(model, "change", row.pk),
        {"codigo": 99, "nome": "Pregão - Eletrônico (revisado)", "descricao": "", "ativo": "on"},
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.nome == "Pregão - Eletrônico (revisado)"
    assert not model.objects.filter(codigo=99).exists()  # the code itself is read-only
    assert admin_client.get(url(model, "delete", row.pk)).status_code == 403


def test_domain_mark_reviewed_action(data, admin_client):
    model = TABLES["amparo_legal"]
    new = model.objects.create(codigo=9999, nome="Código visto num import", novo_em_importacao=True)
    response = admin_client.post(
        url(model), {"action": "mark_reviewed", "_selected_action": [new.pk]}
    )
    assert response.status_code == 302
    new.refresh_from_db()
    assert new.novo_em_importacao is False


# --- Quarantine retry ---------------------------------------------------------------------------


def test_retry_resolves_a_record_once_its_cause_is_fixed(db, admin_client, monkeypatch):
    record = sample_records("contratacao_1.json")[0]
    spec = SPECS["contratacoes"]

    def parser_with_a_bug(_record):
        raise ParseError("dataPublicacaoPncp: simulated parser bug")

    monkeypatch.setitem(SPECS, "contratacoes", replace(spec, parse=parser_with_a_bug))
    Ingester().ingest("contratacoes", [record])
    monkeypatch.setitem(SPECS, "contratacoes", spec)  # the fix is deployed
    rejected = RejectedRecord.objects.get()
    assert not Contratacao.objects.exists()

    response = admin_client.post(
        url(RejectedRecord), {"action": "retry", "_selected_action": [rejected.pk]}
    )
    assert response.status_code == 302
    rejected.refresh_from_db()
    assert rejected.resolved_at is not None
    assert Contratacao.objects.filter(numero_controle_pncp=CONTRATACAO_KEY).exists()
    assert RejectedRecord.objects.count() == 1


def test_retry_of_a_still_broken_record_keeps_one_row_and_counts_attempts(data, admin_client):
    rejected = RejectedRecord.objects.get(resource="contratacoes")
    rejected.reason = "an older reason"
    rejected.save()
    for _ in range(2):
        admin_client.post(
            url(RejectedRecord), {"action": "retry", "_selected_action": [rejected.pk]}
        )
    rejected.refresh_from_db()
    assert rejected.resolved_at is None
    assert rejected.attempts == 3
    assert "orgaoEntidade" in rejected.reason
    assert RejectedRecord.objects.filter(resource="contratacoes").count() == 1


@pytest.mark.parametrize("resource", ["itens", "resultados"])
def test_retry_of_an_item_or_resultado_finds_its_compra_again(
    db, admin_client, monkeypatch, resource
):
    from tests.fakes.fake_pncp import FakeDataset

    record = next(
        r
        for r in sample_records("contratacao_1.json")
        if r["numeroControlePNCP"] == CONTRATACAO_KEY
    )
    Ingester().ingest("contratacoes", [record])
    contratacao = Contratacao.objects.get(numero_controle_pncp=CONTRATACAO_KEY)
    ds = FakeDataset()
    ds.add("contratacoes", record)
    ds.generate_itens(seed=3, max_itens=6)
    itens = ds.itens(CONTRATACAO_KEY)
    item = next(i for i in itens if i["temResultado"])
    resultado = ds.resultados(CONTRATACAO_KEY, item["numeroItem"])[0]
    source = f"contratacoes.itens|{CONTRATACAO_KEY} p1"
    Ingester().ingest(
        "itens",
        itens,
        source=source,
        context={"compra": CONTRATACAO_KEY, "contratacao_id": contratacao.pk},
    )
    spec = SPECS[resource]

    def parser_with_a_bug(_record, _context):
        raise ParseError("simulated parser bug")

    monkeypatch.setitem(SPECS, resource, replace(spec, parse=parser_with_a_bug))
    if resource == "itens":
        ItemContratacao.objects.filter(numero_item=item["numeroItem"]).delete()
        Ingester().ingest(
            "itens",
            [item],
            source=source,
            context={"compra": CONTRATACAO_KEY, "contratacao_id": contratacao.pk},
        )
    else:
        item_ids = dict(ItemContratacao.objects.values_list("numero_item", "id"))
        Ingester().ingest(
            "resultados",
            [resultado],
            source=source,
            context={"compra": CONTRATACAO_KEY, "item_ids": item_ids},
        )
    monkeypatch.setitem(SPECS, resource, spec)  # the fix is deployed
    rejected = RejectedRecord.objects.get(resource=resource)
    assert rejected.natural_key.startswith(CONTRATACAO_KEY + "#")

    admin_client.post(url(RejectedRecord), {"action": "retry", "_selected_action": [rejected.pk]})

    rejected.refresh_from_db()
    assert rejected.resolved_at is not None, rejected.reason
    stored = ItemContratacao.objects.get(contratacao=contratacao, numero_item=item["numeroItem"])
    if resource == "resultados":
        assert ResultadoItem.objects.filter(item=stored).count() == 1


def test_a_typed_sort_on_an_unsortable_column_is_ignored(data, admin_client):
    model_admin = admin.site._registry[Contratacao]
    columns = list(model_admin.get_list_display(None))
    for index, column in enumerate(columns):
        response = admin_client.get(url(Contratacao), {"o": str(index)})
        assert response.status_code == 200
        ordering = response.context["cl"].get_ordering(
            response.wsgi_request, Contratacao.objects.all()
        )
        named = {str(o).lstrip("-").split(".")[-1] for o in ordering}
        if column not in model_admin.sortable_by:
            assert column not in named, (column, ordering)
