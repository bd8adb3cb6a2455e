"""PNCP records -> our tables: batch upsert by natural key, history, quarantine.

One batch (usually one PNCP page) is one transaction:

1. every record gets its natural key and a content hash of its canonical JSON;
2. one query fetches the stored hashes of those keys; unchanged records stop here (no row is
   rewritten, so re-importing a page costs a SELECT, and PostgreSQL tables do not bloat);
3. new and changed records are parsed; a record that cannot be parsed is quarantined with its
   reason while the rest of the page lands;
4. órgãos, unidades and unknown domain codes they mention are upserted first (cached for the
   life of the ``Ingester``);
5. the previous payload of every changed record is copied into ``RecordVersion`` by one
   INSERT ... SELECT;
6. rows are written in bulk: on PostgreSQL new records by binary ``COPY`` straight into the
   table, changed ones by text ``COPY`` into a temporary staging table and one
   ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``; on SQLite (the demo) by one
   ``executemany`` of the same upsert. If the bulk write fails (a value PostgreSQL refuses),
   the batch is retried record by record in savepoints and only the offending records are
   quarantined.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.db import DatabaseError, connection, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

from domain_tables.models import TABLES
from pncp import metrics
from pncp.api import counts
from pncp.models import (
    AtaRegistroPreco,
    Contratacao,
    Contrato,
    Fornecedor,
    ItemContratacao,
    ItemPCA,
    Orgao,
    PageFingerprint,
    PlanoContratacao,
    RecordVersion,
    RejectedRecord,
    ResultadoItem,
    SyncRun,
    UnidadeOrgao,
)
from pncp.parsers import (
    Parsed,
    ParseError,
    canonical,
    fold,
    item_key,
    loads,
    parse_ata,
    parse_contratacao,
    parse_contrato,
    parse_item,
    parse_pca,
    parse_resultado,
    resultado_key,
)

# How stale ``last_seen_at`` may get before an unchanged re-import refreshes it. Refreshing it
# on every sighting would rewrite every row of every page; once a day is enough to audit.
LAST_SEEN_GRANULARITY = timedelta(days=1)
BOOKKEEPING = ("raw", "content_hash", "first_seen_at", "last_seen_at", "last_changed_at")


@dataclass(frozen=True)
class IngestSpec:
    resource: str
    model: type[Model]
    key_field: str
    json_keys: tuple[str, ...]
    parse: Callable[[dict], Parsed]
    links_contratacao: bool = False
    child_model: type[Model] | None = None
    # Sub-resources (itens, resultados) whose records do not carry their parent's key: the
    # natural key comes from ``key(record, context)`` and the parser is ``parse(record,
    # context)``, with the context (parent key and ids) given to ``Ingester.ingest``.
    key: Callable[[dict, dict | None], str | None] | None = None


SPECS: dict[str, IngestSpec] = {
    "contratacoes": IngestSpec(
        "contratacoes",
        Contratacao,
        "numero_controle_pncp",
        ("numeroControlePNCP",),
        parse_contratacao,
    ),
    "atas": IngestSpec(
        "atas",
        AtaRegistroPreco,
        "numero_controle_pncp_ata",
        ("numeroControlePNCPAta", "numeroControlePncpAta"),
        parse_ata,
        links_contratacao=True,
    ),
    "contratos": IngestSpec(
        "contratos",
        Contrato,
        "numero_controle_pncp",
        ("numeroControlePNCP",),
        parse_contrato,
        links_contratacao=True,
    ),
    "pca": IngestSpec(
        "pca", PlanoContratacao, "id_pca_pncp", ("idPcaPncp",), parse_pca, child_model=ItemPCA
    ),
    "itens": IngestSpec(
        "itens", ItemContratacao, "chave", ("numeroItem",), parse_item, key=item_key
    ),
    "resultados": IngestSpec(
        "resultados",
        ResultadoItem,
        "chave",
        ("numeroItem", "sequencialResultado"),
        parse_resultado,
        key=resultado_key,
    ),
}


def relax_commit() -> None:
    """``synchronous_commit = off`` for the current transaction only (PostgreSQL).

    Safe here because a page and its checkpoint commit together: a crash can lose at most the
    last few pages' commits, data and checkpoint alike, and a resume fetches them again. It
    saves the WAL flush wait on every page.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


