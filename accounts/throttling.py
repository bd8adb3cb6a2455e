"""API throttles: per user when authenticated, per client IP when anonymous.

DRF's own classes copy the rates once, at import; these read ``DEFAULT_THROTTLE_RATES`` on
every request, so a deployment (or a test) that changes the rates gets them without a restart
of the class machinery. Counters live in the default cache, Redis in production.

With Redis, a window is a sorted set of request times, checked and updated by one Lua script
(one round trip, atomic). DRF's own path reads the whole history list, unpickles it, and
writes it back (two round trips, a new Redis client object for each): concurrent requests of
one client could overwrite each other's entries and pass the limit, and a 600/min budget
meant pickling 600 floats per request. Same semantics otherwise: a sliding window of
``duration`` seconds, a refused request is not counted, ``wait()`` as DRF computes it.
"""

import os
import threading

from django.conf import settings
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"

# KEYS[1]: the window; ARGV: now, duration (s), limit, a unique member.
# Returns {1, count before} when allowed (and recorded), {0, oldest time} when refused.
WINDOW_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
  return {1, tostring(count)}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, oldest[2]}
"""

_scripts: dict[str, object] = {}
_scripts_lock = threading.Lock()


def _window_script():
    """The window script on a Redis client kept per process (per cache location), or None
    when the default cache is not Redis."""
    config = settings.CACHES.get("default", {})
    if config.get("BACKEND") != REDIS_CACHE:
        return None
    location = config["LOCATION"]
    location = location[0] if isinstance(location, (list, tuple)) else location
    script = _scripts.get(location)
    if script is None:
        import redis

        with _scripts_lock:
            script = _scripts.get(location)
            if script is None:
                client = redis.Redis.from_url(location.split(",")[0])
                script = _scripts[location] = client.register_script(WINDOW_SCRIPT)
    return script


class _RatesFromSettings:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        script = _window_script() if self.rate is not None else None
        if script is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        member = f"{self.now!r}-{os.urandom(6).hex()}"
        allowed, value = script(
            keys=[cache.make_key(self.key)],
            args=[repr(self.now), self.duration, self.num_requests, member],
        )
        if allowed:
            return True
        self.history = [float(value)] * self.num_requests  # what DRF's wait() reads
        return self.throttle_failure()


class AnonThrottle(_RatesFromSettings, AnonRateThrottle):
    """Anonymous requests, per client IP (``NUM_PROXIES`` says how far to trust XFF)."""


class UserThrottle(_RatesFromSettings, UserRateThrottle):
    """Authenticated requests, per user; anonymous ones fall back to the client IP."""


class AuthThrottle(_RatesFromSettings, SimpleRateThrottle):
    """The token endpoints, per client IP whoever asks: slows password and token guessing."""

    scope = "auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
