"""
A small Django site for test_identity.py: the rest of a platform behind nginx and
roster, using contrib/django/roster_auth.py. Run as
    /usr/bin/python3 django_platform.py DB_PATH
it prints its port on stdout and serves until killed. Views:
    /courses/whoami/  DRF view (RosterHeaderAuthentication): who request.user is
    /courses/plain/   plain Django view (RosterUserMiddleware)
"""

import json
import os
import sys
import wsgiref.simple_server

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "django"))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    DEBUG=False, SECRET_KEY="test-only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "rest_framework"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "roster_auth.RosterUserMiddleware"],
    REST_FRAMEWORK={"DEFAULT_AUTHENTICATION_CLASSES": ["roster_auth.RosterHeaderAuthentication"],
                    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
                    "UNAUTHENTICATED_USER": None},
    ROSTER_TRUSTED_PROXIES=["127.0.0.1"],
    USE_TZ=True)
django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402


class WhoAmI(APIView):
    def get(self, request):
        u = request.user
        return Response({"id": u.pk, "username": u.username, "email": u.email,
                         "role": getattr(u, "roster_role", "")})


def plain(request):
    u = request.user
    body = {"authenticated": bool(u and u.is_authenticated),
            "id": u.pk if u and u.is_authenticated else None}
    return HttpResponse(json.dumps(body), content_type="application/json")


urlpatterns = [path("courses/whoami/", WhoAmI.as_view()), path("courses/plain/", plain)]

if __name__ == "__main__":
    call_command("migrate", verbosity=0, interactive=False)
    srv = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, WSGIHandler(),
        handler_class=type("Quiet", (wsgiref.simple_server.WSGIRequestHandler,),
                           {"log_message": lambda *a: None}))
    print(srv.server_port, flush=True)
    srv.serve_forever()
