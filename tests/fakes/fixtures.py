"""Pytest fixtures for the fake PNCP server; import them into a conftest.py to use them."""

from __future__ import annotations

import pytest

from tests.fakes.fake_pncp import FakeDataset, FakePNCP


@pytest.fixture
def fake_pncp():
    """A running FakePNCP with an empty dataset and no faults (``fake_pncp.dataset`` to fill)."""
    with FakePNCP(FakeDataset()) as fake:
        yield fake
