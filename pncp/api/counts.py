"""``totalRegistros`` remembered until the data changes.

Every list page counts its matches: for a month of contratações at a million rows that is an
index-only scan of ~44,000 entries, ~4.7 ms of PostgreSQL CPU, a third of a page of 50's
database time. Clients page through a filter one page after another (PNCP's own importers,
ours included, and a frontend's "next"), and each page counted the same rows again.

With a shared cache (Redis: ``REDIS_URL``), a count is kept under the hash of the count's SQL
and parameters together with the *data generation* it was counted at: a token the importer
replaces after every commit that wrote records (``data_changed``). A remembered count is used
only while the generation is unchanged, so a total is never older than the last import's
commit; ``API_COUNT_CACHE_SECONDS`` (default 60; 0 turns this off) bounds its age should
the importer fail to reach the cache. The generation and the count travel in one round trip
(``get_many``). Without a shared cache (the embedded default, a process-local cache that the
importer's process cannot reach) every page counts.

Time-dependent filters (propostas em aberto: "encerramento from now on") compile to new
parameters as time passes, so they get new keys, not stale counts.
"""

from __future__ import annotations

import hashlib
import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter

log = logging.getLogger(__name__)

GENERATION_KEY = "pncp:data-generation"
PROCESS_LOCAL = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}

COUNT_CACHE = Counter(
    "pncp_api_count_cache",
    "List page totals (totalRegistros) by outcome: hit (remembered), miss (counted and "
    "kept), off (counted: no shared cache), error (counted: the cache failed).",
    ["outcome"],
)


def enabled() -> bool:
    if settings.API_COUNT_CACHE_SECONDS <= 0:
        return False
    return settings.CACHES.get("default", {}).get("BACKEND", "") not in PROCESS_LOCAL


def count(queryset) -> int:
    """``queryset.count()``, remembered for the current data generation when enabled."""
    if not enabled():
        COUNT_CACHE.labels("off").inc()
        return queryset.count()
    try:
        sql, params = queryset.values_list("pk").query.sql_with_params()
        text = f"{queryset.db}\n{queryset.model._meta.label}\n{sql}\n{params!r}"
        key = "pncp:count:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        found = cache.get_many([GENERATION_KEY, key])
    except Exception:  # the cache is an optimization; the count is the answer
        log.warning("count cache unavailable; counting", exc_info=True)
        COUNT_CACHE.labels("error").inc()
        return queryset.count()
    generation, entry = found.get(GENERATION_KEY), found.get(key)
    if generation is not None and entry is not None and entry[0] == generation:
        COUNT_CACHE.labels("hit").inc()
        return entry[1]
    total = queryset.count()
    try:
        if generation is None:  # a new cache: start a generation (kept from the next page on)
            cache.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        else:  # counted after reading the generation: a newer commit makes it a miss later
            cache.set(key, (generation, total), timeout=settings.API_COUNT_CACHE_SECONDS)
    except Exception:
        log.warning("count cache unavailable; not kept", exc_info=True)
    COUNT_CACHE.labels("miss").inc()
    return total


def data_changed() -> None:
    """Records were committed: counts remembered so far are no longer used."""
    if not enabled():
        return
    try:
        cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:  # never fail an import for the cache
        log.warning(
            "could not renew the API's count generation; remembered totals may be up to "
            "API_COUNT_CACHE_SECONDS old",
            exc_info=True,
        )
