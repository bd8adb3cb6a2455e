"""PNCP JSON -> column values, one pure function per record type.

Parse what PNCP sends, not what the manual promises: every field is optional except the
natural key and the owner órgão; strings are kept exactly as sent (trailing spaces, empty
strings) because this is a mirror; money becomes ``Decimal`` through the float's shortest
representation (exact for PNCP's ≤ 4 decimals); date-times arrive as Brasília wall clock
without an offset and become aware datetimes; date-only values (atas) are accepted where a
date-time is declared. Anything that cannot be read raises ``ParseError`` with a reason, and
the importer quarantines that record while the rest of its page lands.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import orjson

BRASILIA = ZoneInfo("America/Sao_Paulo")
_fromisoformat = datetime.fromisoformat


class ParseError(ValueError):
    """A record we cannot store as it is; the message says why."""


@dataclass
class Parsed:
    key: str
    row: dict
    orgaos: list[tuple] = field(default_factory=list)  # (cnpj, razao, poder, esfera)
    # (cnpj, codigo, nome, municipio, ibge, uf_sigla, uf_nome)
    unidades: list[tuple] = field(default_factory=list)
    codes: list[tuple] = field(default_factory=list)  # (table_key, codigo, nome)
    children: list[dict] = field(default_factory=list)
    # (ni, tipo_pessoa, nome, porte, natureza_juridica, codigo_pais)
    fornecedores: list[tuple] = field(default_factory=list)


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


# Every digit made "0": a run of 19 of them may be an integer beyond 64 bits, which orjson
# would read as a float (a translate and a find: ~0.2 ms for a page of 50, a regex ~1 ms).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def loads(data: bytes | str):
    """Decode PNCP JSON: orjson where it agrees with ``json.loads``, the standard library
    otherwise, so one body always decodes to the same values (and hashes the same).

    orjson is 3-4x faster and refuses what is not JSON (NaN, Infinity, lone surrogates). It
    differs from ``json.loads`` only on integers beyond 64 bits (it returns floats) and on
    inputs it refuses; a body with 19 digits in a row, or one orjson refuses, goes to the
    standard library, which refuses NaN and Infinity (Python's extension, not JSON:
    PostgreSQL would refuse them and orjson would write them as null, silently).
    """
    raw = data
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError:  # a lone surrogate: the standard library's business
            raw = b"0" * 19
    if raw.translate(_DIGITS_AS_ZERO).find(_NINETEEN_DIGITS) < 0:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, parse_constant=_not_json)


def canonical(value) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept (what we hash and store).

    orjson writes it at twice the standard library's speed, byte for byte as
    ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))`` except for
    floats in exponent form (``1e-7`` where Python writes ``1e-07``); a test holds the two
    equal on every real sample and fake record. The standard library takes what orjson
    refuses (integers beyond 64 bits), so one record always gets the same text.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return canonical_stdlib(value)


def canonical_stdlib(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --- scalar readers ----------------------------------------------------------------------------


def to_datetime(value, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(f"{name}: expected a date-time string, got {value!r}")
    try:
        # Python 3.11 reads date-only values, "Z" and offsets itself
        parsed = _fromisoformat(value)
    except ValueError:
        raise ParseError(f"{name}: invalid date-time {value!r}") from None
    if parsed.tzinfo is None:
        # Brasília wall clock; the constructor is ~3x cheaper than ``replace(tzinfo=...)``
        return datetime(
            parsed.year,
            parsed.month,
            parsed.day,
            parsed.hour,
            parsed.minute,
            parsed.second,
            parsed.microsecond,
            BRASILIA,
        )
    return parsed


def to_date(value, name: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(f"{name}: expected a date string, got {value!r}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ParseError(f"{name}: invalid date {value!r}") from None


def to_decimal(value, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(f"{name}: expected a number, got {value!r}")
    try:
        if isinstance(value, float):
            return Decimal(repr(value))
        return Decimal(str(value))
    except InvalidOperation:
        raise ParseError(f"{name}: invalid number {value!r}") from None


def to_int(value, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(f"{name}: expected an integer, got {value!r}")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return int(value)
    except (TypeError, ValueError):
        raise ParseError(f"{name}: invalid integer {value!r}") from None


def to_bool(value, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ParseError(f"{name}: invalid boolean {value!r}")


def to_str(value, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise ParseError(f"{name}: expected text, got {type(value).__name__}")
    return str(value)


def require(record: dict, name: str):
    value = record.get(name)
    if value is None or value == "":
        raise ParseError(f"missing required field {name}")
    return value


def cnpj(value, name: str) -> str:
    text = to_str(value, name)
    if not text or not text.isdigit() or len(text) != 14:
        raise ParseError(f"{name}: invalid CNPJ {value!r}")
    return text


def obj(record: dict, name: str) -> dict | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ParseError(f"{name}: expected an object, got {type(value).__name__}")
    return value


def fold(text: str) -> str:
    """Case- and accent-insensitive form, to match names like 'Serviço' and 'SERVICO'."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- shared pieces -----------------------------------------------------------------------------


