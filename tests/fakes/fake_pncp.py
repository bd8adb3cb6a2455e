"""A fake of PNCP's Consulta API (``/api/consulta``) for end-to-end tests of the importer.

It serves the real paths, parameters, envelope, page-size limits and status codes described
in ``/work/shared/pncp/endpoints.md`` from a :class:`FakeDataset` the tests control, and can
inject the faults seen in production (429, 5xx, spurious 422, slow or hanging answers,
truncated bodies). Everything runs in a background thread::

    dataset = FakeDataset.generate(contratacoes=200, contratos=100, start=date(2025, 7, 1), days=10)
    with FakePNCP(dataset, faults=FaultConfig(rate_429=0.1, seed=7)) as fake:
        requests.get(f"{fake.base_url}/v1/contratos", params={...})
        fake.requests(path="/v1/contratos")  # the request log

Where PNCP's exact wording is unknown (bad date format, page past the end, 404 of a compra)
the messages below are invented but have PNCP's error-body shape. Known texts are verbatim:
the 365-day 422, the proposta 422 (``samples/error_2.json``) and the shape of the 404
(``samples/error_1.json``).

It also serves the part of PNCP's main API (``/api/pncp``) the importer uses, with the shapes
of that API's OpenAPI document: the itens of a compra (a bare JSON array, paged with
``pagina``/``tamanhoPagina``), the resultados of an item, both answering 404 when there is
nothing, and the domain-table services (``/v1/modalidades``, ...). Tests can change a page
limit (``page_limits``), add or remove a field in the records served (``add_field``,
``remove_field``) and edit the domain lists (``domains``).

Run standalone with ``python -m tests.fakes.fake_pncp --port 8765 --contratacoes 5000 --seed 1``.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import copy
import json
import math
import os
import random
import re
import socket
import sys
import threading
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

BASE_PATH = "/api/consulta"
ERROR_CONTEXT_PATH = "/pncp-consulta"  # PNCP's error bodies show this internal context path
MAIN_BASE_PATH = "/api/pncp"  # PNCP's main API; its requests are logged with this prefix
MAIN_ERROR_CONTEXT_PATH = "/pncp-api"
ITENS_LIMIT = "itens"  # page_limits key of the itens list (the OpenAPI declares no maximum)

RESOURCES = ("contratacoes", "contratos", "atas", "pca")
KEY_FIELD = {
    "contratacoes": "numeroControlePNCP",
    "contratos": "numeroControlePNCP",
    "atas": "numeroControlePNCPAta",
    "pca": "idPcaPncp",
}
PUBLICATION_FIELD = {
    "contratacoes": "dataPublicacaoPncp",
    "contratos": "dataPublicacaoPncp",
    "atas": "dataPublicacaoPncp",
    "pca": "dataPublicacaoPNCP",
}
UPDATE_FIELD = {
    "contratacoes": "dataAtualizacaoGlobal",
    "contratos": "dataAtualizacaoGlobal",
    "atas": "dataAtualizacaoGlobal",
    "pca": "dataAtualizacaoGlobalPCA",
}

PAGE_MIN = 10
MAX_WINDOW_DAYS = 365
DEFAULT_PAGE_LIMITS = {
    "/v1/contratacoes/publicacao": 50,
    "/v1/contratacoes/atualizacao": 50,
    "/v1/contratacoes/proposta": 50,
    "/v1/atas": 500,
    "/v1/atas/atualizacao": 500,
    "/v1/contratos": 500,
    "/v1/contratos/atualizacao": 500,
    "/v1/pca/usuario": 500,
    "/v1/pca/": 500,
    "/v1/pca/atualizacao": 500,
}

MSG_WINDOW_TOO_LONG = "Período inicial e final maior que 365 dias."
MSG_PROPOSTA_PAST = "Data Final inválida. Data Final deve ser maior ou igual a data atual"
MSG_INVERTED_WINDOW = "Data Inicial deve ser anterior ou igual à Data Final."

# Domain tables (Manual de Consulta, tabelas de domínio).
MODALIDADES = {
    1: "Leilão - Eletrônico",
    2: "Diálogo Competitivo",
    3: "Concurso",
    4: "Concorrência - Eletrônica",
    5: "Concorrência - Presencial",
    6: "Pregão - Eletrônico",
    7: "Pregão - Presencial",
    8: "Dispensa de Licitação",
    9: "Inexigibilidade",
    10: "Manifestação de Interesse",
    11: "Pré-qualificação",
    12: "Credenciamento",
    13: "Leilão - Presencial",
}
MODOS_DISPUTA = {
    1: "Aberto",
    2: "Fechado",
    3: "Aberto-Fechado",
    4: "Dispensa Com Disputa",
    5: "Não se aplica",
    6: "Fechado-Aberto",
}
# idUsuario of the publishing systems. The names are real (from the sample pages); the ids
# are invented: PNCP's records carry only the name, so the fake keeps the id beside the record.
USUARIOS = {
    3: "Compras.gov.br",
    5: "Contratos.gov.br",
    11: "PROCERGS - CENTRO DE TECNOLOGIA DA INFORMACAO E COMUNICACAO DO ESTADO DO RIO GRANDE DO"
    " SUL S.A.",
    12: "SMARAPD INFORMATICA LTDA",
    13: "Bolsa Nacional De Compras - BNC",
    14: "Governançabrasil Tecnologia e Gestão em Serviços",
    15: "Inovea Tecnologia Ltda",
    16: "CONAM Consultoria em Administração Municipal Ltda",
    17: "IPM Sistemas",
}
_USUARIO_IDS = {name: uid for uid, name in USUARIOS.items()}

# Extra municípios (capitals) so generated data spans more UFs than the sample pages do.
_EXTRA_PLACES = [
    ("DF", "Distrito Federal", "Brasília", "5300108"),
    ("RJ", "Rio de Janeiro", "Rio de Janeiro", "3304557"),
    ("MG", "Minas Gerais", "Belo Horizonte", "3106200"),
    ("BA", "Bahia", "Salvador", "2927408"),
    ("PE", "Pernambuco", "Recife", "2611606"),
    ("CE", "Ceará", "Fortaleza", "2304400"),
    ("PA", "Pará", "Belém", "1501402"),
    ("AM", "Amazonas", "Manaus", "1302603"),
    ("GO", "Goiás", "Goiânia", "5208707"),
    ("PR", "Paraná", "Curitiba", "4106902"),
]


# --------------------------------------------------------------------------------------------
# Samples and small helpers
# --------------------------------------------------------------------------------------------


def samples_dir() -> Path:
    """The directory with real PNCP pages used as record templates."""
    candidates = [
        os.environ.get("PNCP_SAMPLES_DIR"),
        Path(__file__).resolve().parent.parent / "data" / "samples",
        "/work/shared/pncp/samples",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "contratacao_1.json").is_file():
            return Path(candidate)
    raise FileNotFoundError("no PNCP samples directory (tests/data/samples) found")


@cache
def _sample(name: str) -> str:
    return (samples_dir() / name).read_text(encoding="utf-8")


def _sample_records(name: str) -> list[dict]:
    payload = json.loads(_sample(name))
    if isinstance(payload, dict) and "data" in payload:
        return payload["data"]
    return [payload]


def _cnpj(base12: str) -> str:
    """Append the two CNPJ check digits to a 12-digit base."""

    def digit(digits: str, weights: list[int]) -> str:
        rest = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
        return "0" if rest < 2 else str(11 - rest)

    w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    d1 = digit(base12, w1)
    return base12 + d1 + digit(base12 + d1, [6, *w1])


def _dt(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _d(value: date | datetime) -> str:
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _get(record: dict, path: tuple[str, ...]):
    value = record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _utc_stamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+00:00"


def _brt_stamp() -> str:
    now = datetime.now(timezone(timedelta(hours=-3)))
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}-03:00"


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------

# Query filters by name -> where the value lives in each resource's records.
_FILTER_PATHS = {
    "contratacoes": {
        "cnpj": ("orgaoEntidade", "cnpj"),
        "uf": ("unidadeOrgao", "ufSigla"),
        "ibge": ("unidadeOrgao", "codigoIbge"),
        "unidade": ("unidadeOrgao", "codigoUnidade"),
        "modalidade": ("modalidadeId",),
        "modo_disputa": ("modoDisputaId",),
    },
    "contratos": {
        "cnpj": ("orgaoEntidade", "cnpj"),
        "unidade": ("unidadeOrgao", "codigoUnidade"),
    },
    "atas": {"cnpj": ("cnpjOrgao",), "unidade": ("codigoUnidadeOrgao",)},
    "pca": {"cnpj": ("orgaoEntidadeCnpj",), "unidade": ("codigoUnidade",), "ano": ("anoPca",)},
}


class FakeDataset:
    """The records the fake serves, indexed by date. Thread-safe.

    Records are stored as given (PNCP field names, PNCP quirks). A stored record is never
    mutated in place: :meth:`update` replaces it, so pages already being serialised by the
    server stay consistent. Beside each record the dataset keeps its ``idUsuario`` (the id of
    the publishing system, which PNCP filters on but does not return).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict]] = {r: {} for r in RESOURCES}
        self._usuarios: dict[str, dict[str, int | None]] = {r: {} for r in RESOURCES}
        self._version = 0
        self._sorted: dict[tuple[str, str], tuple[list[str], list[dict]]] = {}
        self._compras: dict[tuple[str, int, int], dict] | None = None
        self._query_cache: dict[tuple, list[dict]] = {}
        self._indexed_version = -1
        self._sequences: Counter = Counter()
        # Main API sub-resources, by compra (numeroControlePNCP) and (compra, numeroItem).
        self._itens: dict[str, list[dict]] = {}
        self._resultados: dict[tuple[str, int], list[dict]] = {}

    # ---- writing ---------------------------------------------------------------------------

    def add(self, resource: str, record: dict, *, id_usuario: int | None = None) -> str:
        """Add (or replace) one record; returns its key. The record is copied."""
        with self._lock:
            key = self._put(resource, copy.deepcopy(record), id_usuario)
            self._version += 1
        return key

    def add_many(self, resource: str, records: Iterable[dict]) -> list[str]:
        with self._lock:
            keys = [self._put(resource, copy.deepcopy(r), None) for r in records]
            self._version += 1
        return keys

    def update(self, resource: str, key: str, *, at: datetime | None = None, **changes) -> dict:
        """Change fields of a record and bump its update dates, as PNCP does on a change.

        Dict values are merged one level deep (``unidadeOrgao={"ufSigla": "SP"}`` keeps the
        other unidade fields). ``dataAtualizacao``/``dataAtualizacaoGlobal`` (PCA:
        ``dataAtualizacaoGlobalPCA``; atas: date-only values) become ``at`` (default: now),
        unless ``changes`` sets them. Returns a copy of the new record.
        """
        at = (at or datetime.now()).replace(microsecond=0)
        with self._lock:
            old = self._require(resource, key)
            new = copy.deepcopy(old)
            for name, value in changes.items():
                if isinstance(value, dict) and isinstance(new.get(name), dict):
                    new[name].update(copy.deepcopy(value))
                else:
                    new[name] = copy.deepcopy(value)
            stamp = _d(at) if resource == "atas" else _dt(at)
            if resource == "pca":
                bumped = ("dataAtualizacaoGlobalPCA",)
            else:
                bumped = ("dataAtualizacao", "dataAtualizacaoGlobal")
            for name in bumped:
                if name not in changes:
                    new[name] = stamp
            if new.get(KEY_FIELD[resource]) != key:
                raise ValueError(f"update() cannot change the key {KEY_FIELD[resource]}")
            self._records[resource][key] = new
            self._version += 1
            return copy.deepcopy(new)

    def delete(self, resource: str, key: str) -> None:
        with self._lock:
            self._require(resource, key)
            del self._records[resource][key]
            self._usuarios[resource].pop(key, None)
            self._version += 1

    # ---- reading ---------------------------------------------------------------------------

    def records(self, resource: str) -> list[dict]:
        """Copies of all records of a resource, in insertion order."""
        self._check(resource)
        with self._lock:
            return copy.deepcopy(list(self._records[resource].values()))

    def keys(self, resource: str) -> list[str]:
        self._check(resource)
        with self._lock:
            return list(self._records[resource])

    def get(self, resource: str, key: str) -> dict | None:
        self._check(resource)
        with self._lock:
            record = self._records[resource].get(key)
            return copy.deepcopy(record) if record is not None else None

    def id_usuario(self, resource: str, key: str) -> int | None:
        with self._lock:
            self._require(resource, key)
            return self._usuarios[resource].get(key)

    def count(self, resource: str) -> int:
        self._check(resource)
        return len(self._records[resource])

    def counts(self) -> dict[str, int]:
        return {r: self.count(r) for r in RESOURCES}

    @property
    def version(self) -> int:
        """Increases on every change; the server's query cache is keyed on it."""
        return self._version

    # ---- itens and resultados (PNCP's main API) ------------------------------------------

    def set_itens(self, compra: str, itens: Iterable[dict]) -> None:
        """Replace the itens of a compra (copied, kept in numeroItem order)."""
        with self._lock:
            ordered = sorted(copy.deepcopy(list(itens)), key=lambda i: i["numeroItem"])
            self._itens[compra] = ordered

    def itens(self, compra: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._itens.get(compra, []))

    def set_resultados(self, compra: str, numero_item: int, resultados: Iterable[dict]) -> None:
        with self._lock:
            self._resultados[(compra, numero_item)] = copy.deepcopy(list(resultados))

    def resultados(self, compra: str, numero_item: int) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._resultados.get((compra, numero_item), []))

    def compras_with_itens(self) -> list[str]:
        with self._lock:
            return [compra for compra, itens in self._itens.items() if itens]

    def item_counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "itens": sum(len(i) for i in self._itens.values()),
                "resultados": sum(len(r) for r in self._resultados.values()),
            }

    def update_resultado(
        self, compra: str, numero_item: int, sequencial: int, *, at: datetime | None = None, **ch
    ) -> dict:
        """Change fields of a resultado and bump its dataAtualizacao, as PNCP does."""
        at = (at or datetime.now()).replace(microsecond=0)
        with self._lock:
            resultados = self._resultados[(compra, numero_item)]
            for i, old in enumerate(resultados):
                if old["sequencialResultado"] == sequencial:
                    new = {**copy.deepcopy(old), "dataAtualizacao": _dt(at), **copy.deepcopy(ch)}
                    resultados[i] = new
                    return copy.deepcopy(new)
            raise KeyError(f"no resultado {sequencial} of item {numero_item} of {compra}")

    def generate_itens(
        self, *, seed: int = 0, max_itens: int = 5, compras: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Itens (0..max_itens per compra: some compras have none) and their resultados.

        Shapes follow the main API's ``RecuperarCompraItemSigiloDTO`` and
        ``RecuperarCompraItemResultadoDTO``, with codes as the integers real answers carry.
        Fornecedores come from a small pool, so several resultados share one.
        """
        rng = random.Random(f"itens|{seed}")
        with self._lock:
            keys = list(compras) if compras is not None else list(self._records["contratacoes"])
            for compra in keys:
                record = self._records["contratacoes"].get(compra)
                if record is None:
                    raise KeyError(f"no contratação {compra!r}")
                published = datetime.fromisoformat(record["dataPublicacaoPncp"])
                itens = [_item(rng, n, published) for n in range(1, rng.randint(0, max_itens) + 1)]
                self._itens[compra] = itens
                for item in itens:
                    if item["temResultado"]:
                        count = 2 if rng.random() < 0.2 else 1
                        self._resultados[(compra, item["numeroItem"])] = [
                            _resultado(rng, compra, item, seq) for seq in range(1, count + 1)
                        ]
            return self.item_counts()

    # ---- queries used by the server (results are shared: treat them as read-only) ---------

    def select(
        self,
        resource: str,
        *,
        mode: str,
        date_field: str | None = None,
        lo: str | None = None,
        hi: str | None = None,
        filters: tuple[tuple[str, object], ...] = (),
    ) -> list[dict]:
        """Records matching a query, in a stable order.

        ``mode`` is ``"range"`` (``lo <= record[date_field] < hi``, ISO strings, ordered by that
        field then key), ``"overlap"`` (atas whose vigência intersects ``[lo, hi)``, ordered by
        vigenciaInicio then key) or ``"all"`` (ordered by key). ``filters`` are
        ``(name, value)`` pairs; names: cnpj, uf, ibge, unidade, modalidade, modo_disputa, ano,
        usuario, classificacao.
        """
        cache_key = (resource, mode, date_field, lo, hi, filters)
        with self._lock:
            self._refresh_indexes()
            cached = self._query_cache.get(cache_key)
            if cached is not None:
                return cached
            if mode == "range":
                values, ordered = self._sorted_on(resource, date_field)
                start, end = bisect.bisect_left(values, lo), bisect.bisect_left(values, hi)
                candidates = ordered[start:end]
            elif mode == "overlap":
                values, ordered = self._sorted_on(resource, "vigenciaInicio")
                end = bisect.bisect_left(values, hi)
                candidates = [
                    r for r in ordered[:end] if not r.get("vigenciaFim") or r["vigenciaFim"] >= lo
                ]
            elif mode == "all":
                candidates = self._sorted_on(resource, KEY_FIELD[resource])[1]
            else:
                raise ValueError(f"unknown mode {mode!r}")
            result = [r for r in candidates if self._matches(resource, r, filters)]
            if len(self._query_cache) > 512:
                self._query_cache.clear()
            self._query_cache[cache_key] = result
            return result

    def compra(self, cnpj: str, ano: int, sequencial: int) -> dict | None:
        """The contratação with this órgão CNPJ, anoCompra and sequencialCompra."""
        with self._lock:
            self._refresh_indexes()
            if self._compras is None:
                self._compras = {
                    (
                        _get(r, ("orgaoEntidade", "cnpj")),
                        r.get("anoCompra"),
                        r.get("sequencialCompra"),
                    ): r
                    for r in self._records["contratacoes"].values()
                }
            return self._compras.get((cnpj, ano, sequencial))

    # ---- generation ------------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        *,
        contratacoes: int = 0,
        contratos: int = 0,
        atas: int = 0,
        pcas: int = 0,
        start: date | None = None,
        days: int = 30,
        seed: int = 0,
    ) -> FakeDataset:
        """A new dataset of realistic records cloned from real sample pages (see populate)."""
        dataset = cls()
        dataset.populate(
            contratacoes=contratacoes,
            contratos=contratos,
            atas=atas,
            pcas=pcas,
            start=start,
            days=days,
            seed=seed,
        )
        return dataset

    def populate(
        self,
        *,
        contratacoes: int = 0,
        contratos: int = 0,
        atas: int = 0,
        pcas: int = 0,
        start: date | None = None,
        days: int = 30,
        seed: int = 0,
    ) -> dict[str, list[str]]:
        """Add generated records; returns the new keys per resource.

        Publication dates are spread over ``days`` days from ``start`` (default: 30 days
        before today); update dates are the publication date or a few days later. Contratações
        cycle through modalidades 1..13. Half of the contratos and all atas point at generated
        contratações (when there are any). Keys follow PNCP's masks and are unique within the
        dataset, so ``populate`` may be called repeatedly.
        """
        start = start or (date.today() - timedelta(days=30))
        days = max(1, days)
        with self._lock:
            generator = _Generator(self, random.Random(seed), start, days)
            compras = [generator.contratacao(i) for i in range(contratacoes)]
            new = {
                "contratacoes": compras,
                "contratos": [generator.contrato(i, compras) for i in range(contratos)],
                "atas": [generator.ata(i, compras) for i in range(atas)],
            }
            new["pca"] = [generator.pca(i) for i in range(pcas)]
            keys = {}
            for resource, items in new.items():
                keys[resource] = [self._put(resource, rec, uid) for rec, uid in items]
            self._version += 1
            return keys

    def next_sequence(self, scope: tuple) -> int:
        with self._lock:
            self._sequences[scope] += 1
            return self._sequences[scope]

    # ---- internals -------------------------------------------------------------------------

    def _check(self, resource: str) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}; use one of {RESOURCES}")

    def _require(self, resource: str, key: str) -> dict:
        self._check(resource)
        record = self._records[resource].get(key)
        if record is None:
            raise KeyError(f"no {resource} record {key!r}")
        return record

    def _put(self, resource: str, record: dict, id_usuario: int | None) -> str:
        self._check(resource)
        key = record.get(KEY_FIELD[resource])
        if not key:
            raise ValueError(f"{resource} record without {KEY_FIELD[resource]}")
        if id_usuario is None:
            name = record.get("usuarioNome") or record.get("usuario")
            if name:
                id_usuario = _USUARIO_IDS.get(name) or 1000 + zlib.crc32(name.encode()) % 9000
        self._records[resource][key] = record
        self._usuarios[resource][key] = id_usuario
        return key

    def _refresh_indexes(self) -> None:
        if self._indexed_version != self._version:
            self._sorted.clear()
            self._query_cache.clear()
            self._compras = None
            self._indexed_version = self._version

    def _sorted_on(self, resource: str, field: str) -> tuple[list[str], list[dict]]:
        index = self._sorted.get((resource, field))
        if index is None:
            key_field = KEY_FIELD[resource]
            rows = sorted(
                (str(r[field]), r[key_field], r)
                for r in self._records[resource].values()
                if r.get(field) is not None
            )
            index = ([v for v, _, _ in rows], [r for _, _, r in rows])
            self._sorted[(resource, field)] = index
        return index

    def _matches(self, resource: str, record: dict, filters: tuple) -> bool:
        for name, expected in filters:
            if name == "usuario":
                actual = self._usuarios[resource].get(record[KEY_FIELD[resource]])
                if actual != expected:
                    return False
            elif name == "classificacao":
                itens = record.get("itens") or []
                if not any(i.get("classificacaoSuperiorCodigo") == expected for i in itens):
                    return False
            elif name == "uf":
                actual = _get(record, _FILTER_PATHS[resource][name])
                if str(actual).upper() != str(expected).upper():
                    return False
            elif str(_get(record, _FILTER_PATHS[resource][name])) != str(expected):
                return False
        return True


_FORNECEDORES = [
    (_cnpj(f"{11000000 + n * 7331:08d}0001"), name, porte, natureza)
    for n, (name, porte, natureza) in enumerate(
        [
            ("COMERCIAL SANTA LUZIA LTDA", 1, "2062"),
            ("DISTRIBUIDORA NORTE SUL EIRELI", 2, "2062"),
            ("FRESENIUS KABI BRASIL LTDA.", 3, "2062"),
            ("JOAO DA SILVA MATERIAIS", 1, "2135"),
            ("MEDILAR S/A", 3, "2054"),
            ("TECNO INFORMATICA LTDA", 2, "2062"),
        ]
    )
]
_PORTES = {1: "ME", 2: "EPP", 3: "Demais"}
_NATUREZAS = {
    "2062": "Sociedade Empresária Limitada",
    "2135": "Empresário (Individual)",
    "2054": "Sociedade Anônima Fechada",
}
_DESCRICOES = [
    ("M", "DIPIRONA SÓDICA 500MG/ML, SOLUÇÃO INJETÁVEL", "AMPOLA 2,00 ML"),
    ("M", "PAPEL A4, 75 G/M2, BRANCO, PACOTE COM 500 FOLHAS", "PACOTE"),
    ("M", "CADEIRA GIRATÓRIA COM BRAÇOS, ESTOFADA ", "UNIDADE"),
    ("S", "SERVIÇO DE MANUTENÇÃO PREVENTIVA E CORRETIVA DE AR CONDICIONADO", "SERVIÇO"),
    ("M", "NOTEBOOK 14 POLEGADAS, 16GB RAM, SSD 512GB", "UNIDADE"),
    ("S", "LOCAÇÃO DE VEÍCULO TIPO SEDAN COM MOTORISTA", "MÊS"),
]
_SITUACOES_ITEM = {1: "Em Andamento", 2: "Homologado", 4: "Deserto", 5: "Fracassado"}


def _item(rng: random.Random, numero: int, published: datetime) -> dict:
    kind, descricao, unidade = rng.choice(_DESCRICOES)
    quantidade = float(rng.choice([1, 2, 10, 12, 50, 100, 1000, 4638000]))
    unitario = round(rng.uniform(0.05, 9000), 4)
    situacao = rng.choice([2, 2, 2, 1, 4, 5])
    included = published + timedelta(minutes=rng.randint(1, 120))
    catalogado = rng.random() < 0.5
    margem = rng.random() < 0.1
    return {
        "numeroItem": numero,
        "descricao": descricao,
        "materialOuServico": kind,
        "materialOuServicoNome": "Material" if kind == "M" else "Serviço",
        "valorUnitarioEstimado": unitario,
        "valorTotal": round(unitario * quantidade, 4),
        "quantidade": quantidade,
        "unidadeMedida": unidade,
        "orcamentoSigiloso": rng.random() < 0.05,
        "itemCategoriaId": 3,
        "itemCategoriaNome": "Não se aplica",
        "patrimonio": None,
        "codigoRegistroImobiliario": None,
        "criterioJulgamentoId": 1,
        "criterioJulgamentoNome": "Menor preço",
        "situacaoCompraItem": situacao,
        "situacaoCompraItemNome": _SITUACOES_ITEM[situacao],
        "tipoBeneficio": 4 if kind == "S" else rng.choice([1, 4]),
        "tipoBeneficioNome": "Sem benefício",
        "incentivoProdutivoBasico": False,
        "dataInclusao": _dt(included),
        "dataAtualizacao": _dt(included + timedelta(days=rng.randint(0, 20))),
        "temResultado": situacao == 2,
        "imagem": 0,
        "aplicabilidadeMargemPreferenciaNormal": margem,
        "aplicabilidadeMargemPreferenciaAdicional": False,
        "percentualMargemPreferenciaNormal": 10.0 if margem else None,
        "percentualMargemPreferenciaAdicional": None,
        "ncmNbsCodigo": "30049099" if catalogado and kind == "M" else None,
        "ncmNbsDescricao": "Outros medicamentos" if catalogado and kind == "M" else None,
        "catalogo": (
            {
                "id": 1,
                "nome": "Compras.gov.br",
                "descricao": "Catálogo de materiais e serviços do Compras.gov.br",
                "dataInclusao": "2022-03-01T10:00:00",
                "dataAtualizacao": "2022-03-01T10:00:00",
                "statusAtivo": True,
                "url": "https://catalogo.compras.gov.br",
            }
            if catalogado
            else None
        ),
        "categoriaItemCatalogo": (
            {
                "id": 1 if kind == "M" else 2,
                "nome": "Material" if kind == "M" else "Serviço",
                "descricao": "",
                "dataInclusao": "2022-03-01T10:00:00",
                "dataAtualizacao": "2022-03-01T10:00:00",
                "statusAtivo": True,
            }
            if catalogado
            else None
        ),
        "catalogoCodigoItem": str(rng.randint(100000, 499999)) if catalogado else None,
        "informacaoComplementar": "Entrega parcelada" if rng.random() < 0.3 else None,
        "tipoMargemPreferencia": {"codigo": 1, "nome": "Normal"} if margem else None,
        "exigenciaConteudoNacional": False,
    }


def _resultado(rng: random.Random, compra: str, item: dict, sequencial: int) -> dict:
    ni, nome, porte, natureza = rng.choice(_FORNECEDORES)
    quantidade = item["quantidade"]
    desconto = round(rng.uniform(0, 40), 2)
    unitario = round(item["valorUnitarioEstimado"] * (1 - desconto / 100), 4)
    decided = datetime.fromisoformat(item["dataInclusao"]) + timedelta(days=rng.randint(5, 30))
    estrangeira = rng.random() < 0.1
    return {
        "numeroControlePNCPCompra": compra,
        "numeroItem": item["numeroItem"],
        "sequencialResultado": sequencial,
        "niFornecedor": ni,
        "tipoPessoa": "PJ",
        "nomeRazaoSocialFornecedor": nome,
        "porteFornecedorId": porte,
        "porteFornecedorNome": _PORTES[porte],
        "naturezaJuridicaId": natureza,
        "naturezaJuridicaNome": _NATUREZAS[natureza],
        "codigoPais": "BRA",
        "quantidadeHomologada": quantidade,
        "valorUnitarioHomologado": unitario,
        "valorTotalHomologado": round(unitario * quantidade, 4),
        "percentualDesconto": desconto,
        "timezoneCotacaoMoedaEstrangeira": "America/Sao_Paulo" if estrangeira else None,
        "moedaEstrangeira": (
            {"id": 2, "simbolo": "US$", "nome": "Dólar dos Estados Unidos"} if estrangeira else None
        ),
        "valorNominalMoedaEstrangeira": round(unitario / 5.4, 4) if estrangeira else None,
        "dataCotacaoMoedaEstrangeira": _dt(decided) if estrangeira else None,
        "amparoLegalMargemPreferencia": (
            {"id": 1, "nome": "Lei 14.133/2021, Art. 28, I", "descricao": "", "statusAtivo": True}
            if item["aplicabilidadeMargemPreferenciaNormal"]
            else None
        ),
        "amparoLegalCriterioDesempate": None,
        "paisOrigemProdutoServico": {"id": "USA", "nome": "Estados Unidos"}
        if estrangeira
        else None,
        "indicadorSubcontratacao": False,
        "ordemClassificacaoSrp": sequencial,
        "dataResultado": _d(decided),
        "motivoCancelamento": None,
        "dataCancelamento": None,
        "situacaoCompraItemResultadoId": 1,
        "situacaoCompraItemResultadoNome": "Informado",
        "aplicacaoMargemPreferencia": bool(item["aplicabilidadeMargemPreferenciaNormal"]),
        "aplicacaoBeneficioMeEpp": porte in (1, 2),
        "aplicacaoCriterioDesempate": False,
        "dataInclusao": _dt(decided),
        "dataAtualizacao": _dt(decided),
    }


# Domain table -> the main API's list service (paths of the main API's OpenAPI document).
DOMAIN_PATHS = {
    "modalidade_contratacao": "/v1/modalidades",
    "modo_disputa": "/v1/modos-disputas",
    "criterio_julgamento": "/v1/criterios-julgamentos",
    "instrumento_convocatorio": "/v1/tipos-instrumentos-convocatorios",
    "amparo_legal": "/v1/amparos-legais",
    "categoria_item_pca": "/v1/categoriaItemPcas",
    "tipo_contrato": "/v1/tipos-contratos",
    "tipo_documento": "/v1/tipos-documentos",
    "porte_empresa": "/v1/portes-empresa",
    "tipo_instrumento_cobranca": "/v1/tipos-instrumentos-cobranca",
}
DOMAIN_SOURCE = (
    Path(__file__).resolve().parents[2] / "domain_tables" / "source" / "domain_tables.json"
)


def default_domains() -> dict[str, list[dict]]:
    """Every domain service's answer: the project's domain tables as PNCP would list them."""
    tables = json.loads(DOMAIN_SOURCE.read_text(encoding="utf-8"))
    domains = {}
    for table, path in DOMAIN_PATHS.items():
        rows = []
        for row in tables[table]["rows"]:
            entry = {
                "id": row["codigo"],
                "nome": row["nome"],
                "descricao": row.get("descricao") or "",
                "dataInclusao": "2021-07-01T00:00:00",
                "dataAtualizacao": "2021-07-01T00:00:00",
                "statusAtivo": True,
            }
            if table == "amparo_legal":
                entry["tipoAmparoLegal"] = {
                    "id": 1,
                    "nome": "Contratação",
                    "descricao": "",
                    "statusAtivo": True,
                }
            rows.append(entry)
        domains[path] = rows
    return domains


class _Generator:
    """Builds records by cloning real sample records and varying keys, dates and values."""

    def __init__(self, dataset: FakeDataset, rng: random.Random, start: date, days: int):
        self.dataset = dataset
        self.rng = rng
        self.start = datetime.combine(start, datetime.min.time())
        self.days = days
        self.end_day = start + timedelta(days=days - 1)
        self.contratacao_templates = [json.dumps(r) for r in _sample_records("contratacao_1.json")]
        self.contrato_templates = [json.dumps(r) for r in _sample_records("contrato_2.json")]
        self.ata_templates = [json.dumps(r) for r in _sample_records("ata_1.json")[:25]]
        self.pca_template = json.dumps(_sample_records("pca_1.json")[0])
        self.orgaos = self._orgaos()

    def _orgaos(self) -> list[tuple[dict, dict]]:
        """(orgaoEntidade, unidadeOrgao) pairs: the real ones from the samples plus capitals."""
        pool: dict[tuple, tuple[dict, dict]] = {}
        for name in ("contratacao_1.json", "contrato_2.json"):
            for record in _sample_records(name):
                orgao, unidade = record["orgaoEntidade"], record["unidadeOrgao"]
                pool.setdefault((orgao["cnpj"], unidade["codigoUnidade"]), (orgao, unidade))
        for n, (uf, uf_nome, municipio, ibge) in enumerate(_EXTRA_PLACES):
            cnpj = _cnpj(f"{98000000 + n * 7919:08d}0001")
            orgao = {
                "cnpj": cnpj,
                "razaoSocial": f"MUNICIPIO DE {municipio.upper()}",
                "poderId": "E",
                "esferaId": "M",
            }
            unidade = {
                "ufNome": uf_nome,
                "codigoIbge": ibge,
                "codigoUnidade": f"{ibge[:6]}",
                "nomeUnidade": f"PREFEITURA MUNICIPAL DE {municipio.upper()}",
                "ufSigla": uf,
                "municipioNome": municipio,
            }
            pool[(cnpj, unidade["codigoUnidade"])] = (orgao, unidade)
        return list(pool.values())

    def _moment(self, not_before: datetime | None = None) -> datetime:
        if not_before is None:
            day = self.start + timedelta(days=self.rng.randrange(self.days))
        else:
            first = max(not_before.date(), self.start.date())
            spread = max(0, (self.end_day - first).days)
            day = datetime.combine(first, datetime.min.time())
            day += timedelta(days=self.rng.randint(0, spread))
        moment = day + timedelta(seconds=self.rng.randrange(86400))
        if not_before is not None and moment < not_before:
            moment = not_before + timedelta(seconds=self.rng.randint(1, 600))
        return moment

    def _later(self, moment: datetime) -> datetime:
        """An update date: often the same instant, otherwise minutes to days later."""
        choice = self.rng.random()
        if choice < 0.4:
            return moment
        if choice < 0.8:
            return moment + timedelta(seconds=self.rng.randint(5, 6 * 3600))
        return moment + timedelta(days=self.rng.randint(1, 5), seconds=self.rng.randrange(3600))

    def _orgao(self) -> tuple[dict, dict]:
        orgao, unidade = self.rng.choice(self.orgaos)
        return dict(orgao), dict(unidade)

    def contratacao(self, i: int) -> tuple[dict, int | None]:
        rng = self.rng
        record = json.loads(self.contratacao_templates[i % len(self.contratacao_templates)])
        orgao, unidade = self._orgao()
        published = self._moment()
        year = published.year
        seq = self.dataset.next_sequence(("compra", orgao["cnpj"], year))
        modalidade = 1 + i % 13
        modo = 5 if modalidade in (8, 9, 12) else rng.choice([1, 1, 2, 3, 4, 6])
        estimated = round(rng.uniform(1_000, 5_000_000), 2)
        opening = published.replace(hour=8, minute=0, second=0) + timedelta(days=1)
        updated = self._later(published)
        record.update(
            orgaoEntidade=orgao,
            unidadeOrgao=unidade,
            anoCompra=year,
            sequencialCompra=seq,
            numeroControlePNCP=f"{orgao['cnpj']}-1-{seq:06d}/{year}",
            numeroCompra=f"{seq:04d}",
            processo=f"{seq:04d}/{year}",
            dataInclusao=_dt(published),
            dataPublicacaoPncp=_dt(published),
            dataAtualizacao=_dt(updated),
            dataAtualizacaoGlobal=_dt(self._later(updated)),
            dataAberturaProposta=_dt(opening),
            dataEncerramentoProposta=_dt(opening + timedelta(days=rng.randint(5, 30), hours=1)),
            modalidadeId=modalidade,
            modalidadeNome=MODALIDADES[modalidade],
            modoDisputaId=modo,
            modoDisputaNome=MODOS_DISPUTA[modo],
            srp=rng.random() < 0.5,
            valorTotalEstimado=estimated,
            valorTotalHomologado=(
                round(estimated * rng.uniform(0.7, 1.0), 2) if rng.random() < 0.4 else None
            ),
        )
        return record, None

    def contrato(self, j: int, contratacoes: list[tuple[dict, int | None]]) -> tuple[dict, None]:
        rng = self.rng
        record = json.loads(self.contrato_templates[j % len(self.contrato_templates)])
        linked = j % 2 == 0 and contratacoes
        compra = contratacoes[rng.randrange(len(contratacoes))][0] if linked else None
        if compra is not None:
            orgao, unidade = dict(compra["orgaoEntidade"]), dict(compra["unidadeOrgao"])
            published = self._moment(datetime.fromisoformat(compra["dataPublicacaoPncp"]))
        else:
            orgao, unidade = self._orgao()
            published = self._moment()
        year = published.year
        seq = self.dataset.next_sequence(("contrato", orgao["cnpj"], year))
        compra_key = (
            compra["numeroControlePNCP"]
            if compra is not None
            else f"{orgao['cnpj']}-1-{900000 + j % 99999:06d}/{year}"
        )
        signed = published.date() - timedelta(days=rng.randint(0, 5))
        value = round(rng.uniform(500, 2_000_000), 2)
        updated = self._later(published)
        record.update(
            orgaoEntidade=orgao,
            unidadeOrgao=unidade,
            anoContrato=year,
            sequencialContrato=seq,
            numeroControlePNCP=f"{orgao['cnpj']}-2-{seq:06d}/{year}",
            numeroControlePncpCompra=compra_key,
            numeroContratoEmpenho=f"{seq}/{year}",
            dataAssinatura=_d(signed),
            dataVigenciaInicio=_d(signed),
            dataVigenciaFim=_d(signed + timedelta(days=rng.randint(30, 730))),
            dataPublicacaoPncp=_dt(published),
            dataAtualizacao=_dt(updated),
            dataAtualizacaoGlobal=_dt(self._later(updated)),
            valorInicial=value,
            valorGlobal=value,
            valorParcela=value,
            valorAcumulado=value,
        )
        return record, None

    def ata(self, k: int, contratacoes: list[tuple[dict, int | None]]) -> tuple[dict, None]:
        rng = self.rng
        record = json.loads(self.ata_templates[k % len(self.ata_templates)])
        if contratacoes:
            compra = contratacoes[rng.randrange(len(contratacoes))][0]
            orgao, unidade = compra["orgaoEntidade"], compra["unidadeOrgao"]
            compra_key = compra["numeroControlePNCP"]
            objeto = compra["objetoCompra"]
            published = self._moment(datetime.fromisoformat(compra["dataPublicacaoPncp"]))
        else:
            orgao, unidade = self._orgao()
            published = self._moment()
            compra_key = f"{orgao['cnpj']}-1-{900000 + k % 99999:06d}/{published.year}"
            objeto = record["objetoContratacao"]
        n = self.dataset.next_sequence(("ata", compra_key))
        updated = self._later(published)
        vigencia = published.date() + timedelta(days=rng.randint(0, 3))
        record.update(
            numeroControlePNCPAta=f"{compra_key}-{n:06d}",
            numeroControlePNCPCompra=compra_key,
            numeroAtaRegistroPreco=f"{n:05d}",
            anoAta=published.year,
            dataAssinatura=_d(published - timedelta(days=rng.randint(0, 3))),
            vigenciaInicio=_d(vigencia),
            vigenciaFim=_d(vigencia + timedelta(days=rng.choice([90, 180, 364, 365, 729]))),
            dataPublicacaoPncp=_d(published),
            dataInclusao=_d(published),
            dataAtualizacao=_d(updated),
            dataAtualizacaoGlobal=_d(self._later(updated)),
            objetoContratacao=objeto,
            cnpjOrgao=orgao["cnpj"],
            nomeOrgao=orgao["razaoSocial"],
            codigoUnidadeOrgao=unidade["codigoUnidade"],
            nomeUnidadeOrgao=unidade["nomeUnidade"],
        )
        return record, None

    def pca(self, p: int) -> tuple[dict, int]:
        rng = self.rng
        record = json.loads(self.pca_template)
        orgao, unidade = self._orgao()
        published = self._moment()
        year = published.year
        seq = self.dataset.next_sequence(("pca", orgao["cnpj"], year))
        stamp = _dt(published)
        templates = record["itens"]
        itens = []
        for number, item in enumerate(rng.sample(templates, rng.randint(1, len(templates))), 1):
            item = dict(item)
            item.update(
                numeroItem=number,
                dataInclusao=stamp,
                dataAtualizacao=stamp,
                dataDesejada=_d(date(year, rng.randint(1, 12), rng.randint(1, 28))),
            )
            itens.append(item)
        total = round(sum(i["valorTotal"] for i in itens), 2)
        for item in itens:
            item["valorOrcamentoExercicio"] = total
        record.update(
            itens=itens,
            codigoUnidade=unidade["codigoUnidade"],
            nomeUnidade=unidade["nomeUnidade"],
            anoPca=year,
            orgaoEntidadeRazaoSocial=orgao["razaoSocial"],
            orgaoEntidadeCnpj=orgao["cnpj"],
            idPcaPncp=f"{orgao['cnpj']}-0-{seq:06d}/{year}",
            dataPublicacaoPNCP=stamp,
            dataAtualizacaoGlobalPCA=_dt(self._later(published)),
        )
        return record, rng.choice(sorted(USUARIOS))


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "5xx",  # one of 500/502/503/504
    "422",  # spurious 422 with PNCP's 365-day message on a valid request
    "slow",  # answer normally after FaultConfig.slow_seconds
    "timeout",  # hang FaultConfig.hang_seconds (set it above the client's timeout), then answer
    "truncated",  # 200 whose JSON body is cut in half (Content-Length matches the cut body)
    "empty_200",  # 200 with an empty body (seen on /v1/pca/atualizacao)
    "disconnect",  # close the connection without answering
)


def _fault_kind(kind: str | int) -> str:
    kind = str(kind)
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
    return kind


@dataclass
class FaultConfig:
    """Random fault rates (0..1, all 0 by default), deterministic for a given seed.

    The draw for a request depends only on ``seed``, the request (path + params) and how many
    times that same request was seen before, so it does not depend on thread scheduling and a
    retry of a failed request gets a fresh draw.
    """

    seed: int = 0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_422_spurious: float = 0.0
    rate_slow: float = 0.0
    rate_truncated: float = 0.0
    rate_timeout: float = 0.0
    retry_after: int | str = "0"  # Retry-After header of a 429, integer seconds
    slow_seconds: float = 0.2
    hang_seconds: float = 5.0

    def __post_init__(self) -> None:
        value = str(self.retry_after).strip()
        if not value.isdigit():  # HTTP: delay-seconds = 1*DIGIT
            raise ValueError(f"retry_after must be a whole number of seconds >= 0, not {value!r}")
        self.retry_after = value

    def any_rate(self) -> bool:
        return any(
            (
                self.rate_429,
                self.rate_5xx,
                self.rate_422_spurious,
                self.rate_slow,
                self.rate_truncated,
                self.rate_timeout,
            )
        )


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    name: str  # query parameter
    filter: str | None  # dataset filter name, or None if it only controls the query
    type: str = "str"  # "str" or "int"
    required: bool = False


@dataclass(frozen=True)
class _Route:
    resource: str
    mode: str  # "range", "overlap", "proposta" or "all"
    date_field: str | None
    date_params: tuple[str | None, str] | None  # (start, end) query parameter names
    params: tuple[_Param, ...]


_CONTRATACAO_FILTERS = (
    _Param("uf", "uf"),
    _Param("codigoMunicipioIbge", "ibge"),
    _Param("cnpj", "cnpj"),
    _Param("codigoUnidadeAdministrativa", "unidade"),
    _Param("idUsuario", "usuario", "int"),
)
_WINDOW = ("dataInicial", "dataFinal")
_ATA_FILTERS = (
    _Param("idUsuario", "usuario", "int"),
    _Param("cnpj", "cnpj"),
    _Param("codigoUnidadeAdministrativa", "unidade"),
)
_CONTRATO_FILTERS = (
    _Param("cnpjOrgao", "cnpj"),
    _Param("codigoUnidadeAdministrativa", "unidade"),
    _Param("usuarioId", "usuario", "int"),
)
_CONTRATACAO_WINDOW_PARAMS = (
    _Param("codigoModalidadeContratacao", "modalidade", "int", required=True),
    _Param("codigoModoDisputa", "modo_disputa", "int"),
    *_CONTRATACAO_FILTERS,
)

ROUTES: dict[str, _Route] = {
    "/v1/contratacoes/publicacao": _Route(
        "contratacoes", "range", "dataPublicacaoPncp", _WINDOW, _CONTRATACAO_WINDOW_PARAMS
    ),
    "/v1/contratacoes/atualizacao": _Route(
        "contratacoes", "range", "dataAtualizacaoGlobal", _WINDOW, _CONTRATACAO_WINDOW_PARAMS
    ),
    "/v1/contratacoes/proposta": _Route(
        "contratacoes",
        "proposta",
        "dataEncerramentoProposta",
        (None, "dataFinal"),
        (_Param("codigoModalidadeContratacao", "modalidade", "int"), *_CONTRATACAO_FILTERS),
    ),
    "/v1/atas": _Route("atas", "overlap", None, _WINDOW, _ATA_FILTERS),
    "/v1/atas/atualizacao": _Route("atas", "range", "dataAtualizacaoGlobal", _WINDOW, _ATA_FILTERS),
    "/v1/contratos": _Route("contratos", "range", "dataPublicacaoPncp", _WINDOW, _CONTRATO_FILTERS),
    "/v1/contratos/atualizacao": _Route(
        "contratos", "range", "dataAtualizacaoGlobal", _WINDOW, _CONTRATO_FILTERS
    ),
    "/v1/pca/usuario": _Route(
        "pca",
        "all",
        None,
        None,
        (
            _Param("anoPca", "ano", "int", required=True),
            _Param("idUsuario", "usuario", "int", required=True),
            _Param("codigoClassificacaoSuperior", "classificacao"),
            _Param("cnpj", "cnpj"),
        ),
    ),
    "/v1/pca/": _Route(
        "pca",
        "all",
        None,
        None,
        (
            _Param("anoPca", "ano", "int", required=True),
            _Param("codigoClassificacaoSuperior", "classificacao", required=True),
        ),
    ),
    "/v1/pca/atualizacao": _Route(
        "pca",
        "range",
        "dataAtualizacaoGlobalPCA",
        ("dataInicio", "dataFim"),
        (_Param("cnpj", "cnpj"), _Param("codigoUnidade", "unidade")),
    ),
}
_DETAIL_RE = re.compile(r"^/v1/orgaos/([^/]+)/compras/([^/]+)/([^/]+)$")
_ITENS_RE = re.compile(r"^/v1/orgaos/(\d{14})/compras/(\d+)/(\d+)/itens$")
_RESULTADOS_RE = re.compile(r"^/v1/orgaos/(\d{14})/compras/(\d+)/(\d+)/itens/(\d+)/resultados$")
_REMOVE = object()  # field_changes marker: drop the field


def _compra_key(cnpj: str, ano: str, sequencial: str) -> str:
    """numeroControlePNCP of a compra from the path of its main-API resources."""
    return f"{cnpj}-1-{int(sequencial):06d}/{int(ano)}"


_JAVA_TYPES = {"str": "String", "int": "Long"}


class _ApiError(Exception):
    def __init__(self, status: int, message: str, *, silent: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.silent = silent


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it. ``path`` is relative to ``/api/consulta``."""

    path: str
    params: dict
    status: int
    fault: str | None
    records: int  # records in the page served (0 unless a 200 page or detail)
    elapsed: float  # seconds to build the response (without slow/timeout delays)
    at: float  # time.time() when it was logged, just before answering

    @property
    def key(self) -> tuple[str, tuple]:
        """Identifies the page asked for: path and sorted params."""
        return self.path, tuple(sorted(self.params.items()))


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    records: int = 0


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients with a Session reuse connections
    timeout = 60  # idle keep-alive connections are closed after this

    def version_string(self) -> str:
        return "nginx"

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, format, *args) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, fake: FakePNCP):
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            return  # the client went away (timeouts, disconnect faults): not interesting
        super().handle_error(request, client_address)


