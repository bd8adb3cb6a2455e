"""``manage.py sync_pncp``: fill and refresh the mirror from PNCP (or from saved pages).

A thin wrapper: it validates the operator's input, then calls ``pncp.sync`` (records),
``pncp.contract_check`` (``sync_pncp check``) or ``pncp.dominios`` (``sync_pncp dominios``).
"""

import re
import sys
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pncp.models import ContractCheck, SyncRun
from pncp.resources import ENDPOINTS, RESOURCES
from pncp.sync import (
    ITENS_RESOURCE,
    Progress,
    SyncInputError,
    SyncOptions,
    execute_run,
    import_from_dir,
    resume_run,
    start_run,
)
from pncp.validation import UFS, cnpj_check_digits_ok


def valid_cnpj(value: str) -> str:
    digits = re.sub(r"[.\-/]", "", value.strip())
    if not re.fullmatch(r"\d{14}", digits):
        raise CommandError(f"malformed CNPJ {value!r}: expected 14 digits")
    if not cnpj_check_digits_ok(digits):
        raise CommandError(f"malformed CNPJ {value!r}: check digits do not match")
    return digits


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Import PNCP records. Resources: pca, contratacoes, atas, contratos (several, or all). "
        "Examples: sync_pncp contratos --desde 2025-07-01 --ate 2025-07-31; "
        "sync_pncp all --incremental; sync_pncp --resume; sync_pncp all --from-dir pages/; "
        "sync_pncp contratacoes --desde 2025-07-01 --itens (also itens and resultados); "
        "sync_pncp --itens --desde 2025-07-01 --ate 2025-07-31 (itens of stored contratações); "
        "sync_pncp check (PNCP's page limits and payload shapes against ours); "
        "sync_pncp dominios (refresh the domain tables from PNCP)"
    )
    ACTIONS = ("check", "dominios")

    def add_arguments(self, parser):
        parser.add_argument(
            "resources",
            nargs="*",
            help="pca, contratacoes, atas, contratos, all; or one action: check, dominios",
        )
        parser.add_argument(
            "--itens",
            action="store_true",
            help="also fetch the itens and resultados of the contratações (one call per compra "
            "and per item with a result); alone, with --desde/--ate, for those already stored",
        )
        parser.add_argument("--desde", help="first day, YYYY-MM-DD")
        parser.add_argument("--ate", help="last day, YYYY-MM-DD (default today)")
        parser.add_argument(
            "--endpoint", choices=sorted(ENDPOINTS), help="use this endpoint instead of the default"
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="the /atualizacao endpoints from the last watermark",
        )
        parser.add_argument(
            "--modalidade",
            action="append",
            type=int,
            dest="modalidades",
            help="codigoModalidadeContratacao (repeatable; default every code)",
        )
        parser.add_argument("--uf", help="UF (contratações)")
        parser.add_argument("--cnpj", help="CNPJ of the órgão")
        parser.add_argument("--unidade", help="código da unidade administrativa")
        parser.add_argument("--ano", type=int, help="anoPca (PCA)")
        parser.add_argument("--id-usuario", type=int, help="idUsuario (PCA by usuário)")
        parser.add_argument("--classificacao", help="codigoClassificacaoSuperior (PCA)")
        parser.add_argument("--window-days", type=int, help="days per window (default 1)")
        parser.add_argument("--concurrency", type=int, default=4, help="parallel requests")
        parser.add_argument(
            "--resume",
            nargs="?",
            const=0,
            type=int,
            metavar="RUN_ID",
            help="continue an interrupted run (default: the latest)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="plan and print the windows; fetch and write nothing",
        )
        parser.add_argument("--save-dir", help="keep every raw page fetched in this directory")
        parser.add_argument("--from-dir", help="import saved pages from this directory, offline")

    def handle(self, *args, **o):
        self.progress_tty = sys.stdout.isatty() and self.stdout._out is sys.stdout
        words = o["resources"]
        if words and words[0] in self.ACTIONS:
            if len(words) > 1:
                raise CommandError(f"sync_pncp {words[0]} takes no resources")
            # not "check": BaseCommand.check() runs Django's system checks
            return self.contract_check() if words[0] == "check" else self.dominios()
        try:
            if o["resume"] is not None:
                run = resume_run(o["resume"] or None)
                self.stdout.write(f"resuming run #{run.pk} ({', '.join(run.resources)})")
                progress = execute_run(run, on_progress=self.show)
                return self.finish(run, progress)
            resources = self.resources(o["resources"], itens=o["itens"])
            if o["from_dir"]:
                if o["itens"]:
                    raise CommandError("--itens cannot be replayed from saved pages")
                run, progress = import_from_dir(
                    Path(o["from_dir"]), resources, on_progress=self.show
                )
                return self.finish(run, progress)
            options = self.options(resources, o)
            if options.dry_run:
                from pncp.sync import plan_windows

                windows = plan_windows(options)
                for w in windows[:50]:
                    self.stdout.write(f"  {w['key']}")
                more = " (first 50 shown)" if len(windows) > 50 else ""
                self.stdout.write(f"dry run: {len(windows)} windows would be fetched{more}")
                return
            run = start_run(options)
        except SyncInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"run #{run.pk}: {run.checkpoints.count()} windows")
        progress = execute_run(run, on_progress=self.show)
        self.finish(run, progress)

    def resources(self, names, *, itens: bool = False):
        if not names and itens:
            return [ITENS_RESOURCE]  # itens of the contratações already stored
        if not names:
            raise CommandError(f"name the resources to sync: {', '.join(RESOURCES)} or all")
        if "all" in names:
            names = list(RESOURCES)
        unknown = [n for n in names if n not in RESOURCES]
        if unknown:
            actions = ", ".join(self.ACTIONS)
            raise CommandError(
                f"unknown resource {', '.join(unknown)}; choose from {', '.join(RESOURCES)}, all "
                f"(or one action: {actions})"
            )
        resources = list(dict.fromkeys(names))
        if itens:
            if "contratacoes" not in resources:
                raise CommandError(
                    "--itens fetches the itens of contratações: use it with contratacoes, "
                    "or alone with --desde/--ate for the contratações already stored"
                )
            resources.append(ITENS_RESOURCE)
        return resources

    def options(self, resources, o) -> SyncOptions:
        desde = parse_day(o["desde"], "--desde") if o["desde"] else None
        ate = parse_day(o["ate"], "--ate") if o["ate"] else None
        if desde and ate and desde > ate:
            raise CommandError(f"--desde {desde} is after --ate {ate}")
        if o["uf"] and o["uf"].upper() not in UFS:
            raise CommandError(f"unknown UF {o['uf']!r}")
        if o["window_days"] is not None and not 1 <= o["window_days"] <= 365:
            raise CommandError("--window-days must be between 1 and 365")
        if o["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        if o["endpoint"] == "contratacoes.proposta" and ate and ate < date.today():
            raise CommandError("contratacoes.proposta needs --ate today or later (PNCP: 422)")
        if o["endpoint"] and ENDPOINTS[o["endpoint"]].resource not in resources:
            raise CommandError(f"--endpoint {o['endpoint']} does not serve {resources}")
        filters = {
            "uf": o["uf"].upper() if o["uf"] else None,
            "cnpj": valid_cnpj(o["cnpj"]) if o["cnpj"] else None,
            "unidade": o["unidade"],
        }
        required = {}
        if o["ano"]:
            required["anoPca"] = o["ano"]
        if o["id_usuario"]:
            required["idUsuario"] = o["id_usuario"]
        if o["classificacao"]:
            required["codigoClassificacaoSuperior"] = o["classificacao"]
        return SyncOptions(
            resources=resources,
            desde=desde,
            ate=ate,
            endpoint=o["endpoint"],
            incremental=o["incremental"],
            modalidades=o["modalidades"],
            filters={k: v for k, v in filters.items() if v},
            required=required,
            window_days=o["window_days"],
            dry_run=o["dry_run"],
            save_dir=Path(o["save_dir"]) if o["save_dir"] else None,
            concurrency=o["concurrency"],
        )

    def contract_check(self):
        """``sync_pncp check``: probe PNCP, print the findings, exit non-zero on drift."""
        from pncp.contract_check import format_findings, run_contract_check

        self.stdout.write("probing PNCP's Consulta endpoints (page limits, payload shapes)...")
        check = run_contract_check(trigger="cli")
        for line in format_findings(check):
            self.stdout.write(line)
        drift = [f for f in check.findings if f["drift"]]
        errors = [f for f in check.findings if f["error"]]
        self.stdout.write(
            f"contract check #{check.pk} ({check.window}): {check.status}; "
            f"{check.endpoints} endpoints, {len(drift)} drift findings, {len(errors)} errors"
        )
        if check.status == ContractCheck.Status.DRIFT:
            raise CommandError(
                f"PNCP drifted from what the importer expects ({len(drift)} findings above); "
                "adjust resources.py / parsers.py before the next sync",
                returncode=1,
            )
        if check.status == ContractCheck.Status.ERROR:
            raise CommandError(
                f"could not check every endpoint ({len(errors)} errors above)", returncode=2
            )

    def dominios(self):
        """``sync_pncp dominios``: refresh the domain tables from PNCP's domain services."""
        from pncp.dominios import refresh_domain_tables, unserved_tables

        reports = refresh_domain_tables()
        for report in reports:
            self.stdout.write(report.summary())
        self.stdout.write(
            "not served by PNCP (kept from the fixtures and the records): "
            + ", ".join(unserved_tables())
        )
        failed = [r.table for r in reports if r.error]
        if failed:
            raise CommandError(f"domain tables not refreshed: {', '.join(failed)}")

    def show(self, p: Progress) -> None:
        if self.progress_tty:
            done = p.windows_done + p.windows_failed
            width = 30
            filled = int(width * done / p.windows_total) if p.windows_total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stdout.write(
                f"\r[{bar}] {done}/{p.windows_total} windows, {p.records} records, {p.rate:,.0f}/s",
                ending="",
            )
            self.stdout.flush()
        elif p.pages % 100 == 0:
            self.stdout.write(
                f"windows {p.windows_done + p.windows_failed}/{p.windows_total} pages {p.pages} "
                f"records {p.records} ({p.rate:,.0f}/s)"
            )

    def finish(self, run: SyncRun, p: Progress):
        if self.progress_tty:
            self.stdout.write("")
        r = p.result
        self.stdout.write(
            f"run #{run.pk} {run.status}: {p.pages} pages; records created {r.created}, "
            f"updated {r.updated}, unchanged {r.unchanged}, rejected {r.rejected}; "
            f"retries {p.retries}; {p.elapsed:.1f}s, {p.rate:,.0f} records/s"
        )
        if r.rejected:
            self.stdout.write(f"{r.rejected} records quarantined: see Rejected records in admin")
        if run.status != SyncRun.Status.SUCCESS:
            for failure in p.failures[:20]:
                self.stderr.write(f"  {failure}")
            if run.mode == "from_dir":
                hint = "fix or remove the files above, then run the same --from-dir again"
            else:
                hint = f"rerun what failed with: python manage.py sync_pncp --resume {run.pk}"
            raise CommandError(f"run #{run.pk} ended {run.status}; {hint}")
