"""The admin: for staff who browse and audit the mirror, not for editing PNCP's data.

Imported records (and the órgãos/unidades derived from them) are view-only: no add, no
change, no delete. A hand edit would be overwritten by the next import and would break the
promise that every row is what PNCP sent; a delete would only last until the next sync. Each
record page shows where the row came from (sync run, first/last seen, last changed), its link
on pncp.gov.br, its previous payloads with what changed between versions, and the raw payload.

Lists stay fast at millions of rows: no full ``COUNT(*)`` (``EstimatedCountPaginator``), no
``date_hierarchy`` or ``SELECT DISTINCT`` filters (see ``admin_filters``), sorting only on
indexed columns, ``list_select_related`` for every column that follows a foreign key, and a
search that turns a número de controle or a CNPJ into an exact, indexed lookup.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection, connections, models, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.forms.models import BaseInlineFormSet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from pncp.admin_filters import (
    CoverageGapFilter,
    DateRangeFilter,
    ResolvedFilter,
    UFFilter,
    UnidadeUFFilter,
    year_filter,
)
from pncp.api.selectors import prepare_search_connection
from pncp.ingest import SPECS, Ingester
from pncp.models import (
    FTS_CONFIG,
    AtaRegistroPreco,
    Contratacao,
    Contrato,
    Coverage,
    ItemPCA,
    Orgao,
    PlanoContratacao,
    RecordVersion,
    RejectedRecord,
    SyncCheckpoint,
    SyncRun,
    UnidadeOrgao,
)

# Resource name and natural-key field of each versioned model (RecordVersion is keyed by them).
HISTORY_SPECS = {spec.model: spec for spec in SPECS.values()}
HISTORY_LIMIT = 20
PRETTY_LIMIT = 200_000  # characters of pretty JSON shown on a page (a PCA can hold 1000s of itens)
RELATED_COUNT_CAP = 1000

NUMERO_CONTROLE = re.compile(r"\d{14}-\d-\d{6}/\d{4}(-\d{6})?")
CNPJ = re.compile(r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}")
ORGAO_FKS = ("orgao", "unidade", "orgao_sub_rogado", "unidade_sub_rogada")
SEARCH_HELP = (
    "Número de controle, CNPJ, ou palavras do {texto} (acentos e plurais não importam; "
    '"frase exata", -excluir) ou do nome do órgão.'
)
BOOKKEEPING = ("raw", "content_hash", "first_seen_at", "last_seen_at", "last_changed_at")
PAYLOAD_FIELDS = ("raw", "payload")


# --- Counting without COUNT(*) ------------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a whole big table.

    - unfiltered list on PostgreSQL: the planner's estimate (``pg_class.reltuples``) when it
      says the table is bigger than ``exact_count_limit``; it is refreshed by (auto)ANALYZE,
      so it can lag behind a bulk import, which is fine for "about 3 412 000 contratações";
    - anything else (filtered, a small or never-analyzed table): a count capped with
      ``LIMIT exact_count_limit + 1``, exact below the cap, "more than N" above it;
    - other databases (the SQLite demo): a plain count.

    ``count_note`` tells the pagination template which of the three it got.
    """

    exact_count_limit = 10_000

    count_note = ""

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, models.QuerySet):
            return len(qs)
        if connections[qs.db].vendor != "postgresql":
            return qs.count()
        if not qs.query.where:
            estimate = self._estimate(qs)
            if estimate > self.exact_count_limit:
                self.count_note = "cerca de"
                return estimate
        capped = qs.order_by().values("pk")[: self.exact_count_limit + 1].count()
        if capped > self.exact_count_limit:
            self.count_note = "mais de"
            return self.exact_count_limit
        return capped

    @staticmethod
    def _estimate(qs: models.QuerySet) -> int:
        connection = connections[qs.db]
        table = connection.ops.quote_name(qs.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table]
            )
            row = cursor.fetchone()
        return row[0] if row and row[0] is not None else -1


# --- Small display helpers ----------------------------------------------------------------------


def pretty_json(value) -> str:
    """Indented JSON in a <pre>, cut at PRETTY_LIMIT characters so a page stays light."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > PRETTY_LIMIT:
        note = f"\n… (cortado: {len(text)} caracteres no total)"
        text = text[:PRETTY_LIMIT] + note
    return format_html('<pre class="pncp-json">{}</pre>', text)


def _show(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_ABSENT = object()


def payload_diff(old, new) -> list[dict[str, str]]:
    """Top-level keys whose value differs between two payloads, shown as compact JSON."""
    old = old if isinstance(old, dict) else {"(payload)": old}
    new = new if isinstance(new, dict) else {"(payload)": new}
    rows = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before != after:
            rows.append(
                {
                    "field": key,
                    "old": "(ausente)" if before is _ABSENT else _show(before),
                    "new": "(ausente)" if after is _ABSENT else _show(after),
                }
            )
    return rows


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def capped_count(queryset, cap: int = RELATED_COUNT_CAP) -> str:
    n = queryset.order_by().values("pk")[: cap + 1].count()
    return f"{cap}+" if n > cap else str(n)


def payload_fields(model, prefix: str = "") -> list[str]:
    """The JSON payload columns of a model: kilobytes per row, megabytes for a big PCA."""
    return [f"{prefix}{f.name}" for f in model._meta.concrete_fields if f.name in PAYLOAD_FIELDS]


def money_column(field: str, description: str):
    """A list column showing an amount as 1.234.567,89, sortable by its (indexed) field."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        value = getattr(obj, field)
        return "-" if value is None else number_format(value, 2, force_grouping=True)

    return column