# Part of every page digest: a change to ``canonical``/``content_hash`` must change it too,
# or pages fingerprinted before would claim hashes the new code does not compute.
FINGERPRINT_VERSION = b"pncp-mirror page v1: orjson sorted keys, blake2b-128\n"


def page_digest(resource: str, body: bytes) -> str:
    """The fingerprint of a page's bytes as read (``PageFingerprint.digest``)."""
    digest = hashlib.blake2b(FINGERPRINT_VERSION, digest_size=16)
    digest.update(resource.encode("utf-8") + b"\n")
    digest.update(body)
    return digest.hexdigest()


def page_records(body) -> tuple[list, int | None]:
    """A decoded page's records and ``totalRegistros``: a PNCP envelope, a list or a record."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return body["data"], body.get("totalRegistros")
    if isinstance(body, list):
        return body, None
    return [body], None


@dataclass
class Prepared:
    """A batch after ``Ingester.prepare``: ready for the database half of ``ingest``.

    A *known* page (``Prepared.known``: its bytes have a ``PageFingerprint``) carries only
    keys and hashes (``records`` values ``(None, None, hash)``) and its ``body``; ``ingest``
    decodes it only if a stored hash differs.
    """

    resource: str
    records: dict[str, tuple[dict | None, str | None, str]]  # key -> (record, canonical JSON, hash)
    rejects: list  # RejectedRecord instances, not saved yet
    parsed: dict  # key -> Parsed or ParseError, when parsed ahead
    source: str = ""
    context: dict | None = None
    sources: dict[str, str] | None = None  # key -> its page, when pages were merged
    duplicates: int = 0  # records met again on the page or a later page of a merged batch
    body: bytes | None = None  # a known page's bytes, not decoded
    parts: list[Prepared] | None = None  # a merged batch's pages, in order
    fingerprint: tuple[str, int | None] | None = None  # (digest, total) to record once stored

    @classmethod
    def known(cls, resource: str, entries: list, body: bytes, source: str = "") -> Prepared:
        """A page whose bytes were imported before: its keys and hashes from the fingerprint."""
        records = {key: (None, None, digest) for key, digest in entries}
        return cls(resource, records, [], {}, source, body=body)

    @property
    def lazy(self) -> bool:
        """Whether some page of the batch is known, not decoded."""
        return self.body is not None or any(part.body is not None for part in self.parts or ())

    def entries(self) -> bytes:
        """``PageFingerprint.entries`` of this (decoded) page: its keys and hashes, in order."""
        return orjson.dumps([[key, digest] for key, (_, _, digest) in self.records.items()])

    @classmethod
    def merge(cls, batches: list[Prepared]) -> Prepared:
        """Several pages of one resource as one batch: one round of queries, one COPY.

        A record met on two pages counts once as stored and once as unchanged (as it would
        page by page); the later copy wins, being the one PNCP served last.
        """
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        if any(b.resource != first.resource or b.context != first.context for b in batches):
            raise ValueError("only pages of one resource and context can be merged")
        records: dict[str, tuple[dict | None, str | None, str]] = {}
        sources: dict[str, str] = {}
        rejects, parsed, duplicates, parts = [], {}, 0, []
        for batch in batches:
            duplicates += batch.duplicates + sum(1 for key in batch.records if key in records)
            for key in batch.records:
                if key in parsed and key not in batch.parsed:
                    del parsed[key]  # parsed from an earlier copy: not the one that wins
            records.update(batch.records)
            parsed.update(batch.parsed)
            rejects += batch.rejects
            parts += batch.parts or [batch]
            if batch.sources:
                sources.update(batch.sources)
            else:
                sources.update(dict.fromkeys(batch.records, batch.source))
        return cls(
            first.resource,
            records,
            rejects,
            parsed,
            first.source,
            first.context,
            sources=sources,
            duplicates=duplicates,
            parts=parts,
        )


@dataclass
class IngestResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    versions: int = 0
    keys: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.versions += other.versions

    @property
    def stored(self) -> int:
        return self.created + self.updated + self.unchanged


def _columns(model: type[Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if not f.primary_key or f.column != "id"]


class Ingester:
    """Writes batches of PNCP records; keeps caches of órgãos, unidades and codes between them."""

    def __init__(self, run: SyncRun | None = None) -> None:
        self.run = run
        self._known_codes: dict[str, set] = {}
        self._names: dict[str, dict[str, object]] = {}
        self._orgaos: dict[str, tuple] = {}
        self._unidades: dict[tuple[str, str], tuple[int, tuple]] = {}
        self._fornecedores: dict[str, tuple] = {}

    def forget_caches(self) -> None:
        """Drop what we believe is stored; call after a rollback that may have undone it."""
        self._known_codes.clear()
        self._names.clear()
        self._orgaos.clear()
        self._unidades.clear()
        self._fornecedores.clear()

    # --- public ---------------------------------------------------------------------------------

    def prepare(
        self,
        resource: str,
        records: Iterable,
        *,
        source: str = "",
        context: dict | None = None,
        parse: bool = False,
    ) -> Prepared:
        """The database-free half of ``ingest``: keys, canonical JSON, hashes (and parsing).

        Pure Python, so a fetching or reading thread can run it while the ingesting thread
        waits on the database. ``parse=True`` parses every record ahead (wasted on records
        that turn out unchanged, but off the critical path).
        """
        spec = SPECS[resource]
        prepared: dict[str, tuple[dict, str, str]] = {}
        rejects: list[RejectedRecord] = []
        duplicates = 0

        for record in records:
            if not isinstance(record, dict):
                rejects.append(
                    self._reject(spec, "", "record is not a JSON object", record, source)
                )
                continue
            if spec.key is not None:
                key = spec.key(record, context)
            else:
                key = next((record[k] for k in spec.json_keys if record.get(k)), None)
            if not isinstance(key, str):
                reason = f"missing natural key {spec.json_keys[0]}"
                if spec.key is not None:
                    reason = f"missing natural key {' and '.join(spec.json_keys)}"
                    if not context:
                        reason += " (or the compra it belongs to)"
                rejects.append(self._reject(spec, "", reason, record, source))
                continue
            if key in prepared:
                duplicates += 1  # PNCP served it twice on one page: the later copy wins
            text = canonical(record)
            prepared[key] = (record, text, content_hash(text))
        parsed: dict[str, Parsed | ParseError] = {}
        if parse and spec.key is None:
            for key, (record, _, _) in prepared.items():
                try:
                    parsed[key] = spec.parse(record)
                except ParseError as exc:
                    parsed[key] = exc
        return Prepared(resource, prepared, rejects, parsed, source, context, duplicates=duplicates)

    def materialize(self, batch: Prepared) -> Prepared:
        """``batch`` with its known pages decoded and prepared, as if never seen before."""
        if batch.parts:
            return Prepared.merge([self.materialize(part) for part in batch.parts])
        if batch.body is None:
            return batch
        records, _ = page_records(loads(batch.body))
        return self.prepare(batch.resource, records, source=batch.source, context=batch.context)

    def ingest(
        self,
        resource: str,
        records: Iterable = (),
        *,
        source: str = "",
        extra: dict | None = None,
        context: dict | None = None,
        prepared_batch: Prepared | None = None,
    ) -> IngestResult:
        """Store a batch of one resource; ``context`` is the parent of sub-resources."""
        spec = SPECS[resource]
        result = IngestResult()
        now = timezone.now()
        batch = prepared_batch or self.prepare(resource, records, source=source, context=context)
        prepared, rejects, ahead = batch.records, list(batch.rejects), batch.parsed
        source = batch.source

        stale_before = now - LAST_SEEN_GRANULARITY
        # No savepoint: inside a page's transaction an error fails the page anyway.
        with transaction.atomic(savepoint=False):
            stored = {}
            stale: set[str] = set()
            for key, digest, last_seen in _stored_hashes(spec, list(prepared)):
                stored[key] = digest
                if last_seen < stale_before:
                    stale.add(key)
            if batch.lazy and any(
                record is None and stored.get(key) != digest
                for key, (record, _, digest) in prepared.items()
            ):
                # a known page whose records were edited or removed since: decode it
                batch = self.materialize(batch)
                prepared, rejects, ahead = batch.records, list(batch.rejects), batch.parsed
            to_write: list[tuple[Parsed, str, str, bool]] = []
            unchanged: list[str] = []
            for key, (record, text, digest) in prepared.items():
                if stored.get(key) == digest:
                    unchanged.append(key)
                    continue
                try:
                    parsed = ahead.get(key)
                    if isinstance(parsed, ParseError):
                        raise parsed
                    if parsed is None:
                        parsed = spec.parse(record, context) if spec.key else spec.parse(record)
                except ParseError as exc:
                    where = batch.sources.get(key, source) if batch.sources else source
                    rejects.append(self._reject(spec, key, str(exc), record, where))
                    continue
                to_write.append((parsed, text, digest, key not in stored))

            if to_write:
                relax_commit()
                written, failed = self._write(spec, to_write, now)
                for parsed, reason in failed:
                    record = prepared[parsed.key][0]
                    where = batch.sources.get(parsed.key, source) if batch.sources else source
                    rejects.append(self._reject(spec, parsed.key, reason, record, where))
                result.created = sum(1 for _, _, _, new in written if new)
                result.updated = len(written) - result.created
                result.versions = result.updated
                if spec.links_contratacao:
                    self._link_to_contratacao(spec, [p.key for p, *_ in written])
                elif spec.resource == "contratacoes":
                    self._link_children_of_contratacoes([p.key for p, *_ in written])
            seen_again = [key for key in unchanged if key in stale]
            if seen_again:
                key_column = spec.model._meta.get_field(spec.key_field).column
                where, params = _in(key_column, seen_again)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {spec.model._meta.db_table} SET last_seen_at = %s WHERE {where}",
                        [connection.ops.adapt_datetimefield_value(now), *params],
                    )
            if extra:
                self._apply_extra(spec, list(prepared), extra)
            if to_write or extra:  # the API's remembered totals end with this commit
                transaction.on_commit(counts.data_changed)
            if rejects:
                RejectedRecord.objects.bulk_create(rejects)
        result.unchanged = len(unchanged) + batch.duplicates
        result.rejected = len(rejects)
        result.keys = list(prepared)
        metrics.record_ingest(resource, result)
        return result

    # --- rows ----------------------------------------------------------------------------------

    def _write(self, spec: IngestSpec, items: list, now: datetime):
        """Write parsed records; returns (written, failed) where failed holds DB refusals."""
        try:
            with transaction.atomic():
                self._write_batch(spec, items, now, copy_new=True)
            return items, []
        except DatabaseError:
            # The rollback also undid the órgãos/unidades/codes this batch created: forget them.
            self.forget_caches()
        written, failed = [], []
        for item in items:
            try:
                with transaction.atomic():
                    self._write_batch(spec, [item], now)
                written.append(item)
            except DatabaseError as exc:
                self.forget_caches()
                failed.append((item[0], f"database refused the record: {exc}".strip()))
        return written, failed

    def _write_batch(
        self, spec: IngestSpec, items: list, now: datetime, *, copy_new: bool = False
    ) -> None:
        """Write rows; with ``copy_new``, rows not stored a moment ago are COPYed straight in.

        A concurrent writer inserting one of them makes the COPY fail; the caller then retries
        record by record without ``copy_new``, through the upsert.
        """
        parsed_list = [p for p, *_ in items]
        self._ensure_dependencies(parsed_list)
        changed = [p.key for p, _, _, new in items if not new]
        if changed:
            self._save_versions(spec, changed, now)
        run_id = self.run.pk if self.run else None
        model = spec.model
        columns = _columns(model)
        # every column None unless the record or the bookkeeping says otherwise
        base = dict.fromkeys(columns)
        base.update(first_seen_at=now, last_seen_at=now, last_changed_at=now, sync_run_id=run_id)
        as_row = operator.itemgetter(*columns)
        unidades = self._unidades
        rows, new_rows = [], []
        for parsed, text, digest, new in items:
            values = {**base, **parsed.row, "raw": text, "content_hash": digest}
            if values.get("unidade_id") is not None:
                values["unidade_id"] = unidades[values["unidade_id"]][0]
            if values.get("unidade_sub_rogada_id") is not None:
                values["unidade_sub_rogada_id"] = unidades[values["unidade_sub_rogada_id"]][0]
            (new_rows if new and copy_new else rows).append(as_row(values))
        key_column = model._meta.get_field(spec.key_field).column
        update = [c for c in columns if c not in (key_column, "first_seen_at", "contratacao_id")]
        if "id_usuario" in update:
            update.remove("id_usuario")
        if new_rows and connection.vendor == "postgresql":
            copy_rows(model, columns, new_rows)
        else:
            rows += new_rows
        upsert_rows(model, columns, rows, [key_column], update)
        if spec.child_model is not None:
            self._write_children(spec, items, now)

    def _write_children(self, spec: IngestSpec, items: list, now: datetime) -> None:
        child = spec.child_model
        ids = dict(
            spec.model.objects.filter(
                **{f"{spec.key_field}__in": [p.key for p, *_ in items]}
            ).values_list(spec.key_field, "id")
        )
        columns = _columns(child)
        run_id = self.run.pk if self.run else None
        rows = []
        for parsed, *_ in items:
            plano_id = ids[parsed.key]
            numbers = [c["numero_item"] for c in parsed.children]
            child.objects.filter(plano_id=plano_id).exclude(numero_item__in=numbers).delete()
            for values in parsed.children:
                values = dict(values)
                text = canonical(values.pop("raw"))
                ref = values.get("categoria_item_pca_id")
                if isinstance(ref, tuple):
                    values["categoria_item_pca_id"] = self._code_by_name(ref[1], ref[2])
                values.update(
                    plano_id=plano_id,
                    raw=text,
                    content_hash=content_hash(text),
                    first_seen_at=now,
                    last_seen_at=now,
                    last_changed_at=now,
                    sync_run_id=run_id,
                )
                rows.append(tuple(values.get(c) for c in columns))
        update = [c for c in columns if c not in ("plano_id", "numero_item", "first_seen_at")]
        upsert_rows(child, columns, rows, ["plano_id", "numero_item"], update)

    def _save_versions(self, spec: IngestSpec, keys: list[str], now: datetime) -> None:
        table = spec.model._meta.db_table
        key_column = spec.model._meta.get_field(spec.key_field).column
        where, params = _in(key_column, keys)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {RecordVersion._meta.db_table} "
                "(resource, natural_key, payload, content_hash, valid_from, replaced_at, "
                "sync_run_id) "
                f"SELECT %s, {key_column}, raw, content_hash, last_changed_at, %s, %s "
                f"FROM {table} WHERE {where}",
                [
                    spec.resource,
                    connection.ops.adapt_datetimefield_value(now),
                    self.run.pk if self.run else None,
                    *params,
                ],
            )

    # --- links -------------------------------------------------------------------------------

    def _link_to_contratacao(self, spec: IngestSpec, keys: list[str]) -> None:
        if not keys:
            return
        table = spec.model._meta.db_table
        key_column = spec.model._meta.get_field(spec.key_field).column
        contratacao = Contratacao._meta.db_table
        where, params = _in(key_column, keys)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET contratacao_id = (SELECT c.id FROM {contratacao} c "
                f"WHERE c.numero_controle_pncp = {table}.numero_controle_pncp_compra) "
                f"WHERE {where}",
                params,
            )

    def _link_children_of_contratacoes(self, keys: list[str]) -> None:
        """A contratação arriving after its atas/contratos: fill their links now."""
        if not keys:
            return
        contratacao = Contratacao._meta.db_table
        placeholders = ", ".join(["%s"] * len(keys))
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":  # both tables in one round trip
                link = (
                    "UPDATE {t} SET contratacao_id = c.id FROM {c} c "
                    "WHERE c.numero_controle_pncp = {t}.numero_controle_pncp_compra "
                    "AND {t}.contratacao_id IS NULL "
                    "AND {t}.numero_controle_pncp_compra = ANY(%s::text[])"
                )
                ata, contrato = AtaRegistroPreco._meta.db_table, Contrato._meta.db_table
                cursor.execute(
                    f"WITH a AS ({link.format(t=ata, c=contratacao)}) "
                    f"{link.format(t=contrato, c=contratacao)}",
                    [text_array(keys)] * 2,
                )
                return
            for model in (AtaRegistroPreco, Contrato):
                table = model._meta.db_table
                cursor.execute(
                    f"UPDATE {table} SET contratacao_id = (SELECT c.id FROM {contratacao} c "
                    f"WHERE c.numero_controle_pncp = {table}.numero_controle_pncp_compra) "
                    f"WHERE contratacao_id IS NULL AND numero_controle_pncp_compra IN "
                    f"({placeholders})",
                    keys,
                )

    def _apply_extra(self, spec: IngestSpec, keys: list[str], extra: dict) -> None:
        """Columns known from the query, not the record (``idUsuario`` of /pca/usuario)."""
        fields = {f.name for f in spec.model._meta.concrete_fields}
        values = {k: v for k, v in extra.items() if k in fields and v is not None}
        for name, value in values.items():
            spec.model.objects.filter(**{f"{spec.key_field}__in": keys}).exclude(
                **{name: value}
            ).update(**{name: value})

    # --- dependencies --------------------------------------------------------------------------

    def _ensure_dependencies(self, parsed_list: list[Parsed]) -> None:
        codes: dict[str, dict] = {}
        orgaos: dict[str, tuple] = {}
        unidades: dict[tuple[str, str], tuple] = {}
        fornecedores: dict[str, tuple] = {}
        for parsed in parsed_list:
            for fornecedor in parsed.fornecedores:
                previous = fornecedores.get(fornecedor[0])
                fornecedores[fornecedor[0]] = (
                    fornecedor if previous is None else _merge(previous, fornecedor)
                )
            for table, code, name in parsed.codes:
                codes.setdefault(table, {}).setdefault(code, name)
            for orgao in parsed.orgaos:
                previous = orgaos.get(orgao[0])
                if previous is None or (orgao[2] and not previous[2]):
                    orgaos[orgao[0]] = orgao
            for unidade in parsed.unidades:
                unidades[(unidade[0], unidade[1])] = unidade
        # Everything is created in sorted order (tables, codes, keys): two writers creating
        # the same rows at once then wait for each other in one order, never in a cycle.
        for table in sorted(codes):
            self._ensure_codes(table, codes[table])
        self._ensure_orgaos(orgaos)
        self._ensure_unidades(unidades)
        self._ensure_fornecedores(fornecedores)

    def _ensure_codes(self, table: str, found: dict) -> None:
        model = TABLES[table]
        known = self._known_codes.get(table)
        if known is None:
            known = self._known_codes[table] = set(model.objects.values_list("codigo", flat=True))
        missing = sorted(code for code in found if code not in known)
        if not missing:
            return
        model.objects.bulk_create(
            [
                model(
                    codigo=code,
                    nome=(found[code] or f"Código {code} (sem nome no PNCP)").strip()[:255],
                    novo_em_importacao=True,
                )
                for code in missing
            ],
            ignore_conflicts=True,
        )
        known.update(missing)

    def _code_by_name(self, table: str, name: str):
        names = self._names.get(table)
        if names is None:
            names = self._names[table] = {
                fold(nome): codigo
                for codigo, nome in TABLES[table].objects.values_list("codigo", "nome")
            }
        return names.get(fold(name))

    def _ensure_orgaos(self, orgaos: dict[str, tuple]) -> None:
        todo = {c: o for c, o in orgaos.items() if not self._same_orgao(self._orgaos.get(c), o)}
        if not todo:
            return
        existing = {o.cnpj: o for o in Orgao.objects.filter(cnpj__in=list(todo))}
        new, changed = [], []
        for number, (_, razao, poder, esfera) in sorted(todo.items()):
            current = existing.get(number)
            if current is None:
                new.append(Orgao(cnpj=number, razao_social=razao, poder_id=poder, esfera_id=esfera))
                continue
            merged = (
                number,
                razao or current.razao_social,
                poder or current.poder_id,
                esfera or current.esfera_id,
            )
            if merged != (number, current.razao_social, current.poder_id, current.esfera_id):
                current.razao_social, current.poder_id, current.esfera_id = merged[1:]
                changed.append(current)
        if new:
            Orgao.objects.bulk_create(new, ignore_conflicts=True)
        if changed:
            Orgao.objects.bulk_update(changed, ["razao_social", "poder_id", "esfera_id"])
        self._orgaos.update(todo)

    @staticmethod
    def _same_orgao(cached: tuple | None, new: tuple) -> bool:
        if cached is None:
            return False
        return all(n is None or n == c or n == "" for n, c in zip(new, cached, strict=True))

    def _ensure_unidades(self, unidades: dict[tuple[str, str], tuple]) -> None:
        todo = {}
        for key, values in unidades.items():
            cached = self._unidades.get(key)
            if cached is None or not self._same_unidade(cached[1], values):
                todo[key] = values
        if not todo:
            return
        cnpjs = {k[0] for k in todo}
        existing = {
            (u.orgao_id, u.codigo_unidade): u
            for u in UnidadeOrgao.objects.filter(orgao_id__in=cnpjs)
        }
        new, changed = [], []
        fields = ("nome_unidade", "municipio_nome", "codigo_ibge", "uf_sigla", "uf_nome")
        for key, values in sorted(todo.items()):
            current = existing.get(key)
            if current is None:
                new.append(
                    UnidadeOrgao(
                        orgao_id=key[0],
                        codigo_unidade=key[1],
                        **dict(zip(fields, values[2:], strict=True)),
                    )
                )
                continue
            dirty = False
            for name, value in zip(fields, values[2:], strict=True):
                if value not in (None, "") and getattr(current, name) != value:
                    setattr(current, name, value)
                    dirty = True
            if dirty:
                changed.append(current)
        if new:
            UnidadeOrgao.objects.bulk_create(new, ignore_conflicts=True)
        if changed:
            UnidadeOrgao.objects.bulk_update(changed, list(fields))
        for u in UnidadeOrgao.objects.filter(orgao_id__in=cnpjs):
            key = (u.orgao_id, u.codigo_unidade)
            merged = (
                u.orgao_id,
                u.codigo_unidade,
                u.nome_unidade,
                u.municipio_nome,
                u.codigo_ibge,
                u.uf_sigla,
                u.uf_nome,
            )
            self._unidades[key] = (u.pk, merged)

    def _ensure_fornecedores(self, fornecedores: dict[str, tuple]) -> None:
        """Upsert fornecedores by niFornecedor; a value PNCP left empty keeps the stored one."""
        todo = {
            ni: f
            for ni, f in fornecedores.items()
            if not self._same_orgao(self._fornecedores.get(ni), f)
        }
        if not todo:
            return
        fields = ("tipo_pessoa_id", "nome_razao_social", "porte_id", "natureza_juridica_id")
        fields += ("codigo_pais",)
        existing = {f.ni_fornecedor: f for f in Fornecedor.objects.filter(ni_fornecedor__in=todo)}
        new, changed = [], []
        for ni, values in sorted(todo.items()):
            current = existing.get(ni)
            if current is None:
                new.append(
                    Fornecedor(ni_fornecedor=ni, **dict(zip(fields, values[1:], strict=True)))
                )
                continue
            stored = (ni, *(getattr(current, name) for name in fields))
            merged = _merge(stored, values)
            if merged != stored:
                for name, value in zip(fields, merged[1:], strict=True):
                    setattr(current, name, value)
                changed.append(current)
            todo[ni] = merged
        if new:
            Fornecedor.objects.bulk_create(new, ignore_conflicts=True)
        if changed:
            Fornecedor.objects.bulk_update(changed, list(fields))
        self._fornecedores.update(todo)

    @staticmethod
    def _same_unidade(cached: tuple, new: tuple) -> bool:
        return all(n in (None, "") or n == c for n, c in zip(new, cached, strict=True))

    def _reject(self, spec, key, reason, record, source) -> RejectedRecord:
        return RejectedRecord(
            resource=spec.resource,
            natural_key=(key or "")[:80],
            reason=reason,
            payload=record,
            source=source[:500],
            sync_run=self.run,
        )


def _in(column: str, keys: list) -> tuple[str, list]:
    """``column IN (...)`` as SQL and parameters: one array parameter on PostgreSQL.

    Django's psycopg cursors bind parameters client-side, re-splitting the query text for
    every placeholder: with pages merged into batches of hundreds of keys, ``= ANY(%s)`` with
    one array costs a fraction of ``IN (%s, %s, ...)`` (and plans the same).
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::text[])", [text_array(keys)]
    return f"{column} IN ({', '.join(['%s'] * len(keys))})", list(keys)


