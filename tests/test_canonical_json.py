"""The canonical JSON we hash and store: orjson's, equal to the standard library's where it counts.

Content hashes computed before orjson came in used ``json.dumps(sort_keys=True,
ensure_ascii=False, separators=(",", ":"))``; if orjson wrote PNCP's records one byte
differently, every stored record would look changed on its next import and get a spurious
history row. The only known difference is the exponent form of floats (``1e-7`` vs
``1e-07``), which PNCP's records do not use.
"""

import json
from pathlib import Path

import pytest

from pncp.parsers import canonical, canonical_stdlib, loads

SAMPLES = Path(__file__).parent / "data" / "samples"


def _records():
    for path in sorted(SAMPLES.glob("*.json")):
        body = json.loads(path.read_bytes())
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            yield from body["data"]
        elif isinstance(body, list):
            yield from body
        else:
            yield body


def test_every_sample_record_has_the_same_canonical_text_either_way():
    records = list(_records())
    assert len(records) > 50
    for record in records:
        assert canonical(record) == canonical_stdlib(record)


def test_fake_records_and_awkward_strings_have_the_same_canonical_text():
    from tests.fakes.fake_pncp import FakeDataset

    dataset = FakeDataset.generate(contratacoes=200, atas=50, contratos=100, pcas=20, seed=5)
    records = [
        r for name in ("contratacoes", "atas", "contratos", "pca") for r in dataset.records(name)
    ]
    awkward = {
        "z": 'acentuação, “aspas”, \u2028 separador, \t tab, \x00 nul, barra \\ / e "',
        "a": [1.0, 0.1, 123456789.125, 0.0001, -0.0, 2**53 + 1, True, None, {}, []],
        "emoji": "\U0001f600",
        "M": {"b": 1, "A": 2, "á": 3},
    }
    for record in [*records, awkward]:
        assert canonical(record) == canonical_stdlib(record)


def test_exponent_floats_differ_only_in_form_and_read_back_equal():
    record = {"quantidade": 1e-07, "valor": 1e22}
    assert canonical(record) == '{"quantidade":1e-7,"valor":1e+22}'
    assert json.loads(canonical(record)) == record


def test_integers_beyond_64_bits_fall_back_to_the_standard_library():
    record = {"valor": 123456789012345678901234567890}
    assert canonical(record) == '{"valor":123456789012345678901234567890}'


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    with pytest.raises(ValueError, match="is not JSON"):
        loads(f'{{"valorTotalEstimado": {constant}}}')


def _stdlib_loads(data):
    return json.loads(data, parse_constant=lambda name: pytest.fail(f"{name} accepted"))


def test_every_sample_page_decodes_the_same_as_the_standard_library():
    paths = sorted(SAMPLES.glob("*.json"))
    assert len(paths) > 5
    for path in paths:
        data = path.read_bytes()
        decoded = loads(data)
        assert decoded == _stdlib_loads(data)
        assert canonical(decoded) == canonical_stdlib(_stdlib_loads(data))


@pytest.mark.parametrize(
    "text",
    [
        '{"valor": 123456789012345678901234567890}',  # beyond 64 bits: orjson gives a float
        '{"valor": -9223372036854775809, "x": 18446744073709551616}',
        '{"valor": 18446744073709551615}',
        '{"a": "\\ud800 lone surrogate"}',  # orjson refuses, the standard library takes it
        '\ufeff{"bom": true}',
        '{"a": 1, "a": 2}',
        '{"a": 1e400}',
        '{"nums": [0.1, 1e-07, -0.0, 123456789.125, 2e22]}',
    ],
)
def test_awkward_bodies_decode_exactly_as_the_standard_library(text):
    for data in (text, text.encode("utf-8", "surrogatepass")):
        assert _outcome(loads, data) == _outcome(json.loads, data)


def _outcome(decode, data):
    """What a decoder makes of ``data``: its values and their types, or that it refused."""
    try:
        value = decode(data)
    except ValueError:
        return "refused"
    return value, [type(v) for v in _leaves(value)]


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@pytest.mark.parametrize("data", [b'{"a": NaN}', b"[Infinity]", b'{"a": 1', b"", b"\xff"])
def test_what_is_not_json_is_refused_as_before(data):
    with pytest.raises(ValueError):
        loads(data)