# --- Search ------------------------------------------------------------------------------------


class KeySearchMixin:
    """The search box: a key is looked up exactly, words through the full-text index.

    Django's search is ``icontains`` over every search field, word by word: a sequential
    scan of the table per word (0.5-5 s at a million contratações). Staff mostly paste a key
    they got elsewhere; those match ``key_search_fields`` / ``cnpj_search_fields`` exactly
    (an index lookup). Other text, on PostgreSQL, when the admin names
    ``text_search_fields``: records whose text has the words (PostgreSQL full-text search in
    Portuguese, accents ignored, plurals stemmed: "ambulancia" finds "Ambulâncias"; web
    syntax: ``"frase exata"``, ``-palavra``, ``or``) through the GIN indexes of those columns,
    or whose órgão's razão social contains the text; digits alone, when the admin names
    ``code_search_fields``, equal one of those codes. Elsewhere (SQLite) Django's search.
    """

    key_search_fields: tuple[str, ...] = ()
    cnpj_search_fields: tuple[str, ...] = ()
    text_search_fields: tuple[str, ...] = ()  # columns with a full-text (GIN) index
    code_search_fields: tuple[str, ...] = ()  # a term of digits alone: equal to one of these

    def key_lookup(self, term: str) -> Q:
        """The rows a número de controle typed in the search box names."""
        return _any_equals(self.key_search_fields, term)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if self.key_search_fields and NUMERO_CONTROLE.fullmatch(term):
            return queryset.filter(self.key_lookup(term)), False
        if self.cnpj_search_fields and CNPJ.fullmatch(term):
            digits = re.sub(r"\D", "", term)
            return queryset.filter(_any_equals(self.cnpj_search_fields, digits)), False
        if self.code_search_fields and term.isdigit():
            return queryset.filter(_any_equals(self.code_search_fields, term)), False
        if term and self.text_search_fields and connection.vendor == "postgresql":
            return self.text_search_results(queryset, term), False
        return super().get_search_results(request, queryset, search_term)

    # Up to this many matches, the matches are found first (GIN) and then sorted; above it,
    # the list walks its order and keeps the rows that match. Walking costs ~25 µs per row
    # passed (``to_tsvector`` re-computed), ~100/density rows for a page of 100; finding
    # and sorting costs ~5 µs per match: the two meet near sqrt(500 x table rows), ~20,000
    # at a million rows (BENCHMARKS.md, admin search).
    text_search_sort_limit = 20_000

    def text_search_results(self, queryset, term: str):
        matches = self.text_matches(term)
        sql, params = matches.query.sql_with_params()
        with connection.cursor() as cursor:  # how many, capped (the GIN's bitmap, no sort)
            cursor.execute(
                f"SELECT COUNT(*) FROM ({sql} LIMIT %s) AS m",
                [*params, self.text_search_sort_limit + 1],
            )
            (found,) = cursor.fetchone()
        if found > self.text_search_sort_limit:
            return queryset.filter(pk__in=matches)
        # ``OFFSET 0`` keeps the matches a subquery of their own, found by the indexes first:
        # flattened into the page's query, PostgreSQL walked the list's order re-computing
        # ``to_tsvector`` on every row it passed (2.2 s for a rare word at a million rows).
        return queryset.filter(pk__in=RawSQL(f"{sql} OFFSET 0", params))

    def text_matches(self, term: str):
        """The ids of the records ``term`` finds (a subquery), see the class docstring."""
        prepare_search_connection()  # bitmaps of common words stay exact (see selectors)
        query = SearchQuery(term, config=FTS_CONFIG, search_type="websearch")
        matches = self.model.objects.all()
        found = Q()
        for number, column in enumerate(self.text_search_fields):
            name = f"_fts{number}"
            matches = matches.alias(**{name: SearchVector(column, config=FTS_CONFIG)})
            found |= Q(**{name: query})
        if any(f.name == "orgao" for f in self.model._meta.get_fields()):
            orgaos = Orgao.objects.filter(razao_social__icontains=term).values_list("cnpj")
            found |= Q(orgao_id__in=[cnpj for (cnpj,) in orgaos])
        return matches.filter(found).order_by().values("pk")


def _own_or_compra_key(own_field: str, term: str) -> Q:
    """A contrato's or ata's own número de controle, or its contratação's.

    ``numero_controle_pncp_compra`` is indexed only while the row waits for its contratação
    (a partial index the importer needs); a linked row is found through its indexed foreign
    key. ``own = X OR compra = X`` was a sequential scan of the table.
    """
    if term.count("-") == 3 or "-2-" in term:  # an ata's (…/AAAA-NNNNNN) or a contrato's key
        return Q(**{own_field: term})
    compras = Contratacao.objects.filter(numero_controle_pncp=term).values("id")
    return Q(contratacao_id__in=compras) | Q(
        numero_controle_pncp_compra=term, contratacao__isnull=True
    )


def _any_equals(fields, value) -> Q:
    q = Q()
    for name in fields:
        q |= Q(**{name: value})
    return q


# --- Read-only building blocks ------------------------------------------------------------------


