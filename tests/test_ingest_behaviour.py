"""What the ingest does with changes, unknown codes and bad records."""

import copy
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from domain_tables.models import AmparoLegal, ModalidadeContratacao
from pncp.models import Contratacao, Contrato, Orgao, RecordVersion, RejectedRecord, UnidadeOrgao
from tests.conftest import sample_records


@pytest.fixture
def contratacoes():
    return sample_records("contratacao_1.json")


@pytest.mark.django_db
def test_unchanged_reimport_rewrites_nothing(ingester, contratacoes):
    ingester.ingest("contratacoes", contratacoes)
    stamps = dict(Contratacao.objects.values_list("numero_controle_pncp", "last_changed_at"))
    result = ingester.ingest("contratacoes", copy.deepcopy(contratacoes))
    assert (result.created, result.updated, result.unchanged) == (0, 0, len(contratacoes))
    assert dict(Contratacao.objects.values_list("numero_controle_pncp", "last_changed_at")) == (
        stamps
    )
    assert RecordVersion.objects.count() == 0


@pytest.mark.django_db
def test_change_keeps_previous_payload_and_first_seen(ingester, contratacoes):
    ingester.ingest("contratacoes", contratacoes)
    original = Contratacao.objects.get(numero_controle_pncp=contratacoes[0]["numeroControlePNCP"])
    changed = copy.deepcopy(contratacoes[0])
    changed["valorTotalHomologado"] = 1234.5
    changed["situacaoCompraId"] = 4
    result = ingester.ingest("contratacoes", [changed])
    assert (result.created, result.updated, result.versions) == (0, 1, 1)
    current = Contratacao.objects.get(pk=original.pk)
    assert str(current.valor_total_homologado) == "1234.5000"
    assert current.situacao_id == 4
    assert current.first_seen_at == original.first_seen_at
    assert current.last_changed_at > original.last_changed_at
    [version] = RecordVersion.objects.all()
    assert version.payload == contratacoes[0]
    assert version.valid_from == original.last_changed_at


@pytest.mark.django_db
def test_stale_last_seen_is_refreshed_without_a_new_version(ingester, contratacoes):
    ingester.ingest("contratacoes", contratacoes)
    old = timezone.now() - timedelta(days=3)
    Contratacao.objects.update(last_seen_at=old)
    ingester.ingest("contratacoes", contratacoes)
    assert not Contratacao.objects.filter(last_seen_at=old).exists()
    assert RecordVersion.objects.count() == 0


@pytest.mark.django_db
def test_unknown_domain_code_is_added_from_pncp_name_and_flagged(ingester, contratacoes):
    record = copy.deepcopy(contratacoes[0])
    record["amparoLegal"] = {"codigo": 999, "nome": "Lei 99.999/2026, Art. 1", "descricao": "x"}
    record["modalidadeId"], record["modalidadeNome"] = 77, "Modalidade Nova"
    assert ingester.ingest("contratacoes", [record]).created == 1
    amparo = AmparoLegal.objects.get(codigo=999)
    assert (amparo.nome, amparo.novo_em_importacao) == ("Lei 99.999/2026, Art. 1", True)
    assert ModalidadeContratacao.objects.get(codigo=77).novo_em_importacao is True
    assert Contratacao.objects.get().amparo_legal_id == 999


