"""The mirrored PNCP records and the bookkeeping of how they got here.

Natural keys are PNCP's own (``numeroControlePNCP``, ``numeroControlePNCPAta``,
``idPcaPncp`` + ``numeroItem``). Every imported row keeps the raw payload PNCP sent, a
content hash (so unchanged records are skipped without rewriting them), when we first saw
it, last saw it and last saw it change, and the sync run that last touched it. Domain codes
are foreign keys to ``domain_tables``. Órgãos (by CNPJ) and unidades are normalized; UF,
município and unidade codes are also kept on the records themselves because they are the
API's hottest filters and a join per filter would not stay fast at millions of rows.
"""

import orjson
from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import models

from domain_tables import models as dt
from pncp.indexes import PostgresGinIndex

PNCP_APP_URL = "https://pncp.gov.br/app"
MONEY = {"max_digits": 22, "decimal_places": 4, "null": True, "blank": True}
# Text search configuration of the API's full-text indexes: Portuguese stemming after
# unaccent (created by migration ``api_search_indexes``; ``pncp.api.selectors`` queries with
# the very same expression, so PostgreSQL uses the index).
FTS_CONFIG = "portuguese_unaccent"


def _fts_index(column: str, name: str) -> PostgresGinIndex:
    """GIN index of the API's text search on ``column`` (built on PostgreSQL only)."""
    return PostgresGinIndex(SearchVector(column, config=FTS_CONFIG), name=name)


class JSONField(models.JSONField):
    """Django's JSONField, read back with orjson (3-4x ``json.loads``).

    Every page of the API reads ``fontesOrcamentarias`` per record and the admin's history
    reads whole payloads. What orjson refuses (integers beyond 64 bits; text that is not
    JSON, which Django returns as is) takes Django's own path, so values are the same.
    """

    def from_db_value(self, value, expression, connection):
        if self.decoder is None and isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return super().from_db_value(value, expression, connection)


def _fk(model, related_name="+", **kwargs):
    """A foreign key to a domain table: PROTECT, because codes are never deleted under data.

    No database constraint: the importer creates every code before the rows that use it
    (unknown codes are added, flagged), codes are never deleted (PROTECT is enforced by
    Django, and the admin forbids deleting codes), and a deferred constraint check per code
    column per row was a sixth of an import's time (BENCHMARKS.md).
    """
    kwargs.setdefault("db_constraint", False)
    return models.ForeignKey(
        model, on_delete=models.PROTECT, null=True, blank=True, related_name=related_name, **kwargs
    )


# --- Import bookkeeping ---


class SyncRun(models.Model):
    """One run of the importer, whoever started it (CLI, beat or API)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Partial (some windows incomplete)"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    class Trigger(models.TextChoices):
        CLI = "cli", "Command line"
        BEAT = "beat", "Scheduled (beat)"
        API = "api", "API"
        TEST = "test", "Test"

    resources = JSONField(default=list)
    mode = models.CharField(max_length=20, default="full")
    params = JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.CLI)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    errors = JSONField(default=list, blank=True)
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumed_by"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run #{self.pk} {','.join(self.resources)} {self.status}"


class SyncLock(models.Model):
    """One row per resource being synced: two runs of one resource never overlap.

    Lives in the database (not a cache) so it holds across processes on any backend, CLI
    and Celery alike. A lock whose run stopped beating (killed worker) expires on its own.
    """

    resource = models.CharField(max_length=20, primary_key=True)
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="locks")
    acquired_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.resource} locked by run #{self.run_id} until {self.expires_at}"


class PageFingerprint(models.Model):
    """A page of records imported before, known by the hash of its bytes.

    ``entries`` holds what its records' keys and content hashes were (JSON ``[[key, hash],
    …]`` in page order). Re-importing the same bytes then needs no decoding: the stored
    hashes of those keys are read and, when every one matches, the page is unchanged. Any
    difference (a record edited or removed since) makes the importer decode the page as if
    it had never been seen. Only clean pages get one: no record refused before parsing (no
    key, not an object), no key twice. A record quarantined later is not stored, so its page
    is always decoded again.
    """

    digest = models.CharField(max_length=32, primary_key=True)
    resource = models.CharField(max_length=20)
    total_registros = models.PositiveIntegerField(null=True, blank=True)
    entries = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.resource} page {self.digest}"


class SyncCheckpoint(models.Model):
    """One window of one endpoint within a run: how far it got, so a resume redoes ≤ 1 page."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done (records match totalRegistros)"
        INCOMPLETE = "incomplete", "Incomplete (fewer records than totalRegistros)"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="checkpoints")
    resource = models.CharField(max_length=20)
    endpoint = models.CharField(max_length=80)
    key = models.CharField(max_length=300)
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)
    params = JSONField(default=dict, blank=True)
    page_size = models.PositiveIntegerField(default=50)
    next_page = models.PositiveIntegerField(default=1)
    total_registros = models.IntegerField(null=True, blank=True)
    total_paginas = models.IntegerField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "window_start", "key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="checkpoint_run_key")]

    def __str__(self) -> str:
        return f"{self.key} page {self.next_page} {self.status}"


