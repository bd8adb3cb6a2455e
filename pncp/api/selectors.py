"""Read-side querysets of the mirrored records, shared by the API (and, later, the admin).

Every list selector returns an **ordered** queryset (stable pages: date desc, id desc unless
the resource has a better natural order) with exactly the columns and joins its serializer
reads: ``only()`` keeps the raw payload and the bookkeeping columns out of every page, and
``select_related`` brings the órgão, unidade and domain-code names in the same query, so a
page costs one query whatever its size.

Full-text search uses PostgreSQL's text search with the ``portuguese_unaccent``
configuration (Portuguese stemming after removing accents, created by migration
``0005_api_search_indexes``): "veiculo" finds "veículos", "aquisicao" finds "Aquisição",
"servicos" finds "serviço". The query is written with the very expression of the GIN index
(``to_tsvector('portuguese_unaccent', COALESCE(column, ''))``) so PostgreSQL uses it. SQLite
(the demo) falls back to ``icontains``.
"""

from __future__ import annotations

import threading
import time
import weakref

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.db.models.expressions import RawSQL

from domain_tables.models import TABLES
from pncp.api.rows import Related, RowShape
from pncp.models import (
    FTS_CONFIG,
    AtaRegistroPreco,
    Contratacao,
    Contrato,
    ItemPCA,
    PlanoContratacao,
)

BOOKKEEPING = {"raw", "content_hash", "first_seen_at", "last_seen_at", "last_changed_at"}

ORGAO_FIELDS = ("razao_social", "poder_id", "esfera_id")
UNIDADE_FIELDS = (
    "codigo_unidade",
    "nome_unidade",
    "municipio_nome",
    "codigo_ibge",
    "uf_sigla",
    "uf_nome",
)