@pytest.mark.django_db
def test_bad_record_is_quarantined_while_the_rest_of_the_page_lands(ingester, contratacoes):
    bad_date = copy.deepcopy(contratacoes[1])
    bad_date["dataPublicacaoPncp"] = "24/06/2025"
    bad_cnpj = copy.deepcopy(contratacoes[2])
    bad_cnpj["orgaoEntidade"]["cnpj"] = "123"
    no_key = copy.deepcopy(contratacoes[3])
    del no_key["numeroControlePNCP"]
    page = [contratacoes[0], bad_date, bad_cnpj, no_key, "not a record", *contratacoes[4:]]
    result = ingester.ingest("contratacoes", page, source="contratacoes.publicacao p1")
    assert result.rejected == 4
    assert result.created == len(contratacoes) - 3
    reasons = {r.natural_key: r.reason for r in RejectedRecord.objects.all()}
    assert (
        "dataPublicacaoPncp: invalid date-time '24/06/2025'"
        in reasons[bad_date["numeroControlePNCP"]]
    )
    assert "invalid CNPJ" in reasons[bad_cnpj["numeroControlePNCP"]]
    assert any("missing natural key" in r for r in reasons.values())
    stored = RejectedRecord.objects.get(natural_key=bad_date["numeroControlePNCP"])
    assert stored.payload == bad_date
    assert stored.source == "contratacoes.publicacao p1"


@pytest.mark.django_db
def test_value_the_database_refuses_quarantines_only_that_record(ingester):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    records = sample_records("contrato_2.json")
    too_long = copy.deepcopy(records[0])
    too_long["codigoPaisFornecedor"] = "BRASIL"  # varchar(3)
    result = ingester.ingest("contratos", [too_long, *records[1:]])
    assert result.rejected == 1 and result.created == len(records) - 1
    reject = RejectedRecord.objects.get()
    assert reject.natural_key == too_long["numeroControlePNCP"]
    assert "database refused" in reject.reason
    assert Contrato.objects.count() == len(records) - 1


@pytest.mark.django_db
def test_orgaos_and_unidades_are_normalized_once(ingester):
    records = sample_records("contratos_publicacao_page.json")
    ingester.ingest("contratos", records)
    cnpjs = {r["orgaoEntidade"]["cnpj"] for r in records}
    unidades = {(r["orgaoEntidade"]["cnpj"], r["unidadeOrgao"]["codigoUnidade"]) for r in records}
    assert Orgao.objects.count() == len(cnpjs)
    assert UnidadeOrgao.objects.count() == len(unidades)


@pytest.mark.django_db
def test_ata_does_not_erase_the_uf_a_contratacao_gave_its_unidade(ingester):
    [contratacao] = sample_records("contratacao_5.json")
    ingester.ingest("contratacoes", [contratacao])
    orgao = contratacao["orgaoEntidade"]["cnpj"]
    codigo = contratacao["unidadeOrgao"]["codigoUnidade"]
    ata = copy.deepcopy(sample_records("ata_5.json")[0])
    ata.update(cnpjOrgao=orgao, codigoUnidadeOrgao=codigo, nomeUnidadeOrgao="NOME NOVO")
    ingester.ingest("atas", [ata])
    unidade = UnidadeOrgao.objects.get(orgao_id=orgao, codigo_unidade=codigo)
    assert unidade.uf_sigla == contratacao["unidadeOrgao"]["ufSigla"]
    assert unidade.nome_unidade == "NOME NOVO"