class LimitedInlineFormSet(BaseInlineFormSet):
    """At most ``max_rows`` related rows: a PCA can have thousands of itens."""

    max_rows = 20

    def get_queryset(self):
        if not hasattr(self, "_queryset"):
            self._queryset = super().get_queryset()[: self.max_rows]
        return self._queryset


class ReadOnlyInline(admin.TabularInline):
    """Related rows shown, never edited; each row links to its own admin page."""

    formset = LimitedInlineFormSet
    max_rows = 20
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.max_rows = self.max_rows
        return formset

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*payload_fields(self.model))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PayloadlessChangeList(ChangeList):
    """List rows without their payloads (nor those of the rows joined for a column).

    Sorting is limited to ``sortable_by`` (indexed columns) for typed URLs as well as for
    header clicks: ``?o=<index>`` of another column sorted a million rows (~750 ms).
    """

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        deferred = payload_fields(self.model)
        joined = self.list_select_related
        for name in joined if isinstance(joined, (list, tuple)) else ():
            related = self.model._meta.get_field(name).related_model
            deferred += payload_fields(related, prefix=f"{name}__")
        return qs.defer(*deferred) if deferred else qs


class ReadOnlyAdmin(KeySearchMixin, admin.ModelAdmin):
    """View-only pages for rows the importer owns, with lists that stay fast at any size."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    # (label, model, lookup to this object): counted and linked on the change page.
    related_lists: tuple[tuple[str, type[models.Model], str], ...] = ()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changelist(self, request, **kwargs):
        return PayloadlessChangeList

    def get_object(self, request, object_id, from_field=None):
        """The object with every foreign key it displays joined in one query.

        The joined rows' payloads are left out: an item's page would otherwise load the whole
        plano with all its itens.
        """
        opts = self.model._meta
        field = opts.pk if from_field is None else opts.get_field(from_field)
        related = [f for f in opts.concrete_fields if f.is_relation]
        deferred = [
            name for f in related for name in payload_fields(f.related_model, f"{f.name}__")
        ]
        queryset = self.get_queryset(request).select_related(*(f.name for f in related))
        try:
            value = field.to_python(object_id)
            return queryset.defer(*deferred).get(**{field.name: value})
        except (self.model.DoesNotExist, ValidationError, ValueError):
            return None

    @admin.display(description="registros relacionados")
    def related_records(self, obj):
        links = []
        for label, model, lookup in self.related_lists:
            count = capped_count(model.objects.filter(**{lookup: obj.pk}))
            query = urlencode({f"{lookup}__exact": obj.pk})
            url = f"{admin_url(model, 'changelist')}?{query}"
            links.append((url, count, label))
        return format_html_join(mark_safe(" · "), '<a href="{}">{} {}</a>', links)


class ImportedRecordAdmin(ReadOnlyAdmin):
    """A mirrored PNCP record: its data, origin, history and raw payload."""

    readonly_fields = ("pncp_link", "related_records", "history", "raw_payload")

    def get_fieldsets(self, request, obj=None):
        skip = {*BOOKKEEPING, "sync_run"}
        data = [f for f in self.model._meta.concrete_fields if f.name not in skip]
        data.sort(key=lambda f: not f.unique)  # the natural key first
        names = [f.name for f in data if not f.primary_key]
        fieldsets = [(None, {"fields": ["pncp_link", *names]})]
        if self.related_lists:
            fieldsets.append(("Registros relacionados", {"fields": ["related_records"]}))
        origin = ["sync_run", "first_seen_at", "last_seen_at", "last_changed_at", "content_hash"]
        fieldsets.append(("Origem", {"fields": origin}))
        if self.model in HISTORY_SPECS:
            fieldsets.append(("Histórico (versões anteriores)", {"fields": ["history"]}))
        payload = {"fields": ["raw_payload"], "classes": ["collapse"]}
        fieldsets.append(("Payload recebido do PNCP (JSON)", payload))
        return fieldsets

    def get_pncp_url(self, obj) -> str:
        return getattr(obj, "pncp_url", "")

    @admin.display(description="no PNCP")
    def pncp_link(self, obj):
        url = self.get_pncp_url(obj)
        if not url:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description="PNCP")
    def pncp_link_short(self, obj):
        url = self.get_pncp_url(obj)
        if not url:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">abrir ↗</a>', url)

    @admin.display(description="payload")
    def raw_payload(self, obj):
        return pretty_json(obj.raw)

    @admin.display(description="histórico")
    def history(self, obj):
        spec = HISTORY_SPECS[type(obj)]
        key = getattr(obj, spec.key_field)
        versions = list(
            RecordVersion.objects.filter(resource=spec.resource, natural_key=key).order_by(
                "-replaced_at", "-pk"
            )[: HISTORY_LIMIT + 1]
        )
        more = len(versions) > HISTORY_LIMIT
        entries, newer = [], obj.raw
        for version in versions[:HISTORY_LIMIT]:
            entries.append(
                {
                    "version": version,
                    "url": admin_url(RecordVersion, "change", version.pk),
                    "changes": payload_diff(version.payload, newer),
                }
            )
            newer = version.payload
        query = urlencode({"resource__exact": spec.resource, "natural_key__exact": key})
        all_url = f"{admin_url(RecordVersion, 'changelist')}?{query}"
        return render_to_string(
            "admin/pncp/record_history.html",
            {"entries": entries, "more": more, "all_url": all_url},
        )


# --- Records ------------------------------------------------------------------------------------


class ContratoInline(ReadOnlyInline):
    model = Contrato
    fk_name = "contratacao"
    verbose_name_plural = f"contratos (até {ReadOnlyInline.max_rows})"
    fields = (
        "numero_controle_pncp",
        "nome_razao_social_fornecedor",
        "valor_global",
        "data_assinatura",
    )


class AtaInline(ReadOnlyInline):
    model = AtaRegistroPreco
    fk_name = "contratacao"
    verbose_name_plural = f"atas de registro de preços (até {ReadOnlyInline.max_rows})"
    fields = (
        "numero_controle_pncp_ata",
        "numero_ata_registro_preco",
        "vigencia_inicio",
        "vigencia_fim",
    )


@admin.register(Contratacao)
class ContratacaoAdmin(ImportedRecordAdmin):
    list_display = (
        "numero_controle_pncp",
        "orgao",
        "uf",
        "modalidade",
        "situacao",
        "valor_estimado",
        "valor_homologado",
        "data_publicacao_pncp",
        "data_encerramento_proposta",
        "pncp_link_short",
    )
    list_select_related = ("orgao", "modalidade", "situacao")
    list_filter = (
        "modalidade",
        "situacao",
        UFFilter,
        "srp",
        ("data_publicacao_pncp", DateRangeFilter),
        ("data_atualizacao_global", DateRangeFilter),
        ("data_encerramento_proposta", DateRangeFilter),
    )
    sortable_by = (
        "numero_controle_pncp",
        "valor_estimado",
        "data_publicacao_pncp",
        "data_encerramento_proposta",
    )
    search_fields = ("numero_controle_pncp", "orgao__cnpj", "orgao__razao_social", "objeto_compra")
    key_search_fields = ("numero_controle_pncp",)
    cnpj_search_fields = ("orgao_id",)
    text_search_fields = ("objeto_compra",)
    search_help_text = SEARCH_HELP.format(texto="objeto")
    autocomplete_fields = (
        *ORGAO_FKS,
        "modalidade",
        "modo_disputa",
        "instrumento_convocatorio",
        "amparo_legal",
        "situacao",
        "orcamento_sigiloso",
    )
    raw_id_fields = ("sync_run",)
    inlines = (ContratoInline, AtaInline)
    related_lists = (
        ("contratos", Contrato, "contratacao"),
        ("atas", AtaRegistroPreco, "contratacao"),
    )

    valor_estimado = money_column("valor_total_estimado", "valor estimado")
    valor_homologado = money_column("valor_total_homologado", "valor homologado")


@admin.register(Contrato)
class ContratoAdmin(ImportedRecordAdmin):
    list_display = (
        "numero_controle_pncp",
        "orgao",
        "uf",
        "tipo_contrato",
        "fornecedor",
        "valor_global_fmt",
        "data_assinatura",
        "data_vigencia_inicio",
        "data_vigencia_fim",
        "data_publicacao_pncp",
        "pncp_link_short",
    )
    list_select_related = ("orgao", "tipo_contrato")
    list_filter = (
        "tipo_contrato",
        "categoria_processo",
        UFFilter,
        ("data_publicacao_pncp", DateRangeFilter),
        ("data_vigencia_inicio", DateRangeFilter),
        ("data_atualizacao_global", DateRangeFilter),
    )
    sortable_by = (
        "numero_controle_pncp",
        "valor_global_fmt",
        "data_vigencia_inicio",
        "data_publicacao_pncp",
    )
    search_fields = (
        "numero_controle_pncp",
        "numero_controle_pncp_compra",
        "orgao__cnpj",
        "orgao__razao_social",
        "ni_fornecedor",
        "nome_razao_social_fornecedor",
        "objeto_contrato",
    )
    key_search_fields = ("numero_controle_pncp", "numero_controle_pncp_compra")
    cnpj_search_fields = ("orgao_id", "ni_fornecedor")
    text_search_fields = ("objeto_contrato", "nome_razao_social_fornecedor")
    search_help_text = SEARCH_HELP.format(texto="objeto ou fornecedor")

    def key_lookup(self, term: str) -> Q:
        return _own_or_compra_key("numero_controle_pncp", term)

    autocomplete_fields = (
        *ORGAO_FKS,
        "tipo_contrato",
        "categoria_processo",
        "tipo_pessoa",
        "tipo_pessoa_sub_contratada",
    )
    raw_id_fields = ("contratacao", "sync_run")

    valor_global_fmt = money_column("valor_global", "valor global")

    @admin.display(description="fornecedor", ordering="nome_razao_social_fornecedor")
    def fornecedor(self, obj):
        return f"{obj.ni_fornecedor} {obj.nome_razao_social_fornecedor}".strip()


@admin.register(AtaRegistroPreco)
class AtaRegistroPrecoAdmin(ImportedRecordAdmin):
    list_display = (
        "numero_controle_pncp_ata",
        "orgao",
        "numero_ata_registro_preco",
        "cancelado",
        "vigencia_inicio",
        "vigencia_fim",
        "data_publicacao_pncp",
        "pncp_link_short",
    )
    list_select_related = ("orgao",)
    list_filter = (
        "cancelado",
        year_filter("ano_ata", "ano da ata"),
        ("data_publicacao_pncp", DateRangeFilter),
        ("vigencia_inicio", DateRangeFilter),
        ("vigencia_fim", DateRangeFilter),
        ("data_atualizacao_global", DateRangeFilter),
    )
    sortable_by = (
        "numero_controle_pncp_ata",
        "vigencia_inicio",
        "vigencia_fim",
        "data_publicacao_pncp",
    )
    search_fields = (
        "numero_controle_pncp_ata",
        "numero_controle_pncp_compra",
        "orgao__cnpj",
        "orgao__razao_social",
        "objeto_contratacao",
    )
    key_search_fields = ("numero_controle_pncp_ata", "numero_controle_pncp_compra")
    cnpj_search_fields = ("orgao_id",)
    text_search_fields = ("objeto_contratacao",)
    search_help_text = SEARCH_HELP.format(texto="objeto")

    def key_lookup(self, term: str) -> Q:
        return _own_or_compra_key("numero_controle_pncp_ata", term)

    autocomplete_fields = ORGAO_FKS
    raw_id_fields = ("contratacao", "sync_run")


class ItemPCAInline(ReadOnlyInline):
    model = ItemPCA
    max_rows = 50
    verbose_name_plural = "itens (os 50 primeiros)"
    fields = (
        "numero_item",
        "descricao_item",
        "categoria_item_pca_nome",
        "quantidade_estimada",
        "valor_total",
        "data_desejada",
    )


@admin.register(PlanoContratacao)
class PlanoContratacaoAdmin(ImportedRecordAdmin):
    list_display = (
        "id_pca_pncp",
        "orgao",
        "codigo_unidade",
        "ano_pca",
        "data_publicacao_pncp",
        "data_atualizacao_global_pca",
        "pncp_link_short",
    )
    list_select_related = ("orgao",)
    list_filter = (
        year_filter("ano_pca", "ano do PCA"),
        ("data_publicacao_pncp", DateRangeFilter),
        ("data_atualizacao_global_pca", DateRangeFilter),
    )
    sortable_by = ("id_pca_pncp", "ano_pca", "data_publicacao_pncp", "data_atualizacao_global_pca")
    search_fields = ("id_pca_pncp", "orgao__cnpj", "orgao__razao_social", "codigo_unidade")
    key_search_fields = ("id_pca_pncp",)
    cnpj_search_fields = ("orgao_id",)
    autocomplete_fields = ORGAO_FKS
    raw_id_fields = ("sync_run",)
    inlines = (ItemPCAInline,)
    related_lists = (("itens", ItemPCA, "plano"),)


@admin.register(ItemPCA)
class ItemPCAAdmin(ImportedRecordAdmin):
    """Itens have no versions of their own: a changed item is a new version of its plano."""

    list_display = (
        "plano",
        "numero_item",
        "descricao_item",
        "categoria_item_pca",
        "classificacao_superior_nome",
        "quantidade_estimada",
        "valor_total_fmt",
        "data_desejada",
    )
    list_select_related = ("plano", "categoria_item_pca")
    list_filter = (
        "categoria_item_pca",
        "classificacao_catalogo",
        year_filter("ano_pca", "ano do PCA"),
        ("data_desejada", DateRangeFilter),
    )
    sortable_by = ("numero_item", "ano_pca")
    search_fields = ("descricao_item", "codigo_item", "classificacao_superior_nome")
    key_search_fields = ("plano__id_pca_pncp",)
    code_search_fields = ("codigo_item", "classificacao_superior_codigo")
    text_search_fields = ("descricao_item",)
    search_help_text = (
        "Número de controle do PCA, CNPJ, código do item ou da classificação superior, ou "
        'palavras da descrição (acentos e plurais não importam; "frase exata", -excluir) ou '
        "do nome do órgão."
    )
    cnpj_search_fields = ("orgao_id",)
    autocomplete_fields = ("orgao", "categoria_item_pca", "classificacao_catalogo")
    raw_id_fields = ("plano", "sync_run")

    valor_total_fmt = money_column("valor_total", "valor total")

    def get_pncp_url(self, obj) -> str:
        return obj.plano.pncp_url


# --- Órgãos and unidades ------------------------------------------------------------------------


class UnidadeInline(ReadOnlyInline):
    model = UnidadeOrgao
    max_rows = 50
    verbose_name_plural = "unidades (as 50 primeiras)"
    fields = ("codigo_unidade", "nome_unidade", "municipio_nome", "uf_sigla")


@admin.register(Orgao)
class OrgaoAdmin(ReadOnlyAdmin):
    list_display = ("cnpj", "razao_social", "poder", "esfera", "first_seen_at", "updated_at")
    list_select_related = ("poder", "esfera")
    list_filter = ("poder", "esfera")
    sortable_by = ("cnpj",)
    search_fields = ("cnpj", "razao_social")
    cnpj_search_fields = ("cnpj",)
    autocomplete_fields = ("poder", "esfera")
    fields = (
        "cnpj",
        "razao_social",
        "poder",
        "esfera",
        "first_seen_at",
        "updated_at",
        "related_records",
    )
    inlines = (UnidadeInline,)
    related_lists = (
        ("contratações", Contratacao, "orgao"),
        ("contratos", Contrato, "orgao"),
        ("atas", AtaRegistroPreco, "orgao"),
        ("PCAs", PlanoContratacao, "orgao"),
    )


@admin.register(UnidadeOrgao)
class UnidadeOrgaoAdmin(ReadOnlyAdmin):
    list_display = ("codigo_unidade", "nome_unidade", "orgao", "municipio_nome", "uf_sigla")
    list_select_related = ("orgao",)
    list_filter = (UnidadeUFFilter,)
    sortable_by = ("codigo_unidade", "uf_sigla")
    search_fields = ("codigo_unidade", "nome_unidade", "municipio_nome", "orgao__razao_social")
    cnpj_search_fields = ("orgao_id",)
    autocomplete_fields = ("orgao",)


# --- Import bookkeeping -------------------------------------------------------------------------


class CheckpointInline(ReadOnlyInline):
    model = SyncCheckpoint
    max_rows = 200
    verbose_name_plural = "checkpoints (até 200)"
    fields = (
        "key",
        "window_start",
        "window_end",
        "next_page",
        "total_registros",
        "fetched",
        "status",
        "attempts",
        "error",
    )


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "resources",
        "mode",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "pages",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "retries",
    )
    list_filter = ("status", "trigger", "mode", ("created_at", DateRangeFilter))
    sortable_by = ("id", "status", "started_at")
    search_fields = ("=id", "mode", "resources", "params")
    raw_id_fields = ("started_by", "resumed_from")
    readonly_fields = ("related_records", "errors_pretty", "params_pretty")
    fieldsets = (
        (
            None,
            {"fields": ("resources", "mode", "params_pretty", "trigger", "started_by", "status")},
        ),
        ("Tempo", {"fields": ("created_at", "started_at", "finished_at", "heartbeat_at")}),
        (
            "Contagens",
            {"fields": ("pages", "created", "updated", "unchanged", "rejected", "retries")},
        ),
        ("Erros", {"fields": ("errors_pretty", "resumed_from", "related_records")}),
    )
    inlines = (CheckpointInline,)
    related_lists = (
        ("checkpoints", SyncCheckpoint, "run"),
        ("janelas de cobertura", Coverage, "run"),
        ("rejeitados", RejectedRecord, "sync_run"),
        ("versões", RecordVersion, "sync_run"),
    )

    @admin.display(description="erros")
    def errors_pretty(self, obj):
        return pretty_json(obj.errors)

    @admin.display(description="parâmetros")
    def params_pretty(self, obj):
        return pretty_json(obj.params)


@admin.register(SyncCheckpoint)
class SyncCheckpointAdmin(ReadOnlyAdmin):
    list_display = (
        "key",
        "run",
        "resource",
        "window_start",
        "window_end",
        "next_page",
        "total_registros",
        "fetched",
        "status",
        "attempts",
        "updated_at",
    )
    list_select_related = ("run",)
    list_filter = ("status", "resource", ("window_start", DateRangeFilter))
    sortable_by = ()
    search_fields = ("key", "endpoint", "error")
    raw_id_fields = ("run",)


@admin.register(Coverage)
class CoverageAdmin(ReadOnlyAdmin):
    """The coverage map: per resource × day (× modalidade), what PNCP has against what we hold."""

    list_display = (
        "resource",
        "day",
        "day_end",
        "modalidade",
        "status",
        "total_registros",
        "fetched",
        "missing",
        "checked_at",
        "run",
    )
    list_select_related = ("run",)
    list_filter = ("resource", "status", CoverageGapFilter, ("day", DateRangeFilter))
    sortable_by = ("resource", "day")
    search_fields = ("resource", "endpoint")
    raw_id_fields = ("run",)

    @admin.display(description="faltando")
    def missing(self, obj):
        if obj.total_registros is None:
            return "-"
        return max(obj.total_registros - obj.fetched, 0)


@admin.register(RecordVersion)
class RecordVersionAdmin(ReadOnlyAdmin):
    list_display = ("natural_key", "resource", "valid_from", "replaced_at", "sync_run")
    list_select_related = ("sync_run",)
    list_filter = ("resource", ("replaced_at", DateRangeFilter))
    sortable_by = ("replaced_at",)
    search_fields = ("natural_key",)
    key_search_fields = ("natural_key",)
    raw_id_fields = ("sync_run",)
    readonly_fields = ("current_record", "changes", "payload_pretty")
    fields = (
        "resource",
        "natural_key",
        "current_record",
        "valid_from",
        "replaced_at",
        "sync_run",
        "content_hash",
        "changes",
        "payload_pretty",
    )

    def _current_model(self, obj):
        spec = SPECS.get(obj.resource)
        return (spec.model, spec.key_field) if spec else (None, None)

    @admin.display(description="registro atual")
    def current_record(self, obj):
        model, key_field = self._current_model(obj)
        if model is None:
            return "-"
        pk = model.objects.filter(**{key_field: obj.natural_key}).values_list("pk", flat=True)
        if not pk:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', admin_url(model, "change", pk[0]), obj.natural_key
        )

    @admin.display(description="o que mudou na versão seguinte")
    def changes(self, obj):
        # The next version is the next row: versions are only ever appended. (Comparing
        # replaced_at would also work on PostgreSQL, not on SQLite, where the importer's raw
        # SQL stores it in another text format than Django's lookups use.)
        newer = (
            RecordVersion.objects.filter(
                resource=obj.resource, natural_key=obj.natural_key, pk__gt=obj.pk
            )
            .order_by("pk")
            .values_list("payload", flat=True)
            .first()
        )
        if newer is None:
            model, key_field = self._current_model(obj)
            if model is not None:
                newer = (
                    model.objects.filter(**{key_field: obj.natural_key})
                    .values_list("raw", flat=True)
                    .first()
                )
        if newer is None:
            return "-"
        return render_to_string(
            "admin/pncp/payload_diff.html", {"changes": payload_diff(obj.payload, newer)}
        )

    @admin.display(description="payload desta versão")
    def payload_pretty(self, obj):
        return pretty_json(obj.payload)


@admin.register(RejectedRecord)
class RejectedRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "natural_key",
        "resource",
        "short_reason",
        "created_at",
        "attempts",
        "resolved",
        "sync_run",
    )
    list_select_related = ("sync_run",)
    list_filter = ("resource", ResolvedFilter, ("created_at", DateRangeFilter))
    sortable_by = ("created_at",)
    search_fields = ("natural_key", "reason", "source")
    key_search_fields = ("natural_key",)
    raw_id_fields = ("sync_run",)
    readonly_fields = ("payload_pretty",)
    fields = (
        "resource",
        "natural_key",
        "reason",
        "source",
        "sync_run",
        "created_at",
        "attempts",
        "resolved_at",
        "payload_pretty",
    )
    actions = ("retry",)

    @admin.display(description="motivo")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 120 else obj.reason[:119] + "…"

    @admin.display(description="resolvido", boolean=True, ordering="resolved_at")
    def resolved(self, obj):
        return obj.resolved_at is not None

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return pretty_json(obj.payload)

    def has_retry_permission(self, request):
        return request.user.has_perm("pncp.change_rejectedrecord")

    @admin.action(description="Reimportar os registros selecionados", permissions=["retry"])
    def retry(self, request, queryset):
        resolved = failed = 0
        # defer(None): the list's queryset leaves the payloads out, the retry needs them.
        for rejected in queryset.filter(resolved_at__isnull=True).defer(None):
            if retry_rejected(rejected):
                resolved += 1
            else:
                failed += 1
        if resolved:
            self.message_user(request, f"{resolved} registro(s) reimportado(s) e resolvido(s).")
        if failed:
            self.message_user(
                request,
                f"{failed} registro(s) rejeitado(s) de novo; o motivo atual está na lista.",
                level=messages.WARNING,
            )


def retry_context(rejected: RejectedRecord) -> dict | None:
    """The parent compra of a quarantined item or resultado (their records do not name it).

    Taken from the natural key (``<compra>#<item>[#<resultado>]``) or, when the key could not
    be read, from the source (``<itens checkpoint key>|<compra> p<page>``); None when neither
    says, or for other resources. A compra no longer stored leaves the ids empty, and the
    record is quarantined again with that reason.
    """
    if rejected.resource not in ("itens", "resultados"):
        return None
    compra = ""
    if "#" in rejected.natural_key:
        compra = rejected.natural_key.split("#", 1)[0]
    elif "|" in rejected.source:
        compra = rejected.source.split("|", 1)[1].rsplit(" p", 1)[0]
    if not compra:
        return None
    contratacao_id = (
        Contratacao.objects.filter(numero_controle_pncp=compra).values_list("id", flat=True).first()
    )
    if rejected.resource == "itens":
        return {"compra": compra, "contratacao_id": contratacao_id}
    item_ids = dict(
        ItemContratacao.objects.filter(contratacao_id=contratacao_id).values_list(
            "numero_item", "id"
        )
    )
    return {"compra": compra, "item_ids": item_ids}


def retry_rejected(rejected: RejectedRecord) -> bool:
    """Re-ingest one quarantined record; True (and ``resolved_at`` set) when it is now stored.

    One row per quarantined record, however many times it is retried: when the record is
    rejected again, the ingest's new RejectedRecord is rolled back with a savepoint (it is the
    same payload, only the reason may have changed) and the original row gets ``attempts + 1``
    and the latest reason. A savepoint rather than deleting the duplicate afterwards, so the
    retry is atomic and can never remove a row a concurrent sync wrote. A retry that stores
    nothing and rejects nothing (cannot happen with one record, but guards a future change in
    ``Ingester``) counts as a failure.
    """
    if rejected.resource not in SPECS:
        RejectedRecord.objects.filter(pk=rejected.pk).update(attempts=F("attempts") + 1)
        return False
    with transaction.atomic():
        last_pk = RejectedRecord.objects.order_by("-pk").values_list("pk", flat=True).first()
        savepoint = transaction.savepoint()
        result = Ingester().ingest(
            rejected.resource,
            [rejected.payload],
            source=rejected.source,
            context=retry_context(rejected),
        )
        if result.rejected == 0 and result.stored == 1:
            transaction.savepoint_commit(savepoint)
            rejected.resolved_at = timezone.now()
            rejected.save(update_fields=["resolved_at"])
            return True
        again = (
            RejectedRecord.objects.filter(
                pk__gt=last_pk or 0, resource=rejected.resource, sync_run__isnull=True
            )
            .order_by("-pk")
            .values_list("reason", flat=True)
            .first()
        )
        transaction.savepoint_rollback(savepoint)
        RejectedRecord.objects.filter(pk=rejected.pk).update(
            attempts=F("attempts") + 1, reason=again or rejected.reason
        )
    return False


# --- PNCP contract checks (``sync_pncp check``) ------------------------------------------------

from pncp.models import ContractCheck  # noqa: E402  (kept with its admin)


@admin.register(ContractCheck)
class ContractCheckAdmin(ReadOnlyAdmin):
    """Each check's findings, read-only: what drifted, what was expected, what PNCP answered."""

    list_display = ("created_at", "status", "window", "endpoints", "drift_count", "trigger")
    list_filter = ("status",)
    search_fields = ("status", "trigger")
    ordering = ("-created_at",)
    fields = ("created_at", "status", "window", "endpoints", "trigger", "findings_table")
    readonly_fields = fields

    @admin.display(description="drift findings")
    def drift_count(self, obj):
        return sum(1 for f in obj.findings if f.get("drift"))

    @admin.display(description="findings")
    def findings_table(self, obj):
        rows = sorted(obj.findings, key=lambda f: (not f.get("drift"), not f.get("error")))
        return format_html(
            "<table><tr><th>endpoint</th><th>check</th><th>expected</th><th>observed</th>"
            "<th>result</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        f.get("endpoint"),
                        f.get("check"),
                        f.get("expected"),
                        f.get("observed"),
                        "DRIFT" if f.get("drift") else "ERROR" if f.get("error") else "ok",
                    )
                    for f in rows
                ),
            ),
        )


