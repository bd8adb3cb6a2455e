"""Check PNCP's Consulta API against what the importer expects (``sync_pncp check``).

PNCP changes its API without notice (the contratações page limit fell from 500 to 50 in
February 2026). Before such a change corrupts a sync, this probes every Consulta endpoint on
a small, recent window (yesterday) and compares:

* **the page limit**: page 1 with ``tamanhoPagina`` = our configured maximum must be accepted
  and with maximum + 1 refused. A refused maximum means PNCP lowered its limit; an accepted
  maximum + 1 means it raised it or stopped enforcing it;
* **the payload shape**: the keys our parsers read (recorded while parsing PNCP's own sample
  answers in ``pncp/sample_data`` and the live answer) against the keys of the live answer. A
  key PNCP sends that no parser reads is a *new field* (it lands only in the raw payload); a
  key the parsers read that no record of the answer carries is a *missing field* (it would
  be stored empty); records the parsers refuse would be quarantined.

Findings are stored as a ``ContractCheck`` row (shown in the admin) and printed by the
command, which exits non-zero on drift. Detail-only keys, alternative spellings and fields
deliberately kept only in the raw payload are declared below, so a check of today's PNCP
reports no drift.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from django.db.models import Count
from django.utils import timezone

from pncp.client import PNCPClient, PNCPError, PNCPPageSizeError, PNCPRequestError
from pncp.ingest import SPECS
from pncp.models import ContractCheck, ItemPCA, PlanoContratacao
from pncp.parsers import ParseError
from pncp.resources import ENDPOINTS, EndpointSpec

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
# The busiest modalidades (Pregão eletrônico, Dispensa): a day of them always has records.
PROBE_MODALIDADES = (6, 8)

# Keys the parsers read that an answer need not carry.
OPTIONAL_KEYS: dict[str, set[str]] = {
    # Only the detail service (/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}) sends these.
    "contratacoes": {
        "existeResultado",
        "indicadorOrcamentoSigiloso",
        "orcamentoSigilosoCodigo",
        "orcamentoSigilosoDescricao",
    },
}
# Spellings of one field the parsers accept: one of each group is enough.
ALTERNATIVES: list[set[str]] = [
    {"tipoInstrumentoConvocatorioCodigo", "tipoInstrumentoConvocatorioId"},
    {"numeroControlePNCPCompra", "numeroControlePncpCompra"},
    {"numeroControlePNCPAta", "numeroControlePncpAta"},
    {"dataPublicacaoPNCP", "dataPublicacaoPncp"},
]
# Keys PNCP sends that we keep only in the raw payload, on purpose.
RAW_ONLY_KEYS: dict[str, set[str]] = {
    "contratacoes": {"amparoLegal.descricao"},  # the domain table holds descriptions
    "atas": {"nomeOrgaoSubrogado"},  # read only when cnpjOrgaoSubrogado is set
}


@dataclass
class Finding:
    endpoint: str
    check: str  # page_limit, new_field, missing_field, parse_error, no_data, skipped, error
    expected: str
    observed: str
    drift: bool = False
    error: bool = False


# --- recording which keys a parser reads ---------------------------------------------------------


class _Recorder(dict):
    """A dict that notes every key looked up in it (and in the objects nested in it)."""

    def __init__(self, data: dict, prefix: str, seen: set[str]) -> None:
        super().__init__({k: _wrap(v, f"{prefix}{k}", seen) for k, v in data.items()})
        self._prefix = prefix
        self._seen = seen

    def get(self, key, default=None):
        self._seen.add(f"{self._prefix}{key}")
        return super().get(key, default)

    def __getitem__(self, key):
        self._seen.add(f"{self._prefix}{key}")
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self._seen.add(f"{self._prefix}{key}")
        return super().__contains__(key)


def _wrap(value, path: str, seen: set[str]):
    if isinstance(value, dict):
        return _Recorder(value, f"{path}.", seen)
    if isinstance(value, list):
        return [_wrap(v, f"{path}[]", seen) for v in value]
    return value


def keys_read(resource: str, record: dict) -> tuple[set[str], str | None]:
    """The dotted keys the parser of ``resource`` reads in ``record``, and its ParseError."""
    seen: set[str] = set()
    try:
        SPECS[resource].parse(_Recorder(record, "", seen))
    except ParseError as exc:
        return seen, str(exc)
    return seen, None


def keys_present(record: dict, prefix: str = "") -> set[str]:
    """Dotted keys of ``record``, through nested objects and lists of objects (``a[].b``)."""
    keys = set()
    for key, value in record.items():
        path = f"{prefix}{key}"
        keys.add(path)
        if isinstance(value, dict):
            keys |= keys_present(value, f"{path}.")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    keys |= keys_present(item, f"{path}[].")
    return keys


@cache
def reference_keys(resource: str) -> frozenset[str]:
    """What the parser reads in PNCP's own sample answers of ``resource``."""
    seen: set[str] = set()
    for path in sorted((SAMPLE_DIR / resource).glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        records = body["data"] if isinstance(body, dict) and "data" in body else body
        for record in records if isinstance(records, list) else [records]:
            seen |= keys_read(resource, record)[0]
    return frozenset(seen)


def compare_shape(resource: str, records: list[dict]) -> tuple[set, set, dict[str, int]]:
    """(new keys, missing keys, parse errors by reason) of an answer's records."""
    read = set(reference_keys(resource))
    present: set[str] = set()
    errors: dict[str, int] = {}
    for record in records:
        if not isinstance(record, dict):
            errors["record is not a JSON object"] = errors.get("record is not a JSON object", 0) + 1
            continue
        seen, error = keys_read(resource, record)
        read |= seen
        present |= keys_present(record)
        if error:
            errors[error] = errors.get(error, 0) + 1
    # Nested keys count only inside objects the parsers read into; the others (such as
    # fontesOrcamentarias) are stored whole and their inner shape is not ours to check.
    parents = {key.rsplit(".", 1)[0] for key in read if "." in key}
    present = {k for k in present if "." not in k or k.rsplit(".", 1)[0] in parents}
    new = present - read - RAW_ONLY_KEYS.get(resource, set())
    missing = set()
    for key in read - present - OPTIONAL_KEYS.get(resource, set()):
        parent = key.rsplit(".", 1)[0] if "." in key else None
        if parent and not any(k.startswith(f"{parent}.") for k in present):
            continue  # the parent object is null in every record: nothing to compare
        if any(key in group and group & present for group in ALTERNATIVES):
            continue
        missing.add(key)
    return new, missing, errors


# --- probing ----------------------------------------------------------------------------------


def probe_params(spec: EndpointSpec, day: date, today: date) -> dict | None:
    """Query parameters of the probe of ``spec`` (None: nothing known to probe it with)."""
    params: dict = {}
    if spec.date_params:
        first, last = spec.date_params
        if first:
            params[first] = day.strftime("%Y%m%d")
            params[last] = day.strftime("%Y%m%d")
        else:  # proposta: dataFinal must be today or later
            params[last] = today.strftime("%Y%m%d")
    for name in spec.required:
        if name == "anoPca":
            params[name] = day.year
        elif name == "idUsuario":
            value = _most_common(PlanoContratacao, "id_usuario")
            if value is None:
                return None
            params[name] = value
        elif name == "codigoClassificacaoSuperior":
            value = _most_common(ItemPCA, "classificacao_superior_codigo")
            if value is None:
                return None
            params[name] = value
        else:
            return None
    return params


def _most_common(model, column: str):
    row = (
        model.objects.exclude(**{f"{column}__isnull": True})
        .values(column)
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )
    return row[column] if row else None


def check_endpoint(client: PNCPClient, spec: EndpointSpec, day: date, today: date):
    """Findings of one Consulta endpoint: its page limit and the shape of its records."""
    params = probe_params(spec, day, today)
    if params is None:
        needs = " and ".join(spec.required)
        return [Finding(spec.name, "skipped", f"a known {needs}", "none stored yet to probe with")]
    variants = [params]
    if spec.modalidade != "none":
        variants = [{**params, "codigoModalidadeContratacao": m} for m in PROBE_MODALIDADES]
    maximum = spec.page_size
    findings = []
    records: list[dict] = []
    try:
        accepted = True
        for variant in variants:
            try:
                page = client.get_page(
                    spec.path, {**variant, "pagina": 1, "tamanhoPagina": maximum}
                )
            except PNCPPageSizeError as exc:
                accepted = False
                if exc.limit:
                    observed = f"refused: PNCP now allows at most {exc.limit}"
                else:
                    observed = f"refused (HTTP {exc.status}: {exc.message[:100] or 'no message'})"
                findings.append(
                    Finding(
                        spec.name,
                        "page_limit",
                        f"tamanhoPagina={maximum} accepted",
                        observed,
                        drift=True,
                    )
                )
                break
            records = page.data
            if records:
                break
        if not accepted:
            return findings  # the limit changed: the shape waits for a page we may ask
        findings.append(_probe_above(client, spec, variants[0], maximum))
    except PNCPError as exc:
        return [*findings, Finding(spec.name, "error", "an answer", str(exc)[:300], error=True)]
    if not records:
        findings.append(
            Finding(spec.name, "no_data", "records to compare", "none in the probe window")
        )
        return findings
    new, missing, errors = compare_shape(spec.resource, records)
    for key in sorted(new):
        findings.append(
            Finding(spec.name, "new_field", "not in the answer", f"{key} (in raw only)", drift=True)
        )
    for key in sorted(missing):
        findings.append(
            Finding(spec.name, "missing_field", f"{key} in the answer", "absent", drift=True)
        )
    for reason, count in sorted(errors.items()):
        findings.append(
            Finding(
                spec.name,
                "parse_error",
                "every record parsed",
                f"{count} of {len(records)} would be quarantined: {reason[:160]}",
                drift=True,
            )
        )
    if not (new or missing or errors):
        findings.append(
            Finding(
                spec.name, "shape", "the keys our parsers read", f"same, in {len(records)} records"
            )
        )
    return findings


def _probe_above(client: PNCPClient, spec: EndpointSpec, params: dict, maximum: int) -> Finding:
    """Ask one record more than the maximum: PNCP must refuse it."""
    above = maximum + 1
    try:
        client.get_page(spec.path, {**params, "pagina": 1, "tamanhoPagina": above})
    except PNCPRequestError as exc:  # page-size refusal (or any 4xx: only the size differs)
        return Finding(
            spec.name,
            "page_limit",
            f"max {maximum}: {maximum} accepted, {above} refused",
            f"same ({above} refused with HTTP {exc.status})",
        )
    return Finding(
        spec.name,
        "page_limit",
        f"tamanhoPagina={above} refused",
        f"accepted: PNCP raised its limit above {maximum} or stopped enforcing it",
        drift=True,
    )


def run_contract_check(
    *,
    client: PNCPClient | None = None,
    day: date | None = None,
    endpoints: list[str] | None = None,
    trigger: str = "cli",
) -> ContractCheck:
    """Probe every paged Consulta endpoint and store the findings as a ContractCheck."""
    client = client or PNCPClient()
    today = timezone.localdate()
    day = day or today - timedelta(days=1)
    specs = [
        spec
        for spec in ENDPOINTS.values()
        if not spec.unpaged and (endpoints is None or spec.name in endpoints)
    ]
    findings: list[Finding] = []
    for spec in specs:
        findings += check_endpoint(client, spec, day, today)
    if any(f.drift for f in findings):
        status = ContractCheck.Status.DRIFT
    elif any(f.error for f in findings):
        status = ContractCheck.Status.ERROR
    else:
        status = ContractCheck.Status.OK
    return ContractCheck.objects.create(
        status=status,
        window=day,
        endpoints=len(specs),
        findings=[asdict(f) for f in findings],
        trigger=trigger,
    )


def format_findings(check: ContractCheck) -> list[str]:
    """The findings as a plain-text table, drift first."""
    rows = sorted(check.findings, key=lambda f: (not f["drift"], not f["error"]))
    headers = ("endpoint", "check", "expected", "observed", "result")
    table = [
        (
            f["endpoint"],
            f["check"],
            f["expected"],
            f["observed"],
            "DRIFT" if f["drift"] else "ERROR" if f["error"] else "ok",
        )
        for f in rows
    ]
    widths = [
        min(90, max(len(h), *(len(r[i]) for r in table))) if table else len(h)
        for i, h in enumerate(headers)
    ]

    def line(cells) -> str:
        return "  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line("-" * w for w in widths), *(line(r) for r in table)]