@pytest.mark.django_db
def test_from_dir_imports_saved_pages_and_reports_unreadable_ones(tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    (tmp_path / "contratos").mkdir()
    records = sample_records("contrato_2.json")
    page = {"data": records, "totalRegistros": len(records), "totalPaginas": 1}
    (tmp_path / "contratos" / "p1.json").write_text(json.dumps(page))
    call_command("sync_pncp", "contratos", from_dir=str(tmp_path))
    assert Contrato.objects.count() == len(records)
    (tmp_path / "contratos" / "p2.json").write_text('{"data": [{"trunc')
    with pytest.raises(CommandError, match="same --from-dir again"):
        call_command("sync_pncp", "contratos", from_dir=str(tmp_path))


def _variant(record: dict, number: int) -> dict:
    """A copy of a real contratação under a new natural key (same órgão, new sequencial)."""
    clone = copy.deepcopy(record)
    cnpj, year = record["orgaoEntidade"]["cnpj"], record["anoCompra"]
    clone["sequencialCompra"] = 90000 + number
    clone["numeroControlePNCP"] = f"{cnpj}-1-{90000 + number:06d}/{year}"
    return clone


def _write_pages(directory, pages: list[list[dict]]) -> None:
    target = directory / "contratacoes"
    target.mkdir(exist_ok=True)
    for number, data in enumerate(pages, 1):
        body = {"data": data, "totalRegistros": len(data), "totalPaginas": 1}
        (target / f"p{number}.json").write_text(json.dumps(body))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_from_dir_commits_pages_in_groups_with_a_checkpoint_per_page(tmp_path, settings):
    from django.db import connection

    from pncp.models import SyncCheckpoint
    from pncp.sync import import_from_dir

    settings.PNCP_FROM_DIR_PAGES_PER_COMMIT = 3
    base = sample_records("contratacao_1.json")[0]
    pages = [[_variant(base, p * 10 + i) for i in range(4)] for p in range(7)]
    pages[4].append(copy.deepcopy(pages[3][0]))  # PNCP repeats a record on the next page
    bad = _variant(base, 999)
    bad["anoCompra"] = "dois mil"
    pages[5].append(bad)
    _write_pages(tmp_path, pages)

    run, progress = import_from_dir(tmp_path, ["contratacoes"])

    assert run.status == "success"
    r = progress.result
    assert (r.created, r.updated, r.unchanged, r.rejected) == (28, 0, 1, 1)
    assert Contratacao.objects.count() == 28
    checkpoints = SyncCheckpoint.objects.filter(run=run).order_by("key")
    assert [(c.key, c.status, c.fetched) for c in checkpoints] == [
        (f"contratacoes/p{n}.json", "done", len(pages[n - 1])) for n in range(1, 8)
    ]
    # Rows written in one transaction share its xmin: pages 1-3, 4-6 and 7 -> 3 commits.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT xmin::text) FROM pncp_contratacao")
        assert cursor.fetchone()[0] == 3
    [reject] = RejectedRecord.objects.filter(sync_run=run)
    assert reject.natural_key == bad["numeroControlePNCP"]
    assert reject.source.startswith("contratacoes/p6.json")
    assert "anoCompra" in reject.reason

    # Re-import with one record changed on the last page: found, parsed and versioned even
    # though the reader stops parsing ahead once batches come back unchanged.
    pages[6][2]["valorTotalEstimado"] = 4321.25
    _write_pages(tmp_path, pages)
    run, progress = import_from_dir(tmp_path, ["contratacoes"])
    r = progress.result
    assert (r.created, r.updated, r.unchanged, r.rejected) == (0, 1, 28, 1)
    changed = Contratacao.objects.get(numero_controle_pncp=pages[6][2]["numeroControlePNCP"])
    assert str(changed.valor_total_estimado) == "4321.2500"
    assert RecordVersion.objects.filter(natural_key=changed.numero_controle_pncp).count() == 1


@pytest.mark.django_db
def test_merged_batches_count_a_repeated_record_once_and_keep_each_page_as_source(ingester):
    from pncp.ingest import Prepared

    base = sample_records("contratacao_1.json")[0]
    first = ingester.prepare("contratacoes", [_variant(base, 1), _variant(base, 2)], source="a")
    bad = _variant(base, 3)
    bad["dataPublicacaoPncp"] = "ontem"
    second = ingester.prepare("contratacoes", [_variant(base, 2), bad], source="b", parse=True)
    merged = Prepared.merge([first, second])
    result = ingester.ingest("contratacoes", prepared_batch=merged)
    assert (result.created, result.unchanged, result.rejected) == (2, 1, 1)
    [reject] = RejectedRecord.objects.all()
    assert (reject.source, reject.natural_key) == ("b", bad["numeroControlePNCP"])
    with pytest.raises(ValueError, match="one resource"):
        Prepared.merge([first, ingester.prepare("contratos", [], source="c")])


@pytest.mark.django_db
def test_from_dir_fails_a_page_the_reader_cannot_prepare_and_goes_on(tmp_path, monkeypatch):
    from pncp.ingest import Ingester
    from pncp.models import SyncCheckpoint
    from pncp.sync import import_from_dir

    base = sample_records("contratacao_1.json")[0]
    pages = [[_variant(base, p * 10 + i) for i in range(3)] for p in range(3)]
    _write_pages(tmp_path, pages)
    prepare = Ingester.prepare

    def buggy(self, resource, records, *, source="", **kwargs):
        if source.startswith("contratacoes/p2.json"):
            raise RuntimeError("simulated bug")
        return prepare(self, resource, records, source=source, **kwargs)

    monkeypatch.setattr(Ingester, "prepare", buggy)
    run, progress = import_from_dir(tmp_path, ["contratacoes"])
    assert run.status != "success"
    assert progress.windows_failed == 1
    assert Contratacao.objects.count() == 6
    failed = SyncCheckpoint.objects.get(run=run, status="failed")
    assert failed.key == "contratacoes/p2.json"
    assert "simulated bug" in failed.error


@pytest.mark.django_db
def test_stored_payloads_are_compressed_with_lz4_on_postgresql():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attrelid::regclass::text, attcompression FROM pg_attribute "
            "WHERE attname IN ('raw', 'payload') AND attrelid::regclass::text LIKE 'pncp_%%' "
            "AND NOT attisdropped"
        )
        methods = dict(cursor.fetchall())
    assert {"pncp_contratacao", "pncp_contrato", "pncp_recordversion"} <= set(methods)
    assert set(methods.values()) == {"l"}, methods


