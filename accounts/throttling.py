"""API throttles: per user when authenticated, per client IP when anonymous.

DRF's own classes copy the rates once, at import; these read ``DEFAULT_THROTTLE_RATES`` on
every request, so a deployment (or a test) that changes the rates gets them without a restart
of the class machinery. Counters live in the default cache, Redis in production.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class _RatesFromSettings:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_RatesFromSettings, AnonRateThrottle):
    """Anonymous requests, per client IP (``NUM_PROXIES`` says how far to trust XFF)."""


class UserThrottle(_RatesFromSettings, UserRateThrottle):
    """Authenticated requests, per user; anonymous ones fall back to the client IP."""


class AuthThrottle(_RatesFromSettings, SimpleRateThrottle):
    """The token endpoints, per client IP whoever asks: slows password and token guessing."""

    scope = "auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