def _orgao(p: Parsed, data: dict | None, name: str, required: bool) -> str | None:
    if data is None:
        if required:
            raise ParseError(f"missing required field {name}")
        return None
    number = cnpj(data.get("cnpj"), f"{name}.cnpj")
    poder = to_str(data.get("poderId"), f"{name}.poderId") or None
    esfera = to_str(data.get("esferaId"), f"{name}.esferaId") or None
    if poder:
        p.codes.append(("poder", poder, None))
    if esfera:
        p.codes.append(("esfera", esfera, None))
    p.orgaos.append((number, to_str(data.get("razaoSocial"), name) or "", poder, esfera))
    return number


def _unidade(p: Parsed, orgao_cnpj: str | None, data: dict | None, name: str):
    if data is None or orgao_cnpj is None:
        return None
    codigo = to_str(data.get("codigoUnidade"), f"{name}.codigoUnidade")
    if not codigo:
        return None
    ibge = to_str(data.get("codigoIbge"), f"{name}.codigoIbge")
    p.unidades.append(
        (
            orgao_cnpj,
            codigo,
            to_str(data.get("nomeUnidade"), name) or "",
            to_str(data.get("municipioNome"), name),
            ibge,
            to_str(data.get("ufSigla"), name),
            to_str(data.get("ufNome"), name),
        )
    )
    return (orgao_cnpj, codigo)


def _code(p: Parsed, table: str, code, name, label: str):
    if code is None or code == "":
        return None
    value = to_int(code, label) if table not in STR_CODE_TABLES else to_str(code, label)
    p.codes.append((table, value, to_str(name, label)))
    return value


STR_CODE_TABLES = {"poder", "esfera", "tipo_pessoa", "natureza_juridica"}


def _org_unidade_nested(p: Parsed, r: dict) -> dict:
    orgao = _orgao(p, obj(r, "orgaoEntidade"), "orgaoEntidade", required=True)
    unidade_data = obj(r, "unidadeOrgao")
    unidade = _unidade(p, orgao, unidade_data, "unidadeOrgao")
    sub = _orgao(p, obj(r, "orgaoSubRogado"), "orgaoSubRogado", required=False)
    sub_unidade = _unidade(p, sub or orgao, obj(r, "unidadeSubRogada"), "unidadeSubRogada")
    unidade_data = unidade_data or {}
    return {
        "orgao_id": orgao,
        "unidade_id": unidade,
        "orgao_sub_rogado_id": sub,
        "unidade_sub_rogada_id": sub_unidade,
        "codigo_unidade": unidade[1] if unidade else "",
        "uf": to_str(unidade_data.get("ufSigla"), "unidadeOrgao.ufSigla"),
        "codigo_municipio_ibge": to_str(unidade_data.get("codigoIbge"), "unidadeOrgao.codigoIbge"),
    }


# --- record types ---------------------------------------------------------------------------------