# --- Itens and resultados of contratações, fornecedores, locks ------------------------------------

from pncp.models import Fornecedor, ItemContratacao, ResultadoItem, SyncLock  # noqa: E402


class ResultadoInline(ReadOnlyInline):
    model = ResultadoItem
    fk_name = "item"
    verbose_name_plural = f"resultados (até {ReadOnlyInline.max_rows})"
    fields = (
        "sequencial_resultado",
        "ni_fornecedor",
        "nome_razao_social_fornecedor",
        "quantidade_homologada",
        "valor_unitario_homologado",
        "valor_total_homologado",
    )


@admin.register(ItemContratacao)
class ItemContratacaoAdmin(ImportedRecordAdmin):
    list_display = (
        "chave",
        "numero_item",
        "descricao",
        "situacao",
        "quantidade",
        "valor_unitario_fmt",
        "valor_total_fmt",
        "tem_resultado",
    )
    list_select_related = ("situacao",)
    list_filter = ("situacao", "criterio_julgamento", "tipo_beneficio", "tem_resultado")
    sortable_by = ("numero_item",)
    search_fields = ("chave", "numero_controle_pncp_compra", "descricao")
    key_search_fields = ("numero_controle_pncp_compra",)
    autocomplete_fields = ("situacao", "criterio_julgamento", "tipo_beneficio")
    raw_id_fields = ("contratacao", "sync_run")
    inlines = (ResultadoInline,)
    related_lists = (("resultados", ResultadoItem, "item"),)

    valor_unitario_fmt = money_column("valor_unitario_estimado", "valor unitário estimado")
    valor_total_fmt = money_column("valor_total", "valor total")

    def get_pncp_url(self, obj) -> str:
        return obj.contratacao.pncp_url