def text_array(values: list[str]) -> str:
    """A PostgreSQL ``text[]`` literal of ``values``, built by one join.

    psycopg dumps a Python list element by element in Python (~0.1 ms per 100 keys); our key
    lists go with every batch. Quotes and backslashes are escaped (keys never hold NUL,
    which PostgreSQL's text cannot store).
    """
    joined = "\x00".join(values)
    if not joined:
        return "{}" if not values else '{""}'
    if '"' in joined or "\\" in joined:
        joined = joined.replace("\\", "\\\\").replace('"', '\\"')
    return '{"' + joined.replace("\x00", '","') + '"}'


def known_pages(digests: Iterable[str]) -> dict[str, tuple[str, int | None, list]]:
    """The fingerprints among ``digests``: digest -> (resource, total, [[key, hash], …])."""
    rows = PageFingerprint.objects.filter(digest__in=list(digests)).values_list(
        "digest", "resource", "total_registros", "entries"
    )
    return {digest: (resource, total, orjson.loads(e)) for digest, resource, total, e in rows}


def record_fingerprints(batches: Iterable[Prepared]) -> None:
    """Remember the clean pages among ``batches`` (``Prepared.fingerprint`` set), in the
    transaction that stored them: a rollback forgets them too."""
    rows = [
        PageFingerprint(
            digest=batch.fingerprint[0],
            resource=batch.resource,
            total_registros=batch.fingerprint[1],
            entries=batch.entries().decode("utf-8"),
        )
        for batch in batches
        if batch.fingerprint
    ]
    if rows:
        PageFingerprint.objects.bulk_create(rows, ignore_conflicts=True)