def parse_contratacao(r: dict) -> Parsed:
    key = to_str(require(r, "numeroControlePNCP"), "numeroControlePNCP")
    p = Parsed(key=key, row={})
    amparo = obj(r, "amparoLegal") or {}
    fontes = r.get("fontesOrcamentarias")
    if fontes is not None and not isinstance(fontes, list):
        raise ParseError("fontesOrcamentarias: expected a list")
    p.row = {
        "numero_controle_pncp": key,
        **_org_unidade_nested(p, r),
        "ano_compra": to_int(require(r, "anoCompra"), "anoCompra"),
        "sequencial_compra": to_int(require(r, "sequencialCompra"), "sequencialCompra"),
        "numero_compra": to_str(r.get("numeroCompra"), "numeroCompra") or "",
        "processo": to_str(r.get("processo"), "processo") or "",
        "objeto_compra": to_str(r.get("objetoCompra"), "objetoCompra") or "",
        "informacao_complementar": to_str(
            r.get("informacaoComplementar"), "informacaoComplementar"
        ),
        "srp": to_bool(r.get("srp"), "srp"),
        "modalidade_id": _code(
            p,
            "modalidade_contratacao",
            r.get("modalidadeId"),
            r.get("modalidadeNome"),
            "modalidadeId",
        ),
        "modo_disputa_id": _code(
            p, "modo_disputa", r.get("modoDisputaId"), r.get("modoDisputaNome"), "modoDisputaId"
        ),
        "instrumento_convocatorio_id": _code(
            p,
            "instrumento_convocatorio",
            r.get("tipoInstrumentoConvocatorioCodigo", r.get("tipoInstrumentoConvocatorioId")),
            r.get("tipoInstrumentoConvocatorioNome"),
            "tipoInstrumentoConvocatorioCodigo",
        ),
        "amparo_legal_id": _code(
            p, "amparo_legal", amparo.get("codigo"), amparo.get("nome"), "amparoLegal.codigo"
        ),
        "situacao_id": _code(
            p,
            "situacao_contratacao",
            r.get("situacaoCompraId"),
            r.get("situacaoCompraNome"),
            "situacaoCompraId",
        ),
        "orcamento_sigiloso_id": _code(
            p,
            "orcamento_sigiloso",
            r.get("orcamentoSigilosoCodigo"),
            r.get("orcamentoSigilosoDescricao"),
            "orcamentoSigilosoCodigo",
        ),
        "indicador_orcamento_sigiloso": to_str(
            r.get("indicadorOrcamentoSigiloso"), "indicadorOrcamentoSigiloso"
        ),
        "existe_resultado": to_bool(r.get("existeResultado"), "existeResultado"),
        "valor_total_estimado": to_decimal(r.get("valorTotalEstimado"), "valorTotalEstimado"),
        "valor_total_homologado": to_decimal(r.get("valorTotalHomologado"), "valorTotalHomologado"),
        "data_inclusao": to_datetime(r.get("dataInclusao"), "dataInclusao"),
        "data_publicacao_pncp": to_datetime(r.get("dataPublicacaoPncp"), "dataPublicacaoPncp"),
        "data_atualizacao": to_datetime(r.get("dataAtualizacao"), "dataAtualizacao"),
        "data_atualizacao_global": to_datetime(
            r.get("dataAtualizacaoGlobal"), "dataAtualizacaoGlobal"
        ),
        "data_abertura_proposta": to_datetime(
            r.get("dataAberturaProposta"), "dataAberturaProposta"
        ),
        "data_encerramento_proposta": to_datetime(
            r.get("dataEncerramentoProposta"), "dataEncerramentoProposta"
        ),
        "link_sistema_origem": to_str(r.get("linkSistemaOrigem"), "linkSistemaOrigem"),
        "link_processo_eletronico": to_str(
            r.get("linkProcessoEletronico"), "linkProcessoEletronico"
        ),
        "justificativa_presencial": to_str(
            r.get("justificativaPresencial"), "justificativaPresencial"
        ),
        "usuario_nome": to_str(r.get("usuarioNome"), "usuarioNome"),
        # stored as JSON text, made here (in the reading thread, off the ingesting one)
        "fontes_orcamentarias": None if fontes is None else canonical(fontes),
    }
    return p


def parse_ata(r: dict) -> Parsed:
    key = to_str(require(r, "numeroControlePNCPAta"), "numeroControlePNCPAta")
    p = Parsed(key=key, row={})
    orgao_cnpj = cnpj(r.get("cnpjOrgao"), "cnpjOrgao")
    p.orgaos.append((orgao_cnpj, to_str(r.get("nomeOrgao"), "nomeOrgao") or "", None, None))
    unidade = _unidade(
        p,
        orgao_cnpj,
        {"codigoUnidade": r.get("codigoUnidadeOrgao"), "nomeUnidade": r.get("nomeUnidadeOrgao")},
        "codigoUnidadeOrgao",
    )
    sub = None
    if r.get("cnpjOrgaoSubrogado"):
        sub = cnpj(r.get("cnpjOrgaoSubrogado"), "cnpjOrgaoSubrogado")
        p.orgaos.append(
            (sub, to_str(r.get("nomeOrgaoSubrogado"), "nomeOrgaoSubrogado") or "", None, None)
        )
    sub_unidade = _unidade(
        p,
        sub or orgao_cnpj,
        {
            "codigoUnidade": r.get("codigoUnidadeOrgaoSubrogado"),
            "nomeUnidade": r.get("nomeUnidadeOrgaoSubrogado"),
        },
        "codigoUnidadeOrgaoSubrogado",
    )
    compra = r.get("numeroControlePNCPCompra", r.get("numeroControlePncpCompra"))
    p.row = {
        "numero_controle_pncp_ata": key,
        "numero_controle_pncp_compra": to_str(compra, "numeroControlePNCPCompra") or "",
        "orgao_id": orgao_cnpj,
        "unidade_id": unidade,
        "orgao_sub_rogado_id": sub,
        "unidade_sub_rogada_id": sub_unidade,
        "codigo_unidade": unidade[1] if unidade else "",
        "numero_ata_registro_preco": to_str(r.get("numeroAtaRegistroPreco"), "numeroAta") or "",
        "ano_ata": to_int(r.get("anoAta"), "anoAta"),
        "cancelado": to_bool(r.get("cancelado"), "cancelado"),
        "data_cancelamento": to_datetime(r.get("dataCancelamento"), "dataCancelamento"),
        "data_assinatura": to_date(r.get("dataAssinatura"), "dataAssinatura"),
        "vigencia_inicio": to_date(r.get("vigenciaInicio"), "vigenciaInicio"),
        "vigencia_fim": to_date(r.get("vigenciaFim"), "vigenciaFim"),
        "data_publicacao_pncp": to_datetime(r.get("dataPublicacaoPncp"), "dataPublicacaoPncp"),
        "data_inclusao": to_datetime(r.get("dataInclusao"), "dataInclusao"),
        "data_atualizacao": to_datetime(r.get("dataAtualizacao"), "dataAtualizacao"),
        "data_atualizacao_global": to_datetime(
            r.get("dataAtualizacaoGlobal"), "dataAtualizacaoGlobal"
        ),
        "objeto_contratacao": to_str(r.get("objetoContratacao"), "objetoContratacao") or "",
        "usuario": to_str(r.get("usuario"), "usuario"),
    }
    return p