@pytest.mark.django_db
@pytest.mark.parametrize(
    "keys",
    [
        [],
        [""],
        ["", ""],
        ["00394460005887-1-000123/2025"],
        ['a"b', "c\\d", 'e\\"f', "vírgula, {chaves}", "  espaços  ", "NULL", "x\ny"],
    ],
)
def test_key_lists_reach_postgresql_exactly(keys):
    """The ``text[]`` literal that carries key lists reads back as the very same strings."""
    from django.db import connection

    from pncp.ingest import text_array

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [text_array(keys)])
        assert cursor.fetchone()[0] == keys


def _mirror_state() -> dict:
    """What an import leaves behind, minus ids and clocks."""
    from pncp.models import SyncCheckpoint

    return {
        "contratacoes": sorted(
            Contratacao.objects.values_list(
                "numero_controle_pncp",
                "content_hash",
                "valor_total_estimado",
                "orgao_id",
                "unidade__orgao_id",
                "unidade__codigo_unidade",
            )
        ),
        "versions": sorted(RecordVersion.objects.values_list("natural_key", "content_hash")),
        "orgaos": sorted(Orgao.objects.values_list("cnpj", "razao_social")),
        "unidades": sorted(UnidadeOrgao.objects.values_list("orgao_id", "codigo_unidade")),
        "checkpoints": sorted(SyncCheckpoint.objects.values_list("key", "status", "fetched")),
    }


