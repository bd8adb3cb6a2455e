"""One small model per PNCP domain table, on a shared abstract base.

PNCP codes are integers in most tables and short strings in a few (natureza jurídica
"1015", poder "E", tipo de pessoa "PJ"), so the base comes in two flavours that differ only
in the type of ``codigo``. ``TABLES`` maps the key used in ``source/domain_tables.json`` and
in the fixtures to its model; the importer and the API find tables through it.
"""

from django.db import models


class DomainTable(models.Model):
    nome = models.CharField(max_length=255)
    descricao = models.TextField(blank=True, default="")
    # Codes PNCP sent that our fixtures did not have: added from the name PNCP sent, flagged
    # so staff can review them (PNCP adds codes, e.g. amparos legais, without notice).
    novo_em_importacao = models.BooleanField(
        "first seen in imported data",
        default=False,
        help_text="Added automatically by an import because PNCP sent an unknown code.",
    )
    ativo = models.BooleanField(default=True)
    atualizado_em = models.DateTimeField(auto_now=True)

    table_key: str = ""

    class Meta:
        abstract = True
        ordering = ["codigo"]

    def __str__(self) -> str:
        return f"{self.codigo} - {self.nome}"


class IntCodeTable(DomainTable):
    codigo = models.IntegerField(primary_key=True)

    class Meta(DomainTable.Meta):
        abstract = True


class StrCodeTable(DomainTable):
    codigo = models.CharField(primary_key=True, max_length=8)

    class Meta(DomainTable.Meta):
        abstract = True


class InstrumentoConvocatorio(IntCodeTable):
    table_key = "instrumento_convocatorio"

    class Meta(IntCodeTable.Meta):
        verbose_name = "instrumento convocatório"
        verbose_name_plural = "instrumentos convocatórios"


class ModalidadeContratacao(IntCodeTable):
    table_key = "modalidade_contratacao"

    class Meta(IntCodeTable.Meta):
        verbose_name = "modalidade de contratação"
        verbose_name_plural = "modalidades de contratação"


class ModoDisputa(IntCodeTable):
    table_key = "modo_disputa"

    class Meta(IntCodeTable.Meta):
        verbose_name = "modo de disputa"
        verbose_name_plural = "modos de disputa"


class CriterioJulgamento(IntCodeTable):
    table_key = "criterio_julgamento"

    class Meta(IntCodeTable.Meta):
        verbose_name = "critério de julgamento"
        verbose_name_plural = "critérios de julgamento"


class SituacaoContratacao(IntCodeTable):
    table_key = "situacao_contratacao"

    class Meta(IntCodeTable.Meta):
        verbose_name = "situação da contratação"
        verbose_name_plural = "situações da contratação"


class SituacaoItemContratacao(IntCodeTable):
    table_key = "situacao_item_contratacao"

    class Meta(IntCodeTable.Meta):
        verbose_name = "situação do item da contratação"
        verbose_name_plural = "situações do item da contratação"


class TipoBeneficio(IntCodeTable):
    table_key = "tipo_beneficio"

    class Meta(IntCodeTable.Meta):
        verbose_name = "tipo de benefício"
        verbose_name_plural = "tipos de benefício"


class SituacaoResultadoItem(IntCodeTable):
    table_key = "situacao_resultado_item"

    class Meta(IntCodeTable.Meta):
        verbose_name = "situação do resultado do item"
        verbose_name_plural = "situações do resultado do item"


class TipoContrato(IntCodeTable):
    table_key = "tipo_contrato"

    class Meta(IntCodeTable.Meta):
        verbose_name = "tipo de contrato"
        verbose_name_plural = "tipos de contrato"


class TipoTermoContrato(IntCodeTable):
    table_key = "tipo_termo_contrato"

    class Meta(IntCodeTable.Meta):
        verbose_name = "tipo de termo de contrato"
        verbose_name_plural = "tipos de termo de contrato"


class CategoriaProcesso(IntCodeTable):
    table_key = "categoria_processo"

    class Meta(IntCodeTable.Meta):
        verbose_name = "categoria do processo"
        verbose_name_plural = "categorias do processo"


class TipoDocumento(IntCodeTable):
    table_key = "tipo_documento"

    class Meta(IntCodeTable.Meta):
        verbose_name = "tipo de documento"
        verbose_name_plural = "tipos de documento"


class NaturezaJuridica(StrCodeTable):
    table_key = "natureza_juridica"

    class Meta(StrCodeTable.Meta):
        verbose_name = "natureza jurídica"
        verbose_name_plural = "naturezas jurídicas"


class PorteEmpresa(IntCodeTable):
    table_key = "porte_empresa"

    class Meta(IntCodeTable.Meta):
        verbose_name = "porte da empresa"
        verbose_name_plural = "portes da empresa"


class AmparoLegal(IntCodeTable):
    table_key = "amparo_legal"

    class Meta(IntCodeTable.Meta):
        verbose_name = "amparo legal"
        verbose_name_plural = "amparos legais"


class CategoriaItemPca(IntCodeTable):
    table_key = "categoria_item_pca"

    class Meta(IntCodeTable.Meta):
        verbose_name = "categoria do item do PCA"
        verbose_name_plural = "categorias do item do PCA"


class Poder(StrCodeTable):
    table_key = "poder"

    class Meta(StrCodeTable.Meta):
        verbose_name = "poder"
        verbose_name_plural = "poderes"


class Esfera(StrCodeTable):
    table_key = "esfera"

    class Meta(StrCodeTable.Meta):
        verbose_name = "esfera"
        verbose_name_plural = "esferas"


class OrcamentoSigiloso(IntCodeTable):
    table_key = "orcamento_sigiloso"

    class Meta(IntCodeTable.Meta):
        verbose_name = "orçamento sigiloso"
        verbose_name_plural = "orçamentos sigilosos"


class TipoPessoa(StrCodeTable):
    table_key = "tipo_pessoa"

    class Meta(StrCodeTable.Meta):
        verbose_name = "tipo de pessoa"
        verbose_name_plural = "tipos de pessoa"


class TipoInstrumentoCobranca(IntCodeTable):
    table_key = "tipo_instrumento_cobranca"

    class Meta(IntCodeTable.Meta):
        verbose_name = "tipo de instrumento de cobrança"
        verbose_name_plural = "tipos de instrumento de cobrança"


class ClassificacaoCatalogo(IntCodeTable):
    table_key = "classificacao_catalogo"

    class Meta(IntCodeTable.Meta):
        verbose_name = "classificação do catálogo"
        verbose_name_plural = "classificações do catálogo"


TABLES: dict[str, type[DomainTable]] = {
    model.table_key: model
    for model in (
        InstrumentoConvocatorio,
        ModalidadeContratacao,
        ModoDisputa,
        CriterioJulgamento,
        SituacaoContratacao,
        SituacaoItemContratacao,
        TipoBeneficio,
        SituacaoResultadoItem,
        TipoContrato,
        TipoTermoContrato,
        CategoriaProcesso,
        TipoDocumento,
        NaturezaJuridica,
        PorteEmpresa,
        AmparoLegal,
        CategoriaItemPca,
        Poder,
        Esfera,
        OrcamentoSigiloso,
        TipoPessoa,
        TipoInstrumentoCobranca,
        ClassificacaoCatalogo,
    )
}