def _stored_hashes(spec: IngestSpec, keys: list[str]):
    """(key, content_hash, last_seen_at) of the stored rows among ``keys``."""
    if connection.vendor != "postgresql":
        rows = spec.model.objects.filter(**{f"{spec.key_field}__in": keys})
        return rows.values_list(spec.key_field, "content_hash", "last_seen_at")
    key_column = spec.model._meta.get_field(spec.key_field).column
    where, params = _in(key_column, keys)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key_column}, content_hash, last_seen_at "
            f"FROM {spec.model._meta.db_table} WHERE {where}",
            params,
        )
        return cursor.fetchall()


def _merge(old: tuple, new: tuple) -> tuple:
    """``new`` where it says something, ``old`` where it is empty (None or "")."""
    return tuple(o if n in (None, "") else n for o, n in zip(old, new, strict=True))


# --- the bulk upsert -------------------------------------------------------------------------


JSONB_OID = postgres.types["jsonb"].oid


class _JsonTextBinaryDumper(Dumper):
    """A ``str`` already holding JSON text -> jsonb's binary form (format version 1 + text).

    psycopg's own jsonb dumpers serialize Python objects; our jsonb values (``raw``,
    ``fontes_orcamentarias``) are canonical JSON text already.
    """

    oid = JSONB_OID
    format = Format.BINARY

    def dump(self, obj):
        return b"\x01" + obj.encode()