class Coverage(models.Model):
    """What PNCP says exists (``totalRegistros``) against what we fetched, per window.

    Windows are single days for the date-driven endpoints (× modalidade for contratações), so
    this is the coverage map per resource × day: anyone can see that nothing was silently
    truncated. ``modalidade`` is 0 where the endpoint takes none.
    """

    class Status(models.TextChoices):
        ABSENT = "absent", "Absent (never fetched)"
        PARTIAL = "partial", "Partial"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    resource = models.CharField(max_length=20)
    endpoint = models.CharField(max_length=80)
    day = models.DateField()
    day_end = models.DateField()
    modalidade = models.PositiveSmallIntegerField(default=0)
    total_registros = models.IntegerField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    checked_at = models.DateTimeField()
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name_plural = "coverage"
        ordering = ["-day", "resource", "modalidade"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "day", "day_end", "modalidade"], name="coverage_window"
            )
        ]
        indexes = [models.Index(fields=["resource", "day"], name="coverage_resource_day")]

    def __str__(self) -> str:
        return f"{self.resource} {self.day} m{self.modalidade}: {self.status}"


class ImportedRecord(models.Model):
    raw = JSONField("raw payload", help_text="The record exactly as PNCP sent it.")
    content_hash = models.CharField(max_length=32)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_changed_at = models.DateTimeField()
    # Not indexed: nothing looks records up by run, and on tables of millions every index is
    # paid on each import (see BENCHMARKS.md). Deleting a SyncRun is not offered.
    sync_run = models.ForeignKey(
        SyncRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,  # emulated by Django: no database constraint to check
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        abstract = True


class RecordVersion(models.Model):
    """A previous payload of a record that changed: the audit trail between imports."""

    resource = models.CharField(max_length=20)
    natural_key = models.CharField(max_length=80)
    payload = JSONField()
    content_hash = models.CharField(max_length=32)
    valid_from = models.DateTimeField(help_text="When this version was first seen.")
    replaced_at = models.DateTimeField(help_text="When a newer payload replaced it.")
    sync_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-replaced_at"]
        indexes = [
            models.Index(fields=["resource", "natural_key"]),
            # the admin's list, newest first (with the id as tie-breaker): no sort of the table
            models.Index(fields=["replaced_at", "id"], name="recordversion_replaced_id"),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.natural_key} until {self.replaced_at:%Y-%m-%d %H:%M}"


class RejectedRecord(models.Model):
    """Quarantine: a record that could not be parsed, kept with its reason and payload."""

    resource = models.CharField(max_length=20, db_index=True)
    natural_key = models.CharField(max_length=80, blank=True, default="", db_index=True)
    reason = models.TextField()
    payload = JSONField()
    source = models.CharField(max_length=500, blank=True, default="")
    sync_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.resource} {self.natural_key or '?'}: {self.reason[:60]}"


# --- Órgãos and unidades ---


class Orgao(models.Model):
    cnpj = models.CharField(max_length=14, primary_key=True)
    razao_social = models.CharField(max_length=255, blank=True, default="")
    poder = _fk(dt.Poder)
    esfera = _fk(dt.Esfera)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "órgão/entidade"
        verbose_name_plural = "órgãos/entidades"
        ordering = ["cnpj"]

    def __str__(self) -> str:
        return f"{self.cnpj} {self.razao_social}"


