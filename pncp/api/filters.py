"""One FilterSet per resource, with PNCP's query parameters and PNCP-style validation.

Every parameter is parsed by a form field that says exactly what is wrong in one message
(``dataInicial: data inválida 'xx', use AAAAMMDD``, ``codigoModalidadeContratacao: código 99
desconhecido``, ``cnpj: CNPJ inválido …``); checks that involve several parameters (window
order and width, PNCP's required combinations) run in ``is_valid`` so they apply to every
endpoint using the FilterSet. ``DjangoFilterBackend`` turns the errors into a DRF
``ValidationError`` and ``pncp.api.exceptions`` into the API's one error shape.

Every date window is required where PNCP requires it: the mirror's tables are indexed for
"filter X within a window", and a window is what keeps each filter off a full-table scan
(``tests/test_api_explain.py`` checks the plans). Dates are Brasília days: ``dataFinal``
includes its whole day.

Each filter carries its OpenAPI schema (type, pattern, example, description), so the
documentation is generated from the same declarations that validate the requests.
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.forms.utils import ErrorDict
from django.http import QueryDict
from django.utils import timezone
from django_filters.filters import FilterMethod
from drf_spectacular.utils import extend_schema_field

from pncp.api import selectors
from pncp.models import AtaRegistroPreco, Contratacao, Contrato, ItemPCA, PlanoContratacao
from pncp.validation import UFS

BRASILIA = ZoneInfo("America/Sao_Paulo")
MAX_WINDOW_DAYS = 365
DATE_PATTERN = r"^\d{8}$"
CNPJ_PUNCTUATION = re.compile(r"[./\s-]")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# ASCII digits only: str.isdigit() and \d accept "²" and "٣" (and int("²") raises).
CODE_DIGITS = re.compile(r"[0-9]{1,10}")
MAX_BIGINT = 2**63 - 1
MAX_CODE = 2**31 - 1
MAX_VALUE = Decimal(10**18)  # money columns are NUMERIC(22, 4)


def invalid(message: str) -> forms.ValidationError:
    """A validation error whose text may quote the user's input.

    django-filter renders messages with ``message % params``: a ``%`` typed by the user must
    not be taken for a placeholder (it was a 500).
    """
    return forms.ValidationError(message.replace("%", "%%"))


# --- form fields: one clear message per bad value --------------------------------------------


class ParamField(forms.Field):
    """Base: empty means absent; ``parse`` turns the text into a value or raises."""

    default_error_messages = {"required": "parâmetro obrigatório."}

    def to_python(self, value):
        if value is None:
            return None
        text = str(value).strip()
        if text == "":
            return None
        if CONTROL_CHARACTERS.search(text):
            raise invalid("valor inválido: caracteres de controle não são aceitos")
        return self.parse(text)

    def parse(self, text: str):
        return text


class PNCPDateField(ParamField):
    """AAAAMMDD, as PNCP takes dates."""

    def parse(self, text):
        if not re.fullmatch(r"[0-9]{8}", text):
            raise invalid(f"data inválida '{text}', use AAAAMMDD")
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise invalid(f"data inválida '{text}', use AAAAMMDD") from None


class IntParamField(ParamField):
    def __init__(
        self, *args, min_value: int | None = None, max_value: int | None = MAX_BIGINT, **kw
    ):
        self.min_value, self.max_value = min_value, max_value
        super().__init__(*args, **kw)

    def parse(self, text):
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            raise invalid(f"valor inválido '{text}', informe um número inteiro")
        value = int(text)
        if self.min_value is not None and value < self.min_value:
            raise invalid(f"valor {value} menor que o mínimo {self.min_value}")
        if self.max_value is not None and value > self.max_value:
            raise invalid(f"valor {value} maior que o máximo {self.max_value}")
        return value


class CodeField(ParamField):
    """A code of a PNCP domain table; an unknown code is an error, not an empty page."""

    def __init__(self, *args, table: str, integer: bool = True, **kwargs):
        self.table, self.integer = table, integer
        super().__init__(*args, **kwargs)

    def parse(self, text):
        if self.integer:
            if not CODE_DIGITS.fullmatch(text) or int(text) > MAX_CODE:
                raise invalid(f"código inválido '{text}', informe um número")
            code = int(text)
        else:
            code = text.upper()
        if not selectors.domain_code_exists(self.table, code):
            raise invalid(f"código {text} desconhecido")
        return code


class CNPJField(ParamField):
    def parse(self, text):
        digits = CNPJ_PUNCTUATION.sub("", text)
        if not re.fullmatch(r"[0-9]{14}", digits):
            raise invalid(f"CNPJ inválido '{text}', informe os 14 dígitos")
        return digits


class NiField(ParamField):
    """CNPJ, CPF or a foreign supplier's id: punctuation of CNPJ/CPF is dropped."""

    def parse(self, text):
        digits = CNPJ_PUNCTUATION.sub("", text)
        if len(digits) > 30:
            raise invalid(f"identificador inválido '{text}' (máximo 30 caracteres)")
        return digits


