"""Refresh the domain tables from PNCP's own domain services (``sync_pncp dominios``).

PNCP's main API lists every code of most domain tables (``/v1/modalidades``, ...; see
``pncp.resources.DOMAIN_SERVICES``), active and inactive, as ``{id, nome, descricao,
statusAtivo, ...}``. A refresh adds the codes we lack, takes PNCP's name and description for
the ones we have (a code the importer had added from a record, flagged for review, is now
confirmed) and follows ``statusAtivo``. A code PNCP no longer lists is never deleted, since
records may point at it: it is marked ``ativo=False``. Each table is refreshed in its own
transaction, and a table whose service fails or answers nothing is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from domain_tables.models import TABLES, DomainTable, StrCodeTable
from pncp.client import PNCPClient, PNCPError
from pncp.resources import DOMAIN_SERVICES

NOME_MAX = DomainTable._meta.get_field("nome").max_length


@dataclass
class TableRefresh:
    """What one refresh changed in one table."""

    table: str
    path: str
    listed: int = 0
    added: list[tuple] = field(default_factory=list)  # (codigo, nome)
    renamed: list[tuple] = field(default_factory=list)  # (codigo, old nome, new nome)
    deactivated: list = field(default_factory=list)  # codigos
    reactivated: list = field(default_factory=list)  # codigos
    described: list = field(default_factory=list)  # codigos whose descricao changed
    confirmed: list = field(default_factory=list)  # codigos first seen in records, now listed
    error: str = ""

    @property
    def changed(self) -> bool:
        return any((self.added, self.renamed, self.deactivated, self.reactivated, self.described))

    def summary(self) -> str:
        if self.error:
            return f"{self.table}: not refreshed: {self.error}"
        if not self.changed and not self.confirmed:
            return f"{self.table}: {self.listed} codes, unchanged"
        parts = []
        if self.added:
            parts.append(
                f"{len(self.added)} added (" + ", ".join(f"{c} {n!r}" for c, n in self.added) + ")"
            )
        if self.renamed:
            names = ", ".join(f"{c} {old!r} -> {new!r}" for c, old, new in self.renamed)
            parts.append(f"{len(self.renamed)} renamed ({names})")
        if self.deactivated:
            codes = ", ".join(str(c) for c in self.deactivated)
            parts.append(f"{len(self.deactivated)} deactivated ({codes})")
        if self.reactivated:
            codes = ", ".join(str(c) for c in self.reactivated)
            parts.append(f"{len(self.reactivated)} reactivated ({codes})")
        if self.described:
            parts.append(f"{len(self.described)} descriptions updated")
        if self.confirmed:
            parts.append(f"{len(self.confirmed)} codes first seen in records confirmed")
        return f"{self.table}: {self.listed} codes; " + "; ".join(parts)


def refresh_domain_tables(
    *, client: PNCPClient | None = None, tables: list[str] | None = None
) -> list[TableRefresh]:
    """Refresh every domain table PNCP serves (or only ``tables``); one report per table."""
    client = client or PNCPClient()
    reports = []
    for table, path in DOMAIN_SERVICES.items():
        if tables and table not in tables:
            continue
        report = TableRefresh(table=table, path=path)
        reports.append(report)
        try:
            rows = client.get_list(path)
        except PNCPError as exc:
            report.error = str(exc)
            continue
        try:
            listed = _read_rows(TABLES[table], rows)
        except ValueError as exc:
            report.error = str(exc)
            continue
        if not listed:
            report.error = f"PNCP listed no codes at {path}; nothing changed"
            continue
        report.listed = len(listed)
        _apply(TABLES[table], listed, report)
    return reports


def unserved_tables() -> list[str]:
    """Domain tables PNCP has no service for (kept from the fixtures and the records)."""
    return [table for table in TABLES if table not in DOMAIN_SERVICES]


def _read_rows(model: type[DomainTable], rows: list) -> dict:
    """``{codigo: (nome, descricao, ativo)}`` from PNCP's list; ValueError if unreadable."""
    string_codes = issubclass(model, StrCodeTable)
    listed = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("id") in (None, "") or not row.get("nome"):
            raise ValueError(f"unexpected entry in PNCP's list: {row!r:.200}")
        raw = row["id"]
        try:
            codigo = str(raw) if string_codes else int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"unexpected code {raw!r} in PNCP's list") from None
        ativo = row.get("statusAtivo")
        listed[codigo] = (
            str(row["nome"]).strip()[:NOME_MAX],
            str(row.get("descricao") or ""),
            True if ativo is None else bool(ativo),
        )
    return listed


def _apply(model: type[DomainTable], listed: dict, report: TableRefresh) -> None:
    with transaction.atomic():
        stored = {obj.codigo: obj for obj in model.objects.select_for_update()}
        new, changed = [], []
        for codigo, (nome, descricao, ativo) in listed.items():
            obj = stored.get(codigo)
            if obj is None:
                new.append(model(codigo=codigo, nome=nome, descricao=descricao, ativo=ativo))
                report.added.append((codigo, nome))
                continue
            dirty = False
            if obj.nome != nome:
                report.renamed.append((codigo, obj.nome, nome))
                obj.nome, dirty = nome, True
            if descricao and obj.descricao != descricao:
                report.described.append(codigo)
                obj.descricao, dirty = descricao, True
            if obj.ativo != ativo:
                (report.reactivated if ativo else report.deactivated).append(codigo)
                obj.ativo, dirty = ativo, True
            if obj.novo_em_importacao:
                report.confirmed.append(codigo)
                obj.novo_em_importacao, dirty = False, True
            if dirty:
                changed.append(obj)
        for codigo, obj in stored.items():
            if codigo not in listed and obj.ativo:  # never deleted: records may use it
                obj.ativo = False
                report.deactivated.append(codigo)
                changed.append(obj)
        if new:
            model.objects.bulk_create(new)
        if changed:
            now = timezone.now()  # bulk_update does not run auto_now
            for obj in changed:
                obj.atualizado_em = now
            model.objects.bulk_update(
                changed, ["nome", "descricao", "ativo", "novo_em_importacao", "atualizado_em"]
            )
