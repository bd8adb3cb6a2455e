"""pncp.models.JSONField: Django's JSONField read back with orjson, values unchanged."""

from __future__ import annotations

import json

from django.db.models import F
from django.db.models.fields.json import KeyTextTransform

from pncp.models import JSONField, SyncRun

VALUE = {
    "texto": "Aquisição de veículos \u2028 ‘aspas’",
    "inteiro": 12345678901234,
    "grande": 2**70,  # beyond orjson's 64 bits: Django's own path reads it
    "real": 0.1,
    "expoente": 1e-7,
    "lista": [None, True, False, {"aninhado": [1, 2.5, "x"]}],
    "vazio": {},
}


def test_reads_back_what_was_written(db):
    run = SyncRun.objects.create(params=VALUE, resources=["contratacoes"], errors=[])
    stored = SyncRun.objects.values_list("params", flat=True).get(pk=run.pk)
    assert stored == VALUE
    assert stored == json.loads(json.dumps(VALUE))
    assert SyncRun.objects.get(pk=run.pk).resources == ["contratacoes"]


def test_key_lookups_keep_djangos_behaviour(db):
    run = SyncRun.objects.create(params=VALUE)
    found = SyncRun.objects.filter(pk=run.pk)
    assert found.annotate(t=KeyTextTransform("texto", "params")).get().t == VALUE["texto"]
    assert found.values_list(F("params__lista__3__aninhado"), flat=True).get() == [1, 2.5, "x"]
    assert found.filter(params__inteiro=12345678901234).exists()


def test_text_that_is_not_json_is_returned_as_is():
    field = JSONField()
    assert field.from_db_value("não é json", None, None) == "não é json"
    assert field.from_db_value('{"a": 1}', None, None) == {"a": 1}
    assert field.from_db_value(None, None, None) is None
