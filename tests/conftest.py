import json
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"


def load_sample(name: str):
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def sample_records(*names: str) -> list[dict]:
    records = []
    for name in names:
        body = load_sample(name)
        if isinstance(body, list):  # a bare list of records (envelope not kept)
            records.extend(body)
        elif "data" in body:  # a PNCP page
            records.extend(body["data"])
        else:  # one record
            records.append(body)
    return records


@pytest.fixture
def ingester(db):
    from pncp.ingest import Ingester

    return Ingester()