_COLUMN_OIDS: dict[tuple[str, tuple[str, ...]], list[int]] = {}


def _column_oids(cursor, table: str, columns: list[str]) -> list[int]:
    """The type OIDs of ``columns`` (asked once per process; the schema is migrated first)."""
    key = (table, tuple(columns))
    if key not in _COLUMN_OIDS:
        cursor.execute(
            "SELECT attname, atttypid FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        )
        oids = dict(cursor.fetchall())
        _COLUMN_OIDS[key] = [oids[c] for c in columns]
    return _COLUMN_OIDS[key]


def copy_rows(model: type[Model], columns: list[str], rows: list[tuple]) -> None:
    """Binary COPY of rows straight into the table (PostgreSQL): the cheapest way in.

    Binary rather than text: PostgreSQL skips parsing dates, numbers and booleans from text
    and psycopg formats them in C, about 10% less CPU on both sides for a page.
    """
    table = model._meta.db_table
    cols = ", ".join(columns)
    with connection.cursor() as cursor:
        oids = _column_oids(cursor, table, columns)
        raw = cursor.cursor  # psycopg's own cursor
        raw.adapters.register_dumper(None, _JsonTextBinaryDumper)
        with (
            connection.wrap_database_errors,
            raw.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(oids)
            for row in rows:
                copy.write_row(row)


def upsert_rows(
    model: type[Model],
    columns: list[str],
    rows: list[tuple],
    conflict: list[str],
    update: list[str],
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE of many rows, the fastest way each database allows."""
    if not rows:
        return
    table = model._meta.db_table
    cols = ", ".join(columns)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
    on_conflict = f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {sets}"
    if "content_hash" in update:
        on_conflict += f" WHERE {table}.content_hash <> EXCLUDED.content_hash"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staging = f"_stg_{table}"
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS "
                f"SELECT {cols} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {staging}")
            # psycopg's COPY bypasses Django's cursor wrapper: map its errors to Django's.
            with (
                connection.wrap_database_errors,
                cursor.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} {on_conflict}"
            )
        else:
            fields = {f.column: f for f in model._meta.concrete_fields}
            prepared = [
                tuple(
                    v
                    if isinstance(v, (str, int, type(None))) or c not in fields
                    else fields[c].get_db_prep_save(v, connection)
                    for c, v in zip(columns, row, strict=True)
                )
                for row in rows
            ]
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({cols}) VALUES ({placeholders}) {on_conflict}", prepared
            )