def parse_contrato(r: dict) -> Parsed:
    key = to_str(require(r, "numeroControlePNCP"), "numeroControlePNCP")
    p = Parsed(key=key, row={})
    tipo = obj(r, "tipoContrato") or {}
    categoria = obj(r, "categoriaProcesso") or {}
    compra = r.get("numeroControlePncpCompra", r.get("numeroControlePNCPCompra"))
    p.row = {
        "numero_controle_pncp": key,
        "numero_controle_pncp_compra": to_str(compra, "numeroControlePncpCompra"),
        **_org_unidade_nested(p, r),
        "ano_contrato": to_int(require(r, "anoContrato"), "anoContrato"),
        "sequencial_contrato": to_int(require(r, "sequencialContrato"), "sequencialContrato"),
        "numero_contrato_empenho": to_str(r.get("numeroContratoEmpenho"), "numeroContrato") or "",
        "processo": to_str(r.get("processo"), "processo") or "",
        "tipo_contrato_id": _code(
            p, "tipo_contrato", tipo.get("id"), tipo.get("nome"), "tipoContrato.id"
        ),
        "categoria_processo_id": _code(
            p,
            "categoria_processo",
            categoria.get("id"),
            categoria.get("nome"),
            "categoriaProcesso.id",
        ),
        "receita": to_bool(r.get("receita"), "receita"),
        "objeto_contrato": to_str(r.get("objetoContrato"), "objetoContrato") or "",
        "informacao_complementar": to_str(
            r.get("informacaoComplementar"), "informacaoComplementar"
        ),
        "codigo_pais_fornecedor": to_str(r.get("codigoPaisFornecedor"), "codigoPaisFornecedor"),
        "tipo_pessoa_id": _code(p, "tipo_pessoa", r.get("tipoPessoa"), None, "tipoPessoa"),
        "ni_fornecedor": to_str(r.get("niFornecedor"), "niFornecedor") or "",
        "nome_razao_social_fornecedor": to_str(
            r.get("nomeRazaoSocialFornecedor"), "nomeRazaoSocialFornecedor"
        )
        or "",
        "tipo_pessoa_sub_contratada_id": _code(
            p, "tipo_pessoa", r.get("tipoPessoaSubContratada"), None, "tipoPessoaSubContratada"
        ),
        "ni_fornecedor_sub_contratado": to_str(
            r.get("niFornecedorSubContratado"), "niFornecedorSubContratado"
        ),
        "nome_fornecedor_sub_contratado": to_str(
            r.get("nomeFornecedorSubContratado"), "nomeFornecedorSubContratado"
        ),
        "valor_inicial": to_decimal(r.get("valorInicial"), "valorInicial"),
        "numero_parcelas": to_int(r.get("numeroParcelas"), "numeroParcelas"),
        "valor_parcela": to_decimal(r.get("valorParcela"), "valorParcela"),
        "valor_global": to_decimal(r.get("valorGlobal"), "valorGlobal"),
        "valor_acumulado": to_decimal(r.get("valorAcumulado"), "valorAcumulado"),
        "data_assinatura": to_date(r.get("dataAssinatura"), "dataAssinatura"),
        "data_vigencia_inicio": to_date(r.get("dataVigenciaInicio"), "dataVigenciaInicio"),
        "data_vigencia_fim": to_date(r.get("dataVigenciaFim"), "dataVigenciaFim"),
        "numero_retificacao": to_int(r.get("numeroRetificacao"), "numeroRetificacao"),
        "usuario_nome": to_str(r.get("usuarioNome"), "usuarioNome"),
        "data_publicacao_pncp": to_datetime(r.get("dataPublicacaoPncp"), "dataPublicacaoPncp"),
        "data_atualizacao": to_datetime(r.get("dataAtualizacao"), "dataAtualizacao"),
        "data_atualizacao_global": to_datetime(
            r.get("dataAtualizacaoGlobal"), "dataAtualizacaoGlobal"
        ),
        "identificador_cipi": to_str(r.get("identificadorCipi"), "identificadorCipi"),
        "url_cipi": to_str(r.get("urlCipi"), "urlCipi"),
    }
    return p