class UnidadeOrgao(models.Model):
    orgao = models.ForeignKey(Orgao, on_delete=models.PROTECT, related_name="unidades")
    codigo_unidade = models.CharField(max_length=50)
    nome_unidade = models.CharField(max_length=255, blank=True, default="")
    municipio_nome = models.CharField(max_length=120, null=True, blank=True)
    codigo_ibge = models.CharField(max_length=7, null=True, blank=True, db_index=True)
    uf_sigla = models.CharField(max_length=2, null=True, blank=True, db_index=True)
    uf_nome = models.CharField(max_length=60, null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "unidade"
        ordering = ["orgao_id", "codigo_unidade"]
        constraints = [
            models.UniqueConstraint(fields=["orgao", "codigo_unidade"], name="unidade_orgao_codigo")
        ]

    def __str__(self) -> str:
        return f"{self.codigo_unidade} {self.nome_unidade}"


class OrgaoUnidadeMixin(models.Model):
    """Owner órgão/unidade, the sub-rogated ones, and the denormalized filter columns."""

    orgao = models.ForeignKey(Orgao, on_delete=models.PROTECT, related_name="+")
    unidade = models.ForeignKey(
        UnidadeOrgao, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Sub-rogados are kept and shown, not filtered on: no index to maintain on every import.
    orgao_sub_rogado = models.ForeignKey(
        Orgao, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    unidade_sub_rogada = models.ForeignKey(
        UnidadeOrgao,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    codigo_unidade = models.CharField(max_length=50, blank=True, default="")

    class Meta:
        abstract = True


class LocalidadeMixin(models.Model):
    uf = models.CharField("UF", max_length=2, null=True, blank=True)
    codigo_municipio_ibge = models.CharField(max_length=7, null=True, blank=True)

    class Meta:
        abstract = True


# --- PCA ---


class PlanoContratacao(OrgaoUnidadeMixin, ImportedRecord):
    """A Plano de Contratações Anual: one per unidade and year, with its itens."""

    id_pca_pncp = models.CharField("idPcaPncp", max_length=50, unique=True)
    ano_pca = models.PositiveSmallIntegerField(db_index=True)
    id_usuario = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="Known when fetched via /pca/usuario."
    )
    data_publicacao_pncp = models.DateTimeField(null=True, blank=True, db_index=True)
    data_atualizacao_global_pca = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "plano de contratações (PCA)"
        verbose_name_plural = "planos de contratações (PCA)"
        ordering = ["-data_publicacao_pncp"]
        indexes = [models.Index(fields=["codigo_unidade"], name="pca_codigo_unidade")]

    def __str__(self) -> str:
        return self.id_pca_pncp

    @property
    def pncp_url(self) -> str:
        cnpj, _, rest = self.id_pca_pncp.partition("-0-")
        seq, _, ano = rest.partition("/")
        return f"{PNCP_APP_URL}/pca/{cnpj}/{ano}/{int(seq)}" if seq.isdigit() else ""


class ItemPCA(ImportedRecord):
    plano = models.ForeignKey(PlanoContratacao, on_delete=models.CASCADE, related_name="itens")
    numero_item = models.PositiveIntegerField()
    # Denormalized from the plano: the API filters itens by these.
    ano_pca = models.PositiveSmallIntegerField(db_index=True)
    orgao = models.ForeignKey(Orgao, on_delete=models.PROTECT, related_name="+")
    codigo_unidade = models.CharField(max_length=50, blank=True, default="")
    categoria_item_pca = _fk(dt.CategoriaItemPca)
    classificacao_catalogo = _fk(dt.ClassificacaoCatalogo)
    nome_classificacao_catalogo = models.CharField(max_length=100, null=True, blank=True)
    categoria_item_pca_nome = models.CharField(max_length=100, null=True, blank=True)
    classificacao_superior_codigo = models.CharField(max_length=50, null=True, blank=True)
    classificacao_superior_nome = models.CharField(max_length=255, null=True, blank=True)
    codigo_item = models.CharField(max_length=100, null=True, blank=True)
    descricao_item = models.TextField(null=True, blank=True)
    pdm_codigo = models.CharField(max_length=50, null=True, blank=True)
    pdm_descricao = models.TextField(null=True, blank=True)
    unidade_fornecimento = models.CharField(max_length=255, null=True, blank=True)
    unidade_requisitante = models.CharField(max_length=255, null=True, blank=True)
    grupo_contratacao_codigo = models.CharField(max_length=100, null=True, blank=True)
    grupo_contratacao_nome = models.CharField(max_length=255, null=True, blank=True)
    quantidade_estimada = models.DecimalField(**MONEY)
    valor_unitario = models.DecimalField(**MONEY)
    valor_total = models.DecimalField(**MONEY)
    valor_orcamento_exercicio = models.DecimalField(**MONEY)
    data_desejada = models.DateField(null=True, blank=True)
    data_inclusao = models.DateTimeField(null=True, blank=True)
    data_atualizacao = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "item do PCA"
        verbose_name_plural = "itens do PCA"
        ordering = ["plano_id", "numero_item"]
        constraints = [
            models.UniqueConstraint(fields=["plano", "numero_item"], name="itempca_plano_numero")
        ]
        indexes = [
            # API: each narrowing filter of /pca/ with the year, in the page order (plano,
            # item), so a page is read in order within the filter, never by walking all years.
            models.Index(
                fields=["classificacao_superior_codigo", "ano_pca", "plano", "numero_item"],
                name="itempca_csup_ano_ordem",
            ),
            models.Index(
                fields=["orgao", "ano_pca", "plano", "numero_item"], name="itempca_orgao_ano_ordem"
            ),
            models.Index(
                fields=["codigo_unidade", "ano_pca", "plano", "numero_item"],
                name="itempca_unidade_ano_ordem",
            ),
            _fts_index("descricao_item", "itempca_descricao_fts"),
        ]

    def __str__(self) -> str:
        return f"{self.plano_id} item {self.numero_item}"


# --- Contratação ---


class Contratacao(OrgaoUnidadeMixin, LocalidadeMixin, ImportedRecord):
    """A contratação (compra): edital, aviso de contratação direta, etc."""

    numero_controle_pncp = models.CharField("numeroControlePNCP", max_length=50, unique=True)
    ano_compra = models.PositiveSmallIntegerField(db_index=True)
    sequencial_compra = models.PositiveIntegerField()
    numero_compra = models.CharField(max_length=100, blank=True, default="")
    processo = models.CharField(max_length=255, blank=True, default="")
    objeto_compra = models.TextField(blank=True, default="")
    informacao_complementar = models.TextField(null=True, blank=True)
    srp = models.BooleanField(null=True, blank=True)
    # modalidade and situação are filtered through (code, data_publicacao_pncp) indexes below
    modalidade = _fk(dt.ModalidadeContratacao, db_index=False)
    modo_disputa = _fk(dt.ModoDisputa)
    instrumento_convocatorio = _fk(dt.InstrumentoConvocatorio)
    amparo_legal = _fk(dt.AmparoLegal)
    situacao = _fk(dt.SituacaoContratacao, db_index=False)
    orcamento_sigiloso = _fk(dt.OrcamentoSigiloso, db_index=False)
    indicador_orcamento_sigiloso = models.CharField(max_length=40, null=True, blank=True)
    existe_resultado = models.BooleanField(null=True, blank=True)
    valor_total_estimado = models.DecimalField(**MONEY)
    valor_total_homologado = models.DecimalField(**MONEY)
    data_inclusao = models.DateTimeField(null=True, blank=True)
    data_publicacao_pncp = models.DateTimeField(null=True, blank=True)
    data_atualizacao = models.DateTimeField(null=True, blank=True)
    data_atualizacao_global = models.DateTimeField(null=True, blank=True)
    data_abertura_proposta = models.DateTimeField(null=True, blank=True)
    data_encerramento_proposta = models.DateTimeField(null=True, blank=True)
    link_sistema_origem = models.TextField(null=True, blank=True)
    link_processo_eletronico = models.TextField(null=True, blank=True)
    justificativa_presencial = models.TextField(null=True, blank=True)
    usuario_nome = models.CharField(max_length=255, null=True, blank=True)
    id_usuario = models.BigIntegerField(null=True, blank=True, db_index=True)
    fontes_orcamentarias = JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "contratação"
        verbose_name_plural = "contratações"
        ordering = ["-data_publicacao_pncp"]
        indexes = [
            # API pages: the id is in the index so that the keys of a deep page (window +
            # order by date, id) are read by an index-only scan (see PNCPPagination).
            models.Index(fields=["data_publicacao_pncp", "id"], name="contratacao_pub_id"),
            models.Index(fields=["data_atualizacao_global"], name="contratacao_atu"),
            models.Index(fields=["data_encerramento_proposta"], name="contratacao_enc"),
            models.Index(
                fields=["modalidade", "data_publicacao_pncp", "id"], name="contratacao_mod_pub_id"
            ),
            models.Index(fields=["situacao", "data_publicacao_pncp"], name="contratacao_sit_pub"),
            models.Index(fields=["uf", "data_publicacao_pncp"], name="contratacao_uf_pub"),
            models.Index(fields=["codigo_municipio_ibge"], name="contratacao_ibge"),
            models.Index(fields=["codigo_unidade"], name="contratacao_codigo_unidade"),
            models.Index(fields=["valor_total_estimado"], name="contratacao_valor"),
            _fts_index("objeto_compra", "contratacao_objeto_fts"),
        ]

    def __str__(self) -> str:
        return self.numero_controle_pncp

    @property
    def pncp_url(self) -> str:
        return f"{PNCP_APP_URL}/editais/{self.orgao_id}/{self.ano_compra}/{self.sequencial_compra}"


# --- Ata de registro de preços ---


class AtaRegistroPreco(OrgaoUnidadeMixin, ImportedRecord):
    numero_controle_pncp_ata = models.CharField("numeroControlePNCPAta", max_length=60, unique=True)
    numero_controle_pncp_compra = models.CharField(
        "numeroControlePNCPCompra", max_length=50, blank=True, default=""
    )
    contratacao = models.ForeignKey(
        Contratacao, null=True, blank=True, on_delete=models.SET_NULL, related_name="atas"
    )
    numero_ata_registro_preco = models.CharField(max_length=100, blank=True, default="")
    ano_ata = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    cancelado = models.BooleanField(null=True, blank=True)
    data_cancelamento = models.DateTimeField(null=True, blank=True)
    data_assinatura = models.DateField(null=True, blank=True)
    vigencia_inicio = models.DateField(null=True, blank=True)
    vigencia_fim = models.DateField(null=True, blank=True)
    data_publicacao_pncp = models.DateTimeField(null=True, blank=True)
    data_inclusao = models.DateTimeField(null=True, blank=True)
    data_atualizacao = models.DateTimeField(null=True, blank=True)
    data_atualizacao_global = models.DateTimeField(null=True, blank=True)
    objeto_contratacao = models.TextField(blank=True, default="")
    usuario = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        verbose_name = "ata de registro de preços"
        verbose_name_plural = "atas de registro de preços"
        ordering = ["-data_publicacao_pncp"]
        indexes = [
            models.Index(fields=["vigencia_fim"], name="ata_vigencia_fim"),
            models.Index(fields=["data_atualizacao_global"], name="ata_atu"),
            models.Index(fields=["data_publicacao_pncp"], name="ata_pub"),
            models.Index(fields=["codigo_unidade"], name="ata_codigo_unidade"),
            # Only rows still waiting for their contratação: linking a page of contratações
            # looks here, and a linked ata leaves the index.
            models.Index(
                fields=["numero_controle_pncp_compra"],
                name="ata_unlinked_compra",
                condition=models.Q(contratacao__isnull=True),
            ),
            # API: counting atas in force in a window (a third of the table or more) with
            # ``cancelado`` is an index-only scan of this narrow index, not a table scan.
            models.Index(
                fields=["vigencia_inicio", "vigencia_fim", "cancelado"],
                name="ata_vigencia_cancelado",
            ),
            _fts_index("objeto_contratacao", "ata_objeto_fts"),
        ]

    def __str__(self) -> str:
        return self.numero_controle_pncp_ata

    @property
    def pncp_url(self) -> str:
        # 92324706000127-1-000203/2023-000002 -> /atas/92324706000127/2023/203/2
        compra, _, seq_ata = self.numero_controle_pncp_ata.rpartition("-")
        cnpj, _, rest = compra.partition("-1-")
        seq, _, ano = rest.partition("/")
        if not (seq.isdigit() and seq_ata.isdigit()):
            return ""
        return f"{PNCP_APP_URL}/atas/{cnpj}/{ano}/{int(seq)}/{int(seq_ata)}"


# --- Contrato ---


class Contrato(OrgaoUnidadeMixin, LocalidadeMixin, ImportedRecord):
    numero_controle_pncp = models.CharField("numeroControlePNCP", max_length=50, unique=True)
    numero_controle_pncp_compra = models.CharField(
        "numeroControlePncpCompra", max_length=50, null=True, blank=True
    )
    contratacao = models.ForeignKey(
        Contratacao, null=True, blank=True, on_delete=models.SET_NULL, related_name="contratos"
    )
    ano_contrato = models.PositiveSmallIntegerField(db_index=True)
    sequencial_contrato = models.PositiveIntegerField()
    numero_contrato_empenho = models.CharField(max_length=100, blank=True, default="")
    processo = models.CharField(max_length=255, blank=True, default="")
    tipo_contrato = _fk(dt.TipoContrato, db_index=False)  # via contrato_tipo_pub
    categoria_processo = _fk(dt.CategoriaProcesso)
    receita = models.BooleanField(null=True, blank=True)
    objeto_contrato = models.TextField(blank=True, default="")
    informacao_complementar = models.TextField(null=True, blank=True)
    codigo_pais_fornecedor = models.CharField(max_length=3, null=True, blank=True)
    tipo_pessoa = _fk(dt.TipoPessoa)
    ni_fornecedor = models.CharField(max_length=30, blank=True, default="", db_index=True)
    nome_razao_social_fornecedor = models.CharField(max_length=255, blank=True, default="")
    tipo_pessoa_sub_contratada = _fk(dt.TipoPessoa, db_index=False)
    ni_fornecedor_sub_contratado = models.CharField(max_length=30, null=True, blank=True)
    nome_fornecedor_sub_contratado = models.CharField(max_length=255, null=True, blank=True)
    valor_inicial = models.DecimalField(**MONEY)
    numero_parcelas = models.IntegerField(null=True, blank=True)
    valor_parcela = models.DecimalField(**MONEY)
    valor_global = models.DecimalField(**MONEY)
    valor_acumulado = models.DecimalField(**MONEY)
    data_assinatura = models.DateField(null=True, blank=True)
    data_vigencia_inicio = models.DateField(null=True, blank=True)
    data_vigencia_fim = models.DateField(null=True, blank=True)
    numero_retificacao = models.IntegerField(null=True, blank=True)
    usuario_nome = models.CharField(max_length=255, null=True, blank=True)
    id_usuario = models.BigIntegerField(null=True, blank=True, db_index=True)
    data_publicacao_pncp = models.DateTimeField(null=True, blank=True)
    data_atualizacao = models.DateTimeField(null=True, blank=True)
    data_atualizacao_global = models.DateTimeField(null=True, blank=True)
    identificador_cipi = models.CharField(max_length=100, null=True, blank=True)
    url_cipi = models.TextField(null=True, blank=True)

    class Meta:
        verbose_name = "contrato"
        ordering = ["-data_publicacao_pncp"]
        indexes = [
            models.Index(fields=["data_publicacao_pncp"], name="contrato_pub"),
            models.Index(fields=["data_atualizacao_global"], name="contrato_atu"),
            models.Index(fields=["data_vigencia_inicio", "data_vigencia_fim"], name="contrato_vig"),
            models.Index(
                fields=["tipo_contrato", "data_publicacao_pncp"], name="contrato_tipo_pub"
            ),
            models.Index(fields=["uf", "data_publicacao_pncp"], name="contrato_uf_pub"),
            models.Index(fields=["codigo_municipio_ibge"], name="contrato_ibge"),
            models.Index(fields=["codigo_unidade"], name="contrato_codigo_unidade"),
            models.Index(
                fields=["numero_controle_pncp_compra"],
                name="contrato_unlinked_compra",
                condition=models.Q(contratacao__isnull=True),
            ),
            models.Index(fields=["valor_global"], name="contrato_valor"),
            _fts_index("objeto_contrato", "contrato_objeto_fts"),
            _fts_index("nome_razao_social_fornecedor", "contrato_fornecedor_fts"),  # admin
        ]

    def __str__(self) -> str:
        return self.numero_controle_pncp

    @property
    def pncp_url(self) -> str:
        return (
            f"{PNCP_APP_URL}/contratos/{self.orgao_id}/{self.ano_contrato}/"
            f"{self.sequencial_contrato}"
        )


# --- Itens and resultados of a contratação (PNCP's main API) ---


class Fornecedor(models.Model):
    """A supplier that won an item, normalized by ``niFornecedor`` like órgãos by CNPJ.

    Holds the latest name, tipo de pessoa, porte and natureza jurídica PNCP sent for it;
    each resultado keeps what PNCP said at the time.
    """

    ni_fornecedor = models.CharField("niFornecedor", max_length=30, primary_key=True)
    tipo_pessoa = _fk(dt.TipoPessoa)
    nome_razao_social = models.CharField(max_length=255, blank=True, default="")
    porte = _fk(dt.PorteEmpresa)
    natureza_juridica = _fk(dt.NaturezaJuridica)
    codigo_pais = models.CharField(max_length=3, null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "fornecedor"
        verbose_name_plural = "fornecedores"
        ordering = ["ni_fornecedor"]

    def __str__(self) -> str:
        return f"{self.ni_fornecedor} {self.nome_razao_social}"


class ItemContratacao(ImportedRecord):
    """An item of a contratação (``/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/itens``).

    ``chave`` (``<numeroControlePNCP>#<numeroItem>``) is the natural key the importer, the
    history and the quarantine use; it is unique together with (contratação, numeroItem).
    """

    chave = models.CharField(max_length=80, unique=True)
    contratacao = models.ForeignKey(Contratacao, on_delete=models.CASCADE, related_name="itens")
    numero_controle_pncp_compra = models.CharField(max_length=50, db_index=True)
    numero_item = models.PositiveIntegerField()
    descricao = models.TextField(null=True, blank=True)
    material_ou_servico = models.CharField(max_length=1, null=True, blank=True)
    material_ou_servico_nome = models.CharField(max_length=50, null=True, blank=True)
    valor_unitario_estimado = models.DecimalField(**MONEY)
    valor_total = models.DecimalField(**MONEY)
    quantidade = models.DecimalField(**MONEY)
    unidade_medida = models.CharField(max_length=255, null=True, blank=True)
    orcamento_sigiloso = models.BooleanField(null=True, blank=True)
    item_categoria_codigo = models.IntegerField("itemCategoriaId", null=True, blank=True)
    item_categoria_nome = models.CharField(max_length=255, null=True, blank=True)
    patrimonio = models.CharField(max_length=255, null=True, blank=True)
    codigo_registro_imobiliario = models.CharField(max_length=255, null=True, blank=True)
    criterio_julgamento = _fk(dt.CriterioJulgamento)
    situacao = _fk(dt.SituacaoItemContratacao)
    tipo_beneficio = _fk(dt.TipoBeneficio)
    incentivo_produtivo_basico = models.BooleanField(null=True, blank=True)
    data_inclusao = models.DateTimeField(null=True, blank=True)
    data_atualizacao = models.DateTimeField(null=True, blank=True)
    tem_resultado = models.BooleanField(null=True, blank=True)
    imagem = models.IntegerField(null=True, blank=True)
    aplicabilidade_margem_preferencia_normal = models.BooleanField(null=True, blank=True)
    aplicabilidade_margem_preferencia_adicional = models.BooleanField(null=True, blank=True)
    percentual_margem_preferencia_normal = models.DecimalField(**MONEY)
    percentual_margem_preferencia_adicional = models.DecimalField(**MONEY)
    ncm_nbs_codigo = models.CharField(max_length=50, null=True, blank=True)
    ncm_nbs_descricao = models.TextField(null=True, blank=True)
    catalogo_codigo = models.BigIntegerField("catalogo.id", null=True, blank=True)
    catalogo_nome = models.CharField(max_length=255, null=True, blank=True)
    categoria_item_catalogo_codigo = models.BigIntegerField(
        "categoriaItemCatalogo.id", null=True, blank=True
    )
    categoria_item_catalogo_nome = models.CharField(max_length=255, null=True, blank=True)
    catalogo_codigo_item = models.CharField(max_length=100, null=True, blank=True)
    informacao_complementar = models.TextField(null=True, blank=True)
    tipo_margem_preferencia_codigo = models.BigIntegerField(
        "tipoMargemPreferencia.codigo", null=True, blank=True
    )
    tipo_margem_preferencia_nome = models.CharField(max_length=255, null=True, blank=True)
    exigencia_conteudo_nacional = models.BooleanField(null=True, blank=True)

    class Meta:
        verbose_name = "item da contratação"
        verbose_name_plural = "itens da contratação"
        ordering = ["contratacao_id", "numero_item"]
        constraints = [
            models.UniqueConstraint(
                fields=["contratacao", "numero_item"], name="itemcontratacao_compra_numero"
            )
        ]

    def __str__(self) -> str:
        return self.chave


class ResultadoItem(ImportedRecord):
    """A resultado of an item (``.../itens/{numeroItem}/resultados``): who won, at what price.

    ``chave`` is ``<numeroControlePNCP>#<numeroItem>#<sequencialResultado>``.
    """

    chave = models.CharField(max_length=80, unique=True)
    item = models.ForeignKey(ItemContratacao, on_delete=models.CASCADE, related_name="resultados")
    numero_controle_pncp_compra = models.CharField(max_length=50, db_index=True)
    numero_item = models.PositiveIntegerField()
    sequencial_resultado = models.PositiveIntegerField()
    situacao = _fk(dt.SituacaoResultadoItem)
    fornecedor = models.ForeignKey(
        Fornecedor, on_delete=models.PROTECT, null=True, blank=True, related_name="resultados"
    )
    ni_fornecedor = models.CharField(max_length=30, blank=True, default="")
    tipo_pessoa = _fk(dt.TipoPessoa)
    nome_razao_social_fornecedor = models.CharField(max_length=255, blank=True, default="")
    porte_fornecedor = _fk(dt.PorteEmpresa)
    natureza_juridica = _fk(dt.NaturezaJuridica)
    codigo_pais = models.CharField(max_length=3, null=True, blank=True)
    quantidade_homologada = models.DecimalField(**MONEY)
    valor_unitario_homologado = models.DecimalField(**MONEY)
    valor_total_homologado = models.DecimalField(**MONEY)
    percentual_desconto = models.DecimalField(**MONEY)
    moeda_estrangeira_codigo = models.BigIntegerField("moedaEstrangeira.id", null=True, blank=True)
    moeda_estrangeira_simbolo = models.CharField(max_length=10, null=True, blank=True)
    moeda_estrangeira_nome = models.CharField(max_length=100, null=True, blank=True)
    valor_nominal_moeda_estrangeira = models.DecimalField(**MONEY)
    timezone_cotacao_moeda_estrangeira = models.CharField(max_length=60, null=True, blank=True)
    data_cotacao_moeda_estrangeira = models.DateTimeField(null=True, blank=True)
    amparo_legal_margem_preferencia = _fk(dt.AmparoLegal)
    amparo_legal_criterio_desempate = _fk(dt.AmparoLegal)
    pais_origem_produto_servico_codigo = models.CharField(max_length=10, null=True, blank=True)
    pais_origem_produto_servico_nome = models.CharField(max_length=100, null=True, blank=True)
    indicador_subcontratacao = models.BooleanField(null=True, blank=True)
    ordem_classificacao_srp = models.IntegerField(null=True, blank=True)
    data_resultado = models.DateField(null=True, blank=True)
    motivo_cancelamento = models.TextField(null=True, blank=True)
    data_cancelamento = models.DateTimeField(null=True, blank=True)
    aplicacao_margem_preferencia = models.BooleanField(null=True, blank=True)
    aplicacao_beneficio_me_epp = models.BooleanField(null=True, blank=True)
    aplicacao_criterio_desempate = models.BooleanField(null=True, blank=True)
    data_inclusao = models.DateTimeField(null=True, blank=True)
    data_atualizacao = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "resultado do item"
        verbose_name_plural = "resultados dos itens"
        ordering = ["item_id", "sequencial_resultado"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "sequencial_resultado"], name="resultadoitem_item_sequencial"
            )
        ]
        indexes = [models.Index(fields=["ni_fornecedor"], name="resultadoitem_ni_fornecedor")]

    def __str__(self) -> str:
        return self.chave


# --- PNCP contract check ---


class ContractCheck(models.Model):
    """One run of ``sync_pncp check``: PNCP's page limits and payload shapes against ours."""

    class Status(models.TextChoices):
        OK = "ok", "No drift"
        DRIFT = "drift", "Drift found"
        ERROR = "error", "Could not check everything"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    window = models.DateField(null=True, blank=True, help_text="The day the probes asked for.")
    endpoints = models.PositiveIntegerField(default=0)
    findings = JSONField(default=list, blank=True)
    trigger = models.CharField(max_length=10, default="cli")

    class Meta:
        verbose_name = "PNCP contract check"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"contract check #{self.pk} {self.status}"