class BoolParamField(ParamField):
    TRUE, FALSE = {"true", "1", "sim"}, {"false", "0", "nao", "não"}

    def parse(self, text):
        lowered = text.lower()
        if lowered in self.TRUE:
            return True
        if lowered in self.FALSE:
            return False
        raise invalid(f"valor inválido '{text}', use true ou false")


class DecimalParamField(ParamField):
    def parse(self, text):
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise invalid(f"valor inválido '{text}', use um número como 1500.50") from None
        if not value.is_finite() or value < 0 or value >= MAX_VALUE:
            raise invalid(f"valor inválido '{text}', use um número entre 0 e 10^18")
        return value.quantize(Decimal("0.0001"))


class UFField(ParamField):
    def parse(self, text):
        uf = text.upper()
        if uf not in UFS:
            raise invalid(f"UF desconhecida '{text}', use a sigla (ex.: SP)")
        return uf


class IBGEField(ParamField):
    def parse(self, text):
        if not re.fullmatch(r"[0-9]{7}", text):
            raise invalid(f"código IBGE inválido '{text}', informe os 7 dígitos")
        return text


class TextParamField(ParamField):
    def __init__(self, *args, max_length: int = 100, **kwargs):
        self.max_length = max_length
        super().__init__(*args, **kwargs)

    def parse(self, text):
        if len(text) > self.max_length:
            raise invalid(f"valor longo demais (máximo {self.max_length})")
        return text


class OrderingField(ParamField):
    def __init__(self, *args, columns: dict[str, str], **kwargs):
        self.columns = columns
        super().__init__(*args, **kwargs)

    def parse(self, text):
        name = text[1:] if text.startswith("-") else text
        if name not in self.columns:
            allowed = ", ".join(f"{c}, -{c}" for c in self.columns)
            raise invalid(f"valor inválido '{text}'; use um de: {allowed}")
        column = self.columns[name]
        return (f"-{column}", "-id") if text.startswith("-") else (column, "id")


# --- filters ---------------------------------------------------------------------------------