def parse_pca(r: dict) -> Parsed:
    key = to_str(require(r, "idPcaPncp"), "idPcaPncp")
    p = Parsed(key=key, row={})
    orgao_cnpj = cnpj(r.get("orgaoEntidadeCnpj"), "orgaoEntidadeCnpj")
    p.orgaos.append(
        (orgao_cnpj, to_str(r.get("orgaoEntidadeRazaoSocial"), "razaoSocial") or "", None, None)
    )
    unidade = _unidade(
        p,
        orgao_cnpj,
        {"codigoUnidade": r.get("codigoUnidade"), "nomeUnidade": r.get("nomeUnidade")},
        "codigoUnidade",
    )
    ano = to_int(require(r, "anoPca"), "anoPca")
    p.row = {
        "id_pca_pncp": key,
        "orgao_id": orgao_cnpj,
        "unidade_id": unidade,
        "orgao_sub_rogado_id": None,
        "unidade_sub_rogada_id": None,
        "codigo_unidade": unidade[1] if unidade else "",
        "ano_pca": ano,
        "data_publicacao_pncp": to_datetime(
            r.get("dataPublicacaoPNCP", r.get("dataPublicacaoPncp")), "dataPublicacaoPNCP"
        ),
        "data_atualizacao_global_pca": to_datetime(
            r.get("dataAtualizacaoGlobalPCA"), "dataAtualizacaoGlobalPCA"
        ),
    }
    itens = r.get("itens") or []
    if not isinstance(itens, list):
        raise ParseError("itens: expected a list")
    seen = set()
    for i, item in enumerate(itens):
        if not isinstance(item, dict):
            raise ParseError(f"itens[{i}]: expected an object")
        child = parse_item_pca(item, p, f"itens[{i}]")
        if child["numero_item"] in seen:
            raise ParseError(f"itens[{i}]: numeroItem {child['numero_item']} repeated")
        seen.add(child["numero_item"])
        child.update(ano_pca=ano, orgao_id=orgao_cnpj, codigo_unidade=p.row["codigo_unidade"])
        p.children.append(child)
    return p


def parse_item_pca(item: dict, p: Parsed, label: str) -> dict:
    def f(name):
        return f"{label}.{name}"

    classificacao = _code(
        p,
        "classificacao_catalogo",
        item.get("classificacaoCatalogoId"),
        item.get("nomeClassificacaoCatalogo"),
        f("classificacaoCatalogoId"),
    )
    categoria_nome = to_str(item.get("categoriaItemPcaNome"), f("categoriaItemPcaNome"))
    return {
        "numero_item": to_int(require(item, "numeroItem"), f("numeroItem")),
        "raw": item,
        "categoria_item_pca_nome": categoria_nome,
        "categoria_item_pca_id": ("by_name", "categoria_item_pca", categoria_nome)
        if categoria_nome
        else None,
        "classificacao_catalogo_id": classificacao,
        "nome_classificacao_catalogo": to_str(
            item.get("nomeClassificacaoCatalogo"), f("nomeClassificacaoCatalogo")
        ),
        "classificacao_superior_codigo": to_str(
            item.get("classificacaoSuperiorCodigo"), f("classificacaoSuperiorCodigo")
        ),
        "classificacao_superior_nome": to_str(
            item.get("classificacaoSuperiorNome"), f("classificacaoSuperiorNome")
        ),
        "codigo_item": to_str(item.get("codigoItem"), f("codigoItem")),
        "descricao_item": to_str(item.get("descricaoItem"), f("descricaoItem")),
        "pdm_codigo": to_str(item.get("pdmCodigo"), f("pdmCodigo")),
        "pdm_descricao": to_str(item.get("pdmDescricao"), f("pdmDescricao")),
        "unidade_fornecimento": to_str(item.get("unidadeFornecimento"), f("unidadeFornecimento")),
        "unidade_requisitante": to_str(item.get("unidadeRequisitante"), f("unidadeRequisitante")),
        "grupo_contratacao_codigo": to_str(
            item.get("grupoContratacaoCodigo"), f("grupoContratacaoCodigo")
        ),
        "grupo_contratacao_nome": to_str(
            item.get("grupoContratacaoNome"), f("grupoContratacaoNome")
        ),
        "quantidade_estimada": to_decimal(item.get("quantidadeEstimada"), f("quantidadeEstimada")),
        "valor_unitario": to_decimal(item.get("valorUnitario"), f("valorUnitario")),
        "valor_total": to_decimal(item.get("valorTotal"), f("valorTotal")),
        "valor_orcamento_exercicio": to_decimal(
            item.get("valorOrcamentoExercicio"), f("valorOrcamentoExercicio")
        ),
        "data_desejada": to_date(item.get("dataDesejada"), f("dataDesejada")),
        "data_inclusao": to_datetime(item.get("dataInclusao"), f("dataInclusao")),
        "data_atualizacao": to_datetime(item.get("dataAtualizacao"), f("dataAtualizacao")),
    }