def _own_fields(model, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """Every concrete column of ``model`` but the payload/bookkeeping ones (by attname)."""
    skip = BOOKKEEPING | {"sync_run"} | set(exclude)
    return [f.attname for f in model._meta.concrete_fields if f.name not in skip]


def _related(prefix: str, fields: tuple[str, ...]) -> list[str]:
    return [f"{prefix}__{name}" for name in fields]


# The órgão/unidade joins of contratações, contratos and atas. Each list's ``RowShape`` is
# the one description of its columns: list pages read it as rows (``rows.RowShape``), and
# the model-instance querysets (details) select the same columns with ``only(shape.paths())``.
ORGAO_UNIDADE_ROWS = (
    Related("orgao", "cnpj", ORGAO_FIELDS),
    Related("unidade", "id", UNIDADE_FIELDS),
    Related("orgao_sub_rogado", "cnpj", ORGAO_FIELDS),
    Related("unidade_sub_rogada", "id", UNIDADE_FIELDS),
)
ORGAO_RELATIONS = tuple(rel.name for rel in ORGAO_UNIDADE_ROWS)

# --- text search ----------------------------------------------------------------------------

# Memory for a text search's bitmaps: a common word's GIN bitmap (100,000+ rows at a
# million contratações) overflows the default 4 MB, turns lossy, and every row of a lossy
# page is re-checked by re-computing ``to_tsvector`` (~25 µs each): 0.5 s instead of 20 ms.
# Set once per database connection, on its first search (a session setting: no transaction
# to open, no query on later requests). Used by the API and the admin.
SEARCH_WORK_MEM = "64MB"
_search_ready: weakref.WeakSet = weakref.WeakSet()


def prepare_search_connection() -> None:
    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    raw = connection.connection
    if raw in _search_ready:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET work_mem = '{SEARCH_WORK_MEM}'")
    _search_ready.add(raw)


def text_search(qs: QuerySet, column: str, q: str, *, in_window: bool = False) -> QuerySet:
    """Records whose ``column`` matches the words of ``q`` (web-search syntax on PostgreSQL:
    ``"frase exata"``, ``-excluir``, ``or``).

    ``in_window``: ``qs`` is already narrowed to a date range served by an index (the
    window of ``/contratacoes/``, ``/contratos/``…), see below."""
    q = (q or "").strip()
    if not q:
        return qs
    if connection.vendor != "postgresql":
        for word in q.split():
            qs = qs.filter(**{f"{column}__icontains": word})
        return qs
    vector = SearchVector(column, config=FTS_CONFIG)
    query = SearchQuery(q, config=FTS_CONFIG, search_type="websearch")
    if not in_window:
        return qs.alias(_fts=vector).filter(_fts=query)
    # The matches are a subquery of their own (``OFFSET 0`` keeps PostgreSQL from pulling it
    # up into the page's query), with the filters applied so far (the date window): its
    # plan is the GIN index AND the window's index, and the page then walks the window
    # probing a hash of the matching ids. As one query, PostgreSQL walked the window in
    # page order re-computing ``to_tsvector`` on every row it passed (~25 µs each): a rare
    # word took 100-200 ms, a whole 90-day window more than a second (BENCHMARKS.md).
    #
    # The matches (with every filter: the API applies the search last) are also kept on the
    # query (``search_matches``, copied by every clone) for ``PNCPPagination``: it reads a
    # search page straight from them, fenced, sorted outside, without walking the window
    # again (2x faster); any other reader of this queryset gets the safe form above.
    matches = qs.alias(_fts=vector).filter(_fts=query).order_by()
    sql, params = matches.values("pk").query.sql_with_params()
    fenced = qs.filter(pk__in=RawSQL(f"{sql} OFFSET 0", params))
    fenced.query.search_matches = matches
    return fenced


# --- contratações ---------------------------------------------------------------------------


CONTRATACAO_ROWS = RowShape(
    Contratacao, tuple(_own_fields(Contratacao)), related=ORGAO_UNIDADE_ROWS
)


def contratacao_list() -> QuerySet[Contratacao]:
    """What a list page filters, orders and slices: its keys. The rows are then read by
    ``CONTRATACAO_ROWS`` (``rows.RowShape.fetch``), so the joins and column list of
    ``contratacao_queryset`` would only be cloned along with every filter."""
    return Contratacao.objects.order_by("-data_publicacao_pncp", "-id")


def contratacao_queryset() -> QuerySet[Contratacao]:
    """Contratações with their órgãos/unidades joined; the names of their domain codes
    come from ``domain_row`` (a per-process cache), not from joins.

    Joining the six code tables as well made a page a 12-table join whose *planning* alone
    took ~40 ms on PostgreSQL (join_collapse_limit is 8), 20-70x the execution time of a page
    of 50 (BENCHMARKS.md, API benchmarks); with the four órgão/unidade joins it plans in
    well under a millisecond.
    """
    return (
        Contratacao.objects.select_related(*ORGAO_RELATIONS)
        .only(*CONTRATACAO_ROWS.paths())
        .order_by("-data_publicacao_pncp", "-id")
    )


# One record: its codes are joined (no cache to warm; planning a 12-table join is paid once).
CONTRATACAO_CODES = (
    "modalidade",
    "modo_disputa",
    "instrumento_convocatorio",
    "amparo_legal",
    "situacao",
    "orcamento_sigiloso",
)


def _contratacao_with_codes() -> QuerySet[Contratacao]:
    return contratacao_queryset().select_related(*CONTRATACAO_CODES)


def contratacao_get(numero_controle_pncp: str) -> Contratacao | None:
    return _contratacao_with_codes().filter(numero_controle_pncp=numero_controle_pncp).first()


def contratacao_by_compra(cnpj: str, ano: int, sequencial: int) -> Contratacao | None:
    """PNCP's ``/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}``."""
    return (
        _contratacao_with_codes()
        .filter(orgao_id=cnpj, ano_compra=ano, sequencial_compra=sequencial)
        .first()
    )


def atas_of_contratacao(contratacao: Contratacao) -> QuerySet[AtaRegistroPreco]:
    """Summaries of the atas of a contratação (linked by its número de controle)."""
    return (
        AtaRegistroPreco.objects.filter(
            numero_controle_pncp_compra=contratacao.numero_controle_pncp
        )
        .only(
            "id",
            "numero_controle_pncp_ata",
            "numero_ata_registro_preco",
            "ano_ata",
            "cancelado",
            "vigencia_inicio",
            "vigencia_fim",
            "data_publicacao_pncp",
        )
        .order_by("numero_controle_pncp_ata")
    )


def contratos_of_contratacao(contratacao: Contratacao) -> QuerySet[Contrato]:
    return (
        Contrato.objects.filter(numero_controle_pncp_compra=contratacao.numero_controle_pncp)
        .select_related("tipo_contrato")
        .only(
            "id",
            "numero_controle_pncp",
            "numero_contrato_empenho",
            "ano_contrato",
            "sequencial_contrato",
            "tipo_contrato__nome",
            "ni_fornecedor",
            "nome_razao_social_fornecedor",
            "valor_global",
            "data_vigencia_inicio",
            "data_vigencia_fim",
            "data_publicacao_pncp",
        )
        .order_by("-data_publicacao_pncp", "-id")
    )


# --- contratos ------------------------------------------------------------------------------

CONTRATO_CODES = ("tipo_contrato", "categoria_processo")
CONTRATO_ROWS = RowShape(
    Contrato,
    tuple(_own_fields(Contrato, exclude=("contratacao",))),
    related=ORGAO_UNIDADE_ROWS,
    codes={code: code for code in CONTRATO_CODES},
)


def contrato_list() -> QuerySet[Contrato]:
    """Like ``contratacao_list``: rows by ``CONTRATO_ROWS``."""
    return Contrato.objects.order_by("-data_publicacao_pncp", "-id")


def contrato_queryset() -> QuerySet[Contrato]:
    return (
        Contrato.objects.select_related(*ORGAO_RELATIONS, *CONTRATO_CODES)
        .only(
            *CONTRATO_ROWS.paths(),
            *_related("tipo_contrato", ("nome",)),
            *_related("categoria_processo", ("nome",)),
        )
        .order_by("-data_publicacao_pncp", "-id")
    )


def contrato_get(numero_controle_pncp: str) -> Contrato | None:
    return contrato_queryset().filter(numero_controle_pncp=numero_controle_pncp).first()


# --- atas -----------------------------------------------------------------------------------


ATA_ROWS = RowShape(
    AtaRegistroPreco,
    tuple(_own_fields(AtaRegistroPreco, exclude=("contratacao",))),
    related=ORGAO_UNIDADE_ROWS,
    properties=("pncp_url",),
)


def ata_list() -> QuerySet[AtaRegistroPreco]:
    """Like ``contratacao_list``: rows by ``ATA_ROWS``."""
    return AtaRegistroPreco.objects.order_by("-data_publicacao_pncp", "-id")


def ata_queryset() -> QuerySet[AtaRegistroPreco]:
    return (
        AtaRegistroPreco.objects.select_related(*ORGAO_RELATIONS)
        .only(*ATA_ROWS.paths())
        .order_by("-data_publicacao_pncp", "-id")
    )


def ata_get(numero_controle_pncp_ata: str) -> AtaRegistroPreco | None:
    return ata_queryset().filter(numero_controle_pncp_ata=numero_controle_pncp_ata).first()


# --- PCA ------------------------------------------------------------------------------------

PLANO_FIELDS = (
    "id_pca_pncp",
    "ano_pca",
    "id_usuario",
    "codigo_unidade",
    "data_publicacao_pncp",
    "data_atualizacao_global_pca",
    "orgao_id",
    "unidade_id",
)


def item_pca_queryset() -> QuerySet[ItemPCA]:
    """PCA itens, ordered by plano then item number, with their plano's identification.

    The planos come by a prefetch (one ``id IN (...)`` query per page) rather than a join:
    a join lets PostgreSQL merge-join the page against the planos' primary key from its
    first row, i.e. walk every older plano.
    """
    return (
        ItemPCA.objects.select_related("orgao")
        .only(*_own_fields(ItemPCA), *_related("orgao", ("razao_social",)))
        .prefetch_related(
            Prefetch(
                "plano",
                queryset=PlanoContratacao.objects.select_related("unidade").only(
                    *PLANO_FIELDS, "unidade__nome_unidade"
                ),
            )
        )
        .order_by("plano_id", "numero_item")
    )


def planos_of_usuario(id_usuario: int, ano_pca: int | None = None) -> QuerySet:
    """Ids of the planos a publishing system sent (a subquery for filtering itens)."""
    planos = PlanoContratacao.objects.filter(id_usuario=id_usuario)
    if ano_pca is not None:
        planos = planos.filter(ano_pca=ano_pca)
    return planos.values("id")


def _itens_prefetch() -> Prefetch:
    return Prefetch(
        "itens",
        queryset=ItemPCA.objects.only(
            *_own_fields(ItemPCA, exclude=("orgao", "ano_pca", "codigo_unidade"))
        ).order_by("numero_item"),
    )


def plano_queryset(*, with_itens: bool = True) -> QuerySet[PlanoContratacao]:
    qs = (
        PlanoContratacao.objects.select_related("orgao", "unidade")
        .only(
            *_own_fields(PlanoContratacao),
            *_related("orgao", ("razao_social",)),
            *_related("unidade", ("nome_unidade",)),
        )
        .order_by("-data_publicacao_pncp", "-id")
    )
    return qs.prefetch_related(_itens_prefetch()) if with_itens else qs


def plano_get(id_pca_pncp: str) -> PlanoContratacao | None:
    return plano_queryset().filter(id_pca_pncp=id_pca_pncp).first()


# --- domain tables --------------------------------------------------------------------------

_CODE_CACHE_SECONDS = 300.0
_code_cache: dict[str, tuple[float, frozenset]] = {}
_code_lock = threading.Lock()


def domain_code_exists(table_key: str, code) -> bool:
    """Whether ``code`` is in the domain table ``table_key``.

    Codes are cached per process for a few minutes (validating a filter must not cost a
    query per request); a code missing from the cache is looked up once more in the
    database, so codes an import has just added are accepted at once.
    """
    model = TABLES[table_key]
    now = time.monotonic()
    with _code_lock:
        cached = _code_cache.get(table_key)
    if cached is not None and cached[0] > now and code in cached[1]:
        return True
    if cached is not None and cached[0] > now and not model.objects.filter(codigo=code).exists():
        return False
    codes = frozenset(model.objects.values_list("codigo", flat=True))
    with _code_lock:
        _code_cache[table_key] = (now + _CODE_CACHE_SECONDS, codes)
    return code in codes


_row_cache: dict[str, tuple[float, dict]] = {}


def domain_row(table_key: str, code):
    """The row of domain table ``table_key`` with ``code`` (``None`` for ``None`` or unknown).

    Rows are cached per process for a few minutes, like ``domain_code_exists``; a code not
    in the cache reloads the table once, so codes an import has just added show at once.
    The tables hold tens of rows: the API writes their names without joining them.
    """
    if code is None:
        return None
    cached = _row_cache.get(table_key)
    if cached is not None and cached[0] > time.monotonic():
        row = cached[1].get(code)
        if row is not None:
            return row
    return _load_domain_rows(table_key).get(code)


def domain_rows(table_key: str) -> dict:
    """Every row of domain table ``table_key`` by code, from the same per-process cache as
    ``domain_row`` (reloaded when it expires); a response reads it once per table."""
    cached = _row_cache.get(table_key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return _load_domain_rows(table_key)


def _load_domain_rows(table_key: str) -> dict:
    rows = {row.pk: row for row in TABLES[table_key].objects.all()}
    with _code_lock:
        _row_cache[table_key] = (time.monotonic() + _CODE_CACHE_SECONDS, rows)
    return rows


def forget_domain_rows() -> None:
    """Drop the cached domain rows (tests, or after editing a domain table)."""
    with _code_lock:
        _row_cache.clear()
        _code_cache.clear()


def domain_tables_summary() -> list[dict]:
    """Every domain table with its row count, in one query (a UNION of counts)."""
    parts, params = [], []
    for key, model in TABLES.items():
        parts.append(f"SELECT %s, COUNT(*) FROM {model._meta.db_table}")
        params.append(key)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        counts = dict(cursor.fetchall())
    return [
        {"key": key, "name": str(model._meta.verbose_name_plural), "count": counts.get(key, 0)}
        for key, model in TABLES.items()
    ]


def domain_codes(table_key: str) -> QuerySet:
    return (
        TABLES[table_key]
        .objects.only("codigo", "nome", "descricao", "novo_em_importacao", "ativo")
        .order_by("codigo")
    )