class FakePNCP:
    """PNCP's Consulta API served from a :class:`FakeDataset` on ``127.0.0.1:<free port>``.

    Attributes tests may change at runtime: ``dataset``, ``faults`` (:class:`FaultConfig`),
    ``page_limits`` (path -> max tamanhoPagina), ``fail_always`` (path -> status or fault
    kind, exact relative path such as ``"/v1/contratos"``), ``silent_page_size_400`` and
    ``today`` (the date ``/v1/contratacoes/proposta`` compares ``dataFinal`` with), ``domains``
    (main-API path -> the list that domain service answers) and, through ``add_field`` /
    ``remove_field``, the shape of the records served. ``page_limits[ITENS_LIMIT]`` limits
    ``tamanhoPagina`` of the itens list (no limit by default).
    """

    def __init__(
        self,
        dataset: FakeDataset | None = None,
        *,
        faults: FaultConfig | dict | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        today: date | None = None,
        silent_page_size_400: bool = False,
        page_limits: dict[str, int] | None = None,
    ) -> None:
        self.dataset = dataset if dataset is not None else FakeDataset()
        if isinstance(faults, dict):
            faults = FaultConfig(**faults)
        self.faults = faults or FaultConfig()
        self.host = host
        self.port = port
        self.today = today or date.today()
        self.silent_page_size_400 = silent_page_size_400
        self.page_limits = {**DEFAULT_PAGE_LIMITS, **(page_limits or {})}
        self.fail_always: dict[str, int | str] = {}
        self.domains: dict[str, list[dict]] = default_domains()
        # resource -> {dotted field: value to add, or _REMOVE}
        self.field_changes: dict[str, dict[str, object]] = {}
        self.log: list[LoggedRequest] = []
        self.status_counts: Counter = Counter()
        self.fault_counts: Counter = Counter()
        self.internal_errors: list[str] = []
        self._lock = threading.Lock()
        self._script: list[tuple[str, str]] = []
        self._attempts: Counter = Counter()
        self._script_draws = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakePNCP:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-pncp-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes up hanging "timeout" faults
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakePNCP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:40123/api/consulta``."""
        return f"http://{self.host}:{self.port}{BASE_PATH}"

    def url(self, path: str, **params) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}{path}{query}"

    # ---- faults ----------------------------------------------------------------------------

    def script(self, entries: Iterable[tuple[str | None, str | int]]) -> None:
        """Force faults on the next matching requests, in order.

        Each entry is ``(path_prefix, kind)``; the prefix is relative to ``/api/consulta`` (or
        includes it), ``None``/``""`` matches any path. A request consumes the first entry whose
        prefix it matches. ``kind`` is one of :data:`FAULT_KINDS` (or an int status).
        """
        normalised = []
        for prefix, kind in entries:
            prefix = prefix or ""
            if prefix.startswith(BASE_PATH):
                prefix = prefix[len(BASE_PATH) :]
            normalised.append((prefix, _fault_kind(kind)))
        with self._lock:
            self._script.extend(normalised)

    def pending_script(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._script)

    # ---- shape of the answers ----------------------------------------------------------------

    def add_field(self, resource: str, field: str, value: object = None) -> None:
        """Serve ``resource`` records (contratacoes, contratos, atas, pca, itens, resultados)
        with one more field; ``field`` may be dotted (``"orgaoEntidade.novo"``)."""
        self.field_changes.setdefault(resource, {})[field] = copy.deepcopy(value)

    def remove_field(self, resource: str, field: str) -> None:
        """Serve ``resource`` records without ``field`` (dotted for a nested one)."""
        self.field_changes.setdefault(resource, {})[field] = _REMOVE

    def _reshape(self, resource: str, records: list[dict]) -> list[dict]:
        changes = self.field_changes.get(resource)
        if not changes:
            return records
        reshaped = []
        for record in records:
            record = copy.deepcopy(record)
            for field, value in changes.items():
                *parents, name = field.split(".")
                target = record
                for parent in parents:
                    target = target.get(parent) if isinstance(target, dict) else None
                if not isinstance(target, dict):
                    continue
                if value is _REMOVE:
                    target.pop(name, None)
                else:
                    target[name] = copy.deepcopy(value)
            reshaped.append(record)
        return reshaped

    # ---- request log -----------------------------------------------------------------------

    def requests(
        self,
        path: str | None = None,
        *,
        status: int | None = None,
        fault: str | None = None,
        prefix: str | None = None,
    ) -> list[LoggedRequest]:
        """Logged requests, optionally only those with this exact path/prefix/status/fault."""
        with self._lock:
            entries = list(self.log)
        return [
            e
            for e in entries
            if (path is None or e.path == path)
            and (prefix is None or e.path.startswith(prefix))
            and (status is None or e.status == status)
            and (fault is None or e.fault == fault)
        ]

    def duplicate_requests(self, status: int = 200) -> dict[tuple, int]:
        """Pages served more than once with ``status``: {(path, sorted params): times}."""
        counts = Counter(e.key for e in self.requests(status=status))
        return {key: n for key, n in counts.items() if n > 1}

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.status_counts.clear()
            self.fault_counts.clear()

    # ---- request handling ------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        began = time.monotonic()
        split = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        path = split.path
        if path.startswith(BASE_PATH + "/"):
            rel = path[len(BASE_PATH) :]
        elif path.startswith(MAIN_BASE_PATH + "/"):
            rel = path  # main API requests keep their prefix in the log and fault scripts
        else:
            rel = None
        fault, scripted = self._pick_fault(rel, params) if rel is not None else (None, False)
        try:
            response, fault = self._respond(rel, path, params, fault, scripted)
        except Exception as exc:  # a bug in the fake: answer 500 and keep it for the tests
            self.internal_errors.append(traceback.format_exc())
            response = self._error(500, f"fake PNCP internal error: {exc}", rel or path)
        status = response.status if response is not None else 0  # 0: connection dropped
        entry = LoggedRequest(
            path=rel if rel is not None else path,
            params=params,
            status=status,
            fault=fault,
            records=response.records if response is not None else 0,
            elapsed=time.monotonic() - began,
            at=time.time(),
        )
        with self._lock:  # log before answering, so a client never sees an unlogged response
            self.log.append(entry)
            self.status_counts[status] += 1
            if fault:
                self.fault_counts[fault] += 1
        if fault in ("slow", "timeout"):  # delay the answer (stop() cuts the wait short)
            faults = self.faults
            self._stopping.wait(faults.slow_seconds if fault == "slow" else faults.hang_seconds)
        if response is not None:
            self._send(handler, response)
        else:
            handler.close_connection = True

    def _respond(
        self, rel: str | None, path: str, params: dict, fault: str | None, scripted: bool
    ) -> tuple[_Response | None, str | None]:
        """The response (None: drop the connection) and the fault that actually fired."""
        if rel is None:
            return self._error(404, f"No static resource {path.lstrip('/')}.", path), None
        faults = self.faults
        if fault == "disconnect":
            return None, fault
        if fault == "429":
            body = self._error_body(429, "Too Many Requests", rel)
            return _Response(429, body, headers=(("Retry-After", faults.retry_after),)), fault
        if fault in ("500", "502", "503", "504"):
            return self._server_error(int(fault), rel), fault
        if fault == "empty_200":
            return _Response(200, b"", content_type=None), fault

        try:
            response = self._route(rel, params)
        except _ApiError as error:
            if error.silent:
                return _Response(error.status, b"", content_type=None), _fired_early(fault)
            return self._error(error.status, error.message, rel), _fired_early(fault)

        windowed = rel in ROUTES and ROUTES[rel].date_params is not None
        if fault == "422":  # spurious: only on a request PNCP would otherwise have answered
            if windowed or scripted:
                return self._error(422, MSG_WINDOW_TOO_LONG, rel), fault
            fault = None
        if fault == "truncated":
            if response.status == 200 and response.body:
                cut = response.body[: len(response.body) // 2]
                return _Response(200, cut, records=response.records), fault
            fault = None
        return response, fault

    def _pick_fault(self, rel: str, params: dict) -> tuple[str | None, bool]:
        """The fault kind for this request (or None) and whether it was forced."""
        with self._lock:
            for i, (prefix, kind) in enumerate(self._script):
                if rel.startswith(prefix):
                    del self._script[i]
                    if kind == "5xx":
                        self._script_draws += 1
                        draw = random.Random(f"{self.faults.seed}|script|{self._script_draws}")
                        kind = draw.choice(["500", "502", "503", "504"])
                    return kind, True
            forced = self.fail_always.get(rel)
        if forced is not None:
            kind = _fault_kind(forced)
            return ("503" if kind == "5xx" else kind), True
        config = self.faults
        if not config.any_rate():
            return None, False
        request_key = rel + "?" + urlencode(sorted(params.items()))
        with self._lock:
            attempt = self._attempts[request_key]
            self._attempts[request_key] += 1
        rng = random.Random(f"{config.seed}|{request_key}|{attempt}")
        draw, threshold = rng.random(), 0.0
        for kind, rate in (
            ("429", config.rate_429),
            ("5xx", config.rate_5xx),
            ("422", config.rate_422_spurious),
            ("truncated", config.rate_truncated),
            ("timeout", config.rate_timeout),
        ):
            threshold += rate
            if draw < threshold:
                return (rng.choice(["500", "502", "503", "504"]) if kind == "5xx" else kind), False
        return ("slow" if rng.random() < config.rate_slow else None), False

    # ---- endpoints -------------------------------------------------------------------------

    def _route(self, rel: str, params: dict) -> _Response:
        if rel.startswith(MAIN_BASE_PATH + "/"):
            return self._route_main(rel[len(MAIN_BASE_PATH) :], params)
        route = ROUTES.get(rel)
        if route is not None:
            return self._paged(rel, route, params)
        match = _DETAIL_RE.match(rel)
        if match:
            return self._detail(*match.groups())
        raise _ApiError(404, f"No static resource {rel.lstrip('/')}.")

    def _paged(self, rel: str, route: _Route, params: dict) -> _Response:
        # Spring checks presence of required parameters first, then converts them.
        required = [p for p in route.date_params or () if p]
        required += [p.name for p in route.params if p.required]
        for name in (*required, "pagina"):
            if not params.get(name):
                java_type = "Integer" if name == "pagina" else "String"
                for p in route.params:
                    if p.name == name:
                        java_type = _JAVA_TYPES[p.type]
                raise _ApiError(
                    400,
                    f"Required request parameter '{name}' for method parameter type "
                    f"{java_type} is not present",
                )
        filters = []
        for p in route.params:
            raw = params.get(p.name)
            if raw in (None, ""):
                continue
            value = _parse_int(p.name, raw) if p.type == "int" else raw
            if p.filter:
                filters.append((p.filter, value))
        page = _parse_int("pagina", params["pagina"])
        if page < 1:
            raise _ApiError(400, "pagina deve ser maior ou igual a 1")
        limit = self.page_limits.get(rel, 500)
        size = (
            _parse_int("tamanhoPagina", params["tamanhoPagina"])
            if params.get("tamanhoPagina")
            else limit
        )
        if size < PAGE_MIN:
            raise _ApiError(400, f"tamanhoPagina deve ser maior ou igual a {PAGE_MIN}")
        if size > limit:
            raise _ApiError(
                400,
                f"tamanhoPagina deve ser menor ou igual a {limit}",
                silent=self.silent_page_size_400,
            )

        lo = hi = None
        if route.date_params:
            start_name, end_name = route.date_params
            end = _parse_date(end_name, params[end_name])
            hi = _d(end + timedelta(days=1))
            if start_name is None:  # proposta: open proposal periods from today
                if end < self.today:
                    raise _ApiError(422, MSG_PROPOSTA_PAST)
                lo = _d(self.today)
            else:
                begin = _parse_date(start_name, params[start_name])
                if begin > end:
                    raise _ApiError(422, MSG_INVERTED_WINDOW)
                if (end - begin).days > MAX_WINDOW_DAYS:
                    raise _ApiError(422, MSG_WINDOW_TOO_LONG)
                lo = _d(begin)

        mode = "range" if route.mode == "proposta" else route.mode
        matches = self.dataset.select(
            route.resource,
            mode=mode,
            date_field=route.date_field,
            lo=lo,
            hi=hi,
            filters=tuple(filters),
        )
        total = len(matches)
        if total == 0:
            return _Response(204, b"", content_type=None)
        pages = math.ceil(total / size)
        if page > pages:
            raise _ApiError(400, f"Página {page} inexistente: a consulta tem {pages} páginas.")
        data = self._reshape(route.resource, matches[(page - 1) * size : page * size])
        classificacao = dict(filters).get("classificacao")
        if classificacao is not None:  # PCA item queries return only the class's itens
            data = [_only_class(r, classificacao) for r in data]
        body = {
            "data": data,
            "totalRegistros": total,
            "totalPaginas": pages,
            "numeroPagina": page,
            "paginasRestantes": pages - page,
            "empty": False,
        }
        return _Response(200, _json(body), records=len(data))

    def _detail(self, cnpj: str, ano: str, sequencial: str) -> _Response:
        year = _parse_int("ano", ano)
        seq = _parse_int("sequencial", sequencial)
        record = self.dataset.compra(cnpj, year, seq)
        if record is None:
            raise _ApiError(404, "Compra não encontrada.")
        detail = dict(record)
        detail.update(
            orcamentoSigilosoCodigo=1,
            orcamentoSigilosoDescricao="Compra sem sigilo",
            existeResultado=record.get("valorTotalHomologado") is not None,
        )
        [detail] = self._reshape("contratacoes", [detail])
        return _Response(200, _json(detail), records=1)

    # ---- main API (/api/pncp) --------------------------------------------------------------

    def _route_main(self, sub: str, params: dict) -> _Response:
        match = _ITENS_RE.match(sub)
        if match:
            return self._itens(_compra_key(*match.groups()), params)
        match = _RESULTADOS_RE.match(sub)
        if match:
            cnpj, ano, sequencial, numero = match.groups()
            return self._resultados(_compra_key(cnpj, ano, sequencial), _parse_int("n", numero))
        if sub in self.domains:
            rows = self.domains[sub]
            ativo = params.get("statusAtivo")
            if ativo in ("true", "false"):
                rows = [r for r in rows if bool(r.get("statusAtivo")) == (ativo == "true")]
            return _Response(200, _json(rows), records=len(rows))
        raise _ApiError(404, f"No static resource {sub.lstrip('/')}.")

    def _itens(self, compra: str, params: dict) -> _Response:
        page = _parse_int("pagina", params["pagina"]) if params.get("pagina") else 1
        size = (
            _parse_int("tamanhoPagina", params["tamanhoPagina"])
            if params.get("tamanhoPagina")
            else 10
        )
        if page < 1 or size < 1:
            raise _ApiError(400, "pagina e tamanhoPagina devem ser maiores ou iguais a 1")
        limit = self.page_limits.get(ITENS_LIMIT)
        if limit is not None and size > limit:
            raise _ApiError(400, f"tamanhoPagina deve ser menor ou igual a {limit}")
        data = self.dataset.itens(compra)[(page - 1) * size : page * size]
        if not data:  # sub-resource lists answer 404 when empty
            raise _ApiError(404, "Nenhum item encontrado para a contratação.")
        data = self._reshape("itens", data)
        return _Response(200, _json(data), records=len(data))

    def _resultados(self, compra: str, numero_item: int) -> _Response:
        data = self.dataset.resultados(compra, numero_item)
        if not data:
            raise _ApiError(404, "Nenhum resultado encontrado para o item.")
        data = self._reshape("resultados", data)
        return _Response(200, _json(data), records=len(data))

    # ---- responses -------------------------------------------------------------------------

    def _error_body(self, status: int, message: str, rel: str) -> bytes:
        if rel.startswith(MAIN_BASE_PATH + "/"):
            path = MAIN_ERROR_CONTEXT_PATH + rel[len(MAIN_BASE_PATH) :]
        else:
            path = ERROR_CONTEXT_PATH + rel if rel.startswith("/v1") else rel
        if status == 422:  # samples/error_2.json
            body = {
                "path": path,
                "message": message,
                "error": "422 UNPROCESSABLE_ENTITY",
                "timestamp": _brt_stamp(),
                "status": "422",
            }
        else:  # samples/error_1.json
            body = {
                "timestamp": _utc_stamp(),
                "status": status,
                "error": HTTPStatus(status).phrase,
                "message": message,
                "path": path,
            }
        return _json(body)

    def _error(self, status: int, message: str, rel: str) -> _Response:
        return _Response(status, self._error_body(status, message, rel))

    def _server_error(self, status: int, rel: str) -> _Response:
        if status == 500:
            return self._error(500, "Internal Server Error", rel)
        phrase = HTTPStatus(status).phrase
        html = (
            f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return _Response(status, html.encode(), content_type="text/html")

    def _send(self, handler: _Handler, response: _Response) -> None:
        try:
            handler.send_response(response.status)
            if response.content_type and response.body:
                handler.send_header("Content-Type", response.content_type)
            for name, value in response.headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(response.body)))
            handler.end_headers()
            if response.body:
                handler.wfile.write(response.body)
        except OSError:  # the client timed out or went away
            handler.close_connection = True


def _fired_early(fault: str | None) -> str | None:
    """On an error answer only the delays (slow, timeout) still apply; 422/truncated do not."""
    return fault if fault in ("slow", "timeout") else None


def _only_class(record: dict, classificacao: str) -> dict:
    itens = record.get("itens") or []
    return {
        **record,
        "itens": [i for i in itens if i.get("classificacaoSuperiorCodigo") == classificacao],
    }


def _json(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _ApiError(
            400,
            f"Failed to convert value of type 'java.lang.String' to required type "
            f"'java.lang.Long'; For input string: \"{raw}\"",
        ) from None


def _parse_date(name: str, raw: str) -> date:
    if re.fullmatch(r"\d{8}", raw):
        try:
            return datetime.strptime(raw, "%Y%m%d").date()
        except ValueError:
            pass
    raise _ApiError(400, f"{name} inválida: '{raw}'. Formato esperado: AAAAMMDD.")


# --------------------------------------------------------------------------------------------
# Standalone server
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake PNCP Consulta API for manual tries.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--contratacoes", type=int, default=0)
    parser.add_argument("--contratos", type=int, default=0)
    parser.add_argument("--atas", type=int, default=0)
    parser.add_argument("--pcas", type=int, default=0)
    parser.add_argument("--start", type=date.fromisoformat, default=None, help="AAAA-MM-DD")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--silent-page-size-400", action="store_true")
    parser.add_argument(
        "--itens", type=int, default=0, help="up to this many itens (and resultados) per compra"
    )
    for f in fields(FaultConfig):
        if f.name.startswith("rate_") or f.name in ("retry_after", "slow_seconds", "hang_seconds"):
            flag = "--" + f.name.replace("_", "-")
            parser.add_argument(flag, type=int if f.name == "retry_after" else float, default=None)
    args = parser.parse_args(argv)

    dataset = FakeDataset.generate(
        contratacoes=args.contratacoes,
        contratos=args.contratos,
        atas=args.atas,
        pcas=args.pcas,
        start=args.start,
        days=args.days,
        seed=args.seed,
    )
    if args.itens:
        dataset.generate_itens(seed=args.seed, max_itens=args.itens)
    overrides = {
        name: getattr(args, name)
        for name in asdict(FaultConfig())
        if name != "seed" and getattr(args, name, None) is not None
    }
    fake = FakePNCP(
        dataset,
        faults=FaultConfig(seed=args.seed, **overrides),
        host=args.host,
        port=args.port,
        silent_page_size_400=args.silent_page_size_400,
    )
    with fake:
        print(f"fake PNCP serving {dataset.counts()} at {fake.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
