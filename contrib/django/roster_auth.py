"""
Django behind roster: nginx asks roster who is logged in (GET /auth/check,
deploy/nginx/auth-request.example.conf) and hands the answer to Django in the
X-User-Id, X-User-Name, X-User-Email and X-User-Role headers (name and email
percent-encoded UTF-8). These two classes turn those headers into
`request.user`, so the views that stay in Django keep working once roster owns
the accounts (an import keeps the ids: docs/api.md, "Identity").

    # settings.py
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "roster_auth.RosterUserMiddleware", ...]       # plain Django views
    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES":
                      ["roster_auth.RosterHeaderAuthentication"]}  # DRF views
    ROSTER_TRUSTED_PROXIES = ["127.0.0.1"]  # the nginx that sets the headers

The headers are believed only from an address in ROSTER_TRUSTED_PROXIES (the
nginx of the example, which replaces any X-User-* a client sends); from
anywhere else they are ignored. A roster account Django has not seen yet (one
registered after the switch) gets its auth_user row on first sight, with the
same id, unless ROSTER_CREATE_USERS = False.
"""

from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

try:
    from rest_framework.authentication import BaseAuthentication
except ImportError:  # plain Django: only the middleware
    BaseAuthentication = object


def roster_user(request):
    """The Django user nginx vouched for, or None (no headers, or not from nginx)."""
    meta = request.META
    if meta.get("REMOTE_ADDR") not in getattr(settings, "ROSTER_TRUSTED_PROXIES", ["127.0.0.1"]):
        return None
    uid = meta.get("HTTP_X_USER_ID", "")
    if not uid.isdigit():
        return None
    model = get_user_model()
    user = model.objects.filter(pk=int(uid)).first()
    if user is None and getattr(settings, "ROSTER_CREATE_USERS", True):
        try:
            with transaction.atomic():
                user = model.objects.create(
                    pk=int(uid), username=unquote(meta.get("HTTP_X_USER_NAME", "")),
                    email=unquote(meta.get("HTTP_X_USER_EMAIL", "")))
                user.set_unusable_password()  # roster checks passwords, never Django
                user.save(update_fields=["password"])
        except IntegrityError:  # another request made it first
            user = model.objects.filter(pk=int(uid)).first()
    if user is not None:
        user.roster_role = meta.get("HTTP_X_USER_ROLE", "")
    return user


class RosterUserMiddleware:
    """Sets request.user from roster's headers (after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = roster_user(request)
        if user is not None:
            request.user = user
        return self.get_response(request)


class RosterHeaderAuthentication(BaseAuthentication):
    """Django REST framework: the user roster's headers name, else not authenticated."""

    def authenticate(self, request):
        user = roster_user(request._request)
        return (user, None) if user is not None else None