def _forget_everything() -> None:
    from pncp.models import SyncCheckpoint, SyncRun

    for model in (RecordVersion, RejectedRecord, SyncCheckpoint, Contratacao, UnidadeOrgao):
        model.objects.all().delete()
    Orgao.objects.all().delete()
    SyncRun.objects.all().delete()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_from_dir_with_two_writers_ends_exactly_as_with_one(tmp_path, settings, monkeypatch):
    """Two connections write batches at once; the result is the one-writer result.

    The pages share new órgãos and unidades, created by batches in flight together and met
    in opposite orders, and one record comes back changed on a later page (the later copy
    must win, with one history row).
    """
    import threading

    from pncp.ingest import Ingester
    from pncp.sync import import_from_dir

    settings.PNCP_FROM_DIR_PAGES_PER_COMMIT = 2
    base = sample_records("contratacao_1.json")[0]
    orgaos = [f"{11111111000100 + n:014d}" for n in range(5)]
    pages = []
    for p in range(12):
        page = []
        for i in range(6):
            record = _variant(base, p * 10 + i)
            cnpj = orgaos[(i if p % 2 else -1 - i) % len(orgaos)]
            record["orgaoEntidade"] = {**record["orgaoEntidade"], "cnpj": cnpj}
            record["orgaoEntidade"]["razaoSocial"] = f"ÓRGÃO {cnpj}"
            record["unidadeOrgao"] = {**record["unidadeOrgao"], "codigoUnidade": str(i % 3)}
            record["numeroControlePNCP"] = f"{cnpj}-1-{90000 + p * 10 + i:06d}/2025"
            page.append(record)
        pages.append(page)
    # Files go in name order: batches [p1, p10], [p11, p12], [p2, p3], ... The compra of
    # p11.json comes back changed on p2.json, in the very next batch.
    later = copy.deepcopy(pages[10][1])
    later["valorTotalEstimado"] = 777.5
    pages[1].append(later)
    _write_pages(tmp_path, pages)

    states, threads = {}, {}
    ingest = Ingester.ingest

    def spying_ingest(self, *args, **kwargs):
        threads.setdefault(writers, set()).add(threading.current_thread().name)
        return ingest(self, *args, **kwargs)

    monkeypatch.setattr(Ingester, "ingest", spying_ingest)
    for writers in (1, 2):
        settings.PNCP_WRITERS = writers
        run, progress = import_from_dir(tmp_path, ["contratacoes"])
        assert run.status == "success", run.errors
        r = progress.result
        assert (r.created, r.updated, r.unchanged, r.rejected) == (72, 1, 0, 0)
        states[writers] = _mirror_state()
        _forget_everything()

    assert threads[1] == {"MainThread"}
    assert threads[2] == {"pncp-writer-0", "pncp-writer-1"}
    assert states[2] == states[1]
    state = states[2]
    assert len(state["contratacoes"]) == 72
    assert [n for n, *_ in state["versions"]] == [later["numeroControlePNCP"]]
    changed = next(c for c in state["contratacoes"] if c[0] == later["numeroControlePNCP"])
    assert str(changed[2]) == "777.5000"
    assert [cnpj for cnpj, _ in state["orgaos"]] == orgaos
    assert state["unidades"] == sorted(
        {(r["orgaoEntidade"]["cnpj"], r["unidadeOrgao"]["codigoUnidade"]) for p in pages for r in p}
    )
    assert len(state["checkpoints"]) == 12


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_from_dir_writer_failure_stops_the_import_and_its_threads(tmp_path, settings, monkeypatch):
    import threading

    from pncp.ingest import Ingester
    from pncp.sync import import_from_dir

    settings.PNCP_FROM_DIR_PAGES_PER_COMMIT = 1
    settings.PNCP_WRITERS = 2
    base = sample_records("contratacao_1.json")[0]
    _write_pages(tmp_path, [[_variant(base, p * 10 + i) for i in range(3)] for p in range(6)])
    ingest = Ingester.ingest

    def failing_ingest(self, resource, *args, prepared_batch=None, **kwargs):
        if any(key.endswith(f"{90000 + 30:06d}/2025") for key in prepared_batch.records):
            raise RuntimeError("disk full (simulated)")
        return ingest(self, resource, *args, prepared_batch=prepared_batch, **kwargs)

    monkeypatch.setattr(Ingester, "ingest", failing_ingest)
    with pytest.raises(RuntimeError, match="disk full"):
        import_from_dir(tmp_path, ["contratacoes"])
    assert not [t for t in threading.enumerate() if t.name.startswith("pncp-writer")]
    # the failed batch left nothing; batches before it are whole
    keys = set(Contratacao.objects.values_list("numero_controle_pncp", flat=True))
    assert not any(key.endswith(f"{90000 + 30:06d}/2025") for key in keys)
    assert len(keys) % 3 == 0


@pytest.mark.django_db
def test_from_dir_writes_on_one_connection_inside_a_transaction(settings):
    from pncp.sync import writer_count

    settings.PNCP_WRITERS = 4
    assert writer_count() == 1  # the test's transaction: batches must join it

    from django.db import connection

    assert connection.in_atomic_block