# --- itens and resultados (PNCP's main API) ------------------------------------------------------
#
# These lists are sub-resources of a compra: the records do not all carry the compra's
# numeroControlePNCP, so the importer passes it (and the database ids of the parents) as
# ``context``. Field names and types are those of the main API's OpenAPI document
# (``RecuperarCompraItemSigiloDTO``, ``RecuperarCompraItemResultadoDTO``); codes declared
# there as string enums ("1".."5") arrive as integers in real answers, and both are read.


def item_key(r: dict, context: dict | None) -> str | None:
    """``<numeroControlePNCP>#<numeroItem>``, or None when either part is missing."""
    if not context or not context.get("compra"):
        return None
    try:
        numero = to_int(r.get("numeroItem"), "numeroItem")
    except ParseError:
        return None
    return f"{context['compra']}#{numero}" if numero is not None else None


def resultado_key(r: dict, context: dict | None) -> str | None:
    """``<numeroControlePNCP>#<numeroItem>#<sequencialResultado>``, or None."""
    item = item_key(r, context)
    try:
        sequencial = to_int(r.get("sequencialResultado"), "sequencialResultado")
    except ParseError:
        return None
    return f"{item}#{sequencial}" if item and sequencial is not None else None


def _nested(r: dict, name: str, *fields: str) -> list:
    """Values of ``fields`` in the object ``r[name]`` (all None when it is null)."""
    data = obj(r, name) or {}
    return [data.get(f) for f in fields]


