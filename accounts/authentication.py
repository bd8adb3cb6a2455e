"""JWT authentication that remembers token users for a few seconds.

simplejwt reads the token's user from the database on every request: an ORM ``get`` that cost
~1.8 ms of a 15 ms page of 50 on a slow VM, most of it compiling the query. Here the user's
row is kept per process for ``API_USER_CACHE_SECONDS`` (default 10; 0 reads it every time)
and a fresh ``User`` instance is built from it for each request, so no request sees another's
changes to ``request.user``. The same checks run on the remembered row (active user; the
password-change claim when ``CHECK_REVOKE_TOKEN`` is on).

Saving or deleting a user through the ORM (admin, ``manage.py``, the API) forgets that user in
the process that saved it at once; other worker processes notice a deactivated user or a
changed role within ``API_USER_CACHE_SECONDS``. An access token already outlives a logout by
up to its 15 minutes, so the window is small next to the token's own.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings as jwt_settings

# user id -> (monotonic deadline, database alias, attnames, values)
_users: dict = {}
_lock = threading.Lock()
_MAX_USERS = 10_000  # a bound on memory; past it the oldest entries go


def forget_users(user_id=None) -> None:
    """Forget one remembered user, or all of them."""
    with _lock:
        if user_id is None:
            _users.clear()
        else:
            _users.pop(str(user_id), None)


class CachedUserJWTAuthentication(JWTAuthentication):
    """``JWTAuthentication`` whose user lookup is remembered for ``API_USER_CACHE_SECONDS``."""

    def get_user(self, validated_token):
        seconds = settings.API_USER_CACHE_SECONDS
        if seconds <= 0:
            return super().get_user(validated_token)
        try:
            user_id = str(validated_token[jwt_settings.USER_ID_CLAIM])
        except KeyError:
            return super().get_user(validated_token)  # raises simplejwt's own error
        now = time.monotonic()
        entry = _users.get(user_id)
        if entry is None or entry[0] <= now:
            user = super().get_user(validated_token)  # reads, and checks, the row
            names = tuple(f.attname for f in user._meta.concrete_fields)
            values = tuple(getattr(user, name) for name in names)
            with _lock:
                if len(_users) >= _MAX_USERS:
                    for key in list(_users)[: _MAX_USERS // 10]:
                        _users.pop(key, None)
                _users[user_id] = (now + seconds, user._state.db, names, values)
            return user
        _, db, names, values = entry
        user = get_user_model().from_db(db, names, values)
        self._check(user, validated_token)
        return user

    @staticmethod
    def _check(user, validated_token) -> None:
        """What simplejwt checks after reading the row, on the remembered one."""
        from django.utils.translation import gettext_lazy as _
        from rest_framework_simplejwt.exceptions import AuthenticationFailed
        from rest_framework_simplejwt.utils import get_md5_hash_password

        if jwt_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if jwt_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                _("The user's password has been changed."), code="password_changed"
            )


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.forget_saved_user")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.forget_deleted_user")
def _forget_changed_user(sender, instance, **kwargs):
    forget_users(instance.pk)


class CachedUserJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme: the same ``jwtAuth`` bearer scheme as simplejwt's."""

    target_class = "accounts.authentication.CachedUserJWTAuthentication"
