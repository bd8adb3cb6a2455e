"""Pages imported before are known by their bytes and re-imported without decoding.

``PageFingerprint`` keeps each clean page's keys and content hashes. A re-import of the same
bytes compares those hashes with the stored ones and decodes the page only when one differs
(a record edited or removed since): the result must always be the one of decoding every page.
"""

import copy
import json
from decimal import Decimal

import pytest

from pncp.models import Contratacao, PageFingerprint, RecordVersion, RejectedRecord
from tests.conftest import sample_records
from tests.test_ingest_behaviour import _forget_everything, _mirror_state, _variant, _write_pages

TRANSACTIONAL = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _pages() -> list[list[dict]]:
    base = sample_records("contratacao_1.json")[0]
    pages = [[_variant(base, p * 10 + i) for i in range(5)] for p in range(6)]
    pages[2].append(copy.deepcopy(pages[2][0]))  # a key twice on one page: no fingerprint
    pages[3].append(copy.deepcopy(pages[1][0]))  # a key met again on a later page: fine
    bad = _variant(base, 999)
    bad["anoCompra"] = "dois mil"
    pages[4].append(bad)  # parsed at ingest and quarantined: fingerprinted, never trusted
    orphan = {"objetoCompra": "sem número de controle"}
    pages[5].append(orphan)  # rejected while preparing: no fingerprint
    return pages


def _decodes(monkeypatch) -> list:
    """Count the pages the from-dir reader decodes."""
    import pncp.ingest
    import pncp.sync

    calls = []
    real = pncp.sync.loads

    def counting(data):
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(pncp.sync, "loads", counting)  # the reader
    monkeypatch.setattr(pncp.ingest, "loads", counting)  # a known page decoded after all
    return calls


def _counts(progress) -> tuple:
    r = progress.result
    return (r.created, r.updated, r.unchanged, r.rejected)


@TRANSACTIONAL
def test_a_reimport_of_known_pages_decodes_only_the_pages_without_a_fingerprint(
    tmp_path, settings, monkeypatch
):
    from pncp.sync import import_from_dir

    settings.PNCP_FROM_DIR_PAGES_PER_COMMIT = 2
    pages = _pages()
    _write_pages(tmp_path, pages)
    run, progress = import_from_dir(tmp_path, ["contratacoes"])
    assert run.status == "success"
    assert _counts(progress) == (30, 0, 2, 2)
    # p3 (a key twice) and p6 (a record without its key) are not fingerprinted
    first_keys = {json.loads(f.entries)[0][0] for f in PageFingerprint.objects.all()}
    assert first_keys == {pages[n][0]["numeroControlePNCP"] for n in (0, 1, 3, 4)}
    p1 = next(
        f for f in PageFingerprint.objects.all() if pages[0][0]["numeroControlePNCP"] in f.entries
    )
    assert json.loads(p1.entries) == [
        [r["numeroControlePNCP"], h]
        for r, h in zip(
            pages[0],
            Contratacao.objects.filter(
                numero_controle_pncp__in=[r["numeroControlePNCP"] for r in pages[0]]
            )
            .order_by("sequencial_compra")
            .values_list("content_hash", flat=True),
            strict=True,
        )
    ]

    decoded = _decodes(monkeypatch)
    run, progress = import_from_dir(tmp_path, ["contratacoes"])
    assert run.status == "success"
    assert len(decoded) == 3  # p3 and p6, and p5 whose quarantined record is not stored
    assert _counts(progress) == (0, 0, 32, 2)
    assert RecordVersion.objects.count() == 0
    assert RejectedRecord.objects.filter(sync_run=run).count() == 2
    assert sorted(run.checkpoints.values_list("key", "fetched", "total_registros")) == [
        (f"contratacoes/p{n}.json", count, count) for n, count in enumerate([5, 5, 6, 6, 6, 6], 1)
    ]


@TRANSACTIONAL
def test_known_pages_whose_records_changed_since_end_as_if_decoded(tmp_path, settings):
    """A record edited by a later import and one removed: the known pages are decoded again
    and the mirror ends exactly as without fingerprints (the page's copy wins again)."""
    from pncp.sync import import_from_dir

    settings.PNCP_FROM_DIR_PAGES_PER_COMMIT = 3
    pages = _pages()
    (tmp_path / "saved").mkdir()
    (tmp_path / "newer").mkdir()
    _write_pages(tmp_path / "saved", pages)
    newer = copy.deepcopy(pages[0][1])
    newer["valorTotalEstimado"] = 98765.43
    _write_pages(tmp_path / "newer", [[newer]])
    edited, removed = newer["numeroControlePNCP"], pages[3][2]["numeroControlePNCP"]

    outcomes = {}
    for fingerprints in (False, True):
        settings.PNCP_PAGE_FINGERPRINTS = fingerprints
        import_from_dir(tmp_path / "saved", ["contratacoes"])
        import_from_dir(tmp_path / "newer", ["contratacoes"])
        Contratacao.objects.filter(numero_controle_pncp=removed).delete()
        assert (PageFingerprint.objects.count() > 0) is fingerprints
        run, progress = import_from_dir(tmp_path / "saved", ["contratacoes"])
        assert run.status == "success"
        outcomes[fingerprints] = (_counts(progress), _mirror_state())
        _forget_everything()
        PageFingerprint.objects.all().delete()

    assert outcomes[True] == outcomes[False]
    counts, state = outcomes[True]
    assert counts == (1, 1, 30, 2)
    restored = next(c for c in state["contratacoes"] if c[0] == edited)
    assert restored[2] == Decimal(str(pages[0][1]["valorTotalEstimado"]))
    assert restored[2] != Decimal("98765.43")
    assert removed in {c[0] for c in state["contratacoes"]}
    assert [key for key, _ in state["versions"]] == [edited, edited]


