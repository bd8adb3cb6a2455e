"""The importer's Prometheus metrics move when the importer calls them, and /metrics shows it."""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pncp import metrics
from pncp.ingest import IngestResult


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_pncp_requests_are_counted_by_endpoint_and_status(client):
    endpoint = "/v1/contratacoes/publicacao"
    before = scrape(client)
    metrics.observe_pncp_request(endpoint, 200, 0.3)
    metrics.observe_pncp_request(endpoint, 200, 1.5)
    metrics.observe_pncp_request(endpoint, 429, 0.1)
    metrics.observe_pncp_request(endpoint, 0, 5.0)  # no answer (timeout)
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("pncp_requests_total", endpoint=endpoint, status="200") == 2
    assert delta("pncp_requests_total", endpoint=endpoint, status="429") == 1
    assert delta("pncp_requests_total", endpoint=endpoint, status="error") == 1
    assert delta("pncp_request_duration_seconds_count", endpoint=endpoint) == 4
    assert delta("pncp_request_duration_seconds_sum", endpoint=endpoint) == pytest.approx(6.9)
    assert delta("pncp_request_duration_seconds_bucket", endpoint=endpoint, le="0.5") == 2
    assert delta("pncp_request_duration_seconds_bucket", endpoint=endpoint, le="+Inf") == 4


def test_detail_paths_share_one_endpoint_label(client):
    before = scrape(client)
    metrics.observe_pncp_request("/v1/orgaos/00394460005887/compras/2024/15", 200, 0.2)
    metrics.observe_pncp_request("/v1/orgaos/92324706000127/compras/2023/7", 200, 0.2)
    after = scrape(client)
    label = "/v1/orgaos/{}/compras/{}/{}"
    assert (
        value(after, "pncp_requests_total", endpoint=label, status="200")
        - value(before, "pncp_requests_total", endpoint=label, status="200")
        == 2
    )


def test_records_imported_by_resource_and_outcome(client):
    before = scrape(client)
    metrics.record_ingest("atas", IngestResult(created=5, updated=2, unchanged=7, rejected=1))
    metrics.records_imported("atas", "created", 3)
    after = scrape(client)
    expected = {"created": 8, "updated": 2, "unchanged": 7, "rejected": 1}
    for outcome, n in expected.items():
        name = "pncp_records_imported_total"
        labels = {"resource": "atas", "outcome": outcome}
        assert value(after, name, **labels) - value(before, name, **labels) == n, outcome


def test_unknown_outcome_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown import outcome"):
        metrics.records_imported("atas", "skipped", 1)


def test_last_successful_sync_is_a_unix_time_per_resource(client):
    metrics.sync_finished("pca", when=1_700_000_000.0)
    start = time.time()
    metrics.sync_finished("contratos", "atas")
    samples = scrape(client)
    name = "pncp_last_successful_sync_timestamp_seconds"
    assert value(samples, name, resource="pca") == 1_700_000_000.0
    for resource in ("contratos", "atas"):
        assert start <= value(samples, name, resource=resource) <= time.time()


def test_metrics_hook_fits_the_client(client):
    """The client's on_request hook feeds the metrics: what sync.py passes to PNCPClient."""
    import responses

    from tests.conftest import make_client

    base = "http://pncp.test/api/consulta"
    path = "/v1/pca/atualizacao"
    before = scrape(client)
    with responses.RequestsMock() as mocked:
        mocked.get(
            f"{base}{path}",
            json={"data": [], "totalRegistros": 0, "totalPaginas": 0, "empty": True},
        )
        pncp = make_client(base, on_request=metrics.observe_pncp_request)
        pncp.get_page(path, {"pagina": 1, "tamanhoPagina": 10})
    after = scrape(client)
    assert (
        value(after, "pncp_requests_total", endpoint=path, status="200")
        - value(before, "pncp_requests_total", endpoint=path, status="200")
        == 1
    )