class Param(django_filters.Filter):
    """A query parameter with its OpenAPI schema (type, format/pattern, example, description).

    Applied as ``field_name__lookup_expr = value`` unless it has a ``method``; ``passive``
    parameters are applied by the FilterSet itself (date windows, ordering).
    """

    field_class = ParamField

    def __init__(self, *args, schema: dict, description: str, passive: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.passive = passive
        self.extra.setdefault("help_text", description)
        extend_schema_field({**schema, "description": description})(self)

    def filter(self, qs, value):
        if value is None or self.passive:
            return qs
        return super().filter(qs, value)


def _param(field_class):
    """A Param subclass bound to a field class (django-filter builds the field from it)."""
    return type(f"{field_class.__name__}Param", (Param,), {"field_class": field_class})


DateParam = _param(PNCPDateField)
IntParam = _param(IntParamField)
CodeParam = _param(CodeField)
CNPJParam = _param(CNPJField)
NiParam = _param(NiField)
BoolParam = _param(BoolParamField)
DecimalParam = _param(DecimalParamField)
UFParam = _param(UFField)
IBGEParam = _param(IBGEField)
TextParam = _param(TextParamField)
OrderingParam = _param(OrderingField)


def date_param(name: str, *, required: bool, what: str, example: str) -> Param:
    return DateParam(
        passive=True,
        required=required,
        error_messages={"required": "parâmetro obrigatório, use AAAAMMDD"},
        schema={"type": "string", "pattern": DATE_PATTERN, "example": example},
        description=f"{what}, no formato AAAAMMDD (dia de Brasília"
        + (", incluído)." if name.endswith("Final") or name.endswith("Fim") else ").")
        + (" Obrigatório." if required else ""),
    )


def code_param(table: str, description: str, example: int, field_name: str) -> Param:
    return CodeParam(
        field_name=field_name,
        table=table,
        schema={"type": "integer", "format": "int64", "example": example},
        description=f"{description} (tabela de domínio `{table}`, veja `/api/v1/dominios/"
        f"{table}/`). Um código que não existe na tabela é um erro 400.",
    )


def cnpj_param(field_name: str, what: str) -> Param:
    return CNPJParam(
        field_name=field_name,
        schema={"type": "string", "pattern": r"^\d{14}$", "example": "33654831000136"},
        description=f"CNPJ {what}: 14 dígitos (pontuação é ignorada).",
    )


def text_param(field_name: str, description: str, example: str, max_length: int = 50) -> Param:
    return TextParam(
        field_name=field_name,
        max_length=max_length,
        schema={"type": "string", "maxLength": max_length, "example": example},
        description=description,
    )


def search_param(column_label: str) -> Param:
    return TextParam(
        method="filter_search",
        max_length=200,
        schema={"type": "string", "maxLength": 200, "example": "aquisição de veículos"},
        description=f"Busca textual em `{column_label}` (texto completo do PostgreSQL em "
        "português, sem acentos e com radicais: `veiculo` encontra `veículos`). Aceita "
        '`"frase exata"`, `-palavra` e `or`.',
    )


def ordering_param(choices: dict[str, str], default: str) -> Param:
    values = [v for c in choices for v in (c, f"-{c}")]
    return OrderingParam(
        passive=True,
        columns=choices,
        schema={"type": "string", "enum": values, "example": default},
        description=f"Ordenação: um de {', '.join(f'`{v}`' for v in values)} (`-` = "
        f"decrescente). Padrão `{default}`. Empates são desfeitos pela ordem de inclusão, "
        "então as páginas são estáveis.",
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BRASILIA)


class Window:
    """Two date parameters that bound one window, and how the window selects rows.

    ``kind`` is ``range`` (``field`` within the days, inclusive) or ``overlap`` (the period
    ``start_field..end_field`` of the record intersects the days; an open end counts as
    still running). Whether the dates are required is said by their parameters.
    """

    def __init__(
        self,
        start: str | None,
        end: str,
        *,
        kind: str,
        field: str = "",
        start_field: str = "",
        end_field: str = "",
        max_days: int | None = MAX_WINDOW_DAYS,
    ):
        self.start, self.end, self.kind = start, end, kind
        self.field, self.start_field, self.end_field = field, start_field, end_field
        self.max_days = max_days

    def check(self, form: forms.Form, data: dict) -> None:
        first = data.get(self.start) if self.start else None
        last = data.get(self.end)
        if first and last:
            if first > last:
                form.add_error(
                    self.start,
                    f"{self.start} ({first:%Y%m%d}) é posterior a {self.end} ({last:%Y%m%d})",
                )
            elif self.max_days is not None and (last - first).days > self.max_days:
                form.add_error(
                    self.end,
                    f"período de {first:%Y%m%d} a {last:%Y%m%d} maior que {self.max_days} dias;"
                    f" divida a consulta em janelas de até {self.max_days} dias",
                )

    def apply(self, qs: QuerySet, data: dict) -> QuerySet:
        first = data.get(self.start) if self.start else None
        last = data.get(self.end)
        if self.kind == "range":
            if first:
                qs = qs.filter(**{f"{self.field}__gte": _day_start(first)})
            if last:
                qs = qs.filter(**{f"{self.field}__lt": _day_start(last + timedelta(days=1))})
        else:
            if first:
                qs = qs.filter(
                    Q(**{f"{self.end_field}__gte": first})
                    | Q(**{f"{self.end_field}__isnull": True})
                )
            if last:
                qs = qs.filter(**{f"{self.start_field}__lte": last})
        return qs


class _ShallowCopiedFields(dict):
    """A filter form's declared fields, copied shallowly for each form instance.

    Django deep-copies ``base_fields`` for every form (each widget, error message dict and
    validator list): ~1 ms per API request for a list's 17 filter fields. The API's filter
    forms are bound and cleaned, never edited per request; each form still gets its own
    field objects (``copy.copy``), sharing their widgets and messages, which nothing writes.
    """

    def __deepcopy__(self, memo):
        return {name: copy.copy(field) for name, field in self.items()}


class RecordFilterSet(django_filters.FilterSet):
    """Shared machinery: windows, required combinations, text search, ordering."""

    windows: tuple[Window, ...] = ()
    search_column: str = ""
    # Order when ``ordenacao`` is absent, if not the selector's: the window's own column,
    # so a page is read in index order *within* the window (no walk over other dates).
    default_ordering: tuple[str, ...] = ()

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        """django-filter's ``__init__``, without its per-request ``deepcopy`` of every filter.

        That deep copy (each filter, its lazily built form field, widget and labels) and the
        form class django-filter builds again for every request were a third of the CPU of
        a page of 50 (~1.5 ms of 4.3 ms on a slow VM). Our filters keep no request state but
        ``model`` and ``parent``: each request gets a shallow copy of each (its
        ``method`` bound again to the copy), sharing the form fields built once per class,
        and the form class is built once per class too (``get_form_class``). Form instances
        copy their fields shallowly (``_ShallowCopiedFields``).
        """
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {}
        for name, base in self.base_filters.items():
            filter_ = copy.copy(base)
            if base.method is not None:
                filter_.filter = FilterMethod(filter_)
            filter_.model = queryset.model
            filter_.parent = self
            self.filters[name] = filter_

    @classmethod
    def _form_class(cls):
        form_class = cls.__dict__.get("_cached_form_class")
        if form_class is None:
            for base in cls.base_filters.values():
                if getattr(base, "model", None) is None:  # labels come from the model
                    base.model = cls._meta.model
            fields = {name: base.field for name, base in cls.base_filters.items()}
            form_class = type(f"{cls.__name__}Form", (cls._meta.form,), fields)
            form_class.base_fields = _ShallowCopiedFields(form_class.base_fields)
            cls._cached_form_class = form_class
        return form_class

    def get_form_class(self):
        return self._form_class()

    def is_valid(self) -> bool:
        if not self.is_bound or not self.form.is_valid():
            return False
        data = self.form.cleaned_data
        for window in self.windows:
            window.check(self.form, data)
        if not self.form.errors:
            self.check_combination(data)
        return not self.form.errors

    def check_combination(self, data: dict) -> None:
        """Cross-parameter rules of a resource (PNCP's required combinations)."""

    @property
    def errors(self):
        errors = self.form.errors
        if "__all__" not in errors:
            return errors
        renamed = ErrorDict()
        for key, value in errors.items():
            renamed["non_field_errors" if key == "__all__" else key] = value
        return renamed

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        for window in self.windows:
            queryset = window.apply(queryset, data)
        # django-filter's loop, with the text search last: its matches are then selected
        # with every other filter (see ``selectors.text_search``)
        for name, value in sorted(
            data.items(), key=lambda item: self.filters[item[0]].method == "filter_search"
        ):
            queryset = self.filters[name].filter(queryset, value)
        ordering = data.get("ordenacao") or self.default_ordering
        if ordering:
            queryset = queryset.order_by(*ordering)
        return queryset

    def filter_search(self, queryset, name, value):
        # a required range window (publication, update) bounds the walk of a page
        in_window = bool(self.windows) and self.windows[0].kind == "range"
        return selectors.text_search(queryset, self.search_column, value, in_window=in_window)


def _window_params(what: str, example_first: str, example_last: str, required: bool = True):
    return (
        date_param("dataInicial", required=required, what=f"{what}: início", example=example_first),
        date_param("dataFinal", required=required, what=f"{what}: fim", example=example_last),
    )


# --- contratações ----------------------------------------------------------------------------

CONTRATACAO_ORDERING = {
    "dataPublicacaoPncp": "data_publicacao_pncp",
    "dataAtualizacaoGlobal": "data_atualizacao_global",
    "dataEncerramentoProposta": "data_encerramento_proposta",
    "valorTotalEstimado": "valor_total_estimado",
}


class ContratacaoFilterSet(RecordFilterSet):
    """``/contratacoes/``: PNCP's ``/v1/contratacoes/publicacao`` plus more filters."""

    dataInicial, dataFinal = _window_params(
        "Data de publicação no PNCP (`dataPublicacaoPncp`)", "20250701", "20250731"
    )
    codigoModalidadeContratacao = code_param(
        "modalidade_contratacao", "Modalidade da contratação (`modalidadeId`)", 6, "modalidade_id"
    )
    codigoModoDisputa = code_param(
        "modo_disputa", "Modo de disputa (`modoDisputaId`)", 1, "modo_disputa_id"
    )
    situacaoCompraId = code_param(
        "situacao_contratacao", "Situação da contratação (`situacaoCompraId`)", 1, "situacao_id"
    )
    tipoInstrumentoConvocatorioCodigo = code_param(
        "instrumento_convocatorio",
        "Instrumento convocatório (`tipoInstrumentoConvocatorioCodigo`)",
        1,
        "instrumento_convocatorio_id",
    )
    amparoLegalCodigo = code_param(
        "amparo_legal", "Amparo legal (`amparoLegal.codigo`)", 1, "amparo_legal_id"
    )
    uf = UFParam(
        field_name="uf",
        schema={"type": "string", "pattern": "^[A-Za-z]{2}$", "example": "RS"},
        description="Sigla da UF da unidade (`unidadeOrgao.ufSigla`).",
    )
    codigoMunicipioIbge = IBGEParam(
        field_name="codigo_municipio_ibge",
        schema={"type": "string", "pattern": r"^\d{7}$", "example": "4301602"},
        description="Código IBGE do município da unidade (`unidadeOrgao.codigoIbge`), 7 dígitos.",
    )
    cnpj = cnpj_param("orgao_id", "do órgão/entidade (`orgaoEntidade.cnpj`)")
    codigoUnidadeAdministrativa = text_param(
        "codigo_unidade",
        "Código da unidade administrativa (`unidadeOrgao.codigoUnidade`).",
        "137263",
    )
    idUsuario = IntParam(
        field_name="id_usuario",
        min_value=1,
        schema={"type": "integer", "format": "int64", "example": 3},
        description="Id do sistema que publicou (conhecido quando importado com `idUsuario`).",
    )
    srp = BoolParam(
        field_name="srp",
        schema={"type": "boolean", "example": True},
        description="Sistema de Registro de Preços (`srp`): `true` ou `false`.",
    )
    valorMinimo = DecimalParam(
        field_name="valor_total_estimado",
        lookup_expr="gte",
        schema={"type": "number", "format": "double", "minimum": 0, "example": 10000},
        description="`valorTotalEstimado` mínimo (inclusive), em reais.",
    )
    valorMaximo = DecimalParam(
        field_name="valor_total_estimado",
        lookup_expr="lte",
        schema={"type": "number", "format": "double", "minimum": 0, "example": 500000},
        description="`valorTotalEstimado` máximo (inclusive), em reais.",
    )
    q = search_param("objetoCompra")
    ordenacao = ordering_param(CONTRATACAO_ORDERING, "-dataPublicacaoPncp")

    windows = (Window("dataInicial", "dataFinal", kind="range", field="data_publicacao_pncp"),)
    search_column = "objeto_compra"

    class Meta:
        model = Contratacao
        fields: list[str] = []

    def check_combination(self, data):
        low, high = data.get("valorMinimo"), data.get("valorMaximo")
        if low is not None and high is not None and low > high:
            raw = self.form.data
            self.form.add_error(
                "valorMinimo",
                invalid(
                    f"valorMinimo ({raw.get('valorMinimo')}) maior que valorMaximo "
                    f"({raw.get('valorMaximo')})"
                ),
            )


class ContratacaoPropostaFilterSet(ContratacaoFilterSet):
    """``/contratacoes/proposta/``: proposals still open (PNCP's ``/v1/contratacoes/proposta``).

    ``dataEncerramentoProposta`` is now or later, and on or before ``dataFinal`` when given.
    """

    dataInicial = None
    dataFinal = date_param(
        "dataFinal",
        required=False,
        what="Último dia de encerramento das propostas (`dataEncerramentoProposta`); hoje "
        "ou depois",
        example="20291231",
    )

    windows = (
        Window(
            None,
            "dataFinal",
            kind="range",
            field="data_encerramento_proposta",
            max_days=None,
        ),
    )

    def check_combination(self, data):
        last = data.get("dataFinal")
        if last is not None and last < timezone.localdate():
            self.form.add_error(
                "dataFinal",
                f"Data Final inválida ({last:%Y%m%d}): deve ser maior ou igual à data atual",
            )
            return
        super().check_combination(data)

    def filter_queryset(self, queryset):
        queryset = queryset.filter(data_encerramento_proposta__gte=timezone.now())
        return super().filter_queryset(queryset)


# --- atas -----------------------------------------------------------------------------------

ATA_ORDERING = {
    "dataPublicacaoPncp": "data_publicacao_pncp",
    "dataAtualizacaoGlobal": "data_atualizacao_global",
    "vigenciaInicio": "vigencia_inicio",
    "vigenciaFim": "vigencia_fim",
}


class AtaFilterSet(RecordFilterSet):
    """``/atas/``: atas whose vigência overlaps the window, as PNCP's ``/v1/atas``."""

    dataInicial, dataFinal = _window_params(
        "Período de vigência (`vigenciaInicio`..`vigenciaFim` cruza o período)",
        "20250701",
        "20250731",
    )
    cnpj = cnpj_param("orgao_id", "do órgão (`cnpjOrgao`)")
    codigoUnidadeAdministrativa = text_param(
        "codigo_unidade", "Código da unidade do órgão (`codigoUnidadeOrgao`).", "0000"
    )
    cancelado = BoolParam(
        field_name="cancelado",
        schema={"type": "boolean", "example": False},
        description="Ata cancelada (`cancelado`): `true` ou `false`.",
    )
    q = search_param("objetoContratacao")
    ordenacao = ordering_param(ATA_ORDERING, "-vigenciaInicio")

    windows = (
        Window(
            "dataInicial",
            "dataFinal",
            kind="overlap",
            start_field="vigencia_inicio",
            end_field="vigencia_fim",
        ),
    )
    search_column = "objeto_contratacao"
    default_ordering = ("-vigencia_inicio", "-id")

    class Meta:
        model = AtaRegistroPreco
        fields: list[str] = []


class AtaAtualizacaoFilterSet(AtaFilterSet):
    """``/atas/atualizacao/``: atas updated in the window (``dataAtualizacaoGlobal``)."""

    dataInicial, dataFinal = _window_params(
        "Data da última atualização (`dataAtualizacaoGlobal`)", "20250701", "20250731"
    )
    ordenacao = ordering_param(ATA_ORDERING, "-dataAtualizacaoGlobal")

    windows = (Window("dataInicial", "dataFinal", kind="range", field="data_atualizacao_global"),)
    default_ordering = ("-data_atualizacao_global", "-id")


# --- contratos ------------------------------------------------------------------------------

CONTRATO_ORDERING = {
    "dataPublicacaoPncp": "data_publicacao_pncp",
    "dataAtualizacaoGlobal": "data_atualizacao_global",
    "dataVigenciaInicio": "data_vigencia_inicio",
    "valorGlobal": "valor_global",
}


class ContratoFilterSet(RecordFilterSet):
    """``/contratos/``: PNCP's ``/v1/contratos`` (by publication) plus more filters."""

    dataInicial, dataFinal = _window_params(
        "Data de publicação no PNCP (`dataPublicacaoPncp`)", "20250701", "20250731"
    )
    cnpjOrgao = cnpj_param("orgao_id", "do órgão contratante (`orgaoEntidade.cnpj`)")
    codigoUnidadeAdministrativa = text_param(
        "codigo_unidade", "Código da unidade (`unidadeOrgao.codigoUnidade`).", "800100"
    )
    usuarioId = IntParam(
        field_name="id_usuario",
        min_value=1,
        schema={"type": "integer", "format": "int64", "example": 5},
        description="Id do sistema que publicou (conhecido quando importado com `usuarioId`).",
    )
    niFornecedor = NiParam(
        field_name="ni_fornecedor",
        schema={"type": "string", "maxLength": 30, "example": "35377598000117"},
        description="CNPJ, CPF ou identificador do fornecedor (`niFornecedor`), sem pontuação.",
    )
    tipoContrato = code_param(
        "tipo_contrato", "Tipo de contrato (`tipoContrato.id`)", 1, "tipo_contrato_id"
    )
    categoriaProcesso = code_param(
        "categoria_processo",
        "Categoria do processo (`categoriaProcesso.id`)",
        2,
        "categoria_processo_id",
    )
    vigenciaInicial = date_param(
        "vigenciaInicial",
        required=False,
        what="Vigência (`dataVigenciaInicio`..`dataVigenciaFim` cruza o período): início",
        example="20250101",
    )
    vigenciaFinal = date_param(
        "vigenciaFinal",
        required=False,
        what="Vigência (`dataVigenciaInicio`..`dataVigenciaFim` cruza o período): fim",
        example="20251231",
    )
    q = search_param("objetoContrato")
    ordenacao = ordering_param(CONTRATO_ORDERING, "-dataPublicacaoPncp")

    windows = (
        Window("dataInicial", "dataFinal", kind="range", field="data_publicacao_pncp"),
        Window(
            "vigenciaInicial",
            "vigenciaFinal",
            kind="overlap",
            start_field="data_vigencia_inicio",
            end_field="data_vigencia_fim",
            max_days=None,
        ),
    )
    search_column = "objeto_contrato"

    class Meta:
        model = Contrato
        fields: list[str] = []


# --- PCA ------------------------------------------------------------------------------------

ANO_PCA = {"type": "integer", "format": "int32", "minimum": 2000, "example": 2025}


def _ano_pca(required: bool) -> Param:
    return IntParam(
        field_name="ano_pca",
        required=required,
        min_value=2000,
        max_value=2100,
        schema=ANO_PCA,
        description="Ano do plano (`anoPca`)." + (" Obrigatório." if required else ""),
    )


class ItemPCAFilterSet(RecordFilterSet):
    """``/pca/``: itens of the PCAs (PNCP's ``/v1/pca/`` and ``/v1/pca/usuario`` in one).

    As in PNCP, ``anoPca`` plus a narrowing filter (``idUsuario``,
    ``codigoClassificacaoSuperior``, ``cnpj`` or ``codigoUnidade``) is required.
    """

    NARROWING = ("idUsuario", "codigoClassificacaoSuperior", "cnpj", "codigoUnidade")

    anoPca = _ano_pca(required=True)
    idUsuario = IntParam(
        method="filter_usuario",
        min_value=1,
        schema={"type": "integer", "format": "int64", "example": 3},
        description="Id do sistema que publicou o plano (PNCP `/v1/pca/usuario`).",
    )
    codigoClassificacaoSuperior = text_param(
        "classificacao_superior_codigo",
        "Código da classe/grupo do catálogo (`classificacaoSuperiorCodigo`).",
        "7110",
    )
    cnpj = cnpj_param("orgao_id", "do órgão (`orgaoEntidadeCnpj`)")
    codigoUnidade = text_param("codigo_unidade", "Código da unidade (`codigoUnidade`).", "2")
    categoriaItemPca = code_param(
        "categoria_item_pca",
        "Categoria do item (`categoriaItemPcaNome`)",
        1,
        "categoria_item_pca_id",
    )
    q = search_param("descricaoItem")

    search_column = "descricao_item"

    class Meta:
        model = ItemPCA
        fields: list[str] = []

    def filter_usuario(self, queryset, name, value):
        planos = selectors.planos_of_usuario(value, self.form.cleaned_data.get("anoPca"))
        return queryset.filter(plano_id__in=planos)

    def check_combination(self, data):
        if not any(data.get(name) not in (None, "") for name in self.NARROWING):
            self.form.add_error(
                None,
                "informe, além de anoPca, um destes filtros: idUsuario, "
                "codigoClassificacaoSuperior, cnpj ou codigoUnidade (como no PNCP)",
            )


PLANO_ORDERING = {
    "dataPublicacaoPNCP": "data_publicacao_pncp",
    "dataAtualizacaoGlobalPCA": "data_atualizacao_global_pca",
}


class PlanoContratacaoFilterSet(RecordFilterSet):
    """``/pca/planos/``: planos with their itens.

    Either a window of last update (``dataInicio``/``dataFim``, PNCP's ``/v1/pca/atualizacao``)
    or ``anoPca`` with ``idUsuario``, ``cnpj`` or ``codigoUnidade``.
    """

    NARROWING = ("idUsuario", "cnpj", "codigoUnidade")

    anoPca = _ano_pca(required=False)
    idUsuario = IntParam(
        field_name="id_usuario",
        min_value=1,
        schema={"type": "integer", "format": "int64", "example": 3},
        description="Id do sistema que publicou o plano (PNCP `/v1/pca/usuario`).",
    )
    cnpj = cnpj_param("orgao_id", "do órgão (`orgaoEntidadeCnpj`)")
    codigoUnidade = text_param("codigo_unidade", "Código da unidade (`codigoUnidade`).", "2")
    dataInicio = date_param(
        "dataInicio",
        required=False,
        what="Última atualização do plano (`dataAtualizacaoGlobalPCA`): início",
        example="20250101",
    )
    dataFim = date_param(
        "dataFim",
        required=False,
        what="Última atualização do plano (`dataAtualizacaoGlobalPCA`): fim",
        example="20250131",
    )
    ordenacao = ordering_param(PLANO_ORDERING, "-dataPublicacaoPNCP")

    windows = (
        Window(
            "dataInicio",
            "dataFim",
            kind="range",
            field="data_atualizacao_global_pca",
        ),
    )

    class Meta:
        model = PlanoContratacao
        fields: list[str] = []

    def check_combination(self, data):
        first, last = data.get("dataInicio"), data.get("dataFim")
        if first and last:
            return
        if (first or last) and not data.get("anoPca"):
            missing = "dataFim" if first else "dataInicio"
            self.form.add_error(missing, "informe dataInicio e dataFim juntos")
            return
        if data.get("anoPca") and any(data.get(n) not in (None, "") for n in self.NARROWING):
            return
        self.form.add_error(
            None,
            "informe dataInicio e dataFim, ou anoPca com idUsuario, cnpj ou codigoUnidade "
            "(como no PNCP)",
        )