@TRANSACTIONAL
def test_a_page_is_known_only_under_its_own_resource(tmp_path, settings):
    from pncp.ingest import page_digest
    from pncp.sync import import_from_dir

    body = b'{"data": []}'
    assert page_digest("contratacoes", body) != page_digest("contratos", body)
    records = sample_records("contrato_2.json")
    (tmp_path / "contratos").mkdir()
    page = json.dumps({"data": records, "totalRegistros": len(records)}).encode()
    (tmp_path / "contratos" / "p1.json").write_bytes(page)
    import_from_dir(tmp_path, ["contratos"])
    [fingerprint] = PageFingerprint.objects.all()
    assert (fingerprint.resource, fingerprint.digest) == (
        "contratos",
        page_digest("contratos", page),
    )


@pytest.mark.django_db
def test_a_merged_batch_never_writes_an_earlier_copy_parsed_ahead(ingester):
    """Page 1 parsed ahead, page 2 (the later copy, which wins) not: page 2's values land."""
    from pncp.ingest import Prepared

    base = sample_records("contratacao_1.json")[0]
    first = _variant(base, 1)
    later = copy.deepcopy(first)
    later["valorTotalEstimado"] = 1234.5
    merged = Prepared.merge(
        [
            ingester.prepare("contratacoes", [first], source="a", parse=True),
            ingester.prepare("contratacoes", [later], source="b", parse=False),
        ]
    )
    ingester.ingest("contratacoes", prepared_batch=merged)
    stored = Contratacao.objects.get(numero_controle_pncp=first["numeroControlePNCP"])
    assert str(stored.valor_total_estimado) == "1234.5000"
    assert stored.raw["valorTotalEstimado"] == 1234.5


@TRANSACTIONAL
def test_a_failing_fingerprint_lookup_only_costs_decoding(tmp_path, monkeypatch):
    """Fingerprints are an optimization: when reading them fails, every page is decoded."""
    import pncp.sync
    from pncp.sync import import_from_dir

    pages = _pages()
    _write_pages(tmp_path, pages)
    import_from_dir(tmp_path, ["contratacoes"])

    def broken(digests):
        raise RuntimeError("fingerprint table unreadable")

    monkeypatch.setattr(pncp.sync, "known_pages", broken)
    decoded = _decodes(monkeypatch)
    run, progress = import_from_dir(tmp_path, ["contratacoes"])
    assert run.status == "success"
    assert len(decoded) == len(pages)
    assert _counts(progress) == (0, 0, 32, 2)


# --- pruning (manage.py prune_page_fingerprints) ---------------------------------------------


def _prune(*args) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("prune_page_fingerprints", *args, stdout=out)
    return out.getvalue()


@TRANSACTIONAL
def test_pruned_pages_are_decoded_again_with_the_same_result(tmp_path, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from pncp.sync import import_from_dir

    pages = _pages()
    _write_pages(tmp_path, pages)
    import_from_dir(tmp_path, ["contratacoes"])
    by_page = {
        n: f.digest
        for f in PageFingerprint.objects.all()
        for n, page in enumerate(pages, 1)
        if json.loads(f.entries)[0][0] == page[0]["numeroControlePNCP"]
    }
    assert sorted(by_page) == [1, 2, 4, 5]  # p3 and p6 are never fingerprinted
    digests = sorted(by_page.values())
    old = timezone.now() - timedelta(days=120)
    PageFingerprint.objects.filter(digest__in=[by_page[n] for n in (1, 2, 4)]).update(
        created_at=old
    )

    assert "would delete 3 page fingerprint(s)" in _prune("--dry-run")
    assert PageFingerprint.objects.count() == 4
    assert "deleted 0 of 0 page fingerprint(s)" in _prune("--resource", "contratos")
    assert "deleted 3 of 3 page fingerprint(s)" in _prune()  # default: older than 90 days
    assert list(PageFingerprint.objects.values_list("digest", flat=True)) == [by_page[5]]

    decoded = _decodes(monkeypatch)
    run, progress = import_from_dir(tmp_path, ["contratacoes"])
    assert run.status == "success"
    # the three pruned pages, the two never fingerprinted, and p5 (its quarantined record
    # is not stored, so its fingerprint is never trusted)
    assert len(decoded) == 6
    assert _counts(progress) == (0, 0, 32, 2)
    assert RecordVersion.objects.count() == 0
    assert sorted(PageFingerprint.objects.values_list("digest", flat=True)) == digests

    assert "deleted 4 of 4" in _prune("--older-than", "0")
    assert PageFingerprint.objects.count() == 0


@pytest.mark.django_db
def test_prune_refuses_a_negative_age():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--older-than must be 0 or more days, got -1"):
        _prune("--older-than", "-1")
