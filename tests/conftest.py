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


def make_client(base_url: str, **overrides):
    """A PNCP client tuned for tests: no rate limit, tiny backoff, short timeouts."""
    from pncp.client import PNCPClient

    kwargs = dict(
        requests_per_second=0,
        redis_url="",
        backoff_initial=0.001,
        backoff_max=0.01,
        max_retry_after=0.05,
        timeout=(2.0, 1.0),
        max_attempts=8,
        breaker_threshold=1000,
    )
    kwargs.update(overrides)
    return PNCPClient(base_url, **kwargs)


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Each test gets its own empty cache: with REDIS_URL set (as in CI) API throttle counters
    would otherwise be shared between tests and between test runs."""
    import uuid

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-{uuid.uuid4().hex}",
        }
    }
    from accounts.authentication import forget_users

    forget_users()  # token users remembered by another test's requests (ids can repeat)
    yield
