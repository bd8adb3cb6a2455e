"""Prometheus metrics of the importer, exported at ``/metrics`` with django-prometheus's.

The importer calls these functions; each is thread-safe, cheap and touches no database:

* ``observe_pncp_request(path, status, latency)``: the PNCP client's ``on_request`` hook (one
  call per HTTP attempt, retries included; status 0 = no answer, counted as ``error``);
* ``record_ingest(resource, result)`` after each ingest (or ``records_imported(resource,
  outcome, n)`` for a single outcome);
* ``sync_finished(*resources)`` when every window of those resources ended done.

Metrics live in the process that moves them. The web process serves ``/metrics``; the importer
usually runs in Celery workers, so in production set ``PROMETHEUS_MULTIPROC_DIR`` to a directory
shared by web and workers (django-prometheus then aggregates every process), or scrape the
workers separately.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from pncp.client import resource_key

logger = logging.getLogger(__name__)

OUTCOMES = ("created", "updated", "unchanged", "rejected")

PNCP_REQUESTS = Counter(
    "pncp_requests",
    "HTTP requests made to PNCP, by endpoint and status (error = no answer).",
    ["endpoint", "status"],
)
PNCP_LATENCY = Histogram(
    "pncp_request_duration_seconds",
    "Latency of HTTP requests to PNCP, by endpoint.",
    ["endpoint"],
    # PNCP answers in 0.2 s on a good day and in a minute on a bad one.
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
RECORDS_IMPORTED = Counter(
    "pncp_records_imported",
    "Records imported from PNCP, by resource and outcome (created/updated/unchanged/rejected).",
    ["resource", "outcome"],
)
LAST_SUCCESSFUL_SYNC = Gauge(
    "pncp_last_successful_sync_timestamp_seconds",
    "Unix time of the last sync whose every window of the resource ended done.",
    ["resource"],
    multiprocess_mode="max",
)


def endpoint_label(path: str) -> str:
    """One label per endpoint: numeric segments (CNPJ, ano, sequencial) become ``{}``."""
    return resource_key(path) or "/"


def observe_pncp_request(path: str, status: int, latency: float) -> None:
    endpoint = endpoint_label(path)
    PNCP_REQUESTS.labels(endpoint=endpoint, status=str(status) if status else "error").inc()
    PNCP_LATENCY.labels(endpoint=endpoint).observe(max(latency, 0.0))


def records_imported(resource: str, outcome: str, n: int = 1) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown import outcome {outcome!r}; expected one of {OUTCOMES}")
    if n > 0:
        RECORDS_IMPORTED.labels(resource=resource, outcome=outcome).inc(n)


class _IngestCounts(Protocol):
    created: int
    updated: int
    unchanged: int
    rejected: int


def record_ingest(resource: str, result: _IngestCounts) -> None:
    """Count every outcome of one ``Ingester.ingest`` call (a ``pncp.ingest.IngestResult``)."""
    for outcome in OUTCOMES:
        records_imported(resource, outcome, getattr(result, outcome))


def sync_finished(*resources: str, when: float | None = None) -> None:
    """Mark ``resources`` as completely synced at ``when`` (unix time, default now)."""
    timestamp = time.time() if when is None else when
    for resource in resources:
        LAST_SUCCESSFUL_SYNC.labels(resource=resource).set(timestamp)
