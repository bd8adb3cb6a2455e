"""Test doubles for external services: the fake PNCP Consulta API (``tests.fakes.fake_pncp``)."""

_EXPORTS = ("FAULT_KINDS", "FakeDataset", "FakePNCP", "FaultConfig", "LoggedRequest")
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so that ``python -m tests.fakes.fake_pncp`` does not import the module twice.
    if name in _EXPORTS:
        from tests.fakes import fake_pncp

        return getattr(fake_pncp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