def parse_item(r: dict, context: dict) -> Parsed:
    key = item_key(r, context)
    if key is None:
        raise ParseError("missing required field numeroItem")
    p = Parsed(key=key, row={})
    catalogo_id, catalogo_nome = _nested(r, "catalogo", "id", "nome")
    categoria_id, categoria_nome = _nested(r, "categoriaItemCatalogo", "id", "nome")
    margem_codigo, margem_nome = _nested(r, "tipoMargemPreferencia", "codigo", "nome")
    p.row = {
        "chave": key,
        "contratacao_id": context["contratacao_id"],
        "numero_controle_pncp_compra": context["compra"],
        "numero_item": to_int(r.get("numeroItem"), "numeroItem"),
        "descricao": to_str(r.get("descricao"), "descricao"),
        "material_ou_servico": to_str(r.get("materialOuServico"), "materialOuServico"),
        "material_ou_servico_nome": to_str(r.get("materialOuServicoNome"), "materialOuServicoNome"),
        "valor_unitario_estimado": to_decimal(
            r.get("valorUnitarioEstimado"), "valorUnitarioEstimado"
        ),
        "valor_total": to_decimal(r.get("valorTotal"), "valorTotal"),
        "quantidade": to_decimal(r.get("quantidade"), "quantidade"),
        "unidade_medida": to_str(r.get("unidadeMedida"), "unidadeMedida"),
        "orcamento_sigiloso": to_bool(r.get("orcamentoSigiloso"), "orcamentoSigiloso"),
        "item_categoria_codigo": to_int(r.get("itemCategoriaId"), "itemCategoriaId"),
        "item_categoria_nome": to_str(r.get("itemCategoriaNome"), "itemCategoriaNome"),
        "patrimonio": to_str(r.get("patrimonio"), "patrimonio"),
        "codigo_registro_imobiliario": to_str(
            r.get("codigoRegistroImobiliario"), "codigoRegistroImobiliario"
        ),
        "criterio_julgamento_id": _code(
            p,
            "criterio_julgamento",
            r.get("criterioJulgamentoId"),
            r.get("criterioJulgamentoNome"),
            "criterioJulgamentoId",
        ),
        "situacao_id": _code(
            p,
            "situacao_item_contratacao",
            r.get("situacaoCompraItem"),
            r.get("situacaoCompraItemNome"),
            "situacaoCompraItem",
        ),
        "tipo_beneficio_id": _code(
            p, "tipo_beneficio", r.get("tipoBeneficio"), r.get("tipoBeneficioNome"), "tipoBeneficio"
        ),
        "incentivo_produtivo_basico": to_bool(
            r.get("incentivoProdutivoBasico"), "incentivoProdutivoBasico"
        ),
        "data_inclusao": to_datetime(r.get("dataInclusao"), "dataInclusao"),
        "data_atualizacao": to_datetime(r.get("dataAtualizacao"), "dataAtualizacao"),
        "tem_resultado": to_bool(r.get("temResultado"), "temResultado"),
        "imagem": to_int(r.get("imagem"), "imagem"),
        "aplicabilidade_margem_preferencia_normal": to_bool(
            r.get("aplicabilidadeMargemPreferenciaNormal"), "aplicabilidadeMargemPreferenciaNormal"
        ),
        "aplicabilidade_margem_preferencia_adicional": to_bool(
            r.get("aplicabilidadeMargemPreferenciaAdicional"),
            "aplicabilidadeMargemPreferenciaAdicional",
        ),
        "percentual_margem_preferencia_normal": to_decimal(
            r.get("percentualMargemPreferenciaNormal"), "percentualMargemPreferenciaNormal"
        ),
        "percentual_margem_preferencia_adicional": to_decimal(
            r.get("percentualMargemPreferenciaAdicional"), "percentualMargemPreferenciaAdicional"
        ),
        "ncm_nbs_codigo": to_str(r.get("ncmNbsCodigo"), "ncmNbsCodigo"),
        "ncm_nbs_descricao": to_str(r.get("ncmNbsDescricao"), "ncmNbsDescricao"),
        "catalogo_codigo": to_int(catalogo_id, "catalogo.id"),
        "catalogo_nome": to_str(catalogo_nome, "catalogo.nome"),
        "categoria_item_catalogo_codigo": to_int(categoria_id, "categoriaItemCatalogo.id"),
        "categoria_item_catalogo_nome": to_str(categoria_nome, "categoriaItemCatalogo.nome"),
        "catalogo_codigo_item": to_str(r.get("catalogoCodigoItem"), "catalogoCodigoItem"),
        "informacao_complementar": to_str(
            r.get("informacaoComplementar"), "informacaoComplementar"
        ),
        "tipo_margem_preferencia_codigo": to_int(margem_codigo, "tipoMargemPreferencia.codigo"),
        "tipo_margem_preferencia_nome": to_str(margem_nome, "tipoMargemPreferencia.nome"),
        "exigencia_conteudo_nacional": to_bool(
            r.get("exigenciaConteudoNacional"), "exigenciaConteudoNacional"
        ),
    }
    return p


