"""JWT auth, roles and throttling, seen from an API client.

Records endpoints answer consumers, operators and staff (and anonymous callers only when
``API_ANONYMOUS_READ`` is on); operator endpoints answer operators and staff only. Until the
records API is routed, a tiny test-only view with the project's default permission stands in
for it; once ``/api/v1/dominios/`` exists it is checked too.
"""

import uuid
from datetime import timedelta

import pytest
from django.urls import Resolver404, path, resolve
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from config.urls import handler404 as project_handler404
from config.urls import handler500 as project_handler500
from config.urls import urlpatterns as project_urlpatterns

PASSWORD = "c0rrect-h0rse-battery"
OPS_ENDPOINTS = ["/api/v1/sync-runs/", "/api/v1/coverage/", "/api/v1/quarantine/"]
PROBE = "/test-only/records/"


class RecordsProbe(APIView):
    """A records endpoint in miniature: the project's default permission and throttles."""

    def get(self, request):
        return Response({"data": []})

    def post(self, request):
        return Response({"ok": True})


def boom(request):
    raise RuntimeError("a bug outside DRF")


urlpatterns = [
    path(PROBE.strip("/") + "/", RecordsProbe.as_view()),
    path("api/test-only/boom/", boom),
    *project_urlpatterns,
]
handler404, handler500 = project_handler404, project_handler500


def _dominios_routed() -> bool:
    try:
        resolve("/api/v1/dominios/")
    except Resolver404:
        return False
    return True