@admin.register(ResultadoItem)
class ResultadoItemAdmin(ImportedRecordAdmin):
    list_display = (
        "chave",
        "ni_fornecedor",
        "nome_razao_social_fornecedor",
        "situacao",
        "quantidade_homologada",
        "valor_unitario_fmt",
        "valor_total_fmt",
    )
    list_select_related = ("situacao",)
    list_filter = ("situacao", "porte_fornecedor", "tipo_pessoa")
    sortable_by = ("sequencial_resultado",)
    search_fields = ("chave", "numero_controle_pncp_compra", "nome_razao_social_fornecedor")
    key_search_fields = ("numero_controle_pncp_compra",)
    cnpj_search_fields = ("ni_fornecedor",)
    autocomplete_fields = ("situacao", "porte_fornecedor", "tipo_pessoa", "natureza_juridica")
    raw_id_fields = ("item", "fornecedor", "sync_run")

    valor_unitario_fmt = money_column("valor_unitario_homologado", "valor unitário homologado")
    valor_total_fmt = money_column("valor_total_homologado", "valor total homologado")

    def get_pncp_url(self, obj) -> str:
        return obj.item.contratacao.pncp_url


@admin.register(Fornecedor)
class FornecedorAdmin(ReadOnlyAdmin):
    list_display = ("ni_fornecedor", "nome_razao_social", "tipo_pessoa", "porte", "updated_at")
    list_select_related = ("tipo_pessoa", "porte")
    list_filter = ("tipo_pessoa", "porte")
    sortable_by = ("ni_fornecedor",)
    search_fields = ("ni_fornecedor", "nome_razao_social")
    autocomplete_fields = ("tipo_pessoa", "porte", "natureza_juridica")
    related_lists = (("resultados", ResultadoItem, "fornecedor"),)


@admin.register(SyncLock)
class SyncLockAdmin(ReadOnlyAdmin):
    """Which resource is being synced by which run; a stale lock expires by itself."""

    list_display = ("resource", "run", "acquired_at", "expires_at")
    search_fields = ("resource",)
    list_filter = ("resource",)
    raw_id_fields = ("run",)

    def has_delete_permission(self, request, obj=None):
        # Staff may free a lock whose run is known dead, as an operator would.
        return request.user.is_superuser