def parse_resultado(r: dict, context: dict) -> Parsed:
    key = resultado_key(r, context)
    if key is None:
        raise ParseError("missing required field numeroItem or sequencialResultado")
    numero_item = to_int(r.get("numeroItem"), "numeroItem")
    item_id = (context.get("item_ids") or {}).get(numero_item)
    if item_id is None:
        raise ParseError(f"numeroItem {numero_item} is not a stored item of {context['compra']}")
    p = Parsed(key=key, row={})
    compra = to_str(r.get("numeroControlePNCPCompra"), "numeroControlePNCPCompra")
    if compra and compra != context["compra"]:
        raise ParseError(f"numeroControlePNCPCompra {compra!r} is not {context['compra']!r}")
    ni = to_str(r.get("niFornecedor"), "niFornecedor") or ""
    nome = to_str(r.get("nomeRazaoSocialFornecedor"), "nomeRazaoSocialFornecedor") or ""
    tipo_pessoa = _code(p, "tipo_pessoa", r.get("tipoPessoa"), None, "tipoPessoa")
    porte = _code(
        p,
        "porte_empresa",
        r.get("porteFornecedorId"),
        r.get("porteFornecedorNome"),
        "porteFornecedorId",
    )
    natureza = _code(
        p,
        "natureza_juridica",
        r.get("naturezaJuridicaId"),
        r.get("naturezaJuridicaNome"),
        "naturezaJuridicaId",
    )
    codigo_pais = to_str(r.get("codigoPais"), "codigoPais")
    if ni:
        p.fornecedores.append((ni, tipo_pessoa, nome, porte, natureza, codigo_pais))
    moeda_id, moeda_simbolo, moeda_nome = _nested(r, "moedaEstrangeira", "id", "simbolo", "nome")
    margem_id, margem_nome = _nested(r, "amparoLegalMargemPreferencia", "id", "nome")
    desempate_id, desempate_nome = _nested(r, "amparoLegalCriterioDesempate", "id", "nome")
    pais_id, pais_nome = _nested(r, "paisOrigemProdutoServico", "id", "nome")
    p.row = {
        "chave": key,
        "item_id": item_id,
        "numero_controle_pncp_compra": context["compra"],
        "numero_item": numero_item,
        "sequencial_resultado": to_int(r.get("sequencialResultado"), "sequencialResultado"),
        "situacao_id": _code(
            p,
            "situacao_resultado_item",
            r.get("situacaoCompraItemResultadoId"),
            r.get("situacaoCompraItemResultadoNome"),
            "situacaoCompraItemResultadoId",
        ),
        "fornecedor_id": ni or None,
        "ni_fornecedor": ni,
        "tipo_pessoa_id": tipo_pessoa,
        "nome_razao_social_fornecedor": nome,
        "porte_fornecedor_id": porte,
        "natureza_juridica_id": natureza,
        "codigo_pais": codigo_pais,
        "quantidade_homologada": to_decimal(r.get("quantidadeHomologada"), "quantidadeHomologada"),
        "valor_unitario_homologado": to_decimal(
            r.get("valorUnitarioHomologado"), "valorUnitarioHomologado"
        ),
        "valor_total_homologado": to_decimal(r.get("valorTotalHomologado"), "valorTotalHomologado"),
        "percentual_desconto": to_decimal(r.get("percentualDesconto"), "percentualDesconto"),
        "moeda_estrangeira_codigo": to_int(moeda_id, "moedaEstrangeira.id"),
        "moeda_estrangeira_simbolo": to_str(moeda_simbolo, "moedaEstrangeira.simbolo"),
        "moeda_estrangeira_nome": to_str(moeda_nome, "moedaEstrangeira.nome"),
        "valor_nominal_moeda_estrangeira": to_decimal(
            r.get("valorNominalMoedaEstrangeira"), "valorNominalMoedaEstrangeira"
        ),
        "timezone_cotacao_moeda_estrangeira": to_str(
            r.get("timezoneCotacaoMoedaEstrangeira"), "timezoneCotacaoMoedaEstrangeira"
        ),
        "data_cotacao_moeda_estrangeira": to_datetime(
            r.get("dataCotacaoMoedaEstrangeira"), "dataCotacaoMoedaEstrangeira"
        ),
        "amparo_legal_margem_preferencia_id": _code(
            p, "amparo_legal", margem_id, margem_nome, "amparoLegalMargemPreferencia.id"
        ),
        "amparo_legal_criterio_desempate_id": _code(
            p, "amparo_legal", desempate_id, desempate_nome, "amparoLegalCriterioDesempate.id"
        ),
        "pais_origem_produto_servico_codigo": to_str(pais_id, "paisOrigemProdutoServico.id"),
        "pais_origem_produto_servico_nome": to_str(pais_nome, "paisOrigemProdutoServico.nome"),
        "indicador_subcontratacao": to_bool(
            r.get("indicadorSubcontratacao"), "indicadorSubcontratacao"
        ),
        "ordem_classificacao_srp": to_int(r.get("ordemClassificacaoSrp"), "ordemClassificacaoSrp"),
        "data_resultado": to_date(r.get("dataResultado"), "dataResultado"),
        "motivo_cancelamento": to_str(r.get("motivoCancelamento"), "motivoCancelamento"),
        "data_cancelamento": to_datetime(r.get("dataCancelamento"), "dataCancelamento"),
        "aplicacao_margem_preferencia": to_bool(
            r.get("aplicacaoMargemPreferencia"), "aplicacaoMargemPreferencia"
        ),
        "aplicacao_beneficio_me_epp": to_bool(
            r.get("aplicacaoBeneficioMeEpp"), "aplicacaoBeneficioMeEpp"
        ),
        "aplicacao_criterio_desempate": to_bool(
            r.get("aplicacaoCriterioDesempate"), "aplicacaoCriterioDesempate"
        ),
        "data_inclusao": to_datetime(r.get("dataInclusao"), "dataInclusao"),
        "data_atualizacao": to_datetime(r.get("dataAtualizacao"), "dataAtualizacao"),
    }
    return p