RECORDS_ENDPOINTS = [
    PROBE,
    pytest.param(
        "/api/v1/dominios/",
        marks=pytest.mark.skipif(not _dominios_routed(), reason="records API not routed yet"),
    ),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """A private cache per test (throttling counters never leak), and fast password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-auth-{uuid.uuid4()}",
        }
    }


@pytest.fixture
def make_user(db):
    def make(role="consumer", **extra):
        username = extra.pop("username", f"{role}-{uuid.uuid4().hex[:8]}")
        return User.objects.create_user(
            username, f"{username}@example.org", PASSWORD, role=role, **extra
        )

    return make


@pytest.fixture
def users(make_user):
    return {
        "consumer": make_user("consumer"),
        "operator": make_user("operator"),
        "staff": make_user("staff", is_staff=True),
    }


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def assert_error(response, status: int, error: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert {"status", "error", "message", "path"} <= set(body), body
    assert body["status"] == status
    assert body["path"] == response.wsgi_request.path
    assert body["message"]
    if error is not None:
        assert body["error"] == error, body
    return body


# --- tokens ---------------------------------------------------------------------------------


def test_obtain_a_token_pair_and_use_it(make_user):
    user = make_user("consumer", username="ana")
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "ana", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    me = APIClient(headers={"Authorization": f"Bearer {pair['access']}"}).get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "ana"
    user.refresh_from_db()
    assert user.last_login is not None


def test_obtain_refuses_wrong_password_inactive_users_and_missing_fields(make_user):
    make_user("consumer", username="ana")
    make_user("consumer", username="bia", is_active=False)
    client = APIClient()
    wrong = client.post(
        "/api/v1/auth/token/", {"username": "ana", "password": "nope"}, format="json"
    )
    assert_error(wrong, 401)
    inactive = client.post(
        "/api/v1/auth/token/", {"username": "bia", "password": PASSWORD}, format="json"
    )
    assert_error(inactive, 401)
    missing = client.post("/api/v1/auth/token/", {"username": "ana"}, format="json")
    body = assert_error(missing, 400, "invalid")
    assert "password" in body["detail"]


def test_refresh_rotates_and_blacklists_the_old_refresh_token(make_user):
    old = str(RefreshToken.for_user(make_user()))
    client = APIClient()
    response = client.post("/api/v1/auth/token/refresh/", {"refresh": old}, format="json")
    assert response.status_code == 200, response.content
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != old
    AccessToken(pair["access"])  # a valid access token

    reuse = client.post("/api/v1/auth/token/refresh/", {"refresh": old}, format="json")
    assert_error(reuse, 401, "token_not_valid")

    again = client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 200


def test_refresh_refuses_an_access_token_and_garbage(make_user):
    access = str(RefreshToken.for_user(make_user()).access_token)
    client = APIClient()
    for bad in (access, "not-a-token"):
        response = client.post("/api/v1/auth/token/refresh/", {"refresh": bad}, format="json")
        assert_error(response, 401, "token_not_valid")


def test_verify(make_user):
    refresh = RefreshToken.for_user(make_user())
    client = APIClient()
    for token in (str(refresh.access_token), str(refresh)):
        response = client.post("/api/v1/auth/token/verify/", {"token": token}, format="json")
        assert response.status_code == 200
        assert response.json() == {}
    bad = client.post("/api/v1/auth/token/verify/", {"token": "x.y.z"}, format="json")
    assert_error(bad, 401, "token_not_valid")
    assert_error(client.post("/api/v1/auth/token/verify/", {}, format="json"), 400, "invalid")


def test_logout_blacklists_the_refresh_token(make_user):
    refresh = str(RefreshToken.for_user(make_user()))
    client = APIClient()
    response = client.post("/api/v1/auth/logout/", {"refresh": refresh}, format="json")
    assert response.status_code == 205
    assert response.content == b""

    after = client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert_error(after, 401, "token_not_valid")
    twice = client.post("/api/v1/auth/logout/", {"refresh": refresh}, format="json")
    assert_error(twice, 401, "token_not_valid")
    assert_error(client.post("/api/v1/auth/logout/", {}, format="json"), 400, "invalid")
    garbage = client.post("/api/v1/auth/logout/", {"refresh": "garbage"}, format="json")
    assert_error(garbage, 401, "token_not_valid")


def test_an_expired_access_token_is_refused(make_user):
    token = RefreshToken.for_user(make_user()).access_token
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = APIClient(headers={"Authorization": f"Bearer {token}"}).get(PROBE)
    assert_error(response, 401, "token_not_valid")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_malformed_bearer_token_is_refused():
    response = APIClient(headers={"Authorization": "Bearer nonsense"}).get(PROBE)
    assert_error(response, 401, "token_not_valid")


def test_errors_outside_drf_keep_the_error_shape_under_api():
    client = APIClient(raise_request_exception=False)
    assert_error(client.get("/api/test-only/boom/"), 500, "server_error")
    assert_error(client.get("/api/v1/no-such-thing/"), 404, "not_found")


# --- /me ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "is_operator", "is_staff"),
    [("consumer", False, False), ("operator", True, False), ("staff", True, True)],
)
def test_me_for_each_role(users, role, is_operator, is_staff):
    user = users[role]
    response = client_for(user).get("/api/v1/auth/me/")
    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "role": role,
        "isOperator": is_operator,
        "isStaff": is_staff,
    }


def test_me_needs_a_token_even_with_anonymous_read(settings):
    settings.API_ANONYMOUS_READ = True
    assert_error(APIClient().get("/api/v1/auth/me/"), 401, "not_authenticated")


# --- roles on records and operator endpoints ------------------------------------------------


@pytest.mark.parametrize("url", RECORDS_ENDPOINTS)
def test_records_endpoints_need_a_token_by_default(url, settings):
    assert settings.API_ANONYMOUS_READ is False
    body = assert_error(APIClient().get(url), 401, "not_authenticated")
    assert body["message"]


@pytest.mark.parametrize("url", RECORDS_ENDPOINTS)
@pytest.mark.parametrize("role", ["consumer", "operator", "staff"])
def test_every_role_reads_records(url, role, users):
    assert client_for(users[role]).get(url).status_code == 200


@pytest.mark.parametrize("url", RECORDS_ENDPOINTS)
def test_anonymous_read_when_enabled(url, settings):
    settings.API_ANONYMOUS_READ = True
    assert APIClient().get(url).status_code == 200


def test_records_are_read_only_for_every_role(users, settings):
    settings.API_ANONYMOUS_READ = True
    assert_error(APIClient().post(PROBE, {}, format="json"), 401, "not_authenticated")
    for user in users.values():
        assert_error(client_for(user).post(PROBE, {}, format="json"), 403, "permission_denied")


@pytest.mark.parametrize("url", OPS_ENDPOINTS)
def test_operator_endpoints_by_role(url, users, make_user, settings):
    settings.API_ANONYMOUS_READ = True  # never opens the operator endpoints
    assert_error(APIClient().get(url), 401, "not_authenticated")
    assert_error(client_for(users["consumer"]).get(url), 403, "permission_denied")
    assert client_for(users["operator"]).get(url).status_code == 200
    assert client_for(users["staff"]).get(url).status_code == 200
    superuser = make_user("consumer", is_superuser=True, is_staff=True)
    assert client_for(superuser).get(url).status_code == 200


@pytest.mark.parametrize("url", OPS_ENDPOINTS)
def test_operator_endpoints_are_read_only(url, users):
    response = client_for(users["operator"]).post(url, {}, format="json")
    assert_error(response, 405)


# --- throttling -----------------------------------------------------------------------------


def set_rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1000/min", "user": "1000/min", "auth": "1000/min"}
        | rates,
    }


def test_authenticated_users_are_throttled_per_user(settings, users):
    set_rates(settings, user="3/min")
    consumer, operator = client_for(users["consumer"]), client_for(users["operator"])
    for _ in range(3):
        assert consumer.get(PROBE).status_code == 200
    response = consumer.get(PROBE)
    body = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert body["retry_after"] == response["Retry-After"]
    # another user has a budget of their own
    assert operator.get(PROBE).status_code == 200


def test_anonymous_callers_are_throttled_per_ip(settings):
    settings.API_ANONYMOUS_READ = True
    set_rates(settings, anon="2/min")
    one = APIClient(REMOTE_ADDR="203.0.113.1")
    other = APIClient(REMOTE_ADDR="203.0.113.2")
    assert one.get(PROBE).status_code == 200
    assert one.get(PROBE).status_code == 200
    assert_error(one.get(PROBE), 429, "throttled")
    # a forged X-Forwarded-For does not buy a fresh budget (NUM_PROXIES = 0)
    assert_error(one.get(PROBE, HTTP_X_FORWARDED_FOR="198.51.100.9"), 429, "throttled")
    assert other.get(PROBE).status_code == 200


def test_token_endpoints_are_throttled_per_ip(settings, make_user):
    set_rates(settings, auth="2/min")
    make_user("consumer", username="ana")
    client = APIClient()
    for _ in range(2):
        bad = client.post(
            "/api/v1/auth/token/", {"username": "ana", "password": "x"}, format="json"
        )
        assert bad.status_code == 401
    good = client.post(
        "/api/v1/auth/token/", {"username": "ana", "password": PASSWORD}, format="json"
    )
    assert_error(good, 429, "throttled")


def _redis_cache(settings):
    """Redis (database 15, a key prefix of this test's own) as the default cache; returns a
    client of that database. Skips without Redis."""
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    client = redis.Redis.from_url(url, socket_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }
    return client


def test_throttling_counters_live_in_the_default_cache_redis_in_production(settings, users):
    """With Redis as the default cache (production), counters are shared by every process."""
    counter = _redis_cache(settings)
    set_rates(settings, user="2/min")
    client = client_for(users["consumer"])
    assert client.get(PROBE).status_code == 200
    assert client.get(PROBE).status_code == 200
    assert_error(client.get(PROBE), 429, "throttled")
    from django.core.cache import cache

    key = f"throttle_user_{users['consumer'].pk}"
    assert counter.zcard(cache.make_key(key)) == 2  # the refused request is not counted
    cache.delete(key)
    assert client.get(PROBE).status_code == 200
    cache.delete(key)


def test_redis_throttle_never_lets_concurrent_requests_past_the_limit(settings):
    """Many requests of one user at once: exactly the budget passes (DRF's read-modify-write
    of a pickled history let concurrent requests overwrite each other's entries)."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from accounts.throttling import UserThrottle

    _redis_cache(settings)
    set_rates(settings, user="10/min")
    request = SimpleNamespace(user=SimpleNamespace(pk=4242, is_authenticated=True))
    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(lambda _: UserThrottle().allow_request(request, None), range(40)))
    assert sum(allowed) == 10


def test_redis_throttle_window_slides_and_says_how_long_to_wait(settings, monkeypatch):
    from types import SimpleNamespace

    from accounts.throttling import UserThrottle

    _redis_cache(settings)
    set_rates(settings, user="3/min")
    request = SimpleNamespace(user=SimpleNamespace(pk=77, is_authenticated=True))
    clock = [1_000_000.0]
    monkeypatch.setattr(UserThrottle, "timer", lambda self: clock[0])
    for _ in range(3):
        clock[0] += 10
        assert UserThrottle().allow_request(request, None)
    clock[0] += 5  # t = 35 s: budget spent; the first request (t = 10) leaves at t = 70
    refused = UserThrottle()
    assert not refused.allow_request(request, None)
    assert refused.wait() == pytest.approx(35.0)
    clock[0] += 35.5  # past t = 70: one request has left the window
    assert UserThrottle().allow_request(request, None)
    assert not UserThrottle().allow_request(request, None)
    other = SimpleNamespace(user=SimpleNamespace(pk=78, is_authenticated=True))
    assert UserThrottle().allow_request(other, None)


# --- the token's user, remembered per process -------------------------------------------------


@pytest.fixture
def fresh_user_cache():
    from accounts.authentication import forget_users

    forget_users()
    yield
    forget_users()


def _user_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return sum('FROM "accounts_user"' in q["sql"] for q in queries.captured_queries)


def test_the_token_user_is_read_once_then_remembered(make_user, fresh_user_cache, settings):
    settings.API_USER_CACHE_SECONDS = 60
    client = client_for(make_user("consumer"))
    assert _user_queries(client, "/api/v1/auth/me/") == 1
    assert _user_queries(client, "/api/v1/auth/me/") == 0
    assert client.get("/api/v1/auth/me/").json()["role"] == "consumer"


def test_a_remembered_user_is_rebuilt_per_request(make_user, fresh_user_cache, settings):
    """Changing ``request.user`` in one request never leaks into the next."""
    from accounts.authentication import CachedUserJWTAuthentication

    settings.API_USER_CACHE_SECONDS = 60
    user = make_user("consumer")
    token = AccessToken.for_user(user)
    auth = CachedUserJWTAuthentication()
    first = auth.get_user(token)
    first.role = "staff"
    second = auth.get_user(token)
    assert second is not first
    assert (second.pk, second.role, second.username) == (user.pk, "consumer", user.username)


def test_saving_a_user_forgets_it_at_once(make_user, fresh_user_cache, settings):
    settings.API_USER_CACHE_SECONDS = 60
    user = make_user("consumer")
    client = client_for(user)
    assert client.get(OPS_ENDPOINTS[0]).status_code == 403
    user.role = "operator"
    user.save()
    assert client.get(OPS_ENDPOINTS[0]).status_code == 200
    user.is_active = False
    user.save()
    assert_error(client.get("/api/v1/auth/me/"), 401)


def test_a_change_outside_the_orm_shows_when_the_entry_expires(
    make_user, fresh_user_cache, settings, monkeypatch
):
    """``update()`` sends no signal: other processes' view of a user, in miniature."""
    import accounts.authentication as authentication

    settings.API_USER_CACHE_SECONDS = 10
    user = make_user("consumer")
    client = client_for(user)
    assert client.get("/api/v1/auth/me/").status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/v1/auth/me/").status_code == 200  # remembered, still active
    later = authentication.time.monotonic() + 11
    monkeypatch.setattr(authentication.time, "monotonic", lambda: later)
    assert_error(client.get("/api/v1/auth/me/"), 401)


def test_zero_seconds_reads_the_user_every_time(make_user, fresh_user_cache, settings):
    settings.API_USER_CACHE_SECONDS = 0
    client = client_for(make_user("consumer"))
    assert _user_queries(client, "/api/v1/auth/me/") == 1
    assert _user_queries(client, "/api/v1/auth/me/") == 1


def test_user_cache_default_is_short():
    from django.conf import settings

    assert 0 < settings.API_USER_CACHE_SECONDS <= 30
